//! A small synchronous client for the NATS text protocol: the `strata sub`/`pub`/`request`
//! commands and the TCP benchmark use it, against `strata serve` and against `nats-server`
//! alike.
//!
//! Writes are buffered: [`Client::publish`], [`Client::subscribe`] and
//! [`Client::unsubscribe`] write once the buffer passes 32 KiB; [`Client::flush`] writes the
//! rest and waits for the server's `PONG` to a `PING`, so everything before it has been
//! processed. Server `PING`s are answered while reading.
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use strata_engine::wire::{self, Limits, ServerOp, WireError};

const WRITE_AT: usize = 32 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The connection failed.
    Io(io::Error),
    /// The server sent bytes that do not parse.
    Protocol(WireError),
    /// The server answered `-ERR` with this reason.
    Server(String),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// A request got NATS's "no responders" status (`HMSG` with `NATS/1.0 503`): nobody is
    /// subscribed to the subject.
    NoResponders,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "connection: {e}"),
            ClientError::Protocol(e) => write!(f, "protocol: {e}"),
            ClientError::Server(e) => write!(f, "server error: {e}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Closed => f.write_str("the server closed the connection"),
            ClientError::NoResponders => f.write_str("no responders"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
            _ => ClientError::Io(e),
        }
    }
}

/// A message received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// The subject it was published on.
    pub subject: String,
    /// The subscription it matched.
    pub sid: u64,
    /// The reply subject, if any.
    pub reply: Option<String>,
    /// The NATS header block, if the message had headers (`HMSG`).
    pub headers: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A message borrowed from the read buffer (see [`Client::recv_batch`]).
#[derive(Clone, Copy, Debug)]
pub struct MsgRef<'a> {
    /// The subject.
    pub subject: &'a str,
    /// The subscription it matched.
    pub sid: u64,
    /// The reply subject.
    pub reply: Option<&'a str>,
    /// The NATS header block, if any.
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

/// A connection to a NATS-protocol server.
pub struct Client {
    stream: TcpStream,
    out: Vec<u8>,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    limits: Limits,
    next_sid: u64,
    info: String,
    queued: VecDeque<Msg>,
    pongs: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("peer", &self.stream.peer_addr().ok()).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects: reads `INFO`, sends `CONNECT`, and waits for the `PONG` of a `PING`.
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let limits = Limits { max_control_line: 64 * 1024, max_payload: 64 << 20 };
        let mut c = Client {
            stream,
            out: Vec::new(),
            buf: Vec::new(),
            chunk: vec![0; READ_CHUNK],
            limits,
            next_sid: 1,
            info: String::new(),
            queued: VecDeque::new(),
            pongs: 0,
        };
        c.stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        while c.info.is_empty() {
            c.read_some(&mut |_| {})?;
        }
        wire::encode_connect(&mut c.out, false, "strata-client");
        c.flush()?;
        c.stream.set_read_timeout(None)?;
        Ok(c)
    }

    /// The server's `INFO` JSON.
    pub fn server_info(&self) -> &str {
        &self.info
    }

    /// Subscribes to `subject` (a pattern), in queue group `queue` if given; returns the sid.
    pub fn subscribe(&mut self, subject: &str, queue: Option<&str>) -> Result<u64, ClientError> {
        let sid = self.next_sid;
        self.next_sid += 1;
        wire::encode_sub(&mut self.out, subject, queue, sid);
        self.maybe_write()?;
        Ok(sid)
    }

    /// Unsubscribes `sid`, at once or after `max` messages in all.
    pub fn unsubscribe(&mut self, sid: u64, max: Option<u64>) -> Result<(), ClientError> {
        wire::encode_unsub(&mut self.out, sid, max);
        self.maybe_write()
    }

    /// Publishes (buffered).
    pub fn publish(&mut self, subject: &str, reply: Option<&str>, payload: &[u8]) -> Result<(), ClientError> {
        wire::encode_pub(&mut self.out, subject, reply, payload);
        self.maybe_write()
    }

    /// Publishes with a NATS header block (`NATS/1.0\r\nKey: Value\r\n\r\n`; buffered).
    pub fn publish_with_headers(&mut self, subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) -> Result<(), ClientError> {
        wire::encode_hpub(&mut self.out, subject, reply, headers, payload);
        self.maybe_write()
    }

    /// Writes everything buffered, then waits until the server has processed it (`PING` →
    /// `PONG`). Messages arriving meanwhile are kept for [`Client::next_msg`].
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.out.extend_from_slice(wire::PING);
        self.write_out()?;
        let want = self.pongs + 1;
        while self.pongs < want {
            let mut q = std::mem::take(&mut self.queued);
            let r = self.read_some(&mut |m| q.push_back(owned(m)));
            self.queued = q;
            r?;
        }
        Ok(())
    }

    /// The next message, waiting at most `timeout` (`None`: forever).
    pub fn next_msg(&mut self, timeout: Option<Duration>) -> Result<Msg, ClientError> {
        self.write_out()?;
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(m) = self.queued.pop_front() {
                return Ok(m);
            }
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ClientError::Timeout);
                }
                self.stream.set_read_timeout(Some(left))?;
            } else {
                self.stream.set_read_timeout(None)?;
            }
            let mut q = std::mem::take(&mut self.queued);
            let r = self.read_some(&mut |m| q.push_back(owned(m)));
            self.queued = q;
            r?;
        }
    }

    /// Reads once from the socket (waiting at most `timeout`) and calls `f` with every message
    /// complete in the buffer, without copying them; returns how many. Messages kept by an
    /// earlier [`Client::flush`] are passed first.
    pub fn recv_batch(&mut self, timeout: Option<Duration>, f: &mut dyn FnMut(MsgRef<'_>)) -> Result<usize, ClientError> {
        self.write_out()?;
        let mut n = 0;
        while let Some(m) = self.queued.pop_front() {
            f(MsgRef { subject: &m.subject, sid: m.sid, reply: m.reply.as_deref(), headers: m.headers.as_deref(), payload: &m.payload });
            n += 1;
        }
        if n > 0 {
            return Ok(n);
        }
        self.stream.set_read_timeout(timeout)?;
        self.read_some(&mut |m| {
            n += 1;
            f(m)
        })?;
        Ok(n)
    }

    /// Sends a request: subscribes to a fresh inbox for one message, publishes with it as reply
    /// subject, and waits for the reply at most `timeout`. Fails at once with
    /// [`ClientError::NoResponders`] when the server reports that nobody is subscribed (the
    /// client asks for that status in its `CONNECT`).
    pub fn request(&mut self, subject: &str, payload: &[u8], timeout: Duration) -> Result<Msg, ClientError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let inbox = format!("_INBOX.{:x}{:x}.{}", std::process::id(), nanos, self.next_sid);
        let sid = self.subscribe(&inbox, None)?;
        self.unsubscribe(sid, Some(1))?;
        self.publish(subject, Some(&inbox), payload)?;
        self.write_out()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.queued.iter().position(|m| m.sid == sid) {
                if let Some(m) = self.queued.remove(pos) {
                    if m.payload.is_empty() && m.headers.as_deref().and_then(wire::status) == Some(503) {
                        return Err(ClientError::NoResponders);
                    }
                    return Ok(m);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut q = std::mem::take(&mut self.queued);
            let r = self.read_some(&mut |m| q.push_back(owned(m)));
            self.queued = q;
            r?;
        }
    }

    fn maybe_write(&mut self) -> Result<(), ClientError> {
        if self.out.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// One `read`, then every complete operation in the buffer.
    fn read_some(&mut self, on_msg: &mut dyn FnMut(MsgRef<'_>)) -> Result<(), ClientError> {
        let n = self.stream.read(&mut self.chunk)?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.buf.extend_from_slice(&self.chunk[..n]);
        let mut at = 0;
        let mut result = Ok(());
        loop {
            match wire::parse_server_op(&self.buf[at..], &self.limits) {
                Ok(Some((op, used))) => {
                    at += used;
                    match op {
                        ServerOp::Msg { subject, sid, reply, payload } => {
                            on_msg(MsgRef { subject, sid, reply, headers: None, payload })
                        }
                        ServerOp::HMsg { subject, sid, reply, headers, payload } => {
                            on_msg(MsgRef { subject, sid, reply, headers: Some(headers), payload })
                        }
                        ServerOp::Ping => self.out.extend_from_slice(wire::PONG),
                        ServerOp::Pong => self.pongs += 1,
                        ServerOp::Ok => {}
                        ServerOp::Info(j) => self.info = j.to_owned(),
                        ServerOp::Err(e) => {
                            result = Err(ClientError::Server(e.to_owned()));
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(ClientError::Protocol(e));
                    break;
                }
            }
        }
        self.buf.drain(..at);
        self.write_out()?;
        result
    }
}

fn owned(m: MsgRef<'_>) -> Msg {
    Msg {
        subject: m.subject.to_owned(),
        sid: m.sid,
        reply: m.reply.map(str::to_owned),
        headers: m.headers.map(<[u8]>::to_vec),
        payload: m.payload.to_vec(),
    }
}
