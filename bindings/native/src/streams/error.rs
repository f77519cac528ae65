//! [`StreamsError`]: why a stream call failed.
use crate::error::{Error, StoreError};
use crate::pubsub::MessagingError;
use std::fmt;
use strata_engine::stream::{ConsumerError, OpenError, PublishError, ReadError, StreamError};

/// Why a [`Streams`](super::Streams) call failed. A refused command (`Stream`, `Publish`,
/// `Read`, `Consumer`, `Messaging`) changed nothing; see each variant for the others.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamsError {
    /// Creating, updating or deleting a stream was refused (bad name, subject, limit, overlap,
    /// unknown or existing stream).
    Stream(StreamError),
    /// The publish was refused by the stream (no stream captures the subject, message too
    /// large, stream full with discard-new, bad message id). When it came through the broker
    /// the message still reached the subject's subscribers, as in NATS.
    Publish(PublishError),
    /// A read or purge was refused (unknown stream, no such message).
    Read(ReadError),
    /// A consumer command was refused (unknown consumer, bad config, not pending, ack policy
    /// none).
    Consumer(ConsumerError),
    /// The broker refused the publish (invalid subject, payload over its maximum).
    Messaging(MessagingError),
    /// The store failed the command's write: it is not acknowledged and not applied. The
    /// streams rebuild their state from the store by themselves (commands meanwhile fail with
    /// `Unavailable::Failed`); retry once the disk works again, no reopen needed.
    Write(StoreError),
    /// Recovering the streams from the store failed (a corrupt record under `s`).
    Open(OpenError),
    /// The database's error (closed, or a store failure outside the streams).
    Db(Error),
}

impl fmt::Display for StreamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamsError::Stream(e) => e.fmt(f),
            StreamsError::Publish(e) => e.fmt(f),
            StreamsError::Read(e) => e.fmt(f),
            StreamsError::Consumer(e) => e.fmt(f),
            StreamsError::Messaging(e) => e.fmt(f),
            StreamsError::Write(e) => write!(f, "stream write failed: {e}"),
            StreamsError::Open(e) => write!(f, "streams failed to open: {e}"),
            StreamsError::Db(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StreamsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamsError::Messaging(e) => Some(e),
            StreamsError::Write(e) => Some(e),
            StreamsError::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StreamError> for StreamsError {
    fn from(e: StreamError) -> Self {
        StreamsError::Stream(e)
    }
}
impl From<PublishError> for StreamsError {
    fn from(e: PublishError) -> Self {
        StreamsError::Publish(e)
    }
}
impl From<ReadError> for StreamsError {
    fn from(e: ReadError) -> Self {
        StreamsError::Read(e)
    }
}
impl From<ConsumerError> for StreamsError {
    fn from(e: ConsumerError) -> Self {
        StreamsError::Consumer(e)
    }
}
impl From<MessagingError> for StreamsError {
    fn from(e: MessagingError) -> Self {
        StreamsError::Messaging(e)
    }
}
impl From<Error> for StreamsError {
    fn from(e: Error) -> Self {
        StreamsError::Db(e)
    }
}
impl From<StreamsError> for Error {
    /// For callers that handle every failure as the crate's [`Error`] (the CLI): stream
    /// refusals become invalid arguments carrying the message.
    fn from(e: StreamsError) -> Self {
        match e {
            StreamsError::Db(e) => e,
            StreamsError::Write(e) => Error::Store(e),
            StreamsError::Messaging(e) => Error::Messaging(e),
            other => Error::invalid(crate::error::InvalidArgument::Other(other.to_string())),
        }
    }
}
