// The SimCluster JS API in Node, against bindings/wasm/pkg/node (build it first:
// `bash bindings/wasm/build.sh`; `bash bindings/wasm/tests/run.sh` does both).
// Run: node --test bindings/wasm/tests/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { SimCluster } = require('../pkg/node/strata_wasm.js');

/** Runs 10 ms at a time until user op `id` has ended (at most `maxMs`). */
function waitOp(c, id, maxMs = 10_000) {
  const end = c.now() + maxMs;
  while (!c.op(id).done && c.now() < end) c.run_for(10);
  const op = c.op(id);
  assert.ok(op.done, `op ${id} did not end: ${JSON.stringify(op)}`);
  return op;
}

function roles(c) {
  return c.state().nodes.map((n) => n.role);
}

test('a leader is elected, and the trace shows the votes', () => {
  const c = new SimCluster({ seed: 1, nodes: 3 });
  const leader = c.run_until_leader(5_000);
  assert.ok(leader >= 1 && leader <= 3);
  const st = c.state();
  assert.equal(st.leader, leader);
  assert.equal(st.nodes[leader - 1].role, 'Leader');
  assert.equal(st.nodes.filter((n) => n.role === 'Leader').length, 1);
  const events = c.events_since(0);
  assert.equal(events.length, c.event_count());
  events.forEach((e, i) => assert.equal(e.i, i));
  const votes = events.filter((e) => e.type === 'send' && e.kind === 'VoteGranted');
  assert.ok(votes.length >= 1, 'a vote was granted');
  // Every delivery names a message that was sent before it.
  const sent = new Set();
  for (const e of events) {
    if (e.type === 'send') sent.add(e.id);
    if (e.type === 'deliver') assert.ok(sent.has(e.id), `delivered before sent: ${e.text}`);
  }
  assert.ok(events.some((e) => e.type === 'role' && e.role === 'Leader' && e.node === leader));
});

test('step() returns the next events one at a time', () => {
  const c = new SimCluster({ seed: 2 });
  let seen = c.event_count(); // the nodes' starts
  for (let k = 0; k < 50; k++) {
    const r = c.step();
    assert.ok(r.events.length >= 1);
    assert.equal(r.events[0].i, seen);
    seen += r.events.length;
    assert.equal(r.now, c.now());
  }
  assert.equal(seen, c.event_count());
});

test('crash the leader and a new one is elected', () => {
  const c = new SimCluster({ seed: 4, nodes: 5 });
  const first = c.run_until_leader(5_000);
  c.crash(first);
  assert.equal(c.state().nodes[first - 1].up, false);
  c.run_for(20);
  const second = c.run_until_leader(5_000);
  assert.ok(second !== null && second !== first, `new leader ${second} after crashing ${first}`);
  c.restart(first);
  c.run_for(1_000);
  const st = c.state();
  assert.equal(st.nodes[first - 1].up, true);
  assert.equal(st.nodes[first - 1].role, 'Follower');
  assert.equal(st.nodes[first - 1].leader, second);
});

test('put then get returns the value, from the node that served it', () => {
  const c = new SimCluster({ seed: 3 });
  const leader = c.run_until_leader(5_000);
  const put = waitOp(c, c.put('color', 'blue'));
  assert.equal(put.outcome, 'ok');
  assert.equal(put.served_by, leader);
  assert.ok(put.result.ok && put.result.revision > 0);
  const follower = [1, 2, 3].find((n) => n !== leader);
  const get = waitOp(c, c.get('color', { node: follower }));
  assert.equal(get.served_by, follower);
  assert.equal(get.result.value, 'blue');
  assert.ok(get.result.read_ts >= put.result.revision);
  // The leader's log holds the write; every replica applies it.
  c.run_for(200);
  const st = c.state();
  for (const n of st.nodes) {
    assert.ok(n.log.some((e) => e.text.startsWith('put color=blue')), JSON.stringify(n.log));
    assert.equal(n.applied, n.commit);
    // The write is in the memtable, or already flushed into an SST.
    assert.ok(n.store.memtable_entries > 0 || n.store.levels.some((l) => l.files > 0), JSON.stringify(n.store));
  }
  const versions = c.key_versions('color');
  assert.equal(versions.length, 3);
  for (const v of versions) assert.equal(v.versions[0].value, 'blue');
  // A write sent to a follower is refused there, with a hint.
  const refused = waitOp(c, c.put('color', 'red', { node: follower }));
  assert.equal(refused.outcome, 'failed');
  assert.equal(refused.result.code, 'NotLeader');
  assert.equal(c.check().verdict, 'linearizable');
});

test('partition and heal', () => {
  const c = new SimCluster({ seed: 6, nodes: 5 });
  const old = c.run_until_leader(5_000);
  const others = [1, 2, 3, 4, 5].filter((n) => n !== old);
  c.partition([[old], others]);
  c.run_for(1_500);
  let st = c.state();
  const majorityLeaders = others.filter((n) => st.nodes[n - 1].role === 'Leader');
  assert.equal(majorityLeaders.length, 1, `roles ${roles(c)}`);
  assert.ok(st.net.cuts.length >= 8);
  // A write to any node lands on the majority's leader.
  const w = waitOp(c, c.put('k', 'v'));
  assert.equal(w.outcome, 'ok');
  assert.equal(w.served_by, majorityLeaders[0]);
  c.heal();
  c.run_for(1_000);
  st = c.state();
  assert.equal(st.net.cuts.length, 0);
  assert.equal(st.nodes.filter((n) => n.role === 'Leader').length, 1, `roles ${roles(c)}`);
  assert.equal(st.nodes[old - 1].role, 'Follower');
  // The old leader caught up: same last index as everyone.
  const last = new Set(st.nodes.map((n) => n.last_index));
  assert.equal(last.size, 1, JSON.stringify(st.nodes.map((n) => n.last_index)));
  const events = c.events_since(0);
  assert.ok(events.some((e) => e.type === 'drop' && e.reason === 'cut'));
});

function script(c) {
  c.run_until_leader(5_000);
  c.put('a', '1');
  for (let k = 0; k < 9; k++) c.step();
  c.set_link({ drop_rate: 0.05, max_latency: 8 });
  c.cut(1, 2);
  c.run_for(250);
  c.crash(2, false);
  c.get('a');
  c.cas('a', '1', '2', { node: 1 });
  c.step();
  c.restart(2);
  c.run_for(400);
  c.delete('a');
  c.run_for(600);
}

test('the same scenario replayed gives the same digest', () => {
  const c = new SimCluster({ seed: 8, nodes: 3 });
  script(c);
  const digest = c.trace_digest();
  assert.match(digest, /^[0-9a-f]{16}$/);
  // Through a URL-sized string and back.
  const json = JSON.stringify(c.scenario());
  const r = SimCluster.from_scenario(json);
  assert.equal(r.trace_digest(), digest);
  assert.equal(r.event_count(), c.event_count());
  assert.equal(r.now(), c.now());
  assert.deepEqual(r.ops_since(0), c.ops_since(0));
  // Doing the same again by hand gives the same run; another seed does not.
  const again = new SimCluster({ seed: 8, nodes: 3 });
  script(again);
  assert.equal(again.trace_digest(), digest);
  const other = new SimCluster({ seed: 9, nodes: 3 });
  script(other);
  assert.notEqual(other.trace_digest(), digest);
  // Rewind: replaying up to a time gives a prefix of the trace.
  const half = SimCluster.from_scenario(json, 500);
  assert.ok(half.now() <= 500);
  const n = half.event_count();
  assert.deepEqual(half.events_since(0).map((e) => e.text), c.events_since(0, n).map((e) => e.text));
});

function staleReadScenario(unsafeRead) {
  const c = new SimCluster({ seed: 9, nodes: 3 });
  const leader = c.run_until_leader(5_000);
  const follower = [1, 2, 3].find((n) => n !== leader);
  // The follower is cut off from the others; clients still reach it.
  c.partition([[follower], [1, 2, 3].filter((n) => n !== follower)]);
  const put = waitOp(c, c.put('x', 'new', { node: leader }));
  assert.equal(put.outcome, 'ok');
  const get = waitOp(c, c.get('x', { node: follower, unsafe: unsafeRead }));
  return { c, get, report: c.check() };
}

test('the unsafe read toggle lets the checker catch a stale read; safe reads stay linearizable', () => {
  const unsafe = staleReadScenario(true);
  assert.equal(unsafe.get.outcome, 'ok');
  assert.equal(unsafe.get.unsafe, true);
  assert.equal(unsafe.get.result.value, null, 'the cut-off follower answers from its old state');
  assert.equal(unsafe.report.verdict, 'violation');
  assert.equal(unsafe.report.violation.key, 'x');
  assert.ok(unsafe.report.violation.ops.includes(unsafe.get.id));
  assert.ok(unsafe.report.violation.explanation.length > 0);

  const safe = staleReadScenario(false);
  assert.notEqual(safe.get.outcome, 'ok', 'a cut-off follower cannot confirm a linearizable read');
  assert.equal(safe.report.verdict, 'linearizable');
});

test('bad input throws', () => {
  assert.throws(() => new SimCluster({ nodes: 12 }), /nodes/);
  assert.throws(() => new SimCluster({ nodez: 3 }), /unknown field/);
  const c = new SimCluster({});
  assert.throws(() => c.crash(9), /no node 9/);
  assert.throws(() => c.put('', 'v'), /keys/);
  assert.throws(() => c.set_link({ drop_rate: 3 }), /drop_rate/);
  assert.throws(() => SimCluster.from_scenario('{"version": 2}'), /scenario/);
  assert.equal(c.scenario().actions.length, 0);
});

/** Runs 10 ms at a time until `done(c)` holds (at most `maxMs`); returns whether it did. */
function runUntil(c, maxMs, done) {
  const end = c.now() + maxMs;
  while (!done(c) && c.now() < end) c.run_for(10);
  return done(c);
}

test('membership: add a node (learner, then voter), transfer leadership to it, remove the old leader', () => {
  const c = new SimCluster({ seed: 5, nodes: 3 });
  const first = c.run_until_leader(5_000);
  assert.equal(waitOp(c, c.put('x', '1')).outcome, 'ok');
  const id = c.add_node();
  assert.equal(id, 4);
  assert.equal(c.state().nodes.length, 4);
  let sawLearner = false;
  assert.ok(
    runUntil(c, 10_000, (c) => {
      const m = c.state({ log_tail: 0 }).nodes[3].member;
      sawLearner ||= m === 'learner';
      return m === 'voter';
    }),
    'n4 becomes a voter',
  );
  assert.ok(sawLearner, 'n4 was a learner first');
  assert.deepEqual(c.state().membership.voters, [1, 2, 3, 4]);
  assert.ok(c.events_since(0).some((e) => e.type === 'membership' && e.learners.includes(4)), 'the trace shows the learner');

  c.transfer_leader(4);
  assert.ok(runUntil(c, 5_000, (c) => c.state({ log_tail: 0 }).leader === 4), 'n4 leads');

  c.remove_node(first);
  assert.ok(runUntil(c, 10_000, (c) => c.state({ log_tail: 0 }).nodes[first - 1].decommissioned), `n${first} decommissioned`);
  const st = c.state({ log_tail: 0 });
  assert.equal(st.nodes[first - 1].member, 'removed');
  assert.equal(st.membership.voters.length, 3);
  assert.deepEqual(st.admin.map((a) => a.op), ['add n4', 'transfer to n4', `remove n${first}`]);
  assert.ok(st.admin.every((a) => a.done_at !== null && a.error === null), JSON.stringify(st.admin));
  const put = waitOp(c, c.put('y', '2'));
  assert.equal(put.served_by, 4);

  // Refusals are typed errors and change nothing.
  const actions = c.scenario().actions.length;
  assert.throws(() => c.remove_node(first), /removed/);
  assert.throws(() => c.restart(first), /removed/);
  assert.throws(() => c.transfer_leader(12), /no node 12/);
  assert.equal(c.scenario().actions.length, actions);

  // The scenario replays exactly, and the golden export includes the membership actions.
  const again = SimCluster.from_scenario(c.scenario());
  assert.equal(again.trace_digest(), c.trace_digest());
  const golden = c.golden();
  assert.match(golden, /do \{"do":"add_node"\}/);
  assert.match(golden, /do \{"do":"remove_node","node":\d\}/);
  assert.match(golden, /admin add n4 done/);
});
