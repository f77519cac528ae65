//! Model test of the watch hub: random etcd-style writes (puts, deletes, multi-key
//! transactions, Percolator two-phase commits, lease expiries), commits applied out of
//! commit-ts order under per-key latches, a resolved ts trailing the in-flight commits,
//! compactions, and watchers with tiny buffers drained at random paces, started at random
//! past revisions, some cancelled.
//!
//! Checked against a serial log of every committed change: each watcher receives exactly the
//! watched changes from its start revision, in revision order, one response per revision with
//! all of that revision's watched keys, each with the right value, version, create revision
//! and previous value — or a prefix of that followed by a final `Compacted` whose requested
//! revision is at or below the compaction mark. `WATCH_MODEL_SEEDS=N` runs more seeds.
use std::collections::BTreeMap;
use strata_engine::lsm::batch::Batch;
use strata_engine::mvcc::cas::{self, TxnOp, TxnRequest};
use strata_engine::mvcc::exec::applied;
use strata_engine::mvcc::lease::{self, Expiry, LeaseChange, LeaseQueue};
use strata_engine::mvcc::reader::MemStore;
use strata_engine::mvcc::revision;
use strata_engine::mvcc::txn::{self, Mutation, PrewriteRequest};
use strata_engine::mvcc::watch::{
    EventKind, WatchConfig, WatchHub, WatchId, WatchRequest, WatchResponse, WatchTarget,
};
use strata_engine::mvcc::{LeaseId, Ts};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const KEYS: [&str; 6] = ["a", "b", "p/a", "p/b", "p/c", "q"];

/// The reference state of a key: value, version, create revision, lease.
type KeyState = Option<(Vec<u8>, u64, Ts, Option<LeaseId>)>;

/// One watched change as the reference expects it.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Change {
    rev: Ts,
    key: Vec<u8>,
    after: KeyState,
    prev: KeyState,
}

struct Model {
    rng: Rng,
    store: MemStore,
    hub: WatchHub,
    leases: LeaseQueue,
    /// Every committed change, by revision then key.
    log: BTreeMap<(Ts, Vec<u8>), Change>,
    /// Reference state at the newest revision.
    state: BTreeMap<Vec<u8>, KeyState>,
    /// Batches committed but not yet applied: (commit ts, batch, latched keys).
    in_flight: Vec<(Ts, Batch, Vec<Vec<u8>>)>,
    next_ts: u64,
    now_ms: u64,
    mark: Ts,
    watchers: Vec<(WatchId, WatchTarget, Ts, Vec<WatchResponse>, bool)>,
}

impl Model {
    fn new(seed: u64) -> Model {
        let mut rng = Rng(seed);
        let buffer = 1 + rng.below(3) as usize;
        Model {
            rng,
            store: MemStore::new(),
            hub: WatchHub::new(WatchConfig { max_buffered_events: buffer }, Ts(1)),
            leases: LeaseQueue::new(),
            log: BTreeMap::new(),
            state: BTreeMap::new(),
            in_flight: Vec::new(),
            next_ts: 10,
            now_ms: 0,
            mark: Ts::ZERO,
            watchers: Vec::new(),
        }
    }

    fn ts(&mut self) -> Ts {
        self.next_ts += 1;
        Ts(self.next_ts)
    }

    fn latched(&self, key: &[u8]) -> bool {
        self.in_flight.iter().any(|(_, _, keys)| keys.iter().any(|k| k == key))
    }

    fn free_key(&mut self) -> Option<Vec<u8>> {
        let key = KEYS[self.rng.below(KEYS.len() as u64) as usize].as_bytes().to_vec();
        (!self.latched(&key)).then_some(key)
    }

    /// The newest applied revision: reads happen there.
    fn read_ts(&self) -> Ts {
        Ts(self.next_ts)
    }

    /// Records the changes of a batch committed at `ts` (reading the prepared store state).
    fn record(&mut self, ts: Ts, changes: Vec<(Vec<u8>, KeyState)>, keys: Vec<Vec<u8>>, b: Batch) {
        for (key, after) in changes {
            let prev = self.state.get(&key).cloned().flatten();
            self.log.insert((ts, key.clone()), Change { rev: ts, key: key.clone(), after: after.clone(), prev });
            self.state.insert(key, after);
        }
        self.in_flight.push((ts, b, keys));
    }

    fn put(&mut self, key: Vec<u8>, lease: Option<LeaseId>) {
        let value = format!("v{}", self.rng.below(100)).into_bytes();
        let (read, ts) = (self.read_ts(), self.ts());
        let (_, b) = cas::put(&self.store, &key, &value, lease, read, ts).expect("put");
        let after = self.next_state(&key, value, ts, lease);
        // The executor latches the lease too: a revoke must not pass a put attaching to it.
        let mut latches = vec![key.clone()];
        latches.extend(lease.map(lease::lease_key));
        self.record(ts, vec![(key, after)], latches, b);
    }

    fn next_state(&self, key: &[u8], value: Vec<u8>, ts: Ts, lease: Option<LeaseId>) -> KeyState {
        match self.state.get(key).cloned().flatten() {
            Some((_, v, c, _)) => Some((value, v + 1, c, lease)),
            None => Some((value, 1, ts, lease)),
        }
    }

    fn step(&mut self) {
        match self.rng.below(16) {
            // (12 falls through to draining two times in three)
            0..=3 => {
                if let Some(key) = self.free_key() {
                    let lease = self.leases.due(u64::MAX).first().copied().filter(|_| self.rng.below(3) == 0);
                    self.put(key, lease);
                }
            }
            4 => {
                if let Some(key) = self.free_key() {
                    let (read, ts) = (self.read_ts(), self.ts());
                    let req = TxnRequest { success: vec![TxnOp::Delete { key: key.clone() }], ..Default::default() };
                    let (_, b) = cas::txn(&self.store, &req, read, ts).expect("delete");
                    let existed = self.state.get(&key).cloned().flatten().is_some();
                    let changes = if existed { vec![(key.clone(), None)] } else { vec![] };
                    self.record(ts, changes, vec![key], b);
                }
            }
            5 => {
                // A multi-key transaction on free keys: puts and a delete at one revision.
                let keys: Vec<Vec<u8>> = KEYS.iter().map(|k| k.as_bytes().to_vec()).filter(|k| !self.latched(k) && self.rng.below(2) == 0).collect();
                if keys.is_empty() {
                    return;
                }
                let (read, ts) = (self.read_ts(), self.ts());
                let mut ops = Vec::new();
                let mut changes = Vec::new();
                for (i, key) in keys.iter().enumerate() {
                    if i == 0 {
                        ops.push(TxnOp::Delete { key: key.clone() });
                        if self.state.get(key).cloned().flatten().is_some() {
                            changes.push((key.clone(), None));
                        }
                    } else {
                        let value = format!("t{ts}").into_bytes();
                        ops.push(TxnOp::Put { key: key.clone(), value: value.clone(), lease: None });
                        changes.push((key.clone(), self.next_state(key, value, ts, None)));
                    }
                }
                let (_, b) = cas::txn(&self.store, &TxnRequest { success: ops, ..Default::default() }, read, ts).expect("txn");
                self.record(ts, changes, keys, b);
            }
            6 => {
                // A Percolator transaction: prewrite and commit (one batch each), applied now.
                let Some(key) = self.free_key() else { return };
                if self.in_flight.iter().any(|(_, _, k)| k.contains(&key)) {
                    return;
                }
                let start = self.ts();
                let value = format!("p{start}").into_bytes();
                let req = PrewriteRequest::new(key.clone(), start, 1_000).with(Mutation::Put(key.clone(), value.clone()));
                let pw = txn::prewrite(&self.store, &req).expect("prewrite");
                self.store.apply(&pw);
                let commit = self.ts();
                let b = txn::commit(&self.store, std::slice::from_ref(&key), start, commit).expect("commit");
                let after = self.next_state(&key, value, commit, None);
                self.record(commit, vec![(key.clone(), after)], vec![key], b);
            }
            7 => {
                let id = self.leases.next_id();
                let (l, b) = lease::grant(&self.store, id, 50 + self.rng.below(100), self.now_ms).expect("grant");
                self.store.apply(&b);
                self.leases.apply(&LeaseChange::Upsert(l));
            }
            8 => {
                self.now_ms += self.rng.below(80);
                for id in self.leases.due(self.now_ms) {
                    let keys = lease::keys(&self.store, id).expect("keys");
                    if self.latched(&lease::lease_key(id)) || keys.iter().any(|k| self.latched(k)) {
                        continue;
                    }
                    let ts = self.ts();
                    let (out, b) = lease::expire(&self.store, id, self.now_ms, ts).expect("expire");
                    let Expiry::Expired(rev) = out else { panic!("due lease not expired: {out:?}") };
                    self.leases.apply(&rev.change);
                    let changes = rev.deleted.iter().map(|kv| (kv.key.clone(), None)).collect();
                    self.record(ts, changes, keys, b);
                }
            }
            9 | 10 => {
                // Apply one in-flight batch (any of them: out of commit-ts order).
                if !self.in_flight.is_empty() {
                    let i = self.rng.below(self.in_flight.len() as u64) as usize;
                    self.apply(i);
                }
            }
            11 => self.resolve(),
            12 if self.rng.below(3) == 0 => {
                // Compact somewhere below the resolved ts (first applying what is in flight
                // and resolving: compaction must not pass a transaction still running).
                while !self.in_flight.is_empty() {
                    let i = self.rng.below(self.in_flight.len() as u64) as usize;
                    self.apply(i);
                }
                self.resolve();
                let resolved = self.hub.resolved();
                if resolved.0 > self.mark.0 + 2 {
                    let rev = Ts(self.mark.0 + 1 + self.rng.below(resolved.0 - self.mark.0 - 1));
                    let b = revision::compact(&self.store, rev, resolved.prev()).expect("compact");
                    self.store.apply(&b);
                    self.mark = rev;
                    let mut from = Vec::new();
                    loop {
                        let out = revision::compaction_step(&self.store, &from, 2).expect("gc");
                        self.store.apply(&out.batch);
                        match out.resume_from {
                            Some(f) => from = f,
                            None => break,
                        }
                    }
                }
            }
            13 => {
                let target = match self.rng.below(4) {
                    0 => WatchTarget::Key(KEYS[self.rng.below(6) as usize].as_bytes().to_vec()),
                    1 => WatchTarget::Prefix(b"p/".to_vec()),
                    2 => WatchTarget::Prefix(Vec::new()),
                    _ => WatchTarget::Range(b"b".to_vec(), Some(b"p/c".to_vec())),
                };
                let resolved = self.hub.resolved();
                let start = Ts(self.mark.0 + 1 + self.rng.below(resolved.0.saturating_sub(self.mark.0) + 3));
                let req = WatchRequest { target: target.clone(), start_revision: Some(start) };
                let id = self.hub.watch(&self.store, req).expect("watch above the mark");
                self.watchers.push((id, target, start, Vec::new(), false));
            }
            _ => {
                if self.rng.below(2) == 0 {
                    self.sync();
                }
                self.drain_some();
            }
        }
    }

    fn apply(&mut self, i: usize) {
        let (_, b, _) = self.in_flight.remove(i);
        self.store.apply(&b);
        for a in applied::extract(&self.store, &b).expect("extract") {
            self.hub.handle_applied(&a).expect("at or above resolved");
        }
    }

    fn resolve(&mut self) {
        let bound = self.in_flight.iter().map(|(ts, _, _)| *ts).min().unwrap_or(Ts(self.next_ts + 1));
        self.hub.handle_resolved(&self.store, bound).expect("resolve");
    }

    fn sync(&mut self) {
        if self.hub.needs_sync() {
            self.hub.sync(&self.store).expect("sync");
        }
    }

    fn drain_some(&mut self) {
        let n = self.rng.below(4);
        for w in self.watchers.iter_mut().filter(|w| !w.4) {
            for _ in 0..n {
                match self.hub.poll(w.0) {
                    Some(r) => w.3.push(r),
                    None => break,
                }
            }
        }
        if self.rng.below(30) == 0 && !self.watchers.is_empty() {
            let i = self.rng.below(self.watchers.len() as u64) as usize;
            let w = &mut self.watchers[i];
            self.hub.cancel(w.0);
            w.4 = true; // cancelled: what it got must still be a correct prefix
        }
    }

    fn finish(&mut self) {
        while !self.in_flight.is_empty() {
            self.apply(0);
        }
        self.resolve();
        for _ in 0..10_000 {
            self.sync();
            for w in self.watchers.iter_mut().filter(|w| !w.4) {
                while let Some(r) = self.hub.poll(w.0) {
                    w.3.push(r);
                }
            }
            if !self.hub.needs_sync() {
                break;
            }
        }
        assert!(!self.hub.needs_sync(), "catch-up does not converge");
        self.store.check_invariants();
        lease::check_invariants(&self.store);
    }

    fn check(&self, seed: u64) {
        let resolved = self.hub.resolved();
        for (id, target, start, got, cancelled) in &self.watchers {
            let mut expected: BTreeMap<Ts, Vec<&Change>> = BTreeMap::new();
            for c in self.log.values().filter(|c| c.rev >= *start && c.rev < resolved && target.matches(&c.key)) {
                expected.entry(c.rev).or_default().push(c);
            }
            let mut expected = expected.into_iter();
            for (i, resp) in got.iter().enumerate() {
                match resp {
                    WatchResponse::Events { revision, events } => {
                        let (rev, changes) = expected.next().unwrap_or_else(|| panic!("seed {seed} watcher {id:?}: extra response {resp:?}"));
                        assert_eq!(*revision, rev, "seed {seed} watcher {id:?} response {i}");
                        assert_eq!(events.len(), changes.len(), "seed {seed} watcher {id:?} at {rev}");
                        for (e, c) in events.iter().zip(changes) {
                            assert_eq!(e.kv.key, c.key, "seed {seed}");
                            let got_after = (e.kind == EventKind::Put).then(|| (e.kv.value.clone(), e.kv.version, e.kv.create_revision, e.kv.lease));
                            assert_eq!(got_after, c.after, "seed {seed} watcher {id:?} at {rev} key {:?}", c.key);
                            let got_prev = e.prev.as_ref().map(|p| (p.value.clone(), p.version, p.create_revision, p.lease));
                            assert_eq!(got_prev, c.prev, "seed {seed} watcher {id:?} prev at {rev}");
                            assert_eq!(e.kv.mod_revision, rev);
                        }
                    }
                    WatchResponse::Compacted { requested, compacted } => {
                        assert_eq!(i + 1, got.len(), "seed {seed}: Compacted is final");
                        assert!(*requested <= *compacted && *compacted <= self.mark, "seed {seed}: {resp:?}");
                        // Nothing below `requested` was skipped.
                        if let Some((rev, _)) = expected.next() {
                            assert!(rev >= *requested, "seed {seed} watcher {id:?}: {rev} skipped before {resp:?}");
                        }
                        return;
                    }
                }
            }
            if !cancelled {
                assert!(expected.next().is_none(), "seed {seed} watcher {id:?}: missed events");
            }
        }
    }
}

/// Runs one seed: (responses checked, watchers ended by compaction, replayed revisions).
fn run(seed: u64, steps: usize) -> (usize, usize) {
    let mut m = Model::new(seed);
    for _ in 0..steps {
        m.step();
    }
    m.finish();
    m.check(seed);
    let responses = m.watchers.iter().map(|w| w.3.len()).sum();
    let compacted = m
        .watchers
        .iter()
        .filter(|w| matches!(w.3.last(), Some(WatchResponse::Compacted { .. })))
        .count();
    (responses, compacted)
}

#[test]
fn every_change_is_delivered_once_in_order_with_its_previous_value() {
    let seeds: u64 = std::env::var("WATCH_MODEL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let (mut responses, mut compacted) = (0, 0);
    for seed in 0..seeds {
        let (r, c) = run(seed, 300);
        responses += r;
        compacted += c;
    }
    println!("{seeds} seeds: {responses} responses checked, {compacted} watchers ended by compaction");
    assert!(responses > seeds as usize * 20, "too few responses checked: {responses}");
    assert!(compacted > 0, "no watcher fell behind a compaction");
}
