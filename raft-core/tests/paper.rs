//! Conformance with the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
//! Consensus Algorithm", extended version); each test names the section it checks.

mod common;

use common::interact::Interaction;
use strata_raft::{
    Body, Bytes, ConfChange, ConfChangeError, ConfChangeStep, Config, DropReason, Entry, EntryKind,
    Index, Message, Node, NodeId, Output, PersistId, ProposalId, ProposalOutcome, Recovered, Role,
    Term,
};

fn cfg(id: u64, n: u64) -> Config {
    Config::new(NodeId(id), (1..=n).map(NodeId).collect())
}

fn node(id: u64, n: u64) -> Node {
    Node::new(cfg(id, n), Recovered::default()).expect("config")
}

fn drain(n: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| n.poll_output()).collect()
}

fn sent(outs: &[Output]) -> Vec<Message> {
    outs.iter()
        .filter_map(|o| {
            if let Output::Send(m) = o {
                Some(m.clone())
            } else {
                None
            }
        })
        .collect()
}

fn persist_all(n: &mut Node, outs: &[Output]) {
    for o in outs {
        if let Output::Persist(p) = o {
            n.handle_persisted(p.id).expect("known id");
        }
    }
}

fn msg(from: u64, to: u64, term: u64, body: Body) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(term),
        body,
    }
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        term: Term(term),
        index: Index(index),
        kind: EntryKind::Normal,
        data: Bytes::from_static(b"x"),
    }
}

fn with_log(id: u64, n: u64, term: u64, terms: &[u64]) -> Node {
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(t, i as u64 + 1))
        .collect();
    let hs = strata_raft::HardState {
        term: Term(term),
        vote: None,
        commit: Index(0),
    };
    Node::new(
        cfg(id, n),
        Recovered {
            hard_state: hs,
            entries,
            ..Default::default()
        },
    )
    .expect("config")
}

/// Runs a script through the interaction driver, failing on any error.
fn script(cmds: &[&str]) -> Interaction {
    let mut it = Interaction::new();
    for c in cmds {
        it.run(c).unwrap_or_else(|e| panic!("`{c}`: {e}"));
    }
    it
}

fn status(it: &Interaction, id: usize) -> &Node {
    it.peers[id - 1].node.as_ref().expect("alive")
}

/// §5.2: a follower that hears nothing for an election timeout starts an election: it
/// increments its term, votes for itself and requests votes (pre-vote off here).
#[test]
fn s5_2_follower_times_out_and_campaigns() {
    let mut c = cfg(1, 3);
    c.pre_vote = false;
    let mut n = Node::new(c, Recovered::default()).expect("config");
    for _ in 0..20 {
        n.tick();
    }
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.term(), Term(1));
    assert_eq!(n.vote(), Some(NodeId(1)));
    let outs = drain(&mut n);
    let votes: Vec<_> = sent(&outs)
        .into_iter()
        .filter(|m| {
            matches!(
                m.body,
                Body::RequestVote {
                    pre_vote: false,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(votes.len(), 2);
}

/// §5.2: election timeouts are randomized in [election_tick, 2·election_tick).
#[test]
fn s5_2_election_timeout_is_randomized() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut c = cfg(1, 3);
        c.seed = seed;
        let mut n = Node::new(c, Recovered::default()).expect("config");
        let mut ticks = 0;
        while n.role() == Role::Follower {
            n.tick();
            ticks += 1;
        }
        assert!((10..20).contains(&ticks), "timeout {ticks}");
        seen.insert(ticks);
    }
    assert!(seen.len() >= 8, "timeouts not spread: {seen:?}");
}

/// §5.2: each server votes for at most one candidate in a term, and the vote is sent only
/// once it is durable.
#[test]
fn s5_2_one_vote_per_term_sent_after_persist() {
    let mut n = node(1, 3);
    let req = |from| {
        msg(
            from,
            1,
            1,
            Body::RequestVote {
                pre_vote: false,
                last_index: Index(0),
                last_term: Term(0),
                transfer: false,
            },
        )
    };
    n.step(req(2)).expect("valid");
    let outs = drain(&mut n);
    assert!(sent(&outs).is_empty(), "vote sent before it is durable");
    persist_all(&mut n, &outs);
    let outs = drain(&mut n);
    assert!(matches!(
        sent(&outs)[..],
        [Message {
            body: Body::VoteResponse { granted: true, .. },
            ..
        }]
    ));
    n.step(req(3)).expect("valid");
    let outs = drain(&mut n);
    assert!(matches!(
        sent(&outs)[..],
        [Message {
            body: Body::VoteResponse { granted: false, .. },
            ..
        }]
    ));
    assert_eq!(n.vote(), Some(NodeId(2)));
}

/// §5.2: a candidate that receives votes from a majority becomes leader; with pre-vote the
/// term only rises once a majority says it could win.
#[test]
fn s5_2_majority_elects_a_leader() {
    let it = script(&["add-nodes 5", "campaign 1", "stabilize"]);
    assert_eq!(status(&it, 1).role(), Role::Leader);
    assert_eq!(status(&it, 1).term(), Term(1));
    for id in 2..=5 {
        assert_eq!(status(&it, id).leader(), Some(NodeId(1)));
    }
}

/// §5.1: a server that receives a message with a stale term rejects it and answers with
/// its own term, so a deposed leader steps down.
#[test]
fn s5_1_stale_leader_steps_down() {
    let mut old = node(1, 3);
    old.campaign();
    let outs = drain(&mut old);
    persist_all(&mut old, &outs);
    for from in [2, 3] {
        old.step(msg(
            from,
            1,
            1,
            Body::VoteResponse {
                pre_vote: true,
                granted: true,
            },
        ))
        .expect("valid");
    }
    let outs = drain(&mut old);
    persist_all(&mut old, &outs);
    old.step(msg(
        2,
        1,
        1,
        Body::VoteResponse {
            pre_vote: false,
            granted: true,
        },
    ))
    .expect("valid");
    assert!(old.is_leader());
    let mut newer = with_log(2, 3, 5, &[]);
    newer
        .step(msg(
            1,
            2,
            1,
            Body::Heartbeat {
                commit: Index(0),
                read_round: 0,
            },
        ))
        .expect("valid");
    let reply = sent(&drain(&mut newer));
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].term, Term(5));
    old.step(reply[0].clone()).expect("valid");
    assert_eq!(old.role(), Role::Follower);
    assert_eq!(old.term(), Term(5));
}

/// §5.3: a follower refuses an append whose previous entry does not match, and hints where
/// the logs may agree (fast backtracking).
#[test]
fn s5_3_consistency_check_rejects_with_hint() {
    let mut f = with_log(2, 3, 3, &[1, 1, 2, 2]);
    let app = Body::Append {
        prev_index: Index(4),
        prev_term: Term(3),
        entries: vec![entry(3, 5)].into(),
        commit: Index(0),
    };
    f.step(msg(1, 2, 3, app)).expect("valid");
    let r = sent(&drain(&mut f));
    match &r[0].body {
        Body::AppendResponse {
            reject: Some(h), ..
        } => {
            assert_eq!(h.rejected, Index(4));
            assert_eq!((h.hint_index, h.hint_term), (Index(4), Term(2)));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(f.last_index(), Index(4));
}

/// §5.3: conflicting entries (same index, different term) are deleted with all that follow,
/// and the leader's entries appended.
#[test]
fn s5_3_conflicting_suffix_is_replaced() {
    let mut f = with_log(2, 3, 3, &[1, 1, 2, 2]);
    let app = Body::Append {
        prev_index: Index(2),
        prev_term: Term(1),
        entries: vec![entry(3, 3)].into(),
        commit: Index(0),
    };
    f.step(msg(1, 2, 3, app)).expect("valid");
    assert_eq!(f.last_index(), Index(3));
    assert_eq!(f.term_at(Index(3)), Some(Term(3)));
}

/// §5.3/§5.4: the cluster-wide simulation of lost appends: the leader repairs a follower's
/// log by backtracking until it matches.
#[test]
fn s5_3_leader_repairs_lagging_follower() {
    let it = script(&[
        "add-nodes 3",
        "campaign 1",
        "stabilize",
        "partition 3 | 1 2",
        "propose 1 a",
        "propose 1 b",
        "stabilize",
        "heal",
        "tick 1",
        "stabilize",
        "tick 1",
        "stabilize",
        "tick 1",
        "stabilize",
    ]);
    assert_eq!(status(&it, 3).commit_index(), status(&it, 1).commit_index());
    assert_eq!(status(&it, 3).last_index(), Index(3));
}

/// §5.4.1: a voter denies its vote to a candidate whose log is less up to date.
#[test]
fn s5_4_1_vote_needs_up_to_date_log() {
    let mut v = with_log(2, 3, 2, &[1, 2]);
    let stale = Body::RequestVote {
        pre_vote: false,
        last_index: Index(5),
        last_term: Term(1),
        transfer: false,
    };
    v.step(msg(1, 2, 3, stale)).expect("valid");
    let outs = drain(&mut v);
    persist_all(&mut v, &outs);
    let mut r = sent(&outs);
    r.extend(sent(&drain(&mut v)));
    assert!(r
        .iter()
        .any(|m| matches!(m.body, Body::VoteResponse { granted: false, .. })));
    assert_eq!(v.vote(), None);
}

/// §5.4.2: a leader does not commit an entry from an earlier term by counting replicas; it
/// commits it only with an entry of its own term (Figure 8).
#[test]
fn s5_4_2_no_commit_of_old_term_by_counting() {
    let mut l = with_log(1, 3, 2, &[1, 2]);
    l.campaign();
    let outs = drain(&mut l);
    persist_all(&mut l, &outs);
    for from in [2, 3] {
        l.step(msg(
            from,
            1,
            3,
            Body::VoteResponse {
                pre_vote: true,
                granted: true,
            },
        ))
        .expect("valid");
    }
    let outs = drain(&mut l);
    persist_all(&mut l, &outs);
    l.step(msg(
        2,
        1,
        3,
        Body::VoteResponse {
            pre_vote: false,
            granted: true,
        },
    ))
    .expect("valid");
    assert!(l.is_leader());
    assert_eq!(l.term(), Term(3));
    let outs = drain(&mut l);
    persist_all(&mut l, &outs);
    // Follower 2 acknowledges index 2 (term 2), not the new no-op at 3.
    l.step(msg(
        2,
        1,
        3,
        Body::AppendResponse {
            index: Index(2),
            reject: None,
        },
    ))
    .expect("valid");
    assert_eq!(
        l.commit_index(),
        Index(0),
        "old-term entry committed by counting"
    );
    l.step(msg(
        2,
        1,
        3,
        Body::AppendResponse {
            index: Index(3),
            reject: None,
        },
    ))
    .expect("valid");
    assert_eq!(l.commit_index(), Index(3));
}

/// §5.4.3 / Leader Completeness, through the simulation's checker on a scripted failover.
#[test]
fn s5_4_new_leader_has_all_committed_entries() {
    let mut it = script(&[
        "add-nodes 3",
        "campaign 1",
        "stabilize",
        "propose 1 a",
        "stabilize",
        "crash 1",
    ]);
    let mut leader = None;
    for _ in 0..40 {
        for c in ["tick 2", "tick 3", "stabilize"] {
            it.run(c).expect("runs");
        }
        leader = (2..=3).find(|&id| status(&it, id).is_leader());
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a new leader");
    assert_eq!(status(&it, leader).term_at(Index(2)), Some(Term(1)));
    it.run("restart 1").expect("restart");
    assert!(it.checker.violations.is_empty());
}

/// Raft thesis §4.1: a server uses the latest configuration in its log, committed or not,
/// and falls back to the previous one when a new leader truncates that entry; joint
/// configurations are entered and left the same way.
#[test]
fn thesis_4_1_configuration_takes_effect_when_appended() {
    let mut n = node(2, 3);
    let voters = |n: &Node| n.conf_state().voters;
    let joint = ConfChange::Joint(vec![
        ConfChangeStep::AddLearner(NodeId(2)),
        ConfChangeStep::AddVoter(NodeId(4)),
    ]);
    let append = |term: u64, prev: (u64, u64), entries: Vec<Entry>| {
        msg(
            1,
            2,
            term,
            Body::Append {
                prev_index: Index(prev.0),
                prev_term: Term(prev.1),
                entries: entries.into(),
                commit: Index(0),
            },
        )
    };
    let enter = Entry::new_conf_change(Term(1), Index(1), &joint);
    n.step(append(1, (0, 0), vec![enter])).expect("append");
    let cs = n.conf_state();
    assert_eq!(
        cs.voters,
        vec![NodeId(1), NodeId(3), NodeId(4)],
        "joint entered on append"
    );
    assert_eq!(cs.voters_outgoing, vec![NodeId(1), NodeId(2), NodeId(3)]);
    let leave = Entry::new_conf_change(Term(1), Index(2), &ConfChange::LeaveJoint);
    n.step(append(1, (1, 1), vec![leave])).expect("append");
    assert!(!n.conf_state().is_joint(), "joint left on append");
    assert_eq!(n.conf_state().learners, vec![NodeId(2)]);
    // Not a voter of its latest configuration, but of the one it may roll back to: it may
    // still campaign (it could hold the entry the only voter lost).
    let outs = drain(&mut n);
    persist_all(&mut n, &outs);
    for _ in 0..40 {
        n.tick();
    }
    assert_ne!(
        n.role(),
        Role::Follower,
        "a node that may roll back campaigns"
    );
    // A leader of term 2 whose log differs from index 2 on: back to the joint configuration.
    n.step(append(2, (1, 1), vec![entry(2, 2)]))
        .expect("append");
    assert!(n.conf_state().is_joint(), "rolled back to joint");
    // ... and from index 1 on: back to the initial configuration.
    n.step(append(3, (0, 0), vec![entry(3, 1)]))
        .expect("append");
    assert_eq!(voters(&n), vec![NodeId(1), NodeId(2), NodeId(3)]);
    assert!(!n.conf_state().is_joint());
}

/// §6: only one configuration change may be pending; an invalid one is refused with a
/// reason; a leader removed from the configuration steps down.
#[test]
fn s6_membership_changes_are_validated() {
    let mut it = script(&["add-nodes 3", "campaign 1", "stabilize", "add-nodes 1"]);
    let l = it.peers[0].node.as_mut().expect("alive");
    l.propose_conf_change(
        ProposalId(10),
        ConfChange::Single(ConfChangeStep::AddVoter(NodeId(4))),
    );
    l.propose_conf_change(
        ProposalId(11),
        ConfChange::Single(ConfChangeStep::AddVoter(NodeId(5))),
    );
    l.propose_conf_change(ProposalId(12), ConfChange::LeaveJoint);
    let outs = drain(l);
    let rejected: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Proposal(id, ProposalOutcome::Dropped(DropReason::InvalidConfChange(e))) => {
                Some((id.0, *e))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (11, ConfChangeError::PendingChange),
            (12, ConfChangeError::PendingChange)
        ]
    );
    for o in outs {
        it.peers[0].handle(o, &mut it.checker, &mut it.net);
    }
    it.run("stabilize").expect("stabilize");
    assert_eq!(status(&it, 1).conf_state().voters.len(), 4);
    it.run("propose-conf-change 1 remove=1").expect("propose");
    it.run("stabilize").expect("stabilize");
    // It handed off: a new leader leads the remaining voters (and, no longer in their
    // configuration, it hears nothing more: check-quorum makes it step down).
    let leaders: Vec<usize> = (2..=4)
        .filter(|&k| status(&it, k).role() == Role::Leader)
        .collect();
    assert_eq!(leaders.len(), 1, "one of the remaining voters leads");
    for _ in 0..2 {
        it.run("tick 1 10").expect("tick");
    }
    assert_eq!(status(&it, 1).role(), Role::Follower);
}

/// §6: in the joint configuration, agreement needs majorities of both the old and the new
/// configuration.
#[test]
fn s6_joint_consensus_needs_both_majorities() {
    let mut it = script(&["add-nodes 3", "campaign 1", "stabilize", "add-nodes 2"]);
    it.run("propose-conf-change 1 add-voter=4,add-voter=5,remove=2,remove=3 joint")
        .expect("propose");
    // Cut the old majority off: {1} alone cannot commit in C_old = {1,2,3}.
    it.run("partition 1 4 5 | 2 3").expect("partition");
    it.run("stabilize").expect("stabilize");
    let l = status(&it, 1);
    assert_eq!(
        l.commit_index(),
        Index(1),
        "joint entry committed without the old majority"
    );
    it.run("heal").expect("heal");
    for _ in 0..4 {
        it.run("tick 1").expect("tick");
        it.run("stabilize").expect("stabilize");
    }
    let cs = status(&it, 1).conf_state();
    assert_eq!(cs.voters, vec![NodeId(1), NodeId(4), NodeId(5)]);
    assert!(
        cs.voters_outgoing.is_empty(),
        "joint configuration not left"
    );
}

/// §7: after compaction a lagging follower receives the snapshot (in chunks) and catches up.
#[test]
fn s7_snapshot_brings_follower_up_to_date() {
    let mut it = script(&["add-nodes 3", "campaign 1", "stabilize", "crash 3"]);
    for v in ["aaaaaaaa", "bbbbbbbb", "cccccccc"] {
        it.run(&format!("propose 1 {v}")).expect("propose");
        it.run("stabilize").expect("stabilize");
    }
    it.run("tick 1").expect("tick");
    it.run("stabilize").expect("stabilize");
    it.run("compact 1").expect("compact");
    assert_eq!(status(&it, 1).first_index(), Index(5));
    it.run("restart 3").expect("restart");
    for _ in 0..4 {
        it.run("tick 1").expect("tick");
        it.run("stabilize").expect("stabilize");
    }
    assert_eq!(
        status(&it, 3).applied_index(),
        status(&it, 1).applied_index()
    );
    assert_eq!(it.peers[2].sm.values, it.peers[0].sm.values);
}

/// Proposals never vanish: refused ones come back with a typed reason.
#[test]
fn proposals_resolve_with_reasons() {
    let mut f = node(2, 3);
    f.propose(ProposalId(1), b"x".to_vec());
    assert!(matches!(
        drain(&mut f)[..],
        [Output::Proposal(
            ProposalId(1),
            ProposalOutcome::Dropped(DropReason::NotLeader { leader: None })
        )]
    ));
    let mut it = script(&["add-nodes 3", "campaign 1", "stabilize"]);
    let l = it.peers[0].node.as_mut().expect("alive");
    l.transfer_leader(NodeId(2)).expect("transfer");
    l.propose(ProposalId(2), b"y".to_vec());
    let outs = drain(l);
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Proposal(
            ProposalId(2),
            ProposalOutcome::Dropped(DropReason::TransferInProgress)
        )
    )));
}

/// Bytes from a peer are never trusted: garbage decodes to an error; completions for unknown
/// ids are refused.
#[test]
fn untrusted_input_is_refused() {
    let mut n = node(1, 3);
    assert!(n.step_bytes(&[0xff, 0x00, 0x13]).is_err());
    assert!(n.step_bytes(&[]).is_err());
    assert!(n.handle_persisted(PersistId(7)).is_err());
    let forged = msg(1, 1, 1, Body::TimeoutNow);
    assert!(n.step(forged).is_err());
}
