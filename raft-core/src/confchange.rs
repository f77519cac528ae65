//! Membership changes as a pure function: `apply(&ConfState, &ConfChange) -> ConfState`,
//! refusing changes that would overlap or leave the cluster without voters.

use alloc::vec::Vec;

use crate::message::{ConfChange, ConfChangeStep, ConfState};
use crate::types::NodeId;

/// Why a configuration change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeError {
    /// Another change is proposed and not yet applied.
    PendingChange,
    /// `Single` or `Joint` while a joint configuration is in effect.
    AlreadyJoint,
    /// `LeaveJoint` outside a joint configuration.
    NotJoint,
    /// A `Single` change would add or remove more than one voter.
    TooManyVoterChanges,
    /// The change would leave no voter.
    NoVoters,
    /// A step names node 0.
    ZeroId,
    /// The change is empty.
    Empty,
}

/// The configuration that results from applying `cc` to `cs`.
pub fn apply_conf_change(cs: &ConfState, cc: &ConfChange) -> Result<ConfState, ConfChangeError> {
    match cc {
        ConfChange::LeaveJoint => {
            if !cs.is_joint() {
                return Err(ConfChangeError::NotJoint);
            }
            let mut out = cs.clone();
            out.voters_outgoing.clear();
            let next = core::mem::take(&mut out.learners_next);
            for l in next {
                insert(&mut out.learners, l);
            }
            Ok(out)
        }
        ConfChange::Single(step) => {
            if cs.is_joint() {
                return Err(ConfChangeError::AlreadyJoint);
            }
            let mut out = cs.clone();
            apply_step(&mut out, *step)?;
            let changed = symmetric_difference(&cs.voters, &out.voters);
            if changed > 1 {
                return Err(ConfChangeError::TooManyVoterChanges);
            }
            check_voters(&out)?;
            Ok(out)
        }
        ConfChange::Joint(steps) => {
            if cs.is_joint() {
                return Err(ConfChangeError::AlreadyJoint);
            }
            if steps.is_empty() {
                return Err(ConfChangeError::Empty);
            }
            let mut out = cs.clone();
            out.voters_outgoing = cs.voters.clone();
            for s in steps {
                apply_step(&mut out, *s)?;
            }
            check_voters(&out)?;
            Ok(out)
        }
    }
}

fn check_voters(cs: &ConfState) -> Result<(), ConfChangeError> {
    if cs.voters.is_empty() {
        Err(ConfChangeError::NoVoters)
    } else {
        Ok(())
    }
}

fn apply_step(cs: &mut ConfState, step: ConfChangeStep) -> Result<(), ConfChangeError> {
    match step {
        ConfChangeStep::AddVoter(id) => {
            nonzero(id)?;
            remove(&mut cs.learners, id);
            remove(&mut cs.learners_next, id);
            insert(&mut cs.voters, id);
        }
        ConfChangeStep::AddLearner(id) => {
            nonzero(id)?;
            remove(&mut cs.voters, id);
            if cs.voters_outgoing.contains(&id) {
                // Still a voter of the outgoing config: becomes a learner on leaving it.
                insert(&mut cs.learners_next, id);
            } else {
                insert(&mut cs.learners, id);
            }
        }
        ConfChangeStep::RemoveNode(id) => {
            nonzero(id)?;
            remove(&mut cs.voters, id);
            remove(&mut cs.learners, id);
            remove(&mut cs.learners_next, id);
        }
    }
    Ok(())
}

fn nonzero(id: NodeId) -> Result<(), ConfChangeError> {
    if id.0 == 0 {
        Err(ConfChangeError::ZeroId)
    } else {
        Ok(())
    }
}

fn insert(v: &mut Vec<NodeId>, id: NodeId) {
    if let Err(pos) = v.binary_search(&id) {
        v.insert(pos, id);
    }
}

fn remove(v: &mut Vec<NodeId>, id: NodeId) {
    if let Ok(pos) = v.binary_search(&id) {
        v.remove(pos);
    }
}

fn symmetric_difference(a: &[NodeId], b: &[NodeId]) -> usize {
    a.iter().filter(|x| !b.contains(x)).count() + b.iter().filter(|x| !a.contains(x)).count()
}

/// Sorts and deduplicates the lists of a configuration (the form every function here keeps).
pub(crate) fn normalize(cs: &mut ConfState) {
    for v in [
        &mut cs.voters,
        &mut cs.voters_outgoing,
        &mut cs.learners,
        &mut cs.learners_next,
    ] {
        v.sort_unstable();
        v.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn single_and_joint() {
        let cs = ConfState {
            voters: ids(&[1, 2, 3]),
            ..Default::default()
        };
        let add = apply_conf_change(
            &cs,
            &ConfChange::Single(ConfChangeStep::AddVoter(NodeId(4))),
        );
        assert_eq!(
            add.as_ref().map(|c| c.voters.clone()),
            Ok(ids(&[1, 2, 3, 4]))
        );
        let j = apply_conf_change(
            &cs,
            &ConfChange::Joint(vec![
                ConfChangeStep::AddVoter(NodeId(4)),
                ConfChangeStep::AddLearner(NodeId(1)),
            ]),
        )
        .expect("valid");
        assert_eq!(j.voters, ids(&[2, 3, 4]));
        assert_eq!(j.voters_outgoing, ids(&[1, 2, 3]));
        assert_eq!(j.learners_next, ids(&[1]));
        assert_eq!(
            apply_conf_change(&j, &ConfChange::Single(ConfChangeStep::AddVoter(NodeId(5)))),
            Err(ConfChangeError::AlreadyJoint)
        );
        let left = apply_conf_change(&j, &ConfChange::LeaveJoint).expect("valid");
        assert_eq!(left.learners, ids(&[1]));
        assert!(!left.is_joint());
        assert_eq!(
            apply_conf_change(&cs, &ConfChange::LeaveJoint),
            Err(ConfChangeError::NotJoint)
        );
        let one = ConfState {
            voters: ids(&[1]),
            ..Default::default()
        };
        assert_eq!(
            apply_conf_change(
                &one,
                &ConfChange::Single(ConfChangeStep::RemoveNode(NodeId(1)))
            ),
            Err(ConfChangeError::NoVoters)
        );
        let promote = ConfState {
            voters: ids(&[1]),
            learners: ids(&[2]),
            ..Default::default()
        };
        let p = apply_conf_change(
            &promote,
            &ConfChange::Single(ConfChangeStep::AddVoter(NodeId(2))),
        );
        assert_eq!(p.map(|c| c.voters), Ok(ids(&[1, 2])));
    }
}
