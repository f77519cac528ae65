//! Failure handling: corruption is detected and named, a full or failing disk loses nothing
//! acknowledged, bad requests get clear errors, and runs are deterministic.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::error::{Error, InvalidArgument};
use strata_engine::lsm::io::{FileKind, FileName, IoError};
use strata_engine::lsm::store::{Reply, Request};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value, Model};

fn put(s: &mut SimStore, k: u64, version: u64) -> Option<Result<Reply, Error>> {
    let mut b = Batch::new();
    b.put(&key(k), &value(k, version));
    s.call(Request::Write(b))
}

fn get(s: &mut SimStore, k: u64) -> Option<Result<Reply, Error>> {
    s.call(Request::Get { key: key(k), snapshot: None })
}

fn files(disk: &SimDisk, kind: FileKind) -> Vec<(FileName, usize)> {
    disk.files().into_iter().filter(|(f, _)| f.kind == kind).collect()
}

fn big_memtable() -> Config {
    Config { memtable_bytes: 1 << 20, ..tiny_config(Durability::SyncEachWrite) }
}

#[test]
fn a_bit_flip_in_the_middle_of_the_wal_refuses_open_and_names_the_spot() {
    let mut s = SimStore::open(big_memtable(), SimDisk::new(1));
    for i in 0..50 {
        assert!(matches!(put(&mut s, i, 1), Some(Ok(_))));
    }
    let mut disk = s.crash(false);
    let (wal, len) = files(&disk, FileKind::Wal)[0];
    let at = len / 2;
    assert!(disk.flip_bit(wal, at, 3));
    let s = SimStore::open(big_memtable(), disk);
    match s.open_result() {
        Some(Err(Error::Corruption { file, offset, .. })) => {
            assert_eq!(*file, wal);
            assert!(*offset as usize <= at && at - (*offset as usize) < 100, "offset {offset} vs flip at {at}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_bit_flip_in_the_manifest_refuses_open() {
    let mut s = SimStore::open(tiny_config(Durability::SyncEachWrite), SimDisk::new(2));
    for i in 0..200 {
        assert!(matches!(put(&mut s, i % 50, i), Some(Ok(_))));
    }
    assert!(s.store.stats().flushes > 0);
    let mut disk = s.crash(false);
    let (manifest, len) = files(&disk, FileKind::Manifest)[0];
    assert!(disk.flip_bit(manifest, len / 3, 0));
    let s = SimStore::open(tiny_config(Durability::SyncEachWrite), disk);
    match s.open_result() {
        Some(Err(Error::Corruption { file, .. })) => assert_eq!(*file, manifest),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_bit_flip_in_an_sst_block_fails_the_read_with_file_and_offset() {
    let config = tiny_config(Durability::SyncEachWrite);
    let mut s = SimStore::open(config.clone(), SimDisk::new(3));
    for i in 0..40 {
        assert!(matches!(put(&mut s, i, 1), Some(Ok(_))));
    }
    assert_eq!(s.call(Request::Flush), Some(Ok(Reply::Done)));
    let mut disk = s.crash(false);
    let (sst, _) = files(&disk, FileKind::Table)[0];
    // The first data block starts at offset 0.
    assert!(disk.flip_bit(sst, 10, 1));
    let mut s = SimStore::open(config, disk);
    assert_eq!(s.open_result(), Some(&Ok(())), "footer and index are intact");
    let errors: Vec<_> = (0..40).filter_map(|i| match get(&mut s, i) {
        Some(Err(e)) => Some(e),
        Some(Ok(_)) => None,
        None => panic!("no reply"),
    }).collect();
    assert!(!errors.is_empty(), "the damaged block was never reported");
    for e in errors {
        match e {
            Error::Corruption { file, offset: 0, .. } => assert_eq!(file, sst),
            other => panic!("expected corruption at offset 0, got {other}"),
        }
    }
}

#[test]
fn a_bit_flip_in_sst_metadata_refuses_open() {
    let config = tiny_config(Durability::SyncEachWrite);
    let mut s = SimStore::open(config.clone(), SimDisk::new(4));
    for i in 0..40 {
        assert!(matches!(put(&mut s, i, 1), Some(Ok(_))));
    }
    assert_eq!(s.call(Request::Flush), Some(Ok(Reply::Done)));
    let mut disk = s.crash(false);
    let (sst, len) = files(&disk, FileKind::Table)[0];
    assert!(disk.flip_bit(sst, len - 30, 2));
    let s = SimStore::open(config, disk);
    assert!(matches!(s.open_result(), Some(Err(Error::Corruption { file, .. })) if *file == sst), "{:?}", s.open_result());
}

#[test]
fn a_full_disk_fails_writes_keeps_reads_and_recovers_when_space_returns() {
    let config = tiny_config(Durability::SyncEachWrite);
    let mut s = SimStore::open(config.clone(), SimDisk::new(5));
    let mut model = Model::default();
    for i in 0..100 {
        let mut b = Batch::new();
        b.put(&key(i % 30), &value(i % 30, i));
        assert!(matches!(s.call(Request::Write(b.clone())), Some(Ok(_))));
        model.apply(&b);
    }
    s.disk.faults.disk_full = true;
    for i in 0..20 {
        match put(&mut s, i, 1000 + i) {
            Some(Err(Error::Io { error: IoError::NoSpace, .. })) => {}
            other => panic!("write on a full disk: {other:?}"),
        }
        // Reads keep working and see only acknowledged data.
        let want = model.0.get(&key(i)).cloned();
        assert_eq!(get(&mut s, i), Some(Ok(Reply::Value(want))));
    }
    s.disk.faults.disk_full = false;
    for i in 0..100 {
        let mut b = Batch::new();
        b.put(&key(i % 30), &value(i % 30, 2000 + i));
        assert!(matches!(s.call(Request::Write(b.clone())), Some(Ok(_))), "write after space returned");
        model.apply(&b);
    }
    let disk = s.crash(true);
    let mut s = SimStore::open(config, disk);
    assert_eq!(s.open_result(), Some(&Ok(())));
    let all = Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: false, limit: usize::MAX, snapshot: None };
    let want = model.scan(&Bound::Unbounded, &Bound::Unbounded, false, usize::MAX);
    assert_eq!(s.call(all), Some(Ok(Reply::Entries(want))));
}

#[test]
fn random_write_errors_lose_nothing_acknowledged_and_apply_nothing_failed() {
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let config = tiny_config(Durability::SyncEachWrite);
        let mut s = SimStore::open(config.clone(), SimDisk::new(seed));
        s.disk.faults.write_error_rate = 0.05;
        let mut model = Model::default();
        let mut failures = 0;
        for i in 0..300 {
            let mut b = Batch::new();
            for _ in 0..1 + rng.below(3) {
                let k = rng.below(40);
                if rng.chance(0.2) {
                    b.delete(&key(k));
                } else {
                    b.put(&key(k), &value(k, i));
                }
            }
            match s.call(Request::Write(b.clone())) {
                Some(Ok(Reply::Written { .. })) => model.apply(&b),
                Some(Err(Error::Io { .. })) => failures += 1,
                other => panic!("seed {seed}: {other:?}"),
            }
        }
        assert!(failures > 0, "seed {seed}: no fault was injected");
        s.disk.faults.write_error_rate = 0.0;
        let disk = s.crash(true);
        let mut s = SimStore::open(config, disk);
        assert_eq!(s.open_result(), Some(&Ok(())), "seed {seed}");
        let all = Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: false, limit: usize::MAX, snapshot: None };
        let want = model.scan(&Bound::Unbounded, &Bound::Unbounded, false, usize::MAX);
        assert_eq!(s.call(all), Some(Ok(Reply::Entries(want))), "seed {seed}");
    }
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let config = Config { max_key_len: 16, max_value_len: 32, ..tiny_config(Durability::SyncEachWrite) };
    let mut s = SimStore::open(config, SimDisk::new(6));
    let mut b = Batch::new();
    b.put(b"", b"v");
    assert_eq!(s.call(Request::Write(b)), Some(Err(Error::InvalidArgument(InvalidArgument::EmptyKey))));
    let mut b = Batch::new();
    b.put(b"ok", b"1").put(&[7u8; 17], b"v");
    assert_eq!(
        s.call(Request::Write(b)),
        Some(Err(Error::InvalidArgument(InvalidArgument::KeyTooLarge { len: 17, max: 16 })))
    );
    let mut b = Batch::new();
    b.put(b"ok", &[0u8; 33]);
    assert_eq!(
        s.call(Request::Write(b)),
        Some(Err(Error::InvalidArgument(InvalidArgument::ValueTooLarge { len: 33, max: 32 })))
    );
    // Nothing of the rejected batches was applied.
    assert_eq!(s.call(Request::Get { key: b"ok".to_vec(), snapshot: None }), Some(Ok(Reply::Value(None))));
    let e = Error::InvalidArgument(InvalidArgument::KeyTooLarge { len: 17, max: 16 });
    assert_eq!(e.to_string(), "invalid argument: key is 17 bytes, the maximum is 16");
}

fn digest_of(seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let mut s = SimStore::open(tiny_config(Durability::SyncEachWrite), SimDisk::new(seed));
    s.record_digest = true;
    for i in 0..400 {
        let mut b = Batch::new();
        let k = rng.below(80);
        b.put(&key(k), &value(k, i));
        s.submit(Request::Write(b));
        if rng.chance(0.3) {
            s.run();
        }
        if rng.chance(0.05) {
            s.submit(Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: true, limit: 20, snapshot: None });
        }
    }
    s.run();
    s.digest()
}

#[test]
fn the_same_seed_gives_the_same_outputs_byte_for_byte() {
    let a = digest_of(42);
    assert_eq!(a, digest_of(42));
    assert_ne!(a, digest_of(43));
}

#[test]
fn range_compaction_and_flush_finish_under_continuous_writes() {
    let mut s = SimStore::open(tiny_config(Durability::SyncEachWrite), SimDisk::new(8));
    for i in 0..200 {
        assert!(matches!(put(&mut s, i % 40, i), Some(Ok(_))));
    }
    let compact = s.submit(Request::CompactRange { lo: key(0), hi: key(40) });
    let flush = s.submit(Request::Flush);
    let (mut compacted, mut flushed) = (None, None);
    for i in 0..2_000 {
        // A write lands before every step: the memtable is never empty.
        let mut b = Batch::new();
        b.put(&key(i % 40), &value(i % 40, 10_000 + i));
        s.submit(Request::Write(b));
        s.run();
        compacted = compacted.or_else(|| s.take_reply(compact));
        flushed = flushed.or_else(|| s.take_reply(flush));
        if compacted.is_some() && flushed.is_some() {
            break;
        }
    }
    assert_eq!(compacted, Some(Ok(Reply::Done)), "compaction starved by writes");
    assert_eq!(flushed, Some(Ok(Reply::Done)), "flush starved by writes");
}
