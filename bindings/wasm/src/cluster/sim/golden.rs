//! A demo run as a golden transcript test: the page's "Export golden test" writes one, and
//! `tests/tests/demo_golden.rs` replays every one in `tests/testdata/demo/` (the transcript
//! format of [`strata_sim::golden`]: a command, `----`, its output, a blank line).
//!
//! Commands (what [`Sim::golden`] writes; a file can be edited by hand):
//! * `config {json}` — a new cluster with that demo configuration (every node starting)
//! * `run step=S at=MS` — run until `S` micro-steps have been taken, then move the clock to `MS`
//! * `do {json}` — take a user action (crash, partition, put, …; the scenario's JSON)
//! * `check` — the history's linearizability verdict and the trace digest
//!
//! Each output is the story since the previous command: role and leader changes, crashes,
//! restarts and recoveries, fault changes, flushes, compactions and snapshots, the user's calls
//! and their answers — one line each, as the page's trace shows them — then a count of the
//! messages sent and dropped and each node's applied index. Message traffic itself is counted,
//! not listed, so a transcript reads like the story it is.
use super::Sim;
use crate::cluster::config::{Action, DemoConfig, Scenario};
use std::collections::BTreeMap;
use std::fmt::Write;
use strata_sim::cluster::events::EventKind;

/// Replays a transcript's commands. See the module docs.
#[derive(Default)]
pub struct GoldenWorld {
    sim: Option<Sim>,
    /// The first event not yet told.
    told: u64,
}

/// Events told between two commands at most (a longer stretch is cut short, saying so).
const MAX_LINES: usize = 2_000;

impl GoldenWorld {
    /// Runs one command line and returns its output.
    pub fn run(&mut self, line: &str) -> Result<String, String> {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        match cmd {
            "config" => {
                let cfg: DemoConfig = serde_json::from_str(rest).map_err(|e| format!("config: {e}"))?;
                self.sim = Some(Sim::new(cfg)?);
                self.told = 0;
                Ok(self.story())
            }
            "run" => {
                let (mut step, mut at) = (None, None);
                for word in rest.split_whitespace() {
                    let (k, v) = word.split_once('=').ok_or_else(|| format!("run: `{word}` is not key=value"))?;
                    let v: u64 = v.parse().map_err(|e| format!("run: {k}: {e}"))?;
                    match k {
                        "step" => step = Some(v),
                        "at" => at = Some(v),
                        _ => return Err(format!("run: unknown `{k}` (step=, at=)")),
                    }
                }
                let (step, at) = (step.ok_or("run: step= is missing")?, at.ok_or("run: at= is missing")?);
                let sim = self.sim()?;
                if step < sim.c.steps || at < sim.c.now {
                    return Err(format!("run: already at step {} and {} ms", sim.c.steps, sim.c.now));
                }
                sim.run_to(step, at, u64::MAX);
                Ok(self.story())
            }
            "do" => {
                let action: Action = serde_json::from_str(rest).map_err(|e| format!("do: {e}"))?;
                let op = self.sim()?.apply(action)?;
                let mut out = op.map_or(String::new(), |op| format!("op {op}\n"));
                out += &self.story();
                Ok(out)
            }
            "check" => {
                let sim = self.sim()?;
                let r = sim.check();
                let mut out = format!("{}: {} operations on {} keys\n", r.verdict, r.ops, r.keys);
                if let Some(v) = &r.violation {
                    let _ = writeln!(out, "key {}, user ops {:?}, {} workload ops", v.key, v.ops, v.workload_ops);
                    // A blank line would end the block.
                    for l in v.explanation.lines().filter(|l| !l.trim().is_empty()) {
                        let _ = writeln!(out, "{l}");
                    }
                }
                let _ = writeln!(out, "digest {}", sim.trace_digest());
                Ok(out)
            }
            _ => Err(format!("unknown command `{cmd}` (config, run, do, check)")),
        }
    }

    fn sim(&mut self) -> Result<&mut Sim, String> {
        self.sim.as_mut().ok_or_else(|| "no cluster yet: `config {…}` first".to_string())
    }

    /// The events since the last story, told; then the message count and applied indexes.
    fn story(&mut self) -> String {
        let Some(sim) = self.sim.as_ref() else { return String::new() };
        let log = &sim.c.events_log;
        let mut out = String::new();
        let first_kept = log.since(0).next().map_or(log.count(), |e| e.i);
        if first_kept > self.told {
            let _ = writeln!(out, "({} events not kept)", first_kept - self.told);
        }
        let (mut sent, mut dropped, mut lines) = (0u64, 0u64, 0usize);
        let mut applied = BTreeMap::new();
        for e in log.since(self.told) {
            match &e.kind {
                EventKind::Send { .. } => sent += 1,
                EventKind::Drop { .. } => dropped += 1,
                EventKind::Applied { node, index } => {
                    applied.insert(*node, *index);
                }
                EventKind::Deliver { .. } | EventKind::Persist { .. } | EventKind::Synced { .. } | EventKind::LogCompacted { .. } => {}
                _ => {
                    lines += 1;
                    if lines <= MAX_LINES {
                        // One line each (a user's value may hold line breaks).
                        let _ = writeln!(out, "{}", e.text.replace('\n', "\\n"));
                    }
                }
            }
        }
        if lines > MAX_LINES {
            let _ = writeln!(out, "(and {} more)", lines - MAX_LINES);
        }
        if sent + dropped > 0 || !applied.is_empty() {
            let _ = write!(out, "· {sent} messages sent, {dropped} dropped");
            if !applied.is_empty() {
                let nodes: Vec<String> = applied.iter().map(|(n, i)| format!("n{n} {i}")).collect();
                let _ = write!(out, "; applied: {}", nodes.join(", "));
            }
            out.push('\n');
        }
        self.told = log.count();
        out
    }
}

impl Sim {
    /// This run as a golden transcript (see the module docs): the scenario's configuration,
    /// each action with the run before it, a final run and `check`, every output filled in by
    /// replaying the scenario from its seed.
    pub fn golden(&self) -> Result<String, String> {
        golden_of(&self.scenario())
    }
}

/// `s` as a golden transcript. See [`Sim::golden`].
pub fn golden_of(s: &Scenario) -> Result<String, String> {
    if s.version != 1 {
        return Err(format!("unknown scenario version {}", s.version));
    }
    let mut lines = vec![format!("config {}", json(&s.config)?)];
    for r in &s.actions {
        lines.push(format!("run step={} at={}", r.step, r.at));
        lines.push(format!("do {}", json(&r.action)?));
    }
    lines.push(format!("run step={} at={}", s.end.step, s.end.at));
    lines.push("check".to_string());
    let mut world = GoldenWorld::default();
    let mut out = format!(
        "# A run of the Strata demo (seed {}, {} nodes), exported as a golden transcript.\n\
         # Copy it into tests/testdata/demo/; `cargo test -p strata-tests --test demo_golden` replays it\n\
         # (REWRITE=1 rewrites the outputs: review the diff).\n\n",
        s.config.seed, s.config.nodes
    );
    for line in lines {
        let actual = match world.run(&line) {
            Ok(o) if o.is_empty() => "ok\n".to_string(),
            Ok(o) => o,
            Err(e) => return Err(format!("`{line}`: {e}")),
        };
        let _ = write!(out, "{line}\n----\n{actual}\n");
    }
    // As `REWRITE=1` leaves a file: one newline at the end.
    Ok(out.trim_end().to_string() + "\n")
}

/// One line of JSON.
fn json<T: serde::Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}
