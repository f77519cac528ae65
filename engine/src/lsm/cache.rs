//! The block cache: decoded data blocks keyed by `(file number, block offset)`, within a byte
//! budget.
//!
//! Eviction is CLOCK (second chance): entries live in a slot array swept by a hand; a hit sets
//! the entry's reference bit, and the hand clears set bits and evicts the first entry whose bit
//! is clear. A new entry starts with its bit clear, so blocks read once (a scan) leave before
//! blocks read again (hot point reads). CLOCK needs no list surgery on a hit, only a flag
//! store, which keeps `get` cheap.
//!
//! Deterministic: the hash map (with a fixed hasher) is used for lookups only; which entry is
//! evicted is decided by the slot array and the hand, never by hash-map iteration. One cache
//! is single-threaded (`&mut self`); a binding that serves reads from several threads keeps
//! several caches (shards, e.g. by hashing the key) each behind its own lock.
use super::hash::FixedState;
use super::sstable::Block;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::HashMap;

/// Counters of a [`BlockCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Bytes held (sum of [`Block::charge`]).
    pub bytes: usize,
    /// The byte budget.
    pub capacity: usize,
}

impl CacheStats {
    /// Adds another cache's counters (to total several shards).
    pub fn add(&mut self, other: &CacheStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.bytes += other.bytes;
        self.capacity += other.capacity;
    }

    /// Hits over lookups (0 when there were none).
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// A CLOCK cache of decoded blocks with a byte budget. See the module docs.
pub struct BlockCache {
    capacity: usize,
    bytes: usize,
    hits: u64,
    misses: u64,
    /// Lookup: key → the block and its slot.
    map: HashMap<(u64, u64), Entry, FixedState>,
    /// The clock face: the key held by each slot (`None` when free), swept by `hand`.
    slots: Vec<Option<(u64, u64)>>,
    /// Reference bits by slot, beside the face (not in the map) so that the sweep reads a
    /// dense array and touches the map only for the entry it evicts.
    referenced: Vec<bool>,
    free: Vec<usize>,
    hand: usize,
    /// Buffers of evicted blocks no reader still held, for the next read to reuse (at most
    /// [`MAX_SPARES`]; not counted in `bytes`).
    spares: Vec<Arc<[u8]>>,
}

/// Evicted buffers kept for reuse, per cache.
pub const MAX_SPARES: usize = 4;

struct Entry {
    block: Block,
    charge: usize,
    slot: usize,
}

impl BlockCache {
    /// An empty cache holding at most `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Self {
        BlockCache {
            capacity: capacity_bytes,
            bytes: 0,
            hits: 0,
            misses: 0,
            map: HashMap::with_hasher(FixedState),
            slots: Vec::new(),
            referenced: Vec::new(),
            free: Vec::new(),
            hand: 0,
            spares: Vec::new(),
        }
    }

    /// The block at `offset` in table `file_number`, if cached. Counts a hit or a miss.
    #[inline]
    pub fn get(&mut self, file_number: u64, offset: u64) -> Option<Block> {
        self.peek(file_number, offset).cloned()
    }

    /// [`get`](Self::get) by reference: no reference count is touched, so a reader that
    /// uses the block while it holds the cache (e.g. under a shard lock) skips two atomic
    /// operations on the block's (often cold) header.
    #[inline]
    pub fn peek(&mut self, file_number: u64, offset: u64) -> Option<&Block> {
        match self.map.get(&(file_number, offset)) {
            Some(e) => {
                self.hits += 1;
                self.referenced[e.slot] = true;
                Some(&e.block)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Caches `block`, evicting others to stay within the budget. A block larger than the whole
    /// budget is not cached (and any older block under the same key is dropped).
    ///
    /// One hash probe for the new key (plus one per evicted block): room is made first, then
    /// the key's entry is filled or replaced in place. A block already cached under the key
    /// (two readers missing on the same block) counts against the budget until it is
    /// replaced, so its replacement may evict one block more than needed.
    pub fn insert(&mut self, file_number: u64, offset: u64, block: Block) {
        let key = (file_number, offset);
        let charge = block.charge();
        if charge > self.capacity {
            self.remove(key);
            return;
        }
        while self.bytes + charge > self.capacity && self.bytes > 0 {
            self.evict_one();
        }
        let BlockCache { map, slots, referenced, free, bytes, .. } = self;
        match map.entry(key) {
            hashbrown::hash_map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                *bytes = *bytes - e.charge + charge;
                referenced[e.slot] = false;
                e.block = block;
                e.charge = charge;
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                let slot = match free.pop() {
                    Some(i) => {
                        slots[i] = Some(key);
                        referenced[i] = false;
                        i
                    }
                    None => {
                        slots.push(Some(key));
                        referenced.push(false);
                        slots.len() - 1
                    }
                };
                v.insert(Entry { block, charge, slot });
                *bytes += charge;
            }
        }
    }

    /// A buffer of an evicted block, at least `min_len` bytes long, to read the next block
    /// into (see [`Block::into_buffer`]); `None` when there is none.
    pub fn take_spare(&mut self, min_len: usize) -> Option<Arc<[u8]>> {
        let i = self.spares.iter().position(|b| b.len() >= min_len)?;
        Some(self.spares.swap_remove(i))
    }

    /// Drops every block of table `file_number` (its file was deleted).
    pub fn remove_file(&mut self, file_number: u64) {
        for i in 0..self.slots.len() {
            if let Some(key) = self.slots[i] {
                if key.0 == file_number {
                    self.remove(key);
                }
            }
        }
    }

    /// Counters and sizes.
    pub fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits, misses: self.misses, bytes: self.bytes, capacity: self.capacity }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Advances the hand to the first held block whose reference bit is clear (clearing the
    /// bits it passes) and drops it. Called only while some block is held.
    fn evict_one(&mut self) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let Some(key) = self.slots[i] else { continue };
            if self.referenced[i] {
                self.referenced[i] = false;
                continue;
            }
            if let Some(e) = self.map.remove(&key) {
                self.forget(&e);
                if self.spares.len() < MAX_SPARES {
                    self.spares.extend(e.block.into_buffer());
                }
            }
            return;
        }
    }

    /// Drops `key` if held.
    fn remove(&mut self, key: (u64, u64)) {
        if let Some(e) = self.map.remove(&key) {
            self.forget(&e);
        }
    }

    /// The bookkeeping of dropping entry `e` (already out of the map).
    fn forget(&mut self, e: &Entry) {
        self.bytes -= e.charge;
        self.slots[e.slot] = None;
        self.free.push(e.slot);
    }

    /// Checks the bookkeeping (tests).
    #[cfg(test)]
    fn check_invariants(&self) {
        let live = self.slots.iter().filter(|s| s.is_some()).count();
        assert_eq!(live, self.map.len());
        assert_eq!(self.map.values().map(|e| e.charge).sum::<usize>(), self.bytes);
        assert!(self.bytes <= self.capacity);
        for (k, e) in &self.map {
            assert_eq!(self.slots[e.slot], Some(*k));
        }
        assert_eq!(self.free.len() + self.map.len(), self.slots.len());
        assert_eq!(self.referenced.len(), self.slots.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::io::FileName;
    use crate::lsm::key::{self, ValueKind};
    use crate::lsm::sstable::{Table, TableBuilder, TableOptions};
    use alloc::vec;

    /// A real block with about `value_len` bytes of value.
    fn block(value_len: usize) -> Block {
        let mut b = TableBuilder::new(&TableOptions::default());
        b.add(b"k", key::trailer(1, ValueKind::Put), &vec![7u8; value_len]);
        let (whole, _) = b.finish();
        let t = Table::open_from_bytes(FileName::table(1), &whole).expect("opens");
        t.read_block(&whole, 0).expect("reads")
    }

    #[test]
    fn hits_misses_and_budget() {
        let one = block(100).charge();
        let mut c = BlockCache::new(one * 3);
        assert!(c.get(1, 0).is_none());
        for off in 0..3 {
            c.insert(1, off, block(100));
        }
        c.check_invariants();
        assert_eq!(c.len(), 3);
        assert!(c.get(1, 0).is_some());
        assert!(c.get(1, 2).is_some());
        // Inserting a fourth evicts the one not referenced since: offset 1.
        c.insert(1, 3, block(100));
        c.check_invariants();
        assert!(c.get(1, 1).is_none());
        assert!(c.get(1, 0).is_some() && c.get(1, 2).is_some() && c.get(1, 3).is_some());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.bytes, s.capacity), (5, 2, one * 3, one * 3));
        assert!((s.hit_rate() - 5.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn oversized_blocks_are_not_cached() {
        let mut c = BlockCache::new(block(10).charge() * 2);
        c.insert(1, 0, block(10));
        c.insert(1, 0, block(100_000));
        assert!(c.is_empty());
        assert_eq!(c.stats().bytes, 0);
        c.check_invariants();
        let mut zero = BlockCache::new(0);
        zero.insert(1, 0, block(1));
        assert!(zero.is_empty());
    }

    #[test]
    fn replace_and_remove_file() {
        let mut c = BlockCache::new(1 << 20);
        for f in 1..4 {
            for off in 0..10 {
                c.insert(f, off * 4096, block(50));
            }
        }
        c.insert(2, 0, block(60));
        c.check_invariants();
        assert_eq!(c.len(), 30);
        c.remove_file(2);
        c.check_invariants();
        assert_eq!(c.len(), 20);
        assert!(c.get(2, 0).is_none());
        assert!(c.get(3, 4096).is_some());
        // Freed slots are reused.
        c.insert(9, 0, block(50));
        assert_eq!(c.slots.len(), 30);
        c.check_invariants();
    }

    #[test]
    fn deterministic_under_a_random_workload() {
        // Same operations, same evictions: compare the sequence of hits.
        let run = || {
            let blocks: Vec<Block> = (0..8).map(|i| block(50 + i * 300)).collect();
            let mut c = BlockCache::new(blocks[0].charge() * 12);
            let mut x = 12345u64;
            let mut trace = Vec::new();
            for _ in 0..5_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (f, off) = ((x >> 60) % 4, (x >> 40) % 16);
                let hit = c.get(f, off).is_some();
                trace.push(hit);
                if !hit {
                    c.insert(f, off, blocks[((x >> 20) % 8) as usize].clone());
                }
                if x % 97 == 0 {
                    c.remove_file(f);
                }
                c.check_invariants();
            }
            (trace, c.stats())
        };
        let (a, sa) = run();
        let (b, sb) = run();
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        assert!(sa.hits > 0 && sa.misses > 0);
    }

    #[test]
    fn stats_add_up() {
        let mut total = CacheStats::default();
        total.add(&CacheStats { hits: 1, misses: 2, bytes: 3, capacity: 4 });
        total.add(&CacheStats { hits: 10, misses: 20, bytes: 30, capacity: 40 });
        assert_eq!(total, CacheStats { hits: 11, misses: 22, bytes: 33, capacity: 44 });
    }

    #[test]
    fn evicted_unshared_buffers_are_kept_for_reuse() {
        let one = block(100).charge();
        let mut c = BlockCache::new(one * 2);
        c.insert(1, 0, block(100));
        c.insert(1, 1, block(100));
        // A reader holds block 0 (and referenced it): inserting 2 evicts block 1, unshared.
        let held = c.get(1, 0).expect("cached");
        c.insert(1, 2, block(100));
        c.check_invariants();
        let len = block(100).into_buffer().expect("unshared").len();
        assert!(c.take_spare(len + 1).is_none(), "too short a spare is not handed out");
        let spare = c.take_spare(len).expect("the evicted buffer");
        assert_eq!(spare.len(), len);
        assert!(c.take_spare(1).is_none());
        // Next the sweep evicts block 0, which the reader still holds: no buffer is kept.
        c.insert(1, 3, block(100));
        c.check_invariants();
        assert!(c.get(1, 0).is_none());
        assert!(c.take_spare(1).is_none());
        drop(held);
        // At most MAX_SPARES are kept.
        for off in 10..20 {
            c.insert(1, off, block(100));
        }
        let mut n = 0;
        while c.take_spare(1).is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_SPARES);
    }
}
