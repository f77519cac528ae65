//! Model-based randomized test: the store against a `BTreeMap`, with flushes, compactions,
//! snapshots, scans both ways and clean reopenings at random points.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::store::{Reply, Request};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value, Model};

fn get(s: &mut SimStore, k: &[u8], snapshot: Option<u64>) -> Option<Vec<u8>> {
    match s.call(Request::Get { key: k.to_vec(), snapshot }) {
        Some(Ok(Reply::Value(v))) => v,
        other => panic!("get {k:?}: {other:?}"),
    }
}

fn bound(rng: &mut Rng, space: u64) -> Bound<Vec<u8>> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(rng.below(space))),
        _ => Bound::Excluded(key(rng.below(space))),
    }
}

/// Runs one seed; returns how many manifest rollovers it saw.
fn run_seed(seed: u64, ops: usize) -> u64 {
    let mut rng = Rng::new(seed);
    let durability = if seed % 2 == 0 { Durability::SyncEachWrite } else { Durability::Manual };
    let config = tiny_config(durability);
    let mut s = SimStore::open(config.clone(), SimDisk::new(seed));
    assert_eq!(s.open_result(), Some(&Ok(())));
    let mut model = Model::default();
    let mut snapshots: Vec<(u64, Model)> = Vec::new();
    let space = 20 + rng.below(200);
    let mut version = 0;
    let mut flushes = 0;
    let mut rollovers = 0;
    for step in 0..ops {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(100) {
            0..=44 => {
                let mut b = Batch::new();
                for _ in 0..1 + rng.below(4) {
                    let k = rng.below(space);
                    version += 1;
                    if rng.chance(0.2) {
                        b.delete(&key(k));
                    } else {
                        b.put(&key(k), &value(k, version));
                    }
                }
                let r = s.call(Request::Write(b.clone()));
                assert!(matches!(r, Some(Ok(Reply::Written { .. }))), "{ctx}: {r:?}");
                model.apply(&b);
            }
            45..=64 => {
                let k = key(rng.below(space));
                assert_eq!(get(&mut s, &k, None), model.0.get(&k).cloned(), "{ctx}: get {k:?}");
            }
            65..=74 => {
                let (lower, upper) = (bound(&mut rng, space), bound(&mut rng, space));
                let reverse = rng.chance(0.5);
                let limit = 1 + rng.below(50) as usize;
                let snapshot = None;
                let got = match s.call(Request::Scan { lower: lower.clone(), upper: upper.clone(), reverse, limit, snapshot }) {
                    Some(Ok(Reply::Entries(e))) => e,
                    other => panic!("{ctx}: scan {other:?}"),
                };
                let valid = match (&lower, &upper) {
                    (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) => l <= u,
                    _ => true,
                };
                if valid && !(matches!((&lower, &upper), (Bound::Excluded(l), Bound::Excluded(u)) if l == u)) {
                    assert_eq!(got, model.scan(&lower, &upper, reverse, limit), "{ctx}: scan {lower:?}..{upper:?} rev={reverse}");
                }
            }
            75..=79 => {
                let seq = s.store.snapshot();
                snapshots.push((seq, model.clone()));
            }
            80..=84 if !snapshots.is_empty() => {
                let i = rng.below(snapshots.len() as u64) as usize;
                let (seq, m) = &snapshots[i];
                let (seq, m) = (*seq, m.clone());
                let k = key(rng.below(space));
                assert_eq!(get(&mut s, &k, Some(seq)), m.0.get(&k).cloned(), "{ctx}: snapshot get");
                let got = match s.call(Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse: rng.chance(0.5), limit: usize::MAX, snapshot: Some(seq) }) {
                    Some(Ok(Reply::Entries(e))) => e.len(),
                    other => panic!("{ctx}: {other:?}"),
                };
                assert_eq!(got, m.0.len(), "{ctx}: snapshot scan length");
                if rng.chance(0.3) {
                    s.store.release_snapshot(seq);
                    snapshots.swap_remove(i);
                }
            }
            85..=89 => {
                assert_eq!(s.call(Request::Flush), Some(Ok(Reply::Done)), "{ctx}");
            }
            90..=92 => {
                let (a, b) = (key(rng.below(space)), key(rng.below(space)));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                assert_eq!(s.call(Request::CompactRange { lo, hi }), Some(Ok(Reply::Done)), "{ctx}");
            }
            93..=95 => {
                // Clean reopen: sync what the mode left buffered, then restart from the disk.
                assert_eq!(s.call(Request::Sync), Some(Ok(Reply::Done)), "{ctx}");
                for (seq, _) in snapshots.drain(..) {
                    s.store.release_snapshot(seq);
                }
                flushes += s.store.stats().flushes;
                rollovers += s.store.stats().manifest_rollovers;
                let disk = s.crash(false);
                s = SimStore::open(config.clone(), disk);
                assert_eq!(s.open_result(), Some(&Ok(())), "{ctx}: reopen");
            }
            _ => {
                let k = key(rng.below(space));
                assert_eq!(get(&mut s, &k, None), model.0.get(&k).cloned(), "{ctx}: get {k:?}");
            }
        }
    }
    // Everything, both ways.
    for reverse in [false, true] {
        let got = match s.call(Request::Scan { lower: Bound::Unbounded, upper: Bound::Unbounded, reverse, limit: usize::MAX, snapshot: None }) {
            Some(Ok(Reply::Entries(e))) => e,
            other => panic!("seed {seed}: {other:?}"),
        };
        assert_eq!(got, model.scan(&Bound::Unbounded, &Bound::Unbounded, reverse, usize::MAX), "seed {seed} final scan");
    }
    flushes += s.store.stats().flushes;
    rollovers += s.store.stats().manifest_rollovers;
    assert!(flushes > 0 || ops < 100, "seed {seed}: no flush happened");
    rollovers
}

#[test]
fn store_matches_btreemap_model() {
    let seeds: u64 = std::env::var("STRATA_MODEL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_seed(one.parse().expect("STRATA_SEED is a number"), 600);
        return;
    }
    let rollovers: u64 = (0..seeds).map(|seed| run_seed(seed, 600)).sum();
    assert!(rollovers > 0, "no manifest rollover was exercised");
}
