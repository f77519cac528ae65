//! The stream engine against a plain reference over random operation sequences on the sim
//! disk: two streams with random limits (count, bytes, age, discard old or new, duplicate
//! window, message size) and consumers with random ack and deliver policies, filters, ack
//! waits, max deliveries and max ack pending; publishes, purges, fetches, acks (ack, nak,
//! term), gets, last-by-subject, time passing, and clean restarts. Every result and, after
//! every step, every message and every consumer's position must agree with the reference,
//! which keeps messages in a `Vec` and decides everything by linear scans.
//!
//! A second test runs seeds twice and compares digests of every store output and engine event,
//! and the files on disk (determinism; a restart re-opens in between, so restored state is
//! included).
//!
//! `STRATA_STREAM_MODEL_CASES` sets the number of seeds (default 2,000); `STRATA_SEED` replays one;
//! `STRATA_STREAM_TRACE=1` prints every step.
use std::collections::BTreeMap;
use strata_engine::lsm::config::Durability;
use strata_engine::stream::*;
use strata_sim::disk::SimDisk;
use strata_sim::rng::Rng;
use strata_sim::stream::SimStreams;
use strata_tests::tiny_config;

const SUBJECTS: [&str; 6] = ["a.x", "a.y", "b.x", "b.y.z", "c.q", "a"];
const FILTERS: [&str; 4] = ["a.x", "a.*", "b.>", "b.*"];

#[derive(Clone, Debug)]
struct M {
    seq: u64,
    subject: String,
    ts: u64,
    msg_id: Option<String>,
    payload: Vec<u8>,
}

#[derive(Clone, Debug)]
struct P {
    deliveries: u32,
    at: u64,
    nak: bool,
}

#[derive(Debug)]
struct C {
    cfg: ConsumerConfig,
    next: u64,
    lps_until: u64,
    delivered: u64,
    pending: BTreeMap<u64, P>,
}

#[derive(Debug)]
struct S {
    cfg: StreamConfig,
    msgs: Vec<M>,
    last_seq: u64,
    last_ts: u64,
    dedup: BTreeMap<String, (u64, u64)>,
    consumers: BTreeMap<String, C>,
}

fn matches(p: &str, s: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (p.split('.').collect(), s.split('.').collect());
    for (i, t) in p.iter().enumerate() {
        if *t == ">" {
            return s.len() > i;
        }
        if i >= s.len() || (*t != "*" && *t != s[i]) {
            return false;
        }
    }
    p.len() == s.len()
}

impl S {
    fn bytes(&self) -> u64 {
        self.msgs.iter().map(|m| (m.subject.len() + m.payload.len()) as u64).sum()
    }
    fn expire(&mut self, now: u64) {
        let c = self.cfg.clone();
        while let Some(m) = self.msgs.first() {
            let old = c.max_age_ms > 0 && m.ts + c.max_age_ms <= now;
            let over = c.discard == Discard::Old
                && ((c.max_msgs > 0 && self.msgs.len() as u64 > c.max_msgs) || (c.max_bytes > 0 && self.bytes() > c.max_bytes));
            if !(old || over) {
                break;
            }
            self.msgs.remove(0);
        }
    }
    fn is_last_of_subject(&self, m: &M) -> bool {
        self.msgs.iter().rev().find(|x| x.subject == m.subject).map(|x| x.seq) == Some(m.seq)
    }
}

impl C {
    fn passes(&self, subject: &str) -> bool {
        self.cfg.filter_subject.as_deref().is_none_or(|f| matches(f, subject))
    }
}

fn fetch_model(s: &mut S, name: &str, now: u64, batch: usize) -> (Vec<(u64, u32, u64)>, Vec<u64>) {
    let msgs = s.msgs.clone();
    let lasts: Vec<bool> = msgs.iter().map(|m| s.is_last_of_subject(m)).collect();
    let c = s.consumers.get_mut(name).unwrap();
    let mut out = Vec::new();
    let mut gave_up = Vec::new();
    let due: Vec<u64> = c.pending.iter().filter(|(_, p)| p.nak || p.at + c.cfg.ack_wait_ms <= now).map(|(s, _)| *s).collect();
    for seq in due {
        if out.len() >= batch {
            break;
        }
        if !msgs.iter().any(|m| m.seq == seq) {
            c.pending.remove(&seq);
            continue;
        }
        let p = c.pending.get_mut(&seq).unwrap();
        if c.cfg.max_deliver > 0 && p.deliveries >= c.cfg.max_deliver {
            c.pending.remove(&seq);
            gave_up.push(seq);
            continue;
        }
        p.deliveries += 1;
        p.at = now;
        p.nak = false;
        c.delivered += 1;
        out.push((seq, p.deliveries, c.delivered));
    }
    while out.len() < batch {
        if c.cfg.ack_policy != AckPolicy::None && c.cfg.max_ack_pending > 0 && c.pending.len() >= c.cfg.max_ack_pending as usize {
            break;
        }
        let found = msgs
            .iter()
            .zip(&lasts)
            .find(|(m, last)| m.seq >= c.next && c.passes(&m.subject) && (m.seq >= c.lps_until || **last))
            .map(|(m, _)| m.seq);
        let Some(seq) = found else {
            c.next = c.next.max(s.last_seq + 1);
            break;
        };
        c.next = seq + 1;
        c.delivered += 1;
        if c.cfg.ack_policy != AckPolicy::None {
            c.pending.insert(seq, P { deliveries: 1, at: now, nak: false });
        }
        out.push((seq, 1, c.delivered));
    }
    (out, gave_up)
}

struct Case {
    rng: Rng,
    sim: Option<SimStreams>,
    model: BTreeMap<String, S>,
    now: u64,
    seed: u64,
    /// Digests of the runs before each restart.
    digest: u64,
}

impl Case {
    fn s(&mut self) -> &mut SimStreams {
        self.sim.as_mut().unwrap()
    }

    fn random_stream(&mut self, name: &str, subject: &str) -> StreamConfig {
        let r = &mut self.rng;
        let mut c = StreamConfig::new(name, &[subject]);
        c.max_msgs = if r.chance(0.5) { 1 + r.below(6) } else { 0 };
        c.max_bytes = if r.chance(0.3) { 10 + r.below(40) } else { 0 };
        c.max_age_ms = if r.chance(0.3) { 20 + r.below(100) } else { 0 };
        c.max_msg_bytes = if r.chance(0.3) { 1 + r.below(10) } else { 0 };
        c.duplicate_window_ms = if r.chance(0.5) { 1 + r.below(100) } else { 0 };
        c.discard = if r.chance(0.3) { Discard::New } else { Discard::Old };
        c
    }

    fn random_consumer(&mut self, name: &str) -> ConsumerConfig {
        let r = &mut self.rng;
        let mut c = ConsumerConfig::new(name);
        c.filter_subject = if r.chance(0.4) { Some(FILTERS[r.below(4) as usize].into()) } else { None };
        c.ack_policy = [AckPolicy::Explicit, AckPolicy::All, AckPolicy::None][r.below(3) as usize];
        c.deliver_policy = match r.below(6) {
            0 => DeliverPolicy::All,
            1 => DeliverPolicy::Last,
            2 => DeliverPolicy::New,
            3 => DeliverPolicy::ByStartSequence(r.below(8)),
            4 => DeliverPolicy::ByStartTime(r.below(200)),
            _ => DeliverPolicy::LastPerSubject,
        };
        c.ack_wait_ms = 1 + r.below(60);
        c.max_deliver = r.below(4) as u32;
        c.max_ack_pending = r.below(5) as u32;
        c
    }

    fn add_consumer_model(&mut self, stream: &str, cfg: ConsumerConfig) {
        let s = self.model.get_mut(stream).unwrap();
        let first = s.msgs.first().map_or(s.last_seq + 1, |m| m.seq);
        let mut lps_until = 0;
        let f = cfg.filter_subject.clone();
        let pass = |subj: &str| f.as_deref().is_none_or(|f| matches(f, subj));
        let next = match cfg.deliver_policy {
            DeliverPolicy::All => first,
            DeliverPolicy::New => s.last_seq + 1,
            DeliverPolicy::ByStartSequence(q) => q.max(1),
            DeliverPolicy::ByStartTime(t) => s.msgs.iter().find(|m| m.ts >= t).map_or(s.last_seq + 1, |m| m.seq),
            DeliverPolicy::Last => s.msgs.iter().rev().find(|m| pass(&m.subject)).map_or(s.last_seq + 1, |m| m.seq),
            DeliverPolicy::LastPerSubject => {
                lps_until = s.last_seq + 1;
                s.msgs.iter().filter(|m| pass(&m.subject) && s.is_last_of_subject(m)).map(|m| m.seq).min().unwrap_or(s.last_seq + 1)
            }
        };
        s.consumers.insert(cfg.name.clone(), C { cfg, next, lps_until, delivered: 0, pending: BTreeMap::new() });
    }

    fn setup(&mut self) {
        for (name, subj) in [("S1", "a.*"), ("S2", "b.>")] {
            let cfg = self.random_stream(name, subj);
            self.s().with(|e, now, st| e.create_stream(now, st, cfg.clone())).unwrap();
            self.model.insert(name.into(), S { cfg, msgs: Vec::new(), last_seq: 0, last_ts: 0, dedup: BTreeMap::new(), consumers: BTreeMap::new() });
            for cn in ["c1", "c2"] {
                let cfg = self.random_consumer(cn);
                self.s().with(|e, now, st| e.add_consumer(now, st, name, cfg.clone())).unwrap();
                self.add_consumer_model(name, cfg);
            }
        }
        self.s().take_events();
    }

    fn publish(&mut self) {
        let subject = SUBJECTS[self.rng.below(6) as usize];
        let id = if self.rng.chance(0.4) { Some(format!("m{}", self.rng.below(3))) } else { None };
        let payload = vec![b'x'; self.rng.below(12) as usize];
        let got = self.s().with(|e, now, st| e.publish(now, st, subject, id.as_deref(), &payload));
        let now = self.now;
        let name = if matches("a.*", subject) { "S1" } else if matches("b.>", subject) { "S2" } else { "" };
        let want: Result<(u64, bool), &str> = (|| {
            let s = self.model.get_mut(name).ok_or("no stream")?;
            let max = if s.cfg.max_msg_bytes == 0 { 1 << 20 } else { s.cfg.max_msg_bytes };
            let size = (subject.len() + payload.len()) as u64;
            if payload.len() as u64 > max || (s.cfg.max_bytes > 0 && size > s.cfg.max_bytes) {
                return Err("too large");
            }
            if let (Some(id), w) = (&id, s.cfg.duplicate_window_ms) {
                if w > 0 {
                    if let Some(&(seq, ts)) = s.dedup.get(id) {
                        if ts + w > now {
                            return Ok((seq, true));
                        }
                    }
                }
            }
            if s.cfg.discard == Discard::New
                && ((s.cfg.max_msgs > 0 && s.msgs.len() as u64 >= s.cfg.max_msgs) || (s.cfg.max_bytes > 0 && s.bytes() + size > s.cfg.max_bytes))
            {
                return Err("full");
            }
            s.last_seq += 1;
            s.last_ts = s.last_ts.max(now);
            let m = M { seq: s.last_seq, subject: subject.into(), ts: s.last_ts, msg_id: id.clone(), payload: payload.clone() };
            if let (Some(id), true) = (&id, s.cfg.duplicate_window_ms > 0) {
                s.dedup.insert(id.clone(), (m.seq, m.ts));
            }
            s.msgs.push(m);
            s.expire(now);
            Ok((s.last_seq, false))
        })();
        match (&got, want) {
            (Ok(p), Ok((seq, dup))) => assert_eq!((p.seq, p.duplicate), (seq, dup), "seed {}: publish {subject}", self.seed),
            (Err(PublishError::NoStream(_)), Err("no stream"))
            | (Err(PublishError::MessageTooLarge { .. }), Err("too large"))
            | (Err(PublishError::LimitReached { .. }), Err("full")) => {}
            (g, w) => panic!("seed {}: publish {subject} {id:?} {} bytes: got {g:?}, want {w:?}", self.seed, payload.len()),
        }
    }

    fn fetch(&mut self, stream: &str, consumer: &str) {
        let batch = 1 + self.rng.below(5) as usize;
        self.s().with(|e, now, st| e.fetch(now, st, stream, consumer, batch, 0)).unwrap();
        let mut got = Vec::new();
        let mut gave = Vec::new();
        for ev in self.s().take_events() {
            match ev {
                Event::Messages { messages, .. } => got.extend(messages.iter().map(|d| (d.message.seq, d.deliveries, d.consumer_seq))),
                Event::MaxDeliveries { seq, .. } => gave.push(seq),
                _ => {}
            }
        }
        let now = self.now;
        let (want, want_gave) = fetch_model(self.model.get_mut(stream).unwrap(), consumer, now, batch);
        assert_eq!(got, want, "seed {}: fetch {stream}/{consumer} batch {batch} at {now}", self.seed);
        assert_eq!(gave, want_gave, "seed {}: gave up", self.seed);
    }

    fn ack(&mut self, stream: &str, consumer: &str) {
        let seq = self.rng.below(12);
        let kind = [AckKind::Ack, AckKind::Ack, AckKind::Nak, AckKind::Term][self.rng.below(4) as usize];
        let got = self.s().with(|e, now, st| e.ack(now, st, stream, consumer, seq, kind)).map(|_| ());
        let c = self.model.get_mut(stream).unwrap().consumers.get_mut(consumer).unwrap();
        let want = if c.cfg.ack_policy == AckPolicy::None {
            Err(ConsumerError::AckNone)
        } else if !(c.pending.contains_key(&seq)
            || (c.cfg.ack_policy == AckPolicy::All && kind == AckKind::Ack && c.pending.keys().any(|&s| s <= seq)))
        {
            Err(ConsumerError::NotPending { seq })
        } else {
            match kind {
                AckKind::Ack if c.cfg.ack_policy == AckPolicy::All => c.pending.retain(|&s, _| s > seq),
                AckKind::Ack | AckKind::Term => {
                    c.pending.remove(&seq);
                }
                AckKind::Nak => c.pending.get_mut(&seq).unwrap().nak = true,
            }
            Ok(())
        };
        assert_eq!(got, want, "seed {}: ack {stream}/{consumer} {seq} {kind:?}", self.seed);
        self.s().take_events();
    }

    fn purge(&mut self, stream: &str) {
        let subject = if self.rng.chance(0.5) { Some(FILTERS[self.rng.below(4) as usize].to_string()) } else { None };
        let below = if self.rng.chance(0.5) { Some(self.rng.below(10)) } else { None };
        let p = Purge { subject: subject.clone(), below_seq: below };
        let (_, n) = self.s().with(|e, now, st| e.purge(now, st, stream, &p)).unwrap();
        let s = self.model.get_mut(stream).unwrap();
        let before = s.msgs.len();
        s.msgs.retain(|m| !(m.seq < below.unwrap_or(u64::MAX) && subject.as_deref().is_none_or(|f| matches(f, &m.subject))));
        assert_eq!(n, (before - s.msgs.len()) as u64, "seed {}: purge", self.seed);
        self.s().take_events();
    }

    fn advance(&mut self) {
        let ms = self.rng.below(40);
        self.now += ms;
        self.s().advance(ms);
        let now = self.now;
        for s in self.model.values_mut() {
            s.expire(now);
            for c in s.consumers.values_mut() {
                let wait = c.cfg.ack_wait_ms;
                let md = c.cfg.max_deliver;
                c.pending.retain(|_, p| !(md > 0 && p.deliveries >= md && p.at + wait <= now));
            }
        }
        self.s().take_events();
    }

    fn restart(&mut self) {
        let sim = self.sim.take().unwrap();
        self.digest = self.digest.rotate_left(7) ^ sim.digest();
        let disk = sim.crash(false);
        self.sim = Some(SimStreams::open_at(tiny_config(Durability::SyncEachWrite), StreamsConfig::default(), disk, self.now));
        self.s().sim.record_digest = true;
        assert!(matches!(self.s().take_events().first(), Some(Event::Opened(Ok(())))));
        for s in self.model.values_mut() {
            s.dedup.clear();
            // Only the ids of stored messages survive a restart.
            if s.cfg.duplicate_window_ms > 0 {
                for m in &s.msgs {
                    if let Some(id) = &m.msg_id {
                        s.dedup.insert(id.clone(), (m.seq, m.ts));
                    }
                }
            }
        }
    }

    fn compare(&mut self) {
        let seed = self.seed;
        let names: Vec<String> = self.model.keys().cloned().collect();
        for name in names {
            let info = self.s().engine().stream_info(&name).unwrap();
            let s = &self.model[&name];
            assert_eq!(
                (info.msgs, info.bytes, info.first_seq, info.last_seq),
                (s.msgs.len() as u64, s.bytes(), s.msgs.first().map_or(s.last_seq + 1, |m| m.seq), s.last_seq),
                "seed {seed}: stream {name}"
            );
            let msgs = s.msgs.clone();
            for m in &msgs {
                let got = self.s().engine().get(&name, m.seq).unwrap();
                assert_eq!((&*got.subject, got.ts_ms, &got.payload[..]), (&m.subject[..], m.ts, &m.payload[..]), "seed {seed}");
            }
            for subj in SUBJECTS {
                let got = self.s().engine().last_by_subject(&name, subj).ok().map(|m| m.seq);
                let want = msgs.iter().rev().find(|m| m.subject == subj).map(|m| m.seq);
                assert_eq!(got, want, "seed {seed}: last {name} {subj}");
            }
            let cons: Vec<(String, u64, u64, u64, u64)> = self.model[&name]
                .consumers
                .values()
                .map(|c| (c.cfg.name.clone(), c.next, c.delivered, c.pending.len() as u64, c.pending.keys().next().map_or(c.next.saturating_sub(1), |s| s - 1)))
                .collect();
            for (cn, next, delivered, pending, floor) in cons {
                let i = self.s().engine().consumer_info(&name, &cn).unwrap();
                assert_eq!((i.next_seq, i.delivered, i.ack_pending, i.ack_floor), (next, delivered, pending, floor), "seed {seed}: consumer {name}/{cn}");
            }
        }
    }
}

fn run_case(seed: u64) -> (u64, Vec<(strata_engine::lsm::io::FileName, usize)>) {
    let mut c = Case {
        rng: Rng::new(seed),
        sim: Some(SimStreams::open(tiny_config(Durability::SyncEachWrite), StreamsConfig::default(), SimDisk::new(seed))),
        model: BTreeMap::new(),
        now: 0,
        seed,
        digest: 0,
    };
    c.s().take_events();
    c.s().sim.record_digest = true;
    c.setup();
    for _ in 0..150 {
        let stream = if c.rng.chance(0.5) { "S1" } else { "S2" };
        let consumer = if c.rng.chance(0.5) { "c1" } else { "c2" };
        let op = c.rng.below(20);
        if std::env::var_os("STRATA_STREAM_TRACE").is_some() {
            eprintln!("now {} op {op} {stream}/{consumer} {:?}", c.now, c.model.get(stream).map(|s| (s.msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), &s.consumers[consumer])));
        }
        match op {
            0..=7 => c.publish(),
            8..=10 => c.fetch(stream, consumer),
            11..=13 => c.ack(stream, consumer),
            14 => c.purge(stream),
            15 if c.rng.chance(0.3) => {
                if std::env::var_os("STRATA_STREAM_TRACE").is_some() {
                    eprintln!("  restart");
                }
                c.restart()
            }
            _ => c.advance(),
        }
        if std::env::var_os("STRATA_STREAM_TRACE").is_some() {
            eprintln!("  engine {:?}", c.s().engine().consumer_info(stream, consumer));
        }
        c.compare();
    }
    let s = c.sim.take().unwrap();
    (c.digest.rotate_left(7) ^ s.digest(), s.sim.disk.files())
}

#[test]
fn streams_agree_with_the_reference() {
    if let Ok(one) = std::env::var("STRATA_SEED") {
        run_case(one.parse().expect("STRATA_SEED is a number"));
        return;
    }
    let cases: u64 = std::env::var("STRATA_STREAM_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    for seed in 0..cases {
        run_case(seed);
    }
}

/// Same seed, same run: every store output, every engine event and the files on disk agree.
#[test]
fn same_seed_same_run() {
    for seed in [3, 17, 99] {
        let a = run_case(seed);
        let b = run_case(seed);
        assert_eq!(a, b, "seed {seed}");
        assert_ne!(a.0, run_case(seed + 1000).0, "different seeds should differ");
    }
}
