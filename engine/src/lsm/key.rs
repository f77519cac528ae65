//! Sequence numbers, value kinds and the order of internal keys.
//!
//! An internal key is a user key plus a *trailer* `seq << 8 | kind`. Internal keys sort by user
//! key ascending, then by trailer descending, so the newest version of a key comes first. Encoded
//! (in SST blocks) an internal key is `user_key ++ trailer.to_le_bytes()`.
use core::cmp::Ordering;

/// The largest sequence number: `2^56 - 1` (the trailer keeps 8 bits for the kind).
pub const MAX_SEQ: u64 = (1 << 56) - 1;

/// Bytes of the trailer at the end of an encoded internal key.
pub const TRAILER_LEN: usize = 8;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone: the key was deleted.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl ValueKind {
    /// Decodes a kind byte from disk.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Put),
            _ => None,
        }
    }
}

/// Packs a sequence number and kind into a trailer.
#[inline]
pub fn trailer(seq: u64, kind: ValueKind) -> u64 {
    debug_assert!(seq <= MAX_SEQ);
    (seq << 8) | kind as u64
}

/// Splits a trailer; `None` when the kind byte is unknown.
#[inline]
pub fn split_trailer(t: u64) -> Option<(u64, ValueKind)> {
    Some((t >> 8, ValueKind::from_u8((t & 0xff) as u8)?))
}

/// Splits an encoded internal key into user key and trailer; `None` when too short.
#[inline]
pub fn split_internal(ikey: &[u8]) -> Option<(&[u8], u64)> {
    if ikey.len() < TRAILER_LEN {
        return None;
    }
    let (user, t) = ikey.split_at(ikey.len() - TRAILER_LEN);
    let mut b = [0u8; 8];
    b.copy_from_slice(t);
    Some((user, u64::from_le_bytes(b)))
}

/// Compares two encoded internal keys: user key ascending, trailer descending. Keys too short
/// to hold a trailer sort by their bytes (they never come from a valid file).
#[inline]
pub fn cmp_internal(a: &[u8], b: &[u8]) -> Ordering {
    match (split_internal(a), split_internal(b)) {
        (Some((ua, ta)), Some((ub, tb))) => ua.cmp(ub).then(tb.cmp(&ta)),
        _ => a.cmp(b),
    }
}

/// Compares a user key and trailer against an encoded internal key.
#[inline]
pub fn cmp_parts(user: &[u8], t: u64, ikey: &[u8]) -> Ordering {
    match split_internal(ikey) {
        Some((u2, t2)) => user.cmp(u2).then(t2.cmp(&t)),
        None => Ordering::Greater,
    }
}

/// Appends the encoded internal key to `out`.
#[inline]
pub fn encode_internal(out: &mut alloc::vec::Vec<u8>, user: &[u8], t: u64) {
    out.extend_from_slice(user);
    out.extend_from_slice(&t.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ik(u: &[u8], seq: u64, k: ValueKind) -> Vec<u8> {
        let mut v = Vec::new();
        encode_internal(&mut v, u, trailer(seq, k));
        v
    }

    #[test]
    fn newest_first_within_a_key() {
        assert_eq!(cmp_internal(&ik(b"a", 9, ValueKind::Put), &ik(b"a", 3, ValueKind::Put)), Ordering::Less);
        assert_eq!(cmp_internal(&ik(b"a", 1, ValueKind::Put), &ik(b"ab", 9, ValueKind::Put)), Ordering::Less);
        assert_eq!(cmp_internal(&ik(b"b", 1, ValueKind::Put), &ik(b"ab", 9, ValueKind::Put)), Ordering::Greater);
        assert_eq!(split_trailer(trailer(77, ValueKind::Delete)), Some((77, ValueKind::Delete)));
    }
}
