//! Runs one workload once for one engine and prints its timing: the target for profilers
//! (`perf record`, `valgrind --tool=callgrind`), without criterion's repetitions.
//!
//! `run WORKLOAD ENGINE` with WORKLOAD one of `put`, `get`, `missing`, `scan`, `durable`,
//! `reopen`, `space`. `STRATA_BENCH_KEYS` sets the key count (default 1,000,000);
//! `STRATA_BENCH_OPS` the reads, scans or durable puts per thread (default 1,000,000, 100, 2,000);
//! `STRATA_BENCH_ROUNDS` repeats the reads that many times and reports the fastest round.
use std::time::{Duration, Instant};
use strata_benches::workloads::{self, SEED};
use strata_benches::{data, engine, Durability, Options};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(name)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: run put|get|missing|scan|durable|reopen|space ENGINE");
        std::process::exit(2);
    };
    let kind = engine(name).unwrap_or_else(|| panic!("unknown engine {name}"));
    let keys = env_usize("STRATA_BENCH_KEYS", 1_000_000);
    let pairs = || data::pairs(SEED, keys);
    let (ops, elapsed): (usize, Duration) = match workload.as_str() {
        "put" => {
            let pairs = pairs();
            let before = thread_cpu_ns();
            let t = workloads::timed_puts(&kind, &pairs);
            if let (Some(a), Some(b)) = (thread_cpu_ns(), before) {
                // Open and close included (not timed): the writer's own share of the work.
                eprintln!("writer thread cpu ms: {:.0}", a.saturating_sub(b) as f64 / 1e6);
            }
            (keys, t)
        }
        "get" | "missing" | "scan" => {
            let pairs = pairs();
            let store = workloads::loaded_store(&kind, &pairs);
            let start = Instant::now();
            let n = match workload.as_str() {
                "get" => {
                    let keys: Vec<data::Key> = pairs.iter().map(|p| p.0).collect();
                    let n = env_usize("STRATA_BENCH_OPS", 1_000_000);
                    eprintln!("loaded in {:.2} s", start.elapsed().as_secs_f64());
                    (n, best_of(|round| workloads::timed_gets(store.engine(), &keys, n as u64, 7 + round, true)))
                }
                "missing" => {
                    let missing = data::missing_keys(SEED, 100_000);
                    let n = env_usize("STRATA_BENCH_OPS", 1_000_000);
                    (n, best_of(|round| workloads::timed_gets(store.engine(), &missing, n as u64, 7 + round, false)))
                }
                _ => {
                    let n = env_usize("STRATA_BENCH_OPS", 100);
                    (n * 10_000, workloads::timed_scans(store.engine(), n as u64, 10_000, 7))
                }
            };
            n
        }
        "durable" => {
            let store = workloads::Store::open(&kind, &Options::new(Durability::SyncEachWrite));
            let per_thread = env_usize("STRATA_BENCH_OPS", 2_000);
            (4 * per_thread, workloads::timed_durable_puts(store.engine(), 4, per_thread as u64, 1))
        }
        "reopen" => {
            let pairs = pairs();
            let image = workloads::crashed_image(&kind, &pairs);
            (keys, workloads::timed_reopen(&kind, &image, &pairs[keys / 2].0, keys))
        }
        "space" => {
            let s = workloads::space_after_overwrite(&kind, keys);
            println!("{name} space: disk {} B, live {} B, ratio {:.3}", s.disk.allocated, s.live_bytes, s.ratio());
            (keys, s.compact)
        }
        other => panic!("unknown workload {other}"),
    };
    let secs = elapsed.as_secs_f64();
    println!("{workload}/{name}: {ops} ops in {secs:.3} s = {:.0} ops/s", ops as f64 / secs);
}

/// Runs `f` `STRATA_BENCH_ROUNDS` times (default 1) and returns the fastest round: on a
/// shared machine the minimum is the figure least disturbed by other jobs. With several
/// rounds, prints each round's wall time and the calling thread's CPU time (from
/// `/proc/thread-self/schedstat`: time on a core, not time waiting for one; reads run on the
/// calling thread, so this is the figure to compare under load).
fn best_of(mut f: impl FnMut(u64) -> Duration) -> Duration {
    let rounds = env_usize("STRATA_BENCH_ROUNDS", 1).max(1);
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for round in 0..rounds as u64 {
        let before = thread_cpu_ns();
        times.push(f(round));
        cpu.push(thread_cpu_ns().zip(before).map(|(a, b)| a.saturating_sub(b)));
    }
    if rounds > 1 {
        let ms = |v: Vec<String>| v.join(" ");
        eprintln!("wall ms: {}", ms(times.iter().map(|t| format!("{:.0}", t.as_secs_f64() * 1e3)).collect()));
        eprintln!("cpu ms:  {}", ms(cpu.iter().map(|c| c.map_or("?".into(), |c| format!("{:.0}", c as f64 / 1e6))).collect()));
        let mut c: Vec<u64> = cpu.iter().flatten().copied().collect();
        c.sort_unstable();
        if let (Some(min), Some(med)) = (c.first(), c.get(c.len() / 2)) {
            eprintln!("cpu ms min {:.0} median {:.0}", *min as f64 / 1e6, *med as f64 / 1e6);
        }
    }
    times.into_iter().min().unwrap_or_default()
}

/// Nanoseconds the calling thread has run on a core (Linux), if known.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(default)
}
