//! Small file-system helpers: sizes of store folders, copies for crash-style reopen.
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes used by the files under `dir`, recursively.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirBytes {
    /// Blocks allocated on disk × 512 (what `du` reports): the space really used. Sparse,
    /// preallocated files (fjall's journal) count only for what was written.
    pub allocated: u64,
    /// Sum of file lengths (`du --apparent-size`).
    pub apparent: u64,
}

/// Space used by every file under `dir`.
pub fn dir_bytes(dir: &Path) -> io::Result<DirBytes> {
    let mut total = DirBytes::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let sub = dir_bytes(&entry.path())?;
            total.allocated += sub.allocated;
            total.apparent += sub.apparent;
        } else {
            total.allocated += meta.blocks() * 512;
            total.apparent += meta.len();
        }
    }
    Ok(total)
}

/// Copy every file under `from` into `to` (created), recursively.
///
/// Used to take the on-disk state of a store that is still open, after a sync, as if the
/// process had been killed: reopening the copy exercises crash recovery (WAL replay).
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Peak resident set size of this process (`VmHWM` in `/proc/self/status`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
