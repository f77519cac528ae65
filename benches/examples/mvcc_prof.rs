//! A driver for profiling the versioned and raw single-key paths under `perf record` or
//! `valgrind --tool=callgrind` (instruction counts are repeatable on a loaded machine, wall
//! time is not). Not a benchmark: `benches/mvcc.rs` is.
//!
//! `mvcc_prof <put|get> <raw|versioned> [keys = 20000] [reads = 200000]`: puts `keys` random
//! pairs (16-byte keys, 100-byte values, `Durability::Manual`) into a fresh store; for `get`,
//! flushes and reads present keys `reads` times. Prints ns/op. For per-op instructions:
//! `valgrind --tool=callgrind --toggle-collect='*Db::put*' mvcc_prof put versioned` (or
//! `'*Db::write*'` for raw puts, whose `put` is inlined; `'*Db::get*'` for gets).
use std::time::Instant;
use strata::{Durability, Options};
use strata_benches::data;

enum Handle {
    Raw(strata::raw::Db),
    Versioned(strata::Db),
}

impl Handle {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map_or("get", String::as_str);
    let versioned = args.get(2).is_some_and(|s| s == "versioned");
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let reads: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let pairs = data::pairs(data::Rng::new(7).next_u64(), n);
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options::default().durability(Durability::Manual);
    let db = if versioned {
        Handle::Versioned(strata::Db::open_with(dir.path(), opts).expect("open"))
    } else {
        Handle::Raw(strata::raw::Db::open_with(dir.path(), opts).expect("open"))
    };
    let t = Instant::now();
    for (k, v) in &pairs {
        db.put(k, v);
    }
    if op == "put" {
        println!("put {:.0} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
        return;
    }
    db.flush();
    let t = Instant::now();
    let mut i = 0usize;
    for _ in 0..reads {
        i = (i + 7919) % n;
        assert!(db.get(&pairs[i].0).is_some());
    }
    println!("get {:.0} ns/op", t.elapsed().as_nanos() as f64 / reads as f64);
}
