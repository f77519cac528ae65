//! Node configuration, with defaults that follow etcd raft and DESIGN.md §6.

use alloc::vec::Vec;

use crate::types::NodeId;

/// How a leader serves linearizable reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex: confirm leadership with a round of heartbeats before answering (always safe).
    Safe,
    /// Lease reads: answer from the commit index while the leader's lease holds. Safe only
    /// when clocks on the peers do not drift by more than the election timeout; requires
    /// check-quorum, which maintains the lease.
    LeaseBased,
}

/// Everything a [`Node`](crate::Node) needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (non-zero).
    pub id: NodeId,
    /// The voters of a brand new cluster. Ignored when the recovered state has a snapshot
    /// (which carries its own configuration). A node joining an existing cluster starts with
    /// none and learns the configuration from the leader.
    pub voters: Vec<NodeId>,
    /// The learners of a brand new cluster (see `voters`).
    pub learners: Vec<NodeId>,
    /// Ticks without hearing from a leader before a follower campaigns. The actual timeout is
    /// drawn from `[election_tick, 2 * election_tick)` at every reset. Default 10.
    pub election_tick: u32,
    /// Ticks between leader heartbeats. Default 1.
    pub heartbeat_tick: u32,
    /// Pre-vote (Raft thesis §9.6): a node first checks that it could win before raising its
    /// term, so a partitioned node that rejoins does not disrupt a healthy leader. Default on.
    pub pre_vote: bool,
    /// Check-quorum: a leader that has not heard from a quorum within an election timeout
    /// steps down, and followers that hear from a leader ignore votes for a while (the lease).
    /// This bounds how long a deposed leader believes it leads. Default on.
    pub check_quorum: bool,
    /// How reads are served. Default [`ReadMode::Safe`].
    pub read_mode: ReadMode,
    /// Most append messages in flight to one follower in the replicate state. Default 256.
    pub max_inflight_msgs: usize,
    /// Soft cap on the payload bytes in one append message (at least one entry is always
    /// sent). Default 1 MiB.
    pub max_msg_bytes: u64,
    /// Cap on the payload bytes of entries the leader has appended but not yet committed;
    /// proposals beyond it are dropped with [`DropReason::UncommittedLimit`](crate::DropReason).
    /// Default 64 MiB.
    pub max_uncommitted_bytes: u64,
    /// Largest snapshot chunk requested from the application. Default 1 MiB.
    pub snapshot_chunk_bytes: u64,
    /// Seed of the PRNG that draws election timeouts and the ids of reads. **Give every start
    /// of a node a different seed** (e.g. drawn from the OS by the binding, or a persisted
    /// counter): a follower matches the leader's answer to a forwarded read by its id, so an
    /// id repeated after a restart could match an answer to a read sent before the crash and
    /// return a stale index. Default: the node id (fine for a node that never restarts).
    pub seed: u64,
}

impl Config {
    /// A configuration with the defaults above for node `id` of a new cluster of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            learners: Vec::new(),
            election_tick: 10,
            heartbeat_tick: 1,
            pre_vote: true,
            check_quorum: true,
            read_mode: ReadMode::Safe,
            max_inflight_msgs: 256,
            max_msg_bytes: 1 << 20,
            max_uncommitted_bytes: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            seed: id.0,
        }
    }

    /// Checks the configuration; the node is not created when this fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NodeId(0) {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_tick == 0 {
            return Err(ConfigError::ZeroHeartbeatTick);
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::ElectionTickTooSmall);
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflight);
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::ZeroChunk);
        }
        if self.read_mode == ReadMode::LeaseBased && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if self
            .voters
            .iter()
            .chain(self.learners.iter())
            .any(|n| n.0 == 0)
        {
            return Err(ConfigError::ZeroId);
        }
        if self.learners.iter().any(|l| self.voters.contains(l)) {
            return Err(ConfigError::LearnerIsVoter);
        }
        Ok(())
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A node id is zero.
    ZeroId,
    /// `heartbeat_tick` is zero.
    ZeroHeartbeatTick,
    /// `election_tick` must be greater than `heartbeat_tick`.
    ElectionTickTooSmall,
    /// `max_inflight_msgs` is zero.
    ZeroInflight,
    /// `snapshot_chunk_bytes` is zero.
    ZeroChunk,
    /// Lease reads need check-quorum.
    LeaseWithoutCheckQuorum,
    /// A node is listed both as voter and learner.
    LearnerIsVoter,
    /// The recovered state is inconsistent (e.g. entries that do not follow the snapshot).
    BadRecoveredState,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}
