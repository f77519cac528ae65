//! End-to-end publish → delivery through `Db`'s in-process pub/sub API: one publishing thread,
//! 1 or 10 subscriber threads (each its own `Subscription` on the same subject, each receiving
//! every message), 16-byte and 1 KiB payloads. One iteration publishes `BATCH` messages and
//! ends when every subscriber has received all of them; throughput is in published messages
//! (deliveries = messages × subscribers). The TCP comparison with nats-server is
//! `benches/broker_vs_nats.sh`.
use criterion::{BenchmarkId, Criterion, Throughput};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use strata::{Db, RecvError};

const BATCH: u64 = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
    go: Vec<mpsc::Sender<u64>>,
    done: mpsc::Receiver<()>,
    threads: Vec<thread::JoinHandle<()>>,
}

fn fixture(subs: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path()).expect("open");
    let (done_tx, done) = mpsc::channel();
    let mut go = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..subs {
        let mut sub = db.subscribe("bench.broker").expect("subscribe");
        let (tx, rx) = mpsc::channel::<u64>();
        let done_tx = done_tx.clone();
        go.push(tx);
        threads.push(thread::spawn(move || {
            // Each message on the channel: receive that many, then report.
            while let Ok(n) = rx.recv() {
                let mut got = 0;
                while got < n {
                    match sub.recv() {
                        Ok(_) => got += 1,
                        Err(RecvError::Lagged { missed }) => panic!("dropped {missed} messages"),
                        Err(e) => panic!("{e}"),
                    }
                }
                if done_tx.send(()).is_err() {
                    return;
                }
            }
        }));
    }
    Fixture { _dir: dir, db, go, done, threads }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("broker_inproc");
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(BATCH));
    for subs in [1usize, 10] {
        for size in [16usize, 1024] {
            let f = fixture(subs);
            let payload = vec![7u8; size];
            g.bench_function(BenchmarkId::new(format!("subs{subs}"), format!("{size}B")), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        for tx in &f.go {
                            tx.send(BATCH).expect("subscriber alive");
                        }
                        for _ in 0..BATCH {
                            f.db.publish("bench.broker", &payload).expect("publish");
                        }
                        for _ in 0..subs {
                            f.done.recv().expect("subscriber done");
                        }
                        total += start.elapsed();
                    }
                    total
                })
            });
            let Fixture { go, threads, db, .. } = f;
            drop(go);
            for t in threads {
                t.join().expect("subscriber thread");
            }
            assert_eq!(db.broker_stats().dropped, 0);
        }
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
