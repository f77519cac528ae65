//! Background jobs: flushing a memtable and carrying out a compaction [`Plan`].
//!
//! A job is CPU work plus file I/O that must not hold up the store, so the store hands it to
//! the binding as an [`Output::Job`](super::store::Output::Job); the binding may run it on any
//! thread. A job is itself a sans-IO state machine. Calling protocol:
//!
//! ```text
//! loop {
//!     match job.step() {
//!         JobStep::Read { file, offset, len } => job.handle_read(disk.read(file, offset, len)),
//!         JobStep::WriteFile { file, data }   => job.handle_write(disk.create_write_sync(file, data)),
//!         JobStep::Done                       => break,
//!     }
//! }
//! store.handle_job(now, job);
//! ```
//!
//! `WriteFile` creates a new file (never one the store references), writes it whole and syncs
//! it and its directory entry. A job never changes what the store references: the store installs
//! its outputs with a manifest edit after `handle_job`, and deletes inputs only when no reader
//! holds them.
use super::compaction::Plan;
use super::error::Error;
use super::io::{FileName, IoError};
use super::key::{self, ValueKind};
use super::manifest::TableMeta;
use super::memtable::Memtable;
use super::sstable::{Block, BlockCursor, TableBuilder, TableOptions};
use super::version::TableFile;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Identifies a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// What the job needs next.
#[derive(Debug)]
#[must_use]
pub enum JobStep {
    /// Read `len` bytes at `offset` of `file`; answer with [`Job::handle_read`].
    Read {
        /// The file.
        file: FileName,
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Create `file`, write `data`, sync it; answer with [`Job::handle_write`].
    WriteFile {
        /// The new file.
        file: FileName,
        /// Its whole contents.
        data: Vec<u8>,
    },
    /// Finished (successfully or not); hand the job back with `Store::handle_job`.
    Done,
}

/// A flush or compaction in progress.
#[derive(Debug)]
pub struct Job {
    id: JobId,
    work: Work,
    outputs: Vec<Arc<TableFile>>,
    pending_output: Option<Arc<TableFile>>,
    error: Option<Error>,
    bytes_read: u64,
    bytes_written: u64,
}

#[derive(Debug)]
enum Work {
    Flush { mem: Arc<Memtable>, number: u64, smallest_snapshot: u64, opts: TableOptions, built: bool },
    Compact(Box<Compaction>),
}

use alloc::boxed::Box;

/// Bytes read at once from a compaction input: several blocks per request.
const READ_WINDOW: u64 = 1 << 20;

impl Job {
    /// A job that writes `mem` to SST number `number`.
    pub(crate) fn flush(id: JobId, mem: Arc<Memtable>, number: u64, smallest_snapshot: u64, opts: TableOptions) -> Job {
        Job::new(id, Work::Flush { mem, number, smallest_snapshot, opts, built: false })
    }

    /// A job that carries out `plan`, naming outputs from `numbers`.
    pub(crate) fn compact(
        id: JobId,
        plan: Plan,
        numbers: core::ops::Range<u64>,
        smallest_snapshot: u64,
        opts: TableOptions,
        target_file_bytes: u64,
    ) -> Job {
        Job::new(id, Work::Compact(Box::new(Compaction::new(plan, numbers, smallest_snapshot, opts, target_file_bytes))))
    }

    fn new(id: JobId, work: Work) -> Job {
        Job { id, work, outputs: Vec::new(), pending_output: None, error: None, bytes_read: 0, bytes_written: 0 }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Advances the job until it needs the disk or is done.
    pub fn step(&mut self) -> JobStep {
        if self.error.is_some() || self.pending_output.is_some() {
            return JobStep::Done;
        }
        let produced = match &mut self.work {
            Work::Flush { mem, number, smallest_snapshot, opts, built } => {
                if *built {
                    return JobStep::Done;
                }
                *built = true;
                let mut out = OutputWriter::new(opts.clone(), *smallest_snapshot, false);
                for e in mem.iter() {
                    out.add(e.user, e.trailer, e.value);
                }
                out.finish(*number)
            }
            Work::Compact(c) => match c.run() {
                Ok(Progress::Read { file, offset, len }) => return JobStep::Read { file, offset, len },
                Ok(Progress::Output(out)) => Ok(out),
                Ok(Progress::Finished) => return JobStep::Done,
                Err(e) => Err(e),
            },
        };
        match produced {
            Ok(Some((file, data))) => {
                let (table_file, data) = match open_output(file, data) {
                    Ok(t) => t,
                    Err(e) => {
                        self.error = Some(e);
                        return JobStep::Done;
                    }
                };
                self.pending_output = Some(table_file);
                JobStep::WriteFile { file, data }
            }
            Ok(None) => JobStep::Done,
            Err(e) => {
                self.error = Some(e);
                JobStep::Done
            }
        }
    }

    /// Feeds the result of a [`JobStep::Read`].
    pub fn handle_read(&mut self, result: Result<Vec<u8>, IoError>) {
        match (&mut self.work, result) {
            (Work::Compact(c), Ok(data)) => {
                self.bytes_read += data.len() as u64;
                c.supply(data);
            }
            (Work::Compact(c), Err(error)) => {
                self.error = Some(Error::Io { file: c.pending_file(), op: "read", error });
            }
            (Work::Flush { .. }, _) => {}
        }
    }

    /// Feeds the result of a [`JobStep::WriteFile`].
    pub fn handle_write(&mut self, result: Result<(), IoError>) {
        let Some(out) = self.pending_output.take() else { return };
        match result {
            Ok(()) => {
                self.bytes_written += out.meta.file_len;
                self.outputs.push(out);
            }
            Err(error) => {
                let file = FileName::table(out.meta.number);
                self.error = Some(Error::Io { file: Some(file), op: "write", error });
            }
        }
    }

    /// After `Done`: the tables written, or the error that stopped the job. Files written
    /// before an error are orphans the store deletes.
    pub(crate) fn into_result(self) -> JobResult {
        let (kind, plan) = match self.work {
            Work::Flush { .. } => (JobKind::Flush, None),
            Work::Compact(c) => (JobKind::Compaction, Some(c.plan)),
        };
        JobResult {
            kind,
            plan,
            outputs: self.outputs,
            error: self.error,
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
        }
    }
}

/// Which kind of job finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    Flush,
    Compaction,
}

/// A finished job, for the store.
#[derive(Debug)]
pub(crate) struct JobResult {
    pub kind: JobKind,
    pub plan: Option<Plan>,
    pub outputs: Vec<Arc<TableFile>>,
    pub error: Option<Error>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

fn open_output(file: FileName, data: Vec<u8>) -> Result<(Arc<TableFile>, Vec<u8>), Error> {
    let table = super::sstable::Table::open_from_bytes(file, &data)?;
    let meta = TableMeta { number: file.number, file_len: data.len() as u64, props: table.props().clone() };
    Ok((Arc::new(TableFile { meta, table }), data))
}

/// Writes merged entries into tables, dropping versions no reader can see.
struct OutputWriter {
    opts: TableOptions,
    builder: Option<TableBuilder>,
    smallest_snapshot: u64,
    bottommost: bool,
    last_user: Vec<u8>,
    has_last: bool,
    last_seq_for_key: u64,
    last_added_user: Vec<u8>,
}

impl OutputWriter {
    fn new(opts: TableOptions, smallest_snapshot: u64, bottommost: bool) -> Self {
        OutputWriter {
            opts,
            builder: None,
            smallest_snapshot,
            bottommost,
            last_user: Vec::new(),
            has_last: false,
            last_seq_for_key: u64::MAX,
            last_added_user: Vec::new(),
        }
    }

    /// Adds an entry (entries arrive in internal-key order) unless it is shadowed.
    fn add(&mut self, user: &[u8], trailer: u64, value: &[u8]) {
        if !self.has_last || self.last_user != user {
            self.last_user.clear();
            self.last_user.extend_from_slice(user);
            self.has_last = true;
            self.last_seq_for_key = u64::MAX;
        }
        let seq = trailer >> 8;
        let is_delete = trailer & 0xff == ValueKind::Delete as u64;
        let hidden = self.last_seq_for_key <= self.smallest_snapshot;
        let dead_tombstone = is_delete && self.bottommost && seq <= self.smallest_snapshot;
        self.last_seq_for_key = seq;
        if hidden || dead_tombstone {
            return;
        }
        let opts = &self.opts;
        self.builder.get_or_insert_with(|| TableBuilder::new(opts)).add(user, trailer, value);
        self.last_added_user.clear();
        self.last_added_user.extend_from_slice(user);
    }

    /// True when the current table is at least `target` bytes and `next_user` may start a new
    /// one (a user key's versions never straddle two files).
    fn should_cut(&self, target: u64, next_user: &[u8]) -> bool {
        self.builder.as_ref().is_some_and(|b| b.estimated_file_len() >= target) && self.last_added_user != next_user
    }

    fn finish(&mut self, number: u64) -> Result<Option<(FileName, Vec<u8>)>, Error> {
        match self.builder.take() {
            Some(b) if !b.is_empty() => {
                let (data, _props) = b.finish();
                Ok(Some((FileName::table(number), data)))
            }
            _ => Ok(None),
        }
    }
}

enum Progress {
    Read { file: FileName, offset: u64, len: u64 },
    Output(Option<(FileName, Vec<u8>)>),
    Finished,
}

/// A merge of sorted runs into new tables.
struct Compaction {
    plan: Plan,
    runs: Vec<Run>,
    numbers: core::ops::Range<u64>,
    out: OutputWriter,
    target_file_bytes: u64,
    waiting: Option<usize>,
    done: bool,
}

impl core::fmt::Debug for Compaction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compaction").field("plan", &self.plan).finish()
    }
}

impl Compaction {
    fn new(plan: Plan, numbers: core::ops::Range<u64>, smallest_snapshot: u64, opts: TableOptions, target: u64) -> Self {
        // Each L0 file is its own run; each deeper level's files form one run (they are sorted
        // and disjoint).
        let mut runs = Vec::new();
        let mut deeper: alloc::collections::BTreeMap<usize, Vec<Arc<TableFile>>> = Default::default();
        for (level, f) in &plan.inputs {
            if *level == 0 {
                runs.push(Run::new(alloc::vec![f.clone()]));
            } else {
                deeper.entry(*level).or_default().push(f.clone());
            }
        }
        for (_, mut files) in deeper {
            files.sort_by(|a, b| a.smallest().cmp(b.smallest()));
            runs.push(Run::new(files));
        }
        let out = OutputWriter::new(opts, smallest_snapshot, plan.bottommost);
        Compaction { plan, runs, numbers, out, target_file_bytes: target, waiting: None, done: false }
    }

    fn pending_file(&self) -> Option<FileName> {
        self.waiting.and_then(|r| self.runs[r].current_file())
    }

    fn supply(&mut self, data: Vec<u8>) {
        if let Some(r) = self.waiting.take() {
            self.runs[r].supply(data);
        }
    }

    fn next_number(&mut self) -> u64 {
        // The range is sized for the worst case; if it ever ran out, the last number is reused
        // only after its file was finished, which `should_cut` prevents by not cutting.
        if self.numbers.end - self.numbers.start > 1 {
            let n = self.numbers.start;
            self.numbers.start += 1;
            n
        } else {
            self.numbers.start
        }
    }

    fn run(&mut self) -> Result<Progress, Error> {
        if self.done {
            return Ok(Progress::Finished);
        }
        loop {
            for i in 0..self.runs.len() {
                if let Some(read) = self.runs[i].fill()? {
                    self.waiting = Some(i);
                    return Ok(read);
                }
            }
            // Pick the smallest current key.
            let mut min: Option<usize> = None;
            for i in 0..self.runs.len() {
                let Some(k) = self.runs[i].key() else { continue };
                if min.is_none_or(|m| key::cmp_internal(k, self.runs[m].key().unwrap_or_default()).is_lt()) {
                    min = Some(i);
                }
            }
            let Some(m) = min else {
                self.done = true;
                let number = self.next_number();
                return Ok(Progress::Output(self.out.finish(number)?));
            };
            let run = &self.runs[m];
            let Some((user, _)) = run.key().and_then(key::split_internal) else {
                return Err(Error::Corruption {
                    file: run.current_file().unwrap_or(FileName::table(0)),
                    offset: 0,
                    reason: "internal key shorter than its trailer",
                });
            };
            let cut = self.out.should_cut(self.target_file_bytes, user) && self.numbers.end - self.numbers.start > 1;
            let produced = if cut {
                let number = self.next_number();
                self.out.finish(number)?
            } else {
                None
            };
            let run = &self.runs[m];
            if let Some((user, trailer)) = run.key().and_then(key::split_internal) {
                self.out.add(user, trailer, run.value());
            }
            self.runs[m].advance();
            if produced.is_some() {
                return Ok(Progress::Output(produced));
            }
        }
    }
}

/// Sequential reader over a run of disjoint tables, reading windows of whole blocks.
struct Run {
    tables: Vec<Arc<TableFile>>,
    table: usize,
    block: usize,
    cursor: Option<BlockCursor>,
    window_offset: u64,
    window: Vec<u8>,
    supplied: bool,
}

impl Run {
    fn new(tables: Vec<Arc<TableFile>>) -> Self {
        Run { tables, table: 0, block: 0, cursor: None, window_offset: 0, window: Vec::new(), supplied: false }
    }

    fn current_file(&self) -> Option<FileName> {
        self.tables.get(self.table).map(|t| FileName::table(t.meta.number))
    }

    fn key(&self) -> Option<&[u8]> {
        self.cursor.as_ref().filter(|c| c.valid()).map(|c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.cursor.as_ref().filter(|c| c.valid()).map(|c| c.value()).unwrap_or_default()
    }

    fn advance(&mut self) {
        if let Some(c) = self.cursor.as_mut() {
            c.next();
        }
    }

    /// Positions the run on an entry, or returns the read it needs first.
    fn fill(&mut self) -> Result<Option<Progress>, Error> {
        loop {
            match &self.cursor {
                Some(c) if c.valid() => return Ok(None),
                Some(_) => {
                    self.cursor = None;
                    self.block += 1;
                }
                None => {}
            }
            let Some(t) = self.tables.get(self.table) else { return Ok(None) };
            if self.block >= t.table.block_count() {
                self.table += 1;
                self.block = 0;
                self.window.clear();
                continue;
            }
            let h = t.table.block_handle(self.block);
            let file = FileName::table(t.meta.number);
            let end = h.offset + u64::from(h.len);
            let win_end = self.window_offset + self.window.len() as u64;
            if h.offset < self.window_offset || end > win_end {
                if self.supplied {
                    return Err(Error::Corruption { file, offset: h.offset, reason: "table shorter than its index says" });
                }
                // Read as many whole blocks as fit in the window (at least this one).
                let mut last = self.block;
                while last + 1 < t.table.block_count() {
                    let n = t.table.block_handle(last + 1);
                    if n.offset + u64::from(n.len) - h.offset > READ_WINDOW {
                        break;
                    }
                    last += 1;
                }
                let l = t.table.block_handle(last);
                let len = l.offset + u64::from(l.len) - h.offset;
                self.window_offset = h.offset;
                self.window.clear();
                return Ok(Some(Progress::Read { file, offset: h.offset, len }));
            }
            let start = (h.offset - self.window_offset) as usize;
            let raw = self.window[start..start + h.len as usize].to_vec();
            self.supplied = false;
            let block = Block::decode(file, h, raw)?;
            let mut c = block.cursor();
            c.seek_to_first();
            self.cursor = Some(c);
        }
    }

    fn supply(&mut self, data: Vec<u8>) {
        self.window = data;
        self.supplied = true;
    }
}
