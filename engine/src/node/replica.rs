//! [`Node`]: one replica of one region — a Raft peer, its durable log, the LSM store and the
//! apply loop — as one deterministic state machine.
//!
//! # Calling protocol
//!
//! ```text
//! let mut node = Node::open(config, now);     // recovery starts on both disks
//! loop {
//!     while let Some(out) = node.poll() {      // drain after every input, in order
//!         match out {
//!             NodeOutput::Send { to, msg }      => send the bytes to peer `to` (loss is fine),
//!             NodeOutput::Io { disk, id, req }  => carry it out on `disk` (requests for one
//!                                                  file in order), then node.handle_io(now, id, result),
//!             NodeOutput::Job(job)              => run the store job on the store disk, then
//!                                                  node.handle_job(now, job),
//!             NodeOutput::Reply { id, result }  => answer the client request `id`,
//!             NodeOutput::Event(e)              => for traces and metrics (Failed: stop the node),
//!         }
//!     }
//!     // inputs: node.submit(now, id, request) (or node.submit_all(now, requests) for several
//!     // that arrived together), node.handle_message(now, bytes), completions, and
//!     // node.handle_timeout(now) once node.next_deadline() has passed.
//! }
//! ```
//!
//! Request ids are the driver's (unique among the requests waiting at this node). Every
//! submitted request gets exactly one `Reply`. A crash is the driver dropping the node (and
//! the unsynced bytes of both disks); a restart is `Node::open` again **with a new
//! `config.raft.seed`** (the Raft core requires a different seed at every start).
//!
//! **Writes** are proposed with the leader's clock and answered after apply (see
//! [`super::apply`]); a write at a follower is refused with `NotLeader { leader }`.
//! **Linearizable reads** take a Raft read index (on the leader, or forwarded by a follower)
//! and run once apply has reached it; a new leader answers none before it has committed an
//! entry of its own term. **Stale reads** at a timestamp run at once on any replica that has
//! applied past it. **Durability:** the Raft log is the store's write-ahead log (one sync per
//! group of persists); the store runs without a WAL and flushes every `flush_interval_ms`,
//! recording the applied index; the log is compacted behind the store's durable mark.
//! **Recovery** opens both, starts Raft from the log with `applied` = the store's durable
//! mark, and replays the committed entries after it.
use super::apply::{ApplyConfig, Applier};
use super::command::{LogCommand, WriteCommand};
use super::io::{IoRouter, Owner};
use super::raftlog::{LogConfig, RaftLog};
use super::read::Reader;
use super::requests::{PendingRead, PendingWrite, ReadStage, Requests};
use super::state::ConfRecord;
use super::wire::{ClientError, ClientOp, ClientReply, ClientRequest, Consistency, Epoch, PeerBody, PeerMessage, RegionId};
use crate::lsm::config::{Config as StoreConfig, Durability};
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::{IoId, IoRequest, IoResult};
use crate::lsm::job::Job;
use crate::lsm::sstable::Block;
use crate::lsm::store::{ReqId, Request, Store};
use crate::mvcc::Ts;
use alloc::collections::VecDeque;
use alloc::string::ToString;
use alloc::vec::Vec;
use strata_raft::{
    Config as RaftConfig, DropReason, Index, NodeId, ReadFailure, Recovered,
};

/// Everything a [`Node`] needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The Raft peer: id, the voters of a new region, timing; **a new `seed` at every start**.
    pub raft: RaftConfig,
    /// The region this node serves (one region per node for now).
    pub region: RegionId,
    /// The region's epoch.
    pub epoch: Epoch,
    /// The store (its durability is set to `External`: the Raft log is its WAL).
    pub store: StoreConfig,
    /// The Raft log.
    pub log: LogConfig,
    /// SST blocks kept for apply's and reads' lookups.
    pub block_cache_bytes: usize,
    /// Milliseconds per Raft tick. Default 100.
    pub tick_ms: u64,
    /// A request not answered within this many ms is answered `Unknown`. Default 5,000.
    pub request_timeout_ms: u64,
    /// Flush the store this often when it holds applied entries not yet durable. Default 1,000.
    pub flush_interval_ms: u64,
    /// Log entries kept behind the store's durable mark, for followers that lag (a follower
    /// further behind needs a snapshot). Default 100,000.
    pub log_keep_entries: u64,
    /// Requests waiting at most; beyond it requests are refused with `Busy`. Default 10,000.
    pub max_pending_requests: usize,
    /// Largest key accepted. Default 8 KiB.
    pub max_key_bytes: usize,
    /// Largest value accepted. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Most compares and steps in one transaction. Default 128.
    pub max_txn_ops: usize,
    /// A learner being added is promoted to voter once its match index is within this many
    /// entries of the leader's commit index. Default 64.
    pub learner_catch_up_entries: u64,
}

impl NodeConfig {
    /// Defaults for node `id` of a new region 1 with `voters`; `seed` must differ per start.
    pub fn new(id: NodeId, voters: Vec<NodeId>, seed: u64) -> NodeConfig {
        let mut raft = RaftConfig::new(id, voters);
        raft.seed = seed;
        NodeConfig {
            raft,
            region: RegionId(1),
            epoch: Epoch::INITIAL,
            store: StoreConfig::default(),
            log: LogConfig::default(),
            block_cache_bytes: 8 << 20,
            tick_ms: 100,
            request_timeout_ms: 5_000,
            flush_interval_ms: 1_000,
            log_keep_entries: 100_000,
            max_pending_requests: 10_000,
            max_key_bytes: 8 << 10,
            max_value_bytes: 1 << 20,
            max_txn_ops: 128,
            learner_catch_up_entries: 64,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Opening { store_ready: bool, log: Option<Recovered> },
    Running,
    Failed(NodeError),
}

/// One replica of one region. See the module docs for the calling protocol.
pub struct Node {
    cfg: NodeConfig,
    phase: Phase,
    store: Store,
    log: RaftLog,
    applier: Applier,
    raft: Option<strata_raft::Node>,
    reader: Reader,
    requests: Requests,
    io: IoRouter,
    out: VecDeque<NodeOutput>,
    next_tick_ms: u64,
    next_flush_ms: u64,
    flush: Option<ReqId>,
    snap: super::snapshot::SnapState,
    /// The store's durable mark the log was last compacted behind.
    compacted_mark: u64,
    /// The admin request under way at this node (`replica/admin.rs`).
    admin: Option<admin::PendingAdmin>,
    /// Removed from the region and not leading: serves nothing more.
    retired: bool,
    /// A member said this node was removed (`PeerBody::Removed`).
    told_removed: bool,
    stats: NodeStats,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.cfg.raft.id)
            .field("phase", &self.phase)
            .field("applied", &self.applier.applied())
            .finish_non_exhaustive()
    }
}

mod admin;
mod output;
mod pump;
mod snapshot;

pub use output::{NodeError, NodeEvent, NodeOutput, NodeStats, PeerError};

impl Node {
    /// Opens the node's store and log (recovery starts; drain [`Node::poll`]).
    pub fn open(mut cfg: NodeConfig, now_ms: u64) -> Node {
        // The Raft log is the store's write-ahead log: the store writes none of its own, and
        // each flush records the index of the last entry it holds (`Store::durable_mark`).
        cfg.store.durability = Durability::External;
        let store = Store::open(cfg.store.clone());
        // The applier reads its state back once the store is open.
        let initial_conf = ConfRecord::initial(&cfg.raft.voters, &cfg.raft.learners, cfg.epoch.conf_ver);
        let applier = Applier::new(ApplyConfig { block_cache_bytes: cfg.block_cache_bytes / 2, epoch: cfg.epoch, initial_conf });
        let mut node = Node {
            phase: Phase::Opening { store_ready: false, log: None },
            store,
            log: RaftLog::open(cfg.log.clone()),
            applier,
            raft: None,
            reader: Reader::new(cfg.block_cache_bytes / 2),
            requests: Requests::default(),
            io: IoRouter::default(),
            out: VecDeque::new(),
            next_tick_ms: now_ms + cfg.tick_ms.max(1),
            next_flush_ms: now_ms + cfg.flush_interval_ms.max(1),
            flush: None,
            snap: Default::default(),
            compacted_mark: 0,
            admin: None,
            retired: false,
            told_removed: false,
            stats: NodeStats::default(),
            cfg,
        };
        node.pump(now_ms);
        node
    }

    /// Takes the next output. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<NodeOutput> {
        self.out.pop_front()
    }

    /// Submits a client request; its answer comes out as [`NodeOutput::Reply`] with `id`.
    pub fn submit(&mut self, now_ms: u64, id: u64, req: ClientRequest) {
        self.accept(now_ms, id, req);
        self.pump(now_ms);
    }

    /// Submits requests that arrived together (each admitted as by [`Node::submit`]), then
    /// runs the node once: writes proposed together reach the log as one persist and each
    /// follower as one append — group commit of proposals, as etcd batches the proposals of
    /// one `Ready`. A driver that reads several requests at once should use this.
    pub fn submit_all(&mut self, now_ms: u64, reqs: impl IntoIterator<Item = (u64, ClientRequest)>) {
        for (id, req) in reqs {
            self.accept(now_ms, id, req);
        }
        self.pump(now_ms);
    }

    /// Admits and starts one request (proposes a write, starts a read); the caller pumps.
    fn accept(&mut self, now_ms: u64, id: u64, req: ClientRequest) {
        if let Err(e) = self.admit(id, &req) {
            self.reply(id, Err(e));
        } else {
            match req.op {
                ClientOp::Write { client, seq, op } => {
                    let epoch = self.epoch();
                    let Some(raft) = self.raft.as_mut() else { return };
                    if !raft.is_leader() {
                        let leader = raft.leader().map(|l| l.0);
                        self.reply(id, Err(ClientError::NotLeader { leader }));
                    } else {
                        let cmd = WriteCommand { epoch, clock_ms: now_ms, client, seq, op };
                        let proposal = self.requests.next_proposal();
                        raft.propose(proposal, LogCommand::Write(cmd).encode());
                        self.stats.proposals += 1;
                        let deadline = now_ms.saturating_add(self.cfg.request_timeout_ms);
                        self.requests.add_write(id, PendingWrite { client, seq, proposal, deadline });
                    }
                }
                ClientOp::Admin(op) => self.admin_submit(now_ms, id, op),
                ClientOp::Read { key, consistency: Consistency::Linearizable } => {
                    let Some(raft) = self.raft.as_mut() else { return };
                    let rid = raft.read_index();
                    let deadline = now_ms.saturating_add(self.cfg.request_timeout_ms);
                    self.requests.add_read(id, PendingRead { key, stage: ReadStage::Index(rid), deadline });
                }
                ClientOp::Read { key, consistency: Consistency::Stale { ts } } => {
                    let applied_ts = self.applier.last_ts().0;
                    if ts > applied_ts {
                        self.reply(id, Err(ClientError::DataNotReady { applied_ts }));
                    } else {
                        self.requests.add_read(id, PendingRead { key: key.clone(), stage: ReadStage::Running, deadline: u64::MAX });
                        self.reader.start(&self.store, id, key, Ts(ts));
                    }
                }
            }
        }
    }

    /// Feeds bytes from a peer.
    pub fn handle_message(&mut self, now_ms: u64, bytes: &[u8]) -> Result<(), PeerError> {
        let m = PeerMessage::decode(bytes).map_err(PeerError::Decode)?;
        if m.region != self.cfg.region {
            return Err(PeerError::UnknownRegion(m.region));
        }
        if self.retired {
            return Err(PeerError::Removed);
        }
        if self.raft.is_none() {
            return Err(PeerError::NotReady);
        }
        let msg = match m.body {
            PeerBody::Raft(msg) => msg,
            PeerBody::Removed { node, by } => {
                // A member applied this node's removal (ids are never reused): stop.
                if node == self.cfg.raft.id.0 && self.applier.conf().is_member(NodeId(by)) {
                    self.told_removed = true;
                    self.pump(now_ms);
                }
                return Ok(());
            }
        };
        if matches!(msg.body, strata_raft::Body::RequestVote { .. }) && self.applier.conf().is_removed(msg.from) {
            // A removed node that has not learned it campaigns: tell it, and drop the request.
            // (A removed leader's own messages go through: it leads until it has handed
            // leadership to a voter.)
            let body = PeerBody::Removed { node: msg.from.0, by: self.cfg.raft.id.0 };
            let reply = PeerMessage { region: self.cfg.region, epoch: self.epoch(), body };
            self.out.push_back(NodeOutput::Send { to: msg.from, msg: reply.encode() });
            return Ok(());
        }
        self.check_snapshot_chunk(&msg).map_err(PeerError::Snapshot)?;
        let raft = self.raft.as_mut().ok_or(PeerError::NotReady)?;
        let r = raft.step(msg).map_err(PeerError::Raft);
        self.pump(now_ms);
        r
    }

    /// Feeds the completion of I/O request `id` (from [`NodeOutput::Io`]).
    pub fn handle_io(&mut self, now_ms: u64, id: IoId, result: IoResult) {
        match self.io.complete(id) {
            Some(Owner::Store(sid)) => self.store.handle_io(now_ms, sid, result),
            Some(Owner::Log(lid)) => self.log.handle_io(lid, result),
            Some(Owner::ApplyBlock(file, handle)) => {
                let b = block_result(file, handle, result);
                self.applier.handle_block(now_ms, &mut self.store, file, handle, b);
            }
            Some(Owner::ReadBlock(file, handle)) => {
                let b = block_result(file, handle, result);
                self.reader.handle_block(&self.store, file, handle, b);
            }
            Some(Owner::SnapRead(read, part)) => self.snapshot_read_done(read, part, result),
            Some(Owner::SnapWrite(index)) => self.snapshot_write_done(index, &result),
            Some(Owner::SnapDelete) => {}
            None => return,
        }
        self.pump(now_ms);
    }

    /// Takes back a store job emitted as [`NodeOutput::Job`].
    pub fn handle_job(&mut self, now_ms: u64, job: Job) {
        self.store.handle_job(now_ms, job);
        self.pump(now_ms);
    }

    /// Feeds the time: Raft ticks, request deadlines, periodic flushes.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let tick = self.cfg.tick_ms.max(1);
        while now_ms >= self.next_tick_ms {
            // A removed node never campaigns.
            if let Some(r) = self.raft.as_mut().filter(|_| !self.retired) {
                r.tick();
            }
            self.snapshot_tick();
            self.next_tick_ms += tick;
        }
        for (id, _) in self.requests.expire(now_ms) {
            self.reply(id, Err(ClientError::Unknown));
        }
        if now_ms >= self.next_flush_ms {
            self.next_flush_ms = now_ms + self.cfg.flush_interval_ms.max(1);
            self.maybe_flush(now_ms);
        }
        if self.store.next_deadline().is_some_and(|d| d <= now_ms) {
            self.store.handle_timeout(now_ms);
        }
        self.pump(now_ms);
    }

    /// When the node next wants [`Node::handle_timeout`].
    pub fn next_deadline(&self) -> Option<u64> {
        if matches!(self.phase, Phase::Failed(_)) {
            return None;
        }
        let mut d = self.next_tick_ms.min(self.next_flush_ms);
        for x in [self.requests.next_deadline(), self.store.next_deadline()].into_iter().flatten() {
            d = d.min(x);
        }
        Some(d)
    }

    // ----- getters -----

    /// The Raft peer (once recovered).
    pub fn raft(&self) -> Option<&strata_raft::Node> {
        self.raft.as_ref()
    }

    /// True when this node is the region's leader.
    pub fn is_leader(&self) -> bool {
        self.raft.as_ref().is_some_and(|r| r.is_leader())
    }

    /// True once recovery finished and the node has not failed.
    pub fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running)
    }

    /// Why the node stopped, if it did.
    pub fn failure(&self) -> Option<&NodeError> {
        match &self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The index of the last applied entry.
    pub fn applied(&self) -> Index {
        self.applier.applied()
    }

    /// The region's epoch as applied here (`conf_ver` counts the membership changes).
    pub fn epoch(&self) -> Epoch {
        self.applier.conf().epoch(self.cfg.epoch.version)
    }

    /// The commit timestamp of the newest applied write.
    pub fn applied_ts(&self) -> u64 {
        self.applier.last_ts().0
    }

    /// The store (for digests and inspection; the node owns it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        NodeStats { log_syncs: self.log.stats().syncs, ..self.stats }
    }

    /// The Raft log's counters.
    pub fn log_stats(&self) -> super::raftlog::LogStats {
        self.log.stats()
    }

    /// Snapshot counters.
    pub fn snapshot_stats(&self) -> super::snapshot::SnapStats {
        self.snap.stats
    }

    /// Requests waiting at this node.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    /// True when nothing is in flight: no I/O, no job, nothing to apply or answer.
    pub fn is_idle(&self) -> bool {
        self.io.in_flight() == 0
            && self.out.is_empty()
            && self.store.is_idle()
            && self.log.is_idle()
            && self.applier.is_idle()
            && self.snap.held.is_empty()
            && self.raft.as_ref().is_none_or(|r| !r.has_output())
    }

    /// Panics when an internal invariant is broken (simulations call it after every step).
    pub fn check_invariants(&self) {
        self.store.check_invariants();
        self.applier.check_invariants();
        if let Some(r) = &self.raft {
            r.check_invariants();
            assert!(self.applier.applied() <= r.applied_index(), "applied an entry Raft did not hand out");
        }
    }

    // ----- helpers -----

    /// Checks what every request must pass before anything else.
    fn admit(&self, id: u64, req: &ClientRequest) -> Result<(), ClientError> {
        match &self.phase {
            Phase::Running => {}
            Phase::Opening { .. } => return Err(ClientError::Unavailable("recovering".to_string())),
            Phase::Failed(e) => return Err(ClientError::Unavailable(e.to_string())),
        }
        if req.region != self.cfg.region {
            return Err(ClientError::RegionNotFound { region: req.region });
        }
        if self.retired {
            return Err(ClientError::Removed { region: req.region });
        }
        // Data requests are checked against the epoch's `version` (splits and merges), admin
        // requests against all of it: a membership change made by someone else since the
        // caller looked is refused (TiKV's rules).
        let current = self.epoch();
        let admin = matches!(req.op, ClientOp::Admin(_));
        if req.epoch.version != current.version || (admin && req.epoch != current) {
            return Err(ClientError::EpochMismatch { current });
        }
        if self.requests.contains(id) {
            return Err(ClientError::Invalid("request id already waiting".to_string()));
        }
        if self.requests.len() >= self.cfg.max_pending_requests {
            return Err(ClientError::Busy);
        }
        let key = match &req.op {
            ClientOp::Admin(_) => return Ok(()),
            ClientOp::Read { key, .. } => key.as_slice(),
            ClientOp::Write { op, seq, .. } => {
                if *seq == 0 {
                    return Err(ClientError::Invalid("sequence numbers start at 1".to_string()));
                }
                let value_len = match op {
                    super::wire::WriteOp::Put { value, .. } => value.len(),
                    super::wire::WriteOp::Cas { expected, new, .. } => {
                        expected.as_ref().map_or(0, Vec::len).max(new.as_ref().map_or(0, Vec::len))
                    }
                    super::wire::WriteOp::Delete { .. } => 0,
                    super::wire::WriteOp::Txn(t) => {
                        if t.is_empty() || t.len() > self.cfg.max_txn_ops {
                            return Err(ClientError::Invalid("a transaction needs 1 to max_txn_ops compares and steps".to_string()));
                        }
                        if t.keys().any(|k| k.is_empty() || k.len() > self.cfg.max_key_bytes) {
                            return Err(ClientError::Invalid("key empty or too large".to_string()));
                        }
                        t.max_value_len()
                    }
                };
                if value_len > self.cfg.max_value_bytes {
                    return Err(ClientError::Invalid("value too large".to_string()));
                }
                op.key()
            }
        };
        if key.is_empty() || key.len() > self.cfg.max_key_bytes {
            return Err(ClientError::Invalid("key empty or too large".to_string()));
        }
        Ok(())
    }

    fn reply(&mut self, id: u64, result: Result<ClientReply, ClientError>) {
        self.out.push_back(NodeOutput::Reply { id, result });
    }

    fn event(&mut self, e: NodeEvent) {
        self.out.push_back(NodeOutput::Event(e));
    }

    fn fail(&mut self, e: NodeError) {
        if matches!(self.phase, Phase::Failed(_)) {
            return;
        }
        self.phase = Phase::Failed(e.clone());
        self.event(NodeEvent::Failed(e.clone()));
        self.raft = None;
        if let Some(a) = self.admin.take() {
            self.reply(a.id, Err(ClientError::Unavailable(e.to_string())));
        }
        for (id, _) in self.requests.expire(u64::MAX) {
            self.reply(id, Err(ClientError::Unavailable(e.to_string())));
        }
    }

    /// Flushes the store if it holds applied batches that are not yet durable (entries that
    /// write nothing need no flush: replaying them writes nothing either).
    fn maybe_flush(&mut self, now_ms: u64) {
        if self.flush.is_none() && self.is_running() && self.applier.state().index > self.store.durable_mark() {
            self.flush = Some(self.store.submit(now_ms, Request::Flush));
        }
    }
}

/// The read of one SST block.
fn block_read(file: crate::lsm::io::FileName, handle: crate::lsm::sstable::BlockHandle) -> IoRequest {
    IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }
}

fn block_result(file: crate::lsm::io::FileName, handle: crate::lsm::sstable::BlockHandle, r: IoResult) -> Result<Block, StoreError> {
    match r {
        IoResult::Data(raw) => Block::decode(file, handle, raw),
        IoResult::Failed(error) => Err(StoreError::Io { file: Some(file), op: "read", error }),
        other => Err(StoreError::Io {
            file: Some(file),
            op: "read",
            error: crate::lsm::io::IoError::Other(alloc::format!("unexpected completion {other:?}")),
        }),
    }
}

/// Maps a read failure to what the client is told.
fn read_failure(f: ReadFailure, leader: Option<NodeId>) -> ClientError {
    match f {
        ReadFailure::NoLeader | ReadFailure::LeaderChanged => ClientError::NotLeader { leader: leader.map(|l| l.0) },
        ReadFailure::TimedOut => ClientError::Unknown,
    }
}

/// Maps a dropped proposal to what the client is told.
fn drop_reason(r: DropReason) -> ClientError {
    match r {
        DropReason::NotLeader { leader } => ClientError::NotLeader { leader: leader.map(|l| l.0) },
        DropReason::TransferInProgress => ClientError::NotLeader { leader: None },
        DropReason::UncommittedLimit => ClientError::Busy,
        DropReason::Superseded => ClientError::Unknown,
        DropReason::InvalidConfChange(_) => ClientError::Invalid("configuration change refused".to_string()),
    }
}
