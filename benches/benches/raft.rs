//! Raft: strata-raft side by side with tikv/raft-rs 0.7 on the same in-memory, single-thread
//! harness.
//!
//! Workloads:
//! - `rawnode-1voter`, `rawnode-2voters`: etcd's `BenchmarkRawNode` — propose one entry, then
//!   process outputs until it is applied (the second voter is simulated by answering its
//!   messages at once).
//! - `cluster3-inflight1`, `cluster3-inflight256`: a 3-node cluster in memory committing
//!   entries with 1 or 256 proposals outstanding at the leader.
//!
//! Modes (environment):
//! - default: criterion benches (`cargo bench -p strata-benches --bench raft`).
//! - `RAFT_BENCH_MODE=measure`: prints ns and allocations per committed entry for every
//!   workload and implementation (a counting global allocator wraps the system one).
//! - `RAFT_BENCH_MODE=one RAFT_BENCH_CASE=<impl>/<workload> RAFT_BENCH_N=<entries>`: runs one
//!   case once, for `valgrind --tool=callgrind` (instructions per entry = difference of two
//!   runs with different N, divided by the difference of N).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};

/// Counts allocations (including reallocations) for the allocations-per-entry figure.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A benchmark subject: set up once, then commit entries.
trait Subject {
    /// Commits `n` more entries; returns how many were committed.
    fn run(&mut self, n: u64) -> u64;
}

const COMPACT_EVERY: u64 = 4096;

mod ours {
    use strata_raft::{
        Body, Bytes, Config, Entry, Index, Message, Node, NodeId, Output, ProposalId,
        ProposalOutcome, Recovered,
    };

    fn config(id: u64, voters: u64) -> Config {
        let mut cfg = Config::new(NodeId(id), (1..=voters).map(NodeId).collect());
        cfg.max_inflight_msgs = 256;
        cfg
    }

    /// etcd's BenchmarkRawNode: one node; a second voter, if any, answers at once.
    pub struct RawNode {
        node: Node,
        store: Vec<Entry>,
        applied: Index,
        next_id: u64,
    }

    impl RawNode {
        pub fn new(voters: u64) -> RawNode {
            let node = Node::new(config(1, voters), Recovered::default()).expect("config");
            let mut r = RawNode { node, store: Vec::new(), applied: Index(0), next_id: 0 };
            while !r.node.is_leader() {
                r.node.tick();
                r.stabilize();
            }
            r.stabilize();
            r
        }

        fn stabilize(&mut self) -> Index {
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Send(m) => {
                        let body = match m.body {
                            Body::RequestVote { pre_vote, .. } => {
                                Body::VoteResponse { pre_vote, granted: true }
                            }
                            Body::Append { prev_index, entries, .. } => {
                                let index = entries.last().map(|e| e.index).unwrap_or(prev_index);
                                Body::AppendResponse { index, reject: None }
                            }
                            _ => continue,
                        };
                        let r = Message { from: m.to, to: m.from, term: m.term, body };
                        let _ = self.node.step(r);
                    }
                    Output::Persist(mut p) => {
                        self.store.append(&mut p.entries);
                        let _ = self.node.handle_persisted(p.id);
                        self.node.recycle(p.entries);
                    }
                    Output::Apply(es) => {
                        if let Some(e) = es.last() {
                            self.applied = e.index;
                        }
                        self.node.recycle(es);
                    }
                    _ => {}
                }
            }
            if self.applied.0.is_multiple_of(super::COMPACT_EVERY) && self.applied > self.node.snapshot_meta().index {
                let _ = self.node.compact(self.applied);
                let keep = self.store.len().saturating_sub(16);
                self.store.drain(..keep);
            }
            self.applied
        }
    }

    impl super::Subject for RawNode {
        fn run(&mut self, n: u64) -> u64 {
            for _ in 0..n {
                self.next_id += 1;
                self.node.propose(ProposalId(self.next_id), Bytes::from_static(b"foo"));
                self.stabilize();
            }
            n
        }
    }

    /// Three nodes in memory; node 1 leads and keeps `inflight` proposals outstanding.
    pub struct Cluster {
        nodes: Vec<Node>,
        stores: Vec<Vec<Entry>>,
        msgs: Vec<Message>,
        inflight: u64,
        next_id: u64,
        applied: Vec<Index>,
    }

    impl Cluster {
        pub fn new(inflight: u64) -> Cluster {
            let nodes = (1..=3).map(|id| Node::new(config(id, 3), Recovered::default()).expect("config")).collect();
            let mut c = Cluster {
                nodes,
                stores: vec![Vec::new(); 3],
                msgs: Vec::new(),
                inflight,
                next_id: 0,
                applied: vec![Index(0); 3],
            };
            while !c.nodes[0].is_leader() {
                c.nodes[0].tick();
                c.round(&mut 0);
            }
            for _ in 0..4 {
                c.round(&mut 0);
            }
            c
        }

        /// Drains every node and delivers every message once.
        fn round(&mut self, committed: &mut u64) {
            for k in 0..3 {
                let node = &mut self.nodes[k];
                while let Some(out) = node.poll_output() {
                    match out {
                        Output::Send(m) => self.msgs.push(m),
                        Output::Persist(mut p) => {
                            self.stores[k].append(&mut p.entries);
                            let _ = node.handle_persisted(p.id);
                            node.recycle(p.entries);
                        }
                        Output::Apply(es) => {
                            if let Some(e) = es.last() {
                                self.applied[k] = e.index;
                            }
                            node.recycle(es);
                        }
                        Output::Proposal(_, ProposalOutcome::Committed(_)) => *committed += 1,
                        _ => {}
                    }
                }
                let a = self.applied[k];
                if a.0 >= node.snapshot_meta().index.0 + super::COMPACT_EVERY {
                    let _ = node.compact(a);
                    let keep = self.stores[k].len().saturating_sub(16);
                    self.stores[k].drain(..keep);
                }
            }
            for m in self.msgs.drain(..) {
                let to = (m.to.0 - 1) as usize;
                let _ = self.nodes[to].step(m);
            }
        }
    }

    impl super::Subject for Cluster {
        fn run(&mut self, n: u64) -> u64 {
            let mut committed = 0;
            let mut proposed = 0;
            while committed < n {
                while proposed - committed < self.inflight && proposed < n {
                    self.next_id += 1;
                    proposed += 1;
                    self.nodes[0].propose(ProposalId(self.next_id), Bytes::from_static(b"foo"));
                }
                self.round(&mut committed);
            }
            committed
        }
    }
}

mod theirs {
    use raft::prelude::*;
    use raft::storage::MemStorage;
    use slog::{o, Logger};

    fn config(id: u64) -> Config {
        Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            max_inflight_msgs: 256,
            max_size_per_msg: 1 << 20,
            ..Default::default()
        }
    }

    fn logger() -> Logger {
        Logger::root(slog::Discard, o!())
    }

    /// Handles one Ready (raft-rs 0.7's documented order). Returns normal entries applied.
    fn on_ready(node: &mut raft::RawNode<MemStorage>, out: &mut Vec<Message>, applied: &mut u64) -> u64 {
        if !node.has_ready() {
            return 0;
        }
        let mut committed = 0;
        let mut count = |es: Vec<Entry>, applied: &mut u64| {
            for e in &es {
                if !e.data.is_empty() {
                    committed += 1;
                }
                *applied = e.index;
            }
        };
        let mut rd = node.ready();
        out.extend(rd.take_messages());
        count(rd.take_committed_entries(), applied);
        if !rd.entries().is_empty() {
            node.mut_store().wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            node.mut_store().wl().set_hardstate(hs.clone());
        }
        out.extend(rd.take_persisted_messages());
        let mut light = node.advance(rd);
        if let Some(c) = light.commit_index() {
            node.mut_store().wl().mut_hard_state().set_commit(c);
        }
        out.extend(light.take_messages());
        count(light.take_committed_entries(), applied);
        node.advance_apply();
        committed
    }

    fn maybe_compact(node: &mut raft::RawNode<MemStorage>, applied: u64, last_compact: &mut u64) {
        if applied >= *last_compact + super::COMPACT_EVERY {
            let _ = node.mut_store().wl().compact(applied);
            *last_compact = applied;
        }
    }

    pub struct RawNode {
        node: raft::RawNode<MemStorage>,
        msgs: Vec<Message>,
        applied: u64,
        last_compact: u64,
    }

    impl RawNode {
        pub fn new(voters: u64) -> RawNode {
            let store = MemStorage::new_with_conf_state(((1..=voters).collect::<Vec<u64>>(), vec![]));
            let node = raft::RawNode::new(&config(1), store, &logger()).expect("config");
            let mut r = RawNode { node, msgs: Vec::new(), applied: 0, last_compact: 0 };
            r.node.campaign().expect("campaign");
            r.stabilize();
            r
        }

        fn stabilize(&mut self) {
            while self.node.has_ready() {
                on_ready(&mut self.node, &mut self.msgs, &mut self.applied);
                for m in std::mem::take(&mut self.msgs) {
                    let mut r = Message::default();
                    match m.get_msg_type() {
                        MessageType::MsgRequestVote | MessageType::MsgRequestPreVote => {
                            let t = if m.get_msg_type() == MessageType::MsgRequestVote {
                                MessageType::MsgRequestVoteResponse
                            } else {
                                MessageType::MsgRequestPreVoteResponse
                            };
                            r.set_msg_type(t);
                        }
                        MessageType::MsgAppend => {
                            r.set_msg_type(MessageType::MsgAppendResponse);
                            r.index = m.get_entries().last().map(|e| e.index).unwrap_or(m.index);
                        }
                        _ => continue,
                    }
                    r.to = m.from;
                    r.from = m.to;
                    r.term = m.term;
                    let _ = self.node.step(r);
                }
            }
            maybe_compact(&mut self.node, self.applied, &mut self.last_compact);
        }
    }

    impl super::Subject for RawNode {
        fn run(&mut self, n: u64) -> u64 {
            for _ in 0..n {
                self.node.propose(vec![], b"foo".to_vec()).expect("propose");
                self.stabilize();
            }
            n
        }
    }

    pub struct Cluster {
        nodes: Vec<raft::RawNode<MemStorage>>,
        msgs: Vec<Message>,
        inflight: u64,
        applied: Vec<u64>,
        last_compact: Vec<u64>,
    }

    impl Cluster {
        pub fn new(inflight: u64) -> Cluster {
            let nodes = (1..=3)
                .map(|id| {
                    let store = MemStorage::new_with_conf_state((vec![1, 2, 3], vec![]));
                    raft::RawNode::new(&config(id), store, &logger()).expect("config")
                })
                .collect();
            let mut c = Cluster { nodes, msgs: Vec::new(), inflight, applied: vec![0; 3], last_compact: vec![0; 3] };
            c.nodes[0].campaign().expect("campaign");
            for _ in 0..8 {
                c.round(&mut 0);
            }
            c
        }

        fn round(&mut self, committed: &mut u64) {
            for k in 0..3 {
                let c = on_ready(&mut self.nodes[k], &mut self.msgs, &mut self.applied[k]);
                if k == 0 {
                    *committed += c;
                }
                maybe_compact(&mut self.nodes[k], self.applied[k], &mut self.last_compact[k]);
            }
            for m in self.msgs.drain(..) {
                let to = (m.to - 1) as usize;
                let _ = self.nodes[to].step(m);
            }
        }
    }

    impl super::Subject for Cluster {
        fn run(&mut self, n: u64) -> u64 {
            let mut committed = 0;
            let mut proposed = 0;
            while committed < n {
                while proposed - committed < self.inflight && proposed < n {
                    proposed += 1;
                    self.nodes[0].propose(vec![], b"foo".to_vec()).expect("propose");
                }
                self.round(&mut committed);
            }
            committed
        }
    }
}

const WORKLOADS: [&str; 4] = ["rawnode-1voter", "rawnode-2voters", "cluster3-inflight1", "cluster3-inflight256"];

fn make(imp: &str, workload: &str) -> Box<dyn Subject> {
    match (imp, workload) {
        ("strata", "rawnode-1voter") => Box::new(ours::RawNode::new(1)),
        ("strata", "rawnode-2voters") => Box::new(ours::RawNode::new(2)),
        ("strata", "cluster3-inflight1") => Box::new(ours::Cluster::new(1)),
        ("strata", "cluster3-inflight256") => Box::new(ours::Cluster::new(256)),
        ("raft-rs", "rawnode-1voter") => Box::new(theirs::RawNode::new(1)),
        ("raft-rs", "rawnode-2voters") => Box::new(theirs::RawNode::new(2)),
        ("raft-rs", "cluster3-inflight1") => Box::new(theirs::Cluster::new(1)),
        ("raft-rs", "cluster3-inflight256") => Box::new(theirs::Cluster::new(256)),
        _ => panic!("unknown case {imp}/{workload}"),
    }
}

fn measure() {
    let n: u64 = std::env::var("RAFT_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    println!("{:<22} {:>8} {:>12} {:>14} {:>12}", "workload", "impl", "ns/entry", "entries/s", "allocs/entry");
    for w in WORKLOADS {
        for imp in ["strata", "raft-rs"] {
            let mut s = make(imp, w);
            s.run(n / 10); // warm up
            let a0 = ALLOCS.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let done = s.run(n);
            let dt = t0.elapsed();
            let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
            let ns = dt.as_nanos() as f64 / done as f64;
            println!(
                "{w:<22} {imp:>8} {ns:>12.1} {:>14.0} {:>12.2}",
                1e9 / ns,
                allocs as f64 / done as f64
            );
        }
    }
}

fn criterion_benches(c: &mut Criterion) {
    for w in WORKLOADS {
        let mut g = c.benchmark_group(format!("raft/{w}"));
        g.throughput(Throughput::Elements(1));
        for imp in ["strata", "raft-rs"] {
            let mut s = make(imp, w);
            g.bench_function(BenchmarkId::from_parameter(imp), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    s.run(iters);
                    t0.elapsed()
                })
            });
        }
        g.finish();
    }
}

fn main() {
    match std::env::var("RAFT_BENCH_MODE").as_deref() {
        Ok("measure") => measure(),
        Ok("one") => {
            let case = std::env::var("RAFT_BENCH_CASE").expect("RAFT_BENCH_CASE=<impl>/<workload>");
            let n: u64 = std::env::var("RAFT_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
            let (imp, w) = case.split_once('/').expect("<impl>/<workload>");
            let mut s = make(imp, w);
            let done = s.run(n);
            println!("{case}: {done} entries");
        }
        _ => {
            let mut c = Criterion::default().configure_from_args();
            criterion_benches(&mut c);
            c.final_summary();
        }
    }
}
