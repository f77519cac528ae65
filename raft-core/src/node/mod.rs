//! The Raft node: one peer of one group, as a deterministic state machine.
//!
//! Inputs are [`Node::tick`], [`Node::step`], the commands ([`Node::propose`],
//! [`Node::propose_conf_change`], [`Node::read_index`], [`Node::transfer_leader`],
//! [`Node::compact`]) and the completions ([`Node::handle_persisted`],
//! [`Node::handle_snapshot_chunk`]). Outputs queue up and are drained with
//! [`Node::poll_output`]. The role-specific logic lives in the submodules: `election`
//! (terms, votes, ticks), `leader` (replication, commit, reads, transfer), `follower`
//! (appends and snapshots received) and `persist` (persistence and apply).

mod election;
mod follower;
mod leader;
mod membership;
mod persist;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::confchange::{apply_conf_change, normalize};
use crate::config::{Config, ConfigError};
use crate::log::RaftLog;
use crate::message::{
    Body, ConfChange, ConfState, Entry, HardState, InvalidMessage, Message, SnapshotMeta,
};
use crate::output::{Output, ReadFailure, ReadOutcome};
use crate::prng::Prng;
use crate::progress::ProgressState;
use crate::read_only::ReadOnly;
use crate::tracker::Tracker;
use crate::types::{Index, NodeId, PersistId, ProposalId, ReadId, Term};

/// A peer's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win an election, without raising its term.
    PreCandidate,
    /// Campaigning.
    Candidate,
    /// Leading.
    Leader,
}

/// Durable state recovered after a restart (all of it already persisted).
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot installed or taken, if any.
    pub snapshot: Option<SnapshotMeta>,
    /// The log entries after the snapshot.
    pub entries: Vec<Entry>,
    /// The highest index the application's state machine has durably applied (at least
    /// the snapshot's index).
    pub applied: Index,
}

/// Why [`Node::step`] refused a message. The node's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The message is addressed to another node.
    WrongRecipient {
        /// Its recipient.
        to: NodeId,
    },
    /// The message contradicts itself.
    Invalid(InvalidMessage),
    /// Entries that contradict the committed log: the sender is faulty.
    ConflictsWithCommitted,
}

/// Why a completion or command was refused. The node's state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Only the leader can do this.
    NotLeader,
    /// The target is not a voter (or is this node).
    BadTarget,
    /// No persist request with this id was issued.
    UnknownPersistId,
    /// No snapshot chunk with these coordinates was requested.
    UnexpectedChunk,
    /// `compact` at an index that is not applied or already compacted.
    BadCompactIndex,
}

/// A pending proposal of this node: resolved when its index is committed or replaced.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingProposal {
    pub(crate) index: Index,
    pub(crate) term: Term,
    pub(crate) id: ProposalId,
}

/// A read this follower forwarded to the leader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForwardedRead {
    pub(crate) id: ReadId,
    pub(crate) leader: NodeId,
    pub(crate) term: Term,
    pub(crate) age_ticks: u32,
}

/// Something waiting for a persist to complete.
#[derive(Clone, Debug)]
pub(crate) enum Held {
    /// A message that claims durable state (a vote, an append acknowledgement).
    Message(Message),
    /// A candidate's own vote in this term.
    SelfVote(Term),
}

/// A persist request that has been handed out and not completed.
#[derive(Clone, Debug)]
pub(crate) struct InflightPersist {
    pub(crate) id: PersistId,
    pub(crate) last_index: Index,
    pub(crate) last_term: Term,
    pub(crate) held: Vec<Held>,
}

/// Entries a leader handed out in appends, kept to share with appends of the same range and
/// to reuse once no message holds them.
#[derive(Clone, Debug)]
pub(crate) struct SharedAppend {
    /// (leader term, first index, last index of the log) the entries were cut for.
    pub(crate) key: (Term, Index, Index),
    pub(crate) buf: alloc::sync::Arc<Vec<Entry>>,
}

/// An incoming snapshot transfer.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) next_offset: u64,
}

/// A Raft peer. See the [crate documentation](crate) for the calling protocol.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    tracker: Tracker,
    rng: Prng,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_timeout: u32,
    transferee: Option<NodeId>,
    transfer_elapsed: u32,
    pending_conf_index: Index,
    uncommitted_bytes: u64,
    proposals: VecDeque<PendingProposal>,
    reads: ReadOnly,
    forwarded_reads: Vec<ForwardedRead>,
    next_read_id: u64,
    persisted_hs: (Term, Option<NodeId>),
    snapshot_to_persist: Option<SnapshotMeta>,
    next_persist_id: u64,
    inflight_persists: VecDeque<InflightPersist>,
    held: Vec<Held>,
    /// Emptied `held` lists of completed persists, for reuse.
    spare_held: Vec<Vec<Held>>,
    /// Emptied entry buffers (given back with `recycle` or received in appends).
    spare_entries: Vec<Vec<Entry>>,
    /// Leader: entry lists of recent appends.
    shared_appends: Vec<SharedAppend>,
    out: VecDeque<Output>,
    broadcast_pending: bool,
    incoming_snapshot: Option<IncomingSnapshot>,
    conf_history: Vec<(Index, ConfState)>,
    /// A snapshot the application can send, newer than the compaction (`offer_snapshot`).
    offered_snapshot: Option<SnapshotMeta>,
}

impl Node {
    /// Creates a node from its configuration and recovered durable state
    /// (`Recovered::default()` for a brand new node).
    pub fn new(cfg: Config, recovered: Recovered) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let Recovered {
            hard_state,
            snapshot,
            entries,
            applied,
        } = recovered;
        let snapshot = match snapshot {
            Some(mut s) => {
                normalize(&mut s.conf);
                s
            }
            None => {
                let mut conf = ConfState {
                    voters: cfg.voters.clone(),
                    learners: cfg.learners.clone(),
                    ..ConfState::default()
                };
                normalize(&mut conf);
                SnapshotMeta {
                    index: Index(0),
                    term: Term(0),
                    conf,
                }
            }
        };
        let mut prev = (snapshot.index, snapshot.term);
        for e in &entries {
            if e.index != prev.0.next() || e.term < prev.1 {
                return Err(ConfigError::BadRecoveredState);
            }
            prev = (e.index, e.term);
        }
        if prev.1 > hard_state.term || applied < snapshot.index || applied > prev.0 {
            return Err(ConfigError::BadRecoveredState);
        }
        let commit = hard_state.commit.max(applied);
        let mut log = RaftLog::new(snapshot, entries, commit);
        let mut conf = log.snapshot.conf.clone();
        let mut conf_history = Vec::new();
        // The latest configuration in the log is in effect, committed or not (§4.1).
        for e in log.iter_range(log.first_index(), log.last_index().next()) {
            if let Some(cc) = e.conf_change() {
                if let Ok(next) = apply_conf_change(&conf, &cc) {
                    conf = next;
                    conf_history.push((e.index, conf.clone()));
                }
            }
        }
        log.applied = applied;
        let tracker = Tracker::new(&conf, log.last_index().next());
        let mut rng = Prng::new(cfg.seed ^ cfg.id.0.rotate_left(32));
        let next_read_id = (rng.next_u64() >> 16) | 1;
        let mut node = Node {
            id: cfg.id,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            tracker,
            rng,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: cfg.election_tick,
            transferee: None,
            transfer_elapsed: 0,
            pending_conf_index: Index(0),
            uncommitted_bytes: 0,
            proposals: VecDeque::new(),
            reads: ReadOnly::default(),
            forwarded_reads: Vec::new(),
            next_read_id,
            persisted_hs: (hard_state.term, hard_state.vote),
            snapshot_to_persist: None,
            next_persist_id: 1,
            inflight_persists: VecDeque::new(),
            held: Vec::new(),
            spare_held: Vec::new(),
            spare_entries: Vec::new(),
            shared_appends: Vec::new(),
            out: VecDeque::new(),
            broadcast_pending: false,
            incoming_snapshot: None,
            conf_history,
            offered_snapshot: None,
            cfg,
        };
        node.reset_randomized_timeout();
        Ok(node)
    }

    // ---- inputs ------------------------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Handles a message from a peer. Messages from stale terms are dropped (or answered so
    /// that their sender learns the newer term), as the paper says; errors mean the message
    /// was refused and changed nothing.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        if m.to != self.id {
            return Err(StepError::WrongRecipient { to: m.to });
        }
        m.validate().map_err(StepError::Invalid)?;
        if !self.step_term(&m) {
            return Ok(());
        }
        match m.body {
            Body::RequestVote {
                pre_vote,
                last_index,
                last_term,
                ..
            } => {
                self.handle_vote_request(m.from, m.term, pre_vote, last_index, last_term);
            }
            Body::VoteResponse { pre_vote, granted } => {
                self.handle_vote_response(m.from, pre_vote, granted)
            }
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.handle_append(m.from, prev_index, prev_term, entries, commit)?;
            }
            Body::Heartbeat { commit, read_round } => {
                self.handle_heartbeat(m.from, commit, read_round)
            }
            Body::SnapshotChunk {
                meta,
                offset,
                data,
                last,
            } => self.handle_snapshot_message(m.from, *meta, offset, data, last),
            Body::AppendResponse { index, reject } => {
                self.handle_append_response(m.from, index, reject)
            }
            Body::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(m.from, read_round)
            }
            Body::SnapshotAck { index, next_offset } => {
                self.handle_snapshot_ack(m.from, index, next_offset)
            }
            Body::TimeoutNow => self.handle_timeout_now(m.from),
            Body::ReadIndex { id } => self.handle_read_index_request(m.from, id),
            Body::ReadIndexResponse { id, index } => {
                self.handle_read_index_response(m.from, m.term, id, index)
            }
        }
        Ok(())
    }

    /// Decodes bytes from a peer and steps the message.
    pub fn step_bytes(&mut self, bytes: &[u8]) -> Result<(), StepBytesError> {
        let m = Message::decode(bytes).map_err(StepBytesError::Decode)?;
        self.step(m).map_err(StepBytesError::Step)
    }

    /// Proposes application data. The outcome always arrives as
    /// [`Output::Proposal`]`(id, ..)`: committed, or dropped with a reason.
    pub fn propose(&mut self, id: ProposalId, data: impl Into<Bytes>) {
        self.propose_entry(id, crate::message::EntryKind::Normal, data.into());
    }

    /// Proposes a membership change; validated against the current configuration (only one
    /// change may be pending). The outcome arrives as [`Output::Proposal`].
    pub fn propose_conf_change(&mut self, id: ProposalId, cc: ConfChange) {
        self.propose_conf(id, cc);
    }

    /// Campaigns now (a pre-vote first when enabled), as if the election timeout had passed.
    /// Ignored by a leader and by nodes that are not voters.
    pub fn campaign(&mut self) {
        if self.role != Role::Leader {
            let kind = if self.cfg.pre_vote {
                election::Campaign::PreVote
            } else {
                election::Campaign::Election
            };
            self.campaign_as(kind);
        }
    }

    /// Starts a linearizable read; the outcome arrives as [`Output::Read`] with the
    /// returned id.
    pub fn read_index(&mut self) -> ReadId {
        let id = ReadId(self.next_read_id);
        self.next_read_id = self.next_read_id.wrapping_add(1).max(1);
        if self.role == Role::Leader {
            self.leader_read(crate::read_only::Requester::Local(id));
        } else if let Some(leader) = self.leader {
            self.forwarded_reads.push(ForwardedRead {
                id,
                leader,
                term: self.term,
                age_ticks: 0,
            });
            self.send(leader, Body::ReadIndex { id: id.0 });
        } else {
            self.out
                .push_back(Output::Read(id, ReadOutcome::Failed(ReadFailure::NoLeader)));
        }
        id
    }

    /// Hands leadership to `target` (Raft thesis §3.10): proposals are refused until the
    /// transfer ends, the target is caught up and told to campaign at once. Abandoned after
    /// an election timeout.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), CommandError> {
        if self.role != Role::Leader {
            return Err(CommandError::NotLeader);
        }
        if target == self.id || !self.tracker.voters.incoming.contains(target) {
            return Err(CommandError::BadTarget);
        }
        if self.transferee == Some(target) {
            return Ok(());
        }
        self.transferee = Some(target);
        self.transfer_elapsed = 0;
        self.maybe_send_timeout_now(target);
        self.broadcast_pending = true;
        Ok(())
    }

    /// Reports that the persist request `id` (and every earlier one) is durable.
    pub fn handle_persisted(&mut self, id: PersistId) -> Result<(), CommandError> {
        if id.0 == 0 || id.0 >= self.next_persist_id {
            return Err(CommandError::UnknownPersistId);
        }
        self.complete_persists(id);
        Ok(())
    }

    /// Leader: provides the chunk of a snapshot asked for by [`Output::ReadSnapshotChunk`].
    /// `last` says whether the snapshot ends with this chunk.
    pub fn handle_snapshot_chunk(
        &mut self,
        to: NodeId,
        index: Index,
        offset: u64,
        data: Bytes,
        last: bool,
    ) -> Result<(), CommandError> {
        self.send_snapshot_chunk(to, index, offset, data, last)
    }

    /// Leader: the snapshot asked for cannot be read (e.g. it was replaced by a newer one);
    /// the transfer restarts with the current snapshot.
    pub fn handle_snapshot_unavailable(&mut self, to: NodeId) {
        if self.role == Role::Leader {
            if let Some(pr) = self.tracker.get_mut(to) {
                if pr.state == ProgressState::Snapshot {
                    pr.become_probe();
                    self.broadcast_pending = true;
                }
            }
        }
    }

    /// The application has a durable snapshot of its state machine at `index` (≤ applied):
    /// entries up to it are dropped from memory, and followers that need them will receive
    /// this snapshot instead.
    pub fn compact(&mut self, index: Index) -> Result<(), CommandError> {
        if index > self.log.applied || index <= self.log.snapshot.index {
            return Err(CommandError::BadCompactIndex);
        }
        let term = self.log.term(index).ok_or(CommandError::BadCompactIndex)?;
        let conf = self.conf_at(index);
        self.conf_history.retain(|(i, _)| *i > index);
        self.log.compact(SnapshotMeta { index, term, conf });
        self.release_shared_appends();
        Ok(())
    }

    /// The application holds a durable snapshot of its state machine at `index` (at or
    /// above the last compaction, at most applied) and can send it: followers that need a
    /// snapshot from now on are sent this one rather than the compaction's (etcd raft's
    /// `Storage::snapshot`, which may be newer than the first index). The log is not
    /// compacted. A later offer or a compaction past `index` replaces it.
    pub fn offer_snapshot(&mut self, index: Index) -> Result<(), CommandError> {
        if index > self.log.applied || index < self.log.snapshot.index {
            return Err(CommandError::BadCompactIndex);
        }
        let term = self.log.term(index).ok_or(CommandError::BadCompactIndex)?;
        let conf = self.conf_at(index);
        self.offered_snapshot = Some(SnapshotMeta { index, term, conf });
        Ok(())
    }

    /// The snapshot a follower that needs one is sent: the offered one if it is at least as
    /// new as the compaction, else the compaction's.
    pub fn snapshot_to_send(&self) -> SnapshotMeta {
        match &self.offered_snapshot {
            Some(o) if o.index >= self.log.snapshot.index => o.clone(),
            _ => self.log.snapshot.clone(),
        }
    }

    /// The next output to carry out, or `None` when there is nothing to do until the next
    /// input. Call until `None` after every batch of inputs.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.out.is_empty() {
            self.flush();
        }
        self.out.pop_front()
    }

    // ---- getters -----------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The vote cast in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// The commit index.
    pub fn commit_index(&self) -> Index {
        self.log.committed
    }
    /// The highest index handed out for applying.
    pub fn applied_index(&self) -> Index {
        self.log.applied
    }
    /// The index of the last log entry.
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    /// The term of the last log entry.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }
    /// The highest index known durable.
    pub fn stable_index(&self) -> Index {
        self.log.stable
    }
    /// The first index still in memory.
    pub fn first_index(&self) -> Index {
        self.log.first_index()
    }
    /// The term of the entry at `index`, if held.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }
    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// The metadata of the last compaction or installed snapshot.
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.log.snapshot
    }
    /// The configuration in effect: the latest in the log, committed or not (Raft thesis
    /// §4.1).
    pub fn conf_state(&self) -> ConfState {
        self.tracker.conf_state()
    }
    /// The current hard state.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    /// Leader: a follower's match index and replication state.
    pub fn progress(&self, peer: NodeId) -> Option<(Index, Index, ProgressState)> {
        if self.role != Role::Leader {
            return None;
        }
        self.tracker.get(peer).map(|p| (p.matched, p.next, p.state))
    }
    /// The peer a leadership transfer is handing over to.
    pub fn transferee(&self) -> Option<NodeId> {
        self.transferee
    }
    /// Whether outputs are waiting (cheap; `poll_output` may still find nothing to do).
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.broadcast_pending || self.needs_persist() || self.can_apply()
    }
    /// The election timer in ticks: `(elapsed, timeout)` — ticks since the leader was last
    /// heard from (or, on a leader, since the last quorum check) and this term's randomized
    /// timeout (for viewers; read-only).
    pub fn election_timer(&self) -> (u32, u32) {
        (self.election_elapsed, self.randomized_timeout)
    }
    /// Payload bytes of entries held in memory.
    pub fn log_bytes(&self) -> u64 {
        self.log.bytes()
    }

    /// Panics if an internal invariant is broken (for tests and simulations).
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        if self.role == Role::Leader {
            assert_eq!(self.leader, Some(self.id), "leader does not know itself");
            assert_eq!(self.vote, Some(self.id), "leader did not vote for itself");
            assert!(
                self.log.last_term() == self.term,
                "leader's last entry is not of its term"
            );
        }
        if self.role == Role::Candidate {
            assert_eq!(
                self.vote,
                Some(self.id),
                "candidate did not vote for itself"
            );
        }
        assert!(self.log.last_term() <= self.term, "entry from the future");
        let mut prev = 0;
        for p in &self.inflight_persists {
            assert!(p.id.0 > prev, "persist ids not increasing");
            prev = p.id.0;
        }
        let mut prev = (Index(0), Term(0));
        for p in &self.proposals {
            assert!((p.index, p.term) > prev, "pending proposals out of order");
            prev = (p.index, p.term);
        }
        if self.role == Role::Leader {
            for (id, pr) in &self.tracker.progress {
                assert!(pr.matched < pr.next, "progress of {id}: match ≥ next");
                assert!(
                    pr.matched <= self.log.last_index(),
                    "progress of {id} past last"
                );
            }
        }
    }

    // ---- helpers shared by the submodules ---------------------------------------------

    pub(crate) fn send(&mut self, to: NodeId, body: Body) {
        self.out.push_back(Output::Send(Message {
            from: self.id,
            to,
            term: self.term,
            body,
        }));
    }

    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.fail_forwarded_reads(ReadFailure::LeaderChanged);
            self.leader = leader;
            self.out.push_back(Output::LeaderChanged {
                term: self.term,
                leader,
            });
        }
    }
}

/// Why [`Node::step_bytes`] refused bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepBytesError {
    /// Not a message.
    Decode(crate::message::DecodeError),
    /// A message the node refused.
    Step(StepError),
}
