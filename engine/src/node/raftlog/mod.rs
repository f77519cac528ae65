//! The durable Raft log of one region: what `strata_raft::Output::Persist` asks to make
//! durable, on its own disk folder, as one deterministic state machine.
//!
//! # Calling protocol
//!
//! ```text
//! let mut log = RaftLog::open(cfg);              // recovery starts: I/O requests are queued
//! loop {
//!     while let Some(out) = log.poll() {         // drain every output, in order
//!         match out {
//!             LogOutput::Io { id, req }  => carry it out on the Raft-log disk;
//!                                          later log.handle_io(id, result),
//!             LogOutput::Recovered(r)    => once: Ok(state) -> strata_raft::Node::new(cfg, state)
//!                                          (raise `applied` to the store's durable mark first);
//!                                          Err(e) -> the log cannot be read: stop,
//!             LogOutput::Persisted(id)   => node.handle_persisted(id),
//!             LogOutput::Failed(e)       => a write failed: the log accepts nothing more;
//!                                          drop this RaftLog and open it again (a restart),
//!         }
//!     }
//!     // inputs, only after Recovered(Ok): log.persist(&p) for every Output::Persist, in
//!     // order; log.compact(node.snapshot_meta()) after the store made its state durable.
//! }
//! ```
//!
//! I/O requests for one file must be carried out in the order they were emitted (requests
//! for different files may run concurrently). Everything depends only on the config and the
//! inputs, so a run replays exactly.
//!
//! **Group commit.** One write group is on the disk at a time: its records are appended and
//! synced, then `Persisted(id)` is emitted for the last persist it covers. Persists arriving
//! meanwhile are encoded into a buffer and form the next group, so a busy node pays one sync
//! per batch of persists, without timers. `Persisted` ids come out increasing, never before
//! the sync covering them completed.
//!
//! **Files.** Segments `NNNNNN.wal` (the LSM's WAL name; this folder holds nothing else) of
//! the records in [`record`]. A new segment starts at each open and whenever the current one
//! reaches [`LogConfig::segment_bytes`]; each starts with a checkpoint of the state, so
//! the oldest segment is deleted once every entry in it is at or below a durably compacted
//! index (and the segment after it is durable). Deletions go oldest first, one at a time.
//!
//! **Recovery** lists the folder, reads every segment oldest first and replays its records
//! ([`replay`]). A torn tail of the newest segment (never acknowledged) is cut off durably;
//! any other damage is a [`LogError`] naming the file and offset, and nothing is dropped.
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::{FileKind, FileName, IoError, IoId, IoRequest, IoResult};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use strata_raft::{HardState, Index, Persist, PersistId, Recovered, SnapshotMeta};

pub mod record;
pub mod replay;
mod recovery;

use record::RecordRef;
use recovery::Recovery;

/// Tunables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Start a new segment once the current one holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { segment_bytes: 16 << 20 }
    }
}

/// Something the driver must act on.
#[derive(Debug)]
#[must_use]
pub enum LogOutput {
    /// Carry out on the Raft-log disk, then [`RaftLog::handle_io`].
    Io {
        /// Its id.
        id: IoId,
        /// What to do.
        req: IoRequest,
    },
    /// Once, after [`RaftLog::open`]: the durable Raft state (`applied` is the snapshot's
    /// index, or 0), or why the log cannot be read.
    Recovered(Result<Recovered, LogError>),
    /// Every persist up to this id is durable: pass to `strata_raft::Node::handle_persisted`.
    Persisted(PersistId),
    /// A write failed (or a call came before a successful recovery): nothing after the last
    /// `Persisted` is acknowledged, and the log accepts no more writes. Reopen it.
    Failed(LogError),
}

/// Why the log cannot be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogError {
    /// Bytes on disk failed a check.
    Corruption {
        /// The segment holding them.
        file: FileName,
        /// Offset of the bad header or frame.
        offset: u64,
        /// What check failed.
        reason: &'static str,
    },
    /// Entries after the snapshot are in no surviving segment.
    MissingEntries {
        /// The first missing index.
        from: Index,
        /// The last missing index.
        to: Index,
    },
    /// The records read back contradict Raft's rules.
    Inconsistent {
        /// What rule.
        reason: &'static str,
    },
    /// The disk failed a request.
    Io {
        /// The file, when the request named one.
        file: Option<FileName>,
        /// Which request.
        op: &'static str,
        /// The binding's error.
        error: IoError,
    },
    /// A persist's record is larger than a frame may be (1 GiB).
    RecordTooLarge,
    /// Called before a successful recovery, or after a failure.
    NotOpen,
}

impl LogError {
    pub(crate) fn from_store(e: StoreError) -> LogError {
        match e {
            StoreError::Corruption { file, offset, reason } => LogError::Corruption { file, offset, reason },
            StoreError::Io { file, op, error } => LogError::Io { file, op, error },
            StoreError::InvalidArgument(_) | StoreError::NotOpen => LogError::Inconsistent { reason: "unexpected store error" },
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Corruption { file, offset, reason } => write!(f, "Raft log corruption in {file} at offset {offset}: {reason}"),
            LogError::MissingEntries { from, to } => write!(f, "Raft log entries {from}..={to} are missing"),
            LogError::Inconsistent { reason } => write!(f, "inconsistent Raft log: {reason}"),
            LogError::Io { file: Some(file), op, error } => write!(f, "Raft log {op} {file} failed: {error}"),
            LogError::Io { file: None, op, error } => write!(f, "Raft log {op} failed: {error}"),
            LogError::RecordTooLarge => f.write_str("Raft log record over 1 GiB"),
            LogError::NotOpen => f.write_str("Raft log is not open"),
        }
    }
}

impl core::error::Error for LogError {}

/// Counters, for fsyncs per committed write and the like.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Persist requests accepted.
    pub persists: u64,
    /// Compaction records written.
    pub compactions: u64,
    /// Appends completed.
    pub appends: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Bytes appended.
    pub bytes_written: u64,
    /// Segments on disk.
    pub segments: u64,
    /// Segments deleted.
    pub segments_deleted: u64,
}

/// A segment on disk (or being created), oldest first.
#[derive(Clone, Copy, Debug)]
struct Segment {
    number: u64,
    /// The largest entry index written to it (0: none).
    max_index: Index,
    /// Its creation and checkpoint are durable.
    durable: bool,
}

/// Encoded bytes for one file, not yet handed to the disk.
#[derive(Debug)]
struct Chunk {
    file: FileName,
    data: Vec<u8>,
}

/// One write group on the disk: its steps run one at a time.
#[derive(Debug)]
struct Group {
    steps: VecDeque<IoRequest>,
    /// The request in flight: its file, and its length if it is an append.
    current: Option<(FileName, Option<u64>)>,
    /// The last persist the group covers.
    top: Option<PersistId>,
    /// The log's base index once the group is durable.
    base_after: Index,
}

#[derive(Debug)]
enum Phase {
    Recovering(alloc::boxed::Box<Recovery>),
    Open,
    Failed,
}

#[derive(Debug)]
enum Pending {
    Recovery,
    Write,
    Delete(u64),
}

/// The durable Raft log. See the module docs for the calling protocol.
#[derive(Debug)]
pub struct RaftLog {
    cfg: LogConfig,
    phase: Phase,
    outputs: VecDeque<LogOutput>,
    next_io: u64,
    pending: BTreeMap<IoId, Pending>,
    /// The state after every record encoded so far (what a checkpoint records).
    hard_state: HardState,
    base: SnapshotMeta,
    last: Index,
    segments: VecDeque<Segment>,
    /// Logical length of the newest segment (on disk and buffered), if this open created it.
    active_len: Option<u64>,
    next_number: u64,
    chunks: VecDeque<Chunk>,
    /// The last persist encoded into `chunks`.
    queued_top: Option<PersistId>,
    group: Option<Group>,
    /// The base index as of the last synced group.
    durable_base: Index,
    deleting: Option<u64>,
    deletes_paused: bool,
    stats: LogStats,
}

impl RaftLog {
    /// Creates the log and starts recovery; drain [`RaftLog::poll`] for its I/O.
    pub fn open(cfg: LogConfig) -> RaftLog {
        let mut log = RaftLog {
            cfg,
            phase: Phase::Recovering(alloc::boxed::Box::default()),
            outputs: VecDeque::new(),
            next_io: 0,
            pending: BTreeMap::new(),
            hard_state: HardState::default(),
            base: SnapshotMeta::default(),
            last: Index(0),
            segments: VecDeque::new(),
            active_len: None,
            next_number: 1,
            chunks: VecDeque::new(),
            queued_top: None,
            group: None,
            durable_base: Index(0),
            deleting: None,
            deletes_paused: false,
            stats: LogStats::default(),
        };
        log.recovery_step(None);
        log
    }

    /// Takes the next output. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<LogOutput> {
        self.outputs.pop_front()
    }

    /// True once recovery succeeded and no write has failed.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        LogStats { segments: self.segments.len() as u64, ..self.stats.clone() }
    }

    /// True when nothing is buffered or on the disk.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.chunks.is_empty() && self.group.is_none()
    }

    /// Makes `p` durable; `Persisted(p.id)` follows once it is. Call in the order the Raft
    /// node emitted the persists, only after `Recovered(Ok)`.
    pub fn persist(&mut self, p: &Persist) {
        if !self.is_open() {
            self.outputs.push_back(LogOutput::Failed(LogError::NotOpen));
            return;
        }
        let record = RecordRef::Persist { hard_state: &p.hard_state, snapshot: p.snapshot.as_deref(), entries: &p.entries };
        if !self.append_record(&record) {
            return;
        }
        self.stats.persists += 1;
        self.hard_state = p.hard_state;
        if let Some(s) = &p.snapshot {
            self.base = (**s).clone();
            self.last = s.index;
        }
        if let Some(e) = p.entries.last() {
            self.last = e.index;
            if let Some(seg) = self.segments.back_mut() {
                seg.max_index = seg.max_index.max(e.index);
            }
        }
        self.queued_top = Some(p.id);
        self.pump();
    }

    /// Records that the entries up to `base.index` are no longer needed (the state machine
    /// holds them durably; `base` is the node's `snapshot_meta()` after `Node::compact`).
    /// Segments holding only such entries are deleted once the record is durable. A `base`
    /// not above the current one is ignored.
    pub fn compact(&mut self, base: &SnapshotMeta) {
        if !self.is_open() {
            self.outputs.push_back(LogOutput::Failed(LogError::NotOpen));
            return;
        }
        self.deletes_paused = false;
        if base.index <= self.base.index {
            self.maybe_delete();
            return;
        }
        if !self.append_record(&RecordRef::Compact { base }) {
            return;
        }
        self.stats.compactions += 1;
        self.base = base.clone();
        self.last = self.last.max(base.index);
        self.pump();
    }

    /// Feeds the completion of I/O request `id`.
    pub fn handle_io(&mut self, id: IoId, result: IoResult) {
        let Some(p) = self.pending.remove(&id) else { return };
        match p {
            Pending::Recovery => self.recovery_step(Some(result)),
            Pending::Write => self.write_done(result),
            Pending::Delete(number) => {
                self.deleting = None;
                match result {
                    IoResult::Failed(_) => self.deletes_paused = true,
                    _ => {
                        if self.segments.front().is_some_and(|s| s.number == number) {
                            self.segments.pop_front();
                            self.stats.segments_deleted += 1;
                        }
                        self.maybe_delete();
                    }
                }
            }
        }
    }

    // ----- writing -----

    /// Encodes `record` into the newest segment's buffer, starting a segment first when
    /// needed. False (and the log failed) when the record cannot be written.
    fn append_record(&mut self, record: &RecordRef<'_>) -> bool {
        let roll = match self.active_len {
            None => true,
            Some(len) => len >= self.cfg.segment_bytes,
        };
        if roll {
            self.start_segment();
        }
        let file = FileName::wal(self.segments.back().map_or(0, |s| s.number));
        if self.chunks.back().is_none_or(|c| c.file != file) {
            self.chunks.push_back(Chunk { file, data: Vec::new() });
        }
        let Some(chunk) = self.chunks.back_mut() else { return false };
        match record::encode(&mut chunk.data, record) {
            Some(n) => {
                self.active_len = Some(self.active_len.unwrap_or(0) + n as u64);
                true
            }
            None => {
                self.fail(LogError::RecordTooLarge);
                false
            }
        }
    }

    /// Starts a new segment whose first record is a checkpoint of the current state.
    fn start_segment(&mut self) {
        let number = self.next_number;
        self.next_number += 1;
        self.segments.push_back(Segment { number, max_index: Index(0), durable: false });
        let mut data = record::file_header().to_vec();
        let cp = RecordRef::Checkpoint { hard_state: &self.hard_state, base: &self.base, last: self.last };
        // A checkpoint holds no entries: it always fits in a frame.
        let _ = record::encode(&mut data, &cp);
        self.active_len = Some(data.len() as u64);
        self.chunks.push_back(Chunk { file: FileName::wal(number), data });
    }

    /// Starts the next write group when the disk is free.
    fn pump(&mut self) {
        if !self.is_open() || self.group.is_some() || self.chunks.is_empty() {
            return;
        }
        let mut steps = VecDeque::new();
        for c in self.chunks.drain(..) {
            let file = c.file;
            if !c.data.is_empty() {
                steps.push_back(IoRequest::Append { file, data: c.data });
            }
            steps.push_back(IoRequest::Sync { file });
        }
        self.group = Some(Group { steps, current: None, top: self.queued_top.take(), base_after: self.base.index });
        self.next_step();
    }

    fn next_step(&mut self) {
        let Some(g) = self.group.as_mut() else { return };
        let Some(req) = g.steps.pop_front() else { return };
        g.current = match &req {
            IoRequest::Append { file, data } => Some((*file, Some(data.len() as u64))),
            IoRequest::Sync { file } => Some((*file, None)),
            _ => None,
        };
        self.emit(req, Pending::Write);
    }

    fn write_done(&mut self, result: IoResult) {
        let Some(g) = self.group.as_mut() else { return };
        let Some((file, append_len)) = g.current.take() else { return };
        if let IoResult::Failed(error) = result {
            let op = if append_len.is_some() { "append" } else { "sync" };
            self.fail(LogError::Io { file: Some(file), op, error });
            return;
        }
        match append_len {
            Some(len) => {
                self.stats.appends += 1;
                self.stats.bytes_written += len;
            }
            None => {
                self.stats.syncs += 1;
                if let Some(s) = self.segments.iter_mut().find(|s| s.number == file.number) {
                    s.durable = true;
                }
            }
        }
        if !g.steps.is_empty() {
            self.next_step();
            return;
        }
        let Some(g) = self.group.take() else { return };
        self.durable_base = self.durable_base.max(g.base_after);
        if let Some(top) = g.top {
            self.outputs.push_back(LogOutput::Persisted(top));
        }
        self.pump();
        self.maybe_delete();
    }

    /// Deletes the oldest segment if nothing in it is needed any more.
    fn maybe_delete(&mut self) {
        if !self.is_open() || self.deleting.is_some() || self.deletes_paused || self.segments.len() < 2 {
            return;
        }
        let (old, next) = (self.segments[0], self.segments[1]);
        if next.durable && old.max_index <= self.durable_base {
            self.deleting = Some(old.number);
            self.emit(IoRequest::Delete { file: FileName::wal(old.number) }, Pending::Delete(old.number));
        }
    }

    fn fail(&mut self, e: LogError) {
        self.phase = Phase::Failed;
        self.chunks.clear();
        self.group = None;
        self.outputs.push_back(LogOutput::Failed(e));
    }

    fn emit(&mut self, req: IoRequest, p: Pending) {
        let id = IoId(self.next_io);
        self.next_io += 1;
        self.pending.insert(id, p);
        self.outputs.push_back(LogOutput::Io { id, req });
    }
}

/// True for the files this log owns in its folder.
fn is_segment(f: &FileName) -> bool {
    f.kind == FileKind::Wal
}

#[cfg(test)]
mod tests;
