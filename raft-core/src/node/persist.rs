//! Asynchronous persistence and apply: the node hands out writes with ids, holds the
//! messages that claim durability until their write completes (etcd's
//! `msgsAfterAppend`), and hands committed, durable entries to the application.

use alloc::vec::Vec;

use crate::message::{Entry, HardState, Message};
use crate::node::{Held, InflightPersist, Node, Role};
use crate::output::{DropReason, Output, Persist, ProposalOutcome};
use crate::types::{Index, PersistId};

/// How many spare buffers of each kind a node keeps.
const MAX_SPARE_BUFS: usize = 8;
/// Larger entry buffers are freed rather than kept (a burst should not pin its memory).
const MAX_SPARE_ENTRIES: usize = 4096;

impl Node {
    /// An empty entry buffer, reusing a recycled one when there is one.
    pub(crate) fn take_entry_buf(&mut self) -> Vec<Entry> {
        self.spare_entries.pop().unwrap_or_default()
    }

    /// Gives back an entry buffer this node handed out (or any other): it is emptied and
    /// kept for a later persist request, apply batch or append message.
    pub fn recycle(&mut self, mut buf: Vec<Entry>) {
        buf.clear();
        if buf.capacity() > 0
            && buf.capacity() <= MAX_SPARE_ENTRIES
            && self.spare_entries.len() < MAX_SPARE_BUFS
        {
            self.spare_entries.push(buf);
        }
    }

    /// Whether state changed since the last persist request.
    pub(crate) fn needs_persist(&self) -> bool {
        self.log.unpersisted_from <= self.log.last_index()
            || (self.term, self.vote) != self.persisted_hs
            || self.snapshot_to_persist.is_some()
    }

    pub(crate) fn can_apply(&self) -> bool {
        self.log.committed.min(self.log.stable) > self.log.applied
    }

    /// Holds `h` until everything written so far is durable.
    pub(crate) fn hold(&mut self, h: Held) {
        if self.needs_persist() {
            self.held.push(h);
        } else if let Some(p) = self.inflight_persists.back_mut() {
            p.held.push(h);
        } else {
            self.release(h);
        }
    }

    pub(crate) fn send_after_persist(&mut self, m: Message) {
        self.hold(Held::Message(m));
    }

    fn release(&mut self, h: Held) {
        match h {
            Held::Message(m) => self.out.push_back(Output::Send(m)),
            Held::SelfVote(term) => self.self_vote_persisted(term),
        }
    }

    /// Produces the outputs that are computed lazily: appends, read heartbeats, the persist
    /// request and the apply batch.
    pub(crate) fn flush(&mut self) {
        if self.role == Role::Leader {
            if self.broadcast_pending {
                self.broadcast_append();
            }
            if self.reads.to_broadcast > 0 {
                self.broadcast_heartbeat(self.reads.to_broadcast);
            }
        }
        self.flush_persist();
        self.flush_apply();
    }

    fn flush_persist(&mut self) {
        if !self.needs_persist() {
            return;
        }
        let last = self.log.last_index();
        let mut entries = self.take_entry_buf();
        let lo = self.log.unpersisted_from.max(self.log.first_index());
        self.log.slice(lo, last.next(), u64::MAX, &mut entries);
        let id = PersistId(self.next_persist_id);
        self.next_persist_id += 1;
        let hard_state = HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        };
        let snapshot = self.snapshot_to_persist.take();
        self.out.push_back(Output::Persist(Persist {
            id,
            hard_state,
            snapshot: snapshot.map(alloc::boxed::Box::new),
            entries,
        }));
        let spare = self.spare_held.pop().unwrap_or_default();
        let held = core::mem::replace(&mut self.held, spare);
        let last_term = self.log.last_term();
        self.inflight_persists.push_back(InflightPersist {
            id,
            last_index: last,
            last_term,
            held,
        });
        self.log.unpersisted_from = last.next();
        self.persisted_hs = (self.term, self.vote);
    }

    pub(crate) fn complete_persists(&mut self, id: PersistId) {
        while self.inflight_persists.front().is_some_and(|p| p.id <= id) {
            let Some(mut p) = self.inflight_persists.pop_front() else {
                break;
            };
            self.log.stable_to(p.last_index, p.last_term);
            for h in p.held.drain(..) {
                self.release(h);
            }
            if p.held.capacity() > 0 && self.spare_held.len() < MAX_SPARE_BUFS {
                self.spare_held.push(p.held);
            }
        }
        if self.role == Role::Leader {
            let stable = self.log.stable;
            let me = self.id;
            if let Some(pr) = self.tracker.get_mut(me) {
                if stable > pr.matched {
                    pr.matched = stable;
                    pr.next = pr.next.max(stable.next());
                }
            }
            self.maybe_commit();
        }
    }

    fn flush_apply(&mut self) {
        let hi = self.log.committed.min(self.log.stable);
        if hi <= self.log.applied {
            return;
        }
        let lo = self.log.applied.next();
        let mut entries = self.take_entry_buf();
        entries.extend(self.log.iter_range(lo, hi.next()).cloned());
        self.log.applied = hi;
        if entries
            .iter()
            .any(|e| e.kind == crate::message::EntryKind::ConfChange)
        {
            self.conf_entry_applied();
        }
        self.out.push_back(Output::Apply(entries));
        self.resolve_proposals(hi);
        self.maybe_leave_joint();
    }

    /// Reports the outcome of every pending proposal at or below `upto`: committed if the
    /// log holds it there, superseded if another entry took its place.
    pub(crate) fn resolve_proposals(&mut self, upto: Index) {
        while self.proposals.front().is_some_and(|p| p.index <= upto) {
            let Some(p) = self.proposals.pop_front() else {
                break;
            };
            let outcome = match self.log.term(p.index) {
                Some(t) if t == p.term => ProposalOutcome::Committed(p.index),
                Some(_) => ProposalOutcome::Dropped(DropReason::Superseded),
                None => {
                    // Covered by a snapshot: decide from the snapshot's term (terms never
                    // decrease along a log, and only our own term-`p.term` log made
                    // entries of that term).
                    let st = self.log.snapshot.term;
                    if st == p.term {
                        ProposalOutcome::Committed(p.index)
                    } else if st < p.term {
                        ProposalOutcome::Dropped(DropReason::Superseded)
                    } else {
                        ProposalOutcome::Indeterminate
                    }
                }
            };
            self.out.push_back(Output::Proposal(p.id, outcome));
        }
    }
}
