//! etcd's leases: a lease table in the `e` namespace, keys attached at put, time-driven expiry
//! deleting all of a lease's keys at one revision.
//!
//! ```text
//! lease key      := 'e' 'l' | id (u64 BE)               → 'L' | ttl_ms: varint | expires_at_ms: varint
//! attachment key := 'e' 'k' | id (u64 BE) | enc(user_key) → ""   (the key was put with the lease)
//! ```
//!
//! A put with a lease ([`super::cas`]) records the lease in the key's write record and writes
//! the attachment; a later put with another lease, or a delete, removes the old attachment in
//! the same batch. A Percolator transaction that overwrites the key does not know about
//! leases, so an attachment may outlive the attachment itself: expiry and revoke delete a key
//! only if its newest version is a put that still names the lease, and drop every attachment.
//!
//! Expiry is split in two, so the replicated node can let the leader decide by its clock and
//! every replica apply the same command:
//! * *decide*: [`LeaseQueue`] (in memory, rebuilt from the table by [`LeaseQueue::recover`])
//!   answers [`LeaseQueue::next_deadline`] and [`LeaseQueue::due`]`(now_ms)`;
//! * *apply*: [`expire`]`(reader, id, now_ms, commit_ts)` checks the table again (a keep-alive
//!   may have won the race) and yields one batch that deletes the lease's keys at `commit_ts`
//!   and removes the lease — a one-phase commit, so all the keys vanish at one revision.
//!
//! Every command that changes the table returns a [`LeaseChange`]; after applying its batch
//! the caller feeds it to [`LeaseQueue::apply`].
use super::codec::{self, LEASE_NAMESPACE};
use super::error::EtcdError;
use super::reader::{RawEntries, RawReader, SnapshotReader};
use super::record::{Write, WriteKind};
use super::revision::{self, Kv};
use super::{LeaseId, Ts};
use crate::lsm::batch::Batch;
use crate::lsm::varint;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

const TABLE: u8 = b'l';
const ATTACH: u8 = b'k';
/// Entries read per `raw_scan` call when listing leases or attachments.
const SCAN_CHUNK: usize = 256;

/// A lease as the table holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Its id.
    pub id: LeaseId,
    /// Time to live granted, in ms.
    pub ttl_ms: u64,
    /// When it expires unless kept alive: the grant's or last keep-alive's `now_ms + ttl_ms`.
    pub expires_at_ms: u64,
}

/// A change of the lease table, for [`LeaseQueue::apply`] once the batch is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseChange {
    /// Granted or kept alive: its deadline is now `expires_at_ms`.
    Upsert(Lease),
    /// Revoked or expired.
    Remove(LeaseId),
}

/// What [`revoke`] (or an [`expire`] that was due) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// The lease removed.
    pub lease: Lease,
    /// The keys deleted at `revision`, with their values before (key order).
    pub deleted: Vec<Kv>,
    /// The revision of the deletes (the commit ts), also when no key was deleted.
    pub revision: Ts,
    /// For [`LeaseQueue::apply`].
    pub change: LeaseChange,
}

/// What [`expire`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The lease was due: its keys are deleted and it is removed.
    Expired(Revoked),
    /// A keep-alive moved the deadline past `now_ms`: nothing to do (empty batch).
    NotDue(Lease),
    /// The lease no longer exists (already revoked or expired): nothing to do.
    Gone,
}

/// The raw key of lease `id` in the table.
pub fn lease_key(id: LeaseId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&[LEASE_NAMESPACE, TABLE]);
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

/// The raw key recording that `user_key` was put with lease `id`.
pub fn attachment_key(id: LeaseId, user_key: &[u8]) -> Vec<u8> {
    let mut k = attachment_prefix(id);
    codec::encode_bytes(user_key, &mut k);
    k
}

fn attachment_prefix(id: LeaseId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + codec::GROUP_LEN + 1);
    k.extend_from_slice(&[LEASE_NAMESPACE, ATTACH]);
    k.extend_from_slice(&id.0.to_be_bytes());
    k
}

impl Lease {
    /// The encoded table record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(21);
        out.push(b'L');
        varint::put(&mut out, self.ttl_ms);
        varint::put(&mut out, self.expires_at_ms);
        out
    }

    /// Decodes the record stored at `key` for lease `id`.
    pub fn decode(id: LeaseId, key: &[u8], buf: &[u8]) -> Result<Lease, EtcdError> {
        let corrupt = |reason| EtcdError::Corrupt {
            key: key.to_vec(),
            reason,
        };
        let rest = match buf.split_first() {
            Some((b'L', rest)) => rest,
            _ => return Err(corrupt("lease record kind")),
        };
        let (ttl_ms, n) = varint::get(rest).ok_or(corrupt("lease ttl truncated"))?;
        let (expires_at_ms, m) =
            varint::get(&rest[n..]).ok_or(corrupt("lease deadline truncated"))?;
        if n + m != rest.len() {
            return Err(corrupt("trailing bytes after lease record"));
        }
        Ok(Lease {
            id,
            ttl_ms,
            expires_at_ms,
        })
    }
}

/// Lease `id` as the table holds it.
pub fn lease(r: &impl RawReader, id: LeaseId) -> Result<Option<Lease>, EtcdError> {
    let key = lease_key(id);
    r.raw_get(&key)?
        .map(|v| Lease::decode(id, &key, &v))
        .transpose()
}

/// Grants lease `id` (chosen by the caller, e.g. [`LeaseQueue::next_id`]) for `ttl_ms` from
/// `now_ms`. `LeaseExists` if the id is in use; `InvalidRequest` for id 0 or a zero TTL.
pub fn grant(
    r: &impl RawReader,
    id: LeaseId,
    ttl_ms: u64,
    now_ms: u64,
) -> Result<(Lease, Batch), EtcdError> {
    if id.0 == 0 || ttl_ms == 0 {
        return Err(EtcdError::InvalidRequest(
            "lease id and ttl must be positive",
        ));
    }
    if lease(r, id)?.is_some() {
        return Err(EtcdError::LeaseExists(id));
    }
    let l = Lease {
        id,
        ttl_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    };
    let mut b = Batch::new();
    b.put(&lease_key(id), &l.encode());
    Ok((l, b))
}

/// Renews lease `id`: its deadline becomes `now_ms + ttl_ms`. `LeaseNotFound` if it does not
/// exist, `LeaseExpired` if its deadline has passed (its expiry is on the way).
pub fn keep_alive(
    r: &impl RawReader,
    id: LeaseId,
    now_ms: u64,
) -> Result<(Lease, Batch), EtcdError> {
    let mut l = lease(r, id)?.ok_or(EtcdError::LeaseNotFound(id))?;
    if now_ms >= l.expires_at_ms {
        return Err(EtcdError::LeaseExpired(id));
    }
    l.expires_at_ms = now_ms.saturating_add(l.ttl_ms);
    let mut b = Batch::new();
    b.put(&lease_key(id), &l.encode());
    Ok((l, b))
}

/// Revokes lease `id`: deletes every key still attached to it at revision `commit_ts` (a
/// one-phase commit: the deletes are write records at `commit_ts`), its attachments and its
/// table entry. `commit_ts` must be above every committed version of those keys (a fresh
/// timestamp), and the caller holds latches on them. Errors: `LeaseNotFound`, `KeyIsLocked` if a
/// Percolator transaction holds a lock on one of the keys (resolve and retry).
pub fn revoke<R: SnapshotReader + RawReader>(
    r: &R,
    id: LeaseId,
    commit_ts: Ts,
) -> Result<(Revoked, Batch), EtcdError> {
    let l = lease(r, id)?.ok_or(EtcdError::LeaseNotFound(id))?;
    let mut b = Batch::new();
    let mut deleted = Vec::new();
    for (raw, user_key) in attachments(r, id)? {
        b.delete(&raw);
        if let Some(prev) = attached_version(r, &user_key, id, commit_ts)? {
            b.put(
                &codec::write_key(&user_key, commit_ts),
                &Write::new(WriteKind::Delete, commit_ts).encode(),
            );
            deleted.push(prev);
        }
    }
    b.delete(&lease_key(id));
    Ok((
        Revoked {
            lease: l,
            deleted,
            revision: commit_ts,
            change: LeaseChange::Remove(id),
        },
        b,
    ))
}

/// Applies the expiry of lease `id` decided at `now_ms` (see the module docs): if the table
/// still says it is due at `now_ms`, the same as [`revoke`] at `commit_ts`; otherwise nothing.
pub fn expire<R: SnapshotReader + RawReader>(
    r: &R,
    id: LeaseId,
    now_ms: u64,
    commit_ts: Ts,
) -> Result<(Expiry, Batch), EtcdError> {
    match lease(r, id)? {
        None => Ok((Expiry::Gone, Batch::new())),
        Some(l) if l.expires_at_ms > now_ms => Ok((Expiry::NotDue(l), Batch::new())),
        Some(_) => {
            let (revoked, b) = revoke(r, id, commit_ts)?;
            Ok((Expiry::Expired(revoked), b))
        }
    }
}

/// Every lease in the table, by id.
pub fn leases(r: &impl RawReader) -> Result<Vec<Lease>, EtcdError> {
    let upper = [LEASE_NAMESPACE, TABLE + 1];
    let mut from = alloc::vec![LEASE_NAMESPACE, TABLE];
    let mut out = Vec::new();
    loop {
        let chunk = r.raw_scan(&from, &upper, SCAN_CHUNK)?;
        for (k, v) in &chunk {
            let id: [u8; 8] = k[2..].try_into().map_err(|_| EtcdError::Corrupt {
                key: k.clone(),
                reason: "lease key is not 10 bytes",
            })?;
            out.push(Lease::decode(LeaseId(u64::from_be_bytes(id)), k, v)?);
        }
        match chunk.last() {
            Some((k, _)) if chunk.len() == SCAN_CHUNK => {
                from = k.clone();
                from.push(0);
            }
            _ => return Ok(out),
        }
    }
}

/// The keys attached to lease `id` whose newest version is a put with that lease, in key order.
pub fn keys<R: SnapshotReader + RawReader>(r: &R, id: LeaseId) -> Result<Vec<Vec<u8>>, EtcdError> {
    let mut out = Vec::new();
    for (_, user_key) in attachments(r, id)? {
        if let Some((_, w)) = revision::data_version_at(r, &user_key, Ts::MAX)? {
            if w.kind == WriteKind::Put && w.lease == Some(id) {
                out.push(user_key);
            }
        }
    }
    Ok(out)
}

/// The attachment entries of lease `id`: `(raw key, user key)`.
fn attachments(r: &impl RawReader, id: LeaseId) -> Result<RawEntries, EtcdError> {
    let prefix = attachment_prefix(id);
    let mut upper = attachment_prefix(LeaseId(id.0.wrapping_add(1)));
    if id.0 == u64::MAX {
        upper = alloc::vec![LEASE_NAMESPACE, ATTACH + 1];
    }
    let mut from = prefix.clone();
    let mut out = Vec::new();
    loop {
        let chunk = r.raw_scan(&from, &upper, SCAN_CHUNK)?;
        for (k, _) in &chunk {
            let (user_key, used) =
                codec::decode_bytes(&k[prefix.len()..]).map_err(|_| EtcdError::Corrupt {
                    key: k.clone(),
                    reason: "attachment key does not decode",
                })?;
            if prefix.len() + used != k.len() {
                return Err(EtcdError::Corrupt {
                    key: k.clone(),
                    reason: "trailing bytes after attachment key",
                });
            }
            out.push((k.clone(), user_key));
        }
        match chunk.last() {
            Some((k, _)) if chunk.len() == SCAN_CHUNK => {
                from = k.clone();
                from.push(0);
            }
            _ => return Ok(out),
        }
    }
}

/// The current version of `key` if it is a put with lease `id` (so expiry deletes it), after
/// the write checks of a one-phase commit at `commit_ts`.
fn attached_version<R: SnapshotReader>(
    r: &R,
    key: &[u8],
    id: LeaseId,
    commit_ts: Ts,
) -> Result<Option<Kv>, EtcdError> {
    // A stale attachment (the key was rewritten without the lease) needs no write checks.
    match revision::kv_at(r, key, Ts::MAX)? {
        Some(kv) if kv.lease == Some(id) => {
            super::cas::check_writable(r, key, commit_ts.prev(), commit_ts)?;
            Ok(Some(kv))
        }
        _ => Ok(None),
    }
}

/// The in-memory expiry queue: which lease is due next. Deterministic (ordered by deadline,
/// then id). Calling protocol:
/// 1. [`LeaseQueue::recover`] from the table after a restart (or [`LeaseQueue::new`]);
/// 2. after applying the batch of a lease command, [`LeaseQueue::apply`] its [`LeaseChange`];
/// 3. wake at [`LeaseQueue::next_deadline`]; [`LeaseQueue::due`]`(now_ms)` lists the leases to
///    expire; run [`expire`] for each (as a command through the log in the replicated node)
///    and apply its change. A lease stays listed as due until its removal is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseQueue {
    by_deadline: BTreeSet<(u64, LeaseId)>,
    deadline: BTreeMap<LeaseId, u64>,
    max_id: u64,
}

impl LeaseQueue {
    /// An empty queue.
    pub fn new() -> LeaseQueue {
        LeaseQueue::default()
    }

    /// The queue of the leases in the table.
    pub fn recover(r: &impl RawReader) -> Result<LeaseQueue, EtcdError> {
        let mut q = LeaseQueue::new();
        for l in leases(r)? {
            q.apply(&LeaseChange::Upsert(l));
        }
        Ok(q)
    }

    /// Records a change of the table (after its batch was applied).
    pub fn apply(&mut self, change: &LeaseChange) {
        match *change {
            LeaseChange::Upsert(l) => {
                if let Some(old) = self.deadline.insert(l.id, l.expires_at_ms) {
                    self.by_deadline.remove(&(old, l.id));
                }
                self.by_deadline.insert((l.expires_at_ms, l.id));
                self.max_id = self.max_id.max(l.id.0);
            }
            LeaseChange::Remove(id) => {
                if let Some(old) = self.deadline.remove(&id) {
                    self.by_deadline.remove(&(old, id));
                }
            }
        }
    }

    /// The earliest deadline, in ms: call [`LeaseQueue::due`] then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|&(d, _)| d)
    }

    /// The leases whose deadline is at or before `now_ms`, earliest first (the decision; the
    /// queue is unchanged until their removal is applied).
    pub fn due(&self, now_ms: u64) -> Vec<LeaseId> {
        self.by_deadline
            .iter()
            .take_while(|&&(d, _)| d <= now_ms)
            .map(|&(_, id)| id)
            .collect()
    }

    /// An id above every id seen since recovery (a deterministic choice for [`grant`]).
    pub fn next_id(&self) -> LeaseId {
        LeaseId(self.max_id.saturating_add(1).max(1))
    }

    /// Number of live leases.
    pub fn len(&self) -> usize {
        self.deadline.len()
    }

    /// True when no lease is live.
    pub fn is_empty(&self) -> bool {
        self.deadline.is_empty()
    }
}

/// Checks the lease namespace of a test store: records decode, and every put with a lease has
/// its attachment and a live lease. Panics with a description otherwise (a test helper).
pub fn check_invariants<R: SnapshotReader + RawReader>(r: &R) {
    let live = leases(r).expect("lease table decodes");
    let mut cursor = Vec::new();
    while let Some(key) = r.next_key(&cursor, None).expect("reads") {
        if let Some((_, w)) = revision::data_version_at(r, &key, Ts::MAX).expect("reads") {
            if let (WriteKind::Put, Some(id)) = (w.kind, w.lease) {
                assert!(
                    live.iter().any(|l| l.id == id),
                    "{key:?} names lease {id}, which is gone"
                );
                assert!(
                    r.raw_get(&attachment_key(id, &key))
                        .expect("reads")
                        .is_some(),
                    "{key:?} has no attachment to lease {id}"
                );
            }
        }
        cursor = key;
        cursor.push(0);
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
