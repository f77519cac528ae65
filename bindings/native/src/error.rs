//! The errors of the `strata` crate.
use std::fmt;
use std::io;
use std::path::PathBuf;

pub use strata_engine::lsm::error::{Error as StoreError, InvalidArgument};

/// Why a [`Db`](crate::Db) call failed.
///
/// Every variant leaves the database usable unless its documentation says otherwise: a
/// rejected request changed nothing, a failed write was not applied and may be retried.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another `Db` (in this process or another) holds the folder's `LOCK`. Nothing was
    /// opened; open again once the other holder closes.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The operating system refused something outside the store's own requests: creating the
    /// folder, opening the lock file, starting the background thread.
    Io {
        /// What was being touched.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The store's typed error: [`StoreError::InvalidArgument`] for a rejected request,
    /// [`StoreError::Corruption`] naming file and offset, [`StoreError::Io`] for a failed disk
    /// request (the writes it covered were not applied), [`StoreError::NotOpen`] after a failed
    /// recovery.
    Store(StoreError),
    /// The database was closed, or its background thread stopped.
    Closed,
    /// A messaging option or call was refused (for example an invalid KV watch bucket name).
    Messaging(crate::pubsub::MessagingError),
    /// The folder holds the other kind of data (raw keys vs versioned MVCC data; see
    /// [`crate::Kind`]), or its `KIND` marker is unreadable. Nothing was read or written.
    WrongKind {
        /// The marker file.
        path: PathBuf,
        /// What the folder holds (`None`: the marker's contents are not recognised).
        found: Option<crate::Kind>,
        /// What was asked for.
        wanted: crate::Kind,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for a request rejected before it touched anything (empty or oversized key, value
    /// or batch).
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self, Error::Store(StoreError::InvalidArgument(_)))
    }

    /// True when another holder has the folder locked.
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }

    /// True when bytes on disk failed a check.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Store(StoreError::Corruption { .. }))
    }

    pub(crate) fn invalid(a: InvalidArgument) -> Error {
        Error::Store(StoreError::InvalidArgument(a))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Locked { path } => write!(
                f,
                "{} is locked: another process (or another Db in this one) has this database open",
                path.display()
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Store(e) => e.fmt(f),
            Error::Closed => f.write_str("the database is closed"),
            Error::Messaging(e) => e.fmt(f),
            Error::WrongKind { path, found: Some(found), wanted } => write!(
                f,
                "{} says this folder holds {} data; it cannot be opened as {}",
                path.display(),
                found.name(),
                wanted.name()
            ),
            Error::WrongKind { path, found: None, wanted } => {
                write!(f, "{}: unrecognised contents; refusing to open the folder as {}", path.display(), wanted.name())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Store(e) => Some(e),
            Error::Messaging(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::pubsub::MessagingError> for Error {
    fn from(e: crate::pubsub::MessagingError) -> Self {
        Error::Messaging(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}
