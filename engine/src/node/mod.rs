//! The replicated node: the store behind Raft, as one deterministic state machine.
//!
//! A region of the key space (today one region, id 1, spanning every key) is served by a Raft
//! group; each replica of the group applies the same committed entries to its own LSM store.
//! This module holds the pieces, each a pure state machine or a pure function:
//!
//! * [`wire`] — what clients and peers send: requests and replies, peer messages, with region
//!   id and epoch; typed errors (`NotLeader { leader }`, `RegionNotFound`, `EpochMismatch`).
//! * [`command`] — the data of a log entry ([`command::LogCommand`]), with the leader's clock.
//! * [`state`] — the node's records in the store (namespace `n`): the apply state and the
//!   client session table.
//! * [`apply`] — committed entries become MVCC one-phase commits, deterministically, one
//!   entry at a time; sessions make a retried write apply at most once.
//! * [`txn`] — multi-key transactions (etcd's `Txn`) in one log entry, applied atomically.
//! * [`read`] — point reads over the store at a commit timestamp, resumable on missing blocks.
//! * [`Node`] (`replica`) — one replica: the Raft peer, its durable log, the store, apply and
//!   reads, as one state machine with two disks ([`io::Disk`]).
//! * [`raftlog`] — the durable Raft log of a region on its own disk folder: segment files of
//!   checksummed records, group commit, recovery into [`strata_raft::Recovered`], compaction
//!   by whole segments.
//!
//! **The Raft log is the store's write-ahead log:** an entry is durable once its log write is
//! synced (one sync per batch of appended entries); applied entries go to the store's
//! memtable without a WAL, and each flush records the index of the last entry it holds
//! (`Store::durable_mark`). After a crash the node replays the committed entries after that
//! mark from the log, and compacts the log up to it.
//!
//! Design notes and the recovery contract are in `docs/node.md`.
pub mod apply;
mod bytes_serde;
pub mod command;
pub mod io;
pub mod raftlog;
pub mod read;
pub mod snapshot;
mod replica;
mod requests;
pub mod state;
pub mod txn;
pub mod wire;

pub use replica::{Node, NodeConfig, NodeError, NodeEvent, NodeOutput, NodeStats, PeerError};

#[cfg(test)]
mod apply_tests;
#[cfg(test)]
pub(crate) mod testing;
