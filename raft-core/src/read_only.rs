//! Linearizable reads by ReadIndex (Raft thesis §6.4): the leader notes its commit index,
//! confirms it still leads with a round of heartbeats, and then releases the read.
//!
//! Reads are keyed by internal round numbers that the leader hands out, never by a context
//! the application chose, so two reads can never be confused (compare etcd issue 20418).
//! A heartbeat answer for round `r` confirms every read of round ≤ `r`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::quorum::{Joint, VoteResult};
use crate::types::{Index, NodeId, ReadId};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requester {
    /// The application on this node.
    Local(ReadId),
    /// A follower, with its own id for the read.
    Remote(NodeId, u64),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReadOnly {
    next_round: u64,
    /// Reads waiting for a quorum: (round, read index, requester).
    pending: VecDeque<(u64, Index, Requester)>,
    /// Highest round each peer confirmed.
    acked: Vec<(NodeId, u64)>,
    /// Reads waiting for the leader's first commit in its term.
    pub(crate) waiting: Vec<Requester>,
    /// A round to announce with the next heartbeats (0 = none).
    pub(crate) to_broadcast: u64,
}

impl ReadOnly {
    /// Registers a read at `index`; returns its round.
    pub(crate) fn add(&mut self, index: Index, who: Requester) -> u64 {
        self.next_round += 1;
        self.pending.push_back((self.next_round, index, who));
        self.to_broadcast = self.next_round;
        self.next_round
    }

    /// The latest round handed out (0 = none).
    pub(crate) fn last_round(&self) -> u64 {
        self.pending.back().map(|r| r.0).unwrap_or(0)
    }

    /// Records that `from` confirmed `round`; returns reads now confirmed by a quorum.
    pub(crate) fn ack(
        &mut self,
        self_id: NodeId,
        from: NodeId,
        round: u64,
        voters: &Joint,
        out: &mut Vec<(Index, Requester)>,
    ) {
        match self.acked.iter_mut().find(|(id, _)| *id == from) {
            Some((_, r)) => *r = (*r).max(round),
            None => self.acked.push((from, round)),
        }
        while let Some(&(r, index, who)) = self.pending.front() {
            let acked = &self.acked;
            let result = voters.vote_result(|id| {
                Some(id == self_id || acked.iter().any(|&(a, ar)| a == id && ar >= r))
            });
            if result != VoteResult::Won {
                break;
            }
            self.pending.pop_front();
            out.push((index, who));
        }
    }

    /// Drops everything (on losing leadership), returning the requesters to fail.
    pub(crate) fn reset(&mut self) -> Vec<Requester> {
        let mut failed: Vec<Requester> = self.pending.drain(..).map(|(_, _, w)| w).collect();
        failed.append(&mut self.waiting);
        self.acked.clear();
        self.to_broadcast = 0;
        failed
    }
}
