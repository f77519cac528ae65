//! Iterators over the store while memtables are frozen and flushed under them.
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config, Durability};
use strata_engine::lsm::iter::{IterStep, StoreIter};
use strata_engine::lsm::sstable::Block;
use strata_engine::lsm::store::Request;
use strata_sim::disk::SimDisk;
use strata_sim::store::SimStore;
use strata_tests::{key, tiny_config, value};

fn drain(s: &mut SimStore, it: &mut StoreIter) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    loop {
        match it.step() {
            IterStep::Item(k, _) => keys.push(k),
            IterStep::NeedMemtable => s.store.refill_iter(it),
            IterStep::NeedBlock { file, handle } => {
                let req = strata_engine::lsm::io::IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) };
                let raw = match s.disk.execute(req) {
                    strata_engine::lsm::io::IoResult::Data(d) => d,
                    other => panic!("read: {other:?}"),
                };
                it.supply(&Block::decode(file, handle, raw).expect("block"));
            }
            IterStep::End => return keys,
        }
    }
}

#[test]
fn releasing_one_iterator_keeps_anothers_flushed_memtable() {
    let config = Config { memtable_bytes: 1 << 20, ..tiny_config(Durability::SyncEachWrite) };
    let mut s = SimStore::open(config, SimDisk::new(9));
    for i in 0..600 {
        let mut b = Batch::new();
        b.put(&key(i), &value(i, 1));
        s.call(Request::Write(b));
    }
    // it0 reads the active memtable through the store.
    let mut it0 = s.store.iter(Bound::Unbounded, Bound::Unbounded, false, None);
    // Freeze it (the flush job is queued, not run), then open it1 while it is frozen.
    let flush = s.submit(Request::Flush);
    let mut it1 = s.store.iter(Bound::Unbounded, Bound::Unbounded, true, None);
    s.run();
    assert!(s.take_reply(flush).is_some());
    // Releasing it1 must not drop the memtable it0 still refills from.
    assert_eq!(drain(&mut s, &mut it1).len(), 600);
    s.store.release_iter(&it1);
    assert_eq!(drain(&mut s, &mut it0).len(), 600, "it0 lost its memtable");
    s.store.release_iter(&it0);
}
