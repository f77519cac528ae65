//! Revision watch on the versioned [`Db`](crate::Db): the engine's [`WatchHub`] driven by the
//! native driver, and [`Watcher`], the receiver a caller holds.
//!
//! The hub lives in the driver's state (under the store's mutex) while at least one watcher
//! exists. The executor reports every applied commit ([`ExecOutput::Applied`], turned on while
//! the hub exists — creating it waits out writes submitted while they were off) and its *resolved ts* ([`Executor::resolved_ts`]: every commit below it is
//! applied — the oldest live lock, the oldest batch in flight and the oracle bound it); after
//! each round of store and executor outputs the driver feeds both to the hub, which delivers
//! whole revisions to synced watchers and replays history for lagging ones. The hub's reads
//! (values, previous values, catch-up) go through a [`StoreSnapshot`] whose missing blocks are
//! read on the spot, as the executor's are.
//!
//! A watcher never misses an event silently: a slow consumer whose buffer fills is not given
//! the revision but moved to catch-up, and its next receives replay the history from the write
//! family; if that history has been compacted meanwhile it gets [`WatchError::Compacted`] and
//! ends (etcd's `ErrCompacted`).
//!
//! [`ExecOutput::Applied`]: strata_engine::mvcc::exec::ExecOutput::Applied
//! [`Executor::resolved_ts`]: strata_engine::mvcc::exec::Executor::resolved_ts
use crate::driver::{Shared, State};
use crate::error::Error;
use crate::etcd::KeyValue;
use std::cell::RefCell;
use std::fmt;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};
use strata_engine::lsm::cache::BlockCache;
use strata_engine::lsm::store::Store;
use strata_engine::mvcc::error::{EtcdError, ReadError};
use strata_engine::mvcc::exec::applied::Applied;
use strata_engine::mvcc::exec::snapshot::{BlockMap, StoreSnapshot};
use strata_engine::mvcc::watch::{self as ew, WatchConfig, WatchHub, WatchId, WatchRequest};
use strata_engine::mvcc::{MvccError, Ts};

/// Events a watcher may have waiting before it is moved to catch-up from history.
pub const WATCH_BUFFER_EVENTS: usize = 1024;

/// The hub and its reader's blocks.
pub(crate) struct HubState {
    hub: WatchHub,
    own: BlockMap,
    cache: RefCell<BlockCache>,
    /// A hub input failed (a read error, a broken promise): every watcher ends with this.
    failed: Option<String>,
}

impl HubState {
    fn new(resolved: Ts) -> HubState {
        HubState {
            hub: WatchHub::new(WatchConfig { max_buffered_events: WATCH_BUFFER_EVENTS }, resolved),
            own: BlockMap::new(),
            cache: RefCell::new(BlockCache::new(1 << 20)),
            failed: None,
        }
    }

    /// Input: an applied commit.
    pub(crate) fn applied(&mut self, a: &Applied) {
        if let Err(e) = self.hub.handle_applied(a) {
            self.failed.get_or_insert(format!("watch hub refused an applied commit: {e:?}"));
        }
    }
}

/// Runs `f` over a snapshot of `store`, reading the blocks it misses (under the lock, as the
/// executor's block reads are) until it answers something other than `Pending`.
fn with_reader<T>(
    shared: &Shared,
    store: &Store,
    w: &mut HubState,
    mut f: impl FnMut(&mut WatchHub, &StoreSnapshot<'_>) -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    let HubState { hub, own, cache, .. } = w;
    loop {
        let need = {
            let snap = StoreSnapshot::new(store, own, cache);
            match f(hub, &snap) {
                Err(EtcdError::Mvcc(MvccError::Read(ReadError::Pending))) => snap.needed(),
                other => {
                    own.clear();
                    return other;
                }
            }
        };
        let Some(n) = need else { return Err(EtcdError::Mvcc(MvccError::Read(ReadError::Pending))) };
        match shared.block(n.file, n.handle) {
            Ok(b) => {
                own.insert((n.file.number, n.handle.offset), b);
            }
            Err(e) => return Err(EtcdError::Corrupt { key: Vec::new(), reason: leak_reason(&e) }),
        }
    }
}

/// A block read failure as a static reason (the hub's error type carries `&'static str`);
/// the detail goes to the watcher's failure message instead.
fn leak_reason(_e: &Error) -> &'static str {
    "reading a block for the watch hub failed"
}

/// What a watcher receives: every watched change of one revision, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    /// The revision (commit timestamp) of the changes.
    pub revision: u64,
    /// The changes.
    pub events: Vec<Event>,
}

/// Put or delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change of a key, with the key's state before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The state after the change; for a delete only `key` and `mod_revision` are set (etcd's
    /// convention).
    pub kv: KeyValue,
    /// The state just before (at `revision - 1`), if the key existed.
    pub prev: Option<KeyValue>,
}

/// Why [`Watcher::recv`] returned no batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// The watcher needed revision `requested`, whose history is compacted (the compaction
    /// mark is `compacted`): it has ended. Start a new watch above the mark (after re-reading
    /// the current state).
    Compacted {
        /// The next revision the watcher needed.
        requested: u64,
        /// The compaction mark.
        compacted: u64,
    },
    /// No change within the timeout (the watcher is still live).
    Timeout,
    /// The database was closed.
    Closed,
    /// The hub failed to read the store (I/O error or corruption): every watcher ends.
    Failed(String),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Compacted { requested, compacted } => {
                write!(f, "watch needs revision {requested}, which is compacted (compaction mark {compacted})")
            }
            WatchError::Timeout => f.write_str("no change within the timeout"),
            WatchError::Closed => f.write_str("the database is closed"),
            WatchError::Failed(why) => write!(f, "watch failed: {why}"),
        }
    }
}

impl std::error::Error for WatchError {}

/// A revision watch: every change to the watched keys from its start revision on, one
/// [`WatchBatch`] per revision, in revision order, exactly once, each with the previous value.
/// Made by [`Db::watch`](crate::Db::watch); dropping it cancels the watch. Also an iterator
/// (it ends after an error).
pub struct Watcher {
    db: crate::Db,
    id: WatchId,
    ended: bool,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher").field("id", &self.id.0).field("ended", &self.ended).finish()
    }
}

impl Watcher {
    pub(crate) fn new(db: crate::Db, id: WatchId) -> Watcher {
        Watcher { db, id, ended: false }
    }

    /// The next revision's changes, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<WatchBatch, WatchError> {
        self.next(None)
    }

    /// The next revision's changes, waiting at most `timeout` ([`WatchError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<WatchBatch, WatchError> {
        self.next(Some(Instant::now() + timeout))
    }

    /// The next revision's changes if one is waiting ([`WatchError::Timeout`] otherwise).
    pub fn try_recv(&mut self) -> Result<WatchBatch, WatchError> {
        self.next(Some(Instant::now()))
    }

    fn next(&mut self, deadline: Option<Instant>) -> Result<WatchBatch, WatchError> {
        if self.ended {
            return Err(WatchError::Closed);
        }
        let r = self.db.raw().inner.shared.watch_poll(self.id, deadline);
        match r {
            Ok(ew::WatchResponse::Events { revision, events }) => {
                Ok(WatchBatch { revision: revision.0, events: events.into_iter().map(Event::from).collect() })
            }
            Ok(ew::WatchResponse::Compacted { requested, compacted }) => {
                self.ended = true;
                Err(WatchError::Compacted { requested: requested.0, compacted: compacted.0 })
            }
            Err(WatchError::Timeout) => Err(WatchError::Timeout),
            Err(e) => {
                self.ended = true;
                Err(e)
            }
        }
    }
}

impl Iterator for Watcher {
    type Item = Result<WatchBatch, WatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        Some(self.recv())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.db.raw().inner.shared.watch_cancel(self.id);
    }
}

impl From<ew::Event> for Event {
    fn from(e: ew::Event) -> Event {
        let kind = match e.kind {
            ew::EventKind::Put => EventKind::Put,
            ew::EventKind::Delete => EventKind::Delete,
        };
        Event { kind, kv: e.kv.into(), prev: e.prev.map(KeyValue::from) }
    }
}

impl Shared {
    /// Registers a watcher (creating the hub at the executor's resolved ts if there is none).
    pub(crate) fn watch_register(&self, req: WatchRequest) -> crate::Result<Result<WatchId, EtcdError>> {
        let mut st = self.lock();
        if st.closing {
            return Err(Error::Closed);
        }
        // Without a hub the executor extracts no applied notifications (nothing would consume
        // them). A new hub needs every commit from its resolved ts on: turn them on, then wait
        // out the writes submitted without them (the hub's resolved ts does not cover those).
        // While a hub exists they stay on.
        while st.watch.is_none() {
            let Some(exec) = st.exec.as_mut() else { return Err(Error::Closed) };
            exec.set_applied_notifications(true);
            if exec.unnotified_writes() == 0 {
                break;
            }
            st = self.wait_until(st, |s| s.watch.is_some() || s.exec.as_ref().is_none_or(|e| e.unnotified_writes() == 0))?;
        }
        let State { store, exec, watch, .. } = &mut *st;
        let Some(exec) = exec.as_mut() else { return Err(Error::Closed) };
        let w = watch.get_or_insert_with(|| HubState::new(exec.resolved_ts()));
        let r = with_reader(self, store, w, |hub, snap| hub.watch(snap, req.clone()));
        if w.hub.is_empty() {
            *watch = None;
            exec.set_applied_notifications(false);
        }
        if r.is_ok() {
            self.advance_watch_sync(&mut st, true);
        }
        Ok(r)
    }

    /// Feeds the hub the executor's resolved ts; wakes watchers if anything was queued.
    /// Called after every round of outputs while the hub exists. Catch-up (a replay from the
    /// write family) runs only when a consumer makes room ([`Shared::advance_watch_sync`]).
    pub(crate) fn advance_watch(&self, st: &mut State) {
        self.advance_watch_sync(st, false);
    }

    /// [`Shared::advance_watch`], then (with `sync`) catch-up of lagging watchers while it
    /// makes progress.
    fn advance_watch_sync(&self, st: &mut State, sync: bool) {
        let State { store, exec, watch, .. } = st;
        let (Some(exec), Some(w)) = (exec.as_ref(), watch.as_mut()) else { return };
        if w.failed.is_some() {
            return;
        }
        let target = exec.resolved_ts();
        let mut woke = false;
        if target > w.hub.resolved() {
            if let Err(e) = with_reader(self, store, w, |hub, snap| hub.handle_resolved(snap, target)) {
                w.failed = Some(e.to_string());
            }
            woke = true;
        }
        while sync && w.failed.is_none() && w.hub.needs_sync() {
            woke = true;
            match with_reader(self, store, w, |hub, snap| hub.sync(snap)) {
                Err(e) => w.failed = Some(e.to_string()),
                // Nothing fitted: wait for the consumers to make more room.
                Ok(0) if w.hub.needs_sync() => break,
                Ok(_) => {}
            }
        }
        if woke {
            self.watch_cond.notify_all();
        }
    }

    /// The next response of watcher `id`, waiting until `deadline` (`None`: forever).
    fn watch_poll(&self, id: WatchId, deadline: Option<Instant>) -> Result<ew::WatchResponse, WatchError> {
        let mut st = self.lock();
        loop {
            if st.closing {
                return Err(WatchError::Closed);
            }
            let Some(w) = st.watch.as_mut() else { return Err(WatchError::Closed) };
            if let Some(why) = &w.failed {
                return Err(WatchError::Failed(why.clone()));
            }
            if let Some(resp) = w.hub.poll(id) {
                return Ok(resp);
            }
            // Empty: if this (or another) watcher lags, catch it up from history now.
            if w.hub.needs_sync() {
                self.advance_watch_sync(&mut st, true);
                let Some(w) = st.watch.as_mut() else { return Err(WatchError::Closed) };
                if let Some(why) = &w.failed {
                    return Err(WatchError::Failed(why.clone()));
                }
                if let Some(resp) = w.hub.poll(id) {
                    return Ok(resp);
                }
            }
            st = match deadline {
                None => self.watch_cond.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(WatchError::Timeout);
                    }
                    self.watch_cond.wait_timeout(st, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0)
                }
            };
        }
    }

    fn watch_cancel(&self, id: WatchId) {
        let mut st: MutexGuard<'_, State> = self.lock();
        if let Some(w) = st.watch.as_mut() {
            w.hub.cancel(id);
            if w.hub.is_empty() {
                st.watch = None;
                if let Some(e) = st.exec.as_mut() {
                    e.set_applied_notifications(false);
                }
            }
        }
    }
}
