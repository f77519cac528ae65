//! The resolved ts: a timestamp below which every commit is applied, for a watch hub
//! ([`crate::mvcc::watch::WatchHub::handle_resolved`]).
//!
//! Commits below the oracle's next timestamp can still be applied late in two ways: a batch in
//! flight (its commit ts was drawn when it ran), or a two-phase transaction that holds locks (it
//! commits above its start ts, with a commit ts drawn after its prewrite). The executor sees
//! every batch, so it tracks both: [`LockTracker`] counts the live locks by start ts — a lock
//! put counts from the submission of its batch, a lock delete from the store's `Written` reply —
//! and the resolved ts is the smallest of the oldest live lock's start ts, the smallest commit
//! ts of a batch in flight, and the oracle's next timestamp.
//!
//! Locks written before the executor started (by an earlier process) are not in any batch:
//! the driver lists them once with `Command::ScanLocks` before its first watcher and hands
//! them to [`LockTracker::seed`] (the executor's `seed_locks`).
use crate::lsm::batch::Batch;
use crate::lsm::key::ValueKind;
use crate::mvcc::codec::{self, Cf};
use crate::mvcc::record::Lock;
use crate::mvcc::Ts;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Live locks by raw lock key, and their start timestamps counted.
#[derive(Debug, Default)]
pub(crate) struct LockTracker {
    by_key: BTreeMap<Vec<u8>, Ts>,
    by_ts: BTreeMap<Ts, usize>,
}

impl LockTracker {
    fn add(&mut self, key: Vec<u8>, ts: Ts) {
        if let Some(old) = self.by_key.insert(key, ts) {
            self.dec(old);
        }
        *self.by_ts.entry(ts).or_insert(0) += 1;
    }

    fn dec(&mut self, ts: Ts) {
        if let Some(n) = self.by_ts.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                self.by_ts.remove(&ts);
            }
        }
    }

    /// Counts the lock puts of a batch being submitted; returns its lock deletes, to be
    /// applied by [`LockTracker::applied`] once the batch is.
    pub(crate) fn submitted(&mut self, batch: &Batch) -> Vec<Vec<u8>> {
        let mut deletes = Vec::new();
        for op in batch.iter() {
            if op.key.first() != Some(&(Cf::Lock as u8)) {
                continue;
            }
            match op.kind {
                ValueKind::Put => {
                    // A lock that does not decode is the store's problem, not the tracker's: a
                    // zero start ts holds the resolved ts back (safe) until it is deleted.
                    let ts = Lock::decode(op.value).map_or(Ts::ZERO, |l| l.start_ts);
                    self.add(op.key.to_vec(), ts);
                }
                ValueKind::Delete => deletes.push(op.key.to_vec()),
            }
        }
        deletes
    }

    /// A batch's lock deletes are applied.
    pub(crate) fn applied(&mut self, deletes: &[Vec<u8>]) {
        for k in deletes {
            if let Some(ts) = self.by_key.remove(k) {
                self.dec(ts);
            }
        }
    }

    /// Adds locks found in the store (user key, lock).
    pub(crate) fn seed(&mut self, locks: &[(Vec<u8>, Lock)]) {
        for (key, lock) in locks {
            self.add(codec::lock_key(key), lock.start_ts);
        }
    }

    /// The oldest live lock's start ts.
    pub(crate) fn oldest(&self) -> Option<Ts> {
        self.by_ts.keys().next().copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when no live lock is tracked.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// True when the raw lock key `key` may hold a lock (it is tracked).
    pub(crate) fn may_hold(&self, key: &[u8]) -> bool {
        self.by_key.contains_key(key)
    }
}

/// The locks a store can hold, as far as the executor knows: every lock written since it
/// started and every lock seeded from the store ([`LockTracker::seed`]). A lock put counts
/// from its batch's submission and a delete only once applied, so the tracker is a superset of
/// the locks the store shows at any moment — a lock probe of a key it does not name can answer
/// "no lock" without reading the store. Valid only once seeded (before that the store may hold
/// locks of an earlier process that the tracker never saw).
#[derive(Clone, Copy)]
pub(crate) struct LockFilter<'a>(pub(crate) &'a LockTracker);

impl LockFilter<'_> {
    /// False when the store holds no lock at the raw lock key `key`.
    #[inline]
    pub(crate) fn may_hold(self, key: &[u8]) -> bool {
        !self.0.is_empty() && self.0.may_hold(key)
    }

    /// False when the store holds no lock at all.
    #[inline]
    pub(crate) fn any(self) -> bool {
        !self.0.is_empty()
    }
}
