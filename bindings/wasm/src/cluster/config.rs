//! The demo's cluster configuration (JSON, every field optional) and the scenario actions.
use serde::{Deserialize, Serialize};
use strata_sim::cluster::{ClusterConfig, Faults};
use strata_sim::net::LinkFaults;

/// A simulated cluster's configuration as the page gives it. See `wasm-api.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Replicas, 3..=7.
    pub nodes: u64,
    /// Ms per Raft tick.
    pub tick_ms: u64,
    /// Election timeout in ticks (randomized in `[election_tick, 2·election_tick)`).
    pub election_tick: u32,
    /// Fewest ms a message is in flight.
    pub min_latency: u64,
    /// Most ms a message is in flight.
    pub max_latency: u64,
    /// Probability a message is lost.
    pub drop_rate: f64,
    /// Probability a message is delivered twice.
    pub duplicate_rate: f64,
    /// Probability a message is held back (reordered).
    pub reorder_rate: f64,
    /// Disk latency per request, ms.
    pub disk_latency_ms: u64,
    /// Extra latency of a sync, ms.
    pub sync_latency_ms: u64,
    /// The store's memtable size.
    pub memtable_bytes: usize,
    /// Store flush interval, ms.
    pub flush_interval_ms: u64,
    /// A user op attempt not answered by then is retried.
    pub attempt_timeout_ms: u64,
    /// A user op not answered by then is given up.
    pub give_up_ms: u64,
    /// Random background clients (none by default).
    pub workload: Option<Workload>,
}

/// Random background clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Client sessions.
    pub clients: u64,
    /// Operations per client.
    pub ops: u64,
    /// Keys they touch (`k000`, `k001`, …).
    pub keys: u64,
    /// Random crashes, partitions and cuts meanwhile (the tests' mix).
    pub faults: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Workload { clients: 2, ops: 200, keys: 8, faults: false }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            nodes: 3,
            tick_ms: 10,
            election_tick: 10,
            min_latency: 2,
            max_latency: 5,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            disk_latency_ms: 1,
            sync_latency_ms: 2,
            memtable_bytes: 4096,
            flush_interval_ms: 300,
            attempt_timeout_ms: 300,
            give_up_ms: 3_000,
            workload: None,
        }
    }
}

fn rate(name: &str, r: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(format!("{name} must be within 0..=1, not {r}"))
    }
}

impl DemoConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(3..=7).contains(&self.nodes) {
            return Err(format!("nodes must be 3..=7, not {}", self.nodes));
        }
        if self.seed > (1 << 53) {
            return Err("seed must be below 2^53 (a JS number)".into());
        }
        if self.tick_ms == 0 || self.tick_ms > 10_000 {
            return Err("tick_ms must be 1..=10000".into());
        }
        if !(2..=1_000).contains(&self.election_tick) {
            return Err("election_tick must be 2..=1000".into());
        }
        check_link(self.min_latency, self.max_latency, self.drop_rate, self.duplicate_rate, self.reorder_rate)?;
        if self.memtable_bytes < 512 {
            return Err("memtable_bytes must be at least 512".into());
        }
        if self.attempt_timeout_ms == 0 || self.give_up_ms < self.attempt_timeout_ms {
            return Err("need 0 < attempt_timeout_ms <= give_up_ms".into());
        }
        if let Some(w) = &self.workload {
            if w.clients > 50 || w.keys == 0 || w.keys > 1000 {
                return Err("workload: clients 0..=50, keys 1..=1000".into());
            }
        }
        Ok(())
    }

    /// The cluster world's configuration.
    pub fn cluster_config(&self) -> ClusterConfig {
        let (clients, ops) = self.workload.as_ref().map_or((0, 0), |w| (w.clients, w.ops));
        let mut c = ClusterConfig::new(self.seed, self.nodes, clients, ops);
        c.faults = if self.workload.as_ref().is_some_and(|w| w.faults) { Faults::mixed() } else { Faults::none() };
        // A node stopped by a failing disk (set by hand) restarts within half a second.
        c.faults.restart_within_ms = c.faults.restart_within_ms.max(500);
        c.link = self.link();
        c.tick_ms = self.tick_ms;
        c.election_tick = self.election_tick;
        c.disk_latency_ms = self.disk_latency_ms;
        c.sync_latency_ms = self.sync_latency_ms;
        c.memtable_bytes = self.memtable_bytes;
        c.flush_interval_ms = self.flush_interval_ms;
        c.client.keys = self.workload.as_ref().map_or(8, |w| w.keys);
        c.user.attempt_timeout_ms = self.attempt_timeout_ms;
        c.user.give_up_ms = self.give_up_ms;
        c.record_trace = false;
        c.record_events = true;
        c
    }

    fn link(&self) -> LinkFaults {
        LinkFaults {
            min_latency: self.min_latency,
            max_latency: self.max_latency,
            drop_rate: self.drop_rate,
            duplicate_rate: self.duplicate_rate,
            reorder_rate: self.reorder_rate,
            reorder_delay: self.max_latency.max(1) * 2,
        }
    }
}

/// Checks a link's settings.
pub fn check_link(min: u64, max: u64, drop: f64, dup: f64, reorder: f64) -> Result<(), String> {
    if min > max || max > 60_000 {
        return Err(format!("need min_latency <= max_latency <= 60000, got {min}..{max}"));
    }
    rate("drop_rate", drop)?;
    rate("duplicate_rate", dup)?;
    rate("reorder_rate", reorder)
}

fn yes() -> bool {
    true
}

/// Something the user did. `do` names it (the method's name); the rest are its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Action {
    Crash {
        node: u64,
        #[serde(default = "yes")]
        lose_unsynced: bool,
    },
    Restart {
        node: u64,
    },
    Partition {
        groups: Vec<Vec<u64>>,
    },
    Cut {
        from: u64,
        to: u64,
    },
    Uncut {
        from: u64,
        to: u64,
    },
    Heal,
    SetLink {
        #[serde(default)]
        min_latency: Option<u64>,
        #[serde(default)]
        max_latency: Option<u64>,
        #[serde(default)]
        drop_rate: Option<f64>,
        #[serde(default)]
        duplicate_rate: Option<f64>,
        #[serde(default)]
        reorder_rate: Option<f64>,
    },
    /// A node's disks (unset fields keep their value): extra latency per request on the
    /// store's disk and the log's, and the fraction of writes that fail.
    SetDisk {
        node: u64,
        #[serde(default)]
        store_ms: Option<u64>,
        #[serde(default)]
        log_ms: Option<u64>,
        #[serde(default)]
        error_rate: Option<f64>,
    },
    /// A new machine (empty disks, the next node id) comes up and the operator adds its node
    /// to the region: a learner first, a voter once caught up.
    AddNode,
    /// The operator removes `node` from the region, then its machine stops for good.
    RemoveNode {
        node: u64,
    },
    /// The operator asks the leader to hand leadership to `to`.
    TransferLeader {
        to: u64,
    },
    Put {
        key: String,
        value: String,
        #[serde(default)]
        node: Option<u64>,
    },
    Get {
        key: String,
        #[serde(default)]
        node: Option<u64>,
        #[serde(default, rename = "unsafe")]
        unsafe_read: bool,
    },
    Delete {
        key: String,
        #[serde(default)]
        node: Option<u64>,
    },
    Cas {
        key: String,
        #[serde(default)]
        expected: Option<String>,
        value: String,
        #[serde(default)]
        node: Option<u64>,
    },
}

/// An action and where it happened: after `step` micro-steps, at `at` ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// [`strata_sim::cluster::Cluster::steps`] when it was taken.
    pub step: u64,
    /// The time (ms).
    pub at: u64,
    /// What.
    #[serde(flatten)]
    pub action: Action,
}

/// Where a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Micro-steps.
    pub step: u64,
    /// Time (ms).
    pub at: u64,
}

/// A whole run: the configuration and the user's actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Format version (1).
    pub version: u32,
    /// The configuration.
    pub config: DemoConfig,
    /// What the user did, in order.
    pub actions: Vec<Recorded>,
    /// How far it ran.
    pub end: End,
}
