//! The current configuration with the leader's [`Progress`] for every member, and the votes
//! of an election in flight.

use alloc::vec::Vec;

use crate::message::ConfState;
use crate::progress::Progress;
use crate::quorum::{Joint, Majority, VoteResult};
use crate::types::{Index, NodeId};

/// Configuration, per-peer progress and votes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tracker {
    pub(crate) voters: Joint,
    pub(crate) learners: Vec<NodeId>,
    pub(crate) learners_next: Vec<NodeId>,
    /// Progress of every member (voters of both configs and learners), sorted by id.
    pub(crate) progress: Vec<(NodeId, Progress)>,
    votes: Vec<(NodeId, bool)>,
    scratch: Vec<u64>,
}

impl Tracker {
    /// A tracker for configuration `cs`; new members get progress starting at `next`.
    pub(crate) fn new(cs: &ConfState, next: Index) -> Tracker {
        let mut t = Tracker::default();
        t.set_conf(cs, next);
        t
    }

    /// The configuration as a [`ConfState`].
    pub(crate) fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.voters().to_vec(),
            voters_outgoing: self.voters.outgoing.voters().to_vec(),
            learners: self.learners.clone(),
            learners_next: self.learners_next.clone(),
        }
    }

    /// Switches to configuration `cs`, keeping the progress of members that stay.
    pub(crate) fn set_conf(&mut self, cs: &ConfState, next: Index) {
        self.voters = Joint {
            incoming: Majority::new(cs.voters.clone()),
            outgoing: Majority::new(cs.voters_outgoing.clone()),
        };
        self.learners = Majority::new(cs.learners.clone()).voters().to_vec();
        self.learners_next = Majority::new(cs.learners_next.clone()).voters().to_vec();
        let mut members: Vec<NodeId> = Vec::new();
        members.extend_from_slice(self.voters.incoming.voters());
        members.extend_from_slice(self.voters.outgoing.voters());
        members.extend_from_slice(&self.learners);
        members.extend_from_slice(&self.learners_next);
        members.sort_unstable();
        members.dedup();
        let old = core::mem::take(&mut self.progress);
        let mut old = old.into_iter().peekable();
        for id in members {
            while old.peek().is_some_and(|(o, _)| *o < id) {
                old.next();
            }
            let pr = match old.peek() {
                Some((o, _)) if *o == id => old.next().map(|(_, p)| p),
                _ => None,
            };
            let pr = pr.unwrap_or_else(|| {
                // A new member counts as active until the next check-quorum round.
                let mut p = Progress::new(next);
                p.recent_active = true;
                p
            });
            self.progress.push((id, pr));
        }
        self.votes.retain(|(id, _)| self.voters.contains(*id));
    }

    pub(crate) fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(id)
    }

    pub(crate) fn is_joint(&self) -> bool {
        !self.voters.outgoing.is_empty()
    }

    /// Whether `id` is the only voter (in both configurations).
    pub(crate) fn is_singleton(&self, id: NodeId) -> bool {
        let inc = self.voters.incoming.voters();
        let out = self.voters.outgoing.voters();
        inc.len() == 1 && inc[0] == id && (out.is_empty() || (out.len() == 1 && out[0] == id))
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&Progress> {
        self.progress
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|p| &self.progress[p].1)
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        match self.progress.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(p) => Some(&mut self.progress[p].1),
            Err(_) => None,
        }
    }

    /// The index a quorum (of both configurations, when joint) has matched.
    pub(crate) fn committed(&mut self) -> Index {
        let progress = &self.progress;
        let matched = |id: NodeId| {
            progress
                .binary_search_by_key(&id, |(i, _)| *i)
                .map(|p| progress[p].1.matched)
                .unwrap_or(Index(0))
        };
        self.voters.committed_index(&mut self.scratch, matched)
    }

    pub(crate) fn reset_votes(&mut self) {
        self.votes.clear();
    }

    pub(crate) fn record_vote(&mut self, id: NodeId, granted: bool) {
        if !self.votes.iter().any(|(v, _)| *v == id) {
            self.votes.push((id, granted));
        }
    }

    pub(crate) fn tally(&self) -> VoteResult {
        let votes = &self.votes;
        self.voters
            .vote_result(|id| votes.iter().find(|(v, _)| *v == id).map(|(_, g)| *g))
    }

    /// Whether a quorum was active since the last check (`self_id` always counts).
    pub(crate) fn quorum_active(&self, self_id: NodeId) -> bool {
        let progress = &self.progress;
        self.voters.vote_result(|id| {
            if id == self_id {
                return Some(true);
            }
            Some(
                progress
                    .binary_search_by_key(&id, |(i, _)| *i)
                    .map(|p| progress[p].1.recent_active)
                    .unwrap_or(false),
            )
        }) == VoteResult::Won
    }
}
