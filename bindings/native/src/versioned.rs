//! [`Db`]: the versioned database — every write a transaction, every read a snapshot.
use crate::db::Db as RawDb;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::txn::{resolve_lock, Txn, TxnError, TxnErrorOrExec, TxnOptions, TxnResult};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use crate::pubsub::{Message, MessagingError, PublishOutcome, RequestError, Subscription};
use crate::watch::Watch;
use crate::maint::{Maint, MaintHandle};
use strata_engine::mvcc::exec::etcd::{EtcdCommand, EtcdResponse};
use strata_engine::mvcc::lease::{LeaseChange, LeaseQueue};
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::key::ValueKind;
use strata_engine::lsm::store::Stats;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::{ExecConfig, ExecError};
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest};
use strata_engine::mvcc::{MvccError, Ts};

/// An open database whose data is versioned (MVCC): each write is a transaction committed at a
/// timestamp, each read sees one consistent snapshot, and [`Db::transaction`] groups reads and
/// writes into one snapshot-isolation transaction.
///
/// `Db` is a cheap handle (`Clone`, `Send`, `Sync`) over the same machinery as the unversioned
/// [`raw::Db`](crate::raw::Db) (which [`Db::raw`] exposes). User keys are stored encoded under
/// the MVCC key families (`docs/format.md`, "Key namespaces"); do not mix raw writes into a
/// versioned database.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let db = strata::Db::open(dir.path())?;
/// db.put("alice", "100")?;
/// db.put("bob", "0")?;
/// db.transaction(|tx| {
///     let a: u64 = String::from_utf8_lossy(&tx.get("alice")?.unwrap_or_default()).parse().unwrap_or(0);
///     let b: u64 = String::from_utf8_lossy(&tx.get("bob")?.unwrap_or_default()).parse().unwrap_or(0);
///     tx.put("alice", (a - 10).to_string())?;
///     tx.put("bob", (b + 10).to_string())?;
///     Ok(())
/// })?;
/// assert_eq!(db.get("bob")?, Some(b"10".to_vec()));
/// # Ok::<(), strata::TxnError>(())
/// ```
#[derive(Clone)]
pub struct Db {
    raw: RawDb,
    options: Arc<TxnOptions>,
    /// Salts the retry jitter per attempt.
    salt: Arc<AtomicU64>,
    /// The maintenance thread (leases, GC, lock resolution): `crate::maint`.
    maint: Arc<MaintHandle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.raw.path()).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database in folder `path` with default [`Options`].
    ///
    /// A folder holds either versioned or raw data ([`crate::Kind`]): opening a folder made
    /// by [`crate::raw::Db`] or the `strata` CLI fails with [`crate::Error::WrongKind`].
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens the database in `path` with `options`: recovers the store, then the timestamp
    /// oracle's durable mark.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        let raw = RawDb::open_kind(path.as_ref(), options.clone(), crate::Kind::Versioned)?;
        raw.inner.shared.start_exec(ExecConfig {
            tso_window_ms: 3_000,
            block_cache_bytes: options.block_cache_bytes.min(8 << 20),
            // Turned on while a revision watch hub exists (`Db::watch`, `crate::revwatch`).
            applied_notifications: false,
        })?;
        crate::streams::api::start(&raw.inner.shared, raw.hub(), options.streams)?;
        let txn_options = Arc::new(options.txn);
        let fail = |e: TxnError| match e {
            TxnError::Db(e) => e,
            other => Error::Store(strata_engine::lsm::error::Error::InvalidArgument(
                strata_engine::lsm::error::InvalidArgument::Other(other.to_string()),
            )),
        };
        // Before anything else runs: the locks left by an earlier process (for the watch
        // hub's resolved ts) and the lease table (for expiry).
        let shared = raw.inner.shared.clone();
        let locks = match shared.call_exec(Command::ScanLocks { from: Vec::new(), upper: None, limit: usize::MAX })? {
            Ok(Response::Locks(l)) => l,
            Ok(_) => Vec::new(),
            Err(e) => return Err(fail(TxnError::from_exec(e))),
        };
        shared.seed_locks(&locks);
        let mut queue = LeaseQueue::new();
        match shared.call_exec(Command::Etcd(EtcdCommand::Leases))? {
            Ok(Response::Etcd(EtcdResponse::Leases(ls))) => {
                for l in ls {
                    queue.apply(&LeaseChange::Upsert(l));
                }
            }
            Ok(_) => {}
            Err(e) => return Err(fail(TxnError::from_exec(e))),
        }
        let maint = crate::maint::start(Arc::downgrade(&raw.inner), txn_options.clone(), queue).map_err(|e| Error::io(raw.path(), e))?;
        Ok(Db { raw, options: txn_options, salt: Arc::new(AtomicU64::new(0)), maint })
    }

    /// A handle from its parts (the maintenance thread's, for one round).
    pub(crate) fn from_parts(inner: Arc<crate::db::Inner>, options: Arc<TxnOptions>, maint: Arc<MaintHandle>) -> Db {
        Db { raw: RawDb { inner }, options, salt: Arc::new(AtomicU64::new(0)), maint }
    }

    pub(crate) fn maint(&self) -> &Maint {
        &self.maint.maint
    }

    /// The unversioned store underneath (for benchmarks and tools: its keys are encoded).
    pub fn raw(&self) -> &RawDb {
        &self.raw
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.raw.path()
    }

    /// The value of `key` now (a snapshot read at a fresh timestamp).
    pub fn get(&self, key: impl AsRef<[u8]>) -> TxnResult<Option<Vec<u8>>> {
        let key = key.as_ref();
        self.check_key(key)?;
        // One command: the executor draws the read ts when the read runs. Only a lock in the
        // way needs the longer path (a ts of our own, to resolve the lock against).
        // Most reads are answered at once, without a command (`Executor::get_now`).
        let r = match self.raw.inner.shared.exec_get_now(key) {
            Ok(Some(r)) => r.map(Response::Value).map_err(TxnErrorOrExec::Exec),
            Ok(None) => self.exec(Command::Get { key: key.to_vec(), read_ts: Ts::ZERO }),
            Err(e) => Err(TxnErrorOrExec::Db(e)),
        };
        match r {
            Ok(Response::Value(v)) => Ok(v),
            Ok(_) => Ok(None),
            Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(_)))) => {
                let ts = self.timestamp()?;
                self.read_at(key, ts)
            }
            Err(e) => Err(e.into_txn()),
        }
    }

    /// Sets `key` to `value`: a one-key transaction committed in one phase. Returns once it is
    /// durable (default) or applied (non-syncing modes).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> TxnResult<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.check_key(key)?;
        self.commit_one_key(key, Some(value))?;
        if self.raw.inner.watch.is_some() {
            let mut b = Batch::new();
            b.put(key, value);
            self.publish_committed(&b);
        }
        Ok(())
    }

    /// Deletes `key` (a one-key transaction).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> TxnResult<()> {
        let mut b = Batch::new();
        b.delete(key.as_ref());
        self.write(b)
    }

    /// Applies `batch` as one transaction committed in one phase: all of it becomes visible at
    /// one timestamp, or none of it. The last operation on a key wins.
    pub fn write(&self, batch: Batch) -> TxnResult<()> {
        for op in batch.iter() {
            self.check_key(op.key)?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.commit_one_pc(|| Self::mutations(&batch))?;
        self.publish_committed(&batch);
        Ok(())
    }

    /// Commits a put of `key` (`value`) or its delete (`None`) in one phase: at once, without
    /// a command, when the executor can (`Executor::write_now`: nothing queued, the key free);
    /// otherwise — or when a lock is in the way — through [`Db::commit_one_pc`].
    fn commit_one_key(&self, key: &[u8], value: Option<&[u8]>) -> TxnResult<()> {
        match self.raw.inner.shared.exec_write_now(key, value) {
            Ok(Some(Ok(_))) => return Ok(()),
            // A lock in the way: the command path resolves it (or waits it out) and goes again.
            Ok(Some(Err(ExecError::Mvcc(MvccError::KeyIsLocked(_) | MvccError::WriteConflict { .. })))) | Ok(None) => {}
            Ok(Some(Err(e))) => return Err(TxnErrorOrExec::Exec(e).into_txn()),
            Err(e) => return Err(TxnErrorOrExec::Db(e).into_txn()),
        }
        self.commit_one_pc(|| {
            vec![match value {
                Some(v) => Mutation::Put(key.to_vec(), v.to_vec()),
                None => Mutation::Delete(key.to_vec()),
            }]
        })
    }

    /// Commits the mutations `make` builds (at least one) as one transaction in one phase,
    /// resolving or waiting out locks in the way.
    fn commit_one_pc(&self, make: impl Fn() -> Vec<Mutation>) -> TxnResult<()> {
        let mut attempt = 0;
        loop {
            // A zero start ts: the executor draws start and commit ts together, under the
            // keys' latches, so nothing can commit between them. (Built afresh per attempt:
            // the executor consumes the command.)
            // No primary: a one-phase commit writes no lock for one to point at.
            let muts = make();
            let mut req = PrewriteRequest::new(Vec::new(), Ts::ZERO, self.ttl_ms());
            req.mutations = muts;
            match self.exec(Command::OnePc(req)) {
                Ok(_) => return Ok(()),
                // (Cannot happen with both timestamps drawn together; a blind write would
                // simply go again.)
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::WriteConflict { .. }))) => {}
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => {
                    if !resolve_lock(self, &info, None)? {
                        self.pause(attempt, TxnError::Locked { key: info.key.clone(), lock_ts: info.lock.start_ts.0 })?;
                    }
                }
                Err(e) => return Err(e.into_txn()),
            }
            attempt += 1;
        }
    }

    /// The mutations of a non-empty batch: the last operation on each key, by key.
    fn mutations(batch: &Batch) -> Vec<Mutation> {
        let to_mutation = |op: strata_engine::lsm::batch::Op<'_>| match op.kind {
            ValueKind::Put => Mutation::Put(op.key.to_vec(), op.value.to_vec()),
            ValueKind::Delete => Mutation::Delete(op.key.to_vec()),
        };
        if batch.len() == 1 {
            return batch.iter().map(to_mutation).collect();
        }
        let mut last: BTreeMap<&[u8], Mutation> = BTreeMap::new();
        for op in batch.iter() {
            last.insert(op.key, to_mutation(op));
        }
        last.into_values().collect()
    }

    /// Keys in `[from, to)` (`to = None`: to the end) with their values now, ascending.
    pub fn range(&self, from: impl AsRef<[u8]>, to: Option<&[u8]>) -> TxnResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let ts = self.timestamp()?;
        self.scan_at(from.as_ref(), to, ts)
    }

    /// Starts a transaction at a fresh snapshot. Commit it with [`Txn::commit`]; dropping it
    /// uncommitted rolls it back.
    pub fn begin(&self) -> TxnResult<Txn> {
        // Registered while drawn, so background GC never passes a running snapshot.
        let ts = self.maint().register_snapshot(|| self.timestamp())?;
        Ok(Txn::new(self.clone(), ts))
    }

    /// Runs `f` in a transaction and commits it, retrying the whole of it (with a new snapshot)
    /// on retryable errors — write conflicts, live locks, a rollback by another client — with
    /// exponential backoff and seeded jitter, up to [`TxnOptions::max_attempts`].
    pub fn transaction<T>(&self, mut f: impl FnMut(&mut Txn) -> TxnResult<T>) -> TxnResult<T> {
        let mut attempt = 0;
        loop {
            let mut tx = self.begin()?;
            let r = f(&mut tx).and_then(|t| tx.commit().map(|()| t));
            match r {
                Ok(t) => return Ok(t),
                Err(e) if e.is_retryable() => {
                    drop(tx);
                    self.pause(attempt, e)?;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes every acknowledged write durable (needed only in the non-syncing modes).
    pub fn sync(&self) -> Result<()> {
        self.raw.sync()
    }

    /// Writes the memtable to an SST and waits until it is installed.
    pub fn flush(&self) -> Result<()> {
        self.raw.flush()
    }

    /// Shape and counters of the store underneath.
    pub fn stats(&self) -> Stats {
        self.raw.stats()
    }

    /// Closes now (see [`raw::Db::close`](crate::raw::Db::close)).
    pub fn close(self) -> Result<()> {
        self.raw.close()
    }

    // ----- messaging: the same broker as the raw handle -----

    /// Publishes `payload` on `subject` (see [`raw::Db::publish`](crate::raw::Db::publish)).
    pub fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> std::result::Result<PublishOutcome, MessagingError> {
        self.raw.publish(subject, payload)
    }

    /// Publishes with a reply subject.
    pub fn publish_with_reply(&self, subject: &str, reply: &str, payload: impl AsRef<[u8]>) -> std::result::Result<PublishOutcome, MessagingError> {
        self.raw.publish_with_reply(subject, reply, payload)
    }

    /// Subscribes to `pattern` (`*` matches one token, a final `>` the rest).
    pub fn subscribe(&self, pattern: &str) -> std::result::Result<Subscription, MessagingError> {
        self.raw.subscribe(pattern)
    }

    /// Subscribes to `pattern` in queue group `group`.
    pub fn queue_subscribe(&self, pattern: &str, group: &str) -> std::result::Result<Subscription, MessagingError> {
        self.raw.queue_subscribe(pattern, group)
    }

    /// Publishes and waits for the first reply (see [`raw::Db::request`](crate::raw::Db::request)).
    pub fn request(&self, subject: &str, payload: impl AsRef<[u8]>, timeout: Duration) -> std::result::Result<Message, RequestError> {
        self.raw.request(subject, payload, timeout)
    }

    /// Counters of the broker.
    pub fn broker_stats(&self) -> strata_engine::broker::BrokerStats {
        self.raw.broker_stats()
    }

    /// Subscribes to the KV-watch subjects of keys matching `key_pattern` (needs
    /// [`Options::kv_watch`](crate::Options::kv_watch)): every `put`, `delete`, `write`,
    /// committed transaction, CAS transaction and lease revoke of this handle is published
    /// after it commits, one message per key, for NATS-style subscribers (also remote ones,
    /// through `strata serve`). Best effort: a slow subscriber gets `Lagged`, and writes
    /// committed by a lock resolution or a lease expiry are not published. For a complete,
    /// ordered feed with revisions and previous values, use [`Db::watch`].
    pub fn watch_subject(&self, key_pattern: &str) -> std::result::Result<Watch, MessagingError> {
        self.raw.watch(key_pattern)
    }

    /// Writes committed but not published for KV watch (over the broker's limits).
    pub fn kv_watch_skipped(&self) -> u64 {
        self.raw.kv_watch_skipped()
    }

    /// True when committed writes are published for KV watch ([`Options::kv_watch`]).
    pub(crate) fn publishes_committed(&self) -> bool {
        self.raw.inner.watch.is_some()
    }

    /// Publishes a committed batch of user keys for KV watch (when it is on).
    pub(crate) fn publish_committed(&self, batch: &Batch) {
        if let Some(w) = self.raw.inner.watch.as_ref() {
            self.raw.publish_kv(w.events(batch));
        }
    }

    /// Publishes deletes of `keys` for KV watch (a lease revoke).
    pub(crate) fn publish_deleted<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) {
        if self.raw.inner.watch.is_some() {
            let mut b = Batch::new();
            for k in keys {
                b.delete(k);
            }
            self.publish_committed(&b);
        }
    }

    /// Publishes the writes of the branch a CAS transaction ran, for KV watch.
    pub(crate) fn publish_cas(&self, req: &strata_engine::mvcc::cas::TxnRequest, succeeded: bool) {
        if self.raw.inner.watch.is_none() {
            return;
        }
        use strata_engine::mvcc::cas::TxnOp;
        let mut b = Batch::new();
        for op in if succeeded { &req.success } else { &req.failure } {
            match op {
                TxnOp::Put { key, value, .. } => {
                    b.put(key, value);
                }
                TxnOp::Delete { key } => {
                    b.delete(key);
                }
                _ => {}
            }
        }
        self.publish_committed(&b);
    }

    // ----- for Txn -----

    pub(crate) fn txn_options(&self) -> &TxnOptions {
        &self.options
    }

    /// The transactions' lock time to live in ms (the lock record's unit).
    pub(crate) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.options.lock_ttl.as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        self.raw.check_key(key)
    }

    pub(crate) fn exec(&self, cmd: Command) -> std::result::Result<Response, TxnErrorOrExec> {
        match self.raw.inner.shared.call_exec(cmd) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(TxnErrorOrExec::Exec(e)),
            Err(e) => Err(TxnErrorOrExec::Db(e)),
        }
    }

    pub(crate) fn timestamp(&self) -> TxnResult<Ts> {
        match self.exec(Command::Timestamp).map_err(TxnErrorOrExec::into_txn)? {
            Response::Timestamp(ts) => Ok(ts),
            other => Err(TxnError::Db(Error::Store(strata_engine::lsm::error::Error::InvalidArgument(
                strata_engine::lsm::error::InvalidArgument::Other(format!("timestamp answered {other:?}")),
            )))),
        }
    }

    /// Sleeps before attempt `attempt + 1`, or gives up with `why` after the last attempt.
    pub(crate) fn pause(&self, attempt: u32, why: TxnError) -> TxnResult<()> {
        if attempt + 1 >= self.options.max_attempts {
            return Err(TxnError::RetriesExhausted { attempts: attempt + 1, last: Box::new(why) });
        }
        let salt = self.salt.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.options.backoff(attempt, salt));
        Ok(())
    }

    /// A snapshot read at `ts`, resolving the locks it meets.
    pub(crate) fn read_at(&self, key: &[u8], ts: Ts) -> TxnResult<Option<Vec<u8>>> {
        match self.with_resolution(ts, || Command::Get { key: key.to_vec(), read_ts: ts })? {
            Response::Value(v) => Ok(v),
            _ => Ok(None),
        }
    }

    /// A snapshot scan at `ts`, resolving the locks it meets.
    pub(crate) fn scan_at(&self, from: &[u8], to: Option<&[u8]>, ts: Ts) -> TxnResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let cmd = || Command::Scan { from: from.to_vec(), upper: to.map(<[u8]>::to_vec), read_ts: ts, limit: usize::MAX };
        match self.with_resolution(ts, cmd)? {
            Response::Entries(e) => Ok(e),
            _ => Ok(Vec::new()),
        }
    }

    fn with_resolution(&self, ts: Ts, cmd: impl Fn() -> Command) -> TxnResult<Response> {
        let mut attempt = 0;
        loop {
            match self.exec(cmd()) {
                Ok(r) => return Ok(r),
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => {
                    if !resolve_lock(self, &info, Some(ts))? {
                        self.pause(attempt, TxnError::Locked { key: info.key.clone(), lock_ts: info.lock.start_ts.0 })?;
                    }
                }
                Err(e) => return Err(e.into_txn()),
            }
            attempt += 1;
        }
    }

    /// Prewrites `req`, resolving (or waiting out) locks of other transactions.
    pub(crate) fn prewrite(&self, req: PrewriteRequest) -> TxnResult<()> {
        let mut attempt = 0;
        loop {
            match self.exec(Command::Prewrite(req.clone())) {
                Ok(_) => return Ok(()),
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => {
                    if !resolve_lock(self, &info, None)? {
                        let why = TxnError::Locked { key: info.key.clone(), lock_ts: info.lock.start_ts.0 };
                        // A live lock: the other transaction is committing; back off briefly,
                        // and let the caller's retry take over after a few tries.
                        if attempt >= 8 {
                            return Err(why);
                        }
                        self.pause(attempt, why)?;
                    }
                }
                Err(e) => return Err(e.into_txn()),
            }
            attempt += 1;
        }
    }
}
