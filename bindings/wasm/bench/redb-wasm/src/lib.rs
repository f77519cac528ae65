//! redb 4 with its in-memory backend behind the same put/get calls the Strata benchmark
//! makes: each put is one write transaction (committed), each get one read transaction.
use redb::backends::InMemoryBackend;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use wasm_bindgen::prelude::*;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A redb database in wasm memory.
#[wasm_bindgen]
pub struct RedbMem {
    db: Database,
}

#[wasm_bindgen]
impl RedbMem {
    /// An empty database.
    pub fn open() -> Result<RedbMem, JsError> {
        let db = Database::builder().create_with_backend(InMemoryBackend::new())?;
        Ok(RedbMem { db })
    }

    /// One write transaction holding one insert.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), JsError> {
        let mut tx = self.db.begin_write()?;
        // No sync per commit (the in-memory backend has nothing to sync; this matches the
        // Strata side's durability "manual" and the native suite's redb adapter).
        tx.set_durability(Durability::None)?;
        {
            let mut t = tx.open_table(TABLE)?;
            t.insert(key, value)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One read transaction holding one get.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, JsError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(TABLE)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }
}
