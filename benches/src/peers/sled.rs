//! sled 0.34 (Bw-tree over a log-structured store).
//!
//! Durability: `SyncEachWrite` is an `insert` followed by `Db::flush()` (sled's flush writes
//! and fsyncs its log; concurrent flushes may share I/O). `Manual` opens with
//! `flush_every_ms(None)` so nothing syncs in the background, and `persist` is one `flush()`.
//! sled has no memtable/SST split nor a manual compaction: flush and compact are `flush()`.
use crate::{Durability, Engine, EngineKind, Options};
use std::path::Path;

/// sled's entry.
pub const KIND: EngineKind = EngineKind { name: "sled", open };

struct Sled {
    db: sled::Db,
    sync_each_write: bool,
}

fn open(dir: &Path, opts: &Options) -> Box<dyn Engine> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(opts.cache_bytes)
        .flush_every_ms(None)
        .open()
        .expect("sled: open");
    Box::new(Sled { db, sync_each_write: opts.durability == Durability::SyncEachWrite })
}

impl Engine for Sled {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.insert(key, value).expect("sled: insert");
        if self.sync_each_write {
            self.persist();
        }
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.db.get(key).expect("sled: get").map(|v| v.len())
    }

    fn persist(&self) {
        self.db.flush().expect("sled: flush");
    }

    fn flush(&self) {
        self.persist();
    }

    fn compact(&self) {
        self.persist();
    }

    fn scan(&self, from: &[u8], n: usize) -> usize {
        let mut bytes = 0;
        for entry in self.db.range(from..).take(n) {
            let (k, v) = entry.expect("sled: scan");
            bytes += k.len() + v.len();
        }
        bytes
    }

    fn close(self: Box<Self>) {
        self.persist();
    }
}
