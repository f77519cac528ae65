//! The versioned `Db`'s maintenance thread: lease expiry on the wall clock, physical
//! compaction (GC below a safe point) and resolution of abandoned locks.
//!
//! * **Leases.** The lease queue (the engine's [`LeaseQueue`], rebuilt from the table at open
//!   and updated after every grant, keep-alive, revoke and expiry) gives the next deadline; the
//!   thread sleeps until then and submits an expiry for each due lease — the executor checks the
//!   deadline again on its clock and deletes the lease's keys at one revision.
//! * **GC.** After [`Db::compact`](crate::Db::compact) the thread runs `Command::Gc` over the
//!   whole key space in chunks, at the safe point `min(compaction mark, oldest running
//!   transaction's start ts, oldest lock's start ts)`: versions that no read at or above the
//!   safe point can see are removed, so running transactions keep their snapshots. When the
//!   safe point reached the mark the job is done; otherwise it is tried again later.
//! * **Locks.** Every lock TTL, the thread scans the locks and resolves those whose TTL has
//!   passed (committing or rolling them back from their primary), so a crashed client's locks
//!   do not wait for a reader to meet them.
//!
//! The thread holds weak references only: it upgrades them for each round, so the database
//! closes when the user's last handle goes. The handle's drop stops and joins it.
use crate::db::Inner;
use crate::txn::{resolve_lock, TxnOptions};
use crate::versioned::Db;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;
use strata_engine::mvcc::error::LockInfo;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::lease::{LeaseChange, LeaseQueue};
use strata_engine::mvcc::Ts;

/// User keys GC looks at per command.
const GC_CHUNK: usize = 256;
/// Locks looked at per resolution round.
const LOCK_SCAN: usize = 1024;

#[derive(Default)]
struct MaintState {
    stop: bool,
    queue: LeaseQueue,
    gc_wanted: bool,
    /// Start timestamps of running transactions, counted.
    snapshots: BTreeMap<Ts, usize>,
}

/// What the maintenance thread and the handles share.
pub(crate) struct Maint {
    state: Mutex<MaintState>,
    cond: Condvar,
    next_lease: AtomicU64,
}

impl Maint {
    fn lock(&self) -> MutexGuard<'_, MaintState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_lease_id(&self) -> u64 {
        self.next_lease.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn lease_changed(&self, c: LeaseChange) {
        self.lock().queue.apply(&c);
        self.cond.notify_all();
    }

    pub(crate) fn want_gc(&self) {
        self.lock().gc_wanted = true;
        self.cond.notify_all();
    }

    /// Registers a running transaction's snapshot while `draw` draws its start ts (so GC
    /// cannot pass it in between).
    pub(crate) fn register_snapshot<E>(&self, draw: impl FnOnce() -> Result<Ts, E>) -> Result<Ts, E> {
        let mut st = self.lock();
        let ts = draw()?;
        *st.snapshots.entry(ts).or_insert(0) += 1;
        Ok(ts)
    }

    pub(crate) fn release_snapshot(&self, ts: Ts) {
        let mut st = self.lock();
        if let Some(n) = st.snapshots.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                st.snapshots.remove(&ts);
            }
        }
    }
}

/// The thread's handle, owned (through an `Arc`) by every versioned `Db` handle.
pub(crate) struct MaintHandle {
    pub(crate) maint: Arc<Maint>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for MaintHandle {
    fn drop(&mut self) {
        self.maint.lock().stop = true;
        self.maint.cond.notify_all();
        let h = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = h {
            // The thread itself may hold the last handle for a moment: it must not join itself.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

/// Starts the thread for `db` with the leases it holds now.
pub(crate) fn start(inner: Weak<Inner>, options: Arc<TxnOptions>, queue: LeaseQueue) -> std::io::Result<Arc<MaintHandle>> {
    let next = queue.next_id().0;
    let maint = Arc::new(Maint {
        state: Mutex::new(MaintState { queue, gc_wanted: true, ..MaintState::default() }),
        cond: Condvar::new(),
        next_lease: AtomicU64::new(next),
    });
    let handle = Arc::new(MaintHandle { maint: maint.clone(), thread: Mutex::new(None) });
    let weak_handle = Arc::downgrade(&handle);
    let t = std::thread::Builder::new()
        .name("strata-maintenance".into())
        .spawn(move || run(&maint, &inner, &weak_handle, &options))?;
    *handle.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    Ok(handle)
}

fn run(maint: &Maint, inner: &Weak<Inner>, handle: &Weak<MaintHandle>, options: &Arc<TxnOptions>) {
    let lock_every = options.lock_ttl.max(Duration::from_millis(100));
    let mut next_lock_scan = crate::driver::Shared::exec_now_ms() + ms(lock_every);
    loop {
        let (due, gc) = {
            let mut st = maint.lock();
            loop {
                if st.stop {
                    return;
                }
                let now = crate::driver::Shared::exec_now_ms();
                let due = st.queue.due(now);
                if !due.is_empty() || st.gc_wanted || now >= next_lock_scan {
                    let gc = std::mem::take(&mut st.gc_wanted);
                    break (due, gc);
                }
                let until = st.queue.next_deadline().unwrap_or(u64::MAX).min(next_lock_scan);
                let wait = Duration::from_millis(until.saturating_sub(now).clamp(1, 1_000));
                st = maint.cond.wait_timeout(st, wait).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
            }
        };
        let (Some(inner), Some(handle)) = (inner.upgrade(), handle.upgrade()) else { return };
        let db = Db::from_parts(inner, options.clone(), handle);
        let mut pause = false;
        for id in due {
            // A deadline the executor's clock has not reached yet (it can run slightly ahead
            // of or behind the wall clock): look again shortly.
            match db.lease_expire(id) {
                Ok(true) => {}
                Ok(false) | Err(_) => pause = true,
            }
        }
        if gc && !gc_round(&db, maint) {
            maint.lock().gc_wanted = true;
            pause = true;
        }
        let now = crate::driver::Shared::exec_now_ms();
        if now >= next_lock_scan {
            resolve_round(&db, now);
            next_lock_scan = now + ms(lock_every);
        }
        drop(db);
        if pause {
            let st = maint.lock();
            if !st.stop {
                drop(maint.cond.wait_timeout(st, Duration::from_millis(50)));
            }
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One pass of GC over the key space at the safe point; true when it reached the mark (or
/// there is nothing to do), false when it must be tried again.
fn gc_round(db: &Db, maint: &Maint) -> bool {
    let Ok(mark) = db.compaction_mark() else { return false };
    if mark == 0 {
        return true;
    }
    let mut safe = Ts(mark);
    if let Some((&oldest, _)) = maint.lock().snapshots.iter().next() {
        safe = safe.min(oldest);
    }
    if let Some(l) = db.raw().inner.shared.oldest_lock_ts() {
        safe = safe.min(l);
    }
    let mut from = Vec::new();
    loop {
        let cmd = Command::Gc { from: from.clone(), upper: None, safe_point: safe, max_keys: GC_CHUNK };
        match db.exec(cmd) {
            Ok(Response::Gc { resume_from: Some(next) }) => from = next,
            Ok(_) => return safe.0 == mark,
            Err(_) => return false,
        }
    }
}

/// Resolves locks whose TTL has passed (their owner is gone).
fn resolve_round(db: &Db, now_ms: u64) {
    let Ok(Response::Locks(locks)) = db.exec(Command::ScanLocks { from: Vec::new(), upper: None, limit: LOCK_SCAN }) else {
        return;
    };
    for (key, lock) in locks {
        if lock.start_ts.physical_ms().saturating_add(lock.ttl_ms) <= now_ms {
            let _ = resolve_lock(db, &LockInfo { key, lock }, None);
        }
    }
}
