//! Peak resident memory (VmHWM) of one engine's load, each in a fresh process.
//!
//! `rss` runs every compiled-in engine, each as `rss --engine NAME` in a child process, prints
//! a table and writes `target/strata-benches/rss.tsv`. The load is the put workload's: N
//! single random puts (16-byte keys, 100-byte values, generated on the fly so the harness
//! holds none of them) without per-op sync, one sync, then a flush to SSTs.
//! `STRATA_BENCH_KEYS` sets N (default 1,000,000).
use std::process::Command;
use std::time::Instant;
use strata_benches::workloads::{self, Store, SEED};
use strata_benches::{data, engine, fsutil, selected_engines, Durability, Options};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keys: usize = std::env::var("STRATA_BENCH_KEYS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    match args.iter().position(|a| a == "--engine") {
        Some(i) => child(args.get(i + 1).expect("--engine NAME"), keys),
        None => parent(&args[0]),
    }
}

fn child(name: &str, keys: usize) {
    let before = fsutil::peak_rss_kib().unwrap_or(0);
    let kind = engine(name).unwrap_or_else(|| panic!("unknown engine {name}"));
    let mut store = Store::open(&kind, &Options::new(Durability::Manual));
    let mut rng = data::Rng::new(SEED);
    let start = Instant::now();
    for _ in 0..keys {
        let (k, v) = (rng.key(), rng.value());
        store.engine().put(&k, &v);
    }
    store.engine().persist();
    store.engine().flush();
    let secs = start.elapsed().as_secs_f64();
    let peak = fsutil::peak_rss_kib().unwrap_or(0);
    store.close();
    println!("{name}\t{keys}\t{peak}\t{before}\t{secs:.3}");
}

fn parent(exe: &str) {
    let mut rows = Vec::new();
    println!("{:<8} {:>10} {:>14} {:>12}", "engine", "keys", "peak RSS MiB", "load s");
    for kind in selected_engines() {
        let child = Command::new(exe).args(["--engine", kind.name]).output().expect("spawn rss child");
        assert!(child.status.success(), "{}: {}", kind.name, String::from_utf8_lossy(&child.stderr));
        let line = String::from_utf8_lossy(&child.stdout).trim().to_string();
        let cols: Vec<&str> = line.split('\t').collect();
        let peak: f64 = cols[2].parse::<f64>().unwrap_or(0.0) / 1024.0;
        println!("{:<8} {:>10} {:>14.1} {:>12}", cols[0], cols[1], peak, cols[4]);
        rows.push(line);
    }
    let header = "engine\tkeys\tpeak_rss_kib\tstart_rss_kib\tload_secs";
    let path = workloads::merge_tsv("rss.tsv", header, &rows);
    println!("wrote {}", path.display());
}
