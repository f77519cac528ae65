//! Random KV histories from an in-memory reference, for testing and benchmarking checkers.
//!
//! Clients issue operations concurrently; each takes effect on a plain map at one tick between
//! its call and its return, so the history is linearizable by construction. Some operations
//! time out ([`Outcome::Unknown`]): they take effect or not, possibly long after the client
//! gave up. Every written value is unique (a counter), so a read names its writer.
//!
//! An [`Anomaly`] makes the reference misbehave once, like a buggy replicated store would. The
//! anomalous operation is recorded in [`Generated::anomaly`]; whether the resulting history is
//! *certainly* non-linearizable depends on what else happened, which
//! [`Generated::surely_violates`] decides from simple sufficient conditions (independent of the
//! checker).
use super::{KvInput, KvOutput, Operation, Outcome, Tick};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// A KV history of `u64` keys and values.
pub type KvHistory = Vec<Operation<KvInput<u64, u64>, KvOutput<u64>>>;

/// One injected misbehaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A get answers from an older version of the key.
    StaleRead,
    /// A put is acknowledged but never applied.
    LostWrite,
    /// A put (a retried request) is applied a second time, later, after other writes.
    DuplicateApply,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Seed of the run.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Distinct keys.
    pub keys: u64,
    /// Operations in the history.
    pub ops: usize,
    /// Upper bound on call→effect and effect→return delays, in ticks.
    pub max_latency: u64,
    /// Probability (per mille) that an operation's outcome is unknown.
    pub unknown_per_mille: u64,
    /// Misbehave once, at a random operation in the second half.
    pub anomaly: Option<Anomaly>,
}

impl GenConfig {
    /// `ops` operations by `clients` clients on `keys` keys; latency up to 5 ticks, 2% unknown.
    pub fn new(seed: u64, clients: u64, keys: u64, ops: usize) -> Self {
        GenConfig { seed, clients, keys, ops, max_latency: 5, unknown_per_mille: 20, anomaly: None }
    }
}

/// A generated history.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The operations, in call order.
    pub history: KvHistory,
    /// Index of the operation that misbehaved, if the anomaly was injected.
    pub anomaly: Option<(usize, Anomaly)>,
}

struct Pending {
    op: usize,
    effect: Tick,
    /// `None`: unknown outcome.
    ret: Option<Tick>,
    applied: bool,
}

/// Generates a history.
pub fn generate(cfg: &GenConfig) -> Generated {
    let mut rng = Rng::new(cfg.seed);
    let mut map: BTreeMap<u64, Vec<(Tick, Option<u64>)>> = BTreeMap::new(); // key -> versions
    let mut history: KvHistory = Vec::with_capacity(cfg.ops);
    let mut outputs: Vec<Option<KvOutput<u64>>> = Vec::with_capacity(cfg.ops);
    let mut busy_until = vec![0; cfg.clients as usize];
    let mut pending: Vec<Pending> = Vec::new();
    let mut next_value = 1u64;
    let target = cfg.ops / 2 + rng.below(cfg.ops as u64 / 2 + 1) as usize;
    let mut anomaly: Option<(usize, Anomaly)> = None;
    let mut duplicate: Option<(Tick, u64, u64)> = None; // (when, key, value)
    // After a lost write, its client reads the key back (read-your-writes makes it visible).
    let mut follow_up: Option<(usize, u64)> = None;
    let lat = cfg.max_latency.max(1);
    let mut now: Tick = 0;
    while history.len() < cfg.ops || !pending.is_empty() {
        // Start operations on idle clients.
        for (c, busy) in busy_until.iter_mut().enumerate() {
            if history.len() >= cfg.ops || *busy > now || !rng.chance(0.5) {
                continue;
            }
            let key = rng.below(cfg.keys);
            let current = map.get(&key).and_then(|v| v.last()).and_then(|v| v.1);
            let forced = (follow_up.map(|(fc, _)| fc) == Some(c)).then(|| follow_up.take()).flatten();
            let input = match rng.below(10) {
                _ if forced.is_some() => KvInput::Get(forced.map_or(key, |(_, k)| k)),
                0..=3 => KvInput::Get(key),
                4..=6 => KvInput::Put(key, take(&mut next_value)),
                7 => KvInput::Delete(key),
                _ => {
                    let expected = if rng.chance(0.6) { current } else { Some(rng.below(next_value)) };
                    KvInput::Cas { key, expected, new: take(&mut next_value) }
                }
            };
            let effect = now + rng.below(lat + 1);
            let unknown = rng.below(1000) < cfg.unknown_per_mille;
            let (effect, ret, applied) = if unknown {
                // May take effect long after the client gave up, or never.
                (effect + rng.below(20 * lat), None, rng.chance(0.5))
            } else {
                (effect, Some(effect + rng.below(lat + 1)), true)
            };
            *busy = ret.unwrap_or(now + 2 * lat) + 1;
            let op = history.len();
            history.push(Operation { client: c as u64 + 1, call: now, input, outcome: Outcome::Unknown });
            outputs.push(None);
            pending.push(Pending { op, effect, ret, applied });
        }
        // Effects due now, in start order.
        for p in pending.iter_mut().filter(|p| p.effect == now) {
            let inject = match cfg.anomaly {
                Some(a) if anomaly.is_none() && p.op >= target && p.ret.is_some() => Some(a),
                _ => None,
            };
            let input = history[p.op].input.clone();
            let versions = map.entry(*input.key()).or_default();
            let current = versions.last().and_then(|v| v.1);
            let out = match input {
                KvInput::Get(_) if inject == Some(Anomaly::StaleRead) && versions.len() >= 2 => {
                    let back = 2 + rng.below(versions.len() as u64 - 1) as usize;
                    let old = versions.get(versions.len().saturating_sub(back)).and_then(|v| v.1);
                    anomaly = Some((p.op, Anomaly::StaleRead));
                    KvOutput::Read(old)
                }
                KvInput::Get(_) => KvOutput::Read(current),
                KvInput::Put(k, v) => {
                    if inject == Some(Anomaly::LostWrite) {
                        anomaly = Some((p.op, Anomaly::LostWrite));
                        follow_up = Some((history[p.op].client as usize - 1, k));
                    } else if p.applied {
                        versions.push((now, Some(v)));
                        if inject == Some(Anomaly::DuplicateApply) {
                            anomaly = Some((p.op, Anomaly::DuplicateApply));
                            duplicate = Some((now + 3 * lat + rng.below(10 * lat), k, v));
                        }
                    }
                    KvOutput::Written
                }
                KvInput::Delete(_) => {
                    if p.applied {
                        versions.push((now, None));
                    }
                    KvOutput::Written
                }
                KvInput::Cas { expected, new, .. } => {
                    let swaps = expected == current;
                    if swaps && p.applied {
                        versions.push((now, Some(new)));
                    }
                    KvOutput::Swapped(swaps)
                }
            };
            outputs[p.op] = Some(out);
        }
        if let Some((when, k, v)) = duplicate {
            if when == now {
                map.entry(k).or_default().push((now, Some(v)));
                duplicate = None;
            }
        }
        // Returns due now.
        pending.retain(|p| {
            if p.effect > now || p.ret.is_some_and(|r| r > now) {
                return true;
            }
            if let (Some(at), Some(output)) = (p.ret, outputs[p.op].take()) {
                history[p.op].outcome = Outcome::Returned { at, output };
            }
            false
        });
        now += 1;
    }
    Generated { history, anomaly }
}

fn take(counter: &mut u64) -> u64 {
    *counter += 1;
    *counter - 1
}

impl Generated {
    /// True when a simple argument (not the checker) proves the history non-linearizable.
    ///
    /// *Overwritten read:* a completed get on key k returned value v; v's only writer W1
    /// completed before another completed write W2 on k was called, and W2 completed before the
    /// get was called. The get must see W2 or a later write, and nobody else writes v (values
    /// are unique). Stale reads, duplicate applies and lost writes (W2 being the lost put) all
    /// produce this. *Unseen write* (lost writes): a completed get called after a put W
    /// completed did not return W's value, and every other operation that may write k
    /// completed before W was called or was called after the get returned.
    pub fn surely_violates(&self) -> bool {
        let Some((at, kind)) = self.anomaly else { return false };
        let h = &self.history;
        let key = *h[at].input.key();
        let on_key: Vec<usize> = (0..h.len()).filter(|&i| *h[i].input.key() == key).collect();
        let writes: Vec<usize> = on_key.iter().copied().filter(|&i| may_write(&h[i])).collect();
        let gets: Vec<usize> =
            on_key.iter().copied().filter(|&i| matches!(h[i].input, KvInput::Get(_)) && h[i].ret().is_some()).collect();
        let overwritten_read = gets.iter().any(|&g| {
            let Some(KvOutput::Read(Some(v))) = h[g].output() else { return false };
            let Some(w1) = writes.iter().copied().find(|&w| written(&h[w]) == Some(*v)) else { return false };
            let Some(w1_ret) = h[w1].ret() else { return false };
            writes.iter().any(|&w2| {
                w2 != w1 && h[w2].output().is_some() && w1_ret < h[w2].call && h[w2].ret().is_some_and(|r| r < h[g].call)
            })
        });
        let unseen_write = kind == Anomaly::LostWrite && {
            let w_ret = h[at].ret().unwrap_or(Tick::MAX);
            let value = written(&h[at]);
            gets.iter().any(|&g| {
                h[g].call > w_ret
                    && h[g].output() != Some(&KvOutput::Read(value))
                    && writes.iter().all(|&w| {
                        w == at || h[w].call > h[g].ret().unwrap_or(Tick::MAX) || h[w].ret().is_some_and(|r| r < h[at].call)
                    })
            })
        };
        overwritten_read || unseen_write
    }
}

/// Whether `op` may have written (everything but gets and known-failed CASes).
fn may_write(op: &Operation<KvInput<u64, u64>, KvOutput<u64>>) -> bool {
    !matches!((&op.input, op.output()), (KvInput::Get(_), _) | (KvInput::Cas { .. }, Some(KvOutput::Swapped(false))))
}

/// The value `op` writes, if it writes one.
fn written(op: &Operation<KvInput<u64, u64>, KvOutput<u64>>) -> Option<u64> {
    match op.input {
        KvInput::Put(_, v) | KvInput::Cas { new: v, .. } => Some(v),
        _ => None,
    }
}
