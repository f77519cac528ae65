//! The leader's side: proposals, replication with flow control (§5.3), commitment (§5.4.2),
//! heartbeats, check-quorum, ReadIndex, leadership transfer and sending snapshots.

use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::confchange::apply_conf_change;
use crate::message::{encode_conf_change, Body, ConfChange, Entries, Entry, EntryKind, RejectHint};
use crate::node::{CommandError, Node, PendingProposal, Role, SharedAppend};
use crate::output::{DropReason, Output, ProposalOutcome, ReadOutcome};
use crate::progress::{Progress, ProgressState};
use crate::read_only::Requester;
use crate::types::{Index, NodeId, ProposalId, Term};

/// How many append buffers a leader keeps for reuse.
const MAX_SHARED_APPENDS: usize = 8;

impl Node {
    pub(crate) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.set_leader(Some(self.id));
        self.transferee = None;
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        let last = self.log.last_index();
        for (id, pr) in &mut self.tracker.progress {
            *pr = Progress::new(last.next());
            pr.recent_active = true;
            if *id == self.id {
                pr.become_replicate();
                pr.matched = self.log.stable.min(last);
                pr.next = last.next();
            }
        }
        self.pending_conf_index = last;
        self.uncommitted_bytes = 0;
        // A no-op entry of the new term, so that earlier entries commit (§5.4.2, §8).
        let noop = Entry {
            term: self.term,
            index: last.next(),
            kind: EntryKind::Normal,
            data: Bytes::new(),
        };
        self.log.push(noop);
        self.broadcast_pending = true;
    }

    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed = self.heartbeat_elapsed.saturating_add(1);
        self.election_elapsed = self.election_elapsed.saturating_add(1);
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                if !self.tracker.quorum_active(self.id) {
                    self.become_follower(self.term, None);
                    return;
                }
                let me = self.id;
                for (id, pr) in &mut self.tracker.progress {
                    if *id != me {
                        pr.recent_active = false;
                    }
                }
            }
        }
        if self.transferee.is_some() {
            self.transfer_elapsed += 1;
            if self.transfer_elapsed >= self.cfg.election_tick {
                self.transferee = None;
                if !self.tracker.is_voter(self.id) && self.latest_conf_index() <= self.log.applied {
                    self.hand_off_leadership();
                }
            }
        }
        let limit = self.cfg.election_tick.saturating_mul(2);
        for (_, pr) in &mut self.tracker.progress {
            if let Some(t) = pr.snapshot.as_mut() {
                t.idle_ticks += 1;
                if t.idle_ticks >= limit {
                    pr.become_probe();
                    self.broadcast_pending = true;
                }
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat(self.reads.last_round());
        }
    }

    pub(crate) fn propose_entry(
        &mut self,
        id: ProposalId,
        kind: EntryKind,
        data: Bytes,
    ) -> Option<Index> {
        if let Some(reason) = self.refuse_proposal(data.len() as u64) {
            self.out
                .push_back(Output::Proposal(id, ProposalOutcome::Dropped(reason)));
            return None;
        }
        let index = self.append_as_leader(kind, data);
        let p = PendingProposal {
            index,
            term: self.term,
            id,
        };
        if self.proposals.back().is_none_or(|b| b.index < index) {
            self.proposals.push_back(p);
        } else {
            // Older proposals of an earlier term sit at higher indexes (this node lost the
            // lead and won it back with a shorter log); they resolve when commit passes them.
            let at = self
                .proposals
                .partition_point(|q| (q.index, q.term) < (index, self.term));
            self.proposals.insert(at, p);
        }
        Some(index)
    }

    pub(crate) fn propose_conf(&mut self, id: ProposalId, cc: ConfChange) {
        if self.role == Role::Leader && self.pending_conf_index > self.log.applied {
            let r = DropReason::InvalidConfChange(crate::ConfChangeError::PendingChange);
            self.out
                .push_back(Output::Proposal(id, ProposalOutcome::Dropped(r)));
            return;
        }
        if self.role == Role::Leader {
            if let Err(e) = apply_conf_change(&self.tracker.conf_state(), &cc) {
                let r = DropReason::InvalidConfChange(e);
                self.out
                    .push_back(Output::Proposal(id, ProposalOutcome::Dropped(r)));
                return;
            }
        }
        if let Some(index) = self.propose_entry(id, EntryKind::ConfChange, encode_conf_change(&cc))
        {
            self.pending_conf_index = index;
        }
    }

    fn refuse_proposal(&self, len: u64) -> Option<DropReason> {
        if self.role != Role::Leader {
            return Some(DropReason::NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            return Some(DropReason::TransferInProgress);
        }
        if self.uncommitted_bytes > 0
            && self.uncommitted_bytes.saturating_add(len) > self.cfg.max_uncommitted_bytes
        {
            return Some(DropReason::UncommittedLimit);
        }
        None
    }

    pub(crate) fn append_as_leader(&mut self, kind: EntryKind, data: Bytes) -> Index {
        let index = self.log.last_index().next();
        self.uncommitted_bytes += data.len() as u64;
        self.log.push(Entry {
            term: self.term,
            index,
            kind,
            data,
        });
        self.broadcast_pending = true;
        if kind == EntryKind::ConfChange {
            self.adopt_confs_from(index);
        }
        index
    }

    /// Leaves a joint configuration once it is applied (etcd's auto-leave).
    pub(crate) fn maybe_leave_joint(&mut self) {
        if self.role == Role::Leader
            && self.tracker.is_joint()
            && self.pending_conf_index <= self.log.applied
            && self.transferee.is_none()
        {
            let index = self.append_as_leader(
                EntryKind::ConfChange,
                encode_conf_change(&ConfChange::LeaveJoint),
            );
            self.pending_conf_index = index;
        }
    }

    /// Sends whatever each follower is missing (called when outputs are polled, so that
    /// proposals made between two polls travel in one message).
    pub(crate) fn broadcast_append(&mut self) {
        self.broadcast_pending = false;
        for k in 0..self.tracker.progress.len() {
            let to = self.tracker.progress[k].0;
            if to == self.id {
                continue;
            }
            while self.maybe_send_append(to, false) {}
            let pr = &self.tracker.progress[k].1;
            if pr.sent_commit < self.log.committed && !pr.is_paused(self.cfg.max_inflight_msgs) {
                self.maybe_send_append(to, true);
            }
        }
    }

    /// Sends one append to `to` if flow control allows; returns whether something was sent.
    pub(crate) fn maybe_send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let max_inflight = self.cfg.max_inflight_msgs;
        let last = self.log.last_index();
        let Some(pr) = self.tracker.get(to) else {
            return false;
        };
        if pr.is_paused(max_inflight) {
            return false;
        }
        let next = pr.next;
        let prev = next.prev();
        let Some(prev_term) = self.log.term(prev) else {
            self.start_snapshot(to);
            return true;
        };
        if next > last && !allow_empty {
            return false;
        }
        let entries = self.shared_entries(next, last);
        let last_sent = Index(prev.0 + entries.len() as u64);
        let commit = self.log.committed;
        if let Some(pr) = self.tracker.get_mut(to) {
            pr.sent_entries(last_sent, !entries.is_empty());
            pr.sent_commit = commit;
        }
        self.send(
            to,
            Body::Append {
                prev_index: prev,
                prev_term,
                entries,
                commit,
            },
        );
        true
    }

    /// The entries `[next, last]` (cut at `max_msg_bytes`) for an append, shared with any
    /// other append of the same range (the followers of a broadcast usually need the same
    /// entries), in a buffer reused once no message holds it any more.
    fn shared_entries(&mut self, next: Index, last: Index) -> Entries {
        if next > last {
            return Entries::new();
        }
        // Within a term the leader only appends, so (term, next, last) fixes the entries.
        let key = (self.term, next, last);
        if let Some(s) = self.shared_appends.iter().find(|s| s.key == key) {
            return Entries::from_shared(s.buf.clone());
        }
        let max_bytes = self.cfg.max_msg_bytes;
        if let Some(s) = self
            .shared_appends
            .iter_mut()
            .find(|s| Arc::strong_count(&s.buf) == 1)
        {
            if let Some(buf) = Arc::get_mut(&mut s.buf) {
                buf.clear();
                self.log.slice(next, last.next(), max_bytes, buf);
                s.key = key;
                return Entries::from_shared(s.buf.clone());
            }
        }
        let mut buf = Vec::new();
        self.log.slice(next, last.next(), max_bytes, &mut buf);
        let buf = Arc::new(buf);
        if self.shared_appends.len() < MAX_SHARED_APPENDS {
            self.shared_appends.push(SharedAppend {
                key,
                buf: buf.clone(),
            });
        }
        Entries::from_shared(buf)
    }

    /// Empties the append buffers no message holds (they keep entries, and so payloads,
    /// alive).
    pub(crate) fn release_shared_appends(&mut self) {
        for s in &mut self.shared_appends {
            if let Some(buf) = Arc::get_mut(&mut s.buf) {
                buf.clear();
                s.key = (Term(0), Index(0), Index(0));
            }
        }
    }

    fn start_snapshot(&mut self, to: NodeId) {
        let meta = self.snapshot_to_send();
        let max_bytes = self.cfg.snapshot_chunk_bytes;
        if let Some(pr) = self.tracker.get_mut(to) {
            pr.become_snapshot(meta.clone());
        }
        self.out.push_back(Output::ReadSnapshotChunk {
            to,
            meta: alloc::boxed::Box::new(meta),
            offset: 0,
            max_bytes,
        });
    }

    pub(crate) fn send_snapshot_chunk(
        &mut self,
        to: NodeId,
        index: Index,
        offset: u64,
        data: Bytes,
        last: bool,
    ) -> Result<(), CommandError> {
        if self.role != Role::Leader {
            return Err(CommandError::NotLeader);
        }
        let t = self
            .tracker
            .get_mut(to)
            .and_then(|pr| pr.snapshot.as_mut())
            .filter(|t| t.meta.index == index && t.awaiting_chunk && t.offset == offset)
            .ok_or(CommandError::UnexpectedChunk)?;
        t.awaiting_chunk = false;
        t.offset = offset.saturating_add(data.len() as u64);
        t.done = last;
        let meta = t.meta.clone();
        self.send(
            to,
            Body::SnapshotChunk {
                meta: alloc::boxed::Box::new(meta),
                offset,
                data,
                last,
            },
        );
        Ok(())
    }

    pub(crate) fn handle_snapshot_ack(&mut self, from: NodeId, index: Index, next_offset: u64) {
        if self.role != Role::Leader {
            return;
        }
        let max_bytes = self.cfg.snapshot_chunk_bytes;
        let Some(pr) = self.tracker.get_mut(from) else {
            return;
        };
        pr.recent_active = true;
        let Some(t) = pr.snapshot.as_mut().filter(|t| t.meta.index == index) else {
            return;
        };
        t.idle_ticks = 0;
        if t.awaiting_chunk || (t.done && next_offset == t.offset) {
            return;
        }
        t.offset = next_offset;
        t.done = false;
        t.awaiting_chunk = true;
        let meta = t.meta.clone();
        self.out.push_back(Output::ReadSnapshotChunk {
            to: from,
            meta: alloc::boxed::Box::new(meta),
            offset: next_offset,
            max_bytes,
        });
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        index: Index,
        reject: Option<RejectHint>,
    ) {
        if self.role != Role::Leader || from == self.id {
            return;
        }
        let last = self.log.last_index();
        if let Some(h) = reject {
            let probe = if h.hint_term.0 > 0 {
                self.log.find_conflict_by_term(h.hint_index, h.hint_term).0
            } else {
                h.hint_index
            };
            let Some(pr) = self.tracker.get_mut(from) else {
                return;
            };
            pr.recent_active = true;
            if pr.maybe_decr_to(h.rejected, probe.next()) {
                self.broadcast_pending = true;
                self.maybe_send_append(from, true);
            }
            return;
        }
        if index > last {
            return; // a faulty follower: it cannot hold entries we never had
        }
        let Some(pr) = self.tracker.get_mut(from) else {
            return;
        };
        pr.recent_active = true;
        let was_probe = pr.state == ProgressState::Probe;
        let updated = pr.maybe_update(index);
        if !(updated || (was_probe && pr.matched == index)) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot => {
                let pending = pr
                    .snapshot
                    .as_ref()
                    .map(|t| t.meta.index)
                    .unwrap_or(Index(0));
                if pr.matched >= pending {
                    pr.become_replicate();
                }
            }
            ProgressState::Replicate => pr.free_inflights_to(index),
        }
        self.broadcast_pending = true;
        self.maybe_commit();
        if self.transferee == Some(from) {
            self.maybe_send_timeout_now(from);
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, round: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.tracker.get_mut(from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.matched < last {
            pr.stalled_heartbeats += 1;
            if pr.state == ProgressState::Replicate && pr.stalled_heartbeats >= 3 {
                // Appends in flight were probably lost: probe again from the match index.
                pr.become_probe();
                pr.stalled_heartbeats = 0;
            }
            if pr.state == ProgressState::Probe && pr.next > last {
                // An abandoned snapshot left `next` past the log (it assumed the follower
                // installed it): an empty probe there is refused and finds where it stands.
                self.maybe_send_append(from, true);
            }
            self.broadcast_pending = true;
        } else {
            pr.stalled_heartbeats = 0;
        }
        if self.transferee == Some(from) {
            self.maybe_send_timeout_now(from);
        }
        if round > 0 {
            let mut ready = Vec::new();
            self.reads
                .ack(self.id, from, round, &self.tracker.voters, &mut ready);
            for (index, who) in ready {
                self.release_read(index, who);
            }
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self, round: u64) {
        self.reads.to_broadcast = 0;
        for k in 0..self.tracker.progress.len() {
            let to = self.tracker.progress[k].0;
            if to == self.id {
                continue;
            }
            let commit = self.tracker.progress[k].1.matched.min(self.log.committed);
            self.send(
                to,
                Body::Heartbeat {
                    commit,
                    read_round: round,
                },
            );
        }
    }

    /// Advances the commit index to what a quorum matched, if that entry is of the
    /// current term (§5.4.2). Returns whether it moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let idx = self.tracker.committed();
        if idx <= self.log.committed || self.log.term(idx) != Some(self.term) {
            return false;
        }
        let old = self.log.committed;
        self.log.commit_to(idx);
        let freed: u64 = self
            .log
            .iter_range(old.next(), idx.next())
            .map(Entry::payload_len)
            .sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(freed);
        self.broadcast_pending = true;
        if !self.reads.waiting.is_empty() {
            for who in core::mem::take(&mut self.reads.waiting) {
                self.leader_read(who);
            }
        }
        true
    }

    pub(crate) fn leader_read(&mut self, who: Requester) {
        if self.log.term(self.log.committed) != Some(self.term) {
            // Not yet committed an entry in this term: the commit index may be stale.
            self.reads.waiting.push(who);
            return;
        }
        let index = self.log.committed;
        if self.tracker.is_singleton(self.id) || self.cfg.read_mode == crate::ReadMode::LeaseBased {
            self.release_read(index, who);
        } else {
            self.reads.add(index, who);
        }
    }

    fn release_read(&mut self, index: Index, who: Requester) {
        match who {
            Requester::Local(id) => self
                .out
                .push_back(Output::Read(id, ReadOutcome::Ready(index))),
            Requester::Remote(to, id) => self.send(
                to,
                Body::ReadIndexResponse {
                    id,
                    index: Some(index),
                },
            ),
        }
    }

    pub(crate) fn handle_read_index_request(&mut self, from: NodeId, id: u64) {
        if self.role == Role::Leader {
            self.leader_read(Requester::Remote(from, id));
        } else {
            self.send(from, Body::ReadIndexResponse { id, index: None });
        }
    }

    /// A leader no longer in the configuration hands over to the voter with the highest
    /// match index (retried every election timeout until a new term deposes it).
    pub(crate) fn hand_off_leadership(&mut self) {
        let me = self.id;
        let best = self
            .tracker
            .progress
            .iter()
            .filter(|(id, _)| *id != me && self.tracker.voters.incoming.contains(*id))
            .max_by_key(|(id, pr)| (pr.matched, core::cmp::Reverse(*id)))
            .map(|(id, _)| *id);
        self.transferee = best;
        self.transfer_elapsed = 0;
        if let Some(to) = best {
            self.maybe_send_timeout_now(to);
        }
    }

    pub(crate) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        let last = self.log.last_index();
        if self.tracker.get(to).is_some_and(|pr| pr.matched == last) {
            self.send(to, Body::TimeoutNow);
        }
    }
}
