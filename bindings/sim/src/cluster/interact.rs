//! Interactive use of the cluster: user operations, faults set by hand, and recording the
//! structured event log.
use super::events::EventKind;
use super::trace::describe_event;
use super::user::UserInput;
use super::{Cluster, Packet};
use crate::net::LinkFaults;
use strata_engine::node::io::Disk;
use strata_engine::node::NodeEvent;
use strata_raft::Role;

impl Cluster {
    /// Issues a user operation (see [`super::user`]) to node `node` (from 1; `None`: any) and
    /// returns its id in [`super::user::Users::ops`]. Panics if `node` is not a node.
    pub fn user_op(&mut self, input: UserInput, node: Option<u64>) -> u64 {
        if let Some(n) = node {
            assert!((1..=self.machines.len() as u64).contains(&n), "no node {n}");
        }
        let now = self.now;
        let text = input.describe();
        let (id, opened, (from, to, bytes)) = self.users.start(now, input, node, self.machines.len() as u64);
        if let Some(addr) = opened {
            self.net.add_node(addr);
        }
        let session = self.users.ops[id as usize].session.clone();
        let at = node.map_or("any".to_string(), |n| format!("n{n}"));
        self.note(EventKind::Call { op: id, session: session.clone(), node, input: text.clone() }, format!("{now} {session} op#{id} {text} at {at}"));
        self.net.send(now, from, to, Packet::Request(bytes));
        self.flush_net_events();
        id
    }

    /// Session `s`'s timer fired.
    pub(super) fn wake_user(&mut self, s: usize) {
        let now = self.now;
        let (send, ended) = self.users.wake(now, s, self.machines.len() as u64);
        if let Some((from, to, bytes)) = send {
            self.net.send(now, from, to, Packet::Request(bytes));
        }
        if let Some(op) = ended {
            self.note_return(op);
        }
    }

    /// Cuts every link between the groups (both directions; node ids from 1), after healing
    /// earlier cuts. Clients still reach every node.
    pub fn partition(&mut self, groups: &[Vec<u64>]) {
        let now = self.now;
        self.net.heal(now);
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        self.net.cut(now, x, y);
                        self.net.cut(now, y, x);
                    }
                }
            }
        }
        self.stats.partitions += 1;
        let text: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
        self.log_fault(format!("{now} partition {}", text.join(" | ")));
    }

    /// Cuts the direction `from → to` (node ids from 1).
    pub fn cut(&mut self, from: u64, to: u64) {
        let now = self.now;
        self.net.cut(now, from, to);
        self.stats.partitions += 1;
        self.log_fault(format!("{now} cut n{from} -> n{to}"));
    }

    /// Restores the direction `from → to`.
    pub fn uncut(&mut self, from: u64, to: u64) {
        let now = self.now;
        self.net.uncut(now, from, to);
        self.log_fault(format!("{now} uncut n{from} -> n{to}"));
    }

    /// Ends every partition and cut (down nodes stay down).
    pub fn heal(&mut self) {
        let now = self.now;
        self.net.heal(now);
        self.log_fault(format!("{now} heal"));
    }

    /// Sets how every link behaves from now on (messages in flight keep their latency).
    pub fn set_link(&mut self, link: LinkFaults) {
        let now = self.now;
        let text = format!(
            "{now} links: latency {}..{} ms, drop {}, duplicate {}, reorder {}",
            link.min_latency, link.max_latency, link.drop_rate, link.duplicate_rate, link.reorder_rate
        );
        self.cfg.link = link.clone();
        self.net.set_default_link(link);
        self.log_fault(text);
    }

    /// Sets node `node`'s disks by hand (from 1): every request on its store disk takes
    /// `store_ms` more and on its log disk `log_ms` more (0: normal speed), and a fraction
    /// `error_rate` (0..=1) of the writes on both fail. A node whose write fails stops (it
    /// answers `Unavailable`) and is restarted on its disks after
    /// [`super::Faults::restart_within_ms`] at most. Lasts until set again (or a heal of the
    /// random faults). Panics if `node` is not a node.
    pub fn set_disk(&mut self, node: u64, store_ms: u64, log_ms: u64, error_rate: f64) {
        assert!((1..=self.machines.len() as u64).contains(&node), "no node {node}");
        let m = &mut self.machines[(node - 1) as usize];
        m.slow_ms = [store_ms, log_ms];
        m.store_disk.faults.write_error_rate = error_rate;
        m.log_disk.faults.write_error_rate = error_rate;
        if error_rate > 0.0 {
            self.stats.disk_errors_by_hand += 1;
        }
        let line = if store_ms == 0 && log_ms == 0 && error_rate == 0.0 {
            format!("{} n{node} disks healthy", self.now)
        } else {
            format!("{} n{node} disks: store +{store_ms} ms, log +{log_ms} ms, {}% of writes fail", self.now, (error_rate * 100.0).round())
        };
        self.log_fault(line);
    }

    /// A fault line: in the trace and the event log.
    pub(super) fn log_fault(&mut self, line: String) {
        let what = line.split_once(' ').map_or(line.as_str(), |(_, w)| w).to_string();
        self.note(EventKind::Fault { what }, line.clone());
        self.log_line(line);
    }

    /// Records an event (after the network's events so far, so the order is kept).
    pub(super) fn note(&mut self, kind: EventKind, text: String) {
        if self.cfg.record_events {
            self.flush_net_events();
            self.events_log.push(self.now, kind, text);
        }
    }

    pub(super) fn flush_net_events(&mut self) {
        if self.cfg.record_events {
            for t in self.net.take_trace() {
                self.events_log.push_net(t);
            }
        }
    }

    pub(super) fn note_synced(&mut self, k: usize, disk: Disk) {
        let d = if disk == Disk::Log { "log" } else { "store" };
        self.note(EventKind::Synced { node: k as u64 + 1, disk: d.into() }, format!("{} n{} {d} disk synced", self.now, k + 1));
    }

    pub(super) fn note_compaction(&mut self, k: usize, compactions: u64) {
        self.note(EventKind::Compaction { node: k as u64 + 1, compactions }, format!("{} n{} store compaction done ({compactions} so far)", self.now, k + 1));
    }

    pub(super) fn note_node_event(&mut self, node: u64, e: &NodeEvent) {
        let Some(line) = describe_event(e) else { return };
        let kind = match e {
            NodeEvent::Recovered { applied, last_index, term } => EventKind::Recovered { node, applied: applied.0, last_index: last_index.0, term: term.0 },
            NodeEvent::LeaderChanged { term, leader } => EventKind::Leader { node, term: term.0, leader: leader.map(|l| l.0) },
            NodeEvent::Persisting { entries, last } => EventKind::Persist { node, entries: *entries as u64, last: last.0 },
            NodeEvent::Applied { index } => EventKind::Applied { node, index: index.0 },
            NodeEvent::Flushed { mark } => EventKind::Flushed { node, mark: *mark },
            NodeEvent::Compacted { index } => EventKind::LogCompacted { node, index: index.0 },
            NodeEvent::SnapshotPinned { index, files, bytes } => EventKind::SnapshotPinned { node, index: index.0, files: *files as u64, bytes: *bytes },
            NodeEvent::SnapshotInstalled { index } => EventKind::SnapshotInstalled { node, index: index.0 },
            NodeEvent::LogRebased { index } => EventKind::LogRebased { node, index: index.0 },
            NodeEvent::ConfChanged { index, membership: m } => EventKind::Membership {
                node,
                index: index.0,
                conf_ver: m.epoch.conf_ver,
                voters: m.voters.clone(),
                learners: m.learners.clone(),
                removed: m.removed.clone(),
            },
            NodeEvent::Removed => EventKind::Removed { node },
            NodeEvent::Failed(err) => EventKind::Failed { node, error: err.to_string() },
        };
        self.note(kind, format!("{} n{node} {line}", self.now));
    }

    /// Records the end of user op `id`.
    pub(super) fn note_return(&mut self, id: u64) {
        let op = &self.users.ops[id as usize];
        let result = match &op.result {
            Some(super::user::UserResult::Ok { value: Some(v), read_ts, .. }) => {
                format!("value {} (read ts {})", v.as_deref().unwrap_or("(absent)"), read_ts.unwrap_or(0))
            }
            Some(super::user::UserResult::Ok { swapped: Some(w), revision, .. }) => format!("swapped {w} at revision {}", revision.unwrap_or(0)),
            Some(super::user::UserResult::Ok { revision, .. }) => format!("written at revision {}", revision.unwrap_or(0)),
            Some(super::user::UserResult::Err { error, .. }) => format!("error: {error}"),
            None => "?".into(),
        };
        let by = op.served_by.map_or(String::new(), |n| format!(" from n{n}"));
        let text = format!("{} {} op#{id} {} -> {result}{by}", self.now, op.session, op.text);
        let kind = EventKind::Return { op: id, session: op.session.clone(), node: op.served_by, result };
        self.note(kind, text);
    }

    /// After each [`Cluster::step_one`]: the network's events, then role changes.
    pub(super) fn record_step_end(&mut self) {
        if !self.cfg.record_events {
            return;
        }
        self.flush_net_events();
        for k in 0..self.machines.len() {
            let now = match self.machines[k].node.as_ref().and_then(|n| n.raft()) {
                Some(r) => (Some(role_name(r.role()).to_string()), r.term().0),
                None => (None, self.roles[k].1),
            };
            if now != self.roles[k] {
                let text = format!("{} n{} {} term {}", self.now, k + 1, now.0.as_deref().unwrap_or("down"), now.1);
                self.roles[k] = now.clone();
                self.note(EventKind::Role { node: k as u64 + 1, role: now.0, term: now.1 }, text);
            }
        }
    }

}

/// A role's name.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "Follower",
        Role::PreCandidate => "PreCandidate",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
    }
}
