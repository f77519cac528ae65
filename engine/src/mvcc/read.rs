//! Snapshot reads at a read timestamp: point gets and scans.
//!
//! A read at `read_ts` sees, for each key, the newest put or delete committed at or below
//! `read_ts` (rollback and lock records are skipped). A lock of another transaction that may
//! still commit at or below `read_ts` makes the answer unknown, so the read fails with
//! `KeyIsLocked` and the lock's info (TiKV's `check_ts_conflict`): the caller resolves it and
//! retries. Locks that cannot affect the read are ignored: those that started above
//! `read_ts`, lock-only and pessimistic locks, and locks whose `min_commit_ts` was pushed above
//! `read_ts` (their commit will be above it).
use super::error::{Corruption, LockInfo, MvccError, ReadError};
use super::reader::SnapshotReader;
use super::record::{Lock, LockKind, WriteKind};
use super::Ts;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// The value of `key` as of `read_ts`.
pub fn get(r: &impl SnapshotReader, key: &[u8], read_ts: Ts) -> Result<Option<Vec<u8>>, MvccError> {
    Ok(get_version(r, key, read_ts)?.and_then(|v| v.value))
}

/// A committed version of a key, as a read at some ts sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The commit ts of the version (its revision).
    pub commit_ts: Ts,
    /// The start ts of the transaction that wrote it.
    pub start_ts: Ts,
    /// The value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// The newest put or delete of `key` committed at or below `read_ts`, with its timestamps.
pub fn get_version(
    r: &impl SnapshotReader,
    key: &[u8],
    read_ts: Ts,
) -> Result<Option<Version>, MvccError> {
    if let Some(lock) = r.lock(key)? {
        check_lock(key, lock, read_ts)?;
    }
    let mut ts = read_ts;
    while let Some((commit_ts, w)) = r.seek_write(key, ts)? {
        match w.kind {
            WriteKind::Put => {
                let value = match w.short_value {
                    Some(v) => v,
                    None => r.value(key, w.start_ts)?.ok_or_else(|| {
                        MvccError::Read(ReadError::Corrupt {
                            key: key.to_vec(),
                            reason: Corruption::DefaultNotFound {
                                start_ts: w.start_ts,
                            },
                        })
                    })?,
                };
                return Ok(Some(Version {
                    commit_ts,
                    start_ts: w.start_ts,
                    value: Some(value),
                }));
            }
            WriteKind::Delete => {
                return Ok(Some(Version {
                    commit_ts,
                    start_ts: w.start_ts,
                    value: None,
                }))
            }
            WriteKind::Rollback | WriteKind::Lock => {
                if commit_ts == Ts::ZERO {
                    break;
                }
                ts = commit_ts.prev();
            }
        }
    }
    Ok(None)
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Up to `limit` live `(key, value)` pairs with keys in `[from, upper)` as of `read_ts`, in key
/// order. Fails with `KeyIsLocked` at the first key whose lock blocks the read.
pub fn scan(
    r: &impl SnapshotReader,
    from: &[u8],
    upper: Option<&[u8]>,
    read_ts: Ts,
    limit: usize,
) -> Result<Vec<KeyValue>, MvccError> {
    let mut out = Vec::new();
    let mut cursor = from.to_vec();
    while out.len() < limit {
        let Some(key) = r.next_key(&cursor, upper)? else {
            break;
        };
        if let Some(v) = get(r, &key, read_ts)? {
            out.push((key.clone(), v));
        }
        cursor = key;
        cursor.push(0);
    }
    Ok(out)
}

/// Fails with `KeyIsLocked` if `lock` may hide a commit at or below `read_ts`.
pub fn check_lock(key: &[u8], lock: Lock, read_ts: Ts) -> Result<(), MvccError> {
    let ignorable = lock.start_ts > read_ts
        || matches!(lock.kind, LockKind::Lock | LockKind::Pessimistic)
        || lock.min_commit_ts > read_ts;
    if ignorable {
        return Ok(());
    }
    Err(MvccError::KeyIsLocked(Box::new(LockInfo {
        key: key.to_vec(),
        lock,
    })))
}
