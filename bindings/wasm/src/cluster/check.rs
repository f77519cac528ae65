//! The live linearizability check: the user sessions' history and the workload clients',
//! split by key (the checker is P-compositional), and only keys with new operations searched
//! again on each call.
use serde::Serialize;
use std::collections::BTreeMap;
use strata_sim::cluster::client::KvOp;
use strata_sim::cluster::user::UserKvOp;
use strata_sim::lincheck::{check, KvInput, KvModel, KvOutput, Limits, Operation, Outcome, Verdict};

/// Where a history entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A user op (its id).
    User(u64),
    /// A workload client's op (its session).
    Workload(u64),
}

#[derive(Debug, Default)]
struct KeyState {
    ops: Vec<UserKvOp>,
    sources: Vec<Source>,
    checked: usize,
    verdict: Option<KeyVerdict>,
}

#[derive(Clone, Debug)]
enum KeyVerdict {
    Linearizable,
    Violation { ops: Vec<u64>, workload_ops: usize, explanation: String },
    Unknown,
}

/// The answer of [`Checker::check`] (its JSON is the page's).
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// `linearizable`, `violation` or `unknown` (the search budget ran out).
    pub verdict: &'static str,
    /// Operations in the history.
    pub ops: usize,
    /// Keys in the history.
    pub keys: usize,
    /// Keys searched by this call (the others had nothing new).
    pub keys_checked: usize,
    /// The first violation, by key.
    pub violation: Option<ViolationReport>,
}

/// A violation.
#[derive(Clone, Debug, Serialize)]
pub struct ViolationReport {
    /// The key.
    pub key: String,
    /// The user ops in the smallest failing sub-history found.
    pub ops: Vec<u64>,
    /// Workload ops in it.
    pub workload_ops: usize,
    /// The checker's explanation (multi-line).
    pub explanation: String,
}

/// Incremental checker state.
#[derive(Debug, Default)]
pub struct Checker {
    keys: BTreeMap<String, KeyState>,
    users_seen: usize,
    workload_seen: usize,
}

/// Search budget per key (deterministic; small histories need far less).
const STEPS: u64 = 2_000_000;

impl Checker {
    /// Takes in the new history entries and checks every key that has some.
    pub fn check(&mut self, users: &[UserKvOp], user_ops: &[u64], workload: &[KvOp]) -> CheckReport {
        for (op, &id) in users.iter().zip(user_ops).skip(self.users_seen) {
            let k = self.keys.entry(op.input.key().clone()).or_default();
            k.ops.push(op.clone());
            k.sources.push(Source::User(id));
        }
        self.users_seen = users.len();
        for op in workload.iter().skip(self.workload_seen) {
            let op = workload_op(op);
            let k = self.keys.entry(op.input.key().clone()).or_default();
            k.sources.push(Source::Workload(op.client));
            k.ops.push(op);
        }
        self.workload_seen = workload.len();
        let limits = Limits { max_steps_per_partition: STEPS, max_duration: None, explain: true, max_explain_steps: STEPS };
        let mut keys_checked = 0;
        for st in self.keys.values_mut() {
            if st.checked == st.ops.len() && st.verdict.is_some() {
                continue;
            }
            keys_checked += 1;
            st.checked = st.ops.len();
            let report = check(&KvModel::<String, String>::new(), &st.ops, &limits);
            st.verdict = Some(match report.verdict {
                Verdict::Linearizable => KeyVerdict::Linearizable,
                Verdict::NotLinearizable(v) => {
                    let picked: Vec<Source> = v.failing.iter().filter_map(|&i| st.sources.get(i).copied()).collect();
                    KeyVerdict::Violation {
                        ops: picked.iter().filter_map(|s| if let Source::User(id) = s { Some(*id) } else { None }).collect(),
                        workload_ops: picked.iter().filter(|s| matches!(s, Source::Workload(_))).count(),
                        explanation: v.explanation,
                    }
                }
                Verdict::Unknown { .. } => KeyVerdict::Unknown,
            });
        }
        let mut report = CheckReport {
            verdict: "linearizable",
            ops: self.keys.values().map(|k| k.ops.len()).sum(),
            keys: self.keys.len(),
            keys_checked,
            violation: None,
        };
        for (key, st) in &self.keys {
            match &st.verdict {
                Some(KeyVerdict::Violation { ops, workload_ops, explanation }) if report.violation.is_none() => {
                    report.verdict = "violation";
                    report.violation =
                        Some(ViolationReport { key: key.clone(), ops: ops.clone(), workload_ops: *workload_ops, explanation: explanation.clone() });
                }
                Some(KeyVerdict::Unknown) if report.verdict == "linearizable" => report.verdict = "unknown",
                _ => {}
            }
        }
        report
    }
}

/// A workload op with its key and values as the store holds them (`k003`, decimal values).
fn workload_op(op: &KvOp) -> UserKvOp {
    let key = |k: &u64| String::from_utf8_lossy(&strata_sim::cluster::client::encode_key(*k)).into_owned();
    let input = match &op.input {
        KvInput::Get(k) => KvInput::Get(key(k)),
        KvInput::Put(k, v) => KvInput::Put(key(k), v.to_string()),
        KvInput::Delete(k) => KvInput::Delete(key(k)),
        KvInput::Cas { key: k, expected, new } => KvInput::Cas { key: key(k), expected: expected.map(|v| v.to_string()), new: new.to_string() },
    };
    let outcome = match &op.outcome {
        Outcome::Returned { at, output } => Outcome::Returned {
            at: *at,
            output: match output {
                KvOutput::Read(v) => KvOutput::Read(v.map(|v| v.to_string())),
                KvOutput::Written => KvOutput::Written,
                KvOutput::Swapped(s) => KvOutput::Swapped(*s),
            },
        },
        Outcome::Unknown => Outcome::Unknown,
    };
    Operation { client: op.client, call: op.call, input, outcome }
}
