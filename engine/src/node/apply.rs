//! Apply: committed Raft entries become store writes, one entry at a time, as a deterministic
//! function of the entries and the store's state — so every replica writes the same data.
//!
//! A write entry ([`LogCommand::Write`]) runs as an MVCC one-phase commit: the etcd-style
//! compare-and-swap command [`cas::txn`] reads at `read_ts` = the newest applied commit
//! timestamp and writes at
//!
//! ```text
//! commit_ts = max(last_ts + 1, Ts::compose(entry.clock_ms, 0))
//! ```
//!
//! (the leader's clock carried in the entry, never below the previous write's timestamp), so
//! commit timestamps grow with the log and are equal on every replica. Before running, the
//! entry's client session is looked up (`n s <client>`, see [`super::state`]): a sequence
//! number already applied returns the recorded answer and writes nothing (a retry applies at
//! most once, whichever leader proposed it); a lower one is refused. The write's batch carries
//! the session record and the apply state (`n a`) too, and the entry's Raft index as the
//! store's applied mark: data, session and apply state change in one atomic batch.
//!
//! Entries are applied strictly in order: an entry runs only after the previous entry's batch
//! is in the store (its `Written` reply), so each entry reads everything before it. A run that
//! needs an SST block not in memory stops ([`ApplyOutput::ReadBlock`]) and runs again when the
//! block arrives; the commands are pure, so a rerun is safe.
//!
//! # Calling protocol
//!
//! ```text
//! let mut applier = Applier::open(config, now, &mut store);   // the store must be open
//! // the driver routes store replies: applier.handle_store_reply(now, &mut store, id, result)
//! applier.push(entry);                                         // committed entries, in order
//! applier.drive(now, &mut store);
//! while let Some(out) = applier.poll() {
//!     ReadBlock { file, handle } => read + Block::decode, then applier.handle_block(..),
//!     Applied { .. }             => answer the client waiting for this write, if any,
//!     ConfChanged { .. }         => a configuration entry is applied (before its `Applied`),
//!     Recovered(state)           => opening read the apply state back (or failed),
//!     Failed(e)                  => the store failed a write: this replica stops applying.
//! }
//! ```
use super::command::{LogCommand, WriteCommand};
use super::state::{session_key, ApplyState, ConfRecord, SessionRecord, APPLY_STATE_KEY, CONF_KEY};
use super::txn::TxnReply;
use super::wire::{ClientError, ClientId, ClientReply, Epoch, WriteOp};
use crate::lsm::batch::Batch;
use crate::lsm::cache::BlockCache;
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::FileName;
use crate::lsm::sstable::{Block, BlockHandle};
use crate::lsm::store::{Reply, ReqId, Request, Store};
use crate::lsm::version::Version;
use alloc::sync::Arc;
use crate::mvcc::cas::{self, Compare, CompareOp, CompareTarget, TxnOp, TxnRequest};
use crate::mvcc::error::{EtcdError, MvccError, ReadError};
use crate::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use crate::mvcc::reader::RawReader;
use crate::mvcc::Ts;
use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use strata_raft::{Entry, EntryKind, Index};

/// Configuration of an [`Applier`].
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    /// Bytes of SST blocks kept for apply's reads.
    pub block_cache_bytes: usize,
    /// The region's epoch (write entries proposed under another epoch `version` are refused
    /// at apply; `conf_ver` is the initial one, raised by each configuration change).
    pub epoch: Epoch,
    /// The region's initial membership (in effect until the store holds a [`ConfRecord`]).
    pub initial_conf: ConfRecord,
}

impl Default for ApplyConfig {
    fn default() -> Self {
        ApplyConfig { block_cache_bytes: 4 << 20, epoch: Epoch::INITIAL, initial_conf: ConfRecord::initial(&[], &[], Epoch::INITIAL.conf_ver) }
    }
}

/// Why apply stopped. The replica applies nothing more; its store holds every entry applied
/// before the failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// The store failed a read or a write.
    Store(StoreError),
    /// A stored record of the node (`n a`, `n s …`) does not decode.
    CorruptRecord {
        /// Its key.
        key: Vec<u8>,
    },
    /// An MVCC record read by a write does not decode.
    CorruptData(String),
}

impl core::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ApplyError::Store(e) => write!(f, "store: {e}"),
            ApplyError::CorruptRecord { key } => write!(f, "corrupt node record at key {key:02x?}"),
            ApplyError::CorruptData(why) => write!(f, "corrupt data: {why}"),
        }
    }
}

/// The outcome of one applied write entry, for the client waiting for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedWrite {
    /// The session.
    pub client: ClientId,
    /// The write's sequence number.
    pub seq: u64,
    /// The answer (the recorded one, for a retry of an applied write).
    pub result: Result<ClientReply, ClientError>,
}

/// Something the driver must act on.
#[derive(Debug)]
#[must_use]
pub enum ApplyOutput {
    /// Read this block, then [`Applier::handle_block`].
    ReadBlock {
        /// The table.
        file: FileName,
        /// The block.
        handle: BlockHandle,
    },
    /// Entry `index` is applied (its batch, if any, is in the store).
    Applied {
        /// The entry.
        index: Index,
        /// For a client write: its session and answer. `None` for other entries (and for a
        /// write entry whose bytes do not decode, which applies as a no-op on every replica).
        write: Option<AppliedWrite>,
    },
    /// A configuration entry is applied: the region's membership from now on (its record
    /// is in the store). Followed by the entry's `Applied`.
    ConfChanged {
        /// The entry.
        index: Index,
        /// The membership it made.
        conf: ConfRecord,
    },
    /// Opening finished: the stored apply state, or why it cannot be read.
    Recovered(Result<ApplyState, ApplyError>),
    /// Apply stopped for good (see [`ApplyError`]).
    Failed(ApplyError),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries applied.
    pub entries: u64,
    /// Write entries applied (retries included).
    pub writes: u64,
    /// Write entries answered from the session table (retries of applied writes).
    pub deduplicated: u64,
    /// Batches written to the store.
    pub batches: u64,
    /// Runs stopped by a missing block.
    pub pending_runs: u64,
}

#[derive(Debug)]
enum Phase {
    /// Created, waiting for the store to open.
    Closed,
    Recovering(ReqId),
    /// The apply state is read; the membership record is being read.
    RecoveringConf(ReqId, ApplyState),
    Ready,
    Failed(ApplyError),
}

/// The entry being applied.
#[derive(Debug)]
struct Current {
    index: Index,
    term: u64,
    cmd: WriteCommand,
    own: BlockMap,
    wait: Wait,
    /// Holds the files of the view a pending block belongs to (so they are not deleted).
    view: Option<Arc<Version>>,
}

#[derive(Debug)]
enum Wait {
    /// Run (again) at the next drive.
    Run,
    /// A block.
    Block((u64, u64)),
    /// The batch's `Written` reply; then the state and the answer.
    Write(ReqId, ApplyState, AppliedWrite),
}

enum RunOutcome {
    Done(AppliedWrite, Option<(Batch, ApplyState)>, bool),
    Need(FileName, BlockHandle, Arc<Version>),
    Fail(ApplyError),
}

/// The apply state machine. See the module docs for the calling protocol.
pub struct Applier {
    config: ApplyConfig,
    phase: Phase,
    state: ApplyState,
    /// Index of the last entry applied (≥ `state.index`: entries that write nothing advance
    /// only this).
    applied: Index,
    queue: VecDeque<Entry>,
    current: Option<Current>,
    /// A configuration entry's batch in the store: (its request, entry, state, record).
    conf_write: Option<(ReqId, Index, ApplyState, ConfRecord)>,
    /// The membership as of the last applied configuration entry.
    conf: ConfRecord,
    outputs: VecDeque<ApplyOutput>,
    cache: RefCell<BlockCache>,
    stats: ApplyStats,
}

impl core::fmt::Debug for Applier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Applier")
            .field("phase", &self.phase)
            .field("applied", &self.applied)
            .field("state", &self.state)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Applier {
    /// Starts over an open `store`: reads the apply state back first ([`ApplyOutput::Recovered`]).
    pub fn open(config: ApplyConfig, now_ms: u64, store: &mut Store) -> Applier {
        let mut a = Applier::new(config);
        a.start_recovery(now_ms, store);
        a
    }

    /// An applier that waits for its store to open: call [`Applier::start_recovery`] then.
    pub fn new(config: ApplyConfig) -> Applier {
        Applier {
            cache: RefCell::new(BlockCache::new(config.block_cache_bytes)),
            conf: config.initial_conf.clone(),
            conf_write: None,
            config,
            phase: Phase::Closed,
            state: ApplyState::default(),
            applied: Index(0),
            queue: VecDeque::new(),
            current: None,
            outputs: VecDeque::new(),
            stats: ApplyStats::default(),
        }
    }

    /// Reads the apply state back from the (now open) store; ignored unless just created.
    pub fn start_recovery(&mut self, now_ms: u64, store: &mut Store) {
        if matches!(self.phase, Phase::Closed) {
            let rid = store.submit(now_ms, Request::Get { key: APPLY_STATE_KEY.to_vec(), snapshot: None });
            self.phase = Phase::Recovering(rid);
        }
    }

    /// True once the apply state is read back and apply has not failed.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// Why apply stopped, if it did.
    pub fn failure(&self) -> Option<&ApplyError> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The index of the last entry applied.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The commit timestamp of the newest applied write (reads at it see every applied write).
    pub fn last_ts(&self) -> Ts {
        Ts(self.state.last_ts)
    }

    /// The stored apply state as of the last batch written.
    pub fn state(&self) -> ApplyState {
        self.state
    }

    /// The region's membership as applied.
    pub fn conf(&self) -> &ConfRecord {
        &self.conf
    }

    /// Counters.
    pub fn stats(&self) -> ApplyStats {
        self.stats
    }

    /// True when no entry waits or runs.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_none() && self.conf_write.is_none() && self.outputs.is_empty()
    }

    /// Raises the applied index to `index` without applying anything: entries up to it are
    /// known to be in the store already (its durable applied mark after a restart).
    pub fn skip_to(&mut self, index: Index) {
        self.applied = self.applied.max(index);
    }

    /// Starts over after the store's contents were replaced (a snapshot was installed):
    /// forgets the applied index and the cached blocks, and reads the apply state back
    /// ([`ApplyOutput::Recovered`]). Call only when idle.
    pub fn reload(&mut self, now_ms: u64, store: &mut Store) {
        debug_assert!(self.is_idle(), "reload while applying");
        self.queue.clear();
        self.current = None;
        self.conf_write = None;
        self.conf = self.config.initial_conf.clone();
        self.applied = Index(0);
        self.state = ApplyState::default();
        *self.cache.borrow_mut() = BlockCache::new(self.config.block_cache_bytes);
        self.phase = Phase::Closed;
        self.start_recovery(now_ms, store);
    }

    /// Takes the next output. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<ApplyOutput> {
        self.outputs.pop_front()
    }

    /// Queues a committed entry. Entries come in index order; an entry at or below the
    /// applied index (a replay of something already in the store) is skipped.
    pub fn push(&mut self, entry: Entry) {
        let last = match (self.queue.back(), &self.current, &self.conf_write) {
            (Some(e), _, _) => e.index,
            (None, Some(c), _) => c.index,
            (None, None, Some(w)) => w.1,
            (None, None, None) => self.applied,
        };
        if entry.index <= last {
            return;
        }
        debug_assert_eq!(entry.index, last.next(), "committed entries must be consecutive");
        self.queue.push_back(entry);
    }

    /// True when the store request `id` is the applier's.
    pub fn owns(&self, id: ReqId) -> bool {
        matches!(self.phase, Phase::Recovering(r) | Phase::RecoveringConf(r, _) if r == id)
            || matches!(&self.current, Some(Current { wait: Wait::Write(r, ..), .. }) if *r == id)
            || self.conf_write.as_ref().is_some_and(|w| w.0 == id)
    }

    /// Feeds a store reply; false when `id` is not the applier's.
    pub fn handle_store_reply(&mut self, now_ms: u64, store: &mut Store, id: ReqId, result: Result<Reply, StoreError>) -> bool {
        if matches!(self.phase, Phase::Recovering(r) if r == id) {
            self.recovered(now_ms, store, result);
        } else if matches!(self.phase, Phase::RecoveringConf(r, _) if r == id) {
            self.conf_recovered(result);
        } else if self.conf_write.as_ref().is_some_and(|w| w.0 == id) {
            let Some((_, index, state, conf)) = self.conf_write.take() else { return true };
            match result {
                Ok(_) => {
                    self.stats.batches += 1;
                    self.state = state;
                    self.conf = conf.clone();
                    self.outputs.push_back(ApplyOutput::ConfChanged { index, conf });
                    self.finish(index, None);
                }
                Err(e) => self.fail(ApplyError::Store(e)),
            }
        } else if matches!(&self.current, Some(Current { wait: Wait::Write(r, ..), .. }) if *r == id) {
            let Some(Current { index, wait: Wait::Write(_, state, write), .. }) = self.current.take() else { return true };
            match result {
                Ok(_) => {
                    self.stats.batches += 1;
                    self.state = state;
                    self.finish(index, Some(write));
                }
                // The store refuses a batch for what it holds (a key or value too large for its
                // configuration): the same on every replica, so the write fails and apply goes on.
                Err(StoreError::InvalidArgument(e)) => {
                    let result = Err(ClientError::Invalid(alloc::format!("{e:?}")));
                    self.finish(index, Some(AppliedWrite { result, ..write }));
                }
                Err(e) => self.fail(ApplyError::Store(e)),
            }
        } else {
            return false;
        }
        self.drive(now_ms, store);
        true
    }

    /// Feeds the block asked for by [`ApplyOutput::ReadBlock`] (or the error reading it).
    pub fn handle_block(&mut self, now_ms: u64, store: &mut Store, file: FileName, handle: BlockHandle, result: Result<Block, StoreError>) {
        let key = (file.number, handle.offset);
        let Some(cur) = self.current.as_mut() else { return };
        if !matches!(cur.wait, Wait::Block(k) if k == key) {
            return;
        }
        match result {
            Ok(block) => {
                self.cache.borrow_mut().insert(file.number, handle.offset, block.clone());
                cur.own.insert(key, block);
                cur.wait = Wait::Run;
                cur.view = None;
                self.drive(now_ms, store);
            }
            Err(e) => self.fail(ApplyError::Store(e)),
        }
    }

    /// Applies queued entries until one waits (for a block or its write) or none is left.
    pub fn drive(&mut self, now_ms: u64, store: &mut Store) {
        while self.is_ready() {
            if self.conf_write.is_some() {
                return;
            }
            match &self.current {
                Some(Current { wait: Wait::Run, .. }) => self.run(now_ms, store),
                Some(_) => return,
                None => {
                    let Some(entry) = self.queue.pop_front() else { return };
                    self.start(now_ms, store, entry);
                }
            }
        }
    }

    /// Panics when an internal invariant is broken.
    pub fn check_invariants(&self) {
        assert!(self.state.index <= self.applied.0, "apply state ahead of the applied index");
        let mut prev = self.current.as_ref().map(|c| c.index).or(self.conf_write.as_ref().map(|w| w.1)).unwrap_or(self.applied);
        for e in &self.queue {
            assert_eq!(e.index, prev.next(), "queued entries not consecutive");
            prev = e.index;
        }
    }

    // ----- internals -----

    fn recovered(&mut self, now_ms: u64, store: &mut Store, result: Result<Reply, StoreError>) {
        let state = match result {
            Ok(Reply::Value(None)) => Ok(ApplyState::default()),
            Ok(Reply::Value(Some(v))) => {
                ApplyState::decode(&v).map_err(|_| ApplyError::CorruptRecord { key: APPLY_STATE_KEY.to_vec() })
            }
            Ok(_) => Err(ApplyError::Store(StoreError::NotOpen)),
            Err(e) => Err(ApplyError::Store(e)),
        };
        match state {
            Ok(s) => {
                let rid = store.submit(now_ms, Request::Get { key: CONF_KEY.to_vec(), snapshot: None });
                self.phase = Phase::RecoveringConf(rid, s);
            }
            Err(e) => {
                self.phase = Phase::Failed(e.clone());
                self.outputs.push_back(ApplyOutput::Recovered(Err(e)));
            }
        }
    }

    /// The membership record is read back: opening is done.
    fn conf_recovered(&mut self, result: Result<Reply, StoreError>) {
        let Phase::RecoveringConf(_, s) = self.phase else { return };
        let conf = match result {
            Ok(Reply::Value(None)) => Ok(self.config.initial_conf.clone()),
            Ok(Reply::Value(Some(v))) => ConfRecord::decode(&v).map_err(|_| ApplyError::CorruptRecord { key: CONF_KEY.to_vec() }),
            Ok(_) => Err(ApplyError::Store(StoreError::NotOpen)),
            Err(e) => Err(ApplyError::Store(e)),
        };
        match conf {
            Ok(c) => {
                self.conf = c;
                self.state = s;
                self.applied = self.applied.max(Index(s.index));
                self.phase = Phase::Ready;
                self.outputs.push_back(ApplyOutput::Recovered(Ok(s)));
            }
            Err(e) => {
                self.phase = Phase::Failed(e.clone());
                self.outputs.push_back(ApplyOutput::Recovered(Err(e)));
            }
        }
    }

    /// Takes the next entry: applies what writes nothing at once, or makes it current.
    fn start(&mut self, now_ms: u64, store: &mut Store, entry: Entry) {
        if entry.kind == EntryKind::ConfChange {
            return self.start_conf(now_ms, store, &entry);
        }
        if entry.data.is_empty() {
            self.finish(entry.index, None);
            return;
        }
        match LogCommand::decode(&entry.data) {
            Ok(LogCommand::Write(cmd)) => {
                self.current = Some(Current { index: entry.index, term: entry.term.0, cmd, own: BlockMap::new(), wait: Wait::Run, view: None });
            }
            // The leader encoded it: bytes that do not decode are the same on every replica
            // (from a newer version, or a bug), so they apply as a no-op everywhere.
            Err(_) => self.finish(entry.index, None),
        }
    }

    /// A configuration entry: the new membership record, the apply state and the entry's
    /// applied mark in one batch. A change Raft skips as invalid (or bytes that do not
    /// decode) applies as a no-op, as in Raft.
    fn start_conf(&mut self, now_ms: u64, store: &mut Store, entry: &Entry) {
        let Some(conf) = entry.conf_change().and_then(|cc| self.conf.apply(entry.index.0, &cc)) else {
            return self.finish(entry.index, None);
        };
        let state = ApplyState { index: entry.index.0, last_ts: self.state.last_ts, term: entry.term.0 };
        let mut batch = Batch::new();
        batch.put(CONF_KEY, &conf.encode());
        batch.put(APPLY_STATE_KEY, &state.encode());
        batch.set_applied_mark(entry.index.0);
        let rid = store.submit(now_ms, Request::Write(batch));
        self.conf_write = Some((rid, entry.index, state, conf));
    }

    fn run(&mut self, now_ms: u64, store: &mut Store) {
        let Some(cur) = self.current.as_ref() else { return };
        let outcome = {
            let snap = StoreSnapshot::new(store, &cur.own, &self.cache);
            let r = run_write(&snap, cur.index, cur.term, &cur.cmd, self.state, self.conf.epoch(self.config.epoch.version));
            match r {
                Err(Stop::Pending) => match snap.needed() {
                    Some(n) => RunOutcome::Need(n.file, n.handle, snap.view().version.clone()),
                    None => RunOutcome::Fail(ApplyError::CorruptData("a read was pending with no block named".into())),
                },
                Err(Stop::Fail(e)) => RunOutcome::Fail(e),
                Ok((write, batch, dedup)) => RunOutcome::Done(write, batch, dedup),
            }
        };
        if let RunOutcome::Done(_, _, true) = outcome {
            self.stats.deduplicated += 1;
        }
        match outcome {
            RunOutcome::Done(write, None, _) => {
                let index = cur.index;
                self.current = None;
                self.finish(index, Some(write));
            }
            RunOutcome::Done(write, Some((batch, state)), _) => {
                let rid = store.submit(now_ms, Request::Write(batch));
                if let Some(c) = self.current.as_mut() {
                    c.wait = Wait::Write(rid, state, write);
                }
            }
            RunOutcome::Need(file, handle, view) => {
                self.stats.pending_runs += 1;
                if let Some(c) = self.current.as_mut() {
                    c.wait = Wait::Block((file.number, handle.offset));
                    c.view = Some(view);
                }
                self.outputs.push_back(ApplyOutput::ReadBlock { file, handle });
            }
            RunOutcome::Fail(e) => self.fail(e),
        }
    }

    fn finish(&mut self, index: Index, write: Option<AppliedWrite>) {
        self.applied = index;
        self.stats.entries += 1;
        if write.is_some() {
            self.stats.writes += 1;
        }
        self.outputs.push_back(ApplyOutput::Applied { index, write });
    }

    fn fail(&mut self, e: ApplyError) {
        self.current = None;
        self.queue.clear();
        self.phase = Phase::Failed(e.clone());
        self.outputs.push_back(ApplyOutput::Failed(e));
    }
}

enum Stop {
    Pending,
    Fail(ApplyError),
}

/// Runs one write entry against `snap`: the answer, and the batch to write with the apply
/// state it sets (none when nothing is written), and whether the answer came from the
/// session table.
#[allow(clippy::type_complexity)]
fn run_write(
    snap: &StoreSnapshot<'_>,
    index: Index,
    term: u64,
    cmd: &WriteCommand,
    state: ApplyState,
    epoch: Epoch,
) -> Result<(AppliedWrite, Option<(Batch, ApplyState)>, bool), Stop> {
    let answer = |result| AppliedWrite { client: cmd.client, seq: cmd.seq, result };
    // Membership changes do not invalidate writes (TiKV checks only the epoch's `version`
    // for data commands): a write proposed before a conf change applies after it.
    if cmd.epoch.version != epoch.version {
        return Ok((answer(Err(ClientError::EpochMismatch { current: epoch })), None, false));
    }
    let skey = session_key(cmd.client);
    let session = match snap.raw_get(&skey) {
        Ok(None) => None,
        Ok(Some(v)) => Some(SessionRecord::decode(&v).map_err(|_| Stop::Fail(ApplyError::CorruptRecord { key: skey.clone() }))?),
        Err(e) => return Err(read_stop(e)),
    };
    if let Some(s) = session {
        if s.seq == cmd.seq {
            return Ok((answer(s.result), None, true));
        }
        if s.seq > cmd.seq {
            return Ok((answer(Err(ClientError::SessionStale { last_seq: s.seq })), None, false));
        }
    }
    let read_ts = Ts(state.last_ts);
    let commit_ts = Ts(state.last_ts.saturating_add(1)).max(Ts::compose(cmd.clock_ms, 0));
    let req = txn_request(&cmd.op);
    let (result, mut batch) = match cas::txn(snap, &req, read_ts, commit_ts) {
        Ok((resp, batch)) => {
            let revision = resp.revision.0;
            match &cmd.op {
                WriteOp::Cas { .. } => (Ok(ClientReply::Swapped { swapped: resp.succeeded, revision }), batch),
                WriteOp::Txn(_) => match TxnReply::from_response(resp) {
                    Ok(t) => (Ok(ClientReply::Txn(t)), batch),
                    Err(e) => (Err(e), Batch::new()),
                },
                _ => (Ok(ClientReply::Written { revision }), batch),
            }
        }
        Err(EtcdError::Mvcc(MvccError::Read(e))) => return Err(read_stop(e)),
        Err(EtcdError::Corrupt { key, reason }) => {
            return Err(Stop::Fail(ApplyError::CorruptData(alloc::format!("key {key:02x?}: {reason}"))));
        }
        // Deterministic refusals (the same on every replica): the write fails, and the
        // session records the failure so a retry gets the same answer.
        Err(e) => (Err(ClientError::Invalid(e.to_string())), Batch::new()),
    };
    let new_state = ApplyState { index: index.0, last_ts: commit_ts.0, term };
    batch.put(&skey, &SessionRecord { seq: cmd.seq, result: result.clone() }.encode());
    batch.put(APPLY_STATE_KEY, &new_state.encode());
    batch.set_applied_mark(index.0);
    Ok((answer(result), Some((batch, new_state)), false))
}

fn read_stop(e: ReadError) -> Stop {
    match e {
        ReadError::Pending => Stop::Pending,
        other => Stop::Fail(ApplyError::CorruptData(alloc::format!("{other:?}"))),
    }
}

/// The etcd transaction a write op is.
fn txn_request(op: &WriteOp) -> TxnRequest {
    let write = |key: &Vec<u8>, value: &Option<Vec<u8>>| match value {
        Some(v) => TxnOp::Put { key: key.clone(), value: v.clone(), lease: None },
        None => TxnOp::Delete { key: key.clone() },
    };
    match op {
        WriteOp::Put { key, value } => TxnRequest { success: vec![write(key, &Some(value.clone()))], ..TxnRequest::default() },
        WriteOp::Delete { key } => TxnRequest { success: vec![write(key, &None)], ..TxnRequest::default() },
        WriteOp::Cas { key, expected, new } => TxnRequest {
            compares: vec![Compare {
                key: key.clone(),
                range_end: None,
                op: CompareOp::Equal,
                target: match expected {
                    Some(v) => CompareTarget::Value(v.clone()),
                    // An absent key has version 0 (a deleted one too).
                    None => CompareTarget::Version(0),
                },
            }],
            success: vec![write(key, new)],
            failure: Vec::new(),
        },
        WriteOp::Txn(t) => t.to_request(),
    }
}
