//! Turning a failing partition into an explanation: a small failing sub-history, the longest
//! partial linearization of it, and why nothing can come next.
//!
//! Two facts make the shrinking sound (H is a non-linearizable history):
//! - Removing an unknown-outcome operation from H keeps it non-linearizable (a linearization
//!   without it is one of H where it never took effect).
//! - The *relaxed prefix at t* — operations returned by t keep their outcomes, operations called
//!   by t but returned later become unknown, later ones are dropped — is linearizable whenever H
//!   is (restrict H's linearization). So failure is monotone in t: binary search finds the
//!   earliest failing t.
//!
//! Then each remaining operation in turn is relaxed to an unknown outcome; if the history still
//! fails, the operation is dropped for good (by the first fact). What is left is 1-minimal.
use super::search::{search, Answer, Budget, Event};
use super::{Model, Operation, Tick, Violation};
use std::cell::Cell;
use std::fmt::Write as _;
use std::time::Instant;

/// Explains why partition `key` (operations `idx` of `history`, known to fail) fails.
pub(crate) fn explain<M: Model>(
    model: &M,
    key: M::Key,
    history: &[Operation<M::Input, M::Output>],
    idx: &[usize],
    limits: &super::Limits,
    deadline: Option<Instant>,
) -> Violation<M::Key> {
    let init = model.init(&key);
    let explain_left = Cell::new(limits.max_explain_steps);
    // Some(true) = `core` with outcomes and `context` without is still not linearizable,
    // Some(false) = linearizable, None = out of budget.
    let fails = |core: &[usize], context: &[usize]| -> Option<bool> {
        let mut events: Vec<Event<'_, M>> = core.iter().map(|&i| Event::of(&history[i])).collect();
        events.extend(context.iter().map(|&i| Event::relaxed(&history[i])));
        let mut budget = Budget::new(limits.max_steps_per_partition.min(explain_left.get()), deadline);
        let answer = search(model, &init, &events, &mut budget, false).answer;
        explain_left.set(explain_left.get() - budget.used);
        match answer {
            Answer::NotLinearizable => Some(true),
            Answer::Linearizable => Some(false),
            Answer::Exhausted(_) => None,
        }
    };
    let (mut core, mut context): (Vec<usize>, Vec<usize>) =
        idx.iter().copied().partition(|&i| history[i].output().is_some());
    let mut minimal = false;
    if limits.explain {
        (core, context, minimal) = shrink(history, core, context, fails);
    }
    core.sort_by_key(|&i| (history[i].call, i));
    context.sort_by_key(|&i| (history[i].call, i));
    // The longest partial linearization of the failing sub-history.
    let mut events: Vec<Event<'_, M>> = core.iter().map(|&i| Event::of(&history[i])).collect();
    events.extend(context.iter().map(|&i| Event::relaxed(&history[i])));
    let all: Vec<usize> = core.iter().chain(&context).copied().collect();
    let mut budget = Budget::new(limits.max_steps_per_partition, deadline);
    let result = search(model, &init, &events, &mut budget, true);
    let longest: Vec<usize> = result.deepest.iter().map(|&e| all[e]).collect();
    let explanation = render(model, &key, history, idx.len(), (&core, &context), minimal, &longest);
    Violation { key, partition_ops: idx.len(), failing: core, context, minimal, longest_linearization: longest, explanation }
}

/// Shrinks a failing (`core` with outcomes, `context` without) pair. Returns the pair and
/// whether the result is known to be 1-minimal.
///
/// 1. The shortest failing relaxed prefix in time (at `t*`, binary search).
/// 2. Dropping core operations one at a time, latest first (repeated while it helps): `x` goes if the rest still fails
///    with `x` relaxed (sound by the first fact) *and* the rest's relaxed prefix just before
///    `t*` is still linearizable. The second condition rejects drops that make a new, earlier
///    failure appear (a read whose writer was dropped), which would explain nothing.
/// 3. The same for context operations, keeping only drops after which every core operation is
///    still needed (a timed-out put whose value a core read returned stays).
/// 4. A final pass checks that the core is 1-minimal.
fn shrink<I, O>(
    history: &[Operation<I, O>],
    core: Vec<usize>,
    context: Vec<usize>,
    fails: impl Fn(&[usize], &[usize]) -> Option<bool>,
) -> (Vec<usize>, Vec<usize>, bool) {
    let ret = |i: usize| history[i].ret().unwrap_or(Tick::MAX);
    // The relaxed prefix at `t` of (core, context).
    let prefix = |core: &[usize], context: &[usize], t: Tick| -> (Vec<usize>, Vec<usize>) {
        let done = core.iter().copied().filter(|&i| ret(i) <= t).collect();
        let open = core
            .iter()
            .copied()
            .filter(|&i| history[i].call <= t && ret(i) > t)
            .chain(context.iter().copied().filter(|&i| history[i].call <= t))
            .collect();
        (done, open)
    };
    let mut times: Vec<Tick> = core.iter().map(|&i| ret(i)).collect();
    times.sort_unstable();
    times.dedup();
    let mut complete = true;
    // Invariant: the relaxed prefix at times[hi] fails (the last one is the whole partition).
    let (mut lo, mut hi) = (0, times.len().saturating_sub(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (done, open) = prefix(&core, &context, times[mid]);
        match fails(&done, &open) {
            Some(true) => hi = mid,
            Some(false) => lo = mid + 1,
            None => {
                complete = false;
                lo = mid + 1;
            }
        }
    }
    let Some(&t_fail) = times.get(hi) else { return (core, context, false) };
    let t_before = hi.checked_sub(1).map(|j| times[j]);
    let (mut core, mut context) = prefix(&core, &context, t_fail);
    // No failure before t_fail (else the drop made a new, unrelated one).
    let no_earlier_failure = |core: &[usize], context: &[usize]| -> bool {
        match t_before {
            Some(t) => {
                let (done, open) = prefix(core, context, t);
                fails(&done, &open) == Some(false)
            }
            None => true,
        }
    };
    // Every core operation is needed: forgetting its outcome makes the rest linearizable.
    // (Dropping a context operation that a core read depends on breaks this.)
    let core_needed = |core: &[usize], context: &[usize]| -> bool {
        (0..core.len()).all(|j| {
            let mut c = core.to_vec();
            let x = c.remove(j);
            let mut ctx = context.to_vec();
            ctx.push(x);
            fails(&c, &ctx) == Some(false)
        })
    };
    // Latest first, so readers go before the writers they depend on; repeat while it helps.
    core.sort_by_key(|&i| std::cmp::Reverse((ret(i), i)));
    for _round in 0..3 {
        let before = core.len() + context.len();
        let mut k = 0;
        while k < core.len() {
            let x = core.remove(k);
            context.push(x);
            let relaxed_fails = fails(&core, &context);
            context.pop();
            if relaxed_fails == Some(true) && no_earlier_failure(&core, &context) {
                continue;
            }
            complete &= relaxed_fails.is_some();
            core.insert(k, x);
            k += 1;
        }
        let mut k = 0;
        while k < context.len() {
            let u = context.remove(k);
            if fails(&core, &context) == Some(true) && no_earlier_failure(&core, &context) && core_needed(&core, &context) {
                continue;
            }
            context.insert(k, u);
            k += 1;
        }
        if core.len() + context.len() == before {
            break;
        }
    }
    complete &= core_needed(&core, &context);
    match fails(&core, &context) {
        Some(true) => {}
        Some(false) => unreachable!("a shrunk history that fails no more: the shrinking is unsound"),
        None => complete = false,
    }
    (core, context, complete)
}

fn render<M: Model>(
    model: &M,
    key: &M::Key,
    history: &[Operation<M::Input, M::Output>],
    partition_ops: usize,
    (failing, context): (&[usize], &[usize]),
    minimal: bool,
    longest: &[usize],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "key {key:?}: not linearizable");
    let how = if minimal {
        "1-minimal: forgetting the outcome of any one of them makes the history linearizable"
    } else {
        "not proven 1-minimal"
    };
    let _ = writeln!(s, "  {partition_ops} operations on this key; {} of them cannot be linearized ({how})", failing.len());
    if !context.is_empty() {
        let _ = writeln!(
            s,
            "  with {} more whose outcome is unknown or ignored (marked ~; they may take effect at any time after their call, or never)",
            context.len()
        );
    }
    let _ = writeln!(s, "  {:>8}  {:>6}  {:>8}  {:>8}  operation", "op", "client", "call", "return");
    let mut all: Vec<usize> = failing.iter().chain(context).copied().collect();
    all.sort_by_key(|&i| (history[i].call, i));
    for &i in &all {
        let op = &history[i];
        let relaxed = context.contains(&i);
        let ret = match op.ret() {
            Some(t) if !relaxed => t.to_string(),
            _ => "~".to_string(),
        };
        let mark = if relaxed { "~" } else { " " };
        let _ = writeln!(
            s,
            "  {:>8}  {:>6}  {:>8}  {:>8}  {}",
            format!("{mark}#{i}"),
            op.client,
            op.call,
            ret,
            describe(model, op, relaxed)
        );
    }
    // Replay the longest partial linearization.
    let mut state = model.init(key);
    let _ = writeln!(s, "  longest partial linearization ({} operations), from {}:", longest.len(), model.describe_state(&state));
    for &i in longest {
        let op = &history[i];
        let relaxed = context.contains(&i);
        let out = if relaxed { None } else { op.output() };
        match model.step(&state, &op.input, out) {
            Some(next) => state = next,
            None => {
                let _ = writeln!(s, "    (replay diverged at #{i})");
                break;
            }
        }
        let _ = writeln!(s, "    #{i:<7} {:<44} state {}", describe(model, op, relaxed), model.describe_state(&state));
    }
    // Why nothing can come next: the remaining operation that returns first must be linearized
    // before any operation called after that return.
    let rest: Vec<usize> = all.iter().copied().filter(|i| !longest.contains(i)).collect();
    let first = rest.iter().copied().filter(|i| !context.contains(i)).min_by_key(|&i| (history[i].ret().unwrap_or(Tick::MAX), i));
    let Some(first) = first else { return s };
    let deadline = history[first].ret().unwrap_or(Tick::MAX);
    let _ = writeln!(
        s,
        "  then stuck: #{first} returned at {deadline}, so it or an operation called by then is next, from state {}:",
        model.describe_state(&state)
    );
    for &i in rest.iter().filter(|&&i| history[i].call <= deadline) {
        let op = &history[i];
        let relaxed = context.contains(&i);
        let out = if relaxed { None } else { op.output() };
        let verdict = match model.step(&state, &op.input, out) {
            None => "impossible here".to_string(),
            Some(next) => format!("allowed (state {}), but every continuation fails", model.describe_state(&next)),
        };
        let _ = writeln!(s, "    #{i:<7} {:<44} {verdict}", describe(model, op, relaxed));
    }
    s
}

fn describe<M: Model>(model: &M, op: &Operation<M::Input, M::Output>, relaxed: bool) -> String {
    let text = model.describe_op(&op.input, op.output());
    if relaxed && op.output().is_some() {
        format!("{text} (ignored)")
    } else {
        text
    }
}
