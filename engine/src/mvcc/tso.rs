//! The timestamp oracle: a hybrid logical clock with a persisted high-water mark.
//!
//! A timestamp is `physical_ms << 18 | logical` ([`Ts::compose`]). Each [`Tso::next`] returns
//! `max(last + 1, compose(now_ms, 0))`: it follows the `now` input when time moves forward, and
//! when `now` stands still or goes backwards the logical part counts up, carrying into the
//! physical part when it overflows — so timestamps are strictly increasing whatever `now` does.
//!
//! Timestamps must never repeat across a restart, yet persisting every one would cost a sync
//! each. Like TiKV's placement driver, the oracle hands out timestamps only up to a *reserved*
//! mark that the caller has made durable, and asks for the next window ahead of time:
//!
//! 1. [`Tso::next`] returns a timestamp, or [`TsoError::Reserving`] when the next one would pass
//!    the durable mark.
//! 2. [`Tso::poll_reservation`] yields a mark to persist (at most one outstanding at a time);
//!    the caller writes it durably, then calls [`Tso::handle_reserved`] with it.
//! 3. After a restart, [`Tso::recover`] with the last persisted mark starts above it.
//!
//! A new window is requested once fewer than half of `window_ms` remain, so a caller that
//! persists promptly never sees `Reserving`.
use super::Ts;

/// The largest physical time the 46 physical bits can hold, in ms (about the year 4199).
pub const MAX_PHYSICAL_MS: u64 = (1 << (64 - Ts::LOGICAL_BITS)) - 1;

/// Why no timestamp could be issued. The oracle's state is unchanged by an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsoError {
    /// The next timestamp is past the durable mark: persist [`Tso::poll_reservation`]'s mark,
    /// call [`Tso::handle_reserved`], then retry.
    Reserving {
        /// The mark being waited for.
        until: Ts,
    },
    /// `now_ms` does not fit the 46 physical bits, or the timestamp space is used up.
    OutOfRange,
}

/// The oracle's state. See the module docs for the calling protocol.
#[derive(Clone, Debug)]
pub struct Tso {
    last: Ts,
    durable_until: Ts,
    requested_until: Option<Ts>,
    queued: Option<Ts>,
    window_ms: u64,
}

impl Tso {
    /// A fresh oracle that reserves `window_ms` of timestamps at a time (TiKV's PD uses 3 s).
    pub fn new(window_ms: u64) -> Tso {
        Tso::recover(Ts::ZERO, window_ms)
    }

    /// An oracle after a restart: every timestamp it issues is above `persisted` (the last mark
    /// the caller made durable), whatever the clock says.
    pub fn recover(persisted: Ts, window_ms: u64) -> Tso {
        assert!(window_ms > 0, "window_ms must be positive");
        Tso {
            last: persisted,
            durable_until: persisted,
            requested_until: None,
            queued: None,
            window_ms,
        }
    }

    /// The last timestamp issued (or the recovered mark).
    pub fn last(&self) -> Ts {
        self.last
    }

    /// The durable mark: timestamps up to it may be issued.
    pub fn durable_until(&self) -> Ts {
        self.durable_until
    }

    /// Issues the next timestamp at physical time `now_ms`.
    pub fn next(&mut self, now_ms: u64) -> Result<Ts, TsoError> {
        if now_ms > MAX_PHYSICAL_MS || self.last == Ts::MAX {
            return Err(TsoError::OutOfRange);
        }
        let ts = self.last.next().max(Ts::compose(now_ms, 0));
        self.maybe_request(ts);
        if ts > self.durable_until {
            return Err(TsoError::Reserving {
                until: self.requested_until.unwrap_or(ts),
            });
        }
        self.last = ts;
        Ok(ts)
    }

    /// A mark to persist durably, then report with [`Tso::handle_reserved`].
    pub fn poll_reservation(&mut self) -> Option<Ts> {
        self.queued.take()
    }

    /// The mark `until` is durable: timestamps up to it may be issued. Stale or repeated
    /// reports are harmless.
    pub fn handle_reserved(&mut self, until: Ts) {
        self.durable_until = self.durable_until.max(until);
        if self
            .requested_until
            .is_some_and(|r| r <= self.durable_until)
        {
            self.requested_until = None;
        }
    }

    /// Requests a new window when `ts` leaves less than half a window below the durable mark.
    fn maybe_request(&mut self, ts: Ts) {
        let half = Ts::compose(self.window_ms / 2, 0).0;
        let low = self.durable_until.0.saturating_sub(half);
        let outstanding = self.requested_until.is_some_and(|r| r >= ts);
        if ts.0 <= low || outstanding {
            return;
        }
        let until = Ts::compose(
            ts.physical_ms()
                .saturating_add(self.window_ms)
                .min(MAX_PHYSICAL_MS),
            0,
        )
        .max(ts)
        .max(self.durable_until);
        self.requested_until = Some(until);
        self.queued = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `next`, persisting reservations at once as a prompt caller would.
    fn next(tso: &mut Tso, now_ms: u64, disk: &mut Ts) -> Ts {
        loop {
            let r = tso.next(now_ms);
            if let Some(mark) = tso.poll_reservation() {
                *disk = mark;
                tso.handle_reserved(mark);
            }
            match r {
                Ok(ts) => return ts,
                Err(TsoError::Reserving { .. }) => continue,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn follows_now_and_counts_logically_when_time_stands_still() {
        let (mut tso, mut disk) = (Tso::new(3_000), Ts::ZERO);
        assert_eq!(next(&mut tso, 100, &mut disk), Ts::compose(100, 0));
        assert_eq!(next(&mut tso, 100, &mut disk), Ts::compose(100, 1));
        assert_eq!(next(&mut tso, 105, &mut disk), Ts::compose(105, 0));
        assert!(disk >= Ts::compose(105, 0));
    }

    #[test]
    fn strictly_increasing_when_time_goes_backwards() {
        let (mut tso, mut disk) = (Tso::new(3_000), Ts::ZERO);
        let a = next(&mut tso, 10_000, &mut disk);
        let b = next(&mut tso, 5, &mut disk);
        let c = next(&mut tso, 9_999, &mut disk);
        assert!(a < b && b < c);
        assert_eq!(b, Ts::compose(10_000, 1));
        assert_eq!(c, Ts::compose(10_000, 2));
    }

    #[test]
    fn logical_overflow_carries_into_the_physical_part() {
        let (mut tso, mut disk) = (Tso::new(3_000), Ts::ZERO);
        let mut prev = next(&mut tso, 7, &mut disk);
        for _ in 0..(1u64 << Ts::LOGICAL_BITS) + 10 {
            let ts = next(&mut tso, 7, &mut disk);
            assert!(ts > prev);
            prev = ts;
        }
        assert_eq!(prev, Ts::compose(8, 10));
    }

    #[test]
    fn restart_starts_above_the_persisted_mark() {
        let (mut tso, mut disk) = (Tso::new(3_000), Ts::ZERO);
        let mut issued = Ts::ZERO;
        for now in 0..5_000 {
            issued = next(&mut tso, now, &mut disk);
            assert!(issued <= disk, "issued {issued} above durable {disk}");
        }
        // Crash; the clock on the new machine is far behind.
        let mut tso = Tso::recover(disk, 3_000);
        assert_eq!(
            tso.next(1),
            Err(TsoError::Reserving {
                until: Ts::compose(disk.physical_ms() + 3_000, 0)
            })
        );
        let after = next(&mut tso, 1, &mut disk);
        assert!(after > issued);
    }

    #[test]
    fn a_prompt_caller_never_waits_and_stale_reports_are_harmless() {
        let mut tso = Tso::new(1_000);
        let mut pending = None;
        let mut waits = 0;
        for now in 0..10_000u64 {
            // The previous reservation becomes durable one step later.
            if let Some(mark) = pending.take() {
                tso.handle_reserved(mark);
                tso.handle_reserved(Ts::ZERO);
            }
            match tso.next(now) {
                Ok(_) => {}
                Err(TsoError::Reserving { .. }) => waits += 1,
                Err(e) => panic!("{e:?}"),
            }
            pending = tso.poll_reservation().or(pending);
        }
        assert_eq!(waits, 1, "only the very first call waits");
    }

    proptest::proptest! {
        /// Any clock, any restarts, any reservation delays: strictly increasing, never above the
        /// durable mark, and a restart never repeats a timestamp.
        #[test]
        fn increasing_across_random_clocks_and_restarts(steps in proptest::collection::vec((0u64..20_000, 0u8..10), 1..300)) {
            let mut tso = Tso::new(500);
            let mut disk = Ts::ZERO;
            let mut pending: Option<Ts> = None;
            let mut last = Ts::ZERO;
            for (now, action) in steps {
                match action {
                    0 => {
                        tso = Tso::recover(disk, 500);
                        pending = None;
                    }
                    1 | 2 => {
                        if let Some(mark) = pending.take() {
                            disk = disk.max(mark);
                            tso.handle_reserved(mark);
                        }
                    }
                    _ => {
                        if let Ok(ts) = tso.next(now) {
                            proptest::prop_assert!(ts > last && ts <= disk);
                            last = ts;
                        }
                    }
                }
                pending = tso.poll_reservation().or(pending);
            }
        }
    }

    #[test]
    fn out_of_range() {
        let mut tso = Tso::new(1_000);
        assert_eq!(tso.next(MAX_PHYSICAL_MS + 1), Err(TsoError::OutOfRange));
        let mut tso = Tso::recover(Ts::MAX, 1_000);
        assert_eq!(tso.next(0), Err(TsoError::OutOfRange));
    }
}
