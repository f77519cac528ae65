//! Drives the stream engine ([`Streams`]) over a [`SimStore`]: the store's replies are routed
//! to the engine, the engine's events collected, and virtual time fed to both. A crash budget
//! on the store cuts the power between any two disk requests, as in [`SimStore`].
use crate::disk::SimDisk;
use crate::store::SimStore;
use strata_engine::lsm::config::Config;
use strata_engine::lsm::error::Error;
use strata_engine::lsm::store::{ReqId, Reply, Store};
use strata_engine::stream::{Event, Streams, StreamsConfig};

/// A stream engine and its store on a simulated disk.
#[derive(Debug)]
pub struct SimStreams {
    /// The store and its disk.
    pub sim: SimStore,
    /// The engine (`None` when the store failed to open or the power was cut during it).
    pub streams: Option<Streams>,
    events: Vec<Event>,
    /// Replies to requests the engine did not make.
    pub other_replies: Vec<(ReqId, Result<Reply, Error>)>,
    digest: u64,
}

impl SimStreams {
    /// Opens the store on `disk`, then the engine over it, and runs both recoveries.
    pub fn open(config: Config, streams_config: StreamsConfig, disk: SimDisk) -> SimStreams {
        let mut sim = SimStore::open(config, disk);
        let streams = match sim.open_result() {
            Some(Ok(())) => Some(Streams::open(streams_config, sim.now_ms, &mut sim.store)),
            _ => None,
        };
        let mut s = SimStreams { sim, streams, events: Vec::new(), other_replies: Vec::new(), digest: 0xcbf2_9ce4_8422_2325 };
        s.run();
        s
    }

    /// Opens with a virtual clock starting at `now_ms` (time keeps going across a restart).
    pub fn open_at(config: Config, streams_config: StreamsConfig, disk: SimDisk, now_ms: u64) -> SimStreams {
        let mut sim = SimStore::open(config, disk);
        sim.now_ms = now_ms;
        let streams = match sim.open_result() {
            Some(Ok(())) => Some(Streams::open(streams_config, now_ms, &mut sim.store)),
            _ => None,
        };
        let mut s = SimStreams { sim, streams, events: Vec::new(), other_replies: Vec::new(), digest: 0xcbf2_9ce4_8422_2325 };
        s.run();
        s
    }

    /// The engine. Panics if it did not open (tests only call this after a good open).
    pub fn engine(&mut self) -> &mut Streams {
        self.streams.as_mut().expect("the stream engine opened")
    }

    /// Virtual time.
    pub fn now_ms(&self) -> u64 {
        self.sim.now_ms
    }

    /// Runs a command against the engine and the store, then runs until idle.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut Streams, u64, &mut Store) -> R) -> R {
        let now = self.sim.now_ms;
        let streams = self.streams.as_mut().expect("the stream engine opened");
        let r = f(streams, now, &mut self.sim.store);
        self.run();
        r
    }

    /// Runs a command without carrying out anything it asked of the store (the writes stay
    /// queued: a crash now loses them).
    pub fn submit<R>(&mut self, f: impl FnOnce(&mut Streams, u64, &mut Store) -> R) -> R {
        let now = self.sim.now_ms;
        let streams = self.streams.as_mut().expect("the stream engine opened");
        let r = f(streams, now, &mut self.sim.store);
        self.collect();
        r
    }

    /// Carries out store outputs and routes replies until nothing moves (or the power is cut).
    pub fn run(&mut self) {
        loop {
            self.sim.run();
            self.collect();
            if self.sim.crashed() {
                return;
            }
            let replies = self.sim.take_replies();
            if replies.is_empty() {
                return;
            }
            let now = self.sim.now_ms;
            for (id, r) in replies {
                let mine = match self.streams.as_mut() {
                    Some(s) => s.handle_store_reply(now, &mut self.sim.store, id, &r),
                    None => false,
                };
                if !mine {
                    self.other_replies.push((id, r));
                }
                self.collect();
            }
        }
    }

    fn collect(&mut self) {
        let Some(s) = self.streams.as_mut() else { return };
        while let Some(e) = s.poll() {
            if self.sim.record_digest {
                for b in format!("{e:?}").bytes() {
                    self.digest ^= u64::from(b);
                    self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
                }
            }
            self.events.push(e);
        }
        if self.sim.check_invariants {
            s.check_invariants();
        }
    }

    /// Advances virtual time by `ms` and fires the store's and the engine's timers if due.
    pub fn advance(&mut self, ms: u64) {
        self.sim.advance(ms);
        self.run();
        let now = self.sim.now_ms;
        if let Some(s) = self.streams.as_mut() {
            if s.next_deadline().is_some_and(|d| d <= now) {
                s.handle_timeout(now, &mut self.sim.store);
            }
        }
        self.run();
    }

    /// Takes the events collected so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// True once the crash budget ran out.
    pub fn crashed(&self) -> bool {
        self.sim.crashed()
    }

    /// Cuts the power: returns the disk as recovery will find it.
    pub fn crash(self, tear: bool) -> SimDisk {
        self.sim.crash(tear)
    }

    /// A digest of the store's outputs and the engine's events (set `sim.record_digest`).
    pub fn digest(&self) -> u64 {
        self.digest ^ self.sim.digest().rotate_left(17)
    }
}
