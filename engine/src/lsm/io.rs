//! The narrow disk interface between the core and a binding.
//!
//! The core names files by [`FileName`] (a kind and a number); a binding maps them to paths,
//! blobs or browser file handles. Every request carries an [`IoId`]; the binding performs it and
//! feeds back an [`IoResult`] with the same id. Requests may be completed in any order, but a
//! binding must apply the requests *for one file* in the order they were emitted.
//!
//! Durability model, which every binding must honour and the sim disk enforces:
//! * `Append` data is volatile until a later `Sync` of the same file completes.
//! * `Sync` of a file also makes its creation durable (a binding syncs the directory once after
//!   creating a file).
//! * `Delete` and `Rename` take effect at once and are durable when they complete.
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// What a file holds. The number space is shared by all kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// A write-ahead log segment: `NNNNNN.wal`.
    Wal,
    /// A sorted string table: `NNNNNN.sst`.
    Table,
    /// The manifest log of version edits: `MANIFEST-NNNNNN`.
    Manifest,
}

/// A file in the store's folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileName {
    /// What the file holds.
    pub kind: FileKind,
    /// Its number, unique across kinds.
    pub number: u64,
}

impl FileName {
    /// A WAL segment.
    pub fn wal(number: u64) -> Self {
        FileName { kind: FileKind::Wal, number }
    }
    /// An SST.
    pub fn table(number: u64) -> Self {
        FileName { kind: FileKind::Table, number }
    }
    /// A manifest.
    pub fn manifest(number: u64) -> Self {
        FileName { kind: FileKind::Manifest, number }
    }

    /// Parses a name produced by `Display`; anything else (lock files, strangers) is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(n) = name.strip_prefix("MANIFEST-") {
            return parse_number(n).map(FileName::manifest);
        }
        if let Some(n) = name.strip_suffix(".wal") {
            return parse_number(n).map(FileName::wal);
        }
        if let Some(n) = name.strip_suffix(".sst") {
            return parse_number(n).map(FileName::table);
        }
        None
    }
}

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FileKind::Wal => write!(f, "{:06}.wal", self.number),
            FileKind::Table => write!(f, "{:06}.sst", self.number),
            FileKind::Manifest => write!(f, "MANIFEST-{:06}", self.number),
        }
    }
}

/// Identifies one I/O request; its completion carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IoId(pub u64);

/// A request to the binding's disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoRequest {
    /// List the store's files. Completes with [`IoResult::Listed`] (names that
    /// [`FileName::parse`] accepts; others are ignored by the binding).
    List,
    /// Read `len` bytes at `offset`. Completes with [`IoResult::Data`], shorter only at EOF.
    Read {
        /// The file.
        file: FileName,
        /// Byte offset.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// Read the whole file. Completes with [`IoResult::Data`].
    ReadAll {
        /// The file.
        file: FileName,
    },
    /// Append bytes at the end of the file, creating it if missing. Completes with `Done`.
    Append {
        /// The file.
        file: FileName,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Make the file's data and its creation durable. Completes with `Done`.
    Sync {
        /// The file.
        file: FileName,
    },
    /// Cut the file to `len` bytes and make that durable (used to drop a torn WAL tail).
    Truncate {
        /// The file.
        file: FileName,
        /// New length.
        len: u64,
    },
    /// Remove the file. Completes with `Done` (also when it did not exist).
    Delete {
        /// The file.
        file: FileName,
    },
}

/// The outcome of an [`IoRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoResult {
    /// A write-like request finished.
    Done,
    /// Bytes read.
    Data(Vec<u8>),
    /// The folder's files.
    Listed(Vec<FileName>),
    /// The request failed; nothing is assumed about partial effects beyond what the
    /// durability model allows.
    Failed(IoError),
}

/// Why an I/O request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The file does not exist.
    NotFound,
    /// The disk is full.
    NoSpace,
    /// Any other failure, with the binding's description.
    Other(String),
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::NotFound => f.write_str("file not found"),
            IoError::NoSpace => f.write_str("no space left on device"),
            IoError::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_round_trip() {
        for f in [FileName::wal(7), FileName::table(123456), FileName::manifest(1_000_000)] {
            assert_eq!(FileName::parse(&f.to_string()), Some(f));
        }
        assert_eq!(FileName::parse("LOCK"), None);
        assert_eq!(FileName::parse(".wal"), None);
        assert_eq!(FileName::parse("MANIFEST-x"), None);
    }
}
