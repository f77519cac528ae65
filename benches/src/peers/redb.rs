//! redb 4 (copy-on-write B-tree), one table.
//!
//! Every `put` is its own write transaction, as every peer's `put` is its own atomic write.
//! Durability: `SyncEachWrite` commits with `Durability::Immediate` (redb syncs the file at
//! commit); `Manual` commits with `Durability::None` and `persist` commits an empty
//! `Immediate` transaction. redb has a single writer, so concurrent durable writers queue and
//! each commit syncs (no group commit). Flush is `persist` (there is no memtable);
//! compaction is `Database::compact`, which needs exclusive access (a write lock here).
//! Every `get` and `scan` opens its own read transaction.
use crate::{Durability, Engine, EngineKind, Options};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::path::Path;
use std::sync::RwLock;

/// redb's entry.
pub const KIND: EngineKind = EngineKind { name: "redb", open };

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

struct Redb {
    db: RwLock<Database>,
    durability: redb::Durability,
}

fn open(dir: &Path, opts: &Options) -> Box<dyn Engine> {
    let db = Database::builder()
        .set_cache_size(opts.cache_bytes as usize)
        .create(dir.join("bench.redb"))
        .expect("redb: open");
    let durability = match opts.durability {
        Durability::SyncEachWrite => redb::Durability::Immediate,
        Durability::Manual => redb::Durability::None,
    };
    let this = Redb { db: RwLock::new(db), durability };
    this.commit(redb::Durability::Immediate, |_| {});
    Box::new(this)
}

impl Redb {
    fn commit(&self, durability: redb::Durability, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
        let db = self.db.read().expect("redb: lock");
        let mut txn = db.begin_write().expect("redb: begin_write");
        txn.set_durability(durability).expect("redb: durability");
        {
            let mut table = txn.open_table(TABLE).expect("redb: open_table");
            f(&mut table);
        }
        txn.commit().expect("redb: commit");
    }
}

impl Engine for Redb {
    fn put(&self, key: &[u8], value: &[u8]) {
        self.commit(self.durability, |t| {
            t.insert(key, value).expect("redb: insert");
        });
    }

    fn put_many(&self, pairs: &[(crate::data::Key, crate::data::Value)]) {
        for chunk in pairs.chunks(10_000) {
            self.commit(self.durability, |t| {
                for (k, v) in chunk {
                    t.insert(k.as_slice(), v.as_slice()).expect("redb: insert");
                }
            });
        }
    }

    fn get(&self, key: &[u8]) -> Option<usize> {
        let db = self.db.read().expect("redb: lock");
        let txn = db.begin_read().expect("redb: begin_read");
        let table = txn.open_table(TABLE).expect("redb: open_table");
        table.get(key).expect("redb: get").map(|v| v.value().len())
    }

    fn persist(&self) {
        self.commit(redb::Durability::Immediate, |_| {});
    }

    fn flush(&self) {
        self.persist();
    }

    fn compact(&self) {
        self.persist();
        let mut db = self.db.write().expect("redb: lock");
        while db.compact().expect("redb: compact") {}
    }

    fn scan(&self, from: &[u8], n: usize) -> usize {
        let db = self.db.read().expect("redb: lock");
        let txn = db.begin_read().expect("redb: begin_read");
        let table = txn.open_table(TABLE).expect("redb: open_table");
        let mut bytes = 0;
        for entry in table.range(from..).expect("redb: range").take(n) {
            let (k, v) = entry.expect("redb: scan");
            bytes += k.value().len() + v.value().len();
        }
        bytes
    }

    fn close(self: Box<Self>) {
        self.persist();
    }
}
