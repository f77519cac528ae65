//! The search over one partition: Wing & Gong's algorithm on an entry list with lifting and
//! unlifting, memoizing (linearized set, state) pairs (Lowe; Porcupine).
use super::{Exhausted, Model, Operation, Tick};
use std::collections::HashSet;
use std::time::Instant;

const NONE: usize = usize::MAX;
/// How often (in steps) the wall clock is read.
const CLOCK_EVERY: u64 = 4096;

/// One operation as the search sees it: an unknown output is a return at +∞.
pub(crate) struct Event<'a, M: Model> {
    pub input: &'a M::Input,
    pub output: Option<&'a M::Output>,
    pub call: Tick,
    /// `None`: +∞.
    pub ret: Option<Tick>,
}

impl<'a, M: Model> Event<'a, M> {
    pub fn of(op: &'a Operation<M::Input, M::Output>) -> Self {
        Event { input: &op.input, output: op.output(), call: op.call, ret: op.ret() }
    }

    /// The same operation with its outcome forgotten (a relaxation: it may or may not happen).
    pub fn relaxed(op: &'a Operation<M::Input, M::Output>) -> Self {
        Event { input: &op.input, output: None, call: op.call, ret: None }
    }
}

/// Steps and time left.
pub(crate) struct Budget {
    left: u64,
    deadline: Option<Instant>,
    pub used: u64,
}

impl Budget {
    pub fn new(steps: u64, deadline: Option<Instant>) -> Self {
        Budget { left: steps, deadline, used: 0 }
    }

    fn spend(&mut self) -> Result<(), Exhausted> {
        if self.left == 0 {
            return Err(Exhausted::Steps);
        }
        self.left -= 1;
        self.used += 1;
        if self.used % CLOCK_EVERY == 0 && self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.left = 0;
            return Err(Exhausted::Time);
        }
        Ok(())
    }
}

pub(crate) enum Answer {
    Linearizable,
    NotLinearizable,
    Exhausted(Exhausted),
}

pub(crate) struct SearchResult {
    pub answer: Answer,
    pub cache_entries: usize,
    /// With `track_deepest`: the longest partial linearization seen (indices into the events).
    pub deepest: Vec<usize>,
}

/// The entry list: node 0 is the head; node `1 + 2i` is op `i`'s call, `2 + 2i` its return,
/// linked in time order (calls before returns at equal ticks, then by op).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Entries {
    fn new<M: Model>(events: &[Event<'_, M>]) -> Entries {
        let mut order: Vec<(Tick, u8, usize, usize)> = Vec::with_capacity(2 * events.len());
        for (i, e) in events.iter().enumerate() {
            order.push((e.call, 0, i, 1 + 2 * i));
            order.push((e.ret.unwrap_or(Tick::MAX), 1, i, 2 + 2 * i));
        }
        order.sort_unstable();
        let n = 1 + 2 * events.len();
        let (mut next, mut prev) = (vec![NONE; n], vec![NONE; n]);
        let mut last = 0;
        for &(_, _, _, node) in &order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Entries { next, prev }
    }

    /// Removes a call node and its return node.
    fn lift(&mut self, call: usize) {
        for node in [call, call + 1] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = n;
            if n != NONE {
                self.prev[n] = p;
            }
        }
    }

    /// Restores what [`Entries::lift`] removed (in reverse order).
    fn unlift(&mut self, call: usize) {
        for node in [call + 1, call] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = node;
            if n != NONE {
                self.prev[n] = node;
            }
        }
    }
}

/// Searches for a linearization of `events` from `init`.
pub(crate) fn search<M: Model>(
    model: &M,
    init: &M::State,
    events: &[Event<'_, M>],
    budget: &mut Budget,
    track_deepest: bool,
) -> SearchResult {
    let mut list = Entries::new(events);
    let words = events.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Box<[u64]>, M::State)> = HashSet::new();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut deepest = Vec::new();
    let mut state = init.clone();
    let mut known_left = events.iter().filter(|e| e.output.is_some()).count();
    let mut entry = list.next[0];
    let answer = loop {
        if known_left == 0 {
            break Answer::Linearizable;
        }
        if let Err(e) = budget.spend() {
            break Answer::Exhausted(e);
        }
        debug_assert_ne!(entry, NONE, "a call is always followed by its return");
        let op = (entry - 1) / 2;
        if entry % 2 == 1 {
            // A call: try to linearize the operation here.
            let ev = &events[op];
            if let Some(next_state) = model.step(&state, ev.input, ev.output) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone().into_boxed_slice(), next_state.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, next_state)));
                    list.lift(entry);
                    if ev.output.is_some() {
                        known_left -= 1;
                    }
                    if track_deepest && stack.len() > deepest.len() {
                        deepest = stack.iter().map(|&(n, _)| (n - 1) / 2).collect();
                    }
                    entry = list.next[0];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = list.next[entry];
        } else {
            // A return whose operation is not linearized: undo the last choice.
            let Some((call, previous)) = stack.pop() else { break Answer::NotLinearizable };
            let op = (call - 1) / 2;
            linearized[op / 64] &= !(1 << (op % 64));
            state = previous;
            list.unlift(call);
            if events[op].output.is_some() {
                known_left += 1;
            }
            entry = list.next[call];
        }
    };
    SearchResult { answer, cache_entries: cache.len(), deepest }
}
