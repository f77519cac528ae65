//! A transactional workload over the MVCC executor on the sim disk, and its serial reference.
//!
//! Clients run snapshot-isolation transactions through [`SimMvcc`] the way a real client does:
//! a start ts from the oracle, reads at it (resolving the locks they meet with
//! `check_txn_status` + `resolve_lock`), buffered writes, then a one-phase commit or prewrite →
//! commit ts → commit primary → commit secondaries; a conflict rolls back. Several clients have
//! commands in flight at once (so latches, group commits and block reads interleave), time moves,
//! clients are abandoned mid-transaction, GC runs below the oldest undecided transaction.
//!
//! [`Workload::settle`] decides every transaction from the store (its primary's record, after
//! the TTL has passed), resolves every lock, and checks snapshot isolation against the serial
//! reference: every read equals the reference at its start ts; committed writers of a key
//! never overlap (no lost update); acknowledged commits are committed and acknowledged aborts
//! are not; every key read now and at sampled commit timestamps equals the reference.
use std::collections::{BTreeMap, BTreeSet};
use strata_engine::mvcc::error::LockInfo;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::{CmdId, ExecError};
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest, TxnStatus};
use strata_engine::mvcc::{MvccError, Ts};
use strata_sim::mvcc::SimMvcc;
use strata_sim::rng::Rng;

type Key = Vec<u8>;
type Val = Vec<u8>;

/// Lock TTL of the workload's transactions.
pub const TTL_MS: u64 = 60;

/// One transaction's record.
#[derive(Clone, Debug, Default)]
pub struct TxnRec {
    /// Start ts (zero until drawn).
    pub start_ts: Ts,
    /// Commit ts the client drew (2PC) or was told (1PC).
    pub commit_ts: Option<Ts>,
    /// The writes (None: delete), primary first.
    pub writes: Vec<(Key, Option<Val>)>,
    /// Reads made at start ts.
    pub reads: Vec<(Key, Option<Val>)>,
    /// The client was told it committed.
    pub acked_commit: bool,
    /// The client was told it aborted (nothing of it may be visible).
    pub acked_abort: bool,
    /// Prewrite or 1PC was submitted (it may have left something).
    pub wrote: bool,
    /// Decided by `settle`: the commit ts, or None for rolled back / never written.
    pub outcome: Option<Option<Ts>>,
}

#[derive(Debug)]
enum Step {
    Begin,
    Read(usize),
    CheckStatus(usize, Box<LockInfo>),
    Resolve(usize, Command),
    Done,
    Prewrite,
    CommitTs,
    CommitPrimary,
    CommitSecondaries,
    OnePc,
    Rollback,
}

#[derive(Debug)]
struct Client {
    txn: usize,
    ops: Vec<(Key, Option<Option<Val>>)>, // (key, None = read, Some(w) = write)
    step: Step,
    pending: Option<CmdId>,
    one_pc: bool,
    buffered: BTreeMap<Key, Option<Val>>,
    wait_rounds: u32,
}

/// The workload and its history.
pub struct Workload {
    /// The generator.
    pub rng: Rng,
    /// Every transaction so far.
    pub txns: Vec<TxnRec>,
    clients: Vec<Client>,
    keys: u64,
    /// The largest timestamp any client was given.
    pub max_ts_seen: Ts,
    /// GC's safe point so far.
    pub safe_point: Ts,
    /// Transactions committed and aborted as acknowledged, and GC runs (for reports).
    pub counts: [u64; 3],
}

fn key(n: u64) -> Key {
    format!("key{n:02}").into_bytes()
}

impl Workload {
    /// A workload over `keys` keys.
    pub fn new(seed: u64, keys: u64) -> Workload {
        Workload { rng: Rng::new(seed), txns: Vec::new(), clients: Vec::new(), keys, max_ts_seen: Ts::ZERO, safe_point: Ts::ZERO, counts: [0; 3] }
    }

    fn value(&mut self, txn: usize, k: &[u8]) -> Option<Val> {
        if self.rng.chance(0.15) {
            return None;
        }
        let mut v = format!("t{txn}:{}", String::from_utf8_lossy(k)).into_bytes();
        if self.rng.chance(0.2) {
            v.resize(300, b'L'); // a long value: default CF
        }
        Some(v)
    }

    fn new_client(&mut self) {
        let txn = self.txns.len();
        self.txns.push(TxnRec::default());
        let mut ops = Vec::new();
        let mut written = BTreeSet::new();
        for _ in 0..1 + self.rng.below(4) {
            let k = key(self.rng.below(self.keys));
            if self.rng.chance(0.5) && written.insert(k.clone()) {
                let v = self.value(txn, &k);
                ops.push((k, Some(v)));
            } else {
                ops.push((k, None));
            }
        }
        let one_pc = self.rng.chance(0.3);
        self.clients.push(Client { txn, ops, step: Step::Begin, pending: None, one_pc, buffered: BTreeMap::new(), wait_rounds: 0 });
    }

    /// The smallest start ts of a transaction not yet decided (GC must stay below it).
    fn oldest_undecided(&self) -> Ts {
        let mut m = Ts::MAX;
        for t in &self.txns {
            if t.outcome.is_none() && !t.acked_commit && !t.acked_abort {
                m = m.min(if t.start_ts == Ts::ZERO { self.max_ts_seen.next() } else { t.start_ts });
            }
        }
        m.min(self.max_ts_seen.next())
    }

    /// Runs `rounds` rounds: clients submit their next commands together, the world runs,
    /// clients take their replies. Stops early when the power is cut.
    pub fn run(&mut self, w: &mut SimMvcc, rounds: u32, clients: usize) {
        for _ in 0..rounds {
            if w.crashed() {
                return;
            }
            while self.clients.len() < clients {
                self.new_client();
            }
            // Abandon a client now and then (its locks stay for others to resolve).
            if self.rng.chance(0.02) {
                let i = self.rng.below(self.clients.len() as u64) as usize;
                self.clients.remove(i);
            }
            if self.rng.chance(0.03) {
                let sp = self.oldest_undecided().prev();
                if sp > self.safe_point {
                    self.safe_point = sp;
                    self.counts[2] += 1;
                    w.submit(Command::Gc { from: Vec::new(), upper: None, safe_point: sp, max_keys: 1_000 });
                }
            }
            for i in 0..self.clients.len() {
                if self.clients[i].pending.is_none() && self.rng.chance(0.7) {
                    let cmd = self.next_command(i);
                    self.clients[i].pending = Some(w.submit(cmd));
                }
            }
            w.run();
            if w.crashed() {
                return;
            }
            let mut i = 0;
            while i < self.clients.len() {
                let Some(id) = self.clients[i].pending else {
                    i += 1;
                    continue;
                };
                let Some(r) = w.take_reply(id) else { panic!("no reply to {id:?}") };
                self.clients[i].pending = None;
                if self.handle(i, r) {
                    self.clients.remove(i);
                } else {
                    i += 1;
                }
            }
            w.advance(self.rng.below(8));
        }
    }

    fn next_command(&mut self, i: usize) -> Command {
        let c = &self.clients[i];
        let t = &self.txns[c.txn];
        match &c.step {
            Step::Begin | Step::CommitTs => Command::Timestamp,
            Step::Read(j) => Command::Get { key: c.ops[*j].0.clone(), read_ts: t.start_ts },
            Step::CheckStatus(_, info) => Command::CheckTxnStatus {
                primary: info.lock.primary.clone(),
                lock_ts: info.lock.start_ts,
                caller_start_ts: Some(t.start_ts),
                rollback_if_not_exist: true,
            },
            Step::Resolve(_, cmd) => cmd.clone(),
            Step::Done => Command::Timestamp,
            Step::Prewrite | Step::OnePc => {
                let mut req = PrewriteRequest::new(t.writes[0].0.clone(), t.start_ts, TTL_MS);
                for (k, v) in &t.writes {
                    req.mutations.push(match v {
                        Some(v) => Mutation::Put(k.clone(), v.clone()),
                        None => Mutation::Delete(k.clone()),
                    });
                }
                if matches!(c.step, Step::OnePc) {
                    Command::OnePc(req)
                } else {
                    Command::Prewrite(req)
                }
            }
            Step::CommitPrimary => Command::Commit { keys: vec![t.writes[0].0.clone()], start_ts: t.start_ts, commit_ts: t.commit_ts.unwrap_or(Ts::MAX) },
            Step::CommitSecondaries => Command::Commit {
                keys: t.writes[1..].iter().map(|(k, _)| k.clone()).collect(),
                start_ts: t.start_ts,
                commit_ts: t.commit_ts.unwrap_or(Ts::MAX),
            },
            Step::Rollback => Command::Rollback { keys: t.writes.iter().map(|(k, _)| k.clone()).collect(), start_ts: t.start_ts },
        }
    }

    /// Advances client `i` after a reply; true when its transaction is over.
    fn handle(&mut self, i: usize, r: Result<Response, ExecError>) -> bool {
        let txn = self.clients[i].txn;
        let step = std::mem::replace(&mut self.clients[i].step, Step::Begin);
        let next = match (step, r) {
            (Step::Begin, Ok(Response::Timestamp(ts))) => {
                self.saw(ts);
                self.txns[txn].start_ts = ts;
                self.after_op(i, 0)
            }
            (Step::Read(j), Ok(Response::Value(v))) => {
                let k = self.clients[i].ops[j].0.clone();
                self.txns[txn].reads.push((k, v));
                self.after_op(i, j + 1)
            }
            (Step::Read(j), Err(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => Step::CheckStatus(j, info),
            (Step::CheckStatus(j, info), Ok(Response::TxnStatus(status))) => match status.commit_ts() {
                // Resolve the lock we met, then read again.
                Some(outcome) => Step::Resolve(j, Command::ResolveLock { keys: vec![info.key.clone()], start_ts: info.lock.start_ts, commit_ts: outcome }),
                None if matches!(&status, TxnStatus::Locked { lock } if lock.min_commit_ts > self.txns[txn].start_ts) => Step::Read(j),
                None => {
                    self.clients[i].wait_rounds += 1;
                    Step::Read(j)
                }
            },
            (Step::Resolve(j, _), Ok(_)) => Step::Read(j),
            (Step::Prewrite, Ok(_)) => Step::CommitTs,
            (Step::CommitTs, Ok(Response::Timestamp(ts))) => {
                self.saw(ts);
                self.txns[txn].commit_ts = Some(ts);
                Step::CommitPrimary
            }
            (Step::CommitPrimary, Ok(_)) => {
                self.txns[txn].acked_commit = true;
                self.counts[0] += 1;
                if self.txns[txn].writes.len() == 1 {
                    return true;
                }
                Step::CommitSecondaries
            }
            (Step::CommitPrimary, Err(ExecError::Mvcc(MvccError::TxnLockNotFound { .. }))) => {
                // Rolled back by a resolver after the TTL.
                self.txns[txn].acked_abort = true;
                self.counts[1] += 1;
                return true;
            }
            // A reader pushed min_commit_ts above our commit ts: draw a new one.
            (Step::CommitPrimary, Err(ExecError::Mvcc(MvccError::CommitTsExpired { .. }))) => Step::CommitTs,
            (Step::CommitSecondaries, Ok(_)) => return true,
            (Step::OnePc, Ok(Response::Committed { commit_ts })) => {
                self.saw(commit_ts);
                self.txns[txn].commit_ts = Some(commit_ts);
                self.txns[txn].acked_commit = true;
                self.counts[0] += 1;
                return true;
            }
            (Step::OnePc, Err(e)) if retryable(&e) => {
                self.txns[txn].acked_abort = true;
                self.counts[1] += 1;
                return true;
            }
            (Step::Prewrite, Err(e)) if retryable(&e) => Step::Rollback,
            (Step::Rollback, Ok(_)) => {
                self.txns[txn].acked_abort = true;
                self.counts[1] += 1;
                return true;
            }
            (Step::Rollback, Err(ExecError::Mvcc(MvccError::Committed { .. }))) => panic!("rollback of txn {txn} found it committed"),
            (step, r) => panic!("txn {txn} at {step:?}: unexpected {r:?}"),
        };
        let done = matches!(next, Step::Done);
        self.clients[i].step = next;
        done
    }

    fn saw(&mut self, ts: Ts) {
        self.max_ts_seen = self.max_ts_seen.max(ts);
    }

    /// The step after op `j - 1`: the next read, or the commit path.
    fn after_op(&mut self, i: usize, mut j: usize) -> Step {
        let txn = self.clients[i].txn;
        while j < self.clients[i].ops.len() {
            let (k, w) = self.clients[i].ops[j].clone();
            match w {
                Some(v) => {
                    self.clients[i].buffered.insert(k.clone(), v.clone());
                    self.txns[txn].writes.push((k, v));
                    j += 1;
                }
                None if self.clients[i].buffered.contains_key(&k) => j += 1, // read-your-writes
                None => return Step::Read(j),
            }
        }
        if self.txns[txn].writes.is_empty() {
            return Step::Done; // read-only
        }
        self.txns[txn].wrote = true;
        if self.clients[i].one_pc {
            Step::OnePc
        } else {
            Step::Prewrite
        }
    }
}

fn retryable(e: &ExecError) -> bool {
    matches!(e, ExecError::Mvcc(m) if m.is_retryable())
}

impl Workload {
    /// Ends every running client (their transactions are abandoned), lets the TTLs pass,
    /// decides every transaction from the store and resolves its locks, then checks snapshot
    /// isolation (see the module docs). `complete_applied`: also check that every committed
    /// write was announced exactly once in `applied` (true when no crash lost notifications).
    /// Notifications the world produced are moved from `w.applied` to `applied` first.
    pub fn settle(&mut self, w: &mut SimMvcc, applied: &mut Vec<strata_engine::mvcc::exec::applied::Applied>, complete_applied: bool) {
        self.clients.clear();
        w.advance(TTL_MS * 4 + 1_000);
        for i in 0..self.txns.len() {
            let t = self.txns[i].clone();
            if t.outcome.is_some() {
                continue;
            }
            if !t.wrote {
                self.txns[i].outcome = Some(None);
                continue;
            }
            // A transaction whose client learned its fate is not asked again (GC may have removed
            // its records since); the others are decided by their primary.
            let outcome = if t.acked_commit {
                Some(t.commit_ts.expect("an acknowledged commit has its ts"))
            } else if t.acked_abort {
                None
            } else {
                let status = call(w, Command::CheckTxnStatus { primary: t.writes[0].0.clone(), lock_ts: t.start_ts, caller_start_ts: None, rollback_if_not_exist: true });
                let Response::TxnStatus(status) = status else { panic!("status of txn {i}: {status:?}") };
                let Some(outcome) = status.commit_ts() else { panic!("txn {i} still locked after its TTL: {status:?}") };
                outcome
            };
            let keys: Vec<Key> = t.writes.iter().map(|(k, _)| k.clone()).collect();
            call(w, Command::ResolveLock { keys, start_ts: t.start_ts, commit_ts: outcome });
            self.txns[i].outcome = Some(outcome);
            self.txns[i].commit_ts = outcome;
        }
        applied.append(&mut w.applied);
        self.check(w, applied, complete_applied);
    }

    fn check(&mut self, w: &mut SimMvcc, applied: &[strata_engine::mvcc::exec::applied::Applied], complete_applied: bool) {
        // The serial reference: committed writes by key and commit ts.
        let mut versions: BTreeMap<Key, BTreeMap<Ts, (Option<Val>, usize)>> = BTreeMap::new();
        for (i, t) in self.txns.iter().enumerate() {
            if let Some(Some(c)) = t.outcome {
                for (k, v) in &t.writes {
                    let prev = versions.entry(k.clone()).or_default().insert(c, (v.clone(), i));
                    assert!(prev.is_none(), "two commits of {k:?} at {c}");
                }
            }
        }
        let at = |k: &Key, ts: Ts| -> Option<Val> {
            versions.get(k).and_then(|m| m.range(..=ts).next_back()).and_then(|(_, (v, _))| v.clone())
        };
        for (i, t) in self.txns.iter().enumerate() {
            for (k, v) in &t.reads {
                assert_eq!(v, &at(k, t.start_ts), "txn {i} read {:?} at {}", String::from_utf8_lossy(k), t.start_ts);
            }
        }
        // First committer wins: committed writers of a key never overlap.
        for (k, m) in &versions {
            let mut prev: Option<(Ts, usize)> = None;
            for (c, (_, i)) in m {
                if let Some((pc, pi)) = prev {
                    assert!(self.txns[*i].start_ts > pc, "lost update on {k:?}: txn {pi} committed at {pc}, txn {i} started at {}", self.txns[*i].start_ts);
                }
                prev = Some((*c, *i));
            }
        }
        // The store now, and at sampled commit timestamps above the GC safe point.
        let now = w.timestamp().expect("timestamp");
        assert!(now > self.max_ts_seen, "timestamp {now} issued again (seen {})", self.max_ts_seen);
        self.saw(now);
        let mut stamps = vec![now];
        for t in &self.txns {
            if let Some(Some(c)) = t.outcome {
                if c > self.safe_point && self.rng.chance(0.2) {
                    stamps.push(c);
                }
            }
        }
        for ts in stamps {
            for n in 0..self.keys {
                let k = key(n);
                let got = call(w, Command::Get { key: k.clone(), read_ts: ts });
                assert_eq!(got, Response::Value(at(&k, ts)), "key {n} at {ts}");
            }
            let scan = call(w, Command::Scan { from: Vec::new(), upper: None, read_ts: ts, limit: usize::MAX });
            let want: Vec<(Key, Val)> = (0..self.keys).filter_map(|n| at(&key(n), ts).map(|v| (key(n), v))).collect();
            assert_eq!(scan, Response::Entries(want), "scan at {ts}");
        }
        // Applied notifications: each names a committed write; with no crash, each committed
        // write exactly once.
        let mut announced: BTreeMap<(Key, Ts), usize> = BTreeMap::new();
        for a in applied {
            for ch in &a.changes {
                let v = versions.get(&ch.key).and_then(|m| m.get(&a.commit_ts));
                assert_eq!(v.map(|(v, _)| v), Some(&ch.value), "applied {:?} at {} is no committed write", ch.key, a.commit_ts);
                *announced.entry((ch.key.clone(), a.commit_ts)).or_default() += 1;
            }
        }
        if complete_applied {
            for (k, m) in &versions {
                for c in m.keys() {
                    assert_eq!(announced.get(&(k.clone(), *c)), Some(&1), "write of {k:?} at {c} announced once");
                }
            }
        }
    }
}

/// Runs `cmd` to its reply; panics on an error or a cut.
pub fn call(w: &mut SimMvcc, cmd: Command) -> Response {
    let desc = format!("{cmd:?}");
    match w.call(cmd) {
        Some(Ok(r)) => r,
        other => panic!("{desc}: {other:?}"),
    }
}

/// Hands the executor every lock in the store (a `ScanLocks` over the whole key space, then
/// `seed_locks`), as the native `Db` does at open: from then on its commands answer lock probes
/// from its lock table. Tests seed on some seeds only, so both ways of probing run.
pub fn seed_locks(w: &mut SimMvcc) {
    match call(w, Command::ScanLocks { from: Vec::new(), upper: None, limit: usize::MAX }) {
        Response::Locks(locks) => w.exec.seed_locks(&locks),
        other => panic!("ScanLocks answered {other:?}"),
    }
}
