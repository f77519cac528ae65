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
use crate::lsm::memtable::Found;
use crate::lsm::read::{Lookup, LookupStep};
use crate::lsm::sstable::{Block, BlockHandle};
use crate::lsm::store::{ReadView, Store};
use crate::mvcc::codec::{self, Cf};
use crate::mvcc::error::{Corruption, ReadError};
use crate::mvcc::read::KeyValue;
use crate::mvcc::reader::{RawEntries, RawReader, SnapshotReader};
use crate::mvcc::record::{Lock, Write};
use crate::mvcc::Ts;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::ops::Bound;

/// Blocks a command has already been given, by `(file number, offset)`: they stay at hand for
/// the command's reruns whatever the shared cache evicts, so every rerun makes progress.
pub type BlockMap = BTreeMap<(u64, u64), Block>;

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
    needed: Cell<Option<NeededBlock>>,
}

impl<'a> StoreSnapshot<'a> {
    /// A reader of `store`'s current state; blocks come from `own`, then `cache`.
    pub fn new(store: &'a Store, own: &'a BlockMap, cache: &'a RefCell<BlockCache>) -> Self {
        StoreSnapshot { store, view: store.read_view(), own, cache, needed: Cell::new(None) }
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
        let mut lookup = Lookup::new(self.view.version.clone(), key, self.view.seq);
        loop {
            match lookup.step() {
                LookupStep::Done(v) => return Ok(v),
                LookupStep::NeedBlock { file, handle } => lookup.supply(&self.block(file, handle)?),
            }
        }
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
        let Some((k, _)) = self.range(codec::key_prefix(cf, from), hi, 1)?.pop() else {
            return Ok(None);
        };
        Ok(Some(decode(&k)?.user_key))
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
        let k = codec::lock_key(key);
        match self.point(&k)? {
            None => Ok(None),
            Some(v) => Lock::decode(&v).map(Some).map_err(|e| corrupt_record(&k, e)),
        }
    }

    fn seek_write(&self, key: &[u8], ts: Ts) -> Result<Option<(Ts, Write)>, ReadError> {
        let prefix = codec::key_prefix(Cf::Write, key);
        let Some((k, v)) = self.range(codec::write_key(key, ts), prefix_end(&prefix), 1)?.pop() else {
            return Ok(None);
        };
        let commit_ts = decode(&k)?.ts.unwrap_or(Ts::ZERO);
        let w = Write::decode(&v).map_err(|e| corrupt_record(&k, e))?;
        Ok(Some((commit_ts, w)))
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
