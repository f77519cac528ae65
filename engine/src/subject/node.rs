//! The trie's storage: nodes in one arena, token bytes in another, literal children in one
//! hash table, and the subscriptions of a node inline when there is only one.
//!
//! Everything an insert touches is preallocated or amortised: a new node costs one slot in
//! the node arena, its token's bytes appended to the key arena and one entry in the children
//! table; its first plain subscription is stored inline (`Plain::One`), so the common case of
//! one subscription per subject allocates nothing of its own. Children are found by hashing
//! (parent, token) with a seeded folded-multiply hash over the token's bytes (a token is hashed
//! once per match or insert and combined with each parent it is looked up under); the table
//! entry keeps the full hash, so growing the table never re-reads a node.
use crate::lsm::hash::hash64;
use alloc::vec::Vec;

pub(crate) const NIL: u32 = u32::MAX;

const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Root,
    Literal,
    AnyOne,
    Rest,
    /// On the free list.
    Free,
}

/// A node's plain subscriptions: (value, entry slot) pairs, inline while there is one.
#[derive(Debug)]
pub(crate) enum Plain<V> {
    Empty,
    One(V, u32),
    Many(Vec<(V, u32)>),
}

impl<V: Copy> Plain<V> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Plain::Empty => 0,
            Plain::One(..) => 1,
            Plain::Many(v) => v.len(),
        }
    }

    /// Appends; returns the new pair's position.
    pub(crate) fn push(&mut self, value: V, slot: u32) -> usize {
        match self {
            Plain::Empty => {
                *self = Plain::One(value, slot);
                0
            }
            Plain::One(v, s) => {
                let mut list = Vec::with_capacity(4);
                list.push((*v, *s));
                list.push((value, slot));
                *self = Plain::Many(list);
                1
            }
            Plain::Many(list) => {
                list.push((value, slot));
                list.len() - 1
            }
        }
    }

    /// Removes the pair at `pos` by swapping the last one in; returns the slot now at `pos`.
    pub(crate) fn swap_remove(&mut self, pos: usize) -> Option<u32> {
        match self {
            Plain::Empty => None,
            Plain::One(..) => {
                *self = Plain::Empty;
                None
            }
            Plain::Many(list) => {
                list.swap_remove(pos);
                let moved = list.get(pos).map(|p| p.1);
                if list.is_empty() {
                    *self = Plain::Empty;
                }
                moved
            }
        }
    }

    /// The slot at `pos`.
    pub(crate) fn slot(&self, pos: usize) -> Option<u32> {
        match self {
            Plain::Empty => None,
            Plain::One(_, s) => (pos == 0).then_some(*s),
            Plain::Many(list) => list.get(pos).map(|p| p.1),
        }
    }

    /// Appends every value to `out`.
    #[inline]
    pub(crate) fn extend_into(&self, out: &mut Vec<V>) {
        match self {
            Plain::Empty => {}
            Plain::One(v, _) => out.push(*v),
            Plain::Many(list) => out.extend(list.iter().map(|p| p.0)),
        }
    }
}

/// One queue group's members at one node.
#[derive(Debug)]
pub(crate) struct Group<V> {
    pub(crate) queue: u32,
    pub(crate) members: Vec<V>,
    pub(crate) member_slots: Vec<u32>,
}

/// A trie node. Literal nodes name their token by a range of the key arena.
#[derive(Debug)]
pub(crate) struct Node<V> {
    pub(crate) parent: u32,
    pub(crate) any: u32,
    pub(crate) rest: u32,
    pub(crate) literal_children: u32,
    pub(crate) key_off: u32,
    pub(crate) key_len: u32,
    pub(crate) kind: Kind,
    pub(crate) plain: Plain<V>,
    pub(crate) groups: Vec<Group<V>>,
}

impl<V: Copy> Node<V> {
    pub(crate) fn new(parent: u32, kind: Kind) -> Self {
        Node {
            parent,
            any: NIL,
            rest: NIL,
            literal_children: 0,
            key_off: 0,
            key_len: 0,
            kind,
            plain: Plain::Empty,
            groups: Vec::new(),
        }
    }

    /// Holds no subscription and no child (and so may be pruned).
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.plain, Plain::Empty)
            && self.groups.is_empty()
            && self.any == NIL
            && self.rest == NIL
            && self.literal_children == 0
    }
}

/// An entry of the children table: the literal child `node` of `parent`, with its full hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Child {
    pub(crate) hash: u64,
    pub(crate) parent: u32,
    pub(crate) node: u32,
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn rd8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn rd4(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// Hashes one token's bytes under `seed`. For tokens up to 16 bytes the words read cover every
/// byte, so equal-length tokens differ in the input to the final mix whenever they differ.
#[inline(always)]
pub(crate) fn token_hash(seed: u64, t: &[u8]) -> u64 {
    let n = t.len();
    let (a, b) = if n > 16 {
        (hash64(t), 0)
    } else if n >= 8 {
        (rd8(t, 0), rd8(t, n - 8))
    } else if n >= 4 {
        (rd4(t, 0) | rd4(t, n - 4) << 32, 0)
    } else if n > 0 {
        (u64::from(t[0]) << 16 | u64::from(t[n / 2]) << 8 | u64::from(t[n - 1]), 0)
    } else {
        (0, 0)
    };
    fold(a ^ P1 ^ seed, b ^ P2 ^ n as u64)
}

/// Combines a token's hash with the parent it is looked up under.
#[inline(always)]
pub(crate) fn child_hash(parent: u32, token_hash: u64) -> u64 {
    fold(token_hash ^ u64::from(parent), P3)
}

/// Byte equality without a `memcmp` call for tokens up to 16 bytes (most tokens).
#[inline(always)]
pub(crate) fn same_token(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        rd8(a, 0) == rd8(b, 0) && rd8(a, n - 8) == rd8(b, n - 8)
    } else if (4..8).contains(&n) {
        rd4(a, 0) == rd4(b, 0) && rd4(a, n - 4) == rd4(b, n - 4)
    } else {
        a == b
    }
}

/// Hashes a whole subject for the match cache: one folded multiply for subjects up to 16
/// bytes, two up to 32, [`hash64`] beyond.
#[inline(always)]
pub(crate) fn subject_hash(s: &[u8]) -> u64 {
    let n = s.len();
    if n <= 16 {
        token_hash(0, s)
    } else if n <= 32 {
        let a = fold(rd8(s, 0) ^ P1, rd8(s, 8) ^ P2);
        let b = fold(rd8(s, n - 16) ^ P3, rd8(s, n - 8) ^ n as u64);
        fold(a ^ P2, b ^ P3)
    } else {
        hash64(s)
    }
}

/// Byte equality without a `memcmp` call up to 32 bytes (most subjects).
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (17..=32).contains(&n) {
        rd8(a, 0) == rd8(b, 0)
            && rd8(a, 8) == rd8(b, 8)
            && rd8(a, n - 16) == rd8(b, n - 16)
            && rd8(a, n - 8) == rd8(b, n - 8)
    } else {
        same_token(a, b)
    }
}
