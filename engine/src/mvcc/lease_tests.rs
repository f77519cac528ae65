//! Unit tests of leases over `MemStore`.
use super::*;
use crate::mvcc::cas;
use crate::mvcc::reader::MemStore;
use crate::mvcc::txn::{one_pc, prewrite, Mutation, PrewriteRequest};
use alloc::vec;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn ok<T>(s: &mut MemStore, r: Result<(T, Batch), EtcdError>) -> T {
    let (out, b) = r.expect("command succeeds");
    s.apply(&b);
    s.check_invariants();
    check_invariants(s);
    out
}

fn put(s: &mut MemStore, key: &str, lease: Option<LeaseId>, ts: u64) {
    ok(
        s,
        cas::put(s, key.as_bytes(), b"v", lease, Ts(ts - 1), Ts(ts)),
    );
}

fn grant_one(s: &mut MemStore, q: &mut LeaseQueue, ttl_ms: u64, now_ms: u64) -> LeaseId {
    let l = ok(s, grant(s, q.next_id(), ttl_ms, now_ms));
    q.apply(&LeaseChange::Upsert(l));
    l.id
}

#[test]
fn grant_keep_alive_and_the_queue() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let a = grant_one(&mut s, &mut q, 100, 1_000);
    let b = grant_one(&mut s, &mut q, 50, 1_000);
    assert_eq!((a, b), (LeaseId(1), LeaseId(2)));
    assert_eq!(q.next_deadline(), Some(1_050));
    assert_eq!(q.due(1_049), vec![]);
    assert_eq!(q.due(1_100), vec![b, a]);
    let l = {
        let r = keep_alive(&s, b, 1_040);
        ok(&mut s, r)
    };
    assert_eq!(l.expires_at_ms, 1_090);
    q.apply(&LeaseChange::Upsert(l));
    assert_eq!(q.due(1_095), vec![b]);
    assert_eq!(q.next_deadline(), Some(1_090));
    assert_eq!(
        keep_alive(&s, b, 1_090).unwrap_err(),
        EtcdError::LeaseExpired(b)
    );
    assert_eq!(
        keep_alive(&s, LeaseId(9), 0).unwrap_err(),
        EtcdError::LeaseNotFound(LeaseId(9))
    );
    assert_eq!(grant(&s, a, 10, 0).unwrap_err(), EtcdError::LeaseExists(a));
    assert!(matches!(
        grant(&s, LeaseId(0), 10, 0),
        Err(EtcdError::InvalidRequest(_))
    ));
    assert!(matches!(
        grant(&s, LeaseId(5), 0, 0),
        Err(EtcdError::InvalidRequest(_))
    ));
    // Recovery rebuilds the same queue from the table.
    let r = LeaseQueue::recover(&s).unwrap();
    assert_eq!(
        (r.next_deadline(), r.due(u64::MAX), r.next_id()),
        (q.next_deadline(), q.due(u64::MAX), q.next_id())
    );
}

#[test]
fn expiry_deletes_all_the_keys_at_one_revision() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let id = grant_one(&mut s, &mut q, 100, 0);
    let other = grant_one(&mut s, &mut q, 1_000, 0);
    put(&mut s, "a", Some(id), 10);
    put(&mut s, "b", Some(id), 11);
    put(&mut s, "c", Some(other), 12);
    put(&mut s, "d", None, 13);
    assert_eq!(q.due(100), vec![id]);
    // Decided at 100, applied: the keys vanish at revision 20.
    let out = {
        let r = expire(&s, id, 100, Ts(20));
        ok(&mut s, r)
    };
    let Expiry::Expired(rev) = out else {
        panic!("{out:?}")
    };
    assert_eq!(rev.revision, Ts(20));
    assert_eq!(
        rev.deleted
            .iter()
            .map(|kv| kv.key.clone())
            .collect::<Vec<_>>(),
        vec![k("a"), k("b")]
    );
    q.apply(&rev.change);
    assert_eq!(q.due(100), vec![]);
    for key in ["a", "b"] {
        let h = crate::mvcc::revision::history(&s, key.as_bytes(), Ts::MAX, 5).unwrap();
        assert_eq!((h[0].revision, h[0].kv.is_none()), (Ts(20), true));
    }
    assert!(crate::mvcc::revision::get_at(&s, b"c", Ts(20))
        .unwrap()
        .is_some());
    assert!(lease(&s, id).unwrap().is_none());
    assert!(s
        .raw_scan(
            &attachment_prefix(id),
            &attachment_prefix(LeaseId(id.0 + 1)),
            10
        )
        .unwrap()
        .is_empty());
    // Applying the same expiry again is a no-op.
    assert_eq!(
        expire(&s, id, 100, Ts(21)).unwrap(),
        (Expiry::Gone, Batch::new())
    );
}

#[test]
fn a_keep_alive_that_wins_the_race_cancels_the_expiry() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let id = grant_one(&mut s, &mut q, 100, 0);
    put(&mut s, "a", Some(id), 10);
    let l = {
        let r = keep_alive(&s, id, 90);
        ok(&mut s, r)
    };
    // The leader decided expiry at 100 from a stale view; the replica applies at 100.
    let (out, b) = expire(&s, id, 100, Ts(20)).unwrap();
    assert_eq!(out, Expiry::NotDue(l));
    assert!(b.is_empty());
}

#[test]
fn keys_rewritten_without_the_lease_survive_it() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let id = grant_one(&mut s, &mut q, 100, 0);
    put(&mut s, "a", Some(id), 10);
    put(&mut s, "b", Some(id), 11);
    // A Percolator one-phase commit overwrites `a` (it knows nothing of leases).
    let req = PrewriteRequest::new(k("a"), Ts(14), 100).with(Mutation::Put(k("a"), k("txn")));
    s.apply(&one_pc(&s, &req, Ts(15)).unwrap());
    assert_eq!(keys(&s, id).unwrap(), vec![k("b")]);
    let rev = {
        let r = revoke(&s, id, Ts(20));
        ok(&mut s, r)
    };
    assert_eq!(rev.deleted.len(), 1);
    assert_eq!(
        crate::mvcc::read::get(&s, b"a", Ts::MAX).unwrap(),
        Some(k("txn"))
    );
    assert_eq!(
        revoke(&s, id, Ts(21)).unwrap_err(),
        EtcdError::LeaseNotFound(id)
    );
}

#[test]
fn a_locked_key_stops_the_expiry_until_resolved() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    let id = grant_one(&mut s, &mut q, 100, 0);
    put(&mut s, "a", Some(id), 10);
    let req = PrewriteRequest::new(k("a"), Ts(15), 100).with(Mutation::Put(k("a"), k("2")));
    s.apply(&prewrite(&s, &req).unwrap());
    let e = expire(&s, id, 100, Ts(20)).unwrap_err();
    assert!(
        matches!(e, EtcdError::Mvcc(crate::mvcc::MvccError::KeyIsLocked(_))) && e.is_retryable()
    );
}

#[test]
fn corrupt_lease_records_are_typed_errors() {
    let mut s = MemStore::new();
    let mut b = Batch::new();
    b.put(&lease_key(LeaseId(3)), b"L\x05");
    s.apply(&b);
    assert!(matches!(
        lease(&s, LeaseId(3)),
        Err(EtcdError::Corrupt { .. })
    ));
    assert!(matches!(
        LeaseQueue::recover(&s),
        Err(EtcdError::Corrupt { .. })
    ));
    let l = Lease {
        id: LeaseId(3),
        ttl_ms: 7,
        expires_at_ms: 300,
    };
    assert_eq!(Lease::decode(l.id, b"", &l.encode()), Ok(l));
    for cut in 0..l.encode().len() {
        assert!(Lease::decode(l.id, b"", &l.encode()[..cut]).is_err());
    }
}

#[test]
fn many_leases_and_keys_page_through_the_scans() {
    let mut s = MemStore::new();
    let mut q = LeaseQueue::new();
    for _ in 0..300 {
        grant_one(&mut s, &mut q, 10, 0);
    }
    assert_eq!(leases(&s).unwrap().len(), 300);
    for i in 0..300u64 {
        let key = alloc::format!("k{i:03}");
        put(&mut s, &key, Some(LeaseId(7)), 10 + i);
    }
    assert_eq!(keys(&s, LeaseId(7)).unwrap().len(), 300);
    let rev = {
        let r = revoke(&s, LeaseId(7), Ts(1_000));
        ok(&mut s, r)
    };
    assert_eq!(rev.deleted.len(), 300);
    assert_eq!(
        crate::mvcc::revision::range_at(&s, b"", None, Ts::MAX, 1000)
            .unwrap()
            .len(),
        0
    );
}
