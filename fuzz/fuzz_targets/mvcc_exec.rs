//! Fuzzes the MVCC executor's input path: arbitrary command sequences (several in flight at
//! once, with arbitrary keys and timestamps), flushes, time jumps and power cuts, on the sim
//! disk. Checks: nothing panics, the executor's invariants hold after every step, every
//! command gets exactly one reply unless the power was cut, and timestamps strictly increase
//! across restarts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::sstable::TableOptions;
use strata_engine::lsm::store::Request;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::ExecConfig;
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest};
use strata_engine::mvcc::Ts;
use strata_sim::disk::SimDisk;
use strata_sim::mvcc::SimMvcc;

fn config() -> Config {
    Config {
        durability: Durability::SyncEachWrite,
        memtable_bytes: 1 << 10,
        table: TableOptions { block_size: 128, restart_interval: 4, bloom_bits_per_key: 10 },
        l0_compaction_trigger: 3,
        target_file_bytes: 2 << 10,
        block_cache_bytes: 4 << 10,
        ..Config::default()
    }
}

fn open(disk: SimDisk, now: u64) -> SimMvcc {
    let w = SimMvcc::open_at(config(), ExecConfig { tso_window_ms: 20, block_cache_bytes: 1 << 10, ..ExecConfig::default() }, disk, now, None);
    assert!(matches!(w.recovered, Some(Ok(_))), "recovery: {:?}", w.recovered);
    w
}

fuzz_target!(|data: &[u8]| {
    let mut w = open(SimDisk::new(1), 0);
    let mut stamps: Vec<Ts> = vec![Ts(1)];
    let mut last = Ts::ZERO;
    let mut pending = Vec::new();
    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let mut arg = || bytes.next().unwrap_or(0);
        let key = |b: u8| vec![b'a' + b % 6];
        let ts = |b: u8| stamps[usize::from(b) % stamps.len()];
        let cmd = match op % 16 {
            0 => Command::Timestamp,
            1 | 2 => {
                let (k, s, n) = (arg(), arg(), arg());
                let mut req = PrewriteRequest::new(key(k), ts(s), u64::from(arg()));
                for i in 0..1 + n % 3 {
                    let kk = key(k.wrapping_add(i));
                    if req.mutations.iter().any(|m| m.key() == kk.as_slice()) {
                        continue;
                    }
                    req.mutations.push(match (n >> 2) % 4 {
                        0 => Mutation::Delete(kk),
                        1 => Mutation::Lock(kk),
                        2 => Mutation::Insert(kk, vec![n; usize::from(n)]),
                        _ => Mutation::Put(kk, vec![n; usize::from(n) * 2]),
                    });
                }
                if op % 16 == 1 { Command::Prewrite(req) } else { Command::OnePc(req) }
            }
            3 => Command::Commit { keys: vec![key(arg()), key(arg())], start_ts: ts(arg()), commit_ts: ts(arg()) },
            4 => Command::Rollback { keys: vec![key(arg())], start_ts: ts(arg()) },
            5 => Command::Cleanup { key: key(arg()), start_ts: ts(arg()) },
            6 => Command::CheckTxnStatus { primary: key(arg()), lock_ts: ts(arg()), caller_start_ts: Some(ts(arg())), rollback_if_not_exist: arg() % 2 == 0 },
            7 => Command::ResolveLock { keys: vec![key(arg())], start_ts: ts(arg()), commit_ts: (arg() % 2 == 0).then(|| ts(arg())) },
            8 => Command::TxnHeartbeat { primary: key(arg()), start_ts: ts(arg()), advise_ttl_ms: u64::from(arg()) * 100 },
            9 => Command::Gc { from: Vec::new(), upper: None, safe_point: ts(arg()), max_keys: 100 },
            10 | 11 => Command::Get { key: key(arg()), read_ts: ts(arg()) },
            12 => Command::Scan { from: key(arg()), upper: None, read_ts: ts(arg()), limit: usize::from(arg()) },
            13 => {
                w.advance(u64::from(arg()) * 10);
                continue;
            }
            14 => {
                let _ = w.sim.submit(Request::Flush);
                continue;
            }
            _ => {
                // Power cut after a few more disk requests, then recovery.
                w.sim.crash_budget = Some(u64::from(arg() % 16));
                w.run();
                let now = w.now_ms();
                let disk = w.crash(arg() % 2 == 0);
                w = open(disk, now);
                pending.clear();
                continue;
            }
        };
        pending.push(w.submit(cmd));
        if arg() % 3 != 0 {
            w.run();
            if w.crashed() {
                let now = w.now_ms();
                w = open(w.crash(true), now);
                pending.clear();
                continue;
            }
            // Commands in flight together may be answered in any order; the timestamps they
            // were given are distinct and above every one given before.
            let mut round = Vec::new();
            for id in pending.drain(..) {
                match w.take_reply(id) {
                    Some(Ok(Response::Timestamp(t))) | Some(Ok(Response::Committed { commit_ts: t })) => round.push(t),
                    Some(_) => {}
                    None => panic!("command {id:?} got no reply"),
                }
            }
            round.sort();
            for pair in round.windows(2) {
                assert!(pair[0] < pair[1], "timestamp {} issued twice", pair[0]);
            }
            if let Some(first) = round.first() {
                assert!(*first > last, "timestamp {first} after {last}");
            }
            last = round.last().copied().unwrap_or(last);
            stamps.extend(round);
        }
    }
});
