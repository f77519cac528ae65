//! Membership change under load: clients keep writing and reading while the operator adds a
//! node (a new machine with empty disks, which catches up by log or, with a short log, by
//! snapshot, and is promoted once caught up), transfers leadership and removes a voter (the
//! leader too, when the seed picks it), under mixed faults. Every history must be
//! linearizable (no acknowledged write lost: the final reads see them), every admin request
//! must end done, and the replicas in service must be identical after healing.
use strata_engine::node::wire::AdminOp;
use strata_sim::cluster::admin::ScenarioAction;
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};
use strata_sim::lincheck::Outcome;

/// Runs one seed; returns the cluster for more checks.
fn run(seed: u64, nodes: u64, ops: u64, faults: bool) -> Cluster {
    let mut cfg = ClusterConfig::new(seed, nodes, 4, ops);
    if !faults {
        cfg.faults = Faults::none();
    }
    if seed % 2 == 1 {
        // A short log: the new node (and nodes back from a crash) catch up by snapshot.
        cfg.log_keep_entries = 20;
    }
    let mut c = Cluster::new(cfg);
    // After the first flushes (every 300 ms), so that with a short log the new node needs a
    // snapshot.
    c.schedule_action(700, ScenarioAction::AddNode);
    c.schedule_action(1_000, ScenarioAction::Transfer(None));
    c.schedule_action(1_300, ScenarioAction::Remove(None));
    c.run_workload(600_000, 2_000);
    let deadline = c.now + 120_000;
    while !c.operator.is_idle() {
        assert!(c.now < deadline, "seed {seed}: admin requests not done: {:?}", c.operator.tasks);
        c.step();
    }
    let end = c.now + 2_000;
    while c.now < end {
        c.step();
    }
    c.read_every_key();
    c.check_linearizable();
    c.check_replicas_identical();
    check_membership(&c, seed, nodes);
    c
}

/// Every admin request ended done; the new node is a voter, the removed one is gone, and
/// every node in service applied the same membership.
fn check_membership(c: &Cluster, seed: u64, nodes: u64) {
    let mut removed = None;
    for t in &c.operator.tasks {
        match &t.result {
            Some((_, Ok(_))) => {}
            other => panic!("seed {seed}: {:?} ended {other:?}", t.op),
        }
        if let AdminOp::RemoveReplica { node } = t.op {
            removed = Some(node);
        }
    }
    let removed = removed.expect("a removal ran");
    let added = nodes + 1;
    let confs: Vec<_> = c
        .machines
        .iter()
        .filter(|m| !m.decommissioned)
        .map(|m| m.node.as_ref().expect("in service nodes are up").membership().clone())
        .collect();
    assert!(confs.windows(2).all(|w| w[0] == w[1]), "seed {seed}: memberships differ: {confs:?}");
    let voters: Vec<u64> = confs[0].conf.voters.iter().map(|v| v.0).collect();
    assert_eq!(voters.len() as u64, nodes, "seed {seed}: voters {voters:?}, tasks {:?}", c.operator.tasks);
    assert!(!voters.contains(&removed), "seed {seed}: n{removed} still votes");
    assert!(removed == added || voters.contains(&added), "seed {seed}: n{added} is not a voter: {voters:?}");
    assert!(c.machines[(removed - 1) as usize].decommissioned);
}

#[test]
fn add_transfer_remove_without_faults() {
    for seed in 0..4 {
        let c = run(seed, 3, 80, false);
        // The added node caught up (unless it was the one removed again): it applied the
        // others' entries and holds the same data (checked above).
        let n4 = &c.machines[3];
        assert!(n4.decommissioned || n4.node.as_ref().is_some_and(|n| n.applied().0 > 20), "seed {seed}");
    }
}

/// Mixed faults (crashes losing unsynced data, partitions, one-way cuts, drops, duplicates,
/// reordering), 3 and 5 nodes alternately, 4 clients × 80 operations, odd seeds with a short
/// log (catch-up by snapshot). CI: seeds `0..200` (about 20 s); `MEMBERSHIP_SEEDS=a..b` for more.
#[test]
fn membership_change_under_load_mixed_faults() {
    let range = std::env::var("MEMBERSHIP_SEEDS").ok();
    let (lo, hi) = match range.as_deref().and_then(|r| r.split_once("..")) {
        Some((a, b)) => (a.parse().expect("seed"), b.parse().expect("seed")),
        None => (0u64, 200u64),
    };
    let started = std::time::Instant::now();
    let (mut ops, mut snapshots, mut crashes, mut during, mut changes) = (0, 0, 0, 0, 0);
    for seed in lo..hi {
        let nodes = if seed % 2 == 0 { 3 } else { 5 };
        let c = run(seed, nodes, 80, true);
        ops += c.history.len();
        snapshots += c.stats.snapshots_installed;
        crashes += c.stats.crashes;
        // Changes answered while the clients still ran (the rest finished after healing).
        let load_end = c.history.iter().filter(|o| o.client != 0).filter_map(|o| match o.outcome {
                Outcome::Returned { at, .. } => Some(at),
                Outcome::Unknown => None,
            }).max().unwrap_or(0);
        changes += c.operator.tasks.len();
        during += c.operator.tasks.iter().filter(|t| t.result.as_ref().is_some_and(|(at, _)| *at <= load_end)).count();
    }
    eprintln!(
        "{} seeds, {ops} client ops, {crashes} crashes, {snapshots} snapshots installed, {during} of {changes} admin requests done while clients ran, in {:?}",
        hi - lo,
        started.elapsed()
    );
}

#[test]
fn same_seed_same_trace() {
    let trace = |seed| {
        let mut cfg = ClusterConfig::new(seed, 3, 2, 20);
        cfg.record_trace = true;
        cfg.log_keep_entries = 20;
        let mut c = Cluster::new(cfg);
        c.schedule_action(100, ScenarioAction::AddNode);
        c.schedule_action(300, ScenarioAction::Transfer(None));
        c.schedule_action(400, ScenarioAction::Remove(None));
        c.run_workload(600_000, 3_000);
        c.trace.join("\n")
    };
    let a = trace(7);
    assert!(a.contains("admin add n4 done"), "{a}");
    assert_eq!(a, trace(7));
}
