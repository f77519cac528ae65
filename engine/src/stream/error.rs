//! Errors of the stream engine's inputs, one enum per kind of operation. A command that
//! returns an error has changed nothing.
use crate::subject::SubjectError;
use alloc::string::String;
use core::fmt;

/// The store's error, carried by a failed [`super::Event::Completed`].
pub type StoreFailure = crate::lsm::error::Error;

/// Why a stream or consumer name was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`super::MAX_NAME_BYTES`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte other than `A-Z a-z 0-9 _ -`.
    BadByte {
        /// Its offset.
        offset: usize,
    },
}

/// Why the engine refuses any command right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Recovery has not finished.
    NotOpen,
    /// Recovery failed.
    OpenFailed(OpenError),
    /// A store write failed: the engine is rebuilding its state from the store (and retries
    /// the rebuild by itself while the store cannot be read); retry after [`super::Event::Opened`].
    Failed(StoreFailure),
}

/// Why creating, updating or deleting a stream was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// The engine is not accepting commands.
    Unavailable(Unavailable),
    /// The stream name is malformed.
    InvalidName(NameError),
    /// A subject pattern is malformed.
    InvalidSubject {
        /// The pattern.
        subject: String,
        /// What is wrong.
        error: SubjectError,
    },
    /// A stream must capture at least one subject.
    NoSubjects,
    /// A pattern overlaps one of another stream (or one of the same stream).
    Overlap {
        /// This stream's pattern.
        subject: String,
        /// The stream already capturing an overlapping pattern.
        stream: String,
    },
    /// A stream with this name exists.
    Exists(String),
    /// No stream has this name.
    UnknownStream(String),
    /// The engine holds its maximum number of streams.
    TooManyStreams {
        /// The limit.
        max: usize,
    },
    /// A limit is out of range.
    InvalidConfig(&'static str),
}

/// Why a publish was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// The engine is not accepting commands.
    Unavailable(Unavailable),
    /// The subject is malformed or has wildcards.
    InvalidSubject(SubjectError),
    /// No stream captures the subject.
    NoStream(String),
    /// The payload is over the stream's (or the engine's) limit.
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// The stream discards new messages and is full.
    LimitReached {
        /// The stream.
        stream: String,
        /// Which limit: `"max_msgs"` or `"max_bytes"`.
        limit: &'static str,
    },
    /// The message id is empty or longer than [`super::MAX_MSG_ID_BYTES`].
    InvalidMsgId,
}

/// Why a stream read (get, last-by-subject, info, purge) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The engine is not accepting commands.
    Unavailable(Unavailable),
    /// No stream has this name.
    UnknownStream(String),
    /// No durable message has this sequence.
    NotFound {
        /// The sequence asked for.
        seq: u64,
    },
    /// No durable message has this subject.
    NoMessageForSubject(String),
    /// The subject or pattern is malformed.
    InvalidSubject(SubjectError),
}

/// Why a consumer command (add, delete, fetch, ack) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerError {
    /// The engine is not accepting commands.
    Unavailable(Unavailable),
    /// No stream has this name.
    UnknownStream(String),
    /// The stream has no consumer with this name.
    UnknownConsumer(String),
    /// The consumer name is malformed.
    InvalidName(NameError),
    /// The filter pattern is malformed.
    InvalidFilter(SubjectError),
    /// A consumer with this name exists on the stream.
    Exists(String),
    /// The stream holds its maximum number of consumers.
    TooManyConsumers {
        /// The limit.
        max: usize,
    },
    /// A setting is out of range.
    InvalidConfig(&'static str),
    /// Too many outstanding pull requests.
    TooManyPulls {
        /// The limit.
        max: usize,
    },
    /// The sequence is not delivered and awaiting acknowledgement.
    NotPending {
        /// The sequence.
        seq: u64,
    },
    /// The consumer's ack policy is `None`.
    AckNone,
}

/// Why recovery failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The store failed a scan.
    Store(StoreFailure),
    /// A stored record under the `s` namespace does not decode or contradicts another.
    Corrupt {
        /// The key, as lossy text.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl From<Unavailable> for StreamError {
    fn from(u: Unavailable) -> Self {
        StreamError::Unavailable(u)
    }
}
impl From<Unavailable> for PublishError {
    fn from(u: Unavailable) -> Self {
        PublishError::Unavailable(u)
    }
}
impl From<Unavailable> for ReadError {
    fn from(u: Unavailable) -> Self {
        ReadError::Unavailable(u)
    }
}
impl From<Unavailable> for ConsumerError {
    fn from(u: Unavailable) -> Self {
        ConsumerError::Unavailable(u)
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "empty name"),
            NameError::TooLong { len } => write!(f, "name is {len} bytes, longer than {}", super::MAX_NAME_BYTES),
            NameError::BadByte { offset } => write!(f, "name has a byte other than A-Z a-z 0-9 _ - at offset {offset}"),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotOpen => write!(f, "streams are not open yet"),
            Unavailable::OpenFailed(e) => write!(f, "streams failed to open: {e}"),
            Unavailable::Failed(e) => write!(f, "a stream write failed ({e}); rebuilding from the store, retry"),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Unavailable(u) => write!(f, "{u}"),
            StreamError::InvalidName(e) => write!(f, "invalid stream name: {e}"),
            StreamError::InvalidSubject { subject, error } => write!(f, "invalid subject {subject:?}: {error}"),
            StreamError::NoSubjects => write!(f, "a stream needs at least one subject"),
            StreamError::Overlap { subject, stream } => write!(f, "subject {subject:?} overlaps stream {stream}"),
            StreamError::Exists(n) => write!(f, "stream {n} exists"),
            StreamError::UnknownStream(n) => write!(f, "no stream {n}"),
            StreamError::TooManyStreams { max } => write!(f, "at the limit of {max} streams"),
            StreamError::InvalidConfig(what) => write!(f, "invalid stream config: {what}"),
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Unavailable(u) => write!(f, "{u}"),
            PublishError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            PublishError::NoStream(s) => write!(f, "no stream captures {s}"),
            PublishError::MessageTooLarge { len, max } => write!(f, "message is {len} bytes, over the limit {max}"),
            PublishError::LimitReached { stream, limit } => write!(f, "stream {stream} is full ({limit}) and discards new messages"),
            PublishError::InvalidMsgId => write!(f, "message id is empty or longer than {} bytes", super::MAX_MSG_ID_BYTES),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Unavailable(u) => write!(f, "{u}"),
            ReadError::UnknownStream(n) => write!(f, "no stream {n}"),
            ReadError::NotFound { seq } => write!(f, "no message {seq}"),
            ReadError::NoMessageForSubject(s) => write!(f, "no message on {s}"),
            ReadError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
        }
    }
}

impl fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerError::Unavailable(u) => write!(f, "{u}"),
            ConsumerError::UnknownStream(n) => write!(f, "no stream {n}"),
            ConsumerError::UnknownConsumer(n) => write!(f, "no consumer {n}"),
            ConsumerError::InvalidName(e) => write!(f, "invalid consumer name: {e}"),
            ConsumerError::InvalidFilter(e) => write!(f, "invalid filter subject: {e}"),
            ConsumerError::Exists(n) => write!(f, "consumer {n} exists"),
            ConsumerError::TooManyConsumers { max } => write!(f, "at the limit of {max} consumers"),
            ConsumerError::InvalidConfig(what) => write!(f, "invalid consumer config: {what}"),
            ConsumerError::TooManyPulls { max } => write!(f, "at the limit of {max} pull requests"),
            ConsumerError::NotPending { seq } => write!(f, "message {seq} is not awaiting acknowledgement"),
            ConsumerError::AckNone => write!(f, "the consumer's ack policy is none"),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Store(e) => write!(f, "store: {e}"),
            OpenError::Corrupt { key, reason } => write!(f, "corrupt stream record {key}: {reason}"),
        }
    }
}
