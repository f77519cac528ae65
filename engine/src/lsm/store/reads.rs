//! Reads on the request path: point lookups and scans, served from memory and the block
//! cache when possible and otherwise through read requests, resumed on their completions.
use super::{Pending, Reply, ReqId, Store};
use crate::lsm::error::Error;
use crate::lsm::io::{FileName, IoError, IoRequest, IoResult};
use crate::lsm::iter::{IterStep, StoreIter};
use crate::lsm::memtable::Found;
use crate::lsm::read::{Lookup, LookupStep};
use crate::lsm::sstable::{Block, BlockHandle};
use alloc::vec::Vec;

impl Store {

    pub(super) fn get(&mut self, id: ReqId, key: Vec<u8>, snapshot: Option<u64>) {
        let seq = snapshot.unwrap_or(self.visible_seq).min(self.visible_seq);
        match self.get_in_memory(&key, seq) {
            Some(Found::Value(v)) => self.reply(id, Ok(Reply::Value(Some(v)))),
            Some(Found::Deleted) => self.reply(id, Ok(Reply::Value(None))),
            None => {
                let lookup = Lookup::new(self.version.clone(), &key, seq);
                self.continue_lookup(id, lookup);
            }
        }
    }

    pub(super) fn continue_lookup(&mut self, id: ReqId, mut lookup: Lookup) {
        loop {
            match lookup.step() {
                LookupStep::Done(v) => {
                    self.reply(id, Ok(Reply::Value(v)));
                    return;
                }
                LookupStep::NeedBlock { file, handle } => match self.cache.get(file.number, handle.offset) {
                    Some(b) => lookup.supply(&b),
                    None => {
                        let req = IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) };
                        self.emit_io(req, Pending::Read { id, lookup, file, handle });
                        return;
                    }
                },
            }
        }
    }

    pub(super) fn continue_scan(&mut self, id: ReqId, mut scan: ScanState) {
        while scan.out.len() < scan.limit {
            match scan.it.step() {
                IterStep::Item(k, v) => scan.out.push((k, v)),
                IterStep::NeedMemtable => self.refill_iter(&mut scan.it),
                IterStep::NeedBlock { file, handle } => match self.cache.get(file.number, handle.offset) {
                    Some(b) => scan.it.supply(&b),
                    None => {
                        let req = IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) };
                        self.emit_io(req, Pending::Scan { id, scan, file, handle });
                        return;
                    }
                },
                IterStep::End => break,
            }
        }
        self.release_iter(&scan.it);
        self.reply(id, Ok(Reply::Entries(scan.out)));
    }

    pub(super) fn read_done(&mut self, id: ReqId, mut lookup: Lookup, file: FileName, handle: BlockHandle, result: IoResult) {
        let decoded = match result {
            IoResult::Data(raw) => {
                let len = raw.len();
                lookup.decode_block(file, handle, raw.into(), len)
            }
            other => decode_block(file, handle, other),
        };
        match decoded {
            Ok(b) => {
                lookup.supply(&b);
                self.cache.insert(file.number, handle.offset, b);
                self.continue_lookup(id, lookup);
            }
            Err(e) => self.reply(id, Err(e)),
        }
    }
}

/// A scan in progress on the request path.
#[derive(Debug)]
pub(super) struct ScanState {
    pub(super) it: StoreIter,
    pub(super) limit: usize,
    pub(super) out: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn decode_block(file: FileName, handle: BlockHandle, result: IoResult) -> Result<Block, Error> {
    match result {
        IoResult::Data(raw) => Block::decode(file, handle, raw),
        IoResult::Failed(error) => Err(Error::Io { file: Some(file), op: "read", error }),
        _ => Err(Error::Io { file: Some(file), op: "read", error: IoError::Other("unexpected completion".into()) }),
    }
}

