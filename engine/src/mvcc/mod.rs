//! Multi-version concurrency control: TiKV's Percolator transactions as pure functions.
//!
//! This module is the *pure* half of Strata's transactions. It knows how MVCC data is laid out
//! in the one LSM key space and how each Percolator command changes it, but it never touches
//! the store: a command reads through a [`reader::SnapshotReader`] and answers with a write
//! batch (an [`crate::lsm::batch::Batch`] of encoded keys and records) or a typed error. The
//! caller applies the batch atomically, or drops it. Driving the commands over the LSM's
//! resumable reads is the job of a later layer (see `docs/mvcc.md`).
//!
//! * [`codec`] — memcomparable user keys, the three column families (`lock`, `write`,
//!   `default`) as key prefixes, timestamps stored descending.
//! * [`record`] — the lock and write records and their compact binary encoding.
//! * [`tso`] — the timestamp oracle: a hybrid logical clock with a persisted high-water mark.
//! * [`reader`] — the reads the commands need, and an in-memory store for tests.
//! * [`txn`] — the commands: prewrite, commit, rollback, cleanup, check_txn_status,
//!   resolve_lock, txn_heartbeat, one-phase commit, GC.
//! * [`read`] — snapshot point gets and scans at a read timestamp.
//! * etcd's features on the same data: [`revision`] (reads at a revision, history, compaction,
//!   etcd's per-key fields), [`cas`] (compare-and-swap transactions), [`lease`] (leases and
//!   their expiry), [`watch`] (the watch hub).
//! * [`exec`] — the executor: runs the commands over the LSM store (latches, reruns on missing
//!   blocks, one write per command, the oracle's durable mark).
//!
//! ```
//! use strata_engine::mvcc::reader::MemStore;
//! use strata_engine::mvcc::txn::{self, Mutation, PrewriteRequest};
//! use strata_engine::mvcc::{read, Ts};
//!
//! let mut store = MemStore::new();
//! let req = PrewriteRequest::new(b"k".to_vec(), Ts(10), 3_000)
//!     .with(Mutation::Put(b"k".to_vec(), b"v".to_vec()));
//! store.apply(&txn::prewrite(&store, &req).unwrap());
//! store.apply(&txn::commit(&store, &[b"k".to_vec()], Ts(10), Ts(11)).unwrap());
//! assert_eq!(read::get(&store, b"k", Ts(11)).unwrap(), Some(b"v".to_vec()));
//! assert_eq!(read::get(&store, b"k", Ts(10)).unwrap(), None);
//! ```
pub mod cas;
pub mod codec;
pub mod error;
pub mod exec;
pub mod lease;
pub mod read;
pub mod reader;
pub mod record;
pub mod revision;
pub mod tso;
pub mod txn;
pub mod watch;

pub use error::MvccError;

/// A timestamp from the timestamp oracle: `physical_ms << 18 | logical`.
///
/// Every start and commit timestamp comes from the one oracle, so no two transactions share a
/// timestamp. Ordering is plain `u64` ordering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    /// The smallest timestamp; no transaction uses it.
    pub const ZERO: Ts = Ts(0);
    /// The largest timestamp: reading at it sees every committed version.
    pub const MAX: Ts = Ts(u64::MAX);
    /// Bits of the logical counter.
    pub const LOGICAL_BITS: u32 = 18;

    /// The timestamp of physical time `physical_ms` with logical counter `logical`.
    pub const fn compose(physical_ms: u64, logical: u64) -> Ts {
        Ts((physical_ms << Self::LOGICAL_BITS) | (logical & ((1 << Self::LOGICAL_BITS) - 1)))
    }

    /// The physical part, in milliseconds.
    pub const fn physical_ms(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// The logical part.
    pub const fn logical(self) -> u64 {
        self.0 & ((1 << Self::LOGICAL_BITS) - 1)
    }

    /// The next timestamp (saturating at [`Ts::MAX`]).
    pub const fn next(self) -> Ts {
        Ts(self.0.saturating_add(1))
    }

    /// The previous timestamp (saturating at [`Ts::ZERO`]).
    pub const fn prev(self) -> Ts {
        Ts(self.0.saturating_sub(1))
    }
}

/// A lease's id (etcd's `LeaseID`), chosen by the caller of `lease::grant`; never 0 (0 means
/// "no lease" in etcd's API and is refused at grant).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub u64);

impl core::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl core::fmt::Display for Ts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}
