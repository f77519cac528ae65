//! `Node::offer_snapshot`: a follower that needs a snapshot is sent the offered one (newer
//! than the compaction), installs it, and replication resumes after it.
use strata_raft::{Config, Index, Message, Node, NodeId, Output, ProposalId, Recovered};

/// Delivers messages among `nodes` (those in `up`) until quiet; persists complete at once;
/// snapshot chunk requests are answered with one empty last chunk. Returns the snapshot
/// indexes the leader was asked to read.
fn run(nodes: &mut [Node], up: &[bool]) -> Vec<Index> {
    let mut asked = Vec::new();
    loop {
        let mut inbox: Vec<Message> = Vec::new();
        for node in nodes.iter_mut() {
            while let Some(out) = node.poll_output() {
                match out {
                    Output::Send(m) => inbox.push(m),
                    Output::Persist(p) => node.handle_persisted(p.id).expect("persist"),
                    Output::ReadSnapshotChunk { to, meta, offset, .. } => {
                        asked.push(meta.index);
                        node.handle_snapshot_chunk(to, meta.index, offset, Default::default(), true).expect("chunk");
                    }
                    _ => {}
                }
            }
        }
        if inbox.is_empty() {
            return asked;
        }
        for m in inbox {
            let (from, to) = ((m.from.0 - 1) as usize, (m.to.0 - 1) as usize);
            if up[from] && up[to] {
                let _ = nodes[to].step(m);
            }
        }
    }
}

#[test]
fn follower_gets_the_offered_snapshot() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes: Vec<Node> = ids.iter().map(|&id| Node::new(Config::new(id, ids.to_vec()), Recovered::default()).expect("node")).collect();
    let mut up = [true, true, true];
    while !nodes[0].is_leader() {
        nodes[0].tick();
        run(&mut nodes, &up);
    }
    up[2] = false;
    for i in 0..10 {
        nodes[0].propose(ProposalId(i), vec![i as u8]);
        run(&mut nodes, &up);
    }
    nodes[0].tick();
    run(&mut nodes, &up);
    let applied = nodes[0].applied_index();
    assert!(applied >= Index(10));
    nodes[0].compact(Index(4)).expect("compact");
    assert!(nodes[0].offer_snapshot(Index(3)).is_err(), "below the compaction");
    assert!(nodes[0].offer_snapshot(Index(applied.0 + 1)).is_err(), "above applied");
    nodes[0].offer_snapshot(Index(8)).expect("offer");
    assert_eq!(nodes[0].snapshot_to_send().index, Index(8));
    up[2] = true;
    let mut asked = Vec::new();
    for _ in 0..5 {
        nodes[0].tick();
        asked.extend(run(&mut nodes, &up));
    }
    assert_eq!(asked.first(), Some(&Index(8)), "the offered snapshot is sent");
    assert_eq!(nodes[2].snapshot_meta().index, Index(8));
    assert_eq!(nodes[2].last_index(), nodes[0].last_index(), "replication resumed after it");
    // A compaction past the offer wins.
    nodes[0].compact(Index(9)).expect("compact");
    assert_eq!(nodes[0].snapshot_to_send().index, Index(9));
}
