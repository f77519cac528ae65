//! etcd's features on the versioned `Db`: revisions, history, compaction, revision watches,
//! leases, compare-and-swap transactions.
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use strata::{Cmp, Compare, Db, EventKind, Op, OpResult, TxnError, WatchError};

const T: Duration = Duration::from_secs(20);

#[test]
fn revisions_history_and_get_at() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("k", "v1").unwrap();
    let r1 = db.get_kv("k").unwrap().unwrap();
    assert_eq!((r1.version, r1.create_revision), (1, r1.mod_revision));
    db.put("k", "v2").unwrap();
    let r2 = db.get_kv("k").unwrap().unwrap();
    assert_eq!(r2.version, 2);
    assert_eq!(r2.create_revision, r1.mod_revision);
    assert!(r2.mod_revision > r1.mod_revision);
    db.delete("k").unwrap();
    db.put("k", "v3").unwrap();
    let r3 = db.get_kv("k").unwrap().unwrap();
    assert_eq!(r3.version, 1, "a delete resets the version");

    assert_eq!(db.get_at("k", r1.mod_revision).unwrap().unwrap().value, b"v1");
    assert_eq!(db.get_at("k", r2.mod_revision).unwrap().unwrap().value, b"v2");
    assert_eq!(db.get_at("k", r1.mod_revision - 1).unwrap(), None);
    let h = db.history("k").unwrap();
    let kinds: Vec<Option<Vec<u8>>> = h.iter().map(|e| e.kv.as_ref().map(|kv| kv.value.clone())).collect();
    assert_eq!(kinds, vec![Some(b"v3".to_vec()), None, Some(b"v2".to_vec()), Some(b"v1".to_vec())]);
    assert!(h.windows(2).all(|w| w[0].revision > w[1].revision));

    // Reopen: revisions and fields survive.
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get_at("k", r2.mod_revision).unwrap().unwrap().value, b"v2");
    assert_eq!(db.history("k").unwrap().len(), 4);
}

#[test]
fn compaction_fails_old_reads_and_gc_removes_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for i in 0..5 {
        db.put("k", format!("v{i}")).unwrap();
    }
    let h = db.history("k").unwrap();
    let (newest, oldest) = (h[0].revision, h[4].revision);
    let mid = h[2].revision;
    // A running transaction started before the compaction keeps its snapshot.
    let tx = db.begin().unwrap();
    db.put("k", "v5").unwrap();
    db.compact(mid).unwrap();
    assert_eq!(db.compaction_mark().unwrap(), mid);
    match db.get_at("k", oldest) {
        Err(TxnError::Compacted { requested, compacted }) => assert_eq!((requested, compacted), (oldest, mid)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(matches!(db.compact(mid), Err(TxnError::Compacted { .. })), "not above the mark");
    assert!(matches!(db.compact(u64::MAX - 1), Err(TxnError::FutureRevision { .. })));
    assert!(matches!(db.watch("k", Some(oldest)), Err(TxnError::Compacted { .. })));
    assert_eq!(db.get_at("k", mid).unwrap().unwrap().value, b"v2");
    assert_eq!(db.get_at("k", newest).unwrap().unwrap().value, b"v4");
    assert_eq!(tx.get("k").unwrap().unwrap(), b"v4", "the snapshot of a running transaction");
    drop(tx);
    // The background GC reaches the mark (no running snapshot holds it back any more):
    // the history shows the version visible at the mark and the newer ones only.
    let deadline = Instant::now() + T;
    loop {
        let h = db.history("k").unwrap();
        assert_eq!(h[0].kv.as_ref().unwrap().value, b"v5");
        assert_eq!(h.last().unwrap().revision, mid);
        // Physically gone: the raw write family holds no version below the mark.
        let versions = db.raw().prefix(b"w").count();
        if versions == 4 {
            break;
        }
        assert!(Instant::now() < deadline, "GC did not run: {versions} versions");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_replays_history_then_live_with_prev_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("a/1", "x").unwrap();
    let first = db.get_kv("a/1").unwrap().unwrap().mod_revision;
    db.put("a/1", "y").unwrap();
    db.put("b/1", "other").unwrap();
    let mut w = db.watch("a/", Some(first)).unwrap();
    let b = w.recv_timeout(T).unwrap();
    assert_eq!(b.revision, first);
    assert_eq!((b.events[0].kind, b.events[0].kv.value.as_slice(), b.events[0].prev.clone()), (EventKind::Put, &b"x"[..], None));
    let b = w.recv_timeout(T).unwrap();
    assert_eq!(b.events[0].kv.value, b"y");
    assert_eq!(b.events[0].prev.as_ref().unwrap().value, b"x");
    // Live: one revision for a batch of two keys, the delete with its previous value.
    let mut batch = strata::Batch::new();
    batch.put(b"a/2", b"z").delete(b"a/1");
    db.write(batch).unwrap();
    let b = w.recv_timeout(T).unwrap();
    assert_eq!(b.events.len(), 2);
    assert_eq!(b.events[0].kind, EventKind::Delete);
    assert_eq!(b.events[0].prev.as_ref().unwrap().value, b"y");
    assert_eq!(b.events[1].kv.key, b"a/2");
    assert!(matches!(w.try_recv(), Err(WatchError::Timeout)));
    // A watcher from now sees only later changes, transactions included.
    let mut now = db.watch("a/", None).unwrap();
    db.transaction(|tx| tx.put("a/3", "t")).unwrap();
    assert_eq!(now.recv_timeout(T).unwrap().events[0].kv.key, b"a/3");
    assert_eq!(w.recv_timeout(T).unwrap().events[0].kv.key, b"a/3");
}

/// Four writers (one-phase puts, two-phase transactions, CAS transactions) race a watcher with a
/// tiny consumer pace: it must see every change exactly once, in revision order, with the
/// right previous values — checked against the final history of every key.
#[test]
fn watch_misses_nothing_across_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.watch("w/", None).unwrap();
    let n = 150;
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..n {
                    let key = format!("w/{}", i % 7);
                    let value = format!("{t}-{i}");
                    match (t + i) % 3 {
                        0 => db.put(&key, &value).unwrap(),
                        1 => db.transaction(|tx| tx.put(&key, &value)).unwrap(),
                        _ => {
                            db.txn().then(Op::put(&key, &value)).commit().unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    type Seen = Vec<(u64, Vec<u8>, Option<Vec<u8>>)>; // (revision, value, previous value)
    let mut seen: BTreeMap<Vec<u8>, Seen> = BTreeMap::new();
    let mut last_rev = 0;
    let mut total = 0;
    while total < 4 * n {
        let b = w.recv_timeout(T).expect("an event");
        assert!(b.revision > last_rev, "revisions strictly increase");
        last_rev = b.revision;
        for e in b.events {
            total += 1;
            seen.entry(e.kv.key.clone()).or_default().push((b.revision, e.kv.value, e.prev.map(|p| p.value)));
        }
        if total % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5)); // a slow consumer
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert!(matches!(w.recv_timeout(Duration::from_millis(200)), Err(WatchError::Timeout)), "no extra events");
    for (key, events) in seen {
        let mut hist = db.history(&key).unwrap();
        hist.reverse();
        let expect: Vec<(u64, Vec<u8>)> = hist.iter().map(|e| (e.revision, e.kv.clone().unwrap().value)).collect();
        let got: Vec<(u64, Vec<u8>)> = events.iter().map(|(r, v, _)| (*r, v.clone())).collect();
        assert_eq!(got, expect, "every change of {key:?} once, in order");
        for (i, (_, _, prev)) in events.iter().enumerate() {
            let want = if i == 0 { None } else { Some(events[i - 1].1.clone()) };
            assert_eq!(prev, &want, "previous value of {key:?} #{i}");
        }
    }
}

/// Watchers come and go while writers keep committing: the executor extracts applied
/// notifications only while a watcher exists, so each new hub starts with one-key writes in
/// flight that were submitted without them. Every watcher, started at a revision just
/// committed, must still see every change from there on, exactly once, in order.
#[test]
fn watchers_created_under_load_miss_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    db.put(format!("u/{}", (i + t) % 5), format!("{t}-{i}")).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let mut checked = Vec::new();
    for round in 0..12 {
        let from = db.txn().then(Op::put("u/mark", round.to_string())).commit().unwrap().revision;
        let mut w = db.watch("u/", Some(from)).unwrap();
        let mut seen: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
        while seen.len() < 40 {
            let b = w.recv_timeout(T).expect("an event");
            assert!(seen.last().is_none_or(|l| l.0 < b.revision), "revisions increase");
            for e in b.events {
                seen.push((b.revision, e.kv.key, e.kv.value));
            }
        }
        drop(w); // the last watcher: the hub goes and notifications stop
        checked.push((from, seen));
    }
    stop.store(true, Ordering::Relaxed);
    for h in writers {
        h.join().unwrap();
    }
    for (from, seen) in checked {
        let last = seen.last().unwrap().0;
        let mut want = Vec::new();
        for k in ["u/0", "u/1", "u/2", "u/3", "u/4", "u/mark"] {
            for e in db.history(k).unwrap() {
                if (from..=last).contains(&e.revision) {
                    want.push((e.revision, k.as_bytes().to_vec(), e.kv.unwrap().value));
                }
            }
        }
        want.sort();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got, want, "every change from revision {from} to {last}, once");
    }
}

#[test]
fn compaction_behind_a_slow_watcher_ends_it_with_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut w = db.watch("c/", None).unwrap();
    // More changes than the watcher's buffer: it is moved to catch-up from history.
    let total = strata::WATCH_BUFFER_EVENTS + 200;
    let mut b = strata::Batch::new();
    for i in 0..total {
        b.put(format!("c/{i:05}").as_bytes(), b"v");
        if i % 100 == 99 {
            db.write(std::mem::take(&mut b)).unwrap();
        }
    }
    db.write(b).unwrap();
    // Read a little, then compact everything: the rest of its history is gone.
    let first = w.recv_timeout(T).unwrap();
    assert_eq!(first.events.len(), 100);
    let rev = db.revision().unwrap();
    db.compact(rev).unwrap();
    let mut got = 100;
    loop {
        match w.recv_timeout(T) {
            Ok(b) => got += b.events.len(),
            Err(WatchError::Compacted { compacted, requested }) => {
                assert_eq!(compacted, rev);
                assert!(requested <= rev);
                break;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(got < total, "the watcher could not have caught up");
    assert!(w.next().is_none(), "ended");
    // A new watcher above the mark works.
    let mut again = db.watch("c/", Some(rev + 1)).unwrap();
    db.put("c/new", "x").unwrap();
    assert_eq!(again.recv_timeout(T).unwrap().events[0].kv.key, b"c/new");
}

#[test]
fn lease_expiry_deletes_its_keys_in_one_revision() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    // Timing on a loaded machine is loose: the checks below only assert what the clock proves.
    let ttl = Duration::from_millis(1000);
    let granted = Instant::now();
    let lease = db.lease_grant(ttl).unwrap();
    let mut w = db.watch("l/", None).unwrap();
    for i in 0..5 {
        db.put_with_lease(format!("l/{i}"), "v", lease).unwrap();
    }
    db.put("l/plain", "stays").unwrap();
    assert_eq!(db.get_kv("l/0").unwrap().unwrap().lease, Some(lease));
    for _ in 0..6 {
        w.recv_timeout(T).unwrap();
    }
    // Keep-alive half-way through the TTL extends the lease past its first deadline.
    std::thread::sleep((granted + ttl / 2).saturating_duration_since(Instant::now()));
    let renewed = Instant::now();
    db.lease_keep_alive(lease).unwrap();
    std::thread::sleep((granted + ttl + ttl / 5).saturating_duration_since(Instant::now()));
    let present = db.get("l/0").unwrap().is_some();
    if Instant::now() < renewed + ttl - ttl / 10 {
        assert!(present, "kept alive: past the first deadline, within the renewed one");
    }
    // Expiry by the maintenance thread: all five keys in one revision.
    let b = w.recv_timeout(T).unwrap();
    assert_eq!(b.events.len(), 5);
    assert!(b.events.iter().all(|e| e.kind == EventKind::Delete && e.prev.as_ref().unwrap().lease == Some(lease)));
    for i in 0..5 {
        assert_eq!(db.get(format!("l/{i}")).unwrap(), None);
    }
    assert_eq!(db.get("l/plain").unwrap().as_deref(), Some(&b"stays"[..]));
    assert!(matches!(db.lease_keep_alive(lease), Err(TxnError::LeaseNotFound(_))));
    assert!(matches!(db.put_with_lease("l/x", "v", lease), Err(TxnError::LeaseNotFound(_))));
}

#[test]
fn lease_revoke_and_recovery_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let a = db.lease_grant(Duration::from_secs(60)).unwrap();
    let b = db.lease_grant(Duration::from_millis(1500)).unwrap();
    assert_ne!(a, b);
    db.put_with_lease("ka", "1", a).unwrap();
    db.put_with_lease("kb", "1", b).unwrap();
    let rev = db.lease_revoke(a).unwrap();
    assert_eq!(db.get("ka").unwrap(), None);
    assert_eq!(db.history("ka").unwrap()[0].revision, rev);
    assert!(matches!(db.lease_revoke(a), Err(TxnError::LeaseNotFound(_))));
    // A lease granted before a restart still expires after it.
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    let deadline = Instant::now() + T;
    while db.get("kb").unwrap().is_some() {
        assert!(Instant::now() < deadline, "lease b never expired after reopen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = db.lease_grant(Duration::from_secs(1)).unwrap();
    assert!(c > b, "ids are not reused");
}

#[test]
fn compare_and_swap_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    // Create if absent.
    let create = || db.txn().when(Compare::version("cfg", Cmp::Equal, 0)).then(Op::put("cfg", "v1")).otherwise(Op::get("cfg")).commit();
    let out = create().unwrap();
    assert!(out.succeeded);
    let out = create().unwrap();
    assert!(!out.succeeded);
    match &out.results[0] {
        OpResult::Get(Some(kv)) => assert_eq!(kv.value, b"v1"),
        other => panic!("{other:?}"),
    }
    // Compare on value and mod revision.
    let kv = db.get_kv("cfg").unwrap().unwrap();
    let out = db
        .txn()
        .when(Compare::value("cfg", Cmp::Equal, "v1"))
        .when(Compare::mod_revision("cfg", Cmp::Equal, kv.mod_revision))
        .then(Op::put("cfg", "v2"))
        .then(Op::delete("other"))
        .commit()
        .unwrap();
    assert!(out.succeeded);
    assert!(matches!(&out.results[0], OpResult::Put { prev: Some(p) } if p.value == b"v1"));
    assert!(matches!(&out.results[1], OpResult::Delete { prev: None }));
    assert_eq!(db.get_kv("cfg").unwrap().unwrap().mod_revision, out.revision);
    let stale = db.txn().when(Compare::mod_revision("cfg", Cmp::Equal, kv.mod_revision)).then(Op::put("cfg", "lost")).commit().unwrap();
    assert!(!stale.succeeded);
    assert_eq!(db.get("cfg").unwrap().as_deref(), Some(&b"v2"[..]));
    // Lease compare; a key written twice is refused.
    let l = db.lease_grant(Duration::from_secs(60)).unwrap();
    db.put_with_lease("leased", "x", l).unwrap();
    assert!(db.txn().when(Compare::lease("leased", Cmp::Equal, Some(l))).commit().unwrap().succeeded);
    assert!(matches!(db.txn().then(Op::put("d", "1")).then(Op::put("d", "2")).commit(), Err(TxnError::Invalid(_))));
}

/// Concurrent CAS increments: exactly one winner per version, no lost update.
#[test]
fn cas_counter_has_no_lost_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("n", "0").unwrap();
    let per = 40;
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < per {
                    let kv = db.get_kv("n").unwrap().unwrap();
                    let n: u64 = String::from_utf8_lossy(&kv.value).parse().unwrap();
                    let out = db
                        .txn()
                        .when(Compare::mod_revision("n", Cmp::Equal, kv.mod_revision))
                        .then(Op::put("n", (n + 1).to_string()))
                        .commit()
                        .unwrap();
                    done += usize::from(out.succeeded);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(db.get("n").unwrap().as_deref(), Some(format!("{}", 4 * per).as_bytes()));
}

#[test]
fn abandoned_locks_are_resolved_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let opts = strata::Options::default().txn(strata::TxnOptions { lock_ttl: Duration::from_millis(200), ..Default::default() });
    let db = Db::open_with(dir.path(), opts).unwrap();
    let mut tx = db.begin().unwrap();
    tx.put("x", "1").unwrap();
    tx.put("y", "1").unwrap();
    tx.abandon_after_primary_commit().unwrap();
    // Nobody reads x or y: the maintenance thread still commits the secondary.
    let deadline = Instant::now() + T;
    loop {
        let locks = db.raw().prefix(b"l").count();
        if locks == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{locks} locks left");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(db.get("y").unwrap().as_deref(), Some(&b"1"[..]));
}
