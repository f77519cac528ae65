//! A [`SnapshotReader`] over the LSM store: the memtables plus a [`ReadView`] at one sequence
//! number, with SST blocks taken from memory only.
//!
//! Point reads (`lock`, `value`) are a memtable probe then a resumable [`Lookup`]; ordered
//! reads (`seek_write`, `next_key`, `scan_locks`) are a [`StoreIter`] from a seek key. Whenever
//! one of them needs a block that is not at hand, the reader records the block
//! ([`StoreSnapshot::needed`]) and answers [`ReadError::Pending`]: the command stops, the caller
//! reads the block, and runs the command again with the block at hand. Commands are pure, so a
//! rerun is always safe.
//!
//! The reader borrows the store immutably and must be dropped before the store takes another
//! input (its iterators pin nothing).
use crate::lsm::cache::BlockCache;
use crate::lsm::io::FileName;
use crate::lsm::iter::IterStep;
use crate::lsm::key::{self, ValueKind};
use crate::lsm::memtable::{Entry, Found};
use crate::lsm::read::{Lookup, LookupStep};
use crate::lsm::sstable::{bloom, Block, BlockCursor, BlockHandle};
use crate::lsm::version::TableFile;
use crate::lsm::store::{ReadView, Store};
use super::resolved::LockFilter;
use crate::mvcc::codec::{self, Cf};
use crate::mvcc::error::{Corruption, ReadError};
use crate::mvcc::read::KeyValue;
use crate::mvcc::reader::{RawEntries, RawReader, SnapshotReader};
use crate::mvcc::record::{Lock, Write};
use crate::mvcc::Ts;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ops::Bound;

/// Blocks a command has already been given, by `(file number, offset)`: they stay at hand for
/// the command's reruns whatever the shared cache evicts, so every rerun makes progress.
pub type BlockMap = BTreeMap<(u64, u64), Block>;

/// Blocks a driver can hand over at once, from its own memory (a block cache shared with
/// other readers): the reader asks it before answering `Pending`. It must not do I/O.
pub trait BlockSource: Send {
    /// The decoded block at `offset` in table `file_number`, if it is in memory.
    fn cached_block(&self, file_number: u64, offset: u64) -> Option<Block>;
}

/// A block the reader needed and did not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeededBlock {
    /// The table file.
    pub file: FileName,
    /// The block in it.
    pub handle: BlockHandle,
}

/// The store's state at one sequence number, read from memory (see the module docs).
pub struct StoreSnapshot<'a> {
    store: &'a Store,
    view: ReadView,
    own: &'a BlockMap,
    cache: &'a RefCell<BlockCache>,
    source: Option<&'a dyn BlockSource>,
    locks: Option<LockFilter<'a>>,
    needed: Cell<Option<NeededBlock>>,
    /// A buffer for the seek keys of `seek_write` (see [`StoreSnapshot::with_scratch`]).
    scratch: RefCell<Vec<u8>>,
}

impl<'a> StoreSnapshot<'a> {
    /// A reader of `store`'s current state; blocks come from `own`, then `cache`.
    pub fn new(store: &'a Store, own: &'a BlockMap, cache: &'a RefCell<BlockCache>) -> Self {
        StoreSnapshot { store, view: store.read_view(), own, cache, source: None, locks: None, needed: Cell::new(None), scratch: RefCell::new(Vec::new()) }
    }

    /// Also takes blocks from `source` before answering `Pending`.
    pub fn with_source(mut self, source: Option<&'a dyn BlockSource>) -> Self {
        self.source = source;
        self
    }

    /// Answers lock probes of keys `locks` rules out without reading the store (the
    /// executor's in-memory lock table; see [`LockFilter`]).
    pub(crate) fn with_lock_filter(mut self, locks: Option<LockFilter<'a>>) -> Self {
        self.locks = locks;
        self
    }

    /// Builds seek keys in `buf` (a caller running many commands keeps one buffer for all of
    /// them: [`StoreSnapshot::into_scratch`] gives it back).
    pub fn with_scratch(mut self, buf: Vec<u8>) -> Self {
        self.scratch = RefCell::new(buf);
        self
    }

    /// The buffer of [`StoreSnapshot::with_scratch`], for the next snapshot.
    pub fn into_scratch(self) -> Vec<u8> {
        self.scratch.into_inner()
    }

    /// The view read at.
    pub fn view(&self) -> &ReadView {
        &self.view
    }

    /// The block whose absence made the last read answer `Pending`.
    pub fn needed(&self) -> Option<NeededBlock> {
        self.needed.get()
    }

    fn block(&self, file: FileName, handle: BlockHandle) -> Result<Block, ReadError> {
        if let Some(b) = self.own.get(&(file.number, handle.offset)) {
            return Ok(b.clone());
        }
        if let Some(b) = self.cache.borrow_mut().get(file.number, handle.offset) {
            return Ok(b);
        }
        if let Some(b) = self.source.and_then(|s| s.cached_block(file.number, handle.offset)) {
            return Ok(b);
        }
        self.needed.set(Some(NeededBlock { file, handle }));
        Err(ReadError::Pending)
    }

    /// The newest visible value of the raw key `key`.
    fn point(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        match self.store.get_in_memory(key, self.view.seq) {
            Some(Found::Value(v)) => return Ok(Some(v)),
            Some(Found::Deleted) => return Ok(None),
            None => {}
        }
        if !self.tables_may_hold(key) {
            return Ok(None);
        }
        let mut lookup = Lookup::new(self.view.version.clone(), key, self.view.seq);
        loop {
            match lookup.step() {
                LookupStep::Done(v) => return Ok(v),
                LookupStep::NeedBlock { file, handle } => lookup.supply(&self.block(file, handle)?),
            }
        }
    }

    /// False when no table of the view can hold a version of the raw key `key` (key ranges and
    /// bloom filters): the common answer for a lock probe, settled without a [`Lookup`].
    fn tables_may_hold(&self, key: &[u8]) -> bool {
        let version = &self.view.version;
        let h = bloom::key_hash(key);
        version.levels[0]
            .iter()
            .any(|t| t.smallest() <= key && key <= t.largest() && t.meta.props.min_seq <= self.view.seq && t.table.may_contain_hash(h))
            || (1..version.levels.len()).any(|level| version.file_for(level, key).is_some_and(|t| t.table.may_contain_hash(h)))
    }

    /// Up to `limit` live raw entries in `[lower, upper)`, in order.
    fn range(&self, lower: Vec<u8>, upper: Vec<u8>, limit: usize) -> Result<Vec<KeyValue>, ReadError> {
        let mut it = self.store.iter_unpinned(Bound::Included(lower), Bound::Excluded(upper), self.view.seq);
        let mut out = Vec::new();
        while out.len() < limit {
            match it.step() {
                IterStep::Item(k, v) => out.push((k, v)),
                IterStep::NeedMemtable => self.store.refill_iter(&mut it),
                IterStep::NeedBlock { file, handle } => it.supply(&self.block(file, handle)?),
                IterStep::End => break,
            }
        }
        Ok(out)
    }

    /// The first user key of family `cf` at or above `from` and below `upper`.
    fn first_key(&self, cf: Cf, from: &[u8], upper: Option<&[u8]>) -> Result<Option<Vec<u8>>, ReadError> {
        let hi = cf_upper(cf, upper);
        match self.seek_first(&codec::key_prefix(cf, from), Upper::Key(&hi), |k, _| decode(k).map(|k| k.user_key))? {
            Some(r) => r.map(Some),
            None => Ok(None),
        }
    }

    /// `f` of the first live raw entry in `[lower, upper)`, or `None` when there is none.
    ///
    /// Positions one cursor per source (memtable, L0 table, level) directly at `lower` and
    /// takes the smallest key with its newest visible version: no merging iterator, no copies.
    /// When that version is a tombstone, the answer lies further on and the general ordered
    /// read takes over.
    fn seek_first<T>(&self, lower: &[u8], upper: Upper<'_>, f: impl FnOnce(&[u8], &[u8]) -> T) -> Result<Option<T>, ReadError> {
        if !upper.above(lower) {
            return Ok(None);
        }
        let seq = self.view.seq;
        let top = key::trailer(key::MAX_SEQ, ValueKind::Put);
        let visible = |t: u64| t >> 8 <= seq;
        let mut best: Option<Candidate<'_>> = None;
        let first = lower.first().copied();
        let one_first_byte = matches!(upper, Upper::Prefix(p) if !p.is_empty());
        for mem in self.store.memtables() {
            if one_first_byte && first.is_some_and(|b| !mem.holds_first_byte(b)) {
                continue;
            }
            if let Some(e) = mem.range_from(lower, top).take_while(|e| upper.above(e.user)).find(|e| visible(e.trailer)) {
                if Candidate::beats(e.user, e.trailer, best.as_ref()) {
                    best = Some(Candidate::Mem(e));
                }
            }
        }
        let version = &self.view.version;
        for (level, files) in version.levels.iter().enumerate() {
            if level == 0 {
                for (i, t) in files.iter().enumerate() {
                    if upper.above(t.smallest()) && t.largest() >= lower && t.meta.props.min_seq <= seq {
                        self.table_first(&files[i..=i], lower, upper, seq, &mut best)?;
                    }
                }
            } else {
                let start = files.partition_point(|t| t.largest() < lower);
                if files.get(start).is_some_and(|t| upper.above(t.smallest())) {
                    self.table_first(&files[start..], lower, upper, seq, &mut best)?;
                }
            }
        }
        let Some(best) = best else { return Ok(None) };
        let (trailer, key, value) = match &best {
            Candidate::Mem(e) => (e.trailer, e.user, e.value),
            Candidate::Table(c) => (c.trailer(), c.user_key(), c.value()),
        };
        if key::split_trailer(trailer).is_some_and(|(_, kind)| kind == ValueKind::Put) {
            return Ok(Some(f(key, value)));
        }
        // A tombstone hides this key: the merging iterator skips it and goes on.
        Ok(self.range(lower.to_vec(), upper.to_key(), 1)?.pop().map(|(k, v)| f(&k, &v)))
    }

    /// The first entry visible at `seq` in `[lower, upper)` of a run of disjoint tables
    /// (`files[0]` may hold `lower`), offered to `best`.
    fn table_first<'b>(
        &self,
        files: &[Arc<TableFile>],
        lower: &[u8],
        upper: Upper<'_>,
        seq: u64,
        best: &mut Option<Candidate<'b>>,
    ) -> Result<(), ReadError> {
        let top = key::trailer(key::MAX_SEQ, ValueKind::Put);
        let (mut file, mut block, mut seek) = (0, files.first().and_then(|t| t.table.seek_block(lower, top)), true);
        loop {
            let Some(t) = files.get(file) else { return Ok(()) };
            if file > 0 && !upper.above(t.smallest()) {
                return Ok(());
            }
            let Some(b) = block.filter(|&b| b < t.table.block_count()) else {
                (file, block, seek) = (file + 1, Some(0), false);
                continue;
            };
            let mut c = self.block(FileName::table(t.meta.number), t.table.block_handle(b))?.cursor();
            if seek {
                c.seek(lower, top);
            } else {
                c.seek_to_first();
            }
            while c.valid() {
                if !upper.above(c.user_key()) {
                    return Ok(());
                }
                if c.trailer() >> 8 <= seq {
                    if Candidate::beats(c.user_key(), c.trailer(), best.as_ref()) {
                        *best = Some(Candidate::Table(c));
                    }
                    return Ok(());
                }
                c.next();
            }
            (block, seek) = (Some(b + 1), false);
        }
    }
}

/// The exclusive upper bound of a [`StoreSnapshot::seek_first`].
#[derive(Clone, Copy)]
enum Upper<'a> {
    /// Keys below this one.
    Key(&'a [u8]),
    /// Keys below every key that starts with this prefix, or starting with it (the bound is
    /// the prefix's successor, never built).
    Prefix(&'a [u8]),
}

impl Upper<'_> {
    /// True when `k` is below the bound.
    #[inline]
    fn above(self, k: &[u8]) -> bool {
        match self {
            Upper::Key(u) => k < u,
            Upper::Prefix(p) => k < p || k.starts_with(p),
        }
    }

    fn to_key(self) -> Vec<u8> {
        match self {
            Upper::Key(u) => u.to_vec(),
            Upper::Prefix(p) => prefix_end(p),
        }
    }
}

/// The best entry found so far by [`StoreSnapshot::seek_first`]. (It lives on the stack for
/// one seek; boxing the cursor would cost an allocation per read.)
#[allow(clippy::large_enum_variant)]
enum Candidate<'a> {
    Mem(Entry<'a>),
    Table(BlockCursor),
}

impl Candidate<'_> {
    /// True when `(user, trailer)` comes before `best` (smaller key, or newer version of it).
    fn beats(user: &[u8], trailer: u64, best: Option<&Candidate<'_>>) -> bool {
        let Some(best) = best else { return true };
        let (bu, bt) = match best {
            Candidate::Mem(e) => (e.user, e.trailer),
            Candidate::Table(c) => (c.user_key(), c.trailer()),
        };
        user.cmp(bu).then(bt.cmp(&trailer)) == core::cmp::Ordering::Less
    }
}

/// The exclusive raw upper bound of family `cf` below user key `upper` (or the whole family).
fn cf_upper(cf: Cf, upper: Option<&[u8]>) -> Vec<u8> {
    match upper {
        Some(u) => codec::key_prefix(cf, u),
        None => alloc::vec![cf as u8 + 1],
    }
}

fn decode(k: &[u8]) -> Result<codec::MvccKey, ReadError> {
    codec::decode_key(k).map_err(|e| ReadError::Corrupt { key: k.to_vec(), reason: Corruption::Key(e) })
}

fn corrupt_record(k: &[u8], e: crate::mvcc::record::RecordError) -> ReadError {
    ReadError::Corrupt { key: k.to_vec(), reason: Corruption::Record(e) }
}

/// The smallest key above every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // An all-0xFF prefix: nothing sorts above it but longer keys; use a longer one.
    let mut end = prefix.to_vec();
    end.push(0xFF);
    end
}

impl SnapshotReader for StoreSnapshot<'_> {
    fn lock(&self, key: &[u8]) -> Result<Option<Lock>, ReadError> {
        if self.locks.is_some_and(|f| !f.any()) {
            debug_assert!(!matches!(self.point(&codec::lock_key(key)), Ok(Some(_))), "a lock the lock table does not know");
            return Ok(None);
        }
        let k = codec::lock_key(key);
        if self.locks.is_some_and(|f| !f.may_hold(&k)) {
            debug_assert!(!matches!(self.point(&k), Ok(Some(_))), "a lock the lock table does not know");
            return Ok(None);
        }
        match self.point(&k)? {
            None => Ok(None),
            Some(v) => Lock::decode(&v).map(Some).map_err(|e| corrupt_record(&k, e)),
        }
    }

    fn seek_write(&self, key: &[u8], ts: Ts) -> Result<Option<(Ts, Write)>, ReadError> {
        let mut scratch = self.scratch.try_borrow_mut().ok();
        let mut fresh = Vec::new();
        let lower = scratch.as_deref_mut().unwrap_or(&mut fresh);
        lower.clear();
        codec::write_key_into(key, ts, lower);
        let lower: &[u8] = lower;
        let key_len = lower.len();
        let found = self.seek_first(lower, Upper::Prefix(&lower[..key_len - codec::TS_LEN]), |k, v| {
            // Every key in the range starts with the prefix; a well-formed one is the prefix
            // and a timestamp.
            let commit_ts = match k.get(key_len - codec::TS_LEN..).filter(|_| k.len() == key_len).and_then(codec::decode_ts) {
                Some(ts) => ts,
                None => return Err(decode(k).err().unwrap_or_else(|| corrupt_record(k, crate::mvcc::record::RecordError::Truncated))),
            };
            Ok((commit_ts, Write::decode(v).map_err(|e| corrupt_record(k, e))?))
        })?;
        found.transpose()
    }

    fn value(&self, key: &[u8], start_ts: Ts) -> Result<Option<Vec<u8>>, ReadError> {
        self.point(&codec::default_key(key, start_ts))
    }

    fn next_key(&self, from: &[u8], upper: Option<&[u8]>) -> Result<Option<Vec<u8>>, ReadError> {
        let a = self.first_key(Cf::Lock, from, upper)?;
        let b = self.first_key(Cf::Write, from, upper)?;
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn scan_locks(&self, from: &[u8], upper: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Lock)>, ReadError> {
        let entries = self.range(codec::key_prefix(Cf::Lock, from), cf_upper(Cf::Lock, upper), limit)?;
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = decode(&k)?;
            out.push((key.user_key, Lock::decode(&v).map_err(|e| corrupt_record(&k, e))?));
        }
        Ok(out)
    }
}

impl RawReader for StoreSnapshot<'_> {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        self.point(key)
    }

    fn raw_scan(&self, from: &[u8], upper: &[u8], limit: usize) -> Result<RawEntries, ReadError> {
        if upper <= from {
            return Ok(Vec::new());
        }
        self.range(from.to_vec(), upper.to_vec(), limit)
    }
}
