//! What a [`Node`](super::Node) reports: its outputs, events, errors and counters.
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::{IoId, IoRequest};
use crate::lsm::job::Job;
use crate::node::io::Disk;
use crate::node::raftlog::LogError;
use crate::node::wire::{ClientError, ClientReply, Membership, RegionId, WireError};
use alloc::string::String;
use alloc::vec::Vec;
use strata_raft::{Index, NodeId, StepError, Term};

/// Why a node stopped. The driver restarts it (a new `Node::open` on the same disks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError {
    /// The store failed to open or failed later.
    Store(StoreError),
    /// The Raft log cannot be read or written.
    Log(LogError),
    /// Apply stopped.
    Apply(crate::node::apply::ApplyError),
    /// The durable state of the two disks does not fit together, or Raft refused it.
    Inconsistent(String),
    /// A received snapshot cannot be installed (its files failed to write or to open). The
    /// store keeps its old contents; after a restart the leader sends the snapshot again.
    Snapshot(String),
}

impl core::fmt::Display for NodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NodeError::Store(e) => write!(f, "store: {e}"),
            NodeError::Log(e) => write!(f, "raft log: {e}"),
            NodeError::Apply(e) => write!(f, "apply: {e}"),
            NodeError::Inconsistent(why) => write!(f, "inconsistent state: {why}"),
            NodeError::Snapshot(why) => write!(f, "snapshot: {why}"),
        }
    }
}

/// Why bytes from a peer were refused (the node's state is unchanged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerError {
    /// Not a peer message.
    Decode(WireError),
    /// For a region this node does not host.
    UnknownRegion(RegionId),
    /// The node is still recovering (or has failed).
    NotReady,
    /// The Raft core refused the message.
    Raft(StepError),
    /// A snapshot chunk that does not decode (checked before Raft sees it).
    Snapshot(crate::node::snapshot::format::SnapshotError),
    /// This node was removed from the region and takes part in nothing more.
    Removed,
}

/// Something that happened, for traces and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// Recovery finished: Raft starts from this state.
    Recovered {
        /// Entries applied (the store's durable mark, or its apply state).
        applied: Index,
        /// The last entry in the log.
        last_index: Index,
        /// The term.
        term: Term,
    },
    /// The known leader changed.
    LeaderChanged {
        /// The term.
        term: Term,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// Entries handed to the Raft log to make durable.
    Persisting {
        /// How many entries.
        entries: usize,
        /// The last one's index (0 if none).
        last: Index,
    },
    /// Entries up to `index` are applied.
    Applied {
        /// The last applied index.
        index: Index,
    },
    /// A store flush installed: entries up to `mark` survive a crash without the log.
    Flushed {
        /// The store's durable mark.
        mark: u64,
    },
    /// The Raft log was compacted up to `index`.
    Compacted {
        /// The new first index minus one.
        index: Index,
    },
    /// Leader: the store's tables at `index` are pinned and offered to followers that need
    /// a snapshot.
    SnapshotPinned {
        /// The applied index they hold.
        index: Index,
        /// Files.
        files: usize,
        /// Bytes of the snapshot stream.
        bytes: u64,
    },
    /// Follower: a received snapshot is installed as the store's contents.
    SnapshotInstalled {
        /// Its index.
        index: Index,
    },
    /// Recovery found the store ahead of the Raft log (a crash after a snapshot's install,
    /// before the log recorded it) and rebuilt the log's base at the store's applied index.
    LogRebased {
        /// The store's applied index.
        index: Index,
    },
    /// A configuration entry was applied: the region's membership from now on.
    ConfChanged {
        /// The entry.
        index: Index,
        /// The membership.
        membership: Membership,
    },
    /// This node was removed from the region (and no longer leads): it stops serving.
    Removed,
    /// The node stopped; see [`NodeError`].
    Failed(NodeError),
}

/// Something the driver must act on.
#[derive(Debug)]
#[must_use]
pub enum NodeOutput {
    /// Send these bytes (an encoded [`PeerMessage`]) to peer `to`.
    Send {
        /// The peer.
        to: NodeId,
        /// The message.
        msg: Vec<u8>,
    },
    /// Carry out `req` on `disk`, then [`Node::handle_io`] with `id`.
    Io {
        /// The disk.
        disk: Disk,
        /// The node's id for it.
        id: IoId,
        /// What to do.
        req: IoRequest,
    },
    /// Run this store job on the store disk, then [`Node::handle_job`].
    Job(Job),
    /// The answer to client request `id`.
    Reply {
        /// The request.
        id: u64,
        /// The outcome.
        result: Result<ClientReply, ClientError>,
    },
    /// Something happened.
    Event(NodeEvent),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Writes proposed by this node.
    pub proposals: u64,
    /// Write entries applied by this node (every replica counts them).
    pub writes_applied: u64,
    /// Reads answered.
    pub reads: u64,
    /// Syncs of the Raft log.
    pub log_syncs: u64,
    /// Store flushes installed.
    pub flushes: u64,
    /// Log compactions.
    pub compactions: u64,
    /// Admin requests carried out (answered `Ok`).
    pub admin_done: u64,
}

