//! What a [`Node`](crate::Node) asks its driver to do, drained with `Node::poll_output`.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::confchange::ConfChangeError;
use crate::message::{Entry, HardState, Message, SnapshotMeta};
use crate::types::{Index, NodeId, PersistId, ProposalId, ReadId, Term};

/// One thing for the driver to do. Outputs must be handled in the order they are polled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "every output must be carried out"]
pub enum Output {
    /// Send this message to `message.to` (best effort: it may be lost, Raft copes).
    Send(Message),
    /// Write this durably, then call `Node::handle_persisted(id)`.
    Persist(Persist),
    /// Apply these committed entries, in order, to the state machine.
    Apply(Vec<Entry>),
    /// What became of a proposal.
    Proposal(ProposalId, ProposalOutcome),
    /// What became of a read.
    Read(ReadId, ReadOutcome),
    /// Leader: read `max_bytes` (or fewer, if it ends) of the snapshot `meta` from `offset`,
    /// then call `Node::handle_snapshot_chunk` (or `Node::handle_snapshot_unavailable`).
    ReadSnapshotChunk {
        /// The follower the snapshot is for.
        to: NodeId,
        /// The snapshot (the one of the last `Node::compact`).
        meta: Box<SnapshotMeta>,
        /// Where to read.
        offset: u64,
        /// How much at most.
        max_bytes: u64,
    },
    /// Follower: stage this chunk of an incoming snapshot (at `offset` of the snapshot's
    /// bytes; offset 0 starts a new staging area). The snapshot takes effect with the
    /// [`Persist`] that carries its metadata.
    StageSnapshotChunk {
        /// The snapshot being received.
        meta: Box<SnapshotMeta>,
        /// Offset of `data`.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// Whether this is the final chunk.
        last: bool,
    },
    /// The known leader changed.
    LeaderChanged {
        /// The current term.
        term: Term,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
}

/// A write for the driver: make `hard_state`, then `snapshot` (if any), then `entries`
/// durable, atomically or in that order. Writing `entries` replaces any stored entries
/// from `entries[0].index` on. A `snapshot` means: make the staged snapshot durable, load it
/// into the state machine, and drop every stored entry (the `entries` of the same write
/// follow the snapshot). Writes must complete in id order; completing one id completes all
/// earlier ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    /// Report completion with `Node::handle_persisted(id)`.
    pub id: PersistId,
    /// The current hard state.
    pub hard_state: HardState,
    /// A received snapshot to install.
    pub snapshot: Option<Box<SnapshotMeta>>,
    /// New log entries.
    pub entries: Vec<Entry>,
}

/// The fate of a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalOutcome {
    /// Committed at this index; it is (or will be) in an [`Output::Apply`].
    Committed(Index),
    /// Never committed.
    Dropped(DropReason),
    /// Replaced by a snapshot before this node learned whether it committed.
    Indeterminate,
}

/// Why a proposal was not committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// This node is not the leader (the known leader is given as a hint).
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// A leadership transfer is under way.
    TransferInProgress,
    /// The leader holds too many uncommitted bytes.
    UncommittedLimit,
    /// A new leader overwrote the entry before it was committed.
    Superseded,
    /// A configuration change was refused.
    InvalidConfChange(ConfChangeError),
}

/// The result of a linearizable read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Serve the read once the state machine has applied `index`.
    Ready(Index),
    /// The read could not be confirmed; retry.
    Failed(ReadFailure),
}

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// No leader is known.
    NoLeader,
    /// Leadership changed while the read was pending.
    LeaderChanged,
    /// The leader did not answer in time.
    TimedOut,
}
