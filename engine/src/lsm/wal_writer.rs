//! The WAL writer: group commit over one file at a time, one request in flight.
//!
//! Records wait in a buffer; when the disk is idle the whole buffer goes out as one `Append`,
//! followed (in [`Durability::SyncEachWrite`]) by one `Sync` that acknowledges every write it
//! covers. Writes arriving while a sync is in flight form the next group, so concurrent writers
//! share syncs without any timer.
//!
//! *Gathering* (sync mode, optional): a binding that knows more writers are about to arrive
//! (threads whose writes were just acknowledged and that write again at once) sets a group
//! target with [`set_group_target`](WalWriter::set_group_target). While fewer writes than the
//! target are queued, the writer holds them instead of appending, until the target is reached
//! or the binding [`release_group`](WalWriter::release_group)s (its timeout). Without it, a
//! closed loop of N writers splits into alternating partial groups (those that arrived during
//! the last sync, then the ones it acknowledged): about two syncs per N writes instead of one.
//!
//! After a failed append or sync the file is cut back to its last good length before anything
//! else is written, so a failure never leaves a torn record in the middle of the log. After any
//! failure the writer is *dormant*: it retries only when the store [`kick`](WalWriter::kick)s
//! it on new input, so a dead disk never spins the state machine.
use super::config::Durability;
use super::io::{FileName, IoRequest};
use alloc::vec::Vec;
use core::mem;

#[derive(Debug)]
enum WalOp {
    Append { file: FileName, len: u64 },
    Sync { file: FileName },
    Truncate,
}

#[derive(Debug)]
struct Inflight<T> {
    op: WalOp,
    waiters: Vec<T>,
    /// Non-syncing modes: the appended bytes, kept to retry (they are acknowledged already).
    keep: Option<Vec<u8>>,
}

/// What the writer wants next.
#[derive(Debug)]
pub(crate) enum WalNext<T> {
    /// Issue this request; feed its outcome to [`WalWriter::complete`].
    Io(IoRequest),
    /// These waiters are satisfied without I/O (nothing was left to sync).
    Ack(Vec<T>),
    /// Nothing to do.
    Idle,
}

/// What the store must do after a completion.
#[derive(Debug)]
pub(crate) enum WalEvent<T> {
    /// These waiters are durable.
    Durable(Vec<T>),
    /// These waiters failed.
    Failed(Vec<T>),
    /// Nothing to report.
    None,
}

/// Group commit state. `T` is what the store attaches to a waiting write or sync.
#[derive(Debug)]
pub(crate) struct WalWriter<T> {
    durability: Durability,
    file: FileName,
    /// Bytes known written to `file`.
    len: u64,
    /// Bytes known durable in `file`.
    synced_len: u64,
    buf: Vec<u8>,
    /// Write waiters whose records are in `buf` (sync mode).
    queued: Vec<T>,
    /// Write waiters whose records were appended but not yet synced (sync mode).
    appended: Vec<T>,
    /// Explicit sync requests, satisfied by the next sync.
    sync_waiters: Vec<T>,
    inflight: Option<Inflight<T>>,
    /// A failed append or sync must be cut away before further appends.
    broken: bool,
    /// A request failed: wait for a kick before retrying.
    dormant: bool,
    /// A rotated-out file whose tail must be appended and synced before the new file is used
    /// (non-syncing modes only).
    old_tail: Option<(FileName, Vec<u8>)>,
    /// A sync is due (timer or flush) even without waiters.
    sync_wanted: bool,
    /// True when the current file's header is in `buf` or on disk.
    header_done: bool,
    /// In the non-syncing modes, append once the buffer holds this many bytes.
    threshold: usize,
    /// Sync mode: hold queued writes until this many are queued (1: never hold).
    group_target: usize,
    /// The binding released the current group: append it whatever its size.
    released: bool,
    /// Waiters acknowledged by the last completed sync.
    last_group: usize,
}

impl<T> WalWriter<T> {
    pub fn new(durability: Durability, file: FileName, existing_len: u64, threshold: usize) -> Self {
        WalWriter {
            durability,
            file,
            len: existing_len,
            synced_len: existing_len,
            buf: Vec::new(),
            queued: Vec::new(),
            appended: Vec::new(),
            sync_waiters: Vec::new(),
            inflight: None,
            broken: false,
            dormant: false,
            old_tail: None,
            sync_wanted: false,
            header_done: existing_len > 0,
            threshold,
            group_target: 1,
            released: false,
            last_group: 0,
        }
    }

    /// Sync mode: from now on hold queued writes (no append) while fewer than `target` are
    /// queued, until [`release_group`](Self::release_group). 0 and 1 never hold.
    pub fn set_group_target(&mut self, target: usize) {
        self.group_target = target;
    }

    /// Lets the writes queued now go out at the next opportunity, however few they are.
    pub fn release_group(&mut self) {
        self.released = true;
    }

    /// True when queued writes are being held for a group (nothing in flight, the target not
    /// reached, not released): the binding should release them after its timeout.
    pub fn is_holding(&self) -> bool {
        self.durability == Durability::SyncEachWrite
            && self.inflight.is_none()
            && !self.dormant
            && !self.broken
            && self.old_tail.is_none()
            && self.holds()
    }

    /// The hold rule alone: some writes queued, fewer than the target, not released, nothing
    /// appended but unsynced (that sync goes first, taking the queued writes with it), and no
    /// explicit sync waiting.
    fn holds(&self) -> bool {
        !self.released
            && self.appended.is_empty()
            && !self.queued.is_empty()
            && self.queued.len() < self.group_target
            && self.sync_waiters.is_empty()
            && !self.sync_wanted
    }

    /// Writes queued in the buffer (sync mode): the group being gathered.
    pub fn queued_writes(&self) -> usize {
        self.queued.len()
    }

    /// Waiters (writes and explicit syncs) acknowledged by the last completed sync.
    pub fn last_group(&self) -> usize {
        self.last_group
    }

    pub fn file(&self) -> FileName {
        self.file
    }

    /// The buffer to append a record to (the file header goes first in a new file).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if !self.header_done {
            self.buf.extend_from_slice(&super::wal::file_header());
            self.header_done = true;
        }
        &mut self.buf
    }

    /// Attaches a write waiter to the records now in the buffer (sync mode).
    pub fn queue(&mut self, item: T) {
        self.queued.push(item);
    }

    /// Adds a waiter satisfied by the next completed sync.
    pub fn queue_sync(&mut self, item: T) {
        self.sync_waiters.push(item);
    }

    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// True after a failure until the writer has repaired itself.
    pub fn is_broken(&self) -> bool {
        self.broken || self.dormant
    }

    /// Lets a dormant writer retry.
    pub fn kick(&mut self) {
        self.dormant = false;
    }

    /// Nothing in flight, nothing appended but unsynced, no older segment still being closed:
    /// safe to rotate.
    pub fn is_idle(&self) -> bool {
        self.inflight.is_none() && self.appended.is_empty() && self.old_tail.is_none()
    }

    /// True when bytes were written but not synced.
    pub fn has_unsynced(&self) -> bool {
        self.len > self.synced_len || !self.buf.is_empty() || self.old_tail.is_some()
    }

    pub fn want_sync(&mut self) {
        self.sync_wanted = true;
    }

    /// Starts a new segment. In sync mode the buffered (unacknowledged) records move to the new
    /// file; otherwise they belong to the old memtable and are written and synced to the old
    /// file first.
    pub fn rotate(&mut self, next: FileName) {
        assert!(self.is_idle(), "WAL rotated while busy");
        let old = mem::replace(&mut self.file, next);
        let old_unsynced = self.len > self.synced_len;
        self.len = 0;
        self.synced_len = 0;
        self.header_done = false;
        let mut buf = mem::take(&mut self.buf);
        if self.durability == Durability::SyncEachWrite {
            if buf.starts_with(&super::wal::file_header()) {
                buf.drain(..super::frame::FILE_HEADER_LEN);
            }
            if !buf.is_empty() {
                self.buffer().extend_from_slice(&buf);
            }
        } else if !buf.is_empty() || old_unsynced {
            self.old_tail = Some((old, buf));
        }
    }

    /// The next step, if the writer is not waiting on a request.
    pub fn next_request(&mut self) -> WalNext<T> {
        if self.inflight.is_some() || self.dormant {
            return WalNext::Idle;
        }
        if let Some((file, data)) = self.old_tail.as_mut() {
            let file = *file;
            if !data.is_empty() {
                let data = mem::take(data);
                let len = data.len() as u64;
                return self.issue(WalOp::Append { file, len }, Vec::new(), None, IoRequest::Append { file, data });
            }
            return self.issue(WalOp::Sync { file }, Vec::new(), None, IoRequest::Sync { file });
        }
        if self.broken {
            let req = IoRequest::Truncate { file: self.file, len: self.len };
            return self.issue(WalOp::Truncate, Vec::new(), None, req);
        }
        let sync_mode = self.durability == Durability::SyncEachWrite;
        let urgent = sync_mode || self.sync_wanted || !self.sync_waiters.is_empty();
        if sync_mode && self.holds() {
            return WalNext::Idle;
        }
        if !self.buf.is_empty() && (urgent || self.buf.len() >= self.threshold) {
            self.released = false;
            let data = mem::take(&mut self.buf);
            let len = data.len() as u64;
            let waiters = mem::take(&mut self.queued);
            let keep = if sync_mode { None } else { Some(data.clone()) };
            let file = self.file;
            return self.issue(WalOp::Append { file, len }, waiters, keep, IoRequest::Append { file, data });
        }
        let want = !self.appended.is_empty() || self.sync_wanted || !self.sync_waiters.is_empty();
        if want && self.buf.is_empty() {
            self.sync_wanted = false;
            let mut waiters = mem::take(&mut self.appended);
            waiters.append(&mut self.sync_waiters);
            if self.len == self.synced_len {
                return WalNext::Ack(waiters);
            }
            let file = self.file;
            return self.issue(WalOp::Sync { file }, waiters, None, IoRequest::Sync { file });
        }
        WalNext::Idle
    }

    fn issue(&mut self, op: WalOp, waiters: Vec<T>, keep: Option<Vec<u8>>, req: IoRequest) -> WalNext<T> {
        self.inflight = Some(Inflight { op, waiters, keep });
        WalNext::Io(req)
    }

    /// Feeds the completion of the request in flight.
    pub fn complete(&mut self, ok: bool) -> WalEvent<T> {
        let Some(Inflight { op, mut waiters, keep }) = self.inflight.take() else { return WalEvent::None };
        match op {
            WalOp::Append { file, .. } | WalOp::Sync { file } if file != self.file => {
                // The rotated-out tail. On failure give up on it: its data sits in a frozen
                // memtable whose flush makes it durable.
                let done = matches!(op, WalOp::Sync { .. }) || !ok;
                if done {
                    self.old_tail = None;
                }
                WalEvent::None
            }
            WalOp::Append { len, .. } => {
                if ok {
                    self.len += len;
                    self.appended.append(&mut waiters);
                    return WalEvent::None;
                }
                self.broken = true;
                self.dormant = true;
                match keep {
                    Some(mut data) => {
                        // Acknowledged already (non-syncing mode): keep the bytes to retry.
                        data.extend_from_slice(&self.buf);
                        self.buf = data;
                        WalEvent::None
                    }
                    None => WalEvent::Failed(waiters),
                }
            }
            WalOp::Sync { .. } => {
                if ok {
                    self.synced_len = self.len;
                    self.last_group = waiters.len();
                    return WalEvent::Durable(waiters);
                }
                self.dormant = true;
                if self.durability == Durability::SyncEachWrite {
                    // Nothing it covered was acknowledged: cut it away.
                    self.len = self.synced_len;
                    self.broken = true;
                } else {
                    self.sync_wanted = true;
                }
                WalEvent::Failed(waiters)
            }
            WalOp::Truncate => {
                if ok {
                    self.broken = false;
                    if self.len == 0 && !self.buf.starts_with(&super::wal::file_header()) {
                        let rest = mem::take(&mut self.buf);
                        self.header_done = false;
                        self.buffer().extend_from_slice(&rest);
                    }
                    return WalEvent::None;
                }
                self.dormant = true;
                let mut failed = mem::take(&mut self.queued);
                failed.append(&mut self.sync_waiters);
                if self.durability == Durability::SyncEachWrite {
                    // Their records are dropped with them.
                    self.buf.clear();
                    self.header_done = self.len > 0;
                }
                WalEvent::Failed(failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn writer() -> WalWriter<u32> {
        WalWriter::new(Durability::SyncEachWrite, FileName::wal(3), 0, 1 << 20)
    }

    /// Queues write `w` with a one-byte record.
    fn write(wal: &mut WalWriter<u32>, w: u32) {
        wal.buffer().push(w as u8);
        wal.queue(w);
    }

    fn expect_io(next: WalNext<u32>) -> IoRequest {
        match next {
            WalNext::Io(req) => req,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// Completes the append and the sync in flight; returns the acknowledged writes.
    fn append_and_sync(wal: &mut WalWriter<u32>) -> Vec<u32> {
        assert!(matches!(wal.complete(true), WalEvent::None));
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Sync { .. }));
        match wal.complete(true) {
            WalEvent::Durable(w) => w,
            other => panic!("expected durable, got {other:?}"),
        }
    }

    #[test]
    fn without_a_target_each_idle_moment_starts_a_group() {
        let mut wal = writer();
        write(&mut wal, 1);
        assert!(!wal.is_holding());
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert!(matches!(wal.complete(true), WalEvent::None));
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Sync { .. }));
        // Writes arriving during the sync form the next group.
        write(&mut wal, 2);
        write(&mut wal, 3);
        assert!(matches!(wal.complete(true), WalEvent::Durable(w) if w == vec![1]));
        assert_eq!(wal.last_group(), 1);
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert_eq!(append_and_sync(&mut wal), vec![2, 3]);
        assert_eq!(wal.last_group(), 2);
    }

    #[test]
    fn a_group_is_held_until_its_target_or_a_release() {
        let mut wal = writer();
        wal.set_group_target(3);
        write(&mut wal, 1);
        write(&mut wal, 2);
        assert!(wal.is_holding());
        assert_eq!(wal.queued_writes(), 2);
        assert!(matches!(wal.next_request(), WalNext::Idle));
        // The third writer completes the group: one append and one sync for all three.
        write(&mut wal, 3);
        assert!(!wal.is_holding());
        match expect_io(wal.next_request()) {
            IoRequest::Append { data, .. } => assert_eq!(data[data.len() - 3..], [1, 2, 3]),
            other => panic!("{other:?}"),
        }
        assert_eq!(append_and_sync(&mut wal), vec![1, 2, 3]);
        // A release lets a short group go, once.
        write(&mut wal, 4);
        assert!(wal.is_holding());
        wal.release_group();
        assert!(!wal.is_holding());
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert_eq!(append_and_sync(&mut wal), vec![4]);
        write(&mut wal, 5);
        assert!(wal.is_holding(), "the release was for the last group only");
        // Lowering the target lets it go.
        wal.set_group_target(1);
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert_eq!(append_and_sync(&mut wal), vec![5]);
    }

    #[test]
    fn writes_arriving_while_busy_are_not_held_behind_an_unsynced_append() {
        let mut wal = writer();
        wal.set_group_target(4);
        write(&mut wal, 1);
        wal.release_group();
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        // While the append is in flight, two more writes queue.
        write(&mut wal, 2);
        write(&mut wal, 3);
        assert!(!wal.is_holding(), "a request is in flight");
        assert!(matches!(wal.complete(true), WalEvent::None));
        // Write 1 is appended but unsynced: its sync must not wait, and takes 2 and 3 along.
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert_eq!(append_and_sync(&mut wal), vec![1, 2, 3]);
    }

    #[test]
    fn an_explicit_sync_is_never_held() {
        let mut wal = writer();
        wal.set_group_target(8);
        write(&mut wal, 1);
        assert!(wal.is_holding());
        wal.queue_sync(99);
        assert!(!wal.is_holding());
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
        assert_eq!(append_and_sync(&mut wal), vec![1, 99]);
    }

    #[test]
    fn other_modes_never_hold() {
        let mut wal: WalWriter<u32> = WalWriter::new(Durability::Manual, FileName::wal(3), 0, 1);
        wal.set_group_target(8);
        wal.buffer().push(1);
        assert!(!wal.is_holding());
        assert!(matches!(expect_io(wal.next_request()), IoRequest::Append { .. }));
    }
}
