//! Crash loops on the sim disk: cut the power after a random number of disk requests, lose
//! every unsynced byte (or keep a random torn prefix of it), recover, and check that
//!
//! * every acknowledged write is there (in the syncing mode; in the others, every write
//!   covered by a completed `Sync`), and
//! * nothing else is half there: the recovered state is exactly the state after some prefix of
//!   the submitted batches (batches are all or nothing, and never reordered).
//!
//! `STRATA_CRASH_POINTS` sets how many crash points run (default 10,000); `STRATA_SEED` replays
//! one seed. A failure prints the seed.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::store::{ReqId, Reply, Request};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value, Model};

struct Run {
    rng: Rng,
    config: Config,
    /// Every batch submitted, in submission (= sequence) order.
    batches: Vec<Batch>,
    /// Batches `[0, durable)` must survive any crash.
    durable: usize,
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
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let durability = match rng.below(4) {
            0 => Durability::Manual,
            1 => Durability::SyncEveryMs(5),
            _ => Durability::SyncEachWrite,
        };
        Run { rng, config: tiny_config(durability), batches: Vec::new(), durable: 0, version: 0, crash_points: 0 }
    }

    /// Runs the workload until the power is cut; returns the disk as recovery finds it.
    fn until_crash(&mut self, mut s: SimStore) -> SimDisk {
        s.crash_budget = Some(self.rng.below(300));
        let space = 60;
        let sync_mode = self.config.durability == Durability::SyncEachWrite;
        let mut acked = self.batches.len();
        while !s.crashed() {
            let mut writes: Vec<(ReqId, usize)> = Vec::new();
            // Requests whose success makes earlier batches durable: a sync covers every batch
            // submitted before it; a flush or a compaction covers the batches already
            // acknowledged (applied to the memtable) when it was submitted.
            let mut syncs: Vec<(ReqId, usize)> = Vec::new();
            let covers = acked;
            for _ in 0..1 + self.rng.below(4) {
                match self.rng.below(20) {
                    0 => syncs.push((s.submit(Request::Sync), self.batches.len())),
                    // (writes acknowledged later than their round are rare: stalls)
                    1 => syncs.push((s.submit(Request::Flush), self.batches.len().min(covers))),
                    2 => {
                        let id = s.submit(Request::CompactRange { lo: key(0), hi: key(space) });
                        syncs.push((id, self.batches.len().min(covers)));
                    }
                    _ => {
                        let mut b = Batch::new();
                        for _ in 0..1 + self.rng.below(3) {
                            let k = self.rng.below(space);
                            self.version += 1;
                            if self.rng.chance(0.15) {
                                b.delete(&key(k));
                            } else {
                                b.put(&key(k), &value(k, self.version));
                            }
                        }
                        let id = s.submit(Request::Write(b.clone()));
                        self.batches.push(b);
                        writes.push((id, self.batches.len()));
                    }
                }
            }
            s.advance(1 + self.rng.below(3));
            for (id, upto) in writes {
                match s.take_reply(id) {
                    Some(Ok(Reply::Written { .. })) => {
                        acked = acked.max(upto);
                        if sync_mode {
                            self.durable = self.durable.max(upto);
                        }
                    }
                    Some(Ok(_)) | None => {}
                    Some(Err(e)) => panic!("write failed without faults: {e}"),
                }
            }
            for (id, upto) in syncs {
                // A completed sync, flush or compaction covers every batch submitted before it.
                if let Some(Ok(_)) = s.take_reply(id) {
                    self.durable = self.durable.max(upto);
                }
            }
        }
        self.crash_points += 1;
        let tear = self.rng.chance(0.5);
        s.crash(tear)
    }

    /// Recovers and checks the state against the prefixes of the batch history.
    fn recover_and_check(&mut self, disk: SimDisk, seed: u64) -> SimStore {
        let mut s = SimStore::open(self.config.clone(), disk);
        match s.open_result() {
            Some(Ok(())) => {}
            other => panic!("seed {seed}: recovery failed: {other:?}"),
        }
        let got = scan_all(&mut s);
        let mut model = Model::default();
        for b in &self.batches[..self.durable] {
            model.apply(b);
        }
        let mut k = self.durable;
        loop {
            if model.scan(&Bound::Unbounded, &Bound::Unbounded, false, usize::MAX) == got {
                break;
            }
            if k == self.batches.len() {
                let want = model.scan(&Bound::Unbounded, &Bound::Unbounded, false, usize::MAX);
                let diff: Vec<_> = want.iter().filter(|e| !got.contains(e)).map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned())).take(5).collect();
                let extra: Vec<_> = got.iter().filter(|e| !want.contains(e)).map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned())).take(5).collect();
                eprintln!("{:?} missing {diff:?}\n extra {extra:?}", self.config.durability);
                for (k, _) in want.iter().filter(|e| !got.contains(e)) {
                    eprintln!("get {:?} -> {:?} stats {:?}", String::from_utf8_lossy(k), s.call(Request::Get { key: k.clone(), snapshot: None }).map(|r| r.map(|r| format!("{r:?}"))), s.store.stats().level_files);
                }
                panic!(
                    "seed {seed}: recovered state is no prefix of the history (durable {} of {} batches)\n got {} keys",
                    self.durable,
                    self.batches.len(),
                    got.len()
                );
            }
            model.apply(&self.batches[k]);
            k += 1;
        }
        // The recovered prefix is now the history: later batches never happened.
        self.batches.truncate(k);
        self.durable = k;
        s
    }
}

fn run_seed(seed: u64, crashes: u64) -> u64 {
    let mut run = Run::new(seed);
    let mut s = SimStore::open(run.config.clone(), SimDisk::new(seed));
    for _ in 0..crashes {
        let disk = run.until_crash(s);
        s = run.recover_and_check(disk, seed);
    }
    run.crash_points
}

#[test]
fn acknowledged_writes_survive_every_crash_point() {
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_seed(one.parse().expect("STRATA_SEED is a number"), 5);
        return;
    }
    let target: u64 = std::env::var("STRATA_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut points = 0;
    let mut seed = 0;
    while points < target {
        points += run_seed(seed, 5);
        seed += 1;
    }
    eprintln!("crash points: {points} over {seed} seeds");
}
