//! A linearizability checker for client histories (Wing & Gong's search with Porcupine's
//! optimisations).
//!
//! A *history* is the list of operations clients issued against a system: what each asked
//! ([`Operation::input`]), when it was invoked ([`Operation::call`], in virtual ticks) and how it
//! ended ([`Outcome`]): a response at a known tick with a known output, or [`Outcome::Unknown`]
//! when the client never learnt (it timed out or crashed) — such an operation may or may not
//! have taken effect, at any time after its call, and is treated as returning at +∞. A history
//! is *linearizable* for a sequential [`Model`] when every operation can be given a single point
//! between its call and its return such that running the operations in that order through the
//! model yields exactly the outputs the clients saw.
//!
//! [`check`] decides this:
//! 1. **P-compositionality.** The history is split by [`Model::partition`] (the key, for
//!    [`KvModel`]); a history is linearizable iff every partition is, so each is searched alone,
//!    in key order.
//! 2. **Search** (Wing & Gong, with Lowe's and Porcupine's improvements): call and return events
//!    in one doubly linked list; the search linearizes a pending call whose model step is
//!    allowed and *lifts* it (and its return) out of the list, backtracking (*unlifting*) when it
//!    reaches a return it cannot get past. Every (set of linearized operations, model state)
//!    pair is memoized, so no configuration is explored twice.
//! 3. **Budget.** [`Limits`] bounds the steps per partition and the wall time of the whole
//!    check; a partition that runs out is reported as [`Verdict::Unknown`], never hangs.
//! 4. **Explanation.** For a failing partition the checker looks for a small failing
//!    sub-history (the shortest failing prefix in time, then greedily relaxed one operation at a
//!    time) and renders it with the longest partial linearization found and why no remaining
//!    operation can come next. See `bindings/sim/docs/checking.md`.
//!
//! Real-time order is strict: `a` precedes `b` only when `a` returned at a tick *before* `b`'s
//! call. Operations touching at the same tick are concurrent (a driver that needs a finer order
//! can use an event counter as its clock).
//!
//! ```
//! use strata_sim::lincheck::{check, KvInput, KvModel, KvOutput, Limits, Operation};
//! let model = KvModel::<u64, u64>::new();
//! let history = vec![
//!     Operation::returned(1, KvInput::Put(7, 1), 0, 10, KvOutput::Written),
//!     // Invoked after the put was acknowledged, yet reads the initial (absent) value.
//!     Operation::returned(2, KvInput::Get(7), 11, 12, KvOutput::Read(None)),
//! ];
//! let report = check(&model, &history, &Limits::default());
//! assert!(report.verdict.is_violation());
//! ```
mod explain;
pub mod gen;
mod model;
mod search;

pub use model::{KvInput, KvModel, KvOutput, Model, QueueInput, QueueModel, QueueOutput};

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Virtual time: whatever unit the driver counts in (ticks, sub-ticks, milliseconds).
pub type Tick = u64;

/// How an operation ended, as its client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// A response arrived at tick `at` carrying `output`.
    Returned {
        /// When the client received the response.
        at: Tick,
        /// What the response said.
        output: O,
    },
    /// No response (timeout, client crash): the operation may or may not have taken effect, at
    /// any time after its call. Checked as returning at +∞ with any output.
    Unknown,
}

/// One client operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (session) that issued it; only used in explanations.
    pub client: u64,
    /// When the client invoked it.
    pub call: Tick,
    /// What it asked.
    pub input: I,
    /// How it ended.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `ret` (`ret >= call`).
    pub fn returned(client: u64, input: I, call: Tick, ret: Tick, output: O) -> Self {
        Operation { client, call, input, outcome: Outcome::Returned { at: ret, output } }
    }

    /// An operation whose outcome the client never learnt.
    pub fn unknown(client: u64, input: I, call: Tick) -> Self {
        Operation { client, call, input, outcome: Outcome::Unknown }
    }

    /// The return tick (`None`: +∞).
    pub fn ret(&self) -> Option<Tick> {
        match &self.outcome {
            Outcome::Returned { at, .. } => Some(*at),
            Outcome::Unknown => None,
        }
    }

    /// The output, if known.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Unknown => None,
        }
    }
}

/// Bounds on the work of one [`check`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// Search steps allowed per partition (a step visits one list entry). Deterministic.
    pub max_steps_per_partition: u64,
    /// Wall-clock budget for the whole check, explanation included (`None`: unbounded). Not
    /// deterministic: prefer the step limit in tests that must replay exactly.
    pub max_duration: Option<Duration>,
    /// Look for a small failing sub-history and render it (costs extra searches).
    pub explain: bool,
    /// Search steps allowed for the whole explanation (past it the sub-history found so far
    /// is reported, not proven minimal). Deterministic.
    pub max_explain_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_steps_per_partition: 20_000_000, max_duration: None, explain: true, max_explain_steps: 20_000_000 }
    }
}

/// The answer of [`check`].
#[derive(Clone, Debug)]
pub enum Verdict<K> {
    /// Every partition is linearizable.
    Linearizable,
    /// This partition is not (the first failing one in key order; the others may or may not
    /// have been checked).
    NotLinearizable(Box<Violation<K>>),
    /// No violation found, but these partitions ran out of budget before an answer.
    Unknown {
        /// The undecided partitions, in key order.
        undecided: Vec<K>,
        /// What ran out.
        exhausted: Exhausted,
    },
}

impl<K> Verdict<K> {
    /// True for [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// True for [`Verdict::NotLinearizable`].
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable(_))
    }

    /// The violation, if any.
    pub fn violation(&self) -> Option<&Violation<K>> {
        match self {
            Verdict::NotLinearizable(v) => Some(v),
            _ => None,
        }
    }
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// [`Limits::max_steps_per_partition`].
    Steps,
    /// [`Limits::max_duration`].
    Time,
}

/// A failing partition, explained.
#[derive(Clone, Debug)]
pub struct Violation<K> {
    /// The partition (key) that is not linearizable.
    pub key: K,
    /// How many operations the partition holds.
    pub partition_ops: usize,
    /// Indices (into the checked history) of the operations, with their outcomes, that cannot
    /// be linearized together (with [`Violation::context`]), ordered by call. When
    /// [`Violation::minimal`] is true the set is 1-minimal: forgetting the outcome of any one of
    /// them makes the history linearizable. Without [`Limits::explain`] these are all the
    /// partition's operations with known outcomes.
    pub failing: Vec<usize>,
    /// Indices of operations taken without their outcomes (unknown ones, and known ones whose
    /// outcome did not matter) that the failing set needs: e.g. a timed-out put whose value a
    /// failing read returned. Ordered by call.
    pub context: Vec<usize>,
    /// Whether the minimization finished within the budget.
    pub minimal: bool,
    /// Indices of the longest partial linearization found for [`Violation::failing`] and
    /// [`Violation::context`], in linearization order.
    pub longest_linearization: Vec<usize>,
    /// A human-readable account (also what `Display` prints).
    pub explanation: String,
}

impl<K: fmt::Debug> fmt::Display for Violation<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explanation)
    }
}

/// Counters of one [`check`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Partitions in the history.
    pub partitions: usize,
    /// Partitions searched (the check stops at the first violation).
    pub partitions_checked: usize,
    /// Operations in the history.
    pub operations: usize,
    /// Unknown-outcome read-only operations dropped before the search (they cannot matter).
    pub pruned: usize,
    /// Search steps, all partitions (explanation excluded).
    pub steps: u64,
    /// Largest memo table of one partition.
    pub max_cache_entries: usize,
}

/// The result of [`check`].
#[derive(Clone, Debug)]
pub struct Report<K> {
    /// The answer.
    pub verdict: Verdict<K>,
    /// Counters.
    pub stats: Stats,
}

/// Checks `history` for linearizability against `model`. Deterministic for a given history
/// and step limit (the optional time limit is the only exception).
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    limits: &Limits,
) -> Report<M::Key> {
    // The clock is read only when a time limit is set (wasm32-unknown-unknown has none).
    let deadline = limits.max_duration.map(|d| Instant::now() + d);
    let mut stats = Stats { operations: history.len(), ..Stats::default() };
    let mut parts: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        if op.output().is_none() && model.read_only(&op.input) {
            stats.pruned += 1;
            continue;
        }
        parts.entry(model.partition(&op.input)).or_default().push(i);
    }
    stats.partitions = parts.len();
    let mut undecided = Vec::new();
    let mut exhausted = Exhausted::Steps;
    for (key, idx) in parts {
        stats.partitions_checked += 1;
        let events: Vec<search::Event<'_, M>> = idx.iter().map(|&i| search::Event::of(&history[i])).collect();
        let mut budget = search::Budget::new(limits.max_steps_per_partition, deadline);
        let init = model.init(&key);
        let result = search::search(model, &init, &events, &mut budget, false);
        stats.steps += budget.used;
        stats.max_cache_entries = stats.max_cache_entries.max(result.cache_entries);
        match result.answer {
            search::Answer::Linearizable => {}
            search::Answer::Exhausted(e) => {
                exhausted = e;
                undecided.push(key);
            }
            search::Answer::NotLinearizable => {
                let v = explain::explain(model, key, history, &idx, limits, deadline);
                return Report { verdict: Verdict::NotLinearizable(Box::new(v)), stats };
            }
        }
    }
    let verdict = if undecided.is_empty() { Verdict::Linearizable } else { Verdict::Unknown { undecided, exhausted } };
    Report { verdict, stats }
}
