//! The commands the executor runs: one enum variant per pure command, with what it reads and
//! latches ([`Command::footprint`]) and how it runs ([`Command::run`]).
//!
//! Adding a command is one variant, one arm in `footprint`, `needs_ts` and `run`, and (if it
//! answers something new) one [`Response`] variant: the executor's latching, reruns on
//! `Pending`, write submission and applied notifications are the same for every command.
use crate::lsm::batch::Batch;
use crate::mvcc::error::EtcdError;
use crate::mvcc::record::Lock;
use super::etcd::{EtcdCommand, EtcdResponse};
use crate::mvcc::read::{self, KeyValue};
use crate::mvcc::reader::{RawReader, SnapshotReader};
use crate::mvcc::txn::{self, PrewriteRequest, TxnStatus};
use crate::mvcc::Ts;
use alloc::vec;
use alloc::vec::Vec;

/// A request to the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The value of `key` as of `read_ts` ([`read::get`]); `read_ts` zero reads at a fresh
    /// timestamp drawn when the read runs (the latest committed value). Answers
    /// [`Response::Value`].
    Get {
        /// The user key.
        key: Vec<u8>,
        /// The read timestamp.
        read_ts: Ts,
    },
    /// Up to `limit` live pairs in `[from, upper)` as of `read_ts` ([`read::scan`]). Answers
    /// [`Response::Entries`].
    Scan {
        /// Lower bound (inclusive).
        from: Vec<u8>,
        /// Upper bound (exclusive), or the end of the key space.
        upper: Option<Vec<u8>>,
        /// The read timestamp.
        read_ts: Ts,
        /// At most this many pairs.
        limit: usize,
    },
    /// [`txn::prewrite`]. Answers [`Response::Done`].
    Prewrite(PrewriteRequest),
    /// [`txn::commit`]. Answers [`Response::Done`].
    Commit {
        /// The keys to commit (the primary first, or alone).
        keys: Vec<Vec<u8>>,
        /// The transaction's start ts.
        start_ts: Ts,
        /// Its commit ts (from [`Command::Timestamp`], drawn after every prewrite succeeded).
        commit_ts: Ts,
    },
    /// [`txn::rollback`]. Answers [`Response::Done`].
    Rollback {
        /// The keys.
        keys: Vec<Vec<u8>>,
        /// The transaction's start ts.
        start_ts: Ts,
    },
    /// [`txn::cleanup`] at the executor's time input. Answers [`Response::Done`].
    Cleanup {
        /// The key.
        key: Vec<u8>,
        /// The transaction's start ts.
        start_ts: Ts,
    },
    /// [`txn::check_txn_status`] at the executor's time input. Answers [`Response::TxnStatus`].
    CheckTxnStatus {
        /// The transaction's primary key.
        primary: Vec<u8>,
        /// The transaction's start ts.
        lock_ts: Ts,
        /// The blocked caller's start or read ts (its lock's `min_commit_ts` is pushed above).
        caller_start_ts: Option<Ts>,
        /// With no trace of the transaction, write a rollback record.
        rollback_if_not_exist: bool,
    },
    /// [`txn::resolve_lock`]. Answers [`Response::Done`].
    ResolveLock {
        /// The locked keys.
        keys: Vec<Vec<u8>>,
        /// The transaction's start ts.
        start_ts: Ts,
        /// Its outcome: committed at this ts, or rolled back.
        commit_ts: Option<Ts>,
    },
    /// [`txn::txn_heartbeat`]. Answers [`Response::Ttl`].
    TxnHeartbeat {
        /// The primary key.
        primary: Vec<u8>,
        /// The transaction's start ts.
        start_ts: Ts,
        /// The TTL wanted, in ms.
        advise_ttl_ms: u64,
    },
    /// [`txn::one_pc`] with a commit ts the executor draws while holding the keys' latches.
    /// A zero `start_ts` is drawn there too, at the first run, before the commit ts (a blind
    /// write, which nothing can conflict with). Answers [`Response::Committed`].
    OnePc(PrewriteRequest),
    /// [`txn::gc`] over `[from, upper)`. Answers [`Response::Gc`].
    Gc {
        /// Lower bound.
        from: Vec<u8>,
        /// Upper bound (exclusive), or the end.
        upper: Option<Vec<u8>>,
        /// Versions no read at or above it can see are removed.
        safe_point: Ts,
        /// At most this many user keys.
        max_keys: usize,
    },
    /// A fresh timestamp from the oracle. Answers [`Response::Timestamp`].
    Timestamp,
    /// Every lock in `[from, upper)`, at most `limit` (lock resolution in the background).
    /// Answers [`Response::Locks`].
    ScanLocks {
        /// Lower bound.
        from: Vec<u8>,
        /// Upper bound (exclusive), or the end.
        upper: Option<Vec<u8>>,
        /// At most this many locks.
        limit: usize,
    },
    /// One of etcd's commands (revisions, compaction, leases, compare-and-swap). Answers
    /// [`Response::Etcd`].
    Etcd(EtcdCommand),
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The value read (`None`: absent or deleted).
    Value(Option<Vec<u8>>),
    /// The pairs scanned.
    Entries(Vec<KeyValue>),
    /// The command's batch (if any) is applied.
    Done,
    /// A one-phase commit is applied at this ts.
    Committed {
        /// The commit ts.
        commit_ts: Ts,
    },
    /// The transaction's status (after this command's batch, if any, was applied).
    TxnStatus(TxnStatus),
    /// The TTL in force, in ms.
    Ttl(u64),
    /// GC's batch is applied; continue from here (`None`: the range is done).
    Gc {
        /// Where to continue.
        resume_from: Option<Vec<u8>>,
    },
    /// A timestamp.
    Timestamp(Ts),
    /// Locks scanned: `(user key, lock)`.
    Locks(Vec<(Vec<u8>, Lock)>),
    /// An etcd command's answer.
    Etcd(EtcdResponse),
}

/// What a command reads and writes, for ordering it against others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Footprint {
    /// Writes these keys: holds their latches from its run until its batch is applied.
    Write(Vec<Vec<u8>>),
    /// Reads one key: waits while a writer holds (or waits for) it, holds nothing.
    Read(Vec<u8>),
    /// Reads `[from, upper)`: waits while a writer holds (or waits for) a key in it.
    ReadRange(Vec<u8>, Option<Vec<u8>>),
    /// Orders against nothing (GC touches only versions below its safe point, which no
    /// running transaction writes; timestamps touch no key).
    Free,
}

/// Inputs of a run besides the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunContext {
    /// The executor's time input, in ms.
    pub now_ms: u64,
    /// The timestamp drawn for this run, when [`Command::needs_ts`].
    pub ts: Ts,
}

impl Command {
    /// What the command reads and writes.
    pub fn footprint(&self) -> Footprint {
        match self {
            Command::Get { key, .. } => Footprint::Read(key.clone()),
            Command::Scan { from, upper, .. } => Footprint::ReadRange(from.clone(), upper.clone()),
            Command::Prewrite(req) | Command::OnePc(req) => {
                Footprint::Write(req.mutations.iter().map(|m| m.key().to_vec()).collect())
            }
            Command::Commit { keys, .. } | Command::Rollback { keys, .. } | Command::ResolveLock { keys, .. } => {
                Footprint::Write(keys.clone())
            }
            Command::Cleanup { key, .. } => Footprint::Write(vec![key.clone()]),
            Command::CheckTxnStatus { primary, .. } | Command::TxnHeartbeat { primary, .. } => {
                Footprint::Write(vec![primary.clone()])
            }
            Command::Gc { .. } | Command::Timestamp | Command::ScanLocks { .. } => Footprint::Free,
            Command::Etcd(c) => c.footprint(),
        }
    }

    /// The one key a point read or a one-key write touches, and whether it writes it: the
    /// same as [`Command::footprint`] for those commands (`Read(key)` / `Write([key])`),
    /// without building one. `None` for every other command.
    pub fn single_key(&self) -> Option<(&[u8], bool)> {
        match self {
            Command::Get { key, .. } => Some((key, false)),
            Command::Prewrite(req) | Command::OnePc(req) if req.mutations.len() == 1 => {
                req.mutations.first().map(|m| (m.key(), true))
            }
            _ => None,
        }
    }

    /// True when a run needs a fresh timestamp ([`RunContext::ts`]).
    pub fn needs_ts(&self) -> bool {
        match self {
            Command::Get { read_ts, .. } => *read_ts == Ts::ZERO,
            Command::OnePc(_) | Command::Timestamp => true,
            Command::Etcd(c) => c.needs_ts(),
            _ => false,
        }
    }

    /// Fills in what the executor draws once, at the first run: the start ts of a blind
    /// one-phase commit (zero in the request). Returns true when it needs that timestamp.
    pub fn wants_start_ts(&self) -> bool {
        matches!(self, Command::OnePc(req) if req.start_ts == Ts::ZERO)
    }

    /// Sets the start ts [`Command::wants_start_ts`] asked for.
    pub fn set_start_ts(&mut self, ts: Ts) {
        if let Command::OnePc(req) = self {
            req.start_ts = ts;
        }
    }

    /// Runs the pure command: its answer and the batch to apply (empty: nothing to write).
    pub fn run<R: SnapshotReader + RawReader>(&self, r: &R, ctx: RunContext) -> Result<(Response, Batch), EtcdError> {
        let done = |b: Batch| Ok((Response::Done, b));
        match self {
            Command::Get { key, read_ts } => {
                let at = if *read_ts == Ts::ZERO { ctx.ts } else { *read_ts };
                Ok((Response::Value(read::get(r, key, at)?), Batch::new()))
            }
            Command::Scan { from, upper, read_ts, limit } => {
                Ok((Response::Entries(read::scan(r, from, upper.as_deref(), *read_ts, *limit)?), Batch::new()))
            }
            Command::Prewrite(req) => done(txn::prewrite(r, req)?),
            Command::Commit { keys, start_ts, commit_ts } => done(txn::commit(r, keys, *start_ts, *commit_ts)?),
            Command::Rollback { keys, start_ts } => done(txn::rollback(r, keys, *start_ts)?),
            Command::Cleanup { key, start_ts } => done(txn::cleanup(r, key, *start_ts, ctx.now_ms)?),
            Command::CheckTxnStatus { primary, lock_ts, caller_start_ts, rollback_if_not_exist } => {
                let req = txn::CheckTxnStatus {
                    primary: primary.clone(),
                    lock_ts: *lock_ts,
                    caller_start_ts: *caller_start_ts,
                    now_ms: ctx.now_ms,
                    rollback_if_not_exist: *rollback_if_not_exist,
                };
                let (status, b) = txn::check_txn_status(r, &req)?;
                Ok((Response::TxnStatus(status), b))
            }
            Command::ResolveLock { keys, start_ts, commit_ts } => done(txn::resolve_lock(r, keys, *start_ts, *commit_ts)?),
            Command::TxnHeartbeat { primary, start_ts, advise_ttl_ms } => {
                let (ttl, b) = txn::txn_heartbeat(r, primary, *start_ts, *advise_ttl_ms)?;
                Ok((Response::Ttl(ttl), b))
            }
            Command::OnePc(req) => {
                let commit_ts = ctx.ts.max(req.min_commit_ts);
                Ok((Response::Committed { commit_ts }, txn::one_pc(r, req, commit_ts)?))
            }
            Command::Gc { from, upper, safe_point, max_keys } => {
                let out = txn::gc(r, from, upper.as_deref(), *safe_point, *max_keys)?;
                Ok((Response::Gc { resume_from: out.resume_from }, out.batch))
            }
            Command::Timestamp => Ok((Response::Timestamp(ctx.ts), Batch::new())),
            Command::ScanLocks { from, upper, limit } => {
                Ok((Response::Locks(r.scan_locks(from, upper.as_deref(), *limit)?), Batch::new()))
            }
            Command::Etcd(c) => c.run(r, ctx).map(|(resp, b)| (Response::Etcd(resp), b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::txn::Mutation;

    #[test]
    fn single_key_agrees_with_footprint() {
        let one = PrewriteRequest::new(b"k".to_vec(), Ts(5), 10).with(Mutation::Put(b"k".to_vec(), b"v".to_vec()));
        let two = one.clone().with(Mutation::Delete(b"j".to_vec()));
        let cmds = [
            Command::Get { key: b"k".to_vec(), read_ts: Ts::ZERO },
            Command::OnePc(one.clone()),
            Command::Prewrite(one),
            Command::OnePc(two),
            Command::Timestamp,
            Command::Cleanup { key: b"k".to_vec(), start_ts: Ts(5) },
        ];
        for cmd in cmds {
            match (cmd.single_key(), cmd.footprint()) {
                (Some((k, false)), Footprint::Read(r)) => assert_eq!(k, r.as_slice()),
                (Some((k, true)), Footprint::Write(w)) => assert_eq!(w, vec![k.to_vec()]),
                (None, _) => {}
                (s, f) => panic!("{cmd:?}: single_key {s:?} but footprint {f:?}"),
            }
        }
    }
}
