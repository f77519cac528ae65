//! Fuzzes the Raft node's whole input path: a three-node cluster driven by an arbitrary
//! sequence of operations — ticks, proposals, reads, transfers, conf changes, compaction,
//! persist completions, deliveries of real messages, and arbitrary bytes decoded as
//! messages. No input may panic a node, and every node's invariants must hold after every
//! operation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_raft::{
    Bytes, ConfChange, ConfChangeStep, Config, Index, Message, Node, NodeId, Output, PersistId,
    ProposalId, Recovered,
};

struct Peer {
    node: Node,
    /// Highest persist id handed out.
    last_persist: u64,
    /// Highest persist id completed.
    done_persist: u64,
}

fuzz_target!(|data: &[u8]| {
    let ids = vec![NodeId(1), NodeId(2), NodeId(3)];
    let mut peers: Vec<Peer> = ids
        .iter()
        .map(|&id| {
            let mut cfg = Config::new(id, ids.clone());
            cfg.snapshot_chunk_bytes = 8;
            cfg.max_msg_bytes = 16;
            Peer { node: Node::new(cfg, Recovered::default()).unwrap(), last_persist: 0, done_persist: 0 }
        })
        .collect();
    let mut net: Vec<Message> = Vec::new();
    let mut i = 0;
    let mut next_id = 0u64;
    while i + 1 < data.len() {
        let (op, arg) = (data[i], data[i + 1]);
        i += 2;
        let k = (arg % 3) as usize;
        let peer = &mut peers[k];
        match op % 10 {
            0 => peer.node.tick(),
            1 => {
                // Arbitrary bytes as a message: length-prefixed by `arg`.
                let len = (arg as usize).min(data.len() - i);
                let bytes = &data[i..i + len];
                i += len;
                if let Ok(mut m) = Message::decode(bytes) {
                    m.to = peer.node.id();
                    let _ = peer.node.step(m);
                } else {
                    let _ = peer.node.step_bytes(bytes);
                }
            }
            2 => {
                next_id += 1;
                peer.node.propose(ProposalId(next_id), Bytes::from(vec![arg; (arg % 7) as usize]));
            }
            3 => {
                let _ = peer.node.read_index();
            }
            4 => {
                if peer.done_persist < peer.last_persist {
                    peer.done_persist += 1 + (arg as u64 / 3) % (peer.last_persist - peer.done_persist);
                    peer.node.handle_persisted(PersistId(peer.done_persist)).unwrap();
                }
            }
            5 => {
                let _ = peer.node.transfer_leader(NodeId(1 + (arg as u64 / 3) % 4));
            }
            6 => {
                let idx = peer.node.applied_index();
                let _ = peer.node.compact(Index(idx.0.saturating_sub(arg as u64 / 16)));
            }
            7 => {
                let target = NodeId(1 + (arg as u64 / 3) % 5);
                let cc = match arg / 64 {
                    0 => ConfChange::Single(ConfChangeStep::AddVoter(target)),
                    1 => ConfChange::Single(ConfChangeStep::RemoveNode(target)),
                    2 => ConfChange::Joint(vec![ConfChangeStep::AddLearner(target)]),
                    _ => ConfChange::LeaveJoint,
                };
                next_id += 1;
                peer.node.propose_conf_change(ProposalId(next_id), cc);
            }
            _ => {
                // Deliver (or drop, for odd args) up to `arg % 8 + 1` queued messages.
                for _ in 0..(arg % 8 + 1) {
                    if net.is_empty() {
                        break;
                    }
                    let m = net.remove((arg as usize) % net.len());
                    if arg % 2 == 0 {
                        if let Some(p) = peers.iter_mut().find(|p| p.node.id() == m.to) {
                            let _ = p.node.step(m);
                        }
                    }
                }
            }
        }
        for p in &mut peers {
            while let Some(out) = p.node.poll_output() {
                match out {
                    Output::Send(m) => {
                        // Every message the node sends must survive the wire format.
                        let bytes = m.encode();
                        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&m));
                        if net.len() < 512 {
                            net.push(m);
                        }
                    }
                    Output::Persist(w) => p.last_persist = w.id.0,
                    Output::ReadSnapshotChunk { to, meta, offset, .. } => {
                        let _ = p.node.handle_snapshot_chunk(to, meta.index, offset, Bytes::from_static(b"snap"), true);
                    }
                    _ => {}
                }
            }
            p.node.check_invariants();
        }
    }
});
