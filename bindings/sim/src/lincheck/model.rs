//! Sequential specifications the checker linearizes against: the [`Model`] trait, a key-value
//! map ([`KvModel`]) and a FIFO queue ([`QueueModel`]).
use std::collections::VecDeque;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

/// A sequential specification, deterministic, split into independent partitions.
///
/// Contract:
/// - Operations in different partitions never affect each other (P-compositionality). A model
///   that cannot be split returns the same key for every input.
/// - [`Model::step`] with `output: None` (the outcome is unknown) must return `Some`: an
///   operation whose response nobody saw can always take effect. The checker relies on this to
///   stop once every operation with a known outcome is linearized.
/// - [`Model::read_only`] is true only for inputs whose step never changes the state; unknown
///   read-only operations are dropped before the search.
pub trait Model {
    /// Partition key (e.g. the KV key).
    type Key: Ord + Clone + Debug;
    /// What a client asks.
    type Input: Clone + Debug;
    /// What a response says.
    type Output: Clone + Debug;
    /// The state of one partition. Memoized: keep it small.
    type State: Clone + Eq + Hash + Debug;

    /// The partition `input` belongs to.
    fn partition(&self, input: &Self::Input) -> Self::Key;

    /// The initial state of partition `key`.
    fn init(&self, key: &Self::Key) -> Self::State;

    /// Applies `input` to `state`: the next state if the operation may produce `output` there
    /// (`None`: any output), or `None` if it may not.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;

    /// True if `input` never changes the state.
    fn read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// One operation for people, e.g. `put(k, 3) -> ok`.
    fn describe_op(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(o) => format!("{input:?} -> {o:?}"),
            None => format!("{input:?} -> ?"),
        }
    }

    /// One state for people.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// A key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput<K, V> {
    /// Read a key.
    Get(K),
    /// Write a key.
    Put(K, V),
    /// Remove a key.
    Delete(K),
    /// Write `new` if the key's value equals `expected` (`None`: the key is absent).
    Cas {
        /// The key.
        key: K,
        /// The value required (`None`: absent).
        expected: Option<V>,
        /// The value written on success.
        new: V,
    },
}

impl<K, V> KvInput<K, V> {
    /// The key the operation touches.
    pub fn key(&self) -> &K {
        match self {
            KvInput::Get(k) | KvInput::Put(k, _) | KvInput::Delete(k) | KvInput::Cas { key: k, .. } => k,
        }
    }
}

/// A key-value response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput<V> {
    /// A get's answer (`None`: absent).
    Read(Option<V>),
    /// A put or delete was applied.
    Written,
    /// A compare-and-swap's answer: whether it swapped.
    Swapped(bool),
}

/// A map from keys to values, partitioned by key; each partition's state is the key's value.
#[derive(Clone, Debug, Default)]
pub struct KvModel<K, V>(PhantomData<(K, V)>);

impl<K, V> KvModel<K, V> {
    /// The model.
    pub fn new() -> Self {
        KvModel(PhantomData)
    }
}

impl<K: Ord + Clone + Debug, V: Clone + Eq + Hash + Debug> Model for KvModel<K, V> {
    type Key = K;
    type Input = KvInput<K, V>;
    type Output = KvOutput<V>;
    type State = Option<V>;

    fn partition(&self, input: &Self::Input) -> K {
        input.key().clone()
    }

    fn init(&self, _key: &K) -> Option<V> {
        None
    }

    fn step(&self, state: &Option<V>, input: &Self::Input, output: Option<&Self::Output>) -> Option<Option<V>> {
        match (input, output) {
            (KvInput::Get(_), None) => Some(state.clone()),
            (KvInput::Get(_), Some(KvOutput::Read(v))) => (v == state).then(|| state.clone()),
            (KvInput::Put(_, v), None | Some(KvOutput::Written)) => Some(Some(v.clone())),
            (KvInput::Delete(_), None | Some(KvOutput::Written)) => Some(None),
            (KvInput::Cas { expected, new, .. }, out) => {
                let swaps = expected == state;
                match out {
                    None => Some(if swaps { Some(new.clone()) } else { state.clone() }),
                    Some(KvOutput::Swapped(b)) if *b == swaps => Some(if swaps { Some(new.clone()) } else { state.clone() }),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }

    fn read_only(&self, input: &Self::Input) -> bool {
        matches!(input, KvInput::Get(_))
    }

    fn describe_op(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        let what = match input {
            KvInput::Get(k) => format!("get({k:?})"),
            KvInput::Put(k, v) => format!("put({k:?}, {v:?})"),
            KvInput::Delete(k) => format!("delete({k:?})"),
            KvInput::Cas { key, expected: Some(e), new } => format!("cas({key:?}, {e:?} -> {new:?})"),
            KvInput::Cas { key, expected: None, new } => format!("cas({key:?}, absent -> {new:?})"),
        };
        let got = match output {
            None => "?".to_string(),
            Some(KvOutput::Read(Some(v))) => format!("{v:?}"),
            Some(KvOutput::Read(None)) => "absent".to_string(),
            Some(KvOutput::Written) => "ok".to_string(),
            Some(KvOutput::Swapped(true)) => "swapped".to_string(),
            Some(KvOutput::Swapped(false)) => "not swapped".to_string(),
        };
        format!("{what} -> {got}")
    }

    fn describe_state(&self, state: &Option<V>) -> String {
        match state {
            Some(v) => format!("{v:?}"),
            None => "absent".to_string(),
        }
    }
}

/// A queue operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueInput<V> {
    /// Append at the tail.
    Enqueue(V),
    /// Take from the head.
    Dequeue,
}

/// A queue response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueOutput<V> {
    /// The enqueue was applied.
    Enqueued,
    /// The dequeued value (`None`: the queue was empty).
    Dequeued(Option<V>),
}

/// One FIFO queue (a single partition): a model for stream append/consume histories.
#[derive(Clone, Debug, Default)]
pub struct QueueModel<V>(PhantomData<V>);

impl<V> QueueModel<V> {
    /// The model.
    pub fn new() -> Self {
        QueueModel(PhantomData)
    }
}

impl<V: Clone + Eq + Hash + Debug> Model for QueueModel<V> {
    type Key = ();
    type Input = QueueInput<V>;
    type Output = QueueOutput<V>;
    type State = VecDeque<V>;

    fn partition(&self, _input: &Self::Input) {}

    fn init(&self, _key: &()) -> VecDeque<V> {
        VecDeque::new()
    }

    fn step(&self, state: &VecDeque<V>, input: &Self::Input, output: Option<&Self::Output>) -> Option<VecDeque<V>> {
        match (input, output) {
            (QueueInput::Enqueue(v), None | Some(QueueOutput::Enqueued)) => {
                let mut s = state.clone();
                s.push_back(v.clone());
                Some(s)
            }
            (QueueInput::Dequeue, None) => {
                let mut s = state.clone();
                s.pop_front();
                Some(s)
            }
            (QueueInput::Dequeue, Some(QueueOutput::Dequeued(v))) => {
                if v.as_ref() != state.front() {
                    return None;
                }
                let mut s = state.clone();
                s.pop_front();
                Some(s)
            }
            _ => None,
        }
    }
}
