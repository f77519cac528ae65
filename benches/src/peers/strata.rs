//! Strata through `strata::raw::Db` (bindings/native), the engine under test.
//!
//! Durability: `SyncEachWrite` is `Durability::SyncEachWrite` (the default: a write returns
//! after the sync that covers it, concurrent writers share one sync); `Manual` is
//! `Durability::Manual` (the WAL is buffered; `persist` is `Db::sync`). Flush is
//! `Db::flush` (memtable → SST); compaction is `Db::compact` (`compact_range` over every
//! key, into the bottom level).
use crate::{Durability, Engine, EngineKind, Options};
use std::path::Path;

/// Strata's entry.
pub const KIND: EngineKind = EngineKind { name: "strata", open };

struct Strata {
    db: strata::raw::Db,
}

fn open(dir: &Path, opts: &Options) -> Box<dyn Engine> {
    let durability = match opts.durability {
        Durability::SyncEachWrite => strata::Durability::SyncEachWrite,
        Durability::Manual => strata::Durability::Manual,
    };
    let mut o = strata::Options::default().durability(durability).block_cache_bytes(opts.cache_bytes as usize);
    if let Some(bytes) = opts.memtable_bytes {
        o = o.memtable_bytes(bytes as usize);
    }
    let db = strata::raw::Db::open_with(dir, o).expect("strata: open");
    Box::new(Strata { db })
}

impl Engine for Strata {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.put(key, value).expect("strata: put");
    }

    fn put_many(&self, pairs: &[(crate::data::Key, crate::data::Value)]) {
        for chunk in pairs.chunks(10_000) {
            let mut batch = strata::Batch::new();
            for (k, v) in chunk {
                batch.put(k, v);
            }
            self.db.write(batch).expect("strata: write");
        }
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.db.get(key).expect("strata: get").map(|v| v.len())
    }

    fn persist(&self) {
        self.db.sync().expect("strata: sync");
    }

    fn flush(&self) {
        self.db.flush().expect("strata: flush");
    }

    fn compact(&self) {
        self.db.compact().expect("strata: compact");
    }

    fn scan(&self, from: &[u8], n: usize) -> usize {
        let mut bytes = 0;
        for entry in self.db.range(from..).take(n) {
            let (k, v) = entry.expect("strata: scan");
            bytes += k.len() + v.len();
        }
        bytes
    }

    fn close(self: Box<Self>) {
        self.db.close().expect("strata: close");
    }
}
