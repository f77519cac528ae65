//! The replicated node's CPU cost per committed write: a single-threaded 3-node cluster with a
//! zero-latency network and in-memory disks (`strata_benches::node::InlineCluster`) against
//! the standalone store driven the same way (`InlineStore`, `SyncEachWrite`): a raw put, and
//! the versioned one-key puts through the MVCC executor (`onepc`: `strata::Db::put`; `etcd`:
//! etcd's `Txn` put, the command the node applies). 16-byte keys, 100-byte values, 64 writes
//! in flight; every window must be acknowledged without error, and the data is read back
//! after the last sample. Results and the callgrind counts: `RESULTS.md`, "Node: cost per
//! replicated write".
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};
use strata_benches::data;
use strata_benches::node::{InlineCluster, InlineStore, StoreKind};

const WINDOW: usize = 64;

/// Runs `put` over consecutive windows of `pairs` (wrapping around) and returns what was
/// written, in order, for the check.
fn windows<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], at: &mut usize, written: &mut Vec<&'a (Vec<u8>, Vec<u8>)>, mut put: impl FnMut(&[(Vec<u8>, Vec<u8>)])) {
    if *at + WINDOW > pairs.len() {
        *at = 0;
    }
    let w = &pairs[*at..*at + WINDOW];
    put(w);
    written.extend(w.iter());
    *at += WINDOW;
}

fn node_writes(c: &mut Criterion) {
    let n = if std::env::args().any(|a| a == "--test") { 2_000 } else { 50_000 };
    let pairs = data::pairs(data::Rng::new(7).next_u64(), n).into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect::<Vec<_>>();
    let mut g = c.benchmark_group("node_write");
    g.throughput(Throughput::Elements(WINDOW as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("cluster3", |b| {
        let mut cluster = InlineCluster::new(3, 4 << 20);
        let (mut at, mut written) = (0, Vec::new());
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                windows(&pairs, &mut at, &mut written, |w| cluster.put_window(w));
            }
            t.elapsed()
        });
        let written: Vec<_> = written.into_iter().cloned().collect();
        cluster.verify(&written);
    });
    for (name, kind) in [("store_raw", StoreKind::Raw), ("store_onepc", StoreKind::OnePc), ("store_etcd", StoreKind::EtcdPut)] {
        g.bench_function(name, |b| {
            let mut store = InlineStore::new(kind, 4 << 20);
            let (mut at, mut written) = (0, Vec::new());
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    windows(&pairs, &mut at, &mut written, |w| store.put_window(w));
                }
                t.elapsed()
            });
            let written: Vec<_> = written.into_iter().cloned().collect();
            store.verify(&written);
        });
    }
    g.finish();
}

criterion_group!(benches, node_writes);
criterion_main!(benches);
