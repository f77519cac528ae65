//! A version: the set of live SSTs, level by level, as of one manifest edit.
//!
//! Versions are immutable and shared (`Arc`), so a reader keeps the files it is reading alive
//! while compactions install newer versions. Invariants ([`Version::check_invariants`]):
//! L0 files are ordered newest first and may overlap; in L1 and below files are sorted by key
//! and do not overlap.
use super::config::NUM_LEVELS;
use super::manifest::{TableMeta, VersionEdit};
use super::sstable::Table;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A live SST: its manifest record and its opened index and filter.
#[derive(Debug)]
pub struct TableFile {
    /// As recorded in the manifest.
    pub meta: TableMeta,
    /// Opened: index, filter, props.
    pub table: Table,
}

impl TableFile {
    /// Smallest user key.
    pub fn smallest(&self) -> &[u8] {
        self.meta.props.smallest_user_key()
    }
    /// Largest user key.
    pub fn largest(&self) -> &[u8] {
        self.meta.props.largest_user_key()
    }
    /// True when `[lo, hi]` (user keys, inclusive) meets this file's range.
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest() <= hi && lo <= self.largest()
    }
}

/// The live files.
#[derive(Clone, Debug, Default)]
pub struct Version {
    /// `levels[0]` newest first; the others sorted by smallest key.
    pub levels: [Vec<Arc<TableFile>>; NUM_LEVELS],
}

impl Version {
    /// The version after `edit`; `opened` supplies the tables the edit adds.
    ///
    /// Returns `None` when the edit names a level out of range or a table `opened` lacks
    /// (a manifest that does not describe a consistent store).
    pub fn apply(&self, edit: &VersionEdit, opened: &dyn Fn(u64) -> Option<Arc<TableFile>>) -> Option<Version> {
        let mut next = self.clone();
        for &(level, number) in &edit.removed {
            let files = next.levels.get_mut(usize::from(level))?;
            files.retain(|f| f.meta.number != number);
        }
        for (level, meta) in &edit.added {
            let files = next.levels.get_mut(usize::from(*level))?;
            files.push(opened(meta.number)?);
        }
        next.levels[0].sort_by(|a, b| b.meta.props.max_seq.cmp(&a.meta.props.max_seq).then(b.meta.number.cmp(&a.meta.number)));
        for files in next.levels.iter_mut().skip(1) {
            files.sort_by(|a, b| a.smallest().cmp(b.smallest()));
        }
        Some(next)
    }

    /// Every file, with its level.
    pub fn files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels.iter().enumerate().flat_map(|(l, fs)| fs.iter().map(move |f| (l, f)))
    }

    /// Total bytes in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.meta.file_len).sum()
    }

    /// The file of `level` (≥ 1) whose range may hold `user_key`.
    pub fn file_for(&self, level: usize, user_key: &[u8]) -> Option<&Arc<TableFile>> {
        let files = &self.levels[level];
        let i = files.partition_point(|f| f.largest() < user_key);
        files.get(i).filter(|f| f.smallest() <= user_key)
    }

    /// Files of `level` that meet `[lo, hi]`.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<TableFile>> {
        self.levels[level].iter().filter(|f| f.overlaps(lo, hi)).cloned().collect()
    }

    /// Panics when an invariant is broken (a bug, never bad input: edits are checked first).
    pub fn check_invariants(&self) {
        for w in self.levels[0].windows(2) {
            assert!(w[0].meta.props.max_seq >= w[1].meta.props.max_seq, "L0 not newest first");
        }
        for (l, files) in self.levels.iter().enumerate().skip(1) {
            for w in files.windows(2) {
                assert!(w[0].largest() < w[1].smallest(), "L{l} files overlap: {} and {}", w[0].meta.number, w[1].meta.number);
            }
        }
    }
}
