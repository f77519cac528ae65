//! The store's whole input path: arbitrary sequences of writes, reads, scans, flushes,
//! compactions, syncs, power cuts (clean or torn), bit flips and disk faults, driven over the
//! sim disk. Nothing may panic (the sim driver also checks the store's invariants after every
//! output); corrupt disks must give typed errors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::sstable::TableOptions;
use strata_engine::lsm::store::Request;
use strata_sim::disk::SimDisk;
use strata_sim::store::SimStore;

fn config(mode: u8) -> Config {
    Config {
        durability: match mode % 3 {
            0 => Durability::SyncEachWrite,
            1 => Durability::Manual,
            _ => Durability::SyncEveryMs(3),
        },
        memtable_bytes: 1 << 10,
        wal_buffer_bytes: 256,
        table: TableOptions { block_size: 128, restart_interval: 2, bloom_bits_per_key: 10 },
        l0_compaction_trigger: 2,
        level_base_bytes: 4 << 10,
        level_multiplier: 3,
        target_file_bytes: 2 << 10,
        max_key_len: 64,
        max_value_len: 256,
        ..Config::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let Some(mode) = next() else { return };
    let cfg = config(mode);
    let mut s = SimStore::open(cfg.clone(), SimDisk::new(u64::from(mode)));
    while let Some(op) = next() {
        let a = next().unwrap_or(0);
        let b = next().unwrap_or(0);
        let key = vec![b'k', a % 32];
        match op % 12 {
            0..=3 => {
                let mut batch = Batch::new();
                batch.put(&key, &vec![b; usize::from(b)]);
                if op & 0x10 != 0 {
                    batch.delete(&[b'k', b % 32]);
                }
                if op & 0x20 != 0 {
                    batch.put(&[], b"empty key");
                }
                s.submit(Request::Write(batch));
            }
            4 => {
                s.submit(Request::Get { key, snapshot: None });
            }
            5 => {
                let lower = if a & 1 == 0 { Bound::Unbounded } else { Bound::Included(key.clone()) };
                let upper = if a & 2 == 0 { Bound::Unbounded } else { Bound::Excluded(vec![b'k', b % 32]) };
                s.submit(Request::Scan { lower, upper, reverse: a & 4 != 0, limit: usize::from(b), snapshot: None });
            }
            6 => {
                s.submit(Request::Flush);
            }
            7 => {
                s.submit(Request::CompactRange { lo: vec![], hi: vec![0xff] });
            }
            8 => {
                s.submit(Request::Sync);
            }
            9 => {
                // Power cut, then recovery (possibly after a bit flip).
                let mut disk = s.crash(a & 1 != 0);
                if a & 2 != 0 {
                    let files = disk.files();
                    if !files.is_empty() {
                        let (f, len) = files[usize::from(b) % files.len()];
                        if len > 0 {
                            disk.flip_bit(f, (usize::from(a) * 31 + usize::from(b)) % len, b);
                        }
                    }
                }
                s = SimStore::open(cfg.clone(), disk);
                if s.open_result().is_some_and(|r| r.is_err()) {
                    return;
                }
            }
            10 => {
                s.disk.faults.disk_full = a & 1 != 0;
                s.disk.faults.write_error_rate = if a & 2 != 0 { 0.2 } else { 0.0 };
            }
            _ => s.advance(u64::from(a % 8)),
        }
        if op & 0x40 != 0 {
            s.run();
        }
    }
    s.run();
});
