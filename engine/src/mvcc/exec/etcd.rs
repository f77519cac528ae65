//! etcd's commands for the executor: reads at a revision, history, compaction, leases and
//! compare-and-swap transactions, each one pure function of [`crate::mvcc::revision`],
//! [`crate::mvcc::lease`] or [`crate::mvcc::cas`] run under the executor's latches.
//!
//! * Reads ([`EtcdCommand::GetAt`], [`EtcdCommand::History`]) wait for writers of their key
//!   as `Get` does. A zero revision reads at a timestamp drawn when the read runs.
//! * Writes latch every key they compare, read or write, plus the lease's table key when a
//!   put attaches to a lease, and draw their commit ts while holding them (the executor's
//!   one-phase-commit rule), reading at `commit_ts - 1`: every earlier commit on those keys is
//!   applied, so the pure function's conflict checks never fire for an executor-run command
//!   (only a Percolator lock in the way can: `KeyIsLocked`, resolved by the caller).
//! * A revoke or an expiry latches the lease's keys, which the caller lists beforehand
//!   ([`EtcdCommand::LeaseKeys`]). If a put attached another key in between, the command
//!   writes nothing and answers [`EtcdResponse::LeaseKeysChanged`] with the current list: the
//!   caller submits it again with that list.
//! * Compare-and-swap transactions take point compares and point ops only (etcd's range
//!   compares, `DeleteRange` and `Range` are refused with `InvalidRequest`): latches are per
//!   key, and a range would need a range latch to be atomic against one-phase writes in flight.
use crate::lsm::batch::Batch;
use crate::mvcc::cas::{self, TxnOp, TxnRequest, TxnResponse};
use crate::mvcc::error::EtcdError;
use crate::mvcc::lease::{self, Expiry, Lease, Revoked};
use crate::mvcc::reader::{RawReader, SnapshotReader};
use crate::mvcc::revision::{self, HistoryEntry, Kv, COMPACTION_MARK_KEY};
use crate::mvcc::{LeaseId, Ts};
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use super::command::{Footprint, RunContext};

/// An etcd-style request to the executor (wrapped in `Command::Etcd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdCommand {
    /// `key` at `revision` (zero: now), with its etcd fields. Answers [`EtcdResponse::Kv`].
    GetAt {
        /// The user key.
        key: Vec<u8>,
        /// The revision; zero reads at a fresh timestamp.
        revision: Ts,
    },
    /// The versions of `key`, newest first, at most `limit`. Answers [`EtcdResponse::History`].
    History {
        /// The user key.
        key: Vec<u8>,
        /// At most this many versions.
        limit: usize,
    },
    /// Persists the compaction mark at `revision` (reads below it fail with `Compacted`).
    /// Answers [`EtcdResponse::Compacted`]; the physical part is `Command::Gc` at a safe point.
    Compact {
        /// The new mark.
        revision: Ts,
    },
    /// The compaction mark. Answers [`EtcdResponse::Revision`].
    CompactionMark,
    /// A compare-and-swap transaction. Answers [`EtcdResponse::Txn`].
    Txn(TxnRequest),
    /// Grants lease `id`. Answers [`EtcdResponse::Lease`].
    LeaseGrant {
        /// The id (positive, unused).
        id: LeaseId,
        /// Time to live in ms (of the executor's clock).
        ttl_ms: u64,
    },
    /// Renews lease `id`. Answers [`EtcdResponse::Lease`].
    LeaseKeepAlive {
        /// The id.
        id: LeaseId,
    },
    /// The keys attached to lease `id` now. Answers [`EtcdResponse::Keys`].
    LeaseKeys {
        /// The id.
        id: LeaseId,
    },
    /// Every lease in the table. Answers [`EtcdResponse::Leases`].
    Leases,
    /// Revokes lease `id`, deleting its keys at one revision. Answers
    /// [`EtcdResponse::Revoked`] or [`EtcdResponse::LeaseKeysChanged`].
    LeaseRevoke {
        /// The id.
        id: LeaseId,
        /// Its keys as [`EtcdCommand::LeaseKeys`] answered (latched).
        keys: Vec<Vec<u8>>,
    },
    /// Expires lease `id` if its deadline has passed on the executor's clock. Answers
    /// [`EtcdResponse::Expiry`] or [`EtcdResponse::LeaseKeysChanged`].
    LeaseExpire {
        /// The id.
        id: LeaseId,
        /// Its keys as [`EtcdCommand::LeaseKeys`] answered (latched).
        keys: Vec<Vec<u8>>,
    },
}

/// A successful answer to an [`EtcdCommand`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdResponse {
    /// A key's state (`None`: absent at that revision), and the revision read at.
    Kv(Option<Kv>, Ts),
    /// A key's versions, newest first.
    History(Vec<HistoryEntry>),
    /// The compaction mark is now this revision.
    Compacted(Ts),
    /// A revision (the compaction mark).
    Revision(Ts),
    /// A transaction's answer (its batch is applied).
    Txn(TxnResponse),
    /// A lease as granted or renewed.
    Lease(Lease),
    /// User keys.
    Keys(Vec<Vec<u8>>),
    /// The lease table.
    Leases(Vec<Lease>),
    /// The lease is revoked; its keys were deleted at `Revoked::revision`.
    Revoked(Revoked),
    /// What an expiry decided (its batch, if any, is applied).
    Expiry(Expiry),
    /// The lease's keys are not the ones latched: submit again with these.
    LeaseKeysChanged(Vec<Vec<u8>>),
}

impl EtcdCommand {
    /// What the command reads and writes.
    pub fn footprint(&self) -> Footprint {
        match self {
            EtcdCommand::GetAt { key, .. } | EtcdCommand::History { key, .. } => Footprint::Read(key.clone()),
            EtcdCommand::Compact { .. } => Footprint::Write(vec![COMPACTION_MARK_KEY.to_vec()]),
            EtcdCommand::CompactionMark | EtcdCommand::Leases => Footprint::Free,
            EtcdCommand::Txn(req) => Footprint::Write(txn_keys(req)),
            EtcdCommand::LeaseGrant { id, .. } | EtcdCommand::LeaseKeepAlive { id } => {
                Footprint::Write(vec![lease::lease_key(*id)])
            }
            EtcdCommand::LeaseKeys { id } => Footprint::Read(lease::lease_key(*id)),
            EtcdCommand::LeaseRevoke { id, keys } | EtcdCommand::LeaseExpire { id, keys } => {
                let mut all = keys.clone();
                all.push(lease::lease_key(*id));
                Footprint::Write(all)
            }
        }
    }

    /// True when a run needs a fresh timestamp.
    pub fn needs_ts(&self) -> bool {
        match self {
            EtcdCommand::GetAt { revision, .. } => *revision == Ts::ZERO,
            EtcdCommand::History { .. }
            | EtcdCommand::Compact { .. }
            | EtcdCommand::Txn(_)
            | EtcdCommand::LeaseRevoke { .. }
            | EtcdCommand::LeaseExpire { .. } => true,
            _ => false,
        }
    }

    /// Runs the pure command.
    pub fn run<R: SnapshotReader + RawReader>(&self, r: &R, ctx: RunContext) -> Result<(EtcdResponse, Batch), EtcdError> {
        let none = Batch::new;
        match self {
            EtcdCommand::GetAt { key, revision } => {
                let at = if *revision == Ts::ZERO { ctx.ts } else { *revision };
                Ok((EtcdResponse::Kv(revision::get_at(r, key, at)?, at), none()))
            }
            EtcdCommand::History { key, limit } => {
                Ok((EtcdResponse::History(revision::history(r, key, ctx.ts, *limit)?), none()))
            }
            EtcdCommand::Compact { revision } => {
                let b = revision::compact(r, *revision, ctx.ts.prev())?;
                Ok((EtcdResponse::Compacted(*revision), b))
            }
            EtcdCommand::CompactionMark => Ok((EtcdResponse::Revision(revision::compaction_mark(r)?), none())),
            EtcdCommand::Txn(req) => {
                check_points(req)?;
                let (resp, b) = cas::txn(r, req, ctx.ts.prev(), ctx.ts)?;
                Ok((EtcdResponse::Txn(resp), b))
            }
            EtcdCommand::LeaseGrant { id, ttl_ms } => {
                let (l, b) = lease::grant(r, *id, *ttl_ms, ctx.now_ms)?;
                Ok((EtcdResponse::Lease(l), b))
            }
            EtcdCommand::LeaseKeepAlive { id } => {
                let (l, b) = lease::keep_alive(r, *id, ctx.now_ms)?;
                Ok((EtcdResponse::Lease(l), b))
            }
            EtcdCommand::LeaseKeys { id } => Ok((EtcdResponse::Keys(lease::keys(r, *id)?), none())),
            EtcdCommand::Leases => Ok((EtcdResponse::Leases(lease::leases(r)?), none())),
            EtcdCommand::LeaseRevoke { id, keys } => {
                if let Some(now) = changed(r, *id, keys)? {
                    return Ok((EtcdResponse::LeaseKeysChanged(now), none()));
                }
                let (revoked, b) = lease::revoke(r, *id, ctx.ts)?;
                Ok((EtcdResponse::Revoked(revoked), b))
            }
            EtcdCommand::LeaseExpire { id, keys } => {
                if let Some(now) = changed(r, *id, keys)? {
                    return Ok((EtcdResponse::LeaseKeysChanged(now), none()));
                }
                let (expiry, b) = lease::expire(r, *id, ctx.now_ms, ctx.ts)?;
                Ok((EtcdResponse::Expiry(expiry), b))
            }
        }
    }
}

/// The lease's current keys if any of them is not in `latched`.
fn changed<R: SnapshotReader + RawReader>(r: &R, id: LeaseId, latched: &[Vec<u8>]) -> Result<Option<Vec<Vec<u8>>>, EtcdError> {
    let now = lease::keys(r, id)?;
    let latched: BTreeSet<&[u8]> = latched.iter().map(Vec::as_slice).collect();
    Ok(if now.iter().all(|k| latched.contains(k.as_slice())) { None } else { Some(now) })
}

/// Every key a transaction compares, reads or writes, and the table key of every lease a put
/// attaches to.
fn txn_keys(req: &TxnRequest) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = req.compares.iter().map(|c| c.key.clone()).collect();
    for op in req.success.iter().chain(&req.failure) {
        match op {
            TxnOp::Put { key, lease, .. } => {
                keys.push(key.clone());
                if let Some(id) = lease {
                    keys.push(lease::lease_key(*id));
                }
            }
            TxnOp::Delete { key } | TxnOp::Get { key } => keys.push(key.clone()),
            TxnOp::DeleteRange { from, .. } | TxnOp::Range { from, .. } => keys.push(from.clone()),
        }
    }
    keys
}

fn check_points(req: &TxnRequest) -> Result<(), EtcdError> {
    let ranged = req.compares.iter().any(|c| c.range_end.is_some())
        || req.success.iter().chain(&req.failure).any(|op| matches!(op, TxnOp::DeleteRange { .. } | TxnOp::Range { .. }));
    if ranged {
        return Err(EtcdError::InvalidRequest("the executor runs point compares and point ops only (latches are per key)"));
    }
    Ok(())
}
