//! fjall 3 (LSM), one keyspace.
//!
//! Durability: `SyncEachWrite` is an `insert` followed by `Database::persist(SyncData)`
//! (fdatasync of the journal) in the writing thread; fjall has no group commit, so concurrent
//! writers each sync. `Manual` opens with `manual_journal_persist(true)` (journal writes stay
//! in fjall's buffer, as our WAL buffer does) and `persist` is one `persist(SyncData)`.
//! Flush is `rotate_memtable_and_wait` (memtable → SST); compaction is `major_compact`.
//! Default block compression (LZ4) is left on; values are random so it gains nothing.
use crate::{Durability, Engine, EngineKind, Options};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;

/// fjall's entry.
pub const KIND: EngineKind = EngineKind { name: "fjall", open };

struct Fjall {
    db: Database,
    ks: Keyspace,
    sync_each_write: bool,
}

fn open(dir: &Path, opts: &Options) -> Box<dyn Engine> {
    let manual = opts.durability == Durability::Manual;
    #[allow(deprecated)]
    let db = Database::builder(dir)
        .cache_size(opts.cache_bytes)
        .manual_journal_persist(manual)
        .max_write_buffer_size(opts.memtable_bytes.map(|b| 2 * b))
        .open()
        .expect("fjall: open");
    let memtable = opts.memtable_bytes;
    let ks = db
        .keyspace("bench", || {
            let o = KeyspaceCreateOptions::default().manual_journal_persist(manual);
            match memtable {
                Some(bytes) => o.max_memtable_size(bytes),
                None => o,
            }
        })
        .expect("fjall: keyspace");
    Box::new(Fjall { db, ks, sync_each_write: !manual })
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.ks.insert(key, value).expect("fjall: insert");
        if self.sync_each_write {
            self.db.persist(PersistMode::SyncData).expect("fjall: persist");
        }
    }

    fn put_many(&self, pairs: &[(crate::data::Key, crate::data::Value)]) {
        for chunk in pairs.chunks(10_000) {
            let mut batch = self.db.batch();
            for (k, v) in chunk {
                batch.insert(&self.ks, k.as_slice(), v.as_slice());
            }
            batch.commit().expect("fjall: batch");
        }
        if self.sync_each_write {
            self.persist();
        }
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        self.ks.get(key).expect("fjall: get").map(|v| v.len())
    }

    fn persist(&self) {
        self.db.persist(PersistMode::SyncData).expect("fjall: persist");
    }

    fn flush(&self) {
        self.persist();
        self.ks.rotate_memtable_and_wait().expect("fjall: flush");
    }

    fn compact(&self) {
        self.flush();
        self.ks.major_compact().expect("fjall: major_compact");
    }

    fn scan(&self, from: &[u8], n: usize) -> usize {
        let mut bytes = 0;
        for guard in self.ks.range(from..).take(n) {
            let (k, v) = guard.into_inner().expect("fjall: scan");
            bytes += k.len() + v.len();
        }
        bytes
    }

    fn close(self: Box<Self>) {
        self.persist();
    }
}
