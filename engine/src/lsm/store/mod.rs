//! The store: the LSM as one deterministic state machine.
//!
//! # Calling protocol
//!
//! ```text
//! let mut store = Store::open(config);           // recovery starts: I/O requests are queued
//! loop {
//!     while let Some(out) = store.poll() {       // drain every output, in order
//!         match out {
//!             Output::Io { id, req }   => start it; later store.handle_io(now, id, result),
//!             Output::Job(job)         => run it (any thread); then store.handle_job(now, job),
//!             Output::Reply { id, result } => give it to whoever submitted request `id`,
//!             Output::Opened(result)   => recovery finished (or failed: the store is unusable),
//!         }
//!     }
//!     // feed inputs: store.submit(now, request), completions, store.handle_timeout(now)
//!     // when store.next_deadline() has passed.
//! }
//! ```
//!
//! I/O requests for one file must be carried out in the order they were emitted; requests for
//! different files and jobs may run concurrently. Everything the store decides depends only on
//! the config and the sequence of inputs, so a run replays exactly.
//!
//! Reads that do not need ordering with writes can bypass the request queue: a binding takes
//! [`Store::read_view`] (cheap, under its lock) and runs the [`Lookup`] on its own thread.
use super::batch::Batch;
use super::cache::{BlockCache, CacheStats};
use super::compaction::Plan;
use super::config::{Config, Durability, NUM_LEVELS};
use super::error::{Error, InvalidArgument};
use super::io::{FileName, IoError, IoId, IoRequest, IoResult};
use super::job::{Job, JobKind, JobResult};
use super::manifest::VersionEdit;
use super::memtable::{Found, Memtable};
use super::iter::{self, StoreIter};
use super::read::Lookup;
use core::ops::Bound;
use super::sstable::BlockHandle;
use super::version::{TableFile, Version};
use super::wal;
use super::wal_writer::{WalEvent, WalWriter};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Identifies a submitted request; its reply carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqId(pub u64);

/// What a caller can ask of the store.
#[derive(Clone, Debug)]
pub enum Request {
    /// Apply a batch atomically. Replies [`Reply::Written`] once durable per the config.
    Write(Batch),
    /// Read a key as of now or as of a snapshot's sequence number.
    Get {
        /// The key.
        key: Vec<u8>,
        /// A sequence number from [`Store::snapshot`], or `None` for the latest.
        snapshot: Option<u64>,
    },
    /// Read keys in order within bounds, as of now or a snapshot, at most `limit` of them.
    Scan {
        /// Lower bound.
        lower: Bound<Vec<u8>>,
        /// Upper bound.
        upper: Bound<Vec<u8>>,
        /// Largest key first.
        reverse: bool,
        /// At most this many entries.
        limit: usize,
        /// A sequence number from [`Store::snapshot`], or `None` for the latest.
        snapshot: Option<u64>,
    },
    /// Make every acknowledged write durable (a no-op in `SyncEachWrite`). Replies `Done`.
    Sync,
    /// Write the memtable to an SST now. Replies `Done` when it is installed.
    Flush,
    /// Flush, then compact every file meeting `[lo, hi]` into the bottom level. Replies `Done`.
    CompactRange {
        /// Smallest user key.
        lo: Vec<u8>,
        /// Largest user key.
        hi: Vec<u8>,
    },
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The batch is applied; its last operation has this sequence number.
    Written {
        /// Sequence number of the batch's last operation.
        seq: u64,
    },
    /// The value read, if any.
    Value(Option<Vec<u8>>),
    /// Keys and values read by a scan, in the order asked.
    Entries(Vec<(Vec<u8>, Vec<u8>)>),
    /// The request finished.
    Done,
}

/// Something the binding must act on.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Carry out an I/O request, then call [`Store::handle_io`].
    Io {
        /// Its id.
        id: IoId,
        /// What to do.
        req: IoRequest,
    },
    /// Run a background job, then call [`Store::handle_job`].
    Job(Job),
    /// The answer to a request.
    Reply {
        /// The request.
        id: ReqId,
        /// Its outcome.
        result: Result<Reply, Error>,
    },
    /// Recovery finished. After an error the store accepts nothing.
    Opened(Result<(), Error>),
}

/// Counters and shape, for `stats()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Files per level.
    pub level_files: [usize; NUM_LEVELS],
    /// Bytes per level.
    pub level_bytes: [u64; NUM_LEVELS],
    /// Bytes in the active and frozen memtables.
    pub memtable_bytes: u64,
    /// User bytes written (keys + values of applied batches).
    pub user_bytes_written: u64,
    /// Bytes written to the WAL.
    pub wal_bytes_written: u64,
    /// Bytes written by flushes.
    pub flush_bytes_written: u64,
    /// Bytes written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes read by compactions.
    pub compaction_bytes_read: u64,
    /// Flushes completed.
    pub flushes: u64,
    /// Compactions completed.
    pub compactions: u64,
    /// Syncs of the WAL completed.
    pub wal_syncs: u64,
    /// Manifests replaced by a fresh one holding the whole state.
    pub manifest_rollovers: u64,
    /// Last visible sequence number.
    pub last_seq: u64,
    /// The store's own block cache (request path).
    pub cache: CacheStats,
}

impl Stats {
    /// (WAL + flush + compaction bytes written) ÷ user bytes written.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            return 0.0;
        }
        (self.wal_bytes_written + self.flush_bytes_written + self.compaction_bytes_written) as f64
            / self.user_bytes_written as f64
    }

    /// Bytes in all SSTs ÷ bytes in the largest level (RocksDB's estimate: the largest level
    /// holds roughly one copy of the live data).
    pub fn space_amplification(&self) -> f64 {
        let total: u64 = self.level_bytes.iter().sum();
        let largest = self.level_bytes.iter().copied().max().unwrap_or(0);
        if largest == 0 {
            return 0.0;
        }
        total as f64 / largest as f64
    }

    /// Total SST bytes.
    pub fn table_bytes(&self) -> u64 {
        self.level_bytes.iter().sum()
    }
}

/// A consistent view for reading outside the store: in-memory tables are consulted first by
/// [`Store::get_in_memory`], then the view's SSTs through a [`Lookup`].
#[derive(Clone, Debug)]
pub struct ReadView {
    /// The live files as of the view.
    pub version: Arc<Version>,
    /// Reads see sequence numbers up to this.
    pub seq: u64,
}

/// A frozen memtable waiting to be flushed.
#[derive(Debug)]
struct Frozen {
    mem: Arc<Memtable>,
    /// The WAL segment that starts after it: the log number once it is flushed.
    next_wal: u64,
    id: u64,
    /// The largest applied mark of its batches.
    mark: u64,
}

/// A `CompactRange` request: first everything written before it is flushed, then one
/// compaction takes every file meeting the range into the bottom level.
#[derive(Debug)]
struct RangeCompaction {
    id: ReqId,
    lo: Vec<u8>,
    hi: Vec<u8>,
    /// Writes up to this sequence number are flushed first.
    target: u64,
    state: RangeState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeState {
    Flushing,
    Compacting,
    Done,
}

/// A write waiting for the WAL.
#[derive(Debug)]
pub(crate) enum WalWaiter {
    Write { id: ReqId, first_seq: u64, batch: Batch },
    Sync { id: ReqId },
}

mod background;
mod install;
mod manifest_log;
mod reads;
mod recovery;
use reads::{decode_block, ScanState};
use recovery::Recovery;
pub use install::{IncomingTable, TableSet};

#[derive(Debug)]
enum Phase {
    Recovering(Recovery),
    Open,
    Failed(Error),
}

/// Why an I/O request was issued.
#[derive(Debug)]
enum Pending {
    Recovery,
    Wal,
    Manifest,
    Read { id: ReqId, lookup: Lookup, file: FileName, handle: BlockHandle },
    Scan { id: ReqId, scan: ScanState, file: FileName, handle: BlockHandle },
    Delete,
    /// A read of an incoming table (`install`).
    Install,
}

/// A manifest edit being written, and what to do once it is durable.
#[derive(Debug)]
enum EditPurpose {
    Flush(JobResult),
    Compaction(JobResult),
    TrivialMove(Plan),
    /// A fresh manifest holding the whole version, replacing the current one.
    Rollover(FileName),
    /// Tables from elsewhere replacing the whole contents (`install`).
    Install(alloc::boxed::Box<install::InstallEdit>),
}

/// Where a manifest edit is in its write.
#[derive(Debug, Clone, Copy)]
enum ManifestStage {
    /// Appending this many bytes.
    Append(u64),
    /// Syncing after appending this many bytes.
    Sync(u64),
    /// Truncating a failed edit away.
    Repair,
}

/// The LSM store state machine. See the module docs for the calling protocol.
pub struct Store {
    config: Config,
    phase: Phase,
    outputs: VecDeque<Output>,
    next_io: u64,
    next_req: u64,
    next_job: u64,
    pending: BTreeMap<IoId, Pending>,

    mem: Memtable,
    /// Frozen memtables, oldest first.
    imm: VecDeque<Frozen>,
    /// Id of the active memtable.
    mem_id: u64,
    /// The largest applied mark of the active memtable's batches.
    mem_mark: u64,
    /// The applied mark of the latest installed flush.
    durable_mark: u64,
    /// Memtable ids read by live iterators, with counts.
    pins: BTreeMap<u64, usize>,
    /// Flushed memtables kept for iterators that still refill from them.
    retired: BTreeMap<u64, Arc<Memtable>>,
    version: Arc<Version>,
    next_file_number: u64,
    /// Highest sequence number assigned.
    last_seq: u64,
    /// Highest sequence number readers may see.
    visible_seq: u64,
    log_number: u64,
    /// WAL segments on disk, live or not yet deleted.
    wal_segments: BTreeSet<u64>,

    wal: WalWriter<WalWaiter>,
    manifest_file: FileName,
    manifest_len: u64,
    manifest_queue: VecDeque<(VersionEdit, EditPurpose)>,
    manifest_inflight: Option<(VersionEdit, EditPurpose, ManifestStage)>,
    manifest_broken: bool,

    flush_running: bool,
    compaction_running: bool,
    /// A job or edit failed: start no new one until the next input (no spinning on a bad disk).
    jobs_paused: bool,
    freeze_wanted: bool,
    stalled: VecDeque<(ReqId, Batch)>,
    flush_waiters: Vec<(ReqId, u64)>,
    compact_waiters: Vec<RangeCompaction>,
    cursors: [Vec<u8>; NUM_LEVELS],
    snapshots: BTreeMap<u64, usize>,
    graveyard: Vec<Arc<TableFile>>,
    /// Tables being installed (`install`).
    install: Option<install::Install>,
    cache: BlockCache,
    last_sync_ms: u64,
    stats: Stats,
}

impl core::fmt::Debug for Store {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Store")
            .field("phase", &self.phase)
            .field("last_seq", &self.last_seq)
            .field("visible_seq", &self.visible_seq)
            .field("memtables", &(1 + self.imm.len()))
            .field("pending_io", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Group commit state, from [`Store::wal_group`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalGroup {
    /// Writes waiting in the WAL buffer for the next append (the group being formed).
    pub queued: usize,
    /// True when those writes are held for more to join (see [`Store::set_group_target`]).
    pub holding: bool,
    /// Waiters acknowledged by the last completed WAL sync.
    pub last: usize,
}

/// At most this many frozen memtables wait for flushing before writes stall.
const MAX_IMMUTABLE: usize = 2;
/// Flushes wait while L0 holds this many files (compaction catches up first).
const L0_STOP: usize = 20;

impl Store {
    /// Creates the store and starts recovery; drain [`Store::poll`] for its I/O.
    pub fn open(config: Config) -> Store {
        let wal = WalWriter::new(config.durability, FileName::wal(0), 0, config.wal_buffer_bytes);
        let cache = BlockCache::new(config.block_cache_bytes);
        let mut s = Store {
            phase: Phase::Recovering(Recovery::new()),
            outputs: VecDeque::new(),
            next_io: 0,
            next_req: 0,
            next_job: 0,
            pending: BTreeMap::new(),
            mem: Memtable::new(),
            imm: VecDeque::new(),
            mem_id: 0,
            mem_mark: 0,
            durable_mark: 0,
            pins: BTreeMap::new(),
            retired: BTreeMap::new(),
            version: Arc::new(Version::default()),
            next_file_number: 1,
            last_seq: 0,
            visible_seq: 0,
            log_number: 0,
            wal_segments: BTreeSet::new(),
            wal,
            manifest_file: FileName::manifest(0),
            manifest_len: 0,
            manifest_queue: VecDeque::new(),
            manifest_inflight: None,
            manifest_broken: false,
            flush_running: false,
            compaction_running: false,
            jobs_paused: false,
            freeze_wanted: false,
            stalled: VecDeque::new(),
            flush_waiters: Vec::new(),
            compact_waiters: Vec::new(),
            cursors: Default::default(),
            snapshots: BTreeMap::new(),
            graveyard: Vec::new(),
            install: None,
            cache,
            last_sync_ms: 0,
            stats: Stats::default(),
            config,
        };
        s.recovery_step(None);
        s
    }

    /// The applied mark of the latest installed flush (0 if none): every batch with a mark
    /// at or below it is in a durable table. Valid once `Opened(Ok)` is out. In
    /// [`Durability::External`] a crash leaves exactly the batches with marks up to it.
    pub fn durable_mark(&self) -> u64 {
        self.durable_mark
    }

    /// True once recovery has succeeded.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes the next output. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Submits a request; its reply comes out of [`Store::poll`] with the returned id (perhaps
    /// at once, when memory answers it).
    pub fn submit(&mut self, now_ms: u64, req: Request) -> ReqId {
        let id = ReqId(self.next_req);
        self.next_req += 1;
        self.jobs_paused = false;
        if !self.is_open() {
            let e = match &self.phase {
                Phase::Failed(e) => e.clone(),
                _ => Error::NotOpen,
            };
            self.reply(id, Err(e));
            return id;
        }
        match req {
            Request::Write(batch) => self.write(now_ms, id, batch),
            Request::Get { key, snapshot } => self.get(id, key, snapshot),
            Request::Scan { lower, upper, reverse, limit, snapshot } => {
                let it = self.iter(lower, upper, reverse, snapshot);
                self.continue_scan(id, ScanState { it, limit, out: Vec::new() });
            }
            Request::Sync => {
                self.wal.kick();
                self.wal.queue_sync(WalWaiter::Sync { id });
            }
            Request::Flush => {
                if self.mem.is_empty() && self.imm.is_empty() && !self.flush_running {
                    self.reply(id, Ok(Reply::Done));
                } else {
                    let target = self.visible_seq;
                    self.flush_waiters.push((id, target));
                    if !self.mem.is_empty() {
                        self.freeze_wanted = true;
                    }
                }
            }
            Request::CompactRange { lo, hi } => {
                let target = self.visible_seq;
                self.compact_waiters.push(RangeCompaction { id, lo, hi, target, state: RangeState::Flushing });
            }
        }
        self.drive(now_ms);
        id
    }

    /// Feeds the completion of I/O request `id`.
    pub fn handle_io(&mut self, now_ms: u64, id: IoId, result: IoResult) {
        let Some(p) = self.pending.remove(&id) else { return };
        match p {
            Pending::Recovery => self.recovery_step(Some(result)),
            Pending::Wal => self.wal_done(now_ms, result),
            Pending::Manifest => self.manifest_done(result),
            Pending::Read { id, lookup, file, handle } => self.read_done(id, lookup, file, handle, result),
            Pending::Scan { id, mut scan, file, handle } => match decode_block(file, handle, result) {
                Ok(b) => {
                    scan.it.supply(&b);
                    self.cache.insert(file.number, handle.offset, b);
                    self.continue_scan(id, scan);
                }
                Err(e) => {
                    self.release_iter(&scan.it);
                    self.reply(id, Err(e));
                }
            },
            Pending::Delete => {}
            Pending::Install => self.install_io(result),
        }
        self.drive(now_ms);
    }

    /// Takes back a job emitted as [`Output::Job`] after it reported `Done`.
    pub fn handle_job(&mut self, now_ms: u64, job: Job) {
        let r = job.into_result();
        self.stats.compaction_bytes_read += r.bytes_read;
        if let Some(e) = r.error.clone() {
            // The job counts as running until its edit is installed; a failed one is over.
            self.jobs_paused = true;
            match r.kind {
                JobKind::Flush => self.flush_running = false,
                JobKind::Compaction => self.compaction_running = false,
            }
            // Outputs written before the failure are orphans; the job can be retried later.
            for o in &r.outputs {
                self.delete_file(FileName::table(o.meta.number));
            }
            if r.kind == JobKind::Flush {
                    // The memtable stays frozen; the flush is retried on the next drive.
                for (id, _) in core::mem::take(&mut self.flush_waiters) {
                    self.reply(id, Err(e.clone()));
                }
            } else {
                for w in core::mem::take(&mut self.compact_waiters) {
                    self.reply(w.id, Err(e.clone()));
                }
            }
        } else {
            let mut edit = VersionEdit::default();
            let level = match (&r.kind, &r.plan) {
                (JobKind::Flush, _) => 0,
                (_, Some(p)) => p.output_level as u8,
                _ => 0,
            };
            for o in &r.outputs {
                edit.added.push((level, o.meta.clone()));
            }
            if let Some(p) = &r.plan {
                for (l, f) in &p.inputs {
                    edit.removed.push((*l as u8, f.meta.number));
                }
            }
            edit.next_file_number = Some(self.next_file_number);
            edit.last_seq = Some(self.last_seq);
            let purpose = if r.kind == JobKind::Flush {
                edit.log_number = self.imm.front().map(|f| f.next_wal);
                edit.applied_mark = self.imm.front().map(|f| f.mark).filter(|&m| m > self.durable_mark);
                EditPurpose::Flush(r)
            } else {
                EditPurpose::Compaction(r)
            };
            self.manifest_queue.push_back((edit, purpose));
        }
        self.drive(now_ms);
    }

    /// Feeds the time; call when [`Store::next_deadline`] has passed (late or early is harmless).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.wal.kick();
        self.jobs_paused = false;
        if let Durability::SyncEveryMs(ms) = self.config.durability {
            if self.is_open() && now_ms >= self.last_sync_ms.saturating_add(ms) && self.wal.has_unsynced() {
                self.wal.want_sync();
                self.last_sync_ms = now_ms;
            }
        }
        self.drive(now_ms);
    }

    /// When the store next wants [`Store::handle_timeout`].
    pub fn next_deadline(&self) -> Option<u64> {
        match self.config.durability {
            Durability::SyncEveryMs(ms) if self.is_open() && self.wal.has_unsynced() => {
                Some(self.last_sync_ms.saturating_add(ms))
            }
            _ => None,
        }
    }

    /// Group commit gathering, [`Durability::SyncEachWrite`] only: from now on, hold queued
    /// writes (no WAL append) while fewer than `target` are queued — until the target is
    /// reached or [`Store::release_group`]. A binding sets it to the writers it expects to
    /// arrive shortly (e.g. threads whose writes were just acknowledged); 0 or 1 (the default)
    /// never holds. A binding that sets a target must release a holding group after a timeout
    /// of its choosing ([`WalGroup::holding`]).
    pub fn set_group_target(&mut self, now_ms: u64, target: usize) {
        self.wal.set_group_target(target);
        if self.wal.is_holding() || target <= 1 {
            self.drive(now_ms);
        }
    }

    /// Lets the writes held for a group go to the WAL now, however few.
    pub fn release_group(&mut self, now_ms: u64) {
        self.wal.release_group();
        self.drive(now_ms);
    }

    /// The WAL's group commit state.
    pub fn wal_group(&self) -> WalGroup {
        WalGroup { queued: self.wal.queued_writes(), holding: self.wal.is_holding(), last: self.wal.last_group() }
    }

    /// A view for reading outside the store (see [`ReadView`]).
    pub fn read_view(&self) -> ReadView {
        ReadView { version: self.version.clone(), seq: self.visible_seq }
    }

    /// Looks `key` up in the memtables as of `seq`: `Some` when memory decides it.
    pub fn get_in_memory(&self, key: &[u8], seq: u64) -> Option<Found> {
        if let Some(f) = self.mem.get(key, seq) {
            return Some(f);
        }
        self.imm.iter().rev().find_map(|f| f.mem.get(key, seq))
    }

    /// The memtables, newest first (the active one, then the frozen ones): for a reader that
    /// positions in them directly (they hold every sequence number up to the visible one and
    /// maybe a few above it, which a reader at `read_view().seq` must skip).
    pub fn memtables(&self) -> impl Iterator<Item = &Memtable> {
        core::iter::once(&self.mem).chain(self.imm.iter().rev().map(|f| &*f.mem))
    }

    /// Pins the current state for repeatable reads; release with [`Store::release_snapshot`].
    pub fn snapshot(&mut self) -> u64 {
        *self.snapshots.entry(self.visible_seq).or_insert(0) += 1;
        self.visible_seq
    }

    /// Releases a snapshot taken with [`Store::snapshot`].
    pub fn release_snapshot(&mut self, seq: u64) {
        if let Some(n) = self.snapshots.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                self.snapshots.remove(&seq);
            }
        }
    }

    /// An ordered iterator as of `snapshot` (or now) over keys within the bounds. Drive it as
    /// [`StoreIter`] describes; call [`Store::refill_iter`] when it asks and
    /// [`Store::release_iter`] when done with it.
    pub fn iter(&mut self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, reverse: bool, snapshot: Option<u64>) -> StoreIter {
        let seq = snapshot.unwrap_or(self.visible_seq).min(self.visible_seq);
        let frozen = self.imm.iter().rev().map(|f| (f.id, f.mem.clone())).collect();
        *self.pins.entry(self.mem_id).or_insert(0) += 1;
        StoreIter::new(self.version.clone(), self.mem_id, frozen, seq, lower, upper, reverse)
    }

    /// An ordered iterator as of `seq` (capped at the visible sequence) that pins nothing: for
    /// a caller that drives it to its end (or drops it) before the store takes another input,
    /// such as the MVCC executor running a command against the store's current state. Refill it
    /// with [`Store::refill_iter`]; no [`Store::release_iter`] is needed.
    pub fn iter_unpinned(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>, seq: u64) -> StoreIter {
        let seq = seq.min(self.visible_seq);
        let frozen = self.imm.iter().rev().map(|f| (f.id, f.mem.clone())).collect();
        let mut it = StoreIter::new(self.version.clone(), self.mem_id, frozen, seq, lower, upper, false);
        it.pinned.clear();
        it
    }

    /// Copies the next chunk of the memtable `it` reads through the store.
    pub fn refill_iter(&self, it: &mut StoreIter) {
        let (reverse, lower, upper) = it.bounds();
        let Some(src) = it.active_source() else { return };
        if src.id == self.mem_id {
            iter::refill_from(src, &self.mem, reverse, &lower, &upper);
            return;
        }
        let frozen = self.imm.iter().find(|f| f.id == src.id).map(|f| f.mem.clone());
        match frozen.or_else(|| self.retired.get(&src.id).cloned()) {
            Some(m) => {
                iter::refill_from(src, &m, reverse, &lower, &upper);
                src.mem = Some(m);
            }
            // Cannot happen while the iterator's pin is held; end the source rather than panic.
            None => src.exhausted = true,
        }
    }

    /// Releases what an iterator pinned.
    pub fn release_iter(&mut self, it: &StoreIter) {
        for id in &it.pinned {
            if let Some(n) = self.pins.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    self.pins.remove(id);
                    self.retired.remove(id);
                }
            }
        }
    }

    /// Shape and counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        for l in 0..NUM_LEVELS {
            s.level_files[l] = self.version.levels[l].len();
            s.level_bytes[l] = self.version.level_bytes(l);
        }
        s.memtable_bytes = (self.mem.approx_bytes() + self.imm.iter().map(|f| f.mem.approx_bytes()).sum::<usize>()) as u64;
        s.last_seq = self.visible_seq;
        s.cache = self.cache.stats();
        s
    }

    /// True when no I/O, job or manifest edit is outstanding and no work is queued.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
            && self.outputs.is_empty()
            && !self.flush_running
            && !self.compaction_running
            && self.manifest_inflight.is_none()
            && self.manifest_queue.is_empty()
            && self.install.is_none()
    }

    /// Panics when an internal invariant is broken (tests and simulations call it after every
    /// step).
    pub fn check_invariants(&self) {
        if !self.is_open() {
            return;
        }
        self.version.check_invariants();
        assert!(self.visible_seq <= self.last_seq, "visible seq ahead of assigned seq");
        assert!(self.mem.max_seq() <= self.visible_seq || self.config.durability != Durability::SyncEachWrite);
        for f in &self.imm {
            assert!(f.mem.max_seq() <= self.visible_seq);
        }
    }

    // ----- writes -----

    fn write(&mut self, now_ms: u64, id: ReqId, batch: Batch) {
        if let Err(e) = self.validate(&batch) {
            self.reply(id, Err(Error::InvalidArgument(e)));
            return;
        }
        if batch.is_empty() {
            self.reply(id, Ok(Reply::Written { seq: self.visible_seq }));
            return;
        }
        let broken = self.wal.is_broken();
        self.wal.kick();
        if broken && self.config.durability != Durability::SyncEachWrite {
            let error = IoError::Other("the WAL is being repaired after a failed write".into());
            self.reply(id, Err(Error::Io { file: Some(self.wal.file()), op: "append", error }));
            return;
        }
        if self.imm.len() >= MAX_IMMUTABLE && self.mem.approx_bytes() >= self.config.memtable_bytes {
            self.stalled.push_back((id, batch));
            return;
        }
        self.write_now(now_ms, id, batch);
    }

    fn write_now(&mut self, _now_ms: u64, id: ReqId, batch: Batch) {
        let first_seq = self.last_seq + 1;
        self.last_seq += u64::from(batch.len());
        if self.config.durability == Durability::External {
            // No WAL: in the memtable is as durable as it gets until the flush.
            self.apply(first_seq, &batch);
            self.reply(id, Ok(Reply::Written { seq: self.visible_seq }));
            if self.mem.approx_bytes() >= self.config.memtable_bytes {
                self.freeze_wanted = true;
            }
            return;
        }
        let before = self.wal.buffered_bytes();
        wal::encode_record(self.wal.buffer(), first_seq, &batch);
        self.stats.wal_bytes_written += (self.wal.buffered_bytes() - before) as u64;
        if self.config.durability == Durability::SyncEachWrite {
            self.wal.queue(WalWaiter::Write { id, first_seq, batch });
        } else {
            self.apply(first_seq, &batch);
            self.reply(id, Ok(Reply::Written { seq: self.visible_seq }));
            if self.mem.approx_bytes() >= self.config.memtable_bytes {
                self.freeze_wanted = true;
            }
        }
    }

    fn validate(&self, batch: &Batch) -> Result<(), InvalidArgument> {
        if batch.max_key_len() > self.config.max_key_len {
            return Err(InvalidArgument::KeyTooLarge { len: batch.max_key_len(), max: self.config.max_key_len });
        }
        if batch.max_value_len() > self.config.max_value_len {
            return Err(InvalidArgument::ValueTooLarge { len: batch.max_value_len(), max: self.config.max_value_len });
        }
        if batch.encoded_len() > self.config.max_batch_bytes {
            return Err(InvalidArgument::BatchTooLarge { len: batch.encoded_len(), max: self.config.max_batch_bytes });
        }
        if batch.has_empty_key() {
            return Err(InvalidArgument::EmptyKey);
        }
        Ok(())
    }

    fn apply(&mut self, first_seq: u64, batch: &Batch) {
        for (i, op) in batch.iter().enumerate() {
            self.mem.insert(op.key, first_seq + i as u64, op.kind, op.value);
            self.stats.user_bytes_written += (op.key.len() + op.value.len()) as u64;
        }
        self.visible_seq = self.visible_seq.max(first_seq + u64::from(batch.len()) - 1);
        self.mem_mark = self.mem_mark.max(batch.applied_mark());
    }

    fn wal_done(&mut self, now_ms: u64, result: IoResult) {
        let ok = !matches!(result, IoResult::Failed(_));
        let error = match result {
            IoResult::Failed(e) => Some(e),
            _ => None,
        };
        match self.wal.complete(ok) {
            WalEvent::Durable(waiters) => {
                self.stats.wal_syncs += 1;
                self.last_sync_ms = now_ms;
                self.acknowledge(waiters);
            }
            WalEvent::Failed(waiters) => {
                let e = Error::Io {
                    file: Some(self.wal.file()),
                    op: "write",
                    error: error.unwrap_or(IoError::Other("WAL write failed".into())),
                };
                for w in waiters {
                    let id = match w {
                        WalWaiter::Write { id, .. } | WalWaiter::Sync { id } => id,
                    };
                    self.reply(id, Err(e.clone()));
                }
            }
            WalEvent::None => {}
        }
    }

    /// Applies and acknowledges writes (and syncs) the WAL has made durable.
    fn acknowledge(&mut self, waiters: Vec<WalWaiter>) {
        for w in waiters {
            match w {
                WalWaiter::Write { id, first_seq, batch } => {
                    self.apply(first_seq, &batch);
                    self.reply(id, Ok(Reply::Written { seq: first_seq + u64::from(batch.len()) - 1 }));
                }
                WalWaiter::Sync { id } => self.reply(id, Ok(Reply::Done)),
            }
        }
        if self.mem.approx_bytes() >= self.config.memtable_bytes {
            self.freeze_wanted = true;
        }
    }

    // ----- plumbing -----

    fn emit_io(&mut self, req: IoRequest, p: Pending) {
        let id = IoId(self.next_io);
        self.next_io += 1;
        self.pending.insert(id, p);
        self.outputs.push_back(Output::Io { id, req });
    }

    fn reply(&mut self, id: ReqId, result: Result<Reply, Error>) {
        self.outputs.push_back(Output::Reply { id, result });
    }
}
