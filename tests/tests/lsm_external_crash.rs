//! Crash loop for `Durability::External` (no WAL; the owner's log is the WAL): random batches
//! tagged with increasing applied marks, flushes and range compactions at random points, the
//! power cut after a random number of disk requests (unsynced bytes lost or torn), then:
//!
//! * the recovered store holds exactly the batches with mark ≤ `durable_mark()` (nothing
//!   later, nothing half), and
//! * `durable_mark()` covers every batch a completed `Flush` covered, and never goes back.
//!
//! After each recovery the batches above the mark are written again with their marks, as the
//! replicated node replays them from its Raft log, and the run goes on.
//!
//! `STRATA_CRASH_POINTS` sets how many crash points run (default 3,000); `STRATA_SEED` replays
//! one seed. A failure prints the seed.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::store::{ReqId, Reply, Request};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value, Model};

struct Run {
    rng: Rng,
    /// Every batch written; batch `i` carries mark `i + 1`.
    batches: Vec<Batch>,
    /// `durable_mark()` must be at least this (a completed flush covered these batches).
    flushed: u64,
    /// The largest `durable_mark()` seen.
    mark_seen: u64,
    version: u64,
    crash_points: u64,
}

fn scan_all(s: &mut SimStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let req = Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: false, limit: usize::MAX, snapshot: None };
    match s.call(req) {
        Some(Ok(Reply::Entries(e))) => e,
        other => panic!("scan after recovery: {other:?}"),
    }
}

impl Run {
    fn batch(&mut self) -> Batch {
        let mut b = Batch::new();
        for _ in 0..1 + self.rng.below(3) {
            let k = self.rng.below(60);
            self.version += 1;
            if self.rng.chance(0.15) {
                b.delete(&key(k));
            } else {
                b.put(&key(k), &value(k, self.version));
            }
        }
        b.set_applied_mark(self.batches.len() as u64 + 1);
        b
    }

    fn check_mark(&mut self, s: &SimStore, seed: u64) {
        let m = s.store.durable_mark();
        assert!(m >= self.mark_seen, "seed {seed}: durable mark went back from {} to {m}", self.mark_seen);
        assert!(m <= self.batches.len() as u64, "seed {seed}: durable mark {m} above the last batch");
        self.mark_seen = m;
    }

    fn until_crash(&mut self, mut s: SimStore, seed: u64) -> SimDisk {
        s.crash_budget = Some(self.rng.below(200));
        while !s.crashed() {
            let mut flushes: Vec<(ReqId, u64)> = Vec::new();
            let mut writes = Vec::new();
            for _ in 0..1 + self.rng.below(4) {
                match self.rng.below(20) {
                    0 => flushes.push((s.submit(Request::Flush), self.batches.len() as u64)),
                    1 => {
                        let id = s.submit(Request::CompactRange { lo: key(0), hi: key(60) });
                        flushes.push((id, self.batches.len() as u64));
                    }
                    2 => {
                        // Sync does nothing in this mode: it answers at once and covers nothing.
                        let id = s.submit(Request::Sync);
                        writes.push(id);
                    }
                    _ => {
                        let b = self.batch();
                        writes.push(s.submit(Request::Write(b.clone())));
                        self.batches.push(b);
                    }
                }
            }
            s.advance(1 + self.rng.below(3));
            for id in writes {
                match s.take_reply(id) {
                    Some(Ok(_)) | None => {}
                    Some(Err(e)) => panic!("seed {seed}: write failed without faults: {e}"),
                }
            }
            for (id, covers) in flushes {
                if let Some(Ok(_)) = s.take_reply(id) {
                    self.flushed = self.flushed.max(covers);
                }
            }
            if !s.crashed() {
                self.check_mark(&s, seed);
            }
        }
        self.crash_points += 1;
        let tear = self.rng.chance(0.5);
        s.crash(tear)
    }

    fn recover_and_check(&mut self, disk: SimDisk, seed: u64) -> SimStore {
        let mut s = SimStore::open(tiny_config(Durability::External), disk);
        match s.open_result() {
            Some(Ok(())) => {}
            other => panic!("seed {seed}: recovery failed: {other:?}"),
        }
        self.check_mark(&s, seed);
        let m = s.store.durable_mark();
        assert!(m >= self.flushed, "seed {seed}: a completed flush covered batch {} but the mark is {m}", self.flushed);
        let mut model = Model::default();
        for b in &self.batches[..m as usize] {
            model.apply(b);
        }
        let got = scan_all(&mut s);
        let want = model.scan(&Bound::Unbounded, &Bound::Unbounded, false, usize::MAX);
        if got != want {
            let missing: Vec<_> = want.iter().filter(|e| !got.contains(e)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|e| !want.contains(e)).take(3).collect();
            panic!("seed {seed}: store is not the batches up to mark {m} of {}\n missing {missing:?}\n extra {extra:?}", self.batches.len());
        }
        // The node replays what the store lost from its log.
        for b in &self.batches[m as usize..] {
            match s.call(Request::Write(b.clone())) {
                Some(Ok(Reply::Written { .. })) => {}
                other => panic!("seed {seed}: replay: {other:?}"),
            }
        }
        s
    }
}

fn run_seed(seed: u64, crashes: u64) -> u64 {
    let mut run = Run { rng: Rng::new(seed), batches: Vec::new(), flushed: 0, mark_seen: 0, version: 0, crash_points: 0 };
    let mut s = SimStore::open(tiny_config(Durability::External), SimDisk::new(seed));
    for _ in 0..crashes {
        let disk = run.until_crash(s, seed);
        s = run.recover_and_check(disk, seed);
    }
    // No WAL file was ever written.
    assert!(s.disk.files().iter().all(|(f, _)| f.kind != strata_engine::lsm::io::FileKind::Wal), "seed {seed}: a WAL file exists");
    run.crash_points
}

#[test]
fn the_store_holds_exactly_the_batches_up_to_the_durable_mark() {
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_seed(one.parse().expect("STRATA_SEED is a number"), 10);
        return;
    }
    let target: u64 = std::env::var("STRATA_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(3_000);
    let (mut points, mut seed) = (0, 0);
    while points < target {
        points += run_seed(seed, 10);
        seed += 1;
    }
    eprintln!("crash points: {points} over {seed} seeds");
}

#[test]
fn a_store_reopened_in_external_mode_keeps_its_mark_and_no_wal() {
    let mut s = SimStore::open(tiny_config(Durability::External), SimDisk::new(1));
    let mut b = Batch::new();
    b.put(b"a", b"1").set_applied_mark(7);
    assert!(matches!(s.call(Request::Write(b)), Some(Ok(Reply::Written { .. }))));
    assert_eq!(s.store.durable_mark(), 0);
    assert!(matches!(s.call(Request::Flush), Some(Ok(Reply::Done))));
    assert_eq!(s.store.durable_mark(), 7);
    // A batch without a mark does not lower it.
    let mut b = Batch::new();
    b.put(b"b", b"2");
    assert!(matches!(s.call(Request::Write(b)), Some(Ok(_))));
    assert!(matches!(s.call(Request::Flush), Some(Ok(Reply::Done))));
    assert_eq!(s.store.durable_mark(), 7);
    let disk = s.crash(false);
    let s = SimStore::open(tiny_config(Durability::External), disk);
    assert_eq!(s.store.durable_mark(), 7);
    // The mark survives in a WAL mode too (it is the manifest's).
    let disk = s.crash(false);
    let s = SimStore::open(tiny_config(Durability::SyncEachWrite), disk);
    assert_eq!(s.store.durable_mark(), 7);
}
