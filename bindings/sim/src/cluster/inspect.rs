//! Read-only views of the cluster for a viewer (the browser demo): each node's Raft state,
//! log, timers and store shape, the network, and the MVCC versions of one key. Reading them
//! changes nothing in the simulation (disk blocks are read without counting or faults).
use super::interact::role_name;
use super::Cluster;
use crate::disk::SimDisk;
use serde::Serialize;
use std::ops::Bound;
use strata_engine::lsm::iter::IterStep;
use strata_engine::lsm::sstable::Block;
use strata_engine::mvcc::codec::{decode_key, key_prefix, Cf};
use strata_engine::mvcc::record::{Lock, Write, WriteKind};
use strata_engine::node::command::LogCommand;
use strata_engine::node::Node;
use strata_raft::{EntryKind, NodeId, ProgressState};

/// One node.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct NodeView {
    pub id: u64,
    pub up: bool,
    pub incarnation: u64,
    pub crashes: u64,
    /// `None` while down or recovering.
    pub role: Option<&'static str>,
    pub term: u64,
    pub vote: Option<u64>,
    pub leader: Option<u64>,
    pub commit: u64,
    pub applied: u64,
    pub applied_ts: u64,
    pub first_index: u64,
    pub last_index: u64,
    pub last_term: u64,
    /// Ticks since the leader was heard from, and the randomized timeout.
    pub election: Option<ElectionView>,
    /// The newest entries (at most the tail asked for).
    pub log: Vec<EntryView>,
    /// The index of `log[0]`.
    pub log_from: u64,
    /// Leader only: each follower's replication.
    pub progress: Option<Vec<ProgressView>>,
    pub store: Option<StoreView>,
    pub pending_requests: usize,
    /// Its disks' state (up or down): slow and failing by hand or by the random faults.
    pub disk: DiskView,
    /// Its place in the region as the most advanced running node applied it (see
    /// [`Cluster::member_kind`]): `voter`, `learner`, `removed` or `outside`.
    pub member: &'static str,
    /// Stopped for good after its removal ([`Cluster::decommission`]).
    pub decommissioned: bool,
}

/// A node's disks.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct DiskView {
    /// Extra ms per request on the store's disk and the log's.
    pub store_ms: u64,
    pub log_ms: u64,
    /// The fraction of writes that fail (the larger of the two disks').
    pub error_rate: f64,
    /// Times the node stopped on a storage failure.
    pub failures: u64,
}

/// The election timer.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct ElectionView {
    pub elapsed: u32,
    pub timeout: u32,
}

/// One log entry.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct EntryView {
    pub index: u64,
    pub term: u64,
    pub text: String,
}

/// A follower's replication, as the leader tracks it.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct ProgressView {
    pub peer: u64,
    #[serde(rename = "match")]
    pub matched: u64,
    pub next: u64,
    pub state: &'static str,
}

/// The store under the log.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct StoreView {
    pub memtable_bytes: u64,
    pub memtable_entries: usize,
    pub levels: Vec<LevelView>,
    pub flushes: u64,
    pub compactions: u64,
    pub last_seq: u64,
    pub durable_mark: u64,
}

/// One LSM level.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct LevelView {
    pub level: usize,
    pub files: usize,
    pub bytes: u64,
    /// `(file number, bytes)` of each table.
    pub tables: Vec<(u64, u64)>,
}

/// The network.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct NetView {
    pub min_latency: u64,
    pub max_latency: u64,
    pub drop_rate: f64,
    pub duplicate_rate: f64,
    pub reorder_rate: f64,
    pub cuts: Vec<(u64, u64)>,
    pub in_flight: Vec<InFlightView>,
}

/// A message on its way.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct InFlightView {
    pub id: u64,
    pub from: String,
    pub to: String,
    pub sent: u64,
    pub due: u64,
    pub kind: String,
    pub term: Option<u64>,
}

/// One MVCC version of a key on one node.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct VersionView {
    pub commit_ts: u64,
    pub start_ts: u64,
    /// `put`, `delete`, `rollback` or `lock`.
    pub kind: &'static str,
    pub value: Option<String>,
}

/// The versions of a key on one node, newest first, and its lock.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct KeyView {
    pub node: u64,
    pub versions: Vec<VersionView>,
    pub lock: Option<String>,
}

impl Cluster {
    /// Node `k` (index), with at most `log_tail` of the newest log entries.
    pub fn node_view(&self, k: usize, log_tail: u64) -> NodeView {
        let m = &self.machines[k];
        let mut v = NodeView {
            id: k as u64 + 1,
            up: m.node.is_some(),
            incarnation: m.incarnation,
            crashes: m.crashes,
            role: None,
            term: 0,
            vote: None,
            leader: None,
            commit: 0,
            applied: 0,
            applied_ts: 0,
            first_index: 0,
            last_index: 0,
            last_term: 0,
            election: None,
            log: Vec::new(),
            log_from: 0,
            progress: None,
            store: None,
            pending_requests: 0,
            disk: DiskView {
                store_ms: m.slow_ms[0],
                log_ms: m.slow_ms[1],
                error_rate: m.write_error_rate(),
                failures: m.failures,
            },
            member: self.member_kind(k as u64 + 1),
            decommissioned: m.decommissioned,
        };
        let Some(n) = &m.node else { return v };
        v.applied = n.applied().0;
        v.applied_ts = n.applied_ts();
        v.pending_requests = n.pending_requests();
        v.store = Some(store_view(n));
        let Some(r) = n.raft() else { return v };
        v.role = Some(role_name(r.role()));
        v.term = r.term().0;
        v.vote = r.vote().map(|x| x.0);
        v.leader = r.leader().map(|x| x.0);
        v.commit = r.commit_index().0;
        v.first_index = r.first_index().0;
        v.last_index = r.last_index().0;
        v.last_term = r.last_term().0;
        let (elapsed, timeout) = r.election_timer();
        v.election = Some(ElectionView { elapsed, timeout });
        let from = r.first_index().0.max(r.last_index().0.saturating_sub(log_tail.saturating_sub(1))).max(1);
        v.log_from = from;
        for i in from..=r.last_index().0 {
            if let Some(e) = r.entry(strata_raft::Index(i)) {
                v.log.push(EntryView { index: i, term: e.term.0, text: describe_entry(e.kind, &e.data) });
            }
        }
        if r.is_leader() {
            let peers = (1..=self.machines.len() as u64).filter(|&p| p != v.id);
            v.progress = Some(
                peers
                    .filter_map(|p| r.progress(NodeId(p)).map(|(matched, next, st)| (p, matched, next, st)))
                    .map(|(peer, matched, next, st)| ProgressView {
                        peer,
                        matched: matched.0,
                        next: next.0,
                        state: match st {
                            ProgressState::Probe => "Probe",
                            ProgressState::Replicate => "Replicate",
                            ProgressState::Snapshot => "Snapshot",
                        },
                    })
                    .collect(),
            );
        }
        v
    }

    /// The network's settings, cuts and messages in flight.
    pub fn net_view(&self) -> NetView {
        let l = self.net.default_link();
        NetView {
            min_latency: l.min_latency,
            max_latency: l.max_latency,
            drop_rate: l.drop_rate,
            duplicate_rate: l.duplicate_rate,
            reorder_rate: l.reorder_rate,
            cuts: self.net.cuts().collect(),
            in_flight: self
                .net
                .in_flight_messages()
                .map(|m| {
                    let (kind, term) = super::events::message_kind(&super::trace::describe_packet(m.msg));
                    InFlightView {
                        id: m.id.0,
                        from: super::events::endpoint(m.from),
                        to: super::events::endpoint(m.to),
                        sent: m.sent,
                        due: m.due,
                        kind,
                        term,
                    }
                })
                .collect(),
        }
    }

    /// The MVCC versions of user key `key` on every node that is up.
    pub fn key_versions(&self, key: &[u8]) -> Vec<KeyView> {
        let mut out = Vec::new();
        for (k, m) in self.machines.iter().enumerate() {
            let Some(n) = &m.node else { continue };
            let writes = scan_prefix(n, &m.store_disk, &key_prefix(Cf::Write, key));
            let defaults = scan_prefix(n, &m.store_disk, &key_prefix(Cf::Default, key));
            let locks = scan_prefix(n, &m.store_disk, &key_prefix(Cf::Lock, key));
            let mut versions = Vec::new();
            for (sk, sv) in writes {
                let (Ok(mk), Ok(w)) = (decode_key(&sk), Write::decode(&sv)) else { continue };
                if mk.user_key != key {
                    continue;
                }
                let value = match (&w.kind, &w.short_value) {
                    (WriteKind::Put, Some(v)) => Some(String::from_utf8_lossy(v).into_owned()),
                    (WriteKind::Put, None) => defaults
                        .iter()
                        .find(|(dk, _)| decode_key(dk).is_ok_and(|d| d.user_key == key && d.ts == Some(w.start_ts)))
                        .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
                    _ => None,
                };
                let kind = match w.kind {
                    WriteKind::Put => "put",
                    WriteKind::Delete => "delete",
                    WriteKind::Rollback => "rollback",
                    WriteKind::Lock => "lock",
                };
                versions.push(VersionView { commit_ts: mk.ts.map_or(0, |t| t.0), start_ts: w.start_ts.0, kind, value });
            }
            let lock = locks
                .iter()
                .find(|(lk, _)| decode_key(lk).is_ok_and(|d| d.user_key == key))
                .and_then(|(_, v)| Lock::decode(v).ok())
                .map(|l| format!("{:?} lock of txn {} (primary {})", l.kind, l.start_ts.0, String::from_utf8_lossy(&l.primary)));
            out.push(KeyView { node: k as u64 + 1, versions, lock });
        }
        out
    }
}

fn store_view(n: &Node) -> StoreView {
    let store = n.store();
    let s = store.stats();
    let view = store.read_view();
    let levels = view
        .version
        .levels
        .iter()
        .enumerate()
        .map(|(level, files)| LevelView {
            level,
            files: files.len(),
            bytes: s.level_bytes[level],
            tables: files.iter().map(|f| (f.meta.number, f.meta.file_len)).collect(),
        })
        .collect();
    StoreView {
        memtable_bytes: s.memtable_bytes,
        memtable_entries: store.memtables().map(|m| m.len()).sum(),
        levels,
        flushes: s.flushes,
        compactions: s.compactions,
        last_seq: s.last_seq,
        durable_mark: store.durable_mark(),
    }
}

/// A log entry, short: `put x=1 (u1#3)` (session `u1`, its write number 3).
pub fn describe_entry(kind: EntryKind, data: &[u8]) -> String {
    if kind == EntryKind::ConfChange {
        let e = strata_raft::Entry { term: strata_raft::Term(0), index: strata_raft::Index(0), kind, data: strata_raft::Bytes::copy_from_slice(data) };
        return match e.conf_change() {
            Some(cc) => super::trace::describe_conf_change(&cc),
            None => "configuration change (undecodable)".into(),
        };
    }
    if data.is_empty() {
        return "(empty: new leader)".into();
    }
    match LogCommand::decode(data) {
        Ok(LogCommand::Write(w)) => {
            let op = super::trace::describe_write_op(&w.op);
            format!("{op} ({}#{})", super::user::session_name(w.client.0), w.seq)
        }
        #[allow(unreachable_patterns)]
        Ok(other) => format!("{other:?}"),
        Err(_) => format!("({} bytes)", data.len()),
    }
}

/// Every live `(key, value)` of the node's store that starts with `prefix` (blocks read from
/// `disk` without touching it).
fn scan_prefix(n: &Node, disk: &SimDisk, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let store = n.store();
    let mut it = store.iter_unpinned(Bound::Included(prefix.to_vec()), Bound::Unbounded, u64::MAX);
    let mut out = Vec::new();
    loop {
        match it.step() {
            IterStep::Item(k, v) => {
                if !k.starts_with(prefix) {
                    return out;
                }
                out.push((k.to_vec(), v.to_vec()));
            }
            IterStep::NeedMemtable => store.refill_iter(&mut it),
            IterStep::NeedBlock { file, handle } => {
                let Some(raw) = disk.peek(file, handle.offset, u64::from(handle.len)) else { return out };
                match Block::decode(file, handle, raw) {
                    Ok(b) => it.supply(&b),
                    Err(_) => return out,
                }
            }
            IterStep::End => return out,
        }
    }
}
