//! Reads over the SSTs of a [`Version`], as resumable state machines.
//!
//! A read never performs I/O: when it needs a data block it returns the block's address and
//! waits for the caller to [`Lookup::supply`] the decoded block (from a block cache or from the
//! disk through [`Block::decode`]). So the same code serves the store's own request path, a
//! binding's threads reading in parallel, and the simulator.
//!
//! ```text
//! let mut lookup = Lookup::new(version, key, seq);
//! let value = loop {
//!     match lookup.step() {
//!         LookupStep::NeedBlock { file, handle } => match cache.get(file, handle) {
//!             Some(block) => lookup.supply(&block),
//!             None => lookup.supply(&lookup.decode_block(file, handle, read(file, handle)?, len)?),
//!         },
//!         LookupStep::Done(v) => break v,
//!     }
//! };
//! ```
use super::config::NUM_LEVELS;
use super::error::Error;
use super::key::{self, ValueKind};
use super::sstable::{Block, BlockHandle};
use super::version::{TableFile, Version};
use super::io::FileName;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// What a point lookup needs next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum LookupStep {
    /// Supply this block.
    NeedBlock {
        /// The table file.
        file: FileName,
        /// The block within it.
        handle: BlockHandle,
    },
    /// The newest visible value, or `None` when the key is absent or deleted. The value is
    /// handed over, not copied: a `step` after `Done` returns `Done(None)`.
    Done(Option<Vec<u8>>),
}

/// A point read across the SSTs of one version, newest data first.
#[derive(Debug)]
pub struct Lookup {
    version: Arc<Version>,
    key: Vec<u8>,
    seq: u64,
    /// Next level to search.
    level: usize,
    /// Next L0 file to search (when `level == 0`).
    l0: usize,
    /// The table and block index waiting for a block.
    pending: Option<(Arc<TableFile>, usize)>,
    done: Option<Option<Vec<u8>>>,
    /// Tables whose bloom filter ruled the key out.
    pub bloom_skips: u32,
}

impl Lookup {
    /// Looks `key` up as of sequence number `seq` in `version`.
    pub fn new(version: Arc<Version>, key: &[u8], seq: u64) -> Self {
        Lookup { version, key: key.to_vec(), seq, level: 0, l0: 0, pending: None, done: None, bloom_skips: 0 }
    }

    /// Advances to the next block needed, or the answer.
    pub fn step(&mut self) -> LookupStep {
        if let Some(d) = &mut self.done {
            return LookupStep::Done(d.take());
        }
        if let Some((t, b)) = &self.pending {
            return LookupStep::NeedBlock { file: FileName::table(t.meta.number), handle: t.table.block_handle(*b) };
        }
        let trailer = key::trailer(self.seq, ValueKind::Put);
        while self.level < NUM_LEVELS {
            let candidate = if self.level == 0 {
                let f = self.version.levels[0].get(self.l0).cloned();
                match f {
                    Some(f) => {
                        self.l0 += 1;
                        Some(f).filter(|f| f.smallest() <= &self.key[..] && &self.key[..] <= f.largest())
                    }
                    None => {
                        self.level = 1;
                        continue;
                    }
                }
            } else {
                let f = self.version.file_for(self.level, &self.key).cloned();
                self.level += 1;
                f
            };
            let Some(f) = candidate else { continue };
            if f.meta.props.min_seq > self.seq {
                continue;
            }
            if !f.table.may_contain(&self.key) {
                self.bloom_skips += 1;
                continue;
            }
            if let Some(b) = f.table.seek_block(&self.key, trailer) {
                let handle = f.table.block_handle(b);
                let file = FileName::table(f.meta.number);
                self.pending = Some((f, b));
                return LookupStep::NeedBlock { file, handle };
            }
        }
        self.done = Some(None);
        LookupStep::Done(None)
    }

    /// Checks and decodes the block the last [`LookupStep::NeedBlock`] asked for, read into
    /// the first `len` bytes of `buf`, through its table's
    /// [`decode_block`](super::sstable::Table::decode_block) (which walks each block's entries
    /// only once per table). Without a pending block it checks `buf` as
    /// [`Block::decode_prefix`] at `file` and `handle`.
    pub fn decode_block(&self, file: FileName, handle: BlockHandle, buf: Arc<[u8]>, len: usize) -> Result<Block, Error> {
        match &self.pending {
            Some((t, b)) if t.meta.number == file.number && t.table.block_handle(*b) == handle => {
                t.table.decode_block(*b, buf, len)
            }
            _ => Block::decode_prefix(file, handle, buf, len),
        }
    }

    /// Supplies the block the last [`LookupStep::NeedBlock`] asked for.
    pub fn supply(&mut self, block: &Block) {
        let Some((t, b)) = self.pending.take() else { return };
        if let Some((tr, v)) = block.get(&self.key, self.seq) {
            self.done = Some(match key::split_trailer(tr) {
                Some((_, ValueKind::Put)) => Some(v.to_vec()),
                _ => None,
            });
            return;
        }
        // The key's visible version may sit at the start of the next block when its newer
        // versions filled this one.
        let mut c = block.cursor();
        c.seek_to_last();
        let spills = c.valid() && key::split_internal(c.key()).is_some_and(|(u, _)| u == &self.key[..]);
        if spills && b + 1 < t.table.block_count() {
            self.pending = Some((t, b + 1));
        }
    }
}
