//! The memtable: an ordered, multi-version map held in memory until it is flushed to an SST.
//!
//! Every entry is one record appended to a byte arena (`trailer | key_len | val_len | key |
//! value`); a B+tree of `(8-byte key prefix, arena offset)` slots orders them ([`tree`]). An
//! insert allocates nothing but amortized vector growth, a frozen memtable drops as a handful of
//! buffers, and the code stays safe Rust (one writer: the store; readers share a frozen
//! memtable through `Arc`).
//!
//! Entries are never removed or overwritten: a put over an existing key adds a newer version,
//! so a reader at an older sequence number still sees what it saw. Order: user key ascending,
//! then trailer (`seq << 8 | kind`) descending — newest version first. The structure depends
//! only on the sequence of inserts.
use super::key::{self, ValueKind};
use alloc::vec::Vec;

mod tree;
use tree::{Cursor, Probe, Record, Tree, HEADER_LEN};

/// One version of a key, borrowed from the memtable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The user key.
    pub user: &'a [u8],
    /// `seq << 8 | kind`.
    pub trailer: u64,
    /// The value (empty for a tombstone).
    pub value: &'a [u8],
}

/// What a lookup found for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The newest visible version is a value.
    Value(Vec<u8>),
    /// The newest visible version is a tombstone.
    Deleted,
}

/// An ordered, multi-version map in memory.
#[derive(Clone, Debug)]
pub struct Memtable {
    arena: Vec<u8>,
    tree: Tree,
    len: usize,
    max_seq: u64,
    min_seq: Option<u64>,
    /// Bit `b` set: some key starts with byte `b`. A layer that keeps kinds of keys apart by
    /// their first byte (the MVCC lock, write and data families) learns in one test that a
    /// memtable holds none of a kind, without a descent.
    first_bytes: [u64; 4],
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Memtable { arena: Vec::new(), tree: Tree::new(), len: 0, max_seq: 0, min_seq: None, first_bytes: [0; 4] }
    }

    /// Adds a version. Sequence numbers are unique, so nothing is overwritten.
    ///
    /// # Panics
    /// When the memtable would exceed 4 GiB (the store flushes long before).
    pub fn insert(&mut self, user: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        let trailer = key::trailer(seq, kind);
        let off = u32::try_from(self.arena.len()).expect("memtable arena over 4 GiB");
        let end = self.arena.len() + HEADER_LEN + user.len() + value.len();
        assert!(u32::try_from(end).is_ok(), "memtable arena over 4 GiB");
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&trailer.to_le_bytes());
        header[8..12].copy_from_slice(&(user.len() as u32).to_le_bytes());
        header[12..].copy_from_slice(&(value.len() as u32).to_le_bytes());
        self.arena.reserve(end - self.arena.len());
        self.arena.extend_from_slice(&header);
        self.arena.extend_from_slice(user);
        self.arena.extend_from_slice(value);
        self.tree.insert(&self.arena, &Probe::new(user, trailer), off);
        self.len += 1;
        if let Some(&b) = user.first() {
            self.first_bytes[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        self.max_seq = self.max_seq.max(seq);
        self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
    }

    /// The newest version of `user` with sequence number ≤ `max_seq`.
    pub fn get(&self, user: &[u8], max_seq: u64) -> Option<Found> {
        if user.first().is_some_and(|&b| !self.holds_first_byte(b)) {
            return None;
        }
        let c = self.seek(user, key::trailer(max_seq.min(key::MAX_SEQ), ValueKind::Put));
        let e = self.entry(c)?;
        if e.user != user {
            return None;
        }
        match key::split_trailer(e.trailer) {
            Some((_, ValueKind::Put)) => Some(Found::Value(e.value.to_vec())),
            _ => Some(Found::Deleted),
        }
    }

    /// Entries from `(user, trailer)` onwards, in order.
    pub fn range_from(&self, user: &[u8], trailer: u64) -> Forward<'_> {
        Forward { mem: self, at: self.seek(user, trailer) }
    }

    /// Entries strictly before `(user, trailer)`, from the nearest backwards.
    pub fn range_before_rev(&self, user: &[u8], trailer: u64) -> Backward<'_> {
        Backward { mem: self, at: self.tree.prev(self.seek(user, trailer)) }
    }

    /// All entries in order.
    pub fn iter(&self) -> Forward<'_> {
        Forward { mem: self, at: self.tree.first() }
    }

    /// All entries, last first.
    pub fn iter_rev(&self) -> Backward<'_> {
        Backward { mem: self, at: self.tree.last() }
    }

    /// False when no key starts with byte `b` (then no read of such a key needs a descent).
    #[inline]
    pub fn holds_first_byte(&self, b: u8) -> bool {
        self.first_bytes[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    /// Approximate memory held, the flush trigger.
    pub fn approx_bytes(&self) -> usize {
        self.arena.len() + self.tree.bytes()
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The highest sequence number inserted.
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// The lowest sequence number inserted, if any.
    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    /// Panics unless the index is well formed and holds every entry once, in order (O(n):
    /// for tests).
    pub fn check_invariants(&self) {
        self.tree.check_invariants(&self.arena, self.len);
    }

    fn seek(&self, user: &[u8], trailer: u64) -> Cursor {
        self.tree.seek(&self.arena, &Probe::new(user, trailer))
    }

    #[inline]
    fn entry(&self, c: Cursor) -> Option<Entry<'_>> {
        if c == Cursor::END {
            return None;
        }
        let r = Record::at(&self.arena, self.tree.off(c));
        Some(Entry { user: r.user, trailer: r.trailer, value: r.value })
    }
}

/// Entries in order from a starting position.
pub struct Forward<'a> {
    mem: &'a Memtable,
    at: Cursor,
}

impl<'a> Iterator for Forward<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        let e = self.mem.entry(self.at)?;
        self.at = self.mem.tree.next(self.at);
        Some(e)
    }
}

/// Entries backwards from a starting position.
pub struct Backward<'a> {
    mem: &'a Memtable,
    at: Cursor,
}

impl<'a> Iterator for Backward<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        let e = self.mem.entry(self.at)?;
        self.at = self.mem.tree.prev(self.at);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

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
        let keys: Vec<_> = m.iter().map(|e| (e.user.to_vec(), e.trailer >> 8)).collect();
        assert_eq!(keys, [(b"a".to_vec(), 5), (b"a".to_vec(), 3), (b"a".to_vec(), 1), (b"ab".to_vec(), 2)]);
        let back: Vec<_> = m.range_before_rev(b"a", key::trailer(3, ValueKind::Put)).map(|e| e.trailer >> 8).collect();
        assert_eq!(back, [5]);
        let all_back: Vec<_> = m.iter_rev().map(|e| e.trailer >> 8).collect();
        assert_eq!(all_back, [2, 1, 3, 5]);
    }

    #[test]
    fn matches_a_btreemap_in_both_directions() {
        let mut m = Memtable::new();
        let mut model: BTreeMap<(Vec<u8>, core::cmp::Reverse<u64>), Vec<u8>> = BTreeMap::new();
        let mut x: u64 = 7;
        for seq in 1..3000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = alloc::format!("k{}", (x >> 33) % 500).into_bytes();
            let v = alloc::format!("v{seq}").into_bytes();
            m.insert(&k, seq, ValueKind::Put, &v);
            model.insert((k, core::cmp::Reverse(key::trailer(seq, ValueKind::Put))), v);
        }
        let got: Vec<_> = m.iter().map(|e| (e.user.to_vec(), e.trailer, e.value.to_vec())).collect();
        let want: Vec<_> = model.iter().map(|((k, t), v)| (k.clone(), t.0, v.clone())).collect();
        assert_eq!(got, want);
        let got_rev: Vec<_> = m.iter_rev().map(|e| (e.user.to_vec(), e.trailer, e.value.to_vec())).collect();
        let want_rev: Vec<_> = want.iter().rev().cloned().collect();
        assert_eq!(got_rev, want_rev);
        let from: Vec<_> = m.range_from(b"k25", u64::MAX).take(5).map(|e| e.user.to_vec()).collect();
        let want_from: Vec<_> = want.iter().filter(|(k, _, _)| k.as_slice() >= &b"k25"[..]).take(5).map(|(k, _, _)| k.clone()).collect();
        assert_eq!(from, want_from);
    }

    type Model = BTreeMap<(Vec<u8>, core::cmp::Reverse<u64>), Vec<u8>>;

    /// Inserts `keys` (with fresh sequence numbers) into a memtable and a model, checking the
    /// tree's invariants along the way, then compares every read path with the model.
    fn against_model(keys: &[Vec<u8>]) {
        let mut m = Memtable::new();
        let mut model: Model = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            let seq = i as u64 + 1;
            let kind = if i % 7 == 3 { ValueKind::Delete } else { ValueKind::Put };
            let v = if kind == ValueKind::Put { alloc::format!("v{seq}").into_bytes() } else { Vec::new() };
            m.insert(k, seq, kind, &v);
            model.insert((k.clone(), core::cmp::Reverse(key::trailer(seq, kind))), v);
            if i % 997 == 0 {
                m.check_invariants();
            }
        }
        m.check_invariants();
        assert_eq!(m.len(), keys.len());
        let want: Vec<_> = model.iter().map(|((k, t), v)| (k.clone(), t.0, v.clone())).collect();
        let got: Vec<_> = m.iter().map(|e| (e.user.to_vec(), e.trailer, e.value.to_vec())).collect();
        assert_eq!(got, want);
        let got_rev: Vec<_> = m.iter_rev().map(|e| (e.user.to_vec(), e.trailer, e.value.to_vec())).collect();
        assert_eq!(got_rev, want.iter().rev().cloned().collect::<Vec<_>>());
        // Seeks at every entry, just before and just after it, and at snapshots between.
        for (i, (k, t, _)) in want.iter().enumerate().step_by(3) {
            for probe_t in [*t, t + 1, t.saturating_sub(1), u64::MAX, 0] {
                let from: Vec<_> = m.range_from(k, probe_t).take(3).map(|e| (e.user.to_vec(), e.trailer)).collect();
                let start = want.partition_point(|(wk, wt, _)| (wk, core::cmp::Reverse(*wt)) < (k, core::cmp::Reverse(probe_t)));
                let exp: Vec<_> = want[start..].iter().take(3).map(|(k, t, _)| (k.clone(), *t)).collect();
                assert_eq!(from, exp, "range_from at entry {i}");
                let back: Vec<_> = m.range_before_rev(k, probe_t).take(3).map(|e| (e.user.to_vec(), e.trailer)).collect();
                let exp_back: Vec<_> = want[..start].iter().rev().take(3).map(|(k, t, _)| (k.clone(), *t)).collect();
                assert_eq!(back, exp_back, "range_before_rev at entry {i}");
            }
            let seq = t >> 8;
            let newest = want.iter().find(|(wk, wt, _)| wk == k && wt >> 8 <= seq).map(|(_, wt, v)| match wt & 0xff {
                1 => Found::Value(v.clone()),
                _ => Found::Deleted,
            });
            assert_eq!(m.get(k, seq), newest);
        }
    }

    fn lcg(x: &mut u64) -> u64 {
        *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *x >> 33
    }

    #[test]
    fn random_keys_split_and_stay_ordered() {
        let mut x = 11;
        let keys: Vec<Vec<u8>> = (0..20_000).map(|_| lcg(&mut x).to_be_bytes().to_vec()).collect();
        against_model(&keys);
    }

    #[test]
    fn ascending_and_descending_inserts() {
        // Ascending keys take the split-at-the-end path on every level.
        let asc: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        against_model(&asc);
        let desc: Vec<Vec<u8>> = asc.iter().rev().cloned().collect();
        against_model(&desc);
    }

    #[test]
    fn keys_sharing_long_prefixes_and_many_versions() {
        // Every key shares its first 8+ bytes with hundreds of others (prefixes tie in every
        // node), keys of different lengths, and many versions of each key.
        let mut x = 5;
        let keys: Vec<Vec<u8>> = (0..8_000)
            .map(|_| {
                let r = lcg(&mut x);
                let mut k = b"namespace/".to_vec();
                k.extend_from_slice(&(r % 300).to_be_bytes()[(r % 3) as usize..]);
                k.truncate(3 + (r % 12) as usize);
                k
            })
            .collect();
        against_model(&keys);
    }

    #[test]
    fn empty_memtable_reads_nothing() {
        let m = Memtable::new();
        m.check_invariants();
        assert_eq!(m.iter().count(), 0);
        assert_eq!(m.iter_rev().count(), 0);
        assert_eq!(m.range_from(b"a", 0).count(), 0);
        assert_eq!(m.range_before_rev(b"a", 0).count(), 0);
        assert_eq!(m.get(b"a", 9), None);
    }
}
