//! `strata load`: write many keys, then report throughput and latency.
//!
//! Key `i` is the 16 hex digits of `splitmix64(i)` (a bijection, so keys are distinct and in
//! random order); its value is `value_size` bytes derived from `i`, so a reader can check both.
use crate::fmt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use strata::raw::Db;
use strata::{Durability, Options};

/// Arguments of `strata load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Keys to write.
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Make every write durable before it returns (an fsync per write; concurrent writers
    /// share them). Without it, writes are acknowledged from memory and synced once at the end.
    #[arg(long)]
    pub sync: bool,
    /// Writer threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// After each write returns, print `acked INDEX KEY` on stdout (crash tests read it).
    #[arg(long)]
    pub report_acked: bool,
    /// Index of the first key (runs with different starts write different keys).
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// Memtable size in bytes (small values make flushes and compactions run during the load).
    #[arg(long, hide = true)]
    pub memtable_bytes: Option<usize>,
}

impl Default for LoadArgs {
    fn default() -> Self {
        LoadArgs { count: 100_000, value_size: 100, sync: false, threads: 1, report_acked: false, start: 0, memtable_bytes: None }
    }
}

/// The key of index `i`.
pub fn key(i: u64) -> [u8; 16] {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut out = [0u8; 16];
    let hex = b"0123456789abcdef";
    for (j, o) in out.iter_mut().enumerate() {
        *o = hex[((z >> (60 - 4 * j)) & 0xf) as usize];
    }
    out
}

/// Fills `buf` with the value of index `i`: letters and digits, so the shell shows it plainly.
pub fn fill_value(i: u64, buf: &mut [u8]) {
    const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = i.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = ALPHABET[(x % 62) as usize];
    }
}

pub fn run(data: &Path, args: &LoadArgs) -> Result<(), strata::Error> {
    let durability = if args.sync { Durability::SyncEachWrite } else { Durability::Manual };
    let mut options = Options::default().durability(durability);
    if let Some(bytes) = args.memtable_bytes {
        options = options.memtable_bytes(bytes);
        options.config.target_file_bytes = (bytes as u64).max(4096);
        options.config.level_base_bytes = (bytes as u64 * 4).max(16384);
    }
    let db = Db::open_with(data, options)?;
    let threads = args.threads.max(1) as u64;
    let bar = ProgressBar::new(args.count);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} keys ({rate}, eta {eta})")
            .map(|s| {
                s.with_key("rate", |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} writes/s", st.per_sec());
                })
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let results: Vec<Result<Vec<u64>, strata::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (db, bar, failed) = (&db, &bar, &failed);
                s.spawn(move || writer(db, args, t, threads, bar, failed))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(strata::Error::Closed))).collect()
    });
    let mut latencies = Vec::with_capacity(args.count as usize);
    for r in results {
        latencies.extend(r?);
    }
    if !args.sync {
        db.sync()?;
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    report(args, &mut latencies, elapsed);
    print!("{}", fmt::stats(&db.stats()));
    db.close()
}

fn writer(db: &Db, args: &LoadArgs, t: u64, threads: u64, bar: &ProgressBar, failed: &AtomicBool) -> Result<Vec<u64>, strata::Error> {
    let mut lat = Vec::with_capacity((args.count / threads + 1) as usize);
    let mut value = vec![0u8; args.value_size];
    let mut pending = 0;
    let mut i = t;
    while i < args.count {
        if failed.load(Ordering::Relaxed) {
            break;
        }
        let index = args.start + i;
        let k = key(index);
        fill_value(index, &mut value);
        let t0 = Instant::now();
        if let Err(e) = db.put(k, &value) {
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        lat.push(t0.elapsed().as_nanos() as u64);
        if args.report_acked {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "acked {index} {}", String::from_utf8_lossy(&k));
        }
        pending += 1;
        if pending == 1024 {
            bar.inc(pending);
            pending = 0;
        }
        i += threads;
    }
    bar.inc(pending);
    Ok(lat)
}

fn report(args: &LoadArgs, lat: &mut [u64], elapsed: std::time::Duration) {
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| if n == 0 { 0 } else { lat[((n as f64 * p) as usize).min(n - 1)] };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes = n as f64 * (16 + args.value_size) as f64;
    println!(
        "wrote {n} keys (16-byte keys, {}-byte values, {} thread{}) in {:.2} s: {:.0} writes/s, {}/s",
        args.value_size,
        args.threads.max(1),
        if args.threads > 1 { "s" } else { "" },
        secs,
        n as f64 / secs,
        fmt::size((bytes / secs) as u64)
    );
    println!(
        "latency per write: p50 {}, p99 {}, max {}",
        fmt::nanos(pct(0.50)),
        fmt::nanos(pct(0.99)),
        fmt::nanos(lat.last().copied().unwrap_or(0))
    );
    if args.sync {
        println!("durability: every write was durable (fsync) before it returned");
    } else {
        println!("durability: writes acknowledged from memory, one sync at the end (use --sync for durable writes)");
    }
}
