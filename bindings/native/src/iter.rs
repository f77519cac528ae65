//! [`Iter`]: ordered iteration over a [`Db`] or a [`Snapshot`](crate::Snapshot).
//!
//! The core's merging iterator does the work; this side serves what it asks for: SST blocks
//! from the shared cache or the disk (without the lock), and chunks of the active memtable
//! (briefly under the lock).
use crate::db::Db;
use crate::error::Result;
use std::ops::{Bound, RangeBounds};
use strata_engine::lsm::iter::{IterStep, StoreIter};

/// Keys and values in order (ascending or descending), as of the moment the iterator was made:
/// later writes are not seen, and the files and memtables it reads stay alive until it drops.
///
/// Each item is `Ok((key, value))`, or one `Err` after which the iterator ends (a block failed
/// its checksum or could not be read).
pub struct Iter {
    db: Db,
    it: Option<StoreIter>,
    /// The database was closed before the iterator was made: reported by the first `next`.
    closed: bool,
    done: bool,
}

impl std::fmt::Debug for Iter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("done", &self.done).finish_non_exhaustive()
    }
}

impl Iter {
    pub(crate) fn new(db: Db, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, reverse: bool, snapshot: Option<u64>) -> Iter {
        let it = {
            let mut st = db.inner.shared.lock();
            (!st.closing).then(|| st.store.iter(lo, hi, reverse, snapshot))
        };
        Iter { closed: it.is_none(), db, it, done: false }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.closed {
            return Err(crate::Error::Closed);
        }
        let shared = self.db.inner.shared.clone();
        let Some(it) = self.it.as_mut() else { return Ok(None) };
        loop {
            match it.step() {
                IterStep::Item(k, v) => return Ok(Some((k, v))),
                IterStep::NeedBlock { file, handle } => it.supply(&shared.block(file, handle)?),
                IterStep::NeedMemtable => shared.lock().store.refill_iter(it),
                IterStep::End => return Ok(None),
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        if let Some(it) = self.it.take() {
            self.db.inner.shared.lock().store.release_iter(&it);
        }
    }
}

/// Owned bounds from any `RangeBounds` over byte strings.
pub(crate) fn to_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(r: &R) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(r.start_bound()), own(r.end_bound()))
}

/// `[prefix, successor(prefix))`: the successor drops trailing `0xff` bytes and increments the
/// last byte left; a prefix of only `0xff` bytes (or none) has no upper bound.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = if prefix.is_empty() { Bound::Unbounded } else { Bound::Included(prefix.to_vec()) };
    let mut hi = prefix.to_vec();
    while let Some(&last) = hi.last() {
        if last == 0xff {
            hi.pop();
        } else {
            if let Some(l) = hi.last_mut() {
                *l += 1;
            }
            return (lo, Bound::Excluded(hi));
        }
    }
    (lo, Bound::Unbounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successors() {
        assert_eq!(prefix_bounds(b"ab"), (Bound::Included(b"ab".to_vec()), Bound::Excluded(b"ac".to_vec())));
        assert_eq!(prefix_bounds(b"a\xff"), (Bound::Included(b"a\xff".to_vec()), Bound::Excluded(b"b".to_vec())));
        assert_eq!(prefix_bounds(b"\xff\xff"), (Bound::Included(b"\xff\xff".to_vec()), Bound::Unbounded));
        assert_eq!(prefix_bounds(b""), (Bound::Unbounded, Bound::Unbounded));
    }
}
