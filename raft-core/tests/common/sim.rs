//! Seeded, event-driven cluster simulation: virtual time in sub-ticks, a lossy network that
//! drops, duplicates, delays and reorders, partitions, crashes that lose unpersisted
//! writes, restarts, compaction and snapshots. Safety is checked after every step.

use std::collections::BTreeMap;

use strata_raft::{
    ConfChange, ConfChangeStep, Config, Index, Message, NodeId, ProposalId, ProposalOutcome,
    ReadOutcome,
};

use super::{hash_of, Checker, Peer, Rng};

/// Sub-ticks per tick: message delays and disk latencies are below one tick.
pub const SUB: u64 = 10;

#[derive(Clone, Debug)]
pub struct Faults {
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub reorder_per_mille: u64,
    pub crash_per_mille: u64,
    pub restart_per_mille: u64,
    pub partition_per_mille: u64,
    pub heal_per_mille: u64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            drop_per_mille: 0,
            dup_per_mille: 0,
            reorder_per_mille: 0,
            crash_per_mille: 0,
            restart_per_mille: 0,
            partition_per_mille: 0,
            heal_per_mille: 0,
        }
    }
    pub fn random(rng: &mut Rng) -> Faults {
        Faults {
            drop_per_mille: rng.below(100),
            dup_per_mille: rng.below(50),
            reorder_per_mille: rng.below(100),
            crash_per_mille: rng.below(20),
            restart_per_mille: 50 + rng.below(150),
            partition_per_mille: rng.below(30),
            heal_per_mille: 30 + rng.below(100),
        }
    }
}

pub struct Sim {
    pub seed: u64,
    pub peers: Vec<Peer>,
    pub rng: Rng,
    pub now: u64,
    pub faults: Faults,
    net: BTreeMap<(u64, u64), Message>,
    seq: u64,
    /// Partition group of each node (messages cross only within a group).
    groups: Vec<u8>,
    pub checker: Checker,
    next_value: u64,
    /// Reads issued: (peer, read id, highest commit index known when issued).
    reads: Vec<(usize, strata_raft::ReadId, Index)>,
    pub max_commit: Index,
    pub proposals_made: u64,
    committed_unchecked: Vec<(u64, Index)>,
    dropped: Vec<u64>,
    /// Random client proposals and reads every tick.
    pub clients: bool,
    /// Random membership changes during the faults; all nodes voters again at the end.
    pub membership: bool,
    /// `RAFT_SIM_TRACE=1`: print the first node's disk queue every sub-tick.
    trace_disk: bool,
    /// `RAFT_SIM_TRACE_NODE=n`: print every message to or from node n.
    trace_node: Option<u64>,
}

impl Sim {
    pub fn new(seed: u64, n: usize) -> Sim {
        let mut rng = Rng(seed);
        let ids: Vec<NodeId> = (1..=n as u64).map(NodeId).collect();
        let small = rng.chance(500);
        let peers = ids
            .iter()
            .map(|&id| {
                let mut cfg = Config::new(id, ids.clone());
                cfg.seed = seed ^ id.0;
                cfg.snapshot_chunk_bytes = 64;
                if small {
                    cfg.max_msg_bytes = 32;
                    cfg.max_inflight_msgs = 4;
                    cfg.max_uncommitted_bytes = 400;
                }
                let mut p = Peer::new(cfg);
                p.sync_disk = false;
                p
            })
            .collect();
        let faults = Faults::random(&mut rng);
        Sim {
            seed,
            peers,
            rng,
            now: 0,
            faults,
            net: BTreeMap::new(),
            seq: 0,
            groups: vec![0; n],
            checker: Checker::default(),
            next_value: 1,
            reads: Vec::new(),
            max_commit: Index(0),
            proposals_made: 0,
            committed_unchecked: Vec::new(),
            dropped: Vec::new(),
            clients: true,
            membership: false,
            trace_disk: std::env::var("RAFT_SIM_TRACE").is_ok(),
            trace_node: std::env::var("RAFT_SIM_TRACE_NODE")
                .ok()
                .and_then(|v| v.parse().ok()),
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {} (replay: RAFT_SIM_SEED={}): {what}\n{}",
            self.seed,
            self.seed,
            self.describe()
        );
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for p in &self.peers {
            match &p.node {
                None => s += &format!("{}: down\n", p.id),
                Some(n) => {
                    s += &format!(
                        "{}: {:?} {} lead {:?} commit {} applied {} stable {} last {} first {} pending-writes {} props {:?} reads {:?} conf {:?}\n",
                        p.id, n.role(), n.term(), n.leader(), n.commit_index(), n.applied_index(), n.stable_index(),
                        n.last_index(), n.first_index(), p.disk.pending.len(), p.proposals, self.reads.iter().filter(|r| r.0 == (p.id.0 - 1) as usize).collect::<Vec<_>>(), n.conf_state()
                    );
                    if n.is_leader() {
                        for q in &self.peers {
                            s += &format!("   progress {}: {:?}\n", q.id, n.progress(q.id));
                        }
                    }
                }
            }
        }
        s
    }

    /// One sub-tick: maybe a tick (with fault actions), deliveries, disk completions, polls
    /// and checks.
    pub fn step(&mut self, faulty: bool) {
        if self.now % SUB == 0 {
            if faulty {
                self.fault_actions();
            }
            if self.clients {
                self.client_actions();
            }
            for p in &mut self.peers {
                if let Some(n) = p.node.as_mut() {
                    n.tick();
                }
            }
        }
        // Deliveries due now.
        while let Some((&(t, s), _)) = self.net.first_key_value() {
            if t > self.now {
                break;
            }
            let m = self.net.remove(&(t, s)).expect("present");
            if let Some(v) = self.trace_node {
                if m.to.0 == v || m.from.0 == v {
                    let mut txt = format!("{m:?}");
                    txt.truncate(300);
                    eprintln!("t={} deliver {txt}", self.now);
                }
            }
            let to = (m.to.0 - 1) as usize;
            if let Some(n) = self.peers[to].node.as_mut() {
                if let Err(e) = n.step(m.clone()) {
                    self.fail(&format!("step error {e:?} for {m:?}"));
                }
            }
        }
        // Disks make progress.
        for k in 0..self.peers.len() {
            if self.trace_disk && k == 0 {
                eprintln!(
                    "t={} pending {:?} stable {:?} last {:?}",
                    self.now,
                    self.peers[k]
                        .disk
                        .pending
                        .iter()
                        .map(|p| (
                            p.0.id,
                            p.0.entries.iter().map(|e| e.index.0).collect::<Vec<_>>()
                        ))
                        .collect::<Vec<_>>(),
                    self.peers[k].node.as_ref().map(|n| n.stable_index()),
                    self.peers[k].node.as_ref().map(|n| n.last_index())
                );
            }
            if !self.peers[k].disk.pending.is_empty() && self.rng.chance(400) {
                let n = 1 + self.rng.below(3) as usize;
                self.peers[k].complete_writes(n);
            }
        }
        self.poll_all(faulty);
        self.check();
        self.now += 1;
    }

    fn poll_all(&mut self, faulty: bool) {
        for k in 0..self.peers.len() {
            let msgs = self.peers[k].poll(&mut self.checker);
            for m in msgs {
                self.route(m, faulty);
            }
            if let Some(n) = &self.peers[k].node {
                self.max_commit = self.max_commit.max(n.commit_index());
            }
        }
    }

    fn route(&mut self, m: Message, faulty: bool) {
        let (from, to) = ((m.from.0 - 1) as usize, (m.to.0 - 1) as usize);
        if to >= self.peers.len() || self.groups[from] != self.groups[to] {
            return;
        }
        if faulty && self.rng.chance(self.faults.drop_per_mille) {
            return;
        }
        let mut delay = 1 + self.rng.below(3);
        if faulty && self.rng.chance(self.faults.reorder_per_mille) {
            delay += self.rng.below(3 * SUB);
        }
        if faulty && self.rng.chance(self.faults.dup_per_mille) {
            let d2 = delay + self.rng.below(2 * SUB);
            self.enqueue(d2, m.clone());
        }
        self.enqueue(delay, m);
    }

    fn enqueue(&mut self, delay: u64, m: Message) {
        self.seq += 1;
        self.net.insert((self.now + delay, self.seq), m);
    }

    fn fault_actions(&mut self) {
        let n = self.peers.len();
        if self.rng.chance(self.faults.crash_per_mille) {
            let k = self.rng.below(n as u64) as usize;
            if self.peers[k].alive() {
                self.peers[k].crash();
                self.reads.retain(|r| r.0 != k);
            }
        }
        for k in 0..n {
            if !self.peers[k].alive() && self.rng.chance(self.faults.restart_per_mille) {
                self.peers[k].restart();
            }
        }
        if self.rng.chance(self.faults.partition_per_mille) {
            for g in &mut self.groups {
                *g = self.rng.below(2) as u8;
            }
        } else if self.rng.chance(self.faults.heal_per_mille) {
            self.groups.iter_mut().for_each(|g| *g = 0);
        }
        if self.rng.chance(50) {
            let k = self.rng.below(n as u64) as usize;
            let gap = self.peers[k]
                .node
                .as_ref()
                .map(|x| x.applied_index().0 - x.snapshot_meta().index.0);
            if gap.is_some_and(|g| g > 4) {
                self.peers[k].compact();
            }
        }
    }

    fn client_actions(&mut self) {
        let n = self.peers.len();
        if self.membership && self.rng.chance(40) {
            if let Some(l) = self.leader() {
                let pick = |r: &mut Rng| NodeId(1 + r.below(n as u64));
                let cc = match self.rng.below(5) {
                    0 => ConfChange::Single(ConfChangeStep::RemoveNode(pick(&mut self.rng))),
                    1 => ConfChange::Single(ConfChangeStep::AddVoter(pick(&mut self.rng))),
                    2 => ConfChange::Single(ConfChangeStep::AddLearner(pick(&mut self.rng))),
                    3 => ConfChange::Joint(vec![
                        ConfChangeStep::AddVoter(pick(&mut self.rng)),
                        ConfChangeStep::RemoveNode(pick(&mut self.rng)),
                    ]),
                    _ => ConfChange::Joint(vec![ConfChangeStep::AddLearner(pick(&mut self.rng))]),
                };
                self.propose_conf_on(l, cc);
            }
        }
        for _ in 0..self.rng.below(4) {
            let k = self.rng.below(n as u64) as usize;
            let leader_like = self.peers[k]
                .node
                .as_ref()
                .is_some_and(|x| x.is_leader() || self.rng.chance(100));
            if leader_like {
                self.propose_on(k);
            }
        }
        if self.rng.chance(200) {
            let k = self.rng.below(n as u64) as usize;
            let mc = self.max_commit;
            if let Some(node) = self.peers[k].node.as_mut() {
                let id = node.read_index();
                self.reads.push((k, id, mc));
            }
        }
    }

    pub fn propose_conf_on(&mut self, k: usize, cc: ConfChange) {
        let v = self.next_value;
        self.next_value += 1;
        if let Some(n) = self.peers[k].node.as_mut() {
            n.propose_conf_change(ProposalId(v), cc);
        }
    }

    pub fn propose_on(&mut self, k: usize) {
        let v = self.next_value;
        self.next_value += 1;
        self.proposals_made += 1;
        self.peers[k].propose(ProposalId(v), v);
    }

    fn check(&mut self) {
        for p in &self.peers {
            if let Some(n) = &p.node {
                n.check_invariants();
            }
        }
        let nodes: Vec<&strata_raft::Node> =
            self.peers.iter().filter_map(|p| p.node.as_ref()).collect();
        self.checker.observe_roles(&nodes);
        if let Some(v) = self.checker.violations.first() {
            self.fail(v);
        }
        // Reads: a read index must cover everything committed before the read began.
        for p in 0..self.peers.len() {
            for (id, o) in std::mem::take(&mut self.peers[p].reads) {
                let Some(pos) = self.reads.iter().position(|r| r.0 == p && r.1 == id) else {
                    self.fail("outcome for an unknown read");
                };
                let (_, _, at_issue) = self.reads.remove(pos);
                if let ReadOutcome::Ready(i) = o {
                    if i < at_issue {
                        self.fail(&format!(
                            "stale read: index {i} < {at_issue} committed before"
                        ));
                    }
                }
            }
        }
    }

    pub fn leader(&self) -> Option<usize> {
        self.peers
            .iter()
            .position(|p| p.node.as_ref().is_some_and(|n| n.is_leader()))
    }

    /// Runs `ticks` ticks of faults, then heals everything and checks liveness: within
    /// `bound` ticks a leader commits, every proposal and read resolves and all nodes apply
    /// the same log.
    pub fn run(&mut self, ticks: u64, bound: u64) {
        for _ in 0..ticks * SUB {
            self.step(true);
        }
        self.groups.iter_mut().for_each(|g| *g = 0);
        for p in &mut self.peers {
            if !p.alive() {
                p.restart();
            }
        }
        let start = self.now;
        loop {
            if self.now - start > bound * SUB {
                let pending: usize = self.peers.iter().map(|p| p.proposals.len()).sum();
                let applied: Vec<Index> = self.peers.iter().map(|p| p.sm.applied).collect();
                self.fail(&format!(
                    "no liveness after {bound} ticks: leader {:?}, {pending} proposals pending, applied {applied:?}, reads {}",
                    self.leader(),
                    self.reads.len()
                ));
            }
            if self.now % SUB == 0 && self.membership {
                // Bring every node back as a voter.
                if let Some(l) = self.leader() {
                    let cs = self.peers[l]
                        .node
                        .as_ref()
                        .map(|n| n.conf_state())
                        .unwrap_or_default();
                    if cs.voters.len() < self.peers.len() && !cs.is_joint() {
                        let steps = (1..=self.peers.len() as u64)
                            .map(|i| ConfChangeStep::AddVoter(NodeId(i)))
                            .collect();
                        self.propose_conf_on(l, ConfChange::Joint(steps));
                    }
                }
            }
            if self.now % SUB == 0 {
                if let Some(l) = self.leader() {
                    if self.peers[l].proposals.is_empty()
                        && self.peers.iter().any(|p| !p.proposals.is_empty())
                    {
                        self.propose_on(l);
                    }
                }
            }
            self.step(false);
            self.resolve_outcomes();
            let pending: usize = self.peers.iter().map(|p| p.proposals.len()).sum();
            let target = self.peers[0].sm.applied;
            let converged = self
                .peers
                .iter()
                .all(|p| p.sm.applied == target && p.disk.pending.is_empty());
            let all_voters = !self.membership
                || self
                    .leader()
                    .and_then(|l| self.peers[l].node.as_ref())
                    .is_some_and(|n| {
                        let cs = n.conf_state();
                        cs.voters.len() == self.peers.len() && !cs.is_joint()
                    });
            if pending == 0
                && all_voters
                && self.reads.is_empty()
                && converged
                && self.leader().is_some()
                && self.net.is_empty()
            {
                break;
            }
        }
    }

    /// Checks every outcome against what was applied.
    pub fn resolve_outcomes(&mut self) {
        for k in 0..self.peers.len() {
            for (id, o) in std::mem::take(&mut self.peers[k].outcomes) {
                let Some(v) = self.peers[k].proposals.remove(&id) else {
                    continue;
                };
                match o {
                    ProposalOutcome::Committed(i) => {
                        // Committed entries are applied everywhere eventually; check now if
                        // already applied somewhere, else keep for later.
                        if let Some(&at) = self.checker.value_index.get(&v) {
                            if at != i {
                                self.fail(&format!(
                                    "proposal {v} committed at {i} but applied at {at}"
                                ));
                            }
                        } else {
                            self.committed_unchecked.push((v, i));
                        }
                    }
                    ProposalOutcome::Dropped(_) => self.dropped.push(v),
                    ProposalOutcome::Indeterminate => {}
                }
            }
        }
    }

    /// Final checks of proposal outcomes.
    pub fn check_outcomes(&mut self) {
        self.resolve_outcomes();
        for &(v, i) in &self.committed_unchecked {
            match self.checker.value_index.get(&v) {
                Some(&at) if at == i => {}
                other => self.fail(&format!(
                    "proposal {v} reported committed at {i}, applied at {other:?}"
                )),
            }
        }
        for v in &self.dropped {
            if self.checker.value_index.contains_key(v) {
                self.fail(&format!("proposal {v} reported dropped but applied"));
            }
        }
    }

    pub fn digest(&self) -> u64 {
        let ds: Vec<u64> = self.peers.iter().map(|p| p.digest).collect();
        hash_of(&(ds, self.checker.applied.len()))
    }

    /// Failover: with a healthy cluster and no faults, crashes the leader and counts the
    /// ticks until a new leader has committed a write.
    pub fn measure_failover(&mut self) -> u64 {
        self.faults = Faults::none();
        self.clients = false;
        // Warm up: elect a leader and commit a write.
        let mut warm = 0;
        loop {
            if self.now % SUB == 0 {
                if let Some(l) = self.leader() {
                    if self.peers[l].proposals.is_empty() && self.checker.applied.len() < 5 {
                        self.propose_on(l);
                    }
                }
            }
            self.step(false);
            self.resolve_outcomes();
            warm += 1;
            if self.checker.applied.len() >= 5 && self.now % SUB == 0 && self.now >= 40 * SUB {
                break;
            }
            assert!(
                warm < 1000 * SUB,
                "seed {}: no leader during warm-up",
                self.seed
            );
        }
        let old = self.leader().expect("a leader after warm-up");
        self.peers[old].crash();
        let t0 = self.now;
        let first_value = self.next_value;
        loop {
            if self.now % SUB == 0 {
                if let Some(l) = self.leader() {
                    if self.peers[l].proposals.is_empty() {
                        self.propose_on(l);
                    }
                }
            }
            self.step(false);
            for p in &self.peers {
                for (id, o) in &p.outcomes {
                    if id.0 >= first_value && matches!(o, ProposalOutcome::Committed(_)) {
                        return (self.now - t0).div_ceil(SUB);
                    }
                }
            }
            self.resolve_outcomes();
            assert!(self.now - t0 < 500 * SUB, "seed {}: no failover", self.seed);
        }
    }
}
