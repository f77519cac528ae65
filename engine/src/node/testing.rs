//! A minimal in-memory driver for the node's unit tests: a map of files as the disk, every
//! output carried out at once, store replies routed to the applier.
use super::apply::{ApplyConfig, ApplyOutput, Applier, AppliedWrite};
use super::command::{LogCommand, WriteCommand};
use super::wire::{ClientId, Epoch, WriteOp};
use crate::lsm::config::{Config, Durability};
use crate::lsm::io::{FileName, IoRequest, IoResult};
use crate::lsm::job::JobStep;
use crate::lsm::sstable::Block;
use crate::lsm::cache::BlockCache;
use crate::lsm::error::Error;
use crate::lsm::store::{Output, Reply, ReqId, Request, Store};
use crate::mvcc::error::{MvccError, ReadError};
use crate::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use crate::mvcc::read;
use core::cell::RefCell;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use strata_raft::{Bytes, Entry, EntryKind, Index, Term};

/// Files in memory.
pub(crate) type Files = BTreeMap<FileName, Vec<u8>>;

pub(crate) fn execute(files: &mut Files, req: IoRequest) -> IoResult {
    match req {
        IoRequest::List => IoResult::Listed(files.keys().copied().collect()),
        IoRequest::Read { file, offset, len } => {
            let f = &files[&file];
            let start = (offset as usize).min(f.len());
            IoResult::Data(f[start..(start + len as usize).min(f.len())].to_vec())
        }
        IoRequest::ReadAll { file } => IoResult::Data(files[&file].clone()),
        IoRequest::Append { file, data } => {
            files.entry(file).or_default().extend(data);
            IoResult::Done
        }
        IoRequest::Sync { .. } => IoResult::Done,
        IoRequest::Truncate { file, len } => {
            if let Some(f) = files.get_mut(&file) {
                f.truncate(len as usize)
            }
            IoResult::Done
        }
        IoRequest::Delete { file } => {
            files.remove(&file);
            IoResult::Done
        }
    }
}

/// A store and an applier over files in memory.
pub(crate) struct Rig {
    pub files: Files,
    pub store: Store,
    pub applier: Applier,
    pub applied: Vec<(Index, Option<AppliedWrite>)>,
    /// Configuration entries applied, with the membership each made.
    pub confs: Vec<(Index, super::state::ConfRecord)>,
    pub block_reads: u64,
}

pub(crate) fn store_config() -> Config {
    Config { durability: Durability::External, memtable_bytes: 4 << 10, ..Config::default() }
}

impl Rig {
    pub fn open(files: Files) -> Rig {
        Rig::open_with(files, ApplyConfig::default())
    }

    pub fn open_with(mut files: Files, config: ApplyConfig) -> Rig {
        let mut store = Store::open(store_config());
        while let Some(out) = store.poll() {
            if let Some((_, r)) = carry(&mut files, &mut store, out) {
                panic!("unexpected reply {r:?}");
            }
        }
        assert!(store.is_open());
        let applier = Applier::open(config, 0, &mut store);
        let mut rig = Rig { files, store, applier, applied: Vec::new(), confs: Vec::new(), block_reads: 0 };
        rig.run();
        assert!(rig.applier.is_ready());
        rig
    }

    /// The value of `key` at the newest applied commit timestamp.
    pub fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let mut own = BlockMap::new();
        let cache = RefCell::new(BlockCache::new(1 << 20));
        loop {
            let snap = StoreSnapshot::new(&self.store, &own, &cache);
            match read::get(&snap, key, self.applier.last_ts()) {
                Ok(v) => return v,
                Err(MvccError::Read(ReadError::Pending)) => {
                    let n = snap.needed().expect("a block");
                    let raw = match execute(&mut self.files, IoRequest::Read { file: n.file, offset: n.handle.offset, len: u64::from(n.handle.len) }) {
                        IoResult::Data(d) => d,
                        other => panic!("block read: {other:?}"),
                    };
                    own.insert((n.file.number, n.handle.offset), Block::decode(n.file, n.handle, raw).expect("block"));
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    pub fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            self.applier.push(e);
        }
        self.applier.drive(0, &mut self.store);
        self.run();
    }

    pub fn flush(&mut self) {
        self.store.submit(0, Request::Flush);
        self.run();
    }

    pub fn run(&mut self) {
        loop {
            let mut progress = false;
            while let Some(out) = self.store.poll() {
                progress = true;
                if let Some((id, result)) = carry(&mut self.files, &mut self.store, out) {
                    let _ = self.applier.handle_store_reply(0, &mut self.store, id, result);
                }
            }
            while let Some(out) = self.applier.poll() {
                progress = true;
                match out {
                    ApplyOutput::ReadBlock { file, handle } => {
                        self.block_reads += 1;
                        let raw = match execute(&mut self.files, IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }) {
                            IoResult::Data(d) => d,
                            other => panic!("block read: {other:?}"),
                        };
                        let b = Block::decode(file, handle, raw);
                        self.applier.handle_block(0, &mut self.store, file, handle, b);
                    }
                    ApplyOutput::Applied { index, write } => self.applied.push((index, write)),
                    ApplyOutput::ConfChanged { index, conf } => self.confs.push((index, conf)),
                    ApplyOutput::Recovered(r) => {
                        r.expect("apply state recovers");
                    }
                    ApplyOutput::Failed(e) => panic!("apply failed: {e}"),
                }
            }
            self.applier.check_invariants();
            if !progress {
                return;
            }
        }
    }
}

/// Carries out one store output; returns a reply.
pub(crate) fn carry(files: &mut Files, store: &mut Store, out: Output) -> Option<(ReqId, Result<Reply, Error>)> {
    match out {
        Output::Io { id, req } => {
            let r = execute(files, req);
            store.handle_io(0, id, r);
        }
        Output::Job(mut job) => {
            loop {
                match job.step() {
                    JobStep::Read { file, offset, len } => {
                        let f = &files[&file];
                        job.handle_read(Ok(f[offset as usize..(offset + len) as usize].to_vec()));
                    }
                    JobStep::WriteFile { file, data } => {
                        files.insert(file, data);
                        job.handle_write(Ok(()));
                    }
                    JobStep::Done => break,
                }
            }
            store.handle_job(0, job);
        }
        Output::Reply { id, result } => return Some((id, result)),
        Output::Opened(r) => r.expect("store opens"),
    }
    None
}

/// A write entry.
pub(crate) fn write_entry(index: u64, clock_ms: u64, client: u64, seq: u64, op: WriteOp) -> Entry {
    let cmd = LogCommand::Write(WriteCommand { epoch: Epoch::INITIAL, clock_ms, client: ClientId(client), seq, op });
    Entry { term: Term(1), index: Index(index), kind: EntryKind::Normal, data: Bytes::from(cmd.encode()) }
}

/// A put op.
pub(crate) fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put { key: key.to_vec(), value: value.to_vec() }
}

impl Rig {
    /// Every raw key and value in the store, in order.
    pub fn dump(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        use crate::lsm::iter::IterStep;
        use core::ops::Bound;
        let mut it = self.store.iter_unpinned(Bound::Unbounded, Bound::Unbounded, u64::MAX);
        let mut out = Vec::new();
        loop {
            match it.step() {
                IterStep::Item(k, v) => out.push((k, v)),
                IterStep::NeedMemtable => self.store.refill_iter(&mut it),
                IterStep::NeedBlock { file, handle } => {
                    let raw = match execute(&mut self.files, IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }) {
                        IoResult::Data(d) => d,
                        other => panic!("block read: {other:?}"),
                    };
                    it.supply(&Block::decode(file, handle, raw).expect("block"));
                }
                IterStep::End => return out,
            }
        }
    }
}
