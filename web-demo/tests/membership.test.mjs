// Membership in real Chromium, through the page's buttons and keys: "Add node" brings up n4,
// drawn as a learner (dashed rim, "learner" in the ring and the log table) until the operator
// promotes it to voter; "Transfer leadership here" makes it the leader; "Remove node" takes the
// old leader out (drawn faded, its panel says it was removed); writes go on; the shared link
// replays the run with the same trace digest.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, screenshot, waitFor } from './harness.mjs';

let s;
let page;
before(async () => {
  s = await openSession();
  page = await s.open('?seed=5&nodes=3&speed=5000');
});
after(async () => {
  await s?.close();
});

const node = (id) => page.evaluate((id) => window.demo.state().nodes.find((n) => n.id === id), id);
const classes = (id) => page.evaluate((id) => document.querySelector(`.node[data-node="${id}"]`)?.getAttribute('class') ?? '', id);

let first;

test('"Add node" (keyboard) brings up n4 as a learner, then a voter', async () => {
  first = await waitFor(page, () => window.demo.leader(), null, { what: 'a leader' });
  // Pause, then add the node with the keyboard (Tab to the button, Enter).
  await page.click('#play');
  await waitFor(page, () => !window.demo.session.playing, null, { what: 'paused' });
  await page.focus('#add-node');
  await page.keyboard.press('Enter');
  await waitFor(page, () => window.demo.state().nodes.length === 4, null, { what: 'a fourth node' });
  assert.equal((await node(4)).member, 'outside');
  assert.match(await page.textContent('#node-title'), /n4/, 'the new node is selected');
  // Step event by event until the operator has made n4 a learner; the page draws it as one.
  const steps = await page.evaluate(() => {
    const d = window.demo;
    let k = 0;
    while (d.state().nodes[3].member !== 'learner' && k < 50_000) {
      d.session.step();
      k++;
    }
    return k;
  });
  assert.equal((await node(4)).member, 'learner', `after ${steps} steps`);
  await waitFor(page, () => document.querySelector('.node[data-node="4"]')?.classList.contains('learner'), null, { what: 'n4 drawn as a learner' });
  assert.match(await page.textContent('.node[data-node="4"] .role'), /learner|joining|recovering/);
  assert.match(await page.textContent('#logs'), /n4 \(learner\)/);
  assert.match(await page.textContent('#node-body'), /membership\s*learner/);
  assert.match(await page.textContent('#membership'), /learners n4/);
  await screenshot(page, 'membership-1-learner');
  // Play: the operator promotes it once it has caught up.
  await page.click('#play');
  await waitFor(page, () => window.demo.state().nodes[3].member === 'voter', null, { what: 'n4 a voter', timeout: 30_000 });
  await waitFor(page, () => !document.querySelector('.node[data-node="4"]').classList.contains('learner'), null, { what: 'n4 drawn as a voter' });
  await waitFor(page, () => /add n4: done/.test(document.getElementById('membership').textContent), null, { what: 'the add request done' });
  assert.match(await page.textContent('#membership'), /voters n1, n2, n3, n4/);
  await screenshot(page, 'membership-2-voter');
});

test('"Transfer leadership here" makes n4 the leader', async () => {
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('4');
  await page.click('#node-body button[data-admin="transfer"]');
  await waitFor(page, () => window.demo.leader() === 4, null, { what: 'n4 leads', timeout: 30_000 });
  await waitFor(page, () => document.querySelector('.node[data-node="4"]').classList.contains('leader'), null, { what: 'n4 drawn as the leader' });
  await screenshot(page, 'membership-3-transfer');
});

test('"Remove node" (keyboard x) takes the old leader out; writes go on', async () => {
  await page.locator('body').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press(String(first));
  await page.keyboard.press('x');
  await waitFor(page, (id) => window.demo.state().nodes[id - 1].decommissioned, first, { what: `n${first} removed`, timeout: 30_000 });
  await waitFor(page, (id) => document.querySelector(`.node[data-node="${id}"]`).classList.contains('removed'), first, { what: 'drawn as removed' });
  assert.match(await classes(first), /removed/);
  await waitFor(page, () => /was removed from the cluster/.test(document.getElementById('node-body').textContent), null, { what: 'the panel says so' });
  const st = await page.evaluate(() => window.demo.state());
  assert.equal(st.membership.voters.length, 3);
  assert.ok(!st.membership.voters.includes(first));
  // A write still goes through, served by the leader.
  await page.fill('#key', 'after');
  await page.fill('#value', 'removal');
  await page.click('#op-put');
  const put = await waitFor(page, () => {
    const ops = window.demo.cluster.ops_since(0);
    const op = ops[ops.length - 1];
    return op?.done ? op : null;
  }, null, { what: 'the put to finish' });
  assert.equal(put.result.ok, true, JSON.stringify(put));
  await screenshot(page, 'membership-4-removed');
});

test('the shared link replays the membership changes exactly', async () => {
  await page.click('#play');
  await waitFor(page, () => !window.demo.session.playing, null, { what: 'paused' });
  const url = page.url();
  assert.match(url, /#s=/);
  const digest = await page.evaluate(() => window.demo.digest());
  const other = await s.context.newPage();
  await other.goto(url);
  await other.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
  assert.equal(await other.evaluate(() => window.demo.digest()), digest);
  assert.equal(await other.evaluate(() => window.demo.state().nodes.length), 4);
  await other.close();
  assert.deepEqual(s.problems, []);
});
