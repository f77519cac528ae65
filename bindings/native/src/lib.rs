#![doc = include_str!("../../../README.md")]
//!
//! # The `strata` crate
//!
//! This crate is the native binding of Strata's sans-IO core ([`strata_engine`]): it carries
//! out the core's requests on real files and threads, and offers the synchronous API above.
//!
//! * [`Db`] — the versioned database: `get` / `put` / `delete` / `write` (atomic [`Batch`]) as
//!   one-phase transactions, [`Db::range`], and snapshot-isolation transactions
//!   ([`Db::transaction`] with automatic retries, [`Db::begin`] → [`Txn`]); errors in
//!   [`TxnError`] (`WriteConflict` names the key and the conflicting commit).
//! * [`raw::Db`] — the unversioned LSM store: ordered iteration (`range`, `prefix`, `_rev`),
//!   sequence-number snapshots, `flush`, `compact_range`, `stats`, `sync`.
//! * Publish/subscribe on the same handle: [`Db::publish`], [`Db::subscribe`] (a
//!   [`Subscription`]: blocking, timed or non-blocking receive, or an iterator),
//!   [`Db::queue_subscribe`], [`Db::request`]; and KV watch ([`Options::kv_watch`],
//!   [`Db::watch`]) publishing every write on `$KV.<bucket>.<key>`.
//! * Persistent streams with durable consumers ([`Db::streams`] → [`Streams`], JetStream's
//!   model): publishes on captured subjects are stored, acknowledged once durable; pull
//!   consumers with acks and redelivery.
//! * [`server::Server`] serves a `Db`'s broker over TCP with a subset of the NATS client
//!   protocol (`strata serve`); [`client::Client`] is a small synchronous client for it (and
//!   for `nats-server`).
//! * [`Options`] — durability ([`Durability`]), memtable size, block cache budget.
//! * [`Error`] — typed: [`Error::Locked`] for a folder another `Db` holds, [`Error::Io`] with the
//!   path, and the core's errors (invalid arguments, corruption with file and offset, disk
//!   failures) in [`Error::Store`].
//!
//! How the threads cooperate (group commit without a timer, reads without the lock) is
//! described in the `driver` module's source.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod cache;
pub mod client;
mod db;
mod disk;
mod driver;
mod error;
mod gather;
mod iter;
mod kind;
mod lock;
mod options;
mod pubsub;
pub mod server;
pub mod streams;
mod watch;
mod txn;
mod versioned;
mod etcd;
mod maint;
mod revwatch;

/// The unversioned LSM store: raw keys and values, no timestamps, no transactions — the
/// fastest path, used by tools and benchmarks. Its [`raw::Db`] has ordered iterators and
/// sequence-number snapshots. A versioned [`Db`] keeps its data under encoded MVCC keys:
/// open a folder with one kind of handle only.
pub mod raw {
    pub use crate::db::{Db, Snapshot};
    pub use crate::iter::Iter;
}

pub use error::{Error, InvalidArgument, Result, StoreError};
pub use txn::{Txn, TxnError, TxnOptions, TxnResult};
pub use versioned::Db;
pub use kind::{Kind, KIND_FILE};
pub use lock::LOCK_FILE;
pub use options::{Durability, Options};
pub use pubsub::{Message, MessagingError, PublishOutcome, RecvError, RequestError, Subscription, RECV_BATCH};
pub use strata_engine::broker::{BrokerConfig, BrokerStats};
pub use strata_engine::subject::SubjectError;
pub use watch::{KvEvent, KvOp, Watch};
pub use streams::{PubAck, Streams, StreamsError};
pub use etcd::{CasOutcome, CasTxn, Cmp, Compare, HistoryEntry, KeyValue, Op, OpResult};
pub use revwatch::{Event, EventKind, WatchBatch, WatchError, Watcher, WATCH_BUFFER_EVENTS};
pub use strata_engine::lsm::batch::Batch;
pub use strata_engine::lsm::cache::CacheStats;
pub use strata_engine::lsm::config::Config;
pub use strata_engine::lsm::store::Stats;
