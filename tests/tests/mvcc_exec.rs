//! The MVCC executor over the LSM store on the sim disk.
//!
//! * `reader_matches_memstore`: the store-backed `SnapshotReader` answers every read exactly
//!   as the `BTreeMap` reference does, over data spread across memtables and many SSTs (tiny
//!   tables, a tiny cache: most reads stop on missing blocks and resume), raw reads included.
//! * `seek_reads_past_deleted_versions`: write records put and deleted at random (as GC
//!   deletes them) across memtables and SSTs: `seek_write` and `next_key`, which position in
//!   each source directly, still equal the reference when the newest entry they meet is a
//!   deletion.
//! * `snapshot_isolation_model`: concurrent transactions through the executor (see
//!   `strata_tests::mvcc`), checked against the serial reference, with every committed write
//!   announced exactly once. Even seeds seed the executor's lock table (`seed_locks`), so lock
//!   probes are answered from it (and checked against the store in debug builds).
//! * `crash_loop`: the same workload with the power cut after a random number of disk
//!   requests (unsynced data lost, the last write torn at random), recovery, then: every
//!   acknowledged commit wholly visible, no aborted transaction partly visible, the oracle never
//!   issues a timestamp twice; even seeds seed the lock table after each recovery, with the
//!   locks the cut left behind. `STRATA_MVCC_CRASH_POINTS` sets the number of crash points
//!   (default 40); `STRATA_SEED` replays one seed.
//! * `same_seed_same_digest`: a run replays byte for byte.
use std::cell::RefCell;
use strata_engine::lsm::cache::BlockCache;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::store::{Reply, Request};
use strata_engine::mvcc::error::ReadError;
use strata_engine::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use strata_engine::mvcc::exec::ExecConfig;
use strata_engine::mvcc::reader::{MemStore, RawReader, SnapshotReader};
use strata_engine::mvcc::txn::{self, Mutation, PrewriteRequest};
use strata_engine::mvcc::codec;
use strata_engine::mvcc::record::{Write, WriteKind};
use strata_engine::mvcc::Ts;
use strata_sim::disk::SimDisk;
use strata_sim::mvcc::SimMvcc;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::mvcc::{seed_locks, Workload};
use strata_tests::tiny_config;

fn exec_config() -> ExecConfig {
    ExecConfig { tso_window_ms: 50, block_cache_bytes: 4 << 10, ..ExecConfig::default() }
}

fn seeds(default: u64) -> Vec<u64> {
    match std::env::var("STRATA_SEED") {
        Ok(s) => vec![s.parse().expect("STRATA_SEED is a number")],
        Err(_) => (0..default).collect(),
    }
}

/// Runs a read against the store's current state, reading missing blocks from the disk.
fn read<T>(s: &mut SimStore, f: impl Fn(&StoreSnapshot) -> Result<T, ReadError>) -> T {
    let mut own = BlockMap::new();
    let cache = RefCell::new(BlockCache::new(0));
    loop {
        let need = {
            let snap = StoreSnapshot::new(&s.store, &own, &cache);
            match f(&snap) {
                Ok(t) => return t,
                Err(ReadError::Pending) => snap.needed().expect("pending names a block"),
                Err(e) => panic!("read failed: {e:?}"),
            }
        };
        let b = s.read_block(need.file, need.handle).expect("no crash").expect("block reads");
        own.insert((need.file.number, need.handle.offset), b);
    }
}

fn ukey(n: u64) -> Vec<u8> {
    // Lengths around the 8-byte groups of the key encoding.
    let mut k = format!("u{n}").into_bytes();
    k.resize(1 + (n as usize % 11), b'.');
    k
}

#[test]
fn reader_matches_memstore() {
    for seed in seeds(6) {
        let mut rng = Rng::new(seed);
        let mut sim = SimStore::open(tiny_config(Durability::SyncEachWrite), SimDisk::new(seed));
        let mut mem = MemStore::new();
        let mut ts = 10u64;
        for _ in 0..300 {
            ts += 2;
            let k = ukey(rng.below(40));
            let v = if rng.chance(0.2) { vec![b'L'; 300] } else { format!("v{ts}").into_bytes() };
            let req = PrewriteRequest::new(k.clone(), Ts(ts), 100).with(Mutation::Put(k.clone(), v));
            let Ok(b) = txn::prewrite(&mem, &req) else { continue };
            let mut batches = vec![b];
            let mut after = mem.clone();
            after.apply(&batches[0]);
            let next = match rng.below(3) {
                0 => txn::commit(&after, std::slice::from_ref(&k), Ts(ts), Ts(ts + 1)),
                1 => txn::rollback(&after, std::slice::from_ref(&k), Ts(ts)),
                _ => Ok(Default::default()), // left locked
            };
            batches.extend(next.ok());
            if rng.chance(0.05) {
                after.apply(batches.last().expect("a batch"));
                if let Ok(g) = txn::gc(&after, b"", None, Ts(ts / 2), 100) {
                    batches.push(g.batch);
                }
            }
            for b in batches {
                mem.apply(&b);
                assert!(matches!(sim.call(Request::Write(b)), Some(Ok(Reply::Written { .. }))));
            }
        }
        for _ in 0..300 {
            let k = ukey(rng.below(44));
            let at = Ts(rng.below(ts + 10));
            assert_eq!(read(&mut sim, |r| r.lock(&k)), mem.lock(&k).unwrap(), "lock {k:?}");
            assert_eq!(read(&mut sim, |r| r.seek_write(&k, at)), mem.seek_write(&k, at).unwrap(), "seek_write {k:?} {at}");
            assert_eq!(read(&mut sim, |r| r.value(&k, at)), mem.value(&k, at).unwrap(), "value {k:?} {at}");
            let upper = ukey(rng.below(44));
            let up = (rng.chance(0.5) && upper > k).then_some(upper.as_slice());
            assert_eq!(read(&mut sim, |r| r.next_key(&k, up)), mem.next_key(&k, up).unwrap(), "next_key {k:?}");
            let lim = rng.below(10) as usize;
            assert_eq!(read(&mut sim, |r| r.scan_locks(&k, up, lim)), mem.scan_locks(&k, up, lim).unwrap(), "scan_locks {k:?}");
        }
        let all = read(&mut sim, |r| r.raw_scan(b"", &[0xff], usize::MAX));
        assert_eq!(all, mem.raw_scan(b"", &[0xff], usize::MAX).unwrap(), "raw scan of everything");
        for (k, v) in all.iter().step_by(7) {
            assert_eq!(read(&mut sim, |r| r.raw_get(k)).as_ref(), Some(v), "raw get");
        }
        assert!(sim.store.stats().level_files.iter().sum::<usize>() > 2, "data reached several SSTs");
    }
}

#[test]
fn seek_reads_past_deleted_versions() {
    for seed in seeds(6) {
        let mut rng = Rng::new(seed ^ 0x5EE4);
        let mut sim = SimStore::open(tiny_config(Durability::SyncEachWrite), SimDisk::new(seed));
        let mut mem = MemStore::new();
        for _ in 0..600 {
            let mut b = Batch::new();
            for _ in 0..1 + rng.below(3) {
                let k = ukey(rng.below(12));
                let ts = Ts(1 + rng.below(60));
                if rng.chance(0.6) {
                    let mut w = Write::new(WriteKind::Put, ts);
                    w.short_value = Some(format!("v{}", ts.0).into_bytes());
                    b.put(&codec::write_key(&k, ts), &w.encode());
                } else {
                    b.delete(&codec::write_key(&k, ts));
                }
            }
            mem.apply(&b);
            assert!(matches!(sim.call(Request::Write(b)), Some(Ok(Reply::Written { .. }))));
        }
        assert!(sim.store.stats().level_files.iter().sum::<usize>() > 2, "data reached several SSTs");
        for n in 0..13 {
            let k = ukey(n);
            for at in [0, 1, 7, 20, 33, 59, 60, 61, u64::MAX] {
                assert_eq!(read(&mut sim, |r| r.seek_write(&k, Ts(at))), mem.seek_write(&k, Ts(at)).unwrap(), "seek_write {k:?} {at}");
            }
            assert_eq!(read(&mut sim, |r| r.next_key(&k, None)), mem.next_key(&k, None).unwrap(), "next_key {k:?}");
        }
    }
}

#[test]
fn snapshot_isolation_model() {
    let mut committed = 0;
    for seed in seeds(12) {
        let mut w = SimMvcc::open(tiny_config(Durability::SyncEachWrite), exec_config(), SimDisk::new(seed));
        assert!(matches!(w.recovered, Some(Ok(_))));
        if seed % 2 == 0 {
            seed_locks(&mut w);
        }
        let mut load = Workload::new(seed, 10);
        load.run(&mut w, 400, 4);
        load.settle(&mut w, &mut Vec::new(), true);
        committed += load.counts[0];
        eprintln!("seed {seed}: {} commits, {} aborts, {} GC runs; {:?}", load.counts[0], load.counts[1], load.counts[2], w.exec.stats());
        assert!(w.exec.stats().pending_runs > 0, "seed {seed}: some runs waited for blocks");
    }
    assert!(committed > 100, "only {committed} commits");
}

#[test]
fn crash_loop() {
    let points: u64 = std::env::var("STRATA_MVCC_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let per_seed = 4;
    let mut crashes = 0;
    let seeds = seeds(points.div_ceil(per_seed));
    let epochs = seeds.len() as u64 * per_seed;
    for seed in seeds {
        let mut rng = Rng::new(seed ^ 0xC0FFEE);
        let config = tiny_config(Durability::SyncEachWrite);
        let mut load = Workload::new(seed, 8);
        let mut applied = Vec::new();
        let mut disk = SimDisk::new(seed);
        let mut now = 0;
        for epoch in 0..per_seed {
            let budget = 20 + rng.below(600);
            let mut w = SimMvcc::open_at(config.clone(), exec_config(), disk, now, None);
            match &w.recovered {
                Some(Ok(mark)) => assert!(*mark >= load.max_ts_seen, "seed {seed} epoch {epoch}: mark {mark} below issued {}", load.max_ts_seen),
                other => panic!("seed {seed} epoch {epoch}: recovery {other:?}"),
            }
            if seed % 2 == 0 {
                seed_locks(&mut w);
            }
            load.settle(&mut w, &mut applied, false);
            w.sim.crash_budget = Some(budget);
            load.run(&mut w, 300, 4);
            applied.append(&mut w.applied);
            crashes += u64::from(w.crashed());
            now = w.now_ms() + 1;
            disk = w.crash(rng.chance(0.5));
        }
        let mut w = SimMvcc::open_at(config, exec_config(), disk, now, None);
        if seed % 2 == 0 {
            seed_locks(&mut w);
        }
        load.settle(&mut w, &mut applied, false);
        eprintln!("seed {seed}: {} commits, {} aborts, {} GC runs acknowledged", load.counts[0], load.counts[1], load.counts[2]);
    }
    assert!(crashes * 2 >= epochs, "only {crashes} of {epochs} epochs were cut short");
}

#[test]
fn same_seed_same_digest() {
    let run = |seed: u64| {
        let mut w = SimMvcc::open(tiny_config(Durability::SyncEachWrite), exec_config(), SimDisk::new(seed));
        w.sim.record_digest = true;
        let mut load = Workload::new(seed, 10);
        load.run(&mut w, 200, 4);
        (w.digest(), load.counts)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).0, run(8).0);
}
