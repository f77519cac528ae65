//! Raft snapshots as consistent sets of SST files.
//!
//! When a follower needs entries the leader has compacted away, the leader sends it the
//! store's state at an applied index instead: the tables of a pinned version of its store
//! (`Store::table_set`), which in `Durability::External` hold exactly the batches up to the
//! store's durable mark — data, client sessions and the apply state (`n a`) alike, so the
//! follower's apply and session state come with it. The leader offers that index to Raft
//! (`strata_raft::Node::offer_snapshot`), and the stream ([`format`]) travels in Raft's
//! snapshot chunks, one at a time (each acknowledged before the next is read: Raft's flow
//! control), read from the pinned files at the offsets Raft asks for ([`sender`]).
//!
//! The follower checks each chunk before Raft sees it (frame checksums, order, the header
//! naming the snapshot Raft announces) and writes the files to its store's disk under fresh
//! numbers ([`receiver`]). When Raft asks to persist the snapshot, the node waits for the
//! files to be synced and apply to be idle, installs them as the store's whole contents in
//! one manifest edit (`Store::install_tables`), reads the apply state back, and only then
//! writes the snapshot's record to the Raft log and lets Raft acknowledge it. A crash before
//! the manifest edit leaves the old state (the staged files are orphans the store deletes);
//! after it, the store holds the new state and recovery rebuilds the Raft log's base from the
//! store's apply state (index and term) if the log's record was lost.
//!
//! The design notes and the stream format are in `docs/node.md` and `docs/format.md`.
pub mod format;
pub mod receiver;
pub mod sender;

use alloc::collections::{BTreeMap, VecDeque};
use strata_raft::{Index, Persist};

/// The node's snapshot work in progress, on both sides.
#[derive(Debug, Default)]
pub(crate) struct SnapState {
    /// Leader: the pinned tables followers are being sent.
    pub(crate) export: Option<sender::Export>,
    /// Leader: chunks being read, by id.
    pub(crate) reads: BTreeMap<u64, sender::ChunkRead>,
    pub(crate) next_read: u64,
    /// Follower: the incoming snapshot being written.
    pub(crate) staging: Option<receiver::Staging>,
    /// Follower: where the install of a received snapshot is.
    pub(crate) install: InstallPhase,
    /// Persists held back until the snapshot they follow is installed (the first holds it).
    pub(crate) held: VecDeque<Persist>,
    /// Counters.
    pub(crate) stats: SnapStats,
}

/// Where the install of a received snapshot is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstallPhase {
    /// Nothing to install.
    #[default]
    Idle,
    /// A snapshot persist is held: waiting for the staged files and for apply to be idle.
    Waiting,
    /// The store is installing the tables (its request id).
    Installing(crate::lsm::store::ReqId),
    /// Apply is reading the installed apply state back.
    Reloading(Index),
}

/// Snapshot counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapStats {
    /// Chunks sent (leader).
    pub chunks_sent: u64,
    /// Snapshot bytes sent (leader).
    pub bytes_sent: u64,
    /// Chunks received and staged (follower).
    pub chunks_received: u64,
    /// Snapshots installed (follower).
    pub installed: u64,
}
