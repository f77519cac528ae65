//! The node's side of snapshots (`node::snapshot`): serving chunks as the leader, staging and
//! installing as a follower, and rebuilding the Raft log's base after a crash mid-install.
use super::{Node, NodeError, NodeEvent, NodeOutput};
use crate::lsm::error::Error as StoreError;
use crate::lsm::io::{IoRequest, IoResult};
use crate::lsm::store::{Reply, ReqId};
use crate::node::io::{Disk, Owner};
use crate::node::snapshot::format::SnapshotError;
use crate::node::snapshot::receiver::Staging;
use crate::node::snapshot::sender::Export;
use crate::node::snapshot::InstallPhase;
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use strata_raft::{Body, Bytes, Index, NodeId, Persist, PersistId, Recovered, SnapshotMeta, Term};

/// The persist id of the record recovery writes itself (Raft's own ids start at 1).
pub(super) const REBASE_PERSIST: PersistId = PersistId(0);

impl Node {
    // ----- leader -----

    /// Raft asks for the chunk at `offset` of snapshot `meta` for follower `to`.
    pub(super) fn snapshot_read(&mut self, to: NodeId, meta: &SnapshotMeta, offset: u64, max_bytes: u64) {
        let region = self.cfg.region.0;
        let Some(raft) = self.raft.as_mut() else { return };
        let ours = self.snap.export.as_ref().is_some_and(|e| e.index == meta.index && e.term == meta.term);
        if !ours {
            // Pin the store's tables as they are now and offer their index instead; Raft
            // restarts the transfer with it at once. If that cannot be done yet (nothing
            // flushed), the transfer waits and Raft retries after its timeout.
            let set = self.store.table_set();
            let mark = Index(set.applied_mark);
            let Some(term) = raft.term_at(mark).filter(|_| mark.0 > 0) else { return };
            if raft.offer_snapshot(mark).is_err() || raft.snapshot_to_send().index != mark {
                return;
            }
            let export = Export::new(region, set, term, self.cfg.raft.snapshot_chunk_bytes);
            let (files, bytes) = (export.file_count(), export.total_len());
            self.snap.export = Some(export);
            self.snap.reads.retain(|_, r| r.index == mark);
            raft.handle_snapshot_unavailable(to);
            self.event(NodeEvent::SnapshotPinned { index: mark, files, bytes });
            return;
        }
        let Some(export) = self.snap.export.as_mut() else { return };
        export.idle_ticks = 0;
        match export.chunk(to, offset, max_bytes) {
            Err(_) => raft.handle_snapshot_unavailable(to),
            Ok((read, reqs)) => {
                let id = self.snap.next_read;
                self.snap.next_read += 1;
                self.snap.reads.insert(id, read);
                if reqs.is_empty() {
                    self.snapshot_chunk_ready(id);
                }
                for (part, req) in reqs.into_iter().enumerate() {
                    let nid = self.io.issue(Owner::SnapRead(id, part));
                    self.out.push_back(NodeOutput::Io { disk: Disk::Store, id: nid, req });
                }
            }
        }
    }

    /// A read of a chunk's file range completed.
    pub(super) fn snapshot_read_done(&mut self, id: u64, part: usize, result: IoResult) {
        match result {
            IoResult::Data(bytes) => {
                if let Some(r) = self.snap.reads.get_mut(&id) {
                    r.supply(part, bytes);
                }
                self.snapshot_chunk_ready(id);
            }
            _ => {
                // The file cannot be read: drop this export; the next request pins a new one.
                if let Some(r) = self.snap.reads.remove(&id) {
                    self.snap.export = None;
                    if let Some(raft) = self.raft.as_mut() {
                        raft.handle_snapshot_unavailable(r.to);
                    }
                }
            }
        }
    }

    /// Hands a chunk whose reads are all in to Raft.
    fn snapshot_chunk_ready(&mut self, id: u64) {
        if !self.snap.reads.get(&id).is_some_and(|r| r.is_complete()) {
            return;
        }
        let Some(r) = self.snap.reads.remove(&id) else { return };
        let data = self.snap.export.as_ref().filter(|e| e.index == r.index).and_then(|e| e.assemble(&r));
        let Some(raft) = self.raft.as_mut() else { return };
        match data {
            Some(d) => {
                let len = d.len() as u64;
                // Refused when the transfer was reset meanwhile: Raft asks again.
                if raft.handle_snapshot_chunk(r.to, r.index, r.offset, Bytes::from(d), r.last).is_ok() {
                    self.snap.stats.chunks_sent += 1;
                    self.snap.stats.bytes_sent += len;
                }
            }
            None => raft.handle_snapshot_unavailable(r.to),
        }
    }

    /// Unpins the exported tables once no follower has been sent them for a while (called
    /// every tick), or at once when this node no longer leads.
    pub(super) fn snapshot_tick(&mut self) {
        let leader = self.raft.as_ref().is_some_and(strata_raft::Node::is_leader);
        let limit = self.cfg.raft.election_tick.saturating_mul(4);
        let Some(export) = self.snap.export.as_mut() else { return };
        export.idle_ticks = export.idle_ticks.saturating_add(1);
        let index = export.index;
        if (!leader || export.idle_ticks > limit) && self.snap.reads.values().all(|r| r.index != index) {
            self.snap.export = None;
        }
    }

    // ----- follower -----

    /// Checks a snapshot chunk from a peer before Raft sees it: a chunk that would not decode
    /// is refused like any malformed message (the transfer restarts after Raft's timeout).
    pub(super) fn check_snapshot_chunk(&self, msg: &strata_raft::Message) -> Result<(), SnapshotError> {
        if let Body::SnapshotChunk { meta, offset, data, last } = &msg.body {
            Staging::check(self.snap.staging.as_ref(), meta.index, *offset, data, *last)?;
        }
        Ok(())
    }

    /// Raft accepted the chunk at `offset` of snapshot `meta`: decode it and write its files.
    pub(super) fn snapshot_stage(&mut self, meta: &SnapshotMeta, offset: u64, data: &[u8]) {
        if offset == 0 {
            if let Some(old) = self.snap.staging.take() {
                for req in old.abandon() {
                    self.snapshot_io(Owner::SnapDelete, req);
                }
            }
            self.snap.staging = Some(Staging::new(meta.index, meta.term));
        }
        let Some(st) = self.snap.staging.as_mut().filter(|s| s.index == meta.index) else { return };
        let reqs = st.push(&mut self.store, data);
        self.snap.stats.chunks_received += 1;
        for req in reqs {
            self.snapshot_io(Owner::SnapWrite(meta.index), req);
        }
    }

    fn snapshot_io(&mut self, owner: Owner, req: IoRequest) {
        let id = self.io.issue(owner);
        self.out.push_back(NodeOutput::Io { disk: Disk::Store, id, req });
    }

    /// A staged write completed.
    pub(super) fn snapshot_write_done(&mut self, index: Index, result: &IoResult) {
        if let Some(st) = self.snap.staging.as_mut().filter(|s| s.index == index) {
            st.write_done(!matches!(result, IoResult::Failed(_)));
        }
    }

    /// Raft asks to persist `p`: held back (with every later one) while a snapshot it carries
    /// or follows is not installed; else written to the log.
    pub(super) fn snapshot_persist(&mut self, now_ms: u64, p: Persist) {
        if p.snapshot.is_some() || !self.snap.held.is_empty() {
            self.snap.held.push_back(p);
            self.advance_install(now_ms);
        } else {
            self.log.persist(&p);
            if let Some(raft) = self.raft.as_mut() {
                raft.recycle(p.entries);
            }
        }
    }

    /// Moves a held snapshot towards installed; returns whether anything changed.
    pub(super) fn advance_install(&mut self, now_ms: u64) -> bool {
        let mut progress = false;
        loop {
            match self.snap.install {
                InstallPhase::Idle => {
                    while let Some(p) = self.snap.held.front() {
                        if p.snapshot.is_some() {
                            self.snap.install = InstallPhase::Waiting;
                            break;
                        }
                        if let Some(p) = self.snap.held.pop_front() {
                            self.log.persist(&p);
                            progress = true;
                        }
                    }
                    if self.snap.install == InstallPhase::Idle {
                        return progress;
                    }
                }
                InstallPhase::Waiting => {
                    let Some(meta) = self.snap.held.front().and_then(|p| p.snapshot.as_deref()) else { return progress };
                    let index = meta.index;
                    let st = self.snap.staging.as_ref().filter(|s| s.index == index && s.term == meta.term);
                    let Some(st) = st else {
                        self.fail(NodeError::Snapshot(format!("snapshot i{} to persist was not staged", index.0)));
                        return true;
                    };
                    if let Some(why) = &st.failed {
                        let why = why.clone();
                        self.fail(NodeError::Snapshot(format!("snapshot i{}: {why}", index.0)));
                        return true;
                    }
                    if !st.is_ready() || !self.applier.is_idle() {
                        return progress;
                    }
                    let tables = st.tables();
                    self.snap.staging = None;
                    let rid = self.store.install_tables(now_ms, tables, index.0);
                    self.snap.install = InstallPhase::Installing(rid);
                    return true;
                }
                InstallPhase::Installing(_) | InstallPhase::Reloading(_) => return progress,
            }
        }
    }

    /// True when the store reply `id` is the install's.
    pub(super) fn owns_install(&self, id: ReqId) -> bool {
        self.snap.install == InstallPhase::Installing(id)
    }

    /// The store installed the tables (or failed to): apply reads its state back.
    pub(super) fn snapshot_installed(&mut self, now_ms: u64, result: Result<Reply, StoreError>) {
        let index = self.snap.held.front().and_then(|p| p.snapshot.as_ref()).map_or(Index(0), |m| m.index);
        match result {
            Ok(_) => {
                self.snap.install = InstallPhase::Reloading(index);
                self.applier.reload(now_ms, &mut self.store);
            }
            Err(e) => self.fail(NodeError::Snapshot(format!("installing snapshot i{}: {e}", index.0))),
        }
    }

    /// Apply read its state back: after an install, check it and let the held persists go.
    pub(super) fn snapshot_reloaded(&mut self, now_ms: u64) {
        let InstallPhase::Reloading(index) = self.snap.install else { return };
        if self.applier.applied() != index {
            let got = self.applier.applied();
            return self.fail(NodeError::Inconsistent(format!("installed snapshot i{} holds apply state i{}", index.0, got.0)));
        }
        // The tables carry the membership record of their applied index: Raft's snapshot
        // names the same configuration.
        let conf = self.snap.held.front().and_then(|p| p.snapshot.as_ref()).map(|m| m.conf.clone());
        if conf.as_ref().is_some_and(|c| *c != self.applier.conf().conf) {
            let (want, got) = (conf.unwrap_or_default(), self.applier.conf().conf.clone());
            return self.fail(NodeError::Inconsistent(format!("installed snapshot i{} holds membership {got:?}, Raft's is {want:?}", index.0)));
        }
        self.snap.install = InstallPhase::Idle;
        self.snap.stats.installed += 1;
        self.event(NodeEvent::SnapshotInstalled { index });
        if let Some(p) = self.snap.held.pop_front() {
            self.log.persist(&p);
        }
        self.advance_install(now_ms);
    }

    // ----- recovery -----

    /// If the store is ahead of the log (a snapshot was installed in the store and the crash
    /// came before the log recorded it), rebuilds the log's base from the store's apply state
    /// and writes it to the log before Raft starts. Returns the state Raft starts from.
    pub(super) fn rebase_if_needed(&mut self, mut rec: Recovered, applied: Index) -> Recovered {
        let state = self.applier.state();
        if state.index != applied.0 || state.term == 0 {
            return rec;
        }
        let first = rec.snapshot.as_ref().map_or(Index(0), |s| s.index);
        let term_at = |i: Index| -> Option<Term> {
            if i == first {
                return Some(rec.snapshot.as_ref().map_or(Term(0), |s| s.term));
            }
            rec.entries.iter().find(|e| e.index == i).map(|e| e.term)
        };
        if applied < first || term_at(applied) == Some(Term(state.term)) {
            return rec;
        }
        // The store's membership record is as of its applied index: Raft's configuration there.
        let conf = self.applier.conf().conf.clone();
        let meta = SnapshotMeta { index: applied, term: Term(state.term), conf };
        let mut hs = rec.hard_state;
        if hs.term < meta.term {
            hs.term = meta.term;
            hs.vote = None;
        }
        hs.commit = hs.commit.max(applied);
        self.log.persist(&Persist { id: REBASE_PERSIST, hard_state: hs, snapshot: Some(Box::new(meta.clone())), entries: Vec::new() });
        self.event(NodeEvent::LogRebased { index: applied });
        rec.hard_state = hs;
        rec.snapshot = Some(meta);
        rec.entries.clear();
        rec
    }
}
