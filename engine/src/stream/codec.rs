//! The `s` key namespace: key layout, record encodings, name rules and pattern overlap.
//!
//! ```text
//! s C id:u32be                 -> stream config      (postcard StreamConfig)
//! s K id:u32be consumer-name   -> consumer record    (postcard ConsumerRecord: config + state)
//! s L id:u32be subject         -> last sequence      (u64be) of a message on that subject
//! s M id:u32be seq:u64be       -> message            ts:varint | subject_len:varint | subject
//!                                                    | id_len:varint | msg_id | payload
//! s P id:u32be                 -> stream mark        (postcard StreamMark: last_seq, last_ts)
//! ```
//!
//! Big-endian ids and sequences make keys sort by stream, then by sequence, so a stream's
//! messages are one contiguous range in sequence order.
use super::error::NameError;
use super::types::ConsumerConfig;
use crate::lsm::varint;
use alloc::string::String;
use alloc::vec::Vec;

/// The namespace byte of every stream key.
pub const NAMESPACE: u8 = b's';
/// Stream configs.
pub const TAG_CONFIG: u8 = b'C';
/// Consumer records.
pub const TAG_CONSUMER: u8 = b'K';
/// The last-by-subject index.
pub const TAG_LAST: u8 = b'L';
/// Messages.
pub const TAG_MSG: u8 = b'M';
/// Stream marks.
pub const TAG_MARK: u8 = b'P';

/// The longest stream or consumer name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// The longest message id, in bytes.
pub const MAX_MSG_ID_BYTES: usize = 128;

/// `s TAG id`: the prefix of every key of one kind for one stream.
pub fn prefix(tag: u8, id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + 8);
    k.push(NAMESPACE);
    k.push(tag);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The key of message `seq` of stream `id`.
pub fn msg_key(id: u32, seq: u64) -> Vec<u8> {
    let mut k = prefix(TAG_MSG, id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The last-by-subject index key.
pub fn last_key(id: u32, subject: &str) -> Vec<u8> {
    let mut k = prefix(TAG_LAST, id);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// The consumer record key.
pub fn consumer_key(id: u32, name: &str) -> Vec<u8> {
    let mut k = prefix(TAG_CONSUMER, id);
    k.extend_from_slice(name.as_bytes());
    k
}

/// A key split into its tag, stream id and the rest.
pub fn split_key(key: &[u8]) -> Option<(u8, u32, &[u8])> {
    if key.len() < 6 || key[0] != NAMESPACE {
        return None;
    }
    let id = u32::from_be_bytes([key[2], key[3], key[4], key[5]]);
    Some((key[1], id, &key[6..]))
}

/// The stream's mark: sequences below `last_seq` were used, even when no message is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamMark {
    /// The last sequence assigned when the mark was written.
    pub last_seq: u64,
    /// The last timestamp assigned then.
    pub last_ts: u64,
}

/// One delivered, unacknowledged message of a consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingRecord {
    /// Stream sequence.
    pub seq: u64,
    /// Deliveries so far.
    pub deliveries: u32,
    /// When it was last delivered (ms).
    pub delivered_ms: u64,
    /// Nak'ed: deliver again without waiting for the ack wait.
    pub nak: bool,
}

/// A consumer's configuration and state, stored whole under one key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumerRecord {
    /// Its configuration.
    pub config: ConsumerConfig,
    /// The next stream sequence to consider for a first delivery.
    pub next_seq: u64,
    /// With `LastPerSubject`: below this sequence only the last message of each subject is
    /// delivered (0: no such phase).
    pub lps_until: u64,
    /// Deliveries made (the consumer sequence).
    pub delivered: u64,
    /// Delivered and unacknowledged, by sequence.
    pub pending: Vec<PendingRecord>,
}

/// Encodes a message record.
pub fn encode_msg(out: &mut Vec<u8>, ts_ms: u64, subject: &str, msg_id: Option<&str>, payload: &[u8]) {
    out.reserve(payload.len() + subject.len() + 16);
    varint::put(out, ts_ms);
    varint::put(out, subject.len() as u64);
    out.extend_from_slice(subject.as_bytes());
    let id = msg_id.unwrap_or("");
    varint::put(out, id.len() as u64);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(payload);
}

/// A decoded message record (borrowed).
#[derive(Debug, PartialEq, Eq)]
pub struct MsgRecord<'a> {
    /// Timestamp.
    pub ts_ms: u64,
    /// Subject.
    pub subject: &'a str,
    /// Message id.
    pub msg_id: Option<&'a str>,
    /// Payload.
    pub payload: &'a [u8],
}

/// Decodes a message record; `Err` says what is wrong.
pub fn decode_msg(b: &[u8]) -> Result<MsgRecord<'_>, &'static str> {
    let (ts_ms, n) = varint::get(b).ok_or("bad timestamp")?;
    let b = &b[n..];
    let (slen, n) = varint::get(b).ok_or("bad subject length")?;
    let b = &b[n..];
    let slen = usize::try_from(slen).map_err(|_| "bad subject length")?;
    if slen > b.len() {
        return Err("subject past the end");
    }
    let subject = core::str::from_utf8(&b[..slen]).map_err(|_| "subject is not UTF-8")?;
    let b = &b[slen..];
    let (ilen, n) = varint::get(b).ok_or("bad id length")?;
    let b = &b[n..];
    let ilen = usize::try_from(ilen).map_err(|_| "bad id length")?;
    if ilen > b.len() {
        return Err("message id past the end");
    }
    let id = core::str::from_utf8(&b[..ilen]).map_err(|_| "message id is not UTF-8")?;
    Ok(MsgRecord { ts_ms, subject, msg_id: (!id.is_empty()).then_some(id), payload: &b[ilen..] })
}

/// Encodes a serde record with postcard.
pub fn encode_record<T: serde::Serialize>(t: &T) -> Vec<u8> {
    // Encoding into a Vec only fails on types serde cannot describe; ours are plain data.
    postcard::to_allocvec(t).unwrap_or_default()
}

/// Decodes a serde record with postcard.
pub fn decode_record<'a, T: serde::Deserialize<'a>>(b: &'a [u8]) -> Result<T, &'static str> {
    postcard::from_bytes(b).map_err(|_| "record does not decode")
}

/// Checks a stream or consumer name: 1 to [`MAX_NAME_BYTES`] bytes of `A-Z a-z 0-9 _ -`.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { len: name.len() });
    }
    match name.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-')) {
        Some(offset) => Err(NameError::BadByte { offset }),
        None => Ok(()),
    }
}

/// True when some subject matches both (valid) patterns.
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    let mut ta = a.split('.');
    let mut tb = b.split('.');
    loop {
        match (ta.next(), tb.next()) {
            (None, None) => return true,
            // `>` needs at least one token on the other side, which may be anything.
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) => {
                if x != "*" && y != "*" && x != y {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The stored size of a message, counted against `max_bytes`.
pub fn msg_size(subject: &str, payload: &[u8]) -> u64 {
    (subject.len() + payload.len()) as u64
}

/// Lossy text of a key, for error messages.
pub fn show_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_follows_wildcards() {
        assert!(patterns_overlap("a.b", "a.b"));
        assert!(patterns_overlap("a.*", "a.b"));
        assert!(patterns_overlap("a.>", "a.b.c"));
        assert!(patterns_overlap("*.b", "a.*"));
        assert!(patterns_overlap(">", "x"));
        assert!(!patterns_overlap("a.>", "a"));
        assert!(!patterns_overlap("a.b", "a.c"));
        assert!(!patterns_overlap("a.*", "a.b.c"));
        assert!(!patterns_overlap("a", "a.b"));
    }

    #[test]
    fn overlap_agrees_with_matching_on_small_alphabet() {
        use crate::subject::{Pattern, Subject};
        let toks = ["a", "b", "*", ">"];
        let mut pats = Vec::new();
        for n in 1..=3 {
            let mut idx = alloc::vec![0usize; n];
            loop {
                let p: Vec<&str> = idx.iter().map(|&i| toks[i]).collect();
                let s = p.join(".");
                if Pattern::parse(&s).is_ok() {
                    pats.push(s);
                }
                let mut k = 0;
                while k < n {
                    idx[k] += 1;
                    if idx[k] < toks.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == n {
                    break;
                }
            }
        }
        let mut subjects = Vec::new();
        for n in 1..=4 {
            for bits in 0..(1u32 << n) {
                let s: Vec<&str> = (0..n).map(|i| if bits >> i & 1 == 1 { "a" } else { "b" }).collect();
                subjects.push(s.join("."));
            }
        }
        subjects.push(String::from("c"));
        subjects.push(String::from("a.c.c"));
        for x in &pats {
            for y in &pats {
                let px = Pattern::parse(x).unwrap();
                let py = Pattern::parse(y).unwrap();
                let naive = subjects.iter().any(|s| {
                    let s = Subject::parse(s).unwrap();
                    px.matches(s) && py.matches(s)
                });
                assert_eq!(patterns_overlap(x, y), naive, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn message_records_round_trip_and_reject_garbage() {
        let mut b = Vec::new();
        encode_msg(&mut b, 77, "a.b", Some("id1"), b"payload");
        let r = decode_msg(&b).unwrap();
        assert_eq!(r, MsgRecord { ts_ms: 77, subject: "a.b", msg_id: Some("id1"), payload: b"payload" });
        for cut in 0..b.len() {
            let _ = decode_msg(&b[..cut]);
        }
        assert!(decode_msg(&[1, 200]).is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("ORDERS_1-x").is_ok());
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("a.b"), Err(NameError::BadByte { offset: 1 }));
        assert_eq!(check_name(&"x".repeat(65)), Err(NameError::TooLong { len: 65 }));
    }

    #[test]
    fn keys_sort_by_stream_then_sequence() {
        assert!(msg_key(1, 255) < msg_key(1, 256));
        assert!(msg_key(1, u64::MAX) < msg_key(2, 0));
        assert_eq!(split_key(&msg_key(7, 9)), Some((TAG_MSG, 7, &9u64.to_be_bytes()[..])));
    }
}
