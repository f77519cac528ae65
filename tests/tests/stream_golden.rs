//! Golden transcripts of the stream engine (`tests/testdata/stream/*.txt`) on the sim disk, in
//! the style of etcd raft's datadriven tests: each block is a command, `----`, and the expected
//! output, ended by a blank line; `#` lines are comments.
//! `REWRITE=1 cargo test -p strata-tests --test stream_golden` rewrites the expected outputs from
//! what the code does now (review the diff).
//!
//! Commands:
//! * `stream add|update NAME SUBJECT[,SUBJECT...] [max_msgs=N] [max_bytes=N] [max_age=MS]
//!   [max_msg=N] [dup=MS] [discard=old|new]`, `stream del NAME`, `stream info NAME`
//! * `pub SUBJECT [id=MSGID] [nowait] [PAYLOAD...]` — `nowait` leaves the write unexecuted (a
//!   following `crash` loses it)
//! * `get STREAM SEQ`, `last STREAM SUBJECT`, `purge STREAM [subject=P] [below=SEQ]`
//! * `consumer add STREAM NAME [filter=P] [ack=explicit|all|none]
//!   [deliver=all|last|new|seq:N|time:MS|lps] [wait=MS] [max_deliver=N] [max_pending=N]`,
//!   `consumer del STREAM NAME`, `consumer info STREAM NAME`
//! * `fetch STREAM CONSUMER BATCH [expires=MS]`, `ack STREAM CONSUMER SEQ [nak|term]`
//! * `tick MS` — advance the clock and fire due timers
//! * `crash [tear]` — cut the power now (unsynced bytes lost), reopen store and engine
//!
//! After every command the engine's events are printed.
use std::fmt::Write as _;
use strata_engine::lsm::config::Durability;
use strata_engine::stream::{
    AckKind, AckPolicy, ConsumerConfig, DeliverPolicy, Discard, Event, FetchEnd, Purge, StreamConfig, StreamsConfig,
};
use strata_sim::disk::SimDisk;
use strata_sim::stream::SimStreams;
use strata_tests::tiny_config;

struct World {
    s: Option<SimStreams>,
}

fn parse_err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl World {
    fn s(&mut self) -> &mut SimStreams {
        self.s.as_mut().expect("world")
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (opts, args): (Vec<&str>, Vec<&str>) = words[1..].iter().partition(|w| w.contains('='));
        let opt = |k: &str| opts.iter().find_map(|o| o.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
        let num = |k: &str| opt(k).map(|v| v.parse::<u64>().map_err(parse_err(k))).transpose();
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("missing argument {}", i + 1));
        let mut out = String::new();
        match words[0] {
            "stream" => match arg(0)? {
                "add" | "update" => {
                    let mut c = StreamConfig::new(arg(1)?, &arg(2)?.split(',').collect::<Vec<_>>());
                    c.max_msgs = num("max_msgs")?.unwrap_or(0);
                    c.max_bytes = num("max_bytes")?.unwrap_or(0);
                    c.max_age_ms = num("max_age")?.unwrap_or(0);
                    c.max_msg_bytes = num("max_msg")?.unwrap_or(0);
                    c.duplicate_window_ms = num("dup")?.unwrap_or(0);
                    c.discard = if opt("discard") == Some("new") { Discard::New } else { Discard::Old };
                    let add = arg(0)? == "add";
                    let t = self
                        .s()
                        .with(|e, now, st| if add { e.create_stream(now, st, c) } else { e.update_stream(now, st, c) })
                        .map_err(|e| e.to_string())?;
                    writeln!(out, "ticket {}", t.0).unwrap();
                }
                "del" => {
                    let name = arg(1)?;
                    let t = self.s().with(|e, now, st| e.delete_stream(now, st, name)).map_err(|e| e.to_string())?;
                    writeln!(out, "ticket {}", t.0).unwrap();
                }
                "info" => {
                    let i = self.s().engine().stream_info(arg(1)?).map_err(|e| e.to_string())?;
                    writeln!(
                        out,
                        "{} subjects {:?} msgs {} bytes {} first {} last {} durable {} subjects {} consumers {}",
                        i.config.name, i.config.subjects, i.msgs, i.bytes, i.first_seq, i.last_seq, i.durable_seq, i.subjects, i.consumers
                    )
                    .unwrap();
                }
                other => return Err(format!("unknown stream command {other}")),
            },
            "pub" => {
                let subject = arg(0)?;
                let payload = args.get(1..).map(|p| p.iter().filter(|w| **w != "nowait").copied().collect::<Vec<_>>().join(" ")).unwrap_or_default();
                let id = opt("id");
                let f = |e: &mut strata_engine::stream::Streams, now, st: &mut _| e.publish(now, st, subject, id, payload.as_bytes());
                let p = if args.contains(&"nowait") { self.s().submit(f) } else { self.s().with(f) }.map_err(|e| e.to_string())?;
                writeln!(out, "{} seq {} ts {}{} ticket {}", p.stream, p.seq, p.ts_ms, if p.duplicate { " duplicate" } else { "" }, p.ticket.0).unwrap();
            }
            "get" => {
                let seq = arg(1)?.parse().map_err(parse_err("seq"))?;
                let m = self.s().engine().get(arg(0)?, seq).map_err(|e| e.to_string())?;
                writeln!(out, "seq {} {} ts {} {:?}", m.seq, m.subject, m.ts_ms, String::from_utf8_lossy(&m.payload)).unwrap();
            }
            "last" => {
                let m = self.s().engine().last_by_subject(arg(0)?, arg(1)?).map_err(|e| e.to_string())?;
                writeln!(out, "seq {} {} ts {} {:?}", m.seq, m.subject, m.ts_ms, String::from_utf8_lossy(&m.payload)).unwrap();
            }
            "purge" => {
                let p = Purge { subject: opt("subject").map(String::from), below_seq: num("below")? };
                let stream = arg(0)?;
                let (t, n) = self.s().with(|e, now, st| e.purge(now, st, stream, &p)).map_err(|e| e.to_string())?;
                writeln!(out, "purged {n} ticket {}", t.0).unwrap();
            }
            "consumer" => match arg(0)? {
                "add" => {
                    let mut c = ConsumerConfig::new(arg(2)?);
                    c.filter_subject = opt("filter").map(String::from);
                    c.ack_policy = match opt("ack") {
                        None | Some("explicit") => AckPolicy::Explicit,
                        Some("all") => AckPolicy::All,
                        Some("none") => AckPolicy::None,
                        Some(o) => return Err(format!("ack policy {o}")),
                    };
                    c.deliver_policy = match opt("deliver") {
                        None | Some("all") => DeliverPolicy::All,
                        Some("last") => DeliverPolicy::Last,
                        Some("new") => DeliverPolicy::New,
                        Some("lps") => DeliverPolicy::LastPerSubject,
                        Some(o) if o.starts_with("seq:") => DeliverPolicy::ByStartSequence(o[4..].parse().map_err(parse_err("seq"))?),
                        Some(o) if o.starts_with("time:") => DeliverPolicy::ByStartTime(o[5..].parse().map_err(parse_err("time"))?),
                        Some(o) => return Err(format!("deliver policy {o}")),
                    };
                    c.ack_wait_ms = num("wait")?.unwrap_or(c.ack_wait_ms);
                    c.max_deliver = num("max_deliver")?.unwrap_or(0) as u32;
                    c.max_ack_pending = num("max_pending")?.map_or(c.max_ack_pending, |v| v as u32);
                    let stream = arg(1)?;
                    let t = self.s().with(|e, now, st| e.add_consumer(now, st, stream, c)).map_err(|e| e.to_string())?;
                    writeln!(out, "ticket {}", t.0).unwrap();
                }
                "del" => {
                    let (stream, name) = (arg(1)?, arg(2)?);
                    let t = self.s().with(|e, now, st| e.delete_consumer(now, st, stream, name)).map_err(|e| e.to_string())?;
                    writeln!(out, "ticket {}", t.0).unwrap();
                }
                "info" => {
                    let i = self.s().engine().consumer_info(arg(1)?, arg(2)?).map_err(|e| e.to_string())?;
                    writeln!(
                        out,
                        "{} next {} delivered {} ack_floor {} ack_pending {} redeliverable {} num_pending {} waiting {}",
                        i.config.name, i.next_seq, i.delivered, i.ack_floor, i.ack_pending, i.redeliverable, i.num_pending, i.waiting
                    )
                    .unwrap();
                }
                other => return Err(format!("unknown consumer command {other}")),
            },
            "fetch" => {
                let (stream, consumer) = (arg(0)?, arg(1)?);
                let batch = arg(2)?.parse().map_err(parse_err("batch"))?;
                let expires = num("expires")?.unwrap_or(0);
                let f = self.s().with(|e, now, st| e.fetch(now, st, stream, consumer, batch, expires)).map_err(|e| e.to_string())?;
                writeln!(out, "fetch {}", f.0).unwrap();
            }
            "ack" => {
                let (stream, consumer) = (arg(0)?, arg(1)?);
                let seq = arg(2)?.parse().map_err(parse_err("seq"))?;
                let kind = match args.get(3) {
                    None => AckKind::Ack,
                    Some(&"nak") => AckKind::Nak,
                    Some(&"term") => AckKind::Term,
                    Some(o) => return Err(format!("ack kind {o}")),
                };
                let t = self.s().with(|e, now, st| e.ack(now, st, stream, consumer, seq, kind)).map_err(|e| e.to_string())?;
                writeln!(out, "ticket {}", t.0).unwrap();
            }
            "tick" => {
                let ms = arg(0)?.parse().map_err(parse_err("ms"))?;
                self.s().advance(ms);
                let next = self.s().engine().next_deadline().map_or("none".to_string(), |d| d.to_string());
                writeln!(out, "now {} next deadline {next}", self.s().now_ms()).unwrap();
            }
            "crash" => {
                let tear = args.first() == Some(&"tear");
                let s = self.s.take().expect("world");
                let now = s.now_ms();
                let disk = s.crash(tear);
                self.s = Some(SimStreams::open_at(tiny_config(Durability::SyncEachWrite), StreamsConfig::default(), disk, now));
                let names = self.s().engine().stream_names();
                writeln!(out, "recovered streams {names:?}").unwrap();
            }
            other => return Err(format!("unknown command {other}")),
        }
        for e in self.s().take_events() {
            writeln!(out, "{}", show_event(&e)).unwrap();
        }
        if let Some(s) = self.s.as_mut().and_then(|s| s.streams.as_ref()) {
            s.check_invariants();
        }
        Ok(out)
    }
}

fn show_event(e: &Event) -> String {
    match e {
        Event::Opened(r) => format!("event: opened {r:?}"),
        Event::Completed { ticket, result: Ok(()) } => format!("event: durable ticket {}", ticket.0),
        Event::Completed { ticket, result: Err(e) } => format!("event: failed ticket {}: {e}", ticket.0),
        Event::Messages { fetch, messages } => messages
            .iter()
            .map(|d| {
                format!(
                    "event: fetch {} msg seq {} {} {:?} deliveries {} consumer_seq {}",
                    fetch.0,
                    d.message.seq,
                    d.message.subject,
                    String::from_utf8_lossy(&d.message.payload),
                    d.deliveries,
                    d.consumer_seq
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Event::FetchEnded { fetch, delivered, reason } => {
            let why = match reason {
                FetchEnd::Filled => "filled",
                FetchEnd::Expired => "expired",
                FetchEnd::Deleted => "deleted",
                FetchEnd::Interrupted => "interrupted",
            };
            format!("event: fetch {} ended {why} after {delivered}", fetch.0)
        }
        Event::MaxDeliveries { stream, consumer, seq } => format!("event: gave up seq {seq} of {stream}/{consumer}"),
    }
}

#[test]
fn golden_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stream");
    strata_sim::golden::check_dir(&dir, |path| {
        let mut world = World { s: Some(SimStreams::open(tiny_config(Durability::SyncEachWrite), StreamsConfig::default(), SimDisk::new(1))) };
        world.s().take_events();
        strata_sim::golden::run_file(path, |line| world.run(line))
    });
}
