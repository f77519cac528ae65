//! Ordered iteration over the whole store as of a sequence number, forward or backward,
//! as a resumable state machine (the same pattern as [`super::read::Lookup`]).
//!
//! Sources are the memtables (read in chunks) and one cursor per L0 file and per deeper level.
//! The iterator merges them by internal key and yields, for each user key in range, the newest
//! version visible at its sequence number, skipping tombstones.
//!
//! Calling protocol:
//!
//! ```text
//! loop {
//!     match it.step() {
//!         IterStep::Item(key, value)         => use it,
//!         IterStep::NeedBlock { file, handle } => it.supply(block),          // cache or disk
//!         IterStep::NeedMemtable             => store.refill_iter(&mut it),  // under the lock
//!         IterStep::End                      => break,
//!     }
//! }
//! store.release_iter(&it);                                                   // under the lock
//! ```
use super::config::NUM_LEVELS;
use super::key::{self, ValueKind, MAX_SEQ};
use super::memtable::{Entry, Memtable};
use super::sstable::{Block, BlockCursor, BlockHandle};
use super::version::{TableFile, Version};
use super::io::FileName;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Bound;

/// What iteration produced or needs.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum IterStep {
    /// The next key and its value.
    Item(Vec<u8>, Vec<u8>),
    /// Supply this block with [`StoreIter::supply`].
    NeedBlock {
        /// The table.
        file: FileName,
        /// The block.
        handle: BlockHandle,
    },
    /// Ask the store to refill the active memtable's chunk (`Store::refill_iter`).
    NeedMemtable,
    /// No more items.
    End,
}

/// Entries copied from a memtable per refill.
pub(crate) const CHUNK: usize = 256;

/// One ordered input.
#[derive(Debug)]
enum Source {
    /// A memtable read in chunks of owned entries.
    Mem(MemSource),
    /// A run of disjoint tables (one L0 file, or one whole level).
    Tables(Box<TableSource>),
}

#[derive(Debug)]
pub(crate) struct MemSource {
    /// `Some` for a frozen memtable the iterator holds; `None` for the store's active one.
    pub(crate) mem: Option<Arc<Memtable>>,
    /// Which memtable (for refills of the active one).
    pub(crate) id: u64,
    /// Entries not yet consumed: (user key, trailer, value).
    pub(crate) buf: VecDeque<(Vec<u8>, u64, Vec<u8>)>,
    /// Where the next refill resumes (exclusive), `None` before the first.
    pub(crate) resume: Option<(Vec<u8>, u64)>,
    pub(crate) exhausted: bool,
}

struct TableSource {
    files: Vec<Arc<TableFile>>,
    file: usize,
    block: usize,
    cursor: Option<BlockCursor>,
    /// The block the source waits for, and how to position in it.
    want: Option<Want>,
    done: bool,
}

#[derive(Debug, Clone, Copy)]
enum Want {
    First,
    Last,
    Seek,
    SeekForPrev,
}

/// A merging iterator over one read view. See the module docs for the protocol.
#[derive(Debug)]
pub struct StoreIter {
    seq: u64,
    reverse: bool,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    sources: Vec<Source>,
    started: bool,
    /// Forward: the user key already decided. Reverse: the candidate being collected.
    last_user: Option<Vec<u8>>,
    cand: Option<(ValueKind, Vec<u8>)>,
    waiting: Option<usize>,
    ended: bool,
    /// Memtable ids pinned by this iterator (released by `Store::release_iter`).
    pub(crate) pinned: Vec<u64>,
}

impl StoreIter {
    /// An iterator over `version` and the given memtables (`active_id` is the store's active
    /// memtable, read through refills; `frozen` are held directly), as of `seq`.
    pub(crate) fn new(
        version: Arc<Version>,
        active_id: u64,
        frozen: Vec<(u64, Arc<Memtable>)>,
        seq: u64,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Self {
        let mut sources = Vec::new();
        let pinned = alloc::vec![active_id];
        sources.push(Source::Mem(MemSource { mem: None, id: active_id, buf: VecDeque::new(), resume: None, exhausted: false }));
        // Frozen memtables are held by `Arc` directly; only the active one is read through the
        // store and needs a pin.
        for (id, m) in frozen {
            sources.push(Source::Mem(MemSource { mem: Some(m), id, buf: VecDeque::new(), resume: None, exhausted: false }));
        }
        for f in &version.levels[0] {
            sources.push(Source::Tables(Box::new(TableSource::new(alloc::vec![f.clone()]))));
        }
        for level in 1..NUM_LEVELS {
            if !version.levels[level].is_empty() {
                sources.push(Source::Tables(Box::new(TableSource::new(version.levels[level].clone()))));
            }
        }
        StoreIter {
            seq: seq.min(MAX_SEQ),
            reverse,
            lower,
            upper,
            sources,
            started: false,
            last_user: None,
            cand: None,
            waiting: None,
            ended: false,
            pinned,
        }
    }

    /// Advances to the next item or need.
    pub fn step(&mut self) -> IterStep {
        if self.ended {
            return IterStep::End;
        }
        if !self.started {
            self.started = true;
            let (lower, upper, reverse) = (self.lower.clone(), self.upper.clone(), self.reverse);
            for s in &mut self.sources {
                match s {
                    Source::Tables(t) => t.position(reverse, &lower, &upper),
                    Source::Mem(m) => m.exhausted = false,
                }
            }
        }
        loop {
            for i in 0..self.sources.len() {
                match &mut self.sources[i] {
                    Source::Tables(t) => {
                        if let Some((file, handle)) = t.need() {
                            self.waiting = Some(i);
                            return IterStep::NeedBlock { file, handle };
                        }
                    }
                    Source::Mem(m) => {
                        if m.buf.is_empty() && !m.exhausted {
                            match &m.mem {
                                Some(mem) => {
                                    let mem = mem.clone();
                                    refill_from(m, &mem, self.reverse, &self.lower, &self.upper);
                                }
                                None => return IterStep::NeedMemtable,
                            }
                        }
                    }
                }
            }
            let Some(best) = self.best() else {
                self.ended = true;
                return match self.cand.take() {
                    Some((ValueKind::Put, v)) => IterStep::Item(self.last_user.take().unwrap_or_default(), v),
                    _ => IterStep::End,
                };
            };
            let (user, trailer, value) = self.entry(best);
            if !self.in_bounds(user) {
                self.ended = true;
                return match self.cand.take() {
                    Some((ValueKind::Put, v)) => IterStep::Item(self.last_user.take().unwrap_or_default(), v),
                    _ => IterStep::End,
                };
            }
            let Some((seq, kind)) = key::split_trailer(trailer) else {
                self.advance(best);
                continue;
            };
            if seq > self.seq || self.excluded_bound(user) {
                self.advance(best);
                continue;
            }
            if !self.reverse {
                if self.last_user.as_deref() == Some(user) {
                    self.advance(best);
                    continue;
                }
                let user = user.to_vec();
                let value = value.to_vec();
                self.last_user = Some(user.clone());
                self.advance(best);
                if kind == ValueKind::Put {
                    return IterStep::Item(user, value);
                }
            } else {
                if self.last_user.as_deref().is_some_and(|u| u != user) {
                    // The previous user key is complete: emit it, keep this entry for later.
                    let prev = self.last_user.take().unwrap_or_default();
                    if let Some((ValueKind::Put, v)) = self.cand.take() {
                        return IterStep::Item(prev, v);
                    }
                    self.cand = None;
                    continue;
                }
                // Versions arrive oldest first backwards: the last visible one wins.
                let cand = (kind, value.to_vec());
                if self.last_user.is_none() {
                    let user = user.to_vec();
                    self.last_user = Some(user);
                }
                self.cand = Some(cand);
                self.advance(best);
            }
        }
    }

    /// Supplies the block the last [`IterStep::NeedBlock`] asked for.
    pub fn supply(&mut self, block: &Block) {
        if let Some(i) = self.waiting.take() {
            if let Source::Tables(t) = &mut self.sources[i] {
                t.supply(block, self.reverse, &self.lower, &self.upper);
            }
        }
    }

    /// The memtable source that needs a refill: `(id, resume point)`.
    pub(crate) fn active_source(&mut self) -> Option<&mut MemSource> {
        self.sources.iter_mut().find_map(|s| match s {
            Source::Mem(m) if m.mem.is_none() && m.buf.is_empty() && !m.exhausted => Some(m),
            _ => None,
        })
    }

    pub(crate) fn bounds(&self) -> (bool, Bound<Vec<u8>>, Bound<Vec<u8>>) {
        (self.reverse, self.lower.clone(), self.upper.clone())
    }

    fn entry(&self, i: usize) -> (&[u8], u64, &[u8]) {
        match &self.sources[i] {
            Source::Mem(m) => match m.buf.front() {
                Some((u, t, v)) => (u, *t, v),
                None => (&[], 0, &[]),
            },
            Source::Tables(t) => match &t.cursor {
                Some(c) if c.valid() => (c.user_key(), c.trailer(), c.value()),
                _ => (&[], 0, &[]),
            },
        }
    }

    fn has_entry(&self, i: usize) -> bool {
        match &self.sources[i] {
            Source::Mem(m) => !m.buf.is_empty(),
            Source::Tables(t) => !t.done && t.cursor.as_ref().is_some_and(|c| c.valid()),
        }
    }

    fn best(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in 0..self.sources.len() {
            if !self.has_entry(i) {
                continue;
            }
            best = Some(match best {
                None => i,
                Some(b) => {
                    let (ub, tb, _) = self.entry(b);
                    let (ui, ti, _) = self.entry(i);
                    let ord = ui.cmp(ub).then(tb.cmp(&ti));
                    let better = if self.reverse { ord == Ordering::Greater } else { ord == Ordering::Less };
                    if better { i } else { b }
                }
            });
        }
        best
    }

    fn advance(&mut self, i: usize) {
        let reverse = self.reverse;
        match &mut self.sources[i] {
            Source::Mem(m) => {
                m.buf.pop_front();
            }
            Source::Tables(t) => t.advance(reverse),
        }
    }

    fn in_bounds(&self, user: &[u8]) -> bool {
        if self.reverse {
            match &self.lower {
                Bound::Included(l) => user >= l.as_slice(),
                Bound::Excluded(l) => user > l.as_slice(),
                Bound::Unbounded => true,
            }
        } else {
            match &self.upper {
                Bound::Included(u) => user <= u.as_slice(),
                Bound::Excluded(u) => user < u.as_slice(),
                Bound::Unbounded => true,
            }
        }
    }

    /// True for keys at the starting bound that the bound excludes (or beyond it).
    fn excluded_bound(&self, user: &[u8]) -> bool {
        if self.reverse {
            match &self.upper {
                Bound::Excluded(u) => user >= u.as_slice(),
                Bound::Included(u) => user > u.as_slice(),
                Bound::Unbounded => false,
            }
        } else {
            match &self.lower {
                Bound::Excluded(l) => user <= l.as_slice(),
                Bound::Included(l) => user < l.as_slice(),
                Bound::Unbounded => false,
            }
        }
    }
}

/// Copies the next chunk of `mem` (from the source's resume point) into its buffer.
pub(crate) fn refill_from(m: &mut MemSource, mem: &Memtable, reverse: bool, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) {
    let top = key::trailer(MAX_SEQ, ValueKind::Put);
    // Entries past the far bound are never needed: a chunk stops there (a short chunk marks the
    // source exhausted), so a narrow range, like an MVCC seek, copies only what it reads.
    let below_upper = |e: &Entry<'_>| match upper {
        Bound::Included(u) => e.user <= u.as_slice(),
        Bound::Excluded(u) => e.user < u.as_slice(),
        Bound::Unbounded => true,
    };
    let above_lower = |e: &Entry<'_>| match lower {
        Bound::Included(l) | Bound::Excluded(l) => e.user >= l.as_slice(),
        Bound::Unbounded => true,
    };
    let n = if !reverse {
        match (&m.resume, lower) {
            (Some((u, t)), _) => take_chunk(&mut m.buf, mem.range_from(u, *t).skip(1).take_while(below_upper)),
            (None, Bound::Included(l) | Bound::Excluded(l)) => take_chunk(&mut m.buf, mem.range_from(l, top).take_while(below_upper)),
            (None, Bound::Unbounded) => take_chunk(&mut m.buf, mem.iter().take_while(below_upper)),
        }
    } else {
        match (&m.resume, upper) {
            (Some((u, t)), _) => take_chunk(&mut m.buf, mem.range_before_rev(u, *t).take_while(above_lower)),
            (None, Bound::Included(h) | Bound::Excluded(h)) => {
                take_chunk(&mut m.buf, mem.range_before_rev(&successor(h), top).take_while(above_lower))
            }
            (None, Bound::Unbounded) => take_chunk(&mut m.buf, mem.iter_rev().take_while(above_lower)),
        }
    };
    if n < CHUNK {
        m.exhausted = true;
    }
    if let Some((u, t, _)) = m.buf.back() {
        m.resume = Some((u.clone(), *t));
    }
}

/// Copies up to [`CHUNK`] entries into `buf`; returns how many.
fn take_chunk<'a>(buf: &mut VecDeque<(Vec<u8>, u64, Vec<u8>)>, it: impl Iterator<Item = Entry<'a>>) -> usize {
    let mut n = 0;
    for e in it.take(CHUNK) {
        buf.push_back((e.user.to_vec(), e.trailer, e.value.to_vec()));
        n += 1;
    }
    n
}

/// The smallest key strictly greater than `k` (`k` followed by a zero byte).
fn successor(k: &[u8]) -> Vec<u8> {
    let mut v = k.to_vec();
    v.push(0);
    v
}

impl core::fmt::Debug for TableSource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TableSource").field("file", &self.file).field("block", &self.block).field("done", &self.done).finish()
    }
}

impl TableSource {
    fn new(files: Vec<Arc<TableFile>>) -> Self {
        TableSource { files, file: 0, block: 0, cursor: None, want: None, done: false }
    }

    /// Chooses the first file and block to load for the iteration's start.
    fn position(&mut self, reverse: bool, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) {
        if !reverse {
            match lower {
                Bound::Unbounded => self.goto(0, Some(0), Want::First),
                Bound::Included(l) | Bound::Excluded(l) => {
                    let f = self.files.partition_point(|f| f.largest() < l.as_slice());
                    let b = self.files.get(f).and_then(|t| t.table.seek_block(l, key::trailer(MAX_SEQ, ValueKind::Put)));
                    self.goto(f, b, Want::Seek);
                }
            }
        } else {
            match upper {
                Bound::Unbounded => {
                    let f = self.files.len().saturating_sub(1);
                    let b = self.files.get(f).map(|t| t.table.block_count().saturating_sub(1));
                    self.goto(f, b, Want::Last);
                }
                Bound::Included(h) | Bound::Excluded(h) => {
                    let f = self.files.partition_point(|f| f.smallest() <= h.as_slice());
                    if f == 0 {
                        self.done = true;
                        return;
                    }
                    let f = f - 1;
                    let t = &self.files[f];
                    let b = t.table.seek_block(h, 0).unwrap_or(t.table.block_count().saturating_sub(1));
                    self.goto(f, Some(b), Want::SeekForPrev);
                }
            }
        }
        let _ = upper;
    }

    fn goto(&mut self, file: usize, block: Option<usize>, want: Want) {
        self.cursor = None;
        match (self.files.get(file), block) {
            (Some(_), Some(b)) => {
                self.file = file;
                self.block = b;
                self.want = Some(want);
            }
            (Some(_), None) if matches!(want, Want::Seek | Want::First) => {
                // Past the end of this file: the next file's first block.
                self.goto(file + 1, Some(0), Want::First);
            }
            _ => self.done = true,
        }
        if self.files.get(self.file).is_some_and(|t| self.block >= t.table.block_count()) {
            self.done = true;
        }
    }

    fn need(&self) -> Option<(FileName, BlockHandle)> {
        if self.done || self.want.is_none() {
            return None;
        }
        let t = self.files.get(self.file)?;
        Some((FileName::table(t.meta.number), t.table.block_handle(self.block)))
    }

    fn supply(&mut self, block: &Block, reverse: bool, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) {
        let Some(want) = self.want.take() else { return };
        let mut c = block.cursor();
        match want {
            Want::First => c.seek_to_first(),
            Want::Last => c.seek_to_last(),
            Want::Seek => match lower {
                Bound::Included(l) | Bound::Excluded(l) => c.seek(l, key::trailer(MAX_SEQ, ValueKind::Put)),
                Bound::Unbounded => c.seek_to_first(),
            },
            Want::SeekForPrev => match upper {
                Bound::Included(h) | Bound::Excluded(h) => c.seek_for_prev(h, 0),
                Bound::Unbounded => c.seek_to_last(),
            },
        }
        self.cursor = Some(c);
        self.settle(reverse);
    }

    fn advance(&mut self, reverse: bool) {
        if let Some(c) = &mut self.cursor {
            if reverse {
                c.prev();
            } else {
                c.next();
            }
        }
        self.settle(reverse);
    }

    /// When the cursor ran off its block, asks for the neighbouring block.
    fn settle(&mut self, reverse: bool) {
        if self.cursor.as_ref().is_some_and(|c| c.valid()) {
            return;
        }
        self.cursor = None;
        let Some(t) = self.files.get(self.file) else {
            self.done = true;
            return;
        };
        if !reverse {
            if self.block + 1 < t.table.block_count() {
                self.block += 1;
                self.want = Some(Want::First);
            } else if self.file + 1 < self.files.len() {
                self.file += 1;
                self.block = 0;
                self.want = Some(Want::First);
            } else {
                self.done = true;
            }
        } else if self.block > 0 {
            self.block -= 1;
            self.want = Some(Want::Last);
        } else if self.file > 0 {
            self.file -= 1;
            self.block = self.files[self.file].table.block_count().saturating_sub(1);
            self.want = Some(Want::Last);
        } else {
            self.done = true;
        }
    }
}
