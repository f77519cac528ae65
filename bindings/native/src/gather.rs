//! Group commit gathering for [`Durability::SyncEachWrite`](crate::Durability::SyncEachWrite).
//!
//! The store shares one WAL sync among every write queued when the sync starts. In a closed
//! loop — N threads that each write again as soon as their write is acknowledged — that splits
//! into alternating partial groups: the writes that arrived during the last sync go out at
//! once, and the threads that sync just acknowledged come back a few microseconds later and
//! form the next group. About two syncs per N writes instead of one.
//!
//! So the driver tells the store how many writers it expects in the next group (the core's
//! `Store::set_group_target`): the threads now inside a write call, or the size of the last
//! group if that is larger (its threads may be between their return and their next write).
//! The store holds queued writes until that many are queued, and the driver releases a held
//! group after at most one recent sync's duration (a writer that did not come back costs one
//! such wait; the next group's size then lowers the target). One writer alone never waits.
use std::time::{Duration, Instant};

/// The longest a group is held, whatever the syncs take.
const MAX_WAIT: Duration = Duration::from_millis(1);
/// The shortest hold (a sync faster than this is not worth gathering for, but a wake-up of a
/// returning writer takes about this long).
const MIN_WAIT: Duration = Duration::from_micros(20);

/// The driver's gathering state (under the driver's lock).
#[derive(Debug)]
pub(crate) struct Gather {
    enabled: bool,
    /// Threads inside a write call: submitted, reply not yet taken.
    writers: usize,
    /// When the held group is released at the latest.
    deadline: Option<Instant>,
    /// Recent WAL sync duration in nanoseconds (moving average): how long a group is held.
    sync_ns: u64,
}

impl Gather {
    pub(crate) fn new(enabled: bool) -> Gather {
        Gather { enabled, writers: 0, deadline: None, sync_ns: 200_000 }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// A write call is about to submit; returns the group target to give the store.
    pub(crate) fn enter(&mut self, last_group: usize) -> usize {
        self.writers += 1;
        self.writers.max(last_group)
    }

    /// A write call took its reply. With no writer left returns the target that holds
    /// nothing (1), so writes from other paths (transactions, streams) are never held.
    pub(crate) fn leave(&mut self) -> Option<usize> {
        self.writers = self.writers.saturating_sub(1);
        (self.writers == 0).then_some(1)
    }

    /// Feeds the duration of a WAL sync.
    pub(crate) fn note_sync(&mut self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Weight 1/4 for the newest: follows a changing disk within a few syncs.
        self.sync_ns = self.sync_ns - self.sync_ns / 4 + ns / 4;
    }

    /// After the store's outputs were drained: starts the hold's clock when the store began
    /// holding, clears it when not. True when a hold began (waiters must re-arm timeouts).
    pub(crate) fn observe(&mut self, holding: bool) -> bool {
        match (holding, self.deadline) {
            (true, None) => {
                self.deadline = Some(Instant::now() + self.window());
                true
            }
            (false, Some(_)) => {
                self.deadline = None;
                false
            }
            _ => false,
        }
    }

    /// When the held group must be released, if one is held.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long a group may be held: one recent sync, within bounds.
    fn window(&self) -> Duration {
        Duration::from_nanos(self.sync_ns).clamp(MIN_WAIT, MAX_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_writers_and_the_last_group() {
        let mut g = Gather::new(true);
        assert_eq!(g.enter(0), 1, "one writer alone never waits");
        assert_eq!(g.enter(1), 2);
        assert_eq!(g.enter(4), 4, "the last group's writers are expected back");
        assert_eq!(g.leave(), None);
        assert_eq!(g.leave(), None);
        assert_eq!(g.leave(), Some(1), "no writer left: hold nothing");
        assert_eq!(g.leave(), Some(1), "never below zero");
    }

    #[test]
    fn the_hold_window_follows_sync_times_within_bounds() {
        let mut g = Gather::new(true);
        for _ in 0..40 {
            g.note_sync(Duration::from_micros(80));
        }
        let w = g.window();
        assert!(w > Duration::from_micros(75) && w < Duration::from_micros(85), "{w:?}");
        for _ in 0..40 {
            g.note_sync(Duration::from_secs(1));
        }
        assert_eq!(g.window(), MAX_WAIT);
        for _ in 0..80 {
            g.note_sync(Duration::from_nanos(100));
        }
        assert_eq!(g.window(), MIN_WAIT);
        assert!(g.observe(true));
        let d = g.deadline().expect("a hold has a deadline");
        assert!(!g.observe(true), "the clock starts once");
        assert_eq!(g.deadline(), Some(d));
        assert!(!g.observe(false));
        assert_eq!(g.deadline(), None);
    }
}
