//! Randomized cluster simulation: 3- and 5-node clusters under drops, duplicates,
//! reordering, partitions, crashes that lose unpersisted writes, restarts, compaction and
//! snapshots. Election safety, log matching, leader completeness and state-machine safety
//! are checked after every step; liveness once the faults stop.
//!
//! `RAFT_SIM_SEEDS=n` sets the number of seeds (default 1000 per cluster size);
//! `RAFT_SIM_SEED=s` replays one seed.

mod common;

use common::sim::Sim;

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("RAFT_SIM_SEED") {
        return vec![s.parse().expect("RAFT_SIM_SEED is a number")];
    }
    let n: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    (1..=n).collect()
}

fn run_seed(seed: u64, nodes: usize) {
    let mut sim = Sim::new(seed, nodes);
    sim.run(150, 300);
    sim.check_outcomes();
}

#[test]
fn sim_three_nodes() {
    for seed in seeds() {
        run_seed(seed, 3);
    }
}

#[test]
fn sim_five_nodes() {
    for seed in seeds() {
        run_seed(seed.wrapping_mul(7919), 5);
    }
}
