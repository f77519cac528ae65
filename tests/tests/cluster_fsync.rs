//! Fsyncs per committed write on the leader and on followers: the Raft log is the store's
//! write-ahead log (one sync per group of appended entries), and the store only syncs when a
//! flush installs. Goal: ≤ 1 fsync per committed write, amortized, on every node.
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};
use strata_sim::lincheck::KvInput;
use strata_sim::net::LinkFaults;

#[test]
fn fsyncs_per_committed_write() {
    for clients in [1u64, 10, 50] {
        let mut cfg = ClusterConfig::new(7, 3, clients, 2_000 / clients);
        cfg.faults = Faults::none();
        cfg.link = LinkFaults::reliable(1);
        cfg.client.think_ms = 0;
        // Compact the logs right behind the stores' durable marks.
        cfg.log_keep_entries = 50;
        cfg.segment_bytes = 8 << 10;
        let mut c = Cluster::new(cfg);
        c.run_workload(600_000, 1_000);
        c.check_linearizable();
        c.check_replicas_identical();
        let writes = c.history.iter().filter(|o| !matches!(o.input, KvInput::Get(_))).count() as f64;
        let leader = c.leader().expect("a leader");
        for k in 0..3 {
            let (log, store) = c.fsyncs(k);
            let per_write = (log + store) as f64 / writes;
            eprintln!(
                "{clients:>2} clients, node {} ({}): {writes} writes, {log} log syncs + {store} store syncs = {per_write:.3} fsyncs/write",
                k + 1,
                if k == leader { "leader" } else { "follower" }
            );
            if clients > 1 {
                assert!(per_write <= 1.0, "node {}: {per_write:.3} fsyncs per committed write", k + 1);
            }
            // The log is the store's WAL: every flush lets it drop what the store now holds.
            let n = c.machines[k].node.as_ref().expect("up");
            let mark = n.store().durable_mark();
            assert!(mark > 0 && n.stats().compactions > 0, "node {}: mark {mark}, {:?}", k + 1, n.stats());
            assert!(n.raft().expect("running").snapshot_meta().index.0 + 50 >= mark, "node {}: log not compacted behind mark {mark}", k + 1);
            let log = n.log_stats();
            eprintln!("    durable mark {mark}, log segments {} ({} deleted)", log.segments, log.segments_deleted);
            assert!(log.segments_deleted > 0 && log.segments <= 3, "node {}: {log:?}", k + 1);
        }
    }
}

#[test]
#[ignore]
fn fsync_breakdown() {
    let clients: u64 = std::env::var("CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut cfg = ClusterConfig::new(7, 3, clients, 300);
    if std::env::var("MEMTABLE").is_ok() { cfg.flush_interval_ms = 1_000_000; }
    cfg.memtable_bytes = std::env::var("MEMTABLE").ok().and_then(|v| v.parse().ok()).unwrap_or(cfg.memtable_bytes);
    cfg.faults = Faults::none();
    cfg.link = LinkFaults::reliable(1);
    cfg.client.think_ms = 0;
    let mut c = Cluster::new(cfg);
    c.run_workload(600_000, 1_000);
    let lat = |get: bool| {
        let v: Vec<u64> = c.history.iter().filter(|o| matches!(o.input, KvInput::Get(_)) == get).filter_map(|o| o.ret().map(|r| r - o.call)).collect();
        (v.len(), v.iter().sum::<u64>() as f64 / v.len().max(1) as f64, v.iter().max().copied())
    };
    eprintln!("reads (n, mean ms, max) {:?} writes {:?}", lat(true), lat(false));
    for m in &c.machines {
        let n = m.node.as_ref().unwrap();
        eprintln!("t={} store syncs {} job files {} log syncs {} node {:?} store {:?} log {:?}", c.now, m.store_disk.stats.syncs, m.job_files, m.log_disk.stats.syncs, n.stats(), n.store().stats().flushes, n.log_stats());
    }
}

#[test]
#[ignore]
fn busy_trace() {
    let mut cfg = ClusterConfig::new(7, 3, 10, 300);
    cfg.faults = Faults::none();
    cfg.link = LinkFaults::reliable(1);
    cfg.client.think_ms = 0;
    cfg.record_trace = true;
    let mut c = Cluster::new(cfg);
    while c.now < 5_000 {
        c.step();
    }
    c.trace.clear();
    while c.now < 5_060 {
        c.step();
    }
    for l in &c.trace {
        println!("{l}");
    }
    for o in c.history.iter().filter(|o| o.call >= 4_900 && o.call < 5_060) {
        println!("op {} {:?} call {} ret {:?}", o.client, o.input, o.call, o.ret());
    }
}
