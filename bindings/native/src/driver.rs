//! The thread model: one [`Store`] behind a mutex, driven by whichever threads call it.
//!
//! * **Requests** (writes, syncs, flushes) are submitted under the lock. The outputs are drained
//!   at once: replies go to a table the waiting callers read, jobs to the background thread, I/O
//!   requests to a FIFO queue.
//! * **I/O** is carried out by one *driver* at a time, outside the lock, in the order the store
//!   emitted it (the core's per-file ordering rule). The driver is simply a caller that found I/O
//!   queued and nobody driving: it takes the whole queue, performs it without the lock
//!   (`write`/`fdatasync` on cached handles), re-locks and feeds the completions. While it runs
//!   an `fdatasync`, other writers append their records to the store's WAL buffer and wait, so
//!   the next sync covers all of them: group commit falls out of the protocol, with no timer.
//! * A driver whose own reply has arrived hands off to a waiting caller (which wakes and becomes
//!   the driver) rather than serving others' I/O; with no waiter it finishes the queue itself,
//!   so I/O is never left behind.
//! * **Group commit gathering** (`SyncEachWrite`): the store holds a group of writes until the
//!   writers expected back have queued, released at the latest one recent sync later
//!   ([`crate::gather`]). Every wait on the condition variable wakes by that deadline, and
//!   whoever wakes after it releases the group.
//! * **Jobs** (flushes, compactions) run on one background thread, which also feeds the store's
//!   timer (`Durability::SyncEveryMs`) and drives any I/O left over.
//! * **Reads** take the lock only to consult the memtables and take a read view; SST blocks are
//!   then read (shared block cache, then `pread`) without the lock.
//! * **Streams** (a versioned `Db`): the stream engine sits in the state beside the store and
//!   is fed its store replies and timers here (`crate::streams::side`). Lock order: this lock
//!   and the broker hub's lock are never held together — nothing publishes into the hub while
//!   holding this lock (acknowledgements to reply subjects go through the ack thread).
use crate::cache::SharedCache;
use crate::disk::{io_error, Disk};
use crate::error::{Error, Result, StoreError};
use crate::gather::Gather;
use crate::streams::side::StreamSide;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::hash::FixedState;
use strata_engine::lsm::io::{FileKind, FileName, IoId, IoRequest, IoResult};
use strata_engine::lsm::job::{Job, JobStep};
use strata_engine::lsm::sstable::{Block, BlockHandle};
use strata_engine::lsm::store::{Output, ReqId, Reply, Request, Store};
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::snapshot::BlockSource;
use strata_engine::mvcc::exec::{CmdId, ExecConfig, ExecError, ExecOutput, Executor};

/// The shared block cache as the MVCC executor's [`BlockSource`].
struct CacheSource(Arc<SharedCache>);

impl BlockSource for CacheSource {
    fn cached_block(&self, file_number: u64, offset: u64) -> Option<Block> {
        self.0.with(file_number, offset, Block::clone).ok()
    }
}

/// Everything the callers and the background thread share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when replies arrive, the driver role frees up, jobs or I/O are queued, or the
    /// database closes. Everybody waits on it and re-checks their own condition.
    cond: Condvar,
    /// Signalled when watchers have new responses (or the database closes).
    pub(crate) watch_cond: Condvar,
    pub(crate) disk: Disk,
    pub(crate) cache: Arc<SharedCache>,
    start: Instant,
    durability: Durability,
}

pub(crate) struct State {
    pub(crate) store: Store,
    /// Replies by request id (ids are sequence numbers: a fixed, cheap hash serves).
    replies: HashMap<ReqId, std::result::Result<Reply, StoreError>, FixedState>,
    io: VecDeque<(IoId, IoRequest)>,
    jobs: VecDeque<Job>,
    driving: bool,
    waiters: usize,
    opened: Option<std::result::Result<(), StoreError>>,
    /// Set by close: no new requests or jobs.
    pub(crate) closing: bool,
    /// A job is running outside the lock.
    job_running: bool,
    /// The background thread died (a bug in the core or here): nothing would run jobs, so
    /// callers get `Error::Closed` rather than wait forever.
    background_dead: bool,
    /// The MVCC executor, for a versioned [`crate::Db`] (a raw one has none).
    pub(crate) exec: Option<Executor>,
    /// The revision watch hub, while a versioned `Db` has watchers (`crate::revwatch`).
    pub(crate) watch: Option<crate::revwatch::HubState>,
    exec_replies: HashMap<CmdId, std::result::Result<Response, ExecError>, FixedState>,
    /// The command whose caller is absorbing right now: its reply lands in `exec_slot` instead
    /// of `exec_replies` (set and cleared under one hold of the lock).
    exec_mine: Option<CmdId>,
    exec_slot: Option<std::result::Result<Response, ExecError>>,
    exec_opened: Option<std::result::Result<(), ExecError>>,
    /// The stream engine and its routing tables, for a versioned [`crate::Db`].
    pub(crate) side: StreamSide,
    /// Group commit gathering (`SyncEachWrite`).
    gather: Gather,
}

type Reply1 = Option<std::result::Result<Reply, StoreError>>;

impl Shared {
    pub(crate) fn new(store: Store, disk: Disk, cache: SharedCache, durability: Durability) -> Shared {
        let state = State {
            store,
            replies: HashMap::with_hasher(FixedState),
            io: VecDeque::new(),
            jobs: VecDeque::new(),
            driving: false,
            waiters: 0,
            opened: None,
            closing: false,
            job_running: false,
            background_dead: false,
            exec: None,
            watch: None,
            exec_replies: HashMap::with_hasher(FixedState),
            exec_mine: None,
            exec_slot: None,
            exec_opened: None,
            side: StreamSide::default(),
            gather: Gather::new(durability == Durability::SyncEachWrite),
        };
        Shared { state: Mutex::new(state), cond: Condvar::new(), watch_cond: Condvar::new(), disk, cache: Arc::new(cache), start: Instant::now(), durability }
    }

    /// The store's clock: milliseconds since open.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in this crate or the core; the state is still
        // the store's own, so keep serving rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before a caller leaves with its answer: I/O still queued goes to a waiting thread, or
    /// is driven here when nobody waits (nobody else would pick it up).
    fn hand_off(&self, st: MutexGuard<'_, State>) {
        if !st.io.is_empty() && !st.driving {
            if st.waiters > 0 {
                self.cond.notify_all();
            } else {
                let mut none = None;
                drop(self.drive(st, None, &mut none));
            }
        }
    }

    /// Waits for a signal — or until a held group is due, which this thread then releases.
    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let Some(deadline) = st.gather.deadline() else {
            return self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let mut st = if left.is_zero() {
            st
        } else {
            self.cond.wait_timeout(st, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0)
        };
        self.release_due_group(&mut st);
        st
    }

    /// Releases the held group if its deadline has passed.
    fn release_due_group(&self, st: &mut State) {
        if st.gather.deadline().is_some_and(|d| Instant::now() >= d) {
            st.store.release_group(self.now_ms());
            let mut none = None;
            self.absorb(st, None, &mut none);
        }
    }

    /// Runs recovery on the calling thread: drives I/O until the store reports `Opened`.
    pub(crate) fn recover(&self) -> Result<()> {
        let mut st = self.lock();
        let mut none = None;
        self.absorb(&mut st, None, &mut none);
        loop {
            if let Some(r) = st.opened.clone() {
                return r.map_err(Error::Store);
            }
            if st.io.is_empty() {
                return Err(Error::Store(StoreError::NotOpen));
            }
            st = self.drive(st, None, &mut none);
        }
    }

    /// Drains the store's outputs into the queues. A reply to `mine` lands in `slot` instead of
    /// the table (the common, uncontended case costs no hashing).
    fn absorb(&self, st: &mut State, mine: Option<ReqId>, slot: &mut Reply1) {
        self.absorb_as(st, mine, slot, false);
    }

    /// [`absorb`](Self::absorb) by a caller that will itself drive queued I/O when nobody
    /// drives, and wait with the group's deadline (`call` right after submitting): waking the
    /// others for either would only send them back to sleep.
    fn absorb_as(&self, st: &mut State, mine: Option<ReqId>, slot: &mut Reply1, caller_drives: bool) {
        let mut wake = false;
        loop {
            while let Some(out) = st.store.poll() {
                match out {
                    Output::Reply { id, result } if Some(id) == mine => *slot = Some(result),
                    Output::Reply { id, result } if st.exec.as_ref().is_some_and(|e| e.owns(id)) => {
                        let now = Self::exec_now_ms();
                        if let Some(e) = st.exec.as_mut() {
                            e.handle_store_reply(now, &mut st.store, id, result);
                        }
                    }
                    Output::Reply { id, result } => {
                        if st.side.engine.is_some() && st.side.handle_reply(Self::exec_now_ms(), &mut st.store, id, &result) {
                            continue;
                        }
                        st.replies.insert(id, result);
                        wake = true;
                    }
                    Output::Io { id, req } => {
                        st.io.push_back((id, req));
                        wake |= st.waiters > 0 && (!caller_drives || st.driving);
                    }
                    Output::Job(job) => {
                        if st.closing {
                            // Closing: a job not yet started is dropped (its work is redone after
                            // the next open).
                            drop(job);
                        } else {
                            st.jobs.push_back(job);
                            wake = true;
                        }
                    }
                    Output::Opened(r) => st.opened = Some(r),
                }
            }
            let more = self.absorb_exec(st, &mut wake);
            if st.side.drain() {
                wake = true;
            }
            if !more {
                break;
            }
        }
        if st.watch.is_some() {
            self.advance_watch(st);
        }
        if st.gather.enabled() && st.gather.observe(st.store.wal_group().holding) {
            // Waiters sleeping without a timeout must re-arm with the group's deadline (unless
            // the caller, who will wait with it, is one of the held writers).
            wake |= st.waiters > 0 && !caller_drives;
        }
        if wake {
            self.cond.notify_all();
        }
    }

    /// Drains the executor's outputs; true when that gave the store new outputs to drain.
    /// Block reads are served here, under the lock (from the shared cache, else `pread`).
    fn absorb_exec(&self, st: &mut State, wake: &mut bool) -> bool {
        let State { store, exec, exec_replies, exec_mine, exec_slot, exec_opened, waiters, watch, .. } = st;
        let Some(exec) = exec.as_mut() else { return false };
        // Only callers waiting for a reply care (the background thread does not): with none
        // waiting, a wake-up is a wasted context switch per command.
        let someone_waits = *waiters > 0;
        let mut more = false;
        while let Some(out) = exec.poll() {
            match out {
                ExecOutput::ReadBlock { file, handle } => {
                    let r = self.block(file, handle).map_err(|e| match e {
                        Error::Store(e) => e,
                        other => StoreError::Io { file: Some(file), op: "read", error: strata_engine::lsm::io::IoError::Other(other.to_string()) },
                    });
                    exec.handle_block(Self::exec_now_ms(), store, file, handle, r);
                    more = true;
                }
                ExecOutput::Reply { id, result } if Some(id) == *exec_mine => *exec_slot = Some(result),
                ExecOutput::Reply { id, result } => {
                    exec_replies.insert(id, result);
                    *wake |= someone_waits;
                }
                // Without watchers, applied notifications are dropped.
                ExecOutput::Applied(a) => {
                    if let Some(w) = watch.as_mut() {
                        w.applied(&a);
                    }
                }
                ExecOutput::Recovered(r) => {
                    *exec_opened = Some(r.map(|_| ()));
                    *wake |= someone_waits;
                }
            }
        }
        more
    }

    /// The executor's clock: wall-clock milliseconds since the Unix epoch, so timestamps and
    /// lock TTLs keep their meaning across restarts (the oracle never goes below its durable
    /// mark whatever the clock says).
    pub(crate) fn exec_now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Starts the MVCC executor (reading the oracle's mark back) and waits until it is ready.
    pub(crate) fn start_exec(&self, config: ExecConfig) -> Result<()> {
        let mut st = self.lock();
        if st.exec.is_none() {
            let now = Self::exec_now_ms();
            let mut exec = Executor::open(config, now, &mut st.store);
            // Commands read blocks from the cache every reader shares, as raw reads do.
            exec.set_block_source(Box::new(CacheSource(self.cache.clone())));
            st.exec = Some(exec);
        }
        let mut none = None;
        self.absorb(&mut st, None, &mut none);
        loop {
            if let Some(r) = st.exec_opened.clone() {
                return r.map_err(|e| Error::Store(StoreError::InvalidArgument(strata_engine::lsm::error::InvalidArgument::Other(e.to_string()))));
            }
            if st.background_dead || st.closing {
                return Err(Error::Closed);
            }
            if !st.driving && !st.io.is_empty() {
                st = self.drive(st, None, &mut none);
                continue;
            }
            st.waiters += 1;
            st = self.wait(st);
            st.waiters -= 1;
        }
    }

    /// The start ts of the oldest lock the executor tracks.
    pub(crate) fn oldest_lock_ts(&self) -> Option<strata_engine::mvcc::Ts> {
        self.lock().exec.as_ref().and_then(Executor::oldest_lock_ts)
    }

    /// Hands the executor the locks the store held at open (for its resolved ts).
    pub(crate) fn seed_locks(&self, locks: &[(Vec<u8>, strata_engine::mvcc::record::Lock)]) {
        if let Some(e) = self.lock().exec.as_mut() {
            e.seed_locks(locks);
        }
    }

    /// Runs an MVCC command and waits for its answer (driving I/O when it is this thread's
    /// turn). The outer error is the database's (closed); the inner one the command's.
    pub(crate) fn call_exec(&self, cmd: Command) -> Result<std::result::Result<Response, ExecError>> {
        let r = self.call_exec_with(|exec, now, store| Some(exec.submit(now, store, cmd)))?;
        r.ok_or(Error::Closed)
    }

    /// A one-key put (`value`) or delete (`None`) committed in one phase without a command
    /// (`Executor::write_now`), waited for; `Ok(None)`: it would have had to wait — submit a
    /// `Command::OnePc` instead.
    pub(crate) fn exec_write_now(&self, key: &[u8], value: Option<&[u8]>) -> Result<Option<std::result::Result<Response, ExecError>>> {
        self.call_exec_with(|exec, now, store| exec.write_now(now, store, key, value))
    }

    /// Starts an executor command with `start` (`None`: it declined, and nothing is waited
    /// for) and waits for its answer, as [`Shared::call_exec`].
    fn call_exec_with(&self, start: impl FnOnce(&mut Executor, u64, &mut Store) -> Option<CmdId>) -> Result<Option<std::result::Result<Response, ExecError>>> {
        let mut st = self.lock();
        if st.closing || st.background_dead {
            return Err(Error::Closed);
        }
        let now = Self::exec_now_ms();
        let id = {
            let State { store, exec, .. } = &mut *st;
            let Some(exec) = exec.as_mut() else { return Err(Error::Closed) };
            start(exec, now, store)
        };
        let Some(id) = id else {
            // Declining may still have asked for a timestamp reservation write.
            let mut none = None;
            self.absorb(&mut st, None, &mut none);
            self.hand_off(st);
            return Ok(None);
        };
        let mut none = None;
        // The common case: the reply comes out of this round (no table, no hashing).
        st.exec_mine = Some(id);
        self.absorb(&mut st, None, &mut none);
        st.exec_mine = None;
        if let Some(r) = st.exec_slot.take() {
            self.hand_off(st);
            return Ok(Some(r));
        }
        loop {
            if let Some(r) = st.exec_replies.remove(&id) {
                self.hand_off(st);
                return Ok(Some(r));
            }
            if !st.driving && !st.io.is_empty() {
                st = self.drive(st, None, &mut none);
                continue;
            }
            if st.background_dead && !st.driving {
                return Err(Error::Closed);
            }
            st.waiters += 1;
            st = self.wait(st);
            st.waiters -= 1;
        }
    }

    /// A point read at a fresh timestamp without a command, when the executor can answer at
    /// once (`Executor::get_now`); `Ok(None)`: submit a `Command::Get` instead.
    pub(crate) fn exec_get_now(&self, key: &[u8]) -> Result<Option<std::result::Result<Option<Vec<u8>>, ExecError>>> {
        let mut st = self.lock();
        if st.closing || st.background_dead {
            return Err(Error::Closed);
        }
        let now = Self::exec_now_ms();
        let r = {
            let State { store, exec, .. } = &mut *st;
            let Some(exec) = exec.as_mut() else { return Err(Error::Closed) };
            exec.get_now(now, store, key)
        };
        if r.is_some() {
            // Drawing the timestamp may have asked for a reservation write.
            let mut none = None;
            self.absorb(&mut st, None, &mut none);
            self.hand_off(st);
        }
        Ok(r)
    }

    /// Drives I/O when it is this thread's turn, or waits, until `done` holds (checked after
    /// every round of outputs). `Error::Closed` if the database closes first.
    pub(crate) fn wait_until<'a>(&'a self, mut st: MutexGuard<'a, State>, done: impl Fn(&State) -> bool) -> Result<MutexGuard<'a, State>> {
        let mut none = None;
        loop {
            if done(&st) {
                return Ok(st);
            }
            if st.closing || (st.background_dead && !st.driving) {
                return Err(Error::Closed);
            }
            if !st.driving && !st.io.is_empty() {
                st = self.drive(st, None, &mut none);
                continue;
            }
            st.waiters += 1;
            st = self.wait(st);
            st.waiters -= 1;
        }
    }

    /// Submits `req` and waits for its reply, driving I/O when it is this thread's turn.
    pub(crate) fn call(&self, req: Request) -> Result<Reply> {
        let mut st = self.lock();
        if st.closing || st.background_dead {
            return Err(Error::Closed);
        }
        let gathered = st.gather.enabled() && matches!(req, Request::Write(_));
        if gathered {
            let last = st.store.wal_group().last;
            let target = st.gather.enter(last);
            st.store.set_group_target(self.now_ms(), target);
        }
        let id = st.store.submit(self.now_ms(), req);
        let mut mine = None;
        self.absorb_as(&mut st, Some(id), &mut mine, true);
        loop {
            if mine.is_none() {
                mine = st.replies.remove(&id);
            }
            if let Some(r) = mine {
                if gathered {
                    self.leave_group(&mut st);
                }
                if st.job_running && matches!(self.durability, Durability::SyncEveryMs(_)) {
                    // The background thread is busy with a job: keep the promised sync
                    // interval from here.
                    let now = self.now_ms();
                    if st.store.next_deadline().is_some_and(|d| now >= d) {
                        st.store.handle_timeout(now);
                        let mut none = None;
                        self.absorb(&mut st, None, &mut none);
                    }
                }
                self.hand_off(st);
                return r.map_err(Error::Store);
            }
            if !st.driving && !st.io.is_empty() {
                st = self.drive(st, Some(id), &mut mine);
                continue;
            }
            if st.background_dead && !st.driving {
                if gathered {
                    self.leave_group(&mut st);
                }
                return Err(Error::Closed);
            }
            st.waiters += 1;
            st = self.wait(st);
            st.waiters -= 1;
        }
    }

    /// A gathered write call is leaving (reply taken).
    fn leave_group(&self, st: &mut State) {
        if let Some(target) = st.gather.leave() {
            st.store.set_group_target(self.now_ms(), target);
            let mut none = None;
            self.absorb(st, None, &mut none);
        }
    }

    /// Performs queued I/O as the driver. Stops when the queue is empty, or when the caller's
    /// own reply (`mine`, or no request at all) is in and another caller can take over.
    fn drive<'a>(&'a self, mut st: MutexGuard<'a, State>, mine: Option<ReqId>, slot: &mut Reply1) -> MutexGuard<'a, State> {
        st.driving = true;
        while !st.io.is_empty() {
            let batch: Vec<(IoId, IoRequest)> = st.io.drain(..).collect();
            drop(st);
            let mut synced = None;
            let results: Vec<(IoId, IoResult)> = batch
                .into_iter()
                .map(|(id, req)| {
                    let wal_sync = matches!(req, IoRequest::Sync { file } if file.kind == FileKind::Wal);
                    let start = wal_sync.then(Instant::now);
                    let r = self.perform(req);
                    if let Some(start) = start {
                        synced = Some(start.elapsed());
                    }
                    (id, r)
                })
                .collect();
            st = self.lock();
            if let Some(took) = synced {
                st.gather.note_sync(took);
            }
            let now = self.now_ms();
            for (id, result) in results {
                st.store.handle_io(now, id, result);
            }
            self.absorb(&mut st, mine, slot);
            let done = mine.is_none() || slot.is_some() || mine.is_some_and(|id| st.replies.contains_key(&id));
            if done && st.waiters > 0 {
                break;
            }
        }
        st.driving = false;
        self.cond.notify_all();
        st
    }

    fn perform(&self, req: IoRequest) -> IoResult {
        if let IoRequest::Delete { file } = &req {
            if file.kind == FileKind::Table {
                self.cache.remove_file(file.number);
            }
        }
        self.disk.perform(&req)
    }

    /// A data block: from the shared cache, or read and checked, then cached.
    pub(crate) fn block(&self, file: FileName, handle: BlockHandle) -> Result<Block> {
        if let Ok(b) = self.cache.with(file.number, handle.offset, Block::clone) {
            return Ok(b);
        }
        let block = self.read_block(file, handle)?;
        self.cache.insert(file.number, handle.offset, block.clone());
        Ok(block)
    }

    /// Reads and checks a data block (not cached), into a recycled buffer when the cache has
    /// one.
    fn read_block(&self, file: FileName, handle: BlockHandle) -> Result<Block> {
        let spare = self.cache.spare(file.number, handle.offset, handle.len as usize);
        self.read_block_with(file, handle, spare, |buf, len| Block::decode_prefix(file, handle, buf, len))
    }

    /// [`read_block`](Self::read_block) into `spare` (a recycled buffer from the cache, if
    /// any), checked and decoded by `decode` (e.g. a lookup's
    /// [`Lookup::decode_block`](strata_engine::lsm::read::Lookup::decode_block), which walks
    /// each block's entries only once per table).
    pub(crate) fn read_block_with(
        &self,
        file: FileName,
        handle: BlockHandle,
        spare: Option<Arc<[u8]>>,
        decode: impl FnOnce(Arc<[u8]>, usize) -> std::result::Result<Block, StoreError>,
    ) -> Result<Block> {
        let (buf, len) = self
            .disk
            .read_block(file, handle.offset, handle.len, spare)
            .map_err(|e| Error::Store(StoreError::Io { file: Some(file), op: "read", error: io_error(&e) }))?;
        Ok(decode(buf, len)?)
    }

    /// The background thread: runs jobs, feeds the timer, drives leftover I/O; returns when
    /// the database closes and nothing it started is left.
    pub(crate) fn background(&self) {
        /// Marks the thread dead if it unwinds, and wakes everybody to notice.
        struct Watch<'a>(&'a Shared);
        impl Drop for Watch<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.lock().background_dead = true;
                    self.0.cond.notify_all();
                }
            }
        }
        let _watch = Watch(self);
        let mut st = self.lock();
        loop {
            if !st.closing {
                if let Some(mut job) = st.jobs.pop_front() {
                    st.job_running = true;
                    drop(st);
                    self.run_job(&mut job);
                    st = self.lock();
                    st.store.handle_job(self.now_ms(), job);
                    st.job_running = false;
                    let mut none = None;
                    self.absorb(&mut st, None, &mut none);
                    self.cond.notify_all();
                    continue;
                }
            } else {
                st.jobs.clear();
            }
            if !st.driving && !st.io.is_empty() && st.waiters == 0 {
                let mut none = None;
                st = self.drive(st, None, &mut none);
                continue;
            }
            let now = self.now_ms();
            if let Some(deadline) = st.store.next_deadline() {
                if now >= deadline {
                    st.store.handle_timeout(now);
                    let mut none = None;
                    self.absorb(&mut st, None, &mut none);
                    continue;
                }
            }
            if self.stream_timers(&mut st) {
                continue;
            }
            if st.closing && st.io.is_empty() && !st.driving {
                return;
            }
            st = match self.timer_wait(&mut st, now) {
                Some(d) => self.cond.wait_timeout(st, d).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0),
                None => self.wait(st),
            };
        }
    }

    /// How long the background thread may sleep before the store's timer needs it.
    fn timer_wait(&self, st: &mut State, now: u64) -> Option<Duration> {
        let store = match (st.store.next_deadline(), self.durability) {
            (Some(d), _) => Some(Duration::from_millis(d.saturating_sub(now).max(1))),
            // A write may create a deadline without waking this thread: look again soon.
            (None, Durability::SyncEveryMs(ms)) => Some(Duration::from_millis(ms.max(1))),
            _ => None,
        };
        // The stream engine's deadlines are on the wall clock; a new earlier one wakes this
        // thread (`StreamSide::drain`).
        let streams = st.side.engine.as_ref().and_then(|e| e.next_deadline());
        st.side.planned = streams;
        let streams = streams.map(|d| Duration::from_millis(d.saturating_sub(Self::exec_now_ms()).max(1)));
        match (store, streams) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the stream engine's timers when due; true when it did.
    fn stream_timers(&self, st: &mut State) -> bool {
        let now = Self::exec_now_ms();
        let State { store, side, .. } = st;
        let Some(engine) = side.engine.as_mut() else { return false };
        if engine.next_deadline().is_none_or(|d| d > now) {
            return false;
        }
        engine.handle_timeout(now, store);
        let mut none = None;
        self.absorb(st, None, &mut none);
        true
    }

    /// Runs `f` on the state under the lock (refused once closing), then drains the store's
    /// and the engines' outputs.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> Result<R> {
        let mut st = self.lock();
        if st.closing || st.background_dead {
            return Err(Error::Closed);
        }
        let r = f(&mut st);
        let mut none = None;
        self.absorb(&mut st, None, &mut none);
        Ok(r)
    }

    /// Waits until `ready` yields, driving I/O when it is this thread's turn. Once `deadline`
    /// has passed, `on_deadline` runs under the lock (each time this thread wakes) and, if
    /// `ready` still yields nothing, `None` comes back.
    pub(crate) fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut State) -> Option<T>,
        mut on_deadline: impl FnMut(&mut State),
    ) -> Result<Option<T>> {
        let mut st = self.lock();
        let mut none = None;
        loop {
            if let Some(r) = ready(&mut st) {
                self.hand_off(st);
                return Ok(Some(r));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                on_deadline(&mut st);
                self.absorb(&mut st, None, &mut none);
                let r = ready(&mut st);
                self.hand_off(st);
                return Ok(r);
            }
            if !st.driving && !st.io.is_empty() {
                st = self.drive(st, None, &mut none);
                continue;
            }
            if (st.background_dead || st.closing) && !st.driving {
                return Err(Error::Closed);
            }
            st.waiters += 1;
            st = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                    self.cond.wait_timeout(st, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0)
                }
                None => self.wait(st),
            };
            st.waiters -= 1;
        }
    }

    /// Hands the captured messages to the stream engine (see `streams::capture`). Nobody waits
    /// for these writes: the I/O they need is left to the background thread, or driven here
    /// while a job keeps that thread busy.
    pub(crate) fn flush_capture(&self) {
        let mut st = self.lock();
        if st.closing || st.background_dead {
            return;
        }
        let Some(queue) = st.side.queue.clone() else { return };
        if queue.is_empty() {
            return;
        }
        let items = queue.take();
        let now = Self::exec_now_ms();
        let State { store, side, .. } = &mut *st;
        side.capture(now, store, items);
        let mut none = None;
        self.absorb(&mut st, None, &mut none);
        if !st.io.is_empty() && !st.driving {
            if st.job_running && st.waiters == 0 {
                drop(self.drive(st, None, &mut none));
            } else {
                self.cond.notify_all();
            }
        }
    }

    fn run_job(&self, job: &mut Job) {
        loop {
            match job.step() {
                JobStep::Read { file, offset, len } => {
                    job.handle_read(self.disk.read(file, offset, len).map_err(|e| io_error(&e)));
                }
                JobStep::WriteFile { file, data } => {
                    job.handle_write(self.disk.write_new(file, &data).map_err(|e| io_error(&e)));
                }
                JobStep::Done => return,
            }
        }
    }

    /// Closes: makes buffered writes durable (non-syncing modes), then stops new work and waits
    /// for the running job and the I/O queue. The background thread exits afterwards.
    pub(crate) fn close(&self) -> Result<()> {
        let synced = match self.durability {
            Durability::SyncEachWrite => Ok(()),
            // No WAL: only a flush makes the memtable durable.
            Durability::External => self.call(Request::Flush).map(|_| ()),
            _ => self.call(Request::Sync).map(|_| ()),
        };
        let mut st = self.lock();
        st.closing = true;
        if st.gather.enabled() {
            st.store.set_group_target(self.now_ms(), 1);
            let mut none = None;
            self.absorb(&mut st, None, &mut none);
        }
        // Ends the ack thread.
        st.side.ack_out = None;
        st.jobs.clear();
        self.cond.notify_all();
        self.watch_cond.notify_all();
        while (st.job_running && !st.background_dead) || st.driving || !st.io.is_empty() {
            if !st.driving && !st.io.is_empty() {
                let mut none = None;
                st = self.drive(st, None, &mut none);
                continue;
            }
            st = self.wait(st);
        }
        match synced {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }
}
