//! Typed errors of the LSM store. Each variant says what failed and where; the doc of each says
//! what state remains.
use super::io::{FileName, IoError};
use alloc::string::String;
use core::fmt;

/// An error from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Bytes on disk failed a check. The store refuses to open (or the read fails) rather than
    /// guess; nothing is dropped silently.
    Corruption {
        /// The file holding the bad bytes.
        file: FileName,
        /// Byte offset of the bad record or block.
        offset: u64,
        /// What check failed.
        reason: &'static str,
    },
    /// The disk failed a request. A failed write leaves the store readable and consistent: the
    /// writes it covered are not applied and may be retried.
    Io {
        /// The file, when the request named one.
        file: Option<FileName>,
        /// Which request.
        op: &'static str,
        /// The binding's error.
        error: IoError,
    },
    /// The request was rejected before touching anything.
    InvalidArgument(InvalidArgument),
    /// The store is still recovering, or failed to open, or was closed.
    NotOpen,
}

/// Why a request was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidArgument {
    /// Keys must have at least one byte.
    EmptyKey,
    /// The key is longer than the configured maximum.
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The value is longer than the configured maximum.
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The batch's encoded size is over the maximum.
    BatchTooLarge {
        /// Encoded bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Anything else, described.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corruption { file, offset, reason } => {
                write!(f, "corruption in {file} at offset {offset}: {reason}")
            }
            Error::Io { file: Some(file), op, error } => write!(f, "{op} {file} failed: {error}"),
            Error::Io { file: None, op, error } => write!(f, "{op} failed: {error}"),
            Error::InvalidArgument(a) => write!(f, "invalid argument: {a}"),
            Error::NotOpen => f.write_str("store is not open"),
        }
    }
}

impl fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidArgument::EmptyKey => f.write_str("key is empty"),
            InvalidArgument::KeyTooLarge { len, max } => {
                write!(f, "key is {len} bytes, the maximum is {max}")
            }
            InvalidArgument::ValueTooLarge { len, max } => {
                write!(f, "value is {len} bytes, the maximum is {max}")
            }
            InvalidArgument::BatchTooLarge { len, max } => {
                write!(f, "batch is {len} bytes encoded, the maximum is {max}")
            }
            InvalidArgument::Other(s) => f.write_str(s),
        }
    }
}

impl core::error::Error for Error {}
