//! The stream crash loop: publish, fetch, ack and purge on two streams on the sim disk, cut the
//! power after a random number of disk requests (unsynced bytes lost, the unsynced tail torn
//! half of the time), reopen store and engine, and check that
//!
//! * every acknowledged publish is there, byte for byte (unless a purge covered it), and every
//!   message there is the one published with that sequence;
//! * every message a consumer was handed before the crash is there (consumers only see durable
//!   messages), and sequences go on after every acknowledged one: none is reused;
//! * no acknowledged ack is undone: once the ack wait has passed, no acknowledged message is
//!   delivered again;
//! * recovery succeeds (a half-written command would break the index check) and the engine's
//!   invariants hold after every step.
//!
//! A second test injects disk write errors instead of power cuts: the engine must heal without
//! a reopen.
//!
//! `STRATA_STREAM_CRASH_POINTS` sets how many crash points run (default 6,000: about 18–25 s in
//! the test profile here); `STRATA_SEED` replays one seed. A failure prints the seed.
use std::collections::{BTreeMap, BTreeSet};
use strata_engine::lsm::config::Durability;
use strata_engine::stream::{AckKind, AckPolicy, ConsumerConfig, Event, Purge, StreamConfig, StreamsConfig, Ticket};
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::stream::SimStreams;
use strata_tests::tiny_config;

/// A and B keep everything; C keeps at most 3 messages for at most 40 ms (discard old), so its
/// deletions (and the mark they write) are cut by crashes too.
const STREAMS: [(&str, &str, &str, AckPolicy); 3] =
    [("A", "a.*", "ca", AckPolicy::Explicit), ("B", "b.>", "cb", AckPolicy::All), ("C", "c.*", "cc", AckPolicy::Explicit)];
const LIMITED: usize = 2;
const ACK_WAIT: u64 = 50;

fn streams_config() -> StreamsConfig {
    // Small recovery pages so reopening takes several scans.
    StreamsConfig { recovery_page: 7, ..StreamsConfig::default() }
}

#[derive(Default)]
struct StreamModel {
    /// Payload published with each sequence in this epoch (lost unacknowledged ones are cut at
    /// recovery, so their sequences may be used again).
    hist: BTreeMap<u64, Vec<u8>>,
    acked: BTreeSet<u64>,
    /// Sequences handed to the consumer.
    delivered: BTreeSet<u64>,
    /// Sequences whose ack (or, with ack-all, a later one's) is acknowledged.
    acks_done: BTreeSet<u64>,
    /// Purges below this were acknowledged / were submitted.
    purged_acked: u64,
    purged_maybe: u64,
}

struct Run {
    rng: Rng,
    models: [StreamModel; 3],
    crash_points: u64,
    n: u64,
}

enum Pending {
    Publish(usize, u64),
    Ack(usize, u64),
    Purge(usize, u64),
    Setup,
}

impl Run {
    fn setup(&mut self, s: &mut SimStreams) {
        for (k, (name, subj, consumer, policy)) in STREAMS.into_iter().enumerate() {
            let mut config = StreamConfig::new(name, &[subj]);
            if k == LIMITED {
                config.max_msgs = 3;
                config.max_age_ms = 40;
            }
            s.with(|e, now, st| e.create_stream(now, st, config)).expect("create");
            let mut c = ConsumerConfig::new(consumer);
            c.ack_policy = policy;
            c.ack_wait_ms = ACK_WAIT;
            c.max_ack_pending = 0;
            s.with(|e, now, st| e.add_consumer(now, st, name, c)).expect("consumer");
        }
        s.take_events();
    }

    fn until_crash(&mut self, mut s: SimStreams) -> SimDisk {
        s.sim.crash_budget = Some(self.rng.below(400));
        let mut tickets: BTreeMap<Ticket, Pending> = BTreeMap::new();
        while !s.crashed() {
            for _ in 0..1 + self.rng.below(4) {
                let k = self.rng.below(3) as usize;
                let (name, _, consumer, _) = STREAMS[k];
                match self.rng.below(12) {
                    0..=6 => {
                        self.n += 1;
                        let subject = format!("{}.{}", name.to_lowercase(), self.rng.below(3));
                        let payload = format!("p{}", self.n).into_bytes();
                        let p = s.submit(|e, now, st| e.publish(now, st, &subject, None, &payload)).expect("publish");
                        self.models[k].hist.insert(p.seq, payload);
                        tickets.insert(p.ticket, Pending::Publish(k, p.seq));
                    }
                    7..=8 => {
                        let batch = 1 + self.rng.below(24) as usize;
                        s.submit(|e, now, st| e.fetch(now, st, name, consumer, batch, 0)).expect("fetch");
                    }
                    9..=10 => {
                        let m = &self.models[k];
                        let Some(&seq) = m.delivered.iter().nth(self.rng.below(m.delivered.len().max(1) as u64) as usize) else { continue };
                        // Refused when already acknowledged (or purged and given up).
                        if let Ok(t) = s.submit(|e, now, st| e.ack(now, st, name, consumer, seq, AckKind::Ack)) {
                            tickets.insert(t, Pending::Ack(k, seq));
                        }
                    }
                    _ => {
                        if self.rng.chance(0.3) {
                            let last = s.engine().stream_info(name).expect("info").last_seq;
                            let below = 1 + self.rng.below(last + 1);
                            let purge = Purge { subject: None, below_seq: Some(below) };
                            let (t, _) = s.submit(|e, now, st| e.purge(now, st, name, &purge)).expect("purge");
                            self.models[k].purged_maybe = self.models[k].purged_maybe.max(below);
                            tickets.insert(t, Pending::Purge(k, below));
                        } else {
                            tickets.insert(Ticket(u64::MAX), Pending::Setup);
                        }
                    }
                }
            }
            s.run();
            let ms = self.rng.below(30);
            s.advance(ms);
            for ev in s.take_events() {
                match ev {
                    Event::Completed { ticket, result } => {
                        result.expect("no faults are injected");
                        match tickets.remove(&ticket) {
                            Some(Pending::Publish(k, seq)) => {
                                self.models[k].acked.insert(seq);
                            }
                            Some(Pending::Ack(k, seq)) => {
                                let m = &mut self.models[k];
                                if STREAMS[k].3 == AckPolicy::All {
                                    let below: Vec<u64> = m.delivered.range(..=seq).copied().collect();
                                    m.acks_done.extend(below);
                                } else {
                                    m.acks_done.insert(seq);
                                }
                            }
                            Some(Pending::Purge(k, below)) => {
                                self.models[k].purged_acked = self.models[k].purged_acked.max(below);
                            }
                            _ => {}
                        }
                    }
                    Event::Messages { messages, .. } => {
                        for d in messages {
                            let k = match d.message.subject.as_bytes()[0] {
                                b'a' => 0,
                                b'b' => 1,
                                _ => 2,
                            };
                            self.models[k].delivered.insert(d.message.seq);
                        }
                    }
                    _ => {}
                }
            }
            tickets.remove(&Ticket(u64::MAX));
        }
        self.crash_points += 1;
        let tear = self.rng.chance(0.5);
        s.crash(tear)
    }

    fn recover_and_check(&mut self, disk: SimDisk, seed: u64, now: u64) -> SimStreams {
        let mut s = SimStreams::open_at(tiny_config(Durability::SyncEachWrite), streams_config(), disk, now);
        let opened = s.take_events();
        assert!(matches!(opened.first(), Some(Event::Opened(Ok(())))), "seed {seed}: recovery: {opened:?}");
        for (k, (name, _, _, _)) in STREAMS.into_iter().enumerate() {
            let info = s.engine().stream_info(name).unwrap_or_else(|e| panic!("seed {seed}: stream {name}: {e}"));
            let m = &mut self.models[k];
            let max_acked = m.acked.iter().next_back().copied().unwrap_or(0);
            let max_delivered = m.delivered.iter().next_back().copied().unwrap_or(0);
            assert!(info.last_seq >= max_acked, "seed {seed}: {name} last seq {} below acknowledged {max_acked}", info.last_seq);
            assert!(info.last_seq >= max_delivered, "seed {seed}: {name} last seq {} below delivered {max_delivered}", info.last_seq);
            for &seq in m.acked.iter().chain(m.delivered.iter()) {
                let got = s.engine().get(name, seq).ok();
                if k == LIMITED {
                    // Limits may have deleted it; if it is there, it must be intact (below).
                } else if seq < m.purged_acked {
                    assert!(got.is_none(), "seed {seed}: {name} {seq} survived an acknowledged purge");
                } else if seq >= m.purged_maybe {
                    let got = got.unwrap_or_else(|| panic!("seed {seed}: {name} lost acknowledged or delivered message {seq}"));
                    assert_eq!(&*got.payload, &m.hist[&seq][..], "seed {seed}: {name} {seq}");
                }
            }
            for seq in info.first_seq..=info.last_seq {
                if let Ok(got) = s.engine().get(name, seq) {
                    assert_eq!(Some(&got.payload.to_vec()), m.hist.get(&seq), "seed {seed}: {name} {seq} holds what was never published with it");
                }
            }
            // The lost tail is forgotten: those sequences may be used again.
            m.hist.retain(|&q, _| q <= info.last_seq);
            m.acked.retain(|&q| q <= info.last_seq);
            m.delivered.retain(|&q| q <= info.last_seq);
        }
        // No acknowledged ack is undone: past the ack wait, nothing acknowledged comes back.
        s.advance(ACK_WAIT + 1);
        s.take_events();
        for (k, (name, _, consumer, _)) in STREAMS.into_iter().enumerate() {
            s.with(|e, now, st| e.fetch(now, st, name, consumer, 100_000, 0)).expect("fetch");
            for ev in s.take_events() {
                if let Event::Messages { messages, .. } = ev {
                    for d in messages {
                        let m = &mut self.models[k];
                        assert!(!m.acks_done.contains(&d.message.seq), "seed {seed}: {name} acknowledged ack of {} undone", d.message.seq);
                        m.delivered.insert(d.message.seq);
                    }
                }
            }
        }
        s
    }
}

fn run_seed(seed: u64, crashes: u64) -> u64 {
    let mut run = Run { rng: Rng::new(seed), models: Default::default(), crash_points: 0, n: 0 };
    let mut s = SimStreams::open(tiny_config(Durability::SyncEachWrite), streams_config(), SimDisk::new(seed));
    s.take_events();
    run.setup(&mut s);
    for _ in 0..crashes {
        let now = s.now_ms();
        let disk = run.until_crash(s);
        s = run.recover_and_check(disk, seed, now + 1);
    }
    run.crash_points
}

#[test]
fn acknowledged_publishes_and_acks_survive_every_crash_point() {
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_seed(one.parse().expect("STRATA_SEED is a number"), 5);
        return;
    }
    let target: u64 = std::env::var("STRATA_STREAM_CRASH_POINTS").ok().and_then(|s| s.parse().ok()).unwrap_or(6_000);
    let mut points = 0;
    let mut seed = 0;
    let start = std::time::Instant::now();
    while points < target {
        points += run_seed(seed, 5);
        seed += 1;
    }
    eprintln!("stream crash points: {points} over {seed} seeds in {:.1?}", start.elapsed());
}

/// Disk write errors, no reopen: 5% of appends and syncs fail while 1–4 publishes are in flight
/// at once on two streams (one keeping 3 messages, so publishes also delete). A failed write
/// fails its publishes (and any sent behind it), the engine rebuilds its state from the store by
/// itself, and once the disk works again publishes succeed; every acknowledged publish and ack
/// is kept, no failed publish is stored, and a reopen afterwards finds the same state.
#[test]
fn write_errors_heal_the_engine_without_a_reopen() {
    use strata_engine::stream::{PublishError, Unavailable};
    let (mut failures, mut rebuilds, mut refused) = (0usize, 0u64, 0usize);
    for seed in 0..30 {
        let mut rng = Rng::new(seed);
        let config = tiny_config(Durability::SyncEachWrite);
        let mut s = SimStreams::open(config.clone(), streams_config(), SimDisk::new(seed));
        s.take_events();
        s.with(|e, now, st| e.create_stream(now, st, StreamConfig::new("A", &["a.*"]))).expect("create");
        s.with(|e, now, st| e.add_consumer(now, st, "A", ConsumerConfig::new("c"))).expect("consumer");
        let mut limited = StreamConfig::new("L", &["l.*"]);
        limited.max_msgs = 3;
        s.with(|e, now, st| e.create_stream(now, st, limited)).expect("create");
        s.take_events();
        let mut h = Healing::default();
        for epoch in 0..4 {
            s.sim.disk.faults.write_error_rate = 0.05;
            for _ in 0..60 {
                let mut pubs = Vec::new();
                for _ in 0..1 + rng.below(4) {
                    h.n += 1;
                    let k = rng.below(2) as usize;
                    let subject = format!("{}.{}", ["a", "l"][k], rng.below(3));
                    let payload = format!("e{epoch}-{}", h.n).into_bytes();
                    match s.submit(|e, now, st| e.publish(now, st, &subject, None, &payload)) {
                        Ok(p) => pubs.push((k, p, payload)),
                        // Rebuilding after a failure: refused, nothing stored.
                        Err(PublishError::Unavailable(Unavailable::Failed(_))) => refused += 1,
                        Err(e) => panic!("seed {seed}: {e}"),
                    }
                }
                if rng.chance(0.3) {
                    let _ = s.submit(|e, now, st| e.fetch(now, st, "A", "c", 2, 0));
                }
                s.run();
                s.advance(rng.below(120));
                let mut fetched = Vec::new();
                for ev in s.take_events() {
                    match ev {
                        Event::Completed { ticket, result } => {
                            if let Some((k, p, payload)) = pubs.iter().find(|x| x.1.ticket == ticket) {
                                match result {
                                    Ok(()) => drop(h.acked.insert((*k, p.seq), payload.clone())),
                                    Err(_) => h.failed.push((*k, p.seq, payload.clone())),
                                }
                            }
                        }
                        Event::Messages { messages, .. } => fetched.extend(messages.iter().map(|d| d.message.seq)),
                        _ => {}
                    }
                }
                let mut acks = BTreeMap::new();
                for seq in fetched {
                    if let Ok(t) = s.submit(|e, now, st| e.ack(now, st, "A", "c", seq, AckKind::Ack)) {
                        acks.insert(t, seq);
                    }
                }
                s.run();
                for ev in s.take_events() {
                    if let Event::Completed { ticket, result: Ok(()) } = ev {
                        if let Some(seq) = acks.remove(&ticket) {
                            h.acked_acks.insert(seq);
                        }
                    }
                }
            }
            s.sim.disk.faults.write_error_rate = 0.0;
            // No reopen: the engine is back by itself once the disk works.
            for _ in 0..5 {
                if s.engine().is_open() {
                    break;
                }
                s.advance(200);
            }
            assert!(s.engine().is_open(), "seed {seed}: the engine did not come back");
            let p = s.with(|e, now, st| e.publish(now, st, "a.after", None, b"after")).expect("publish after the disk recovered");
            let done = s.take_events();
            assert!(
                done.iter().any(|ev| matches!(ev, Event::Completed { ticket, result: Ok(()) } if *ticket == p.ticket)),
                "seed {seed}: {done:?}"
            );
            h.acked.insert((0, p.seq), b"after".to_vec());
            h.check(&mut s, seed);
        }
        failures += h.failed.len();
        rebuilds += s.engine().rebuilds();
        // The store holds whole commands only: a reopen passes recovery's checks and agrees.
        let now = s.now_ms();
        let disk = s.crash(false);
        s = SimStreams::open_at(config.clone(), streams_config(), disk, now);
        assert!(matches!(s.take_events().first(), Some(Event::Opened(Ok(())))), "seed {seed}: reopen");
        h.check(&mut s, seed);
    }
    assert!(failures > 0 && rebuilds > 0, "no write failed: the test injected nothing");
    eprintln!("failed publishes: {failures}, rebuilds: {rebuilds}, refused while rebuilding: {refused}");
}

#[derive(Default)]
struct Healing {
    n: u64,
    /// (stream index, seq) -> payload of every acknowledged publish (0 = A, 1 = L).
    acked: BTreeMap<(usize, u64), Vec<u8>>,
    failed: Vec<(usize, u64, Vec<u8>)>,
    acked_acks: BTreeSet<u64>,
}

impl Healing {
    fn check(&self, s: &mut SimStreams, seed: u64) {
        let names = ["A", "L"];
        for (&(k, seq), payload) in &self.acked {
            match s.engine().get(names[k], seq) {
                Ok(m) => assert_eq!(&m.payload[..], &payload[..], "seed {seed}: {}:{seq}", names[k]),
                // L keeps three messages: older ones go, but its sequence has passed them.
                Err(_) if k == 1 => assert!(s.engine().stream_info("L").expect("L").last_seq >= seq),
                Err(e) => panic!("seed {seed}: acknowledged A:{seq} lost: {e}"),
            }
        }
        for (k, seq, payload) in &self.failed {
            // The sequence may have been used again by a later publish, never for this payload.
            if let Ok(m) = s.engine().get(names[*k], *seq) {
                assert_ne!(&m.payload[..], &payload[..], "seed {seed}: failed publish {}:{seq} stored", names[*k]);
            }
        }
        // Past the ack wait, nothing whose ack was acknowledged is delivered again.
        s.advance(30_001);
        let f = s.with(|e, now, st| e.fetch(now, st, "A", "c", 100_000, 0)).expect("fetch");
        for ev in s.take_events() {
            if let Event::Messages { fetch, messages } = ev {
                assert_eq!(fetch, f);
                for d in messages {
                    assert!(!self.acked_acks.contains(&d.message.seq), "seed {seed}: acknowledged ack of {} undone", d.message.seq);
                }
            }
        }
    }
}
