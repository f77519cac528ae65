//! Many threads on one `Db`: writers, readers and iterators while flushes and compactions run.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use strata::raw::Db;
use strata::{Durability, Options};

fn small(durability: Durability) -> Options {
    let mut o = Options::default().memtable_bytes(32 << 10).durability(durability);
    o.config.target_file_bytes = 32 << 10;
    o.config.level_base_bytes = 128 << 10;
    o.config.table.block_size = 1024;
    o.block_cache_bytes = 128 << 10;
    o
}

/// Writer `w` writes `k{w}-{i}` = `i` for increasing `i` and publishes the highest `i` it has
/// written; readers check that every published key is readable with its value, through gets
/// and through iterators, while the data moves from memtables to SSTs underneath.
fn writers_and_readers(durability: Durability, per_writer: u64, with_iterators: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), small(durability)).unwrap();
    const WRITERS: usize = 4;
    let published: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (db, published) = (db.clone(), published.clone());
        handles.push(std::thread::spawn(move || {
            for i in 1..=per_writer {
                db.put(format!("k{w}-{i:06}"), i.to_string()).unwrap();
                published[w].store(i, Ordering::Release);
            }
        }));
    }
    let mut readers = Vec::new();
    for r in 0..3 {
        let (db, published, stop) = (db.clone(), published.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut x = r as u64 + 1;
            let mut checks = 0u64;
            while !stop.load(Ordering::Acquire) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let w = (x >> 33) as usize % WRITERS;
                let hi = published[w].load(Ordering::Acquire);
                if hi == 0 {
                    continue;
                }
                let i = (x >> 7) % hi + 1;
                let got = db.get(format!("k{w}-{i:06}")).unwrap();
                assert_eq!(got, Some(i.to_string().into_bytes()), "writer {w} key {i} (published {hi})");
                if with_iterators && checks % 50 == 0 {
                    check_iteration(&db, w, hi);
                }
                checks += 1;
            }
            checks
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let checks: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checks > 0);
    let total = db.iter().count();
    assert_eq!(total as u64, WRITERS as u64 * per_writer);
    let s = db.stats();
    assert!(s.flushes > 0, "the test should exercise flushes: {s:?}");
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    for w in 0..WRITERS {
        assert_eq!(db.get(format!("k{w}-{per_writer:06}")).unwrap(), Some(per_writer.to_string().into_bytes()));
    }
    assert_eq!(db.iter().count() as u64, WRITERS as u64 * per_writer);
}

#[test]
fn concurrent_durable_writers_share_syncs() {
    writers_and_readers(Durability::SyncEachWrite, 400, false);
}

#[test]
fn concurrent_buffered_writers_with_flushes_and_compactions() {
    writers_and_readers(Durability::Manual, 5_000, false);
}

/// Iterators in several threads while memtables are frozen and flushed under them.
#[test]
fn concurrent_iterators_see_every_published_key() {
    writers_and_readers(Durability::Manual, 5_000, true);
}

/// Every published key of writer `w` (1..=hi) appears in its prefix, in order.
fn check_iteration(db: &Db, w: usize, hi: u64) {
    let keys: Vec<Vec<u8>> = db.prefix(format!("k{w}-")).take(hi as usize).map(|r| r.unwrap().0).collect();
    if keys.len() as u64 != hi {
        let missing: Vec<u64> = (1..=hi).filter(|i| !keys.contains(&format!("k{w}-{i:06}").into_bytes())).take(10).collect();
        panic!("iterator saw {} of {hi} published keys of writer {w}; first missing {missing:?}", keys.len());
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(k, &format!("k{w}-{:06}", i + 1).into_bytes());
    }
    let last = db.prefix_rev(format!("k{w}-")).next().unwrap().unwrap();
    assert!(last.0 >= format!("k{w}-{hi:06}").into_bytes());
}

#[test]
fn group_commit_covers_many_writes_per_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let threads = 8;
    let per = 50;
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = &db;
            s.spawn(move || {
                for i in 0..per {
                    db.put(format!("t{t}-{i}"), "v").unwrap();
                }
            });
        }
    });
    let s = db.stats();
    let writes = (threads * per) as u64;
    assert!(s.wal_syncs < writes, "{} syncs for {writes} durable writes", s.wal_syncs);
    assert_eq!(db.iter().count() as u64, writes);
}

/// Group commit gathering holds a group for the writers expected back; when most of them stop,
/// the one left must not stall: its held writes are released by the gathering timeout.
#[test]
fn a_writer_left_alone_is_not_stalled_by_gathering() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let threads = 4;
    let per = 100;
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = &db;
            s.spawn(move || {
                for i in 0..per {
                    db.put(format!("t{t}-{i:04}"), "v").unwrap();
                }
            });
        }
    });
    // The last groups held four writers; now one thread writes alone, then two.
    let start = std::time::Instant::now();
    for i in 0..per {
        db.put(format!("alone-{i:04}"), "v").unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..2 {
            let db = &db;
            s.spawn(move || {
                for i in 0..per {
                    db.put(format!("pair{t}-{i:04}"), "v").unwrap();
                }
            });
        }
    });
    let took = start.elapsed();
    assert_eq!(db.iter().count(), threads * per + 3 * per);
    // Each lone write waits at most one gathering window (≤ 1 ms) beyond its sync.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.iter().count(), threads * per + 3 * per);
}
