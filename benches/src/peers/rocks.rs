//! RocksDB through the `rocksdb` crate 0.24 (opt-in feature `rocksdb`), built without
//! compression libraries (values are random anyway).
//!
//! Durability: `SyncEachWrite` writes with `WriteOptions::set_sync(true)`; RocksDB groups
//! concurrent synced writers into one WAL sync (group commit), as we do. `Manual` writes with
//! `set_sync(false)` (WAL in OS buffers) and `persist` is `flush_wal(true)`. Flush is
//! `DB::flush` (memtable → SST); compaction is `compact_range(None, None)` to the bottom level.
//! Block cache: an LRU cache of the shared budget; bloom filter 10 bits/key.
use crate::{Durability, Engine, EngineKind, Options};
use rocksdb::{BlockBasedOptions, Cache, IteratorMode, WriteOptions, DB};
use std::path::Path;

/// RocksDB's entry.
pub const KIND: EngineKind = EngineKind { name: "rocksdb", open };

struct Rocks {
    db: DB,
    write: WriteOptions,
}

fn open(dir: &Path, opts: &Options) -> Box<dyn Engine> {
    let mut o = rocksdb::Options::default();
    o.create_if_missing(true);
    o.increase_parallelism(2);
    o.set_level_compaction_dynamic_level_bytes(true);
    if let Some(bytes) = opts.memtable_bytes {
        o.set_write_buffer_size(bytes as usize);
    }
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(opts.cache_bytes as usize));
    table.set_bloom_filter(10.0, false);
    o.set_block_based_table_factory(&table);
    let db = DB::open(&o, dir).expect("rocksdb: open");
    let mut write = WriteOptions::default();
    write.set_sync(opts.durability == Durability::SyncEachWrite);
    Box::new(Rocks { db, write })
}

impl Engine for Rocks {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.put_opt(key, value, &self.write).expect("rocksdb: put");
    }

    fn put_many(&self, pairs: &[(crate::data::Key, crate::data::Value)]) {
        for chunk in pairs.chunks(10_000) {
            let mut batch = rocksdb::WriteBatch::default();
            for (k, v) in chunk {
                batch.put(k, v);
            }
            self.db.write_opt(batch, &self.write).expect("rocksdb: write");
        }
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.db.get_pinned(key).expect("rocksdb: get").map(|v| v.len())
    }

    fn persist(&self) {
        self.db.flush_wal(true).expect("rocksdb: flush_wal");
    }

    fn flush(&self) {
        self.db.flush().expect("rocksdb: flush");
    }

    fn compact(&self) {
        self.flush();
        let mut o = rocksdb::CompactOptions::default();
        o.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        self.db.compact_range_opt(None::<&[u8]>, None::<&[u8]>, &o);
    }

    fn scan(&self, from: &[u8], n: usize) -> usize {
        let mut bytes = 0;
        let iter = self.db.iterator(IteratorMode::From(from, rocksdb::Direction::Forward));
        for entry in iter.take(n) {
            let (k, v) = entry.expect("rocksdb: scan");
            bytes += k.len() + v.len();
        }
        bytes
    }

    fn close(self: Box<Self>) {
        self.persist();
    }
}
