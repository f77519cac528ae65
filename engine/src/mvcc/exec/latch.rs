//! Key latches: which running command holds which key, and who must wait (TiKV's latches).
//!
//! Waiting commands are served first come, first served: a command may start only when none
//! of its keys is held by a running command *or wanted by a command that arrived before it*
//! (so a stream of readers cannot starve a writer, nor writers each other).
use super::command::Footprint;
use super::CmdId;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::ops::Bound;

/// Held latches.
#[derive(Debug, Default)]
pub(crate) struct Latches {
    held: BTreeMap<Vec<u8>, CmdId>,
}

impl Latches {
    /// True when a command with footprint `fp` must wait, given the keys `claimed` by
    /// commands waiting ahead of it.
    pub(crate) fn blocks(&self, fp: &Footprint, claimed: &BTreeSet<Vec<u8>>) -> bool {
        match fp {
            Footprint::Write(keys) => keys.iter().any(|k| self.held.contains_key(k) || claimed.contains(k)),
            Footprint::Read(k) => self.held.contains_key(k) || claimed.contains(k),
            Footprint::ReadRange(from, upper) => {
                let range = (Bound::Included(from.clone()), upper.clone().map_or(Bound::Unbounded, Bound::Excluded));
                if upper.as_ref().is_some_and(|u| u <= from) {
                    return false;
                }
                self.held.range::<Vec<u8>, _>(range.clone()).next().is_some() || claimed.range::<Vec<u8>, _>(range).next().is_some()
            }
            Footprint::Free => false,
        }
    }

    /// Takes the latches of `keys` for `id`. Each must be free (or already `id`'s).
    pub(crate) fn acquire(&mut self, keys: &[Vec<u8>], id: CmdId) {
        for k in keys {
            let holder = *self.held.entry(k.clone()).or_insert(id);
            assert_eq!(holder, id, "latch taken twice");
        }
    }

    /// Releases the latches `id` holds among `keys`.
    pub(crate) fn release(&mut self, keys: &[Vec<u8>], id: CmdId) {
        for k in keys {
            if self.held.get(k) == Some(&id) {
                self.held.remove(k);
            }
        }
    }

    /// Every `(key, holder)`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &CmdId)> {
        self.held.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}
