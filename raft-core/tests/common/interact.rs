//! The driver behind the golden transcripts: a small command language in the spirit of
//! etcd raft's datadriven interaction tests. Each command prints what happened.
//!
//! Commands: `add-nodes N [pre-vote=false] [check-quorum=false] [lease]`, `campaign ID`,
//! `propose ID DATA`, `propose-conf-change ID (add-voter|add-learner|remove)=N[,..] [joint]`
//! or `propose-conf-change ID leave-joint`, `read-index ID`, `transfer-leader FROM TO`,
//! `tick ID [N]`, `tick-election ID`, `process-ready ID`, `persist ID`,
//! `deliver-msgs [drop]`, `stabilize`, `partition A B.. | C D..`, `heal`, `crash ID`,
//! `restart ID`, `compact ID`, `status ID`, `log ID`, `raft-state`.

use std::fmt::Write;

use strata_raft::{
    Body, ConfChange, ConfChangeStep, Config, Entry, EntryKind, Message, NodeId, Output,
    ProposalId, ReadMode,
};

use super::{Checker, Peer};

pub struct Interaction {
    pub peers: Vec<Peer>,
    pub net: Vec<Message>,
    pub checker: Checker,
    groups: Vec<u8>,
    next_proposal: u64,
}

fn fmt_entries(es: &[Entry]) -> String {
    let parts: Vec<String> = es
        .iter()
        .map(|e| {
            let kind = if e.kind == EntryKind::ConfChange {
                "conf:"
            } else {
                ""
            };
            match e.conf_change() {
                Some(cc) => format!("{}/{} {kind}{cc:?}", e.term.0, e.index.0),
                None => format!(
                    "{}/{} {kind}{:?}",
                    e.term.0,
                    e.index.0,
                    String::from_utf8_lossy(&e.data)
                ),
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

pub fn fmt_msg(m: &Message) -> String {
    let body = match &m.body {
        Body::Append {
            prev_index,
            prev_term,
            entries,
            commit,
        } => format!(
            "Append prev={}/{} commit={} {}",
            prev_term.0,
            prev_index.0,
            commit.0,
            fmt_entries(entries)
        ),
        Body::AppendResponse {
            index,
            reject: None,
        } => format!("AppendResponse index={}", index.0),
        Body::AppendResponse {
            index,
            reject: Some(h),
        } => format!(
            "AppendResponse REJECT index={} hint={}/{}",
            index.0, h.hint_term.0, h.hint_index.0
        ),
        Body::Heartbeat { commit, read_round } => {
            format!("Heartbeat commit={} round={read_round}", commit.0)
        }
        Body::HeartbeatResponse { read_round } => format!("HeartbeatResponse round={read_round}"),
        Body::RequestVote {
            pre_vote,
            last_index,
            last_term,
            transfer,
        } => format!(
            "{} last={}/{}{}",
            if *pre_vote { "PreVote" } else { "Vote" },
            last_term.0,
            last_index.0,
            if *transfer { " transfer" } else { "" }
        ),
        Body::VoteResponse { pre_vote, granted } => format!(
            "{}Response {}",
            if *pre_vote { "PreVote" } else { "Vote" },
            if *granted { "granted" } else { "REJECTED" }
        ),
        Body::SnapshotChunk {
            meta,
            offset,
            data,
            last,
        } => format!(
            "SnapshotChunk snap={}/{} offset={offset} len={} last={last}",
            meta.term.0,
            meta.index.0,
            data.len()
        ),
        Body::SnapshotAck { index, next_offset } => {
            format!("SnapshotAck snap={} next={next_offset}", index.0)
        }
        Body::TimeoutNow => "TimeoutNow".into(),
        Body::ReadIndex { .. } => "ReadIndex".into(),
        Body::ReadIndexResponse { index, .. } => {
            format!("ReadIndexResponse index={:?}", index.map(|i| i.0))
        }
    };
    format!("{}->{} t{} {body}", m.from.0, m.to.0, m.term.0)
}

impl Interaction {
    pub fn new() -> Interaction {
        Interaction {
            peers: Vec::new(),
            net: Vec::new(),
            checker: Checker::default(),
            groups: Vec::new(),
            next_proposal: 0,
        }
    }

    fn peer(&mut self, arg: Option<&str>) -> Result<usize, String> {
        let id: usize = arg
            .ok_or("missing node id")?
            .parse()
            .map_err(|_| "bad node id")?;
        if id == 0 || id > self.peers.len() {
            return Err(format!("no node {id}"));
        }
        Ok(id - 1)
    }

    /// Runs one command and returns its output.
    pub fn run(&mut self, line: &str) -> Result<String, String> {
        let mut out = String::new();
        let words: Vec<&str> = line.split_whitespace().collect();
        let (cmd, args) = words.split_first().ok_or("empty command")?;
        match *cmd {
            "add-nodes" => {
                let n: u64 = args.first().ok_or("count")?.parse().map_err(|_| "count")?;
                // The first nodes form the cluster; later ones join with no configuration and
                // learn it from the leader.
                let first = self.peers.len() as u64 + 1;
                let ids: Vec<NodeId> = (first..first + n).map(NodeId).collect();
                let voters = if first == 1 { ids.clone() } else { Vec::new() };
                for &id in &ids {
                    let mut cfg = Config::new(id, voters.clone());
                    cfg.snapshot_chunk_bytes = 4;
                    for a in &args[1..] {
                        match *a {
                            "pre-vote=false" => cfg.pre_vote = false,
                            "check-quorum=false" => cfg.check_quorum = false,
                            "lease" => cfg.read_mode = ReadMode::LeaseBased,
                            other => return Err(format!("unknown option {other}")),
                        }
                    }
                    let mut p = Peer::new(cfg);
                    p.sync_disk = false;
                    self.peers.push(p);
                    self.groups.push(0);
                }
                writeln!(out, "added {n} nodes").ok();
            }
            "campaign" => {
                let k = self.peer(args.first().copied())?;
                self.node(k)?.campaign();
                out += &self.process(k);
            }
            "propose" => {
                let k = self.peer(args.first().copied())?;
                let data = args.get(1).copied().unwrap_or("");
                self.next_proposal += 1;
                let id = ProposalId(self.next_proposal);
                self.node(k)?.propose(id, data.as_bytes().to_vec());
                out += &self.process(k);
            }
            "propose-conf-change" => {
                let k = self.peer(args.first().copied())?;
                let cc = parse_conf_change(&args[1..])?;
                self.next_proposal += 1;
                let id = ProposalId(self.next_proposal);
                self.node(k)?.propose_conf_change(id, cc);
                out += &self.process(k);
            }
            "read-index" => {
                let k = self.peer(args.first().copied())?;
                self.node(k)?.read_index();
                out += &self.process(k);
            }
            "transfer-leader" => {
                let k = self.peer(args.first().copied())?;
                let to: u64 = args.get(1).ok_or("target")?.parse().map_err(|_| "target")?;
                if let Err(e) = self.node(k)?.transfer_leader(NodeId(to)) {
                    writeln!(out, "error: {e:?}").ok();
                }
                out += &self.process(k);
            }
            "tick" => {
                let k = self.peer(args.first().copied())?;
                let n: u32 = args.get(1).map(|s| s.parse().unwrap_or(1)).unwrap_or(1);
                for _ in 0..n {
                    self.node(k)?.tick();
                }
                out += &self.process(k);
            }
            "tick-election" => {
                let k = self.peer(args.first().copied())?;
                let role = self.node(k)?.role();
                for _ in 0..20 {
                    self.node(k)?.tick();
                    if self.node(k)?.role() != role
                        || self.peers[k].node.as_ref().is_some_and(|n| n.has_output())
                    {
                        break;
                    }
                }
                out += &self.process(k);
            }
            "process-ready" => {
                let k = self.peer(args.first().copied())?;
                out += &self.process(k);
            }
            "persist" => {
                let k = self.peer(args.first().copied())?;
                let n = self.peers[k].disk.pending.len();
                self.peers[k].complete_writes(usize::MAX);
                writeln!(out, "{}: {n} writes durable", k + 1).ok();
                out += &self.process(k);
            }
            "deliver-msgs" => {
                let drop = args.first() == Some(&"drop");
                out += &self.deliver(drop);
            }
            "stabilize" => {
                for _ in 0..100 {
                    let mut round = String::new();
                    for k in 0..self.peers.len() {
                        if !self.peers[k].disk.pending.is_empty() {
                            self.peers[k].complete_writes(usize::MAX);
                        }
                        round += &self.process(k);
                    }
                    round += &self.deliver(false);
                    if round.is_empty() {
                        break;
                    }
                    out += &round;
                }
            }
            "partition" => {
                let mut group = 1;
                for a in args {
                    if *a == "|" {
                        group += 1;
                        continue;
                    }
                    let k = self.peer(Some(a))?;
                    self.groups[k] = group;
                }
                writeln!(out, "groups {:?}", self.groups).ok();
            }
            "heal" => {
                self.groups.iter_mut().for_each(|g| *g = 0);
                writeln!(out, "healed").ok();
            }
            "crash" => {
                let k = self.peer(args.first().copied())?;
                self.peers[k].crash();
                writeln!(out, "{} crashed (unpersisted writes lost)", k + 1).ok();
            }
            "restart" => {
                let k = self.peer(args.first().copied())?;
                self.peers[k].restart();
                writeln!(out, "{} restarted", k + 1).ok();
                out += &self.status(k);
            }
            "compact" => {
                let k = self.peer(args.first().copied())?;
                let ok = self.peers[k].compact();
                let n = self.node(k)?;
                writeln!(out, "{}: compacted={ok} first={}", k + 1, n.first_index().0).ok();
            }
            "status" => {
                let k = self.peer(args.first().copied())?;
                out += &self.status(k);
            }
            "raft-state" => {
                for k in 0..self.peers.len() {
                    out += &self.status(k);
                }
            }
            "log" => {
                let k = self.peer(args.first().copied())?;
                let n = self.node(k)?;
                let es: Vec<Entry> = (n.first_index().0..=n.last_index().0)
                    .filter_map(|i| n.entry(strata_raft::Index(i)).cloned())
                    .collect();
                writeln!(out, "{}: {}", k + 1, fmt_entries(&es)).ok();
            }
            other => return Err(format!("unknown command {other}")),
        }
        let nodes: Vec<&strata_raft::Node> =
            self.peers.iter().filter_map(|p| p.node.as_ref()).collect();
        for n in &nodes {
            n.check_invariants();
        }
        self.checker.observe_roles(&nodes);
        if let Some(v) = self.checker.violations.first() {
            return Err(v.clone());
        }
        Ok(out)
    }

    fn node(&mut self, k: usize) -> Result<&mut strata_raft::Node, String> {
        self.peers[k]
            .node
            .as_mut()
            .ok_or_else(|| format!("node {} is down", k + 1))
    }

    fn status(&self, k: usize) -> String {
        match &self.peers[k].node {
            None => format!("{}: down\n", k + 1),
            Some(n) => {
                let cs = n.conf_state();
                let mut s = format!(
                    "{}: {:?} term={} vote={:?} lead={:?} commit={} applied={} last={} stable={} voters={:?}",
                    k + 1,
                    n.role(),
                    n.term().0,
                    n.vote().map(|v| v.0),
                    n.leader().map(|v| v.0),
                    n.commit_index().0,
                    n.applied_index().0,
                    n.last_index().0,
                    n.stable_index().0,
                    cs.voters.iter().map(|v| v.0).collect::<Vec<_>>(),
                );
                if !cs.voters_outgoing.is_empty() {
                    s += &format!(
                        " outgoing={:?}",
                        cs.voters_outgoing.iter().map(|v| v.0).collect::<Vec<_>>()
                    );
                }
                if !cs.learners.is_empty() {
                    s += &format!(
                        " learners={:?}",
                        cs.learners.iter().map(|v| v.0).collect::<Vec<_>>()
                    );
                }
                s + "\n"
            }
        }
    }

    /// Drains node `k`'s outputs and prints them.
    fn process(&mut self, k: usize) -> String {
        let mut out = String::new();
        loop {
            let Some(node) = self.peers[k].node.as_mut() else {
                return out;
            };
            let mut printed = Vec::new();
            while let Some(o) = node.poll_output() {
                printed.push(o);
            }
            if printed.is_empty() {
                break;
            }
            for o in printed {
                let line = match &o {
                    Output::Send(m) => format!("send {}", fmt_msg(m)),
                    Output::Persist(p) => format!(
                        "persist #{} hs=t{}/v{:?}/c{}{} entries={}",
                        p.id.0,
                        p.hard_state.term.0,
                        p.hard_state.vote.map(|v| v.0),
                        p.hard_state.commit.0,
                        p.snapshot
                            .as_ref()
                            .map(|s| format!(" snapshot={}/{}", s.term.0, s.index.0))
                            .unwrap_or_default(),
                        fmt_entries(&p.entries)
                    ),
                    Output::Apply(es) => format!("apply {}", fmt_entries(es)),
                    Output::Proposal(id, o) => format!("proposal {} {o:?}", id.0),
                    Output::Read(_, o) => format!("read {o:?}"),
                    Output::ReadSnapshotChunk {
                        to,
                        meta,
                        offset,
                        max_bytes,
                    } => {
                        format!(
                            "read-snapshot-chunk to={} snap={}/{} offset={offset} max={max_bytes}",
                            to.0, meta.term.0, meta.index.0
                        )
                    }
                    Output::StageSnapshotChunk {
                        meta,
                        offset,
                        data,
                        last,
                    } => {
                        format!(
                            "stage-snapshot-chunk snap={}/{} offset={offset} len={} last={last}",
                            meta.term.0,
                            meta.index.0,
                            data.len()
                        )
                    }
                    Output::LeaderChanged { term, leader } => {
                        format!("leader t{} {:?}", term.0, leader.map(|l| l.0))
                    }
                };
                writeln!(out, "{}: {line}", k + 1).ok();
                self.peers[k].handle(o, &mut self.checker, &mut self.net);
            }
        }
        out
    }

    /// Delivers (or drops) every message in flight; prints each.
    fn deliver(&mut self, drop: bool) -> String {
        let mut out = String::new();
        for m in std::mem::take(&mut self.net) {
            let (f, t) = ((m.from.0 - 1) as usize, (m.to.0 - 1) as usize);
            let cut = t >= self.peers.len()
                || self.groups[f] != self.groups[t]
                || self.peers[t].node.is_none();
            let verb = if drop {
                "dropped"
            } else if cut {
                "lost"
            } else {
                "deliver"
            };
            writeln!(out, "{verb} {}", fmt_msg(&m)).ok();
            if !drop && !cut {
                if let Some(n) = self.peers[t].node.as_mut() {
                    if let Err(e) = n.step(m) {
                        writeln!(out, "  error: {e:?}").ok();
                    }
                }
            }
        }
        out
    }
}

fn parse_conf_change(args: &[&str]) -> Result<ConfChange, String> {
    if args.first() == Some(&"leave-joint") {
        return Ok(ConfChange::LeaveJoint);
    }
    let mut steps = Vec::new();
    let mut joint = false;
    for a in args {
        if *a == "joint" {
            joint = true;
            continue;
        }
        for part in a.split(',') {
            let (kind, id) = part.split_once('=').ok_or("expected kind=id")?;
            let id = NodeId(id.parse().map_err(|_| "bad id")?);
            steps.push(match kind {
                "add-voter" => ConfChangeStep::AddVoter(id),
                "add-learner" => ConfChangeStep::AddLearner(id),
                "remove" => ConfChangeStep::RemoveNode(id),
                other => return Err(format!("unknown step {other}")),
            });
        }
    }
    if joint || steps.len() != 1 {
        Ok(ConfChange::Joint(steps))
    } else {
        Ok(ConfChange::Single(steps[0]))
    }
}
