//! The folder lock: an exclusive `flock(2)` on `LOCK`, held for the life of a `Db`.
//!
//! `flock` locks belong to an open file description, so a second `Db` on the same folder is
//! refused whether it lives in another process or in this one, and the kernel releases the lock
//! when the process dies (kill -9 included): a stale `LOCK` file never blocks a reopen.
use crate::error::{Error, Result};
use fs4::{FileExt, TryLockError};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data folder.
pub const LOCK_FILE: &str = "LOCK";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct FolderLock {
    file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock of `dir`, or fails at once with [`Error::Locked`].
    pub(crate) fn acquire(dir: &Path) -> Result<FolderLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(FolderLock { file, path }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked { path }),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first makes it explicit.
        let _ = FileExt::unlock(&self.file);
        let _ = &self.path;
    }
}
