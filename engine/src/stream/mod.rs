//! Persistent streams and durable consumers: JetStream's model stored in the LSM.
//!
//! A *stream* captures one or more subject patterns (none overlapping another stream's) and
//! stores every message published on a matching subject with a sequence number (from 1, never
//! reused) and a timestamp (the `now_ms` input, never going back). Limits by message count,
//! bytes and age delete the oldest messages (discard old) or refuse new ones (discard new); a
//! duplicate window drops a publish whose message id was seen recently. A *consumer* is a
//! durable cursor over one stream, optionally filtered by a subject pattern, that hands out
//! messages to pull requests ([`Streams::fetch`]) and tracks acknowledgements: explicit, all,
//! or none; redelivery after an ack wait; a maximum number of deliveries; a maximum number of
//! unacknowledged messages. Everything is stored under the `s` key namespace (layout in
//! [`codec`] and `docs/stream.md`); memory mirrors it so reads and deliveries need no I/O.
//!
//! # Durability
//!
//! Every command becomes one store write batch, so after any crash the store holds a prefix of
//! the commands, each whole or absent. A publish, an ack and every management command are
//! *acknowledged* by [`Event::Completed`] only after the store replied to their write — with
//! `Durability::SyncEachWrite` that is after the covering sync, so an acknowledged publish or
//! ack survives any crash. With `Durability::SyncEveryMs` or `Durability::Manual` the store
//! replies once the write is in memory, and the guarantee weakens by exactly what those modes
//! say. Consumers deliver only messages whose write the store has acknowledged, so no consumer
//! ever sees a message a crash could take back.
//!
//! # Calling protocol
//!
//! The engine does not own the [`Store`](crate::lsm::store::Store): a driver owns both, and
//! every input that may write takes `&mut Store`.
//!
//! ```text
//! let mut streams = Streams::open(config, now, &mut store);   // store already Opened
//! loop {
//!     // drive the store as its own docs say; for every Output::Reply { id, result }:
//!     if !streams.handle_store_reply(now, &mut store, id, &result) { /* someone else's */ }
//!     while let Some(ev) = streams.poll() { ... }                 // drain after every input
//!     // commands: create_stream, publish, add_consumer, fetch, ack, purge, ... (each with now)
//!     // time: when streams.next_deadline() <= now, streams.handle_timeout(now, &mut store)
//! }
//! ```
//!
//! * Wait for [`Event::Opened`] before commands; until then they fail with
//!   [`Unavailable::NotOpen`].
//! * Commands validate first: an `Err` leaves everything unchanged. An `Ok` carries a
//!   [`Ticket`] (and, for a publish, the sequence and timestamp); the command is acknowledged
//!   when [`Event::Completed`] with that ticket comes out of [`Streams::poll`].
//! * Reads ([`Streams::get`], [`Streams::last_by_subject`], [`Streams::stream_info`],
//!   [`Streams::consumer_info`]) answer from memory at once; `get` and `last_by_subject` see
//!   only durable messages.
//! * Writes go out one group at a time: commands issued while a write is in flight wait and
//!   are sent together as one batch when it completes (group commit inside the engine), so the
//!   store never holds a batch built on top of one that failed.
//! * If a store write fails, every command of that group and of the groups queued behind it
//!   completes with the error (none is applied), and the engine rebuilds its memory from the
//!   store by itself, as at open: commands fail with [`Unavailable::Failed`] until
//!   [`Event::Opened`] comes again (waiting pulls end with [`FetchEnd::Interrupted`]). If the
//!   store cannot be read then, the rebuild is retried from [`Streams::handle_timeout`]. No
//!   reopen is needed.
//! * Same inputs, same outputs: the engine keeps no hash-ordered state and reads no clock.
mod admin;
pub mod codec;
mod consumer;
mod engine;
mod error;
mod log;
mod recovery;
mod types;
#[cfg(test)]
mod tests;

pub use codec::{MAX_MSG_ID_BYTES, MAX_NAME_BYTES};
pub use engine::Streams;
pub use error::{ConsumerError, NameError, OpenError, PublishError, ReadError, StoreFailure, StreamError, Unavailable};
pub use types::{
    AckKind, AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, Delivery, Discard, Event, FetchEnd, FetchId,
    Published, Purge, StoredMessage, StreamConfig, StreamInfo, StreamsConfig, Ticket,
};
