//! etcd's revisions on the MVCC data: reads at a past revision, per-key history, compaction.
//!
//! A *revision* is a commit ts: every committed transaction (Percolator two-phase, one-phase,
//! a compare-and-swap transaction, a lease expiry) is one revision, shared by all the keys it
//! wrote. Each put record carries etcd's per-key fields (see [`super::record`]):
//! `create_revision` (the commit ts of the put that created the key, i.e. the first put after
//! its last delete), `version` (puts since creation, this one included; a delete resets it) and
//! `lease`. They are computed at commit from the newest version below the commit ts
//! ([`next_put_meta`]), so a compare or a history entry needs no walk over older versions.
//!
//! Compaction is etcd's: [`compact`] persists a *compaction mark* `M` (key `'m' "compaction"`,
//! 8 bytes big-endian) and from then on every read at a revision below `M` fails with
//! [`EtcdError::Compacted`] — whether or not the old versions are physically gone yet. The
//! physical part, [`compaction_step`], is GC with safe point `M` over a key range, run in
//! chunks by the caller; it keeps the version visible at `M`, so reads at or above `M` are
//! unaffected by how far it got.
use super::codec::META_NAMESPACE;
use super::error::{Corruption, EtcdError, ReadError};
use super::read;
use super::reader::{RawReader, SnapshotReader};
use super::record::{Write, WriteKind};
use super::txn::{self, GcOutcome};
use super::{LeaseId, Ts};
use crate::lsm::batch::Batch;
use alloc::vec::Vec;

/// The raw key of the compaction mark (namespace `m`).
pub const COMPACTION_MARK_KEY: &[u8] = &[
    META_NAMESPACE,
    b'c',
    b'o',
    b'm',
    b'p',
    b'a',
    b'c',
    b't',
    b'i',
    b'o',
    b'n',
];

/// A key's state at a revision, as etcd's `mvccpb.KeyValue` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    /// The user key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// The revision of the put that created the key (first put after its last delete).
    pub create_revision: Ts,
    /// The revision of the put that wrote this value.
    pub mod_revision: Ts,
    /// Puts since creation, this one included (1 for a new key).
    pub version: u64,
    /// The lease the key is attached to.
    pub lease: Option<LeaseId>,
}

/// One version in a key's [`history`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its revision (commit ts).
    pub revision: Ts,
    /// The key's state after it: `None` for a delete.
    pub kv: Option<Kv>,
}

/// The compaction mark: reads below it fail. [`Ts::ZERO`] before the first compaction.
pub fn compaction_mark(r: &impl RawReader) -> Result<Ts, EtcdError> {
    match r.raw_get(COMPACTION_MARK_KEY)? {
        None => Ok(Ts::ZERO),
        Some(v) => {
            let b: [u8; 8] = v.as_slice().try_into().map_err(|_| EtcdError::Corrupt {
                key: COMPACTION_MARK_KEY.to_vec(),
                reason: "compaction mark is not 8 bytes",
            })?;
            Ok(Ts(u64::from_be_bytes(b)))
        }
    }
}

/// Fails with `Compacted` if `rev` is below the compaction mark.
pub fn check_not_compacted(r: &impl RawReader, rev: Ts) -> Result<(), EtcdError> {
    let mark = compaction_mark(r)?;
    if rev < mark {
        return Err(EtcdError::Compacted {
            requested: rev,
            compacted: mark,
        });
    }
    Ok(())
}

/// The value of `key` at revision `rev`, with its etcd fields; `None` if it did not exist.
/// `Compacted` below the mark; `KeyIsLocked` if a transaction may still commit at or below
/// `rev` (as [`read::get`]).
pub fn get_at<R: SnapshotReader + RawReader>(
    r: &R,
    key: &[u8],
    rev: Ts,
) -> Result<Option<Kv>, EtcdError> {
    check_not_compacted(r, rev)?;
    if let Some(lock) = r.lock(key)? {
        read::check_lock(key, lock, rev)?;
    }
    Ok(kv_at(r, key, rev)?)
}

/// Up to `limit` live keys in `[from, upper)` at revision `rev`, in key order (etcd's Range).
pub fn range_at<R: SnapshotReader + RawReader>(
    r: &R,
    from: &[u8],
    upper: Option<&[u8]>,
    rev: Ts,
    limit: usize,
) -> Result<Vec<Kv>, EtcdError> {
    check_not_compacted(r, rev)?;
    let mut out = Vec::new();
    let mut cursor = from.to_vec();
    while out.len() < limit {
        let Some(key) = r.next_key(&cursor, upper)? else {
            break;
        };
        if let Some(lock) = r.lock(&key)? {
            read::check_lock(&key, lock, rev)?;
        }
        if let Some(kv) = kv_at(r, &key, rev)? {
            out.push(kv);
        }
        cursor = key;
        cursor.push(0);
    }
    Ok(out)
}

/// The versions of `key` at or below `upper`, newest first, at most `limit`: puts with their
/// etcd fields and deletes. The history stops at the version visible at the compaction mark,
/// included only if it is a put (older versions, and a delete visible at the mark, are gone or
/// going), so the answer does not depend on how far compaction got.
/// `Compacted` if `upper` is below the mark; `KeyIsLocked` as [`get_at`] at `upper`.
pub fn history<R: SnapshotReader + RawReader>(
    r: &R,
    key: &[u8],
    upper: Ts,
    limit: usize,
) -> Result<Vec<HistoryEntry>, EtcdError> {
    let mark = compaction_mark(r)?;
    if upper < mark {
        return Err(EtcdError::Compacted {
            requested: upper,
            compacted: mark,
        });
    }
    if let Some(lock) = r.lock(key)? {
        read::check_lock(key, lock, upper)?;
    }
    let mut out = Vec::new();
    let mut ts = upper;
    while out.len() < limit {
        let Some((commit_ts, w)) = data_version_at(r, key, ts)? else {
            break;
        };
        let at_or_below_mark = commit_ts <= mark;
        if at_or_below_mark && w.kind != WriteKind::Put {
            break; // a delete at or below the mark is collected by compaction
        }
        let kv = match w.kind {
            WriteKind::Put => Some(put_kv(r, key, commit_ts, &w)?),
            _ => None,
        };
        out.push(HistoryEntry {
            revision: commit_ts,
            kv,
        });
        if at_or_below_mark || commit_ts == Ts::ZERO {
            break;
        }
        ts = commit_ts.prev();
    }
    Ok(out)
}

/// Logical compaction at `revision`: persists the compaction mark, after which reads below
/// `revision` fail with `Compacted`. `current` is the newest revision (commit ts) applied.
/// Errors: `Compacted` if `revision` is not above the current mark (etcd's rule),
/// `FutureRevision` if it is above `current`.
///
/// The caller then runs [`compaction_step`] over the key space (in the background, in chunks)
/// to drop the old versions; it must not compact above the start ts of a running Percolator
/// transaction (GC's rule: its rollback records below the mark go too).
pub fn compact(r: &impl RawReader, revision: Ts, current: Ts) -> Result<Batch, EtcdError> {
    if revision > current {
        return Err(EtcdError::FutureRevision {
            requested: revision,
            current,
        });
    }
    let mark = compaction_mark(r)?;
    if revision <= mark {
        return Err(EtcdError::Compacted {
            requested: revision,
            compacted: mark,
        });
    }
    let mut b = Batch::new();
    b.put(COMPACTION_MARK_KEY, &revision.0.to_be_bytes());
    Ok(b)
}

/// One chunk of physical compaction: GC at the compaction mark for up to `max_keys` user keys
/// from `from` (start with `b""`; continue from `resume_from` until it is `None`). Idempotent,
/// so after a crash the caller simply starts over.
pub fn compaction_step<R: SnapshotReader + RawReader>(
    r: &R,
    from: &[u8],
    max_keys: usize,
) -> Result<GcOutcome, EtcdError> {
    let mark = compaction_mark(r)?;
    if mark == Ts::ZERO {
        return Ok(GcOutcome {
            batch: Batch::new(),
            resume_from: None,
        });
    }
    Ok(txn::gc(r, from, None, mark, max_keys)?)
}

/// The committed state of `key` at `rev` ignoring locks and the compaction mark (callers check
/// those): the newest put or delete at or below `rev`.
pub fn kv_at(r: &impl SnapshotReader, key: &[u8], rev: Ts) -> Result<Option<Kv>, ReadError> {
    match data_version_at(r, key, rev)? {
        Some((commit_ts, w)) if w.kind == WriteKind::Put => {
            Ok(Some(put_kv(r, key, commit_ts, &w)?))
        }
        _ => Ok(None),
    }
}

/// The newest put or delete record of `key` at or below `ts` (rollback and lock records
/// skipped): `(commit_ts, write)`.
pub fn data_version_at(
    r: &impl SnapshotReader,
    key: &[u8],
    ts: Ts,
) -> Result<Option<(Ts, Write)>, ReadError> {
    let mut ts = ts;
    while let Some((commit_ts, w)) = r.seek_write(key, ts)? {
        if w.is_data() {
            return Ok(Some((commit_ts, w)));
        }
        if commit_ts == Ts::ZERO {
            break;
        }
        ts = commit_ts.prev();
    }
    Ok(None)
}

/// `(create_revision, version)` for a put of `key` committed at `commit_ts`, from the newest
/// version below it: continues a put's, or starts at `(commit_ts, 1)` after a delete or none.
pub fn next_put_meta(
    r: &impl SnapshotReader,
    key: &[u8],
    commit_ts: Ts,
) -> Result<(Ts, u64), ReadError> {
    if commit_ts == Ts::ZERO {
        return Ok((commit_ts, 1));
    }
    match data_version_at(r, key, commit_ts.prev())? {
        Some((prev_ts, w)) if w.kind == WriteKind::Put => {
            let (create, version) = put_meta(r, key, prev_ts, &w)?;
            Ok((create, version.saturating_add(1)))
        }
        _ => Ok((commit_ts, 1)),
    }
}

/// `(create_revision, version)` of the put `w` committed at `commit_ts`: from the record, or,
/// for a record written before the fields existed, by walking the versions below it.
pub fn put_meta(
    r: &impl SnapshotReader,
    key: &[u8],
    commit_ts: Ts,
    w: &Write,
) -> Result<(Ts, u64), ReadError> {
    if w.version != 0 {
        return Ok((w.create_revision, w.version));
    }
    let (mut create, mut count) = (commit_ts, 1u64);
    let mut ts = commit_ts;
    while ts > Ts::ZERO {
        match data_version_at(r, key, ts.prev())? {
            Some((prev_ts, p)) if p.kind == WriteKind::Put => {
                if p.version != 0 {
                    return Ok((p.create_revision, p.version.saturating_add(count)));
                }
                create = prev_ts;
                count += 1;
                ts = prev_ts;
            }
            _ => break,
        }
    }
    Ok((create, count))
}

/// The value of the put `w` of `key`: inlined or from the default CF.
pub fn put_value(r: &impl SnapshotReader, key: &[u8], w: &Write) -> Result<Vec<u8>, ReadError> {
    match &w.short_value {
        Some(v) => Ok(v.clone()),
        None => r.value(key, w.start_ts)?.ok_or_else(|| ReadError::Corrupt {
            key: key.to_vec(),
            reason: Corruption::DefaultNotFound {
                start_ts: w.start_ts,
            },
        }),
    }
}

fn put_kv(r: &impl SnapshotReader, key: &[u8], commit_ts: Ts, w: &Write) -> Result<Kv, ReadError> {
    let (create_revision, version) = put_meta(r, key, commit_ts, w)?;
    Ok(Kv {
        key: key.to_vec(),
        value: put_value(r, key, w)?,
        create_revision,
        mod_revision: commit_ts,
        version,
        lease: w.lease,
    })
}

#[cfg(test)]
#[path = "revision_tests.rs"]
mod tests;
