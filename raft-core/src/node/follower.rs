//! The follower's side: appends (§5.3), heartbeats, snapshots received in chunks (§7) and
//! answers to forwarded reads.

use bytes::Bytes;

use crate::log::AppendError;
use crate::message::{Body, Entries, Message, RejectHint, SnapshotMeta};
use crate::node::{IncomingSnapshot, Node, Role, StepError};
use crate::output::{Output, ReadFailure, ReadOutcome};
use crate::types::{Index, NodeId, Term};

impl Node {
    /// Accepts `from` as the leader of the current term; false for a (faulty) second leader.
    fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => false,
            Role::Follower => {
                self.election_elapsed = 0;
                self.set_leader(Some(from));
                true
            }
            Role::PreCandidate | Role::Candidate => {
                self.become_follower(self.term, Some(from));
                true
            }
        }
    }

    fn ack_after_persist(&mut self, to: NodeId, index: Index) {
        let m = Message {
            from: self.id,
            to,
            term: self.term,
            body: Body::AppendResponse {
                index,
                reject: None,
            },
        };
        self.send_after_persist(m);
    }

    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Entries,
        commit: Index,
    ) -> Result<(), StepError> {
        if !self.accept_leader(from) {
            return Ok(());
        }
        if prev_index < self.log.committed {
            let c = self.log.committed;
            self.ack_after_persist(from, c);
            return Ok(());
        }
        match self.log.maybe_append(prev_index, prev_term, &entries) {
            Err(AppendError::ConflictBelowCommit) => Err(StepError::ConflictsWithCommitted),
            Ok(Some((last_new, written))) => {
                if let Some(at) = written {
                    self.adopt_confs_from(at);
                }
                self.log.commit_to(commit.min(last_new));
                self.ack_after_persist(from, last_new);
                Ok(())
            }
            Ok(None) => {
                let probe = prev_index.min(self.log.last_index());
                let (hint_index, hint_term) = self.log.find_conflict_by_term(probe, prev_term);
                let reject = RejectHint {
                    rejected: prev_index,
                    hint_index,
                    hint_term,
                };
                self.send(
                    from,
                    Body::AppendResponse {
                        index: prev_index,
                        reject: Some(reject),
                    },
                );
                Ok(())
            }
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: Index, read_round: u64) {
        if !self.accept_leader(from) {
            return;
        }
        self.log.commit_to(commit);
        self.send(from, Body::HeartbeatResponse { read_round });
    }

    pub(crate) fn handle_snapshot_message(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        last: bool,
    ) {
        if !self.accept_leader(from) {
            return;
        }
        if meta.index <= self.log.committed {
            self.incoming_snapshot = None;
            let c = self.log.committed;
            self.ack_after_persist(from, c);
            return;
        }
        if offset == 0 {
            self.incoming_snapshot = Some(IncomingSnapshot {
                meta: meta.clone(),
                next_offset: 0,
            });
        }
        let expected = match &self.incoming_snapshot {
            Some(inc) if inc.meta.index == meta.index && inc.meta.term == meta.term => {
                inc.next_offset
            }
            _ => 0,
        };
        if expected != offset || self.incoming_snapshot.is_none() {
            self.send(
                from,
                Body::SnapshotAck {
                    index: meta.index,
                    next_offset: expected,
                },
            );
            return;
        }
        let next_offset = offset.saturating_add(data.len() as u64);
        if let Some(inc) = self.incoming_snapshot.as_mut() {
            inc.next_offset = next_offset;
        }
        self.out.push_back(Output::StageSnapshotChunk {
            meta: alloc::boxed::Box::new(meta.clone()),
            offset,
            data,
            last,
        });
        if !last {
            self.send(
                from,
                Body::SnapshotAck {
                    index: meta.index,
                    next_offset,
                },
            );
            return;
        }
        self.incoming_snapshot = None;
        let index = meta.index;
        self.install_snapshot(meta);
        self.ack_after_persist(from, index);
    }

    /// Replaces the log prefix with a snapshot received in full.
    fn install_snapshot(&mut self, meta: SnapshotMeta) {
        self.log.restore(meta.clone());
        self.tracker
            .set_conf(&meta.conf, self.log.last_index().next());
        self.conf_history.clear();
        self.resolve_proposals(meta.index);
        self.snapshot_to_persist = Some(meta);
    }

    pub(crate) fn handle_read_index_response(
        &mut self,
        from: NodeId,
        term: Term,
        id: u64,
        index: Option<Index>,
    ) {
        let Some(pos) = self
            .forwarded_reads
            .iter()
            .position(|r| r.id.0 == id && r.leader == from && r.term == term)
        else {
            return;
        };
        let r = self.forwarded_reads.remove(pos);
        let outcome = match index {
            Some(i) => ReadOutcome::Ready(i),
            None => ReadOutcome::Failed(ReadFailure::LeaderChanged),
        };
        self.out.push_back(Output::Read(r.id, outcome));
    }
}
