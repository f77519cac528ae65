//! The cluster world: N replicated nodes ([`strata_engine::node::Node`]), each with two
//! [`SimDisk`]s (store and Raft log), a [`SimNet`] between them and their clients, and a
//! fault schedule — all seeded, so a run replays exactly from its seed.
//!
//! Time is in milliseconds and event driven: the world jumps to the next thing due (a message,
//! a disk completion, a node deadline, a client timer, a fault). Disk requests complete after
//! a latency, in order per disk; a crash drops what has not completed and loses every unsynced
//! byte (a torn tail may survive), and a restart opens the node again on the same disks with a
//! new Raft seed. Clients ([`client::Client`]) record a history for [`crate::lincheck`].
//!
//! With [`ClusterConfig::record_trace`] every message, persistence, apply and fault becomes
//! one line of [`Cluster::trace`], e.g. `1520 n2 -> n1 Append i7..i8 c6`.
//!
//! **Interactive use** (the browser demo, `bindings/wasm`): [`Cluster::step_one`] handles one
//! thing at a time (a run of them does exactly what [`Cluster::step`] does), the structured
//! event log ([`events`], with [`ClusterConfig::record_events`]) records sends, deliveries,
//! drops, persistence, applies, role changes and user operations for a viewer, user sessions
//! ([`user`]) issue operations one by one against a chosen node or any, faults are set by hand
//! (`partition`, `cut`, `heal`, `set_link`, [`Cluster::crash_with`]), and [`inspect`] shows
//! each node's state down to its store.
pub mod admin;
pub mod bank;
pub mod client;
mod drive;
pub mod events;
pub mod inspect;
mod interact;
pub mod trace;
pub mod user;

use crate::disk::SimDisk;
use crate::lincheck::{check, KvInput, KvModel, KvOutput, Limits, Operation, Outcome, Verdict};
use crate::net::{LinkFaults, SimNet};
use crate::rng::Rng;
use client::{Client, ClientConfig, KvOp};
use events::EventLog;
use user::{UserConfig, Users};
use std::collections::BTreeMap;
use strata_engine::lsm::config::Config as StoreConfig;
use strata_engine::lsm::io::{IoId, IoRequest};
use strata_engine::lsm::job::Job;
use strata_engine::node::io::Disk;
use strata_engine::node::wire::{ClientError, ClientOp, ClientReply, ClientRequest, Consistency, Epoch, RegionId};
use strata_engine::node::{Node, NodeConfig};
use strata_engine::node::raftlog::LogConfig;
use strata_raft::NodeId;

/// What travels on the network.
#[derive(Clone, Debug)]
pub enum Packet {
    /// Between peers: an encoded `PeerMessage`.
    Peer(Vec<u8>),
    /// Client → node: an encoded `ClientMessage`.
    Request(Vec<u8>),
    /// Node → client: an encoded `ClientResponse`.
    Response(Vec<u8>),
}

/// How often faults strike (each a probability per fault interval).
#[derive(Clone, Debug)]
pub struct Faults {
    /// Ms between fault decisions.
    pub interval_ms: u64,
    /// A random node crashes (loses unsynced data).
    pub crash: f64,
    /// A down node is restarted after this many ms at most.
    pub restart_within_ms: u64,
    /// The nodes are split in two groups.
    pub partition: f64,
    /// One direction between two nodes is cut.
    pub cut: f64,
    /// Every partition and cut heals, and every disk fault ends.
    pub heal: f64,
    /// A random disk (store or log) of a random node becomes slow: every request takes up to
    /// `slow_ms` more (until the next heal).
    pub slow_disk: f64,
    /// The most extra latency of a slow disk, ms.
    pub slow_ms: u64,
    /// A random disk of a random node starts failing writes and syncs with probability
    /// `error_rate` each (until the next heal). A node whose log write fails stops (answers
    /// `Unavailable`) and is restarted on its disks after up to `restart_within_ms`.
    pub disk_errors: f64,
    /// The failure probability of each write or sync on a failing disk.
    pub error_rate: f64,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults { interval_ms: 100, crash: 0.0, restart_within_ms: 0, partition: 0.0, cut: 0.0, heal: 0.0, slow_disk: 0.0, slow_ms: 0, disk_errors: 0.0, error_rate: 0.0 }
    }

    /// A mix of everything.
    pub fn mixed() -> Faults {
        Faults {
            interval_ms: 100,
            crash: 0.03,
            restart_within_ms: 1_000,
            partition: 0.04,
            cut: 0.04,
            heal: 0.15,
            slow_disk: 0.0,
            slow_ms: 0,
            disk_errors: 0.0,
            error_rate: 0.0,
        }
    }

    /// [`Faults::mixed`] plus slow disks (up to 50 ms more per request) and failing disks
    /// (writes and syncs fail with probability 0.05 until the next heal).
    pub fn mixed_with_disks() -> Faults {
        Faults { slow_disk: 0.03, slow_ms: 50, disk_errors: 0.02, error_rate: 0.05, ..Faults::mixed() }
    }
}

/// A cluster run's parameters.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Replicas.
    pub nodes: u64,
    /// Client sessions.
    pub clients: u64,
    /// Operations per client.
    pub ops_per_client: u64,
    /// Client behaviour.
    pub client: ClientConfig,
    /// The bank workload's clients (none by default), beside the KV clients.
    pub bank: Option<bank::BankConfig>,
    /// Every link's behaviour (latency in ms, drops, duplicates, reordering).
    pub link: LinkFaults,
    /// Faults while the clients run.
    pub faults: Faults,
    /// Disk latency per request, in ms, drawn from `0..=disk_latency_ms`.
    pub disk_latency_ms: u64,
    /// A sync takes this many ms more (drawn from `sync_latency_ms..=2·sync_latency_ms`):
    /// fsync dominates a write's cost, which is what makes group commit pay.
    pub sync_latency_ms: u64,
    /// Ms per Raft tick.
    pub tick_ms: u64,
    /// Raft's election timeout in ticks.
    pub election_tick: u32,
    /// The store's memtable size (small: flushes and SST reads happen in short runs).
    pub memtable_bytes: usize,
    /// Store flush interval.
    pub flush_interval_ms: u64,
    /// Log entries kept behind the store's durable mark.
    pub log_keep_entries: u64,
    /// Raft log segment size.
    pub segment_bytes: u64,
    /// Largest snapshot chunk (small: a snapshot travels in many chunks).
    pub snapshot_chunk_bytes: u64,
    /// Keep a readable trace of the run.
    pub record_trace: bool,
    /// Keep the structured event log ([`Cluster::events`]).
    pub record_events: bool,
    /// How user sessions time out and retry.
    pub user: UserConfig,
    /// Check every node's invariants after each input (slower).
    pub check_invariants: bool,
}

impl ClusterConfig {
    /// `nodes` replicas and `clients` sessions of `ops` operations each, mixed faults.
    pub fn new(seed: u64, nodes: u64, clients: u64, ops: u64) -> ClusterConfig {
        ClusterConfig {
            seed,
            nodes,
            clients,
            ops_per_client: ops,
            client: ClientConfig::default(),
            bank: None,
            link: LinkFaults { min_latency: 1, max_latency: 4, drop_rate: 0.02, duplicate_rate: 0.01, reorder_rate: 0.02, reorder_delay: 10 },
            faults: Faults::mixed(),
            disk_latency_ms: 1,
            sync_latency_ms: 2,
            tick_ms: 10,
            election_tick: 10,
            memtable_bytes: 16 << 10,
            flush_interval_ms: 300,
            log_keep_entries: 100_000,
            segment_bytes: 64 << 10,
            snapshot_chunk_bytes: 16 << 10,
            record_trace: false,
            record_events: false,
            user: UserConfig::default(),
            check_invariants: true,
        }
    }
}

/// Where [`Cluster::step_one`] is within the current instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between instants.
    Idle,
    /// Disk completions, jobs and restarts due.
    Events,
    /// Messages due.
    Net,
    /// Node timers, from this node index on.
    Nodes(usize),
    /// Workload clients' timers, from this index on.
    Clients(usize),
    /// Bank clients' timers, from this index on.
    Bank(usize),
    /// User sessions' timers.
    Users,
    /// The operator's timer.
    Operator,
}

/// Something scheduled.
#[derive(Debug)]
enum Ev {
    Io { node: usize, incarnation: u64, id: IoId, disk: Disk, req: IoRequest },
    Job { node: usize, incarnation: u64, job: Box<Job> },
    Restart { node: usize },
    /// Restart a node that stopped on a storage failure (if it is still that incarnation).
    Recover { node: usize, incarnation: u64 },
    /// A membership action ([`admin::ScenarioAction`]).
    Scenario(admin::ScenarioAction),
}

/// One machine: the node (when up), its disks and the client requests it holds.
#[derive(Debug)]
pub struct Machine {
    /// The node, when it is up.
    pub node: Option<Node>,
    /// Starts so far (its Raft seed changes with each).
    pub incarnation: u64,
    /// The store's disk.
    pub store_disk: SimDisk,
    /// The Raft log's disk.
    pub log_disk: SimDisk,
    /// When each disk (store, log) finishes its queued requests.
    busy_until: [u64; 2],
    /// Extra latency of each disk (store, log) while it is slow, ms.
    pub slow_ms: [u64; 2],
    /// Times the node stopped on a storage failure.
    pub failures: u64,
    /// Node request id → (client address, client's message id).
    requests: BTreeMap<u64, (u64, u64)>,
    next_request: u64,
    /// Crashes so far.
    pub crashes: u64,
    /// Files the store's jobs wrote (each one synced: a flush or compaction output).
    pub job_files: u64,
    /// Stopped for good after its removal from the region ([`Cluster::decommission`]).
    pub decommissioned: bool,
}

impl Machine {
    /// Machine of node `id` (from 1), down, with empty disks seeded from `seed`.
    fn new(seed: u64, id: u64) -> Machine {
        Machine {
            node: None,
            incarnation: 0,
            store_disk: SimDisk::new(seed ^ (id << 8)),
            log_disk: SimDisk::new(seed ^ (id << 8) ^ 1),
            busy_until: [0; 2],
            slow_ms: [0; 2],
            failures: 0,
            requests: BTreeMap::new(),
            next_request: 1,
            crashes: 0,
            job_files: 0,
            decommissioned: false,
        }
    }
}

impl Machine {
    /// The fraction of writes that fail on its disks (the larger of the two disks').
    pub fn write_error_rate(&self) -> f64 {
        self.store_disk.faults.write_error_rate.max(self.log_disk.faults.write_error_rate)
    }
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions and cuts injected.
    pub partitions: u64,
    /// Peer messages that reached a node still recovering (dropped; Raft copes). Any other
    /// refusal stops the run: nodes only send well-formed messages.
    pub refused_messages: u64,
    /// Client operations completed with an answer.
    pub answered: u64,
    /// Slow disks and failing disks injected.
    pub disk_faults: u64,
    /// Nodes stopped by a storage failure (and restarted).
    pub node_failures: u64,
    /// Failing disks set by hand ([`Cluster::set_disk`]).
    pub disk_errors_by_hand: u64,
    /// Snapshots installed by followers.
    pub snapshots_installed: u64,
}

/// The world. See the module docs.
pub struct Cluster {
    /// Its configuration.
    pub cfg: ClusterConfig,
    /// Virtual time (ms).
    pub now: u64,
    rng: Rng,
    /// The machines (node `k + 1` at index `k`).
    pub machines: Vec<Machine>,
    /// The network (nodes `1..=n`, clients `1001..`).
    pub net: SimNet<Packet>,
    events: BTreeMap<(u64, u64), Ev>,
    next_event: u64,
    /// The clients.
    pub clients: Vec<Client>,
    /// Every client operation so far.
    pub history: Vec<KvOp>,
    /// The bank clients (see [`ClusterConfig::bank`]).
    pub bank_clients: Vec<bank::BankClient>,
    /// Every bank transaction so far, for [`crate::txncheck`].
    pub bank_history: Vec<crate::txncheck::Txn>,
    /// Faults are injected until this time (`None`: while clients run).
    pub faults_until: Option<u64>,
    next_fault_at: u64,
    /// The readable trace (when recorded).
    pub trace: Vec<String>,
    /// Answers to [`Cluster::probe`] requests: probe id → (time, answer).
    pub probe_replies: BTreeMap<u64, (u64, Result<ClientReply, ClientError>)>,
    next_probe: u64,
    /// Counters.
    pub stats: ClusterStats,
    /// The structured event log (with [`ClusterConfig::record_events`]).
    pub events_log: EventLog,
    /// User sessions and their operations.
    pub users: Users,
    /// [`Cluster::step_one`] calls so far.
    pub steps: u64,
    phase: Phase,
    /// Each node's last recorded (role, term), for role events.
    roles: Vec<(Option<String>, u64)>,
    /// The operator sending admin requests ([`admin`]).
    pub operator: admin::Operator,
}

/// The address replies to [`Cluster::probe`] requests are routed to.
pub const PROBE_ADDR: u64 = 0;

/// The network address of client `k`.
pub const CLIENT_BASE: u64 = 1_000;

/// The network address (and session id) of bank client `k` is `BANK_BASE + k`.
pub const BANK_BASE: u64 = 100_000;

impl Cluster {
    /// A cluster whose nodes are all starting.
    pub fn new(cfg: ClusterConfig) -> Cluster {
        let mut rng = Rng::new(cfg.seed);
        let bank_clients = cfg.bank.as_ref().map_or(0, |b| b.clients);
        let addrs: Vec<u64> =
            (1..=cfg.nodes).chain((1..=cfg.clients).map(|c| CLIENT_BASE + c)).chain((1..=bank_clients).map(|c| BANK_BASE + c)).collect();
        let net = SimNet::new(rng.next_u64(), addrs, cfg.link.clone()).with_describer(trace::describe_packet);
        let machines = (1..=cfg.nodes).map(|k| Machine::new(cfg.seed, k)).collect();
        let clients = (1..=cfg.clients).map(|c| Client::new(CLIENT_BASE + c, c, cfg.ops_per_client, cfg.client.keys)).collect();
        let mut c = Cluster {
            now: 0,
            rng,
            machines,
            net,
            events: BTreeMap::new(),
            next_event: 0,
            clients,
            history: Vec::new(),
            bank_clients: cfg
                .bank
                .as_ref()
                .map_or(Vec::new(), |b| (1..=b.clients).map(|c| bank::BankClient::new(BANK_BASE + c, BANK_BASE + c, b.txns_per_client)).collect()),
            bank_history: Vec::new(),
            faults_until: None,
            next_fault_at: cfg.faults.interval_ms,
            trace: Vec::new(),
            probe_replies: BTreeMap::new(),
            next_probe: 1,
            stats: ClusterStats::default(),
            events_log: EventLog::default(),
            users: Users::new(cfg.seed, cfg.user.clone()),
            steps: 0,
            phase: Phase::Idle,
            roles: vec![(None, 0); cfg.nodes as usize],
            operator: admin::Operator::default(),
            cfg,
        };
        c.net.record_trace = c.cfg.record_events;
        for k in 0..c.machines.len() {
            c.start(k);
        }
        c
    }

    /// The configuration node `k` (index) starts with at its current incarnation.
    pub fn node_config(&self, k: usize) -> NodeConfig {
        let ids: Vec<NodeId> = (1..=self.cfg.nodes).map(NodeId).collect();
        let m = &self.machines[k];
        let seed = self.cfg.seed.rotate_left(17) ^ ((k as u64 + 1) << 40) ^ m.incarnation;
        let mut nc = NodeConfig::new(NodeId(k as u64 + 1), ids, seed);
        nc.raft.election_tick = self.cfg.election_tick;
        nc.raft.snapshot_chunk_bytes = self.cfg.snapshot_chunk_bytes;
        nc.tick_ms = self.cfg.tick_ms;
        nc.request_timeout_ms = self.cfg.client.attempt_timeout_ms * 3;
        nc.flush_interval_ms = self.cfg.flush_interval_ms;
        nc.log_keep_entries = self.cfg.log_keep_entries;
        nc.store = StoreConfig { memtable_bytes: self.cfg.memtable_bytes, block_cache_bytes: 1 << 20, ..StoreConfig::default() };
        nc.log = LogConfig { segment_bytes: self.cfg.segment_bytes };
        nc.block_cache_bytes = 1 << 20;
        nc
    }

    /// The index of the current leader with the highest term, if any node leads.
    pub fn leader(&self) -> Option<usize> {
        self.machines
            .iter()
            .enumerate()
            .filter_map(|(k, m)| m.node.as_ref().filter(|n| n.is_leader()).map(|n| (n.raft().map_or(0, |r| r.term().0), k)))
            .max()
            .map(|(_, k)| k)
    }

    /// True when every client has finished.
    pub fn clients_done(&self) -> bool {
        self.clients.iter().all(Client::is_done) && self.bank_clients.iter().all(bank::BankClient::is_done)
    }

    /// Runs until the clients are done (faults meanwhile), then heals everything, restarts
    /// every node and lets the cluster settle for `settle_ms`. Panics (with the seed) if the
    /// clients do not finish within `max_ms`.
    pub fn run_workload(&mut self, max_ms: u64, settle_ms: u64) {
        while !self.clients_done() {
            assert!(self.now < max_ms, "seed {}: clients not done after {max_ms} ms", self.cfg.seed);
            self.step();
        }
        self.heal_all();
        let end = self.now + settle_ms;
        while self.now < end {
            self.step();
        }
    }

    /// Ends every fault: heals the network and restarts every down node.
    pub fn heal_all(&mut self) {
        self.faults_until = Some(self.now);
        self.net.heal(self.now);
        self.log_fault(format!("{} heal all", self.now));
        self.end_disk_faults();
        for k in 0..self.machines.len() {
            let failed = self.machines[k].node.as_ref().is_some_and(|n| n.failure().is_some());
            if failed {
                self.machines[k].node = None;
            }
            if self.machines[k].node.is_none() && !self.machines[k].decommissioned {
                self.start(k);
            }
        }
    }

    /// Reads every key linearizably at the leader and adds the reads to the history (client
    /// 0), so a lost acknowledged write shows up as a violation even if no client read its key
    /// afterwards. Call after [`Cluster::run_workload`].
    pub fn read_every_key(&mut self) {
        for key in 0..self.cfg.client.keys {
            let deadline = self.now + 10_000;
            loop {
                assert!(self.now < deadline, "seed {}: final read of key {key} not answered", self.cfg.seed);
                let Some(k) = self.leader() else {
                    self.step();
                    continue;
                };
                let call = self.now;
                let op = ClientOp::Read { key: client::encode_key(key), consistency: Consistency::Linearizable };
                let Some(p) = self.probe(k, ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op }) else { continue };
                while !self.probe_replies.contains_key(&p) && self.now < deadline {
                    self.step();
                }
                if let Some((at, Ok(ClientReply::Value { value, .. }))) = self.probe_replies.remove(&p) {
                    let output = KvOutput::Read(value.map(|v| client::decode_value(&v)));
                    self.history.push(Operation { client: 0, call, input: KvInput::Get(key), outcome: Outcome::Returned { at, output } });
                    break;
                }
            }
        }
    }

    /// Checks the history for linearizability; the failure message names the seed.
    pub fn check_linearizable(&self) {
        let report = check(&KvModel::<u64, u64>::new(), &self.history, &Limits::default());
        match &report.verdict {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable(v) => panic!("seed {}: history not linearizable:\n{v}", self.cfg.seed),
            Verdict::Unknown { undecided, .. } => panic!("seed {}: linearizability undecided for keys {undecided:?}", self.cfg.seed),
        }
    }

    /// `(applied index, data digest)` of every node that is up.
    pub fn digests(&mut self) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        for (k, m) in self.machines.iter_mut().enumerate() {
            if let Some(n) = &m.node {
                out.push((k as u64 + 1, n.applied().0, trace::data_digest(n, &mut m.store_disk)));
            }
        }
        out
    }

    /// Fsyncs of node `k` (index) so far: `(Raft log syncs, store syncs + files written by
    /// store jobs)`.
    pub fn fsyncs(&self, k: usize) -> (u64, u64) {
        let m = &self.machines[k];
        (m.log_disk.stats.syncs, m.store_disk.stats.syncs + m.job_files)
    }

    /// Checks that every node in service (not decommissioned) is up, has applied the same
    /// entries and holds the same data.
    pub fn check_replicas_identical(&mut self) {
        let d = self.digests();
        let in_service = self.machines.iter().filter(|m| !m.decommissioned).count();
        assert_eq!(d.len(), in_service, "seed {}: not every node is up: {d:?}", self.cfg.seed);
        assert!(d.windows(2).all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2), "seed {}: replicas differ (node, applied, digest): {d:?}", self.cfg.seed);
    }

    /// Submits `request` straight to node `k` (index), bypassing the network, as a test
    /// probe; its answer lands in [`Cluster::probe_replies`] under the returned id. `None` if
    /// the node is down.
    pub fn probe(&mut self, k: usize, request: ClientRequest) -> Option<u64> {
        let probe = self.next_probe;
        self.next_probe += 1;
        let now = self.now;
        let m = &mut self.machines[k];
        let n = m.node.as_mut()?;
        let rid = m.next_request;
        m.next_request += 1;
        m.requests.insert(rid, (PROBE_ADDR, probe));
        n.submit(now, rid, request);
        self.drain(k);
        Some(probe)
    }

    fn log_line(&mut self, line: String) {
        if self.cfg.record_trace {
            self.trace.push(line);
        }
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.next_event += 1;
        self.events.insert((at, self.next_event), ev);
    }
}
