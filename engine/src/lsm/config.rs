//! The store's configuration.
use super::sstable::TableOptions;

/// When a write counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The default: a write is acknowledged only after the sync that covers it has completed.
    /// Concurrent writes share one sync (group commit). A crash loses nothing acknowledged.
    SyncEachWrite,
    /// Writes are acknowledged once in memory; the WAL is written and synced every `ms`
    /// milliseconds (and when its buffer fills). **Risk:** a crash loses up to the last `ms` of
    /// acknowledged writes (never part of a batch, never a write without the ones before it).
    SyncEveryMs(u64),
    /// Writes are acknowledged once in memory; the WAL is synced only when the caller asks
    /// ([`super::store::Request::Sync`]) or a memtable is flushed. **Risk:** a crash loses every
    /// acknowledged write since the last sync (again only whole batches, and only a suffix).
    Manual,
    /// No WAL at all: a write is acknowledged once it is in the memtable, and only flushed
    /// data survives a crash. For a store whose writes are already durable elsewhere: the
    /// replicated node, whose Raft log is the write-ahead log. Each write carries the log
    /// index it applies ([`Batch::set_applied_mark`](super::batch::Batch::set_applied_mark));
    /// every flush records the largest mark it holds, [`Store::durable_mark`] reports it, and
    /// after a crash the store holds exactly the batches with mark ≤ `durable_mark()` (the
    /// owner replays the rest from its log). **Risk:** used alone, a crash loses every write
    /// since the last flush (whole batches, newest first), and so does a clean shutdown that
    /// does not flush; `Request::Sync` does nothing.
    ///
    /// [`Store::durable_mark`]: super::store::Store::durable_mark
    External,
}

/// Tunables. `Config::default()` suits an embedded store on a laptop or small server.
#[derive(Clone, Debug)]
pub struct Config {
    /// When writes are acknowledged.
    pub durability: Durability,
    /// Freeze and flush the memtable at this size.
    pub memtable_bytes: usize,
    /// In the non-syncing modes, write the WAL buffer out when it reaches this size.
    pub wal_buffer_bytes: usize,
    /// SST block size, restart interval and bloom filter bits.
    pub table: TableOptions,
    /// Start an L0 → L1 compaction at this many L0 files.
    pub l0_compaction_trigger: usize,
    /// Target size of the last level's parent chain root (level sizes are derived dynamically
    /// from the bottom up, RocksDB's `level_compaction_dynamic_level_bytes`).
    pub level_base_bytes: u64,
    /// Size ratio between adjacent levels.
    pub level_multiplier: u64,
    /// Split compaction outputs at this size.
    pub target_file_bytes: u64,
    /// Longest key accepted.
    pub max_key_len: usize,
    /// Longest value accepted.
    pub max_value_len: usize,
    /// Largest encoded batch accepted.
    pub max_batch_bytes: usize,
    /// Block cache budget (used by bindings that keep the cache).
    pub block_cache_bytes: usize,
    /// Start a fresh manifest (the whole state as one edit) once the current one is this big.
    pub manifest_roll_bytes: u64,
}

/// Number of levels, L0 to L6.
pub const NUM_LEVELS: usize = 7;

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::SyncEachWrite,
            memtable_bytes: 64 << 20,
            wal_buffer_bytes: 256 << 10,
            table: TableOptions::default(),
            l0_compaction_trigger: 4,
            level_base_bytes: 64 << 20,
            level_multiplier: 10,
            target_file_bytes: 32 << 20,
            max_key_len: 64 << 10,
            max_value_len: 64 << 20,
            max_batch_bytes: 256 << 20,
            block_cache_bytes: 64 << 20,
            manifest_roll_bytes: 4 << 20,
        }
    }
}
