//! The memtable: an ordered map of internal keys held in memory until it is flushed to an SST.
//!
//! Entries are never removed: a put over an existing key adds a newer version, so a reader at an
//! older sequence number still sees what it saw. Lookups borrow their key (no allocation) through
//! the [`KeyRef`] trait-object trick.
use super::key::{self, ValueKind};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::ops::Bound;

/// An owned internal key: user key ascending, trailer descending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemKey {
    user: Box<[u8]>,
    trailer: u64,
}

impl MemKey {
    /// The user key.
    pub fn user(&self) -> &[u8] {
        &self.user
    }
    /// `seq << 8 | kind`.
    pub fn trailer(&self) -> u64 {
        self.trailer
    }
}

/// A key that can be compared against stored keys without owning bytes.
pub trait KeyRef {
    /// The user key.
    fn user(&self) -> &[u8];
    /// The trailer.
    fn trailer(&self) -> u64;
}

impl KeyRef for MemKey {
    fn user(&self) -> &[u8] {
        &self.user
    }
    fn trailer(&self) -> u64 {
        self.trailer
    }
}

impl KeyRef for (&[u8], u64) {
    fn user(&self) -> &[u8] {
        self.0
    }
    fn trailer(&self) -> u64 {
        self.1
    }
}

impl<'a> Borrow<dyn KeyRef + 'a> for MemKey {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for dyn KeyRef + '_ {}
impl PartialOrd for dyn KeyRef + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn KeyRef + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user().cmp(other.user()).then(other.trailer().cmp(&self.trailer()))
    }
}
impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self as &dyn KeyRef).cmp(other as &dyn KeyRef)
    }
}

/// What a lookup found for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The newest visible version is a value.
    Value(Vec<u8>),
    /// The newest visible version is a tombstone.
    Deleted,
}

/// Fixed cost charged per entry on top of its bytes (tree node share, boxes).
const ENTRY_OVERHEAD: usize = 48;

/// An ordered, multi-version map in memory.
#[derive(Debug, Default)]
pub struct Memtable {
    map: BTreeMap<MemKey, Box<[u8]>>,
    approx_bytes: usize,
    max_seq: u64,
    min_seq: Option<u64>,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a version. Sequence numbers are unique, so nothing is overwritten.
    pub fn insert(&mut self, user: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        self.approx_bytes += user.len() + value.len() + ENTRY_OVERHEAD;
        self.max_seq = self.max_seq.max(seq);
        self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
        let k = MemKey { user: user.into(), trailer: key::trailer(seq, kind) };
        self.map.insert(k, value.into());
    }

    /// The newest version of `user` with sequence number ≤ `max_seq`.
    pub fn get(&self, user: &[u8], max_seq: u64) -> Option<Found> {
        let probe: (&[u8], u64) = (user, key::trailer(max_seq, ValueKind::Put));
        let lower: Bound<&dyn KeyRef> = Bound::Included(&probe);
        let (k, v) = self.map.range::<dyn KeyRef, _>((lower, Bound::Unbounded)).next()?;
        if k.user() != user {
            return None;
        }
        match key::split_trailer(k.trailer) {
            Some((_, ValueKind::Put)) => Some(Found::Value(v.to_vec())),
            _ => Some(Found::Deleted),
        }
    }

    /// Entries from `(user, trailer)` onwards (forward) in internal-key order.
    pub fn range_from<'a>(
        &'a self,
        user: &[u8],
        trailer: u64,
    ) -> impl DoubleEndedIterator<Item = (&'a MemKey, &'a [u8])> + 'a {
        let probe: (&[u8], u64) = (user, trailer);
        let lower: Bound<&dyn KeyRef> = Bound::Included(&probe);
        self.map.range::<dyn KeyRef, _>((lower, Bound::Unbounded)).map(|(k, v)| (k, &**v))
    }

    /// Entries strictly before `(user, trailer)`, in internal-key order (iterate `.rev()`).
    pub fn range_before<'a>(
        &'a self,
        user: &[u8],
        trailer: u64,
    ) -> impl DoubleEndedIterator<Item = (&'a MemKey, &'a [u8])> + 'a {
        let probe: (&[u8], u64) = (user, trailer);
        let upper: Bound<&dyn KeyRef> = Bound::Excluded(&probe);
        self.map.range::<dyn KeyRef, _>((Bound::Unbounded, upper)).map(|(k, v)| (k, &**v))
    }

    /// All entries in internal-key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&MemKey, &[u8])> {
        self.map.iter().map(|(k, v)| (k, &**v))
    }

    /// Approximate memory held, the flush trigger.
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The lowest sequence number inserted, if any.
    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    /// The highest sequence number inserted.
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_visible_version_wins() {
        let mut m = Memtable::new();
        m.insert(b"a", 1, ValueKind::Put, b"1");
        m.insert(b"a", 3, ValueKind::Put, b"3");
        m.insert(b"a", 5, ValueKind::Delete, b"");
        m.insert(b"ab", 2, ValueKind::Put, b"x");
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"a", 2), Some(Found::Value(b"1".to_vec())));
        assert_eq!(m.get(b"a", 4), Some(Found::Value(b"3".to_vec())));
        assert_eq!(m.get(b"a", 9), Some(Found::Deleted));
        assert_eq!(m.get(b"", 9), None);
        assert_eq!(m.get(b"ab", 9), Some(Found::Value(b"x".to_vec())));
        let keys: Vec<_> = m.iter().map(|(k, _)| (k.user().to_vec(), k.trailer() >> 8)).collect();
        assert_eq!(keys, [(b"a".to_vec(), 5), (b"a".to_vec(), 3), (b"a".to_vec(), 1), (b"ab".to_vec(), 2)]);
        let back: Vec<_> = m.range_before(b"a", key::trailer(3, ValueKind::Put)).rev().map(|(k, _)| k.trailer() >> 8).collect();
        assert_eq!(back, [5]);
    }
}
