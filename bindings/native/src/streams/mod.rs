//! Persistent streams and durable consumers on a versioned [`Db`] (JetStream's model; the
//! engine is `strata_engine::stream`, its design in `engine/docs/stream.md`).
//!
//! [`Db::streams`] gives a [`Streams`] handle. A stream captures subject patterns: every
//! message published on a captured subject — through [`Streams::publish`], through
//! [`Db::publish`] and the other pub/sub calls, or by a TCP client of [`crate::server`] — is
//! stored with a sequence number, and still reaches the subscribers of its subject.
//! [`Streams::publish`] returns once the message is durable ([`PubAck`]); a plain
//! [`Db::publish`] does not wait; a publish with a reply subject (a NATS request) is answered
//! on it, once durable, with JetStream's `{"stream":"S","seq":N}`.
//!
//! Consumers are durable cursors with acknowledgements: [`Streams::fetch`] pulls a batch,
//! [`Streams::ack`], [`Streams::nak`] and [`Streams::term`] answer each delivery; unanswered
//! deliveries come again after the consumer's ack wait, driven by the real clock.
//!
//! Streams live in the `s` key namespace of the store, which a versioned `Db` leaves free;
//! a [`raw::Db`](crate::raw::Db) uses the whole key space for its keys and has no streams.
//! Stream timestamps (`ts_ms`, `max_age_ms`, `DeliverPolicy::ByStartTime`) are wall-clock
//! milliseconds since the Unix epoch.
pub(crate) mod api;
pub(crate) mod capture;
mod error;
pub(crate) mod side;

pub use api::{PubAck, Streams};
pub use error::StreamsError;
pub use strata_engine::stream::{
    AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, Delivery, Discard, Purge, StoredMessage, StreamConfig,
    StreamInfo, StreamsConfig,
};
