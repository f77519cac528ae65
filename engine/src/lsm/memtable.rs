//! The memtable: an ordered, multi-version map held in memory until it is flushed to an SST.
//!
//! A skiplist whose nodes live in vectors and point at each other by index, with every key and
//! value copied into one byte arena. An insert allocates nothing but amortized vector growth,
//! a frozen memtable drops as a handful of buffers, and the code stays safe Rust (one writer:
//! the store; readers share a frozen memtable through `Arc`).
//!
//! Entries are never removed or overwritten: a put over an existing key adds a newer version,
//! so a reader at an older sequence number still sees what it saw. Order: user key ascending,
//! then trailer (`seq << 8 | kind`) descending — newest version first.
//!
//! Node heights come from a PRNG with a fixed seed, so the structure (and everything derived
//! from it) is the same on every run.
use super::key::{self, ValueKind};
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Tallest tower.
const MAX_HEIGHT: usize = 12;
/// Index of the head node; as a link it means "none" (the head is nobody's successor).
const NIL: u32 = 0;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// The key's first 8 bytes, zero-padded, big-endian: most comparisons end here without
    /// touching the arena.
    prefix: u64,
    /// The level-0 successor, kept in the node for locality.
    next0: u32,
    key_off: u32,
    key_len: u32,
    val_len: u32,
    links: u32,
    trailer: u64,
}

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
    nodes: Vec<Node>,
    links: Vec<u32>,
    height: usize,
    rng: u64,
    max_seq: u64,
    min_seq: Option<u64>,
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        let head = Node { prefix: 0, next0: NIL, key_off: 0, key_len: 0, val_len: 0, links: 0, trailer: 0 };
        Memtable {
            arena: Vec::new(),
            nodes: alloc::vec![head],
            links: alloc::vec![NIL; MAX_HEIGHT - 1],
            height: 1,
            rng: 0x2545_F491_4F6C_DD1D,
            max_seq: 0,
            min_seq: None,
        }
    }

    /// Adds a version. Sequence numbers are unique, so nothing is overwritten.
    ///
    /// # Panics
    /// When the memtable would exceed 4 GiB (the store flushes long before).
    pub fn insert(&mut self, user: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        let trailer = key::trailer(seq, kind);
        let mut prev = [NIL; MAX_HEIGHT];
        self.descend(user, trailer, &mut prev);
        let h = self.random_height();
        if h > self.height {
            // Levels above the old height start at the head (prev is already NIL = head).
            self.height = h;
        }
        let key_off = u32::try_from(self.arena.len()).expect("memtable arena over 4 GiB");
        self.arena.extend_from_slice(user);
        self.arena.extend_from_slice(value);
        let idx = u32::try_from(self.nodes.len()).expect("memtable over 4 G entries");
        // Level 0 lives in the node; levels 1.. in `links` (slot `links + level - 1`).
        let links = self.links.len() as u32;
        let next0 = self.link(prev[0], 0);
        self.set_link(prev[0], 0, idx);
        for (level, &p) in prev.iter().enumerate().take(h).skip(1) {
            let succ = self.link(p, level);
            self.links.push(succ);
            self.set_link(p, level, idx);
        }
        let prefix = prefix_of(user);
        self.nodes.push(Node { prefix, next0, key_off, key_len: user.len() as u32, val_len: value.len() as u32, links, trailer });
        self.max_seq = self.max_seq.max(seq);
        self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
    }

    /// The newest version of `user` with sequence number ≤ `max_seq`.
    pub fn get(&self, user: &[u8], max_seq: u64) -> Option<Found> {
        let n = self.seek(user, key::trailer(max_seq.min(key::MAX_SEQ), ValueKind::Put));
        let e = self.entry(n)?;
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
        Forward { mem: self, node: self.seek(user, trailer) }
    }

    /// Entries strictly before `(user, trailer)`, from the nearest backwards.
    pub fn range_before_rev(&self, user: &[u8], trailer: u64) -> Backward<'_> {
        let mut prev = [NIL; MAX_HEIGHT];
        self.descend(user, trailer, &mut prev);
        Backward { mem: self, node: prev[0] }
    }

    /// All entries in order.
    pub fn iter(&self) -> Forward<'_> {
        Forward { mem: self, node: self.link(NIL, 0) }
    }

    /// All entries, last first.
    pub fn iter_rev(&self) -> Backward<'_> {
        let mut x = NIL;
        for level in (0..self.height).rev() {
            while self.link(x, level) != NIL {
                x = self.link(x, level);
            }
        }
        Backward { mem: self, node: x }
    }

    /// Approximate memory held, the flush trigger.
    pub fn approx_bytes(&self) -> usize {
        self.arena.len() + self.nodes.len() * core::mem::size_of::<Node>() + self.links.len() * 4
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The highest sequence number inserted.
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// The lowest sequence number inserted, if any.
    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    // ----- the skiplist -----

    #[inline]
    fn link(&self, node: u32, level: usize) -> u32 {
        let n = &self.nodes[node as usize];
        if level == 0 {
            n.next0
        } else {
            self.links[n.links as usize + level - 1]
        }
    }

    #[inline]
    fn set_link(&mut self, node: u32, level: usize, to: u32) {
        if level == 0 {
            self.nodes[node as usize].next0 = to;
        } else {
            let at = self.nodes[node as usize].links as usize + level - 1;
            self.links[at] = to;
        }
    }

    #[inline]
    fn user(&self, node: u32) -> &[u8] {
        let n = &self.nodes[node as usize];
        &self.arena[n.key_off as usize..(n.key_off + n.key_len) as usize]
    }

    fn entry(&self, node: u32) -> Option<Entry<'_>> {
        if node == NIL {
            return None;
        }
        let n = &self.nodes[node as usize];
        let k = n.key_off as usize;
        let v = k + n.key_len as usize;
        Some(Entry { user: &self.arena[k..v], trailer: n.trailer, value: &self.arena[v..v + n.val_len as usize] })
    }

    /// Orders node `node` against the key `(user, trailer)` whose prefix is `prefix`.
    #[inline]
    fn cmp_node(&self, node: u32, prefix: u64, user: &[u8], trailer: u64) -> Ordering {
        let n = &self.nodes[node as usize];
        match n.prefix.cmp(&prefix) {
            Ordering::Equal => self.user(node).cmp(user).then_with(|| trailer.cmp(&n.trailer)),
            o => o,
        }
    }

    /// Fills `prev[level]` with the last node before `(user, trailer)` on each level.
    fn descend(&self, user: &[u8], trailer: u64, prev: &mut [u32; MAX_HEIGHT]) {
        let prefix = prefix_of(user);
        let mut x = NIL;
        for level in (0..self.height).rev() {
            loop {
                let next = self.link(x, level);
                if next != NIL && self.cmp_node(next, prefix, user, trailer) == Ordering::Less {
                    x = next;
                } else {
                    break;
                }
            }
            prev[level] = x;
        }
    }

    /// The first node at or after `(user, trailer)` (NIL when none).
    fn seek(&self, user: &[u8], trailer: u64) -> u32 {
        let mut prev = [NIL; MAX_HEIGHT];
        self.descend(user, trailer, &mut prev);
        self.link(prev[0], 0)
    }

    fn random_height(&mut self) -> usize {
        // xorshift64*; a quarter of the nodes go up each level.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let h = 1 + (r.trailing_zeros() as usize / 2);
        h.min(MAX_HEIGHT)
    }
}

/// The first 8 bytes of `key`, zero-padded, as a big-endian number: ordering these agrees
/// with ordering the keys whenever they differ.
#[inline]
fn prefix_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// Entries in order from a starting node.
pub struct Forward<'a> {
    mem: &'a Memtable,
    node: u32,
}

impl<'a> Iterator for Forward<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        let e = self.mem.entry(self.node)?;
        self.node = self.mem.link(self.node, 0);
        Some(e)
    }
}

/// Entries backwards: each step finds the predecessor (no back links), `O(log n)` a step.
pub struct Backward<'a> {
    mem: &'a Memtable,
    node: u32,
}

impl<'a> Iterator for Backward<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        let e = self.mem.entry(self.node)?;
        let mut prev = [NIL; MAX_HEIGHT];
        self.mem.descend(e.user, e.trailer, &mut prev);
        self.node = prev[0];
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
}
