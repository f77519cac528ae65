//! The match cache: remembers recent match results by subject, and gets out of the way when it
//! is not paying off.
//!
//! NATS's sublist caches every matched subject and, once the cache is full, sweeps it; with many
//! distinct subjects it thrashes and every match pays for inserts and sweeps (nats-io/nats-server
//! issue 4341). This cache is built so that it cannot do that:
//!
//! * **Fixed size, no sweeps.** A direct-mapped array of `slots` entries; a new result simply
//!   replaces the one in its slot. Entries reuse their buffers, so a replacement allocates
//!   nothing once warm.
//! * **Admission on the second sighting.** A subject is cached only if a small "seen" filter
//!   already holds its hash, so a stream of one-off subjects never writes results into the
//!   cache (one word written per miss).
//! * **Bypass when it does not pay.** Hits are counted over windows of lookups; when fewer than
//!   one in eight hit, the cache is skipped (no hashing at all) for the next seven windows, then
//!   probed again for one window. A cache-hostile workload pays for one probing window in eight.
//! * **Invalidation by generation.** Every insert and remove bumps the index's generation; an
//!   entry from an older generation is a miss. No per-entry updates on subscription changes.
use super::node::{same_bytes, subject_hash};
use alloc::string::String;
use alloc::vec::Vec;

/// Lookups per accounting window.
const WINDOW: u32 = 256;
/// Windows skipped after a window whose hit rate was below 1/8.
const BYPASS_WINDOWS: u32 = 7;

/// Sizing of the match cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Number of cached subjects (rounded up to a power of two); 0 disables the cache.
    pub slots: usize,
    /// Results with more values than this are not cached (bounds the memory per slot).
    pub max_entry_values: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { slots: 1024, max_entry_values: 1024 }
    }
}

impl CacheConfig {
    /// No cache at all.
    pub const DISABLED: CacheConfig = CacheConfig { slots: 0, max_entry_values: 0 };
}

/// One cached result.
#[derive(Debug)]
pub(crate) struct CacheEntry<V> {
    hash: u64,
    generation: u64,
    subject: String,
    /// Plain subscribers.
    pub(crate) plain: Vec<V>,
    /// (queue, start, len) into `members`, sorted by queue.
    pub(crate) groups: Vec<(u32, u32, u32)>,
    /// The members of every matching queue group, merged per queue.
    pub(crate) members: Vec<V>,
}

#[derive(Debug)]
pub(crate) struct MatchCache<V> {
    config: CacheConfig,
    entries: Vec<CacheEntry<V>>,
    seen: Vec<u64>,
    window_lookups: u32,
    window_hits: u32,
    bypass_left: u32,
    hits: u64,
    misses: u64,
    bypassed: u64,
}

impl<V: Copy> MatchCache<V> {
    pub(crate) fn new(config: CacheConfig) -> Self {
        let slots = if config.slots == 0 { 0 } else { config.slots.next_power_of_two() };
        let mut entries = Vec::with_capacity(slots);
        for _ in 0..slots {
            entries.push(CacheEntry {
                hash: 0,
                generation: u64::MAX,
                subject: String::new(),
                plain: Vec::new(),
                groups: Vec::new(),
                members: Vec::new(),
            });
        }
        MatchCache {
            config,
            entries,
            seen: alloc::vec![0; slots * 2],
            window_lookups: 0,
            window_hits: 0,
            bypass_left: 0,
            hits: 0,
            misses: 0,
            bypassed: 0,
        }
    }

    /// (hits, misses, bypassed).
    pub(crate) fn counters(&self) -> (u64, u64, u64) {
        (self.hits, self.misses, self.bypassed)
    }

    /// A hit, or on a miss the subject's hash if the result may be offered with [`Self::admit`].
    #[inline]
    pub(crate) fn lookup(&mut self, subject: &str, generation: u64) -> Result<&CacheEntry<V>, Option<u64>> {
        if self.entries.is_empty() {
            return Err(None);
        }
        if self.bypass_left > 0 {
            self.bypass_left -= 1;
            self.bypassed += 1;
            return Err(None);
        }
        let h = subject_hash(subject.as_bytes());
        let slot = (h as usize) & (self.entries.len() - 1);
        self.window_lookups += 1;
        let e = &self.entries[slot];
        let hit = e.generation == generation && e.hash == h && same_bytes(e.subject.as_bytes(), subject.as_bytes());
        if hit {
            self.hits += 1;
            self.window_hits += 1;
        } else {
            self.misses += 1;
        }
        if self.window_lookups == WINDOW {
            if self.window_hits * 8 < WINDOW {
                self.bypass_left = BYPASS_WINDOWS * WINDOW;
            }
            self.window_lookups = 0;
            self.window_hits = 0;
        }
        if hit {
            Ok(&self.entries[slot])
        } else {
            Err(Some(h))
        }
    }

    /// True if a subject with this hash was seen before (and so is worth caching); records it.
    #[inline]
    pub(crate) fn admit(&mut self, hash: u64) -> bool {
        let k = ((hash >> 32) as usize) & (self.seen.len() - 1);
        if self.seen[k] == hash {
            true
        } else {
            self.seen[k] = hash;
            false
        }
    }

    /// The (emptied) entry that will hold the result for `subject`.
    pub(crate) fn entry_for(&mut self, hash: u64, subject: &str, generation: u64) -> &mut CacheEntry<V> {
        let slot = (hash as usize) & (self.entries.len() - 1);
        let e = &mut self.entries[slot];
        e.hash = hash;
        e.generation = generation;
        e.subject.clear();
        e.subject.push_str(subject);
        e.plain.clear();
        e.groups.clear();
        e.members.clear();
        e
    }

    /// Marks an entry unusable (after a fill that turned out too large).
    pub(crate) fn discard(&mut self, hash: u64) {
        let slot = (hash as usize) & (self.entries.len() - 1);
        let e = &mut self.entries[slot];
        e.generation = u64::MAX;
        e.plain = Vec::new();
        e.members = Vec::new();
        e.groups = Vec::new();
    }

    pub(crate) fn max_entry_values(&self) -> usize {
        self.config.max_entry_values
    }
}

