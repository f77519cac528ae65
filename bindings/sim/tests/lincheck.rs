//! The linearizability checker: classic hand-written histories, random histories from a
//! linearizable reference (must pass), the same with injected anomalies (must fail whenever a
//! simple argument proves them non-linearizable), budgets, explanations and speed.
//!
//! Long run: `STRATA_LINCHECK_SEEDS=N` random seeds per family (default 40), and the
//! 10,000-operation check runs with `cargo test -p strata-sim --release --test lincheck -- --ignored`.
use std::time::Instant;
use strata_sim::lincheck::gen::{generate, Anomaly, GenConfig};
use strata_sim::lincheck::{
    check, Exhausted, KvInput, KvModel, KvOutput, Limits, Operation, QueueInput, QueueModel, QueueOutput, Verdict,
};

type Op = Operation<KvInput<u64, u64>, KvOutput<u64>>;

fn kv() -> KvModel<u64, u64> {
    KvModel::new()
}

fn put(client: u64, k: u64, v: u64, call: u64, ret: u64) -> Op {
    Operation::returned(client, KvInput::Put(k, v), call, ret, KvOutput::Written)
}

fn get(client: u64, k: u64, v: Option<u64>, call: u64, ret: u64) -> Op {
    Operation::returned(client, KvInput::Get(k), call, ret, KvOutput::Read(v))
}

fn cas(client: u64, k: u64, expected: Option<u64>, new: u64, call: u64, ret: u64, swapped: bool) -> Op {
    Operation::returned(client, KvInput::Cas { key: k, expected, new }, call, ret, KvOutput::Swapped(swapped))
}

fn lin(h: &[Op]) -> bool {
    let r = check(&kv(), h, &Limits::default());
    if let Some(v) = r.verdict.violation() {
        eprintln!("{v}");
    }
    assert!(!matches!(r.verdict, Verdict::Unknown { .. }), "undecided: {:?}", r.verdict);
    r.verdict.is_linearizable()
}

fn seeds() -> u64 {
    std::env::var("STRATA_LINCHECK_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40)
}

#[test]
fn sequential_history_is_linearizable() {
    let h = vec![
        put(1, 1, 10, 0, 1),
        get(2, 1, Some(10), 2, 3),
        cas(1, 1, Some(10), 11, 4, 5, true),
        cas(2, 1, Some(10), 12, 6, 7, false),
        Operation::returned(1, KvInput::Delete(1), 8, 9, KvOutput::Written),
        get(2, 1, None, 10, 11),
        cas(3, 1, None, 13, 12, 13, true),
        get(1, 1, Some(13), 14, 15),
    ];
    assert!(lin(&h));
}

#[test]
fn stale_read_after_acknowledged_write_fails() {
    let h = vec![put(1, 1, 10, 0, 5), put(1, 1, 11, 6, 9), get(2, 1, Some(10), 10, 12)];
    assert!(!lin(&h));
    let r = check(&kv(), &h, &Limits::default());
    let v = r.verdict.violation().expect("a violation");
    assert_eq!(v.key, 1);
    assert_eq!(v.failing, vec![0, 1, 2], "all three are needed");
    assert!(v.minimal);
    assert_eq!(v.longest_linearization, vec![0, 1]);
    let text = v.to_string();
    for needle in ["key 1: not linearizable", "put(1, 11) -> ok", "get(1) -> 10", "impossible here"] {
        assert!(text.contains(needle), "explanation lacks {needle:?}:\n{text}");
    }
}

#[test]
fn read_of_the_initial_value_after_a_write_fails() {
    assert!(!lin(&[put(1, 1, 10, 0, 5), get(2, 1, None, 6, 7)]));
}

#[test]
fn lost_cas_fails() {
    // Two clients CAS from absent; both are told they swapped: one of them lost.
    let h = vec![cas(1, 1, None, 1, 0, 10, true), cas(2, 1, None, 2, 1, 9, true)];
    assert!(!lin(&h));
    // Only one swapped: fine in either order.
    let h = vec![cas(1, 1, None, 1, 0, 10, true), cas(2, 1, None, 2, 1, 9, false), get(3, 1, Some(1), 11, 12)];
    assert!(lin(&h));
    // A successful CAS that a later read does not see.
    let h = vec![put(1, 1, 5, 0, 1), cas(1, 1, Some(5), 6, 2, 3, true), get(2, 1, Some(5), 4, 5)];
    assert!(!lin(&h));
}

#[test]
fn concurrent_overlapping_ops() {
    // A read overlapping a write may see either value.
    assert!(lin(&[put(1, 1, 1, 0, 1), put(1, 1, 2, 2, 10), get(2, 1, Some(1), 3, 4), get(3, 1, Some(2), 5, 6)]));
    assert!(lin(&[put(1, 1, 1, 0, 1), put(1, 1, 2, 2, 10), get(2, 1, Some(2), 3, 4)]));
    // ... but once one read saw the new value, a later read may not see the old one.
    assert!(!lin(&[put(1, 1, 1, 0, 1), put(1, 1, 2, 2, 10), get(2, 1, Some(2), 3, 4), get(3, 1, Some(1), 5, 6)]));
    // Operations touching at the same tick are concurrent.
    assert!(lin(&[put(1, 1, 1, 0, 5), get(2, 1, None, 5, 6)]));
    // Two overlapping writes and reads that order them consistently.
    assert!(lin(&[put(1, 1, 1, 0, 10), put(2, 1, 2, 0, 10), get(3, 1, Some(2), 1, 2), get(3, 1, Some(1), 3, 4)]));
    assert!(!lin(&[
        put(1, 1, 1, 0, 10),
        put(2, 1, 2, 0, 10),
        get(3, 1, Some(2), 1, 2),
        get(3, 1, Some(1), 3, 4),
        get(4, 1, Some(2), 5, 6),
    ]));
}

#[test]
fn unknown_outcomes_may_or_may_not_take_effect() {
    let timed_out = Operation::unknown(1, KvInput::Put(1, 7), 0);
    // Seen much later: it took effect late.
    assert!(lin(&[timed_out.clone(), put(2, 1, 8, 1, 2), get(3, 1, Some(7), 100, 101)]));
    // Never seen: it never took effect.
    assert!(lin(&[timed_out.clone(), get(3, 1, None, 100, 101)]));
    // But not before its call.
    assert!(!lin(&[get(3, 1, Some(7), 0, 1), Operation::unknown(1, KvInput::Put(1, 7), 5)]));
    // And only once: seen, overwritten, seen again.
    assert!(!lin(&[timed_out, get(2, 1, Some(7), 10, 11), put(2, 1, 8, 12, 13), get(2, 1, Some(7), 14, 15)]));
    // An unknown read is dropped.
    let r = check(&kv(), &[Operation::unknown(1, KvInput::Get(1), 0)], &Limits::default());
    assert!(r.verdict.is_linearizable());
    assert_eq!(r.stats.pruned, 1);
}

#[test]
fn keys_are_checked_independently() {
    let mut h = vec![];
    for k in 0..50 {
        h.push(put(k, k, k, k * 10, k * 10 + 5));
        h.push(get(k + 100, k, Some(k), k * 10 + 1, k * 10 + 8));
    }
    h.push(get(1, 33, Some(999), 1000, 1001));
    let r = check(&kv(), &h, &Limits::default());
    assert_eq!(r.stats.partitions, 50);
    let v = r.verdict.violation().expect("key 33 fails");
    assert_eq!(v.key, 33);
    assert_eq!(v.failing, vec![100]);
}

#[test]
fn step_budget_gives_unknown_not_a_hang() {
    // Many concurrent unknown writes and a read nobody wrote: exponential without memoization,
    // and more than 10 steps with it.
    let mut h: Vec<Op> = (0..12).map(|i| Operation::unknown(i, KvInput::Put(1, i), 0)).collect();
    h.push(get(99, 1, Some(1000), 1, 2));
    let limits = Limits { max_steps_per_partition: 10, ..Limits::default() };
    match check(&kv(), &h, &limits).verdict {
        Verdict::Unknown { undecided, exhausted } => {
            assert_eq!(undecided, vec![1]);
            assert_eq!(exhausted, Exhausted::Steps);
        }
        other => panic!("expected unknown, got {other:?}"),
    }
    // With the default budget the answer is definite.
    assert!(check(&kv(), &h, &Limits::default()).verdict.is_violation());
}

#[test]
fn queue_model() {
    let m = QueueModel::<u64>::new();
    let enq = |c, v, a, b| Operation::returned(c, QueueInput::Enqueue(v), a, b, QueueOutput::Enqueued);
    let deq = |c, v, a, b| Operation::returned(c, QueueInput::Dequeue, a, b, QueueOutput::Dequeued(v));
    let ok = vec![enq(1, 1, 0, 10), enq(2, 2, 0, 10), deq(3, Some(2), 11, 12), deq(3, Some(1), 13, 14), deq(3, None, 15, 16)];
    assert!(check(&m, &ok, &Limits::default()).verdict.is_linearizable());
    let bad = vec![enq(1, 1, 0, 1), enq(2, 2, 2, 3), deq(3, Some(2), 4, 5)];
    let r = check(&m, &bad, &Limits::default());
    assert!(r.verdict.is_violation(), "{:?}", r.verdict);
}

fn random_config(seed: u64) -> GenConfig {
    let mut cfg = GenConfig::new(seed, 2 + seed % 6, 1 + seed % 7, 400);
    cfg.max_latency = 1 + seed % 8;
    cfg.unknown_per_mille = seed % 40;
    cfg
}

#[test]
fn random_linearizable_histories_pass() {
    for seed in 0..seeds() {
        let g = generate(&random_config(seed));
        let r = check(&kv(), &g.history, &Limits::default());
        assert!(r.verdict.is_linearizable(), "seed {seed}: {:?}", r.verdict.violation().map(|v| v.to_string()));
    }
}

#[test]
fn generated_histories_are_deterministic() {
    let a = generate(&random_config(7));
    let b = generate(&random_config(7));
    assert_eq!(a.history, b.history);
    let (ra, rb) = (check(&kv(), &a.history, &Limits::default()), check(&kv(), &b.history, &Limits::default()));
    assert_eq!(ra.stats, rb.stats);
}

fn anomalies_fail(anomaly: Anomaly) {
    let (mut proven, mut injected, mut minimal) = (0, 0, 0);
    for seed in 0..seeds() * 2 {
        let mut cfg = random_config(seed);
        // Fewer unknown outcomes: a failing history is searched exhaustively, and each unknown
        // operation may double the configurations.
        cfg.unknown_per_mille = seed % 20;
        cfg.anomaly = Some(anomaly);
        let g = generate(&cfg);
        if g.anomaly.is_some() {
            injected += 1;
        }
        let r = check(&kv(), &g.history, &Limits::default());
        if g.surely_violates() {
            proven += 1;
            let v = r.verdict.violation().unwrap_or_else(|| panic!("seed {seed}: {anomaly:?} missed: {:?}", r.verdict));
            assert!(!v.failing.is_empty() && v.failing.len() <= v.partition_ops, "seed {seed}: {v}");
            if v.minimal {
                minimal += 1;
            }
            // The sub-history the explanation shows fails on its own (context without outcomes).
            let sub: Vec<Op> = v
                .failing
                .iter()
                .map(|&i| g.history[i].clone())
                .chain(v.context.iter().map(|&i| Operation::unknown(0, g.history[i].input.clone(), g.history[i].call)))
                .collect();
            assert!(check(&kv(), &sub, &Limits::default()).verdict.is_violation(), "seed {seed}: {v}");
        }
        // Never a false alarm on the partitions the anomaly did not touch.
        if let (Some(v), Some((at, _))) = (r.verdict.violation(), g.anomaly) {
            assert_eq!(&v.key, g.history[at].input.key(), "seed {seed}");
        }
    }
    eprintln!("{anomaly:?}: injected in {injected}, proven violations in {proven} of {} seeds, {minimal} explained 1-minimally", seeds() * 2);
    assert!(proven * 4 >= seeds() * 2, "{anomaly:?}: too few provable violations ({proven})");
}

#[test]
fn stale_reads_fail() {
    anomalies_fail(Anomaly::StaleRead);
}

#[test]
fn lost_writes_fail() {
    anomalies_fail(Anomaly::LostWrite);
}

#[test]
fn duplicate_applies_fail() {
    anomalies_fail(Anomaly::DuplicateApply);
}

fn timed(ops: usize, anomaly: Option<Anomaly>) -> (f64, usize, u64) {
    let mut cfg = GenConfig::new(42, 5, 10, ops);
    cfg.anomaly = anomaly;
    let g = generate(&cfg);
    let t = Instant::now();
    let r = check(&kv(), &g.history, &Limits::default());
    let ms = t.elapsed().as_secs_f64() * 1e3;
    match anomaly {
        None => assert!(r.verdict.is_linearizable(), "{:?}", r.verdict),
        Some(_) if g.surely_violates() => assert!(r.verdict.is_violation()),
        Some(_) => {}
    }
    eprintln!(
        "{ops} ops, 10 keys, 5 clients, anomaly {anomaly:?}: {ms:.1} ms, {} steps, verdict {}",
        r.stats.steps,
        if r.verdict.is_linearizable() { "linearizable" } else { "not linearizable" }
    );
    (ms, r.stats.partitions, r.stats.steps)
}

#[test]
fn thousand_ops_check_quickly() {
    let (_, parts, steps) = timed(1000, None);
    assert_eq!(parts, 10);
    assert!(steps < 200_000, "{steps} steps");
    timed(1000, Some(Anomaly::StaleRead));
}

#[test]
#[ignore = "long run: cargo test -p strata-sim --release --test lincheck -- --ignored"]
fn ten_thousand_ops() {
    timed(10_000, None);
    timed(10_000, Some(Anomaly::StaleRead));
    timed(10_000, Some(Anomaly::LostWrite));
}

#[test]
fn print_example_explanation() {
    // The example in docs/checking.md: run with --nocapture to see it.
    let h = vec![put(1, 5, 166, 712, 719), put(2, 5, 167, 721, 723), get(1, 5, Some(167), 725, 730), get(3, 5, Some(166), 760, 764)];
    let r = check(&kv(), &h, &Limits::default());
    let v = r.verdict.violation().expect("stale read");
    assert!(v.minimal);
    eprintln!("{v}");
}
