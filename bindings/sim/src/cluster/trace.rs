//! Readable lines for the cluster's trace, and a digest of a replica's data.
use super::Packet;
use crate::disk::SimDisk;
use strata_engine::lsm::io::{IoRequest, IoResult};
use strata_engine::lsm::iter::IterStep;
use strata_engine::lsm::sstable::Block;
use strata_engine::node::wire::{AdminOp, ClientError, ClientMessage, ClientOp, ClientReply, ClientResponse, Membership, PeerBody, PeerMessage, WriteOp};
use strata_engine::node::{Node, NodeEvent};
use strata_raft::{Body, Message};

/// One packet, for the network's trace.
pub fn describe_packet(p: &Packet) -> String {
    match p {
        Packet::Peer(b) => describe_peer(b),
        Packet::Request(b) => match ClientMessage::decode(b) {
            Ok(m) => format!("request#{} {}", m.id, describe_op(&m.request.op)),
            Err(e) => format!("bad request: {e}"),
        },
        Packet::Response(b) => match ClientResponse::decode(b) {
            Ok(r) => format!("response#{} {}", r.id, describe_result(&r.result)),
            Err(e) => format!("bad response: {e}"),
        },
    }
}

/// A client operation, short: `read x Linearizable`, `write s7#2 put x=1`.
pub fn describe_op(op: &ClientOp) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        ClientOp::Read { key, consistency } => format!("read {} {consistency:?}", s(key)),
        ClientOp::Write { client, seq, op } => {
            let w = describe_write_op(op);
            format!("write {}#{seq} {w}", super::user::session_name(client.0))
        }
        ClientOp::Admin(a) => format!("admin {}", describe_admin(a)),
    }
}

/// An admin request, short: `add n4`, `remove n2`, `transfer to n3`.
pub fn describe_admin(op: &AdminOp) -> String {
    match op {
        AdminOp::AddReplica { node } => format!("add n{node}"),
        AdminOp::RemoveReplica { node } => format!("remove n{node}"),
        AdminOp::TransferLeader { to } => format!("transfer to n{to}"),
    }
}

/// A configuration change, short: `conf: add learner n4`, `conf: joint [remove n1, add voter n5]`.
pub fn describe_conf_change(cc: &strata_raft::ConfChange) -> String {
    use strata_raft::{ConfChange, ConfChangeStep};
    let step = |s: &ConfChangeStep| match s {
        ConfChangeStep::AddVoter(n) => format!("add voter n{}", n.0),
        ConfChangeStep::AddLearner(n) => format!("add learner n{}", n.0),
        ConfChangeStep::RemoveNode(n) => format!("remove n{}", n.0),
    };
    match cc {
        ConfChange::Single(s) => format!("conf: {}", step(s)),
        ConfChange::Joint(steps) => format!("conf: joint [{}]", steps.iter().map(step).collect::<Vec<_>>().join(", ")),
        ConfChange::LeaveJoint => "conf: leave joint".into(),
    }
}

/// A membership, short: `voters n1,n2,n3 learners n4 (conf_ver 2)`.
pub fn describe_membership(m: &Membership) -> String {
    let ids = |v: &[u64]| v.iter().map(|n| format!("n{n}")).collect::<Vec<_>>().join(",");
    let mut s = format!("voters {}", ids(&m.voters));
    if !m.voters_outgoing.is_empty() {
        s += &format!(" (outgoing {})", ids(&m.voters_outgoing));
    }
    if !m.learners.is_empty() {
        s += &format!(" learners {}", ids(&m.learners));
    }
    if !m.removed.is_empty() {
        s += &format!(" removed {}", ids(&m.removed));
    }
    s + &format!(" (conf_ver {})", m.epoch.conf_ver)
}

/// A client request's outcome, short.
pub fn describe_result(r: &Result<ClientReply, ClientError>) -> String {
    match r {
        Ok(ClientReply::Value { value: Some(v), read_ts }) => format!("value {} (read ts {read_ts})", String::from_utf8_lossy(v)),
        Ok(ClientReply::Value { value: None, read_ts }) => format!("absent (read ts {read_ts})"),
        Ok(ClientReply::Written { revision }) => format!("written at revision {revision}"),
        Ok(ClientReply::Swapped { swapped, revision }) => format!("swapped {swapped} at revision {revision}"),
        Ok(ClientReply::Txn(t)) => format!("txn {} at revision {}", if t.succeeded { "succeeded" } else { "failed" }, t.revision),
        Ok(ClientReply::Admin(a)) => format!("done: {}", describe_membership(&a.membership)),
        Err(e) => format!("error: {e}"),
    }
}

/// A write op in a line: `put k=v`, `delete k`, `cas k old -> new`, or a transaction.
pub fn describe_write_op(op: &WriteOp) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        WriteOp::Put { key, value } => format!("put {}={}", s(key), s(value)),
        WriteOp::Delete { key } => format!("delete {}", s(key)),
        WriteOp::Cas { key, expected, new } => format!(
            "cas {} {} -> {}",
            s(key),
            expected.as_deref().map_or("(absent)".into(), s),
            new.as_deref().map_or("(delete)".into(), s)
        ),
        WriteOp::Txn(t) => describe_txn(t),
    }
}

/// A transaction, short: `txn (2 compares, 3 steps / 1 step)`.
pub fn describe_txn(t: &strata_engine::node::txn::TxnSpec) -> String {
    format!("txn ({} compares, {} steps / {} steps)", t.compares.len(), t.success.len(), t.failure.len())
}

/// A peer message (the Raft message inside), short.
pub fn describe_peer(bytes: &[u8]) -> String {
    match PeerMessage::decode(bytes) {
        Ok(PeerMessage { body: PeerBody::Raft(m), .. }) => describe_raft(&m),
        Ok(PeerMessage { body: PeerBody::Removed { node, .. }, .. }) => format!("Removed n{node} (you are no longer a replica)"),
        Err(e) => format!("bad peer message: {e}"),
    }
}

/// A Raft message, short: `Append t3 i5..i7 c4`.
pub fn describe_raft(m: &Message) -> String {
    let t = m.term.0;
    match &m.body {
        Body::Append { prev_index, entries, commit, .. } => match (entries.first(), entries.last()) {
            (Some(a), Some(b)) => format!("Append t{t} i{}..i{} c{}", a.index.0, b.index.0, commit.0),
            _ => format!("Append t{t} prev i{} c{}", prev_index.0, commit.0),
        },
        Body::AppendResponse { index, reject: None } => format!("AppendOk t{t} i{}", index.0),
        Body::AppendResponse { reject: Some(r), .. } => format!("AppendReject t{t} i{} hint i{}", r.rejected.0, r.hint_index.0),
        Body::Heartbeat { commit, .. } => format!("Heartbeat t{t} c{}", commit.0),
        Body::HeartbeatResponse { .. } => format!("HeartbeatOk t{t}"),
        Body::RequestVote { pre_vote, last_index, last_term, .. } => {
            format!("{} t{t} last i{} t{}", if *pre_vote { "PreVote" } else { "Vote" }, last_index.0, last_term.0)
        }
        Body::VoteResponse { pre_vote, granted } => {
            format!("{}{} t{t}", if *pre_vote { "PreVote" } else { "Vote" }, if *granted { "Granted" } else { "Refused" })
        }
        Body::SnapshotChunk { meta, offset, .. } => format!("Snapshot t{t} i{} @{offset}", meta.index.0),
        Body::SnapshotAck { index, .. } => format!("SnapshotAck t{t} i{}", index.0),
        Body::TimeoutNow => format!("TimeoutNow t{t}"),
        Body::ReadIndex { .. } => format!("ReadIndex t{t}"),
        Body::ReadIndexResponse { index, .. } => format!("ReadIndexOk t{t} {:?}", index.map(|i| i.0)),
    }
}

/// A node event, short (`None`: not worth a line).
pub fn describe_event(e: &NodeEvent) -> Option<String> {
    Some(match e {
        NodeEvent::Recovered { applied, last_index, term } => format!("recovered applied i{} last i{} t{}", applied.0, last_index.0, term.0),
        NodeEvent::LeaderChanged { term, leader } => match leader {
            Some(l) => format!("leader n{} t{}", l.0, term.0),
            None => format!("no leader t{}", term.0),
        },
        NodeEvent::Persisting { entries: 0, .. } => return None,
        NodeEvent::Persisting { entries, last } => format!("persist {entries} entries to i{}", last.0),
        NodeEvent::Applied { index } => format!("applied i{}", index.0),
        NodeEvent::Flushed { mark } => format!("flushed mark i{mark}"),
        NodeEvent::Compacted { index } => format!("log compacted to i{}", index.0),
        NodeEvent::SnapshotPinned { index, files, bytes } => format!("snapshot pinned at i{} ({files} files, {bytes} bytes)", index.0),
        NodeEvent::SnapshotInstalled { index } => format!("snapshot installed at i{}", index.0),
        NodeEvent::LogRebased { index } => format!("log rebased at i{} (store ahead)", index.0),
        NodeEvent::ConfChanged { index, membership } => format!("membership at i{}: {}", index.0, describe_membership(membership)),
        NodeEvent::Removed => "removed from the region: stops serving".to_string(),
        NodeEvent::Failed(err) => format!("FAILED {err}"),
    })
}

/// FNV-1a over every live `(key, value)` of the node's store (blocks read from `disk`).
pub fn data_digest(node: &Node, disk: &mut SimDisk) -> u64 {
    let store = node.store();
    let mut it = store.iter_unpinned(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, u64::MAX);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut fold = |b: &[u8]| {
        for &x in (b.len() as u32).to_le_bytes().iter().chain(b) {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    loop {
        match it.step() {
            IterStep::Item(k, v) => {
                fold(&k);
                fold(&v);
            }
            IterStep::NeedMemtable => store.refill_iter(&mut it),
            IterStep::NeedBlock { file, handle } => {
                let raw = match disk.execute(IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }) {
                    IoResult::Data(d) => d,
                    other => panic!("digest: reading {file}: {other:?}"),
                };
                it.supply(&Block::decode(file, handle, raw).expect("a readable block"));
            }
            IterStep::End => return h,
        }
    }
}
