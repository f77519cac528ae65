//! `SimCluster`: the deterministic cluster world of `strata-sim` behind a JavaScript API, for
//! the browser demo (issue 7). The API (argument and result shapes) is documented in
//! `bindings/wasm/docs/sim-cluster.md`; the logic lives in [`sim::Sim`], which has no JS types and is
//! tested natively; this module only converts between JS values and JSON.
//!
//! Calling protocol: `new SimCluster(config)`, then any mix of time (`step`, `run_for`),
//! actions (faults, client operations — each recorded with the exact point it was taken) and
//! reads (`state`, `events_since`, `ops_since`, `check`, `scenario`, `trace_digest`). The same
//! config and the same actions at the same points give the same events, byte for byte.
pub mod check;
pub mod config;
pub mod sim;

use config::{Action, DemoConfig, Scenario};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// A simulated Strata cluster (see the module docs and `bindings/wasm/docs/sim-cluster.md`).
#[wasm_bindgen]
pub struct SimCluster {
    sim: sim::Sim,
}

fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsError> {
    let s = serde_json::to_string(v).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&s).map_err(|_| JsError::new("JSON.parse failed"))
}

/// A JS value (object, or a JSON string) as `T`.
fn from_js<T: DeserializeOwned>(v: &JsValue, what: &str) -> Result<T, JsError> {
    let text = match v.as_string() {
        Some(s) => s,
        None if v.is_undefined() || v.is_null() => "{}".to_string(),
        None => js_sys::JSON::stringify(v).map_err(|_| JsError::new(&format!("{what}: not JSON")))?.into(),
    };
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn node_arg(v: Option<js_sys::Object>) -> Result<Option<u64>, JsError> {
    let v = v.map_or(JsValue::UNDEFINED, JsValue::from);
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Opts {
        node: Option<u64>,
    }
    Ok(from_js::<Opts>(&v, "options")?.node)
}

fn int(x: f64, what: &str) -> Result<u64, JsError> {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9_007_199_254_740_992.0 {
        Ok(x as u64)
    } else {
        Err(JsError::new(&format!("{what} must be a non-negative integer, not {x}")))
    }
}

#[wasm_bindgen]
impl SimCluster {
    /// A new cluster from a config object (every field optional).
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<SimCluster, JsError> {
        let cfg: DemoConfig = from_js(&config, "config")?;
        Ok(SimCluster { sim: sim::Sim::new(cfg).map_err(|e| JsError::new(&e))? })
    }

    /// Replays a scenario (from `scenario()`), to its end or only up to `until_ms`.
    pub fn from_scenario(scenario: JsValue, until_ms: Option<f64>) -> Result<SimCluster, JsError> {
        let s: Scenario = from_js(&scenario, "scenario")?;
        let until = until_ms.map(|u| int(u, "until_ms")).transpose()?;
        Ok(SimCluster { sim: sim::Sim::from_scenario(&s, until).map_err(|e| JsError::new(&e))? })
    }

    /// The configuration in effect (every field filled).
    pub fn config(&self) -> Result<JsValue, JsError> {
        to_js(self.sim.config())
    }

    /// Simulated milliseconds.
    pub fn now(&self) -> f64 {
        self.sim.c.now as f64
    }

    /// Runs until at least one event happens: `{ now, events }`.
    pub fn step(&mut self) -> Result<JsValue, JsError> {
        let events = self.sim.step();
        to_js(&serde_json::json!({ "now": self.sim.c.now, "events": events }))
    }

    /// Runs everything due in the next `ms`: `{ now, events_from, events_to }`.
    pub fn run_for(&mut self, ms: f64) -> Result<JsValue, JsError> {
        let (from, to) = self.sim.run_for(int(ms, "ms")?).map_err(|e| JsError::new(&e))?;
        to_js(&serde_json::json!({ "now": self.sim.c.now, "events_from": from, "events_to": to }))
    }

    /// Runs until some node leads (at most `max_ms`): its id, or `null`.
    pub fn run_until_leader(&mut self, max_ms: f64) -> Result<Option<f64>, JsError> {
        Ok(self.sim.run_until_leader(int(max_ms, "max_ms")?).map(|n| n as f64))
    }

    /// The events numbered `i` or later (at most `max`, default 10,000).
    pub fn events_since(&self, i: f64, max: Option<f64>) -> Result<JsValue, JsError> {
        let max = max.map(|m| int(m, "max")).transpose()?.unwrap_or(10_000) as usize;
        to_js(&self.sim.events_since(int(i, "i")?, max))
    }

    /// The number the next event will get.
    pub fn event_count(&self) -> f64 {
        self.sim.c.events_log.count() as f64
    }

    /// Every node's state, the network and counters (`opts.log_tail`, default 64).
    pub fn state(&self, opts: Option<js_sys::Object>) -> Result<JsValue, JsError> {
        #[derive(serde::Deserialize)]
        #[serde(default)]
        struct Opts {
            log_tail: u64,
        }
        impl Default for Opts {
            fn default() -> Self {
                Opts { log_tail: 64 }
            }
        }
        let o: Opts = from_js(&opts.map_or(JsValue::UNDEFINED, JsValue::from), "options")?;
        to_js(&self.sim.state(o.log_tail))
    }

    /// The MVCC versions of `key` on every node that is up.
    pub fn key_versions(&self, key: &str) -> Result<JsValue, JsError> {
        to_js(&self.sim.key_versions(key))
    }

    /// Crashes `node` (with `lose_unsynced` false, only the process dies).
    pub fn crash(&mut self, node: f64, lose_unsynced: Option<bool>) -> Result<(), JsError> {
        self.act(Action::Crash { node: int(node, "node")?, lose_unsynced: lose_unsynced.unwrap_or(true) }).map(|_| ())
    }

    /// Restarts `node`.
    pub fn restart(&mut self, node: f64) -> Result<(), JsError> {
        self.act(Action::Restart { node: int(node, "node")? }).map(|_| ())
    }

    /// Cuts every link between the groups (`[[1, 2], [3]]`), replacing earlier cuts.
    pub fn partition(&mut self, groups: JsValue) -> Result<(), JsError> {
        let groups: Vec<Vec<u64>> = from_js(&groups, "groups")?;
        self.act(Action::Partition { groups }).map(|_| ())
    }

    /// Cuts the direction `from → to`.
    pub fn cut(&mut self, from: f64, to: f64) -> Result<(), JsError> {
        self.act(Action::Cut { from: int(from, "from")?, to: int(to, "to")? }).map(|_| ())
    }

    /// Restores the direction `from → to`.
    pub fn uncut(&mut self, from: f64, to: f64) -> Result<(), JsError> {
        self.act(Action::Uncut { from: int(from, "from")?, to: int(to, "to")? }).map(|_| ())
    }

    /// Ends every partition and cut.
    pub fn heal(&mut self) -> Result<(), JsError> {
        self.act(Action::Heal).map(|_| ())
    }

    /// Sets the links' behaviour (any of min_latency, max_latency, drop_rate, duplicate_rate,
    /// reorder_rate).
    pub fn set_link(&mut self, link: JsValue) -> Result<(), JsError> {
        let mut v: serde_json::Value = from_js(&link, "link")?;
        if let Some(o) = v.as_object_mut() {
            o.insert("do".into(), "set_link".into());
        }
        let a: Action = serde_json::from_value(v).map_err(|e| JsError::new(&format!("link: {e}")))?;
        self.act(a).map(|_| ())
    }

    /// Sets node `node`'s disks (any of `store_ms`, `log_ms`: extra latency per request;
    /// `error_rate`: the fraction of writes that fail, 0..=1). A node whose write fails stops
    /// and restarts on its disks within half a second.
    pub fn set_disk(&mut self, node: f64, disk: JsValue) -> Result<(), JsError> {
        let node = int(node, "node")?;
        let mut v: serde_json::Value = from_js(&disk, "disk")?;
        if let Some(o) = v.as_object_mut() {
            o.insert("do".into(), "set_disk".into());
            o.insert("node".into(), node.into());
        }
        let a: Action = serde_json::from_value(v).map_err(|e| JsError::new(&format!("disk: {e}")))?;
        self.act(a).map(|_| ())
    }

    /// A new machine (empty disks) comes up and the operator adds its node to the region: a
    /// learner first, promoted to voter once it has caught up. Returns the new node's id.
    pub fn add_node(&mut self) -> Result<f64, JsError> {
        self.issue(Action::AddNode)
    }

    /// The operator removes `node` from the region (through the leader, over the network);
    /// once that is done its machine stops for good.
    pub fn remove_node(&mut self, node: f64) -> Result<(), JsError> {
        self.act(Action::RemoveNode { node: int(node, "node")? }).map(|_| ())
    }

    /// The operator asks the leader to hand leadership to voter `to`.
    pub fn transfer_leader(&mut self, to: f64) -> Result<(), JsError> {
        self.act(Action::TransferLeader { to: int(to, "to")? }).map(|_| ())
    }

    /// Writes `key = value` (`opts.node`: the node asked; default any). Returns the op id.
    pub fn put(&mut self, key: String, value: String, opts: Option<js_sys::Object>) -> Result<f64, JsError> {
        let node = node_arg(opts)?;
        self.issue(Action::Put { key, value, node })
    }

    /// Reads `key` (`opts.node`; `opts.unsafe: true` = the teaching toggle). Returns the op id.
    pub fn get(&mut self, key: String, opts: Option<js_sys::Object>) -> Result<f64, JsError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Opts {
            node: Option<u64>,
            #[serde(rename = "unsafe")]
            unsafe_read: bool,
        }
        let o: Opts = from_js(&opts.map_or(JsValue::UNDEFINED, JsValue::from), "options")?;
        self.issue(Action::Get { key, node: o.node, unsafe_read: o.unsafe_read })
    }

    /// Deletes `key`. Returns the op id.
    pub fn delete(&mut self, key: String, opts: Option<js_sys::Object>) -> Result<f64, JsError> {
        let node = node_arg(opts)?;
        self.issue(Action::Delete { key, node })
    }

    /// Sets `key` to `value` if it holds `expected` (`null`: absent). Returns the op id.
    pub fn cas(&mut self, key: String, expected: Option<String>, value: String, opts: Option<js_sys::Object>) -> Result<f64, JsError> {
        let node = node_arg(opts)?;
        self.issue(Action::Cas { key, expected, value, node })
    }

    /// User op `id` (or `undefined`).
    pub fn op(&self, id: f64) -> Result<JsValue, JsError> {
        match self.sim.op(int(id, "id")?) {
            Some(op) => to_js(op),
            None => Ok(JsValue::UNDEFINED),
        }
    }

    /// User ops with id `i` or later.
    pub fn ops_since(&self, i: f64) -> Result<JsValue, JsError> {
        to_js(self.sim.ops_since(int(i, "i")?))
    }

    /// Checks the history for linearizability (incrementally).
    pub fn check(&mut self) -> Result<JsValue, JsError> {
        to_js(&self.sim.check())
    }

    /// The run so far: `{ version, config, actions, end }`.
    pub fn scenario(&self) -> Result<JsValue, JsError> {
        to_js(&self.sim.scenario())
    }

    /// 16 hex digits over every event so far.
    pub fn trace_digest(&self) -> String {
        self.sim.trace_digest()
    }

    /// The run so far as a golden transcript test for `tests/testdata/demo/` (replayed from
    /// the seed to fill in every output; see `cluster::sim::golden`).
    pub fn golden(&self) -> Result<String, JsError> {
        self.sim.golden().map_err(|e| JsError::new(&e))
    }
}

impl SimCluster {
    fn act(&mut self, a: Action) -> Result<Option<u64>, JsError> {
        self.sim.apply(a).map_err(|e| JsError::new(&e))
    }

    fn issue(&mut self, a: Action) -> Result<f64, JsError> {
        Ok(self.act(a)?.unwrap_or(0) as f64)
    }
}
