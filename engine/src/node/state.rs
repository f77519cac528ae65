//! The node's own records in the store, under the key namespace `n` (`docs/format.md`):
//! the apply state and the client session table. Both are written in the same batch as the
//! write they describe, so after a crash they agree with the data.
//!
//! * `n a` → [`ApplyState`]: the Raft index and term of the last entry whose batch this is,
//!   and the commit timestamp it used (the next write's timestamp must be above it).
//! * `n s <client id: u64 BE>` → [`SessionRecord`]: the session's last applied sequence
//!   number and that write's answer, returned again to a retry.
//! * `n c` → [`ConfRecord`]: the region's membership as of the last applied configuration
//!   entry (written in that entry's batch, with the apply state and its applied mark), so
//!   the store's tables — and so a snapshot — carry the membership of their applied index.
use super::wire::{decode, encode, ClientError, ClientId, ClientReply, Epoch, Membership};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use strata_raft::{apply_conf_change, ConfChange, ConfState, NodeId};

/// The namespace byte of the node's records.
pub const NODE_NAMESPACE: u8 = b'n';

/// The key of the apply state.
pub const APPLY_STATE_KEY: &[u8] = &[NODE_NAMESPACE, b'a'];

/// The key of the membership record.
pub const CONF_KEY: &[u8] = &[NODE_NAMESPACE, b'c'];

/// The region's membership as applied: Raft's configuration at `index`, the epoch's
/// `conf_ver`, and the ids removed so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfRecord {
    /// The index of the configuration entry that made it (0: the region's initial one).
    pub index: u64,
    /// Configuration changes applied, on top of the initial epoch's `conf_ver`.
    pub conf_ver: u64,
    /// Raft's configuration.
    pub conf: ConfState,
    /// Nodes removed from the region (sorted); their ids are never used again.
    pub removed: Vec<NodeId>,
}

impl ConfRecord {
    /// The membership of a new region: `voters` and `learners` at index 0.
    pub fn initial(voters: &[NodeId], learners: &[NodeId], conf_ver: u64) -> ConfRecord {
        let mut conf = ConfState { voters: voters.to_vec(), learners: learners.to_vec(), ..ConfState::default() };
        for v in [&mut conf.voters, &mut conf.learners] {
            v.sort_unstable();
            v.dedup();
        }
        ConfRecord { index: 0, conf_ver, conf, removed: Vec::new() }
    }

    /// The record after configuration entry `index` with change `cc`; `None` when Raft skips
    /// the change as invalid (every replica alike, so they all agree).
    pub fn apply(&self, index: u64, cc: &ConfChange) -> Option<ConfRecord> {
        let conf = apply_conf_change(&self.conf, cc).ok()?;
        let mut removed = self.removed.clone();
        for id in members(&self.conf) {
            if !is_member(&conf, id) {
                if let Err(at) = removed.binary_search(&id) {
                    removed.insert(at, id);
                }
            }
        }
        Some(ConfRecord { index, conf_ver: self.conf_ver + 1, conf, removed })
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        is_member(&self.conf, id)
    }

    /// Whether `id` is a voter (of either half of a joint configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.conf.voters.contains(&id) || self.conf.voters_outgoing.contains(&id)
    }

    /// Whether `id` was removed.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.binary_search(&id).is_ok()
    }

    /// The region's epoch with this record's `conf_ver` and the given `version`.
    pub fn epoch(&self, version: u64) -> Epoch {
        Epoch { conf_ver: self.conf_ver, version }
    }

    /// The wire view.
    pub fn membership(&self, version: u64) -> Membership {
        let ids = |v: &[NodeId]| v.iter().map(|n| n.0).collect();
        let mut learners: Vec<u64> = ids(&self.conf.learners);
        learners.extend(self.conf.learners_next.iter().map(|n| n.0));
        learners.sort_unstable();
        Membership {
            epoch: self.epoch(version),
            voters: ids(&self.conf.voters),
            voters_outgoing: ids(&self.conf.voters_outgoing),
            learners,
            removed: ids(&self.removed),
        }
    }

    /// Encodes the stored value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes the stored value.
    pub fn decode(bytes: &[u8]) -> Result<ConfRecord, super::wire::WireError> {
        decode(bytes, "membership record")
    }
}

fn members(cs: &ConfState) -> impl Iterator<Item = NodeId> + '_ {
    cs.voters.iter().chain(&cs.voters_outgoing).chain(&cs.learners).chain(&cs.learners_next).copied()
}

fn is_member(cs: &ConfState, id: NodeId) -> bool {
    members(cs).any(|m| m == id)
}

/// What apply has reached, as stored with every batch apply writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyState {
    /// The Raft index of the entry that wrote this batch.
    pub index: u64,
    /// The commit timestamp of the newest applied write (0: none).
    pub last_ts: u64,
    /// The Raft term of entry `index`: with it the store's state names the log position it
    /// is at, which rebuilds the Raft log's base if a snapshot was installed in the store
    /// and the crash came before the log recorded it (`node::snapshot`).
    pub term: u64,
}

/// One client session: its last applied write and that write's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The last applied sequence number.
    pub seq: u64,
    /// What that write answered (errors included: a retry gets the same answer).
    pub result: Result<ClientReply, ClientError>,
}

/// The store key of `client`'s session.
pub fn session_key(client: ClientId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&[NODE_NAMESPACE, b's']);
    k.extend_from_slice(&client.0.to_be_bytes());
    k
}

impl ApplyState {
    /// Encodes the stored value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes the stored value.
    pub fn decode(bytes: &[u8]) -> Result<ApplyState, super::wire::WireError> {
        decode(bytes, "apply state")
    }
}

impl SessionRecord {
    /// Encodes the stored value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes the stored value.
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, super::wire::WireError> {
        decode(bytes, "session record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn records_roundtrip() {
        let s = ApplyState { index: 7, last_ts: 1 << 40, term: 2 };
        assert_eq!(ApplyState::decode(&s.encode()), Ok(s));
        let r = SessionRecord { seq: 3, result: Ok(ClientReply::Swapped { swapped: false, revision: 9 }) };
        assert_eq!(SessionRecord::decode(&r.encode()), Ok(r));
        assert!(SessionRecord::decode(b"\xff\xff").is_err());
        assert_eq!(session_key(ClientId(1)), b"ns\0\0\0\0\0\0\0\x01".to_vec());
    }

    #[test]
    fn conf_record_follows_changes() {
        use strata_raft::ConfChangeStep::{AddLearner, AddVoter, RemoveNode};
        let n = NodeId;
        let c0 = ConfRecord::initial(&[n(3), n(1), n(2)], &[], 1);
        assert_eq!(c0.conf.voters, [n(1), n(2), n(3)]);
        let c1 = c0.apply(7, &ConfChange::Single(AddLearner(n(4)))).expect("valid");
        assert!(c1.is_member(n(4)) && !c1.is_voter(n(4)));
        assert_eq!((c1.index, c1.conf_ver), (7, 2));
        let c2 = c1.apply(9, &ConfChange::Single(AddVoter(n(4)))).expect("valid");
        assert!(c2.is_voter(n(4)));
        let c3 = c2.apply(12, &ConfChange::Single(RemoveNode(n(2)))).expect("valid");
        assert!(!c3.is_member(n(2)) && c3.is_removed(n(2)));
        assert_eq!(c3.membership(1), Membership { epoch: Epoch { conf_ver: 4, version: 1 }, voters: vec![1, 3, 4], removed: vec![2], ..Membership::default() });
        assert_eq!(ConfRecord::decode(&c3.encode()), Ok(c3.clone()));
        // Raft skips an invalid change; so does the record.
        assert_eq!(c3.apply(13, &ConfChange::LeaveJoint), None);
        // A joint change removes the outgoing voters only when it is left.
        let j = c3.apply(14, &ConfChange::Joint(vec![RemoveNode(n(1)), AddLearner(n(3))])).expect("valid");
        assert!(j.is_voter(n(1)) && !j.is_removed(n(1)));
        let left = j.apply(15, &ConfChange::LeaveJoint).expect("valid");
        assert!(left.is_removed(n(1)) && left.is_member(n(3)) && !left.is_voter(n(3)));
    }
}
