//! The embedded store's put/get workload natively: the same driver (`strata_wasm::db::core`)
//! and the same in-memory backend the wasm build runs in Node, for the wasm ÷ native ratio
//! (`bindings/wasm/bench/run.sh` runs both; results in benches/RESULTS.md).
//!
//! `cargo run --profile wasm-release -p strata-wasm --example db_bench -- [keys] [rounds]`
//! Keys: 16 random bytes, values: 100 random bytes, from SplitMix64 seeded as
//! `bench/db_bench.mjs` does. Each round opens a fresh store, times the puts (each a one-phase
//! transaction) and then the gets of every key in insertion order; prints one JSON line per
//! round: wall time and this thread's on-CPU time (`/proc/thread-self/schedstat` on Linux, else
//! null), as `bench/db_bench.mjs` measures them.
use std::time::Instant;
use strata_engine::lsm::config::Durability;
use strata_wasm::db::backend::MemBackend;
use strata_wasm::db::core::{Core, CoreOptions};

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let b = splitmix(state).to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// This thread's on-CPU nanoseconds so far (Linux), or `None`.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split(' ').next()?.parse().ok()
}

/// Milliseconds between two CPU readings, as JSON (`null` when unknown).
fn cpu_ms(from: Option<u64>, to: Option<u64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => format!("{:.1}", b.saturating_sub(a) as f64 / 1e6),
        _ => "null".into(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut state = 42u64;
    let pairs: Vec<([u8; 16], [u8; 100])> = (0..n)
        .map(|_| {
            let mut k = [0u8; 16];
            let mut v = [0u8; 100];
            fill(&mut state, &mut k);
            fill(&mut state, &mut v);
            (k, v)
        })
        .collect();
    let options = CoreOptions { durability: Durability::Manual, memtable_bytes: 64 << 20, ..CoreOptions::default() };
    for round in 0..rounds {
        let mut core = Core::open(Box::new(MemBackend::private()), &options, now_ms).expect("open");
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        for (k, v) in &pairs {
            core.put(k, v).expect("put");
        }
        let put_ms = t.elapsed().as_secs_f64() * 1e3;
        let c1 = thread_cpu_ns();
        let t = Instant::now();
        let mut found = 0;
        for (k, v) in &pairs {
            if core.get(k).expect("get").as_deref() == Some(&v[..]) {
                found += 1;
            }
        }
        let get_ms = t.elapsed().as_secs_f64() * 1e3;
        let c2 = thread_cpu_ns();
        assert_eq!(found, n, "every key read back");
        let (put_cpu, get_cpu) = (cpu_ms(c0, c1), cpu_ms(c1, c2));
        println!("{{\"engine\":\"strata-native\",\"round\":{round},\"keys\":{n},\"put_ms\":{put_ms:.1},\"get_ms\":{get_ms:.1},\"put_cpu_ms\":{put_cpu},\"get_cpu_ms\":{get_cpu}}}");
    }
}
