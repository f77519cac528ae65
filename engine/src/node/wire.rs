//! What crosses the network to and from a replicated node: client requests and replies, and
//! the messages between peers, each with its postcard encoding.
//!
//! Every request and every peer message names its **region** (a range of the key space served
//! by one Raft group) and the **epoch** the sender believes the region has, so that regions can
//! split and move later without a change of format. Today one region (id 1) spans all keys.
//!
//! Bytes from a peer or a client are never trusted: every `decode` returns a typed
//! [`WireError`] for bytes that are not a whole message, never panics.
pub use super::txn::{TxnReply, TxnSpec};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// A region of the key space, served by one Raft group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(pub u64);

/// A region's version (TiKV's region epoch): `conf_ver` grows with every membership change,
/// `version` with every split or merge. A request carrying another epoch than the region's
/// is refused with [`ClientError::EpochMismatch`], so a client with a stale region map learns
/// it and refreshes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch {
    /// Membership changes applied.
    pub conf_ver: u64,
    /// Splits and merges applied.
    pub version: u64,
}

impl Epoch {
    /// The epoch of a region that has never changed.
    pub const INITIAL: Epoch = Epoch { conf_ver: 1, version: 1 };
}

/// A client session: the id a client chooses once (unique per client) and keeps across
/// retries and leader changes; its writes are numbered by a sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);

/// A client request to one region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The region addressed.
    pub region: RegionId,
    /// The region's epoch as the client knows it.
    pub epoch: Epoch,
    /// What is asked.
    pub op: ClientOp,
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Read one key.
    Read {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
        /// How fresh the answer must be.
        consistency: Consistency,
    },
    /// A write, applied at most once per `(client, seq)`: a retry of the same sequence number
    /// (to any node, across leader changes) gets the first attempt's answer. A client numbers
    /// its writes 1, 2, 3, … and has one outstanding at a time; a write with a number below the
    /// session's last one is refused ([`ClientError::SessionStale`]).
    Write {
        /// The session.
        client: ClientId,
        /// The write's sequence number in the session (from 1).
        seq: u64,
        /// The write.
        op: WriteOp,
    },
    /// Change the region's membership or leadership (TiKV's admin commands); sent to the
    /// leader with the region's current epoch (`conf_ver` included: an operator acting on an
    /// outdated view is refused with `EpochMismatch`). Answered once the change is applied
    /// on the leader (see [`AdminOp`]).
    Admin(AdminOp),
}

/// An administrative request. Each is idempotent: retried after an `Unknown` answer (or at
/// the next leader), it finishes the change or reports it done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOp {
    /// Add node `node` as a replica: it joins as a learner (it receives the log or a
    /// snapshot but does not vote), and is promoted to voter once it has caught up with the
    /// leader's commit index — the way etcd and TiKV add members, so a new empty replica
    /// never weakens the quorum while it catches up. Answered when the promotion is applied.
    AddReplica {
        /// The node (its Raft id, never used before in this region).
        node: u64,
    },
    /// Remove replica `node` (voter or learner); answered when the removal is applied. A
    /// leader that removes itself keeps leading until it has handed leadership to the most
    /// caught-up voter. Ids of removed nodes are never reused.
    RemoveReplica {
        /// The node.
        node: u64,
    },
    /// Hand leadership to voter `to` (Raft thesis §3.10): the leader stops proposing, brings
    /// `to` up to date and tells it to campaign at once. Answered when this node learns
    /// that `to` leads.
    TransferLeader {
        /// The voter to lead.
        to: u64,
    },
}

/// A region's membership as a node has applied it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The region's epoch (its `conf_ver` counts the configuration changes applied).
    pub epoch: Epoch,
    /// Voters (while a joint configuration is in effect: the incoming ones).
    pub voters: Vec<u64>,
    /// Voters of the outgoing configuration while joint; empty otherwise.
    pub voters_outgoing: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Nodes removed from the region (their ids are never reused).
    pub removed: Vec<u64>,
}

/// The answer to an [`AdminOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminReply {
    /// The membership after the change, as the answering node applied it.
    pub membership: Membership,
    /// The leader as the answering node knows it.
    pub leader: Option<u64>,
}

/// Why an [`AdminOp`] was refused (nothing was changed by it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminError {
    /// Another membership change or transfer is under way (at this node, or a configuration
    /// entry not yet applied in Raft): retry later.
    ChangePending,
    /// The node is not a replica of the region.
    UnknownNode {
        /// The node named.
        node: u64,
    },
    /// The node was removed from the region; its id cannot be used again.
    NodeRemoved {
        /// The node named.
        node: u64,
    },
    /// Removing the node would leave the region without a voter.
    LastVoter,
    /// The transfer target is not a voter (a learner, or unknown).
    NotVoter {
        /// The node named.
        node: u64,
    },
    /// The target did not take over within an election timeout; the leader leads on.
    TransferFailed {
        /// The leader now.
        leader: Option<u64>,
    },
}

impl AdminError {
    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AdminError::ChangePending | AdminError::TransferFailed { .. })
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::ChangePending => f.write_str("another membership change is under way"),
            AdminError::UnknownNode { node } => write!(f, "node {node} is not a replica"),
            AdminError::NodeRemoved { node } => write!(f, "node {node} was removed (ids are not reused)"),
            AdminError::LastVoter => f.write_str("that would leave no voter"),
            AdminError::NotVoter { node } => write!(f, "node {node} is not a voter"),
            AdminError::TransferFailed { leader: Some(l) } => write!(f, "transfer did not happen (node {l} leads)"),
            AdminError::TransferFailed { leader: None } => f.write_str("transfer did not happen"),
        }
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Linearizable: reflects every write acknowledged before the read was sent (ReadIndex,
    /// served by the leader or by a follower that has caught up to the leader's commit index).
    Linearizable,
    /// A snapshot read at commit timestamp `ts`, served by any replica that has applied every
    /// write at or below `ts` (else [`ClientError::DataNotReady`]). May miss later writes: only
    /// when asked for by name.
    Stale {
        /// The read timestamp (a timestamp from an earlier reply).
        ts: u64,
    },
}

/// A write operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
        /// The value.
        #[serde(with = "super::bytes_serde")]
        value: Vec<u8>,
    },
    /// Remove `key` (nothing if it is absent).
    Delete {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
    },
    /// If the key's value is `expected` (`None`: the key is absent), set it to `new`
    /// (`None`: remove it).
    Cas {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
        /// The value required.
        #[serde(with = "super::bytes_serde::opt")]
        expected: Option<Vec<u8>>,
        /// The value written on success.
        #[serde(with = "super::bytes_serde::opt")]
        new: Option<Vec<u8>>,
    },
    /// A multi-key transaction (etcd's `Txn`), applied atomically in one log entry: see
    /// [`super::txn`].
    Txn(TxnSpec),
}

impl WriteOp {
    /// The key written (a transaction's first key; empty for an empty transaction).
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } | WriteOp::Cas { key, .. } => key,
            WriteOp::Txn(t) => t.keys().next().unwrap_or_default(),
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The value read (`None`: absent), as of commit timestamp `read_ts`.
    Value {
        /// The value.
        #[serde(with = "super::bytes_serde::opt")]
        value: Option<Vec<u8>>,
        /// The timestamp read at (usable for a later stale read).
        read_ts: u64,
    },
    /// A put or delete was applied; the data is as of `revision` (the write's commit
    /// timestamp, or the previous revision when a delete found nothing to remove).
    Written {
        /// The revision.
        revision: u64,
    },
    /// A compare-and-swap was applied: whether it swapped.
    Swapped {
        /// True when the compare held and the new value was written.
        swapped: bool,
        /// The revision (as for `Written`).
        revision: u64,
    },
    /// A transaction was applied (see [`super::txn`]).
    Txn(TxnReply),
    /// An admin request was carried out.
    Admin(AdminReply),
}

/// Why a request failed. Unless said otherwise, nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientError {
    /// This node is not the leader (or a follower read could not reach it): retry at `leader`
    /// if known. A write refused this way was not proposed.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
    /// This node hosts no such region (never did, or it was removed).
    RegionNotFound {
        /// The region asked for.
        region: RegionId,
    },
    /// The request's epoch is not the region's: refresh the region map and retry.
    EpochMismatch {
        /// The region's current epoch.
        current: Epoch,
    },
    /// The write's outcome is unknown here (its entry was replaced, the leader changed, or it
    /// timed out): retry under the same sequence number, which applies it at most once.
    Unknown,
    /// A stale read at a timestamp this replica has not yet applied up to.
    DataNotReady {
        /// The commit timestamp applied so far.
        applied_ts: u64,
    },
    /// A write with a sequence number below the session's last one (already answered).
    SessionStale {
        /// The session's last sequence number.
        last_seq: u64,
    },
    /// The node is busy (too many requests waiting, or the leader holds too much uncommitted
    /// data): retry later.
    Busy,
    /// The request is invalid (and always will be), with the reason.
    Invalid(String),
    /// The node cannot serve (its storage failed), with the reason.
    Unavailable(String),
    /// This node was removed from the region: it serves nothing more (ask another replica).
    Removed {
        /// The region.
        region: RegionId,
    },
    /// An admin request was refused.
    Admin(AdminError),
}

impl ClientError {
    /// True when the same request may succeed if retried (here or at another node).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::NotLeader { .. }
                | ClientError::Unknown
                | ClientError::DataNotReady { .. }
                | ClientError::Busy
                | ClientError::Unavailable(_)
                | ClientError::Removed { .. }
        ) || matches!(self, ClientError::Admin(e) if e.is_retryable())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotLeader { leader: Some(l) } => write!(f, "not the leader (try node {l})"),
            ClientError::NotLeader { leader: None } => f.write_str("not the leader (no leader known)"),
            ClientError::RegionNotFound { region } => write!(f, "region {} not found", region.0),
            ClientError::EpochMismatch { current } => {
                write!(f, "epoch mismatch (region is at conf_ver {} version {})", current.conf_ver, current.version)
            }
            ClientError::Unknown => f.write_str("outcome unknown: retry with the same sequence number"),
            ClientError::DataNotReady { applied_ts } => write!(f, "data not ready (applied up to ts {applied_ts})"),
            ClientError::SessionStale { last_seq } => write!(f, "stale sequence number (session is at {last_seq})"),
            ClientError::Busy => f.write_str("busy"),
            ClientError::Invalid(why) => write!(f, "invalid request: {why}"),
            ClientError::Unavailable(why) => write!(f, "unavailable: {why}"),
            ClientError::Removed { region } => write!(f, "this replica was removed from region {}", region.0),
            ClientError::Admin(e) => write!(f, "admin request refused: {e}"),
        }
    }
}

/// A client message on the wire: a request with the client's id for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMessage {
    /// The client's id for this request (echoed in the response).
    pub id: u64,
    /// The request.
    pub request: ClientRequest,
}

/// A node's answer on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    /// The request's id.
    pub id: u64,
    /// The outcome.
    pub result: Result<ClientReply, ClientError>,
}

/// A message between two peers of a region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerMessage {
    /// The region (Raft group) it belongs to.
    pub region: RegionId,
    /// The sender's epoch of the region.
    pub epoch: Epoch,
    /// What it carries.
    pub body: PeerBody,
}

/// What a peer message carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerBody {
    /// A Raft message.
    Raft(strata_raft::Message),
    /// The answer to a message from a node the sender has applied the removal of: `node`
    /// (the receiver) is no longer a replica of the region. A removed node does not receive
    /// the entry that removes it once the leader's configuration drops it, so without this it
    /// would campaign forever (TiKV answers such a peer the same way).
    Removed {
        /// The removed node.
        node: u64,
        /// The member that says so.
        by: u64,
    },
}

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The bytes do not decode as the expected message.
    Malformed {
        /// What was expected.
        what: &'static str,
    },
    /// A message decoded but bytes were left over.
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        len: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Malformed { what } => write!(f, "malformed {what}"),
            WireError::TrailingBytes { what, len } => write!(f, "{len} bytes after a {what}"),
        }
    }
}

/// Encodes any wire type with postcard.
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these types into a Vec cannot fail.
    postcard::to_allocvec(v).unwrap_or_default()
}

/// Decodes a whole message of type `T`; never panics.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, WireError> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|_| WireError::Malformed { what })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes { what, len: rest.len() });
    }
    Ok(v)
}

macro_rules! codec {
    ($t:ty, $what:literal) => {
        impl $t {
            /// Encodes with postcard.
            pub fn encode(&self) -> Vec<u8> {
                encode(self)
            }
            /// Decodes; a typed error for anything that is not exactly one such message.
            pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
                decode(bytes, $what)
            }
        }
    };
}

codec!(ClientMessage, "client message");
codec!(ClientResponse, "client response");
codec!(PeerMessage, "peer message");

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use strata_raft::{Body, Index, Message, NodeId, Term};

    #[test]
    fn roundtrip_and_garbage() {
        let m = ClientMessage {
            id: 9,
            request: ClientRequest {
                region: RegionId(1),
                epoch: Epoch::INITIAL,
                op: ClientOp::Write {
                    client: ClientId(3),
                    seq: 4,
                    op: WriteOp::Cas { key: b"k".to_vec(), expected: None, new: Some(b"v".to_vec()) },
                },
            },
        };
        let b = m.encode();
        assert_eq!(ClientMessage::decode(&b), Ok(m));
        for n in 0..b.len() {
            assert!(ClientMessage::decode(&b[..n]).is_err(), "prefix {n} decoded");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(ClientMessage::decode(&longer), Err(WireError::TrailingBytes { what: "client message", len: 1 }));
        let p = PeerMessage {
            region: RegionId(1),
            epoch: Epoch::INITIAL,
            body: PeerBody::Raft(Message {
                from: NodeId(1),
                to: NodeId(2),
                term: Term(3),
                body: Body::Heartbeat { commit: Index(4), read_round: 0 },
            }),
        };
        assert_eq!(PeerMessage::decode(&p.encode()), Ok(p));
        assert!(PeerMessage::decode(&[0xff; 12]).is_err());
        let r = ClientResponse { id: 1, result: Err(ClientError::NotLeader { leader: Some(2) }) };
        assert_eq!(ClientResponse::decode(&r.encode()), Ok(r));
        assert!(ClientResponse::decode(&[7u8; 40]).is_err());
        let admin = ClientMessage {
            id: 2,
            request: ClientRequest { region: RegionId(1), epoch: Epoch { conf_ver: 4, version: 1 }, op: ClientOp::Admin(AdminOp::AddReplica { node: 4 }) },
        };
        assert_eq!(ClientMessage::decode(&admin.encode()), Ok(admin));
        let ok = ClientResponse {
            id: 2,
            result: Ok(ClientReply::Admin(AdminReply {
                membership: Membership { epoch: Epoch { conf_ver: 6, version: 1 }, voters: vec![1, 2, 3, 4], removed: vec![5], ..Membership::default() },
                leader: Some(1),
            })),
        };
        assert_eq!(ClientResponse::decode(&ok.encode()), Ok(ok));
        for e in [ClientError::Admin(AdminError::LastVoter), ClientError::Removed { region: RegionId(1) }] {
            let r = ClientResponse { id: 3, result: Err(e) };
            assert_eq!(ClientResponse::decode(&r.encode()), Ok(r));
        }
        // Variants are appended: what older nodes send still decodes to the same thing.
        assert_eq!(ClientResponse { id: 1, result: Err(ClientError::Busy) }.encode(), [1, 1, 6]);
    }
}
