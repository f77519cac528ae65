//! The MVCC key layout: memcomparable user keys, a column-family prefix, descending timestamps.
//!
//! ```text
//! lock key    := 'l' | enc(user_key)
//! write key   := 'w' | enc(user_key) | !commit_ts (u64 BE)
//! default key := 'd' | enc(user_key) | !start_ts  (u64 BE)
//! enc(k)      := for each 8-byte group g of k, zero-padded: g | 0xFF - pad    (pad = 0..=8)
//! ```
//!
//! `enc` is TiKV's memcomparable scheme: the byte order of encoded keys is the order of the
//! user keys, and no encoded key is a prefix of another (the group with padding ends it), so
//! appending a timestamp never mixes versions of `a` with those of `a\0`. A key whose length is
//! a multiple of 8 ends with an all-padding group (`0 0 0 0 0 0 0 0 0xF7`). Timestamps are
//! stored bitwise-inverted so a key's newest version sorts first.
use super::Ts;
use alloc::vec::Vec;

/// Bytes in a group of the memcomparable encoding.
pub const GROUP_LEN: usize = 8;
/// The marker of a full group (no padding).
const MARKER: u8 = 0xFF;
/// Bytes of an encoded timestamp suffix.
pub const TS_LEN: usize = 8;

/// First byte of the MVCC metadata keys (compaction mark, timestamp-oracle mark): plain
/// keys `'m' | name`, outside the column families.
pub const META_NAMESPACE: u8 = b'm';
/// First byte of the lease table and the lease-key attachments (see `lease.rs`).
pub const LEASE_NAMESPACE: u8 = b'e';

/// A column family, stored as the first byte of every MVCC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Cf {
    /// Long values: `key + start_ts → value`.
    Default = b'd',
    /// Locks of transactions in flight: `key → Lock`.
    Lock = b'l',
    /// Commit and rollback records: `key + commit_ts → Write`.
    Write = b'w',
}

impl Cf {
    /// The family of a prefix byte.
    pub fn from_u8(b: u8) -> Option<Cf> {
        match b {
            b'd' => Some(Cf::Default),
            b'l' => Some(Cf::Lock),
            b'w' => Some(Cf::Write),
            _ => None,
        }
    }

    /// True when keys of this family end with a timestamp.
    pub fn has_ts(self) -> bool {
        self != Cf::Lock
    }
}

/// Why bytes do not decode as an MVCC key. Nothing is changed by a failed decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The input ended inside a group or before the timestamp.
    Truncated {
        /// Bytes consumed when the input ran out.
        offset: usize,
    },
    /// A group's marker is not `0xFF - pad` with `pad <= 8`.
    BadMarker {
        /// Offset of the marker byte.
        offset: usize,
        /// The byte found there.
        marker: u8,
    },
    /// A padding byte is not zero (the encoding would not be canonical).
    BadPadding {
        /// Offset of the group.
        offset: usize,
    },
    /// The first byte names no column family.
    UnknownCf(u8),
    /// Bytes remain after a complete key.
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
    },
}

impl core::fmt::Display for CodecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CodecError::Truncated { offset } => write!(f, "key truncated at byte {offset}"),
            CodecError::BadMarker { offset, marker } => {
                write!(f, "bad group marker {marker:#04x} at byte {offset}")
            }
            CodecError::BadPadding { offset } => {
                write!(f, "non-zero padding in group at byte {offset}")
            }
            CodecError::UnknownCf(b) => write!(f, "unknown column family {b:#04x}"),
            CodecError::TrailingBytes { offset } => write!(f, "trailing bytes at byte {offset}"),
        }
    }
}

/// Appends the memcomparable encoding of `key` to `out`.
pub fn encode_bytes(key: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(key.len()));
    let mut chunks = key.chunks_exact(GROUP_LEN);
    for group in &mut chunks {
        out.extend_from_slice(group);
        out.push(MARKER);
    }
    let rest = chunks.remainder();
    let pad = GROUP_LEN - rest.len();
    out.extend_from_slice(rest);
    out.extend(core::iter::repeat_n(0u8, pad));
    out.push(MARKER - pad as u8);
}

/// Length of the encoding of a key of `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    (len / GROUP_LEN + 1) * (GROUP_LEN + 1)
}

/// Decodes a memcomparable key from the front of `buf`: `(key, bytes used)`.
pub fn decode_bytes(buf: &[u8]) -> Result<(Vec<u8>, usize), CodecError> {
    let mut key = Vec::new();
    let mut pos = 0;
    loop {
        let group = buf
            .get(pos..pos + GROUP_LEN + 1)
            .ok_or(CodecError::Truncated { offset: pos })?;
        let marker = group[GROUP_LEN];
        let pad = usize::from(MARKER - marker);
        if pad > GROUP_LEN {
            return Err(CodecError::BadMarker {
                offset: pos + GROUP_LEN,
                marker,
            });
        }
        let data = GROUP_LEN - pad;
        if group[data..GROUP_LEN].iter().any(|&b| b != 0) {
            return Err(CodecError::BadPadding { offset: pos });
        }
        key.extend_from_slice(&group[..data]);
        pos += GROUP_LEN + 1;
        if pad > 0 {
            return Ok((key, pos));
        }
    }
}

/// Appends a timestamp stored descending (`!ts`, big-endian).
pub fn encode_ts(ts: Ts, out: &mut Vec<u8>) {
    out.extend_from_slice(&(!ts.0).to_be_bytes());
}

/// Decodes a descending timestamp from exactly 8 bytes.
pub fn decode_ts(buf: &[u8]) -> Option<Ts> {
    let b: [u8; TS_LEN] = buf.try_into().ok()?;
    Some(Ts(!u64::from_be_bytes(b)))
}

/// The lock-CF key of `user_key`.
pub fn lock_key(user_key: &[u8]) -> Vec<u8> {
    prefixed(Cf::Lock, user_key, 0)
}

/// The write-CF key of `user_key` committed at `commit_ts`.
pub fn write_key(user_key: &[u8], commit_ts: Ts) -> Vec<u8> {
    let mut k = prefixed(Cf::Write, user_key, TS_LEN);
    encode_ts(commit_ts, &mut k);
    k
}

/// [`write_key`] appended to `out`.
pub fn write_key_into(user_key: &[u8], commit_ts: Ts, out: &mut Vec<u8>) {
    out.reserve(write_key_len(user_key.len()));
    out.push(Cf::Write as u8);
    encode_bytes(user_key, out);
    encode_ts(commit_ts, out);
}

/// Length of the write-CF key of a user key of `len` bytes.
pub const fn write_key_len(len: usize) -> usize {
    1 + encoded_len(len) + TS_LEN
}

/// The default-CF key of `user_key`'s value written by the transaction `start_ts`.
pub fn default_key(user_key: &[u8], start_ts: Ts) -> Vec<u8> {
    let mut k = prefixed(Cf::Default, user_key, TS_LEN);
    encode_ts(start_ts, &mut k);
    k
}

/// `cf | enc(user_key)`: the prefix shared by every version of `user_key` in `cf`, and the
/// smallest key of `cf` for it. Also the lower bound of a range scan starting at `user_key`.
pub fn key_prefix(cf: Cf, user_key: &[u8]) -> Vec<u8> {
    prefixed(cf, user_key, 0)
}

fn prefixed(cf: Cf, user_key: &[u8], extra: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + encoded_len(user_key.len()) + extra);
    k.push(cf as u8);
    encode_bytes(user_key, &mut k);
    k
}

/// An MVCC key taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MvccKey {
    /// Its column family.
    pub cf: Cf,
    /// The user key.
    pub user_key: Vec<u8>,
    /// The timestamp (`None` in the lock CF): commit ts in `write`, start ts in `default`.
    pub ts: Option<Ts>,
}

impl MvccKey {
    /// Encodes the key back to its stored form.
    pub fn encode(&self) -> Vec<u8> {
        match (self.cf, self.ts) {
            (Cf::Write, Some(ts)) => write_key(&self.user_key, ts),
            (Cf::Default, Some(ts)) => default_key(&self.user_key, ts),
            (cf, _) => prefixed(cf, &self.user_key, 0),
        }
    }
}

/// Decodes a stored MVCC key; every byte must belong to it.
pub fn decode_key(buf: &[u8]) -> Result<MvccKey, CodecError> {
    let (&first, rest) = buf
        .split_first()
        .ok_or(CodecError::Truncated { offset: 0 })?;
    let cf = Cf::from_u8(first).ok_or(CodecError::UnknownCf(first))?;
    let (user_key, used) = decode_bytes(rest).map_err(|e| shift(e, 1))?;
    let after = 1 + used;
    let ts = if cf.has_ts() {
        let raw = buf
            .get(after..after + TS_LEN)
            .ok_or(CodecError::Truncated { offset: buf.len() })?;
        decode_ts(raw)
    } else {
        None
    };
    let end = after + if cf.has_ts() { TS_LEN } else { 0 };
    if buf.len() != end {
        return Err(CodecError::TrailingBytes { offset: end });
    }
    Ok(MvccKey { cf, user_key, ts })
}

fn shift(e: CodecError, by: usize) -> CodecError {
    match e {
        CodecError::Truncated { offset } => CodecError::Truncated {
            offset: offset + by,
        },
        CodecError::BadMarker { offset, marker } => CodecError::BadMarker {
            offset: offset + by,
            marker,
        },
        CodecError::BadPadding { offset } => CodecError::BadPadding {
            offset: offset + by,
        },
        CodecError::TrailingBytes { offset } => CodecError::TrailingBytes {
            offset: offset + by,
        },
        e @ CodecError::UnknownCf(_) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn enc(k: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_bytes(k, &mut v);
        v
    }

    #[test]
    fn known_encodings_match_tikv() {
        assert_eq!(enc(b""), vec![0, 0, 0, 0, 0, 0, 0, 0, 0xF7]);
        assert_eq!(enc(b"\x01\x02\x03"), vec![1, 2, 3, 0, 0, 0, 0, 0, 0xFA]);
        assert_eq!(
            enc(b"12345678"),
            vec![
                b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0xF7
            ]
        );
    }

    #[test]
    fn typed_errors_on_bad_bytes() {
        assert_eq!(
            decode_bytes(&[1, 2, 3]),
            Err(CodecError::Truncated { offset: 0 })
        );
        assert_eq!(
            decode_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 0xF0]),
            Err(CodecError::BadMarker {
                offset: 8,
                marker: 0xF0
            })
        );
        assert_eq!(
            decode_bytes(&[1, 0, 0, 0, 0, 0, 0, 9, 0xF9]),
            Err(CodecError::BadPadding { offset: 0 })
        );
        assert_eq!(decode_key(b"x"), Err(CodecError::UnknownCf(b'x')));
        assert_eq!(decode_key(&[]), Err(CodecError::Truncated { offset: 0 }));
        let mut k = write_key(b"a", Ts(5));
        k.pop();
        assert!(matches!(decode_key(&k), Err(CodecError::Truncated { .. })));
        let mut k = lock_key(b"a");
        k.push(0);
        assert_eq!(
            decode_key(&k),
            Err(CodecError::TrailingBytes { offset: 10 })
        );
    }

    #[test]
    fn newest_version_sorts_first_and_keys_do_not_interleave() {
        assert!(write_key(b"a", Ts(9)) < write_key(b"a", Ts(3)));
        assert!(write_key(b"a", Ts(0)) < write_key(b"a\0", Ts(u64::MAX)));
        assert!(write_key(b"a", Ts(0)) < write_key(b"ab", Ts(u64::MAX)));
        assert!(write_key(b"a", Ts(3)).starts_with(&key_prefix(Cf::Write, b"a")));
        assert!(!write_key(b"a\0", Ts(3)).starts_with(&key_prefix(Cf::Write, b"a")));
    }

    proptest! {
        #[test]
        fn bytes_round_trip(k in proptest::collection::vec(any::<u8>(), 0..40), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut e = enc(&k);
            prop_assert_eq!(e.len(), encoded_len(k.len()));
            let n = e.len();
            e.extend_from_slice(&tail);
            prop_assert_eq!(decode_bytes(&e), Ok((k, n)));
        }

        #[test]
        fn order_is_preserved(a in proptest::collection::vec(0u8..4, 0..20), b in proptest::collection::vec(0u8..4, 0..20)) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
            // Prefix-free: one encoding is never a proper prefix of another.
            if a != b {
                prop_assert!(!enc(&b).starts_with(&enc(&a)));
            }
        }

        #[test]
        fn mvcc_keys_round_trip_and_order(a in proptest::collection::vec(0u8..4, 0..20), b in proptest::collection::vec(0u8..4, 0..20), ta: u64, tb: u64) {
            for cf in [Cf::Lock, Cf::Write, Cf::Default] {
                let key = MvccKey { cf, user_key: a.clone(), ts: cf.has_ts().then_some(Ts(ta)) };
                prop_assert_eq!(decode_key(&key.encode()), Ok(key));
            }
            let expected = a.cmp(&b).then(tb.cmp(&ta));
            prop_assert_eq!(write_key(&a, Ts(ta)).cmp(&write_key(&b, Ts(tb))), expected);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(k) = decode_key(&bytes) {
                prop_assert_eq!(k.encode(), bytes);
            }
        }
    }
}
