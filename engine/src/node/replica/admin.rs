//! The node's admin requests ([`AdminOp`]): adding a replica (learner first, promoted once
//! caught up), removing one, transferring leadership — and what a removed node does.
//!
//! One admin request runs at a node at a time, as a small state machine driven by Raft's
//! outputs and apply:
//!
//! ```text
//! AddReplica(n):    not a member ─propose AddLearner(n)─▶ Learner ─applied─▶ CatchUp
//!                   CatchUp ─n's match index within learner_catch_up_entries of the commit
//!                            index─▶ propose AddVoter(n) ─▶ Voter ─applied─▶ answered
//! RemoveReplica(n): propose RemoveNode(n) ─▶ Remove ─applied─▶ answered
//! TransferLeader(t): Raft transfer ─▶ Transfer ─this node learns t leads─▶ answered
//! ```
//!
//! Each step starts from the membership apply has reached (the store's [`ConfRecord`]), so a
//! request retried after `Unknown` (a leader change, a timeout) picks up where the change
//! stands: a learner already added is only promoted, a voter already added or a node already
//! removed is answered at once. Raft allows one configuration change at a time (a new one
//! only once the previous is applied); a change refused for that is `ChangePending`.
//!
//! **A removed node** (its id in the applied record's `removed`, or told so by a member that
//! applied its removal: `PeerBody::Removed`, the answer to any message from it) that does
//! not lead stops:
//! Raft is no longer ticked (it never campaigns), peer messages are refused
//! (`PeerError::Removed`) and clients are answered `Removed`. A removed leader leads on until
//! Raft has handed leadership to a voter (Raft thesis §4.2.2), then stops likewise.
use super::{drop_reason, Node};
use crate::node::state::ConfRecord;
use crate::node::wire::{AdminError, AdminOp, AdminReply, ClientError, ClientReply};
use strata_raft::{ConfChange, ConfChangeError, ConfChangeStep, DropReason, NodeId, ProgressState, ProposalId, ProposalOutcome};

/// Where an admin request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Adding as a learner: the proposal.
    Learner(ProposalId),
    /// The learner is catching up.
    CatchUp,
    /// Promoting to voter: the proposal.
    Voter(ProposalId),
    /// Removing: the proposal.
    Remove(ProposalId),
    /// Leadership is being handed over.
    Transfer,
}

/// The admin request waiting at this node.
#[derive(Clone, Debug)]
pub(crate) struct PendingAdmin {
    pub(crate) id: u64,
    pub(crate) op: AdminOp,
    pub(crate) stage: Stage,
    pub(crate) deadline: u64,
}

impl Stage {
    fn proposal(self) -> Option<ProposalId> {
        match self {
            Stage::Learner(p) | Stage::Voter(p) | Stage::Remove(p) => Some(p),
            Stage::CatchUp | Stage::Transfer => None,
        }
    }
}

impl Node {
    /// The region's membership as applied here.
    pub fn membership(&self) -> &ConfRecord {
        self.applier.conf()
    }

    /// True when this node was removed from the region and no longer leads: it serves
    /// nothing more.
    pub fn is_removed(&self) -> bool {
        self.retired
    }

    /// Starts admin request `id` (the request passed admission: running, region, epoch).
    pub(super) fn admin_submit(&mut self, now_ms: u64, id: u64, op: AdminOp) {
        let Some(raft) = self.raft.as_ref() else { return };
        if !raft.is_leader() {
            let leader = raft.leader().map(|l| l.0);
            return self.reply(id, Err(ClientError::NotLeader { leader }));
        }
        if self.admin.is_some() {
            return self.reply(id, Err(ClientError::Admin(AdminError::ChangePending)));
        }
        let deadline = now_ms.saturating_add(self.cfg.request_timeout_ms);
        self.admin = Some(PendingAdmin { id, op: op.clone(), stage: Stage::CatchUp, deadline });
        match self.admin_next_step() {
            Ok(true) => self.admin_done(),
            Ok(false) => {}
            Err(e) => self.admin_fail(ClientError::Admin(e)),
        }
    }

    /// Decides the next step of the pending request from the applied membership: `Ok(true)`
    /// when the change is complete.
    fn admin_next_step(&mut self) -> Result<bool, AdminError> {
        let Some(a) = self.admin.as_ref() else { return Ok(false) };
        let conf = self.applier.conf();
        let me = self.cfg.raft.id;
        let step = match a.op {
            AdminOp::AddReplica { node } => {
                let n = NodeId(node);
                if node == 0 {
                    return Err(AdminError::UnknownNode { node });
                }
                if conf.is_removed(n) {
                    return Err(AdminError::NodeRemoved { node });
                }
                if conf.conf.voters.contains(&n) {
                    return Ok(true);
                }
                if conf.is_member(n) {
                    // A learner: promoted once caught up (`admin_tick`).
                    self.set_stage(Stage::CatchUp);
                    return Ok(false);
                }
                ConfChangeStep::AddLearner(n)
            }
            AdminOp::RemoveReplica { node } => {
                let n = NodeId(node);
                if conf.is_removed(n) {
                    return Ok(true);
                }
                if !conf.is_member(n) {
                    return Err(AdminError::UnknownNode { node });
                }
                if conf.conf.voters == [n] {
                    return Err(AdminError::LastVoter);
                }
                ConfChangeStep::RemoveNode(n)
            }
            AdminOp::TransferLeader { to } => {
                if to == me.0 {
                    return Ok(true);
                }
                let raft = self.raft.as_mut().ok_or(AdminError::ChangePending)?;
                if raft.transfer_leader(NodeId(to)).is_err() {
                    return Err(AdminError::NotVoter { node: to });
                }
                self.set_stage(Stage::Transfer);
                return Ok(false);
            }
        };
        let pid = self.requests.next_proposal();
        let stage = match step {
            ConfChangeStep::AddLearner(_) => Stage::Learner(pid),
            ConfChangeStep::AddVoter(_) => Stage::Voter(pid),
            ConfChangeStep::RemoveNode(_) => Stage::Remove(pid),
        };
        self.set_stage(stage);
        if let Some(raft) = self.raft.as_mut() {
            raft.propose_conf_change(pid, ConfChange::Single(step));
        }
        Ok(false)
    }

    fn set_stage(&mut self, stage: Stage) {
        if let Some(a) = self.admin.as_mut() {
            a.stage = stage;
        }
    }

    /// Answers the pending request with the membership now applied.
    fn admin_done(&mut self) {
        let Some(a) = self.admin.take() else { return };
        let membership = self.applier.conf().membership(self.cfg.epoch.version);
        let leader = self.raft.as_ref().and_then(strata_raft::Node::leader).map(|l| l.0);
        self.stats.admin_done += 1;
        self.reply(a.id, Ok(ClientReply::Admin(AdminReply { membership, leader })));
    }

    fn admin_fail(&mut self, e: ClientError) {
        if let Some(a) = self.admin.take() {
            self.reply(a.id, Err(e));
        }
    }

    /// Raft resolved proposal `pid`; true if it was the pending admin request's.
    pub(super) fn admin_proposal(&mut self, pid: ProposalId, outcome: &ProposalOutcome) -> bool {
        if self.admin.as_ref().and_then(|a| a.stage.proposal()) != Some(pid) {
            return false;
        }
        let e = match outcome {
            // Answered once applied (`admin_conf_applied`).
            ProposalOutcome::Committed(_) => return true,
            ProposalOutcome::Indeterminate => ClientError::Unknown,
            ProposalOutcome::Dropped(DropReason::InvalidConfChange(ConfChangeError::PendingChange)) => {
                ClientError::Admin(AdminError::ChangePending)
            }
            ProposalOutcome::Dropped(DropReason::InvalidConfChange(ConfChangeError::NoVoters)) => ClientError::Admin(AdminError::LastVoter),
            ProposalOutcome::Dropped(r) => drop_reason(*r),
        };
        self.admin_fail(e);
        true
    }

    /// A configuration entry was applied: moves the pending request on, and retires this
    /// node if it was removed.
    pub(super) fn admin_conf_applied(&mut self) {
        if let Some(a) = &self.admin {
            // The entry applied may be an earlier one (apply lags Raft): only the goal of
            // the current step counts.
            let conf = self.applier.conf();
            match (a.stage, &a.op) {
                (Stage::Learner(_), AdminOp::AddReplica { node }) if conf.conf.voters.contains(&NodeId(*node)) => self.admin_done(),
                (Stage::Learner(_), AdminOp::AddReplica { node }) if conf.is_member(NodeId(*node)) => self.set_stage(Stage::CatchUp),
                (Stage::Voter(_), AdminOp::AddReplica { node }) if conf.conf.voters.contains(&NodeId(*node)) => self.admin_done(),
                (Stage::Remove(_), AdminOp::RemoveReplica { node }) if !conf.is_member(NodeId(*node)) => self.admin_done(),
                _ => {}
            }
        }
        self.maybe_retire();
    }

    /// Called after every input: promotes a caught-up learner, ends a transfer, times out,
    /// and retires a removed node that no longer leads. True when it proposed something.
    pub(super) fn admin_tick(&mut self, now_ms: u64) -> bool {
        let mut proposed = false;
        if let Some(a) = self.admin.clone() {
            let Some(raft) = self.raft.as_ref() else { return false };
            let leader = raft.leader();
            if now_ms >= a.deadline {
                self.admin_fail(ClientError::Unknown);
            } else if a.stage == Stage::Transfer {
                let AdminOp::TransferLeader { to } = a.op else { return false };
                if leader == Some(NodeId(to)) {
                    self.admin_done();
                } else if raft.is_leader() && raft.transferee().is_none() {
                    // Raft abandoned the transfer after an election timeout.
                    self.admin_fail(ClientError::Admin(AdminError::TransferFailed { leader: leader.map(|l| l.0) }));
                } else if leader.is_some_and(|l| l != raft.id()) {
                    self.admin_fail(ClientError::NotLeader { leader: leader.map(|l| l.0) });
                }
            } else if !raft.is_leader() {
                // The change may still be committed by the next leader: a retry there finds
                // out where it stands.
                self.admin_fail(if a.stage.proposal().is_some() { ClientError::Unknown } else { ClientError::NotLeader { leader: leader.map(|l| l.0) } });
            } else if let (Stage::CatchUp, AdminOp::AddReplica { node }) = (a.stage, &a.op) {
                let commit = raft.commit_index().0;
                let caught_up = raft.progress(NodeId(*node)).is_some_and(|(matched, _, state)| {
                    state == ProgressState::Replicate && matched.0.saturating_add(self.cfg.learner_catch_up_entries) >= commit
                });
                if caught_up {
                    let pid = self.requests.next_proposal();
                    self.set_stage(Stage::Voter(pid));
                    if let Some(raft) = self.raft.as_mut() {
                        raft.propose_conf_change(pid, ConfChange::Single(ConfChangeStep::AddVoter(NodeId(*node))));
                        proposed = true;
                    }
                }
            }
        }
        self.maybe_retire();
        proposed
    }

    /// A removed node that does not lead stops serving (see the module docs).
    fn maybe_retire(&mut self) {
        let me = self.cfg.raft.id;
        if self.retired || !(self.applier.conf().is_removed(me) || self.told_removed) || self.is_leader() {
            return;
        }
        self.retired = true;
        let region = self.cfg.region;
        self.admin_fail(ClientError::Removed { region });
        for (id, _) in self.requests.expire(u64::MAX) {
            self.reply(id, Err(ClientError::Removed { region }));
        }
        self.event(super::NodeEvent::Removed);
    }
}
