//! KV watch: writes published on subjects, so that a subscription is a watch.
//!
//! With [`Options::kv_watch`](crate::Options::kv_watch) set to a bucket name `b`, every write
//! applied through [`Db::write`] (and so `put` and `delete`) is published after it is applied,
//! one message per operation in batch order, on `$KV.b.<key tokens>` — the key's bytes mapped
//! to subject tokens reversibly by [`strata_engine::subject::kv`] (`.` separates tokens; bytes
//! that may not appear in a token are `%XX`-escaped; an empty token is a lone `%`). The payload
//! is one operation byte followed by the value: `+` then the value for a put, `-` alone for a
//! delete.
//!
//! Limits: a write whose subject would exceed the broker's maximum subject length, or whose
//! payload its maximum payload, is applied but not published (counted by
//! [`Db::kv_watch_skipped`]). Writes from one thread are published in order; writes from
//! concurrent threads to the same key may be published in a different order than they were
//! applied.
use crate::db::Db;
use crate::error::{Error, Result};
use crate::pubsub::{MessagingError, RecvError, Subscription};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::key::ValueKind;
use strata_engine::subject::kv;

/// The payload's first byte for a put.
pub const PUT_TAG: u8 = b'+';
/// The payload of a delete.
pub const DELETE_TAG: u8 = b'-';

pub(crate) struct KvWatch {
    bucket: String,
    skipped: AtomicU64,
}

/// Messages to publish for one applied batch: (subject, payload).
pub(crate) type KvEvents = Vec<(String, Vec<u8>)>;

impl KvWatch {
    pub(crate) fn new(bucket: &str) -> Result<KvWatch> {
        kv::validate_bucket(bucket).map_err(|e| Error::Messaging(MessagingError::InvalidBucket(e)))?;
        Ok(KvWatch { bucket: bucket.to_owned(), skipped: AtomicU64::new(0) })
    }

    pub(crate) fn events(&self, batch: &Batch) -> KvEvents {
        batch
            .iter()
            .map(|op| {
                let mut subject = String::new();
                kv::key_subject_into(&self.bucket, op.key, &mut subject);
                let payload = match op.kind {
                    ValueKind::Delete => vec![DELETE_TAG],
                    _ => {
                        let mut p = Vec::with_capacity(op.value.len() + 1);
                        p.push(PUT_TAG);
                        p.extend_from_slice(op.value);
                        p
                    }
                };
                (subject, payload)
            })
            .collect()
    }
}

/// What a write did to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// The key was set to this value.
    Put(Vec<u8>),
    /// The key was deleted.
    Delete,
}

/// One write seen by a [`Watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvEvent {
    /// The key.
    pub key: Vec<u8>,
    /// What happened to it.
    pub op: KvOp,
}

/// A watch on the keys of a [`Db`]'s KV bucket; dropping it ends the watch.
#[derive(Debug)]
pub struct Watch {
    sub: Subscription,
    bucket: String,
}

impl Watch {
    /// The next write, waiting as long as it takes. Errors as [`Subscription::recv`]
    /// ([`RecvError::Lagged`] when the watcher fell behind and writes were dropped).
    pub fn recv(&mut self) -> std::result::Result<KvEvent, RecvError> {
        loop {
            let m = self.sub.recv()?;
            if let Some(e) = self.decode(&m) {
                return Ok(e);
            }
        }
    }

    /// The next write, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> std::result::Result<KvEvent, RecvError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let m = self.sub.recv_timeout(left)?;
            if let Some(e) = self.decode(&m) {
                return Ok(e);
            }
        }
    }

    /// A message on the bucket's subjects that is not a write (someone published there by
    /// hand) is skipped.
    fn decode(&self, m: &crate::pubsub::Message) -> Option<KvEvent> {
        let key = kv::subject_key(&self.bucket, &m.subject).ok()?;
        let op = match m.payload.split_first() {
            Some((&PUT_TAG, value)) => KvOp::Put(value.to_vec()),
            Some((&DELETE_TAG, [])) => KvOp::Delete,
            _ => return None,
        };
        Some(KvEvent { key, op })
    }
}

impl Db {
    /// Watches writes to keys matching `key_pattern`, a subject pattern over the key's
    /// `.`-separated levels (`>` for every key, `user.*` for `user.<one level>`; literal tokens
    /// are written in the escaped form of [`strata_engine::subject::kv`]). Needs
    /// [`Options::kv_watch`](crate::Options::kv_watch); sees writes made after it returns.
    pub fn watch(&self, key_pattern: &str) -> std::result::Result<Watch, MessagingError> {
        let w = self.inner.watch.as_ref().ok_or(MessagingError::WatchDisabled)?;
        let pattern = format!("{}.{}.{key_pattern}", kv::KV_PREFIX, w.bucket);
        let sub = self.subscribe(&pattern)?;
        Ok(Watch { sub, bucket: w.bucket.clone() })
    }

    /// Writes applied but not published for KV watch (subject or payload over the broker's
    /// limits).
    pub fn kv_watch_skipped(&self) -> u64 {
        self.inner.watch.as_ref().map_or(0, |w| w.skipped.load(Ordering::Relaxed))
    }

    pub(crate) fn publish_kv(&self, events: KvEvents) {
        let Some(w) = self.inner.watch.as_ref() else { return };
        for (subject, payload) in events {
            if self.hub().publish(None, &subject, None, &payload).is_err() {
                w.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
