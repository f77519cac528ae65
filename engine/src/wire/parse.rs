//! Incremental parsers for both directions of the protocol.
use super::{Limits, WireError};

/// An operation a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientOp<'a> {
    /// `CONNECT {json}`: the options this subset understands.
    Connect(ConnectOptions),
    /// `PUB <subject> [reply] <#bytes>` and the payload.
    Pub {
        /// The subject (not yet validated as a subject: that is the broker's job).
        subject: &'a str,
        /// The reply subject.
        reply: Option<&'a str>,
        /// The payload.
        payload: &'a [u8],
    },
    /// `HPUB <subject> [reply] <#header bytes> <#total bytes>`, the headers and the payload.
    HPub {
        /// The subject (not yet validated).
        subject: &'a str,
        /// The reply subject.
        reply: Option<&'a str>,
        /// The header block as sent (`NATS/1.0\r\n...\r\n\r\n`; not checked here).
        headers: &'a [u8],
        /// The payload after the headers.
        payload: &'a [u8],
    },
    /// `SUB <subject> [queue group] <sid>`.
    Sub {
        /// The pattern.
        subject: &'a str,
        /// The queue group.
        queue: Option<&'a str>,
        /// The subscription id (this subset accepts decimal ids, as every NATS client sends).
        sid: u64,
    },
    /// `UNSUB <sid> [max_msgs]`.
    Unsub {
        /// The subscription id.
        sid: u64,
        /// Unsubscribe after this many messages in all.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
}

/// The `CONNECT` options this subset reads; everything else in the JSON is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Acknowledge every operation with `+OK`.
    pub verbose: bool,
    /// Strict checking (accepted, no effect here: subjects are always checked).
    pub pedantic: bool,
    /// The client understands `HMSG` (headers).
    pub headers: bool,
    /// The client wants a "no responders" status (`HMSG` with `NATS/1.0 503`) when it
    /// publishes a request nobody is subscribed to (NATS honours it only with `headers`).
    pub no_responders: bool,
}

/// An operation a server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerOp<'a> {
    /// `INFO {json}`.
    Info(&'a str),
    /// `MSG <subject> <sid> [reply] <#bytes>` and the payload.
    Msg {
        /// The subject it was published on.
        subject: &'a str,
        /// The subscription it matched.
        sid: u64,
        /// The reply subject.
        reply: Option<&'a str>,
        /// The payload.
        payload: &'a [u8],
    },
    /// `HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>`, the headers and the
    /// payload.
    HMsg {
        /// The subject it was published on.
        subject: &'a str,
        /// The subscription it matched.
        sid: u64,
        /// The reply subject.
        reply: Option<&'a str>,
        /// The header block as sent.
        headers: &'a [u8],
        /// The payload after the headers.
        payload: &'a [u8],
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR '<message>'` (the message without the quotes).
    Err(&'a str),
}

/// Parses the next client operation from `buf`: `Ok(None)` when more bytes are needed, else the
/// operation and the number of bytes it used.
pub fn parse_client_op<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ClientOp<'a>, usize)>, WireError> {
    let Some((line, next)) = control_line(buf, limits)? else { return Ok(None) };
    let (op, rest) = split_op(line);
    let mut args = Args::new(rest);
    let parsed = if op.eq_ignore_ascii_case("PUB") {
        const OP: &str = "PUB";
        let (subject, reply, size) = match args.collect::<3>(OP)? {
            (2, [s, n, _]) => (s, None, n),
            (3, [s, r, n]) => (s, Some(r), n),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        let size = size_arg(size, OP)?;
        let Some((payload, used)) = payload(buf, next, size, limits)? else { return Ok(None) };
        (ClientOp::Pub { subject, reply, payload }, used)
    } else if op.eq_ignore_ascii_case("HPUB") {
        const OP: &str = "HPUB";
        let (subject, reply, hdr, total) = match args.collect::<4>(OP)? {
            (3, [s, h, t, _]) => (s, None, h, t),
            (4, [s, r, h, t]) => (s, Some(r), h, t),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        let (hdr, total) = (size_arg(hdr, OP)?, size_arg(total, OP)?);
        if hdr > total {
            return Err(WireError::BadHeaderSize { op: OP });
        }
        let Some((all, used)) = payload(buf, next, total, limits)? else { return Ok(None) };
        let (headers, payload) = all.split_at(hdr);
        (ClientOp::HPub { subject, reply, headers, payload }, used)
    } else if op.eq_ignore_ascii_case("SUB") {
        const OP: &str = "SUB";
        let (subject, queue, sid) = match args.collect::<3>(OP)? {
            (2, [s, id, _]) => (s, None, id),
            (3, [s, q, id]) => (s, Some(q), id),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        (ClientOp::Sub { subject, queue, sid: number(sid, OP)? }, next)
    } else if op.eq_ignore_ascii_case("UNSUB") {
        const OP: &str = "UNSUB";
        let (sid, max) = match args.collect::<2>(OP)? {
            (1, [id, _]) => (id, None),
            (2, [id, m]) => (id, Some(number(m, OP)?)),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        (ClientOp::Unsub { sid: number(sid, OP)?, max }, next)
    } else if op.eq_ignore_ascii_case("PING") {
        (ClientOp::Ping, next)
    } else if op.eq_ignore_ascii_case("PONG") {
        (ClientOp::Pong, next)
    } else if op.eq_ignore_ascii_case("CONNECT") {
        let json = rest;
        let options = ConnectOptions {
            verbose: json_true(json, "verbose"),
            pedantic: json_true(json, "pedantic"),
            headers: json_true(json, "headers"),
            no_responders: json_true(json, "no_responders"),
        };
        (ClientOp::Connect(options), next)
    } else {
        return Err(WireError::UnknownOperation);
    };
    Ok(Some(parsed))
}

/// Parses the next server operation from `buf` (the client side's parser).
pub fn parse_server_op<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(ServerOp<'a>, usize)>, WireError> {
    let Some((line, next)) = control_line(buf, limits)? else { return Ok(None) };
    let (op, rest) = split_op(line);
    let mut args = Args::new(rest);
    let parsed = if op.eq_ignore_ascii_case("MSG") {
        const OP: &str = "MSG";
        let (subject, sid, reply, size) = match args.collect::<4>(OP)? {
            (3, [s, id, n, _]) => (s, id, None, n),
            (4, [s, id, r, n]) => (s, id, Some(r), n),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        let sid = number(sid, OP)?;
        let size = size_arg(size, OP)?;
        let Some((payload, used)) = payload(buf, next, size, limits)? else { return Ok(None) };
        (ServerOp::Msg { subject, sid, reply, payload }, used)
    } else if op.eq_ignore_ascii_case("HMSG") {
        const OP: &str = "HMSG";
        let (subject, sid, reply, hdr, total) = match args.collect::<5>(OP)? {
            (4, [s, id, h, t, _]) => (s, id, None, h, t),
            (5, [s, id, r, h, t]) => (s, id, Some(r), h, t),
            _ => return Err(WireError::WrongArguments { op: OP }),
        };
        let sid = number(sid, OP)?;
        let (hdr, total) = (size_arg(hdr, OP)?, size_arg(total, OP)?);
        if hdr > total {
            return Err(WireError::BadHeaderSize { op: OP });
        }
        let Some((all, used)) = payload(buf, next, total, limits)? else { return Ok(None) };
        let (headers, payload) = all.split_at(hdr);
        (ServerOp::HMsg { subject, sid, reply, headers, payload }, used)
    } else if op.eq_ignore_ascii_case("PING") {
        (ServerOp::Ping, next)
    } else if op.eq_ignore_ascii_case("PONG") {
        (ServerOp::Pong, next)
    } else if op.eq_ignore_ascii_case("+OK") {
        (ServerOp::Ok, next)
    } else if op.eq_ignore_ascii_case("-ERR") {
        let msg = rest.trim_matches(|c| c == ' ' || c == '\t');
        let msg = msg.strip_prefix('\'').and_then(|m| m.strip_suffix('\'')).unwrap_or(msg);
        (ServerOp::Err(msg), next)
    } else if op.eq_ignore_ascii_case("INFO") {
        (ServerOp::Info(rest), next)
    } else {
        return Err(WireError::UnknownOperation);
    };
    Ok(Some(parsed))
}

/// The control line at the start of `buf` (without its terminator) and where the next bytes
/// start, `None` if the terminator has not arrived, or an error past the length limit.
fn control_line<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(&'a str, usize)>, WireError> {
    let max = limits.max_control_line;
    // The line may be `max` bytes plus `\r\n`.
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() > max.saturating_add(1) {
            Err(WireError::ControlLineTooLong { max })
        } else {
            Ok(None)
        };
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max {
        return Err(WireError::ControlLineTooLong { max });
    }
    let line = core::str::from_utf8(line).map_err(|_| WireError::NotUtf8)?;
    Ok(Some((line, nl + 1)))
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The operation name and the rest of the line (leading blanks removed).
fn split_op(line: &str) -> (&str, &str) {
    let line = line.trim_start_matches(is_space);
    match line.find(is_space) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_space)),
        None => (line, ""),
    }
}

/// Blank-separated arguments.
struct Args<'a> {
    rest: &'a str,
}

impl<'a> Args<'a> {
    fn new(rest: &'a str) -> Self {
        Args { rest }
    }

    /// Up to `N` arguments and how many there were; more than `N` is an error.
    fn collect<const N: usize>(&mut self, op: &'static str) -> Result<(usize, [&'a str; N]), WireError> {
        let mut out = [""; N];
        let mut n = 0;
        for a in self.rest.split(is_space).filter(|a| !a.is_empty()) {
            if n == N {
                return Err(WireError::WrongArguments { op });
            }
            out[n] = a;
            n += 1;
        }
        Ok((n, out))
    }
}

/// A decimal `u64` (no sign, no blanks).
fn number(s: &str, op: &'static str) -> Result<u64, WireError> {
    if s.is_empty() {
        return Err(WireError::BadNumber { op });
    }
    s.bytes().try_fold(0u64, |v, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
    .ok_or(WireError::BadNumber { op })
}

/// A payload size (a number that fits in `usize`).
fn size_arg(s: &str, op: &'static str) -> Result<usize, WireError> {
    usize::try_from(number(s, op)?).map_err(|_| WireError::BadNumber { op })
}

/// The `size`-byte payload starting at `start` and the end of its `\r\n`.
fn payload<'a>(buf: &'a [u8], start: usize, size: usize, limits: &Limits) -> Result<Option<(&'a [u8], usize)>, WireError> {
    if size > limits.max_payload {
        return Err(WireError::PayloadTooLarge { len: size, max: limits.max_payload });
    }
    let end = start + size;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(WireError::MissingPayloadEnd);
    }
    Ok(Some((&buf[start..end], end + 2)))
}

/// True when the JSON text has `"key": true` (a tolerant scan: this subset needs two booleans,
/// not a JSON parser).
fn json_true(json: &str, key: &str) -> bool {
    let mut rest = json;
    while let Some(i) = rest.find('"') {
        rest = &rest[i + 1..];
        let Some(end) = rest.find('"') else { return false };
        let name = &rest[..end];
        rest = &rest[end + 1..];
        let after = rest.trim_start();
        if name == key {
            if let Some(v) = after.strip_prefix(':') {
                return v.trim_start().starts_with("true");
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_control_line: 64, max_payload: 16 };

    fn one(input: &[u8]) -> Result<Option<(ClientOp<'_>, usize)>, WireError> {
        parse_client_op(input, &L)
    }

    #[test]
    fn client_ops() {
        assert_eq!(one(b"PING\r\n"), Ok(Some((ClientOp::Ping, 6))));
        assert_eq!(one(b"pong\n"), Ok(Some((ClientOp::Pong, 5))));
        assert_eq!(one(b"PUB a 0\r\n\r\n"), Ok(Some((ClientOp::Pub { subject: "a", reply: None, payload: b"" }, 11))));
        assert_eq!(
            one(b"pub  a.b\tr.1  3\r\nx\r\n\r\n"),
            Ok(Some((ClientOp::Pub { subject: "a.b", reply: Some("r.1"), payload: b"x\r\n" }, 22)))
        );
        assert_eq!(one(b"SUB a.* 12\r\n"), Ok(Some((ClientOp::Sub { subject: "a.*", queue: None, sid: 12 }, 12))));
        assert_eq!(one(b"UNSUB 12 5\r\n"), Ok(Some((ClientOp::Unsub { sid: 12, max: Some(5) }, 12))));
        assert_eq!(one(b"UNSUB 12\r\n"), Ok(Some((ClientOp::Unsub { sid: 12, max: None }, 10))));
        let c = br#"CONNECT {"verbose": true,"pedantic":false,"name":"verbose"}"#;
        let mut input = c.to_vec();
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            one(&input),
            Ok(Some((ClientOp::Connect(ConnectOptions { verbose: true, ..ConnectOptions::default() }), input.len())))
        );
        assert_eq!(one(b"CONNECT {}\r\n").unwrap().unwrap().0, ClientOp::Connect(ConnectOptions::default()));
        let c = one(b"CONNECT {\"headers\":true,\"no_responders\":true}\r\n").unwrap().unwrap().0;
        assert_eq!(c, ClientOp::Connect(ConnectOptions { headers: true, no_responders: true, ..ConnectOptions::default() }));
        assert_eq!(
            one(b"HPUB a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"),
            Ok(Some((ClientOp::HPub { subject: "a", reply: Some("r"), headers: b"NATS/1.0\r\n\r\n", payload: b"hi" }, 32)))
        );
        assert_eq!(one(b"HPUB a 0 0\r\n\r\n").unwrap().unwrap().0, ClientOp::HPub { subject: "a", reply: None, headers: b"", payload: b"" });
    }

    #[test]
    fn incomplete_input_waits() {
        for input in [&b""[..], b"PI", b"PING\r", b"PUB a 3\r\n", b"PUB a 3\r\nab", b"PUB a 3\r\nabc\r"] {
            assert_eq!(one(input), Ok(None), "{:?}", core::str::from_utf8(input));
        }
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert_eq!(one(b"HPUB a 3 2\r\n"), Err(WireError::BadHeaderSize { op: "HPUB" }));
        assert_eq!(one(b"HPUB a 1\r\n"), Err(WireError::WrongArguments { op: "HPUB" }));
        assert_eq!(one(b"HPUB a 1 17\r\n"), Err(WireError::PayloadTooLarge { len: 17, max: 16 }));
        assert_eq!(one(b"XPUB a 1 2\r\n"), Err(WireError::UnknownOperation));
        assert_eq!(one(b"PUB a\r\n"), Err(WireError::WrongArguments { op: "PUB" }));
        assert_eq!(one(b"PUB a b c 1\r\n"), Err(WireError::WrongArguments { op: "PUB" }));
        assert_eq!(one(b"PUB a -1\r\n"), Err(WireError::BadNumber { op: "PUB" }));
        assert_eq!(one(b"PUB a 99999999999999999999\r\n"), Err(WireError::BadNumber { op: "PUB" }));
        assert_eq!(one(b"PUB a 17\r\n"), Err(WireError::PayloadTooLarge { len: 17, max: 16 }));
        assert_eq!(one(b"PUB a 1\r\nxy\r\n"), Err(WireError::MissingPayloadEnd));
        assert_eq!(one(b"SUB a b c d\r\n"), Err(WireError::WrongArguments { op: "SUB" }));
        assert_eq!(one(b"SUB a x\r\n"), Err(WireError::BadNumber { op: "SUB" }));
        assert_eq!(one(b"UNSUB\r\n"), Err(WireError::WrongArguments { op: "UNSUB" }));
        assert_eq!(one(b"\xff\r\n"), Err(WireError::NotUtf8));
        assert_eq!(one(b"\r\n"), Err(WireError::UnknownOperation));
        let long = [b'a'; 66];
        assert_eq!(one(&long), Err(WireError::ControlLineTooLong { max: 64 }));
        let mut exact = [b'a'; 64].to_vec();
        assert_eq!(one(&exact), Ok(None));
        exact.extend_from_slice(b"\r\n");
        assert_eq!(one(&exact), Err(WireError::UnknownOperation));
    }

    #[test]
    fn server_ops() {
        let p = |b: &'static [u8]| parse_server_op(b, &L);
        assert_eq!(p(b"INFO {\"a\":1}\r\n"), Ok(Some((ServerOp::Info("{\"a\":1}"), 14))));
        assert_eq!(
            p(b"MSG a.b 3 _INBOX.x 2\r\nhi\r\n"),
            Ok(Some((ServerOp::Msg { subject: "a.b", sid: 3, reply: Some("_INBOX.x"), payload: b"hi" }, 26)))
        );
        assert_eq!(p(b"MSG a 1 0\r\n\r\n").unwrap().unwrap().0, ServerOp::Msg { subject: "a", sid: 1, reply: None, payload: b"" });
        assert_eq!(p(b"-ERR 'Unknown Protocol Operation'\r\n").unwrap().unwrap().0, ServerOp::Err("Unknown Protocol Operation"));
        assert_eq!(p(b"+OK\r\n").unwrap().unwrap().0, ServerOp::Ok);
        assert_eq!(p(b"PING\r\n").unwrap().unwrap().0, ServerOp::Ping);
        assert_eq!(p(b"MSG a x 1\r\n"), Err(WireError::BadNumber { op: "MSG" }));
        assert_eq!(
            p(b"HMSG _INBOX.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n").unwrap().unwrap().0,
            ServerOp::HMsg { subject: "_INBOX.1", sid: 7, reply: None, headers: b"NATS/1.0 503\r\n\r\n", payload: b"" }
        );
        assert_eq!(p(b"HMSG a 1 5 4\r\n"), Err(WireError::BadHeaderSize { op: "HMSG" }));
        assert_eq!(p(b"PUB a 1\r\n"), Err(WireError::UnknownOperation));
    }
}
