//! Failover: the leader of a healthy cluster crashes; how long until a new leader serves a
//! write? Measured in Raft ticks over many seeds (goal: p99 ≤ 2·election_tick + 3), with every
//! write acknowledged before the crash still there afterwards.
//!
//! `FAILOVER_SEEDS=n` sets the number of seeds (default 1,000); the percentiles are printed.
use strata_engine::node::wire::{ClientId, ClientOp, ClientReply, ClientRequest, Consistency, Epoch, RegionId, WriteOp};
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};
use strata_sim::net::LinkFaults;
use strata_sim::rng::Rng;

fn request(op: ClientOp) -> ClientRequest {
    ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op }
}

fn put(seq: u64, key: &str, value: &str) -> ClientRequest {
    request(ClientOp::Write { client: ClientId(1), seq, op: WriteOp::Put { key: key.into(), value: value.into() } })
}

/// Writes through the leader until the write is acknowledged; returns when it was.
fn write_through_leader(c: &mut Cluster, req: ClientRequest, exclude: Option<usize>, limit_ms: u64) -> u64 {
    let mut pending: Option<(usize, u64)> = None;
    let deadline = c.now + limit_ms;
    loop {
        assert!(c.now < deadline, "seed {}: no leader served a write within {limit_ms} ms", c.cfg.seed);
        if let Some((_, p)) = pending {
            if let Some((at, result)) = c.probe_replies.remove(&p) {
                match result {
                    Ok(ClientReply::Written { .. }) => return at,
                    Ok(other) => panic!("seed {}: a put answered {other:?}", c.cfg.seed),
                    Err(_) => pending = None,
                }
            }
        }
        if pending.is_none() {
            if let Some(k) = c.leader().filter(|k| Some(*k) != exclude) {
                pending = c.probe(k, req.clone()).map(|p| (k, p));
            }
        }
        c.step();
    }
}

/// One seed: the failover time in ticks.
fn failover(seed: u64, nodes: u64) -> u64 {
    let mut cfg = ClusterConfig::new(seed, nodes, 0, 0);
    cfg.faults = Faults::none();
    cfg.link = LinkFaults::reliable(1);
    cfg.link.max_latency = 3;
    let mut c = Cluster::new(cfg);
    let mut rng = Rng::new(seed);
    write_through_leader(&mut c, put(1, "before", "1"), None, 10_000);
    // Crash at a random moment of the leader's term.
    let until = c.now + rng.below(300);
    while c.now < until {
        c.step();
    }
    let old = c.leader().expect("a leader");
    let crashed_at = c.now;
    c.crash(old);
    let served_at = write_through_leader(&mut c, put(2, "after", "2"), Some(old), 10_000);
    // The write acknowledged before the crash is there.
    let k = c.leader().expect("a leader");
    let p = c.probe(k, request(ClientOp::Read { key: b"before".to_vec(), consistency: Consistency::Linearizable })).expect("up");
    while !c.probe_replies.contains_key(&p) {
        c.step();
    }
    match &c.probe_replies[&p].1 {
        Ok(ClientReply::Value { value, .. }) => assert_eq!(value.as_deref(), Some(&b"1"[..]), "seed {seed}: write lost"),
        other => panic!("seed {seed}: read after failover answered {other:?}"),
    }
    (served_at - crashed_at).div_ceil(c.cfg.tick_ms)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn leader_crash_new_leader_serves_writes() {
    let seeds: u64 = std::env::var("FAILOVER_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    for nodes in [3, 5] {
        let mut ticks: Vec<u64> = (0..seeds).map(|s| failover(s, nodes)).collect();
        ticks.sort_unstable();
        let (p50, p99, max) = (percentile(&ticks, 0.5), percentile(&ticks, 0.99), ticks[ticks.len() - 1]);
        eprintln!("{nodes} nodes, {seeds} seeds: failover p50 {p50} ticks, p99 {p99} ticks, max {max} ticks (election_tick 10)");
        assert!(p99 <= 2 * 10 + 3, "{nodes} nodes: failover p99 {p99} ticks > 2·election_tick + 3");
    }
}
