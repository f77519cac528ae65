//! The cost of versioning: single-key puts and gets through the versioned `strata::Db` (each
//! put a one-phase MVCC transaction, each get a snapshot read at a fresh timestamp) against the
//! same operations on the raw LSM path (`strata::raw::Db`), same options, one thread.
//!
//! Ids are `mvcc_put/<raw|versioned>` and `mvcc_get/<raw|versioned>`. Puts run with
//! `Durability::Manual` (no per-op sync, so the engine's CPU cost is what is measured), into a
//! fresh store per sample; gets read present keys of a store loaded and flushed to SSTs.
//! `STRATA_BENCH_MVCC_KEYS` sets the keys (default 100k; `--test` uses 2k).
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};
use strata::{Durability, Options};
use strata_benches::data;

fn keys() -> usize {
    if std::env::args().any(|a| a == "--test") {
        return 2_000;
    }
    std::env::var("STRATA_BENCH_MVCC_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000)
}

fn options() -> Options {
    Options::default().durability(Durability::Manual)
}

enum Handle {
    Raw(strata::raw::Db),
    Versioned(strata::Db),
}

impl Handle {
    fn open(versioned: bool, dir: &std::path::Path) -> Handle {
        if versioned {
            Handle::Versioned(strata::Db::open_with(dir, options()).expect("open"))
        } else {
            Handle::Raw(strata::raw::Db::open_with(dir, options()).expect("open"))
        }
    }

    fn put(&self, k: &[u8], v: &[u8]) {
        match self {
            Handle::Raw(db) => db.put(k, v).expect("put"),
            Handle::Versioned(db) => db.put(k, v).expect("put"),
        }
    }

    fn get(&self, k: &[u8]) -> Option<Vec<u8>> {
        match self {
            Handle::Raw(db) => db.get(k).expect("get"),
            Handle::Versioned(db) => db.get(k).expect("get"),
        }
    }

    fn flush(&self) {
        match self {
            Handle::Raw(db) => db.flush().expect("flush"),
            Handle::Versioned(db) => db.flush().expect("flush"),
        }
    }
}

const KINDS: [(&str, bool); 2] = [("raw", false), ("versioned", true)];

fn main() {
    let n = keys();
    let pairs = data::pairs(data::Rng::new(7).next_u64(), n);
    let mut c = Criterion::default().configure_from_args();

    let mut g = c.benchmark_group("mvcc_put");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(n as u64));
    for (name, versioned) in KINDS {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let db = Handle::open(versioned, dir.path());
                    let t = Instant::now();
                    for (k, v) in &pairs {
                        db.put(k, v);
                    }
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("mvcc_get");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    for (name, versioned) in KINDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Handle::open(versioned, dir.path());
        for (k, v) in &pairs {
            db.put(k, v);
        }
        db.flush();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 7919) % pairs.len();
                let v = db.get(&pairs[i].0);
                assert!(v.is_some());
                v
            })
        });
    }
    g.finish();
    c.final_summary();
}
