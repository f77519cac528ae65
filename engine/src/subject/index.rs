//! The subscription index: a trie over subject tokens with queue groups and a match cache.
//!
//! Storage is in [`super::node`]: nodes in one arena addressed by `u32`, token bytes in a key
//! arena, literal children in one hash table keyed by (parent node, token) with the full hash
//! kept in the entry, `*` and `>` children as direct links, and a node's first plain
//! subscription stored inline. A subscription sits at the node its pattern ends on, either in
//! the node's plain list or in one of its queue groups; removal is O(1) (swap remove with a
//! back-pointer fix) and prunes nodes left empty.
//!
//! A match splits the subject into tokens once (hashing each once), then walks from the root,
//! following at each level the `>` child (which collects everything under it), the `*` child
//! and the literal child; a chain of literal children is a loop, only `*` branches recurse.
//! Plain values are appended to the caller's [`Matches`]; queue groups with the same name are
//! merged across nodes and one member of each is chosen round-robin, from a starting point
//! derived from the seed. See [`super::cache`] for the cache in front of the walk.
use super::cache::{CacheConfig, MatchCache};
use super::node::{child_hash, same_token, token_hash, Child, Group, Kind, Node, NIL};
use super::parse::{common_prefix, for_each_token, Pattern, Subject, SubjectError};
use crate::lsm::hash::{hash64, mix64};
use alloc::boxed::Box;
use alloc::vec::Vec;
use hashbrown::HashTable;


/// A handle on one subscription in a [`SubjectIndex`]; stale handles are recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubId {
    slot: u32,
    gen: u32,
}

/// An interned queue-group name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u32);

/// Configuration of a [`SubjectIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// Seeds the starting member of each queue group's rotation.
    pub seed: u64,
    /// The match cache (`slots = 0` disables it).
    pub cache: CacheConfig,
    /// The longest pattern or subject accepted, in bytes.
    pub max_subject_bytes: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            seed: 0,
            cache: CacheConfig::default(),
            max_subject_bytes: super::parse::MAX_SUBJECT_BYTES,
        }
    }
}

/// The result of a match, filled by [`SubjectIndex::match_into`]. Reuse one across matches:
/// once its vectors have grown, matching allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct Matches<V> {
    /// Every matching subscription outside queue groups.
    pub plain: Vec<V>,
    /// One chosen member of each matching queue group, in queue-id order.
    pub queued: Vec<V>,
}

impl<V> Matches<V> {
    /// An empty result.
    pub fn new() -> Self {
        Matches { plain: Vec::new(), queued: Vec::new() }
    }

    /// Empties both lists, keeping their capacity.
    pub fn clear(&mut self) {
        self.plain.clear();
        self.queued.clear();
    }

    /// Plain subscribers plus chosen queue members.
    pub fn len(&self) -> usize {
        self.plain.len() + self.queued.len()
    }

    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counters for the cache and the trie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Live subscriptions.
    pub subscriptions: usize,
    /// Live trie nodes, the root included.
    pub nodes: usize,
    /// Matches answered from the cache.
    pub cache_hits: u64,
    /// Matches that probed the cache and missed.
    pub cache_misses: u64,
    /// Matches that skipped the cache because it was not paying off.
    pub cache_bypassed: u64,
}

/// The subscription index. `V` is what a match returns for each subscription (the broker uses
/// its own subscription slot).
#[derive(Debug)]
pub struct SubjectIndex<V> {
    config: IndexConfig,
    nodes: Vec<Node<V>>,
    free_nodes: Vec<u32>,
    /// Token bytes of literal nodes (`key_off..key_off + key_len`).
    keys: Vec<u8>,
    /// Bytes of `keys` no live node uses (reclaimed by compaction).
    dead_key_bytes: usize,
    /// Literal children of every node, hashed by (parent, token).
    children: HashTable<Child>,
    entries: Vec<Entry<V>>,
    free_entries: Vec<u32>,
    live: usize,
    queues: Queues,
    /// Bumped by every insert and remove; cache entries from older generations are stale.
    generation: u64,
    cache: MatchCache<V>,
    /// Scratch for a match: (queue, node, group index) of every matching group.
    group_refs: Vec<(u32, u32, u32)>,
    /// Scratch for a match: (start, end, hash) of every token of the subject.
    toks: Vec<(u32, u32, u64)>,
    /// The last inserted pattern and its path: (node, end byte of its token) per level. The
    /// next insert reuses the nodes of the tokens it shares with it (subscriptions often come
    /// in runs under one prefix). Cleared whenever a node is freed.
    memo_text: Vec<u8>,
    memo_path: Vec<(u32, u32)>,
}

#[derive(Debug)]
struct Entry<V> {
    gen: u32,
    live: bool,
    node: u32,
    queue: u32,
    /// Position in the node's plain list or in the group's member list.
    pos: u32,
    value: V,
}

/// Interned queue names with reference counts and rotation cursors.
#[derive(Debug, Default)]
struct Queues {
    by_name: HashTable<u32>,
    names: Vec<Box<str>>,
    refs: Vec<u32>,
    cursor: Vec<u64>,
    free: Vec<u32>,
}

impl<V: Copy> SubjectIndex<V> {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Self {
        SubjectIndex {
            config,
            nodes: alloc::vec![Node::new(NIL, Kind::Root)],
            free_nodes: Vec::new(),
            keys: Vec::new(),
            dead_key_bytes: 0,
            children: HashTable::new(),
            entries: Vec::new(),
            free_entries: Vec::new(),
            live: 0,
            queues: Queues::default(),
            generation: 0,
            cache: MatchCache::new(config.cache),
            group_refs: Vec::new(),
            toks: Vec::new(),
            memo_text: Vec::new(),
            memo_path: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Live subscriptions.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Counters.
    pub fn stats(&self) -> IndexStats {
        let (cache_hits, cache_misses, cache_bypassed) = self.cache.counters();
        IndexStats {
            subscriptions: self.live,
            nodes: self.nodes.len() - self.free_nodes.len(),
            cache_hits,
            cache_misses,
            cache_bypassed,
        }
    }

    /// The name of an interned queue group.
    pub fn queue_name(&self, q: QueueId) -> Option<&str> {
        self.queues.names.get(q.0 as usize).map(|n| &**n)
    }

    /// Adds a subscription on `pattern`, in queue group `queue` if given (a queue name may not
    /// be empty or contain whitespace; it is checked by the caller, e.g. the broker).
    pub fn insert(&mut self, pattern: Pattern<'_>, queue: Option<&str>, value: V) -> SubId {
        self.generation += 1;
        let b = pattern.as_str().as_bytes();
        let (mut node, from) = self.memo_resume(b);
        if from < b.len() {
            for_each_token(&b[from..], |start, end| {
                node = self.child_or_insert(node, &b[from + start..from + end]);
                self.memo_path.push((node, (from + end) as u32));
            });
        }
        self.memo_text.clear();
        self.memo_text.extend_from_slice(b);
        let slot = self.alloc_entry(node, value);
        let n = &mut self.nodes[node as usize];
        let (queue_id, pos) = match queue {
            None => (NIL, n.plain.push(value, slot)),
            Some(name) => {
                let q = self.queues.intern(name, self.config.seed);
                let gi = match n.groups.iter().position(|g| g.queue == q) {
                    Some(gi) => gi,
                    None => {
                        n.groups.push(Group { queue: q, members: Vec::new(), member_slots: Vec::new() });
                        n.groups.len() - 1
                    }
                };
                let g = &mut n.groups[gi];
                g.members.push(value);
                g.member_slots.push(slot);
                (q, g.members.len() - 1)
            }
        };
        let e = &mut self.entries[slot as usize];
        e.queue = queue_id;
        e.pos = pos as u32;
        self.live += 1;
        SubId { slot, gen: e.gen }
    }

    /// Removes a subscription; returns its value, or `None` for a stale or unknown handle.
    pub fn remove(&mut self, id: SubId) -> Option<V> {
        let e = self.entries.get(id.slot as usize)?;
        if !e.live || e.gen != id.gen {
            return None;
        }
        let (node, queue, pos, value) = (e.node, e.queue, e.pos as usize, e.value);
        self.generation += 1;
        let n = &mut self.nodes[node as usize];
        if queue == NIL {
            if let Some(moved) = n.plain.swap_remove(pos) {
                self.entries[moved as usize].pos = pos as u32;
            }
        } else {
            let gi = n.groups.iter().position(|g| g.queue == queue)?;
            let g = &mut n.groups[gi];
            g.members.swap_remove(pos);
            g.member_slots.swap_remove(pos);
            if let Some(&moved) = g.member_slots.get(pos) {
                self.entries[moved as usize].pos = pos as u32;
            }
            if g.members.is_empty() {
                n.groups.swap_remove(gi);
            }
            self.queues.release(queue);
        }
        let e = &mut self.entries[id.slot as usize];
        e.live = false;
        e.gen = e.gen.wrapping_add(1);
        self.free_entries.push(id.slot);
        self.live -= 1;
        self.prune(node);
        Some(value)
    }

    /// Fills `out` (cleared first) with the subscriptions matching `subject`: every plain one,
    /// and one member of each queue group (which advances that group's rotation).
    pub fn match_into(&mut self, subject: Subject<'_>, out: &mut Matches<V>) {
        out.clear();
        let s = subject.as_str();
        if let Err(hash) = self.match_cached(s, out) {
            self.match_walk(s, hash, out);
        }
    }

    /// Parses `subject` and matches it: a convenience for callers holding a `&str`. The cache
    /// is asked first: a hit is a subject byte-for-byte equal to one validated before (and no
    /// longer than this index's maximum), so only a miss pays for validation.
    pub fn match_str(&mut self, subject: &str, out: &mut Matches<V>) -> Result<(), SubjectError> {
        out.clear();
        let mut hash = None;
        if !subject.is_empty() && subject.len() <= self.config.max_subject_bytes.min(super::parse::MAX_SUBJECT_BYTES_LIMIT) {
            match self.match_cached(subject, out) {
                Ok(()) => return Ok(()),
                Err(h) => hash = h,
            }
        }
        let s = Subject::parse_with_max(subject, self.config.max_subject_bytes)?;
        self.match_walk(s.as_str(), hash, out);
        Ok(())
    }

    /// Answers from the cache when it holds `s` (only ever a validated subject); otherwise the
    /// hash to offer the walked result under, if the cache wants it.
    #[inline]
    fn match_cached(&mut self, s: &str, out: &mut Matches<V>) -> Result<(), Option<u64>> {
        let hit = self.cache.lookup(s, self.generation)?;
        if let [v] = hit.plain[..] {
            out.plain.push(v);
        } else {
            out.plain.extend_from_slice(&hit.plain);
        }
        for &(q, start, len) in &hit.groups {
            let members = &hit.members[start as usize..(start + len) as usize];
            out.queued.push(self.queues.choose(q, members));
        }
        Ok(())
    }

    /// Walks the trie for a validated subject `s` (cache missed), offering the result to the
    /// cache under `hash`.
    fn match_walk(&mut self, s: &str, hash: Option<u64>, out: &mut Matches<V>) {
        self.group_refs.clear();
        self.split(s.as_bytes());
        self.walk(s.as_bytes(), 0, 0, &mut out.plain);
        self.group_refs.sort_unstable();
        if let Some(hash) = hash {
            if self.cache.admit(hash) {
                let size = out.plain.len() + self.group_members();
                if size <= self.cache.max_entry_values() {
                    self.fill_cache(s, hash, &out.plain);
                } else {
                    self.cache.discard(hash);
                }
            }
        }
        let mut i = 0;
        while i < self.group_refs.len() {
            let q = self.group_refs[i].0;
            let mut j = i;
            let mut total = 0usize;
            while j < self.group_refs.len() && self.group_refs[j].0 == q {
                let (_, node, gi) = self.group_refs[j];
                total += self.nodes[node as usize].groups[gi as usize].members.len();
                j += 1;
            }
            let mut k = self.queues.advance(q, total);
            for &(_, node, gi) in &self.group_refs[i..j] {
                let members = &self.nodes[node as usize].groups[gi as usize].members;
                if k < members.len() {
                    out.queued.push(members[k]);
                    break;
                }
                k -= members.len();
            }
            i = j;
        }
    }

    /// Checks every internal invariant; panics with a description if one is broken.
    pub fn check_invariants(&self) {
        let mut live = 0;
        for (slot, e) in self.entries.iter().enumerate() {
            if !e.live {
                continue;
            }
            live += 1;
            let n = &self.nodes[e.node as usize];
            assert_ne!(n.kind, Kind::Free, "entry at a free node");
            if e.queue == NIL {
                assert_eq!(n.plain.slot(e.pos as usize), Some(slot as u32), "plain back-pointer");
            } else {
                let g = n.groups.iter().find(|g| g.queue == e.queue).expect("entry's group exists");
                assert_eq!(g.member_slots[e.pos as usize], slot as u32, "member back-pointer");
                assert!(self.queues.refs[e.queue as usize] > 0, "queue refcount");
            }
        }
        assert_eq!(live, self.live, "live count");
        let mut literal_counts = alloc::vec![0u32; self.nodes.len()];
        for c in self.children.iter() {
            let n = &self.nodes[c.node as usize];
            assert_eq!(n.kind, Kind::Literal, "only literal nodes in the table");
            assert_eq!(n.parent, c.parent, "table entry's parent");
            let h = child_hash(c.parent, token_hash(self.config.seed, self.key(c.node)));
            assert_eq!(h, c.hash, "table entry's hash");
            literal_counts[n.parent as usize] += 1;
        }
        let mut key_bytes = 0usize;
        let mut plain_total = 0usize;
        for (i, n) in self.nodes.iter().enumerate() {
            if n.kind == Kind::Free {
                assert!(self.free_nodes.contains(&(i as u32)), "free node {i} not on the free list");
                continue;
            }
            plain_total += n.plain.len();
            if n.kind == Kind::Literal {
                key_bytes += n.key_len as usize;
            }
            assert_eq!(n.literal_children, literal_counts[i], "literal child count of node {i}");
            if n.any != NIL {
                assert_eq!(self.nodes[n.any as usize].kind, Kind::AnyOne);
                assert_eq!(self.nodes[n.any as usize].parent, i as u32);
            }
            if n.rest != NIL {
                assert_eq!(self.nodes[n.rest as usize].kind, Kind::Rest);
                assert_eq!(self.nodes[n.rest as usize].parent, i as u32);
            }
            if i != 0 {
                assert!(!n.is_empty(), "empty node {i} not pruned");
            }
        }
        assert_eq!(key_bytes + self.dead_key_bytes, self.keys.len(), "key arena accounting");
        let queued: usize = self.nodes.iter().flat_map(|n| n.groups.iter()).map(|g| g.members.len()).sum();
        assert_eq!(plain_total + queued, self.live, "subscriptions stored");
        // The insert memo names live nodes along the memo text's tokens.
        let mut parent = 0u32;
        let mut start = 0usize;
        for &(node, end) in &self.memo_path {
            let n = &self.nodes[node as usize];
            assert_eq!(n.parent, parent, "memo path parent");
            let token = &self.memo_text[start..end as usize];
            match n.kind {
                Kind::AnyOne => assert_eq!(token, b"*"),
                Kind::Rest => assert_eq!(token, b">"),
                Kind::Literal => assert_eq!(self.key(node), token, "memo path token"),
                Kind::Root | Kind::Free => panic!("memo path names a {:?} node", n.kind),
            }
            parent = node;
            start = end as usize + 1;
        }
    }

    /// Where an insert of `b` starts walking: the deepest node of the last insert's path whose
    /// tokens `b` shares, and the byte of `b` after it (the memo path is cut to that depth).
    #[inline]
    fn memo_resume(&mut self, b: &[u8]) -> (u32, usize) {
        let k = common_prefix(b, 0, &self.memo_text, 0);
        let m = self.memo_text.len();
        let mut depth = self.memo_path.len();
        while depth > 0 {
            let e = self.memo_path[depth - 1].1 as usize;
            // Tokens up to `e` are shared when the bytes agree up to `e` and both texts end a
            // token there (when `e < k` the byte at `e` is the same `.` in both).
            if e < k || (e == k && (e == b.len() || b[e] == b'.') && (e == m || self.memo_text[e] == b'.')) {
                break;
            }
            depth -= 1;
        }
        self.memo_path.truncate(depth);
        match self.memo_path.last() {
            None => (0, 0),
            Some(&(node, e)) => (node, e as usize + 1),
        }
    }

    /// The token bytes of a literal node.
    fn key(&self, node: u32) -> &[u8] {
        let n = &self.nodes[node as usize];
        &self.keys[n.key_off as usize..(n.key_off + n.key_len) as usize]
    }

    /// Fills `toks` with the (start, end, hash) of every token of a valid subject.
    fn split(&mut self, b: &[u8]) {
        self.toks.clear();
        let (seed, toks) = (self.config.seed, &mut self.toks);
        for_each_token(b, |start, end| toks.push((start as u32, end as u32, token_hash(seed, &b[start..end]))));
    }

    /// Collects what `node` and its descendants hold for the tokens from `level` on. Literal
    /// chains loop; only `*` children recurse (depth bounded by the subject's token count).
    fn walk(&mut self, s: &[u8], mut node: u32, mut level: usize, plain: &mut Vec<V>) {
        let last_level = self.toks.len() - 1;
        loop {
            let (any, rest, literals) = {
                let n = &self.nodes[node as usize];
                (n.any, n.rest, n.literal_children)
            };
            if rest != NIL {
                self.collect(rest, plain);
            }
            if any != NIL {
                if level == last_level {
                    self.collect(any, plain);
                } else {
                    self.walk(s, any, level + 1, plain);
                }
            }
            if literals == 0 {
                return;
            }
            let (start, end, th) = self.toks[level];
            let Some(child) = self.find_child(node, &s[start as usize..end as usize], th) else { return };
            if level == last_level {
                self.collect(child, plain);
                return;
            }
            node = child;
            level += 1;
        }
    }

    fn collect(&mut self, node: u32, plain: &mut Vec<V>) {
        let n = &self.nodes[node as usize];
        n.plain.extend_into(plain);
        for (gi, g) in n.groups.iter().enumerate() {
            self.group_refs.push((g.queue, node, gi as u32));
        }
    }

    fn group_members(&self) -> usize {
        self.group_refs
            .iter()
            .map(|&(_, node, gi)| self.nodes[node as usize].groups[gi as usize].members.len())
            .sum()
    }

    fn fill_cache(&mut self, s: &str, hash: u64, plain: &[V]) {
        let entry = self.cache.entry_for(hash, s, self.generation);
        entry.plain.extend_from_slice(plain);
        let mut i = 0;
        while i < self.group_refs.len() {
            let q = self.group_refs[i].0;
            let start = entry.members.len() as u32;
            while i < self.group_refs.len() && self.group_refs[i].0 == q {
                let (_, node, gi) = self.group_refs[i];
                entry.members.extend_from_slice(&self.nodes[node as usize].groups[gi as usize].members);
                i += 1;
            }
            entry.groups.push((q, start, entry.members.len() as u32 - start));
        }
    }

    #[inline]
    fn find_child(&self, parent: u32, token: &[u8], th: u64) -> Option<u32> {
        let h = child_hash(parent, th);
        let (nodes, keys) = (&self.nodes, &self.keys);
        self.children
            .find(h, |c| {
                c.hash == h && c.parent == parent && {
                    let n = &nodes[c.node as usize];
                    same_token(&keys[n.key_off as usize..(n.key_off + n.key_len) as usize], token)
                }
            })
            .map(|c| c.node)
    }

    fn child_or_insert(&mut self, parent: u32, token: &[u8]) -> u32 {
        match token {
            b"*" => {
                let c = self.nodes[parent as usize].any;
                if c != NIL {
                    return c;
                }
                let c = self.alloc_node(parent, Kind::AnyOne);
                self.nodes[parent as usize].any = c;
                c
            }
            b">" => {
                let c = self.nodes[parent as usize].rest;
                if c != NIL {
                    return c;
                }
                let c = self.alloc_node(parent, Kind::Rest);
                self.nodes[parent as usize].rest = c;
                c
            }
            _ => {
                let th = token_hash(self.config.seed, token);
                if self.nodes[parent as usize].literal_children > 0 {
                    if let Some(c) = self.find_child(parent, token, th) {
                        return c;
                    }
                }
                if self.dead_key_bytes > 4096 && self.dead_key_bytes > self.keys.len() / 2 {
                    self.compact_keys();
                }
                let c = self.alloc_node(parent, Kind::Literal);
                let n = &mut self.nodes[c as usize];
                n.key_off = self.keys.len() as u32;
                n.key_len = token.len() as u32;
                self.keys.extend_from_slice(token);
                self.nodes[parent as usize].literal_children += 1;
                let hash = child_hash(parent, th);
                self.children.insert_unique(hash, Child { hash, parent, node: c }, |x| x.hash);
                c
            }
        }
    }

    /// Rewrites the key arena with only the live nodes' tokens.
    fn compact_keys(&mut self) {
        let mut keys = Vec::with_capacity(self.keys.len() - self.dead_key_bytes);
        for n in self.nodes.iter_mut().filter(|n| n.kind == Kind::Literal) {
            let off = keys.len() as u32;
            keys.extend_from_slice(&self.keys[n.key_off as usize..(n.key_off + n.key_len) as usize]);
            n.key_off = off;
        }
        self.keys = keys;
        self.dead_key_bytes = 0;
    }

    fn alloc_node(&mut self, parent: u32, kind: Kind) -> u32 {
        let node = Node::new(parent, kind);
        match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    fn alloc_entry(&mut self, node: u32, value: V) -> u32 {
        match self.free_entries.pop() {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                e.live = true;
                e.node = node;
                e.value = value;
                slot
            }
            None => {
                self.entries.push(Entry { gen: 0, live: true, node, queue: NIL, pos: 0, value });
                (self.entries.len() - 1) as u32
            }
        }
    }

    /// Frees `node` and its ancestors while they hold nothing.
    fn prune(&mut self, mut node: u32) {
        while node != 0 && self.nodes[node as usize].is_empty() {
            let (parent, kind) = {
                let n = &self.nodes[node as usize];
                (n.parent, n.kind)
            };
            match kind {
                Kind::AnyOne => self.nodes[parent as usize].any = NIL,
                Kind::Rest => self.nodes[parent as usize].rest = NIL,
                Kind::Literal => {
                    let h = child_hash(parent, token_hash(self.config.seed, self.key(node)));
                    if let Ok(found) = self.children.find_entry(h, |c| c.node == node) {
                        found.remove();
                    }
                    self.nodes[parent as usize].literal_children -= 1;
                    self.dead_key_bytes += self.nodes[node as usize].key_len as usize;
                }
                Kind::Root | Kind::Free => {}
            }
            self.nodes[node as usize] = Node::new(NIL, Kind::Free);
            self.memo_path.clear();
            self.free_nodes.push(node);
            node = parent;
        }
    }
}

impl Queues {
    fn intern(&mut self, name: &str, seed: u64) -> u32 {
        let h = hash64(name.as_bytes());
        let names = &self.names;
        if let Some(&q) = self.by_name.find(h, |&q| *names[q as usize] == *name) {
            self.refs[q as usize] += 1;
            return q;
        }
        let q = match self.free.pop() {
            Some(q) => {
                self.names[q as usize] = name.into();
                q
            }
            None => {
                self.names.push(name.into());
                self.refs.push(0);
                self.cursor.push(0);
                (self.names.len() - 1) as u32
            }
        };
        self.refs[q as usize] = 1;
        self.cursor[q as usize] = mix64(seed ^ h);
        let names = &self.names;
        self.by_name.insert_unique(h, q, |&x| hash64(names[x as usize].as_bytes()));
        q
    }

    fn release(&mut self, q: u32) {
        let r = &mut self.refs[q as usize];
        *r -= 1;
        if *r == 0 {
            let h = hash64(self.names[q as usize].as_bytes());
            if let Ok(e) = self.by_name.find_entry(h, |&x| x == q) {
                e.remove();
            }
            self.names[q as usize] = "".into();
            self.free.push(q);
        }
    }

    /// The next position in queue `q`'s rotation over `len` members.
    fn advance(&mut self, q: u32, len: usize) -> usize {
        let c = &mut self.cursor[q as usize];
        let k = (*c % len.max(1) as u64) as usize;
        *c = c.wrapping_add(1);
        k
    }

    fn choose<V: Copy>(&mut self, q: u32, members: &[V]) -> V {
        members[self.advance(q, members.len())]
    }
}
