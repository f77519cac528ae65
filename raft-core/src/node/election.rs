//! Terms, elections and roles (§5.2), with pre-vote and the check-quorum lease.

use crate::message::{Body, Message};
use crate::node::{Held, Node, Role};
use crate::output::{Output, ReadFailure, ReadOutcome};
use crate::quorum::VoteResult;
use crate::read_only::Requester;
use crate::types::{Index, NodeId, Term};

/// What kind of campaign to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Campaign {
    /// Ask first, without raising the term.
    PreVote,
    /// A real election.
    Election,
    /// A real election asked for by the leader, overriding the lease.
    Transfer,
}

impl Node {
    /// Applies the term rules of §5.1 before a message is handled. Returns false when the
    /// message must be dropped.
    pub(crate) fn step_term(&mut self, m: &Message) -> bool {
        if m.term > self.term {
            match &m.body {
                Body::RequestVote {
                    pre_vote, transfer, ..
                } => {
                    // The lease (check-quorum): a follower that heard from a leader within
                    // the election timeout does not help depose it.
                    let in_lease = self.cfg.check_quorum
                        && self.leader.is_some()
                        && self.election_elapsed < self.cfg.election_tick;
                    if in_lease && !*transfer {
                        return false;
                    }
                    if !*pre_vote {
                        self.become_follower(m.term, None);
                    }
                }
                Body::VoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                Body::Append { .. } | Body::Heartbeat { .. } | Body::SnapshotChunk { .. } => {
                    self.become_follower(m.term, Some(m.from));
                }
                _ => self.become_follower(m.term, None),
            }
            return true;
        }
        if m.term < self.term {
            match &m.body {
                Body::Append { .. } | Body::Heartbeat { .. }
                    if self.cfg.check_quorum || self.cfg.pre_vote =>
                {
                    // A deposed leader: tell it the new term so it steps down.
                    self.send(
                        m.from,
                        Body::AppendResponse {
                            index: Index(0),
                            reject: None,
                        },
                    );
                }
                Body::RequestVote { pre_vote: true, .. } => {
                    self.send(
                        m.from,
                        Body::VoteResponse {
                            pre_vote: true,
                            granted: false,
                        },
                    );
                }
                _ => {}
            }
            return false;
        }
        true
    }

    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && term > self.term);
        let mut up_to_date = self.log.is_up_to_date(last_index, last_term);
        if pre_vote && self.role == Role::PreCandidate && up_to_date {
            // Two pre-candidates at once would both win their pre-votes and split the real
            // vote. Break the tie: the better log wins, then the lower id; the other stands
            // down. (Pre-votes carry no safety obligation, so any rule is safe.)
            let theirs_better =
                (last_term, last_index) > (self.log.last_term(), self.log.last_index());
            if theirs_better || from < self.id {
                self.become_follower(self.term, None);
            } else {
                up_to_date = false;
            }
        }
        if can_vote && up_to_date {
            if pre_vote {
                // Answer in the term the pre-candidate would campaign in.
                let m = Message {
                    from: self.id,
                    to: from,
                    term,
                    body: Body::VoteResponse {
                        pre_vote,
                        granted: true,
                    },
                };
                self.out.push_back(Output::Send(m));
            } else {
                self.election_elapsed = 0;
                self.vote = Some(from);
                let m = Message {
                    from: self.id,
                    to: from,
                    term: self.term,
                    body: Body::VoteResponse {
                        pre_vote,
                        granted: true,
                    },
                };
                self.send_after_persist(m);
            }
        } else {
            self.send(
                from,
                Body::VoteResponse {
                    pre_vote,
                    granted: false,
                },
            );
        }
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, pre_vote: bool, granted: bool) {
        let expected = if pre_vote {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        if self.role != expected {
            return;
        }
        self.tracker.record_vote(from, granted);
        self.check_election();
    }

    /// Counts the votes and moves on if the election is decided.
    pub(crate) fn check_election(&mut self) {
        match self.tracker.tally() {
            VoteResult::Won => {
                if self.role == Role::PreCandidate {
                    self.campaign_as(Campaign::Election);
                } else if self.role == Role::Candidate {
                    self.become_leader();
                }
            }
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// The candidate's own vote became durable.
    pub(crate) fn self_vote_persisted(&mut self, term: Term) {
        if self.role == Role::Candidate && self.term == term {
            self.tracker.record_vote(self.id, true);
            self.check_election();
        }
    }

    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.role != Role::Leader && self.promotable() && self.leader == Some(from) {
            self.campaign_as(Campaign::Transfer);
        }
    }

    /// Starts a pre-vote, an election, or an election that overrides the lease.
    pub(crate) fn campaign_as(&mut self, kind: Campaign) {
        if !self.promotable() {
            return;
        }
        let pre_vote = kind == Campaign::PreVote;
        let transfer = kind == Campaign::Transfer;
        self.tracker.reset_votes();
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        let campaign_term = if pre_vote {
            self.role = Role::PreCandidate;
            self.set_leader(None);
            self.tracker.record_vote(self.id, true);
            self.term.next()
        } else {
            self.reset_term(self.term.next());
            self.role = Role::Candidate;
            self.vote = Some(self.id);
            self.set_leader(None);
            // Our own vote counts once it is durable.
            self.hold(Held::SelfVote(self.term));
            self.term
        };
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let voters: alloc::vec::Vec<NodeId> = self
            .tracker
            .progress
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != self.id && self.tracker.is_voter(*id))
            .collect();
        for to in voters {
            let body = Body::RequestVote {
                pre_vote,
                last_index,
                last_term,
                transfer,
            };
            let m = Message {
                from: self.id,
                to,
                term: campaign_term,
                body,
            };
            self.out.push_back(Output::Send(m));
        }
        if pre_vote {
            self.check_election();
        }
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let was_leader = self.role == Role::Leader;
        if term != self.term {
            self.reset_term(term);
        }
        self.role = Role::Follower;
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        if was_leader {
            self.step_down_cleanup();
        }
        self.set_leader(leader);
    }

    fn reset_term(&mut self, term: Term) {
        self.term = term;
        self.vote = None;
    }

    fn step_down_cleanup(&mut self) {
        self.transferee = None;
        self.uncommitted_bytes = 0;
        self.broadcast_pending = false;
        for who in self.reads.reset() {
            if let Requester::Local(id) = who {
                let o = ReadOutcome::Failed(ReadFailure::LeaderChanged);
                self.out.push_back(Output::Read(id, o));
            }
        }
    }

    pub(crate) fn fail_forwarded_reads(&mut self, why: ReadFailure) {
        for r in self.forwarded_reads.drain(..) {
            self.out
                .push_back(Output::Read(r.id, ReadOutcome::Failed(why)));
        }
    }

    pub(crate) fn reset_randomized_timeout(&mut self) {
        let e = u64::from(self.cfg.election_tick);
        self.randomized_timeout = self.rng.range(e, 2 * e) as u32;
    }

    /// A tick for a follower or candidate: campaign when the election timeout passes.
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        let limit = self.cfg.election_tick.saturating_mul(2);
        let mut timed_out = false;
        for r in &mut self.forwarded_reads {
            r.age_ticks += 1;
            timed_out |= r.age_ticks >= limit;
        }
        if timed_out {
            let (expired, kept): (alloc::vec::Vec<_>, alloc::vec::Vec<_>) = self
                .forwarded_reads
                .drain(..)
                .partition(|r| r.age_ticks >= limit);
            self.forwarded_reads = kept;
            for r in expired {
                self.out.push_back(Output::Read(
                    r.id,
                    ReadOutcome::Failed(ReadFailure::TimedOut),
                ));
            }
        }
        // A pre-vote that went unanswered (typically: peers still inside the old leader's
        // lease) is retried soon; pre-votes do not raise terms, so retrying disrupts nothing.
        let retry_pre_vote =
            self.role == Role::PreCandidate && self.election_elapsed >= 2 * self.cfg.heartbeat_tick;
        if self.promotable() && (retry_pre_vote || self.election_elapsed >= self.randomized_timeout)
        {
            let kind = if self.cfg.pre_vote {
                Campaign::PreVote
            } else {
                Campaign::Election
            };
            self.campaign_as(kind);
        }
    }
}
