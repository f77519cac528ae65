//! Rebuilding the Raft state from the records of the surviving segments, oldest first.
//!
//! The log is tracked as `(base, last, entries)`: the snapshot it starts after, its last
//! index, and the entries held, which end at `last`. Entries between `base.index` and the
//! first held entry lived in deleted segments; that *hole* is legal only if a later record
//! moves `base` past it (the deletion rule guarantees one exists), so [`Replay::finish`]
//! reports any hole that remains as [`LogError::MissingEntries`].
use super::record::Record;
use super::LogError;
use crate::lsm::io::FileName;
use alloc::vec::Vec;
use strata_raft::{Entry, HardState, Index, Recovered, SnapshotMeta};

/// Replay state; feed records in order with [`Replay::apply`].
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The last hard state read.
    pub hard_state: HardState,
    /// The snapshot the log starts after.
    pub base: SnapshotMeta,
    /// The log's last index.
    pub last: Index,
    /// The entries held (consecutive, ending at `last` when non-empty).
    pub entries: Vec<Entry>,
}

impl Replay {
    /// Applies one record read at `offset` of `file`.
    pub fn apply(&mut self, file: FileName, offset: u64, record: Record) -> Result<(), LogError> {
        match record {
            Record::Checkpoint { hard_state, base, last } => {
                self.hard_state = hard_state;
                if base.index >= self.base.index {
                    self.base = base;
                }
                if last < self.base.index {
                    return Err(LogError::Corruption { file, offset, reason: "checkpoint ends before its base" });
                }
                // What the checkpoint says the log holds decides; entries it does not hold
                // (or that a deleted segment overwrote) go.
                let held_last = self.entries.last().map(|e| e.index);
                if held_last != Some(last) {
                    self.entries.clear();
                }
                self.last = last;
                self.drop_through(self.base.index);
            }
            Record::Persist { hard_state, snapshot, entries } => {
                self.hard_state = hard_state;
                if let Some(s) = snapshot {
                    self.entries.clear();
                    self.last = s.index;
                    self.base = s;
                }
                let base = self.base.index;
                let new: Vec<Entry> = entries.into_iter().filter(|e| e.index > base).collect();
                if let Some(first) = new.first().map(|e| e.index) {
                    if first > self.last.next() {
                        return Err(LogError::Corruption { file, offset, reason: "entries do not follow the log" });
                    }
                    let keep = self.entries.iter().take_while(|e| e.index < first).count();
                    self.entries.truncate(keep);
                    self.last = new.last().map_or(first, |e| e.index);
                    self.entries.extend(new);
                }
            }
            Record::Compact { base } => {
                if base.index > self.base.index {
                    self.base = base;
                    self.last = self.last.max(self.base.index);
                    self.drop_through(self.base.index);
                }
            }
        }
        Ok(())
    }

    fn drop_through(&mut self, index: Index) {
        let n = self.entries.iter().take_while(|e| e.index <= index).count();
        self.entries.drain(..n);
    }

    /// The recovered state, once every record is applied.
    pub fn finish(self) -> Result<Recovered, LogError> {
        let first_held = self.entries.first().map_or(self.last.next(), |e| e.index);
        if first_held != self.base.index.next() {
            return Err(LogError::MissingEntries { from: self.base.index.next(), to: first_held.prev() });
        }
        let mut term = self.base.term;
        for e in &self.entries {
            if e.term < term {
                return Err(LogError::Inconsistent { reason: "entry terms decrease" });
            }
            term = e.term;
        }
        if term > self.hard_state.term {
            return Err(LogError::Inconsistent { reason: "an entry's term is above the hard state's" });
        }
        let applied = self.base.index;
        let snapshot = (self.base.index > Index(0)).then_some(self.base);
        Ok(Recovered { hard_state: self.hard_state, snapshot, entries: self.entries, applied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::io::FileKind;
    use alloc::vec;
    use strata_raft::{Bytes, EntryKind, Term};

    const FILE: FileName = FileName { kind: FileKind::Wal, number: 1 };

    fn e(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: Index(index), kind: EntryKind::Normal, data: Bytes::new() }
    }
    fn es(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
        (lo..=hi).map(|i| e(i, term)).collect()
    }
    fn hs(term: u64) -> HardState {
        HardState { term: Term(term), ..HardState::default() }
    }
    fn meta(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta { index: Index(index), term: Term(term), ..SnapshotMeta::default() }
    }
    fn run(records: Vec<Record>) -> Result<Recovered, LogError> {
        let mut r = Replay::default();
        for (i, rec) in records.into_iter().enumerate() {
            r.apply(FILE, i as u64, rec)?;
        }
        r.finish()
    }
    fn persist(term: u64, entries: Vec<Entry>) -> Record {
        Record::Persist { hard_state: hs(term), snapshot: None, entries }
    }
    fn checkpoint(term: u64, base: SnapshotMeta, last: u64) -> Record {
        Record::Checkpoint { hard_state: hs(term), base, last: Index(last) }
    }

    #[test]
    fn appends_overwrites_and_compaction() {
        let r = run(vec![
            checkpoint(0, meta(0, 0), 0),
            persist(1, es(1, 5, 1)),
            persist(2, es(4, 6, 2)),
            Record::Compact { base: meta(2, 1) },
            persist(3, es(7, 7, 3)),
        ])
        .expect("replays");
        assert_eq!(r.hard_state, hs(3));
        assert_eq!(r.snapshot, Some(meta(2, 1)));
        assert_eq!(r.applied, Index(2));
        let want: Vec<Entry> = [e(3, 1), e(4, 2), e(5, 2), e(6, 2), e(7, 3)].to_vec();
        assert_eq!(r.entries, want);
    }

    #[test]
    fn snapshot_drops_everything_before_its_entries() {
        let r = run(vec![
            checkpoint(0, meta(0, 0), 0),
            persist(1, es(1, 9, 1)),
            Record::Persist { hard_state: hs(2), snapshot: Some(meta(5, 2)), entries: es(6, 6, 2) },
        ])
        .expect("replays");
        assert_eq!(r.snapshot, Some(meta(5, 2)));
        assert_eq!(r.entries, es(6, 6, 2));
    }

    #[test]
    fn a_hole_from_deleted_segments_must_be_compacted() {
        // The first surviving segment starts at last = 10 with entries 1..=10 deleted.
        let ok = run(vec![checkpoint(1, meta(0, 0), 10), persist(1, es(11, 12, 1)), Record::Compact { base: meta(10, 1) }]);
        assert_eq!(ok.expect("replays").entries, es(11, 12, 1));
        let missing = run(vec![checkpoint(1, meta(0, 0), 10), persist(1, es(11, 12, 1)), Record::Compact { base: meta(8, 1) }]);
        assert_eq!(missing.err(), Some(LogError::MissingEntries { from: Index(9), to: Index(10) }));
        // A new leader overwrote into the hole: only what follows the overwrite counts.
        let r = run(vec![checkpoint(1, meta(4, 1), 10), persist(2, es(5, 6, 2))]).expect("replays");
        assert_eq!(r.entries, es(5, 6, 2));
    }

    #[test]
    fn entries_beyond_the_log_are_corruption() {
        let r = run(vec![checkpoint(1, meta(0, 0), 0), persist(1, es(1, 2, 1)), persist(1, es(4, 4, 1))]);
        assert!(matches!(r, Err(LogError::Corruption { offset: 2, .. })));
        let r = run(vec![checkpoint(1, meta(3, 1), 2)]);
        assert!(matches!(r, Err(LogError::Corruption { offset: 0, .. })));
    }

    #[test]
    fn inconsistent_terms() {
        let r = run(vec![checkpoint(1, meta(0, 0), 0), persist(1, [e(1, 2)].to_vec())]);
        assert!(matches!(r, Err(LogError::Inconsistent { .. })));
        let r = run(vec![checkpoint(3, meta(0, 0), 0), persist(3, [e(1, 2), e(2, 1)].to_vec())]);
        assert!(matches!(r, Err(LogError::Inconsistent { .. })));
    }
}
