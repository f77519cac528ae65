//! Client requests waiting at a node: writes waiting for their entry to be applied, reads
//! waiting for a read index and then for apply to reach it, each with a deadline.
//!
//! Bookkeeping only (no decisions): the node registers a request when it proposes or asks
//! for a read index, and takes it back when the outcome is known. A request leaves by exactly
//! one path — its answer, a proposal or read failure, or its deadline — and the indexes that
//! point at a request that has left are skipped when they are reached.
use super::wire::ClientId;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use strata_raft::{Index, ProposalId, ReadId};

/// A write waiting for its entry to apply.
#[derive(Clone, Debug)]
pub(crate) struct PendingWrite {
    pub(crate) client: ClientId,
    pub(crate) seq: u64,
    pub(crate) proposal: ProposalId,
    pub(crate) deadline: u64,
}

/// Where a linearizable read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadStage {
    /// Waiting for the read index of this Raft read.
    Index(ReadId),
    /// Waiting for apply to reach this index.
    Apply(Index),
    /// Running in the reader.
    Running,
}

/// A read waiting at this node.
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    pub(crate) key: Vec<u8>,
    pub(crate) stage: ReadStage,
    pub(crate) deadline: u64,
}

/// The requests waiting at a node, by the driver's request id.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    writes: BTreeMap<u64, PendingWrite>,
    by_proposal: BTreeMap<ProposalId, u64>,
    by_session: BTreeMap<(ClientId, u64), Vec<u64>>,
    reads: BTreeMap<u64, PendingRead>,
    by_read_id: BTreeMap<ReadId, Vec<u64>>,
    by_apply: BTreeMap<Index, Vec<u64>>,
    deadlines: BTreeMap<(u64, u64), ()>,
    next_proposal: u64,
}

impl Requests {
    /// Requests waiting.
    pub(crate) fn len(&self) -> usize {
        self.writes.len() + self.reads.len()
    }

    /// True when `id` is waiting.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.writes.contains_key(&id) || self.reads.contains_key(&id)
    }

    /// A fresh proposal id.
    pub(crate) fn next_proposal(&mut self) -> ProposalId {
        self.next_proposal += 1;
        ProposalId(self.next_proposal)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.keys().next().map(|&(d, _)| d)
    }

    pub(crate) fn add_write(&mut self, id: u64, w: PendingWrite) {
        self.deadlines.insert((w.deadline, id), ());
        self.by_proposal.insert(w.proposal, id);
        self.by_session.entry((w.client, w.seq)).or_default().push(id);
        self.writes.insert(id, w);
    }

    /// The writes of session `(client, seq)` (the original and any retries waiting here).
    pub(crate) fn take_session(&mut self, client: ClientId, seq: u64) -> Vec<u64> {
        let ids = self.by_session.remove(&(client, seq)).unwrap_or_default();
        ids.into_iter().filter(|id| self.remove_write(*id).is_some()).collect()
    }

    /// The write proposed as `proposal`, if it still waits.
    pub(crate) fn take_proposal(&mut self, proposal: ProposalId) -> Option<u64> {
        let id = self.by_proposal.remove(&proposal)?;
        self.remove_write(id).map(|_| id)
    }

    fn remove_write(&mut self, id: u64) -> Option<PendingWrite> {
        let w = self.writes.remove(&id)?;
        self.deadlines.remove(&(w.deadline, id));
        self.by_proposal.remove(&w.proposal);
        Some(w)
    }

    /// Registers a read; one already `Running` has no deadline (it finishes on its own).
    pub(crate) fn add_read(&mut self, id: u64, r: PendingRead) {
        if r.stage != ReadStage::Running {
            self.deadlines.insert((r.deadline, id), ());
        }
        match r.stage {
            ReadStage::Index(rid) => self.by_read_id.entry(rid).or_default().push(id),
            ReadStage::Apply(index) => self.by_apply.entry(index).or_default().push(id),
            ReadStage::Running => {}
        }
        self.reads.insert(id, r);
    }

    /// The reads waiting for Raft read `rid` (they stay registered; move them on with
    /// [`Requests::read_ready`] or remove them with [`Requests::take_read`]).
    pub(crate) fn reads_of(&mut self, rid: ReadId) -> Vec<u64> {
        let ids = self.by_read_id.remove(&rid).unwrap_or_default();
        ids.into_iter().filter(|id| self.reads.get(id).is_some_and(|r| r.stage == ReadStage::Index(rid))).collect()
    }

    /// Read `id` may run once apply reaches `index`.
    pub(crate) fn read_ready(&mut self, id: u64, index: Index) {
        if let Some(r) = self.reads.get_mut(&id) {
            r.stage = ReadStage::Apply(index);
            self.by_apply.entry(index).or_default().push(id);
        }
    }

    /// The reads that may run now that apply reached `applied`; they become `Running`.
    pub(crate) fn runnable(&mut self, applied: Index) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.by_apply.first_entry() {
            if *entry.key() > applied {
                break;
            }
            let (index, ids) = entry.remove_entry();
            for id in ids {
                if let Some(r) = self.reads.get_mut(&id) {
                    if r.stage == ReadStage::Apply(index) {
                        r.stage = ReadStage::Running;
                        self.deadlines.remove(&(r.deadline, id));
                        out.push((id, r.key.clone()));
                    }
                }
            }
        }
        out
    }

    /// Removes read `id` (answered or failed); false if it was not waiting.
    pub(crate) fn take_read(&mut self, id: u64) -> bool {
        match self.reads.remove(&id) {
            Some(r) => {
                self.deadlines.remove(&(r.deadline, id));
                true
            }
            None => false,
        }
    }

    /// Removes and returns the requests whose deadline has passed (reads already running
    /// have no deadline: they finish on their own). Each id with whether it was a write.
    pub(crate) fn expire(&mut self, now_ms: u64) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let due: Vec<(u64, u64)> = self.deadlines.range(..(now_ms.saturating_add(1), 0)).map(|(k, _)| *k).collect();
        for (_, id) in due {
            if self.remove_write(id).is_some() {
                out.push((id, true));
            } else if self.take_read(id) {
                out.push((id, false));
            }
        }
        out
    }
}
