//! # strata-raft — Raft consensus as a sans-IO state machine
//!
//! This crate is the consensus core of Strata: one [`Node`] is one peer of one Raft group.
//! It performs no I/O, reads no clock and draws no OS randomness (`#![no_std]` + `alloc`).
//! Time comes in as [`Node::tick`], messages as [`Node::step`], commands as method calls;
//! everything the node wants done — send a message, persist entries, apply committed
//! entries, report a proposal's fate — comes out of [`Node::poll_output`] as an [`Output`].
//! The same configuration and the same inputs always give the same outputs.
//!
//! It is not a storage engine or a network layer: the driver (a binding) owns the disk,
//! the sockets and the state machine, and carries out the outputs.
//!
//! ## What it implements
//!
//! Leader election with randomized timeouts in `[election_tick, 2·election_tick)` from a
//! seeded PRNG; **pre-vote** (a partitioned node cannot disrupt a healthy leader when it
//! comes back, because it must first learn that it could win) and **check-quorum** (a
//! leader cut off from a quorum steps down within an election timeout, and followers ignore
//! votes while they hear from a leader, which is also what makes lease reads safe) — both on
//! by default. Pipelined replication with flow control (max in-flight messages, max bytes per
//! message), fast backtracking with term hints, a cap on uncommitted bytes. Proposals always
//! resolve as an [`Output::Proposal`] with a [`ProposalOutcome`]. Linearizable reads by
//! ReadIndex on the leader and through followers, or by lease ([`ReadMode`]). Leadership
//! transfer, learners, joint-consensus membership changes (a configuration takes effect when
//! appended, Raft thesis §4.1, and rolls back if truncated). Snapshots sent in chunks and log
//! compaction. Asynchronous persistence: votes and append acknowledgements wait for the
//! write that makes them true; the leader sends before its own write is durable.
//!
//! ## The calling protocol
//!
//! 1. Create each node with [`Node::new`] from a [`Config`] and the [`Recovered`] durable
//!    state (default for a new node).
//! 2. Feed inputs in any order: [`Node::tick`] at a fixed interval, [`Node::step`] (or
//!    [`Node::step_bytes`]) for every message received, commands such as
//!    [`Node::propose`] and [`Node::read_index`], and completions.
//! 3. After inputs, drain [`Node::poll_output`] until it returns `None` and carry out each
//!    output **in order**:
//!    - [`Output::Send`]: deliver the message to its recipient (loss is fine);
//!    - [`Output::Persist`]: write hard state, snapshot and entries durably, then call
//!      [`Node::handle_persisted`] with its id (later, from any thread's completion — writes
//!      must complete in id order);
//!    - [`Output::Apply`]: apply the committed entries to the state machine;
//!    - [`Output::Proposal`] / [`Output::Read`]: answer the client;
//!    - [`Output::ReadSnapshotChunk`] (leader) / [`Output::StageSnapshotChunk`] (follower):
//!      snapshot transfer, answered with [`Node::handle_snapshot_chunk`].
//! 4. When the state machine has a durable snapshot at an applied index, call
//!    [`Node::compact`] to free memory.
//! 5. Optionally, hand the entry buffers of `Persist` and `Apply` outputs back with
//!    [`Node::recycle`] once done with them: the node reuses them for later outputs, so a
//!    steady stream of entries needs no allocation per entry.
//!
//! ## Example: a three-node cluster in memory
//!
//! ```
//! use strata_raft::{Config, Node, NodeId, Output, ProposalId, ProposalOutcome, Recovered};
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes: Vec<Node> = ids
//!     .iter()
//!     .map(|&id| Node::new(Config::new(id, ids.to_vec()), Recovered::default()).unwrap())
//!     .collect();
//! let mut applied: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
//! let mut committed = None;
//!
//! // Drives every node until no output is left. Persists complete at once here; a real
//! // driver writes to disk and calls `handle_persisted` when the write is durable.
//! let mut run = |nodes: &mut Vec<Node>, committed: &mut Option<ProposalOutcome>| loop {
//!     let mut inbox = Vec::new();
//!     for (k, node) in nodes.iter_mut().enumerate() {
//!         while let Some(out) = node.poll_output() {
//!             match out {
//!                 Output::Send(m) => inbox.push(m),
//!                 Output::Persist(p) => node.handle_persisted(p.id).unwrap(),
//!                 Output::Apply(entries) => {
//!                     applied[k].extend(entries.iter().filter(|e| !e.data.is_empty()).map(|e| e.data.to_vec()));
//!                     node.recycle(entries); // optional: lets the node reuse the buffer
//!                 }
//!                 Output::Proposal(_, outcome) => *committed = Some(outcome),
//!                 _ => {}
//!             }
//!         }
//!     }
//!     if inbox.is_empty() {
//!         break;
//!     }
//!     for m in inbox {
//!         let to = (m.to.0 - 1) as usize;
//!         nodes[to].step(m).unwrap();
//!     }
//! };
//!
//! // Tick node 1 until it campaigns and wins.
//! while !nodes[0].is_leader() {
//!     nodes[0].tick();
//!     run(&mut nodes, &mut committed);
//! }
//! nodes[0].propose(ProposalId(7), b"hello".to_vec());
//! run(&mut nodes, &mut committed);
//! assert!(matches!(committed, Some(ProposalOutcome::Committed(_))));
//! // Followers learn the commit index with the next append or heartbeat.
//! nodes[0].tick();
//! run(&mut nodes, &mut committed);
//! assert!(applied.iter().all(|a| a == &vec![b"hello".to_vec()]));
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;

mod confchange;
mod config;
mod log;
mod message;
mod node;
mod output;
mod prng;
mod progress;
mod quorum;
mod read_only;
mod tracker;
mod types;

pub use bytes::Bytes;
pub use confchange::{apply_conf_change, ConfChangeError};
pub use config::{Config, ConfigError, ReadMode};
pub use message::{
    Body, ConfChange, ConfChangeStep, ConfState, DecodeError, Entries, Entry, EntryKind, HardState,
    InvalidMessage, Message, RejectHint, SnapshotMeta,
};
pub use node::{CommandError, Node, Recovered, Role, StepBytesError, StepError};
pub use output::{DropReason, Output, Persist, ProposalOutcome, ReadFailure, ReadOutcome};
pub use progress::ProgressState;
pub use quorum::VoteResult;
pub use types::{Index, NodeId, PersistId, ProposalId, ReadId, Term};

impl Node {
    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role() == Role::Leader
    }
}
