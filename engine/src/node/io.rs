//! The node's I/O ids: one id space over its two disks.
//!
//! The store and the Raft log each number their I/O requests from 0, and apply and reads ask
//! for SST blocks of their own. The node hands every request to the driver under a fresh id of
//! its own, tagged with the disk it is for, and remembers whose it is, so each completion goes
//! back to its owner under the owner's id.
use crate::lsm::io::{FileName, IoId};
use crate::lsm::sstable::BlockHandle;
use alloc::collections::BTreeMap;

/// Which of the node's two disks (folders) a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Disk {
    /// The LSM store's folder (tables, manifest).
    Store,
    /// The Raft log's folder (log segments).
    Log,
}

/// Whose a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The store's request, under the store's id.
    Store(IoId),
    /// The Raft log's request, under the log's id.
    Log(IoId),
    /// A block apply asked for.
    ApplyBlock(FileName, BlockHandle),
    /// A block the reader asked for.
    ReadBlock(FileName, BlockHandle),
    /// Part `.1` of snapshot chunk read `.0` (leader).
    SnapRead(u64, usize),
    /// A write of a staged snapshot table (follower), by snapshot index.
    SnapWrite(strata_raft::Index),
    /// A delete of an abandoned staged table.
    SnapDelete,
}

/// Node-level I/O ids in flight.
#[derive(Debug, Default)]
pub(crate) struct IoRouter {
    next: u64,
    pending: BTreeMap<IoId, Owner>,
}

impl IoRouter {
    /// A fresh id for `owner`'s request.
    pub(crate) fn issue(&mut self, owner: Owner) -> IoId {
        let id = IoId(self.next);
        self.next += 1;
        self.pending.insert(id, owner);
        id
    }

    /// Whose the completed request `id` was (`None`: not issued, or already completed).
    pub(crate) fn complete(&mut self, id: IoId) -> Option<Owner> {
        self.pending.remove(&id)
    }

    /// Requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }
}
