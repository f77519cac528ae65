//! Everything that crosses the wire or the disk: log entries, hard state, snapshot metadata,
//! configuration changes and the messages peers exchange, with their postcard encoding.
//!
//! Bytes from a peer are never trusted: [`Message::decode`] returns a [`DecodeError`] for any
//! byte string that is not a message, and [`Message::validate`] (run by `Node::step`) rejects
//! decodable messages whose fields contradict each other.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::{Index, NodeId, Term};

/// What an entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Application data (empty for the no-op a new leader appends).
    Normal,
    /// A postcard-encoded [`ConfChange`].
    ConfChange,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// Its position in the log.
    pub index: Index,
    /// What `data` holds.
    pub kind: EntryKind,
    /// The payload.
    pub data: Bytes,
}

impl Entry {
    /// Payload bytes, the unit of flow control and of the uncommitted cap.
    #[inline]
    pub fn payload_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// An entry carrying the configuration change `cc`.
    pub fn new_conf_change(term: Term, index: Index, cc: &ConfChange) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::ConfChange,
            data: encode_conf_change(cc),
        }
    }

    /// The configuration change this entry carries, if it is a valid one.
    pub fn conf_change(&self) -> Option<ConfChange> {
        match self.kind {
            EntryKind::ConfChange => postcard::from_bytes(&self.data).ok(),
            EntryKind::Normal => None,
        }
    }
}

/// The entries of an append message: an immutable list that clones by sharing (no copy,
/// no allocation), so a leader sends the same entries to several followers at the cost of
/// one list, and reuses its memory once every message holding it is dropped. Reads as a
/// `[Entry]`; encodes exactly like a `Vec<Entry>`.
#[derive(Clone, Default)]
pub struct Entries(Option<Arc<Vec<Entry>>>);

impl Entries {
    /// No entries (allocates nothing).
    pub const fn new() -> Entries {
        Entries(None)
    }

    /// The entries as a vector (moved out when this is the only holder, copied otherwise).
    pub fn into_vec(self) -> Vec<Entry> {
        match self.0 {
            None => Vec::new(),
            Some(a) => Arc::try_unwrap(a).unwrap_or_else(|a| a.as_ref().clone()),
        }
    }

    pub(crate) fn from_shared(a: Arc<Vec<Entry>>) -> Entries {
        if a.is_empty() {
            Entries(None)
        } else {
            Entries(Some(a))
        }
    }
}

impl Deref for Entries {
    type Target = [Entry];
    fn deref(&self) -> &[Entry] {
        match &self.0 {
            None => &[],
            Some(a) => a,
        }
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(v: Vec<Entry>) -> Entries {
        if v.is_empty() {
            Entries(None)
        } else {
            Entries(Some(Arc::new(v)))
        }
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        **self == **other
    }
}

impl Eq for Entries {}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        Vec::<Entry>::deserialize(d).map(Entries::from)
    }
}

/// The state that must be durable before a node answers votes or appends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The current term.
    pub term: Term,
    /// Whom this node voted for in `term`.
    pub vote: Option<NodeId>,
    /// The commit index known when the state was written (a hint for restart; may lag).
    pub commit: Index,
}

/// A cluster configuration: who votes and who only learns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfState {
    /// Voters of the (incoming) configuration.
    pub voters: Vec<NodeId>,
    /// Voters of the outgoing configuration while joint; empty otherwise.
    pub voters_outgoing: Vec<NodeId>,
    /// Learners.
    pub learners: Vec<NodeId>,
    /// Voters of the outgoing configuration that become learners when the joint one is left.
    pub learners_next: Vec<NodeId>,
}

impl ConfState {
    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }
}

/// One step of a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChangeStep {
    /// Make the node a voter (adding it, or promoting a learner).
    AddVoter(NodeId),
    /// Make the node a learner (adding it, or demoting a voter).
    AddLearner(NodeId),
    /// Remove the node.
    RemoveNode(NodeId),
}

/// A membership change (Raft thesis §4 / paper §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// One step that changes at most one voter, applied directly.
    Single(ConfChangeStep),
    /// Any number of steps, through a joint configuration (C_old,new). The leader leaves the
    /// joint configuration automatically once it is committed.
    Joint(Vec<ConfChangeStep>),
    /// Leave the joint configuration (normally proposed by the leader itself).
    LeaveJoint,
}

/// Metadata of a state-machine snapshot: the log prefix it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers.
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
    /// Configuration as of `index`.
    pub conf: ConfState,
}

/// Why an append was rejected, with a hint for fast backtracking (etcd's term hints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectHint {
    /// The `prev_index` of the rejected append.
    pub rejected: Index,
    /// The largest index ≤ `rejected` whose term is ≤ the append's `prev_term`
    /// (or the follower's last index, if shorter).
    pub hint_index: Index,
    /// The follower's term at `hint_index`.
    pub hint_term: Term,
}

/// A message between two peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// The kinds of message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Leader → follower: entries after (`prev_index`, `prev_term`) and the commit index.
    Append {
        /// Index of the entry before `entries`.
        prev_index: Index,
        /// Term of that entry.
        prev_term: Term,
        /// Entries, consecutive from `prev_index + 1`.
        entries: Entries,
        /// Leader's commit index.
        commit: Index,
    },
    /// Follower → leader: answer to an append or a snapshot.
    AppendResponse {
        /// On success, the follower's log matches the leader's up to here.
        index: Index,
        /// Set when the append did not match.
        reject: Option<RejectHint>,
    },
    /// Leader → follower: keep-alive with the commit index (capped at the follower's match).
    Heartbeat {
        /// Commit index the follower may adopt.
        commit: Index,
        /// Read-index round this heartbeat confirms (0 = none).
        read_round: u64,
    },
    /// Follower → leader: answer to a heartbeat.
    HeartbeatResponse {
        /// The round of the heartbeat being answered.
        read_round: u64,
    },
    /// Candidate → voter: a (pre-)vote request.
    RequestVote {
        /// A pre-vote (§9.6 of the thesis): the term is not raised.
        pre_vote: bool,
        /// Candidate's last log index.
        last_index: Index,
        /// Candidate's last log term.
        last_term: Term,
        /// Part of a leadership transfer: overrides the leader lease.
        transfer: bool,
    },
    /// Voter → candidate.
    VoteResponse {
        /// Answer to a pre-vote.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// Leader → follower: one chunk of a snapshot.
    SnapshotChunk {
        /// What the snapshot replaces (boxed: keeps every message small).
        meta: alloc::boxed::Box<SnapshotMeta>,
        /// Byte offset of `data` in the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// Whether this is the final chunk.
        last: bool,
    },
    /// Follower → leader: chunk received; send from `next_offset` (0 after a restart).
    SnapshotAck {
        /// Index of the snapshot being received.
        index: Index,
        /// The offset the follower expects next.
        next_offset: u64,
    },
    /// Leader → transfer target: campaign now.
    TimeoutNow,
    /// Follower → leader: confirm leadership for a read.
    ReadIndex {
        /// The follower's id for the read.
        id: u64,
    },
    /// Leader → follower: the read may be served once `index` is applied.
    ReadIndexResponse {
        /// The follower's id for the read.
        id: u64,
        /// Read index (`None`: the leader cannot serve reads yet).
        index: Option<Index>,
    },
}

/// Why bytes could not be decoded as a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a postcard-encoded message.
    Malformed,
    /// A message was decoded but bytes were left over.
    TrailingBytes {
        /// How many bytes were left.
        len: usize,
    },
}

/// Why a decoded message is refused by [`Message::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidMessage {
    /// `from` is zero or equals `to`.
    BadSender,
    /// Entries of an append are not consecutive from `prev_index + 1`.
    NonConsecutiveEntries,
    /// An entry's term is larger than the message term or smaller than its predecessor's.
    BadEntryTerm,
    /// Index arithmetic would overflow.
    IndexOverflow,
    /// A snapshot with index zero, or whose configuration has no voter.
    BadSnapshot,
}

impl Message {
    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing into a Vec cannot fail for these types.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a message; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (msg, rest) =
            postcard::take_from_bytes::<Message>(bytes).map_err(|_| DecodeError::Malformed)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { len: rest.len() });
        }
        Ok(msg)
    }

    /// Checks that the fields are consistent with each other.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if self.from == NodeId(0) || self.from == self.to {
            return Err(InvalidMessage::BadSender);
        }
        match &self.body {
            Body::Append {
                prev_index,
                prev_term,
                entries,
                ..
            } => {
                if prev_index.0.checked_add(entries.len() as u64 + 1).is_none() {
                    return Err(InvalidMessage::IndexOverflow);
                }
                let mut last_term = *prev_term;
                for (i, e) in entries.iter().enumerate() {
                    if e.index.0 != prev_index.0 + 1 + i as u64 {
                        return Err(InvalidMessage::NonConsecutiveEntries);
                    }
                    if e.term > self.term || e.term < last_term {
                        return Err(InvalidMessage::BadEntryTerm);
                    }
                    last_term = e.term;
                }
                Ok(())
            }
            Body::SnapshotChunk {
                meta, offset, data, ..
            } => {
                if meta.index == Index(0) || meta.conf.voters.is_empty() || meta.term > self.term {
                    return Err(InvalidMessage::BadSnapshot);
                }
                if offset.checked_add(data.len() as u64).is_none() || meta.index.0 == u64::MAX {
                    return Err(InvalidMessage::IndexOverflow);
                }
                Ok(())
            }
            Body::RequestVote { last_index, .. } if last_index.0 == u64::MAX => {
                Err(InvalidMessage::IndexOverflow)
            }
            _ => Ok(()),
        }
    }
}

/// Encodes a configuration change as entry data.
pub(crate) fn encode_conf_change(cc: &ConfChange) -> Bytes {
    Bytes::from(postcard::to_allocvec(cc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn roundtrip_and_garbage() {
        let m = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: Body::Append {
                prev_index: Index(4),
                prev_term: Term(2),
                entries: vec![Entry {
                    term: Term(3),
                    index: Index(5),
                    kind: EntryKind::Normal,
                    data: Bytes::from_static(b"x"),
                }]
                .into(),
                commit: Index(4),
            },
        };
        let b = m.encode();
        assert_eq!(Message::decode(&b), Ok(m.clone()));
        assert!(m.validate().is_ok());
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(
            Message::decode(&longer),
            Err(DecodeError::TrailingBytes { len: 1 })
        );
        for n in 0..b.len() {
            assert!(Message::decode(&b[..n]).is_err());
        }
        assert!(Message::decode(&[0xff; 16]).is_err());
    }

    #[test]
    fn entries_encode_like_a_vec() {
        let v = vec![Entry {
            term: Term(1),
            index: Index(2),
            kind: EntryKind::Normal,
            data: Bytes::from_static(b"y"),
        }];
        let shared = Entries::from(v.clone());
        assert_eq!(postcard::to_allocvec(&shared), postcard::to_allocvec(&v));
        assert_eq!(
            postcard::to_allocvec(&Entries::new()),
            postcard::to_allocvec(&Vec::<Entry>::new())
        );
        assert_eq!(shared.clone().into_vec(), v);
        assert_eq!(Entries::from(Vec::new()), Entries::new());
    }
}
