//! Crash loop for etcd's commands through the executor on the sim disk: compare-and-swap
//! transactions over several keys, lease grants with keys attached, lease expiry by time,
//! compaction and its physical GC steps, with the power cut after a random number of disk
//! requests (unsynced data lost, the last write torn half the time), then recovery. After the
//! last recovery:
//! * every acknowledged transaction is wholly visible at its revision (above the mark);
//! * no transaction is partly visible: the versions carrying its unique value all share one
//!   revision and, above the compaction mark, exist on every key it wrote;
//! * an acknowledged expiry left none of the lease's keys and no table entry, and every expired
//!   lease's keys were deleted at one revision;
//! * the compaction mark is at least the last acknowledged one, and reads below it fail.
//!
//! `STRATA_ETCD_CRASH_SEEDS` sets the seeds (default 40; 4 epochs each); `STRATA_SEED` replays
//! one.
use std::collections::BTreeMap;
use strata_engine::lsm::config::Durability;
use strata_engine::mvcc::cas::{TxnOp, TxnRequest};
use strata_engine::mvcc::error::EtcdError;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::etcd::{EtcdCommand, EtcdResponse};
use strata_engine::mvcc::exec::{ExecConfig, ExecError};
use strata_engine::mvcc::lease::Expiry;
use strata_engine::mvcc::{LeaseId, Ts};
use strata_sim::disk::SimDisk;
use strata_sim::mvcc::SimMvcc;
use strata_sim::rng::Rng;
use strata_tests::tiny_config;

fn exec_config() -> ExecConfig {
    ExecConfig { tso_window_ms: 50, block_cache_bytes: 4 << 10, ..ExecConfig::default() }
}

fn seeds() -> Vec<u64> {
    match std::env::var("STRATA_SEED") {
        Ok(s) => vec![s.parse().expect("STRATA_SEED is a number")],
        Err(_) => (0..std::env::var("STRATA_ETCD_CRASH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40)).collect(),
    }
}

const KEYS: u64 = 12;

fn key(i: u64) -> Vec<u8> {
    format!("k{i:02}").into_bytes()
}

fn lease_key(id: u64, j: u64) -> Vec<u8> {
    format!("L{id:03}/{j}").into_bytes()
}

/// An etcd command's answer: `None` once the power is cut.
fn etcd(w: &mut SimMvcc, cmd: EtcdCommand) -> Option<Result<EtcdResponse, ExecError>> {
    match w.call(Command::Etcd(cmd))? {
        Ok(Response::Etcd(r)) => Some(Ok(r)),
        Ok(other) => panic!("etcd command answered {other:?}"),
        Err(e) => Some(Err(e)),
    }
}

#[derive(Default)]
struct Model {
    next_tag: u64,
    next_lease: u64,
    /// Every transaction submitted: tag → keys.
    attempted: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Acknowledged: tag → revision.
    acked: BTreeMap<u64, Ts>,
    /// Acknowledged lease puts: lease → keys.
    lease_keys: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Acknowledged expiries.
    expired: Vec<u64>,
    /// The last acknowledged compaction mark.
    mark: Ts,
    counts: [u64; 4],
}

impl Model {
    /// One random step; false once the power is cut.
    fn step(&mut self, w: &mut SimMvcc, rng: &mut Rng) -> bool {
        match rng.below(100) {
            0..=44 => {
                let tag = self.next_tag;
                self.next_tag += 1;
                let mut keys: Vec<Vec<u8>> = Vec::new();
                while keys.len() < 2 + rng.below(2) as usize {
                    let k = key(rng.below(KEYS));
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                self.attempted.insert(tag, keys.clone());
                let success = keys.iter().map(|k| TxnOp::Put { key: k.clone(), value: format!("t{tag}").into_bytes(), lease: None }).collect();
                match etcd(w, EtcdCommand::Txn(TxnRequest { success, ..TxnRequest::default() })) {
                    None => return false,
                    Some(Ok(EtcdResponse::Txn(r))) => {
                        self.acked.insert(tag, r.revision);
                        self.counts[0] += 1;
                    }
                    other => panic!("txn answered {other:?}"),
                }
            }
            45..=59 => {
                self.next_lease += 1;
                let id = self.next_lease;
                match etcd(w, EtcdCommand::LeaseGrant { id: LeaseId(id), ttl_ms: 20 + rng.below(200) }) {
                    None => return false,
                    Some(Ok(_)) => {}
                    other => panic!("grant answered {other:?}"),
                }
                let keys: Vec<Vec<u8>> = (0..1 + rng.below(3)).map(|j| lease_key(id, j)).collect();
                let success = keys.iter().map(|k| TxnOp::Put { key: k.clone(), value: b"leased".to_vec(), lease: Some(LeaseId(id)) }).collect();
                match etcd(w, EtcdCommand::Txn(TxnRequest { success, ..TxnRequest::default() })) {
                    None => return false,
                    // Expired already (the clock moved): the put found no lease.
                    Some(Err(ExecError::Etcd(EtcdError::LeaseNotFound(_)))) => {}
                    Some(Ok(_)) => {
                        self.lease_keys.insert(id, keys);
                    }
                    other => panic!("leased put answered {other:?}"),
                }
            }
            60..=74 => {
                w.advance(20 + rng.below(150));
                let leases = match etcd(w, EtcdCommand::Leases) {
                    None => return false,
                    Some(Ok(EtcdResponse::Leases(l))) => l,
                    other => panic!("leases answered {other:?}"),
                };
                let now = w.now_ms();
                for l in leases.into_iter().filter(|l| l.expires_at_ms <= now) {
                    let mut keys = match etcd(w, EtcdCommand::LeaseKeys { id: l.id }) {
                        None => return false,
                        Some(Ok(EtcdResponse::Keys(k))) => k,
                        other => panic!("lease keys answered {other:?}"),
                    };
                    loop {
                        match etcd(w, EtcdCommand::LeaseExpire { id: l.id, keys: keys.clone() }) {
                            None => return false,
                            Some(Ok(EtcdResponse::LeaseKeysChanged(k))) => keys = k,
                            Some(Ok(EtcdResponse::Expiry(Expiry::Expired(_)))) => {
                                self.expired.push(l.id.0);
                                self.counts[1] += 1;
                                break;
                            }
                            Some(Ok(EtcdResponse::Expiry(_))) => break,
                            other => panic!("expire answered {other:?}"),
                        }
                    }
                }
            }
            75..=84 => {
                let Some(&rev) = self.acked.values().max() else { return true };
                if rev <= self.mark {
                    return true;
                }
                match etcd(w, EtcdCommand::Compact { revision: rev }) {
                    None => return false,
                    Some(Ok(_)) => {
                        self.mark = rev;
                        self.counts[2] += 1;
                    }
                    // A compaction applied but not acknowledged before a crash went further.
                    Some(Err(ExecError::Etcd(EtcdError::Compacted { .. }))) => return true,
                    other => panic!("compact answered {other:?}"),
                }
                // The physical part, in chunks (a crash may stop it anywhere).
                let mut from = Vec::new();
                loop {
                    match w.call(Command::Gc { from: from.clone(), upper: None, safe_point: rev, max_keys: 3 }) {
                        None => return false,
                        Some(Ok(Response::Gc { resume_from: Some(next) })) => from = next,
                        Some(Ok(Response::Gc { resume_from: None })) => break,
                        other => panic!("gc answered {other:?}"),
                    }
                }
                self.counts[3] += 1;
            }
            _ => w.advance(1 + rng.below(10)),
        }
        !w.crashed()
    }

    fn check(&self, w: &mut SimMvcc, seed: u64) {
        let mark = match etcd(w, EtcdCommand::CompactionMark) {
            Some(Ok(EtcdResponse::Revision(m))) => m,
            other => panic!("mark answered {other:?}"),
        };
        assert!(mark >= self.mark, "seed {seed}: mark {mark} below the acknowledged {}", self.mark);
        let get_at = |w: &mut SimMvcc, k: &[u8], rev: Ts| match etcd(w, EtcdCommand::GetAt { key: k.to_vec(), revision: rev }) {
            Some(Ok(EtcdResponse::Kv(kv, _))) => kv,
            other => panic!("seed {seed}: get_at answered {other:?}"),
        };
        // Acknowledged transactions at or above the mark: wholly visible at their revision.
        for (tag, rev) in &self.acked {
            if *rev < mark {
                continue;
            }
            for k in &self.attempted[tag] {
                let kv = get_at(w, k, *rev).unwrap_or_else(|| panic!("seed {seed}: t{tag} lost on {k:?}"));
                assert_eq!(kv.value, format!("t{tag}").into_bytes(), "seed {seed}: t{tag} at {rev} on {k:?}");
            }
        }
        if mark > Ts::ZERO {
            let below = etcd(w, EtcdCommand::GetAt { key: key(0), revision: mark.prev() });
            assert!(matches!(below, Some(Err(ExecError::Etcd(EtcdError::Compacted { .. })))), "seed {seed}: read below the mark {below:?}");
        }
        // No transaction partly visible.
        let mut found: BTreeMap<Vec<u8>, Vec<(Ts, usize)>> = BTreeMap::new();
        for i in 0..KEYS {
            let k = key(i);
            let h = match etcd(w, EtcdCommand::History { key: k.clone(), limit: usize::MAX }) {
                Some(Ok(EtcdResponse::History(h))) => h,
                other => panic!("seed {seed}: history answered {other:?}"),
            };
            for e in h {
                if let Some(kv) = e.kv {
                    found.entry(kv.value).or_default().push((e.revision, 1));
                }
            }
        }
        for (tag, keys) in &self.attempted {
            let Some(versions) = found.get(format!("t{tag}").as_bytes()) else { continue };
            let rev = versions[0].0;
            assert!(versions.iter().all(|v| v.0 == rev), "seed {seed}: t{tag} at several revisions {versions:?}");
            if rev > mark {
                assert_eq!(versions.len(), keys.len(), "seed {seed}: t{tag} partly visible at {rev}");
            }
        }
        // Leases: acknowledged expiries removed the keys and the entry; every expired lease's
        // keys were deleted at one revision.
        let table: Vec<u64> = match etcd(w, EtcdCommand::Leases) {
            Some(Ok(EtcdResponse::Leases(l))) => l.iter().map(|l| l.id.0).collect(),
            other => panic!("seed {seed}: leases answered {other:?}"),
        };
        for id in &self.expired {
            assert!(!table.contains(id), "seed {seed}: expired lease {id} still in the table");
        }
        for (id, keys) in &self.lease_keys {
            let mut deletes = Vec::new();
            for k in keys {
                let now = get_at(w, k, Ts::ZERO);
                let live = table.contains(id);
                assert_eq!(now.is_some(), live, "seed {seed}: lease {id} (live {live}) key {k:?} present {}", now.is_some());
                if let Some(Ok(EtcdResponse::History(h))) = etcd(w, EtcdCommand::History { key: k.clone(), limit: 1 }) {
                    if let Some(e) = h.first().filter(|e| e.kv.is_none()) {
                        deletes.push(e.revision);
                    }
                }
            }
            if !table.contains(id) && deletes.len() == keys.len() {
                assert!(deletes.iter().all(|d| *d == deletes[0]), "seed {seed}: lease {id} keys deleted at {deletes:?}");
            }
        }
    }
}

#[test]
fn crash_loop() {
    let mut crashes = 0;
    let mut epochs = 0;
    let mut totals = [0u64; 4];
    for seed in seeds() {
        let mut rng = Rng::new(seed ^ 0xE7CD);
        let config = tiny_config(Durability::SyncEachWrite);
        let mut model = Model::default();
        let mut disk = SimDisk::new(seed);
        let mut now = 0;
        for epoch in 0..4 {
            let mut w = SimMvcc::open_at(config.clone(), exec_config(), disk, now, None);
            assert!(matches!(w.recovered, Some(Ok(_))), "seed {seed} epoch {epoch}: recovery {:?}", w.recovered);
            w.sim.crash_budget = Some(30 + rng.below(500));
            for _ in 0..80 {
                if !model.step(&mut w, &mut rng) {
                    break;
                }
            }
            epochs += 1;
            crashes += u64::from(w.crashed());
            now = w.now_ms() + 1;
            disk = w.crash(rng.chance(0.5));
        }
        let mut w = SimMvcc::open_at(config, exec_config(), disk, now, None);
        assert!(matches!(w.recovered, Some(Ok(_))), "seed {seed}: final recovery {:?}", w.recovered);
        model.check(&mut w, seed);
        for (t, c) in totals.iter_mut().zip(model.counts) {
            *t += c;
        }
    }
    eprintln!("{crashes} of {epochs} epochs cut short; acknowledged: {} txns, {} expiries, {} compactions, {} GC passes", totals[0], totals[1], totals[2], totals[3]);
    assert!(crashes * 2 >= epochs, "only {crashes} of {epochs} epochs were cut short");
    assert!(totals[0] > 50 && totals[1] > 0 && totals[2] > 0, "workload too small: {totals:?}");
}
