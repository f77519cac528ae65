//! Cluster simulation: replicated nodes under faults, client histories checked for
//! linearizability, replicas compared after healing.
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};

fn run(cfg: ClusterConfig) -> Cluster {
    let mut c = Cluster::new(cfg);
    c.run_workload(600_000, 3_000);
    c.read_every_key();
    c.check_linearizable();
    c.check_replicas_identical();
    c
}

#[test]
fn three_nodes_no_faults() {
    let mut cfg = ClusterConfig::new(1, 3, 4, 50);
    cfg.faults = Faults::none();
    cfg.link = strata_sim::net::LinkFaults::reliable(2);
    let c = run(cfg);
    assert_eq!(c.history.len(), 200 + 8);
    assert!(c.stats.answered >= 200);
}

#[test]
#[ignore]
fn show_trace() {
    let mut cfg = ClusterConfig::new(1, 3, 2, 5);
    cfg.faults = Faults::none();
    cfg.record_trace = true;
    let c = run(cfg);
    for l in &c.trace {
        println!("{l}");
    }
    for op in &c.history {
        println!("{op:?}");
    }
}

/// Runs that once failed, kept as regressions: (seed, nodes, operations per client, disk
/// faults).
const REGRESSIONS: &[(u64, u64, u64, bool)] = &[
    // An entry committed while the previous one waited for an SST block was taken for a gap
    // in the log (apply's consecutive-index check ignored the running entry).
    (0, 3, 40, false),
    // With disk errors (found with 150 ms slow disks and error rate 0.1): a log sync failed, the node restarted (process only) and accepted the
    // written-but-unsynced tail of its newest segment, then rolled to a new segment; a power
    // loss later tore the old one, which read as corruption. Recovery now syncs the newest
    // segment before appending after it.
    (28, 3, 200, true),
];

#[test]
fn regression_seeds() {
    for &(seed, nodes, ops, disks) in REGRESSIONS {
        let mut cfg = ClusterConfig::new(seed, nodes, 5, ops);
        if disks {
            cfg.faults = Faults::mixed_with_disks();
        }
        run(cfg);
    }
}

/// Mixed faults, 3 and 5 nodes alternately, 5 clients × 200 operations per seed; every tenth
/// seed (`seed % 10 == 9`) adds slow and failing disks (`Faults::mixed_with_disks`: a node
/// whose log write fails stops, answers `Unavailable`, and is restarted on its disks). The CI
/// run takes seeds `0..1000` (about 70 s on a quiet 2-core machine); `CLUSTER_SEEDS=a..b` (and
/// `CLUSTER_OPS=n` per client) runs others, e.g. a long run `CLUSTER_SEEDS=0..10000`;
/// `CLUSTER_DISK_FAULTS=1` gives every seed disk faults. A failure names its seed.
#[test]
fn mixed_faults_seeds() {
    let range = std::env::var("CLUSTER_SEEDS").ok();
    let (lo, hi) = match range.as_deref().and_then(|r| r.split_once("..")) {
        Some((a, b)) => (a.parse().expect("seed"), b.parse().expect("seed")),
        None => (0u64, 1000u64),
    };
    let ops: u64 = std::env::var("CLUSTER_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let started = std::time::Instant::now();
    let mut total_ops = 0;
    let (mut disk_seeds, mut disk_faults, mut node_failures) = (0, 0, 0);
    for seed in lo..hi {
        let nodes = if seed % 2 == 0 { 3 } else { 5 };
        let mut cfg = ClusterConfig::new(seed, nodes, 5, ops);
        if seed % 10 == 9 || std::env::var("CLUSTER_DISK_FAULTS").is_ok() {
            cfg.faults = Faults::mixed_with_disks();
            disk_seeds += 1;
        }
        let c = run(cfg);
        total_ops += c.history.len();
        disk_faults += c.stats.disk_faults;
        node_failures += c.stats.node_failures;
    }
    eprintln!(
        "{} seeds, {total_ops} ops in {:?}; {disk_seeds} seeds with disk faults: {disk_faults} slow or failing disks, {node_failures} nodes stopped by a storage failure and restarted",
        hi - lo,
        started.elapsed()
    );
    if disk_seeds >= 50 {
        assert!(node_failures > 0, "disk errors never stopped a node");
    }
}

#[test]
#[ignore]
fn show_stats() {
    for seed in 0..4 {
        let c = run(ClusterConfig::new(seed, 3 + 2 * (seed % 2), 5, 200));
        let unknown = c.history.iter().filter(|o| o.ret().is_none()).count();
        let syncs: Vec<(u64, u64)> = c.machines.iter().map(|m| (m.log_disk.stats.syncs, m.store_disk.stats.syncs)).collect();
        let applied: Vec<_> = c.machines.iter().map(|m| m.node.as_ref().map(|n| (n.applied().0, n.stats()))).collect();
        eprintln!("seed {seed}: t={} {:?} unknown {unknown} net {:?}\n syncs {syncs:?}\n {applied:?}", c.now, c.stats, c.net.stats);
    }
}
