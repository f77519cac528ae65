//! Unit tests of the commands, one behaviour each, after TiKV's `txn/actions/*` tests.
use super::*;
use crate::mvcc::error::ReadError;
use crate::mvcc::read::{get, scan};
use crate::mvcc::reader::MemStore;
use alloc::vec;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn ok(store: &mut MemStore, r: Result<Batch, MvccError>) {
    store.apply(&r.expect("command succeeds"));
    store.check_invariants();
}

fn put(store: &mut MemStore, key: &str, value: &[u8], start: u64, commit_at: u64) {
    let req =
        PrewriteRequest::new(k(key), Ts(start), 100).with(Mutation::Put(k(key), value.to_vec()));
    let b = prewrite(store, &req);
    ok(store, b);
    let b = commit(store, &[k(key)], Ts(start), Ts(commit_at));
    ok(store, b);
}

fn prewrite_put(store: &mut MemStore, key: &str, value: &[u8], primary: &str, start: u64) {
    let req = PrewriteRequest::new(k(primary), Ts(start), 100)
        .with(Mutation::Put(k(key), value.to_vec()));
    let b = prewrite(store, &req);
    ok(store, b);
}

fn status(
    store: &MemStore,
    primary: &str,
    start: u64,
    caller: Option<u64>,
    now_ms: u64,
) -> (TxnStatus, Batch) {
    let req = CheckTxnStatus {
        primary: k(primary),
        lock_ts: Ts(start),
        caller_start_ts: caller.map(Ts),
        now_ms,
        rollback_if_not_exist: true,
    };
    check_txn_status(store, &req).expect("status")
}

#[test]
fn prewrite_then_commit_makes_the_value_visible_at_commit_ts() {
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 20);
    assert_eq!(get(&s, b"a", Ts(19)).unwrap(), None);
    assert_eq!(get(&s, b"a", Ts(20)).unwrap(), Some(b"1".to_vec()));
    assert_eq!(get(&s, b"a", Ts::MAX).unwrap(), Some(b"1".to_vec()));
}

#[test]
fn long_values_go_to_the_default_cf_short_ones_are_inlined() {
    let mut s = MemStore::new();
    let long = vec![7u8; SHORT_VALUE_MAX_LEN + 1];
    let short = vec![8u8; SHORT_VALUE_MAX_LEN];
    put(&mut s, "long", &long, 10, 11);
    put(&mut s, "short", &short, 12, 13);
    assert!(s.value(b"long", Ts(10)).unwrap().is_some());
    assert!(s.value(b"short", Ts(12)).unwrap().is_none());
    assert_eq!(get(&s, b"long", Ts(20)).unwrap(), Some(long));
    assert_eq!(get(&s, b"short", Ts(20)).unwrap(), Some(short));
}

#[test]
fn prewrite_write_conflict_when_a_newer_commit_exists() {
    // TiKV `test_write_conflict`: first committer wins.
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 20);
    let req = PrewriteRequest::new(k("a"), Ts(15), 100).with(Mutation::Put(k("a"), b"2".to_vec()));
    match prewrite(&s, &req) {
        Err(e @ MvccError::WriteConflict { .. }) => {
            assert!(e.is_retryable());
            assert_eq!(
                e,
                MvccError::WriteConflict {
                    key: k("a"),
                    start_ts: Ts(15),
                    conflict_start_ts: Ts(10),
                    conflict_commit_ts: Ts(20),
                    reason: ConflictReason::Optimistic,
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // A transaction that started after the commit is fine.
    let req = PrewriteRequest::new(k("a"), Ts(25), 100).with(Mutation::Put(k("a"), b"2".to_vec()));
    assert!(prewrite(&s, &req).is_ok());
}

#[test]
fn prewrite_key_is_locked_by_another_transaction() {
    let mut s = MemStore::new();
    prewrite_put(&mut s, "a", b"1", "a", 10);
    let req = PrewriteRequest::new(k("a"), Ts(12), 100).with(Mutation::Put(k("a"), b"2".to_vec()));
    match prewrite(&s, &req) {
        Err(MvccError::KeyIsLocked(info)) => {
            assert_eq!(info.key, k("a"));
            assert_eq!(info.lock.start_ts, Ts(10));
            assert_eq!(info.lock.primary, k("a"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn prewrite_is_idempotent_and_atomic() {
    let mut s = MemStore::new();
    prewrite_put(&mut s, "a", b"1", "a", 10);
    let again =
        PrewriteRequest::new(k("a"), Ts(10), 100).with(Mutation::Put(k("a"), b"1".to_vec()));
    assert!(prewrite(&s, &again).unwrap().is_empty());
    // One locked key fails the whole request: no batch, nothing written.
    let req = PrewriteRequest::new(k("b"), Ts(12), 100)
        .with(Mutation::Put(k("b"), b"2".to_vec()))
        .with(Mutation::Put(k("a"), b"2".to_vec()));
    assert!(matches!(prewrite(&s, &req), Err(MvccError::KeyIsLocked(_))));
    let dup = PrewriteRequest::new(k("b"), Ts(12), 100)
        .with(Mutation::Delete(k("b")))
        .with(Mutation::Lock(k("b")));
    assert!(matches!(
        prewrite(&s, &dup),
        Err(MvccError::InvalidRequest(_))
    ));
}

#[test]
fn prewrite_after_commit_is_skipped() {
    // A prewrite retried after the commit landed must not lock the key again.
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 20);
    let req = PrewriteRequest::new(k("a"), Ts(10), 100).with(Mutation::Put(k("a"), b"1".to_vec()));
    assert!(prewrite(&s, &req).unwrap().is_empty());
}

#[test]
fn insert_fails_over_a_live_value_and_succeeds_after_a_delete() {
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 11);
    let ins = |ts| {
        PrewriteRequest::new(k("a"), Ts(ts), 100).with(Mutation::Insert(k("a"), b"2".to_vec()))
    };
    assert_eq!(
        prewrite(&s, &ins(12)),
        Err(MvccError::AlreadyExists { key: k("a") })
    );
    let del = PrewriteRequest::new(k("a"), Ts(13), 100).with(Mutation::Delete(k("a")));
    let b = one_pc(&s, &del, Ts(14));
    ok(&mut s, b);
    assert!(prewrite(&s, &ins(15)).is_ok());
}

#[test]
fn commit_is_idempotent() {
    // TiKV `test_commit_ok` then a repeated commit: Ok, nothing written.
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 20);
    assert!(commit(&s, &[k("a")], Ts(10), Ts(20)).unwrap().is_empty());
}

#[test]
fn commit_of_a_rolled_back_transaction_fails_with_txn_lock_not_found() {
    // TiKV `test_commit_err`: the lock is gone and the record is a rollback.
    let mut s = MemStore::new();
    prewrite_put(&mut s, "a", b"1", "a", 10);
    let b = rollback(&s, &[k("a")], Ts(10));
    ok(&mut s, b);
    assert_eq!(
        commit(&s, &[k("a")], Ts(10), Ts(20)),
        Err(MvccError::TxnLockNotFound {
            key: k("a"),
            start_ts: Ts(10),
            commit_ts: Ts(20)
        })
    );
    // Never prewritten at all: the same.
    assert!(matches!(
        commit(&s, &[k("z")], Ts(10), Ts(20)),
        Err(MvccError::TxnLockNotFound { .. })
    ));
    assert!(matches!(
        commit(&s, &[k("a")], Ts(10), Ts(10)),
        Err(MvccError::InvalidRequest(_))
    ));
}

#[test]
fn rollback_record_protects_against_a_late_prewrite() {
    // TiKV `test_rollback_lock` / protected rollback: prewrite arriving after cleanup fails.
    let mut s = MemStore::new();
    let b = rollback(&s, &[k("a")], Ts(10));
    ok(&mut s, b);
    let req = PrewriteRequest::new(k("a"), Ts(10), 100).with(Mutation::Put(k("a"), b"1".to_vec()));
    match prewrite(&s, &req) {
        Err(MvccError::WriteConflict {
            reason: ConflictReason::SelfRolledBack,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Rolling back again is a no-op.
    assert!(rollback(&s, &[k("a")], Ts(10)).unwrap().is_empty());
}

#[test]
fn rollback_removes_the_lock_and_long_value_and_fails_on_a_committed_txn() {
    let mut s = MemStore::new();
    prewrite_put(&mut s, "a", &[1; 300], "a", 10);
    let b = rollback(&s, &[k("a")], Ts(10));
    ok(&mut s, b);
    assert!(s.lock(b"a").unwrap().is_none());
    assert!(s.value(b"a", Ts(10)).unwrap().is_none());
    put(&mut s, "b", b"1", 20, 21);
    assert_eq!(
        rollback(&s, &[k("b")], Ts(20)),
        Err(MvccError::Committed {
            key: k("b"),
            start_ts: Ts(20),
            commit_ts: Ts(21)
        })
    );
}

#[test]
fn rollback_overlapping_a_commit_sets_the_flag_and_keeps_the_value() {
    // TiKV `test_overlapped_rollback`: txn 10 committed at 30; txn 30 is rolled back on the key.
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 30);
    let b = rollback(&s, &[k("a")], Ts(30));
    ok(&mut s, b);
    assert_eq!(get(&s, b"a", Ts(30)).unwrap(), Some(b"1".to_vec()));
    let (_, w) = s.seek_write(b"a", Ts(30)).unwrap().unwrap();
    assert!(w.overlapped_rollback && w.start_ts == Ts(10));
    assert_eq!(txn_record(&s, b"a", Ts(30)).unwrap(), TxnRecord::RolledBack);
    let late = PrewriteRequest::new(k("a"), Ts(30), 100).with(Mutation::Put(k("a"), b"2".to_vec()));
    assert!(matches!(
        prewrite(&s, &late),
        Err(MvccError::WriteConflict {
            reason: ConflictReason::SelfRolledBack,
            ..
        })
    ));
}

#[test]
fn cleanup_only_rolls_back_expired_locks() {
    let mut s = MemStore::new();
    let start = Ts::compose(1_000, 0);
    let req = PrewriteRequest::new(k("a"), start, 100).with(Mutation::Put(k("a"), b"1".to_vec()));
    let b = prewrite(&s, &req);
    ok(&mut s, b);
    assert!(matches!(
        cleanup(&s, b"a", start, 1_099),
        Err(MvccError::KeyIsLocked(_))
    ));
    let b = cleanup(&s, b"a", start, 1_100);
    ok(&mut s, b);
    assert_eq!(txn_record(&s, b"a", start).unwrap(), TxnRecord::RolledBack);
}

#[test]
fn check_txn_status_reports_every_state() {
    // TiKV `test_check_txn_status`.
    let mut s = MemStore::new();
    let start = Ts::compose(1_000, 0);
    let req = PrewriteRequest::new(k("p"), start, 100).with(Mutation::Put(k("p"), b"1".to_vec()));
    let b = prewrite(&s, &req);
    ok(&mut s, b);
    let (st, b) = status(&s, "p", start.0, None, 1_050);
    assert!(matches!(st, TxnStatus::Locked { .. }) && b.is_empty());
    let (st, b) = status(&s, "p", start.0, None, 1_100);
    assert_eq!(st, TxnStatus::TtlExpired);
    s.apply(&b);
    assert_eq!(
        status(&s, "p", start.0, None, 1_100).0,
        TxnStatus::RolledBack
    );
    put(&mut s, "q", b"1", 50, 60);
    assert_eq!(
        status(&s, "q", 50, None, 0).0,
        TxnStatus::Committed { commit_ts: Ts(60) }
    );
    let (st, b) = status(&s, "r", 70, None, 0);
    assert_eq!(st, TxnStatus::LockNotExistRollback);
    s.apply(&b);
    assert_eq!(txn_record(&s, b"r", Ts(70)).unwrap(), TxnRecord::RolledBack);
    let strict = CheckTxnStatus {
        primary: k("x"),
        lock_ts: Ts(5),
        caller_start_ts: None,
        now_ms: 0,
        rollback_if_not_exist: false,
    };
    assert_eq!(
        check_txn_status(&s, &strict),
        Err(MvccError::TxnNotFound {
            key: k("x"),
            start_ts: Ts(5)
        })
    );
}

#[test]
fn check_txn_status_pushes_min_commit_ts_so_the_reader_can_pass() {
    // TiKV pushes the primary's min_commit_ts past the caller; the reader then ignores the lock
    // and the writer must commit above it.
    let mut s = MemStore::new();
    put(&mut s, "p", b"old", 5, 6);
    prewrite_put(&mut s, "p", b"new", "p", 10);
    assert!(matches!(
        get(&s, b"p", Ts(20)),
        Err(MvccError::KeyIsLocked(_))
    ));
    let (st, b) = status(&s, "p", 10, Some(20), 0);
    let TxnStatus::Locked { lock } = st else {
        panic!("{st:?}")
    };
    assert_eq!(lock.min_commit_ts, Ts(21));
    s.apply(&b);
    assert_eq!(get(&s, b"p", Ts(20)).unwrap(), Some(b"old".to_vec()));
    let e = commit(&s, &[k("p")], Ts(10), Ts(15)).unwrap_err();
    assert!(
        matches!(
            e,
            MvccError::CommitTsExpired {
                min_commit_ts: Ts(21),
                ..
            }
        ) && e.is_retryable()
    );
    let b = commit(&s, &[k("p")], Ts(10), Ts(22));
    ok(&mut s, b);
    assert_eq!(get(&s, b"p", Ts(20)).unwrap(), Some(b"old".to_vec()));
    assert_eq!(get(&s, b"p", Ts(22)).unwrap(), Some(b"new".to_vec()));
}

#[test]
fn resolve_lock_commits_or_rolls_back_secondaries() {
    let mut s = MemStore::new();
    let req = PrewriteRequest::new(k("p"), Ts(10), 100)
        .with(Mutation::Put(k("p"), b"1".to_vec()))
        .with(Mutation::Put(k("s1"), b"2".to_vec()))
        .with(Mutation::Delete(k("s2")));
    let b = prewrite(&s, &req);
    ok(&mut s, b);
    let b = commit(&s, &[k("p")], Ts(10), Ts(11));
    ok(&mut s, b);
    // A reader meets the secondary's lock, learns the primary committed, resolves.
    let Err(MvccError::KeyIsLocked(info)) = get(&s, b"s1", Ts(12)) else {
        panic!()
    };
    let (st, _) = status(&s, "p", info.lock.start_ts.0, Some(12), 0);
    let locks: Vec<_> = s
        .scan_locks(b"", None, 10)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(locks, [k("s1"), k("s2")]);
    let b = resolve_lock(&s, &locks, Ts(10), st.commit_ts().unwrap());
    ok(&mut s, b);
    assert_eq!(get(&s, b"s1", Ts(12)).unwrap(), Some(b"2".to_vec()));
    // Rolling back: the locks go and rollback records protect the keys.
    prewrite_put(&mut s, "s1", b"3", "p", 20);
    let b = resolve_lock(&s, &[k("s1")], Ts(20), None);
    ok(&mut s, b);
    assert_eq!(get(&s, b"s1", Ts(30)).unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        txn_record(&s, b"s1", Ts(20)).unwrap(),
        TxnRecord::RolledBack
    );
}

#[test]
fn heartbeat_extends_the_ttl_only_upwards() {
    let mut s = MemStore::new();
    prewrite_put(&mut s, "p", b"1", "p", 10);
    let (ttl, b) = txn_heartbeat(&s, b"p", Ts(10), 50).unwrap();
    assert!(ttl == 100 && b.is_empty());
    let (ttl, b) = txn_heartbeat(&s, b"p", Ts(10), 500).unwrap();
    s.apply(&b);
    assert_eq!((ttl, s.lock(b"p").unwrap().unwrap().ttl_ms), (500, 500));
    assert!(matches!(
        txn_heartbeat(&s, b"p", Ts(11), 500),
        Err(MvccError::TxnNotFound { .. })
    ));
}

#[test]
fn one_pc_writes_commit_records_directly_and_checks_conflicts() {
    let mut s = MemStore::new();
    let req = PrewriteRequest::new(k("a"), Ts(10), 100)
        .with(Mutation::Put(k("a"), b"1".to_vec()))
        .with(Mutation::Put(k("b"), vec![9; 400]));
    let b = one_pc(&s, &req, Ts(11));
    ok(&mut s, b);
    assert!(s.scan_locks(b"", None, 10).unwrap().is_empty());
    assert_eq!(
        scan(&s, b"", None, Ts(11), 10).unwrap(),
        [(k("a"), k("1")), (k("b"), vec![9; 400])]
    );
    let stale = PrewriteRequest::new(k("a"), Ts(9), 100).with(Mutation::Delete(k("a")));
    assert!(matches!(
        one_pc(&s, &stale, Ts(12)),
        Err(MvccError::WriteConflict { .. })
    ));
    prewrite_put(&mut s, "c", b"1", "c", 20);
    let locked = PrewriteRequest::new(k("c"), Ts(21), 100).with(Mutation::Delete(k("c")));
    assert!(matches!(
        one_pc(&s, &locked, Ts(22)),
        Err(MvccError::KeyIsLocked(_))
    ));
}

#[test]
fn reads_ignore_younger_lock_only_and_pushed_locks_and_skip_rollbacks() {
    let mut s = MemStore::new();
    put(&mut s, "a", b"1", 10, 11);
    let b = rollback(&s, &[k("a")], Ts(12));
    ok(&mut s, b);
    let lock_only = PrewriteRequest::new(k("a"), Ts(13), 100).with(Mutation::Lock(k("a")));
    let b = prewrite(&s, &lock_only);
    ok(&mut s, b);
    assert_eq!(get(&s, b"a", Ts(20)).unwrap(), Some(b"1".to_vec()));
    let b = commit(&s, &[k("a")], Ts(13), Ts(14));
    ok(&mut s, b);
    assert_eq!(get(&s, b"a", Ts(20)).unwrap(), Some(b"1".to_vec()));
    prewrite_put(&mut s, "a", b"2", "a", 30);
    assert_eq!(get(&s, b"a", Ts(29)).unwrap(), Some(b"1".to_vec()));
    assert!(matches!(
        get(&s, b"a", Ts(31)),
        Err(MvccError::KeyIsLocked(_))
    ));
    assert!(matches!(
        scan(&s, b"", None, Ts(31), 10),
        Err(MvccError::KeyIsLocked(_))
    ));
}

#[test]
fn scan_respects_bounds_limit_and_deletes() {
    let mut s = MemStore::new();
    for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
        put(
            &mut s,
            key,
            key.as_bytes(),
            10 + 2 * i as u64,
            11 + 2 * i as u64,
        );
    }
    let del = PrewriteRequest::new(k("b"), Ts(30), 100).with(Mutation::Delete(k("b")));
    let b = one_pc(&s, &del, Ts(31));
    ok(&mut s, b);
    let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(scan(&s, b"", None, Ts(40), 10).unwrap()),
        [k("a"), k("c"), k("d")]
    );
    assert_eq!(
        keys(scan(&s, b"", None, Ts(20), 10).unwrap()),
        [k("a"), k("b"), k("c"), k("d")]
    );
    assert_eq!(
        keys(scan(&s, b"b", Some(b"d"), Ts(40), 10).unwrap()),
        [k("c")]
    );
    assert_eq!(
        keys(scan(&s, b"", None, Ts(40), 2).unwrap()),
        [k("a"), k("c")]
    );
}

#[test]
fn gc_keeps_the_newest_version_visible_at_the_safe_point() {
    // TiKV `test_gc`: versions below the newest put at the safe point go, with their values.
    let mut s = MemStore::new();
    put(&mut s, "a", &[1; 300], 10, 11);
    put(&mut s, "a", b"2", 20, 21);
    let b = rollback(&s, &[k("a")], Ts(25));
    ok(&mut s, b);
    put(&mut s, "a", b"3", 30, 31);
    put(&mut s, "b", b"1", 10, 11);
    let del = PrewriteRequest::new(k("b"), Ts(20), 100).with(Mutation::Delete(k("b")));
    let b = one_pc(&s, &del, Ts(21));
    ok(&mut s, b);
    let before: Vec<_> = [Ts(26), Ts(31), Ts(40)]
        .iter()
        .map(|&t| (get(&s, b"a", t).unwrap(), get(&s, b"b", t).unwrap()))
        .collect();
    let out = gc(&s, b"", None, Ts(26), 10).unwrap();
    assert_eq!(out.resume_from, None);
    ok(&mut s, Ok(out.batch));
    let after: Vec<_> = [Ts(26), Ts(31), Ts(40)]
        .iter()
        .map(|&t| (get(&s, b"a", t).unwrap(), get(&s, b"b", t).unwrap()))
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        get(&s, b"a", Ts(15)).unwrap(),
        None,
        "the old version is gone"
    );
    assert!(s.value(b"a", Ts(10)).unwrap().is_none());
    // Left: a@31, a@21; nothing of b.
    assert_eq!(s.len(), 2);
}

#[test]
fn gc_pages_through_keys() {
    let mut s = MemStore::new();
    for (i, key) in ["a", "b", "c"].iter().enumerate() {
        put(&mut s, key, b"1", 10 + 4 * i as u64, 11 + 4 * i as u64);
        put(&mut s, key, b"2", 12 + 4 * i as u64, 13 + 4 * i as u64);
    }
    let out = gc(&s, b"", None, Ts(100), 2).unwrap();
    assert_eq!(out.resume_from, Some(k("b\0")));
    ok(&mut s, Ok(out.batch));
    let out = gc(&s, b"b\0", None, Ts(100), 2).unwrap();
    assert_eq!(out.resume_from, None);
    ok(&mut s, Ok(out.batch));
    assert_eq!(s.len(), 3);
}

#[test]
fn corrupt_records_are_typed_errors() {
    let mut s = MemStore::new();
    let mut b = Batch::new();
    b.put(&crate::mvcc::codec::lock_key(b"a"), b"garbage");
    s.apply(&b);
    assert!(matches!(
        get(&s, b"a", Ts(5)),
        Err(MvccError::Read(ReadError::Corrupt { .. }))
    ));
    let mut b = Batch::new();
    b.put(
        &crate::mvcc::codec::write_key(b"b", Ts(5)),
        &Write::new(WriteKind::Put, Ts(4)).encode(),
    );
    s.apply(&b);
    assert!(matches!(
        get(&s, b"b", Ts(5)),
        Err(MvccError::Read(ReadError::Corrupt { .. }))
    ));
}
