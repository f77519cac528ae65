// The demo in real Chromium, driven through its UI: a leader is elected, crashing it elects
// another, a write and a read go through (with the serving node and revision shown and the
// history linearizable), a partition made by dragging a node away elects a leader on the
// majority side and heals, a shared link replays the run exactly (same trace digest), and the
// run exports as a golden transcript test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openSession, screenshot, waitFor } from './harness.mjs';

let s;
let page;
before(async () => {
  s = await openSession();
  // Fast play (5 simulated s per real s) so the test spends its time on checks, not waiting.
  page = await s.open('?seed=7&nodes=5&speed=5000');
});
after(async () => {
  await s?.close();
});

const leader = () => page.evaluate(() => window.demo.leader());
const nodeState = (id) => page.evaluate((id) => window.demo.state().nodes.find((n) => n.id === id), id);

/** Waits until the op whose list item is newest is done; returns it. */
async function lastOpDone() {
  return waitFor(page, () => {
    const ops = window.demo.cluster.ops_since(0);
    const op = ops[ops.length - 1];
    return op?.done ? op : null;
  }, null, { what: 'the newest client op to finish' });
}

test('a leader is elected and drawn as one', async () => {
  const id = await waitFor(page, () => window.demo.leader(), null, { what: 'a leader' });
  await waitFor(page, (id) => document.querySelector(`.node[data-node="${id}"]`)?.classList.contains('leader'), id, { what: 'the leader drawn' });
  const logRows = await page.locator('#logs tr').count();
  assert.equal(logRows, 6, 'a header and one log row per node');
  await screenshot(page, 'cluster-1-leader');
});

test('crashing the leader (keyboard: its number, then c) elects a new one', async () => {
  const old = await leader();
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press(String(old));
  await page.keyboard.press('c');
  await waitFor(page, (old) => !window.demo.state().nodes.find((n) => n.id === old).up, old, { what: `n${old} down` });
  assert.match(await page.textContent('#node-body'), /is down/);
  const next = await waitFor(page, (old) => {
    const l = window.demo.leader();
    return l && l !== old ? l : null;
  }, old, { what: 'a new leader' });
  assert.notEqual(next, old);
  const [a, b] = await Promise.all([nodeState(old), nodeState(next)]);
  assert.ok(b.term > a.term, `new term ${b.term} above the crashed leader's ${a.term}`);
  await screenshot(page, 'cluster-2-failover');
  // Bring it back through the node panel's button.
  await page.click('#node-body button[data-act="restart"]');
  await waitFor(page, (old) => window.demo.state().nodes.find((n) => n.id === old).role === 'Follower', old, { what: `n${old} back as a follower` });
});

test('a write and a read through the clients panel show the serving node and stay linearizable', async () => {
  await page.fill('#key', 'color');
  await page.fill('#value', 'blue');
  await page.click('#op-put');
  const put = await lastOpDone();
  assert.equal(put.kind, 'put');
  assert.equal(put.result.ok, true, JSON.stringify(put));
  assert.equal(put.served_by, await leader());
  await page.click('#op-get');
  const get = await lastOpDone();
  assert.equal(get.kind, 'get');
  assert.equal(get.result.value, 'blue');
  const item = page.locator(`#ops li[data-op="${get.id}"]`);
  assert.match(await item.textContent(), new RegExp(`get color.*→ blue.*by n${get.served_by}`));
  await waitFor(page, () => document.getElementById('check').dataset.verdict === 'linearizable', null, { what: 'the verdict' });
  await screenshot(page, 'cluster-3-write-read');
});

test('a failing disk (node panel) stops a follower, which restarts and catches up once its disk is healthy', async () => {
  const l = await leader();
  const f = l === 1 ? 2 : 1;
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press(String(f));
  await page.click('#node-body button[data-disk="failing"]');
  await waitFor(page, (f) => window.demo.state().nodes.find((n) => n.id === f).disk.error_rate > 0, f, { what: `n${f}'s disk failing` });
  assert.equal(await page.getAttribute('#node-body button[data-disk="failing"]', 'aria-pressed'), 'true');
  // Writes keep succeeding on the other nodes while f stops on its failed writes.
  for (const v of ['1', '2', '3']) {
    await page.fill('#key', 'disk');
    await page.fill('#value', v);
    await page.click('#op-put');
    assert.equal((await lastOpDone()).result.ok, true);
  }
  await waitFor(page, (f) => window.demo.state().nodes.find((n) => n.id === f).disk.failures > 0, f, { what: `n${f} stopped on a failed write` });
  assert.match(await page.textContent('#node-body'), /stopped \d+× on a failed write/);
  await screenshot(page, 'cluster-3b-failing-disk');
  await page.click('#node-body button[data-disk="failing"]');
  await waitFor(page, ([f, l]) => {
    const st = window.demo.state();
    const [a, b] = [st.nodes.find((n) => n.id === f), st.nodes.find((n) => n.id === l)];
    return a.up && a.disk.error_rate === 0 && a.applied === b.applied;
  }, [f, l], { what: `n${f} healthy and caught up` });
});

test('dragging the leader away partitions it; the majority elects a leader; heal restores one term', async () => {
  const old = await leader();
  const box = await page.locator(`.node[data-node="${old}"]`).boundingBox();
  const svg = await page.locator('#cluster').boundingBox();
  // Drag to the nearest corner of the stage: far from every other node.
  const tx = box.x + box.width / 2 < svg.x + svg.width / 2 ? svg.x + 30 : svg.x + svg.width - 30;
  const ty = box.y + box.height / 2 < svg.y + svg.height / 2 ? svg.y + 30 : svg.y + svg.height - 30;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(tx, ty, { steps: 12 });
  await page.mouse.up();
  const cuts = await page.evaluate(() => window.demo.state().net.cuts);
  assert.equal(cuts.length, 8, `n${old} cut from 4 others both ways: ${JSON.stringify(cuts)}`);
  assert.ok(await page.locator('.link.cut').count() >= 8);
  const next = await waitFor(page, (old) => {
    const st = window.demo.state();
    const l = st.nodes.find((n) => n.up && n.role === 'Leader' && n.id !== old);
    return l ? l.id : null;
  }, old, { what: 'a leader on the majority side' });
  await screenshot(page, 'cluster-4-partitioned');
  await page.click('#heal');
  assert.deepEqual(await page.evaluate(() => window.demo.state().net.cuts), []);
  assert.equal(await page.locator('.link.cut').count(), 0);
  await waitFor(page, () => {
    const st = window.demo.state();
    const leaders = st.nodes.filter((n) => n.role === 'Leader');
    const terms = new Set(st.nodes.map((n) => n.term));
    return leaders.length === 1 && terms.size === 1 && st.nodes.every((n) => n.leader === leaders[0].id);
  }, null, { what: 'one leader and one term after healing' });
  assert.ok(next);
  await screenshot(page, 'cluster-5-healed');
});

test('one direction of a link is cut by clicking its half, or from the keyboard in the node panel', async () => {
  // Mouse: n1's half of the n1–n2 line carries n1 → n2. Click it near the line's middle, away
  // from n1's circle (which is drawn over the line's start).
  const clickHalf = async (a, b) => {
    const { x, y } = await page.evaluate(([a, b]) => {
      const l = document.querySelector(`.link[data-from="${a}"][data-to="${b}"] .hit`);
      const at = (k) => Number(l.getAttribute(k));
      const p = new DOMPoint(at('x1') + 0.8 * (at('x2') - at('x1')), at('y1') + 0.8 * (at('y2') - at('y1'))).matrixTransform(l.getScreenCTM());
      return { x: p.x, y: p.y };
    }, [a, b]);
    await page.mouse.click(x, y);
  };
  await clickHalf(1, 2);
  assert.deepEqual(await page.evaluate(() => window.demo.state().net.cuts), [[1, 2]]);
  assert.equal(await page.locator('.link.cut').count(), 1);
  await screenshot(page, 'cluster-6-one-way-cut');
  await clickHalf(1, 2);
  assert.deepEqual(await page.evaluate(() => window.demo.state().net.cuts), []);
  // Keyboard: focus n3, Enter selects it, then Tab to its "→ n4" button and press Enter.
  await page.focus('.node[data-node="3"]');
  await page.keyboard.press('Enter');
  assert.equal(await page.textContent('#node-title'), 'n3');
  await page.focus('#node-body button[data-cut="4"]');
  await page.keyboard.press('Enter');
  assert.deepEqual(await page.evaluate(() => window.demo.state().net.cuts), [[3, 4]]);
  await waitFor(page, () => document.querySelector('#node-body button[data-cut="4"]')?.getAttribute('aria-pressed') === 'true', null, { what: 'the button shows the cut' });
  await page.click('#heal');
  assert.deepEqual(await page.evaluate(() => window.demo.state().net.cuts), []);
});

test('a shared link replays the run exactly (same trace digest); rewinding and returning too', async () => {
  await page.click('#play'); // pause
  await waitFor(page, () => !window.demo.session.playing, null, { what: 'paused' });
  await waitFor(page, () => document.getElementById('play').textContent.includes('Play'), null, { what: 'the button offers Play' });
  const first = await page.evaluate(() => ({ digest: window.demo.digest(), now: window.demo.cluster.now(), url: location.href, actions: window.demo.cluster.scenario().actions.length }));
  assert.ok(first.actions >= 6, `actions recorded: ${first.actions}`);
  assert.match(first.url, /#s=/);

  const other = await s.context.newPage();
  await other.goto(first.url);
  await other.waitForFunction(() => window.demo?.ready === true);
  const replay = await other.evaluate(() => ({ digest: window.demo.digest(), now: window.demo.cluster.now(), playing: window.demo.session.playing }));
  assert.deepEqual({ digest: replay.digest, now: replay.now }, { digest: first.digest, now: first.now });
  assert.equal(replay.playing, false);
  assert.match(await other.textContent('#status'), /Replayed a shared scenario/);
  await screenshot(other, 'cluster-7-replayed');

  // Rewind to the middle with the timeline, then forward to the end: the same run again.
  const mid = Math.floor(first.now / 2);
  await other.locator('#timeline').evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('change'));
  }, mid);
  assert.equal(await other.evaluate(() => window.demo.cluster.now()), mid);
  await other.locator('#timeline').evaluate((el, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('change'));
  }, first.now);
  assert.equal(await other.evaluate(() => window.demo.digest()), first.digest);
  await other.close();
  assert.deepEqual(s.problems, []);
});

test('"Export golden test" downloads the run as a transcript that names its own digest', async () => {
  const before = await page.evaluate(() => ({ digest: window.demo.digest(), actions: window.demo.cluster.scenario().actions.length }));
  assert.equal(await page.isVisible('#export-golden'), true, 'the button is shown once the binding offers golden()');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-golden')]);
  assert.match(download.suggestedFilename(), /^cluster-seed7\.txt$/);
  const text = await readFile(await download.path(), 'utf8');
  assert.match(text, /^# A run of the Strata demo \(seed 7, 5 nodes\)/);
  assert.match(text, /^config \{"seed":7,"nodes":5,/m);
  // One `do` block per recorded action, then the check with the run's own digest: the file
  // replays to the page's run (tests/tests/demo_golden.rs replays files like it).
  assert.equal((text.match(/^do \{/gm) || []).length, before.actions);
  assert.match(text, new RegExp(`^check\\n----\\n[^]*^digest ${before.digest}$`, 'm'));
  assert.equal(await page.evaluate(() => window.demo.digest()), before.digest, 'exporting replays a copy: the page run is untouched');
  assert.deepEqual(s.problems, []);
});
