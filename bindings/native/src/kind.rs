//! What a database folder holds: raw LSM keys ([`crate::raw::Db`]) or versioned MVCC data
//! ([`crate::Db`]). The two share the store's files but not their meaning — a raw key that
//! begins with `w` would read as an MVCC write record — so the folder records its kind in a
//! small `KIND` file at creation, and opening it as the other kind fails with
//! [`Error::WrongKind`] before anything is read or written.
//!
//! Folders created before the marker existed hold raw data (that was the only kind): a folder
//! with store files but no `KIND` opens as raw and is marked so.
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::Path;

/// The marker file's name inside the database folder.
pub const KIND_FILE: &str = "KIND";

/// The kind of data a folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Raw keys and values ([`crate::raw::Db`], the CLI).
    Raw,
    /// Versioned MVCC data ([`crate::Db`]).
    Versioned,
}

impl Kind {
    fn marker(self) -> &'static str {
        match self {
            Kind::Raw => "strata raw 1\n",
            Kind::Versioned => "strata versioned 1\n",
        }
    }

    fn parse(bytes: &[u8]) -> Option<Kind> {
        [Kind::Raw, Kind::Versioned].into_iter().find(|k| k.marker().as_bytes() == bytes)
    }

    /// What the folder `dir` holds, without opening or locking it: `None` for a folder that
    /// does not exist or holds nothing yet (a folder with store files but no marker is raw).
    pub fn of_folder(dir: &Path) -> Result<Option<Kind>> {
        let path = dir.join(KIND_FILE);
        match fs::read(&path) {
            Ok(bytes) => Kind::parse(&bytes).map(Some).ok_or(Error::WrongKind { path, found: None, wanted: Kind::Raw }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match dir.exists() {
                true => Ok(has_store_files(dir)?.then_some(Kind::Raw)),
                false => Ok(None),
            },
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Raw => "raw (strata::raw::Db, the strata CLI)",
            Kind::Versioned => "versioned (strata::Db)",
        }
    }
}

/// Checks that the folder `dir` (locked by the caller) holds `want`, marking a new folder.
pub(crate) fn check_or_mark(dir: &Path, want: Kind) -> Result<()> {
    let path = dir.join(KIND_FILE);
    match fs::read(&path) {
        Ok(bytes) => match Kind::parse(&bytes) {
            Some(found) if found == want => Ok(()),
            Some(found) => Err(Error::WrongKind { path, found: Some(found), wanted: want }),
            None => Err(Error::WrongKind { path, found: None, wanted: want }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let legacy = has_store_files(dir)?;
            let kind = if legacy { Kind::Raw } else { want };
            if kind != want {
                return Err(Error::WrongKind { path, found: Some(kind), wanted: want });
            }
            write_marker(dir, kind)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// True when the folder holds anything but the lock file (a store made before `KIND`).
fn has_store_files(dir: &Path) -> Result<bool> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name() != crate::lock::LOCK_FILE {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes the marker durably: a temporary file, synced, renamed over, the folder synced.
fn write_marker(dir: &Path, kind: Kind) -> Result<()> {
    let tmp = dir.join("KIND.tmp");
    let path = dir.join(KIND_FILE);
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(kind.marker().as_bytes()).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("strata-kind-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn new_folder_takes_the_first_kind_and_refuses_the_other() {
        let d = tmp("new");
        check_or_mark(&d, Kind::Versioned).unwrap();
        check_or_mark(&d, Kind::Versioned).unwrap();
        let err = check_or_mark(&d, Kind::Raw).unwrap_err();
        assert!(matches!(err, Error::WrongKind { found: Some(Kind::Versioned), wanted: Kind::Raw, .. }), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_folder_with_files_but_no_marker_is_raw() {
        let d = tmp("legacy");
        fs::write(d.join("000001.log"), b"x").unwrap();
        let err = check_or_mark(&d, Kind::Versioned).unwrap_err();
        assert!(err.to_string().contains("raw"), "{err}");
        check_or_mark(&d, Kind::Raw).unwrap();
        assert_eq!(fs::read(d.join(KIND_FILE)).unwrap(), Kind::Raw.marker().as_bytes());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn garbage_in_the_marker_is_refused_not_overwritten() {
        let d = tmp("garbage");
        fs::write(d.join(KIND_FILE), b"\xff\x00junk").unwrap();
        let err = check_or_mark(&d, Kind::Raw).unwrap_err();
        assert!(matches!(err, Error::WrongKind { found: None, .. }), "{err}");
        assert_eq!(fs::read(d.join(KIND_FILE)).unwrap(), b"\xff\x00junk");
        fs::remove_dir_all(&d).unwrap();
    }
}
