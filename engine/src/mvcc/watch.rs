//! etcd's watch as a deterministic state machine: watchers on a key, a prefix or a range, from a
//! start revision, receiving every change (with the key's previous state) exactly once, in
//! revision order, the changes of one revision together.
//!
//! Two paths feed a watcher, as in etcd's `watchableStore`:
//! * **live** (synced watchers): the executor reports each applied commit
//!   ([`WatchHub::handle_applied`], the executor's [`Applied`] output) and, separately, how far
//!   commits are final ([`WatchHub::handle_resolved`]); the hub holds the reported changes until
//!   their revision is resolved, then delivers them in revision order with values and previous
//!   values read through the reader;
//! * **history** (unsynced watchers): a watcher that starts in the past, or whose bounded buffer
//!   was full when a revision came, is *not* given that revision; it is moved to catch-up, and
//!   [`WatchHub::sync`] replays its range from the write family (every version in
//!   `[next, resolved)`, sorted by revision) as its buffer drains, until it is synced again. If
//!   the revisions it still needs have been compacted it ends with a final
//!   [`WatchResponse::Compacted`] — never with a silent gap.
//!
//! A watcher's events at revision `rev` carry the previous state read at `rev - 1`, so a watch
//! must start above the compaction mark (`start > mark`; else `Compacted`).
//!
//! # Calling protocol
//! ```text
//! let mut hub = WatchHub::new(config, resolved);  // resolved: every commit below it is applied
//! let id = hub.watch(&reader, request)?;          // Err(Compacted) if start <= mark
//! // executor outputs, in apply order:
//! ExecOutput::Applied(a) => hub.handle_applied(&a)?,   // commit ts >= resolved, else BelowResolved
//! // whenever the executor knows no commit below `ts` can still be applied:
//! hub.handle_resolved(&reader, ts)?;              // reader sees every commit < ts
//! while hub.needs_sync() { hub.sync(&reader)?; }  // catch-up of lagging watchers
//! while let Some(resp) = hub.poll(id) { ... }     // each watcher's consumer drains its buffer
//! hub.cancel(id);
//! ```
//! `Err(Mvcc(Read(Pending)))` from `handle_resolved` or `sync` changes nothing for the
//! watchers not yet served: load the data and call again. The resolved ts is the executor's
//! promise: in an embedded store whose commits are applied in commit-ts order it is the last
//! applied commit ts + 1; with two-phase transactions in flight it is at most the smallest
//! start ts of a lock ([`min_lock_ts`]) and the smallest commit ts drawn but not applied.
use super::error::{EtcdError, ReadError};
use super::exec::applied::Applied;
use super::reader::{RawReader, SnapshotReader};
use super::record::WriteKind;
use super::revision::{self, Kv};
use super::Ts;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;

/// Identifies a watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchId(pub u64);

/// The keys a watcher sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchTarget {
    /// One key.
    Key(Vec<u8>),
    /// Every key starting with the bytes.
    Prefix(Vec<u8>),
    /// Keys in `[from, upper)` (`None`: to the end).
    Range(Vec<u8>, Option<Vec<u8>>),
}

impl WatchTarget {
    /// True when `key` is watched.
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            WatchTarget::Key(k) => k.as_slice() == key,
            WatchTarget::Prefix(p) => key.starts_with(p),
            WatchTarget::Range(from, upper) => {
                key >= from.as_slice() && upper.as_deref().is_none_or(|u| key < u)
            }
        }
    }

    /// `[from, upper)` covering the target.
    fn bounds(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            WatchTarget::Key(k) => {
                let mut upper = k.clone();
                upper.push(0);
                (k.clone(), Some(upper))
            }
            WatchTarget::Prefix(p) => (p.clone(), prefix_end(p)),
            WatchTarget::Range(from, upper) => (from.clone(), upper.clone()),
        }
    }
}

/// The smallest key above every key starting with `p` (`None`: no bound).
pub fn prefix_end(p: &[u8]) -> Option<Vec<u8>> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A watch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    /// What to watch.
    pub target: WatchTarget,
    /// The first revision to report; `None`: from the resolved ts on (only new changes).
    pub start_revision: Option<Ts>,
}

/// Put or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key's state after the change; for a delete, only `key` and `mod_revision` (the
    /// delete's revision) are set, as in etcd.
    pub kv: Kv,
    /// The key's state just before (at `revision - 1`), if it existed.
    pub prev: Option<Kv>,
}

/// What a watcher receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchResponse {
    /// All the watched changes of one revision, in key order.
    Events {
        /// The revision.
        revision: Ts,
        /// The changes.
        events: Vec<Event>,
    },
    /// The watcher needed revision `requested`, whose previous states are compacted; it has
    /// ended (this is its last response).
    Compacted {
        /// The next revision the watcher needed.
        requested: Ts,
        /// The compaction mark.
        compacted: Ts,
    },
}

/// Why a hub input was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// A commit was reported below the resolved ts: the caller broke its promise (events
    /// would be missed).
    BelowResolved {
        /// The commit ts reported.
        commit_ts: Ts,
        /// The resolved ts.
        resolved: Ts,
    },
}

/// Limits of a [`WatchHub`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// Events a watcher may have waiting in its buffer; a revision that does not fit moves
    /// the watcher to catch-up (a revision larger than this is still delivered alone).
    pub max_buffered_events: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            max_buffered_events: 1024,
        }
    }
}

#[derive(Clone, Debug)]
struct Watcher {
    target: WatchTarget,
    /// Every watched change below `next` has been queued.
    next: Ts,
    buffer: VecDeque<WatchResponse>,
    buffered_events: usize,
    /// Ended by `Compacted`: removed once its buffer is drained.
    ended: bool,
}

impl Watcher {
    fn has_room(&self, max: usize) -> bool {
        self.buffered_events < max
    }

    fn fits(&self, n: usize, max: usize) -> bool {
        self.buffered_events == 0 || self.buffered_events + n <= max
    }

    fn push(&mut self, revision: Ts, events: Vec<Event>) {
        self.buffered_events += events.len();
        self.buffer
            .push_back(WatchResponse::Events { revision, events });
        self.next = revision.next();
    }

    fn end(&mut self, mark: Ts) {
        self.buffer.push_back(WatchResponse::Compacted {
            requested: self.next,
            compacted: mark,
        });
        self.ended = true;
    }
}

/// The watch hub. See the module docs for the calling protocol.
#[derive(Clone, Debug)]
pub struct WatchHub {
    config: WatchConfig,
    watchers: BTreeMap<WatchId, Watcher>,
    next_id: u64,
    resolved: Ts,
    /// Keys changed at each reported revision at or above `resolved`.
    pending: BTreeMap<Ts, BTreeSet<Vec<u8>>>,
}

impl WatchHub {
    /// A hub whose live feed starts at `resolved` (every commit below it is applied).
    pub fn new(config: WatchConfig, resolved: Ts) -> WatchHub {
        WatchHub {
            config,
            watchers: BTreeMap::new(),
            next_id: 1,
            resolved,
            pending: BTreeMap::new(),
        }
    }

    /// The resolved ts: every commit below it has been reported.
    pub fn resolved(&self) -> Ts {
        self.resolved
    }

    /// Number of watchers (including ended ones with responses left).
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// True when there is no watcher.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Registers a watcher. `Compacted` if its start revision is at or below the mark.
    pub fn watch<R: RawReader>(&mut self, r: &R, req: WatchRequest) -> Result<WatchId, EtcdError> {
        let start = req.start_revision.unwrap_or(self.resolved).max(Ts(1));
        let mark = revision::compaction_mark(r)?;
        if start <= mark {
            return Err(EtcdError::Compacted {
                requested: start,
                compacted: mark,
            });
        }
        let id = WatchId(self.next_id);
        self.next_id += 1;
        self.watchers.insert(
            id,
            Watcher {
                target: req.target,
                next: start,
                buffer: VecDeque::new(),
                buffered_events: 0,
                ended: false,
            },
        );
        Ok(id)
    }

    /// Removes a watcher and its buffered responses; false if unknown.
    pub fn cancel(&mut self, id: WatchId) -> bool {
        self.watchers.remove(&id).is_some()
    }

    /// The next response of watcher `id`, oldest first. After a final `Compacted` the watcher
    /// is gone.
    pub fn poll(&mut self, id: WatchId) -> Option<WatchResponse> {
        let w = self.watchers.get_mut(&id)?;
        let resp = w.buffer.pop_front();
        if let Some(WatchResponse::Events { events, .. }) = &resp {
            w.buffered_events -= events.len();
        }
        if w.ended && w.buffer.is_empty() {
            self.watchers.remove(&id);
        }
        resp
    }

    /// Input: an applied batch's commits (the executor's `Applied` output). Its commit ts must
    /// be at or above the resolved ts.
    pub fn handle_applied(&mut self, applied: &Applied) -> Result<(), WatchError> {
        if applied.commit_ts < self.resolved {
            return Err(WatchError::BelowResolved {
                commit_ts: applied.commit_ts,
                resolved: self.resolved,
            });
        }
        let keys = self.pending.entry(applied.commit_ts).or_default();
        keys.extend(applied.changes.iter().map(|c| c.key.clone()));
        Ok(())
    }

    /// Input: every commit below `resolved` has been reported and applied (the reader sees
    /// them). Delivers the held revisions below it to the synced watchers, in revision order;
    /// a watcher whose buffer cannot take a revision moves to catch-up. A smaller `resolved`
    /// than the current one is ignored.
    pub fn handle_resolved<R: SnapshotReader + RawReader>(
        &mut self,
        r: &R,
        resolved: Ts,
    ) -> Result<(), EtcdError> {
        if resolved <= self.resolved {
            return Ok(());
        }
        let mark = revision::compaction_mark(r)?;
        let old = self.resolved;
        let synced = |w: &Watcher| !w.ended && w.next >= old;
        // Read everything first, so a Pending read leaves the hub unchanged.
        let mut revisions: Vec<(Ts, Vec<Event>)> = Vec::new();
        for (&rev, keys) in self.pending.range(..resolved) {
            let mut events = Vec::new();
            for key in keys {
                let wanted = self
                    .watchers
                    .values()
                    .any(|w| synced(w) && w.next <= rev && w.target.matches(key));
                if wanted && rev > mark {
                    events.push(change_at(r, key, rev)?);
                }
            }
            revisions.push((rev, events));
        }
        let max = self.config.max_buffered_events;
        for w in self.watchers.values_mut().filter(|w| synced(w)) {
            let mut lagging = false;
            for (rev, events) in &revisions {
                if *rev < w.next {
                    continue;
                }
                let mine: Vec<Event> = events
                    .iter()
                    .filter(|e| w.target.matches(&e.kv.key))
                    .cloned()
                    .collect();
                if *rev <= mark && self.pending[rev].iter().any(|k| w.target.matches(k)) {
                    w.end(mark);
                    lagging = true;
                    break;
                }
                if mine.is_empty() {
                    continue;
                }
                if !w.fits(mine.len(), max) {
                    lagging = true; // stays at `next = rev`: catch-up replays from there
                    break;
                }
                w.push(*rev, mine);
            }
            if !lagging {
                w.next = w.next.max(resolved);
            }
        }
        self.pending = self.pending.split_off(&resolved);
        self.resolved = resolved;
        Ok(())
    }

    /// True when a lagging watcher has room in its buffer: call [`WatchHub::sync`].
    pub fn needs_sync(&self) -> bool {
        let max = self.config.max_buffered_events;
        self.watchers
            .values()
            .any(|w| !w.ended && w.next < self.resolved && w.has_room(max))
    }

    /// Catch-up: each lagging watcher with room replays its range from the write family from
    /// its next revision, as many whole revisions as its buffer takes; one that reaches the
    /// resolved ts is synced again. A watcher whose next revision is at or below the compaction
    /// mark ends with `Compacted`. Returns the number of events queued.
    pub fn sync<R: SnapshotReader + RawReader>(&mut self, r: &R) -> Result<usize, EtcdError> {
        let mark = revision::compaction_mark(r)?;
        let (resolved, max) = (self.resolved, self.config.max_buffered_events);
        let mut queued = 0;
        for w in self.watchers.values_mut() {
            if w.ended || w.next >= resolved || !w.has_room(max) {
                continue;
            }
            if w.next <= mark {
                w.end(mark);
                continue;
            }
            let history = replay(r, &w.target, w.next, resolved)?;
            let mut caught_up = true;
            for (rev, events) in history {
                if !w.fits(events.len(), max) {
                    caught_up = false;
                    break;
                }
                queued += events.len();
                w.push(rev, events);
            }
            if caught_up {
                w.next = resolved;
            }
        }
        Ok(queued)
    }
}

/// The smallest start ts of a lock in the store (a bound for the resolved ts: a transaction
/// holding a lock may still commit anywhere above its start ts).
pub fn min_lock_ts(r: &impl SnapshotReader) -> Result<Option<Ts>, ReadError> {
    Ok(r.scan_locks(b"", None, usize::MAX)?
        .iter()
        .map(|(_, l)| l.start_ts)
        .min())
}

/// The change of `key` committed at `rev`, with its previous state.
fn change_at(r: &impl SnapshotReader, key: &[u8], rev: Ts) -> Result<Event, EtcdError> {
    let Some((ts, w)) = revision::data_version_at(r, key, rev)? else {
        return Err(missing(key));
    };
    if ts != rev {
        return Err(missing(key));
    }
    let prev = revision::kv_at(r, key, rev.prev())?;
    event(r, key, rev, w.kind, prev)
}

fn missing(key: &[u8]) -> EtcdError {
    EtcdError::Corrupt {
        key: key.to_vec(),
        reason: "a reported commit has no write record",
    }
}

fn event(
    r: &impl SnapshotReader,
    key: &[u8],
    rev: Ts,
    kind: WriteKind,
    prev: Option<Kv>,
) -> Result<Event, EtcdError> {
    Ok(match kind {
        WriteKind::Put => Event {
            kind: EventKind::Put,
            kv: revision::kv_at(r, key, rev)?.ok_or_else(|| missing(key))?,
            prev,
        },
        _ => Event {
            kind: EventKind::Delete,
            kv: Kv {
                key: key.to_vec(),
                value: Vec::new(),
                create_revision: Ts::ZERO,
                mod_revision: rev,
                version: 0,
                lease: None,
            },
            prev,
        },
    })
}

/// Every change of the target's keys with revision in `[from, to)`, grouped by revision
/// (ascending), keys in order within a revision.
fn replay<R: SnapshotReader>(
    r: &R,
    target: &WatchTarget,
    from: Ts,
    to: Ts,
) -> Result<Vec<(Ts, Vec<Event>)>, EtcdError> {
    let (lower, upper) = target.bounds();
    let mut by_rev: BTreeMap<Ts, Vec<Event>> = BTreeMap::new();
    let mut cursor = lower;
    while let Some(key) = r.next_key(&cursor, upper.as_deref())? {
        if target.matches(&key) {
            // Versions in [from, to), newest first; each one's previous state is the next
            // older version (or the state just below `from`).
            let mut versions = Vec::new();
            let mut ts = to.prev();
            while let Some((rev, w)) = revision::data_version_at(r, &key, ts)? {
                if rev < from {
                    break;
                }
                versions.push((rev, w.kind));
                if rev == Ts::ZERO {
                    break;
                }
                ts = rev.prev();
            }
            let mut prev = match versions.last() {
                Some(&(oldest, _)) => revision::kv_at(r, &key, oldest.prev())?,
                None => None,
            };
            for &(rev, kind) in versions.iter().rev() {
                let e = event(r, &key, rev, kind, prev.take())?;
                prev = (e.kind == EventKind::Put).then(|| e.kv.clone());
                by_rev.entry(rev).or_default().push(e);
            }
        }
        cursor = key;
        cursor.push(0);
    }
    Ok(by_rev.into_iter().collect())
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
