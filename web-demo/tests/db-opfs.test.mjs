// The embedded store in real Chromium: files in OPFS through the worker's pool of sync access
// handles survive a reload; a second tab, which cannot take the exclusive handles, falls back
// to memory and says so; transactions and watches work through the worker proxy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, waitFor, screenshot } from './harness.mjs';

let s;
before(async () => {
  s = await openSession();
});
after(async () => {
  await s?.close();
});

const ready = (page) => waitFor(page, () => window.dbPage?.ready || window.dbPage?.error, undefined, { what: 'db page ready' });

test('data written through OPFS is found after a reload', async () => {
  const page = s.page;
  await page.goto(s.server.url + 'db.html');
  assert.equal(await ready(page), true, await page.evaluate(() => window.dbPage.error));
  const first = await page.evaluate(async () => {
    const db = window.dbPage.db;
    const enc = new TextEncoder();
    await db.put('greeting', 'hello from before the reload');
    await db.put(new Uint8Array([1, 2, 3]), enc.encode('binary'));
    for (let i = 0; i < 2000; i++) await db.put(`bulk/${String(i).padStart(4, '0')}`, 'x'.repeat(100));
    await db.flush(); // some of it in a table file, the rest in the log
    await db.put('after-flush', 'in the log only');
    const tx = await db.begin();
    await tx.put('tx/a', '1');
    await tx.put('tx/b', '2');
    const rev = await tx.commit();
    return { persistent: db.persistent, storage: db.storage, rev: String(rev) };
  });
  assert.deepEqual({ persistent: first.persistent, storage: first.storage }, { persistent: true, storage: 'opfs' });
  assert.equal(await page.textContent('#status'), 'persistent (OPFS) — visit 1 of this store');
  await screenshot(page, 'db-before-reload');

  await page.reload();
  assert.equal(await ready(page), true);
  const after = await page.evaluate(async () => {
    const db = window.dbPage.db;
    const dec = new TextDecoder();
    const w = await db.watch('tx/', 1n);
    const batches = await w.poll();
    return {
      visits: window.dbPage.visits,
      greeting: await db.getString('greeting'),
      binary: dec.decode(await db.get(new Uint8Array([1, 2, 3]))),
      afterFlush: await db.getString('after-flush'),
      bulk: (await db.range('bulk/', 'bulk0')).length,
      tx: (await db.range('tx/', 'tx0')).map((r) => dec.decode(r.value)),
      watched: batches.map((b) => String(b.revision)),
    };
  });
  assert.deepEqual(after, {
    visits: 2,
    greeting: 'hello from before the reload',
    binary: 'binary',
    afterFlush: 'in the log only',
    bulk: 2000,
    tx: ['1', '2'],
    watched: [first.rev],
  });
  assert.match(await page.textContent('#status'), /visit 2 of this store/);
  assert.match(await page.textContent('#rows'), /after-flushin the log only/);
  await screenshot(page, 'db-after-reload');
  assert.deepEqual(s.problems, []);
});

test('a conflict through the worker proxy rejects with WRITE_CONFLICT', async () => {
  const r = await s.page.evaluate(async () => {
    const db = window.dbPage.db;
    const a = await db.begin();
    const b = await db.begin();
    await a.put('c', 'a');
    await b.put('c', 'b');
    await a.commit();
    try {
      await b.commit();
      return 'committed';
    } catch (e) {
      return { code: e.code, name: e.name, message: e.message };
    }
  });
  assert.equal(r.code, 'WRITE_CONFLICT');
  assert.match(r.message, /write conflict on "c"/);
});

test('a second tab cannot take the pool: it falls back to memory and says so', async () => {
  const other = await s.context.newPage();
  await other.goto(s.server.url + 'db.html');
  assert.equal(await ready(other), true);
  const info = await other.evaluate(() => ({ persistent: window.dbPage.db.persistent, storage: window.dbPage.db.storage, reason: window.dbPage.db.fallbackReason }));
  assert.equal(info.persistent, false);
  assert.equal(info.storage, 'memory');
  assert.match(info.reason, /OPFS unavailable .*using memory: data is lost on reload/);
  assert.match(await other.textContent('#status'), /NOT persistent: OPFS unavailable/);
  await screenshot(other, 'db-fallback');
  assert.equal(await other.evaluate(() => window.dbPage.db.getString('greeting')), undefined);
  await other.close();
  // The first tab still owns its data.
  assert.equal(await s.page.evaluate(() => window.dbPage.db.getString('greeting')), 'hello from before the reload');
});
