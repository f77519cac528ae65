//! Sorted string tables: immutable files of internal keys in order.
//!
//! ```text
//! file := data_block* filter_block index_block props_block footer
//! ```
//!
//! Every block on disk is `contents | crc32(contents): u32 LE`, addressed by a [`BlockHandle`]
//! covering both. Data blocks hold prefix-compressed entries with restart points; the index
//! block (same format) maps each data block's last key to its handle; the filter is a bloom
//! filter over user keys; the props block is postcard-encoded [`TableProps`]; the fixed-length
//! footer locates the rest. Byte layouts are in `engine/docs/format.md`.
pub mod block;
pub mod bloom;
pub mod builder;
pub mod footer;
pub mod reader;

pub use block::{Block, BlockCursor};
pub use builder::TableBuilder;
pub use footer::{Footer, FOOTER_LEN, SST_MAGIC, SST_VERSION};
pub use reader::Table;

use super::key;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Where a block lives in its file: `offset` of its first byte and `len` of contents plus the
/// 4-byte crc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BlockHandle {
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes of contents plus crc.
    pub len: u32,
}

/// Bytes of the crc that ends every block.
pub const BLOCK_TRAILER_LEN: usize = 4;

/// Facts about a table, stored in its props block and in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProps {
    /// The smallest encoded internal key.
    pub smallest: Vec<u8>,
    /// The largest encoded internal key.
    pub largest: Vec<u8>,
    /// The smallest sequence number of any entry.
    pub min_seq: u64,
    /// The largest sequence number of any entry.
    pub max_seq: u64,
    /// Entries (puts and deletes).
    pub entries: u64,
    /// Entries that are tombstones.
    pub deletions: u64,
    /// Sum of user key lengths.
    pub raw_key_bytes: u64,
    /// Sum of value lengths.
    pub raw_value_bytes: u64,
    /// Number of data blocks.
    pub data_blocks: u64,
}

impl TableProps {
    /// The user key of [`smallest`](Self::smallest) (the whole field if it is malformed; see
    /// [`check`](Self::check)).
    pub fn smallest_user_key(&self) -> &[u8] {
        key::split_internal(&self.smallest).map_or(&self.smallest[..], |(u, _)| u)
    }

    /// The user key of [`largest`](Self::largest).
    pub fn largest_user_key(&self) -> &[u8] {
        key::split_internal(&self.largest).map_or(&self.largest[..], |(u, _)| u)
    }

    /// Checks the invariants a writer guarantees, for props read from disk: both bounds are
    /// internal keys, `smallest ≤ largest`, `min_seq ≤ max_seq`, at least one entry, and no more
    /// deletions than entries.
    pub fn check(&self) -> Result<(), &'static str> {
        let (Some(_), Some(_)) =
            (key::split_internal(&self.smallest), key::split_internal(&self.largest))
        else {
            return Err("table bounds are not internal keys");
        };
        if key::cmp_internal(&self.smallest, &self.largest) == core::cmp::Ordering::Greater {
            return Err("table smallest key is above its largest");
        }
        if self.min_seq > self.max_seq || self.max_seq > key::MAX_SEQ {
            return Err("table sequence range is invalid");
        }
        if self.entries == 0 || self.deletions > self.entries || self.data_blocks == 0 {
            return Err("table entry counts are invalid");
        }
        Ok(())
    }
}

/// How tables are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// Target bytes of a data block's contents before it is cut (4096).
    pub block_size: usize,
    /// Entries between restart points in data blocks (4). A point read binary-searches the
    /// restart points and then decodes at most this many entries, so small intervals make
    /// reads cheaper; each restart costs 4 bytes and the prefix it does not share (with random
    /// keys prefixes share little anyway: about 1% of the block at 4).
    pub restart_interval: usize,
    /// Bloom filter bits per key (10, about 1% false positives); 0 disables the filter.
    pub bloom_bits_per_key: u32,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { block_size: 4096, restart_interval: 4, bloom_bits_per_key: 10 }
    }
}
