//! etcd's compare-and-swap transactions (`Txn`): compares, then the success or failure ops,
//! evaluated at a read ts and committed in one phase at a commit ts.
//!
//! [`txn`] evaluates every [`Compare`] at `read_ts`; if all hold it runs `success`, otherwise
//! `failure`. Ops run in order and see the writes of earlier ops of the same transaction (a get
//! after a put returns the new value, at revision `commit_ts`). Writes become write records at
//! `commit_ts` directly (no locks: a one-phase commit), each put with etcd's fields and its
//! lease; the response carries the per-op results and the revision (`commit_ts` if anything
//! was written, else `read_ts`).
//!
//! Semantics as etcd's (`server/etcdserver/txn`): a value compare on a missing key is false,
//! other targets compare a missing key as zero (version 0, revisions 0, no lease); a compare
//! with a `range_end` holds only if it holds for every key in the range; deleting a missing
//! key writes nothing; a key written twice in one branch is refused.
//!
//! **Conflicts.** The function is pure, so it checks what it relies on: any key it reads or
//! compares (point or range) or writes whose newest put/delete is above `read_ts` fails the
//! whole transaction with a retryable `WriteConflict` (first committer wins), a Percolator lock
//! on a written key fails it with `KeyIsLocked`, and so does a lock on a read key that may
//! commit at or below `read_ts`. The executor runs it under latches on every compared, read
//! and written key (ranges: on the range), with `read_ts` = the newest applied revision and a
//! fresh `commit_ts` above it, and applies the batch before releasing them; then no conflict
//! can occur. One-phase rule as `txn::one_pc`: no reader may hold a read ts at or above
//! `commit_ts` that has already read these keys.
use super::codec;
use super::error::{ConflictReason, EtcdError, MvccError};
use super::lease;
use super::read;
use super::reader::{RawReader, SnapshotReader};
use super::record::{Write, WriteKind, SHORT_VALUE_MAX_LEN};
use super::revision::{self, Kv};
use super::{LeaseId, Ts};
use crate::lsm::batch::Batch;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// How a compare relates the key's field to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `field == target`
    Equal,
    /// `field != target`
    NotEqual,
    /// `field < target`
    Less,
    /// `field > target`
    Greater,
}

/// The field compared, with the target value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    /// Puts since creation (0 for a missing key).
    Version(u64),
    /// Revision of the creating put (0 for a missing key).
    CreateRevision(Ts),
    /// Revision of the last put (0 for a missing key).
    ModRevision(Ts),
    /// The value (bytewise order); always false on a missing key.
    Value(Vec<u8>),
    /// The attached lease (none sorts as 0).
    Lease(Option<LeaseId>),
}

/// One compare of an etcd transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key (or the start of the range).
    pub key: Vec<u8>,
    /// With `Some(end)`, every live key in `[key, end)` is compared.
    pub range_end: Option<Vec<u8>>,
    /// The relation.
    pub op: CompareOp,
    /// The field and target.
    pub target: CompareTarget,
}

/// One operation of a branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Put `value` at `key`, attached to `lease` (which must exist) or to none.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// The lease to attach it to.
        lease: Option<LeaseId>,
    },
    /// Delete `key` (nothing if it does not exist).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// Delete every live key in `[from, upper)` (`upper = None`: to the end).
    DeleteRange {
        /// First key.
        from: Vec<u8>,
        /// End, exclusive.
        upper: Option<Vec<u8>>,
    },
    /// Read `key`.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Read up to `limit` live keys in `[from, upper)`.
    Range {
        /// First key.
        from: Vec<u8>,
        /// End, exclusive.
        upper: Option<Vec<u8>>,
        /// At most this many keys.
        limit: usize,
    },
}

/// The result of one op, in the order of the branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A put, with the key's state before it.
    Put {
        /// The previous value, if the key existed.
        prev: Option<Kv>,
    },
    /// A delete or delete-range: the keys deleted, with their state before.
    Delete {
        /// The deleted keys' previous state, in key order.
        deleted: Vec<Kv>,
    },
    /// A get.
    Get(Option<Kv>),
    /// A range.
    Range(Vec<Kv>),
}

/// An etcd transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnRequest {
    /// All must hold for `success` to run.
    pub compares: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    pub failure: Vec<TxnOp>,
}

/// The answer to a [`TxnRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// True when the compares held and `success` ran.
    pub succeeded: bool,
    /// One result per op of the branch that ran.
    pub results: Vec<OpResult>,
    /// `commit_ts` if the transaction wrote anything, else `read_ts`.
    pub revision: Ts,
}

/// Runs an etcd transaction: compares and reads at `read_ts`, writes at `commit_ts` (above
/// `read_ts`). Errors (no batch): `Compacted` if `read_ts` is below the compaction mark,
/// `WriteConflict` / `KeyIsLocked` (see the module docs; retryable), `LeaseNotFound` for a put
/// with a missing lease, `InvalidRequest` for a key written twice.
pub fn txn<R: SnapshotReader + RawReader>(
    r: &R,
    req: &TxnRequest,
    read_ts: Ts,
    commit_ts: Ts,
) -> Result<(TxnResponse, Batch), EtcdError> {
    if commit_ts <= read_ts {
        return Err(EtcdError::InvalidRequest("commit ts must be above read ts"));
    }
    revision::check_not_compacted(r, read_ts)?;
    let mut t = Txn {
        r,
        read_ts,
        commit_ts,
        overlay: BTreeMap::new(),
        written: BTreeSet::new(),
        batch: Batch::new(),
    };
    let mut succeeded = true;
    for c in &req.compares {
        if !t.compare(c)? {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(t.op(op)?);
    }
    let revision = if t.written.is_empty() {
        read_ts
    } else {
        commit_ts
    };
    Ok((
        TxnResponse {
            succeeded,
            results,
            revision,
        },
        t.batch,
    ))
}

/// A put of one key (etcd's `Put`, optionally with a lease): a transaction of one op. Returns
/// the previous state of the key.
pub fn put<R: SnapshotReader + RawReader>(
    r: &R,
    key: &[u8],
    value: &[u8],
    lease: Option<LeaseId>,
    read_ts: Ts,
    commit_ts: Ts,
) -> Result<(Option<Kv>, Batch), EtcdError> {
    let req = TxnRequest {
        success: alloc::vec![TxnOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
        }],
        ..TxnRequest::default()
    };
    let (mut resp, b) = txn(r, &req, read_ts, commit_ts)?;
    match resp.results.pop() {
        Some(OpResult::Put { prev }) => Ok((prev, b)),
        _ => Err(EtcdError::InvalidRequest(
            "put answered with another result",
        )),
    }
}

/// Fails if `key` cannot take a one-phase write at `commit_ts` after reads at `read_ts`: a
/// lock on it (`KeyIsLocked`), a put/delete above `read_ts` (`WriteConflict`), or any record at
/// or above `commit_ts` (`InvalidRequest`: the commit ts is not fresh).
pub(crate) fn check_writable(
    r: &impl SnapshotReader,
    key: &[u8],
    read_ts: Ts,
    commit_ts: Ts,
) -> Result<(), EtcdError> {
    if let Some(lock) = r.lock(key)? {
        return Err(MvccError::KeyIsLocked(Box::new(super::error::LockInfo {
            key: key.to_vec(),
            lock,
        }))
        .into());
    }
    check_unchanged(r, key, read_ts)?;
    if let Some((ts, _)) = r.seek_write(key, Ts::MAX)? {
        if ts >= commit_ts {
            return Err(EtcdError::InvalidRequest(
                "commit ts is not above the key's newest record",
            ));
        }
    }
    Ok(())
}

/// `WriteConflict` if `key`'s newest put/delete is above `read_ts`.
fn check_unchanged(r: &impl SnapshotReader, key: &[u8], read_ts: Ts) -> Result<(), EtcdError> {
    if let Some((ts, w)) = revision::data_version_at(r, key, Ts::MAX)? {
        if ts > read_ts {
            return Err(MvccError::WriteConflict {
                key: key.to_vec(),
                start_ts: read_ts,
                conflict_start_ts: w.start_ts,
                conflict_commit_ts: ts,
                reason: ConflictReason::Optimistic,
            }
            .into());
        }
    }
    Ok(())
}

struct Txn<'a, R> {
    r: &'a R,
    read_ts: Ts,
    commit_ts: Ts,
    /// The state of each key this transaction wrote (`None`: deleted).
    overlay: BTreeMap<Vec<u8>, Option<Kv>>,
    written: BTreeSet<Vec<u8>>,
    batch: Batch,
}

impl<R: SnapshotReader + RawReader> Txn<'_, R> {
    /// The committed state of `key` at the read ts, after the read checks.
    fn stored(&self, key: &[u8]) -> Result<Option<Kv>, EtcdError> {
        if let Some(lock) = self.r.lock(key)? {
            read::check_lock(key, lock, self.read_ts)?;
        }
        check_unchanged(self.r, key, self.read_ts)?;
        Ok(revision::kv_at(self.r, key, self.read_ts)?)
    }

    /// The state of `key` as this transaction sees it (its own writes first).
    fn current(&self, key: &[u8]) -> Result<Option<Kv>, EtcdError> {
        match self.overlay.get(key) {
            Some(state) => Ok(state.clone()),
            None => self.stored(key),
        }
    }

    /// Live keys in `[from, upper)` as this transaction sees them, at most `limit`.
    fn range(&self, from: &[u8], upper: Option<&[u8]>, limit: usize) -> Result<Vec<Kv>, EtcdError> {
        let in_range = |k: &[u8]| k >= from && upper.is_none_or(|u| k < u);
        let mut merged: BTreeMap<Vec<u8>, Kv> = BTreeMap::new();
        let mut cursor = from.to_vec();
        let own = self.overlay.keys().filter(|k| in_range(k)).count();
        while merged.len() < limit.saturating_add(own) {
            let Some(key) = self.r.next_key(&cursor, upper)? else {
                break;
            };
            if let Some(kv) = self.stored(&key)? {
                merged.insert(key.clone(), kv);
            }
            cursor = key;
            cursor.push(0);
        }
        for (k, state) in self.overlay.iter().filter(|(k, _)| in_range(k)) {
            match state {
                Some(kv) => merged.insert(k.clone(), kv.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_values().take(limit).collect())
    }

    fn compare(&self, c: &Compare) -> Result<bool, EtcdError> {
        let kvs = match &c.range_end {
            None => self.stored(&c.key)?.into_iter().collect(),
            Some(end) => self.range(&c.key, Some(end), usize::MAX)?,
        };
        if kvs.is_empty() {
            return Ok(!matches!(c.target, CompareTarget::Value(_)) && compare_kv(c, None));
        }
        Ok(kvs.iter().all(|kv| compare_kv(c, Some(kv))))
    }

    fn op(&mut self, op: &TxnOp) -> Result<OpResult, EtcdError> {
        match op {
            TxnOp::Get { key } => Ok(OpResult::Get(self.current(key)?)),
            TxnOp::Range { from, upper, limit } => Ok(OpResult::Range(self.range(
                from,
                upper.as_deref(),
                *limit,
            )?)),
            TxnOp::Put { key, value, lease } => {
                let prev = self.current(key)?;
                self.put(key, value, *lease, prev.as_ref())?;
                Ok(OpResult::Put { prev })
            }
            TxnOp::Delete { key } => {
                let prev = self.current(key)?;
                let deleted = match prev {
                    Some(kv) => {
                        self.delete(&kv)?;
                        alloc::vec![kv]
                    }
                    None => Vec::new(),
                };
                Ok(OpResult::Delete { deleted })
            }
            TxnOp::DeleteRange { from, upper } => {
                let deleted = self.range(from, upper.as_deref(), usize::MAX)?;
                for kv in &deleted {
                    self.delete(kv)?;
                }
                Ok(OpResult::Delete { deleted })
            }
        }
    }

    fn claim(&mut self, key: &[u8]) -> Result<(), EtcdError> {
        if !self.written.insert(key.to_vec()) {
            return Err(EtcdError::InvalidRequest(
                "a key is written twice in one transaction",
            ));
        }
        check_writable(self.r, key, self.read_ts, self.commit_ts)
    }

    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        lease: Option<LeaseId>,
        prev: Option<&Kv>,
    ) -> Result<(), EtcdError> {
        self.claim(key)?;
        if let Some(id) = lease {
            if lease::lease(self.r, id)?.is_none() {
                return Err(EtcdError::LeaseNotFound(id));
            }
            self.batch.put(&lease::attachment_key(id, key), b"");
        }
        self.detach(prev, lease);
        let (create_revision, version) = match prev {
            Some(p) => (p.create_revision, p.version.saturating_add(1)),
            None => (self.commit_ts, 1),
        };
        let mut w = Write::new(WriteKind::Put, self.commit_ts);
        w.create_revision = create_revision;
        w.version = version;
        w.lease = lease;
        if value.len() <= SHORT_VALUE_MAX_LEN {
            w.short_value = Some(value.to_vec());
        } else {
            self.batch
                .put(&codec::default_key(key, self.commit_ts), value);
        }
        self.batch
            .put(&codec::write_key(key, self.commit_ts), &w.encode());
        let kv = Kv {
            key: key.to_vec(),
            value: value.to_vec(),
            create_revision,
            mod_revision: self.commit_ts,
            version,
            lease,
        };
        self.overlay.insert(key.to_vec(), Some(kv));
        Ok(())
    }

    fn delete(&mut self, prev: &Kv) -> Result<(), EtcdError> {
        self.claim(&prev.key)?;
        self.detach(Some(prev), None);
        self.batch.put(
            &codec::write_key(&prev.key, self.commit_ts),
            &Write::new(WriteKind::Delete, self.commit_ts).encode(),
        );
        self.overlay.insert(prev.key.clone(), None);
        Ok(())
    }

    /// Drops the attachment of the key's previous lease when it changes.
    fn detach(&mut self, prev: Option<&Kv>, lease: Option<LeaseId>) {
        if let Some(p) = prev {
            if let Some(old) = p.lease.filter(|&old| Some(old) != lease) {
                self.batch.delete(&lease::attachment_key(old, &p.key));
            }
        }
    }
}

/// etcd's `compareKV`: the field of `kv` (or of a missing key) against the target.
fn compare_kv(c: &Compare, kv: Option<&Kv>) -> bool {
    use core::cmp::Ordering;
    let ord: Ordering = match &c.target {
        CompareTarget::Version(v) => kv.map_or(0, |kv| kv.version).cmp(v),
        CompareTarget::CreateRevision(t) => kv.map_or(Ts::ZERO, |kv| kv.create_revision).cmp(t),
        CompareTarget::ModRevision(t) => kv.map_or(Ts::ZERO, |kv| kv.mod_revision).cmp(t),
        CompareTarget::Value(v) => match kv {
            Some(kv) => kv.value.as_slice().cmp(v.as_slice()),
            None => return false,
        },
        CompareTarget::Lease(l) => kv
            .and_then(|kv| kv.lease)
            .map_or(0, |l| l.0)
            .cmp(&l.map_or(0, |l| l.0)),
    };
    match c.op {
        CompareOp::Equal => ord == Ordering::Equal,
        CompareOp::NotEqual => ord != Ordering::Equal,
        CompareOp::Less => ord == Ordering::Less,
        CompareOp::Greater => ord == Ordering::Greater,
    }
}

#[cfg(test)]
#[path = "cas_tests.rs"]
mod tests;
