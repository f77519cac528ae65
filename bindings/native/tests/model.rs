//! `Db` against a `BTreeMap` on real files: random puts, deletes, batches, gets, ranges both
//! ways, snapshots, flushes, range compactions and reopens. Prints the seed on failure.
use std::collections::BTreeMap;
use std::ops::Bound;
use strata::raw::Db;
use strata::{Batch, Durability, Options};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn key(&mut self) -> Vec<u8> {
        format!("k{:03}", self.below(300)).into_bytes()
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options(seed: u64) -> Options {
    let durability = if seed % 2 == 0 { Durability::SyncEachWrite } else { Durability::Manual };
    let mut o = Options::default().memtable_bytes(8 << 10).durability(durability);
    o.config.target_file_bytes = 8 << 10;
    o.config.level_base_bytes = 32 << 10;
    o.config.table.block_size = 512;
    o.block_cache_bytes = 16 << 10;
    o
}

fn bound(rng: &mut Rng) -> Bound<Vec<u8>> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(rng.key()),
        _ => Bound::Excluded(rng.key()),
    }
}

fn in_range(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => k <= h.as_slice(),
        Bound::Excluded(h) => k < h.as_slice(),
    };
    above && below
}

fn run(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut db = Db::open_with(dir.path(), options(seed)).unwrap();
    let mut model = Model::new();
    let mut snaps: Vec<(strata::raw::Snapshot, Model)> = Vec::new();
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        match rng.below(100) {
            0..=39 => {
                let (k, v) = (rng.key(), format!("v{step}").repeat(1 + rng.below(8) as usize).into_bytes());
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            40..=49 => {
                let k = rng.key();
                db.delete(&k).unwrap();
                model.remove(&k);
            }
            50..=54 => {
                let mut b = Batch::new();
                for _ in 0..rng.below(20) {
                    let k = rng.key();
                    if rng.below(4) == 0 {
                        b.delete(&k);
                        model.remove(&k);
                    } else {
                        let v = format!("b{step}").into_bytes();
                        b.put(&k, &v);
                        model.insert(k, v);
                    }
                }
                db.write(b).unwrap();
            }
            55..=74 => {
                let k = rng.key();
                assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned(), "{ctx}: get {}", String::from_utf8_lossy(&k));
            }
            75..=84 => {
                let (lo, hi) = (bound(&mut rng), bound(&mut rng));
                let reverse = rng.below(2) == 0;
                let limit = rng.below(50) as usize + 1;
                let mut want: Vec<(Vec<u8>, Vec<u8>)> =
                    model.iter().filter(|(k, _)| in_range(k, &lo, &hi)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if reverse {
                    want.reverse();
                }
                want.truncate(limit);
                let it = if reverse { db.range_rev((lo.clone(), hi.clone())) } else { db.range((lo.clone(), hi.clone())) };
                let got: Vec<_> = it.take(limit).map(|r| r.unwrap()).collect();
                assert_eq!(got, want, "{ctx}: range {lo:?}..{hi:?} reverse {reverse}");
            }
            85..=88 => {
                if snaps.len() < 3 {
                    snaps.push((db.snapshot(), model.clone()));
                } else {
                    snaps.remove(rng.below(3) as usize);
                }
            }
            89..=92 => {
                if let Some((snap, at)) = snaps.last() {
                    let k = rng.key();
                    assert_eq!(snap.get(&k).unwrap(), at.get(&k).cloned(), "{ctx}: snapshot get");
                    let got: Vec<_> = snap.range::<&[u8], _>(..).map(|r| r.unwrap()).collect();
                    let want: Vec<_> = at.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert_eq!(got, want, "{ctx}: snapshot scan");
                }
            }
            93..=95 => db.flush().unwrap(),
            96..=97 => {
                let (a, b) = (rng.key(), rng.key());
                db.compact_range(a.clone().min(b.clone()), a.max(b)).unwrap();
            }
            _ => {
                snaps.clear();
                drop(db);
                db = Db::open_with(dir.path(), options(seed)).unwrap();
            }
        }
    }
    let all: Vec<_> = db.iter().map(|r| r.unwrap()).collect();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>(), "seed {seed}: final scan");
}

#[test]
fn db_matches_a_btreemap() {
    let seeds: u64 = std::env::var("STRATA_MODEL_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    for seed in 1..=seeds {
        run(seed, 1000);
    }
}
