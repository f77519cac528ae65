//! Side-by-side benchmarks of Strata against its peers.
//!
//! Every engine sits behind one small trait, [`Engine`], so each workload in
//! [`workloads`] runs the same code for all of them. An adapter per engine lives in
//! [`peers`]; each one's module docs say how its durability is matched to ours.
//!
//! The criterion benches are in `benches/lsm.rs`; `src/bin/rss.rs` measures peak memory per
//! engine in a fresh process, and `src/bin/report.rs` turns criterion's estimates into the
//! tables of `RESULTS.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod data;
pub mod fsutil;
pub mod node;
pub mod peers;
pub mod workloads;

use std::path::Path;

/// When a write counts as done, mapped onto each engine's nearest setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Each write returns only after a sync covers it (ours: `SyncEachWrite`, group commit).
    SyncEachWrite,
    /// Writes return once in memory (or in OS buffers); the caller syncs with
    /// [`Engine::persist`].
    Manual,
}

/// How to open an engine for a workload.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// When writes count as done.
    pub durability: Durability,
    /// Cache budget in bytes (block cache, page cache of the engine), the same for all.
    pub cache_bytes: u64,
    /// Memtable / write buffer size for the LSMs, if the workload needs a specific one.
    pub memtable_bytes: Option<u64>,
}

impl Options {
    /// The defaults shared by the workloads: 64 MiB of cache, engine-default memtables.
    pub fn new(durability: Durability) -> Self {
        Options { durability, cache_bytes: 64 << 20, memtable_bytes: None }
    }
}

/// The operations every workload needs, implemented once per engine.
///
/// Errors are bench failures, so adapters panic with a message rather than return them.
pub trait Engine: Send + Sync {
    /// Write one key (one transaction for the engines that have them).
    fn put(&self, key: &[u8], value: &[u8]);
    /// Write many keys, for setting up a workload quickly (not timed). Defaults to `put`s.
    fn put_many(&self, pairs: &[(data::Key, data::Value)]) {
        for (k, v) in pairs {
            self.put(k, v);
        }
    }
    /// Read one key; the value's length if present.
    fn get(&self, key: &[u8]) -> Option<usize>;
    /// Make every write so far durable (one sync).
    fn persist(&self);
    /// Move in-memory writes to their on-disk structure (memtable → SST for the LSMs); also
    /// persists.
    fn flush(&self);
    /// Compact everything as far as the engine allows (a full / major compaction).
    fn compact(&self);
    /// Read up to `n` entries in key order from `from`; returns the bytes of keys and values read.
    fn scan(&self, from: &[u8], n: usize) -> usize;
    /// Close cleanly.
    fn close(self: Box<Self>);
}

/// An engine's name and how to open it.
#[derive(Clone, Copy)]
pub struct EngineKind {
    /// Short name used in bench ids and tables.
    pub name: &'static str,
    /// Open (or create) a store in `dir`, which exists and may be empty.
    pub open: fn(&Path, &Options) -> Box<dyn Engine>,
}

impl std::fmt::Debug for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every engine compiled in, ours first.
pub fn engines() -> Vec<EngineKind> {
    #[allow(unused_mut)] // pushed to only with the `rocksdb` feature
    let mut all = vec![peers::strata::KIND, peers::fjall::KIND, peers::redb::KIND, peers::sled::KIND];
    #[cfg(feature = "rocksdb")]
    all.push(peers::rocks::KIND);
    all
}

/// The engines whose names are listed in `STRATA_BENCH_ENGINES` (comma-separated), or all.
pub fn selected_engines() -> Vec<EngineKind> {
    let all = engines();
    match std::env::var("STRATA_BENCH_ENGINES") {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter().filter(|e| wanted.contains(&e.name)).collect()
        }
        _ => all,
    }
}

/// Find a compiled-in engine by name.
pub fn engine(name: &str) -> Option<EngineKind> {
    engines().into_iter().find(|e| e.name == name)
}
