//! Shared helpers for Strata's integration tests: small configs that make flushes and
//! compactions frequent, and a plain model of the store's contents.
use std::collections::BTreeMap;
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::sstable::TableOptions;

/// A config whose memtables, blocks and files are tiny, so a few hundred writes exercise every
/// path: flushes, L0 compactions, deeper levels, multi-block tables.
pub fn tiny_config(durability: Durability) -> Config {
    Config {
        durability,
        memtable_bytes: 2 << 10,
        wal_buffer_bytes: 512,
        table: TableOptions { block_size: 256, restart_interval: 4, bloom_bits_per_key: 10 },
        l0_compaction_trigger: 3,
        level_base_bytes: 8 << 10,
        level_multiplier: 4,
        target_file_bytes: 4 << 10,
        block_cache_bytes: 16 << 10,
        manifest_roll_bytes: 2 << 10,
        ..Config::default()
    }
}

/// The reference: what the store should contain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Model {
    /// Applies a batch.
    pub fn apply(&mut self, b: &Batch) {
        for op in b.iter() {
            match op.kind {
                strata_engine::lsm::key::ValueKind::Put => {
                    self.0.insert(op.key.to_vec(), op.value.to_vec());
                }
                strata_engine::lsm::key::ValueKind::Delete => {
                    self.0.remove(op.key);
                }
            }
        }
    }

    /// Entries within bounds, in order (reversed when asked), at most `limit`.
    pub fn scan(&self, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, reverse: bool, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.0.range::<Vec<u8>, _>((lower.as_ref(), upper.as_ref()));
        let it: Box<dyn Iterator<Item = _>> = if reverse { Box::new(r.rev()) } else { Box::new(r) };
        it.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A key from a small space (so keys repeat and overwrite).
pub fn key(n: u64) -> Vec<u8> {
    format!("k{:04}", n).into_bytes()
}

/// A value that names its key and version, of varying length.
pub fn value(k: u64, version: u64) -> Vec<u8> {
    let mut v = format!("v{k}.{version}.").into_bytes();
    v.resize(8 + (version as usize * 7 + k as usize) % 40, b'x');
    v
}

pub mod mvcc;
