//! Golden transcripts of the broker (`testdata/broker/*.txt`), in the style of etcd raft's
//! datadriven tests: each block is a command, `----`, and the expected output, ended by a blank
//! line; `#` lines are comments. `REWRITE=1 cargo test -p strata-engine --test broker_golden`
//! rewrites the expected outputs from what the code does now (review the diff).
//!
//! Commands (clients are named; a name is connected on first use; `#N` is client id N as is):
//! * `config key=value ...` — restart with a fresh broker (seed, max_payload,
//!   max_pending_msgs, max_pending_bytes, max_subs, max_requests, max_subject)
//! * `connect NAME` / `disconnect NAME`
//! * `sub NAME SID PATTERN [queue=Q]` / `unsub NAME SID [after=N]`
//! * `pub NAME SUBJECT [reply=R] [PAYLOAD...]`
//! * `request NAME SUBJECT [timeout=MS] [PAYLOAD...]` / `cancel NAME REQUEST`
//! * `tick MS` — advance the clock by MS and handle timeouts
//! * `drain NAME [N]` — take up to N (default all) deliveries of a client
//! * `status [NAME]` — counters, or a client's subscriptions and requests
//!
//! After every command the events it raised are printed.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use strata_engine::broker::{Broker, BrokerConfig, ClientId, Delivery, Event, RequestId, Sid};

struct World {
    broker: Broker,
    now: u64,
    names: BTreeMap<String, ClientId>,
}

impl World {
    fn new(config: BrokerConfig) -> Self {
        World { broker: Broker::new(config), now: 0, names: BTreeMap::new() }
    }

    fn client(&mut self, name: &str) -> ClientId {
        if let Some(raw) = name.strip_prefix('#').and_then(|n| n.parse().ok()) {
            return ClientId(raw);
        }
        if let Some(&c) = self.names.get(name) {
            return c;
        }
        let c = self.broker.handle_connect(self.now);
        self.names.insert(name.to_string(), c);
        c
    }

    fn name(&self, c: ClientId) -> String {
        self.names
            .iter()
            .find(|(_, &id)| id == c)
            .map_or(format!("client{}", c.0), |(n, _)| n.clone())
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (opts, args): (Vec<&str>, Vec<&str>) = words[1..].iter().partition(|w| w.contains('='));
        let opt = |k: &str| opts.iter().find_map(|o| o.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
        let num = |k: &str| opt(k).map(|v| v.parse::<u64>().map_err(|e| format!("{k}: {e}"))).transpose();
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("missing argument {}", i + 1));
        let mut out = String::new();
        let now = self.now;
        match words[0] {
            "config" => {
                let d = BrokerConfig::default();
                let config = BrokerConfig {
                    seed: num("seed")?.unwrap_or(d.seed),
                    max_payload_bytes: num("max_payload")?.map_or(d.max_payload_bytes, |v| v as usize),
                    max_pending_msgs: num("max_pending_msgs")?.map_or(d.max_pending_msgs, |v| v as usize),
                    max_pending_bytes: num("max_pending_bytes")?.map_or(d.max_pending_bytes, |v| v as usize),
                    max_subscriptions_per_client: num("max_subs")?.map_or(d.max_subscriptions_per_client, |v| v as usize),
                    max_requests_per_client: num("max_requests")?.map_or(d.max_requests_per_client, |v| v as usize),
                    max_subject_bytes: num("max_subject")?.map_or(d.max_subject_bytes, |v| v as usize),
                    ..d
                };
                *self = World::new(config);
            }
            "connect" => {
                let c = self.client(arg(0)?);
                writeln!(out, "{} = client {}", arg(0)?, c.0).unwrap();
            }
            "disconnect" => {
                let c = self.client(arg(0)?);
                self.broker.handle_disconnect(now, c).map_err(|e| e.to_string())?;
                self.names.remove(arg(0)?);
            }
            "sub" => {
                let c = self.client(arg(0)?);
                let sid = Sid(arg(1)?.parse().map_err(|e| format!("sid: {e}"))?);
                self.broker.handle_subscribe(now, c, sid, arg(2)?, opt("queue")).map_err(|e| e.to_string())?;
            }
            "unsub" => {
                let c = self.client(arg(0)?);
                let sid = Sid(arg(1)?.parse().map_err(|e| format!("sid: {e}"))?);
                self.broker.handle_unsubscribe(now, c, sid, num("after")?).map_err(|e| e.to_string())?;
            }
            "pub" => {
                let c = self.client(arg(0)?);
                let payload = args.get(2..).map(|p| p.join(" ")).unwrap_or_default();
                let o = self
                    .broker
                    .handle_publish(now, c, arg(1)?, opt("reply"), payload.as_bytes())
                    .map_err(|e| e.to_string())?;
                writeln!(out, "matched {} queued {} dropped {}", o.matched, o.queued, o.dropped).unwrap();
            }
            "request" => {
                let c = self.client(arg(0)?);
                let payload = args.get(2..).map(|p| p.join(" ")).unwrap_or_default();
                let r = self
                    .broker
                    .handle_request(now, c, arg(1)?, payload.as_bytes(), num("timeout")?)
                    .map_err(|e| e.to_string())?;
                writeln!(out, "request {}", r.0).unwrap();
            }
            "cancel" => {
                let c = self.client(arg(0)?);
                let r = RequestId(arg(1)?.parse().map_err(|e| format!("request: {e}"))?);
                self.broker.handle_cancel(now, c, r).map_err(|e| e.to_string())?;
            }
            "tick" => {
                self.now += arg(0)?.parse::<u64>().map_err(|e| format!("ms: {e}"))?;
                self.broker.handle_timeout(self.now);
                let next = self.broker.next_deadline().map_or("none".to_string(), |d| d.to_string());
                writeln!(out, "now {} next deadline {next}", self.now).unwrap();
            }
            "drain" => {
                let c = self.client(arg(0)?);
                let n = args.get(1).map_or(Ok(usize::MAX), |n| n.parse().map_err(|e| format!("n: {e}")))?;
                let mut taken = 0;
                while taken < n {
                    let Some(d) = self.broker.poll_delivery(c) else { break };
                    taken += 1;
                    writeln!(out, "{}", show_delivery(&d)).unwrap();
                }
                if taken == 0 {
                    writeln!(out, "nothing").unwrap();
                }
            }
            "status" => match args.first() {
                None => {
                    let s = self.broker.stats();
                    writeln!(
                        out,
                        "clients {} subs {} published {} queued {} dropped {} no-responders {} timed-out {}",
                        s.clients, s.subscriptions, s.published, s.queued, s.dropped, s.no_responders, s.timed_out
                    )
                    .unwrap();
                }
                Some(&name) => {
                    let c = *self.names.get(name).ok_or("unknown name")?;
                    let subs = self.broker.subscriptions(c).ok_or("unknown client")?;
                    for s in subs {
                        write!(out, "sid {} {}", s.sid.0, s.pattern).unwrap();
                        if let Some(q) = &s.queue {
                            write!(out, " queue={q}").unwrap();
                        }
                        write!(out, " routed {} pending {}/{}B dropped {}", s.routed, s.pending_msgs, s.pending_bytes, s.dropped).unwrap();
                        if let Some(m) = s.max_msgs {
                            write!(out, " max {m}").unwrap();
                        }
                        writeln!(out).unwrap();
                    }
                    let reqs = self.broker.outstanding_requests(c).ok_or("unknown client")?;
                    writeln!(out, "requests {:?} queued {}", reqs.iter().map(|r| r.0).collect::<Vec<_>>(), self.broker.queued_deliveries(c).unwrap_or(0)).unwrap();
                }
            },
            other => return Err(format!("unknown command {other}")),
        }
        while let Some(e) = self.broker.poll_event() {
            match e {
                Event::Deliverable { client } => writeln!(out, "event: deliverable {}", self.name(client)).unwrap(),
                Event::SlowConsumer { client, sid } => {
                    let sid = sid.map_or("inbox".to_string(), |s| format!("sid {}", s.0));
                    writeln!(out, "event: slow consumer {} {sid}", self.name(client)).unwrap()
                }
            }
        }
        self.broker.check_invariants();
        Ok(out)
    }
}

fn show_delivery(d: &Delivery) -> String {
    match d {
        Delivery::Message { sid, message } => {
            let reply = message.reply.as_ref().map_or(String::new(), |r| format!(" reply={r}"));
            format!("msg sid {} {}{reply} {:?}", sid.0, message.subject, String::from_utf8_lossy(&message.payload))
        }
        Delivery::Response { request, message } => {
            format!("response {} {} {:?}", request.0, message.subject, String::from_utf8_lossy(&message.payload))
        }
        Delivery::NoResponders { request } => format!("no responders {}", request.0),
        Delivery::TimedOut { request } => format!("timed out {}", request.0),
    }
}

#[test]
fn golden_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/broker");
    strata_sim::golden::check_dir(&dir, |path| {
        let mut world = World::new(BrokerConfig::default());
        strata_sim::golden::run_file(path, |line| world.run(line))
    });
}
