//! The workloads, written once against [`Engine`] and shared by the criterion benches and the
//! RSS runner.
use crate::data::{self, Key, Value};
use crate::{fsutil, Durability, Engine, EngineKind, Options};
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Sizes of the workloads.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Keys loaded by the put, read, space and reopen workloads (1M in a real run).
    pub keys: usize,
    /// Entries read by one range scan.
    pub scan_len: usize,
    /// Criterion's `--test` smoke mode: nothing is recorded for the report.
    pub smoke: bool,
}

impl Scale {
    /// The full scale, or a small one when criterion runs in `--test` (smoke) mode.
    /// `STRATA_BENCH_KEYS` overrides the key count.
    pub fn from_env() -> Self {
        let smoke = std::env::args().any(|a| a == "--test");
        let keys = std::env::var("STRATA_BENCH_KEYS")
            .ok()
            .and_then(|s| s.replace('_', "").parse().ok())
            .unwrap_or(if smoke { 20_000 } else { 1_000_000 });
        Scale { keys, scan_len: if smoke { 1_000 } else { 10_000 }.min(keys), smoke }
    }
}

/// Seed of the loaded keys.
pub const SEED: u64 = 42;

/// A store in a temporary folder that is removed when this is dropped (after the store).
pub struct Store {
    /// The open engine (`None` once closed).
    pub engine: Option<Box<dyn Engine>>,
    /// Its folder.
    pub dir: TempDir,
}

impl Store {
    /// Open `kind` in a new temporary folder.
    pub fn open(kind: &EngineKind, opts: &Options) -> Self {
        let dir = temp_dir(kind.name);
        let engine = Some((kind.open)(dir.path(), opts));
        Store { engine, dir }
    }

    /// The engine.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_deref().expect("store is open")
    }

    /// Close the engine cleanly, keeping the folder.
    pub fn close(&mut self) {
        if let Some(e) = self.engine.take() {
            e.close();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// A fresh temporary folder under `STRATA_BENCH_DIR` (or the system's temp folder).
pub fn temp_dir(name: &str) -> TempDir {
    let base = std::env::var_os("STRATA_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("bench dir");
    tempfile::Builder::new().prefix(&format!("strata-bench-{name}-")).tempdir_in(base).expect("temp dir")
}

/// Where the benches leave measurements that are not timings (space, RSS) for the report.
pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("strata-benches");
    std::fs::create_dir_all(&dir).expect("results dir");
    dir
}

/// Write `rows` (tab-separated lines whose first column is an engine name) to `file` in
/// [`results_dir`], keeping rows of other engines from earlier runs, so that runs of a subset
/// of engines (e.g. RocksDB alone) add to the table instead of replacing it.
pub fn merge_tsv(file: &str, header: &str, rows: &[String]) -> PathBuf {
    let path = results_dir().join(file);
    let engine_of = |line: &str| line.split('\t').next().unwrap_or("").to_string();
    let fresh: Vec<String> = rows.iter().map(|r| engine_of(r)).collect();
    let mut lines: Vec<String> = match std::fs::read_to_string(&path) {
        Ok(old) if old.lines().next() == Some(header) => {
            old.lines().skip(1).filter(|l| !fresh.contains(&engine_of(l))).map(String::from).collect()
        }
        _ => Vec::new(),
    };
    lines.extend(rows.iter().cloned());
    let mut out = format!("{header}\n");
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    std::fs::write(&path, out).expect("write results");
    path
}

/// Workload 1: `pairs.len()` single puts into a fresh store without per-op sync, then one
/// `persist`. Returns the time of the puts and the final sync (open and close not timed).
pub fn timed_puts(kind: &EngineKind, pairs: &[(Key, Value)]) -> Duration {
    let mut store = Store::open(kind, &Options::new(Durability::Manual));
    let engine = store.engine();
    let start = Instant::now();
    for (k, v) in pairs {
        engine.put(k, v);
    }
    engine.persist();
    let elapsed = start.elapsed();
    store.close();
    elapsed
}

/// The store the read workloads share: `pairs` written in batches, then flushed to SSTs.
pub fn loaded_store(kind: &EngineKind, pairs: &[(Key, Value)]) -> Store {
    let store = Store::open(kind, &Options::new(Durability::Manual));
    store.engine().put_many(pairs);
    store.engine().flush();
    store
}

/// Workload 2 and 3: `iters` gets of random keys from `keys`; panics if `expect_found` and a
/// key is missing, or the reverse.
pub fn timed_gets(engine: &dyn Engine, keys: &[Key], iters: u64, seed: u64, expect_found: bool) -> Duration {
    let mut rng = data::Rng::new(seed);
    let start = Instant::now();
    for _ in 0..iters {
        let key = &keys[rng.below(keys.len())];
        let found = std::hint::black_box(engine.get(key));
        assert_eq!(found.is_some(), expect_found, "get returned the wrong presence");
    }
    start.elapsed()
}

/// Workload 4: `iters` scans of `len` entries each, from random present keys in the lower
/// half of the key space (so every scan reads `len` entries).
pub fn timed_scans(engine: &dyn Engine, iters: u64, len: usize, seed: u64) -> Duration {
    let mut rng = data::Rng::new(seed);
    let start = Instant::now();
    for _ in 0..iters {
        let mut from = rng.key();
        from[0] &= 0x7f;
        let bytes = std::hint::black_box(engine.scan(&from, len));
        assert!(bytes >= len * (data::KEY_LEN + data::VALUE_LEN), "scan ran short");
    }
    start.elapsed()
}

/// Workload 5: `threads` writers each do `per_thread` durable puts, each waiting for its own
/// sync. Returns the wall time from the common start to the last writer's end.
pub fn timed_durable_puts(engine: &dyn Engine, threads: usize, per_thread: u64, seed: u64) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut rng = data::Rng::new(seed.wrapping_mul(31).wrapping_add(t as u64));
                let value = rng.value();
                barrier.wait();
                for _ in 0..per_thread {
                    engine.put(&rng.key(), &value);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every writer.
        start
    })
    .elapsed()
}

/// What the space workload measured.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    /// Space used by the store's folder after compaction and a clean close.
    pub disk: fsutil::DirBytes,
    /// Raw bytes of the live keys and values.
    pub live_bytes: u64,
    /// Time of the full compaction.
    pub compact: Duration,
}

impl Space {
    /// Allocated disk bytes ÷ live raw bytes (1.0 would be a perfect store).
    pub fn ratio(&self) -> f64 {
        self.disk.allocated as f64 / self.live_bytes as f64
    }
}

/// Workload 6: load `n` keys, overwrite half of them with new values, compact fully, close;
/// then measure the folder.
pub fn space_after_overwrite(kind: &EngineKind, n: usize) -> Space {
    let mut pairs = data::pairs(SEED, n);
    let mut store = Store::open(kind, &Options::new(Durability::Manual));
    store.engine().put_many(&pairs);
    let mut rng = data::Rng::new(SEED + 1);
    for pair in pairs.iter_mut().step_by(2) {
        pair.1 = rng.value();
    }
    let overwrites: Vec<(Key, Value)> = pairs.iter().step_by(2).copied().collect();
    store.engine().put_many(&overwrites);
    let start = Instant::now();
    store.engine().compact();
    let compact = start.elapsed();
    for (k, _) in pairs.iter().step_by(97) {
        assert!(store.engine().get(k).is_some(), "{}: key lost in compaction", kind.name);
    }
    store.close();
    let disk = fsutil::dir_bytes(store.dir.path()).expect("dir size");
    Space { disk, live_bytes: data::raw_bytes(n), compact }
}

/// The on-disk state left by `pairs.len()` unflushed single puts and one sync, taken while the
/// store was still open (as after `kill -9`), for the reopen workload.
pub fn crashed_image(kind: &EngineKind, pairs: &[(Key, Value)]) -> TempDir {
    let mut opts = Options::new(Durability::Manual);
    opts.memtable_bytes = Some(reopen_memtable_bytes(pairs.len()));
    let mut store = Store::open(kind, &opts);
    for (k, v) in pairs {
        store.engine().put(k, v);
    }
    store.engine().persist();
    let image = temp_dir(kind.name);
    fsutil::copy_dir(store.dir.path(), image.path()).expect("copy store");
    store.close();
    image
}

/// A memtable large enough that `n` puts stay in the WAL (4× the raw bytes, at least 64 MiB).
pub fn reopen_memtable_bytes(n: usize) -> u64 {
    (4 * data::raw_bytes(n)).max(64 << 20)
}

/// Workload 7: copy `image` to a fresh folder (not timed), then time opening it (WAL replay)
/// and reading one key back.
pub fn timed_reopen(kind: &EngineKind, image: &TempDir, probe: &Key, n: usize) -> Duration {
    let dir = temp_dir(kind.name);
    fsutil::copy_dir(image.path(), dir.path()).expect("copy image");
    let mut opts = Options::new(Durability::Manual);
    opts.memtable_bytes = Some(reopen_memtable_bytes(n));
    let start = Instant::now();
    let engine = (kind.open)(dir.path(), &opts);
    assert!(engine.get(probe).is_some(), "{}: key lost in reopen", kind.name);
    let elapsed = start.elapsed();
    engine.close();
    drop(dir);
    elapsed
}
