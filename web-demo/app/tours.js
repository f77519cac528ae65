// Guided tours: short narrated scenarios. Each step says what is about to happen, and its
// "Next" takes real actions on the engine and plays the simulation until the event the text
// talks about has really happened (or gives up after `maxMs` simulated and says so). Nothing
// is scripted on screen: node names, terms and revisions come from the run.

const leaderOf = (st) => st.nodes.find((n) => n.up && n.role === 'Leader' && n.id === st.leader)?.id ?? null;
const ev = (type, f = () => true) => (e) => e.type === type && f(e);

export const TOURS = [
  {
    id: 'election',
    title: 'Leader election',
    config: { seed: 1, nodes: 3 },
    steps: [
      {
        say: () => 'Three nodes start as followers. Each waits a random election timeout (the shrinking ring) to hear from a leader. None exists yet.',
        until: ev('role', (e) => e.role === 'PreCandidate' || e.role === 'Candidate'),
      },
      {
        say: (t) => `n${t.mark.node}'s timer ran out first. It becomes a pre-candidate and asks the others whether they would vote for it (pre-vote: the term is not raised yet, so a node that was cut off cannot disrupt a healthy cluster when it returns).`,
        until: ev('role', (e) => e.role === 'Candidate'),
      },
      {
        say: (t) => `A majority would vote for it, so n${t.mark.node} becomes a candidate for term ${t.mark.term}: it votes for itself and asks the others for their votes.`,
        until: ev('role', (e) => e.role === 'Leader'),
      },
      {
        say: (t) => `n${t.mark.node} got a majority of the votes: it leads term ${t.mark.term}. Its heartbeats (small grey dots) reset the followers' timers, so no one else starts an election.`,
        maxMs: 1500,
      },
      { say: () => 'That is an election. Try it yourself: select the leader and press C to crash it, then watch the others elect a new one.' },
    ],
  },
  {
    id: 'replication',
    title: 'Replication',
    config: { seed: 2, nodes: 3 },
    steps: [
      { say: () => 'First the three nodes elect a leader.', until: ev('role', (e) => e.role === 'Leader') },
      {
        say: (t) => `n${t.mark.node} leads. A client now writes x=1: the request travels to the leader (black dot).`,
        act: (s) => s.act('put', 'x', '1'),
        until: ev('send', (e) => e.kind === 'Append'),
      },
      {
        say: (t) => `The leader appended put x=1 to its log (the new column in the log table: not yet committed, so it is pale) and sends it to the followers in an Append message.`,
        until: ev('send', (e) => e.kind === 'AppendOk'),
      },
      {
        say: (t) => `${t.mark.from} wrote the entry to its own log disk and answers AppendOk.`,
        until: ev('return'),
      },
      {
        say: (t) => {
          const op = t.session.c.op(t.mark.op ?? 0) ?? {};
          return `The leader and one follower hold the entry: a majority of 3, so it is committed. The leader applied it to its store and answered the client (served by n${op.served_by}${op.result?.revision ? `, revision ${op.result.revision}` : ''}). The followers learn the new commit index with the next message and apply it too.`;
        },
        maxMs: 600,
      },
      { say: () => 'Every node now shows the entry solid (committed) and underlined (applied). Write more with the Clients panel; open "Under the log" to see the memtable fill and flush.' },
    ],
  },
  {
    id: 'failover',
    title: 'Leader crash and failover',
    config: { seed: 3, nodes: 5 },
    steps: [
      { say: () => 'Five nodes elect a leader.', until: ev('role', (e) => e.role === 'Leader') },
      {
        say: (t) => `n${t.mark.node} leads term ${t.mark.term}. Now it crashes (unsynced writes are lost; its disks keep what was synced).`,
        act: (s, t) => {
          t.old = leaderOf(s.c.state({ log_tail: 0 }));
          s.act('crash', t.old, true);
        },
        until: ev('role', (e) => e.role === 'Leader'),
        maxMs: 8000,
      },
      {
        say: (t) => `The followers stopped hearing heartbeats; one timed out and won an election: n${t.mark.node} leads term ${t.mark.term}. The cluster keeps working with 4 of 5. A client writes y=2.`,
        act: (s) => s.act('put', 'y', '2'),
        until: ev('return'),
      },
      {
        say: (t) => {
          const op = t.session.c.op(t.mark.op ?? 0) ?? {};
          return `Written: served by n${op.served_by}. Now restart n${t.old}.`;
        },
        act: (s, t) => s.act('restart', t.old),
        untilState: (st, t) => {
          const n = st.nodes.find((x) => x.id === t.old);
          const l = st.nodes.find((x) => x.id === st.leader);
          return n?.up && n.role === 'Follower' && l && n.applied >= l.commit;
        },
        maxMs: 8000,
      },
      { say: (t) => `n${t.old} recovered its log from its disk, learned of the newer term and follows the new leader; it caught up with the writes it missed (see the log table).` },
    ],
  },
  {
    id: 'rollback',
    title: 'Partition and log rollback',
    config: { seed: 4, nodes: 5 },
    steps: [
      { say: () => 'Five nodes elect a leader.', until: ev('role', (e) => e.role === 'Leader') },
      {
        say: (t) => `n${t.mark.node} leads. The network now splits: the leader and one follower on one side (2 of 5, a minority), the other three on the other. A client asks the old leader to write z=old.`,
        act: (s, t, view) => {
          const st = s.c.state({ log_tail: 0 });
          t.old = leaderOf(st);
          t.buddy = st.nodes.find((n) => n.id !== t.old).id;
          t.rest = st.nodes.map((n) => n.id).filter((id) => id !== t.old && id !== t.buddy);
          s.act('partition', [[t.old, t.buddy], t.rest]);
          view.layoutGroups([[t.old, t.buddy], t.rest]);
          t.oldOp = s.act('put', 'z', 'old', { node: t.old });
        },
        untilState: (st, t) => {
          const n = st.nodes.find((x) => x.id === t.old);
          return n && n.last_index > n.commit;
        },
      },
      {
        say: (t) => `n${t.old} appended z=old to its log and sent it to n${t.buddy}, but 2 of 5 is no majority: the entry stays uncommitted (pale). Meanwhile the three on the other side stop hearing a leader and elect one of their own.`,
        until: ev('role', (e) => e.role === 'Leader'),
        maxMs: 8000,
      },
      {
        say: (t) => `n${t.mark.node} leads the majority in term ${t.mark.term}. A client writes z=new there.`,
        act: (s, t) => {
          t.newLeader = t.mark.node;
          t.newOp = s.act('put', 'z', 'new', { node: t.newLeader });
        },
        untilState: (st, t) => t.session.c.op(t.newOp).done,
        maxMs: 8000,
      },
      {
        say: () => 'z=new is committed on the majority side. Now the network heals.',
        act: (s, t, view) => {
          s.act('heal');
          view.resetLayout();
        },
        untilState: (st, t) => {
          const l = st.nodes.find((x) => x.id === st.leader);
          return l && [t.old, t.buddy].every((id) => st.nodes.find((x) => x.id === id).applied >= l.commit);
        },
        maxMs: 10000,
      },
      {
        say: (t) => {
          const op = t.session.c.op(t.oldOp);
          const fate = op.done ? (op.result?.ok ? 'succeeded' : `ended with "${op.result?.error ?? op.outcome}" (${op.outcome})`) : 'is still waiting and will time out';
          return `n${t.old} and n${t.buddy} saw the higher term, threw away their uncommitted z=old entry (rolled back: the column changed colour) and took the new leader's log. The write of z=old ${fate}: never a false success. Get z from any node: it is "new".`;
        },
      },
    ],
  },
  {
    id: 'lsm',
    title: 'Flush and compaction (under the log)',
    config: { seed: 5, nodes: 3 },
    open: 'under-panel',
    steps: [
      { say: () => 'Under each node\'s Raft log sits an LSM store. Open "Under the log" (it is open now) to watch it. First, an election.', until: ev('role', (e) => e.role === 'Leader') },
      {
        say: () => 'Applied writes go into the store\'s memtable, a sorted in-memory buffer (4 KB here, tiny so it fills fast). A client now writes 30 keys of 150 bytes.',
        act: (s, t) => {
          t.before = leaderStore(s).flushes;
          for (let i = 0; i < 30; i++) s.act('put', `k${String(i).padStart(3, '0')}`, 'v'.repeat(150));
        },
        untilState: (st, t) => leaderStore(t.session).flushes > t.before,
        maxMs: 10000,
      },
      {
        say: (t) => `The memtable outgrew its limit: the store froze it and wrote it out as a sorted, immutable file (an SSTable) in level 0 (L${0}: ${leaderStore(t.session).levels.find((l) => l.level === 0)?.files ?? 0} file(s) on the leader). Level-0 files may overlap, so a read checks each. More writes:`,
        act: (s, t) => {
          t.before = leaderStore(s).compactions;
          for (let i = 30; i < 90; i++) s.act('put', `k${String(i).padStart(3, '0')}`, 'w'.repeat(150));
        },
        untilState: (st, t) => leaderStore(t.session).compactions > t.before,
        maxMs: 20000,
      },
      {
        say: (t) => {
          const levels = leaderStore(t.session).levels.filter((l) => l.files).map((l) => `L${l.level}: ${l.files} file(s)`).join(', ');
          return `Enough level-0 files piled up, so a compaction merged them into one sorted run further down (${levels} on the leader): fewer files for a read to check, and overwritten or deleted versions can be dropped. Each replica flushes and compacts on its own schedule: they apply the same log, so they hold the same keys and values, but in differently shaped files (compare the nodes in the table).`;
        },
      },
    ],
  },
];

function leaderStore(s) {
  const st = s.c.state({ log_tail: 0 });
  return st.nodes.find((n) => n.id === st.leader)?.store ?? { flushes: 0, compactions: 0, levels: [] };
}

/** Drives one tour at a time on the session, with the card in the page. */
export class TourRunner {
  constructor(session, view, ui) {
    this.s = session;
    this.view = view;
    this.ui = ui; // { card, title, progress, text, next, restart, exit, onStart(config), setSpeed(x) }
    this.tour = null;
    ui.next.addEventListener('click', () => this.next());
    ui.restart.addEventListener('click', () => this.start(this.tour.id));
    ui.exit.addEventListener('click', () => this.exit());
  }

  start(id) {
    const tour = TOURS.find((t) => t.id === id);
    if (!tour) return;
    this.tour = tour;
    this.i = 0;
    this.ctx = { session: this.s, mark: {} };
    this.ui.onStart(tour.config);
    this.ui.card.hidden = false;
    if (tour.open) document.getElementById(tour.open).open = true;
    this.show();
  }

  exit() {
    this.tour = null;
    this.ui.card.hidden = true;
    this.s.stopWhen = null;
    this.s.stopWhenState = null;
  }

  running() {
    return this.s.playing && (this.s.stopWhen !== null || this.s.stopWhenState !== null);
  }

  show(note = '') {
    const step = this.tour.steps[this.i];
    this.ui.title.textContent = this.tour.title;
    this.ui.progress.textContent = `step ${this.i + 1} of ${this.tour.steps.length}`;
    this.ui.text.textContent = step.say(this.ctx) + (note ? ' ' + note : '');
    const last = this.i === this.tour.steps.length - 1;
    this.ui.next.disabled = last;
    this.ui.next.textContent = last ? 'Done' : 'Next ▸';
    this.ui.card.dataset.step = String(this.i);
  }

  /** Runs the current step's action and plays until its condition, then shows the next. */
  next() {
    if (!this.tour || this.running()) return;
    const step = this.tour.steps[this.i];
    if (this.i >= this.tour.steps.length - 1) return;
    this.ui.next.disabled = true;
    step.act?.(this.s, this.ctx, this.view);
    const deadline = this.s.c.now() + (step.maxMs ?? 6000);
    const ctx = this.ctx;
    const advance = (note = '') => {
      this.s.stopWhen = null;
      this.s.stopWhenState = null;
      this.s.playing = false;
      this.i += 1;
      this.show(note);
    };
    const onlyTime = !step.until && !step.untilState;
    this.s.stopWhen = (e) => {
      if (step.until && !step.untilState && step.until(e)) {
        ctx.mark = e;
        return true;
      }
      return false;
    };
    this.s.stopWhenState = (st) => {
      if (step.untilState && step.untilState(st, ctx)) return true;
      if (st.now >= deadline) {
        this.timedOut = !onlyTime;
        return true;
      }
      return false;
    };
    this.s.onStop = () => {
      this.s.onStop = null;
      const note = this.timedOut ? `(The expected event did not happen within ${step.maxMs ?? 6000} simulated ms: this seed behaves differently; look at the trace.)` : '';
      this.timedOut = false;
      advance(note);
    };
    this.s.playing = true;
  }
}
