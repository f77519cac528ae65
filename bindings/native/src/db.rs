//! The unversioned database handle ([`Db`], exported as `strata::raw::Db`), and [`Snapshot`].
use crate::cache::SharedCache;
use crate::disk::Disk;
use crate::driver::Shared;
use crate::error::{Error, InvalidArgument, Result};
use crate::iter::{prefix_bounds, to_bounds, Iter};
use crate::lock::FolderLock;
use crate::options::Options;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::memtable::Found;
use strata_engine::lsm::read::{Lookup, LookupStep};
use strata_engine::lsm::store::{Request, Stats, Store};

/// An open database: a folder of files, many threads reading and writing it.
///
/// `Db` is a cheap handle (`Clone`, `Send`, `Sync`); the database closes when the last handle
/// (and every [`Snapshot`] and [`Iter`] made from it) is dropped, or at [`Db::close`]. Closing
/// makes buffered writes durable in the non-syncing [`Durability`](crate::Durability) modes and
/// waits for a running flush or compaction.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    background: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    max_key_len: usize,
    pub(crate) hub: Arc<crate::pubsub::Hub>,
    pub(crate) watch: Option<crate::watch::KvWatch>,
    _lock: FolderLock,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database in folder `path` with default [`Options`].
    ///
    /// Fails with [`Error::Locked`] when another `Db` has it open, and with a corruption error
    /// (naming file and offset) rather than open a store with acknowledged data missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path, Options::default())
    }

    /// Opens the database in `path` with `options`.
    ///
    /// A folder holds either raw data or versioned data ([`crate::Kind`]); opening a
    /// versioned folder here fails with [`Error::WrongKind`].
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Db> {
        Db::open_kind(path.as_ref(), options, crate::Kind::Raw)
    }

    /// Opens the folder for data of `kind` (the versioned `Db` opens its raw store this way).
    pub(crate) fn open_kind(path: &Path, options: Options, kind: crate::Kind) -> Result<Db> {
        let path = path.to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let watch = options.kv_watch.as_deref().map(crate::watch::KvWatch::new).transpose()?;
        let lock = FolderLock::acquire(&path)?;
        crate::kind::check_or_mark(&path, kind)?;
        let config = options.store_config();
        let max_key_len = config.max_key_len;
        let durability = config.durability;
        // Zero-filled WAL space pays off when syncs are frequent.
        let preallocate_wal = !matches!(durability, crate::Durability::Manual);
        let store = Store::open(config);
        let shared =
            Arc::new(Shared::new(store, Disk::new(&path, preallocate_wal), SharedCache::new(options.block_cache_bytes), durability));
        shared.recover()?;
        let bg = shared.clone();
        let handle = std::thread::Builder::new()
            .name("strata-background".into())
            .spawn(move || bg.background())
            .map_err(|e| Error::io(&path, e))?;
        let hub = Arc::new(crate::pubsub::Hub::new(options.broker));
        let inner = Inner { shared, background: Mutex::new(Some(handle)), path, max_key_len, hub, watch, _lock: lock };
        Ok(Db { inner: Arc::new(inner) })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets `key` to `value`. Returns once the write is durable (default) or applied (in the
    /// non-syncing modes).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        let mut batch = Batch::new();
        batch.put(key, value);
        self.write(batch)
    }

    /// Removes `key` (a no-op when absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(key.as_ref());
        self.write(batch)
    }

    /// Applies `batch` atomically: after a crash either all of it is there or none.
    pub fn write(&self, batch: Batch) -> Result<()> {
        let events = self.inner.watch.as_ref().map(|w| w.events(&batch));
        self.inner.shared.call(Request::Write(batch))?;
        if let Some(events) = events {
            self.publish_kv(events);
        }
        Ok(())
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.get_at(key.as_ref(), None)
    }

    /// True when `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub(crate) fn get_at(&self, key: &[u8], snapshot: Option<u64>) -> Result<Option<Vec<u8>>> {
        self.check_key(key)?;
        let shared = &self.inner.shared;
        let (version, seq) = {
            let st = shared.lock();
            if st.closing {
                return Err(Error::Closed);
            }
            let view = st.store.read_view();
            let seq = snapshot.map_or(view.seq, |s| s.min(view.seq));
            match st.store.get_in_memory(key, seq) {
                Some(Found::Value(v)) => return Ok(Some(v)),
                Some(Found::Deleted) => return Ok(None),
                None => (view.version, seq),
            }
        };
        let mut lookup = Lookup::new(version, key, seq);
        loop {
            match lookup.step() {
                LookupStep::NeedBlock { file, handle } => {
                    let cached = shared.cache.with_or_spare(file.number, handle.offset, handle.len as usize, |b| lookup.supply(b));
                    if let Err(spare) = cached {
                        let block = shared.read_block_with(file, handle, spare, |buf, len| lookup.decode_block(file, handle, buf, len))?;
                        lookup.supply(&block);
                        shared.cache.insert(file.number, handle.offset, block);
                    }
                }
                LookupStep::Done(v) => return Ok(v),
            }
        }
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid(InvalidArgument::EmptyKey));
        }
        if key.len() > self.inner.max_key_len {
            return Err(Error::invalid(InvalidArgument::KeyTooLarge { len: key.len(), max: self.inner.max_key_len }));
        }
        Ok(())
    }

    /// Keys in `range`, in ascending order, with their values.
    ///
    /// The iterator reads a consistent state as of this call; writes made afterwards are not
    /// seen. Items are `Result`s: a failed block read ends iteration with an error.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lo, hi) = to_bounds(&range);
        Iter::new(self.clone(), lo, hi, false, None)
    }

    /// Keys in `range` in descending order.
    pub fn range_rev<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lo, hi) = to_bounds(&range);
        Iter::new(self.clone(), lo, hi, true, None)
    }

    /// Keys starting with `prefix`, ascending.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        Iter::new(self.clone(), lo, hi, false, None)
    }

    /// Keys starting with `prefix`, descending.
    pub fn prefix_rev(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        Iter::new(self.clone(), lo, hi, true, None)
    }

    /// Every key, ascending.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// Pins the current state: reads through the snapshot see exactly the writes made before
    /// it, however long it lives. Released on drop.
    pub fn snapshot(&self) -> Snapshot {
        let seq = self.inner.shared.lock().store.snapshot();
        Snapshot { db: self.clone(), seq }
    }

    /// Makes every acknowledged write durable (needed only in the non-syncing modes).
    pub fn sync(&self) -> Result<()> {
        self.inner.shared.call(Request::Sync).map(|_| ())
    }

    /// Writes the memtable to an SST and waits until it is installed.
    pub fn flush(&self) -> Result<()> {
        self.inner.shared.call(Request::Flush).map(|_| ())
    }

    /// Flushes, then compacts every file overlapping `[lo, hi]` into the bottom level, dropping
    /// overwritten versions and tombstones no snapshot needs.
    pub fn compact_range(&self, lo: impl AsRef<[u8]>, hi: impl AsRef<[u8]>) -> Result<()> {
        let req = Request::CompactRange { lo: lo.as_ref().to_vec(), hi: hi.as_ref().to_vec() };
        self.inner.shared.call(req).map(|_| ())
    }

    /// Compacts the whole key space (see [`Db::compact_range`]).
    pub fn compact(&self) -> Result<()> {
        // Keys are non-empty, so `[0x00]` is the smallest; the longest all-`0xff` key the
        // largest.
        let hi = vec![0xff; self.inner.max_key_len];
        self.compact_range([0u8], hi)
    }

    /// Shape and counters: files and bytes per level, write and space amplification, and the
    /// block cache's hit rate (`stats.cache.hit_rate()`).
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        let mut s = shared.lock().store.stats();
        s.cache = shared.cache.stats();
        s
    }

    /// Closes now: makes buffered writes durable, waits for the running job, and reports any
    /// failure doing so. Other handles to this database get [`Error::Closed`] afterwards.
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }
}

impl Inner {
    fn close(&self) -> Result<()> {
        self.hub.close();
        let r = self.shared.close();
        let handle = self.background.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        r
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Errors here have nowhere to go; `Db::close` reports them.
        let _ = self.close();
    }
}

/// A repeatable-read view of a [`Db`] as of [`Db::snapshot`]. Released on drop.
pub struct Snapshot {
    db: Db,
    seq: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seq", &self.seq).finish()
    }
}

impl Snapshot {
    /// The sequence number the snapshot reads at.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.db.get_at(key.as_ref(), Some(self.seq))
    }

    /// Keys in `range` as of the snapshot, ascending.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lo, hi) = to_bounds(&range);
        Iter::new(self.db.clone(), lo, hi, false, Some(self.seq))
    }

    /// Keys in `range` as of the snapshot, descending.
    pub fn range_rev<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lo, hi) = to_bounds(&range);
        Iter::new(self.db.clone(), lo, hi, true, Some(self.seq))
    }

    /// Keys starting with `prefix` as of the snapshot, ascending.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        Iter::new(self.db.clone(), lo, hi, false, Some(self.seq))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.db.inner.shared.lock().store.release_snapshot(self.seq);
    }
}
