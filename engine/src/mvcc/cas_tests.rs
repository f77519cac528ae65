//! Unit tests of etcd transactions over `MemStore`.
use super::*;
use crate::mvcc::lease::{self as leases, LeaseQueue};
use crate::mvcc::reader::MemStore;
use crate::mvcc::txn::{prewrite, Mutation, PrewriteRequest};
use alloc::vec;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn put_op(key: &str, v: &str) -> TxnOp {
    TxnOp::Put {
        key: k(key),
        value: k(v),
        lease: None,
    }
}

fn cmp(key: &str, op: CompareOp, target: CompareTarget) -> Compare {
    Compare {
        key: k(key),
        range_end: None,
        op,
        target,
    }
}

/// Runs `req` at `ts - 1` / `ts`, applies it, checks invariants.
fn run(s: &mut MemStore, req: &TxnRequest, ts: u64) -> TxnResponse {
    let (resp, b) = txn(s, req, Ts(ts - 1), Ts(ts)).expect("txn");
    s.apply(&b);
    s.check_invariants();
    leases::check_invariants(s);
    resp
}

fn put(s: &mut MemStore, key: &str, v: &str, ts: u64) -> Option<Kv> {
    let (prev, b) = super::put(s, key.as_bytes(), v.as_bytes(), None, Ts(ts - 1), Ts(ts)).unwrap();
    s.apply(&b);
    prev
}

fn value(res: &OpResult) -> Option<Vec<u8>> {
    match res {
        OpResult::Get(kv) => kv.as_ref().map(|kv| kv.value.clone()),
        _ => panic!("not a get: {res:?}"),
    }
}

#[test]
fn compare_and_swap_on_each_target() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    put(&mut s, "a", "2", 20);
    let cases = [
        (CompareTarget::Version(2), CompareOp::Equal, true),
        (CompareTarget::Version(3), CompareOp::Less, true),
        (CompareTarget::Version(1), CompareOp::Greater, true),
        (
            CompareTarget::CreateRevision(Ts(10)),
            CompareOp::Equal,
            true,
        ),
        (
            CompareTarget::ModRevision(Ts(20)),
            CompareOp::NotEqual,
            false,
        ),
        (CompareTarget::ModRevision(Ts(15)), CompareOp::Greater, true),
        (CompareTarget::Value(k("2")), CompareOp::Equal, true),
        (CompareTarget::Value(k("10")), CompareOp::Greater, true),
        (CompareTarget::Lease(None), CompareOp::Equal, true),
        (
            CompareTarget::Lease(Some(LeaseId(1))),
            CompareOp::Less,
            true,
        ),
    ];
    for (i, (target, op, expected)) in cases.into_iter().enumerate() {
        let req = TxnRequest {
            compares: vec![cmp("a", op, target.clone())],
            success: vec![TxnOp::Get { key: k("a") }],
            failure: vec![],
        };
        let (resp, b) = txn(&s, &req, Ts(30 + i as u64), Ts(31 + i as u64)).unwrap();
        assert_eq!(resp.succeeded, expected, "{target:?} {op:?}");
        assert!(b.is_empty());
        assert_eq!(
            resp.revision,
            Ts(30 + i as u64),
            "read-only: the read revision"
        );
    }
}

#[test]
fn missing_keys_compare_as_zero_but_never_by_value() {
    let s = MemStore::new();
    let t = |target, op| {
        let req = TxnRequest {
            compares: vec![cmp("x", op, target)],
            ..TxnRequest::default()
        };
        txn(&s, &req, Ts(1), Ts(2)).unwrap().0.succeeded
    };
    assert!(t(CompareTarget::Version(0), CompareOp::Equal));
    assert!(t(CompareTarget::CreateRevision(Ts::ZERO), CompareOp::Equal));
    assert!(t(CompareTarget::ModRevision(Ts(5)), CompareOp::Less));
    assert!(!t(CompareTarget::Value(vec![]), CompareOp::Equal));
    assert!(!t(CompareTarget::Value(vec![]), CompareOp::NotEqual));
}

#[test]
fn create_if_absent_then_else_branch() {
    let mut s = MemStore::new();
    let req = TxnRequest {
        compares: vec![cmp(
            "lock",
            CompareOp::Equal,
            CompareTarget::CreateRevision(Ts::ZERO),
        )],
        success: vec![put_op("lock", "me"), TxnOp::Get { key: k("lock") }],
        failure: vec![TxnOp::Get { key: k("lock") }],
    };
    let r1 = run(&mut s, &req, 10);
    assert!(r1.succeeded);
    assert_eq!(r1.revision, Ts(10));
    assert_eq!(r1.results[0], OpResult::Put { prev: None });
    // Read-your-own-writes: the get sees the put at revision 10.
    match &r1.results[1] {
        OpResult::Get(Some(kv)) => assert_eq!(
            (kv.mod_revision, kv.version, kv.create_revision),
            (Ts(10), 1, Ts(10))
        ),
        r => panic!("{r:?}"),
    }
    let r2 = run(&mut s, &req, 20);
    assert!(!r2.succeeded);
    assert_eq!(value(&r2.results[0]), Some(k("me")));
    assert_eq!(r2.revision, Ts(19));
}

#[test]
fn range_compares_and_delete_range() {
    let mut s = MemStore::new();
    for (i, key) in ["p/a", "p/b", "p/c", "q"].iter().enumerate() {
        put(&mut s, key, "v", 10 + i as u64);
    }
    let in_p = |op, target| Compare {
        key: k("p/"),
        range_end: Some(k("p0")),
        op,
        target,
    };
    let req = TxnRequest {
        compares: vec![in_p(CompareOp::Equal, CompareTarget::Version(1))],
        success: vec![
            TxnOp::DeleteRange {
                from: k("p/"),
                upper: Some(k("p0")),
            },
            put_op("p/b", "again"),
            TxnOp::Range {
                from: k("p/"),
                upper: Some(k("p0")),
                limit: 10,
            },
            TxnOp::Delete { key: k("nothing") },
        ],
        failure: vec![],
    };
    let err = txn(&s, &req, Ts(19), Ts(20)).unwrap_err();
    assert_eq!(
        err,
        EtcdError::InvalidRequest("a key is written twice in one transaction")
    );
    let mut req = req;
    req.success.remove(1);
    let resp = run(&mut s, &req, 20);
    assert!(resp.succeeded);
    match &resp.results[0] {
        OpResult::Delete { deleted } => assert_eq!(deleted.len(), 3),
        r => panic!("{r:?}"),
    }
    assert_eq!(resp.results[1], OpResult::Range(vec![]));
    assert_eq!(resp.results[2], OpResult::Delete { deleted: vec![] });
    assert_eq!(
        revision::range_at(&s, b"", None, Ts(20), 10).unwrap().len(),
        1
    );
    // An empty range compares as a missing key.
    let req = TxnRequest {
        compares: vec![in_p(CompareOp::Equal, CompareTarget::Version(0))],
        ..TxnRequest::default()
    };
    assert!(txn(&s, &req, Ts(20), Ts(21)).unwrap().0.succeeded);
}

#[test]
fn ranges_merge_own_writes_with_the_store_and_respect_the_limit() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    put(&mut s, "c", "1", 11);
    let req = TxnRequest {
        success: vec![
            put_op("b", "2"),
            TxnOp::Delete { key: k("a") },
            TxnOp::Range {
                from: k(""),
                upper: None,
                limit: 2,
            },
            TxnOp::Range {
                from: k(""),
                upper: None,
                limit: 1,
            },
        ],
        ..TxnRequest::default()
    };
    let resp = run(&mut s, &req, 20);
    let keys = |r: &OpResult| match r {
        OpResult::Range(kvs) => kvs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        r => panic!("{r:?}"),
    };
    assert_eq!(keys(&resp.results[2]), vec![k("b"), k("c")]);
    assert_eq!(keys(&resp.results[3]), vec![k("b")]);
}

#[test]
fn a_change_after_the_read_ts_is_a_conflict() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    let req = TxnRequest {
        compares: vec![cmp("a", CompareOp::Equal, CompareTarget::Value(k("1")))],
        success: vec![put_op("b", "x")],
        failure: vec![],
    };
    // Compared at 5, but `a` changed at 10: the answer would be stale.
    match txn(&s, &req, Ts(5), Ts(20)) {
        Err(e @ EtcdError::Mvcc(MvccError::WriteConflict { .. })) => assert!(e.is_retryable()),
        r => panic!("{r:?}"),
    }
    // Ranges are checked key by key too.
    let req = TxnRequest {
        success: vec![TxnOp::Range {
            from: k(""),
            upper: None,
            limit: 5,
        }],
        ..TxnRequest::default()
    };
    assert!(matches!(
        txn(&s, &req, Ts(5), Ts(20)),
        Err(EtcdError::Mvcc(MvccError::WriteConflict { .. }))
    ));
    // A stale commit ts is refused.
    assert!(matches!(
        txn(
            &s,
            &TxnRequest {
                success: vec![put_op("a", "2")],
                ..TxnRequest::default()
            },
            Ts(9),
            Ts(10)
        ),
        Err(EtcdError::Mvcc(_) | EtcdError::InvalidRequest(_))
    ));
    assert_eq!(
        txn(&s, &req, Ts(10), Ts(10)).unwrap_err(),
        EtcdError::InvalidRequest("commit ts must be above read ts")
    );
}

#[test]
fn percolator_locks_block_writes_and_reads_that_may_see_them() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    let req = PrewriteRequest::new(k("a"), Ts(15), 100).with(Mutation::Put(k("a"), k("2")));
    s.apply(&prewrite(&s, &req).unwrap());
    let get = TxnRequest {
        success: vec![TxnOp::Get { key: k("a") }],
        ..TxnRequest::default()
    };
    assert!(
        txn(&s, &get, Ts(14), Ts(30)).is_ok(),
        "the lock started above the read"
    );
    assert!(matches!(
        txn(&s, &get, Ts(20), Ts(30)),
        Err(EtcdError::Mvcc(MvccError::KeyIsLocked(_)))
    ));
    let w = TxnRequest {
        success: vec![put_op("a", "3")],
        ..TxnRequest::default()
    };
    assert!(matches!(
        txn(&s, &w, Ts(14), Ts(30)),
        Err(EtcdError::Mvcc(MvccError::KeyIsLocked(_)))
    ));
}

#[test]
fn compacted_read_ts_fails() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    s.apply(&revision::compact(&s, Ts(10), Ts(10)).unwrap());
    let get = TxnRequest {
        success: vec![TxnOp::Get { key: k("a") }],
        ..TxnRequest::default()
    };
    assert_eq!(
        txn(&s, &get, Ts(9), Ts(11)).unwrap_err(),
        EtcdError::Compacted {
            requested: Ts(9),
            compacted: Ts(10)
        }
    );
}

#[test]
fn long_values_and_leases_through_puts() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let (l, b) = leases::grant(&s, q.next_id(), 1000, 0).unwrap();
    s.apply(&b);
    q.apply(&leases::LeaseChange::Upsert(l));
    let long = vec![3u8; 1000];
    let (_, b) = super::put(&s, b"a", &long, Some(l.id), Ts(9), Ts(10)).unwrap();
    s.apply(&b);
    s.check_invariants();
    leases::check_invariants(&s);
    let kv = revision::get_at(&s, b"a", Ts(10)).unwrap().unwrap();
    assert_eq!((kv.value, kv.lease), (long, Some(l.id)));
    assert_eq!(leases::keys(&s, l.id).unwrap(), vec![k("a")]);
    // Re-put without the lease: detached.
    put(&mut s, "a", "short", 20);
    leases::check_invariants(&s);
    assert!(leases::keys(&s, l.id).unwrap().is_empty());
    assert_eq!(
        s.raw_get(&leases::attachment_key(l.id, b"a")).unwrap(),
        None
    );
    assert_eq!(
        super::put(&s, b"b", b"v", Some(LeaseId(77)), Ts(20), Ts(21)).unwrap_err(),
        EtcdError::LeaseNotFound(LeaseId(77))
    );
}
