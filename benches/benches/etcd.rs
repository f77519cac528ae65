//! Transactions and watches, side by side in one process.
//!
//! `txn_rmw/<engine>/<durability>/<threads>t`: read-modify-write transactions of 4 distinct
//! random keys out of 1,000 (read each 8-byte counter, write it + 1), retried on conflict, by 1
//! or 4 threads; throughput in transactions. Engines:
//! * `strata` — `strata::Db::transaction` (snapshot isolation, optimistic; committed in one
//!   phase: one atomic write batch, one sync).
//! * `fjall` — fjall 3 optimistic transactions (`OptimisticTxDatabase::write_tx`, SSI; a
//!   `Conflict` reruns the transaction).
//! * `redb` — redb 4 write transactions (one writer at a time; no conflicts).
//!
//! Durability is matched: `sync` = every commit durable before it returns (strata
//! `SyncEachWrite`, fjall `durability(Some(PersistMode::SyncData))` on the transaction, redb
//! `Durability::Immediate`); `nosync` = commits buffered (strata `Manual`, fjall journal left
//! in its buffer (`manual_journal_persist` and no transaction durability), redb
//! `Durability::None`).
//!
//! `watch_fanout/<watchers>`: 2,000 one-key puts (`Manual`) under a prefix delivered to 1 or 100
//! prefix watchers (`strata::Db::watch`), each drained by its own thread; time until every
//! watcher has every event; throughput in events delivered (puts × watchers).
//!
//! `STRATA_BENCH_TXNS` sets transactions per sample and thread count (default 2,000; `--test`
//! uses 50).
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use fjall::{KeyspaceCreateOptions, OptimisticTxDatabase, PersistMode, Readable};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use strata::{Durability, Options};
use strata_benches::data::Rng;

const KEYS: u64 = 1_000;
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

fn txns() -> usize {
    if std::env::args().any(|a| a == "--test") {
        return 50;
    }
    std::env::var("STRATA_BENCH_TXNS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000)
}

fn key(i: u64) -> Vec<u8> {
    format!("acct:{i:06}").into_bytes()
}

fn four_keys(rng: &mut Rng) -> [Vec<u8>; 4] {
    let mut ids = [0u64; 4];
    let mut n = 0;
    while n < 4 {
        let k = rng.next_u64() % KEYS;
        if !ids[..n].contains(&k) {
            ids[n] = k;
            n += 1;
        }
    }
    ids.map(key)
}

fn num(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

trait Engine: Send + Sync {
    fn rmw(&self, keys: &[Vec<u8>; 4]);
    fn total(&self) -> u64;
}

struct Strata(strata::Db);

impl Engine for Strata {
    fn rmw(&self, keys: &[Vec<u8>; 4]) {
        self.0
            .transaction(|tx| {
                for k in keys {
                    let n = num(tx.get(k)?.as_deref());
                    tx.put(k, (n + 1).to_be_bytes())?;
                }
                Ok(())
            })
            .expect("strata: transaction");
    }
    fn total(&self) -> u64 {
        (0..KEYS).map(|i| num(self.0.get(key(i)).expect("get").as_deref())).sum()
    }
}

struct Fjall {
    db: OptimisticTxDatabase,
    ks: fjall::OptimisticTxKeyspace,
    sync: bool,
}

impl Engine for Fjall {
    fn rmw(&self, keys: &[Vec<u8>; 4]) {
        loop {
            let mut tx = self.db.write_tx().expect("fjall: write_tx");
            if self.sync {
                tx = tx.durability(Some(PersistMode::SyncData));
            }
            for k in keys {
                let n = num(tx.get(&self.ks, k).expect("fjall: get").as_deref());
                tx.insert(&self.ks, k.as_slice(), (n + 1).to_be_bytes().as_slice());
            }
            match tx.commit().expect("fjall: commit") {
                Ok(()) => return,
                Err(_conflict) => continue,
            }
        }
    }
    fn total(&self) -> u64 {
        (0..KEYS).map(|i| num(self.ks.get(key(i)).expect("get").as_deref())).sum()
    }
}

struct Redb {
    db: redb::Database,
    durability: fn() -> redb::Durability,
}

impl Engine for Redb {
    fn rmw(&self, keys: &[Vec<u8>; 4]) {
        let mut txn = self.db.begin_write().expect("redb: begin_write");
        txn.set_durability((self.durability)()).expect("redb: durability");
        {
            let mut t = txn.open_table(TABLE).expect("redb: open_table");
            for k in keys {
                let n = num(t.get(k.as_slice()).expect("redb: get").map(|g| g.value().to_vec()).as_deref());
                t.insert(k.as_slice(), (n + 1).to_be_bytes().as_slice()).expect("redb: insert");
            }
        }
        txn.commit().expect("redb: commit");
    }
    fn total(&self) -> u64 {
        let r = self.db.begin_read().expect("redb: begin_read");
        let t = r.open_table(TABLE).expect("redb: table");
        (0..KEYS).map(|i| num(t.get(key(i).as_slice()).expect("get").map(|g| g.value().to_vec()).as_deref())).sum()
    }
}

fn open(engine: &str, sync: bool, dir: &std::path::Path) -> Box<dyn Engine> {
    match engine {
        "strata" => {
            let d = if sync { Durability::SyncEachWrite } else { Durability::Manual };
            Box::new(Strata(strata::Db::open_with(dir, Options::default().durability(d)).expect("strata: open")))
        }
        "fjall" => {
            let db = OptimisticTxDatabase::builder(dir).manual_journal_persist(true).open().expect("fjall: open");
            let ks = db.keyspace("bench", KeyspaceCreateOptions::default).expect("fjall: keyspace");
            Box::new(Fjall { db, ks, sync })
        }
        _ => {
            let db = redb::Database::create(dir.join("bench.redb")).expect("redb: open");
            let durability = if sync { || redb::Durability::Immediate } else { || redb::Durability::None };
            let w = db.begin_write().expect("redb: begin");
            w.open_table(TABLE).expect("redb: table");
            w.commit().expect("redb: commit");
            Box::new(Redb { db, durability })
        }
    }
}

/// Runs `n` transactions on `threads` threads; returns the elapsed time. Checks the total.
fn run(db: &Arc<dyn Engine>, n: usize, threads: usize, seed: u64) -> Duration {
    let before = db.total();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed ^ (t as u64 + 1));
                let batches: Vec<[Vec<u8>; 4]> = (0..n / threads).map(|_| four_keys(&mut rng)).collect();
                barrier.wait();
                for keys in &batches {
                    db.rmw(keys);
                }
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    for h in hs {
        h.join().expect("worker");
    }
    let took = t.elapsed();
    assert_eq!(db.total(), before + 4 * (n / threads * threads) as u64, "a lost update");
    took
}

fn main() {
    let n = txns();
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("txn_rmw");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(3));
    for (dur, sync) in [("sync", true), ("nosync", false)] {
        for threads in [1usize, 4] {
            g.throughput(Throughput::Elements((n / threads * threads) as u64));
            for engine in ["strata", "fjall", "redb"] {
                let dir = tempfile::tempdir().expect("tempdir");
                let db: Arc<dyn Engine> = Arc::from(open(engine, sync, dir.path()));
                let mut seed = 1;
                g.bench_function(BenchmarkId::from_parameter(format!("{engine}/{dur}/{threads}t")), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            seed += 1;
                            total += run(&db, n, threads, seed);
                        }
                        total
                    })
                });
            }
        }
    }
    g.finish();

    let mut g = c.benchmark_group("watch_fanout");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(3));
    let puts = if std::env::args().any(|a| a == "--test") { 100 } else { 2_000 };
    for watchers in [1usize, 100] {
        g.throughput(Throughput::Elements((puts * watchers) as u64));
        let dir = tempfile::tempdir().expect("tempdir");
        let db = strata::Db::open_with(dir.path(), Options::default().durability(Durability::Manual)).expect("open");
        g.bench_function(BenchmarkId::from_parameter(format!("{watchers}w")), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ws: Vec<_> = (0..watchers).map(|_| db.watch("w/", None).expect("watch")).collect();
                    let barrier = Arc::new(Barrier::new(watchers + 1));
                    let hs: Vec<_> = ws
                        .into_iter()
                        .map(|mut w| {
                            let barrier = barrier.clone();
                            std::thread::spawn(move || {
                                barrier.wait();
                                let mut got = 0;
                                while got < puts {
                                    got += w.recv_timeout(Duration::from_secs(60)).expect("event").events.len();
                                }
                            })
                        })
                        .collect();
                    barrier.wait();
                    let t = Instant::now();
                    for i in 0..puts {
                        db.put(format!("w/{:05}", i % 500), i.to_be_bytes()).expect("put");
                    }
                    for h in hs {
                        h.join().expect("watcher");
                    }
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
    c.final_summary();
}
