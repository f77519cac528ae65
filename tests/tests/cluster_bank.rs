//! The bank workload in the cluster world: clients transfer money between accounts with
//! multi-key transactions through the node (read both balances with their revisions, then a
//! transaction that commits both new balances only if neither changed) and read every account
//! at once, under mixed faults (crashes losing unsynced data, partitions, one-way cuts, lossy
//! links). Checked with `strata_sim::txncheck`: the total on every read-all snapshot,
//! read-your-writes per session, no read of an aborted transfer, no dependency cycle
//! (serializability); the final read sees every committed transfer; replicas are identical.
//!
//! Every tenth seed adds slow and failing disks (`Faults::mixed_with_disks`). CI runs seeds
//! `0..300`; `BANK_SEEDS=a..b` runs others (e.g. `BANK_SEEDS=0..5000` for a long
//! run). A failure names its seed.
use strata_sim::cluster::bank::BankConfig;
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};

fn run(seed: u64, nodes: u64, bank: BankConfig, faults: Faults) -> Cluster {
    let mut cfg = ClusterConfig::new(seed, nodes, 0, 0);
    cfg.bank = Some(bank);
    cfg.faults = faults;
    let mut c = Cluster::new(cfg);
    c.run_workload(600_000, 3_000);
    let last = c.read_all_accounts();
    c.check_bank(&last);
    c.check_replicas_identical();
    let total: i64 = last.iter().map(|(_, v)| v.balance).sum();
    assert_eq!(total, 500, "seed {seed}: final total");
    c
}

#[test]
fn transfers_without_faults_commit_and_keep_the_total() {
    let mut cfg = ClusterConfig::new(1, 3, 0, 0);
    cfg.bank = Some(BankConfig { clients: 4, txns_per_client: 50, ..BankConfig::default() });
    cfg.faults = Faults::none();
    cfg.link = strata_sim::net::LinkFaults::reliable(2);
    let mut c = Cluster::new(cfg);
    c.run_workload(600_000, 1_000);
    let last = c.read_all_accounts();
    c.check_bank(&last);
    c.check_replicas_identical();
    let (committed, aborted, unknown, read_alls) = c.bank_counts();
    assert_eq!(unknown, 0);
    assert!(committed > 50 && read_alls > 20, "committed {committed}, aborted {aborted}, read-alls {read_alls}");
    // Four clients race on five accounts: some transfers lose and abort.
    assert!(aborted > 0, "no transfer ever lost a race");
    assert_eq!(last.iter().map(|(_, v)| v.balance).sum::<i64>(), 500);
    assert!(last.iter().any(|(_, v)| v.writer != 0));
}

#[test]
fn mixed_faults_seeds() {
    let range = std::env::var("BANK_SEEDS").ok();
    let (lo, hi) = match range.as_deref().and_then(|r| r.split_once("..")) {
        Some((a, b)) => (a.parse().expect("seed"), b.parse().expect("seed")),
        None => (0u64, 300u64),
    };
    let started = std::time::Instant::now();
    let mut counts = (0, 0, 0, 0);
    for seed in lo..hi {
        let nodes = if seed % 2 == 0 { 3 } else { 5 };
        let faults = if seed % 10 == 9 { Faults::mixed_with_disks() } else { Faults::mixed() };
        let c = run(seed, nodes, BankConfig::default(), faults);
        let (a, b, u, r) = c.bank_counts();
        counts = (counts.0 + a, counts.1 + b, counts.2 + u, counts.3 + r);
    }
    eprintln!(
        "{} seeds: {} transfers committed, {} aborted, {} unknown, {} read-alls in {:?}",
        hi - lo,
        counts.0,
        counts.1,
        counts.2,
        counts.3,
        started.elapsed()
    );
}
