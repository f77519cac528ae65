//! The typed errors of the MVCC commands.
use super::codec::CodecError;
use super::record::{Lock, RecordError};
use super::Ts;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// Why a read through a [`super::reader::SnapshotReader`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The data is not in memory yet (a block must be read first). Nothing was decided: run
    /// the command again once the reader has the data.
    Pending,
    /// Stored bytes do not decode.
    Corrupt {
        /// The stored key.
        key: Vec<u8>,
        /// What is wrong with it.
        reason: Corruption,
    },
}

/// What is wrong with corrupt stored MVCC data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The key does not decode.
    Key(CodecError),
    /// The record does not decode.
    Record(RecordError),
    /// A committed put's value is neither inlined nor in the default CF.
    DefaultNotFound {
        /// The start ts of the transaction that wrote it.
        start_ts: Ts,
    },
}

/// The data of a lock that stopped a command, for the caller to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// The locked user key.
    pub key: Vec<u8>,
    /// The lock.
    pub lock: Lock,
}

/// Why the transaction `start_ts`'s write conflicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    /// Another transaction committed the key after `start_ts` (first committer wins).
    Optimistic,
    /// The transaction itself was rolled back on this key (a late prewrite).
    SelfRolledBack,
}

/// Why an MVCC command failed. A failed command yields no batch: the store is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvccError {
    /// A read failed; see [`ReadError`].
    Read(ReadError),
    /// The key is locked by another transaction that may commit below the read or start ts.
    /// Retryable: resolve the lock (`check_txn_status` on its primary, then `resolve_lock`),
    /// or wait for it, then retry.
    KeyIsLocked(Box<LockInfo>),
    /// Prewrite found a newer committed write (or our own rollback). Retryable with a new
    /// start ts; the transaction must be rolled back.
    WriteConflict {
        /// The conflicting key.
        key: Vec<u8>,
        /// Our start ts.
        start_ts: Ts,
        /// The start ts of the transaction that wrote the conflicting record.
        conflict_start_ts: Ts,
        /// Its commit ts.
        conflict_commit_ts: Ts,
        /// Why it conflicts.
        reason: ConflictReason,
    },
    /// Commit found neither our lock nor our commit record: the transaction was rolled back
    /// (by a resolver after its TTL) or never prewritten there. Not retryable.
    TxnLockNotFound {
        /// The key.
        key: Vec<u8>,
        /// Our start ts.
        start_ts: Ts,
        /// The commit ts we asked for.
        commit_ts: Ts,
    },
    /// `check_txn_status` or `txn_heartbeat` found no trace of the transaction on its primary.
    TxnNotFound {
        /// The primary key.
        key: Vec<u8>,
        /// The transaction's start ts.
        start_ts: Ts,
    },
    /// Rollback of a transaction that has already committed on this key.
    Committed {
        /// The key.
        key: Vec<u8>,
        /// The transaction's start ts.
        start_ts: Ts,
        /// Its commit ts.
        commit_ts: Ts,
    },
    /// Commit below the lock's `min_commit_ts` (a reader pushed it). Retry the commit with a
    /// new commit ts above `min_commit_ts`.
    CommitTsExpired {
        /// The key.
        key: Vec<u8>,
        /// The transaction's start ts.
        start_ts: Ts,
        /// The commit ts asked for.
        commit_ts: Ts,
        /// The smallest allowed commit ts.
        min_commit_ts: Ts,
    },
    /// An insert found a visible value.
    AlreadyExists {
        /// The key.
        key: Vec<u8>,
    },
    /// The request itself is malformed (e.g. commit ts not above start ts).
    InvalidRequest(&'static str),
}

impl MvccError {
    /// True when retrying (after resolving locks, or with a new ts) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MvccError::KeyIsLocked(_)
                | MvccError::WriteConflict { .. }
                | MvccError::CommitTsExpired { .. }
                | MvccError::Read(ReadError::Pending)
        )
    }
}

impl From<ReadError> for MvccError {
    fn from(e: ReadError) -> Self {
        MvccError::Read(e)
    }
}

impl core::fmt::Display for MvccError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MvccError::Read(ReadError::Pending) => write!(f, "read pending"),
            MvccError::Read(ReadError::Corrupt { reason, .. }) => write!(f, "corrupt MVCC data: {reason:?}"),
            MvccError::KeyIsLocked(info) => {
                write!(f, "key is locked by transaction {}", info.lock.start_ts)
            }
            MvccError::WriteConflict { start_ts, conflict_commit_ts, .. } => write!(
                f,
                "write conflict: transaction {start_ts} meets a write committed at {conflict_commit_ts}"
            ),
            MvccError::TxnLockNotFound { start_ts, .. } => {
                write!(f, "lock of transaction {start_ts} not found (rolled back)")
            }
            MvccError::TxnNotFound { start_ts, .. } => write!(f, "transaction {start_ts} not found"),
            MvccError::Committed { start_ts, commit_ts, .. } => {
                write!(f, "transaction {start_ts} already committed at {commit_ts}")
            }
            MvccError::CommitTsExpired { commit_ts, min_commit_ts, .. } => {
                write!(f, "commit ts {commit_ts} below min_commit_ts {min_commit_ts}")
            }
            MvccError::AlreadyExists { .. } => write!(f, "key already exists"),
            MvccError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
        }
    }
}

/// Why an etcd-style command (revisions, compaction, watch, leases, compare-and-swap
/// transactions) failed. As with [`MvccError`], a failed command yields no batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdError {
    /// An MVCC error: a read failed (`Read(Pending)`: run again once the data is loaded), a key
    /// is locked by a Percolator transaction (`KeyIsLocked`), or a key changed after the read
    /// ts (`WriteConflict`). Retryable as [`MvccError::is_retryable`] says.
    Mvcc(MvccError),
    /// The revision asked for is below the compaction mark: its history is gone (etcd's
    /// `ErrCompacted`). Not retryable at that revision.
    Compacted {
        /// The revision asked for.
        requested: Ts,
        /// The compaction mark: reads at or above it work.
        compacted: Ts,
    },
    /// A compaction above the newest revision (etcd's `ErrFutureRev`).
    FutureRevision {
        /// The revision asked for.
        requested: Ts,
        /// The newest revision.
        current: Ts,
    },
    /// No lease with this id (never granted, revoked or expired).
    LeaseNotFound(super::LeaseId),
    /// `grant` of an id that is in use.
    LeaseExists(super::LeaseId),
    /// `keep_alive` of a lease whose deadline has passed (it is being expired).
    LeaseExpired(super::LeaseId),
    /// A stored metadata or lease record (namespaces `m`, `e`) does not decode.
    Corrupt {
        /// The stored key.
        key: Vec<u8>,
        /// What is wrong.
        reason: &'static str,
    },
    /// The request itself is malformed.
    InvalidRequest(&'static str),
}

impl EtcdError {
    /// True when retrying (after resolving locks, loading data, or with a new read ts) may
    /// succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EtcdError::Mvcc(e) if e.is_retryable())
    }
}

impl From<MvccError> for EtcdError {
    fn from(e: MvccError) -> Self {
        EtcdError::Mvcc(e)
    }
}

impl From<ReadError> for EtcdError {
    fn from(e: ReadError) -> Self {
        EtcdError::Mvcc(MvccError::Read(e))
    }
}

impl core::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EtcdError::Mvcc(e) => write!(f, "{e}"),
            EtcdError::Compacted { requested, compacted } => write!(
                f,
                "revision {requested} has been compacted (compaction mark {compacted})"
            ),
            EtcdError::FutureRevision { requested, current } => {
                write!(f, "revision {requested} is above the current revision {current}")
            }
            EtcdError::LeaseNotFound(id) => write!(f, "lease {id} not found"),
            EtcdError::LeaseExists(id) => write!(f, "lease {id} already exists"),
            EtcdError::LeaseExpired(id) => write!(f, "lease {id} has expired"),
            EtcdError::Corrupt { key, reason } => {
                write!(f, "corrupt record at key {key:02x?}: {reason}")
            }
            EtcdError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
        }
    }
}
