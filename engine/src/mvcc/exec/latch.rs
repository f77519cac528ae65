//! Key latches: which running command holds which key, and who must wait (TiKV's latches).
//!
//! Waiting commands are served first come, first served: a command may start only when none
//! of its keys is held by a running command *or wanted by a command that arrived before it*
//! (so a stream of readers cannot starve a writer, nor writers each other).
//!
//! Held latches are a hash map (a latch taken and released per write allocates nothing once
//! the map has grown); a range read checks the held keys one by one — there are only as many
//! as writes in flight.
use super::command::Footprint;
use super::CmdId;
use crate::lsm::hash::FixedState;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::ops::Bound;
use hashbrown::HashMap;

/// Held latches.
#[derive(Debug)]
pub(crate) struct Latches {
    held: HashMap<Vec<u8>, CmdId, FixedState>,
    /// Key buffers of released latches, reused by the next ones (no allocation per latch).
    spare: Vec<Vec<u8>>,
}

/// Spare key buffers kept at most.
const MAX_SPARE: usize = 64;

impl Default for Latches {
    fn default() -> Self {
        Latches { held: HashMap::with_hasher(FixedState), spare: Vec::new() }
    }
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
                let inside = |k: &Vec<u8>| k >= from && upper.as_ref().is_none_or(|u| k < u);
                self.held.keys().any(inside) || claimed.range::<Vec<u8>, _>(range).next().is_some()
            }
            Footprint::Free => false,
        }
    }

    /// Takes the latches of `keys` for `id`. Each must be free (or already `id`'s).
    pub(crate) fn acquire(&mut self, keys: &[Vec<u8>], id: CmdId) {
        for k in keys {
            match self.held.get(k.as_slice()) {
                Some(&holder) => assert_eq!(holder, id, "latch taken twice"),
                None => {
                    self.held.insert(k.clone(), id);
                }
            }
        }
    }

    /// True when a running command holds `key`.
    pub(crate) fn is_held(&self, key: &[u8]) -> bool {
        self.held.contains_key(key)
    }

    /// Takes the latch of `key` for `id`; it must be free (or already `id`'s).
    pub(crate) fn acquire_one(&mut self, key: &[u8], id: CmdId) {
        match self.held.get(key) {
            Some(&holder) => assert_eq!(holder, id, "latch taken twice"),
            None => {
                let k = self.buffer(key);
                self.held.insert(k, id);
            }
        }
    }

    /// A copy of `key` in a spare buffer (give it back with [`Latches::give_back`]).
    pub(crate) fn buffer(&mut self, key: &[u8]) -> Vec<u8> {
        let mut k = self.spare.pop().unwrap_or_default();
        k.clear();
        k.extend_from_slice(key);
        k
    }

    /// Keeps `buf` for a later latch or [`Latches::buffer`].
    pub(crate) fn give_back(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            self.spare.push(buf);
        }
    }

    /// Releases `key`'s latch if `id` holds it.
    pub(crate) fn release_one(&mut self, key: &[u8], id: CmdId) {
        if let Some((k, holder)) = self.held.remove_entry(key) {
            if holder == id {
                self.give_back(k);
            } else {
                self.held.insert(k, holder);
            }
        }
    }

    /// Releases the latches `id` holds among `keys`.
    pub(crate) fn release(&mut self, keys: &[Vec<u8>], id: CmdId) {
        for k in keys {
            self.release_one(k, id);
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
