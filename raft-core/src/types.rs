//! Newtypes for the numbers Raft passes around, so a term can never be
//! confused with an index or a node id.

use core::fmt;
use serde::{Deserialize, Serialize};

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident, $short:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($short, "{}"), self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }
    };
}

newtype!(
    /// A Raft term: a logical clock that increases with every election.
    Term,
    "t"
);
newtype!(
    /// The position of an entry in the replicated log; the first entry has index 1.
    Index,
    "i"
);
newtype!(
    /// The identity of a Raft peer. `NodeId(0)` is reserved and never a valid peer.
    NodeId,
    "n"
);
newtype!(
    /// An id the application chooses for a proposal; it comes back in the proposal's outcome.
    ProposalId,
    "p"
);
newtype!(
    /// An id the node hands out for a linearizable read; it comes back in the read's outcome.
    ReadId,
    "r"
);
newtype!(
    /// The id of a persistence request; the application reports its completion with it.
    PersistId,
    "w"
);

impl Index {
    /// The next index (saturating at `u64::MAX`).
    #[inline]
    pub fn next(self) -> Index {
        Index(self.0.saturating_add(1))
    }

    /// The previous index (saturating at zero).
    #[inline]
    pub fn prev(self) -> Index {
        Index(self.0.saturating_sub(1))
    }
}

impl Term {
    /// The next term (saturating at `u64::MAX`).
    #[inline]
    pub fn next(self) -> Term {
        Term(self.0.saturating_add(1))
    }
}
