//! Unit tests of revisions, history and compaction over `MemStore`.
use super::*;
use crate::mvcc::error::MvccError;
use crate::mvcc::reader::MemStore;
use crate::mvcc::txn::{commit, one_pc, prewrite, Mutation, PrewriteRequest};
use alloc::vec;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A one-phase commit of `m` at `ts - 1` / `ts`.
fn write(s: &mut MemStore, m: Mutation, ts: u64) {
    let req = PrewriteRequest::new(m.key().to_vec(), Ts(ts - 1), 100).with(m);
    let b = one_pc(s, &req, Ts(ts)).expect("1pc");
    s.apply(&b);
    s.check_invariants();
}

fn put(s: &mut MemStore, key: &str, v: &str, ts: u64) {
    write(s, Mutation::Put(k(key), k(v)), ts);
}

fn del(s: &mut MemStore, key: &str, ts: u64) {
    write(s, Mutation::Delete(k(key)), ts);
}

fn meta(kv: &Option<Kv>) -> Option<(u64, u64, u64)> {
    kv.as_ref()
        .map(|kv| (kv.create_revision.0, kv.mod_revision.0, kv.version))
}

#[test]
fn version_and_create_revision_follow_etcd() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    put(&mut s, "a", "2", 20);
    put(&mut s, "a", "3", 30);
    del(&mut s, "a", 40);
    put(&mut s, "a", "4", 50);
    assert_eq!(meta(&get_at(&s, b"a", Ts(9)).unwrap()), None);
    assert_eq!(meta(&get_at(&s, b"a", Ts(10)).unwrap()), Some((10, 10, 1)));
    assert_eq!(meta(&get_at(&s, b"a", Ts(25)).unwrap()), Some((10, 20, 2)));
    assert_eq!(meta(&get_at(&s, b"a", Ts(39)).unwrap()), Some((10, 30, 3)));
    assert_eq!(meta(&get_at(&s, b"a", Ts(45)).unwrap()), None);
    assert_eq!(meta(&get_at(&s, b"a", Ts::MAX).unwrap()), Some((50, 50, 1)));
    assert_eq!(
        get_at(&s, b"a", Ts(30)).unwrap().unwrap().value,
        b"3".to_vec()
    );
}

#[test]
fn two_phase_commits_record_the_fields_at_commit() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    let req = PrewriteRequest::new(k("a"), Ts(15), 100).with(Mutation::Put(k("a"), vec![7; 300]));
    s.apply(&prewrite(&s, &req).unwrap());
    s.apply(&commit(&s, &[k("a")], Ts(15), Ts(18)).unwrap());
    s.check_invariants();
    let kv = get_at(&s, b"a", Ts(18)).unwrap().unwrap();
    assert_eq!(
        (kv.create_revision, kv.version, kv.value.len()),
        (Ts(10), 2, 300)
    );
    // Lock-only and rolled-back transactions are not versions.
    write(&mut s, Mutation::Lock(k("a")), 22);
    put(&mut s, "a", "3", 25);
    assert_eq!(meta(&get_at(&s, b"a", Ts(25)).unwrap()), Some((10, 25, 3)));
}

#[test]
fn records_without_the_fields_are_walked() {
    // Old-format records (no create_revision/version): computed from the older versions.
    let mut s = MemStore::new();
    let mut b = Batch::new();
    for (ts, kind) in [
        (5, WriteKind::Put),
        (7, WriteKind::Delete),
        (9, WriteKind::Put),
        (11, WriteKind::Put),
    ] {
        let mut w = Write::new(kind, Ts(ts - 1));
        if kind == WriteKind::Put {
            w.short_value = Some(vec![ts as u8]);
        }
        b.put(&crate::mvcc::codec::write_key(b"a", Ts(ts)), &w.encode());
    }
    s.apply(&b);
    assert_eq!(meta(&get_at(&s, b"a", Ts(5)).unwrap()), Some((5, 5, 1)));
    assert_eq!(meta(&get_at(&s, b"a", Ts(11)).unwrap()), Some((9, 11, 2)));
    // A new put continues the walked count.
    put(&mut s, "a", "x", 13);
    let w = s.seek_write(b"a", Ts(13)).unwrap().unwrap().1;
    assert_eq!((w.create_revision, w.version), (Ts(9), 3));
}

#[test]
fn history_is_newest_first_with_deletes() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    put(&mut s, "b", "x", 12);
    put(&mut s, "a", "2", 20);
    del(&mut s, "a", 30);
    put(&mut s, "a", "3", 40);
    let h = history(&s, b"a", Ts::MAX, 10).unwrap();
    let revs: Vec<(u64, Option<u64>)> = h
        .iter()
        .map(|e| (e.revision.0, e.kv.as_ref().map(|kv| kv.version)))
        .collect();
    assert_eq!(
        revs,
        vec![(40, Some(1)), (30, None), (20, Some(2)), (10, Some(1))]
    );
    assert_eq!(history(&s, b"a", Ts(35), 2).unwrap().len(), 2);
    assert_eq!(history(&s, b"a", Ts(35), 2).unwrap()[0].revision, Ts(30));
    assert!(history(&s, b"zz", Ts::MAX, 10).unwrap().is_empty());
}

#[test]
fn compaction_fails_reads_below_the_mark_and_keeps_the_visible_version() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    put(&mut s, "a", "2", 20);
    put(&mut s, "b", "1", 15);
    del(&mut s, "b", 21);
    put(&mut s, "a", "3", 30);
    s.apply(&compact(&s, Ts(25), Ts(30)).unwrap());
    assert_eq!(compaction_mark(&s).unwrap(), Ts(25));
    let compacted = Err(EtcdError::Compacted {
        requested: Ts(24),
        compacted: Ts(25),
    });
    assert_eq!(get_at(&s, b"a", Ts(24)), compacted);
    assert_eq!(
        range_at(&s, b"", None, Ts(24), 10).map(|v| v.len()),
        compacted.clone().map(|_: Option<Kv>| 0)
    );
    assert_eq!(
        history(&s, b"a", Ts(24), 10).map(|v| v.len()),
        compacted.map(|_: Option<Kv>| 0)
    );
    // Before and after the physical step, the answers at or above the mark are the same.
    let before = (
        history(&s, b"a", Ts::MAX, 10).unwrap(),
        get_at(&s, b"a", Ts(25)).unwrap(),
        range_at(&s, b"", None, Ts(25), 10).unwrap(),
    );
    assert_eq!(
        before.0.len(),
        2,
        "history stops at the version visible at the mark"
    );
    let mut from = Vec::new();
    loop {
        let out = compaction_step(&s, &from, 1).unwrap();
        s.apply(&out.batch);
        match out.resume_from {
            Some(f) => from = f,
            None => break,
        }
    }
    s.check_invariants();
    let after = (
        history(&s, b"a", Ts::MAX, 10).unwrap(),
        get_at(&s, b"a", Ts(25)).unwrap(),
        range_at(&s, b"", None, Ts(25), 10).unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(meta(&after.1), Some((10, 20, 2)));
    // The old versions are gone: `a` keeps 20 and 30, `b` (deleted at 21) nothing.
    assert_eq!(s.entries().filter(|(k, _)| k[0] == b'w').count(), 2);
    // A put after compaction still counts from the kept version.
    put(&mut s, "a", "4", 40);
    assert_eq!(meta(&get_at(&s, b"a", Ts(40)).unwrap()), Some((10, 40, 4)));
}

#[test]
fn compact_rejects_old_and_future_revisions() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    assert_eq!(
        compact(&s, Ts(11), Ts(10)),
        Err(EtcdError::FutureRevision {
            requested: Ts(11),
            current: Ts(10)
        })
    );
    s.apply(&compact(&s, Ts(10), Ts(10)).unwrap());
    assert_eq!(
        compact(&s, Ts(10), Ts(10)),
        Err(EtcdError::Compacted {
            requested: Ts(10),
            compacted: Ts(10)
        })
    );
    let mut bad = Batch::new();
    bad.put(COMPACTION_MARK_KEY, b"xx");
    s.apply(&bad);
    assert!(matches!(
        get_at(&s, b"a", Ts(10)),
        Err(EtcdError::Corrupt { .. })
    ));
}

#[test]
fn reads_at_a_revision_see_locks_that_may_commit_below_it() {
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    let req = PrewriteRequest::new(k("a"), Ts(15), 100).with(Mutation::Put(k("a"), k("2")));
    s.apply(&prewrite(&s, &req).unwrap());
    assert!(get_at(&s, b"a", Ts(14)).unwrap().is_some());
    assert!(matches!(
        get_at(&s, b"a", Ts(16)),
        Err(EtcdError::Mvcc(MvccError::KeyIsLocked(_)))
    ));
    assert!(matches!(
        history(&s, b"a", Ts(16), 5),
        Err(EtcdError::Mvcc(MvccError::KeyIsLocked(_)))
    ));
}

#[test]
fn history_does_not_depend_on_how_far_compaction_got() {
    // `a`: a delete is visible at the mark; `b`: a put is.
    let mut s = MemStore::new();
    put(&mut s, "a", "1", 10);
    del(&mut s, "a", 20);
    put(&mut s, "a", "2", 30);
    put(&mut s, "b", "1", 11);
    put(&mut s, "b", "2", 21);
    put(&mut s, "b", "3", 31);
    s.apply(&compact(&s, Ts(25), Ts(31)).unwrap());
    let before = [history(&s, b"a", Ts::MAX, 10).unwrap(), history(&s, b"b", Ts::MAX, 10).unwrap()];
    let out = compaction_step(&s, b"", 10).unwrap();
    s.apply(&out.batch);
    let after = [history(&s, b"a", Ts::MAX, 10).unwrap(), history(&s, b"b", Ts::MAX, 10).unwrap()];
    assert_eq!(before, after);
    let revs = |h: &[HistoryEntry]| h.iter().map(|e| e.revision.0).collect::<Vec<_>>();
    assert_eq!((revs(&after[0]), revs(&after[1])), (vec![30], vec![31, 21]));
}
