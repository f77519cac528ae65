//! Encoders: append one operation to an output buffer.
use alloc::vec::Vec;

/// `PING\r\n`.
pub const PING: &[u8] = b"PING\r\n";
/// `PONG\r\n`.
pub const PONG: &[u8] = b"PONG\r\n";
/// `+OK\r\n`.
pub const OK: &[u8] = b"+OK\r\n";
/// What every `-ERR` line starts with.
pub const ERR_PREFIX: &[u8] = b"-ERR '";
/// The header block of NATS's "no responders" status message.
pub const NO_RESPONDERS_HEADERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n`.
pub fn encode_msg(out: &mut Vec<u8>, subject: &str, sid: u64, reply: Option<&str>, payload: &[u8]) {
    out.reserve(subject.len() + reply.map_or(0, str::len) + payload.len() + 48);
    out.extend_from_slice(b"MSG ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    push_u64(out, sid);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r.as_bytes());
        out.push(b' ');
    }
    push_u64(out, payload.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n`.
pub fn encode_hmsg(out: &mut Vec<u8>, subject: &str, sid: u64, reply: Option<&str>, headers: &[u8], payload: &[u8]) {
    out.reserve(subject.len() + reply.map_or(0, str::len) + headers.len() + payload.len() + 64);
    out.extend_from_slice(b"HMSG ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    push_u64(out, sid);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r.as_bytes());
        out.push(b' ');
    }
    push_headed_body(out, headers, payload);
}

/// `<#header bytes> <#total bytes>\r\n<headers><payload>\r\n`: the end of HMSG and HPUB.
fn push_headed_body(out: &mut Vec<u8>, headers: &[u8], payload: &[u8]) {
    push_u64(out, headers.len() as u64);
    out.push(b' ');
    push_u64(out, (headers.len() + payload.len()) as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `HPUB <subject> [reply] <#header bytes> <#total bytes>\r\n<headers><payload>\r\n`.
pub fn encode_hpub(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) {
    out.reserve(subject.len() + reply.map_or(0, str::len) + headers.len() + payload.len() + 48);
    out.extend_from_slice(b"HPUB ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r.as_bytes());
        out.push(b' ');
    }
    push_headed_body(out, headers, payload);
}

/// `PUB <subject> [reply] <#bytes>\r\n<payload>\r\n`.
pub fn encode_pub(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, payload: &[u8]) {
    out.reserve(subject.len() + reply.map_or(0, str::len) + payload.len() + 32);
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r.as_bytes());
        out.push(b' ');
    }
    push_u64(out, payload.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `SUB <subject> [queue] <sid>\r\n`.
pub fn encode_sub(out: &mut Vec<u8>, subject: &str, queue: Option<&str>, sid: u64) {
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    if let Some(q) = queue {
        out.extend_from_slice(q.as_bytes());
        out.push(b' ');
    }
    push_u64(out, sid);
    out.extend_from_slice(b"\r\n");
}

/// `UNSUB <sid> [max]\r\n`.
pub fn encode_unsub(out: &mut Vec<u8>, sid: u64, max: Option<u64>) {
    out.extend_from_slice(b"UNSUB ");
    push_u64(out, sid);
    if let Some(m) = max {
        out.push(b' ');
        push_u64(out, m);
    }
    out.extend_from_slice(b"\r\n");
}

/// `CONNECT {"verbose":..,"pedantic":false,"lang":"rust","name":<name>,"protocol":1,
/// "headers":true,"no_responders":true}\r\n`: the client takes `HMSG` and wants the "no
/// responders" status.
/// `name` must not contain `"` or `\` (it is written as is).
pub fn encode_connect(out: &mut Vec<u8>, verbose: bool, name: &str) {
    out.extend_from_slice(b"CONNECT {\"verbose\":");
    out.extend_from_slice(if verbose { b"true" } else { b"false" });
    out.extend_from_slice(b",\"pedantic\":false,\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true,\"name\":\"");
    out.extend(name.bytes().filter(|&b| b != b'"' && b != b'\\' && b >= 0x20));
    out.extend_from_slice(b"\"}\r\n");
}

/// `INFO {json}\r\n` with the fields clients read.
pub fn encode_info(out: &mut Vec<u8>, server_id: &str, version: &str, host: &str, port: u16, max_payload: usize) {
    let clean = |s: &str| s.bytes().filter(|&b| b != b'"' && b != b'\\' && b >= 0x20).collect::<Vec<u8>>();
    out.extend_from_slice(b"INFO {\"server_id\":\"");
    out.extend_from_slice(&clean(server_id));
    out.extend_from_slice(b"\",\"server_name\":\"strata\",\"version\":\"");
    out.extend_from_slice(&clean(version));
    out.extend_from_slice(b"\",\"proto\":1,\"host\":\"");
    out.extend_from_slice(&clean(host));
    out.extend_from_slice(b"\",\"port\":");
    push_u64(out, u64::from(port));
    out.extend_from_slice(b",\"headers\":true,\"max_payload\":");
    push_u64(out, max_payload as u64);
    out.extend_from_slice(b"}\r\n");
}

/// `-ERR '<message>'\r\n` (quotes and line breaks in `message` are dropped).
pub fn encode_err(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(ERR_PREFIX);
    out.extend(message.bytes().filter(|&b| b != b'\'' && b != b'\r' && b != b'\n'));
    out.extend_from_slice(b"'\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_client_op, parse_server_op, ClientOp, Limits, ServerOp};

    #[test]
    fn encoders_round_trip_through_the_parsers() {
        let l = Limits::default();
        let mut out = Vec::new();
        encode_msg(&mut out, "a.b", 7, Some("r"), b"xy\r\nz");
        encode_msg(&mut out, "c", 0, None, b"");
        encode_err(&mut out, "bad 'thing'\n");
        let (op, n) = parse_server_op(&out, &l).unwrap().unwrap();
        assert_eq!(op, ServerOp::Msg { subject: "a.b", sid: 7, reply: Some("r"), payload: b"xy\r\nz" });
        let (op, m) = parse_server_op(&out[n..], &l).unwrap().unwrap();
        assert_eq!(op, ServerOp::Msg { subject: "c", sid: 0, reply: None, payload: b"" });
        assert_eq!(parse_server_op(&out[n + m..], &l).unwrap().unwrap().0, ServerOp::Err("bad thing"));

        let mut out = Vec::new();
        encode_connect(&mut out, true, "cli\"");
        encode_pub(&mut out, "s", Some("_INBOX.1"), &[0, 1, 2]);
        encode_sub(&mut out, "s.>", Some("q"), u64::MAX);
        encode_unsub(&mut out, 3, Some(10));
        let mut ops = alloc::vec::Vec::new();
        let mut at = 0;
        while let Some((op, n)) = parse_client_op(&out[at..], &l).unwrap() {
            ops.push(op);
            at += n;
        }
        assert_eq!(at, out.len());
        assert!(matches!(ops[0], ClientOp::Connect(c) if c.verbose));
        assert_eq!(ops[1], ClientOp::Pub { subject: "s", reply: Some("_INBOX.1"), payload: &[0, 1, 2] });
        assert_eq!(ops[2], ClientOp::Sub { subject: "s.>", queue: Some("q"), sid: u64::MAX });
        assert_eq!(ops[3], ClientOp::Unsub { sid: 3, max: Some(10) });

        let mut out = Vec::new();
        encode_hmsg(&mut out, "_INBOX.a", 9, None, NO_RESPONDERS_HEADERS, b"");
        encode_hpub(&mut out, "s", Some("r"), b"NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n", b"p");
        let (op, n) = parse_server_op(&out, &l).unwrap().unwrap();
        assert_eq!(op, ServerOp::HMsg { subject: "_INBOX.a", sid: 9, reply: None, headers: NO_RESPONDERS_HEADERS, payload: b"" });
        let (op, m) = parse_client_op(&out[n..], &l).unwrap().unwrap();
        assert_eq!(op, ClientOp::HPub { subject: "s", reply: Some("r"), headers: b"NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n", payload: b"p" });
        assert_eq!(n + m, out.len());
        let mut out = Vec::new();
        encode_connect(&mut out, false, "x");
        assert!(matches!(parse_client_op(&out, &l).unwrap().unwrap().0, ClientOp::Connect(c) if c.headers && c.no_responders));

        let mut info = Vec::new();
        encode_info(&mut info, "id", "0.1.0", "127.0.0.1", 4222, 1 << 20);
        match parse_server_op(&info, &l).unwrap().unwrap().0 {
            ServerOp::Info(j) => assert!(j.contains("\"max_payload\":1048576") && j.contains("\"port\":4222"), "{j}"),
            other => panic!("{other:?}"),
        }
    }
}
