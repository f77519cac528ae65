//! Test harness shared by the integration tests: a peer (node + simulated disk + state
//! machine), a safety checker, and two drivers (`sim`: seeded event-driven simulation;
//! `interact`: the step-by-step driver behind the golden transcripts).

#![allow(dead_code)]

pub mod interact;
pub mod sim;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use strata_raft::{
    Bytes, Config, Entry, EntryKind, HardState, Index, Message, Node, NodeId, Output, Persist,
    ProposalId, ProposalOutcome, ReadId, ReadOutcome, Recovered, SnapshotMeta, Term,
};

pub fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// SplitMix64 for the tests' own randomness.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// True with probability `p` per mille.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The durable state of one peer.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    pub entries: Vec<Entry>,
    /// Writes handed out but not yet durable (lost on crash).
    pub pending: VecDeque<(Persist, Vec<u8>)>,
}

impl Disk {
    fn apply(&mut self, p: &Persist, staging: &[u8]) {
        self.hard_state = p.hard_state;
        if let Some(meta) = &p.snapshot {
            self.snapshot = Some(((**meta).clone(), staging.to_vec()));
            self.entries.clear();
        }
        if let Some(first) = p.entries.first() {
            let base = self.snapshot.as_ref().map(|s| s.0.index.0).unwrap_or(0);
            let keep = (first.index.0 - base - 1) as usize;
            self.entries.truncate(keep);
            self.entries.extend(p.entries.iter().cloned());
        }
    }
}

/// The application state machine: the applied index and the values applied.
#[derive(Clone, Debug, Default)]
pub struct Sm {
    pub applied: Index,
    pub values: Vec<u64>,
}

impl Sm {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.applied.0.to_le_bytes().to_vec();
        for x in &self.values {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }
    fn decode(b: &[u8]) -> Sm {
        let mut it = b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()));
        let applied = Index(it.next().unwrap_or(0));
        Sm {
            applied,
            values: it.collect(),
        }
    }
}

/// Cross-node safety checks, fed with every output of every node.
#[derive(Debug, Default)]
pub struct Checker {
    /// Election safety: at most one leader per term.
    pub leaders: BTreeMap<Term, NodeId>,
    /// Log matching: (index, term) → (data hash, previous term).
    pub entries: HashMap<(u64, u64), (u64, u64)>,
    /// State-machine safety: what was applied at each index.
    pub applied: Vec<(Term, u64)>,
    /// Where each proposed value was applied.
    pub value_index: HashMap<u64, Index>,
    pub violations: Vec<String>,
}

impl Checker {
    fn fail(&mut self, s: String) {
        self.violations.push(s);
    }

    pub fn observe_roles(&mut self, nodes: &[&Node]) {
        for n in nodes {
            if n.is_leader() {
                match self.leaders.get(&n.term()) {
                    Some(l) if *l != n.id() => {
                        let s = format!(
                            "election safety: {} and {} both lead {}",
                            l,
                            n.id(),
                            n.term()
                        );
                        self.fail(s);
                    }
                    Some(_) => {}
                    None => {
                        self.leaders.insert(n.term(), n.id());
                        self.check_leader_completeness(n);
                    }
                }
            }
        }
    }

    fn check_leader_completeness(&mut self, n: &Node) {
        for (k, (term, _)) in self.applied.iter().enumerate() {
            let i = Index(k as u64 + 1);
            if i < n.first_index() {
                continue;
            }
            if n.term_at(i) != Some(*term) {
                let s = format!(
                    "leader completeness: {} at {} lacks committed {}@{}",
                    n.id(),
                    n.term(),
                    i,
                    term
                );
                self.violations.push(s);
                return;
            }
        }
    }

    fn observe_persist(&mut self, node: &Node, p: &Persist) {
        let mut prev_term = p.entries.first().and_then(|e| {
            let prev = e.index.prev();
            match &p.snapshot {
                Some(m) if m.index == prev => Some(m.term),
                _ => node.term_at(prev),
            }
        });
        for e in &p.entries {
            let key = (e.index.0, e.term.0);
            let val = (hash_of(&e.data), prev_term.map(|t| t.0).unwrap_or(u64::MAX));
            match self.entries.get(&key) {
                Some(&(h, pt)) => {
                    let prev_ok = pt == val.1 || pt == u64::MAX || val.1 == u64::MAX;
                    if h != val.0 || !prev_ok {
                        self.fail(format!(
                            "log matching: {} differs at {}@{}",
                            node.id(),
                            e.index,
                            e.term
                        ));
                    }
                    if pt == u64::MAX && val.1 != u64::MAX {
                        self.entries.insert(key, val);
                    }
                }
                None => {
                    self.entries.insert(key, val);
                }
            }
            prev_term = Some(e.term);
        }
    }

    fn observe_apply(&mut self, id: NodeId, e: &Entry) {
        let k = e.index.0 as usize;
        let rec = (e.term, hash_of(&e.data));
        if k <= self.applied.len() {
            if self.applied[k - 1] != rec {
                self.fail(format!(
                    "state machine safety: {} applied a different entry at {}",
                    id, e.index
                ));
            }
        } else if k == self.applied.len() + 1 {
            self.applied.push(rec);
            if e.kind == EntryKind::Normal && e.data.len() == 8 {
                let v = u64::from_le_bytes(e.data[..].try_into().unwrap());
                self.value_index.insert(v, e.index);
            }
        } else {
            // Applied beyond what anyone applied before: fine only after a snapshot; record
            // placeholders are not needed, the gap is filled by other nodes.
        }
    }
}

/// One peer: the node, its disk and its state machine.
#[derive(Debug)]
pub struct Peer {
    pub id: NodeId,
    pub cfg: Config,
    pub node: Option<Node>,
    pub disk: Disk,
    pub sm: Sm,
    pub staging: Vec<u8>,
    pub proposals: BTreeMap<ProposalId, u64>,
    pub outcomes: Vec<(ProposalId, ProposalOutcome)>,
    pub reads: Vec<(ReadId, ReadOutcome)>,
    /// Digest of every output, for determinism checks.
    pub digest: u64,
    /// Complete writes as soon as they are issued.
    pub sync_disk: bool,
    /// Fold every output into `digest` (costly: for the determinism test only).
    pub record_digest: bool,
}

impl Peer {
    pub fn new(cfg: Config) -> Peer {
        let node = Node::new(cfg.clone(), Recovered::default()).expect("valid config");
        Peer {
            id: cfg.id,
            cfg,
            node: Some(node),
            disk: Disk::default(),
            sm: Sm::default(),
            staging: Vec::new(),
            proposals: BTreeMap::new(),
            outcomes: Vec::new(),
            reads: Vec::new(),
            digest: 0,
            sync_disk: true,
            record_digest: false,
        }
    }

    pub fn alive(&self) -> bool {
        self.node.is_some()
    }

    /// Drains the node's outputs: writes go to the disk's queue, applies to the state
    /// machine, snapshot chunk reads are served at once. Returns messages to send.
    pub fn poll(&mut self, checker: &mut Checker) -> Vec<Message> {
        let mut msgs = Vec::new();
        loop {
            let Some(node) = self.node.as_mut() else {
                return msgs;
            };
            let Some(out) = node.poll_output() else { break };
            self.handle(out, checker, &mut msgs);
        }
        msgs
    }

    /// Carries out one output.
    pub fn handle(&mut self, out: Output, checker: &mut Checker, msgs: &mut Vec<Message>) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        if self.record_digest {
            self.digest = hash_of(&(self.digest, format!("{out:?}")));
        }
        {
            match out {
                Output::Send(m) => msgs.push(m),
                Output::Persist(p) => {
                    checker.observe_persist(node, &p);
                    if let Some(meta) = &p.snapshot {
                        // The snapshot is loaded into the state machine with this write.
                        let sm = Sm::decode(&self.staging);
                        assert_eq!(sm.applied, meta.index, "staged snapshot does not match");
                        self.sm = sm;
                    }
                    let snap = if p.snapshot.is_some() {
                        std::mem::take(&mut self.staging)
                    } else {
                        Vec::new()
                    };
                    self.disk.pending.push_back((p, snap));
                    if self.sync_disk {
                        self.complete_writes(usize::MAX);
                    }
                }
                Output::Apply(entries) => {
                    for e in &entries {
                        assert_eq!(
                            e.index,
                            self.sm.applied.next(),
                            "{} applies out of order",
                            self.id
                        );
                        self.sm.applied = e.index;
                        if e.kind == EntryKind::Normal && e.data.len() == 8 {
                            self.sm
                                .values
                                .push(u64::from_le_bytes(e.data[..].try_into().unwrap()));
                        }
                        checker.observe_apply(self.id, e);
                    }
                }
                Output::Proposal(id, o) => self.outcomes.push((id, o)),
                Output::Read(id, o) => self.reads.push((id, o)),
                Output::ReadSnapshotChunk {
                    to,
                    meta,
                    offset,
                    max_bytes,
                } => match &self.disk.snapshot {
                    Some((m, data)) if m.index == meta.index => {
                        let start = (offset as usize).min(data.len());
                        let end = (start + max_bytes as usize).min(data.len());
                        let chunk = Bytes::copy_from_slice(&data[start..end]);
                        let _ = node.handle_snapshot_chunk(
                            to,
                            meta.index,
                            offset,
                            chunk,
                            end == data.len(),
                        );
                    }
                    _ => node.handle_snapshot_unavailable(to),
                },
                Output::StageSnapshotChunk { offset, data, .. } => {
                    self.staging.truncate(offset as usize);
                    self.staging.extend_from_slice(&data);
                }
                Output::LeaderChanged { .. } => {}
            }
        }
    }

    /// Makes up to `n` pending writes durable and reports them.
    pub fn complete_writes(&mut self, n: usize) {
        let mut last = None;
        for _ in 0..n {
            let Some((p, snap)) = self.disk.pending.pop_front() else {
                break;
            };
            self.disk.apply(&p, &snap);
            last = Some(p.id);
        }
        if let (Some(id), Some(node)) = (last, self.node.as_mut()) {
            node.handle_persisted(id).expect("known persist id");
        }
    }

    /// Loses everything not durable.
    pub fn crash(&mut self) {
        self.node = None;
        self.disk.pending.clear();
        self.staging.clear();
        self.proposals.clear();
    }

    pub fn restart(&mut self) {
        let (snapshot, sm) = match &self.disk.snapshot {
            Some((m, data)) => (Some(m.clone()), Sm::decode(data)),
            None => (None, Sm::default()),
        };
        self.sm = sm;
        let rec = Recovered {
            hard_state: self.disk.hard_state,
            snapshot,
            entries: self.disk.entries.clone(),
            applied: self.sm.applied,
        };
        // Each start gets its own seed, as `Config::seed` asks (follower read ids must not
        // repeat across restarts).
        self.cfg.seed = self.cfg.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.node = Some(Node::new(self.cfg.clone(), rec).expect("recoverable"));
    }

    /// Takes a snapshot of the state machine and compacts the log up to it.
    pub fn compact(&mut self) -> bool {
        let Some(node) = self.node.as_mut() else {
            return false;
        };
        let idx = self.sm.applied;
        if idx <= node.snapshot_meta().index || idx > node.applied_index() {
            return false;
        }
        if node.compact(idx).is_err() {
            return false;
        }
        let meta = node.snapshot_meta().clone();
        let base = self
            .disk
            .snapshot
            .as_ref()
            .map(|s| s.0.index.0)
            .unwrap_or(0);
        let drop = (idx.0 - base) as usize;
        self.disk.entries.drain(..drop.min(self.disk.entries.len()));
        self.disk.snapshot = Some((meta, self.sm.encode()));
        true
    }

    pub fn propose(&mut self, id: ProposalId, value: u64) {
        if let Some(n) = self.node.as_mut() {
            self.proposals.insert(id, value);
            n.propose(id, value.to_le_bytes().to_vec());
        }
    }
}
