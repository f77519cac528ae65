//! The block cache shared by every reading thread: the core's CLOCK [`BlockCache`] split into
//! shards, each behind its own lock, chosen by hashing the block's address.
use std::sync::{Arc, Mutex, MutexGuard};
use strata_engine::lsm::cache::{BlockCache, CacheStats};
use strata_engine::lsm::sstable::Block;

const SHARDS: usize = 16;

/// Decoded SST blocks by `(file number, offset)`.
pub(crate) struct SharedCache {
    shards: Vec<Mutex<BlockCache>>,
}

impl SharedCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        let per = capacity_bytes / SHARDS;
        SharedCache { shards: (0..SHARDS).map(|_| Mutex::new(BlockCache::new(per))).collect() }
    }

    fn shard(&self, file: u64, offset: u64) -> MutexGuard<'_, BlockCache> {
        // Blocks are ~4 KiB apart; mix the file number in so neighbouring tables spread too.
        let h = (offset >> 12).wrapping_add(file.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let h = h ^ (h >> 29);
        self.shards[(h as usize) % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the cached block under its shard's lock (no reference count touched), or
    /// gives `f` back when the block is not cached. `f` should be short: it holds the shard.
    pub(crate) fn with<R, F: FnOnce(&Block) -> R>(&self, file: u64, offset: u64, f: F) -> Result<R, F> {
        match self.shard(file, offset).peek(file, offset) {
            Some(b) => Ok(f(b)),
            None => Err(f),
        }
    }

    /// [`with`](Self::with), and on a miss a recycled buffer of at least `min_len` bytes to
    /// read the block into (see [`spare`](Self::spare)): one shard lock for both.
    pub(crate) fn with_or_spare<R>(&self, file: u64, offset: u64, min_len: usize, f: impl FnOnce(&Block) -> R) -> Result<R, Option<Arc<[u8]>>> {
        let mut shard = self.shard(file, offset);
        if let Some(b) = shard.peek(file, offset) {
            return Ok(f(b));
        }
        Err(shard.take_spare(min_len))
    }

    /// A recycled buffer of at least `min_len` bytes from the shard that will hold block
    /// `(file, offset)` (its evictions feed it).
    pub(crate) fn spare(&self, file: u64, offset: u64, min_len: usize) -> Option<Arc<[u8]>> {
        self.shard(file, offset).take_spare(min_len)
    }

    pub(crate) fn insert(&self, file: u64, offset: u64, block: Block) {
        self.shard(file, offset).insert(file, offset, block);
    }

    /// Drops a deleted table's blocks.
    pub(crate) fn remove_file(&self, file: u64) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|p| p.into_inner()).remove_file(file);
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for s in &self.shards {
            total.add(&s.lock().unwrap_or_else(|p| p.into_inner()).stats());
        }
        total
    }
}
