//! Serving reads from the local store: a point get at a commit timestamp, over the store's
//! current state, resumable on missing SST blocks.
//!
//! The node decides *when* a read may run (a linearizable read once apply has reached its
//! read index, a stale read once apply has passed its timestamp); this module runs it: the
//! MVCC read [`read::get`] over a [`StoreSnapshot`], stopping with
//! [`ReadOutput::ReadBlock`] when a block is not in memory and running again when it arrives.
//! Several reads may wait for the same block.
//!
//! # Calling protocol
//!
//! ```text
//! reader.start(&store, id, key, at);                 // at: ReadAt::Latest(last_ts) or At(ts)
//! while let Some(out) = reader.poll() {
//!     ReadBlock { file, handle } => read + Block::decode, then reader.handle_block(&store, ..),
//!     Done { id, result }        => answer the client,
//! }
//! ```
use super::wire::{ClientError, ClientReply};
use crate::lsm::cache::BlockCache;
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::FileName;
use crate::lsm::sstable::{Block, BlockHandle};
use crate::lsm::store::Store;
use crate::lsm::version::Version;
use crate::mvcc::error::{MvccError, ReadError};
use crate::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use crate::mvcc::{read, Ts};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::RefCell;

/// Something the driver must act on.
#[derive(Debug)]
#[must_use]
pub enum ReadOutput {
    /// Read this block, then [`Reader::handle_block`].
    ReadBlock {
        /// The table.
        file: FileName,
        /// The block.
        handle: BlockHandle,
    },
    /// The answer to read `id`.
    Done {
        /// The read (the caller's id).
        id: u64,
        /// The value, or why there is none.
        result: Result<ClientReply, ClientError>,
    },
}

#[derive(Debug)]
struct Active {
    key: Vec<u8>,
    ts: Ts,
    own: BlockMap,
    /// Holds the files of the view a pending block belongs to.
    _view: Option<Arc<Version>>,
}

/// Runs point reads over the store. See the module docs.
pub struct Reader {
    cache: RefCell<BlockCache>,
    active: BTreeMap<u64, Active>,
    block_waits: BTreeMap<(u64, u64), Vec<u64>>,
    outputs: VecDeque<ReadOutput>,
}

impl core::fmt::Debug for Reader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader").field("active", &self.active.len()).finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader keeping up to `block_cache_bytes` of blocks.
    pub fn new(block_cache_bytes: usize) -> Reader {
        Reader {
            cache: RefCell::new(BlockCache::new(block_cache_bytes)),
            active: BTreeMap::new(),
            block_waits: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Takes the next output.
    pub fn poll(&mut self) -> Option<ReadOutput> {
        self.outputs.pop_front()
    }

    /// Reads running (waiting for blocks).
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Reads `key` at `ts` for the caller's read `id` (unique among running reads).
    pub fn start(&mut self, store: &Store, id: u64, key: Vec<u8>, ts: Ts) {
        self.active.insert(id, Active { key, ts, own: BlockMap::new(), _view: None });
        self.run(store, id);
    }

    /// Feeds a block asked for by [`ReadOutput::ReadBlock`] (or the error reading it).
    pub fn handle_block(&mut self, store: &Store, file: FileName, handle: BlockHandle, result: Result<Block, StoreError>) {
        let Some(ids) = self.block_waits.remove(&(file.number, handle.offset)) else { return };
        match result {
            Ok(block) => {
                self.cache.borrow_mut().insert(file.number, handle.offset, block.clone());
                for id in ids {
                    if let Some(a) = self.active.get_mut(&id) {
                        a.own.insert((file.number, handle.offset), block.clone());
                        a._view = None;
                        self.run(store, id);
                    }
                }
            }
            Err(e) => {
                for id in ids {
                    self.active.remove(&id);
                    self.outputs.push_back(ReadOutput::Done { id, result: Err(ClientError::Unavailable(e.to_string())) });
                }
            }
        }
    }

    fn run(&mut self, store: &Store, id: u64) {
        let Some(a) = self.active.get(&id) else { return };
        let (result, need) = {
            let snap = StoreSnapshot::new(store, &a.own, &self.cache);
            match read::get(&snap, &a.key, a.ts) {
                Ok(value) => (Some(Ok(ClientReply::Value { value, read_ts: a.ts.0 })), None),
                Err(MvccError::Read(ReadError::Pending)) => match snap.needed() {
                    Some(n) => (None, Some((n, snap.view().version.clone()))),
                    None => (Some(Err(ClientError::Unavailable("read pending with no block named".into()))), None),
                },
                Err(e) => (Some(Err(ClientError::Unavailable(e.to_string()))), None),
            }
        };
        if let Some(result) = result {
            self.active.remove(&id);
            self.outputs.push_back(ReadOutput::Done { id, result });
            return;
        }
        if let Some((n, view)) = need {
            if let Some(a) = self.active.get_mut(&id) {
                a._view = Some(view);
            }
            let waiters = self.block_waits.entry((n.file.number, n.handle.offset)).or_default();
            if waiters.is_empty() {
                self.outputs.push_back(ReadOutput::ReadBlock { file: n.file, handle: n.handle });
            }
            waiters.push(id);
        }
    }
}
