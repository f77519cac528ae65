//! Transactions: [`Txn`] (snapshot isolation, optimistic, buffered writes), the retry policy of
//! [`Db::transaction`](crate::Db::transaction), lock resolution, and [`TxnError`].
use crate::error::Error;
use crate::versioned::Db;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::time::Duration;
use strata_engine::mvcc::error::{EtcdError, LockInfo};
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::ExecError;
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest, TxnStatus};
use strata_engine::mvcc::{MvccError, Ts};

/// Why a versioned read, write or transaction failed. The database stays usable after every
/// variant; a failed transaction left nothing visible (its locks are rolled back, or are
/// resolved by later readers once their TTL has passed).
#[derive(Debug)]
#[non_exhaustive]
pub enum TxnError {
    /// Another transaction committed `key` after this one started (first committer wins).
    /// Retryable: run the transaction again from a new snapshot.
    WriteConflict {
        /// The key both wrote.
        key: Vec<u8>,
        /// When the other transaction committed (its commit timestamp).
        conflict_commit_ts: u64,
    },
    /// `key` is locked by a live transaction that did not finish within the wait budget.
    /// Retryable.
    Locked {
        /// The locked key.
        key: Vec<u8>,
        /// The start timestamp of the transaction holding it.
        lock_ts: u64,
    },
    /// The transaction's locks were rolled back by another client (its TTL had passed before
    /// it committed). Retryable.
    RolledBack,
    /// [`Db::transaction`](crate::Db::transaction) gave up after this many attempts; `last` is
    /// the final attempt's (retryable) error.
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: Box<TxnError>,
    },
    /// The transaction was already committed or rolled back.
    Finished,
    /// The database failed (closed, I/O error, invalid argument, corrupt data).
    Db(Error),
    /// The revision asked for is below the compaction mark: its history is gone (etcd's
    /// `ErrCompacted`).
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The compaction mark: reads at or above it work.
        compacted: u64,
    },
    /// A compaction above the current revision.
    FutureRevision {
        /// The revision asked for.
        requested: u64,
        /// The current revision.
        current: u64,
    },
    /// No lease with this id (never granted, revoked or expired).
    LeaseNotFound(u64),
    /// A lease id already in use.
    LeaseExists(u64),
    /// A keep-alive after the lease's deadline (it is being expired).
    LeaseExpired(u64),
    /// The request is malformed (a key written twice in a CAS branch, revision 0, ...).
    Invalid(String),
}

/// `Result` with [`TxnError`].
pub type TxnResult<T> = std::result::Result<T, TxnError>;

impl TxnError {
    /// True when running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TxnError::WriteConflict { .. } | TxnError::Locked { .. } | TxnError::RolledBack)
    }

    pub(crate) fn from_exec(e: ExecError) -> TxnError {
        match e {
            ExecError::Mvcc(MvccError::WriteConflict { key, conflict_commit_ts, .. }) => {
                TxnError::WriteConflict { key, conflict_commit_ts: conflict_commit_ts.0 }
            }
            ExecError::Mvcc(MvccError::KeyIsLocked(info)) => TxnError::Locked { key: info.key, lock_ts: info.lock.start_ts.0 },
            ExecError::Mvcc(MvccError::TxnLockNotFound { .. }) => TxnError::RolledBack,
            ExecError::Store(e) => TxnError::Db(Error::Store(e)),
            ExecError::Etcd(e) => match e {
                EtcdError::Mvcc(m) => TxnError::from_exec(ExecError::Mvcc(m)),
                EtcdError::Compacted { requested, compacted } => TxnError::Compacted { requested: requested.0, compacted: compacted.0 },
                EtcdError::FutureRevision { requested, current } => TxnError::FutureRevision { requested: requested.0, current: current.0 },
                EtcdError::LeaseNotFound(id) => TxnError::LeaseNotFound(id.0),
                EtcdError::LeaseExists(id) => TxnError::LeaseExists(id.0),
                EtcdError::LeaseExpired(id) => TxnError::LeaseExpired(id.0),
                other => TxnError::Invalid(other.to_string()),
            },
            other => TxnError::Db(Error::Store(strata_engine::lsm::error::Error::InvalidArgument(
                strata_engine::lsm::error::InvalidArgument::Other(other.to_string()),
            ))),
        }
    }
}

impl fmt::Display for TxnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnError::WriteConflict { key, conflict_commit_ts } => {
                write!(f, "write conflict on {:?}: committed by another transaction at {conflict_commit_ts}", String::from_utf8_lossy(key))
            }
            TxnError::Locked { key, lock_ts } => write!(f, "{:?} is locked by transaction {lock_ts}", String::from_utf8_lossy(key)),
            TxnError::RolledBack => f.write_str("the transaction was rolled back by another client (its lock TTL had passed)"),
            TxnError::RetriesExhausted { attempts, last } => write!(f, "gave up after {attempts} attempts: {last}"),
            TxnError::Finished => f.write_str("the transaction is already finished"),
            TxnError::Db(e) => e.fmt(f),
            TxnError::Compacted { requested, compacted } => {
                write!(f, "revision {requested} has been compacted (compaction mark {compacted})")
            }
            TxnError::FutureRevision { requested, current } => write!(f, "revision {requested} is above the current revision {current}"),
            TxnError::LeaseNotFound(id) => write!(f, "lease {id} not found"),
            TxnError::LeaseExists(id) => write!(f, "lease {id} already exists"),
            TxnError::LeaseExpired(id) => write!(f, "lease {id} has expired"),
            TxnError::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl std::error::Error for TxnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TxnError::Db(e) => Some(e),
            TxnError::RetriesExhausted { last, .. } => Some(last.as_ref()),
            _ => None,
        }
    }
}

impl From<Error> for TxnError {
    fn from(e: Error) -> Self {
        TxnError::Db(e)
    }
}

/// How [`Db::transaction`](crate::Db::transaction) and versioned writes retry, and how long
/// locks live.
#[derive(Clone, Debug)]
pub struct TxnOptions {
    /// Attempts of a transaction before [`TxnError::RetriesExhausted`].
    pub max_attempts: u32,
    /// First backoff; doubles per attempt up to `max_backoff`, each with up to 50% jitter.
    pub base_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Seed of the jitter (reproducible retry timing).
    pub seed: u64,
    /// Time to live of a transaction's locks, from its start: a lock older than this may be
    /// rolled back by any reader or writer that meets it.
    pub lock_ttl: Duration,
    /// Commit transactions with Percolator's two phases (prewrite every key, then commit the
    /// primary — the commit point — then the rest: three or four writes) instead of one
    /// atomic batch. Off by default: every key of an embedded database is local, so one phase
    /// gives the same snapshot isolation with one write (and one sync). Two phases are what a
    /// transaction spanning stores needs; the option keeps that path exercised.
    pub two_phase: bool,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions { max_attempts: 100, base_backoff: Duration::from_micros(200), max_backoff: Duration::from_millis(50), seed: 0x5EED, lock_ttl: Duration::from_secs(5), two_phase: false }
    }
}

impl TxnOptions {
    /// The pause before attempt `attempt + 1`: exponential, capped, with seeded jitter.
    pub(crate) fn backoff(&self, attempt: u32, salt: u64) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
        // splitmix64 of (seed, salt, attempt): reproducible, different per transaction.
        let mut z = self.seed ^ salt.rotate_left(17) ^ u64::from(attempt);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let nanos = exp.as_nanos() as u64;
        Duration::from_nanos(nanos / 2 + z % (nanos / 2 + 1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Prewritten,
    Done,
}

/// A snapshot-isolation transaction: reads see the database as of its start (plus its own
/// writes); writes are buffered and applied atomically by [`Txn::commit`], which fails with
/// [`TxnError::WriteConflict`] if another transaction committed one of the keys since.
/// Dropping an uncommitted `Txn` rolls it back.
pub struct Txn {
    db: Db,
    start_ts: Ts,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    state: State,
}

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Txn").field("start_ts", &self.start_ts.0).field("writes", &self.writes.len()).finish_non_exhaustive()
    }
}

impl Txn {
    pub(crate) fn new(db: Db, start_ts: Ts) -> Txn {
        Txn { db, start_ts, writes: BTreeMap::new(), state: State::Open }
    }

    /// The start timestamp (the snapshot's revision).
    pub fn start_ts(&self) -> u64 {
        self.start_ts.0
    }

    /// The value of `key` as of the start, or as this transaction wrote it.
    pub fn get(&self, key: impl AsRef<[u8]>) -> TxnResult<Option<Vec<u8>>> {
        let key = key.as_ref();
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.db.check_key(key)?;
        self.db.read_at(key, self.start_ts)
    }

    /// Sets `key` to `value` (buffered until commit).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> TxnResult<()> {
        self.check_open()?;
        self.db.check_key(key.as_ref())?;
        self.writes.insert(key.as_ref().to_vec(), Some(value.as_ref().to_vec()));
        Ok(())
    }

    /// Deletes `key` (buffered until commit).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> TxnResult<()> {
        self.check_open()?;
        self.db.check_key(key.as_ref())?;
        self.writes.insert(key.as_ref().to_vec(), None);
        Ok(())
    }

    /// Keys in `[from, to)` (`to = None`: to the end) with their values, as of the start plus
    /// this transaction's writes, ascending.
    pub fn range(&self, from: impl AsRef<[u8]>, to: Option<&[u8]>) -> TxnResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let from = from.as_ref();
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = self.db.scan_at(from, to, self.start_ts)?.into_iter().collect();
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in self.writes.range::<[u8], _>((Bound::Included(from), upper)) {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok(out.into_iter().collect())
    }

    /// Commits: all writes become visible at one commit timestamp, or none does. By default
    /// in one phase ([`Txn::commit_one_phase`]); with [`TxnOptions::two_phase`] by
    /// Percolator's two phases. A conflict fails with a retryable error and leaves nothing.
    pub fn commit(&mut self) -> TxnResult<()> {
        self.check_open()?;
        if self.writes.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        if self.db.txn_options().two_phase {
            self.commit_two_phase()?;
        } else {
            self.commit_one_phase()?;
        }
        let mut committed = strata_engine::lsm::batch::Batch::new();
        if self.db.publishes_committed() {
            for (k, v) in &self.writes {
                match v {
                    Some(v) => committed.put(k, v),
                    None => committed.delete(k),
                };
            }
            self.db.publish_committed(&committed);
        }
        Ok(())
    }

    /// One phase: one `OnePc` command checks every key — no lock, no commit after the start
    /// ts (else `WriteConflict` naming the key and that commit ts) — draws the commit ts under
    /// the keys' latches and writes every record in one batch (one write, one sync). A lock
    /// in the way is resolved (or waited out a few times, then `Locked`).
    fn commit_one_phase(&mut self) -> TxnResult<()> {
        let ttl = self.db.ttl_ms();
        let mut attempt = 0;
        loop {
            // No primary: one phase writes no lock for one to point at.
            let mut req = PrewriteRequest::new(Vec::new(), self.start_ts, ttl);
            req.mutations = self.mutations();
            match self.db.exec(Command::OnePc(req)) {
                Ok(_) => {
                    self.state = State::Done;
                    return Ok(());
                }
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => {
                    if !resolve_lock(&self.db, &info, None)? {
                        let why = TxnError::Locked { key: info.key.clone(), lock_ts: info.lock.start_ts.0 };
                        // A live lock: its transaction is committing; back off briefly, and
                        // let the caller's retry take over after a few tries.
                        if attempt >= 8 {
                            self.state = State::Done;
                            return Err(why);
                        }
                        self.db.pause(attempt, why)?;
                    }
                }
                Err(e) => {
                    self.state = State::Done;
                    return Err(e.into_txn());
                }
            }
            attempt += 1;
        }
    }

    /// Two phases: prewrites the primary (the first key), then the others, draws a commit
    /// timestamp and commits the primary — the commit point — then the others. A conflict
    /// rolls back what was prewritten.
    fn commit_two_phase(&mut self) -> TxnResult<()> {
        self.prewrite_all()?;
        let commit_ts = self.commit_primary()?;
        let keys: Vec<Vec<u8>> = self.writes.keys().skip(1).cloned().collect();
        if !keys.is_empty() {
            // Committed at the primary: a failure here leaves locks that readers resolve from
            // the primary.
            let _ = self.db.exec(Command::Commit { keys, start_ts: self.start_ts, commit_ts });
        }
        Ok(())
    }

    fn mutations(&self) -> Vec<Mutation> {
        self.writes
            .iter()
            .map(|(k, v)| match v {
                Some(v) => Mutation::Put(k.clone(), v.clone()),
                None => Mutation::Delete(k.clone()),
            })
            .collect()
    }

    /// Test hook: prewrites every key, then forgets the transaction as a crashed client would
    /// (its locks stay until a reader or writer resolves them after the TTL).
    #[doc(hidden)]
    pub fn abandon_after_prewrite(mut self) -> TxnResult<()> {
        self.check_open()?;
        let r = self.prewrite_all();
        self.state = State::Done;
        r
    }

    /// Test hook: commits the primary only, then forgets the transaction (the secondaries'
    /// locks are resolved as committed by whoever meets them).
    #[doc(hidden)]
    pub fn abandon_after_primary_commit(mut self) -> TxnResult<()> {
        self.check_open()?;
        self.prewrite_all()?;
        let r = self.commit_primary().map(|_| ());
        self.state = State::Done;
        r
    }

    fn prewrite_all(&mut self) -> TxnResult<()> {
        let muts = self.mutations();
        let primary = muts[0].key().to_vec();
        let ttl = self.db.ttl_ms();
        self.state = State::Prewritten;
        let (first, rest) = muts.split_at(1);
        for part in [first, rest] {
            if part.is_empty() {
                continue;
            }
            let mut req = PrewriteRequest::new(primary.clone(), self.start_ts, ttl);
            req.mutations = part.to_vec();
            req.txn_size = muts.len() as u64;
            if let Err(e) = self.db.prewrite(req) {
                self.rollback_quietly();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Commits the primary at a fresh timestamp (the commit point); returns the commit ts.
    fn commit_primary(&mut self) -> TxnResult<Ts> {
        let primary = self.writes.keys().next().cloned().unwrap_or_default();
        loop {
            let commit_ts = self.db.timestamp()?;
            match self.db.exec(Command::Commit { keys: vec![primary.clone()], start_ts: self.start_ts, commit_ts }) {
                Ok(_) => {
                    self.state = State::Done;
                    return Ok(commit_ts);
                }
                // A reader pushed the lock's min_commit_ts past ours: draw a later one.
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::CommitTsExpired { .. }))) => continue,
                Err(e) => {
                    let e = e.into_txn();
                    self.rollback_quietly();
                    return Err(e);
                }
            }
        }
    }

    /// Rolls back: nothing of the transaction becomes visible.
    pub fn rollback(mut self) -> TxnResult<()> {
        self.rollback_inner()
    }

    fn rollback_inner(&mut self) -> TxnResult<()> {
        let prewritten = self.state == State::Prewritten;
        self.state = State::Done;
        if prewritten {
            let keys: Vec<Vec<u8>> = self.writes.keys().cloned().collect();
            self.db.exec(Command::Rollback { keys, start_ts: self.start_ts }).map_err(TxnErrorOrExec::into_txn)?;
        }
        Ok(())
    }

    fn rollback_quietly(&mut self) {
        let _ = self.rollback_inner();
    }

    fn check_open(&self) -> TxnResult<()> {
        if self.state == State::Open {
            Ok(())
        } else {
            Err(TxnError::Finished)
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if self.state == State::Prewritten {
            self.rollback_quietly();
        }
        self.db.maint().release_snapshot(self.start_ts);
    }
}

/// An executor answer's failure: the database's, or the command's.
#[derive(Debug)]
pub(crate) enum TxnErrorOrExec {
    Db(Error),
    Exec(ExecError),
}

impl TxnErrorOrExec {
    pub(crate) fn into_txn(self) -> TxnError {
        match self {
            TxnErrorOrExec::Db(e) => TxnError::Db(e),
            TxnErrorOrExec::Exec(e) => TxnError::from_exec(e),
        }
    }
}

/// Resolves the lock `info` met by a reader or writer at `caller_ts`: decides its transaction
/// from its primary (rolling it back if its TTL has passed; else pushing its commit above the
/// caller, which lets a reader pass at once) and commits or rolls back the lock. Returns false
/// when the lock's owner is alive and the caller must wait (a writer).
pub(crate) fn resolve_lock(db: &Db, info: &LockInfo, caller_ts: Option<Ts>) -> TxnResult<bool> {
    let status = db
        .exec(Command::CheckTxnStatus {
            primary: info.lock.primary.clone(),
            lock_ts: info.lock.start_ts,
            caller_start_ts: caller_ts,
            rollback_if_not_exist: true,
        })
        .map_err(TxnErrorOrExec::into_txn)?;
    let Response::TxnStatus(status) = status else { return Ok(false) };
    match status.commit_ts() {
        Some(outcome) => {
            db.exec(Command::ResolveLock { keys: vec![info.key.clone()], start_ts: info.lock.start_ts, commit_ts: outcome })
                .map_err(TxnErrorOrExec::into_txn)?;
            Ok(true)
        }
        None => Ok(matches!((status, caller_ts), (TxnStatus::Locked { lock }, Some(c)) if lock.min_commit_ts > c)),
    }
}
