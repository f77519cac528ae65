//! Real files: carries out the core's I/O requests in one folder.
//!
//! * Store requests ([`Disk::perform`]) come from one driver thread at a time, in the order
//!   the store emitted them, so per-file ordering holds. WAL and manifest appends go through
//!   cached append-mode handles: an append is one `write(2)`, a sync one `fdatasync(2)`.
//! * A file created by an append has its directory entry synced with its first `Sync`, as the
//!   core's durability model asks ([`strata_engine::lsm::io`]).
//! * SST reads (point reads, iterators, compaction input) use `pread(2)` on handles kept open
//!   in a table cache shared by every thread.
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use strata_engine::lsm::io::{FileKind, FileName, IoError, IoRequest, IoResult};

/// Block buffers are allocated in multiples of this, so a recycled buffer fits most later
/// blocks (data blocks vary by up to an entry around the target size).
pub(crate) const BUFFER_ROUND: usize = 128;

/// SST read handles kept open at most.
const MAX_OPEN_TABLES: usize = 512;

/// The data folder.
#[derive(Debug)]
pub(crate) struct Disk {
    dir: PathBuf,
    /// Append handles of WAL and manifest files; only the driver touches them.
    writers: Mutex<Writers>,
    /// Read handles of SSTs by file number.
    tables: RwLock<HashMap<u64, Arc<File>>>,
    preallocate_wal: bool,
}

#[derive(Debug, Default)]
struct Writers {
    open: HashMap<FileName, Appender>,
    /// Files created since the directory was last synced.
    unsynced_entries: HashSet<FileName>,
}

/// An open log file written at `len` with positional writes.
#[derive(Debug)]
struct Appender {
    file: File,
    /// Bytes the store has appended (where the next append goes).
    len: u64,
    /// Bytes on disk: `len` plus a zero-filled tail when preallocated.
    allocated: u64,
}

/// WAL files are zero-filled this far ahead of the data (see [`Disk::new`]).
const WAL_PREALLOC_BYTES: u64 = 4 << 20;

impl Disk {
    /// The folder `dir`. With `preallocate_wal`, WAL segments are extended with zeros in
    /// [`WAL_PREALLOC_BYTES`] steps ahead of the data, so a sync after an append writes data
    /// blocks only (no size change, no journal commit): about 1.5x more syncs per second on
    /// ext4. A crash leaves a zero-filled tail, which recovery reads as a torn tail and cuts
    /// off (`frame::scan_log`).
    pub(crate) fn new(dir: &Path, preallocate_wal: bool) -> Disk {
        Disk { dir: dir.to_path_buf(), writers: Mutex::default(), tables: RwLock::default(), preallocate_wal }
    }

    pub(crate) fn path(&self, file: FileName) -> PathBuf {
        self.dir.join(file.to_string())
    }

    /// Carries out one store request.
    pub(crate) fn perform(&self, req: &IoRequest) -> IoResult {
        let r = match req {
            IoRequest::List => self.list().map(IoResult::Listed),
            IoRequest::Read { file, offset, len } => self.read(*file, *offset, *len).map(IoResult::Data),
            IoRequest::ReadAll { file } => fs::read(self.path(*file)).map(IoResult::Data),
            IoRequest::Append { file, data } => self.append(*file, data).map(|()| IoResult::Done),
            IoRequest::Sync { file } => self.sync(*file).map(|()| IoResult::Done),
            IoRequest::Truncate { file, len } => self.truncate(*file, *len).map(|()| IoResult::Done),
            IoRequest::Delete { file } => self.delete(*file).map(|()| IoResult::Done),
        };
        r.unwrap_or_else(|e| IoResult::Failed(io_error(&e)))
    }

    fn list(&self) -> io::Result<Vec<FileName>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str().and_then(FileName::parse) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn writers(&self) -> std::sync::MutexGuard<'_, Writers> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, file: FileName, data: &[u8]) -> io::Result<()> {
        let mut w = self.writers();
        let w = &mut *w;
        if !w.open.contains_key(&file) {
            let path = self.path(file);
            let existed = path.exists();
            let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
            let len = f.metadata()?.len();
            if !existed {
                w.unsynced_entries.insert(file);
            }
            w.open.insert(file, Appender { file: f, len, allocated: len });
        }
        let Some(a) = w.open.get_mut(&file) else { return Err(io::Error::other("append handle vanished")) };
        let end = a.len + data.len() as u64;
        if self.preallocate_wal && file.kind == FileKind::Wal && end > a.allocated {
            let target = end.div_ceil(WAL_PREALLOC_BYTES) * WAL_PREALLOC_BYTES;
            write_zeros(&a.file, a.allocated, target)?;
            a.allocated = target;
        }
        a.file.write_all_at(data, a.len)?;
        a.len = end;
        a.allocated = a.allocated.max(end);
        Ok(())
    }

    fn sync(&self, file: FileName) -> io::Result<()> {
        let mut w = self.writers();
        // `fdatasync` also persists a size change, which a later read needs.
        match w.open.get(&file) {
            Some(a) => a.file.sync_data()?,
            None => File::open(self.path(file))?.sync_data()?,
        }
        if w.unsynced_entries.remove(&file) {
            if let Err(e) = self.sync_dir() {
                w.unsynced_entries.insert(file);
                return Err(e);
            }
        }
        Ok(())
    }

    fn truncate(&self, file: FileName, len: u64) -> io::Result<()> {
        let mut w = self.writers();
        // Drop the append handle: the next append reopens at the new end.
        w.open.remove(&file);
        let f = OpenOptions::new().write(true).open(self.path(file))?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn delete(&self, file: FileName) -> io::Result<()> {
        {
            let mut w = self.writers();
            w.open.remove(&file);
            w.unsynced_entries.remove(&file);
        }
        if file.kind == FileKind::Table {
            self.tables.write().unwrap_or_else(|p| p.into_inner()).remove(&file.number);
        }
        match fs::remove_file(self.path(file)) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes creations and removals in the folder durable.
    pub(crate) fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// Reads up to `len` bytes at `offset` (shorter only at the end of the file).
    pub(crate) fn read(&self, file: FileName, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let f = self.handle(file)?;
        let len = usize::try_from(len).map_err(|_| io::Error::other("read length overflows"))?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match f.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Reads the block of `len` bytes at `offset` straight into shared memory: into `spare`
    /// (a recycled buffer, when it is long enough and unshared) or a new buffer rounded up to
    /// [`BUFFER_ROUND`] bytes, so that later blocks fit it. Returns the buffer and the bytes
    /// read into its front (fewer than `len` only when the file ends early; the block decoder
    /// reports that as corruption).
    pub(crate) fn read_block(&self, file: FileName, offset: u64, len: u32, spare: Option<Arc<[u8]>>) -> io::Result<(Arc<[u8]>, usize)> {
        let f = self.handle(file)?;
        let len = len as usize;
        let mut buf = match spare {
            Some(b) if b.len() >= len => b,
            // One allocation, zero-filled in place (`repeat_n` has a trusted length).
            _ => std::iter::repeat_n(0u8, len.next_multiple_of(BUFFER_ROUND)).collect(),
        };
        let Some(dst) = Arc::get_mut(&mut buf) else { return Err(io::Error::other("block buffer is shared")) };
        let dst = &mut dst[..len];
        let mut filled = 0;
        while filled < len {
            match f.read_at(&mut dst[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((buf, filled))
    }

    /// A read handle: kept open for SSTs, fresh for anything else.
    fn handle(&self, file: FileName) -> io::Result<Arc<File>> {
        if file.kind != FileKind::Table {
            return File::open(self.path(file)).map(Arc::new);
        }
        if let Some(f) = self.tables.read().unwrap_or_else(|p| p.into_inner()).get(&file.number) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(self.path(file))?);
        let mut tables = self.tables.write().unwrap_or_else(|p| p.into_inner());
        if tables.len() >= MAX_OPEN_TABLES {
            // Stay well under the usual 1024-descriptor limit: close some handles (readers
            // holding an `Arc` keep theirs until done; the next read reopens).
            let victims: Vec<u64> = tables.keys().copied().take(MAX_OPEN_TABLES / 8).collect();
            for v in victims {
                tables.remove(&v);
            }
        }
        tables.insert(file.number, f.clone());
        Ok(f)
    }

    /// Creates `file` with `data`, syncs it and its directory entry (a job's output).
    pub(crate) fn write_new(&self, file: FileName, data: &[u8]) -> io::Result<()> {
        let path = self.path(file);
        // A fresh number, unless a crash left an orphan behind: overwrite it.
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&path)?;
        f.write_all(data)?;
        f.sync_data()?;
        self.sync_dir()
    }
}

/// Fills `[from, to)` of `file` with zeros.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    const STEP: usize = 256 << 10;
    let zeros = vec![0u8; STEP];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(STEP, |left| left.min(STEP));
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// The core's view of an OS error.
pub(crate) fn io_error(e: &io::Error) -> IoError {
    match e.kind() {
        io::ErrorKind::NotFound => IoError::NotFound,
        io::ErrorKind::StorageFull => IoError::NoSpace,
        _ if e.raw_os_error() == Some(28) => IoError::NoSpace,
        _ => IoError::Other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_block_fills_a_shared_or_recycled_buffer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let disk = Disk::new(dir.path(), false);
        let file = FileName::table(7);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        disk.write_new(file, &data).expect("write");
        let (block, n) = disk.read_block(file, 1000, 4000, None).expect("read");
        assert_eq!((n, block.len()), (4000, 4000usize.next_multiple_of(BUFFER_ROUND)));
        assert_eq!(&block[..n], &data[1000..5000]);
        // Unshared: the cache may hold it alone, and recycle it.
        assert_eq!(Arc::strong_count(&block), 1);
        let ptr = block.as_ptr();
        let (again, n) = disk.read_block(file, 2000, 4010, Some(block)).expect("read into spare");
        assert_eq!(again.as_ptr(), ptr, "the spare is reused");
        assert_eq!(&again[..n], &data[2000..6010]);
        // Too short a spare, or a shared one, is not written into.
        let (other, _) = disk.read_block(file, 0, 100, None).expect("small");
        let held = other.clone();
        let (fresh, n) = disk.read_block(file, 0, 4096, Some(other)).expect("fresh buffer");
        assert_ne!(fresh.as_ptr(), held.as_ptr());
        assert_eq!(&fresh[..n], &data[..4096]);
        let (tail, n) = disk.read_block(file, 9000, 4096, None).expect("short read");
        assert_eq!(&tail[..n], &data[9000..]);
        assert_eq!(disk.read_block(file, 20_000, 16, None).expect("past the end").1, 0);
    }
}
