//! The replicated node's CPU cost per committed write, against the standalone store's.
//!
//! [`InlineCluster`] runs N [`Node`]s in one thread with a zero-latency network and in-memory
//! disks ([`SimDisk`], no faults): every output is carried out at once, in order, until the
//! cluster is quiet. Only CPU work is left — Raft, the log's records, the store, apply,
//! encodings — so instructions per write measure what replication costs. Each write is a
//! session `Put`, applied on every replica as an MVCC one-phase commit (`mvcc::cas::txn`).
//!
//! [`InlineStore`] runs the standalone LSM `Store` the same way (`Durability::SyncEachWrite`,
//! its WAL on the in-memory disk) with the same keys and values, in one of three
//! [`StoreKind`]s: a raw single-put batch, or a versioned one-key put through the MVCC
//! executor — `strata::Db`'s one-phase commit, or etcd's `Txn` put, the same `cas::txn` the
//! node's apply runs. Both sides keep `window` writes in flight (pipelined clients, so group
//! commit and batching work as they would under load).
//!
//! Both check their work: every write must be acknowledged without error (per window), and
//! [`InlineCluster::verify`] / [`InlineStore::verify`] read the data back.
//!
//! Used by `benches/node.rs` (criterion) and `examples/node_cost.rs` (callgrind).
use std::collections::{BTreeMap, VecDeque};
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::{Config as StoreConfig, Durability};
use strata_engine::lsm::io::{IoRequest, IoResult};
use strata_engine::lsm::job::{Job, JobStep};
use strata_engine::lsm::sstable::Block;
use strata_engine::lsm::error::Error as StoreError;
use strata_engine::lsm::store::{Output, Reply, ReqId, Request, Store};
use strata_engine::mvcc::cas::{TxnOp, TxnRequest};
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::etcd::EtcdCommand;
use strata_engine::mvcc::exec::{CmdId, ExecConfig, ExecOutput, Executor};
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest};
use strata_engine::mvcc::Ts;
use strata_engine::node::io::Disk;
use strata_engine::node::wire::{ClientId, ClientOp, ClientReply, ClientRequest, Consistency, Epoch, RegionId, WriteOp};
use strata_engine::node::{Node, NodeConfig, NodeOutput};
use strata_raft::NodeId;
use strata_sim::cluster::trace::data_digest;
use strata_sim::disk::SimDisk;

fn run_job(disk: &mut SimDisk, job: &mut Job) {
    loop {
        match job.step() {
            JobStep::Read { file, offset, len } => {
                let r = disk.execute(IoRequest::Read { file, offset, len });
                job.handle_read(match r {
                    IoResult::Data(d) => Ok(d),
                    IoResult::Failed(e) => Err(e),
                    other => panic!("a read answered {other:?}"),
                });
            }
            JobStep::WriteFile { file, data } => {
                let r = disk.write_file(file, &data);
                job.handle_write(r);
            }
            JobStep::Done => break,
        }
    }
}

/// N nodes in one thread: zero-latency network, in-memory disks.
pub struct InlineCluster {
    nodes: Vec<Node>,
    disks: Vec<[SimDisk; 2]>,
    net: VecDeque<(usize, Vec<u8>)>,
    now: u64,
    leader: usize,
    next_request: u64,
    seqs: Vec<u64>,
    /// Answers to reads, by request id.
    reads: BTreeMap<u64, Option<Vec<u8>>>,
    /// Writes answered `Ok` so far.
    pub acknowledged: u64,
    /// Requests answered with an error so far.
    pub errors: u64,
    /// Submit a window's writes one by one ([`Node::submit`], each run through Raft before the
    /// next) instead of together ([`Node::submit_all`], the default).
    pub one_by_one: bool,
}

impl InlineCluster {
    /// `n` nodes, elected: node 1 leads.
    pub fn new(n: u64, memtable_bytes: usize) -> InlineCluster {
        let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let nodes = (1..=n)
            .map(|k| {
                let mut cfg = NodeConfig::new(NodeId(k), ids.clone(), k);
                cfg.store = StoreConfig { memtable_bytes, ..StoreConfig::default() };
                // Time stands still while writes run: no periodic flush, no election.
                cfg.flush_interval_ms = u64::MAX / 4;
                cfg.request_timeout_ms = u64::MAX / 4;
                Node::open(cfg, 0)
            })
            .collect();
        let disks = (0..n).map(|k| [SimDisk::new(k), SimDisk::new(k + 100)]).collect();
        let mut c = InlineCluster {
            nodes,
            disks,
            net: VecDeque::new(),
            now: 0,
            leader: 0,
            next_request: 1,
            seqs: Vec::new(),
            reads: BTreeMap::new(),
            acknowledged: 0,
            errors: 0,
            one_by_one: false,
        };
        c.settle();
        // Node 1 campaigns first; the others only after an election timeout of their own.
        while !c.nodes[0].is_leader() {
            c.now += 10;
            let now = c.now;
            c.nodes[0].handle_timeout(now);
            c.settle();
        }
        c.leader = 0;
        c
    }

    /// Submits one put per pair (session `i + 1` for the `i`-th pair: sessions are reused
    /// from window to window; see [`InlineCluster::one_by_one`]) and runs until every node is
    /// quiet. Panics unless every one of
    /// them was acknowledged without error.
    pub fn put_window(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        if self.seqs.len() < pairs.len() {
            self.seqs.resize(pairs.len(), 0);
        }
        let before = self.acknowledged;
        let mut reqs = Vec::with_capacity(pairs.len());
        for (i, (k, v)) in pairs.iter().enumerate() {
            self.seqs[i] += 1;
            let op = ClientOp::Write { client: ClientId(i as u64 + 1), seq: self.seqs[i], op: WriteOp::Put { key: k.clone(), value: v.clone() } };
            reqs.push((self.next_request, ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op }));
            self.next_request += 1;
        }
        let now = self.now;
        if self.one_by_one {
            for (id, req) in reqs {
                self.nodes[self.leader].submit(now, id, req);
            }
        } else {
            // The window arrives together: one proposal batch.
            self.nodes[self.leader].submit_all(now, reqs);
        }
        self.settle();
        assert_eq!((self.acknowledged - before, self.errors), (pairs.len() as u64, 0), "a window of writes was not acknowledged");
    }

    /// Followers learn the last commit index with the next heartbeat: one tick's worth.
    pub fn heartbeat(&mut self) {
        self.now += 100;
        let now = self.now;
        self.nodes[self.leader].handle_timeout(now);
        self.settle();
    }

    /// The applied index of every node.
    pub fn applied(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.applied().0).collect()
    }

    /// Checks that `pairs` (the writes so far, in order; the last write of a key wins) were
    /// committed and applied everywhere: every node applied `pairs.len()` write entries to
    /// the same index, the replicas' data is identical, and a read at each node returns
    /// every key's last value. Panics otherwise.
    pub fn verify(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        self.heartbeat();
        let applied = self.applied();
        assert!(applied.iter().all(|&a| a == applied[0]), "replicas applied {applied:?}");
        for (k, n) in self.nodes.iter().enumerate() {
            assert_eq!(n.stats().writes_applied, pairs.len() as u64, "node {} applied too few writes", k + 1);
        }
        let digests: Vec<u64> = (0..self.nodes.len()).map(|k| data_digest(&self.nodes[k], &mut self.disks[k][0])).collect();
        assert!(digests.iter().all(|&d| d == digests[0]), "replicas differ: {digests:02x?}");
        let last: BTreeMap<&[u8], &[u8]> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        for k in 0..self.nodes.len() {
            let ts = self.nodes[k].applied_ts();
            for (key, value) in &last {
                let id = self.submit(k, ClientOp::Read { key: key.to_vec(), consistency: Consistency::Stale { ts } });
                self.settle();
                let got = self.reads.remove(&id).unwrap_or_else(|| panic!("node {}: no answer to a read", k + 1));
                assert_eq!(got.as_deref(), Some(*value), "node {}: key {key:02x?}", k + 1);
            }
        }
        assert_eq!(self.errors, 0, "a read failed");
    }

    fn submit(&mut self, node: usize, op: ClientOp) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        let now = self.now;
        self.nodes[node].submit(now, id, ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op });
        id
    }

    /// Carries out outputs until nothing is left anywhere.
    fn settle(&mut self) {
        loop {
            let mut progress = false;
            for k in 0..self.nodes.len() {
                progress |= self.drain(k);
            }
            while let Some((to, msg)) = self.net.pop_front() {
                progress = true;
                let now = self.now;
                self.nodes[to].handle_message(now, &msg).expect("a peer message the node refused");
                self.drain(to);
            }
            if !progress {
                return;
            }
        }
    }

    fn drain(&mut self, k: usize) -> bool {
        let mut progress = false;
        while let Some(out) = self.nodes[k].poll() {
            progress = true;
            let now = self.now;
            match out {
                NodeOutput::Send { to, msg } => self.net.push_back((to.0 as usize - 1, msg)),
                NodeOutput::Io { disk, id, req } => {
                    let r = self.disks[k][usize::from(disk == Disk::Log)].execute(req);
                    self.nodes[k].handle_io(now, id, r);
                }
                NodeOutput::Job(mut job) => {
                    run_job(&mut self.disks[k][0], &mut job);
                    self.nodes[k].handle_job(now, job);
                }
                NodeOutput::Reply { id, result } => match result {
                    Ok(ClientReply::Value { value, .. }) => {
                        self.reads.insert(id, value);
                    }
                    Ok(_) => self.acknowledged += 1,
                    Err(_) => self.errors += 1,
                },
                NodeOutput::Event(_) => {}
            }
        }
        progress
    }
}

/// What one standalone write is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// A raw single-put batch (`Request::Write`): no versions.
    Raw,
    /// `strata::Db::put`: a one-key MVCC one-phase commit through the executor
    /// (`Command::OnePc`, timestamps from its oracle).
    OnePc,
    /// etcd's `Txn` with one put through the executor (`EtcdCommand::Txn`): `mvcc::cas::txn`,
    /// the command the replicated node's apply runs for a put.
    EtcdPut,
}

impl StoreKind {
    /// The kind named `raw`, `onepc` or `etcd`.
    pub fn parse(s: &str) -> Option<StoreKind> {
        match s {
            "raw" => Some(StoreKind::Raw),
            "onepc" => Some(StoreKind::OnePc),
            "etcd" => Some(StoreKind::EtcdPut),
            _ => None,
        }
    }
}

/// The standalone store, driven the same way (with the MVCC executor beside it for the
/// versioned kinds).
pub struct InlineStore {
    store: Store,
    /// The MVCC executor (versioned kinds).
    exec: Option<Executor>,
    kind: StoreKind,
    disk: SimDisk,
    reads: BTreeMap<CmdId, Option<Vec<u8>>>,
    /// Writes acknowledged so far.
    pub acknowledged: u64,
}

impl InlineStore {
    /// An open store with its WAL synced per write group (`SyncEachWrite`).
    pub fn new(kind: StoreKind, memtable_bytes: usize) -> InlineStore {
        let mut store = Store::open(StoreConfig { memtable_bytes, durability: Durability::SyncEachWrite, ..StoreConfig::default() });
        let mut disk = SimDisk::new(1);
        let mut replies = Vec::new();
        drain_store(&mut store, &mut disk, &mut replies);
        assert!(store.is_open() && replies.is_empty());
        let exec = (kind != StoreKind::Raw).then(|| Executor::open(ExecConfig { applied_notifications: false, ..ExecConfig::default() }, 0, &mut store));
        let mut s = InlineStore { store, exec, kind, disk, reads: BTreeMap::new(), acknowledged: 0 };
        s.settle();
        s
    }

    /// Submits one write per pair, all in flight at once, and runs until quiet. Panics unless
    /// every one of them was acknowledged.
    pub fn put_window(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        let before = self.acknowledged;
        for (k, v) in pairs {
            match self.kind {
                StoreKind::Raw => {
                    let mut b = Batch::new();
                    b.put(k, v);
                    self.store.submit(0, Request::Write(b));
                }
                StoreKind::OnePc => {
                    let mut req = PrewriteRequest::new(Vec::new(), Ts::ZERO, 3_000);
                    req.mutations.push(Mutation::Put(k.clone(), v.clone()));
                    self.command(Command::OnePc(req));
                }
                StoreKind::EtcdPut => {
                    let put = TxnOp::Put { key: k.clone(), value: v.clone(), lease: None };
                    let req = TxnRequest { success: vec![put], ..TxnRequest::default() };
                    self.command(Command::Etcd(EtcdCommand::Txn(req)));
                }
            }
        }
        self.settle();
        assert_eq!(self.acknowledged - before, pairs.len() as u64, "a window of writes was not acknowledged");
    }

    /// Checks that a read returns every key's last value (`pairs` as for
    /// [`InlineCluster::verify`]). Panics otherwise.
    pub fn verify(&mut self, pairs: &[(Vec<u8>, Vec<u8>)]) {
        let last: BTreeMap<&[u8], &[u8]> = pairs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        for (key, value) in last {
            let got = match self.kind {
                StoreKind::Raw => {
                    self.store.submit(0, Request::Get { key: key.to_vec(), snapshot: None });
                    let mut replies = Vec::new();
                    drain_store(&mut self.store, &mut self.disk, &mut replies);
                    match replies.pop() {
                        Some((_, Ok(Reply::Value(v)))) => v,
                        other => panic!("a get answered {other:?}"),
                    }
                }
                StoreKind::OnePc | StoreKind::EtcdPut => {
                    let id = self.command(Command::Get { key: key.to_vec(), read_ts: Ts::ZERO });
                    self.settle();
                    self.reads.remove(&id).expect("an answer to a get")
                }
            };
            assert_eq!(got.as_deref(), Some(value), "key {key:02x?}");
        }
    }

    fn command(&mut self, cmd: Command) -> CmdId {
        self.exec.as_mut().expect("a versioned store").submit(0, &mut self.store, cmd)
    }

    fn settle(&mut self) {
        let mut replies = Vec::new();
        loop {
            let mut progress = drain_store(&mut self.store, &mut self.disk, &mut replies);
            let Some(exec) = self.exec.as_mut() else {
                for (_, r) in replies.drain(..) {
                    r.expect("a write failed");
                    self.acknowledged += 1;
                }
                if progress {
                    continue;
                }
                return;
            };
            for (id, r) in replies.drain(..) {
                assert!(exec.handle_store_reply(0, &mut self.store, id, r), "a store reply nobody owns");
            }
            while let Some(out) = exec.poll() {
                progress = true;
                match out {
                    ExecOutput::ReadBlock { file, handle } => {
                        let r = match self.disk.execute(IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) }) {
                            IoResult::Data(raw) => Block::decode(file, handle, raw),
                            other => panic!("a block read answered {other:?}"),
                        };
                        exec.handle_block(0, &mut self.store, file, handle, r);
                    }
                    ExecOutput::Reply { id, result } => match result.expect("a command failed") {
                        Response::Value(v) => {
                            self.reads.insert(id, v);
                        }
                        _ => self.acknowledged += 1,
                    },
                    ExecOutput::Applied(_) => {}
                    ExecOutput::Recovered(r) => {
                        r.expect("the executor opens");
                    }
                }
            }
            if !progress {
                return;
            }
        }
    }
}

/// Carries out the store's outputs until it has none, collecting its replies.
fn drain_store(store: &mut Store, disk: &mut SimDisk, replies: &mut Vec<(ReqId, Result<Reply, StoreError>)>) -> bool {
    let mut progress = false;
    while let Some(out) = store.poll() {
        progress = true;
        match out {
            Output::Io { id, req } => {
                let r = disk.execute(req);
                store.handle_io(0, id, r);
            }
            Output::Job(mut job) => {
                run_job(disk, &mut job);
                store.handle_job(0, job);
            }
            Output::Reply { id, result } => replies.push((id, result)),
            Output::Opened(r) => r.expect("open"),
        }
    }
    progress
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        crate::data::pairs(7, n).into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    /// Every write is committed and applied on every replica (a small memtable: flushes run).
    #[test]
    fn cluster_applies_every_write_everywhere() {
        let p = pairs(400);
        // Keys written twice: the last value wins.
        let mut written = p.clone();
        written.extend(p[..100].iter().map(|(k, _)| (k.clone(), p[399].1.clone())));
        let mut c = InlineCluster::new(3, 16 << 10);
        for w in written.chunks(16) {
            c.put_window(w);
        }
        assert!(c.nodes.iter().all(|n| n.stats().flushes > 0), "no flush ran");
        c.verify(&written);
    }

    #[test]
    fn standalone_kinds_store_every_write() {
        let p = pairs(300);
        for kind in [StoreKind::Raw, StoreKind::OnePc, StoreKind::EtcdPut] {
            let mut s = InlineStore::new(kind, 16 << 10);
            for w in p.chunks(16) {
                s.put_window(w);
            }
            assert_eq!(s.acknowledged, 300, "{kind:?}");
            s.verify(&p);
        }
    }
}
