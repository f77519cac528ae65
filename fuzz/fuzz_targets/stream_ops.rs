//! The stream engine's whole input path driven by arbitrary bytes over the sim disk: stream
//! create/update/delete with garbage names, subjects and limits; publishes on garbage subjects
//! with message ids and payloads; purges; consumers with garbage names, filters and policies;
//! fetches with expiry, acks of any sequence and kind; time; clean and torn power cuts; and raw
//! garbage written under the `s` namespace before a reopen (recovery must answer with a typed
//! error, never a panic). The sim driver checks the engine's invariants after every step.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Config;
use strata_engine::lsm::store::Request;
use strata_engine::stream::*;
use strata_sim::disk::SimDisk;
use strata_sim::stream::SimStreams;

const WORDS: [&str; 10] = ["a", "b", "*", ">", "", " ", "S", "x-y", "é", "c.d"];

struct Input<'a>(&'a [u8]);
impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn text(&mut self) -> String {
        let n = self.byte() % 4;
        (0..=n).map(|_| WORDS[(self.byte() % 10) as usize]).collect::<Vec<_>>().join(".")
    }
    fn name(&mut self) -> String {
        ["S", "T", "", "bad.name", "U"][(self.byte() % 5) as usize].to_string()
    }
    fn small(&mut self) -> u64 {
        u64::from(self.byte() % 8)
    }
}

fn config() -> Config {
    Config { memtable_bytes: 4 << 10, ..Config::default() }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let streams_config = StreamsConfig { max_payload_bytes: 64, max_streams: 3, max_consumers_per_stream: 3, max_pulls: 4, recovery_page: 3, ..StreamsConfig::default() };
    let mut s = SimStreams::open(config(), streams_config, SimDisk::new(u64::from(input.byte())));
    let mut steps = 0;
    while !input.0.is_empty() && steps < 300 {
        steps += 1;
        if s.streams.as_ref().is_none_or(|e| !e.is_open()) {
            return;
        }
        let op = input.byte();
        match op % 12 {
            0 | 1 => {
                let mut c = StreamConfig::new(&input.name(), &[]);
                for _ in 0..input.byte() % 3 {
                    c.subjects.push(input.text());
                }
                c.max_msgs = input.small();
                c.max_bytes = input.small() * 8;
                c.max_age_ms = input.small() * 5;
                c.max_msg_bytes = input.small() * 20;
                c.duplicate_window_ms = input.small() * 5;
                c.discard = if input.byte() % 2 == 0 { Discard::Old } else { Discard::New };
                let update = op % 12 == 1;
                let _ = s.with(|e, now, st| if update { e.update_stream(now, st, c) } else { e.create_stream(now, st, c) });
            }
            2 => {
                let n = input.name();
                let _ = s.with(|e, now, st| e.delete_stream(now, st, &n));
            }
            3 | 4 => {
                let subject = input.text();
                let id = match input.byte() % 4 {
                    0 => Some("m".to_string()),
                    1 => Some(String::new()),
                    _ => None,
                };
                let payload = vec![7u8; usize::from(input.byte() % 80)];
                let _ = s.with(|e, now, st| e.publish(now, st, &subject, id.as_deref(), &payload));
            }
            5 => {
                let n = input.name();
                let p = Purge { subject: (input.byte() % 2 == 0).then(|| input.text()), below_seq: (input.byte() % 2 == 0).then(|| input.small()) };
                let _ = s.with(|e, now, st| e.purge(now, st, &n, &p));
            }
            6 => {
                let stream = input.name();
                let mut c = ConsumerConfig::new(&input.name());
                c.filter_subject = (input.byte() % 2 == 0).then(|| input.text());
                c.ack_policy = [AckPolicy::Explicit, AckPolicy::All, AckPolicy::None][(input.byte() % 3) as usize];
                c.deliver_policy = match input.byte() % 6 {
                    0 => DeliverPolicy::All,
                    1 => DeliverPolicy::Last,
                    2 => DeliverPolicy::New,
                    3 => DeliverPolicy::ByStartSequence(input.small()),
                    4 => DeliverPolicy::ByStartTime(input.small() * 10),
                    _ => DeliverPolicy::LastPerSubject,
                };
                c.ack_wait_ms = input.small() * 3;
                c.max_deliver = input.small() as u32;
                c.max_ack_pending = input.small() as u32;
                let _ = s.with(|e, now, st| e.add_consumer(now, st, &stream, c));
            }
            7 => {
                let (stream, consumer) = (input.name(), input.name());
                let (batch, expires) = (input.small() as usize, input.small() * 7);
                let _ = s.with(|e, now, st| e.fetch(now, st, &stream, &consumer, batch, expires));
            }
            8 => {
                let (stream, consumer) = (input.name(), input.name());
                let seq = input.small();
                let kind = [AckKind::Ack, AckKind::Nak, AckKind::Term][(input.byte() % 3) as usize];
                let _ = s.with(|e, now, st| e.ack(now, st, &stream, &consumer, seq, kind));
            }
            9 => {
                let (stream, consumer) = (input.name(), input.name());
                if input.byte() % 2 == 0 {
                    let _ = s.with(|e, now, st| e.delete_consumer(now, st, &stream, &consumer));
                } else if let Some(e) = s.streams.as_ref() {
                    let _ = e.get(&stream, input.small());
                    let _ = e.last_by_subject(&stream, &input.text());
                    let _ = e.stream_info(&stream);
                    let _ = e.consumer_info(&stream, &consumer);
                }
            }
            10 => {
                let ms = u64::from(input.byte() % 50);
                s.advance(ms);
                if let Some(e) = s.streams.as_ref() {
                    if let Some(d) = e.next_deadline() {
                        assert!(d > s.now_ms(), "a due deadline survived handle_timeout");
                    }
                }
            }
            _ => {
                // Power cut (clean, torn, or after writing garbage under `s`), then reopen.
                if input.byte() % 3 == 0 {
                    let mut b = Batch::new();
                    let mut k = vec![b's', b"CKLMPZ"[(input.byte() % 6) as usize]];
                    k.extend((0..input.byte() % 10).map(|_| input.byte()));
                    let v: Vec<u8> = (0..input.byte() % 12).map(|_| input.byte()).collect();
                    b.put(&k, &v);
                    s.sim.call(Request::Write(b));
                }
                let now = s.now_ms();
                let tear = input.byte() % 2 == 0;
                let disk = s.crash(tear);
                s = SimStreams::open_at(config(), streams_config, disk, now);
            }
        }
        s.take_events();
    }
});
