//! The in-memory replicated log: a compacted prefix (the snapshot) followed by entries,
//! with the commit, apply and persistence watermarks.
//!
//! The node keeps every entry after the last compaction in memory; the application bounds
//! that memory by taking snapshots and calling `Node::compact`. Watermarks, always:
//! `snapshot.index ≤ applied ≤ committed ≤ last_index` and `stable ≤ last_index`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::message::{Entry, SnapshotMeta};
use crate::types::{Index, Term};

/// Why entries from a leader could not be appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// The entries contradict an entry that is already committed: the sender is faulty.
    ConflictBelowCommit,
}

#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    /// The compacted prefix.
    pub(crate) snapshot: SnapshotMeta,
    /// Entries from `snapshot.index + 1`.
    entries: VecDeque<Entry>,
    pub(crate) committed: Index,
    /// Highest index handed to the application to apply.
    pub(crate) applied: Index,
    /// Highest index known durable (prefix of the current log).
    pub(crate) stable: Index,
    /// First index not yet handed out in a persist request.
    pub(crate) unpersisted_from: Index,
    /// Payload bytes of all entries held.
    bytes: u64,
}

impl RaftLog {
    /// A log recovered from durable state: everything given is stable.
    pub(crate) fn new(snapshot: SnapshotMeta, entries: Vec<Entry>, committed: Index) -> RaftLog {
        let bytes = entries.iter().map(Entry::payload_len).sum();
        let mut log = RaftLog {
            committed: Index(0),
            applied: snapshot.index,
            stable: Index(0),
            unpersisted_from: Index(0),
            snapshot,
            entries: entries.into(),
            bytes,
        };
        log.stable = log.last_index();
        log.unpersisted_from = log.last_index().next();
        log.committed = committed.clamp(log.snapshot.index, log.last_index());
        log
    }

    #[inline]
    pub(crate) fn first_index(&self) -> Index {
        self.snapshot.index.next()
    }

    #[inline]
    pub(crate) fn last_index(&self) -> Index {
        Index(self.snapshot.index.0 + self.entries.len() as u64)
    }

    #[inline]
    pub(crate) fn last_term(&self) -> Term {
        self.entries
            .back()
            .map(|e| e.term)
            .unwrap_or(self.snapshot.term)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The term of the entry at `i`, if the log still holds it.
    #[inline]
    pub(crate) fn term(&self, i: Index) -> Option<Term> {
        if i == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if i < self.snapshot.index {
            return None;
        }
        self.entries
            .get((i.0 - self.snapshot.index.0 - 1) as usize)
            .map(|e| e.term)
    }

    pub(crate) fn entry(&self, i: Index) -> Option<&Entry> {
        if i <= self.snapshot.index {
            return None;
        }
        self.entries.get((i.0 - self.snapshot.index.0 - 1) as usize)
    }

    #[inline]
    pub(crate) fn matches(&self, i: Index, t: Term) -> bool {
        self.term(i) == Some(t)
    }

    /// Whether a candidate whose log ends at (`index`, `term`) is at least as up to date as
    /// this log (§5.4.1).
    pub(crate) fn is_up_to_date(&self, index: Index, term: Term) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// Appends one entry created by the leader.
    pub(crate) fn push(&mut self, e: Entry) {
        debug_assert_eq!(e.index, self.last_index().next());
        self.bytes += e.payload_len();
        self.entries.push_back(e);
    }

    /// Appends entries received from a leader after (`prev_index`, `prev_term`), which must
    /// match. Entries already present are skipped; a conflicting suffix is replaced.
    /// Returns the index of the last new entry and the first index written (if any entry
    /// was), or `None` when `prev` does not match.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: Index,
        prev_term: Term,
        entries: &[Entry],
    ) -> Result<Option<(Index, Option<Index>)>, AppendError> {
        if !self.matches(prev_index, prev_term) {
            return Ok(None);
        }
        let last_new = Index(prev_index.0 + entries.len() as u64);
        let mut conflict = None;
        for (k, e) in entries.iter().enumerate() {
            if e.index <= self.snapshot.index {
                continue;
            }
            if self.term(e.index) != Some(e.term) {
                conflict = Some(k);
                break;
            }
        }
        let mut written = None;
        if let Some(k) = conflict {
            let at = entries[k].index;
            written = Some(at);
            if at <= self.committed {
                return Err(AppendError::ConflictBelowCommit);
            }
            self.truncate_from(at);
            for e in &entries[k..] {
                self.push(e.clone());
            }
        }
        Ok(Some((last_new, written)))
    }

    /// Drops entries from `at` on (never committed ones).
    fn truncate_from(&mut self, at: Index) {
        let keep = (at.0 - self.snapshot.index.0 - 1) as usize;
        while self.entries.len() > keep {
            if let Some(e) = self.entries.pop_back() {
                self.bytes -= e.payload_len();
            }
        }
        self.unpersisted_from = self.unpersisted_from.min(at);
        self.stable = self.stable.min(at.prev());
    }

    /// The largest index ≤ `index` whose term is ≤ `term` (etcd's `findConflictByTerm`):
    /// entries after it cannot match a log whose entry at `index` has `term`.
    pub(crate) fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t > term => i = i.prev(),
                Some(t) => return (i, t),
                None => return (i, Term(0)),
            }
        }
    }

    /// Raises the commit index (never lowers it, never past the last entry).
    pub(crate) fn commit_to(&mut self, i: Index) -> bool {
        let i = i.min(self.last_index());
        if i > self.committed {
            self.committed = i;
            true
        } else {
            false
        }
    }

    /// Clones entries `[lo, hi)`, stopping after `max_bytes` of payload (at least one entry).
    pub(crate) fn slice(&self, lo: Index, hi: Index, max_bytes: u64, out: &mut Vec<Entry>) {
        if lo >= hi || lo <= self.snapshot.index {
            return;
        }
        let start = (lo.0 - self.snapshot.index.0 - 1) as usize;
        let end = ((hi.0 - self.snapshot.index.0 - 1) as usize).min(self.entries.len());
        let mut size = 0u64;
        for e in self.entries.range(start..end) {
            size += e.payload_len();
            if size > max_bytes && !out.is_empty() {
                break;
            }
            out.push(e.clone());
        }
    }

    /// Entries `[lo, hi)` without copying.
    pub(crate) fn iter_range(&self, lo: Index, hi: Index) -> impl Iterator<Item = &Entry> {
        let base = self.snapshot.index.0 + 1;
        let start = (lo.0.max(base) - base) as usize;
        let end = ((hi.0.max(base) - base) as usize).min(self.entries.len());
        self.entries.range(start.min(end)..end)
    }

    /// Discards entries up to `meta.index`, which must be applied.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta) {
        while self.entries.front().is_some_and(|e| e.index <= meta.index) {
            if let Some(e) = self.entries.pop_front() {
                self.bytes -= e.payload_len();
            }
        }
        self.snapshot = meta;
    }

    /// Replaces the whole log with a received snapshot. (§7 allows keeping entries that
    /// follow a matching snapshot; dropping them keeps the persistence contract simple: a
    /// snapshot replaces every stored entry, and the leader resends what follows.)
    pub(crate) fn restore(&mut self, meta: SnapshotMeta) {
        self.entries.clear();
        self.bytes = 0;
        self.committed = meta.index;
        self.applied = meta.index;
        self.stable = self.stable.min(meta.index.prev());
        self.unpersisted_from = meta.index.next();
        self.snapshot = meta;
    }

    /// Marks entries up to `index` (of term `term`) durable, unless they were replaced since.
    pub(crate) fn stable_to(&mut self, index: Index, term: Term) {
        if index > self.stable && self.matches(index, term) {
            self.stable = index;
        }
    }

    /// Checks the watermarks.
    pub(crate) fn check_invariants(&self) {
        assert!(
            self.snapshot.index <= self.applied,
            "applied below snapshot"
        );
        assert!(self.applied <= self.committed, "applied past commit");
        assert!(self.committed <= self.last_index(), "commit past last");
        assert!(self.stable <= self.last_index(), "stable past last");
        assert!(self.unpersisted_from <= self.last_index().next());
        let mut prev = self.snapshot.term;
        for (k, e) in self.entries.iter().enumerate() {
            assert_eq!(e.index.0, self.snapshot.index.0 + 1 + k as u64, "index gap");
            assert!(e.term >= prev, "terms decrease");
            prev = e.term;
        }
    }
}
