//! The MVCC executor: runs the pure commands of [`crate::mvcc`] against the LSM store.
//!
//! The executor is a state machine beside the [`Store`], not over it: its input methods take
//! `&mut Store`, it submits ordinary [`Request::Write`]s (and a `Get`/`Sync` of its own
//! metadata), remembers the [`ReqId`]s it owns, and the driver routes their replies back.
//!
//! * **Reads.** A command runs against a [`snapshot::StoreSnapshot`] of the store's current
//!   state (memtables + files at the visible sequence number). When it needs an SST block that
//!   is not in memory it stops with `Pending`; the executor asks the driver for the block
//!   ([`ExecOutput::ReadBlock`]) and runs the command again once [`Executor::handle_block`]
//!   brings it. The blocks a command was given stay with it until it finishes, so each rerun
//!   gets further.
//! * **Latches.** A writing command holds its keys' latches from its first run until its batch
//!   is applied (the store's `Written` reply), so its reads and its write are one atomic step
//!   for every other command on those keys. Reads do not latch, but wait while a key they
//!   read is latched: a one-phase commit writes no lock, and a read at a later ts must not
//!   pass it while it is in flight. See [`latch`].
//! * **Writes.** Each command's batch is one `Request::Write`; the reply goes out when the
//!   store reports it applied (durable, in `SyncEachWrite`). Every applied batch that commits
//!   something also yields [`ExecOutput::Applied`] (commit ts + changes) for a watch hub.
//! * **Timestamps.** The oracle ([`Tso`]) lives here. Its reservation mark is written under
//!   [`TSO_MARK_KEY`] and synced before any timestamp above the old mark is issued; opening
//!   reads the mark back, so no timestamp is issued twice across restarts. A one-phase commit
//!   draws its commit ts while holding its latches, above every timestamp issued before, so
//!   no read that already has a timestamp can need it (DESIGN's 1PC rule).
//!
//! # Calling protocol
//!
//! ```text
//! let mut exec = Executor::open(config, now, &mut store);   // the store must be open
//! loop {
//!     // the driver drains store.poll(); for each Output::Reply { id, result }:
//!     if !exec.handle_store_reply(now, &mut store, id, result) { /* another layer's */ }
//!     while let Some(out) = exec.poll() {                    // drain after every input
//!         match out {
//!             ExecOutput::ReadBlock { file, handle } => read + Block::decode it, then
//!                 exec.handle_block(now, &mut store, file, handle, result),
//!             ExecOutput::Reply { id, result }     => answer command `id`,
//!             ExecOutput::Applied(a)               => feed a watch hub (or drop it),
//!             ExecOutput::Recovered(r)             => opening finished (or failed),
//!         }
//!     }
//!     // inputs: exec.submit(now, &mut store, command) -> CmdId
//! }
//! ```
//!
//! The executor has no timers (`next_deadline` is always `None`). Its outputs depend only on
//! its config and its inputs, so a simulated run replays exactly.
pub mod applied;
pub mod command;
pub mod etcd;
mod fast;
mod latch;
mod resolved;
pub mod snapshot;

use crate::lsm::batch::Batch;
use crate::lsm::cache::BlockCache;
use crate::lsm::error::Error as StoreError;
use crate::lsm::hash::FixedState;
use crate::lsm::io::FileName;
use crate::lsm::sstable::{Block, BlockHandle};
use crate::lsm::store::{Reply, ReqId, Request, Store};
use crate::lsm::version::Version;
use crate::mvcc::error::{EtcdError, MvccError, ReadError};
use crate::mvcc::tso::{Tso, TsoError};
use crate::mvcc::Ts;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use applied::Applied;
use command::{Command, Footprint, Response, RunContext};
use core::cell::RefCell;
use hashbrown::HashMap;
use latch::Latches;
use alloc::boxed::Box;
use snapshot::{BlockMap, BlockSource, NeededBlock, StoreSnapshot};

/// The store key of the timestamp oracle's durable mark (`m` namespace; value: u64 BE).
pub const TSO_MARK_KEY: &[u8] = &[crate::mvcc::codec::META_NAMESPACE, b't', b's', b'o'];

/// Identifies a command; its reply carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CmdId(pub u64);

/// Configuration of an [`Executor`].
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// Timestamps reserved per durable mark, in ms of physical time (TiKV's PD: 3000).
    pub tso_window_ms: u64,
    /// Bytes of SST blocks the executor keeps for its commands' reads.
    pub block_cache_bytes: usize,
    /// Emit [`ExecOutput::Applied`] for committed batches (off: a driver with no consumer
    /// saves the copies).
    pub applied_notifications: bool,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig { tso_window_ms: 3_000, block_cache_bytes: 8 << 20, applied_notifications: true }
    }
}

/// Why a command failed. A failed command changed nothing, except [`ExecError::Store`] on a
/// write, which leaves the store as the store's error says (a failed WAL write is not applied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecError {
    /// The pure command refused (a conflict, a lock, a missing transaction, ...).
    Mvcc(MvccError),
    /// An etcd command refused (`Compacted`, a missing lease, an invalid request, ...).
    Etcd(EtcdError),
    /// The store failed the write or a block read.
    Store(StoreError),
    /// The timestamp space (or the time input) is out of range.
    TsoOutOfRange,
    /// Opening found a timestamp mark that is not 8 bytes: the executor refuses to run.
    BadTsoMark {
        /// The stored value's length.
        len: usize,
    },
}

impl From<MvccError> for ExecError {
    fn from(e: MvccError) -> Self {
        ExecError::Mvcc(e)
    }
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::Mvcc(e) => e.fmt(f),
            ExecError::Etcd(e) => e.fmt(f),
            ExecError::Store(e) => e.fmt(f),
            ExecError::TsoOutOfRange => f.write_str("timestamp out of range"),
            ExecError::BadTsoMark { len } => write!(f, "stored timestamp mark has {len} bytes, not 8"),
        }
    }
}

/// Something the driver must act on.
#[derive(Debug)]
#[must_use]
pub enum ExecOutput {
    /// Read this block (cache or disk, [`Block::decode`]), then [`Executor::handle_block`].
    ReadBlock {
        /// The table.
        file: FileName,
        /// The block.
        handle: BlockHandle,
    },
    /// The answer to command `id`.
    Reply {
        /// The command.
        id: CmdId,
        /// Its outcome.
        result: Result<Response, ExecError>,
    },
    /// A batch committing changes was applied.
    Applied(Applied),
    /// Opening finished: the oracle's recovered mark, or why the executor cannot run.
    Recovered(Result<Ts, ExecError>),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Commands run to an answer.
    pub commands: u64,
    /// Runs stopped by a missing block (each followed by a rerun).
    pub pending_runs: u64,
    /// Blocks asked of the driver.
    pub block_reads: u64,
    /// Batches written.
    pub batches: u64,
    /// Timestamp marks persisted.
    pub reservations: u64,
}

#[derive(Debug)]
enum Phase {
    Recovering(ReqId),
    Ready,
    Failed(ExecError),
}

/// A started command.
#[derive(Debug)]
struct Active {
    cmd: Command,
    /// The keys it latched.
    latched: Vec<Vec<u8>>,
    /// It latched the one key of [`Command::single_key`] (and `latched` is empty).
    latched_single: bool,
    own: BlockMap,
    /// Holds the files of the view a pending block belongs to.
    _view: Option<Arc<Version>>,
}

#[derive(Debug)]
struct InFlight {
    id: CmdId,
    response: Response,
    applied: Vec<Applied>,
    /// Submitted while applied notifications were off (its changes are not in `applied`).
    unnotified: bool,
    /// The batch's lock deletes, for the lock tracker once it is applied.
    lock_deletes: Vec<Vec<u8>>,
    /// A write of [`Executor::write_now`] (no running command): the key it latched.
    latched: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Write,
    Sync,
}

enum Outcome {
    Write(Response, Batch, Vec<Applied>),
    Need(Option<NeededBlock>, Arc<Version>),
    Fail(ExecError),
}

/// The executor state machine. See the module docs for the calling protocol.
pub struct Executor {
    config: ExecConfig,
    phase: Phase,
    tso: Tso,
    next_cmd: u64,
    queue: VecDeque<(CmdId, Command)>,
    latches: Latches,
    /// Running commands. (Hash maps keep their memory between commands, where a `BTreeMap`
    /// allocates and frees a node each time it fills and empties; nothing iterates them to
    /// decide an output, so their order cannot affect determinism.)
    active: HashMap<CmdId, Active, FixedState>,
    block_waits: BTreeMap<(u64, u64), Vec<CmdId>>,
    ts_waits: VecDeque<CmdId>,
    writes: HashMap<ReqId, InFlight, FixedState>,
    reservations: BTreeMap<ReqId, (Ts, Stage)>,
    /// A mark whose write failed, to write again when a timestamp is wanted.
    retry_mark: Option<Ts>,
    outputs: VecDeque<ExecOutput>,
    cache: RefCell<BlockCache>,
    /// The driver's own block cache, if it shares one ([`Executor::set_block_source`]).
    source: Option<Box<dyn BlockSource>>,
    stats: ExecStats,
    locks: resolved::LockTracker,
    /// The tracker names every lock the store can hold ([`Executor::seed_locks`] was called):
    /// lock probes of other keys need not read the store.
    locks_seeded: bool,
    /// Writes in flight submitted while applied notifications were off.
    unnotified: usize,
    /// The snapshot readers' key buffer, kept between runs.
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Executor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Executor")
            .field("phase", &self.phase)
            .field("queued", &self.queue.len())
            .field("active", &self.active.len())
            .field("latches", &self.latches.len())
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Starts an executor over an open `store`: reads the oracle's mark back first (commands
    /// submitted meanwhile wait). [`ExecOutput::Recovered`] tells when it is done.
    pub fn open(config: ExecConfig, now_ms: u64, store: &mut Store) -> Executor {
        let rid = store.submit(now_ms, Request::Get { key: TSO_MARK_KEY.to_vec(), snapshot: None });
        Executor {
            phase: Phase::Recovering(rid),
            tso: Tso::new(config.tso_window_ms.max(1)),
            next_cmd: 0,
            queue: VecDeque::new(),
            latches: Latches::default(),
            active: HashMap::with_hasher(FixedState),
            block_waits: BTreeMap::new(),
            ts_waits: VecDeque::new(),
            writes: HashMap::with_hasher(FixedState),
            reservations: BTreeMap::new(),
            retry_mark: None,
            outputs: VecDeque::new(),
            cache: RefCell::new(BlockCache::new(config.block_cache_bytes)),
            source: None,
            stats: ExecStats::default(),
            locks: resolved::LockTracker::default(),
            locks_seeded: false,
            unnotified: 0,
            scratch: Vec::new(),
            config,
        }
    }

    /// Lets commands take blocks from the driver's memory (a block cache it shares with other
    /// readers) before asking for them with [`ExecOutput::ReadBlock`]. Blocks are immutable,
    /// so where a block comes from never changes an answer; a driver without one (the
    /// simulator) gets every block through `ReadBlock`.
    pub fn set_block_source(&mut self, source: Box<dyn BlockSource>) {
        self.source = Some(source);
    }

    /// Turns [`ExecOutput::Applied`] on or off from now on ([`ExecConfig::applied_notifications`]
    /// is the initial setting). A driver with no consumer saves extracting every batch's
    /// changes. After turning them on, a consumer that must see *every* commit from the
    /// resolved ts on waits until [`Executor::unnotified_writes`] is zero: the writes still in
    /// flight from before were not extracted, and [`Executor::resolved_ts`] does not account
    /// for them.
    pub fn set_applied_notifications(&mut self, on: bool) {
        self.config.applied_notifications = on;
    }

    /// Writes in flight that were submitted while applied notifications were off.
    pub fn unnotified_writes(&self) -> usize {
        self.unnotified
    }

    /// True once opening succeeded.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// The oracle (its last issued timestamp and durable mark).
    pub fn tso(&self) -> &Tso {
        &self.tso
    }

    /// Counters.
    pub fn stats(&self) -> ExecStats {
        self.stats
    }

    /// When the executor wants a timeout: never (it has no timers).
    pub fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// True when no command is queued or running and no write of its own is in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.active.is_empty() && self.writes.is_empty() && self.reservations.is_empty() && self.outputs.is_empty()
    }

    /// Takes the next output. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<ExecOutput> {
        self.outputs.pop_front()
    }

    /// Submits a command; its reply comes out of [`Executor::poll`] with the returned id.
    pub fn submit(&mut self, now_ms: u64, store: &mut Store, cmd: Command) -> CmdId {
        let id = CmdId(self.next_cmd);
        self.next_cmd += 1;
        if let Phase::Failed(e) = &self.phase {
            let e = e.clone();
            self.outputs.push_back(ExecOutput::Reply { id, result: Err(e) });
            return id;
        }
        if self.queue.is_empty() && self.is_ready() {
            // Nothing waits ahead of it: start it now if its keys are free (the common,
            // uncontended case skips the queue; a one-key command builds no footprint).
            let started = match cmd.single_key() {
                Some((key, write)) if !self.latches.is_held(key) => {
                    if write {
                        self.latches.acquire_one(key, id);
                    }
                    self.active.insert(id, Active { cmd, latched: Vec::new(), latched_single: write, own: BlockMap::new(), _view: None });
                    true
                }
                Some(_) => {
                    self.queue.push_back((id, cmd));
                    false
                }
                None => {
                    let fp = cmd.footprint();
                    if self.latches.blocks(&fp, &BTreeSet::new()) {
                        self.queue.push_back((id, cmd));
                        false
                    } else {
                        self.start(id, cmd, fp);
                        true
                    }
                }
            };
            if started {
                self.run(now_ms, store, id);
            }
            self.drive(now_ms, store);
            return id;
        }
        self.queue.push_back((id, cmd));
        self.drive(now_ms, store);
        id
    }

    /// True when the store request `id` is one of the executor's (its reply must go to
    /// [`Executor::handle_store_reply`]).
    pub fn owns(&self, id: ReqId) -> bool {
        matches!(self.phase, Phase::Recovering(rid) if rid == id) || self.writes.contains_key(&id) || self.reservations.contains_key(&id)
    }

    /// Feeds a store reply. Returns false when `id` is not one of the executor's requests
    /// (the reply belongs to another layer).
    pub fn handle_store_reply(&mut self, now_ms: u64, store: &mut Store, id: ReqId, result: Result<Reply, StoreError>) -> bool {
        if matches!(self.phase, Phase::Recovering(rid) if rid == id) {
            self.recovered(result);
        } else if let Some(mut w) = self.writes.remove(&id) {
            if let Some(k) = w.latched.take() {
                self.latches.release_one(&k, w.id);
                self.latches.give_back(k);
            }
            match result {
                Ok(_) => {
                    self.stats.batches += 1;
                    self.unnotified -= usize::from(w.unnotified);
                    self.locks.applied(&w.lock_deletes);
                    self.outputs.extend(w.applied.into_iter().map(ExecOutput::Applied));
                    self.finish(w.id, Ok(w.response));
                }
                Err(e) => {
                    self.unnotified -= usize::from(w.unnotified);
                    self.finish(w.id, Err(ExecError::Store(e)));
                }
            }
        } else if let Some((mark, stage)) = self.reservations.remove(&id) {
            self.reserved(now_ms, store, mark, stage, result);
        } else {
            return false;
        }
        self.drive(now_ms, store);
        true
    }

    /// Feeds the block asked for by [`ExecOutput::ReadBlock`] (or the error reading it).
    pub fn handle_block(&mut self, now_ms: u64, store: &mut Store, file: FileName, handle: BlockHandle, result: Result<Block, StoreError>) {
        let Some(ids) = self.block_waits.remove(&(file.number, handle.offset)) else { return };
        match result {
            Ok(block) => {
                self.cache.borrow_mut().insert(file.number, handle.offset, block.clone());
                for id in ids {
                    if let Some(a) = self.active.get_mut(&id) {
                        a.own.insert((file.number, handle.offset), block.clone());
                        a._view = None;
                        self.run(now_ms, store, id);
                    }
                }
            }
            Err(e) => {
                for id in ids {
                    self.finish(id, Err(ExecError::Store(e.clone())));
                }
            }
        }
        self.drive(now_ms, store);
    }

    /// The resolved ts (see [`resolved`]): every commit below it is applied, and every later
    /// one will be reported by [`ExecOutput::Applied`] (with notifications on). Exact only
    /// after [`Executor::seed_locks`] was given the locks the store held at start, and while
    /// no write submitted with notifications off is in flight
    /// ([`Executor::unnotified_writes`]).
    pub fn resolved_ts(&self) -> Ts {
        let mut r = self.tso.last().next();
        if let Some(t) = self.locks.oldest() {
            r = r.min(t);
        }
        for w in self.writes.values() {
            if let Some(a) = w.applied.first() {
                r = r.min(a.commit_ts);
            }
        }
        r
    }

    /// The start ts of the oldest lock the executor knows of (GC's safe point stays below it).
    pub fn oldest_lock_ts(&self) -> Option<Ts> {
        self.locks.oldest()
    }

    /// Live locks tracked.
    pub fn tracked_locks(&self) -> usize {
        self.locks.len()
    }

    /// Adds the locks the store held before this executor wrote anything (the answer of a
    /// `Command::ScanLocks` over the whole key space, run before any writing command).
    ///
    /// Once seeded, the executor's commands answer lock probes from its lock table: a key it
    /// saw no lock written for (and that was not seeded) has none, and no store read is made.
    /// `locks` must include every lock the store held when the executor opened and still
    /// holds (locks written since are tracked anyway): the answer of a `ScanLocks` over the
    /// whole key space run after opening.
    pub fn seed_locks(&mut self, locks: &[(Vec<u8>, crate::mvcc::record::Lock)]) {
        self.locks.seed(locks);
        self.locks_seeded = true;
    }

    /// Panics when an internal invariant is broken (tests call it after every step).
    pub fn check_invariants(&self) {
        for (k, id) in self.latches.iter() {
            if self.writes.values().any(|w| w.id == *id && w.latched.as_ref() == Some(k)) {
                continue;
            }
            let a = self.active.get(id).expect("a latch holder is running or writing");
            let single = a.latched_single && a.cmd.single_key() == Some((k.as_slice(), true));
            assert!(single || a.latched.contains(k), "latch of {id:?} not in its footprint");
        }
        for ids in self.block_waits.values() {
            assert!(ids.iter().all(|id| self.active.contains_key(id)), "block waiter not running");
        }
        assert!(self.ts_waits.iter().all(|id| self.active.contains_key(id)), "timestamp waiter not running");
        assert!(self.writes.values().all(|w| w.latched.is_some() || self.active.contains_key(&w.id)), "writer not running");
        assert_eq!(self.unnotified, self.writes.values().filter(|w| w.unnotified).count(), "unnotified writes miscounted");
        assert!(self.tso.last() <= self.tso.durable_until(), "timestamp issued above the durable mark");
    }

    // ----- internals -----

    fn recovered(&mut self, result: Result<Reply, StoreError>) {
        let mark = match result {
            Ok(Reply::Value(None)) => Ok(Ts::ZERO),
            Ok(Reply::Value(Some(v))) => match <[u8; 8]>::try_from(v.as_slice()) {
                Ok(b) => Ok(Ts(u64::from_be_bytes(b))),
                Err(_) => Err(ExecError::BadTsoMark { len: v.len() }),
            },
            Ok(_) => Err(ExecError::Store(StoreError::NotOpen)),
            Err(e) => Err(ExecError::Store(e)),
        };
        match &mark {
            Ok(m) => {
                self.tso = Tso::recover(*m, self.config.tso_window_ms.max(1));
                self.phase = Phase::Ready;
            }
            Err(e) => {
                self.phase = Phase::Failed(e.clone());
                for (id, _) in core::mem::take(&mut self.queue) {
                    self.outputs.push_back(ExecOutput::Reply { id, result: Err(e.clone()) });
                }
            }
        }
        self.outputs.push_back(ExecOutput::Recovered(mark));
    }

    fn reserved(&mut self, now_ms: u64, store: &mut Store, mark: Ts, stage: Stage, result: Result<Reply, StoreError>) {
        match (stage, result) {
            (Stage::Write, Ok(_)) => {
                let sid = store.submit(now_ms, Request::Sync);
                self.reservations.insert(sid, (mark, Stage::Sync));
            }
            (Stage::Sync, Ok(_)) => {
                self.stats.reservations += 1;
                self.tso.handle_reserved(mark);
                for id in core::mem::take(&mut self.ts_waits) {
                    self.run(now_ms, store, id);
                }
            }
            (_, Err(e)) => {
                self.retry_mark = Some(self.retry_mark.map_or(mark, |m| m.max(mark)));
                for id in core::mem::take(&mut self.ts_waits) {
                    self.finish(id, Err(ExecError::Store(e.clone())));
                }
            }
        }
    }

    /// Persists the marks the oracle asks for.
    fn reserve(&mut self, now_ms: u64, store: &mut Store) {
        let mut marks: Vec<Ts> = Vec::new();
        while let Some(m) = self.tso.poll_reservation() {
            marks.push(m);
        }
        if !self.ts_waits.is_empty() && self.reservations.is_empty() {
            marks.extend(self.retry_mark.take());
        }
        for mark in marks {
            let mut b = Batch::new();
            b.put(TSO_MARK_KEY, &mark.0.to_be_bytes());
            let rid = store.submit(now_ms, Request::Write(b));
            self.reservations.insert(rid, (mark, Stage::Write));
        }
    }

    /// Starts every queued command that may start, until none can.
    fn drive(&mut self, now_ms: u64, store: &mut Store) {
        if !self.is_ready() {
            return;
        }
        loop {
            let started = self.start_ready();
            if started.is_empty() {
                break;
            }
            for id in started {
                self.run(now_ms, store, id);
            }
        }
        self.reserve(now_ms, store);
    }

    /// Moves the commands that may start from the queue to `active` (latching their keys).
    fn start_ready(&mut self) -> Vec<CmdId> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        let mut claimed: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut started = Vec::new();
        let mut waiting = VecDeque::new();
        for (id, cmd) in core::mem::take(&mut self.queue) {
            let fp = cmd.footprint();
            if self.latches.blocks(&fp, &claimed) {
                if let Footprint::Write(keys) = fp {
                    claimed.extend(keys);
                }
                waiting.push_back((id, cmd));
                continue;
            }
            self.start(id, cmd, fp);
            started.push(id);
        }
        self.queue = waiting;
        started
    }

    /// Makes `cmd` active, latching the keys it writes (they must be free).
    fn start(&mut self, id: CmdId, cmd: Command, fp: Footprint) {
        let latched = match fp {
            Footprint::Write(mut keys) => {
                keys.sort();
                keys.dedup();
                self.latches.acquire(&keys, id);
                keys
            }
            _ => Vec::new(),
        };
        self.active.insert(id, Active { cmd, latched, latched_single: false, own: BlockMap::new(), _view: None });
    }

    /// Runs (or reruns) the active command `id`.
    fn run(&mut self, now_ms: u64, store: &mut Store, id: CmdId) {
        let Some(a) = self.active.get(&id) else { return };
        let wants_start = a.cmd.wants_start_ts();
        let draws = usize::from(wants_start) + usize::from(a.cmd.needs_ts());
        let mut stamps = [Ts::ZERO; 2];
        for slot in stamps.iter_mut().take(draws) {
            match self.tso.next(now_ms) {
                Ok(t) => *slot = t,
                Err(TsoError::Reserving { .. }) => {
                    self.ts_waits.push_back(id);
                    self.reserve(now_ms, store);
                    return;
                }
                Err(TsoError::OutOfRange) => {
                    self.finish(id, Err(ExecError::TsoOutOfRange));
                    return;
                }
            }
        }
        let ts = if wants_start {
            if let Some(a) = self.active.get_mut(&id) {
                a.cmd.set_start_ts(stamps[0]);
            }
            stamps[1]
        } else {
            stamps[0]
        };
        let scratch = core::mem::take(&mut self.scratch);
        let Some(a) = self.active.get(&id) else { return };
        let (outcome, scratch) = {
            let filter = self.locks_seeded.then_some(resolved::LockFilter(&self.locks));
            let snap = StoreSnapshot::new(store, &a.own, &self.cache).with_source(self.source.as_deref()).with_lock_filter(filter).with_scratch(scratch);
            // TTLs are measured on the oracle's clock, which runs ahead of `now` after a
            // restart (it resumes above the reserved mark): a lock's age is then the distance
            // between two timestamps of the same clock, as TiKV measures it against PD's.
            let clock_ms = now_ms.max(self.tso.last().physical_ms());
            let ctx = RunContext { now_ms: clock_ms, ts };
            let notify = self.config.applied_notifications;
            let result = a.cmd.run(&snap, ctx).and_then(|(resp, batch)| {
                let applied = if notify && !batch.is_empty() { applied::extract(&snap, &batch)? } else { Vec::new() };
                Ok((resp, batch, applied))
            });
            let outcome = match result {
                Ok((resp, batch, applied)) => Outcome::Write(resp, batch, applied),
                Err(EtcdError::Mvcc(MvccError::Read(ReadError::Pending))) => Outcome::Need(snap.needed(), snap.view().version.clone()),
                Err(EtcdError::Mvcc(e)) => Outcome::Fail(ExecError::Mvcc(e)),
                Err(e) => Outcome::Fail(ExecError::Etcd(e)),
            };
            (outcome, snap.into_scratch())
        };
        self.scratch = scratch;
        match outcome {
            Outcome::Write(resp, batch, applied) => {
                if batch.is_empty() {
                    self.finish(id, Ok(resp));
                } else {
                    let lock_deletes = self.locks.submitted(&batch);
                    let rid = store.submit(now_ms, Request::Write(batch));
                    let unnotified = !self.config.applied_notifications;
                    self.unnotified += usize::from(unnotified);
                    self.writes.insert(rid, InFlight { id, response: resp, applied, unnotified, lock_deletes, latched: None });
                }
            }
            Outcome::Need(Some(need), view) => {
                self.stats.pending_runs += 1;
                if let Some(a) = self.active.get_mut(&id) {
                    a._view = Some(view);
                }
                let waiters = self.block_waits.entry((need.file.number, need.handle.offset)).or_default();
                if waiters.is_empty() {
                    self.stats.block_reads += 1;
                    self.outputs.push_back(ExecOutput::ReadBlock { file: need.file, handle: need.handle });
                }
                waiters.push(id);
            }
            Outcome::Need(None, _) => self.finish(id, Err(ExecError::Mvcc(MvccError::Read(ReadError::Pending)))),
            Outcome::Fail(e) => self.finish(id, Err(e)),
        }
    }

    /// Ends command `id`: releases its latches and replies.
    fn finish(&mut self, id: CmdId, result: Result<Response, ExecError>) {
        if let Some(a) = self.active.remove(&id) {
            if a.latched_single {
                if let Some((key, _)) = a.cmd.single_key() {
                    self.latches.release_one(key, id);
                }
            }
            self.latches.release(&a.latched, id);
        }
        self.stats.commands += 1;
        self.outputs.push_back(ExecOutput::Reply { id, result });
    }
}
