//! Tables out and in (`Store::table_set` / `Store::install_tables`), the store side of the
//! replicated node's snapshots: store A's tables at its durable mark are copied to store B's
//! disk and installed as B's whole contents. Checks:
//!
//! * the exported set holds exactly A's batches with mark ≤ its `applied_mark`, and it stays
//!   readable while A keeps writing and compacting (the pinned files are not deleted);
//! * after the install B holds exactly that, and writes on top of it work;
//! * a crash at every disk request of the install leaves B either wholly old or wholly new
//!   (contents and durable mark), never a mix;
//! * bad input (a level out of range, overlapping tables, a damaged file) is refused with an
//!   error, the old contents kept and the incoming files deleted.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::io::{FileName, IoRequest, IoResult};
use strata_engine::lsm::store::{IncomingTable, Reply, Request, TableSet};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value, Model};

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn scan_all(s: &mut SimStore) -> Rows {
    let req = Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: false, limit: usize::MAX, snapshot: None };
    match s.call(req) {
        Some(Ok(Reply::Entries(e))) => e,
        other => panic!("scan: {other:?}"),
    }
}

/// Writes `n` random batches with marks `first..first + n`, flushing now and then; returns the
/// model after each batch (index `i` = after mark `first + i`).
fn fill(s: &mut SimStore, rng: &mut Rng, first: u64, n: u64, keys: u64, models: &mut Vec<Model>) {
    for i in 0..n {
        let mut b = Batch::new();
        for _ in 0..1 + rng.below(3) {
            let k = rng.below(keys);
            if rng.chance(0.1) {
                b.delete(&key(k));
            } else {
                b.put(&key(k), &value(k, first + i));
            }
        }
        b.set_applied_mark(first + i);
        let mut m = models.last().cloned().unwrap_or_default();
        m.apply(&b);
        models.push(m);
        assert!(matches!(s.call(Request::Write(b)), Some(Ok(_))));
        if rng.chance(0.05) {
            assert!(matches!(s.call(Request::Flush), Some(Ok(Reply::Done))));
        }
    }
}

/// Copies the set's files from `from` onto `to` under fresh numbers of `to` (written and
/// synced, as the node does when it stages a snapshot).
fn copy_set(set: &TableSet, from: &mut SimDisk, to: &mut SimStore) -> Vec<IncomingTable> {
    let files: Vec<_> = set.tables().map(|(l, m)| (l, m.number, m.file_len)).collect();
    let first = to.store.reserve_file_numbers(files.len() as u64);
    let mut out = Vec::new();
    for (i, (level, number, len)) in files.into_iter().enumerate() {
        let IoResult::Data(bytes) = from.execute(IoRequest::ReadAll { file: FileName::table(number) }) else { panic!("read {number}") };
        assert_eq!(bytes.len() as u64, len);
        let n = first + i as u64;
        to.disk.write_file(FileName::table(n), &bytes).expect("write");
        out.push(IncomingTable { number: n, level: level as u8, file_len: len });
    }
    out
}

fn config() -> strata_engine::lsm::config::Config {
    tiny_config(Durability::External)
}

/// Store A with 400 batches (the set exported at its mark), and the rows of that set.
fn source(seed: u64) -> (SimStore, TableSet, Rows) {
    let mut rng = Rng::new(seed);
    let mut a = SimStore::open(config(), SimDisk::new(seed));
    let mut models = Vec::new();
    fill(&mut a, &mut rng, 1, 400, 80, &mut models);
    assert!(matches!(a.call(Request::Flush), Some(Ok(Reply::Done))));
    fill(&mut a, &mut rng, 401, 7, 80, &mut models);
    let set = a.store.table_set();
    let mark = set.applied_mark;
    assert!(mark >= 400, "the flush covered the first 400 batches (mark {mark})");
    let rows: Rows = models[mark as usize - 1].0.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    (a, set, rows)
}

/// Store B with 150 batches of its own (marks 1..=150), flushed up to some point.
fn target(seed: u64) -> (SimStore, Rows) {
    let mut rng = Rng::new(seed ^ 0xb);
    let mut b = SimStore::open(config(), SimDisk::new(seed ^ 0xbb));
    let mut models = Vec::new();
    fill(&mut b, &mut rng, 1, 150, 40, &mut models);
    assert!(matches!(b.call(Request::Flush), Some(Ok(Reply::Done))));
    let rows = scan_all(&mut b);
    (b, rows)
}

#[test]
fn export_is_consistent_and_pinned() {
    let (mut a, set, rows) = source(7);
    // A keeps writing, flushing and compacting; the exported files must survive.
    let mut rng = Rng::new(99);
    let mut models = Vec::new();
    fill(&mut a, &mut rng, 408, 300, 80, &mut models);
    assert!(matches!(a.call(Request::CompactRange { lo: key(0), hi: key(999) }), Some(Ok(Reply::Done))));
    let (mut b, _) = target(7);
    let tables = copy_set(&set, &mut a.disk, &mut b);
    let r = b.call(Request::Flush);
    assert!(matches!(r, Some(Ok(Reply::Done))));
    let id = b.store.install_tables(b.now_ms, tables, set.applied_mark);
    b.run();
    assert_eq!(b.take_reply(id), Some(Ok(Reply::Done)));
    assert_eq!(b.store.durable_mark(), set.applied_mark);
    assert_eq!(scan_all(&mut b), rows, "B holds exactly A's set");
    // Writes go on top, and survive a restart with the new contents.
    let mut more = Batch::new();
    more.put(b"zz", b"top").set_applied_mark(set.applied_mark + 1);
    assert!(matches!(b.call(Request::Write(more)), Some(Ok(_))));
    assert!(matches!(b.call(Request::Flush), Some(Ok(Reply::Done))));
    let mut reopened = SimStore::open(config(), b.crash(true));
    let mut expect = rows.clone();
    expect.push((b"zz".to_vec(), b"top".to_vec()));
    assert_eq!(scan_all(&mut reopened), expect);
    assert_eq!(reopened.store.durable_mark(), set.applied_mark + 1);
    drop(set);
}

#[test]
fn crash_anywhere_in_the_install_leaves_old_or_new() {
    let (mut a, set, new_rows) = source(11);
    let (b0, old_rows) = target(11);
    let old_mark = b0.store.durable_mark();
    let base_disk = b0.crash(false);
    let (mut old_seen, mut new_seen) = (0, 0);
    for budget in 0..40 {
        let mut b = SimStore::open(config(), base_disk.clone());
        assert_eq!(b.open_result(), Some(&Ok(())));
        let tables = copy_set(&set, &mut a.disk, &mut b);
        b.crash_budget = Some(budget);
        let id = b.store.install_tables(b.now_ms, tables, set.applied_mark);
        b.run();
        let finished = b.take_reply(id);
        let crashed = b.crashed();
        let mut r = SimStore::open(config(), b.crash(true));
        assert_eq!(r.open_result(), Some(&Ok(())), "budget {budget}");
        let rows = scan_all(&mut r);
        if rows == new_rows {
            assert_eq!(r.store.durable_mark(), set.applied_mark, "budget {budget}");
            new_seen += 1;
        } else {
            assert_eq!(rows, old_rows, "budget {budget}: neither old nor new contents");
            assert_eq!(r.store.durable_mark(), old_mark, "budget {budget}");
            assert!(crashed && finished.is_none(), "budget {budget}: install answered but not durable");
            old_seen += 1;
        }
        if !crashed {
            assert_eq!(finished, Some(Ok(Reply::Done)));
            break;
        }
    }
    assert!(old_seen > 0 && new_seen > 0, "both outcomes exercised ({old_seen} old, {new_seen} new)");
}

#[test]
fn bad_tables_are_refused() {
    let (mut a, set, _) = source(5);
    let (mut b, old_rows) = target(5);
    let old_mark = b.store.durable_mark();
    let check_refused = |b: &mut SimStore, tables: Vec<IncomingTable>, what: &str| {
        let numbers: Vec<u64> = tables.iter().map(|t| t.number).collect();
        let id = b.store.install_tables(b.now_ms, tables, set.applied_mark);
        b.run();
        assert!(matches!(b.take_reply(id), Some(Err(_))), "{what} accepted");
        assert_eq!(scan_all(b), old_rows, "{what}: old contents changed");
        assert_eq!(b.store.durable_mark(), old_mark);
        for n in numbers {
            assert!(!b.disk.files().iter().any(|(f, _)| *f == FileName::table(n)), "{what}: incoming file {n} left behind");
        }
    };
    // A level out of range.
    let mut t = copy_set(&set, &mut a.disk, &mut b);
    t[0].level = 200;
    check_refused(&mut b, t, "a level out of range");
    // Two tables that overlap, both put in level 6.
    let mut t = copy_set(&set, &mut a.disk, &mut b);
    if t.len() >= 2 {
        for x in &mut t {
            x.level = 6;
        }
        t.push(IncomingTable { number: b.store.reserve_file_numbers(1), ..t[0] });
        let copy = b.disk.execute(IoRequest::ReadAll { file: FileName::table(t[0].number) });
        let IoResult::Data(bytes) = copy else { panic!() };
        b.disk.write_file(FileName::table(t.last().map(|x| x.number).unwrap_or(0)), &bytes).expect("write");
        check_refused(&mut b, t, "overlapping tables");
    }
    // A damaged file (a flipped bit in its footer).
    let t = copy_set(&set, &mut a.disk, &mut b);
    let f = FileName::table(t[0].number);
    assert!(b.disk.flip_bit(f, t[0].file_len as usize - 20, 3));
    check_refused(&mut b, t, "a damaged table");
    // A number that was never reserved.
    let t = vec![IncomingTable { number: 1 << 40, level: 0, file_len: 100 }];
    let id = b.store.install_tables(b.now_ms, t, set.applied_mark);
    b.run();
    assert!(matches!(b.take_reply(id), Some(Err(_))));
}
