//! The `Db` API on real files: round trips, iteration, snapshots, reopen, locking, bad input.
use std::collections::BTreeMap;
use strata::raw::Db;
use strata::{Batch, Durability, Error, InvalidArgument, Options, StoreError};

fn small() -> Options {
    // Small memtables and tables so flushes and compactions happen in a test.
    let mut o = Options::default().memtable_bytes(64 << 10);
    o.config.target_file_bytes = 64 << 10;
    o.config.level_base_bytes = 256 << 10;
    o.config.table.block_size = 1024;
    o.block_cache_bytes = 256 << 10;
    o
}

fn collect(it: strata::raw::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| r.expect("iterates")).collect()
}

#[test]
fn put_get_delete_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    db.put("a", "one").unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"one"[..]));
    db.delete("a").unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert!(!db.contains_key("a").unwrap());
    db.delete("never-there").unwrap();

    let mut b = Batch::new();
    b.put(b"x", b"10").put(b"y", b"20").delete(b"b");
    db.write(b).unwrap();
    assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"10"[..]));
    assert_eq!(db.get("b").unwrap(), None);
    db.write(Batch::new()).unwrap();
    // Empty values are values.
    db.put("empty", "").unwrap();
    assert_eq!(db.get("empty").unwrap(), Some(Vec::new()));
}

#[test]
fn reads_survive_flush_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let db = Db::open_with(dir.path(), small()).unwrap();
        for i in 0..3000u32 {
            let k = format!("key{:05}", (i * 7919) % 3000);
            let v = format!("value-{i}-{}", "x".repeat((i % 50) as usize));
            db.put(&k, &v).unwrap();
            model.insert(k.into_bytes(), v.into_bytes());
            if i % 5 == 0 {
                let k = format!("key{:05}", (i * 31) % 3000);
                db.delete(&k).unwrap();
                model.remove(k.as_bytes());
            }
        }
        db.flush().unwrap();
        let s = db.stats();
        assert!(s.table_bytes() > 0, "flushed to SSTs: {s:?}");
        for (k, v) in &model {
            assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
        }
        db.compact().unwrap();
        assert_eq!(collect(db.iter()), model.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>());
        let s = db.stats();
        assert!(s.cache.hits + s.cache.misses > 0, "SST reads went through the cache");
    }
    // Reopen (memtable empty, everything in SSTs) and write some more without flushing.
    {
        let db = Db::open_with(dir.path(), small()).unwrap();
        for (k, v) in &model {
            assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{}", String::from_utf8_lossy(k));
        }
        db.put("late", "in the WAL only").unwrap();
        model.insert(b"late".to_vec(), b"in the WAL only".to_vec());
    }
    let db = Db::open_with(dir.path(), small()).unwrap();
    assert_eq!(db.get("late").unwrap().as_deref(), Some(&b"in the WAL only"[..]));
    assert_eq!(collect(db.iter()).len(), model.len());
}

#[test]
fn ranges_and_prefixes_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), small()).unwrap();
    for i in 0..500u32 {
        db.put(format!("a/{i:04}"), i.to_string()).unwrap();
        db.put(format!("b/{i:04}"), i.to_string()).unwrap();
        if i == 250 {
            db.flush().unwrap(); // half in SSTs, half in the memtable
        }
    }
    db.put(b"a\xff", "edge").unwrap();
    let keys = |it: strata::raw::Iter| collect(it).into_iter().map(|(k, _)| String::from_utf8_lossy(&k).into_owned()).collect::<Vec<_>>();

    let fwd = keys(db.range("a/0100".."a/0105"));
    assert_eq!(fwd, ["a/0100", "a/0101", "a/0102", "a/0103", "a/0104"]);
    let rev = keys(db.range_rev("a/0100"..="a/0104"));
    assert_eq!(rev, ["a/0104", "a/0103", "a/0102", "a/0101", "a/0100"]);
    assert_eq!(keys(db.prefix("b/")).len(), 500);
    let last_b = keys(db.prefix_rev("b/"));
    assert_eq!(last_b.first().map(String::as_str), Some("b/0499"));
    assert_eq!(last_b.last().map(String::as_str), Some("b/0000"));
    assert_eq!(keys(db.prefix("a")).len(), 501);
    assert_eq!(keys(db.range::<&str, _>(..)).len(), 1001);
    assert_eq!(keys(db.range("zzz"..)).len(), 0);
    // Deleted keys vanish from iteration.
    db.delete("a/0101").unwrap();
    assert_eq!(keys(db.range("a/0100".."a/0103")), ["a/0100", "a/0102"]);
}

#[test]
fn snapshots_are_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), small()).unwrap();
    db.put("k", "old").unwrap();
    db.put("gone", "here").unwrap();
    let snap = db.snapshot();
    db.put("k", "new").unwrap();
    db.delete("gone").unwrap();
    db.put("born", "later").unwrap();
    // Push the old versions through a flush and a full compaction: the snapshot keeps them.
    db.flush().unwrap();
    db.compact().unwrap();
    assert_eq!(snap.get("k").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(snap.get("gone").unwrap().as_deref(), Some(&b"here"[..]));
    assert_eq!(snap.get("born").unwrap(), None);
    let at_snap: Vec<_> = collect(snap.range::<&str, _>(..)).into_iter().map(|(k, _)| k).collect();
    assert_eq!(at_snap, vec![b"gone".to_vec(), b"k".to_vec()]);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"new"[..]));
    drop(snap);
    db.compact().unwrap();
    assert_eq!(db.get("gone").unwrap(), None);
}

#[test]
fn second_open_is_locked_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let err = Db::open(dir.path()).unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    assert!(matches!(err, Error::Locked { .. }));
    assert!(err.to_string().contains("locked"), "{err}");
    let clone = db.clone();
    drop(db);
    assert!(Db::open(dir.path()).unwrap_err().is_locked(), "a clone keeps it open");
    drop(clone);
    let again = Db::open(dir.path()).unwrap();
    again.close().unwrap();
}

#[test]
fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.config.max_key_len = 100;
    o.config.max_value_len = 1000;
    let db = Db::open_with(dir.path(), o).unwrap();
    let e = db.put("", "v").unwrap_err();
    assert!(matches!(e, Error::Store(StoreError::InvalidArgument(InvalidArgument::EmptyKey))), "{e:?}");
    assert!(e.to_string().contains("empty"), "{e}");
    let e = db.put(vec![b'k'; 101], "v").unwrap_err();
    assert!(matches!(e, Error::Store(StoreError::InvalidArgument(InvalidArgument::KeyTooLarge { len: 101, max: 100 }))));
    let e = db.put("k", vec![0u8; 1001]).unwrap_err();
    assert!(matches!(e, Error::Store(StoreError::InvalidArgument(InvalidArgument::ValueTooLarge { len: 1001, max: 1000 }))));
    assert!(db.get("").unwrap_err().is_invalid_argument());
    assert!(db.get(vec![b'k'; 101]).unwrap_err().is_invalid_argument());
    let mut b = Batch::new();
    b.put(b"fine", b"v").put(b"", b"bad");
    assert!(db.write(b).unwrap_err().is_invalid_argument());
    assert_eq!(db.get("fine").unwrap(), None, "a rejected batch applies nothing");
    // The database is still fine.
    db.put("k", vec![0u8; 1000]).unwrap();
    assert_eq!(db.get("k").unwrap().map(|v| v.len()), Some(1000));
}

#[test]
fn manual_durability_syncs_on_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open_with(dir.path(), Options::default().durability(Durability::Manual)).unwrap();
        for i in 0..1000 {
            db.put(format!("k{i}"), "v").unwrap();
        }
        db.sync().unwrap();
        db.put("after-sync", "v").unwrap();
        // Dropped: close syncs the rest.
    }
    let db = Db::open(dir.path()).unwrap();
    assert!(db.get("k999").unwrap().is_some());
    assert!(db.get("after-sync").unwrap().is_some());
}

#[test]
fn sync_every_ms_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().sync_every(std::time::Duration::from_millis(5))).unwrap();
    db.put("k", "v").unwrap();
    let before = db.stats().wal_syncs;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().wal_syncs == before {
        assert!(std::time::Instant::now() < deadline, "no background sync happened");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn closed_handles_report_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(other.put("k", "v"), Err(Error::Closed)));
    assert!(matches!(other.get("k"), Err(Error::Closed)));
}

#[test]
fn open_reports_a_path_that_cannot_be_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let e = Db::open(&file).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if path == &file), "{e:?}");
}

#[test]
fn iterator_sees_everything_written_before_it_while_memtables_move() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default().memtable_bytes(32 << 10).durability(Durability::Manual);
    o.config.target_file_bytes = 32 << 10;
    o.config.level_base_bytes = 128 << 10;
    o.config.table.block_size = 1024;
    let db = Db::open_with(dir.path(), o).unwrap();
    for i in 0..3000u32 {
        db.put(format!("a-{i:06}"), "v").unwrap();
    }
    let mut it = db.prefix("a-");
    let mut n = 0;
    for _ in 0..100 {
        it.next().unwrap().unwrap();
        n += 1;
    }
    for i in 0..20000u32 {
        db.put(format!("b-{i:06}"), "w").unwrap();
        db.put(format!("a-{:06}", 3000 + i), "late").unwrap();
    }
    db.flush().unwrap();
    for r in it {
        let (k, v) = r.unwrap();
        assert_eq!(v, b"v", "{}", String::from_utf8_lossy(&k));
        n += 1;
    }
    assert_eq!(n, 3000);
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
    check::<strata::raw::Snapshot>();
    check::<Error>();
    fn send<T: Send>() {}
    send::<strata::raw::Iter>();
}

#[test]
fn stats_report_levels_amplification_and_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), small()).unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), [b'v'; 64]).unwrap();
    }
    db.flush().unwrap();
    for _ in 0..3 {
        for i in (0..2000u32).step_by(7) {
            assert!(db.get(format!("k{i:05}")).unwrap().is_some());
        }
    }
    let s = db.stats();
    assert!(s.level_files.iter().sum::<usize>() > 0);
    assert!(s.write_amplification() >= 1.0, "{s:?}");
    assert!(s.space_amplification() >= 1.0, "{s:?}");
    assert!(s.cache.hit_rate() > 0.5, "repeated reads hit the cache: {:?}", s.cache);
    assert_eq!(s.last_seq, 2000);
}

#[test]
fn iterators_read_the_state_when_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    let it = db.iter();
    let rev = db.range_rev::<&str, _>(..);
    db.put("c", "3").unwrap();
    db.delete("a").unwrap();
    db.put("b", "changed").unwrap();
    let want = vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())];
    assert_eq!(collect(it), want);
    assert_eq!(collect(rev), want.into_iter().rev().collect::<Vec<_>>());
}
