//! Point reads and one-key writes without a command: [`Executor::get_now`],
//! [`Executor::write_now`].
//!
//! A `Command::Get` with a zero read ts that is submitted while nothing is queued and its key
//! is free runs at once (see [`Executor::submit`]); when every block it needs is in memory it
//! also answers at once. For that case the command, its entry among the running commands, its
//! id and its reply are pure bookkeeping: `get_now` does the same read — a fresh timestamp
//! drawn now, the same snapshot, lock filter and blocks — on a borrowed key and returns the
//! answer, and declines (`None`, nothing changed but a drawn timestamp) whenever the command
//! would have had to wait: something queued, the key latched by a writer, the oracle waiting
//! for its reservation, a block not in memory. The caller then submits the command.
//!
//! `write_now` is the same for a blind one-key write (`Command::OnePc` with a zero start ts
//! and one put or delete): it draws the start and commit ts, runs [`txn::one_pc_single`] on
//! the borrowed key and value, latches the key and submits the batch like the command would;
//! the write is in flight under an id whose reply comes out of [`Executor::poll`] as a
//! command's would. The latch is held, as the command's, until the store applied the batch.
use super::resolved::LockFilter;
use super::snapshot::{BlockMap, StoreSnapshot};
use super::command::Response;
use super::{applied, CmdId, ExecError, ExecOutput, Executor, InFlight};
use crate::lsm::store::{Request, Store};
use crate::mvcc::error::{MvccError, ReadError};
use crate::mvcc::{read, txn};
use alloc::vec::Vec;

impl Executor {
    /// The value of `key` at a fresh timestamp, read now, or `None` when the read would have to
    /// wait (submit `Command::Get { key, read_ts: Ts::ZERO }` then). The answer is the one that
    /// command would give if submitted now. Drain [`Executor::poll`] afterwards (drawing the
    /// timestamp may have asked for a reservation write).
    pub fn get_now(&mut self, now_ms: u64, store: &mut Store, key: &[u8]) -> Option<Result<Option<Vec<u8>>, ExecError>> {
        if !self.queue.is_empty() || !self.is_ready() || self.latches.is_held(key) {
            return None;
        }
        let ts = self.tso.next(now_ms);
        // A reservation the oracle asked for is written now, as after any command's run.
        self.reserve(now_ms, store);
        let ts = ts.ok()?;
        let scratch = core::mem::take(&mut self.scratch);
        let none = BlockMap::new();
        let (result, scratch) = {
            let filter = self.locks_seeded.then_some(LockFilter(&self.locks));
            let snap = StoreSnapshot::new(store, &none, &self.cache).with_source(self.source.as_deref()).with_lock_filter(filter).with_scratch(scratch);
            let result = read::get(&snap, key, ts);
            (result, snap.into_scratch())
        };
        self.scratch = scratch;
        match result {
            Err(MvccError::Read(ReadError::Pending)) => None,
            Ok(v) => {
                self.stats.commands += 1;
                Some(Ok(v))
            }
            Err(e) => {
                self.stats.commands += 1;
                Some(Err(ExecError::Mvcc(e)))
            }
        }
    }

    /// Puts `value` under `key` (`None`: deletes it) in a one-phase commit at once, or `None`
    /// when the write would have to wait (submit `Command::OnePc` with a zero start ts then).
    /// Otherwise the id whose reply ([`Response::Committed`] or the error, e.g. `KeyIsLocked`)
    /// comes out of [`Executor::poll`], at once or when the store has applied the batch.
    pub fn write_now(&mut self, now_ms: u64, store: &mut Store, key: &[u8], value: Option<&[u8]>) -> Option<CmdId> {
        if !self.queue.is_empty() || !self.is_ready() || self.latches.is_held(key) {
            return None;
        }
        // The start ts, then the commit ts above it (a blind write: nothing can conflict).
        let start = self.tso.next(now_ms);
        let commit = match start {
            Ok(_) => self.tso.next(now_ms),
            Err(e) => Err(e),
        };
        self.reserve(now_ms, store);
        let (Ok(start_ts), Ok(commit_ts)) = (start, commit) else { return None };
        let scratch = core::mem::take(&mut self.scratch);
        let none = BlockMap::new();
        let notify = self.config.applied_notifications;
        let (result, scratch) = {
            let filter = self.locks_seeded.then_some(LockFilter(&self.locks));
            let snap = StoreSnapshot::new(store, &none, &self.cache).with_source(self.source.as_deref()).with_lock_filter(filter).with_scratch(scratch);
            let result = txn::one_pc_single(&snap, key, value, start_ts, commit_ts).and_then(|batch| {
                let applied = if notify && !batch.is_empty() { applied::extract(&snap, &batch)? } else { Vec::new() };
                Ok((batch, applied))
            });
            (result, snap.into_scratch())
        };
        self.scratch = scratch;
        let id = match result {
            Err(MvccError::Read(ReadError::Pending)) => return None,
            _ => CmdId(self.next_cmd),
        };
        self.next_cmd += 1;
        let response = Response::Committed { commit_ts };
        match result {
            Err(e) => {
                self.stats.commands += 1;
                self.outputs.push_back(ExecOutput::Reply { id, result: Err(ExecError::Mvcc(e)) });
            }
            Ok((batch, _)) if batch.is_empty() => {
                self.stats.commands += 1;
                self.outputs.push_back(ExecOutput::Reply { id, result: Ok(response) });
            }
            Ok((batch, applied)) => {
                self.latches.acquire_one(key, id);
                let lock_deletes = self.locks.submitted(&batch);
                let rid = store.submit(now_ms, Request::Write(batch));
                let unnotified = !notify;
                self.unnotified += usize::from(unnotified);
                let latched = Some(self.latches.buffer(key));
                self.writes.insert(rid, InFlight { id, response, applied, unnotified, lock_deletes, latched });
            }
        }
        Some(id)
    }
}
