//! The simulated network: determinism, partitions, one-way cuts, down nodes, and fault rates.
use strata_sim::net::{DropReason, LinkFaults, SimNet, TraceEvent};

fn faulty() -> LinkFaults {
    LinkFaults { min_latency: 1, max_latency: 5, drop_rate: 0.1, duplicate_rate: 0.1, reorder_rate: 0.2, reorder_delay: 20 }
}

/// Node i sends `count` messages round-robin, one per tick, polling as time passes.
fn run(net: &mut SimNet<u64>, nodes: &[u64], count: u64) -> Vec<(u64, u64, u64, u64)> {
    let mut got = Vec::new();
    for t in 0..count {
        let from = nodes[(t % nodes.len() as u64) as usize];
        let to = nodes[((t / nodes.len() as u64 + 1 + t) % nodes.len() as u64) as usize];
        if from != to {
            net.send(t, from, to, t);
        }
        while let Some(d) = net.poll(t) {
            got.push((t, d.from, d.to, d.msg));
        }
    }
    let end = net.next_delivery_at().unwrap_or(count).max(count) + 100;
    while let Some(d) = net.poll(end) {
        got.push((end, d.from, d.to, d.msg));
    }
    got
}

#[test]
fn same_seed_same_run() {
    let digest = |seed| {
        let mut net = SimNet::new(seed, [1, 2, 3], faulty());
        net.record_trace = true;
        let got = run(&mut net, &[1, 2, 3], 2000);
        let lines: Vec<String> = net.trace().iter().map(|e| e.to_string()).collect();
        (net.digest(), got, lines, net.stats.clone())
    };
    let (a, b, c) = (digest(7), digest(7), digest(8));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0, "another seed, another schedule");
    // Recording the trace does not change the schedule or the digest.
    let mut quiet = SimNet::new(7, [1, 2, 3], faulty());
    let got = run(&mut quiet, &[1, 2, 3], 2000);
    assert_eq!((quiet.digest(), got), (a.0, a.1));
    assert!(a.2.iter().any(|l| l.contains(" send ") && l.contains(" due ")), "{:?}", &a.2[..5]);
    assert!(a.2.iter().any(|l| l.contains(" deliver ")));
    assert!(a.2.iter().any(|l| l.ends_with(" lost")));
    assert!(a.2.iter().any(|l| l.contains(" copy-of ")));
}

#[test]
fn trace_lines_read_like_a_story() {
    let mut net = SimNet::new(1, [1, 2, 3], LinkFaults::reliable(2));
    net.record_trace = true;
    net.send(0, 1, 2, 10u64);
    net.partition(1, &[&[1, 2], &[3]]);
    net.send(1, 1, 3, 11);
    assert_eq!(net.poll(2).map(|d| d.msg), Some(10));
    net.down(3, 2);
    net.send(3, 1, 2, 12);
    net.heal(4);
    net.up(4, 2);
    let lines: Vec<String> = net.trace().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "0 send 1->2 m1 due 2 10",
            "1 fault partition {1,2} {3}",
            "1 send 1->3 m2 due 3 11",
            "1 drop 1->3 m2 partitioned",
            "2 deliver 1->2 m1",
            "3 fault down 2",
            "3 send 1->2 m3 due 5 12",
            "3 drop 1->2 m3 receiver-down",
            "4 fault heal",
            "4 fault up 2",
        ]
    );
}

#[test]
fn partitions_are_symmetric_and_lose_what_is_in_flight() {
    let mut net = SimNet::new(3, [1, 2, 3], LinkFaults::reliable(5));
    net.send(0, 1, 3, 100u64); // in flight when the partition starts
    net.partition(1, &[&[1, 2], &[3]]);
    net.send(1, 1, 2, 1);
    net.send(1, 2, 1, 2);
    net.send(1, 1, 3, 3);
    net.send(1, 3, 1, 4);
    net.send(1, 3, 2, 5);
    let mut got = vec![];
    while let Some(d) = net.poll(10) {
        got.push(d.msg);
    }
    assert_eq!(got, vec![1, 2]);
    assert_eq!(net.stats.dropped[&DropReason::Partitioned], 4);
    assert!(!net.connected(3, 1) && !net.connected(1, 3) && net.connected(1, 2));
    net.heal(11);
    net.send(11, 3, 1, 6);
    net.send(11, 1, 3, 7);
    let mut got = vec![];
    while let Some(d) = net.poll(20) {
        got.push(d.msg);
    }
    assert_eq!(got, vec![6, 7]);
    // Nodes in no group are isolated.
    net.partition(21, &[&[1, 2]]);
    assert!(!net.connected(3, 1) && !net.connected(1, 3) && net.connected(2, 1));
}

#[test]
fn one_way_cut() {
    let mut net = SimNet::new(4, [1, 2], LinkFaults::reliable(1));
    net.cut(0, 1, 2);
    net.send(0, 1, 2, 1u64);
    net.send(0, 2, 1, 2);
    let got: Vec<_> = std::iter::from_fn(|| net.poll(5)).map(|d| (d.from, d.to, d.msg)).collect();
    assert_eq!(got, vec![(2, 1, 2)]);
    assert_eq!(net.stats.dropped[&DropReason::Cut], 1);
    net.uncut(6, 1, 2);
    net.send(6, 1, 2, 3);
    assert_eq!(net.poll(7).map(|d| d.msg), Some(3));
}

#[test]
fn nothing_reaches_a_down_node() {
    let mut net = SimNet::new(5, [1, 2, 3], LinkFaults::reliable(3));
    net.send(0, 1, 2, 1u64); // in flight when 2 goes down
    net.down(1, 2);
    net.send(1, 1, 2, 2); // to a down node
    net.send(1, 2, 1, 3); // from a down node
    net.send(1, 1, 3, 4);
    assert_eq!(std::iter::from_fn(|| net.poll(10)).map(|d| d.msg).collect::<Vec<_>>(), vec![4]);
    assert_eq!(net.stats.dropped[&DropReason::ReceiverDown], 2);
    assert_eq!(net.stats.dropped[&DropReason::SenderDown], 1);
    // Down at delivery time (it went down after the send... and came back before: delivered).
    net.send(11, 1, 2, 5);
    net.up(12, 2);
    net.send(12, 1, 2, 6);
    assert_eq!(std::iter::from_fn(|| net.poll(20)).map(|d| d.msg).collect::<Vec<_>>(), vec![6]);
    assert!(net.is_up(2));
    assert_eq!(net.stats.dropped[&DropReason::ReceiverDown], 3);
    // Unknown receivers are dropped, not a panic.
    net.send(21, 1, 99, 7);
    assert_eq!(net.stats.dropped[&DropReason::UnknownNode], 1);
}

#[test]
fn fault_rates_within_bounds() {
    let n = 20_000u64;
    let mut net = SimNet::new(9, [1, 2], LinkFaults { reorder_rate: 0.0, ..faulty() });
    for t in 0..n {
        net.send(t, 1, 2, t);
    }
    let got: Vec<u64> = std::iter::from_fn(|| net.poll(n + 100)).map(|d| d.msg).collect();
    let lost = net.stats.dropped[&DropReason::Lost];
    // 10% each; binomial standard deviation ~42 at n = 20,000: allow ±5 sd.
    assert!((1790..=2210).contains(&lost), "lost {lost}");
    assert!((1600..=2000).contains(&net.stats.duplicated), "duplicated {}", net.stats.duplicated);
    assert_eq!(got.len() as u64, n - lost + net.stats.duplicated);
    // Latency 1..=5 reorders a little even without the reordering delay.
    let mut net2 = SimNet::new(9, [1, 2], LinkFaults::reliable(3));
    for t in 0..1000 {
        net2.send(t, 1, 2, t);
    }
    let fifo: Vec<u64> = std::iter::from_fn(|| net2.poll(2000)).map(|d| d.msg).collect();
    assert_eq!(fifo, (0..1000).collect::<Vec<_>>(), "a reliable fixed-latency link is FIFO");
    assert_eq!(net2.stats.reordered, 0);
    // With reordering: about 20% held back, and later messages overtake them.
    let mut net3 = SimNet::new(9, [1, 2], LinkFaults { drop_rate: 0.0, duplicate_rate: 0.0, ..LinkFaults::reliable(2) });
    net3.set_link(1, 2, LinkFaults { reorder_rate: 0.2, reorder_delay: 20, ..LinkFaults::reliable(2) });
    for t in 0..n {
        net3.send(t, 1, 2, t);
        net3.send(t, 2, 1, t);
    }
    let _ = std::iter::from_fn(|| net3.poll(n + 100)).count();
    assert!((3700..=4300).contains(&net3.stats.delayed), "delayed {}", net3.stats.delayed);
    assert!(net3.stats.reordered > 1000, "reordered {}", net3.stats.reordered);
    assert_eq!(net3.stats.delivered, 2 * n);
}

#[test]
fn latency_within_the_link_range() {
    let mut net = SimNet::new(11, [1, 2], LinkFaults { min_latency: 3, max_latency: 7, ..LinkFaults::reliable(0) });
    net.record_trace = true;
    let mut seen = std::collections::BTreeSet::new();
    for t in 0..600 {
        if t < 500 {
            net.send(t, 1, 2, t);
        }
        while let Some(d) = net.poll(t) {
            let lat = t - d.msg;
            assert!((3..=7).contains(&lat), "latency {lat}");
            seen.insert(lat);
        }
    }
    assert_eq!(seen.len(), 5, "every latency in the range occurs: {seen:?}");
    assert!(net.trace().iter().all(|e| !matches!(e, TraceEvent::Drop { .. })));
}
