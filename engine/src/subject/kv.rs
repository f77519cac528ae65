//! Key-value keys as subjects: the reversible mapping behind KV watch.
//!
//! A write to key `k` in bucket `b` is published on `$KV.<b>.<tokens of k>`, so a subscription
//! to `$KV.b.>` watches the whole bucket and `$KV.b.user.*` one level of it. The mapping:
//!
//! * The key's bytes are split at every `.` (0x2E) into tokens, so `user.42.name` becomes the
//!   three tokens `user`, `42`, `name` and wildcards address key "levels".
//! * Inside a token, bytes `0x21..=0x7E` (printable ASCII, no space) stand for themselves except
//!   `%`, `*` and `>`. Every other byte — `%`, `*`, `>`, space and other whitespace, control
//!   bytes, DEL, and every byte `0x80..=0xFF` — is written `%XX` with two **upper-case** hex
//!   digits. (`*` and `>` are escaped anywhere in a token, not only alone, so no key token can
//!   be a wildcard.)
//! * An empty token (a key starting or ending with `.`, or with `..` inside) is written as a lone
//!   `%`, which no escape produces (an escape is always `%` plus two digits).
//!
//! Examples: `a.b` → `a.b`; `a..b` → `a.%.b`; `.x` → `%.x`; `50%` → `50%25`; `a b*` →
//! `a%20b%2A`; bytes `ff 00` → `%FF%00`.
//!
//! [`decode_key`] inverts [`encode_key`] and accepts only its canonical output (upper-case hex,
//! no escape of a byte that stands for itself), so the mapping is a bijection between keys and
//! the token strings it produces. The subject of a key is at most 3 times the key's length plus
//! the prefix; keys whose subject is longer than the broker's maximum cannot be published.
use super::parse::{Subject, SubjectError};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The first token of every KV subject.
pub const KV_PREFIX: &str = "$KV";

/// Why [`decode_key`] refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDecodeError {
    /// `%` not followed by two upper-case hex digits (and not a lone-`%` token), at this byte.
    BadEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// A byte that must be escaped appears as itself, at this byte.
    Unescaped {
        /// Byte offset.
        offset: usize,
    },
    /// An escape of a byte that stands for itself (not canonical), at this byte.
    NeedlessEscape {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// The subject does not start with `$KV.<bucket>.`.
    WrongPrefix,
}

impl fmt::Display for KeyDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KeyDecodeError::BadEscape { offset } => write!(f, "bad %-escape at byte {offset}"),
            KeyDecodeError::Unescaped { offset } => write!(f, "byte at {offset} must be escaped"),
            KeyDecodeError::NeedlessEscape { offset } => {
                write!(f, "escape at byte {offset} of a byte that stands for itself")
            }
            KeyDecodeError::WrongPrefix => write!(f, "subject is not in this KV bucket"),
        }
    }
}

/// True for a byte written as itself inside a token.
#[inline]
pub fn is_plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'%' && b != b'*' && b != b'>' && b != b'.'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends the token string of `key` to `out` (see the module docs).
pub fn encode_key_into(key: &[u8], out: &mut String) {
    for (i, token) in key.split(|&b| b == b'.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if token.is_empty() {
            out.push('%');
            continue;
        }
        for &b in token {
            if is_plain(b) {
                out.push(b as char);
            } else {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

/// The token string of `key`.
pub fn encode_key(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len() + 8);
    encode_key_into(key, &mut s);
    s
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The key whose token string is `tokens`; only canonical [`encode_key`] output is accepted.
pub fn decode_key(tokens: &str) -> Result<Vec<u8>, KeyDecodeError> {
    let b = tokens.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut start = 0usize;
    for (t, token) in b.split(|&c| c == b'.').enumerate() {
        if t > 0 {
            out.push(b'.');
        }
        if token == b"%" {
            start += 2;
            continue;
        }
        let mut i = 0;
        while i < token.len() {
            let c = token[i];
            if c == b'%' {
                let v = match (token.get(i + 1).copied().and_then(hex_val), token.get(i + 2).copied().and_then(hex_val)) {
                    (Some(h), Some(l)) => (h << 4) | l,
                    _ => return Err(KeyDecodeError::BadEscape { offset: start + i }),
                };
                if is_plain(v) || v == b'.' {
                    return Err(KeyDecodeError::NeedlessEscape { offset: start + i });
                }
                out.push(v);
                i += 3;
            } else if is_plain(c) {
                out.push(c);
                i += 1;
            } else {
                // An empty token (other than the lone `%` form) lands here too.
                return Err(KeyDecodeError::Unescaped { offset: start + i });
            }
        }
        if token.is_empty() {
            return Err(KeyDecodeError::Unescaped { offset: start });
        }
        start += token.len() + 1;
    }
    Ok(out)
}

/// The subject `$KV.<bucket>.<tokens of key>` into `out` (cleared first).
pub fn key_subject_into(bucket: &str, key: &[u8], out: &mut String) {
    out.clear();
    out.push_str(KV_PREFIX);
    out.push('.');
    out.push_str(bucket);
    out.push('.');
    encode_key_into(key, out);
}

/// The key a KV subject of `bucket` names.
pub fn subject_key(bucket: &str, subject: &str) -> Result<Vec<u8>, KeyDecodeError> {
    let rest = subject
        .strip_prefix(KV_PREFIX)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_prefix(bucket))
        .and_then(|r| r.strip_prefix('.'))
        .ok_or(KeyDecodeError::WrongPrefix)?;
    decode_key(rest)
}

/// Why a bucket name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketError {
    /// Not a valid literal subject (empty, whitespace, wildcard, too long).
    Invalid(SubjectError),
    /// Several tokens: a `.` at this byte.
    Dotted {
        /// Byte offset of the first `.`.
        offset: usize,
    },
}

impl fmt::Display for BucketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketError::Invalid(e) => write!(f, "invalid bucket name: {e}"),
            BucketError::Dotted { offset } => write!(f, "bucket name has a '.' at byte {offset}; it must be one token"),
        }
    }
}

/// Checks that `bucket` is one literal token (no `.`, no wildcard, no whitespace, not empty).
pub fn validate_bucket(bucket: &str) -> Result<(), BucketError> {
    Subject::parse(bucket).map_err(BucketError::Invalid)?;
    match bucket.find('.') {
        Some(offset) => Err(BucketError::Dotted { offset }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::{Pattern, Subject};
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(encode_key(b"a.b"), "a.b");
        assert_eq!(encode_key(b"a..b"), "a.%.b");
        assert_eq!(encode_key(b".x"), "%.x");
        assert_eq!(encode_key(b"x."), "x.%");
        assert_eq!(encode_key(b""), "%");
        assert_eq!(encode_key(b"50%"), "50%25");
        assert_eq!(encode_key(b"a b*"), "a%20b%2A");
        assert_eq!(encode_key(b">"), "%3E");
        assert_eq!(encode_key(&[0xff, 0]), "%FF%00");
        assert_eq!(decode_key("a.%.b").unwrap(), b"a..b");
        assert_eq!(decode_key("%").unwrap(), b"");
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(decode_key("%ff"), Err(KeyDecodeError::BadEscape { offset: 0 }));
        assert_eq!(decode_key("a%4"), Err(KeyDecodeError::BadEscape { offset: 1 }));
        assert_eq!(decode_key("%41"), Err(KeyDecodeError::NeedlessEscape { offset: 0 }));
        assert_eq!(decode_key("%2E"), Err(KeyDecodeError::NeedlessEscape { offset: 0 }));
        assert_eq!(decode_key("a b"), Err(KeyDecodeError::Unescaped { offset: 1 }));
        assert_eq!(decode_key("a..b"), Err(KeyDecodeError::Unescaped { offset: 2 }));
        assert_eq!(decode_key("x.a*"), Err(KeyDecodeError::Unescaped { offset: 3 }));
        assert_eq!(decode_key("%%"), Err(KeyDecodeError::BadEscape { offset: 0 }));
    }

    #[test]
    fn subjects() {
        let mut s = String::new();
        key_subject_into("default", b"user.1", &mut s);
        assert_eq!(s, "$KV.default.user.1");
        assert_eq!(subject_key("default", &s).unwrap(), b"user.1");
        assert_eq!(subject_key("other", &s), Err(KeyDecodeError::WrongPrefix));
        assert!(validate_bucket("default").is_ok());
        assert!(validate_bucket("a.b").is_err());
        assert!(validate_bucket("*").is_err());
        assert!(validate_bucket("").is_err());
        assert!(validate_bucket("a b").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(key in proptest::collection::vec(any::<u8>(), 0..40)) {
            let enc = encode_key(&key);
            prop_assert_eq!(decode_key(&enc).unwrap(), key.clone());
            // Always a valid literal subject; tokens line up with the key's `.`-parts.
            let mut subject = String::new();
            key_subject_into("b", &key, &mut subject);
            let parsed = Subject::parse_with_max(&subject, 4096);
            prop_assert!(parsed.is_ok(), "{subject}: {parsed:?}");
            prop_assert_eq!(enc.split('.').count(), key.split(|&b| b == b'.').count());
            prop_assert!(Pattern::parse("$KV.b.>").unwrap().matches(parsed.unwrap()));
        }

        #[test]
        fn decode_accepts_only_canonical(text in "[%.A-Fa-f0-9*> x]{0,12}") {
            if let Ok(key) = decode_key(&text) {
                prop_assert_eq!(encode_key(&key), text);
            }
        }

        #[test]
        fn encoding_preserves_prefix_order_of_levels(a in proptest::collection::vec(any::<u8>(), 1..10), b in proptest::collection::vec(1u8..=255, 1..10)) {
            // A key under `a.` maps under the subject prefix of `a`: `$KV.b.<a>.>` watches it.
            let mut key = a.clone();
            key.push(b'.');
            key.extend_from_slice(&b);
            let pattern = alloc::format!("$KV.x.{}.>", encode_key(&a));
            let mut subject = String::new();
            key_subject_into("x", &key, &mut subject);
            prop_assert!(Pattern::parse_with_max(&pattern, 4096).unwrap().matches(Subject::parse_with_max(&subject, 4096).unwrap()));
        }
    }
}
