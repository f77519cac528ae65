//! Snapshots in the cluster world: a replica that falls further behind than the leader's log
//! reaches (the log is compacted a few entries behind the durable mark here) catches up from
//! a snapshot — the leader's SST files at its durable mark, sent in chunks — and ends with
//! the same data as every other replica, with every client history linearizable.
//!
//! * `lagging_replica_catches_up`: one node down while the clients write; restarted, it
//!   installs a snapshot.
//! * `crash_in_the_install_window`: the follower crashes just after the store installed the
//!   snapshot and before the Raft log recorded it; recovery rebuilds the log's base from the
//!   store and the replica converges.
//! * `crash_mid_transfer`: the follower, then the leader, crash while chunks are in flight.
//! * `snapshots_under_faults`: seeds of 3- and 5-node clusters with drops, duplicates,
//!   reordering, partitions and crashes while snapshots are sent (`SNAPSHOT_SEEDS=a..b` for
//!   more; a failure names its seed).
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};
use strata_sim::net::LinkFaults;

/// A config whose log is compacted 5 entries behind a durable mark that advances every
/// 100 ms, with snapshots sent in 2 KiB chunks.
fn snappy(seed: u64, nodes: u64, clients: u64, ops: u64) -> ClusterConfig {
    let mut cfg = ClusterConfig::new(seed, nodes, clients, ops);
    cfg.log_keep_entries = 5;
    cfg.flush_interval_ms = 100;
    cfg.segment_bytes = 4 << 10;
    cfg.snapshot_chunk_bytes = 2 << 10;
    cfg.client.keys = 16;
    cfg
}

fn installed(c: &Cluster, k: usize) -> u64 {
    c.machines[k].node.as_ref().map_or(0, |n| n.snapshot_stats().installed)
}

fn finish(c: &mut Cluster) {
    c.heal_all();
    let end = c.now + 3_000;
    while c.now < end {
        c.step();
    }
    c.read_every_key();
    c.check_linearizable();
    c.check_replicas_identical();
}

#[test]
fn lagging_replica_catches_up() {
    let mut cfg = snappy(3, 3, 4, 60);
    cfg.faults = Faults::none();
    cfg.link = LinkFaults::reliable(2);
    let mut c = Cluster::new(cfg);
    while c.leader().is_none() {
        c.step();
    }
    let down = (c.leader().unwrap_or(0) + 1) % 3;
    c.crash(down);
    c.faults_until = Some(0);
    while !c.clients_done() {
        assert!(c.now < 600_000, "clients not done");
        c.step();
    }
    let leader = c.leader().expect("a leader");
    let compacted = c.machines[leader].node.as_ref().and_then(|n| n.raft()).map_or(0, |r| r.first_index().0);
    assert!(compacted > 20, "the leader compacted its log (first index {compacted})");
    c.restart(down);
    finish(&mut c);
    assert!(installed(&c, down) >= 1, "the lagging node installed a snapshot");
}

#[test]
fn crash_in_the_install_window() {
    let mut cfg = snappy(5, 3, 3, 50);
    cfg.faults = Faults::none();
    cfg.link = LinkFaults::reliable(2);
    cfg.record_trace = true;
    let mut c = Cluster::new(cfg);
    while c.leader().is_none() {
        c.step();
    }
    let down = (c.leader().unwrap_or(0) + 1) % 3;
    c.crash(down);
    c.faults_until = Some(0);
    while !c.clients_done() {
        c.step();
    }
    c.restart(down);
    // Crash the moment the store has installed the snapshot: the log's record of it is
    // handed to the log disk then, and not yet synced.
    let end = c.now + 10_000;
    while installed(&c, down) == 0 && c.now < end {
        c.step();
    }
    assert_eq!(installed(&c, down), 1, "the snapshot was installed");
    c.crash(down);
    c.trace.clear();
    c.restart(down);
    finish(&mut c);
    let rebased = format!("n{} log rebased", down + 1);
    assert!(c.trace.iter().any(|l| l.contains(&rebased)), "recovery rebuilt the log's base from the store");
    assert_eq!(installed(&c, down), 0, "and needed no second snapshot");
}

#[test]
fn crash_mid_transfer() {
    for victim in ["follower", "leader"] {
        let mut cfg = snappy(8, 3, 3, 60);
        cfg.faults = Faults::none();
        cfg.link = LinkFaults::reliable(2);
        cfg.snapshot_chunk_bytes = 512;
        let mut c = Cluster::new(cfg);
        while c.leader().is_none() {
            c.step();
        }
        let down = (c.leader().unwrap_or(0) + 1) % 3;
        c.crash(down);
        c.faults_until = Some(0);
        while !c.clients_done() {
            c.step();
        }
        c.restart(down);
        let received = |c: &Cluster| c.machines[down].node.as_ref().map_or(0, |n| n.snapshot_stats().chunks_received);
        let end = c.now + 10_000;
        while received(&c) < 3 && c.now < end {
            c.step();
        }
        assert!(received(&c) >= 3 && installed(&c, down) == 0, "{victim}: caught mid-transfer");
        let k = if victim == "follower" { down } else { c.leader().expect("leader") };
        c.crash(k);
        let resume = c.now + 300;
        while c.now < resume {
            c.step();
        }
        c.restart(k);
        let resume = c.now + 3_000;
        while c.now < resume {
            c.step();
        }
        finish(&mut c);
        assert!(installed(&c, down) >= 1, "{victim}: the snapshot was installed in the end");
    }
}

/// Mixed faults with a short log: snapshots are sent while links drop, duplicate and
/// reorder chunks and nodes crash on either side. CI runs seeds `0..150`;
/// `SNAPSHOT_SEEDS=a..b` runs others.
#[test]
fn snapshots_under_faults() {
    let range = std::env::var("SNAPSHOT_SEEDS").ok();
    let (lo, hi) = match range.as_deref().and_then(|r| r.split_once("..")) {
        Some((a, b)) => (a.parse().expect("seed"), b.parse().expect("seed")),
        None => (0u64, 150u64),
    };
    let mut installs = 0;
    for seed in lo..hi {
        let nodes = if seed % 2 == 0 { 3 } else { 5 };
        let mut cfg = snappy(seed, nodes, 4, 80);
        cfg.faults.crash = 0.06;
        let mut c = Cluster::new(cfg);
        c.run_workload(600_000, 3_000);
        c.read_every_key();
        c.check_linearizable();
        c.check_replicas_identical();
        installs += (0..nodes as usize).map(|k| installed(&c, k)).sum::<u64>();
    }
    eprintln!("{} seeds, {installs} snapshots installed", hi - lo);
    assert!(installs > 0, "no snapshot was installed");
}
