//! Strata's LSM against fjall, redb, sled (and RocksDB with `--features rocksdb`), side by
//! side in one process. Every workload is the same code for every engine (see
//! `strata_benches::workloads`); ids are `<workload>/<engine>`.
//!
//! `cargo bench -p strata-benches -- --test` is the quick smoke run (20k keys);
//! `cargo bench -p strata-benches --bench lsm` is the real run (1M keys). Pick engines with
//! `STRATA_BENCH_ENGINES=strata,fjall`.
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::Duration;
use strata_benches::workloads::{self, Scale, Store, SEED};
use strata_benches::{data, selected_engines, Durability, EngineKind, Options};

/// Threads in the durable-put workload.
const WRITERS: usize = 4;

fn main() {
    let scale = Scale::from_env();
    let engines = selected_engines();
    eprintln!("strata-benches: {} keys, engines {:?}", scale.keys, engines);
    let mut c = Criterion::default().configure_from_args();
    let pairs = data::pairs(SEED, scale.keys);
    puts(&mut c, &engines, &pairs);
    reads(&mut c, &engines, &pairs, scale);
    durable_puts(&mut c, &engines);
    reopen(&mut c, &engines, &pairs);
    if wants(&c, "space_amp") {
        space(&engines, scale);
    }
    c.final_summary();
}

/// A one-shot load per iteration: few flat samples, no real warm-up.
fn one_shot<'a>(
    c: &'a mut Criterion,
    name: &str,
    elements: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(elements as u64));
    g
}

/// 1M random single puts into a fresh store, no per-op sync, one sync at the end.
fn puts(c: &mut Criterion, engines: &[EngineKind], pairs: &[(data::Key, data::Value)]) {
    let mut g = one_shot(c, "put_nosync", pairs.len());
    for kind in engines {
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| workloads::timed_puts(kind, pairs)).sum())
        });
    }
    g.finish();
}

/// Point reads of present and missing keys and 10k-entry scans, on 1M keys flushed to SSTs.
fn reads(c: &mut Criterion, engines: &[EngineKind], pairs: &[(data::Key, data::Value)], scale: Scale) {
    let keys: Vec<data::Key> = pairs.iter().map(|p| p.0).collect();
    let missing = data::missing_keys(SEED, 100_000.min(keys.len()));
    for kind in engines {
        let mut store: Option<Store> = None;
        let mut g = c.benchmark_group("get_present");
        g.sample_size(20).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            let engine = loaded(&mut store, kind, pairs);
            b.iter_custom(|iters| workloads::timed_gets(engine, &keys, iters, iters, true))
        });
        g.finish();
        let mut g = c.benchmark_group("get_missing");
        g.sample_size(20).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            let engine = loaded(&mut store, kind, pairs);
            b.iter_custom(|iters| workloads::timed_gets(engine, &missing, iters, iters, false))
        });
        g.finish();
        let mut g = c.benchmark_group("scan_10k");
        g.sample_size(20)
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Elements(scale.scan_len as u64));
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            let engine = loaded(&mut store, kind, pairs);
            b.iter_custom(|iters| workloads::timed_scans(engine, iters, scale.scan_len, iters))
        });
        g.finish();
    }
}

/// The shared read store, loaded on first use (so filtered-out benches load nothing).
fn loaded<'a>(store: &'a mut Option<Store>, kind: &EngineKind, pairs: &[(data::Key, data::Value)]) -> &'a dyn strata_benches::Engine {
    store.get_or_insert_with(|| workloads::loaded_store(kind, pairs)).engine()
}

/// 4 writers, each put waiting for its own sync. One iteration is one put per writer.
fn durable_puts(c: &mut Criterion, engines: &[EngineKind]) {
    let mut g = c.benchmark_group("put_durable_4t");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(WRITERS as u64));
    for kind in engines {
        let mut store: Option<Store> = None;
        let mut round = 0u64;
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            let store = store.get_or_insert_with(|| Store::open(kind, &Options::new(Durability::SyncEachWrite)));
            b.iter_custom(|iters| {
                round += 1;
                workloads::timed_durable_puts(store.engine(), WRITERS, iters, round)
            })
        });
    }
    g.finish();
}

/// Reopen after 1M unflushed puts: the WAL (or the engine's equivalent) is replayed.
fn reopen(c: &mut Criterion, engines: &[EngineKind], pairs: &[(data::Key, data::Value)]) {
    let mut g = one_shot(c, "reopen_wal", pairs.len());
    for kind in engines {
        let mut image = None;
        let probe = pairs[pairs.len() / 2].0;
        g.bench_function(BenchmarkId::from_parameter(kind.name), |b| {
            let image = image.get_or_insert_with(|| workloads::crashed_image(kind, pairs));
            b.iter_custom(|iters| {
                (0..iters).map(|_| workloads::timed_reopen(kind, image, &probe, pairs.len())).sum()
            })
        });
    }
    g.finish();
}

/// Space on disk ÷ live raw bytes after compacting 1M keys with half overwritten. A
/// measurement, not a timing: printed and (except in `--test` mode) written to
/// `target/strata-benches/space_amp.tsv`.
fn space(engines: &[EngineKind], scale: Scale) {
    let mut rows = Vec::new();
    for kind in engines {
        let s = workloads::space_after_overwrite(kind, scale.keys);
        println!(
            "space_amp/{:<8} disk {:>12} B (apparent {:>12} B)  live {:>12} B  ratio {:.3}  (compaction {:.2} s)",
            kind.name,
            s.disk.allocated,
            s.disk.apparent,
            s.live_bytes,
            s.ratio(),
            s.compact.as_secs_f64()
        );
        rows.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{:.4}\t{:.3}",
            kind.name,
            scale.keys,
            s.disk.allocated,
            s.disk.apparent,
            s.live_bytes,
            s.ratio(),
            s.compact.as_secs_f64()
        ));
    }
    let header = "engine\tkeys\tdisk_bytes\tapparent_bytes\tlive_bytes\tratio\tcompact_secs";
    if !scale.smoke {
        workloads::merge_tsv("space_amp.tsv", header, &rows);
    }
}

/// Whether the command line's filter (criterion's positional argument, if any) selects `name`.
fn wants(_c: &Criterion, name: &str) -> bool {
    const TAKES_VALUE: &[&str] = &[
        "--save-baseline", "-s", "--baseline", "-b", "--load-baseline", "--profile-time",
        "--sample-size", "--warm-up-time", "--measurement-time", "--nresamples",
        "--noise-threshold", "--confidence-level", "--significance-level", "--color", "-c",
        "--output-format", "--plotting-backend", "--format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if TAKES_VALUE.contains(&a.as_str()) {
            i += 1;
        } else if !a.starts_with('-') {
            filter = Some(a.clone());
        }
        i += 1;
    }
    filter.is_none_or(|f| name.contains(&f) || f.contains(name))
}
