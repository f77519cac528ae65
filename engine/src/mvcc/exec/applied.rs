//! Applied notifications: what a batch made visible, per commit ts, for a watch hub.
//!
//! Derived from the batch itself, so every command (Percolator or etcd-style) gets them
//! without saying anything: each write record of kind put or delete in the batch is a change
//! committed at its key's ts (rollback and lock records, and rewrites flagging an overlapped
//! rollback, are not changes). A long value is taken from the same batch (one-phase commit)
//! or read from the snapshot (commit of a prewritten value).
use crate::lsm::batch::Batch;
use crate::lsm::key::ValueKind;
use crate::mvcc::codec::{self, Cf};
use crate::mvcc::error::{Corruption, ReadError};
use crate::mvcc::reader::SnapshotReader;
use crate::mvcc::record::{Write, WriteKind};
use crate::mvcc::Ts;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// One committed change of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The user key.
    pub key: Vec<u8>,
    /// The start ts of the transaction that wrote it.
    pub start_ts: Ts,
    /// The new value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// The changes one applied batch committed at one commit ts (a revision), in batch order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The commit ts.
    pub commit_ts: Ts,
    /// The changes.
    pub changes: Vec<Change>,
}

/// The changes `batch` commits, grouped by commit ts (ascending).
pub fn extract(r: &impl SnapshotReader, batch: &Batch) -> Result<Vec<Applied>, ReadError> {
    let mut by_ts: BTreeMap<Ts, Vec<Change>> = BTreeMap::new();
    for op in batch.iter() {
        if op.kind != ValueKind::Put || op.key.first() != Some(&(Cf::Write as u8)) {
            continue;
        }
        let corrupt = |reason| ReadError::Corrupt { key: op.key.to_vec(), reason };
        let key = codec::decode_key(op.key).map_err(|e| corrupt(Corruption::Key(e)))?;
        let w = Write::decode(op.value).map_err(|e| corrupt(Corruption::Record(e)))?;
        if w.overlapped_rollback {
            continue;
        }
        let value = match w.kind {
            WriteKind::Rollback | WriteKind::Lock => continue,
            WriteKind::Delete => None,
            WriteKind::Put => Some(match w.short_value {
                Some(v) => v,
                None => long_value(r, batch, &key.user_key, w.start_ts)?
                    .ok_or_else(|| corrupt(Corruption::DefaultNotFound { start_ts: w.start_ts }))?,
            }),
        };
        let commit_ts = key.ts.unwrap_or(Ts::ZERO);
        by_ts.entry(commit_ts).or_default().push(Change { key: key.user_key, start_ts: w.start_ts, value });
    }
    Ok(by_ts.into_iter().map(|(commit_ts, changes)| Applied { commit_ts, changes }).collect())
}

fn long_value(r: &impl SnapshotReader, batch: &Batch, key: &[u8], start_ts: Ts) -> Result<Option<Vec<u8>>, ReadError> {
    let dk = codec::default_key(key, start_ts);
    if let Some(op) = batch.iter().find(|op| op.key == dk.as_slice() && op.kind == ValueKind::Put) {
        return Ok(Some(op.value.to_vec()));
    }
    r.value(key, start_ts)
}
