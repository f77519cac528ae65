//! Golden transcripts of a replicated cluster (`tests/testdata/cluster/*.txt`): the classic
//! Raft stories told through the node's trace — election, replication, a partitioned leader,
//! rejoin and log rollback. Each block is a command, `----`, and the expected output.
//! `REWRITE=1 cargo test -p strata-tests --test cluster_golden` rewrites the expected outputs
//! (review the diff).
//!
//! Commands (nodes are numbered from 1; times in ms; the network is reliable, 2 ms per hop):
//! * `cluster nodes=N seed=S [flush=MS] [log-keep=N]` — a new cluster (every node starting);
//!   stores flush every `flush` ms (default: never), logs keep `log-keep` entries behind the
//!   store's durable mark
//! * `run MS` — let time pass
//! * `wait-leader` — run until a leader is elected; prints it
//! * `put N KEY VALUE [wait=MS]` — a write sent to node N (one client session, numbered
//!   writes); runs until it is answered or `wait` ms (default 1,000) have passed
//! * `get N KEY [stale=TS|last] [wait=MS]` — a linearizable (or stale, at TS or at the
//!   revision of the last write answered) read at node N
//! * `partition A,B | C,...` — cut every link between the groups; `heal` — restore all links
//! * `crash N`, `restart N`
//! * `status` — each node's role, term, commit, applied and last index
//! * `digests` — whether every replica holds the same data
//! * `add-machine` — a new machine with empty disks (node `n + 1`), outside the region
//! * `admin add|remove|transfer N [wait=MS]` — the operator's admin request (to the leader it
//!   knows, over the network, retried until answered); runs until it is answered or `wait`
//!   ms (default 5,000) have passed
//! * `decommission N` — stop a removed machine for good
//! * `membership` — the membership each node has applied (and whether it was removed)
//!
//! After each command the trace since the previous one is printed (messages, persistence,
//! applies, leader changes), heartbeats left out.
use strata_engine::node::wire::{AdminOp, ClientId, ClientOp, ClientRequest, Consistency, Epoch, RegionId, WriteOp};
use strata_sim::cluster::{Cluster, ClusterConfig, Faults};
use strata_sim::net::LinkFaults;

struct World {
    c: Option<Cluster>,
    seq: u64,
    /// The revision of the last write answered (for `stale=last`).
    last_revision: u64,
}

impl World {
    fn c(&mut self) -> Result<&mut Cluster, String> {
        self.c.as_mut().ok_or_else(|| "no cluster".to_string())
    }

    fn run(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (opts, args): (Vec<&str>, Vec<&str>) = words[1..].iter().partition(|w| w.contains('='));
        let opt = |k: &str| -> Result<Option<u64>, String> {
            opts.iter()
                .find_map(|o| o.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .map(|v| v.parse::<u64>().map_err(|e| format!("{k}: {e}")))
                .transpose()
        };
        let arg = |i: usize| args.get(i).copied().ok_or_else(|| format!("missing argument {}", i + 1));
        let node = |i: usize| -> Result<usize, String> {
            let n: usize = arg(i)?.parse().map_err(|e| format!("node: {e}"))?;
            n.checked_sub(1).ok_or_else(|| "nodes are numbered from 1".to_string())
        };
        let mut extra = String::new();
        match words[0] {
            "cluster" => {
                let mut cfg = ClusterConfig::new(opt("seed")?.unwrap_or(1), opt("nodes")?.unwrap_or(3), 0, 0);
                cfg.faults = Faults::none();
                cfg.link = LinkFaults::reliable(2);
                cfg.disk_latency_ms = 1;
                cfg.flush_interval_ms = opt("flush")?.unwrap_or(1_000_000);
                cfg.log_keep_entries = opt("log-keep")?.unwrap_or(cfg.log_keep_entries);
                cfg.snapshot_chunk_bytes = opt("chunk")?.unwrap_or(cfg.snapshot_chunk_bytes);
                cfg.record_trace = true;
                self.c = Some(Cluster::new(cfg));
                self.seq = 0;
            }
            "run" => {
                let c = self.c()?;
                let end = c.now + arg(0)?.parse::<u64>().map_err(|e| e.to_string())?;
                while c.now < end {
                    c.step();
                }
            }
            "wait-leader" => {
                let c = self.c()?;
                let end = c.now + 5_000;
                while c.leader().is_none() && c.now < end {
                    c.step();
                }
                let k = c.leader().ok_or("no leader within 5 s")?;
                let term = c.machines[k].node.as_ref().and_then(|n| n.raft()).map_or(0, |r| r.term().0);
                extra = format!("leader: n{} (term {term})\n", k + 1);
            }
            "put" | "get" => {
                let k = node(0)?;
                let key = arg(1)?.as_bytes().to_vec();
                let op = if words[0] == "put" {
                    self.seq += 1;
                    ClientOp::Write { client: ClientId(1), seq: self.seq, op: WriteOp::Put { key, value: arg(2)?.as_bytes().to_vec() } }
                } else {
                    let stale = match opts.iter().find_map(|o| o.strip_prefix("stale=")) {
                        Some("last") => Some(self.last_revision),
                        _ => opt("stale")?,
                    };
                    let consistency = match stale {
                        Some(ts) => Consistency::Stale { ts },
                        None => Consistency::Linearizable,
                    };
                    ClientOp::Read { key, consistency }
                };
                let wait = opt("wait")?.unwrap_or(1_000);
                let c = self.c()?;
                let p = c.probe(k, ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op }).ok_or("node is down")?;
                let end = c.now + wait;
                while !c.probe_replies.contains_key(&p) && c.now < end {
                    c.step();
                }
                extra = match c.probe_replies.remove(&p) {
                    Some((at, result)) => {
                        if let Ok(strata_engine::node::wire::ClientReply::Written { revision }) = &result {
                            self.last_revision = *revision;
                        }
                        format!("-> at {at}: {}\n", describe_result(&result))
                    }
                    None => format!("-> no answer within {wait} ms\n"),
                };
            }
            "partition" => {
                let groups: Vec<Vec<u64>> = line["partition".len()..]
                    .split('|')
                    .map(|g| g.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                    .collect();
                let c = self.c()?;
                let now = c.now;
                for (i, a) in groups.iter().enumerate() {
                    for b in groups.iter().skip(i + 1) {
                        for &x in a {
                            for &y in b {
                                c.net.cut(now, x, y);
                                c.net.cut(now, y, x);
                            }
                        }
                    }
                }
            }
            "heal" => {
                let c = self.c()?;
                let now = c.now;
                c.net.heal(now);
            }
            "crash" => {
                let k = node(0)?;
                self.c()?.crash(k);
            }
            "restart" => {
                let k = node(0)?;
                self.c()?.restart(k);
            }
            "status" => {
                let c = self.c()?;
                for (k, m) in c.machines.iter().enumerate() {
                    extra += &match m.node.as_ref().and_then(|n| n.raft().map(|r| (n, r))) {
                        None => format!("n{}: down\n", k + 1),
                        Some((n, r)) => format!(
                            "n{}: {:?} term {} commit {} applied {} last {} (term {})\n",
                            k + 1,
                            r.role(),
                            r.term().0,
                            r.commit_index().0,
                            n.applied().0,
                            r.last_index().0,
                            r.last_term().0
                        ),
                    };
                }
            }
            "add-machine" => {
                let c = self.c()?;
                let k = c.add_machine();
                extra = format!("n{} up (empty disks)\n", k + 1);
            }
            "admin" => {
                let n: u64 = arg(1)?.parse().map_err(|e| format!("node: {e}"))?;
                let op = match arg(0)? {
                    "add" => AdminOp::AddReplica { node: n },
                    "remove" => AdminOp::RemoveReplica { node: n },
                    "transfer" => AdminOp::TransferLeader { to: n },
                    other => return Err(format!("unknown admin request {other}")),
                };
                let wait = opt("wait")?.unwrap_or(5_000);
                let c = self.c()?;
                let t = c.admin(op);
                let end = c.now + wait;
                while c.operator.tasks[t].result.is_none() && c.now < end {
                    c.step();
                }
                let task = &c.operator.tasks[t];
                extra = match &task.result {
                    Some((at, Ok(r))) => format!("-> at {at} after {} attempt(s): done, leader {:?}\n", task.attempts, r.leader),
                    Some((at, Err(e))) => format!("-> at {at}: error: {e}\n"),
                    None => format!("-> no answer within {wait} ms\n"),
                };
            }
            "decommission" => {
                let k = node(0)?;
                self.c()?.decommission(k);
            }
            "membership" => {
                let c = self.c()?;
                for (k, m) in c.machines.iter().enumerate() {
                    extra += &match m.node.as_ref().filter(|n| n.is_running()) {
                        None if m.decommissioned => format!("n{}: decommissioned\n", k + 1),
                        None => format!("n{}: down\n", k + 1),
                        Some(n) => format!(
                            "n{}: {}{}\n",
                            k + 1,
                            strata_sim::cluster::trace::describe_membership(&n.membership().membership(1)),
                            if n.is_removed() { " — removed, serves nothing" } else { "" }
                        ),
                    };
                }
            }
            "digests" => {
                let d = self.c()?.digests();
                let same = d.windows(2).all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2);
                let applied: Vec<String> = d.iter().map(|(n, a, _)| format!("n{n} applied {a}")).collect();
                extra = format!("{}; replicas {}\n", applied.join(", "), if same { "identical" } else { "DIFFER" });
            }
            other => return Err(format!("unknown command {other}")),
        }
        let c = self.c()?;
        let mut out: String = c
            .trace
            .drain(..)
            .filter(|l| !l.contains("Heartbeat"))
            .map(|l| l + "\n")
            .collect();
        out += &extra;
        Ok(out)
    }
}

fn describe_result(r: &Result<strata_engine::node::wire::ClientReply, strata_engine::node::wire::ClientError>) -> String {
    use strata_engine::node::wire::ClientReply;
    match r {
        Ok(ClientReply::Value { value: Some(v), read_ts }) => format!("value {} (read ts {read_ts})", String::from_utf8_lossy(v)),
        Ok(ClientReply::Value { value: None, read_ts }) => format!("absent (read ts {read_ts})"),
        Ok(ClientReply::Written { revision }) => format!("written at revision {revision}"),
        Ok(ClientReply::Swapped { swapped, revision }) => format!("swapped {swapped} at revision {revision}"),
        Ok(ClientReply::Txn(t)) => format!("txn succeeded {} at revision {}: {:?}", t.succeeded, t.revision, t.results),
        Ok(ClientReply::Admin(a)) => format!("admin done: {:?}", a.membership),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn golden_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cluster");
    strata_sim::golden::check_dir(&dir, |path| {
        let mut world = World { c: None, seq: 0, last_revision: 0 };
        strata_sim::golden::run_file(path, |line| world.run(line))
    });
}
