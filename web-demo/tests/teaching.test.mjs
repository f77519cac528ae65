// The teaching parts in real Chromium: the unsafe-read toggle produces a stale read that the
// live linearizability check catches and highlights; every guided tour runs to its end on the
// real engine with the events its narration promises; the page fits a phone's width.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, screenshot, waitFor } from './harness.mjs';

let s;
let page;
before(async () => {
  s = await openSession();
  page = await s.open('?seed=11&nodes=5&speed=5000');
});
after(async () => {
  await s?.close();
});

async function newestOpDone() {
  return waitFor(page, () => {
    const ops = window.demo.cluster.ops_since(0);
    const op = ops[ops.length - 1];
    return op?.done ? op : null;
  }, null, { what: 'the newest client op to finish' });
}

test('an unsafe read from a cut-off follower is stale, and the checker flags it', async () => {
  const leader = await waitFor(page, () => window.demo.leader(), null, { what: 'a leader' });
  await page.fill('#key', 'x');
  await page.fill('#value', '1');
  await page.click('#op-put');
  assert.equal((await newestOpDone()).result.ok, true);
  await waitFor(page, () => {
    const st = window.demo.state();
    const l = st.nodes.find((n) => n.id === st.leader);
    return st.nodes.every((n) => n.applied >= l.commit);
  }, null, { what: 'every node applied x=1' });
  const follower = leader === 1 ? 2 : 1;
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press(String(follower));
  await page.click('#node-body button[data-act="isolate"]');
  await page.fill('#value', '2');
  await page.click('#op-put');
  const put2 = await newestOpDone();
  assert.equal(put2.result.ok, true, JSON.stringify(put2));
  // The teaching toggle: read x from the cut-off follower's local state.
  await page.check('#unsafe');
  await page.selectOption('#target', String(follower));
  await page.click('#op-get');
  const stale = await newestOpDone();
  assert.equal(stale.unsafe, true);
  assert.equal(stale.served_by, follower);
  assert.equal(stale.result.value, '1', 'the cut-off follower still has x=1');
  await waitFor(page, () => document.getElementById('check').dataset.verdict === 'violation', null, { what: 'the violation verdict' });
  const check = await page.evaluate(() => window.demo.check());
  assert.equal(check.violation.key, 'x');
  assert.ok(check.violation.ops.includes(stale.id), JSON.stringify(check.violation));
  assert.match(await page.textContent('#check'), /not linearizable on key x/);
  await waitFor(page, (id) => document.querySelector(`#ops li[data-op="${id}"]`)?.classList.contains('violation'), stale.id, { what: 'the stale read highlighted' });
  await waitFor(page, (f) => document.querySelector(`.node[data-node="${f}"]`)?.classList.contains('flagged'), follower, { what: 'the serving node flagged' });
  await screenshot(page, 'teaching-1-stale-read');
});

test("under the log: each node's store and the MVCC versions of a key", async () => {
  await page.click('#under-panel summary');
  await page.check('#unsafe').then(() => page.uncheck('#unsafe'));
  await page.selectOption('#target', '');
  await page.click('#heal');
  await page.fill('#key', 'x');
  for (const v of ['3', '4']) {
    await page.fill('#value', v);
    await page.click('#op-put');
    assert.equal((await newestOpDone()).result.ok, true);
  }
  await page.fill('#mvcc-key', 'x');
  // Every node that applied the puts lists x's versions newest first: 4, 3, 2, 1.
  await waitFor(page, () => {
    const rows = [...document.querySelectorAll('#mvcc-body > div')];
    return rows.length === 5 && rows.every((r) => /@\d+ put 4.*@\d+ put 3.*@\d+ put 2.*@\d+ put 1/.test(r.textContent));
  }, null, { what: 'four versions of x on every node' });
  const under = await page.textContent('#under-body');
  assert.match(under, /memtable/);
  assert.match(under, /n5/);
  await screenshot(page, 'teaching-2-under-the-log');
});

/** Runs tour `id` to its last step through the Next button; returns the narration seen. */
async function runTour(id) {
  await page.selectOption('#tour-select', id);
  await waitFor(page, () => !document.getElementById('tour-card').hidden, null, { what: 'the tour card' });
  const texts = [await page.textContent('#tour-text')];
  for (let step = 0; step < 12; step++) {
    if (await page.isDisabled('#tour-next')) break;
    await page.click('#tour-next');
    await waitFor(page, (n) => document.getElementById('tour-card').dataset.step === String(n), step + 1, { what: `tour ${id} step ${step + 2}`, timeout: 30_000 });
    texts.push(await page.textContent('#tour-text'));
  }
  await screenshot(page, `tour-${id}`);
  for (const t of texts) assert.doesNotMatch(t, /did not happen/, `${id}: ${t}`);
  return texts;
}

test('tour: leader election', async () => {
  const texts = await runTour('election');
  assert.match(texts.join('\n'), /pre-candidate/);
  assert.match(texts.join('\n'), /leads term \d+/);
  assert.ok(await page.evaluate(() => window.demo.leader()));
});

test('tour: replication', async () => {
  const texts = await runTour('replication');
  assert.match(texts.join('\n'), /AppendOk/);
  assert.match(texts.join('\n'), /served by n\d/);
  const x = await page.evaluate(() => window.demo.cluster.key_versions('x'));
  assert.equal(x.length, 3);
  for (const v of x) assert.equal(v.versions[0]?.value, '1', JSON.stringify(v));
});

test('tour: leader crash and failover', async () => {
  const texts = await runTour('failover');
  const old = await page.evaluate(() => window.demo.tours.ctx.old);
  const st = await page.evaluate(() => window.demo.state());
  assert.notEqual(st.leader, old);
  assert.equal(st.nodes.find((n) => n.id === old).role, 'Follower');
  assert.match(texts.at(-1), new RegExp(`n${old} recovered`));
});

test('tour: partition and log rollback', async () => {
  const texts = await runTour('rollback');
  const ctx = await page.evaluate(() => {
    const t = window.demo.tours.ctx;
    return { old: t.old, buddy: t.buddy, oldOp: window.demo.cluster.op(t.oldOp) };
  });
  assert.notEqual(ctx.oldOp.result?.ok, true, 'the minority write never reports success');
  const z = await page.evaluate(() => window.demo.cluster.key_versions('z'));
  assert.equal(z.length, 5);
  for (const v of z) assert.equal(v.versions[0]?.value, 'new', JSON.stringify(v));
  assert.match(texts.at(-1), /rolled back/);
});

test('tour: flush and compaction', async () => {
  const texts = await runTour('lsm');
  assert.match(texts.join('\n'), /SSTable/);
  const st = await page.evaluate(() => window.demo.state());
  const store = st.nodes.find((n) => n.id === st.leader).store;
  assert.ok(store.flushes >= 2 && store.compactions >= 1, JSON.stringify(store));
  assert.match(await page.textContent('#under-body'), /#\d+ \d+ B/);
});

test('the page fits a phone: no sideways scrolling, the cluster stays visible', async () => {
  const phone = await s.context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(s.server.url + '?seed=3&nodes=3&speed=5000');
  await phone.waitForFunction(() => window.demo?.ready === true);
  await waitFor(phone, () => window.demo.leader(), null, { what: 'a leader on the phone page' });
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 392, `page is ${width}px wide at 390`);
  const svg = await phone.locator('#cluster').boundingBox();
  assert.ok(svg.width > 300 && svg.width <= 390, JSON.stringify(svg));
  await screenshot(phone, 'phone');
  await phone.close();
  assert.deepEqual(s.problems, []);
});
