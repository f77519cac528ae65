use super::*;

fn sim(seed: u64, nodes: u64) -> Sim {
    Sim::new(DemoConfig { seed, nodes, ..DemoConfig::default() }).expect("a valid config")
}

fn wait(s: &mut Sim, id: u64) -> UserOp {
    for _ in 0..1_000 {
        if s.op(id).is_some_and(|o| o.done) {
            break;
        }
        s.run_for(10).unwrap();
    }
    s.op(id).cloned().expect("an op")
}

fn act(s: &mut Sim, a: Action) -> Option<u64> {
    s.apply(a).expect("a valid action")
}

#[test]
fn elects_and_fails_over() {
    let mut s = sim(7, 5);
    let l = s.run_until_leader(5_000).expect("a leader");
    act(&mut s, Action::Crash { node: l, lose_unsynced: true });
    s.run_for(50).unwrap();
    let l2 = s.run_until_leader(5_000).expect("a new leader");
    assert_ne!(l, l2);
    let st = s.state(8);
    assert_eq!(st["nodes"][(l - 1) as usize]["up"], false);
    assert_eq!(st["nodes"][(l2 - 1) as usize]["role"], "Leader");
    // The trace tells the story: votes were sent and the crash is there.
    let events = s.events_since(0, usize::MAX);
    assert!(events.iter().any(|e| e.text.contains("Vote")));
    assert!(events.iter().any(|e| matches!(e.kind, strata_sim::cluster::events::EventKind::Crash { .. })));
}

#[test]
fn put_then_get_shows_the_serving_node() {
    let mut s = sim(3, 3);
    let l = s.run_until_leader(5_000).expect("a leader");
    let put = act(&mut s, Action::Put { key: "x".into(), value: "1".into(), node: None }).unwrap();
    let p = wait(&mut s, put);
    assert_eq!(p.outcome, "ok", "{p:?}");
    assert_eq!(p.served_by, Some(l));
    let follower = (1..=3).find(|&n| n != l).unwrap();
    let get = act(&mut s, Action::Get { key: "x".into(), node: Some(follower), unsafe_read: false }).unwrap();
    let g = wait(&mut s, get);
    assert_eq!(g.served_by, Some(follower));
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["result"]["value"], "1", "{json}");
    // A write sent to a follower is refused with the leader's hint.
    let w = act(&mut s, Action::Put { key: "y".into(), value: "2".into(), node: Some(follower) }).unwrap();
    let w = wait(&mut s, w);
    assert_eq!(w.outcome, "failed");
    assert_eq!(serde_json::to_value(&w).unwrap()["result"]["code"], "NotLeader");
    // Under the log: the versions of x.
    s.run_for(100).unwrap();
    let v = s.key_versions("x");
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|k| k.versions.len() == 1 && k.versions[0].value.as_deref() == Some("1")), "{v:?}");
    assert_eq!(s.check().verdict, "linearizable");
}

#[test]
fn partition_and_heal() {
    let mut s = sim(11, 5);
    let l = s.run_until_leader(5_000).expect("a leader");
    let others: Vec<u64> = (1..=5).filter(|&n| n != l).collect();
    act(&mut s, Action::Partition { groups: vec![vec![l], others.clone()] });
    s.run_for(1_000).unwrap();
    let st = s.state(4);
    let leaders: Vec<u64> = others.iter().copied().filter(|&n| st["nodes"][(n - 1) as usize]["role"] == "Leader").collect();
    assert_eq!(leaders.len(), 1, "the majority elects a leader: {st}");
    assert!(!st["net"]["cuts"].as_array().unwrap().is_empty());
    act(&mut s, Action::Heal);
    s.run_for(1_000).unwrap();
    let st = s.state(4);
    let leaders = (0..5).filter(|&k| st["nodes"][k]["role"] == "Leader").count();
    assert_eq!(leaders, 1, "{st}");
    assert_eq!(st["nodes"][(l - 1) as usize]["role"], "Follower");
}

fn scripted(s: &mut Sim) {
    s.run_until_leader(5_000);
    act(s, Action::Put { key: "a".into(), value: "1".into(), node: None });
    for _ in 0..7 {
        s.step();
    }
    act(s, Action::Cut { from: 1, to: 2 });
    act(s, Action::SetLink { min_latency: Some(1), max_latency: Some(9), drop_rate: Some(0.1), duplicate_rate: None, reorder_rate: None });
    s.run_for(300).unwrap();
    act(s, Action::Crash { node: 2, lose_unsynced: true });
    act(s, Action::Get { key: "a".into(), node: None, unsafe_read: false });
    s.step();
    act(s, Action::Restart { node: 2 });
    s.run_for(500).unwrap();
    act(s, Action::Cas { key: "a".into(), expected: Some("1".into()), value: "2".into(), node: None });
    s.run_for(777).unwrap();
}

#[test]
fn scenarios_replay_to_the_same_digest() {
    let mut s = sim(5, 3);
    scripted(&mut s);
    let sc = s.scenario();
    let text = serde_json::to_string(&sc).unwrap();
    let back: Scenario = serde_json::from_str(&text).unwrap();
    assert_eq!(back, sc);
    let r = Sim::from_scenario(&back, None).unwrap();
    assert_eq!(r.trace_digest(), s.trace_digest());
    assert_eq!(r.c.events_log.count(), s.c.events_log.count());
    assert_eq!(r.c.now, s.c.now);
    // The same steps without recording give the same run too.
    let mut again = sim(5, 3);
    scripted(&mut again);
    assert_eq!(again.trace_digest(), s.trace_digest());
    // Rewinding: a replay up to a time is a prefix of the run.
    let half = Sim::from_scenario(&back, Some(600)).unwrap();
    assert!(half.c.now <= 600);
    let n = half.c.events_log.count();
    let a: Vec<_> = half.events_since(0, usize::MAX).into_iter().map(|e| e.text.clone()).collect();
    let b: Vec<_> = s.events_since(0, n as usize).into_iter().map(|e| e.text.clone()).collect();
    assert_eq!(a, b);
}

/// A follower cut off from the others still answers clients from its own state when the
/// unsafe toggle is on: the checker catches the stale read. The safe read at the same node
/// is never answered with stale data.
#[test]
fn unsafe_reads_are_caught_and_safe_reads_are_not_stale() {
    for unsafe_read in [false, true] {
        let mut s = sim(9, 3);
        let l = s.run_until_leader(5_000).expect("a leader");
        let f = (1..=3).find(|&n| n != l).unwrap();
        let rest: Vec<u64> = (1..=3).filter(|&n| n != f).collect();
        act(&mut s, Action::Partition { groups: vec![vec![f], rest] });
        let put = act(&mut s, Action::Put { key: "x".into(), value: "new".into(), node: Some(l) }).unwrap();
        assert_eq!(wait(&mut s, put).outcome, "ok");
        let get = act(&mut s, Action::Get { key: "x".into(), node: Some(f), unsafe_read }).unwrap();
        let g = wait(&mut s, get);
        let report = s.check();
        if unsafe_read {
            assert_eq!(g.outcome, "ok", "{g:?}");
            assert_eq!(report.verdict, "violation", "{report:?}");
            let v = report.violation.unwrap();
            assert_eq!(v.key, "x");
            assert!(v.ops.contains(&get), "{v:?}");
        } else {
            assert_ne!(g.outcome, "ok", "a cut-off follower cannot confirm a linearizable read: {g:?}");
            assert_eq!(report.verdict, "linearizable", "{report:?}");
        }
    }
}

#[test]
fn bad_input_is_refused() {
    assert!(Sim::new(DemoConfig { nodes: 9, ..DemoConfig::default() }).is_err());
    assert!(Sim::new(DemoConfig { drop_rate: 2.0, ..DemoConfig::default() }).is_err());
    let mut s = sim(1, 3);
    assert!(s.apply(Action::Crash { node: 0, lose_unsynced: true }).is_err());
    assert!(s.apply(Action::Put { key: String::new(), value: "v".into(), node: None }).is_err());
    assert!(s.apply(Action::Cut { from: 2, to: 2 }).is_err());
    assert!(s.apply(Action::Partition { groups: vec![vec![1, 2], vec![2, 3]] }).is_err());
    assert!(s.scenario().actions.is_empty(), "refused actions are not recorded");
    let bad: Result<Scenario, _> = serde_json::from_str(r#"{"version":1,"config":{"nodez":3},"actions":[],"end":{"step":0,"at":0}}"#);
    assert!(bad.is_err());
}


#[test]
fn the_workload_is_checked_too() {
    let cfg = DemoConfig { seed: 9, workload: Some(super::super::config::Workload::default()), ..DemoConfig::default() };
    let mut s = Sim::new(cfg).unwrap();
    s.run_for(8_000).unwrap();
    let r = s.check();
    assert!(r.ops > 50, "{r:?} history {}", s.c.history.len());
    assert_eq!(r.verdict, "linearizable");
    assert!(s.apply(Action::Put { key: "k001".into(), value: "x".into(), node: None }).is_err());
}

#[test]
fn a_failing_disk_stops_its_node_which_restarts_and_catches_up_once_healthy() {
    let mut s = sim(5, 3);
    let l = s.run_until_leader(5_000).expect("a leader");
    let f = (1..=3).find(|&n| n != l).unwrap();
    act(&mut s, Action::SetDisk { node: f, store_ms: Some(20), log_ms: None, error_rate: Some(1.0) });
    let st = s.state(0);
    assert_eq!(st["nodes"][(f - 1) as usize]["disk"]["store_ms"], 20);
    assert_eq!(st["nodes"][(f - 1) as usize]["disk"]["error_rate"], 1.0);
    // Every write on f's disks fails: it stops at its next write, and the other two go on.
    for i in 0..5 {
        let p = act(&mut s, Action::Put { key: format!("k{i}x"), value: "v".into(), node: None }).unwrap();
        assert_eq!(wait(&mut s, p).outcome, "ok");
    }
    s.run_for(300).unwrap();
    let failures = s.state(0)["nodes"][(f - 1) as usize]["disk"]["failures"].as_u64().unwrap();
    assert!(failures >= 1, "the node stopped on its failing disk");
    assert!(s.events_since(0, usize::MAX).iter().any(|e| e.text.contains(&format!("n{f} disks: store +20 ms"))));
    // Healthy again (latency kept unless set): it restarts and catches up with the leader.
    act(&mut s, Action::SetDisk { node: f, store_ms: None, log_ms: None, error_rate: Some(0.0) });
    s.run_for(3_000).unwrap();
    let st = s.state(0);
    let (nf, nl) = (&st["nodes"][(f - 1) as usize], &st["nodes"][(l - 1) as usize]);
    assert_eq!(nf["disk"]["store_ms"], 20);
    assert_eq!(nf["up"], true);
    assert_eq!(nf["applied"], nl["applied"], "{nf}\n{nl}");
    // The run replays exactly from its scenario, disk actions included.
    let again = Sim::from_scenario(&s.scenario(), None).expect("replay");
    assert_eq!(again.trace_digest(), s.trace_digest());
    // Bad disk settings are refused.
    assert!(s.apply(Action::SetDisk { node: 9, store_ms: None, log_ms: None, error_rate: None }).is_err());
    assert!(s.apply(Action::SetDisk { node: f, store_ms: None, log_ms: None, error_rate: Some(1.5) }).is_err());
    assert!(s.apply(Action::SetDisk { node: f, store_ms: Some(MAX_DISK_MS + 1), log_ms: None, error_rate: None }).is_err());
}

/// Node `id`'s place in the region, as the state shows it.
fn member(s: &Sim, id: u64) -> String {
    s.state(0)["nodes"][(id - 1) as usize]["member"].as_str().expect("a member kind").to_string()
}

/// Runs 10 ms at a time until `done` holds (at most `max_ms`); false if it never did.
fn run_until(s: &mut Sim, max_ms: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
    for _ in 0..max_ms / 10 {
        if done(s) {
            return true;
        }
        s.run_for(10).unwrap();
    }
    done(s)
}

#[test]
fn add_transfer_remove_and_replay_exactly() {
    let mut s = sim(5, 3);
    let first = s.run_until_leader(5_000).expect("a leader");
    let put = act(&mut s, Action::Put { key: "x".into(), value: "1".into(), node: None }).unwrap();
    assert_eq!(wait(&mut s, put).outcome, "ok");

    // A new machine joins as a learner, then is promoted to voter once caught up.
    assert_eq!(act(&mut s, Action::AddNode), Some(4));
    assert_eq!(member(&s, 4), "outside");
    let mut saw_learner = false;
    assert!(run_until(&mut s, 10_000, |s| {
        saw_learner |= member(s, 4) == "learner";
        member(s, 4) == "voter"
    }));
    assert!(saw_learner, "n4 was a learner before it voted");
    assert_eq!(s.state(0)["membership"]["voters"], serde_json::json!([1, 2, 3, 4]));
    // It holds the data written before it joined.
    assert!(run_until(&mut s, 2_000, |s| s.key_versions("x").iter().any(|v| v.node == 4 && v.versions.len() == 1)));

    // Leadership moves to the new node.
    act(&mut s, Action::TransferLeader { to: 4 });
    assert!(run_until(&mut s, 5_000, |s| s.state(0)["leader"] == 4), "n4 leads");

    // The first leader is removed: its machine stops for good.
    act(&mut s, Action::RemoveNode { node: first });
    assert!(run_until(&mut s, 10_000, |s| s.state(0)["nodes"][(first - 1) as usize]["decommissioned"] == true));
    assert_eq!(member(&s, first), "removed");
    assert_eq!(s.state(0)["nodes"][(first - 1) as usize]["up"], false);
    let voters = s.state(0)["membership"]["voters"].clone();
    assert_eq!(voters.as_array().unwrap().len(), 3, "{voters}");
    assert!(!voters.as_array().unwrap().contains(&first.into()));
    // Writes go on, served by the new leader.
    let put = act(&mut s, Action::Put { key: "y".into(), value: "2".into(), node: None }).unwrap();
    let p = wait(&mut s, put);
    assert_eq!(p.outcome, "ok", "{p:?}");
    assert_eq!(p.served_by, Some(4), "{p:?}");
    let admin = s.state(0)["admin"].clone();
    let ops: Vec<String> = admin.as_array().unwrap().iter().map(|a| a["op"].as_str().unwrap().to_string()).collect();
    assert_eq!(ops, ["add n4".to_string(), "transfer to n4".into(), format!("remove n{first}")]);
    assert!(admin.as_array().unwrap().iter().all(|a| a["done_at"].is_u64() && a["error"].is_null()), "{admin}");
    assert_eq!(s.check().verdict, "linearizable");

    // Refused before anything happens (and not recorded).
    let recorded = s.scenario().actions.len();
    assert!(s.apply(Action::RemoveNode { node: first }).unwrap_err().contains("removed"));
    assert!(s.apply(Action::Restart { node: first }).unwrap_err().contains("removed"));
    assert!(s.apply(Action::TransferLeader { to: first }).is_err());
    assert!(s.apply(Action::TransferLeader { to: 9 }).unwrap_err().contains("no node 9"));
    assert_eq!(s.scenario().actions.len(), recorded);

    // The scenario replays to the same trace, and the golden export tells the story.
    let again = Sim::from_scenario(&s.scenario(), None).unwrap();
    assert_eq!(again.trace_digest(), s.trace_digest());
    assert_eq!(again.state(0)["membership"], s.state(0)["membership"]);
    let golden = s.golden().unwrap();
    for line in [r#"do {"do":"add_node"}"#, "admin add n4 done", r#"do {"do":"transfer_leader","to":4}"#, "decommissioned"] {
        assert!(golden.contains(line), "{line} missing from\n{golden}");
    }
}

#[test]
fn at_most_nine_machines_and_a_learner_is_not_a_leader() {
    let mut s = sim(8, 7);
    s.run_until_leader(5_000).expect("a leader");
    assert_eq!(act(&mut s, Action::AddNode), Some(8));
    // n8 is outside the region until the operator adds it: it cannot lead yet.
    assert!(s.apply(Action::TransferLeader { to: 8 }).unwrap_err().contains("only a voter"));
    assert_eq!(act(&mut s, Action::AddNode), Some(9));
    assert!(s.apply(Action::AddNode).unwrap_err().contains("at most 9"));
    assert!(run_until(&mut s, 20_000, |s| member(s, 8) == "voter" && member(s, 9) == "voter"));
}
