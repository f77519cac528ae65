//! The Percolator commands as pure functions: `(reader, request) → write batch | error`.
//!
//! Each command reads the state through a [`SnapshotReader`] and returns the batch that moves
//! it forward (encoded keys of [`super::codec`], records of [`super::record`]), or a typed
//! [`MvccError`] and no batch. Applying the batch atomically, and not letting another command
//! on the same keys read between this command's reads and that apply (TiKV's latches), is the
//! caller's job. Commands are idempotent where TiKV's are: a retried commit or rollback finds
//! its own earlier outcome and succeeds without writing.
//!
//! The transaction protocol (TiKV's): buffer writes; `prewrite` every key with a lock naming
//! the primary; `commit` the primary (this is the commit point), then the secondaries. A
//! transaction abandoned on the way leaves locks; a reader that meets one calls
//! `check_txn_status` on the primary (which rolls it back once its TTL has passed) and then
//! `resolve_lock` on the locked keys with the outcome.
use super::codec;
use super::error::{ConflictReason, LockInfo, MvccError};
use super::reader::SnapshotReader;
use super::revision;
use super::record::{Lock, LockKind, Write, WriteKind, SHORT_VALUE_MAX_LEN};
use super::Ts;
use crate::lsm::batch::Batch;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// One change a transaction makes to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Write `value` to `key`.
    Put(Vec<u8>, Vec<u8>),
    /// Delete `key`.
    Delete(Vec<u8>),
    /// Lock `key` without changing it (protects a read from concurrent writers).
    Lock(Vec<u8>),
    /// Write `value` to `key`, failing with `AlreadyExists` if the key has a value.
    Insert(Vec<u8>, Vec<u8>),
}

impl Mutation {
    /// The key it changes.
    pub fn key(&self) -> &[u8] {
        match self {
            Mutation::Put(k, _)
            | Mutation::Delete(k)
            | Mutation::Lock(k)
            | Mutation::Insert(k, _) => k,
        }
    }

    fn lock_kind(&self) -> LockKind {
        match self {
            Mutation::Put(..) | Mutation::Insert(..) => LockKind::Put,
            Mutation::Delete(_) => LockKind::Delete,
            Mutation::Lock(_) => LockKind::Lock,
        }
    }

    fn value(&self) -> Option<&[u8]> {
        match self {
            Mutation::Put(_, v) | Mutation::Insert(_, v) => Some(v),
            Mutation::Delete(_) | Mutation::Lock(_) => None,
        }
    }
}

/// A prewrite (or one-phase commit) of a transaction's mutations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrewriteRequest {
    /// The changes; each key at most once.
    pub mutations: Vec<Mutation>,
    /// The primary key (need not be among these mutations: secondaries are prewritten apart).
    pub primary: Vec<u8>,
    /// The transaction's start ts.
    pub start_ts: Ts,
    /// The locks' time to live, from `start_ts`'s physical time, in ms.
    pub lock_ttl_ms: u64,
    /// Lower bound for the commit ts (`start_ts + 1` if smaller).
    pub min_commit_ts: Ts,
    /// Number of keys in the whole transaction (a hint stored in the locks).
    pub txn_size: u64,
}

impl PrewriteRequest {
    /// A request with no mutations yet.
    pub fn new(primary: Vec<u8>, start_ts: Ts, lock_ttl_ms: u64) -> PrewriteRequest {
        PrewriteRequest {
            mutations: Vec::new(),
            primary,
            start_ts,
            lock_ttl_ms,
            min_commit_ts: Ts::ZERO,
            txn_size: 0,
        }
    }

    /// Adds a mutation.
    pub fn with(mut self, m: Mutation) -> PrewriteRequest {
        self.mutations.push(m);
        self
    }
}

/// What `check_txn_status` learned about a transaction from its primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// Still running: its primary lock (after any push of `min_commit_ts`).
    Locked {
        /// The primary lock as it is after the command.
        lock: Lock,
    },
    /// Committed at `commit_ts`: resolve its locks by committing them there.
    Committed {
        /// The commit ts.
        commit_ts: Ts,
    },
    /// Already rolled back.
    RolledBack,
    /// Its TTL had passed: this command's batch rolls the primary back.
    TtlExpired,
    /// No lock and no record: this command's batch writes a rollback record, so a late
    /// prewrite of it fails.
    LockNotExistRollback,
}

impl TxnStatus {
    /// The final outcome: `Some(Some(commit_ts))` if committed, `Some(None)` if rolled back,
    /// `None` while the transaction is still `Locked`.
    pub fn commit_ts(&self) -> Option<Option<Ts>> {
        match self {
            TxnStatus::Locked { .. } => None,
            TxnStatus::Committed { commit_ts } => Some(Some(*commit_ts)),
            _ => Some(None),
        }
    }
}

/// A `check_txn_status` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckTxnStatus {
    /// The transaction's primary key.
    pub primary: Vec<u8>,
    /// The transaction's start ts.
    pub lock_ts: Ts,
    /// The start (or read) ts of the caller blocked by the lock: the lock's `min_commit_ts` is
    /// pushed above it, so the caller may read past it.
    pub caller_start_ts: Option<Ts>,
    /// The time input, in ms, against which the TTL is checked.
    pub now_ms: u64,
    /// With no lock and no record, write a rollback record (else fail with `TxnNotFound`).
    pub rollback_if_not_exist: bool,
}

/// Prewrites `req`'s mutations: one lock each (long values into the default CF).
///
/// Errors (TiKV's prewrite): `KeyIsLocked` if another transaction holds a lock;
/// `WriteConflict` if a write committed after `start_ts` (or our own rollback record) exists;
/// `AlreadyExists` for an insert over a value. A key already prewritten by this transaction is
/// left as it is (a retried prewrite); a key whose newest record is this transaction's commit is
/// skipped (a prewrite retried after commit).
pub fn prewrite(r: &impl SnapshotReader, req: &PrewriteRequest) -> Result<Batch, MvccError> {
    check_request(req)?;
    let mut b = Batch::new();
    for m in &req.mutations {
        let key = m.key();
        if let Some(lock) = r.lock(key)? {
            if lock.start_ts != req.start_ts {
                return Err(locked(key, lock));
            }
            if lock.kind != LockKind::Pessimistic {
                continue;
            }
        } else if !check_newer_version(r, key, req.start_ts)? {
            continue;
        }
        check_insert(r, m)?;
        let mut lock = Lock::new(
            m.lock_kind(),
            req.primary.clone(),
            req.start_ts,
            req.lock_ttl_ms,
        );
        lock.min_commit_ts = req.min_commit_ts.max(req.start_ts.next());
        lock.txn_size = req.txn_size;
        lock.short_value = stash_value(&mut b, key, req.start_ts, m.value());
        b.put(&codec::lock_key(key), &lock.encode());
    }
    Ok(b)
}

/// Commits the transaction `start_ts` at `commit_ts` on `keys`: each lock becomes a write record.
///
/// Idempotent: a key already committed by this transaction is fine. Errors (TiKV's commit):
/// `TxnLockNotFound` when the lock is gone and the transaction was rolled back (or never
/// locked the key); `CommitTsExpired` when `commit_ts` is below the lock's `min_commit_ts`.
pub fn commit(
    r: &impl SnapshotReader,
    keys: &[Vec<u8>],
    start_ts: Ts,
    commit_ts: Ts,
) -> Result<Batch, MvccError> {
    if commit_ts <= start_ts {
        return Err(MvccError::InvalidRequest(
            "commit ts must be above start ts",
        ));
    }
    let mut b = Batch::new();
    for key in keys {
        match r.lock(key)? {
            Some(lock) if lock.start_ts == start_ts && lock.kind != LockKind::Pessimistic => {
                commit_lock(r, &mut b, key, lock, commit_ts)?;
            }
            _ => match txn_record(r, key, start_ts)? {
                TxnRecord::Committed { .. } => {}
                TxnRecord::RolledBack | TxnRecord::None => {
                    return Err(MvccError::TxnLockNotFound {
                        key: key.clone(),
                        start_ts,
                        commit_ts,
                    });
                }
            },
        }
    }
    Ok(b)
}

/// Rolls the transaction `start_ts` back on `keys`: removes its locks and writes rollback
/// records, which make a late prewrite of the transaction fail (TiKV's protected rollback).
///
/// Idempotent. Fails with `Committed` if the transaction has committed a key.
pub fn rollback(
    r: &impl SnapshotReader,
    keys: &[Vec<u8>],
    start_ts: Ts,
) -> Result<Batch, MvccError> {
    let mut b = Batch::new();
    for key in keys {
        rollback_key(r, &mut b, key, start_ts)?;
    }
    Ok(b)
}

/// Rolls back the transaction `start_ts` on one key only if its lock has expired at `now_ms`
/// (TiKV's cleanup); `KeyIsLocked` while the lock is alive, `Committed` if it committed.
pub fn cleanup(
    r: &impl SnapshotReader,
    key: &[u8],
    start_ts: Ts,
    now_ms: u64,
) -> Result<Batch, MvccError> {
    if let Some(lock) = r.lock(key)? {
        if lock.start_ts == start_ts && !lock.is_expired(now_ms) {
            return Err(locked(key, lock));
        }
    }
    let mut b = Batch::new();
    rollback_key(r, &mut b, key, start_ts)?;
    Ok(b)
}

/// Reports the state of a transaction from its primary key, rolling it back if its TTL has
/// passed and pushing its `min_commit_ts` above `caller_start_ts` if it is alive.
pub fn check_txn_status(
    r: &impl SnapshotReader,
    req: &CheckTxnStatus,
) -> Result<(TxnStatus, Batch), MvccError> {
    let mut b = Batch::new();
    let key = &req.primary;
    match r.lock(key)? {
        Some(lock) if lock.start_ts == req.lock_ts => {
            if lock.is_expired(req.now_ms) {
                unlock(&mut b, key, &lock);
                put_rollback_record(r, &mut b, key, req.lock_ts)?;
                return Ok((TxnStatus::TtlExpired, b));
            }
            let mut lock = lock;
            if let Some(caller) = req.caller_start_ts {
                if lock.kind != LockKind::Pessimistic
                    && lock.min_commit_ts <= caller
                    && caller < Ts::MAX
                {
                    lock.min_commit_ts = caller.next();
                    b.put(&codec::lock_key(key), &lock.encode());
                }
            }
            Ok((TxnStatus::Locked { lock }, b))
        }
        _ => match txn_record(r, key, req.lock_ts)? {
            TxnRecord::Committed { commit_ts } => Ok((TxnStatus::Committed { commit_ts }, b)),
            TxnRecord::RolledBack => Ok((TxnStatus::RolledBack, b)),
            TxnRecord::None if req.rollback_if_not_exist => {
                put_rollback_record(r, &mut b, key, req.lock_ts)?;
                Ok((TxnStatus::LockNotExistRollback, b))
            }
            TxnRecord::None => Err(MvccError::TxnNotFound {
                key: key.clone(),
                start_ts: req.lock_ts,
            }),
        },
    }
}

/// Resolves the locks of the transaction `start_ts` on `keys` once its fate is known:
/// `Some(commit_ts)` commits them, `None` rolls them back. Keys without its lock are left alone
/// (when committing) or protected by a rollback record (when rolling back).
pub fn resolve_lock(
    r: &impl SnapshotReader,
    keys: &[Vec<u8>],
    start_ts: Ts,
    commit_ts: Option<Ts>,
) -> Result<Batch, MvccError> {
    let mut b = Batch::new();
    for key in keys {
        match commit_ts {
            Some(commit_ts) => {
                if commit_ts <= start_ts {
                    return Err(MvccError::InvalidRequest(
                        "commit ts must be above start ts",
                    ));
                }
                if let Some(lock) = r.lock(key)? {
                    if lock.start_ts == start_ts {
                        commit_lock(r, &mut b, key, lock, commit_ts)?;
                    }
                }
            }
            None => rollback_key(r, &mut b, key, start_ts)?,
        }
    }
    Ok(b)
}

/// Extends the TTL of the transaction `start_ts`'s primary lock to at least `advise_ttl_ms`;
/// returns the TTL now in force. `TxnNotFound` if the lock is gone.
pub fn txn_heartbeat(
    r: &impl SnapshotReader,
    primary: &[u8],
    start_ts: Ts,
    advise_ttl_ms: u64,
) -> Result<(u64, Batch), MvccError> {
    let mut b = Batch::new();
    match r.lock(primary)? {
        Some(mut lock) if lock.start_ts == start_ts => {
            if advise_ttl_ms > lock.ttl_ms {
                lock.ttl_ms = advise_ttl_ms;
                b.put(&codec::lock_key(primary), &lock.encode());
            }
            Ok((lock.ttl_ms, b))
        }
        _ => Err(MvccError::TxnNotFound {
            key: primary.to_vec(),
            start_ts,
        }),
    }
}

/// Prewrites and commits in one step, writing no locks: for a transaction whose keys are all
/// in this store (the embedded case). The same checks as [`prewrite`]; `commit_ts` must be
/// above `start_ts` and must be drawn so that no reader holds a read ts at or above it that has
/// already read these keys (see `docs/mvcc.md`).
pub fn one_pc(
    r: &impl SnapshotReader,
    req: &PrewriteRequest,
    commit_ts: Ts,
) -> Result<Batch, MvccError> {
    check_request(req)?;
    if commit_ts <= req.start_ts || commit_ts < req.min_commit_ts {
        return Err(MvccError::InvalidRequest(
            "commit ts must be above start ts and min_commit_ts",
        ));
    }
    let mut b = Batch::new();
    for m in &req.mutations {
        let insert = matches!(m, Mutation::Insert(..));
        one_pc_key(r, &mut b, m.key(), m.lock_kind(), m.value(), insert, req.start_ts, commit_ts)?;
    }
    Ok(b)
}

/// [`one_pc`] of one put (`value` given) or delete (`None`) of `key`, borrowed: the same
/// checks and the same batch as `one_pc` of a request holding that one mutation with
/// `min_commit_ts` zero.
pub fn one_pc_single(
    r: &impl SnapshotReader,
    key: &[u8],
    value: Option<&[u8]>,
    start_ts: Ts,
    commit_ts: Ts,
) -> Result<Batch, MvccError> {
    if start_ts == Ts::ZERO || start_ts == Ts::MAX {
        return Err(MvccError::InvalidRequest("start ts must be between zero and max"));
    }
    if commit_ts <= start_ts {
        return Err(MvccError::InvalidRequest(
            "commit ts must be above start ts and min_commit_ts",
        ));
    }
    let mut b = Batch::new();
    let kind = if value.is_some() { LockKind::Put } else { LockKind::Delete };
    one_pc_key(r, &mut b, key, kind, value, false, start_ts, commit_ts)?;
    Ok(b)
}

/// One mutation of a one-phase commit (`insert`: fail if the key has a value).
#[allow(clippy::too_many_arguments)]
fn one_pc_key(
    r: &impl SnapshotReader,
    b: &mut Batch,
    key: &[u8],
    lock_kind: LockKind,
    value: Option<&[u8]>,
    insert: bool,
    start_ts: Ts,
    commit_ts: Ts,
) -> Result<(), MvccError> {
    if let Some(lock) = r.lock(key)? {
        return Err(locked(key, lock));
    }
    // The newest record serves both the conflict check and the etcd fields below.
    let newest = r.seek_write(key, Ts::MAX)?;
    if !newer_version_check(newest.as_ref(), key, start_ts)? {
        return Ok(());
    }
    if insert {
        check_insert_key(r, key)?;
    }
    let kind = match lock_kind {
        LockKind::Put => WriteKind::Put,
        LockKind::Delete => WriteKind::Delete,
        LockKind::Lock | LockKind::Pessimistic => WriteKind::Lock,
    };
    let mut w = Write::new(kind, start_ts);
    // A short value is encoded into the record straight from the request (no copy).
    let short = match value {
        Some(v) if v.len() > SHORT_VALUE_MAX_LEN => {
            b.put(&codec::default_key(key, start_ts), v);
            None
        }
        v => v,
    };
    if kind == WriteKind::Put {
        (w.create_revision, w.version) = match newest {
            // Below `start_ts` (the check passed), so the newest version below `commit_ts`.
            Some((ts, nw)) if ts < commit_ts && nw.is_data() => {
                if nw.kind == WriteKind::Put {
                    let (create, version) = revision::put_meta(r, key, ts, &nw)?;
                    (create, version.saturating_add(1))
                } else {
                    (commit_ts, 1)
                }
            }
            None => (commit_ts, 1),
            // A rollback or lock record on top: walk on to the data version.
            Some(_) => revision::next_put_meta(r, key, commit_ts)?,
        };
    }
    b.put_with(
        codec::write_key_len(key.len()),
        w.encoded_len_with(short),
        |out| codec::write_key_into(key, commit_ts, out),
        |out| w.encode_with(short, out),
    );
    Ok(())
}

/// What GC did over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcOutcome {
    /// The deletions to apply.
    pub batch: Batch,
    /// Where to continue (`None`: the range is done).
    pub resume_from: Option<Vec<u8>>,
}

/// Removes, for up to `max_keys` user keys in `[from, upper)`, every version no read at or
/// above `safe_point` can see: keeps the newest put at or below it, drops older versions with
/// their long values, rollback and lock records at or below it, and a delete that is the newest
/// version at or below it. Versions above the safe point are untouched.
///
/// The caller guarantees that no transaction with start ts at or below `safe_point` is still
/// running, and has resolved the locks below it first (TiKV's GC worker does both).
pub fn gc(
    r: &impl SnapshotReader,
    from: &[u8],
    upper: Option<&[u8]>,
    safe_point: Ts,
    max_keys: usize,
) -> Result<GcOutcome, MvccError> {
    let mut b = Batch::new();
    let mut cursor = from.to_vec();
    for _ in 0..max_keys {
        let Some(key) = r.next_key(&cursor, upper)? else {
            return Ok(GcOutcome {
                batch: b,
                resume_from: None,
            });
        };
        gc_key(r, &mut b, &key, safe_point)?;
        cursor = key;
        cursor.push(0);
    }
    let more = r.next_key(&cursor, upper)?.is_some();
    Ok(GcOutcome {
        batch: b,
        resume_from: more.then_some(cursor),
    })
}

fn gc_key(
    r: &impl SnapshotReader,
    b: &mut Batch,
    key: &[u8],
    safe_point: Ts,
) -> Result<(), MvccError> {
    let mut kept = false;
    let mut ts = safe_point;
    while let Some((commit_ts, w)) = r.seek_write(key, ts)? {
        let keep = !kept && w.kind == WriteKind::Put;
        kept |= w.is_data();
        if !keep {
            b.delete(&codec::write_key(key, commit_ts));
            if w.kind == WriteKind::Put && w.short_value.is_none() {
                b.delete(&codec::default_key(key, w.start_ts));
            }
        }
        if commit_ts == Ts::ZERO {
            break;
        }
        ts = commit_ts.prev();
    }
    Ok(())
}

/// A transaction's outcome on one key, from the write CF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnRecord {
    /// It committed the key at `commit_ts`.
    Committed {
        /// The commit ts.
        commit_ts: Ts,
    },
    /// It was rolled back on the key.
    RolledBack,
    /// No record of it on the key.
    None,
}

/// Looks for the record of the transaction `start_ts` among `key`'s writes at or above
/// `start_ts` (TiKV's `get_txn_commit_record`).
pub fn txn_record(
    r: &impl SnapshotReader,
    key: &[u8],
    start_ts: Ts,
) -> Result<TxnRecord, MvccError> {
    let mut ts = Ts::MAX;
    while let Some((commit_ts, w)) = r.seek_write(key, ts)? {
        if commit_ts < start_ts {
            break;
        }
        if w.start_ts == start_ts {
            return Ok(match w.kind {
                WriteKind::Rollback => TxnRecord::RolledBack,
                _ => TxnRecord::Committed { commit_ts },
            });
        }
        if commit_ts == start_ts {
            return Ok(if w.overlapped_rollback {
                TxnRecord::RolledBack
            } else {
                TxnRecord::None
            });
        }
        ts = commit_ts.prev();
    }
    Ok(TxnRecord::None)
}

fn check_request(req: &PrewriteRequest) -> Result<(), MvccError> {
    if req.start_ts == Ts::ZERO || req.start_ts == Ts::MAX {
        return Err(MvccError::InvalidRequest(
            "start ts must be between zero and max",
        ));
    }
    let mut seen = BTreeSet::new();
    if req.mutations.len() > 1 && !req.mutations.iter().all(|m| seen.insert(m.key())) {
        return Err(MvccError::InvalidRequest("a key appears twice"));
    }
    Ok(())
}

/// TiKV's `check_for_newer_version`: `Ok(true)` to go on, `Ok(false)` when the newest record is
/// this transaction's own commit (nothing to do), `WriteConflict` when another transaction
/// committed at or after `start_ts`, or this one was rolled back.
fn check_newer_version(
    r: &impl SnapshotReader,
    key: &[u8],
    start_ts: Ts,
) -> Result<bool, MvccError> {
    newer_version_check(r.seek_write(key, Ts::MAX)?.as_ref(), key, start_ts)
}

/// [`check_newer_version`] on the key's newest record, already read.
fn newer_version_check(
    newest: Option<&(Ts, Write)>,
    key: &[u8],
    start_ts: Ts,
) -> Result<bool, MvccError> {
    let Some(&(commit_ts, ref w)) = newest else {
        return Ok(true);
    };
    if w.start_ts == start_ts && w.kind != WriteKind::Rollback {
        return Ok(false);
    }
    let rolled_back =
        commit_ts == start_ts && (w.kind == WriteKind::Rollback || w.overlapped_rollback);
    if commit_ts > start_ts || rolled_back {
        return Err(MvccError::WriteConflict {
            key: key.to_vec(),
            start_ts,
            conflict_start_ts: w.start_ts,
            conflict_commit_ts: commit_ts,
            reason: if rolled_back {
                ConflictReason::SelfRolledBack
            } else {
                ConflictReason::Optimistic
            },
        });
    }
    Ok(true)
}

/// For an insert: fails if the newest data version of the key is a put.
fn check_insert(r: &impl SnapshotReader, m: &Mutation) -> Result<(), MvccError> {
    match m {
        Mutation::Insert(key, _) => check_insert_key(r, key),
        _ => Ok(()),
    }
}

/// `AlreadyExists` when `key` has a value (its newest data version is a put).
fn check_insert_key(r: &impl SnapshotReader, key: &[u8]) -> Result<(), MvccError> {
    let mut ts = Ts::MAX;
    while let Some((commit_ts, w)) = r.seek_write(key, ts)? {
        match w.kind {
            WriteKind::Put => return Err(MvccError::AlreadyExists { key: key.to_vec() }),
            WriteKind::Delete => return Ok(()),
            WriteKind::Rollback | WriteKind::Lock if commit_ts > Ts::ZERO => ts = commit_ts.prev(),
            _ => break,
        }
    }
    Ok(())
}

/// Inlines a short value (returned) or puts a long one in the default CF.
fn stash_value(b: &mut Batch, key: &[u8], start_ts: Ts, value: Option<&[u8]>) -> Option<Vec<u8>> {
    let v = value?;
    if v.len() <= SHORT_VALUE_MAX_LEN {
        return Some(v.to_vec());
    }
    b.put(&codec::default_key(key, start_ts), v);
    None
}

fn commit_lock(
    r: &impl SnapshotReader,
    b: &mut Batch,
    key: &[u8],
    lock: Lock,
    commit_ts: Ts,
) -> Result<(), MvccError> {
    if commit_ts < lock.min_commit_ts {
        return Err(MvccError::CommitTsExpired {
            key: key.to_vec(),
            start_ts: lock.start_ts,
            commit_ts,
            min_commit_ts: lock.min_commit_ts,
        });
    }
    let kind = match lock.kind {
        LockKind::Put => WriteKind::Put,
        LockKind::Delete => WriteKind::Delete,
        LockKind::Lock | LockKind::Pessimistic => WriteKind::Lock,
    };
    let mut w = Write::new(kind, lock.start_ts);
    w.short_value = lock.short_value;
    if kind == WriteKind::Put {
        // The key is locked, so no other version can land between the newest one below
        // commit_ts and this one: etcd's create_revision / version follow from it.
        (w.create_revision, w.version) = revision::next_put_meta(r, key, commit_ts)?;
    }
    b.put(&codec::write_key(key, commit_ts), &w.encode());
    b.delete(&codec::lock_key(key));
    Ok(())
}

fn rollback_key(
    r: &impl SnapshotReader,
    b: &mut Batch,
    key: &[u8],
    start_ts: Ts,
) -> Result<(), MvccError> {
    if let Some(lock) = r.lock(key)? {
        if lock.start_ts == start_ts {
            unlock(b, key, &lock);
            return put_rollback_record(r, b, key, start_ts);
        }
    }
    match txn_record(r, key, start_ts)? {
        TxnRecord::Committed { commit_ts } => Err(MvccError::Committed {
            key: key.to_vec(),
            start_ts,
            commit_ts,
        }),
        TxnRecord::RolledBack => Ok(()),
        TxnRecord::None => put_rollback_record(r, b, key, start_ts),
    }
}

/// Removes a lock and its long value.
fn unlock(b: &mut Batch, key: &[u8], lock: &Lock) {
    b.delete(&codec::lock_key(key));
    if lock.kind == LockKind::Put && lock.short_value.is_none() {
        b.delete(&codec::default_key(key, lock.start_ts));
    }
}

/// Writes the rollback record of `start_ts` at `key + start_ts`; if another transaction
/// committed exactly there, flags its record instead (TiKV's overlapped rollback).
fn put_rollback_record(
    r: &impl SnapshotReader,
    b: &mut Batch,
    key: &[u8],
    start_ts: Ts,
) -> Result<(), MvccError> {
    let record = match r.seek_write(key, start_ts)? {
        Some((commit_ts, mut w)) if commit_ts == start_ts && w.start_ts != start_ts => {
            w.overlapped_rollback = true;
            w
        }
        _ => Write::new(WriteKind::Rollback, start_ts),
    };
    b.put(&codec::write_key(key, start_ts), &record.encode());
    Ok(())
}

fn locked(key: &[u8], lock: Lock) -> MvccError {
    MvccError::KeyIsLocked(Box::new(LockInfo {
        key: key.to_vec(),
        lock,
    }))
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
