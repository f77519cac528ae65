//! The synchronous, single-threaded driver of the embedded store: one [`Store`], the MVCC
//! [`Executor`] beside it, and (while watchers exist) a [`WatchHub`], over one [`Backend`].
//!
//! Every call submits its command and then *runs*: it drains the store's outputs, carries out
//! each I/O request on the backend at once and feeds the completion back, runs flush and
//! compaction jobs to the end inline, routes the store's replies to the executor, serves the
//! executor's block reads, and feeds applied commits and the resolved ts to the watch hub —
//! until neither machine has anything left to do. Then the command's reply is there. Nothing
//! waits and nothing runs in the background, which is exactly what a browser worker (or a
//! page) can offer; the engine itself stays sans-IO.
//!
//! This module knows nothing of JavaScript: the native benchmark drives it directly
//! (`examples/db_bench.rs`), the wasm classes in `super` wrap it.
use super::backend::Backend;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use strata_engine::lsm::cache::BlockCache;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::error::Error as StoreError;
use strata_engine::lsm::hash::FixedState;
use strata_engine::lsm::io::{FileName, IoRequest, IoResult};
use strata_engine::lsm::job::JobStep;
use strata_engine::lsm::sstable::{Block, BlockHandle};
use strata_engine::lsm::store::{Output, ReqId, Reply, Request, Store};
use strata_engine::mvcc::error::{EtcdError, ReadError};
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use strata_engine::mvcc::exec::{CmdId, ExecConfig, ExecError, ExecOutput, Executor};
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest};
use strata_engine::mvcc::watch::{WatchConfig, WatchHub, WatchId, WatchRequest, WatchResponse};
use strata_engine::mvcc::{MvccError, Ts};

/// Why a call failed. The store stays usable after every variant but [`DbError::Closed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbError {
    /// A bad key, value, range, subject or option; nothing changed.
    InvalidArgument(String),
    /// Another transaction committed `key` after this one started (first committer wins);
    /// nothing of this transaction is visible. Run it again from a new snapshot.
    WriteConflict {
        /// The key both wrote.
        key: Vec<u8>,
        /// The other transaction's commit revision.
        conflict_revision: u64,
    },
    /// `key` is locked by a transaction that has not finished.
    Locked {
        /// The key.
        key: Vec<u8>,
        /// The lock's start revision.
        lock_revision: u64,
    },
    /// The revision asked for is below the compaction mark.
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The mark.
        compacted: u64,
    },
    /// The storage failed or holds corrupt data (the message names file and offset).
    Storage(String),
    /// The store is closed.
    Closed,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            DbError::WriteConflict { key, conflict_revision } => write!(
                f,
                "write conflict on {:?}: committed by another transaction at revision {conflict_revision}",
                String::from_utf8_lossy(key)
            ),
            DbError::Locked { key, lock_revision } => {
                write!(f, "{:?} is locked by transaction {lock_revision}", String::from_utf8_lossy(key))
            }
            DbError::Compacted { requested, compacted } => {
                write!(f, "revision {requested} has been compacted (compaction mark {compacted})")
            }
            DbError::Storage(why) => write!(f, "storage: {why}"),
            DbError::Closed => f.write_str("the database is closed"),
        }
    }
}

impl std::error::Error for DbError {}

impl DbError {
    fn from_exec(e: ExecError) -> DbError {
        match e {
            ExecError::Mvcc(m) => Self::from_mvcc(m),
            ExecError::Etcd(EtcdError::Mvcc(m)) => Self::from_mvcc(m),
            ExecError::Etcd(EtcdError::Compacted { requested, compacted }) => {
                DbError::Compacted { requested: requested.0, compacted: compacted.0 }
            }
            ExecError::Etcd(other) => DbError::InvalidArgument(other.to_string()),
            ExecError::Store(StoreError::InvalidArgument(a)) => DbError::InvalidArgument(a.to_string()),
            ExecError::Store(s) => DbError::Storage(s.to_string()),
            other => DbError::Storage(other.to_string()),
        }
    }

    fn from_mvcc(m: MvccError) -> DbError {
        match m {
            MvccError::WriteConflict { key, conflict_commit_ts, .. } => {
                DbError::WriteConflict { key, conflict_revision: conflict_commit_ts.0 }
            }
            MvccError::KeyIsLocked(info) => DbError::Locked { key: info.key, lock_revision: info.lock.start_ts.0 },
            other => DbError::Storage(other.to_string()),
        }
    }
}

/// `Result` with [`DbError`].
pub type DbResult<T> = Result<T, DbError>;

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct CoreOptions {
    /// When a write counts as done (`SyncEachWrite`: after the backend's sync of its WAL).
    pub durability: Durability,
    /// Freeze and flush the memtable at this size.
    pub memtable_bytes: usize,
    /// Longest key.
    pub max_key_len: usize,
    /// Longest value.
    pub max_value_len: usize,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions { durability: Durability::SyncEachWrite, memtable_bytes: 8 << 20, max_key_len: 4096, max_value_len: 1 << 20 }
    }
}

/// Events a watcher may hold before it is moved to catch-up from history.
const WATCH_BUFFER_EVENTS: usize = 1024;

/// The watch hub and the blocks its reads need.
struct Hub {
    hub: WatchHub,
    own: BlockMap,
    cache: RefCell<BlockCache>,
}

/// The store, its executor and its watch hub over one backend. See the module docs.
pub struct Core {
    store: Store,
    exec: Executor,
    backend: Box<dyn Backend>,
    clock: fn() -> u64,
    /// The time input of the current call (read once per call: a clock read is a JS call).
    now: u64,
    durability: Durability,
    max_key_len: usize,
    max_value_len: usize,
    replies: HashMap<CmdId, Result<Response, ExecError>, FixedState>,
    store_replies: BTreeMap<ReqId, Result<Reply, StoreError>>,
    opened: Option<Result<(), StoreError>>,
    recovered: Option<Result<Ts, ExecError>>,
    hub: Option<Hub>,
    /// A failure of the watch hub's reads: every watcher ends with it.
    hub_failed: Option<String>,
    /// The newest commit applied.
    revision: Ts,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("backend", &self.backend.kind()).field("revision", &self.revision.0).finish_non_exhaustive()
    }
}

impl Core {
    /// Opens the store in `backend` (recovering what is there), then the executor (the
    /// timestamp oracle's mark), then resolves the locks a crash left: the store has one
    /// writer, so a lock found at open belongs to a transaction that can never finish — it is
    /// committed if its primary committed, else rolled back. `clock` gives milliseconds (the
    /// oracle's physical time).
    pub fn open(backend: Box<dyn Backend>, options: &CoreOptions, clock: fn() -> u64) -> DbResult<Core> {
        let config = Config {
            durability: options.durability,
            memtable_bytes: options.memtable_bytes,
            max_key_len: options.max_key_len + 64,
            max_value_len: options.max_value_len + 64,
            block_cache_bytes: 1 << 20,
            ..Config::default()
        };
        let now = clock();
        let mut store = Store::open(config);
        // A placeholder executor is not possible before the store opens: open it after.
        let mut core = {
            let mut opened = None;
            let mut backend = backend;
            drain_open(&mut store, backend.as_mut(), now, &mut opened);
            match opened {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(DbError::Storage(e.to_string())),
                None => return Err(DbError::Storage("recovery stopped without an answer".into())),
            }
            let exec_config = ExecConfig { tso_window_ms: 3_000, block_cache_bytes: 4 << 20, applied_notifications: true };
            let exec = Executor::open(exec_config, now, &mut store);
            Core {
                store,
                exec,
                backend,
                clock,
                now,
                durability: options.durability,
                max_key_len: options.max_key_len,
                max_value_len: options.max_value_len,
                replies: HashMap::with_hasher(FixedState),
                store_replies: BTreeMap::new(),
                opened: Some(Ok(())),
                recovered: None,
                hub: None,
                hub_failed: None,
                revision: Ts::ZERO,
            }
        };
        core.run();
        match core.recovered.take() {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(DbError::from_exec(e)),
            None => return Err(DbError::Storage("the timestamp oracle did not recover".into())),
        }
        core.resolve_leftover_locks()?;
        Ok(core)
    }

    /// `"memory"` or `"js"`.
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// The newest revision applied (zero before the first write of this session).
    pub fn revision(&self) -> u64 {
        self.revision.0
    }

    /// Checks a key (non-empty, not too long).
    pub fn check_key(&self, key: &[u8]) -> DbResult<()> {
        if key.is_empty() {
            return Err(DbError::InvalidArgument("empty key".into()));
        }
        if key.len() > self.max_key_len {
            return Err(DbError::InvalidArgument(format!("key of {} bytes (at most {})", key.len(), self.max_key_len)));
        }
        Ok(())
    }

    /// Checks a value's length.
    pub fn check_value(&self, value: &[u8]) -> DbResult<()> {
        if value.len() > self.max_value_len {
            return Err(DbError::InvalidArgument(format!("value of {} bytes (at most {})", value.len(), self.max_value_len)));
        }
        Ok(())
    }

    /// The value of `key` now.
    pub fn get(&mut self, key: &[u8]) -> DbResult<Option<Vec<u8>>> {
        self.get_at(key, Ts::ZERO)
    }

    /// The value of `key` as of `read_ts` (zero: now).
    pub fn get_at(&mut self, key: &[u8], read_ts: Ts) -> DbResult<Option<Vec<u8>>> {
        self.check_key(key)?;
        match self.call(Command::Get { key: key.to_vec(), read_ts })? {
            Response::Value(v) => Ok(v),
            other => Err(unexpected("get", &other)),
        }
    }

    /// Sets `key` to `value`; returns the commit revision.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> DbResult<u64> {
        self.check_key(key)?;
        self.check_value(value)?;
        self.write(vec![Mutation::Put(key.to_vec(), value.to_vec())])
    }

    /// Deletes `key`; returns the commit revision.
    pub fn delete(&mut self, key: &[u8]) -> DbResult<u64> {
        self.check_key(key)?;
        self.write(vec![Mutation::Delete(key.to_vec())])
    }

    /// Commits `mutations` (distinct keys, at least one) as one transaction in one phase; the
    /// executor draws start and commit ts together under the keys' latches, so nothing can
    /// conflict. Returns the commit revision.
    pub fn write(&mut self, mutations: Vec<Mutation>) -> DbResult<u64> {
        let mut req = PrewriteRequest::new(Vec::new(), Ts::ZERO, 0);
        req.mutations = mutations;
        match self.call(Command::OnePc(req))? {
            Response::Committed { commit_ts } => Ok(commit_ts.0),
            other => Err(unexpected("write", &other)),
        }
    }

    /// Up to `limit` pairs in `[from, to)` as of `read_ts` (zero: a fresh timestamp),
    /// ascending, or the last `limit` descending when `reverse`.
    pub fn range(&mut self, from: &[u8], to: Option<&[u8]>, limit: usize, reverse: bool, read_ts: Ts) -> DbResult<Vec<(Vec<u8>, Vec<u8>)>> {
        if let Some(to) = to {
            if to < from {
                return Err(DbError::InvalidArgument("range end sorts before its start".into()));
            }
        }
        let read_ts = if read_ts == Ts::ZERO { self.timestamp()? } else { read_ts };
        // The executor scans forward only: a reverse range reads the whole range (a cost
        // linear in its size, documented in the API).
        let scan_limit = if reverse { usize::MAX } else { limit };
        let cmd = Command::Scan { from: from.to_vec(), upper: to.map(<[u8]>::to_vec), read_ts, limit: scan_limit };
        match self.call(cmd)? {
            Response::Entries(mut e) => {
                if reverse {
                    e.reverse();
                    e.truncate(limit);
                }
                Ok(e)
            }
            other => Err(unexpected("range", &other)),
        }
    }

    /// A fresh timestamp (a transaction's snapshot).
    pub fn timestamp(&mut self) -> DbResult<Ts> {
        match self.call(Command::Timestamp)? {
            Response::Timestamp(ts) => Ok(ts),
            other => Err(unexpected("timestamp", &other)),
        }
    }

    /// Commits a snapshot-isolation transaction that started at `start_ts` with `writes`
    /// (key → value, `None` = delete; at least one): prewrites every key with the first as
    /// primary, draws the commit ts, commits. Each step runs to the end inside this call, so
    /// no lock outlives it; a conflict rolls the prewritten locks back. Returns the revision.
    pub fn commit(&mut self, start_ts: Ts, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> DbResult<u64> {
        let muts: Vec<Mutation> = writes
            .iter()
            .map(|(k, v)| match v {
                Some(v) => Mutation::Put(k.clone(), v.clone()),
                None => Mutation::Delete(k.clone()),
            })
            .collect();
        let Some(primary) = muts.first().map(|m| m.key().to_vec()) else { return Ok(start_ts.0) };
        let keys: Vec<Vec<u8>> = writes.keys().cloned().collect();
        let mut req = PrewriteRequest::new(primary.clone(), start_ts, 60_000);
        req.txn_size = muts.len() as u64;
        req.mutations = muts;
        if let Err(e) = self.call(Command::Prewrite(req)) {
            // Locks of keys prewritten before the conflict go (the prewrite is atomic, but be
            // explicit: a rollback of unlocked keys only writes rollback records).
            let _ = self.call(Command::Rollback { keys, start_ts });
            return Err(e);
        }
        loop {
            let commit_ts = self.timestamp()?;
            match self.call_raw(Command::Commit { keys: keys.clone(), start_ts, commit_ts }) {
                Ok(_) => return Ok(commit_ts.0),
                // A reader pushed the lock's min_commit_ts past ours: draw a later one.
                Err(ExecError::Mvcc(MvccError::CommitTsExpired { .. })) => continue,
                Err(e) => {
                    let _ = self.call(Command::Rollback { keys, start_ts });
                    return Err(DbError::from_exec(e));
                }
            }
        }
    }

    /// Registers a watcher (the hub starts at the executor's resolved ts when it is the first).
    pub fn watch(&mut self, req: WatchRequest) -> DbResult<WatchId> {
        if let Some(why) = &self.hub_failed {
            return Err(DbError::Storage(why.clone()));
        }
        let resolved = self.exec.resolved_ts();
        let hub = self.hub.get_or_insert_with(|| Hub {
            hub: WatchHub::new(WatchConfig { max_buffered_events: WATCH_BUFFER_EVENTS }, resolved),
            own: BlockMap::new(),
            cache: RefCell::new(BlockCache::new(1 << 20)),
        });
        let r = with_reader(&self.store, self.backend.as_mut(), hub, |hub, snap| hub.watch(snap, req.clone()));
        if hub.hub.is_empty() {
            self.hub = None;
        }
        r.map_err(|e| DbError::from_exec(ExecError::Etcd(e)))
    }

    /// Everything watcher `id` has waiting (catching it up from history first if it lags).
    pub fn watch_poll(&mut self, id: WatchId) -> DbResult<Vec<WatchResponse>> {
        self.advance_watch();
        if let Some(why) = &self.hub_failed {
            return Err(DbError::Storage(why.clone()));
        }
        let mut out = Vec::new();
        let Some(hub) = self.hub.as_mut() else { return Ok(out) };
        loop {
            while let Some(r) = hub.hub.poll(id) {
                out.push(r);
            }
            if !hub.hub.needs_sync() {
                return Ok(out);
            }
            match with_reader(&self.store, self.backend.as_mut(), hub, |hub, snap| hub.sync(snap)) {
                Ok(0) => {
                    // Nothing fitted into a buffer; another watcher's turn.
                    while let Some(r) = hub.hub.poll(id) {
                        out.push(r);
                    }
                    return Ok(out);
                }
                Ok(_) => {}
                Err(e) => {
                    let why = e.to_string();
                    self.hub_failed = Some(why.clone());
                    return Err(DbError::Storage(why));
                }
            }
        }
    }

    /// Ends watcher `id`.
    pub fn watch_cancel(&mut self, id: WatchId) {
        if let Some(h) = self.hub.as_mut() {
            h.hub.cancel(id);
            if h.hub.is_empty() {
                self.hub = None;
            }
        }
    }

    /// Makes every acknowledged write durable (needed only with `Durability::Manual`).
    pub fn sync(&mut self) -> DbResult<()> {
        self.store_call(Request::Sync).map(|_| ())
    }

    /// Writes the memtable to a table file.
    pub fn flush(&mut self) -> DbResult<()> {
        self.store_call(Request::Flush).map(|_| ())
    }

    /// Makes buffered writes durable before the store is dropped.
    pub fn close(&mut self) -> DbResult<()> {
        match self.durability {
            Durability::SyncEachWrite => Ok(()),
            Durability::External => self.flush(),
            _ => self.sync(),
        }
    }

    /// Runs an executor command to its reply.
    fn call(&mut self, cmd: Command) -> DbResult<Response> {
        self.call_raw(cmd).map_err(DbError::from_exec)
    }

    fn call_raw(&mut self, cmd: Command) -> Result<Response, ExecError> {
        self.fire_timers();
        let id = self.exec.submit(self.now, &mut self.store, cmd);
        self.run();
        match self.replies.remove(&id) {
            Some(r) => r,
            None => Err(ExecError::Store(StoreError::NotOpen)),
        }
    }

    /// Runs a store request to its reply.
    fn store_call(&mut self, req: Request) -> DbResult<Reply> {
        self.fire_timers();
        let id = self.store.submit(self.now, req);
        self.run();
        match self.store_replies.remove(&id) {
            Some(r) => r.map_err(|e| match e {
                StoreError::InvalidArgument(a) => DbError::InvalidArgument(a.to_string()),
                other => DbError::Storage(other.to_string()),
            }),
            None => Err(DbError::Storage("a store request stalled without a reply (a bug)".into())),
        }
    }

    /// Reads the clock for this call; the store's timer (the `SyncEveryMs` mode) has no
    /// thread here: it fires on the next call.
    fn fire_timers(&mut self) {
        let now = (self.clock)();
        self.now = now;
        if self.store.next_deadline().is_some_and(|d| d <= now) {
            self.store.handle_timeout(now);
        }
    }

    /// Carries out everything until neither the store nor the executor has work.
    fn run(&mut self) {
        let now = self.now;
        loop {
            let mut progress = false;
            while let Some(out) = self.store.poll() {
                progress = true;
                match out {
                    Output::Io { id, req } => {
                        let r = self.backend.execute(req);
                        self.store.handle_io(now, id, r);
                    }
                    Output::Job(mut job) => {
                        run_job(&mut job, self.backend.as_mut());
                        self.store.handle_job(now, job);
                    }
                    Output::Reply { id, result } => {
                        if !self.exec.handle_store_reply(now, &mut self.store, id, result.clone()) {
                            self.store_replies.insert(id, result);
                        }
                    }
                    Output::Opened(r) => self.opened = Some(r),
                }
            }
            while let Some(out) = self.exec.poll() {
                progress = true;
                match out {
                    ExecOutput::ReadBlock { file, handle } => {
                        let r = read_block(self.backend.as_mut(), file, handle);
                        self.exec.handle_block(now, &mut self.store, file, handle, r);
                    }
                    ExecOutput::Reply { id, result } => {
                        if let Ok(Response::Committed { commit_ts }) = &result {
                            self.revision = self.revision.max(*commit_ts);
                        }
                        self.replies.insert(id, result);
                    }
                    ExecOutput::Applied(a) => {
                        self.revision = self.revision.max(a.commit_ts);
                        if let Some(h) = self.hub.as_mut() {
                            if let Err(e) = h.hub.handle_applied(&a) {
                                self.hub_failed.get_or_insert(format!("watch hub refused an applied commit: {e:?}"));
                            }
                        }
                    }
                    ExecOutput::Recovered(r) => self.recovered = Some(r),
                }
            }
            if !progress {
                break;
            }
        }
        self.advance_watch();
    }

    /// Feeds the hub the executor's resolved ts (every commit below it is applied).
    fn advance_watch(&mut self) {
        let Some(hub) = self.hub.as_mut() else { return };
        if self.hub_failed.is_some() {
            return;
        }
        let target = self.exec.resolved_ts();
        if target > hub.hub.resolved() {
            if let Err(e) = with_reader(&self.store, self.backend.as_mut(), hub, |hub, snap| hub.handle_resolved(snap, target)) {
                self.hub_failed = Some(e.to_string());
            }
        }
    }

    /// Resolves every lock left by a transaction a crash interrupted (see [`Core::open`]).
    fn resolve_leftover_locks(&mut self) -> DbResult<()> {
        let locks = match self.call(Command::ScanLocks { from: Vec::new(), upper: None, limit: usize::MAX })? {
            Response::Locks(l) => l,
            other => return Err(unexpected("scan locks", &other)),
        };
        for (key, lock) in locks {
            let status = self.call(Command::CheckTxnStatus {
                primary: lock.primary.clone(),
                lock_ts: lock.start_ts,
                caller_start_ts: None,
                rollback_if_not_exist: true,
            })?;
            let outcome = match status {
                Response::TxnStatus(s) => s.commit_ts(),
                other => return Err(unexpected("check txn status", &other)),
            };
            let commit_ts = match outcome {
                Some(c) => c,
                None => {
                    // Alive by its TTL, but its writer is gone: roll the primary back.
                    self.call(Command::Rollback { keys: vec![lock.primary.clone()], start_ts: lock.start_ts })?;
                    None
                }
            };
            self.call(Command::ResolveLock { keys: vec![key], start_ts: lock.start_ts, commit_ts })?;
        }
        Ok(())
    }
}

/// Drives the store until it reports `Opened` (recovery).
fn drain_open(store: &mut Store, backend: &mut dyn Backend, now: u64, opened: &mut Option<Result<(), StoreError>>) {
    while let Some(out) = store.poll() {
        match out {
            Output::Io { id, req } => {
                let r = backend.execute(req);
                store.handle_io(now, id, r);
            }
            Output::Job(mut job) => {
                run_job(&mut job, backend);
                store.handle_job(now, job);
            }
            Output::Reply { .. } => {}
            Output::Opened(r) => *opened = Some(r),
        }
    }
}

fn run_job(job: &mut strata_engine::lsm::job::Job, backend: &mut dyn Backend) {
    loop {
        match job.step() {
            JobStep::Read { file, offset, len } => {
                let r = match backend.execute(IoRequest::Read { file, offset, len }) {
                    IoResult::Data(d) => Ok(d),
                    IoResult::Failed(e) => Err(e),
                    other => Err(strata_engine::lsm::io::IoError::Other(format!("unexpected completion {other:?}"))),
                };
                job.handle_read(r);
            }
            JobStep::WriteFile { file, data } => {
                let r = backend.write_file(file, &data);
                job.handle_write(r);
            }
            JobStep::Done => return,
        }
    }
}

fn read_block(backend: &mut dyn Backend, file: FileName, handle: BlockHandle) -> Result<Block, StoreError> {
    match backend.execute(IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }) {
        IoResult::Data(raw) => Block::decode(file, handle, raw),
        IoResult::Failed(error) => Err(StoreError::Io { file: Some(file), op: "read", error }),
        other => Err(StoreError::Io {
            file: Some(file),
            op: "read",
            error: strata_engine::lsm::io::IoError::Other(format!("unexpected completion {other:?}")),
        }),
    }
}

/// Runs `f` over a snapshot of `store`, reading the blocks it misses, until it answers
/// something other than `Pending`.
fn with_reader<T>(
    store: &Store,
    backend: &mut dyn Backend,
    hub: &mut Hub,
    mut f: impl FnMut(&mut WatchHub, &StoreSnapshot<'_>) -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    let Hub { hub, own, cache } = hub;
    loop {
        let need = {
            let snap = StoreSnapshot::new(store, own, cache);
            match f(hub, &snap) {
                Err(EtcdError::Mvcc(MvccError::Read(ReadError::Pending))) => snap.needed(),
                other => {
                    own.clear();
                    return other;
                }
            }
        };
        let Some(n) = need else { return Err(EtcdError::Mvcc(MvccError::Read(ReadError::Pending))) };
        match read_block(backend, n.file, n.handle) {
            Ok(b) => {
                own.insert((n.file.number, n.handle.offset), b);
            }
            Err(_) => return Err(EtcdError::Corrupt { key: Vec::new(), reason: "reading a block for the watch hub failed" }),
        }
    }
}

fn unexpected(what: &str, r: &Response) -> DbError {
    DbError::Storage(format!("{what} answered {r:?} (a bug)"))
}
