//! Crash loops for the Raft log (`engine::node::raftlog`) on the sim disk: random persist
//! sequences in the shapes Raft produces (appends, a new leader overwriting a suffix, hard
//! state changes, snapshot installs) and compactions, I/O completed in random interleavings
//! with new persists (so group commit happens), the power cut after a random number of disk
//! requests (unsynced bytes lost, or a random prefix of them kept: a torn write), sometimes
//! during recovery itself. After each recovery:
//!
//! * the state is exactly the state after some prefix of the records written, and that prefix
//!   includes every persist whose `Persisted` was emitted (hard state and entries as the last
//!   acknowledged writes left them); nothing unacknowledged is half there, and
//! * `strata_raft::Node::new` accepts it.
//!
//! Then bit flips: every bit of a multi-segment log is flipped in turn; recovery reports a
//! typed corruption error naming the flipped file (or, for damage confined to the newest
//! segment's last frame, drops that frame as a torn tail), and never panics.
//!
//! `STRATA_RAFTLOG_CRASH_POINTS` sets how many crash points run (default 10,000);
//! `STRATA_SEED` replays one seed. A failure prints the seed.
use std::collections::VecDeque;
use strata_engine::lsm::io::{FileName, IoId, IoRequest};
use strata_engine::node::raftlog::{LogConfig, LogError, LogOutput, RaftLog};
use strata_raft::{Bytes, Config, Entry, EntryKind, HardState, Index, Node, NodeId, Persist, PersistId, Recovered, SnapshotMeta, Term};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;

/// The state a log holds after some record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    hard_state: HardState,
    base: SnapshotMeta,
    entries: Vec<Entry>,
}

impl State {
    fn last(&self) -> Index {
        self.entries.last().map_or(self.base.index, |e| e.index)
    }
    fn of(r: &Recovered) -> State {
        State { hard_state: r.hard_state, base: r.snapshot.clone().unwrap_or_default(), entries: r.entries.clone() }
    }
}

/// A log on a sim disk with a queue of I/O in flight.
struct Driver {
    log: RaftLog,
    disk: SimDisk,
    queue: VecDeque<(IoId, IoRequest)>,
    budget: u64,
    crashed: bool,
    recovered: Option<Result<Recovered, LogError>>,
    acked: Option<PersistId>,
}

impl Driver {
    fn open(cfg: &LogConfig, disk: SimDisk, budget: u64) -> Driver {
        let mut d = Driver { log: RaftLog::open(cfg.clone()), disk, queue: VecDeque::new(), budget, crashed: false, recovered: None, acked: None };
        d.drain();
        d
    }

    fn drain(&mut self) {
        while let Some(out) = self.log.poll() {
            match out {
                LogOutput::Io { id, req } => self.queue.push_back((id, req)),
                LogOutput::Recovered(r) => {
                    assert!(self.recovered.is_none(), "Recovered twice");
                    self.recovered = Some(r);
                }
                LogOutput::Persisted(id) => {
                    assert!(self.acked.is_none_or(|a| a < id), "Persisted out of order: {id:?} after {:?}", self.acked);
                    self.acked = Some(id);
                }
                LogOutput::Failed(e) => panic!("log failed without faults: {e}"),
            }
        }
    }

    /// Completes the oldest request; false once the power is cut.
    fn step(&mut self) -> bool {
        if self.crashed {
            return false;
        }
        let Some((id, req)) = self.queue.pop_front() else { return true };
        if self.budget == 0 {
            self.crashed = true;
            return false;
        }
        self.budget -= 1;
        let r = self.disk.execute(req);
        self.log.handle_io(id, r);
        self.drain();
        true
    }

    fn run_until_idle(&mut self) -> bool {
        while !self.queue.is_empty() {
            if !self.step() {
                return false;
            }
        }
        true
    }
}

struct Run {
    rng: Rng,
    cfg: LogConfig,
    /// The state after each record written since the last recovery; `[0]` is the recovered one.
    history: Vec<State>,
    /// For each persist written: its id and the history index it produced.
    ids: Vec<(PersistId, usize)>,
    next_id: u64,
    nonce: u64,
    crash_points: u64,
    /// Persists, syncs, segments deleted (summed over every open), to show what ran.
    totals: [u64; 3],
}

impl Run {
    fn entry(&mut self, index: Index, term: Term) -> Entry {
        self.nonce += 1;
        let len = self.rng.below(60) as usize;
        let mut data = self.nonce.to_le_bytes().to_vec();
        data.extend(std::iter::repeat_n(index.0 as u8, len));
        Entry { term, index, kind: EntryKind::Normal, data: Bytes::from(data) }
    }

    /// A random persist or compaction in a shape Raft produces, applied to the model.
    fn next_op(&mut self, log: &mut RaftLog) {
        let cur = self.history.last().cloned().unwrap_or_default();
        let mut next = cur.clone();
        let mut term = cur.hard_state.term.max(Term(1));
        let last = cur.last();
        let roll = self.rng.below(100);
        if roll < 12 && last > cur.base.index {
            // Compaction (not acknowledged).
            let index = Index(cur.base.index.0 + 1 + self.rng.below(last.0 - cur.base.index.0));
            let t = cur.entries.iter().find(|e| e.index == index).map(|e| e.term).unwrap_or(cur.base.term);
            let base = SnapshotMeta { index, term: t, ..SnapshotMeta::default() };
            next.entries.retain(|e| e.index > index);
            next.base = base.clone();
            log.compact(&base);
            self.history.push(next);
            return;
        }
        let mut snapshot = None;
        let mut entries = Vec::new();
        if roll < 17 {
            // A snapshot install, maybe followed by entries.
            term = term.next();
            let index = Index(last.0.max(cur.base.index.0) + self.rng.below(5).saturating_sub(2) + 1).max(cur.base.index.next());
            let meta = SnapshotMeta { index, term, ..SnapshotMeta::default() };
            next.entries.clear();
            next.base = meta.clone();
            snapshot = Some(Box::new(meta));
            for i in 0..self.rng.below(3) {
                entries.push(self.entry(Index(index.0 + 1 + i), term));
            }
        } else if roll < 32 {
            // A new leader: overwrite from somewhere after the base.
            term = term.next();
            let span = last.0 - cur.base.index.0;
            let first = cur.base.index.0 + 1 + self.rng.below(span + 1);
            for i in 0..1 + self.rng.below(4) {
                entries.push(self.entry(Index(first + i), term));
            }
            next.entries.retain(|e| e.index.0 < first);
        } else if roll < 40 {
            // Hard state only: a vote in a new term.
            term = term.next();
        } else {
            for i in 0..self.rng.below(5) {
                entries.push(self.entry(Index(last.0 + 1 + i), term));
            }
        }
        next.entries.extend(entries.iter().cloned());
        let vote = if self.rng.chance(0.5) { Some(NodeId(1 + self.rng.below(3))) } else { None };
        next.hard_state = HardState { term, vote, commit: Index(self.rng.below(next.last().0 + 1)) };
        let id = PersistId(self.next_id);
        self.next_id += 1;
        log.persist(&Persist { id, hard_state: next.hard_state, snapshot, entries });
        self.history.push(next);
        self.ids.push((id, self.history.len() - 1));
    }

    /// Runs ops and I/O until the power is cut; returns the disk as recovery finds it.
    fn until_crash(&mut self, mut d: Driver) -> SimDisk {
        while !d.crashed {
            match self.rng.below(10) {
                0..=3 => {
                    self.next_op(&mut d.log);
                    d.drain();
                }
                4..=8 => {
                    d.step();
                }
                _ => {
                    d.run_until_idle();
                }
            }
            if d.queue.is_empty() && !d.crashed && self.rng.chance(0.05) {
                d.budget = 0; // cut the power while idle too
                d.crashed = true;
            }
        }
        self.check_acked(&d);
        let st = d.log.stats();
        for (t, v) in self.totals.iter_mut().zip([st.persists, st.syncs, st.segments_deleted]) {
            *t += v;
        }
        self.crash_points += 1;
        let tear = self.rng.chance(0.5);
        let mut disk = d.disk;
        disk.crash(tear);
        disk
    }

    /// Drops the history before the last acknowledged persist: recovery may not go back there.
    fn check_acked(&mut self, d: &Driver) {
        if let Some(acked) = d.acked {
            let at = self.ids.iter().find(|(id, _)| *id == acked).map(|&(_, h)| h).expect("acked id was issued");
            self.history.drain(..at);
            self.ids.retain(|&(_, h)| h >= at);
            for (_, h) in &mut self.ids {
                *h -= at;
            }
        }
    }

    /// Opens after a crash (crashing again during recovery sometimes) and checks the state.
    fn recover(&mut self, mut disk: SimDisk, seed: u64) -> Driver {
        loop {
            let budget = if self.rng.chance(0.2) { self.rng.below(6) } else { u64::MAX };
            let mut d = Driver::open(&self.cfg, disk, budget);
            if !d.run_until_idle() || d.recovered.is_none() {
                self.crash_points += 1;
                disk = d.disk;
                let tear = self.rng.chance(0.5);
                disk.crash(tear);
                continue;
            }
            let r = match d.recovered.take() {
                Some(Ok(r)) => r,
                other => panic!("seed {seed}: recovery failed: {other:?}"),
            };
            let got = State::of(&r);
            let Some(j) = self.history.iter().position(|s| *s == got) else {
                panic!(
                    "seed {seed}: recovered state matches no prefix from the last acknowledged persist on\n got {got:?}\n first allowed {:?}\n last written {:?}",
                    self.history.first(),
                    self.history.last()
                );
            };
            assert_eq!(r.applied, got.base.index, "seed {seed}");
            let mut cfg = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
            cfg.seed = seed;
            if let Err(e) = Node::new(cfg, r) {
                panic!("seed {seed}: Node::new refused the recovered state: {e:?}");
            }
            self.history.truncate(j + 1);
            self.history.drain(..j);
            self.ids.clear();
            d.budget = self.rng.below(80);
            return d;
        }
    }
}

fn run_seed(seed: u64, crashes: u64) -> (u64, [u64; 3]) {
    let mut rng = Rng::new(seed);
    let cfg = LogConfig { segment_bytes: 200 + rng.below(1500) };
    let mut run = Run { rng, cfg, history: vec![State::default()], ids: Vec::new(), next_id: 1, nonce: 0, crash_points: 0, totals: [0; 3] };
    let mut d = Driver::open(&run.cfg, SimDisk::new(seed), u64::MAX);
    assert!(d.run_until_idle());
    assert!(matches!(d.recovered.take(), Some(Ok(_))));
    d.budget = run.rng.below(80);
    for _ in 0..crashes {
        let disk = run.until_crash(d);
        d = run.recover(disk, seed);
    }
    (run.crash_points, run.totals)
}

#[test]
fn acknowledged_persists_survive_every_crash_point() {
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_seed(one.parse().expect("STRATA_SEED is a number"), 20);
        return;
    }
    let target: u64 = std::env::var("STRATA_RAFTLOG_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let (mut points, mut seed, mut totals) = (0, 0, [0u64; 3]);
    while points < target {
        let (p, t) = run_seed(seed, 20);
        points += p;
        for (a, b) in totals.iter_mut().zip(t) {
            *a += b;
        }
        seed += 1;
    }
    eprintln!("crash points: {points} over {seed} seeds; persists {}, syncs {}, segments deleted {}", totals[0], totals[1], totals[2]);
    assert!(totals[1] < totals[0], "group commit: fewer syncs than persists");
    assert!(totals[2] > 0, "compaction deleted segments");
}

/// A log of a few segments on a disk, and the state after each record.
fn written_log() -> (LogConfig, SimDisk, Vec<State>) {
    let cfg = LogConfig { segment_bytes: 400 };
    let mut run = Run { rng: Rng::new(99), cfg: cfg.clone(), history: vec![State::default()], ids: Vec::new(), next_id: 1, nonce: 0, crash_points: 0, totals: [0; 3] };
    let mut d = Driver::open(&cfg, SimDisk::new(99), u64::MAX);
    assert!(d.run_until_idle());
    for _ in 0..30 {
        run.next_op(&mut d.log);
        d.drain();
        assert!(d.run_until_idle());
    }
    (cfg, d.disk, run.history)
}

#[test]
fn every_bit_flip_is_a_typed_error_or_a_torn_tail() {
    let (cfg, disk, history) = written_log();
    let files: Vec<(FileName, usize)> = disk.files();
    assert!(files.len() >= 3, "want several segments: {files:?}");
    let newest = files.last().map(|f| f.0).expect("files");
    let (mut errors, mut torn) = (0, 0);
    for &(file, len) in &files {
        for offset in 0..len {
            for bit in 0..8 {
                let mut d = disk.clone();
                assert!(d.flip_bit(file, offset, bit));
                let mut drv = Driver::open(&cfg, d, u64::MAX);
                assert!(drv.run_until_idle());
                match drv.recovered.take() {
                    Some(Err(LogError::Corruption { file: f, offset: o, .. })) => {
                        assert_eq!(f, file, "flip in {file} at {offset} bit {bit} blamed on {f}");
                        assert!(o <= offset as u64, "flip at {offset} reported at {o}");
                        errors += 1;
                    }
                    Some(Ok(r)) => {
                        // Only the newest segment's last frame may pass as a torn tail.
                        assert_eq!(file, newest, "flip in {file} at {offset} bit {bit} accepted");
                        let got = State::of(&r);
                        assert!(history.len() >= 2 && got == history[history.len() - 2], "flip at {offset} bit {bit}: {got:?}");
                        torn += 1;
                    }
                    other => panic!("flip in {file} at {offset} bit {bit}: {other:?}"),
                }
            }
        }
    }
    eprintln!("bit flips: {errors} corruption errors, {torn} torn tails");
    assert!(errors > 0 && torn > 0);
}
