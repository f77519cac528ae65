//! The node's inner loop: after every input, the outputs of each part become inputs of the
//! others until all are quiet. Order is fixed (store, log, Raft, apply, reads), so a run
//! replays exactly.
use super::{block_read, drop_reason, read_failure, Node, NodeError, NodeEvent, NodeOutput, Phase};
use crate::lsm::store::Output as StoreOutput;
use crate::node::apply::ApplyOutput;
use crate::node::io::{Disk, Owner};
use crate::node::raftlog::LogOutput;
use crate::node::read::ReadOutput;
use crate::node::wire::{ClientError, PeerBody, PeerMessage};
use alloc::format;
use strata_raft::{Index, Output as RaftOutput, ProposalOutcome, ReadOutcome};

impl Node {
    /// Runs every part until none has output left.
    pub(super) fn pump(&mut self, now_ms: u64) {
        loop {
            let mut progress = self.drain_store(now_ms);
            progress |= self.drain_log();
            progress |= self.drain_raft(now_ms);
            progress |= self.drain_applier(now_ms);
            progress |= self.drain_reader();
            progress |= self.advance_install(now_ms);
            if !progress && !self.admin_tick(now_ms) {
                return;
            }
        }
    }

    fn drain_store(&mut self, now_ms: u64) -> bool {
        let mut progress = false;
        while let Some(out) = self.store.poll() {
            progress = true;
            match out {
                StoreOutput::Io { id, req } => {
                    let nid = self.io.issue(Owner::Store(id));
                    self.out.push_back(NodeOutput::Io { disk: Disk::Store, id: nid, req });
                }
                StoreOutput::Job(job) => self.out.push_back(NodeOutput::Job(job)),
                StoreOutput::Reply { id, result } => {
                    if self.owns_install(id) {
                        self.snapshot_installed(now_ms, result);
                    } else if self.applier.owns(id) {
                        self.applier.handle_store_reply(now_ms, &mut self.store, id, result);
                    } else if self.flush == Some(id) {
                        // A failed flush is retried by the store itself; the timer asks again.
                        self.flush = None;
                    }
                }
                StoreOutput::Opened(Ok(())) => self.applier.start_recovery(now_ms, &mut self.store),
                StoreOutput::Opened(Err(e)) => self.fail(NodeError::Store(e)),
            }
        }
        // A flush installed (the node's own, or one the store started when its memtable
        // filled): entries up to the new mark no longer need the log.
        if self.store.durable_mark() > self.compacted_mark && self.raft.is_some() {
            self.flushed();
        }
        progress
    }

    fn drain_log(&mut self) -> bool {
        let mut progress = false;
        while let Some(out) = self.log.poll() {
            progress = true;
            match out {
                LogOutput::Io { id, req } => {
                    let nid = self.io.issue(Owner::Log(id));
                    self.out.push_back(NodeOutput::Io { disk: Disk::Log, id: nid, req });
                }
                LogOutput::Recovered(Ok(rec)) => {
                    if let Phase::Opening { log, .. } = &mut self.phase {
                        *log = Some(rec);
                    }
                    self.try_start();
                }
                LogOutput::Recovered(Err(e)) | LogOutput::Failed(e) => self.fail(NodeError::Log(e)),
                // Recovery's own record (a rebuilt base): not Raft's.
                LogOutput::Persisted(pid) if pid == super::snapshot::REBASE_PERSIST => {}
                LogOutput::Persisted(pid) => {
                    if let Some(raft) = self.raft.as_mut() {
                        if let Err(e) = raft.handle_persisted(pid) {
                            self.fail(NodeError::Inconsistent(format!("persist {pid} refused: {e:?}")));
                        }
                    }
                }
            }
        }
        progress
    }

    fn drain_raft(&mut self, now_ms: u64) -> bool {
        let mut progress = false;
        while let Some(out) = self.raft.as_mut().and_then(strata_raft::Node::poll_output) {
            let Some(raft) = self.raft.as_mut() else { break };
            progress = true;
            match out {
                RaftOutput::Send(m) => {
                    let to = m.to;
                    let epoch = self.applier.conf().epoch(self.cfg.epoch.version);
                    let msg = PeerMessage { region: self.cfg.region, epoch, body: PeerBody::Raft(m) };
                    self.out.push_back(NodeOutput::Send { to, msg: msg.encode() });
                }
                RaftOutput::Persist(p) => {
                    let last = p.entries.last().map_or(Index(0), |e| e.index);
                    self.out.push_back(NodeOutput::Event(NodeEvent::Persisting { entries: p.entries.len(), last }));
                    self.snapshot_persist(now_ms, p);
                }
                RaftOutput::Apply(entries) => {
                    for e in &entries {
                        self.applier.push(e.clone());
                    }
                    raft.recycle(entries);
                    self.applier.drive(now_ms, &mut self.store);
                }
                RaftOutput::Proposal(pid, outcome) => {
                    if self.admin_proposal(pid, &outcome) {
                        continue;
                    }
                    let err = match outcome {
                        ProposalOutcome::Committed(_) => None,
                        ProposalOutcome::Dropped(r) => Some(drop_reason(r)),
                        ProposalOutcome::Indeterminate => Some(ClientError::Unknown),
                    };
                    if let Some(e) = err {
                        if let Some(id) = self.requests.take_proposal(pid) {
                            self.reply(id, Err(e));
                        }
                    }
                }
                RaftOutput::Read(rid, outcome) => {
                    let leader = raft.leader();
                    for id in self.requests.reads_of(rid) {
                        match outcome {
                            ReadOutcome::Ready(index) => self.requests.read_ready(id, index),
                            ReadOutcome::Failed(f) => {
                                self.requests.take_read(id);
                                self.reply(id, Err(read_failure(f, leader)));
                            }
                        }
                    }
                }
                RaftOutput::ReadSnapshotChunk { to, meta, offset, max_bytes } => self.snapshot_read(to, &meta, offset, max_bytes),
                RaftOutput::StageSnapshotChunk { meta, offset, data, .. } => self.snapshot_stage(&meta, offset, &data),
                RaftOutput::LeaderChanged { term, leader } => self.event(NodeEvent::LeaderChanged { term, leader }),
            }
        }
        self.start_reads();
        progress
    }

    /// Starts the reads whose read index apply has reached.
    fn start_reads(&mut self) {
        let ts = self.applier.last_ts();
        for (id, key) in self.requests.runnable(self.applier.applied()) {
            self.reader.start(&self.store, id, key, ts);
        }
    }

    fn drain_applier(&mut self, now_ms: u64) -> bool {
        let mut progress = false;
        let mut applied = None;
        while let Some(out) = self.applier.poll() {
            progress = true;
            match out {
                ApplyOutput::ReadBlock { file, handle } => {
                    let id = self.io.issue(Owner::ApplyBlock(file, handle));
                    self.out.push_back(NodeOutput::Io { disk: Disk::Store, id, req: block_read(file, handle) });
                }
                ApplyOutput::Applied { index, write } => {
                    applied = Some(index);
                    if let Some(w) = write {
                        self.stats.writes_applied += 1;
                        for id in self.requests.take_session(w.client, w.seq) {
                            self.reply(id, w.result.clone());
                        }
                    }
                }
                ApplyOutput::ConfChanged { index, conf } => {
                    let membership = conf.membership(self.cfg.epoch.version);
                    self.event(NodeEvent::ConfChanged { index, membership });
                    self.admin_conf_applied();
                }
                ApplyOutput::Recovered(Ok(_)) => {
                    if let Phase::Opening { store_ready, .. } = &mut self.phase {
                        *store_ready = true;
                    }
                    self.try_start();
                    self.snapshot_reloaded(now_ms);
                }
                ApplyOutput::Recovered(Err(e)) | ApplyOutput::Failed(e) => self.fail(NodeError::Apply(e)),
            }
        }
        if let Some(index) = applied {
            self.event(NodeEvent::Applied { index });
            self.start_reads();
        }
        progress
    }

    fn drain_reader(&mut self) -> bool {
        let mut progress = false;
        while let Some(out) = self.reader.poll() {
            progress = true;
            match out {
                ReadOutput::ReadBlock { file, handle } => {
                    let id = self.io.issue(Owner::ReadBlock(file, handle));
                    self.out.push_back(NodeOutput::Io { disk: Disk::Store, id, req: block_read(file, handle) });
                }
                ReadOutput::Done { id, result } => {
                    if self.requests.take_read(id) {
                        self.stats.reads += 1;
                        self.reply(id, result);
                    }
                }
            }
        }
        progress
    }

    /// Starts Raft once both disks are recovered.
    fn try_start(&mut self) {
        let Phase::Opening { store_ready: true, log: Some(_) } = &self.phase else { return };
        let Phase::Opening { log: Some(rec), .. } = core::mem::replace(&mut self.phase, Phase::Running) else { return };
        let mark = Index(self.store.durable_mark());
        self.compacted_mark = mark.0;
        let applied = self.applier.applied().max(mark);
        let mut rec = self.rebase_if_needed(rec, applied);
        let first = rec.snapshot.as_ref().map_or(Index(0), |s| s.index);
        let last = rec.entries.last().map_or(first, |e| e.index);
        if applied > last {
            return self.fail(NodeError::Inconsistent(format!("the store applied up to {applied} but the log ends at {last}")));
        }
        if applied < first {
            return self.fail(NodeError::Inconsistent(format!("the log is compacted to {first} but the store applied only {applied}")));
        }
        rec.applied = applied;
        self.applier.skip_to(applied);
        match strata_raft::Node::new(self.cfg.raft.clone(), rec) {
            Ok(raft) => {
                self.event(NodeEvent::Recovered { applied, last_index: raft.last_index(), term: raft.term() });
                self.raft = Some(raft);
            }
            Err(e) => self.fail(NodeError::Inconsistent(format!("Raft refused the recovered state: {e:?}"))),
        }
    }

    /// A flush installed: compacts the Raft log behind the store's durable mark.
    fn flushed(&mut self) {
        let mark = self.store.durable_mark();
        self.compacted_mark = mark;
        self.stats.flushes += 1;
        self.event(NodeEvent::Flushed { mark });
        let Some(raft) = self.raft.as_mut() else { return };
        // Followers further behind than this catch up from a snapshot (`node::snapshot`).
        let target = mark.min(self.applier.applied().0).saturating_sub(self.cfg.log_keep_entries);
        if target > raft.snapshot_meta().index.0 && raft.compact(Index(target)).is_ok() {
            self.stats.compactions += 1;
            self.event(NodeEvent::Compacted { index: Index(target) });
        }
        // The log deletes whole segments only, never the one being written: a compaction
        // record is worth its sync only once an older segment exists.
        let Some(raft) = self.raft.as_ref() else { return };
        if self.log.stats().segments >= 2 {
            let meta = raft.snapshot_meta().clone();
            self.log.compact(&meta);
        }
    }
}
