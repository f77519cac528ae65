//! Errors of the broker's inputs, one enum per operation. A failed input changes nothing.
use super::types::{ClientId, RequestId, Sid};
use crate::subject::SubjectError;
use core::fmt;

/// Why [`super::Broker::handle_subscribe`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeError {
    /// No such client (never connected, or disconnected).
    UnknownClient(ClientId),
    /// The pattern is malformed.
    InvalidPattern(SubjectError),
    /// The queue name is empty, too long, or contains whitespace.
    InvalidQueue,
    /// The client already has a live subscription with this sid.
    DuplicateSid(Sid),
    /// The client is at its subscription limit.
    TooManySubscriptions {
        /// The limit.
        max: usize,
    },
}

/// Why [`super::Broker::handle_unsubscribe`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsubscribeError {
    /// No such client.
    UnknownClient(ClientId),
    /// The client has no live subscription with this sid.
    UnknownSid(Sid),
}

/// Why [`super::Broker::handle_publish`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// No such client.
    UnknownClient(ClientId),
    /// The subject is malformed or has wildcards.
    InvalidSubject(SubjectError),
    /// The reply subject is malformed or has wildcards.
    InvalidReply(SubjectError),
    /// The payload is over the limit.
    PayloadTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why [`super::Broker::handle_request`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// No such client.
    UnknownClient(ClientId),
    /// The subject is malformed or has wildcards.
    InvalidSubject(SubjectError),
    /// The payload is over the limit.
    PayloadTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The client has this many requests outstanding already.
    TooManyRequests {
        /// The limit.
        max: usize,
    },
}

/// Why an input about a client (disconnect, cancel) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// No such client.
    UnknownClient(ClientId),
    /// No such outstanding request.
    UnknownRequest(RequestId),
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            SubscribeError::InvalidPattern(e) => write!(f, "invalid pattern: {e}"),
            SubscribeError::InvalidQueue => write!(f, "invalid queue name"),
            SubscribeError::DuplicateSid(s) => write!(f, "sid {} is already in use", s.0),
            SubscribeError::TooManySubscriptions { max } => {
                write!(f, "too many subscriptions (max {max})")
            }
        }
    }
}

impl fmt::Display for UnsubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsubscribeError::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            UnsubscribeError::UnknownSid(s) => write!(f, "unknown sid {}", s.0),
        }
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            PublishError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            PublishError::InvalidReply(e) => write!(f, "invalid reply subject: {e}"),
            PublishError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes is over the maximum {max}")
            }
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            RequestError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            RequestError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes is over the maximum {max}")
            }
            RequestError::TooManyRequests { max } => write!(f, "too many requests (max {max})"),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::UnknownClient(c) => write!(f, "unknown client {}", c.0),
            ClientError::UnknownRequest(r) => write!(f, "unknown request {}", r.0),
        }
    }
}
