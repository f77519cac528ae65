//! [`Sim`]: the demo's cluster in plain Rust (no JS types, so it is tested natively): the
//! cluster world, the actions a user takes (recorded with the exact point they were taken, so
//! a scenario replays to the same trace), views and the live linearizability check.
use super::check::{CheckReport, Checker};
use super::config::{check_link, Action, DemoConfig, End, Recorded, Scenario};
use serde_json::{json, Value};
use strata_sim::cluster::events::Event;
use strata_sim::cluster::inspect::KeyView;
use strata_sim::cluster::user::{UserInput, UserOp};
use strata_sim::cluster::admin::ScenarioAction;
use strata_sim::cluster::Cluster;

/// Longest key and value a user may write (bytes).
pub const MAX_KEY: usize = 1_024;
/// Longest value.
pub const MAX_VALUE: usize = 64 << 10;
/// Most machines a cluster may have, counting removed ones (node ids are never reused).
pub const MAX_MACHINES: u64 = 9;
/// Most extra latency a disk may be given (ms).
pub const MAX_DISK_MS: u64 = 60_000;
/// Most simulated ms one `run_for` call may cover.
pub const MAX_RUN_MS: u64 = 3_600_000;
/// Most micro-steps one `step` call takes looking for an event.
const MAX_QUIET_STEPS: u64 = 100_000;

/// The demo's cluster. See the module docs.
pub struct Sim {
    cfg: DemoConfig,
    /// The world.
    pub c: Cluster,
    actions: Vec<Recorded>,
    checker: Checker,
}

impl Sim {
    /// A new cluster (every node starting).
    pub fn new(cfg: DemoConfig) -> Result<Sim, String> {
        cfg.validate()?;
        let c = Cluster::new(cfg.cluster_config());
        Ok(Sim { cfg, c, actions: Vec::new(), checker: Checker::default() })
    }

    /// Replays `s`: its actions at the points they were taken, then on to its end (or only up
    /// to `until_ms`, for rewinding a timeline).
    pub fn from_scenario(s: &Scenario, until_ms: Option<u64>) -> Result<Sim, String> {
        if s.version != 1 {
            return Err(format!("unknown scenario version {}", s.version));
        }
        let limit = until_ms.unwrap_or(u64::MAX);
        let mut sim = Sim::new(s.config.clone())?;
        for (i, r) in s.actions.iter().enumerate() {
            if r.step < sim.c.steps || r.at < sim.c.now {
                return Err(format!("scenario action {i} is out of order"));
            }
            if !sim.run_to(r.step, r.at, limit) {
                return Ok(sim);
            }
            sim.apply(r.action.clone()).map_err(|e| format!("scenario action {i}: {e}"))?;
        }
        sim.run_to(s.end.step, s.end.at, limit);
        Ok(sim)
    }

    /// Runs micro-steps until `step` of them have run, then moves the clock to `at`; stops
    /// early (returning false) rather than pass `limit` ms.
    fn run_to(&mut self, step: u64, at: u64, limit: u64) -> bool {
        while self.c.steps < step {
            if !self.c.mid_instant() && self.c.next_time() > limit {
                self.c.now = self.c.now.max(limit);
                return false;
            }
            self.c.step_one();
        }
        if at > limit {
            self.c.now = self.c.now.max(limit);
            return false;
        }
        self.c.now = self.c.now.max(at);
        true
    }

    /// The configuration in effect.
    pub fn config(&self) -> &DemoConfig {
        &self.cfg
    }

    /// Runs until at least one event is recorded; returns the events.
    pub fn step(&mut self) -> Vec<Event> {
        let before = self.c.events_log.count();
        for _ in 0..MAX_QUIET_STEPS {
            self.c.step_one();
            if self.c.events_log.count() > before {
                break;
            }
        }
        self.c.events_log.since(before).cloned().collect()
    }

    /// Runs everything due up to `now + ms`, then sets the clock there. Returns the range
    /// of event numbers produced.
    pub fn run_for(&mut self, ms: u64) -> Result<(u64, u64), String> {
        if ms > MAX_RUN_MS {
            return Err(format!("run_for: at most {MAX_RUN_MS} ms per call"));
        }
        let from = self.c.events_log.count();
        let target = self.c.now + ms;
        while self.c.mid_instant() || self.c.next_time() <= target {
            self.c.step_one();
        }
        self.c.now = self.c.now.max(target);
        Ok((from, self.c.events_log.count()))
    }

    /// Runs until some node leads (at most `max_ms`); returns it.
    pub fn run_until_leader(&mut self, max_ms: u64) -> Option<u64> {
        let end = self.c.now + max_ms.min(MAX_RUN_MS);
        while self.c.leader().is_none() && (self.c.mid_instant() || self.c.next_time() <= end) {
            self.c.step_one();
        }
        if self.c.leader().is_none() {
            self.c.now = self.c.now.max(end);
        }
        self.c.leader().map(|k| k as u64 + 1)
    }

    /// The kept events numbered `i` or later (at most `max`).
    pub fn events_since(&self, i: u64, max: usize) -> Vec<&Event> {
        self.c.events_log.since(i).take(max).collect()
    }

    /// The whole state, as the page draws it.
    pub fn state(&self, log_tail: u64) -> Value {
        let nodes: Vec<_> = (0..self.c.machines.len()).map(|k| self.c.node_view(k, log_tail)).collect();
        let workload = self.cfg.workload.as_ref().map(|w| json!({ "clients": w.clients, "done": self.c.clients_done() }));
        json!({
            "now": self.c.now,
            "step": self.c.steps,
            "event_count": self.c.events_log.count(),
            "leader": self.c.leader().map(|k| k as u64 + 1),
            "nodes": nodes,
            "net": self.c.net_view(),
            "ops_count": self.c.users.ops.len(),
            "membership": self.c.membership_now(),
            "admin": self.c.admin_view(),
            "workload": workload,
        })
    }

    /// The MVCC versions of `key` on every node that is up.
    pub fn key_versions(&self, key: &str) -> Vec<KeyView> {
        self.c.key_versions(key.as_bytes())
    }

    /// User op `id`.
    pub fn op(&self, id: u64) -> Option<&UserOp> {
        self.c.users.ops.get(id as usize)
    }

    /// User ops with id `i` or later.
    pub fn ops_since(&self, i: u64) -> &[UserOp] {
        let ops = &self.c.users.ops;
        &ops[(i as usize).min(ops.len())..]
    }

    /// Checks the history so far (only keys with new operations are searched again).
    pub fn check(&mut self) -> CheckReport {
        self.checker.check(&self.c.users.history, &self.c.users.history_ops, &self.c.history)
    }

    /// The run so far as a scenario.
    pub fn scenario(&self) -> Scenario {
        Scenario { version: 1, config: self.cfg.clone(), actions: self.actions.clone(), end: End { step: self.c.steps, at: self.c.now } }
    }

    /// 16 hex digits over every event so far.
    pub fn trace_digest(&self) -> String {
        format!("{:016x}", self.c.events_log.digest())
    }

    /// Takes a user action (checked first; nothing happens if it is refused) and records it.
    /// Returns the op id of a client operation (of `add_node`: the new node's id).
    pub fn apply(&mut self, action: Action) -> Result<Option<u64>, String> {
        self.validate(&action)?;
        let rec = Recorded { step: self.c.steps, at: self.c.now, action: action.clone() };
        let k = |n: u64| (n - 1) as usize;
        let mut op = None;
        match action {
            Action::Crash { node, lose_unsynced } => self.c.crash_with(k(node), lose_unsynced),
            Action::Restart { node } => self.c.restart(k(node)),
            Action::Partition { groups } => self.c.partition(&groups),
            Action::Cut { from, to } => self.c.cut(from, to),
            Action::Uncut { from, to } => self.c.uncut(from, to),
            Action::Heal => self.c.heal(),
            Action::SetLink { min_latency, max_latency, drop_rate, duplicate_rate, reorder_rate } => {
                let mut l = self.c.cfg.link.clone();
                l.min_latency = min_latency.unwrap_or(l.min_latency);
                l.max_latency = max_latency.unwrap_or(l.max_latency);
                l.drop_rate = drop_rate.unwrap_or(l.drop_rate);
                l.duplicate_rate = duplicate_rate.unwrap_or(l.duplicate_rate);
                l.reorder_rate = reorder_rate.unwrap_or(l.reorder_rate);
                l.reorder_delay = l.max_latency.max(1) * 2;
                self.c.set_link(l);
            }
            Action::SetDisk { node, store_ms, log_ms, error_rate } => {
                let m = &self.c.machines[k(node)];
                let (store, log) = (store_ms.unwrap_or(m.slow_ms[0]), log_ms.unwrap_or(m.slow_ms[1]));
                let rate = error_rate.unwrap_or(m.write_error_rate());
                self.c.set_disk(node, store, log, rate);
            }
            Action::AddNode => {
                self.c.run_action(ScenarioAction::AddNode);
                op = Some(self.c.machines.len() as u64);
            }
            Action::RemoveNode { node } => self.c.run_action(ScenarioAction::Remove(Some(node))),
            Action::TransferLeader { to } => self.c.run_action(ScenarioAction::Transfer(Some(to))),
            Action::Put { key, value, node } => op = Some(self.c.user_op(UserInput::Put { key, value }, node)),
            Action::Get { key, node, unsafe_read } => op = Some(self.c.user_op(UserInput::Get { key, unsafe_read }, node)),
            Action::Delete { key, node } => op = Some(self.c.user_op(UserInput::Delete { key }, node)),
            Action::Cas { key, expected, value, node } => op = Some(self.c.user_op(UserInput::Cas { key, expected, new: value }, node)),
        }
        self.actions.push(rec);
        Ok(op)
    }

    fn validate(&self, action: &Action) -> Result<(), String> {
        let n = self.c.machines.len() as u64;
        let node = |x: u64| if (1..=n).contains(&x) { Ok(()) } else { Err(format!("no node {x} (nodes are 1..={n})")) };
        let in_service = |x: u64| {
            node(x)?;
            if self.c.machines[(x - 1) as usize].decommissioned {
                return Err(format!("n{x} was removed from the cluster"));
            }
            Ok(())
        };
        let key = |key: &str, value: Option<&str>| {
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(format!("keys are 1..={MAX_KEY} bytes"));
            }
            if value.is_some_and(|v| v.len() > MAX_VALUE) {
                return Err(format!("values are at most {MAX_VALUE} bytes"));
            }
            if self.cfg.workload.is_some() && key.len() == 4 && key.starts_with('k') && key[1..].bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("key {key} belongs to the random workload (k000, k001, …): choose another"));
            }
            Ok(())
        };
        let target = |t: &Option<u64>| t.map_or(Ok(()), node);
        match action {
            Action::Crash { node: x, .. } | Action::Restart { node: x } => in_service(*x),
            Action::AddNode => {
                if n >= MAX_MACHINES {
                    return Err(format!("at most {MAX_MACHINES} machines (removed ones count: node ids are never reused)"));
                }
                Ok(())
            }
            Action::RemoveNode { node: x } => {
                in_service(*x)?;
                match self.c.member_kind(*x) {
                    "voter" if self.c.voters() == [*x] => Err(format!("n{x} is the last voter")),
                    "voter" | "learner" => Ok(()),
                    kind => Err(format!("n{x} is not in the region ({kind})")),
                }
            }
            Action::TransferLeader { to } => {
                in_service(*to)?;
                match self.c.member_kind(*to) {
                    "voter" => Ok(()),
                    kind => Err(format!("only a voter can lead; n{to} is {kind}")),
                }
            }
            Action::Partition { groups } => {
                let mut seen = std::collections::BTreeSet::new();
                for &x in groups.iter().flatten() {
                    node(x)?;
                    if !seen.insert(x) {
                        return Err(format!("node {x} is in two groups"));
                    }
                }
                Ok(())
            }
            Action::Cut { from, to } | Action::Uncut { from, to } => {
                node(*from)?;
                node(*to)?;
                if from == to {
                    return Err("a link joins two different nodes".into());
                }
                Ok(())
            }
            Action::Heal => Ok(()),
            Action::SetLink { min_latency, max_latency, drop_rate, duplicate_rate, reorder_rate } => {
                let l = &self.c.cfg.link;
                check_link(
                    min_latency.unwrap_or(l.min_latency),
                    max_latency.unwrap_or(l.max_latency),
                    drop_rate.unwrap_or(l.drop_rate),
                    duplicate_rate.unwrap_or(l.duplicate_rate),
                    reorder_rate.unwrap_or(l.reorder_rate),
                )
            }
            Action::SetDisk { node: x, store_ms, log_ms, error_rate } => {
                in_service(*x)?;
                if store_ms.unwrap_or(0) > MAX_DISK_MS || log_ms.unwrap_or(0) > MAX_DISK_MS {
                    return Err(format!("disk latency is at most {MAX_DISK_MS} ms"));
                }
                match error_rate {
                    Some(r) if !(0.0..=1.0).contains(r) => Err(format!("error_rate must be in 0..=1, got {r}")),
                    _ => Ok(()),
                }
            }
            Action::Put { key: k, value, node: t } => key(k, Some(value)).and(target(t)),
            Action::Cas { key: k, value, expected, node: t } => {
                key(k, Some(value))?;
                if expected.as_ref().is_some_and(|e| e.len() > MAX_VALUE) {
                    return Err(format!("values are at most {MAX_VALUE} bytes"));
                }
                target(t)
            }
            Action::Get { key: k, node: t, .. } | Action::Delete { key: k, node: t } => key(k, None).and(target(t)),
        }
    }
}

pub mod golden;
#[cfg(test)]
mod tests;
