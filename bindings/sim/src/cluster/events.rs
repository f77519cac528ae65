//! The cluster's structured event log (on with [`super::ClusterConfig::record_events`]): every
//! message sent, delivered or dropped, every persistence, sync, apply, flush, role change,
//! crash, fault and user operation, in the order they happened, each with a readable line.
//! A viewer (the browser demo) reads it through a cursor ([`EventLog::since`]) to animate
//! messages on links; [`EventLog::digest`] folds every event ever recorded, so two runs with
//! equal digests had equal traces.
use crate::net::TraceEvent;
use serde::Serialize;
use std::collections::VecDeque;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its number (from 0, consecutive).
    pub i: u64,
    /// When (ms).
    pub at: u64,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
    /// One readable line.
    pub text: String,
}

/// What happened. Endpoints are `"n1"` (node), `"c1"` (workload client), `"u1"` (user
/// session), `"b1"` (bank client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum EventKind {
    /// A message entered the network (it arrives at `due` unless dropped).
    Send { id: u64, from: String, to: String, due: u64, kind: String, term: Option<u64>, copy_of: Option<u64> },
    /// A message arrived.
    Deliver { id: u64, from: String, to: String },
    /// A message was lost.
    Drop { id: u64, from: String, to: String, reason: String },
    /// A node's role or term changed (`role` null: down or recovering).
    Role { node: u64, role: Option<String>, term: u64 },
    /// The leader a node knows of changed.
    Leader { node: u64, term: u64, leader: Option<u64> },
    /// Entries handed to the Raft log to make durable.
    Persist { node: u64, entries: u64, last: u64 },
    /// A sync completed on a node's disk (`log` or `store`).
    Synced { node: u64, disk: String },
    /// Entries applied up to `index`.
    Applied { node: u64, index: u64 },
    /// A store flush installed.
    Flushed { node: u64, mark: u64 },
    /// The store finished a compaction (`compactions` so far).
    Compaction { node: u64, compactions: u64 },
    /// The Raft log was compacted.
    LogCompacted { node: u64, index: u64 },
    /// Leader: the store's tables at `index` are pinned and offered to lagging followers.
    SnapshotPinned { node: u64, index: u64, files: u64, bytes: u64 },
    /// Follower: a received snapshot is installed as the store's contents.
    SnapshotInstalled { node: u64, index: u64 },
    /// Recovery rebuilt the log's base at the store's applied index (crash after an install).
    LogRebased { node: u64, index: u64 },
    /// A configuration entry was applied: the membership from then on.
    Membership { node: u64, index: u64, conf_ver: u64, voters: Vec<u64>, learners: Vec<u64>, removed: Vec<u64> },
    /// The node was removed from the region and stopped serving.
    Removed { node: u64 },
    /// Recovery finished.
    Recovered { node: u64, applied: u64, last_index: u64, term: u64 },
    /// The node stopped with an error.
    Failed { node: u64, error: String },
    /// A node (re)started.
    Start { node: u64, incarnation: u64 },
    /// A node crashed.
    Crash { node: u64, lost_unsynced: bool },
    /// The network's or the disks' faults changed.
    Fault { what: String },
    /// A user operation was issued (`node`: the node asked, null = any).
    Call { op: u64, session: String, node: Option<u64>, input: String },
    /// A user operation ended (`node`: the node that answered).
    Return { op: u64, session: String, node: Option<u64>, result: String },
}

/// The name of network address `a` in events.
pub fn endpoint(a: u64) -> String {
    if a > super::BANK_BASE {
        format!("b{}", a - super::BANK_BASE)
    } else if a > super::user::USER_BASE {
        format!("u{}", a - super::user::USER_BASE)
    } else if a > super::CLIENT_BASE {
        format!("c{}", a - super::CLIENT_BASE)
    } else if a == super::PROBE_ADDR {
        "probe".to_string()
    } else {
        format!("n{a}")
    }
}

/// Events kept, newest last; older ones are forgotten (the digest still covers them).
pub const KEEP_EVENTS: usize = 200_000;

/// The log. See the module docs.
#[derive(Clone, Debug)]
pub struct EventLog {
    events: VecDeque<Event>,
    next: u64,
    digest: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog { events: VecDeque::new(), next: 0, digest: 0xcbf2_9ce4_8422_2325 }
    }
}

impl EventLog {
    /// Records an event.
    pub fn push(&mut self, at: u64, kind: EventKind, text: String) {
        for b in at.to_le_bytes().iter().chain(text.as_bytes()).chain([0xff].iter()) {
            self.digest ^= u64::from(*b);
            self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
        }
        self.events.push_back(Event { i: self.next, at, kind, text });
        self.next += 1;
        if self.events.len() > KEEP_EVENTS {
            self.events.pop_front();
        }
    }

    /// The number the next event will get (= events recorded so far).
    pub fn count(&self) -> u64 {
        self.next
    }

    /// The kept events numbered `i` or later.
    pub fn since(&self, i: u64) -> impl Iterator<Item = &Event> {
        let first = self.events.front().map_or(self.next, |e| e.i);
        self.events.iter().skip(i.saturating_sub(first) as usize)
    }

    /// FNV-1a over every event recorded (time and line).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Records the network's trace events (sends, deliveries, drops; its own fault lines are
    /// left out: the cluster records faults itself).
    pub fn push_net(&mut self, t: TraceEvent) {
        match t {
            TraceEvent::Send { at, from, to, id, due, copy_of, msg } => {
                let (kind, term) = message_kind(&msg);
                let (f, tt) = (endpoint(from), endpoint(to));
                let copy = copy_of.map_or(String::new(), |c| format!(" (copy of m{})", c.0));
                let text = format!("{at} {f} -> {tt} m{} {msg}{copy}", id.0);
                self.push(at, EventKind::Send { id: id.0, from: f, to: tt, due, kind, term, copy_of: copy_of.map(|c| c.0) }, text);
            }
            TraceEvent::Deliver { at, from, to, id } => {
                let (f, tt) = (endpoint(from), endpoint(to));
                let text = format!("{at} {tt} <- {f} m{} delivered", id.0);
                self.push(at, EventKind::Deliver { id: id.0, from: f, to: tt }, text);
            }
            TraceEvent::Drop { at, from, to, id, reason } => {
                let (f, tt) = (endpoint(from), endpoint(to));
                let text = format!("{at} {f} -> {tt} m{} dropped ({reason})", id.0);
                self.push(at, EventKind::Drop { id: id.0, from: f, to: tt, reason: reason.to_string() }, text);
            }
            TraceEvent::Fault { .. } => {}
        }
    }
}

/// The kind and term of a message from its description (`trace::describe_packet`):
/// `Append t3 ...` → (`Append`, 3); `request#4 ...` → (`Request`, none).
pub fn message_kind(text: &str) -> (String, Option<u64>) {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    if first.starts_with("request") {
        return ("Request".into(), None);
    }
    if first.starts_with("response") {
        return ("Response".into(), None);
    }
    let term = words.next().and_then(|w| w.strip_prefix('t')).and_then(|t| t.parse().ok());
    (first.to_string(), term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_cursor() {
        assert_eq!(message_kind("Append t3 i5..i7 c4"), ("Append".to_string(), Some(3)));
        assert_eq!(message_kind("request#2 read x Linearizable"), ("Request".to_string(), None));
        let mut log = EventLog::default();
        for k in 0..5 {
            log.push(k, EventKind::Fault { what: "heal".into() }, format!("{k} heal"));
        }
        assert_eq!(log.count(), 5);
        assert_eq!(log.since(3).map(|e| e.i).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(log.since(9).count(), 0);
        let d = log.digest();
        log.push(5, EventKind::Fault { what: "heal".into() }, "5 heal".into());
        assert_ne!(log.digest(), d);
    }
}
