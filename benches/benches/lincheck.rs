//! Throughput of the linearizability checker (`strata_sim::lincheck`) on histories from its
//! linearizable reference: 5 clients on 10 keys, 2% unknown outcomes, 1,000 and 10,000
//! operations; plus a 1,000-operation history with an injected stale read (detection and
//! explanation). Smoke run: `cargo bench -p strata-benches --bench lincheck -- --test`.
use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use strata_sim::lincheck::gen::{generate, Anomaly, GenConfig};
use strata_sim::lincheck::{check, KvModel, Limits};

fn bench(c: &mut Criterion) {
    let model = KvModel::<u64, u64>::new();
    let mut group = c.benchmark_group("lincheck");
    for ops in [1_000usize, 10_000] {
        let history = generate(&GenConfig::new(42, 5, 10, ops)).history;
        assert!(check(&model, &history, &Limits::default()).verdict.is_linearizable());
        group.throughput(Throughput::Elements(ops as u64));
        group.bench_with_input(BenchmarkId::new("linearizable", ops), &history, |b, h| {
            b.iter(|| black_box(check(&model, h, &Limits::default())))
        });
    }
    let mut cfg = GenConfig::new(42, 5, 10, 1_000);
    cfg.anomaly = Some(Anomaly::StaleRead);
    let bad = generate(&cfg);
    assert!(bad.surely_violates() && check(&model, &bad.history, &Limits::default()).verdict.is_violation());
    group.throughput(Throughput::Elements(1_000));
    group.bench_with_input(BenchmarkId::new("stale-read-explained", 1_000), &bad.history, |b, h| {
        b.iter(|| black_box(check(&model, h, &Limits::default())))
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
