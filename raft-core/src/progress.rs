//! What the leader knows about one follower's log, and the flow control of appends to it
//! (probe / replicate / snapshot, after etcd raft's `Progress`).

use alloc::collections::VecDeque;

use crate::message::SnapshotMeta;
use crate::types::Index;

/// How the leader is replicating to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Finding where the logs match: at most one append in flight.
    Probe,
    /// Streaming: appends are sent optimistically, up to the in-flight limit.
    Replicate,
    /// The follower needs a snapshot; appends wait until it is installed.
    Snapshot,
}

/// Where an outgoing snapshot transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotTransfer {
    /// The snapshot being sent.
    pub(crate) meta: SnapshotMeta,
    /// Next byte offset to send.
    pub(crate) offset: u64,
    /// A chunk was requested from the application and not yet provided.
    pub(crate) awaiting_chunk: bool,
    /// All chunks were sent; waiting for the follower's install acknowledgement.
    pub(crate) done: bool,
    /// Ticks since the follower last acknowledged anything; the transfer is abandoned
    /// after an election timeout of silence.
    pub(crate) idle_ticks: u32,
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) matched: Index,
    /// Next index to send.
    pub(crate) next: Index,
    pub(crate) state: ProgressState,
    /// In probe state: an append is in flight, wait for its answer (or a heartbeat answer).
    pub(crate) probe_sent: bool,
    /// Heard from since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// Last index of each append in flight (replicate state).
    pub(crate) inflights: VecDeque<Index>,
    /// Commit index last told to the follower.
    pub(crate) sent_commit: Index,
    /// Snapshot transfer in progress (snapshot state).
    pub(crate) snapshot: Option<SnapshotTransfer>,
    /// Heartbeat answers since `matched` last moved while the follower was behind: lost
    /// appends are detected this way and replication restarts from `matched`.
    pub(crate) stalled_heartbeats: u32,
}

impl Progress {
    pub(crate) fn new(next: Index) -> Progress {
        Progress {
            matched: Index(0),
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            recent_active: false,
            inflights: VecDeque::new(),
            sent_commit: Index(0),
            snapshot: None,
            stalled_heartbeats: 0,
        }
    }

    /// Resets to probing from `next`.
    pub(crate) fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self
                .snapshot
                .as_ref()
                .map(|s| s.meta.index)
                .unwrap_or(Index(0));
            self.next = self.matched.max(pending).next();
        } else {
            self.next = self.matched.next();
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot = None;
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot = None;
    }

    pub(crate) fn become_snapshot(&mut self, meta: SnapshotMeta) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot = Some(SnapshotTransfer {
            meta,
            offset: 0,
            awaiting_chunk: true,
            done: false,
            idle_ticks: 0,
        });
    }

    /// Records an acknowledgement up to `index`; returns whether it was news.
    pub(crate) fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
            self.stalled_heartbeats = 0;
        }
        if self.next <= index {
            self.next = index.next();
        }
        updated
    }

    /// Whether no append may be sent now.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.len() >= max_inflight,
            ProgressState::Snapshot => true,
        }
    }

    /// Records that an append ending at `last` was sent.
    pub(crate) fn sent_entries(&mut self, last: Index, had_entries: bool) {
        match self.state {
            ProgressState::Replicate => {
                if had_entries {
                    self.next = last.next();
                    self.inflights.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// Frees in-flight slots up to `index`.
    pub(crate) fn free_inflights_to(&mut self, index: Index) {
        while self.inflights.front().is_some_and(|&i| i <= index) {
            self.inflights.pop_front();
        }
    }

    /// Handles a rejection of the append at `rejected`; `next` is the leader's guess of where
    /// to retry. Returns false when the rejection is stale.
    pub(crate) fn maybe_decr_to(&mut self, rejected: Index, next: Index) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched.next();
            self.state = ProgressState::Probe;
            self.inflights.clear();
            self.probe_sent = false;
            return true;
        }
        if self.next.prev() != rejected {
            return false;
        }
        self.next = next.min(rejected).max(self.matched.next());
        self.probe_sent = false;
        true
    }
}
