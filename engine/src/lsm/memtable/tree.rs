//! The memtable's ordered index: a B+tree of `(prefix, arena offset)` slots.
//!
//! Nodes live in two vectors and point at each other by index, so the structure is safe Rust,
//! allocates nothing but amortized vector growth, and drops as a handful of buffers. A slot is
//! the key's first 8 bytes as a big-endian number (`prefix`) and the offset of its record in
//! the memtable's arena (see [`Record`]); slots are ordered like internal keys (user key
//! ascending, trailer descending). Searches compare prefixes, which sit contiguously in a node
//! (4 cache lines for a leaf), and read the arena only when prefixes tie. Compared with a
//! skiplist (one cache miss per node visited, ~30 visited per search at 400k entries) a search
//! touches one node per level, 3–4 levels at that size.
//!
//! Leaves are linked both ways, so iteration is O(1) a step in either direction. There is no
//! deletion (memtables only grow), so every leaf but an empty tree's root holds at least one
//! slot. A leaf or inner node split at the very end of the tree keeps the old node full and
//! starts the new one with the one new slot, so ascending inserts fill nodes completely; other
//! splits halve.
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Slots per leaf.
const LEAF_CAP: usize = 32;
/// Separators per inner node (children: one more).
const INNER_CAP: usize = 32;
/// Deepest tree: a half-full tree of 16-slot nodes this deep holds more than 2^32 slots.
const MAX_DEPTH: usize = 10;
/// "No node" as a leaf link.
pub(super) const NIL: u32 = u32::MAX;
/// Bytes of a record's header in the arena.
pub(super) const HEADER_LEN: usize = 16;

/// A key being searched for: the user key, its prefix and a trailer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe<'a> {
    pub(super) prefix: u64,
    pub(super) user: &'a [u8],
    pub(super) trailer: u64,
}

impl<'a> Probe<'a> {
    pub(super) fn new(user: &'a [u8], trailer: u64) -> Self {
        Probe { prefix: prefix_of(user), user, trailer }
    }
}

/// One entry as stored in the arena at some offset:
/// `trailer: u64 LE | key_len: u32 LE | val_len: u32 LE | key | value`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Record<'a> {
    pub(super) user: &'a [u8],
    pub(super) trailer: u64,
    pub(super) value: &'a [u8],
}

impl<'a> Record<'a> {
    /// Reads the record at `off` (an offset the memtable wrote itself).
    #[inline]
    pub(super) fn at(arena: &'a [u8], off: u32) -> Self {
        let o = off as usize;
        let h = &arena[o..o + HEADER_LEN];
        let trailer = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        let key_len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let val_len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
        let k = o + HEADER_LEN;
        Record { user: &arena[k..k + key_len], trailer, value: &arena[k + key_len..k + key_len + val_len] }
    }
}

/// A position: slot `pos` of leaf `leaf`, or the end when `leaf` is [`NIL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) leaf: u32,
    pub(super) pos: u32,
}

impl Cursor {
    pub(super) const END: Cursor = Cursor { leaf: NIL, pos: 0 };
}

#[derive(Clone, Debug)]
struct Leaf {
    len: u32,
    next: u32,
    prev: u32,
    prefix: [u64; LEAF_CAP],
    off: [u32; LEAF_CAP],
}

#[derive(Clone, Debug)]
struct Inner {
    len: u32,
    /// Separator `i` is the first slot of child `i + 1`.
    prefix: [u64; INNER_CAP],
    off: [u32; INNER_CAP],
    children: [u32; INNER_CAP + 1],
}

/// The B+tree. Every method that compares takes the arena the offsets point into.
#[derive(Clone, Debug)]
pub(super) struct Tree {
    leaves: Vec<Leaf>,
    inners: Vec<Inner>,
    root: u32,
    /// Levels of inner nodes above the leaves (0: the root is a leaf).
    height: usize,
    /// The last leaf.
    tail: u32,
}

impl Tree {
    pub(super) fn new() -> Self {
        let root = Leaf { len: 0, next: NIL, prev: NIL, prefix: [0; LEAF_CAP], off: [0; LEAF_CAP] };
        Tree { leaves: alloc::vec![root], inners: Vec::new(), root: 0, height: 0, tail: 0 }
    }

    /// Bytes held by the nodes.
    pub(super) fn bytes(&self) -> usize {
        self.leaves.len() * core::mem::size_of::<Leaf>() + self.inners.len() * core::mem::size_of::<Inner>()
    }

    /// The slot at `c` (which must not be the end).
    #[inline]
    pub(super) fn off(&self, c: Cursor) -> u32 {
        self.leaves[c.leaf as usize].off[c.pos as usize]
    }

    /// The first slot at or after `probe`.
    pub(super) fn seek(&self, arena: &[u8], probe: &Probe<'_>) -> Cursor {
        let mut node = self.root;
        for _ in 0..self.height {
            let n = &self.inners[node as usize];
            let c = search(arena, &n.prefix[..n.len as usize], &n.off[..n.len as usize], probe, true);
            node = n.children[c];
        }
        let l = &self.leaves[node as usize];
        let pos = search(arena, &l.prefix[..l.len as usize], &l.off[..l.len as usize], probe, false);
        self.normalize(Cursor { leaf: node, pos: pos as u32 })
    }

    /// The first slot.
    pub(super) fn first(&self) -> Cursor {
        // The first leaf is the one with no predecessor: leaf 0 (splits only add leaves after).
        self.normalize(Cursor { leaf: 0, pos: 0 })
    }

    /// The last slot (the end when empty).
    pub(super) fn last(&self) -> Cursor {
        let l = &self.leaves[self.tail as usize];
        if l.len == 0 {
            return Cursor::END;
        }
        Cursor { leaf: self.tail, pos: l.len - 1 }
    }

    /// The slot after `c`.
    #[inline]
    pub(super) fn next(&self, c: Cursor) -> Cursor {
        self.normalize(Cursor { leaf: c.leaf, pos: c.pos + 1 })
    }

    /// The slot before `c`; from the end, the last slot; before the first, the end.
    #[inline]
    pub(super) fn prev(&self, c: Cursor) -> Cursor {
        if c.leaf == NIL {
            return self.last();
        }
        if c.pos > 0 {
            return Cursor { leaf: c.leaf, pos: c.pos - 1 };
        }
        let p = self.leaves[c.leaf as usize].prev;
        if p == NIL {
            return Cursor::END;
        }
        Cursor { leaf: p, pos: self.leaves[p as usize].len - 1 }
    }

    /// Moves a position one past a leaf's last slot to the next leaf's first.
    #[inline]
    fn normalize(&self, c: Cursor) -> Cursor {
        let l = &self.leaves[c.leaf as usize];
        if c.pos < l.len {
            return c;
        }
        // Leaves other than an empty root are never empty.
        if l.next == NIL {
            Cursor::END
        } else {
            Cursor { leaf: l.next, pos: 0 }
        }
    }

    /// Adds the slot `(probe.prefix, off)`, `off` being the record of `probe`.
    pub(super) fn insert(&mut self, arena: &[u8], probe: &Probe<'_>, off: u32) {
        let mut path = [(0u32, 0usize); MAX_DEPTH];
        let mut node = self.root;
        let mut at_end = true;
        for level in (0..self.height).rev() {
            let n = &self.inners[node as usize];
            let c = search(arena, &n.prefix[..n.len as usize], &n.off[..n.len as usize], probe, true);
            at_end &= c == n.len as usize;
            path[level] = (node, c);
            node = n.children[c];
        }
        let li = node as usize;
        let l = &mut self.leaves[li];
        let len = l.len as usize;
        let pos = search(arena, &l.prefix[..len], &l.off[..len], probe, false);
        if len < LEAF_CAP {
            l.prefix.copy_within(pos..len, pos + 1);
            l.off.copy_within(pos..len, pos + 1);
            l.prefix[pos] = probe.prefix;
            l.off[pos] = off;
            l.len += 1;
            return;
        }
        at_end &= pos == len;
        let (mut right, mut sep) = self.split_leaf(li, pos, (probe.prefix, off), at_end);
        for &(parent, c) in path.iter().take(self.height) {
            let n = &mut self.inners[parent as usize];
            let len = n.len as usize;
            if len < INNER_CAP {
                n.prefix.copy_within(c..len, c + 1);
                n.off.copy_within(c..len, c + 1);
                n.children.copy_within(c + 1..len + 1, c + 2);
                (n.prefix[c], n.off[c]) = sep;
                n.children[c + 1] = right;
                n.len += 1;
                return;
            }
            (right, sep) = self.split_inner(parent as usize, c, sep, right, at_end);
        }
        assert!(self.height + 1 < MAX_DEPTH, "memtable tree too deep");
        let mut root = Inner { len: 1, prefix: [0; INNER_CAP], off: [0; INNER_CAP], children: [0; INNER_CAP + 1] };
        (root.prefix[0], root.off[0]) = sep;
        root.children[0] = self.root;
        root.children[1] = right;
        self.root = self.inners.len() as u32;
        self.inners.push(root);
        self.height += 1;
    }

    /// Splits the full leaf `li` while inserting `slot` at `pos`; returns the new right leaf
    /// and its first slot (the separator for the parent).
    fn split_leaf(&mut self, li: usize, pos: usize, slot: (u64, u32), at_end: bool) -> (u32, (u64, u32)) {
        let new = u32::try_from(self.leaves.len()).expect("memtable over 4 G leaves");
        let l = &mut self.leaves[li];
        let mut prefix = [0u64; LEAF_CAP + 1];
        let mut off = [0u32; LEAF_CAP + 1];
        prefix[..pos].copy_from_slice(&l.prefix[..pos]);
        off[..pos].copy_from_slice(&l.off[..pos]);
        (prefix[pos], off[pos]) = slot;
        prefix[pos + 1..].copy_from_slice(&l.prefix[pos..]);
        off[pos + 1..].copy_from_slice(&l.off[pos..]);
        let mid = if at_end { LEAF_CAP } else { LEAF_CAP.div_ceil(2) };
        let mut r = Leaf { len: (LEAF_CAP + 1 - mid) as u32, next: l.next, prev: li as u32, prefix: [0; LEAF_CAP], off: [0; LEAF_CAP] };
        r.prefix[..LEAF_CAP + 1 - mid].copy_from_slice(&prefix[mid..]);
        r.off[..LEAF_CAP + 1 - mid].copy_from_slice(&off[mid..]);
        l.prefix[..mid].copy_from_slice(&prefix[..mid]);
        l.off[..mid].copy_from_slice(&off[..mid]);
        l.len = mid as u32;
        l.next = new;
        if r.next == NIL {
            self.tail = new;
        } else {
            self.leaves[r.next as usize].prev = new;
        }
        self.leaves.push(r);
        (new, (prefix[mid], off[mid]))
    }

    /// Splits the full inner node `ni` while inserting separator `sep` at `c` with `child` to
    /// its right; returns the new right node and the separator promoted to the parent.
    fn split_inner(&mut self, ni: usize, c: usize, sep: (u64, u32), child: u32, at_end: bool) -> (u32, (u64, u32)) {
        let new = self.inners.len() as u32;
        let n = &mut self.inners[ni];
        let mut prefix = [0u64; INNER_CAP + 1];
        let mut off = [0u32; INNER_CAP + 1];
        let mut children = [0u32; INNER_CAP + 2];
        prefix[..c].copy_from_slice(&n.prefix[..c]);
        off[..c].copy_from_slice(&n.off[..c]);
        (prefix[c], off[c]) = sep;
        prefix[c + 1..].copy_from_slice(&n.prefix[c..]);
        off[c + 1..].copy_from_slice(&n.off[c..]);
        children[..c + 1].copy_from_slice(&n.children[..c + 1]);
        children[c + 1] = child;
        children[c + 2..].copy_from_slice(&n.children[c + 1..]);
        // Separator `mid` moves up; the left keeps `mid` separators, the right the rest.
        let mid = if at_end { INNER_CAP } else { INNER_CAP / 2 };
        let rlen = INNER_CAP - mid;
        let mut r = Inner { len: rlen as u32, prefix: [0; INNER_CAP], off: [0; INNER_CAP], children: [0; INNER_CAP + 1] };
        r.prefix[..rlen].copy_from_slice(&prefix[mid + 1..]);
        r.off[..rlen].copy_from_slice(&off[mid + 1..]);
        r.children[..rlen + 1].copy_from_slice(&children[mid + 1..]);
        n.prefix[..mid].copy_from_slice(&prefix[..mid]);
        n.off[..mid].copy_from_slice(&off[..mid]);
        n.children[..mid + 1].copy_from_slice(&children[..mid + 1]);
        n.len = mid as u32;
        self.inners.push(r);
        (new, (prefix[mid], off[mid]))
    }

    /// Panics unless the tree is well formed: slots strictly ordered along the leaf chain (both
    /// directions), every slot within its separators, all leaves at one depth, `count` slots.
    pub(super) fn check_invariants(&self, arena: &[u8], count: usize) {
        let mut leaves = Vec::new();
        self.check_node(arena, self.root, self.height, None, None, &mut leaves);
        assert_eq!(leaves.first().copied(), Some(0), "leaf 0 is not the first");
        assert_eq!(leaves.last().copied(), Some(self.tail), "tail is not the last leaf");
        let mut prev = NIL;
        let mut seen = 0;
        let mut last: Option<u32> = None;
        for (i, &li) in leaves.iter().enumerate() {
            let l = &self.leaves[li as usize];
            assert_eq!(l.prev, prev, "leaf {li}: wrong back link");
            assert_eq!(l.next, leaves.get(i + 1).copied().unwrap_or(NIL), "leaf {li}: wrong forward link");
            assert!(l.len > 0 || leaves.len() == 1, "leaf {li} is empty");
            for s in 0..l.len as usize {
                let r = Record::at(arena, l.off[s]);
                assert_eq!(l.prefix[s], prefix_of(r.user), "leaf {li} slot {s}: wrong prefix");
                if let Some(p) = last {
                    assert_eq!(cmp_slot(arena, l.prefix[s], l.off[s], &probe_of(arena, p)), Ordering::Greater, "slots out of order");
                }
                last = Some(l.off[s]);
                seen += 1;
            }
            prev = li;
        }
        assert_eq!(seen, count, "slot count");
    }

    /// Checks the subtree at `node` (`depth` inner levels above its leaves) against the bounds
    /// `[lo, hi)` its parents set, collecting its leaves in order.
    fn check_node(&self, arena: &[u8], node: u32, depth: usize, lo: Option<u32>, hi: Option<u32>, out: &mut Vec<u32>) {
        let within = |p: u64, off: u32| {
            let probe_lo = lo.map(|o| probe_of(arena, o));
            let probe_hi = hi.map(|o| probe_of(arena, o));
            assert!(probe_lo.is_none_or(|b| cmp_slot(arena, p, off, &b) != Ordering::Less), "slot below its separator");
            assert!(probe_hi.is_none_or(|b| cmp_slot(arena, p, off, &b) == Ordering::Less), "slot at or above its separator");
        };
        if depth == 0 {
            let l = &self.leaves[node as usize];
            for s in 0..l.len as usize {
                within(l.prefix[s], l.off[s]);
            }
            out.push(node);
            return;
        }
        let n = &self.inners[node as usize];
        let len = n.len as usize;
        for s in 0..len {
            within(n.prefix[s], n.off[s]);
            assert_eq!(n.prefix[s], prefix_of(Record::at(arena, n.off[s]).user), "separator prefix");
        }
        for c in 0..=len {
            let clo = if c == 0 { lo } else { Some(n.off[c - 1]) };
            let chi = if c == len { hi } else { Some(n.off[c]) };
            self.check_node(arena, n.children[c], depth - 1, clo, chi, out);
        }
    }
}

fn probe_of(arena: &[u8], off: u32) -> Probe<'_> {
    let r = Record::at(arena, off);
    Probe::new(r.user, r.trailer)
}

/// Orders the slot `(prefix, off)` against `probe`.
#[inline]
fn cmp_slot(arena: &[u8], prefix: u64, off: u32, probe: &Probe<'_>) -> Ordering {
    match prefix.cmp(&probe.prefix) {
        Ordering::Equal => {
            let r = Record::at(arena, off);
            r.user.cmp(probe.user).then_with(|| probe.trailer.cmp(&r.trailer))
        }
        o => o,
    }
}

/// How many of the sorted slots come before `probe` (`inclusive`: at or before).
#[inline]
fn search(arena: &[u8], prefix: &[u64], off: &[u32], probe: &Probe<'_>, inclusive: bool) -> usize {
    // Prefixes alone decide unless they tie; ties (shared 8-byte prefixes) are searched with
    // full comparisons.
    let lo = prefix.partition_point(|&p| p < probe.prefix);
    let mut hi = lo;
    while hi < prefix.len() && prefix[hi] == probe.prefix {
        hi += 1;
    }
    let (mut lo, mut hi) = (lo, hi);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let o = cmp_slot(arena, prefix[mid], off[mid], probe);
        if o == Ordering::Less || (inclusive && o == Ordering::Equal) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The first 8 bytes of `key`, zero-padded, as a big-endian number: ordering these agrees
/// with ordering the keys whenever they differ.
#[inline]
pub(super) fn prefix_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}
