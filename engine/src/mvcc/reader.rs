//! The reads the MVCC commands need, and an in-memory store that serves them.
//!
//! A [`SnapshotReader`] answers in terms of user keys and decoded records; how it finds them
//! (a `BTreeMap`, or the LSM's resumable reads over one snapshot) is its own business. Every
//! read returns a `Result`: [`ReadError::Pending`] lets a reader over the LSM say "this needs a
//! block first" — the command stops, and is simply run again once the block is cached, which
//! is safe because commands are pure.
use super::codec::{self, Cf};
use super::error::{Corruption, ReadError};
use super::record::{Lock, Write};
use super::Ts;
use crate::lsm::batch::Batch;
use crate::lsm::key::ValueKind;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Bound;

/// A consistent view of the MVCC data, as the commands read it.
pub trait SnapshotReader {
    /// The lock on `key`, if any.
    fn lock(&self, key: &[u8]) -> Result<Option<Lock>, ReadError>;

    /// The newest write record of `key` with commit ts at or below `ts`: `(commit_ts, write)`.
    fn seek_write(&self, key: &[u8], ts: Ts) -> Result<Option<(Ts, Write)>, ReadError>;

    /// The long value of `key` written by the transaction `start_ts` (default CF).
    fn value(&self, key: &[u8], start_ts: Ts) -> Result<Option<Vec<u8>>, ReadError>;

    /// The smallest user key at or above `from` (and below `upper`, if given) that has a lock
    /// or a write record.
    fn next_key(&self, from: &[u8], upper: Option<&[u8]>) -> Result<Option<Vec<u8>>, ReadError>;

    /// Up to `limit` locks of user keys at or above `from` (and below `upper`), in key order.
    fn scan_locks(
        &self,
        from: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Lock)>, ReadError>;
}

/// Raw `(key, value)` pairs as [`RawReader::raw_scan`] returns them.
pub type RawEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads of plain, unversioned keys outside the MVCC families: the metadata namespace `m`
/// (compaction mark) and the lease namespace `e` (see `docs/format.md`, "Key namespaces").
/// The etcd-style commands need it beside [`SnapshotReader`]; both read the same snapshot.
pub trait RawReader {
    /// The value stored at the raw key `key`.
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError>;

    /// Up to `limit` raw `(key, value)` pairs with `from <= key < upper`, in key order.
    fn raw_scan(
        &self,
        from: &[u8],
        upper: &[u8],
        limit: usize,
    ) -> Result<RawEntries, ReadError>;
}

/// An MVCC store in a `BTreeMap` of encoded keys: a [`SnapshotReader`] and a batch applier,
/// for tests, examples and the model tests' reference runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Applies a batch of encoded keys and records.
    pub fn apply(&mut self, batch: &Batch) {
        for op in batch.iter() {
            match op.kind {
                ValueKind::Put => {
                    self.map.insert(op.key.to_vec(), op.value.to_vec());
                }
                ValueKind::Delete => {
                    self.map.remove(op.key);
                }
            }
        }
    }

    /// The raw encoded entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Number of raw entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Checks that every entry decodes and that the records agree with each other: a lock's
    /// start ts has no commit or rollback record on its key, a long-value lock or put has its
    /// default-CF value, and every default-CF value belongs to a lock or a put. Panics with a
    /// description otherwise (a test helper).
    pub fn check_invariants(&self) {
        for (k, v) in &self.map {
            if matches!(k.first(), Some(&codec::META_NAMESPACE | &codec::LEASE_NAMESPACE)) {
                continue; // checked by `lease::check_invariants`
            }
            let key = codec::decode_key(k).expect("key decodes");
            match key.cf {
                Cf::Lock => {
                    let lock = Lock::decode(v).expect("lock decodes");
                    assert!(
                        lock.min_commit_ts > lock.start_ts,
                        "min_commit_ts above start_ts"
                    );
                    let mut ts = Ts::MAX;
                    while let Some((commit_ts, w)) =
                        self.seek_write(&key.user_key, ts).expect("reads")
                    {
                        if commit_ts < lock.start_ts {
                            break;
                        }
                        assert!(
                            w.start_ts != lock.start_ts
                                && !(commit_ts == lock.start_ts && w.overlapped_rollback),
                            "lock {} of {:?} has a write record too",
                            lock.start_ts,
                            key.user_key
                        );
                        ts = commit_ts.prev();
                        if commit_ts == Ts::ZERO {
                            break;
                        }
                    }
                    if lock.kind == super::record::LockKind::Put && lock.short_value.is_none() {
                        assert!(self
                            .value(&key.user_key, lock.start_ts)
                            .expect("reads")
                            .is_some());
                    }
                }
                Cf::Write => {
                    let w = Write::decode(v).expect("write decodes");
                    let commit_ts = key.ts.expect("write keys have a ts");
                    assert!(
                        w.start_ts <= commit_ts,
                        "write of {:?}: start {} above commit {commit_ts}",
                        key.user_key,
                        w.start_ts
                    );
                    if w.kind == super::record::WriteKind::Put && w.short_value.is_none() {
                        assert!(self
                            .value(&key.user_key, w.start_ts)
                            .expect("reads")
                            .is_some());
                    }
                    self.check_put_meta(&key.user_key, commit_ts, &w);
                }
                Cf::Default => {
                    let start_ts = key.ts.expect("default keys have a ts");
                    let locked = self
                        .lock(&key.user_key)
                        .expect("reads")
                        .is_some_and(|l| l.start_ts == start_ts);
                    let committed = self
                        .map
                        .range(codec::key_prefix(Cf::Write, &key.user_key)..)
                        .take_while(|(wk, _)| {
                            wk.starts_with(&codec::key_prefix(Cf::Write, &key.user_key))
                        })
                        .any(|(_, wv)| {
                            Write::decode(wv).is_ok_and(|w| {
                                w.start_ts == start_ts && w.kind == super::record::WriteKind::Put
                            })
                        });
                    assert!(
                        locked || committed,
                        "orphan value of {:?} at {start_ts}",
                        key.user_key
                    );
                }
            }
        }
    }

    /// A put's etcd fields continue the version below it: version + 1 and the same
    /// create_revision after a put, version 1 created here after a delete or nothing. (GC
    /// leaves the oldest remaining put without its predecessor; it is not checked.)
    fn check_put_meta(&self, key: &[u8], commit_ts: Ts, w: &Write) {
        if w.kind != super::record::WriteKind::Put || w.version == 0 {
            return;
        }
        assert!(
            w.create_revision <= commit_ts,
            "put of {key:?} at {commit_ts} created later"
        );
        if commit_ts == Ts::ZERO {
            return;
        }
        let prev = super::revision::data_version_at(self, key, commit_ts.prev()).expect("reads");
        if prev.is_none() && w.version > 1 {
            return; // older versions collected
        }
        let expected = super::revision::next_put_meta(self, key, commit_ts).expect("reads");
        assert_eq!(
            (w.create_revision, w.version),
            expected,
            "etcd fields of {key:?} at {commit_ts}"
        );
    }

    fn first_user_key(&self, cf: Cf, from: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        let lower = codec::key_prefix(cf, from);
        let Some((k, _)) = self.map.range(lower..).next() else {
            return Ok(None);
        };
        if k.first() != Some(&(cf as u8)) {
            return Ok(None);
        }
        Ok(Some(decode(k)?.user_key))
    }
}

fn decode(k: &[u8]) -> Result<codec::MvccKey, ReadError> {
    codec::decode_key(k).map_err(|e| ReadError::Corrupt {
        key: k.to_vec(),
        reason: Corruption::Key(e),
    })
}

fn corrupt_record(k: &[u8], e: super::record::RecordError) -> ReadError {
    ReadError::Corrupt {
        key: k.to_vec(),
        reason: Corruption::Record(e),
    }
}

impl RawReader for MemStore {
    fn raw_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.map.get(key).cloned())
    }

    fn raw_scan(
        &self,
        from: &[u8],
        upper: &[u8],
        limit: usize,
    ) -> Result<RawEntries, ReadError> {
        if from >= upper {
            return Ok(Vec::new());
        }
        Ok(self
            .map
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(upper)))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl SnapshotReader for MemStore {
    fn lock(&self, key: &[u8]) -> Result<Option<Lock>, ReadError> {
        let k = codec::lock_key(key);
        match self.map.get(&k) {
            None => Ok(None),
            Some(v) => Lock::decode(v).map(Some).map_err(|e| corrupt_record(&k, e)),
        }
    }

    fn seek_write(&self, key: &[u8], ts: Ts) -> Result<Option<(Ts, Write)>, ReadError> {
        let prefix = codec::key_prefix(Cf::Write, key);
        let from = codec::write_key(key, ts);
        let Some((k, v)) = self.map.range(from..).next() else {
            return Ok(None);
        };
        if !k.starts_with(&prefix) {
            return Ok(None);
        }
        let commit_ts = decode(k)?.ts.unwrap_or(Ts::ZERO);
        let w = Write::decode(v).map_err(|e| corrupt_record(k, e))?;
        Ok(Some((commit_ts, w)))
    }

    fn value(&self, key: &[u8], start_ts: Ts) -> Result<Option<Vec<u8>>, ReadError> {
        Ok(self.map.get(&codec::default_key(key, start_ts)).cloned())
    }

    fn next_key(&self, from: &[u8], upper: Option<&[u8]>) -> Result<Option<Vec<u8>>, ReadError> {
        let a = self.first_user_key(Cf::Lock, from)?;
        let b = self.first_user_key(Cf::Write, from)?;
        let next = match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(next.filter(|k| upper.is_none_or(|u| k.as_slice() < u)))
    }

    fn scan_locks(
        &self,
        from: &[u8],
        upper: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Lock)>, ReadError> {
        let lower = codec::key_prefix(Cf::Lock, from);
        let upper_key = match upper {
            Some(u) => Bound::Excluded(codec::key_prefix(Cf::Lock, u)),
            None => Bound::Excluded(alloc::vec![Cf::Lock as u8 + 1]),
        };
        let mut out = Vec::new();
        for (k, v) in self
            .map
            .range((Bound::Included(lower), upper_key))
            .take(limit)
        {
            let key = decode(k)?;
            out.push((
                key.user_key,
                Lock::decode(v).map_err(|e| corrupt_record(k, e))?,
            ));
        }
        Ok(out)
    }
}
