//! Quorums: majority configurations and joint (two-majority) configurations. Pure functions
//! of the votes and match indexes they are given.

use alloc::vec::Vec;

use crate::types::{Index, NodeId};

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer grant.
    Lost,
    /// Undecided.
    Pending,
}

/// A set of voters decided by simple majority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Majority {
    voters: Vec<NodeId>,
}

impl Majority {
    /// A majority configuration of `voters` (sorted and deduplicated here).
    pub(crate) fn new(mut voters: Vec<NodeId>) -> Majority {
        voters.sort_unstable();
        voters.dedup();
        Majority { voters }
    }

    pub(crate) fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The largest index that a majority has matched; `u64::MAX` for an empty config so that
    /// it never constrains a joint one. `scratch` avoids an allocation per call.
    pub(crate) fn committed_index(
        &self,
        scratch: &mut Vec<u64>,
        matched: impl Fn(NodeId) -> Index,
    ) -> Index {
        let n = self.voters.len();
        if n == 0 {
            return Index(u64::MAX);
        }
        if n == 1 {
            return matched(self.voters[0]);
        }
        scratch.clear();
        scratch.extend(self.voters.iter().map(|&v| matched(v).0));
        scratch.sort_unstable();
        // The (n/2+1)-th largest value is matched by a majority.
        Index(scratch[n - (n / 2 + 1)])
    }

    /// Counts votes (`None`: not answered yet).
    pub(crate) fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut yes, mut missing) = (0, 0);
        for &v in &self.voters {
            match vote(v) {
                Some(true) => yes += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let q = self.voters.len() / 2 + 1;
        if yes >= q {
            VoteResult::Won
        } else if yes + missing >= q {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// Two majorities that must both agree (a joint configuration); the outgoing one is empty
/// outside of a membership change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Joint {
    pub(crate) incoming: Majority,
    pub(crate) outgoing: Majority,
}

impl Joint {
    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    pub(crate) fn committed_index(
        &self,
        scratch: &mut Vec<u64>,
        matched: impl Fn(NodeId) -> Index + Copy,
    ) -> Index {
        let a = self.incoming.committed_index(scratch, matched);
        let b = self.outgoing.committed_index(scratch, matched);
        let c = a.min(b);
        if c.0 == u64::MAX {
            Index(0)
        } else {
            c
        }
    }

    pub(crate) fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool> + Copy) -> VoteResult {
        match (
            self.incoming.vote_result(vote),
            self.outgoing.vote_result(vote),
        ) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn majority_commit_and_votes() {
        let m = Majority::new(vec![NodeId(1), NodeId(2), NodeId(3)]);
        let mut s = Vec::new();
        let idx = m.committed_index(&mut s, |id| Index([0, 5, 3, 9][id.0 as usize]));
        assert_eq!(idx, Index(5));
        assert_eq!(m.vote_result(|id| Some(id.0 != 3)), VoteResult::Won);
        assert_eq!(
            m.vote_result(|id| if id.0 == 1 { Some(true) } else { None }),
            VoteResult::Pending
        );
        assert_eq!(m.vote_result(|id| Some(id.0 == 1)), VoteResult::Lost);
        let four = Majority::new(vec![NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        let idx = four.committed_index(&mut s, |id| Index(id.0));
        assert_eq!(idx, Index(2));
    }

    #[test]
    fn joint_needs_both() {
        let j = Joint {
            incoming: Majority::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
            outgoing: Majority::new(vec![NodeId(3), NodeId(4), NodeId(5)]),
        };
        let mut s = Vec::new();
        let idx = j.committed_index(&mut s, |id| Index([0, 9, 9, 1, 1, 1][id.0 as usize]));
        assert_eq!(idx, Index(1));
        assert_eq!(j.vote_result(|id| Some(id.0 <= 2)), VoteResult::Lost);
        assert_eq!(j.vote_result(|id| Some(id.0 <= 4)), VoteResult::Won);
        assert_eq!(
            Joint::default().committed_index(&mut s, |_| Index(3)),
            Index(0)
        );
    }
}
