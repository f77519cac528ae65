//! The NATS client text protocol (the subset Strata speaks), as pure parsers and encoders.
//!
//! A client sends `CONNECT`, `PUB`, `HPUB`, `SUB`, `UNSUB`, `PING`, `PONG`; a server sends
//! `INFO`, `MSG`, `HMSG`, `PING`, `PONG`, `+OK`, `-ERR`. Every operation is one control line
//! ended by `\r\n` (a bare `\n` is accepted too); `PUB` and `MSG` are followed by exactly the
//! announced number of payload bytes and `\r\n`; `HPUB` and `HMSG` announce the header bytes and
//! the total (headers + payload) and are followed by that many bytes and `\r\n`. The header
//! block (`NATS/1.0[ status]\r\nKey: Value\r\n...\r\n\r\n`) is carried as bytes; [`header`]
//! reads one value and [`status`] the status code. Operation names are case-insensitive;
//! arguments are separated by spaces or tabs.
//!
//! The parsers are incremental and allocation-free: [`parse_client_op`] and
//! [`parse_server_op`] look at the bytes received so far and return `Ok(None)` when an operation
//! is not complete yet, or the operation (borrowing from the input) and how many bytes it used.
//! Bytes from the network are untrusted: every malformed input is a typed [`WireError`]; control
//! lines are bounded by [`Limits::max_control_line`] and payloads by [`Limits::max_payload`]
//! *before* the payload is buffered, so a peer cannot make the reader buffer more than
//! `max_control_line + max_payload + 2` bytes.
//!
//! ```
//! use strata_engine::wire::{parse_client_op, ClientOp, Limits};
//!
//! let limits = Limits::default();
//! let input = b"SUB orders.* workers 7\r\nPUB orders.new 5\r\nhello\r\nPI";
//! let (op, used) = parse_client_op(input, &limits).unwrap().unwrap();
//! assert_eq!(op, ClientOp::Sub { subject: "orders.*", queue: Some("workers"), sid: 7 });
//! let (op, used2) = parse_client_op(&input[used..], &limits).unwrap().unwrap();
//! assert_eq!(op, ClientOp::Pub { subject: "orders.new", reply: None, payload: b"hello" });
//! assert_eq!(parse_client_op(&input[used + used2..], &limits), Ok(None)); // "PI": wait for more
//! ```
mod encode;
mod parse;

pub use encode::{
    encode_connect, encode_err, encode_hmsg, encode_hpub, encode_info, encode_msg, encode_pub, encode_sub,
    encode_unsub, ERR_PREFIX, NO_RESPONDERS_HEADERS, OK, PING, PONG,
};
pub use headers::{header, status};
mod headers;
pub use parse::{parse_client_op, parse_server_op, ClientOp, ConnectOptions, ServerOp};

use core::fmt;

/// Bounds on what a parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest control line (operation and arguments, without `\r\n`), in bytes.
    pub max_control_line: usize,
    /// The largest payload.
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // NATS's defaults: 4 KiB control lines, 1 MiB payloads.
        Limits { max_control_line: 4096, max_payload: 1 << 20 }
    }
}

/// What is wrong with the bytes received. After any of these the stream position is lost: a
/// server answers `-ERR` and closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// No `\r\n` within the maximum control line length.
    ControlLineTooLong {
        /// The limit.
        max: usize,
    },
    /// The operation name is not one this side accepts.
    UnknownOperation,
    /// Too few or too many arguments for the operation.
    WrongArguments {
        /// The operation.
        op: &'static str,
    },
    /// An argument that must be a decimal number (size, sid, max messages) is not one, or
    /// overflows.
    BadNumber {
        /// The operation.
        op: &'static str,
    },
    /// A payload size over the limit.
    PayloadTooLarge {
        /// The announced size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not followed by `\r\n`.
    MissingPayloadEnd,
    /// `HPUB`/`HMSG` announce more header bytes than bytes in all.
    BadHeaderSize {
        /// The operation.
        op: &'static str,
    },
    /// The control line is not UTF-8.
    NotUtf8,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::ControlLineTooLong { max } => write!(f, "Maximum Control Line Exceeded ({max} bytes)"),
            WireError::UnknownOperation => f.write_str("Unknown Protocol Operation"),
            WireError::WrongArguments { op } => write!(f, "Wrong Number of Arguments for {op}"),
            WireError::BadNumber { op } => write!(f, "Invalid Number in {op}"),
            WireError::PayloadTooLarge { len, max } => {
                write!(f, "Maximum Payload Violation ({len} bytes, max {max})")
            }
            WireError::MissingPayloadEnd => f.write_str("Payload Not Followed by CRLF"),
            WireError::BadHeaderSize { op } => write!(f, "Header Size Over Total Size in {op}"),
            WireError::NotUtf8 => f.write_str("Control Line Is Not UTF-8"),
        }
    }
}
