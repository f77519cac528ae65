//! Golden transcripts of the etcd-style commands (`testdata/etcd/*.txt`): revisions, history,
//! compaction, compare-and-swap transactions, leases and watch, over `MemStore`. Each block is a
//! command, `----`, and the expected output, ended by a blank line; `#` lines are comments.
//! `REWRITE=1 cargo test -p strata-engine --test etcd_golden` rewrites the expected outputs
//! from what the code does now (review the diff).
//!
//! Every write commits at the next revision (1, 2, 3, ...), reads at the newest one unless
//! `rev=N`; after each commit the watch hub gets the applied changes and is resolved past it.
//! * `put KEY VALUE [lease=ID]`, `del KEY`, `get KEY [rev=N]`, `range FROM [TO] [rev=N]`,
//!   `history KEY [limit=N]`
//! * `txn [COMPARE ...] then OP ... [else OP ...]` — compares `FIELD(KEY)OP VALUE` with FIELD
//!   in `version create mod value lease` and OP in `= != < >`; ops `put:K:V[:LEASE]`, `del:K`,
//!   `delrange:FROM:TO`, `get:K`, `range:FROM:TO`
//! * `compact REV` — logical compaction, then the physical steps to the end
//! * `lease grant TTL_MS`, `lease keepalive ID`, `lease revoke ID`, `lease show`
//! * `tick MS` — advance the clock; expire every due lease, each at its own revision
//! * `config buffer=N` — restart with an empty store and a hub with that watcher buffer
//! * `watch NAME key:K|prefix:P|all [from=REV]`, `drain NAME`, `sync`, `cancel NAME`
use std::collections::BTreeMap;
use std::fmt::Write as _;
use strata_engine::lsm::batch::Batch;
use strata_engine::mvcc::cas::{
    self, Compare, CompareOp, CompareTarget, OpResult, TxnOp, TxnRequest,
};
use strata_engine::mvcc::exec::applied;
use strata_engine::mvcc::lease::{self, Expiry, LeaseChange, LeaseQueue};
use strata_engine::mvcc::reader::MemStore;
use strata_engine::mvcc::revision::{self, Kv};
use strata_engine::mvcc::watch::{
    EventKind, WatchConfig, WatchHub, WatchId, WatchRequest, WatchResponse, WatchTarget,
};
use strata_engine::mvcc::{LeaseId, Ts};

struct World {
    store: MemStore,
    hub: WatchHub,
    leases: LeaseQueue,
    rev: u64,
    now_ms: u64,
    watchers: BTreeMap<String, WatchId>,
}

impl World {
    fn new(buffer: usize) -> World {
        World {
            store: MemStore::new(),
            hub: WatchHub::new(WatchConfig { max_buffered_events: buffer }, Ts(1)),
            leases: LeaseQueue::new(),
            rev: 0,
            now_ms: 0,
            watchers: BTreeMap::new(),
        }
    }

    fn commit(&mut self, b: &Batch) -> Result<(), String> {
        self.store.apply(b);
        self.store.check_invariants();
        lease::check_invariants(&self.store);
        for a in applied::extract(&self.store, b).map_err(|e| format!("{e:?}"))? {
            self.hub.handle_applied(&a).map_err(|e| format!("{e:?}"))?;
        }
        self.hub
            .handle_resolved(&self.store, Ts(self.rev + 1))
            .map_err(|e| e.to_string())
    }

    /// The read and commit ts of the next write.
    fn next(&mut self) -> (Ts, Ts) {
        self.rev += 1;
        (Ts(self.rev - 1), Ts(self.rev))
    }

    fn txn(&mut self, req: &TxnRequest) -> Result<String, String> {
        let (read, commit) = self.next();
        let (resp, b) = cas::txn(&self.store, req, read, commit).map_err(|e| {
            self.rev -= 1;
            e.to_string()
        })?;
        if b.is_empty() {
            self.rev -= 1;
        }
        self.commit(&b)?;
        let mut out = format!(
            "{} at revision {}\n",
            if resp.succeeded { "succeeded" } else { "failed" },
            resp.revision
        );
        for r in &resp.results {
            out += &show_result(r);
        }
        Ok(out)
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (opts, args): (Vec<&str>, Vec<&str>) =
            words[1..].iter().partition(|w| w.contains('=') && !w.contains(['(', ':']));
        let opt = |k: &str| -> Result<Option<u64>, String> {
            opts.iter()
                .find_map(|o| o.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(|v| v.parse().map_err(|e| format!("{k}: {e}")))
                .transpose()
        };
        let arg = |i: usize| {
            args.get(i)
                .copied()
                .ok_or_else(|| format!("missing argument {}", i + 1))
        };
        let read_rev = opt("rev")?.map_or(Ts(self.rev), Ts);
        let mut out = String::new();
        match words[0] {
            "config" => *self = World::new(opt("buffer")?.unwrap_or(16) as usize),
            "put" => {
                let op = TxnOp::Put {
                    key: arg(0)?.into(),
                    value: arg(1)?.into(),
                    lease: opt("lease")?.map(LeaseId),
                };
                return self.txn(&TxnRequest { success: vec![op], ..Default::default() });
            }
            "del" => {
                let op = TxnOp::Delete { key: arg(0)?.into() };
                return self.txn(&TxnRequest { success: vec![op], ..Default::default() });
            }
            "txn" => return self.txn(&parse_txn(&words[1..])?),
            "get" => {
                let kv = revision::get_at(&self.store, arg(0)?.as_bytes(), read_rev)
                    .map_err(|e| e.to_string())?;
                out += &kv.as_ref().map_or("(none)\n".into(), |kv| show_kv(kv) + "\n");
            }
            "range" => {
                let upper = args.get(1).map(|u| u.as_bytes());
                for kv in revision::range_at(&self.store, arg(0)?.as_bytes(), upper, read_rev, 100)
                    .map_err(|e| e.to_string())?
                {
                    writeln!(out, "{}", show_kv(&kv)).unwrap();
                }
            }
            "history" => {
                let limit = opt("limit")?.unwrap_or(100) as usize;
                for e in revision::history(&self.store, arg(0)?.as_bytes(), read_rev, limit)
                    .map_err(|e| e.to_string())?
                {
                    match &e.kv {
                        Some(kv) => writeln!(out, "@{} {}", e.revision, show_kv(kv)).unwrap(),
                        None => writeln!(out, "@{} deleted", e.revision).unwrap(),
                    }
                }
            }
            "compact" => {
                let rev = Ts(arg(0)?.parse().map_err(|e| format!("{e}"))?);
                let b = revision::compact(&self.store, rev, Ts(self.rev)).map_err(|e| e.to_string())?;
                self.store.apply(&b);
                let (mut from, mut dropped) = (Vec::new(), 0);
                loop {
                    let step = revision::compaction_step(&self.store, &from, 2).map_err(|e| e.to_string())?;
                    dropped += step.batch.len();
                    self.store.apply(&step.batch);
                    match step.resume_from {
                        Some(f) => from = f,
                        None => break,
                    }
                }
                self.store.check_invariants();
                writeln!(out, "compaction mark {rev}, {dropped} records dropped").unwrap();
            }
            "lease" => return self.lease(&args),
            "tick" => {
                self.now_ms += arg(0)?.parse::<u64>().map_err(|e| format!("{e}"))?;
                writeln!(out, "now {} ms, next deadline {:?}", self.now_ms, self.leases.next_deadline()).unwrap();
                for id in self.leases.due(self.now_ms) {
                    let (_, commit) = self.next();
                    let (exp, b) = lease::expire(&self.store, id, self.now_ms, commit).map_err(|e| e.to_string())?;
                    match exp {
                        Expiry::Expired(r) => {
                            self.leases.apply(&r.change);
                            self.commit(&b)?;
                            let keys: Vec<String> = r.deleted.iter().map(|kv| show_key(&kv.key)).collect();
                            writeln!(out, "lease {id} expired at revision {}: deleted [{}]", r.revision, keys.join(" ")).unwrap();
                        }
                        other => writeln!(out, "lease {id}: {other:?}").unwrap(),
                    }
                }
            }
            "watch" => {
                let name = arg(0)?.to_string();
                let t = arg(1)?;
                let target = if let Some(k) = t.strip_prefix("key:") {
                    WatchTarget::Key(k.into())
                } else if let Some(p) = t.strip_prefix("prefix:") {
                    WatchTarget::Prefix(p.into())
                } else {
                    WatchTarget::Prefix(Vec::new())
                };
                let req = WatchRequest { target, start_revision: opt("from")?.map(Ts) };
                let id = self.hub.watch(&self.store, req).map_err(|e| e.to_string())?;
                self.watchers.insert(name, id);
            }
            "drain" => {
                let id = *self.watchers.get(arg(0)?).ok_or("unknown watcher")?;
                while let Some(r) = self.hub.poll(id) {
                    out += &show_response(&r);
                }
                if out.is_empty() {
                    out += "(nothing)\n";
                }
            }
            "sync" => {
                let n = if self.hub.needs_sync() {
                    self.hub.sync(&self.store).map_err(|e| e.to_string())?
                } else {
                    0
                };
                writeln!(out, "{n} events queued by catch-up").unwrap();
            }
            "cancel" => {
                let id = *self.watchers.get(arg(0)?).ok_or("unknown watcher")?;
                writeln!(out, "{}", self.hub.cancel(id)).unwrap();
            }
            w => return Err(format!("unknown command {w}")),
        }
        Ok(out)
    }

    fn lease(&mut self, args: &[&str]) -> Result<String, String> {
        let num = |i: usize| -> Result<u64, String> {
            args.get(i).ok_or("missing argument")?.parse().map_err(|e| format!("{e}"))
        };
        let mut out = String::new();
        match args.first().copied() {
            Some("grant") => {
                let id = self.leases.next_id();
                let (l, b) = lease::grant(&self.store, id, num(1)?, self.now_ms).map_err(|e| e.to_string())?;
                self.store.apply(&b);
                self.leases.apply(&LeaseChange::Upsert(l));
                writeln!(out, "lease {} ttl {} ms, expires at {} ms", l.id, l.ttl_ms, l.expires_at_ms).unwrap();
            }
            Some("keepalive") => {
                let (l, b) = lease::keep_alive(&self.store, LeaseId(num(1)?), self.now_ms).map_err(|e| e.to_string())?;
                self.store.apply(&b);
                self.leases.apply(&LeaseChange::Upsert(l));
                writeln!(out, "lease {} expires at {} ms", l.id, l.expires_at_ms).unwrap();
            }
            Some("revoke") => {
                let (_, commit) = self.next();
                let (r, b) = lease::revoke(&self.store, LeaseId(num(1)?), commit).map_err(|e| {
                    self.rev -= 1;
                    e.to_string()
                })?;
                self.leases.apply(&r.change);
                self.commit(&b)?;
                let keys: Vec<String> = r.deleted.iter().map(|kv| show_key(&kv.key)).collect();
                writeln!(out, "revoked at revision {}: deleted [{}]", r.revision, keys.join(" ")).unwrap();
            }
            Some("show") => {
                for l in lease::leases(&self.store).map_err(|e| e.to_string())? {
                    let keys: Vec<String> = lease::keys(&self.store, l.id).map_err(|e| e.to_string())?.iter().map(|k| show_key(k)).collect();
                    writeln!(out, "lease {} ttl {} expires {} keys [{}]", l.id, l.ttl_ms, l.expires_at_ms, keys.join(" ")).unwrap();
                }
            }
            _ => return Err("lease grant|keepalive|revoke|show".into()),
        }
        Ok(out)
    }
}

fn parse_txn(words: &[&str]) -> Result<TxnRequest, String> {
    let mut req = TxnRequest::default();
    let mut section = 0;
    for w in words {
        match *w {
            "then" => section = 1,
            "else" => section = 2,
            w if section == 0 => req.compares.push(parse_compare(w)?),
            w => {
                let op = parse_op(w)?;
                if section == 1 { req.success.push(op) } else { req.failure.push(op) }
            }
        }
    }
    Ok(req)
}

fn parse_compare(w: &str) -> Result<Compare, String> {
    let (field, rest) = w.split_once('(').ok_or(format!("bad compare {w}"))?;
    let (key, rest) = rest.split_once(')').ok_or(format!("bad compare {w}"))?;
    let (op, value) = if let Some(v) = rest.strip_prefix("!=") {
        (CompareOp::NotEqual, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (CompareOp::Equal, v)
    } else if let Some(v) = rest.strip_prefix('<') {
        (CompareOp::Less, v)
    } else if let Some(v) = rest.strip_prefix('>') {
        (CompareOp::Greater, v)
    } else {
        return Err(format!("bad compare op in {w}"));
    };
    let n = || value.parse::<u64>().map_err(|e| format!("{w}: {e}"));
    let target = match field {
        "version" => CompareTarget::Version(n()?),
        "create" => CompareTarget::CreateRevision(Ts(n()?)),
        "mod" => CompareTarget::ModRevision(Ts(n()?)),
        "value" => CompareTarget::Value(value.into()),
        "lease" => CompareTarget::Lease(Some(n()?).filter(|&l| l != 0).map(LeaseId)),
        f => return Err(format!("unknown compare field {f}")),
    };
    Ok(Compare { key: key.into(), range_end: None, op, target })
}

fn parse_op(w: &str) -> Result<TxnOp, String> {
    let parts: Vec<&str> = w.split(':').collect();
    let p = |i: usize| parts.get(i).map(|s| s.as_bytes().to_vec()).ok_or(format!("bad op {w}"));
    Ok(match parts[0] {
        "put" => TxnOp::Put {
            key: p(1)?,
            value: p(2)?,
            lease: parts.get(3).map(|l| l.parse().map(LeaseId)).transpose().map_err(|e| format!("{e}"))?,
        },
        "del" => TxnOp::Delete { key: p(1)? },
        "delrange" => TxnOp::DeleteRange { from: p(1)?, upper: Some(p(2)?) },
        "get" => TxnOp::Get { key: p(1)? },
        "range" => TxnOp::Range { from: p(1)?, upper: Some(p(2)?), limit: 100 },
        o => return Err(format!("unknown op {o}")),
    })
}

fn show_key(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into()
}

fn show_kv(kv: &Kv) -> String {
    let lease = kv.lease.map_or(String::new(), |l| format!(" lease {l}"));
    format!(
        "{}={} (create {} mod {} version {}{lease})",
        show_key(&kv.key),
        String::from_utf8_lossy(&kv.value),
        kv.create_revision,
        kv.mod_revision,
        kv.version
    )
}

fn show_result(r: &OpResult) -> String {
    match r {
        OpResult::Put { prev } => format!("  put, prev {}\n", prev.as_ref().map_or("(none)".into(), show_kv)),
        OpResult::Delete { deleted } => {
            let keys: Vec<String> = deleted.iter().map(|kv| show_key(&kv.key)).collect();
            format!("  deleted [{}]\n", keys.join(" "))
        }
        OpResult::Get(kv) => format!("  get {}\n", kv.as_ref().map_or("(none)".into(), show_kv)),
        OpResult::Range(kvs) => {
            let mut s = format!("  range {} keys\n", kvs.len());
            for kv in kvs {
                s += &format!("    {}\n", show_kv(kv));
            }
            s
        }
    }
}

fn show_response(r: &WatchResponse) -> String {
    match r {
        WatchResponse::Events { revision, events } => {
            let mut s = format!("revision {revision}:\n");
            for e in events {
                let prev = e.prev.as_ref().map_or("(none)".into(), |p| String::from_utf8_lossy(&p.value).into_owned());
                match e.kind {
                    EventKind::Put => s += &format!("  put {}, prev {prev}\n", show_kv(&e.kv)),
                    EventKind::Delete => s += &format!("  delete {}, prev {prev}\n", show_key(&e.kv.key)),
                }
            }
            s
        }
        WatchResponse::Compacted { requested, compacted } => {
            format!("compacted: needed revision {requested}, compaction mark {compacted} (watch ended)\n")
        }
    }
}

#[test]
fn golden_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/etcd");
    strata_sim::golden::check_dir(&dir, |path| {
        let mut world = World::new(16);
        strata_sim::golden::run_file(path, |line| world.run(line))
    });
}
