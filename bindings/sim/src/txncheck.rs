//! Checks for transactional histories (the cluster's bank workload): the total at every read
//! snapshot, read-your-writes per client session, reads of aborted writes, and cycles in the
//! dependency graph of committed transactions (G0, G1c, G-single, G2, after Adya and Elle).
//!
//! Every written value names its writer ([`Val::writer`], a transaction id; 0 is the initial
//! state), so a read says which transaction it read from — the bank workload stores the writer
//! id beside the balance. Transactions are assumed to write each key at most once.
//!
//! The dependency graph over committed transactions (plus unknown-outcome ones that someone
//! read from, which must have committed):
//! - **wr** `T1 → T2`: T2 read a value T1 wrote.
//! - **ww** `T1 → T2`: T2 read key k from T1 and wrote k (a read-modify-write: T2's version of
//!   k directly follows T1's). Blind writes give no ww edges: the version order is not observed.
//! - **rw** `T1 → T2`: T1 read k from T0 and T2 overwrote that version (T0 →ww T2 on k), T1 ≠ T2.
//!
//! Then: a cycle of ww edges is **G0** (dirty write); of ww/wr edges **G1c** (circular
//! information flow); with exactly one rw edge **G-single** (read skew; forbidden by snapshot
//! isolation); any other cycle **G2** (write skew and worse; forbidden by serializability).
//! Reading a value written by an aborted transaction is **G1a**.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// A transaction id (nonzero; 0 stands for the initial state).
pub type TxnId = u64;
/// An account (key).
pub type Account = u64;

/// A stored value: a balance and the transaction that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Val {
    /// The balance.
    pub balance: i64,
    /// Who wrote it (0: the initial state).
    pub writer: TxnId,
}

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    /// Acknowledged as committed.
    Committed,
    /// Definitely aborted (nothing it wrote may be visible).
    Aborted,
    /// The client never learnt.
    Unknown,
}

/// One transaction of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Unique, nonzero; what its writes carry in [`Val::writer`].
    pub id: TxnId,
    /// The client session.
    pub client: u64,
    /// When the client began it.
    pub call: u64,
    /// When the client learnt the outcome (`None`: unknown).
    pub ret: Option<u64>,
    /// How it ended.
    pub status: TxnStatus,
    /// What it read (each key at most once), from its snapshot.
    pub reads: Vec<(Account, Val)>,
    /// What it wrote (balances; the writer is this transaction).
    pub writes: Vec<(Account, i64)>,
}

/// What the checks found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// A committed transaction that read every account saw a total other than the expected.
    WrongTotal {
        /// The transaction.
        txn: TxnId,
        /// The sum it read.
        total: i64,
        /// The invariant.
        expected: i64,
    },
    /// A client read, after its own committed write of `account`, a version older than it.
    ReadYourWrites {
        /// The client.
        client: u64,
        /// Its earlier committed transaction that wrote the account.
        wrote: TxnId,
        /// Its later transaction that missed the write.
        read: TxnId,
        /// The account.
        account: Account,
        /// The writer of the version read instead.
        saw: TxnId,
    },
    /// A committed transaction read a value of an aborted one (G1a).
    AbortedRead {
        /// The reader.
        txn: TxnId,
        /// The aborted writer.
        writer: TxnId,
        /// The account.
        account: Account,
    },
    /// A read names a writer that never wrote that account.
    PhantomWriter {
        /// The reader.
        txn: TxnId,
        /// The named writer.
        writer: TxnId,
        /// The account.
        account: Account,
    },
    /// A dependency cycle among committed transactions.
    Cycle {
        /// G0, G1c, G-single or G2.
        kind: CycleKind,
        /// The transactions in cycle order, each with the edge to the next.
        steps: Vec<(TxnId, Edge)>,
    },
}

/// A dependency edge kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    /// Write → write (version order).
    Ww,
    /// Write → read.
    Wr,
    /// Read → overwrite (anti-dependency).
    Rw,
}

/// Adya's cycle classes, weakest violation first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CycleKind {
    /// Only ww edges.
    G0,
    /// ww and wr edges.
    G1c,
    /// Exactly one rw edge.
    GSingle,
    /// Two or more rw edges.
    G2,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::WrongTotal { txn, total, expected } => write!(f, "t{txn} read a total of {total}, expected {expected}"),
            Anomaly::ReadYourWrites { client, wrote, read, account, saw } => write!(
                f,
                "client {client}: t{read} read account {account} from t{saw}, older than its own committed t{wrote}"
            ),
            Anomaly::AbortedRead { txn, writer, account } => write!(f, "G1a: t{txn} read account {account} from aborted t{writer}"),
            Anomaly::PhantomWriter { txn, writer, account } => {
                write!(f, "t{txn} read account {account} from t{writer}, which never wrote it")
            }
            Anomaly::Cycle { kind, steps } => {
                write!(f, "{kind:?} cycle:")?;
                for (t, e) in steps {
                    write!(f, " t{t} -{e:?}->")?;
                }
                match steps.first() {
                    Some((t, _)) => write!(f, " t{t}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct BankCheck {
    /// The accounts (a read of all of them is a snapshot whose total is checked).
    pub accounts: BTreeSet<Account>,
    /// Their initial balances.
    pub initial: BTreeMap<Account, i64>,
}

impl BankCheck {
    /// `n` accounts `0..n`, each starting with `balance`.
    pub fn new(n: u64, balance: i64) -> Self {
        BankCheck { accounts: (0..n).collect(), initial: (0..n).map(|a| (a, balance)).collect() }
    }

    /// Runs every check; anomalies in a deterministic order (totals, sessions, reads, cycles).
    pub fn check(&self, history: &[Txn]) -> Vec<Anomaly> {
        let expected: i64 = self.initial.values().sum();
        let by_id: BTreeMap<TxnId, &Txn> = history.iter().map(|t| (t.id, t)).collect();
        let mut out = Vec::new();
        // Totals.
        for t in history.iter().filter(|t| t.status == TxnStatus::Committed) {
            let read: BTreeMap<Account, i64> = t.reads.iter().map(|(a, v)| (*a, v.balance)).collect();
            if self.accounts.iter().all(|a| read.contains_key(a)) {
                let total = self.accounts.iter().map(|a| read[a]).sum();
                if total != expected {
                    out.push(Anomaly::WrongTotal { txn: t.id, total, expected });
                }
            }
        }
        // Who read from whom; G1a and phantom writers.
        let mut edges: BTreeSet<(TxnId, TxnId, Edge)> = BTreeSet::new();
        let mut read_from: BTreeMap<(Account, TxnId), Vec<TxnId>> = BTreeMap::new(); // (k, writer) -> readers
        let mut overwrote: BTreeMap<(Account, TxnId), Vec<TxnId>> = BTreeMap::new(); // (k, writer) -> RMW successors
        // Unknown-outcome transactions that a committed one read from must have committed.
        let read_writers: BTreeSet<TxnId> = history
            .iter()
            .filter(|t| t.status == TxnStatus::Committed)
            .flat_map(|t| t.reads.iter().map(|r| r.1.writer))
            .collect();
        let committed = |t: &Txn| {
            t.status == TxnStatus::Committed || (t.status == TxnStatus::Unknown && read_writers.contains(&t.id))
        };
        for t in history.iter().filter(|t| committed(t)) {
            for &(k, v) in &t.reads {
                if v.writer == 0 {
                    read_from.entry((k, 0)).or_default().push(t.id);
                } else {
                    match by_id.get(&v.writer) {
                        Some(w) if w.status == TxnStatus::Aborted => {
                            out.push(Anomaly::AbortedRead { txn: t.id, writer: w.id, account: k })
                        }
                        Some(w) if w.writes.iter().any(|&(a, b)| a == k && b == v.balance) => {
                            if w.id != t.id {
                                edges.insert((w.id, t.id, Edge::Wr));
                            }
                            read_from.entry((k, w.id)).or_default().push(t.id);
                        }
                        _ => out.push(Anomaly::PhantomWriter { txn: t.id, writer: v.writer, account: k }),
                    }
                }
                if t.writes.iter().any(|&(a, _)| a == k) && v.writer != t.id {
                    overwrote.entry((k, v.writer)).or_default().push(t.id);
                    if v.writer != 0 {
                        edges.insert((v.writer, t.id, Edge::Ww));
                    }
                }
            }
        }
        // rw: readers of a version → whoever overwrote it.
        for (key, successors) in &overwrote {
            for &r in read_from.get(key).into_iter().flatten() {
                for &s in successors {
                    if r != s {
                        edges.insert((r, s, Edge::Rw));
                    }
                }
            }
        }
        out.extend(self.sessions(history, &overwrote));
        out.extend(cycles(&edges));
        out
    }

    /// Read-your-writes: a client's transaction after its own committed write of k reads k from
    /// that write or from a version not known to precede it.
    fn sessions(&self, history: &[Txn], overwrote: &BTreeMap<(Account, TxnId), Vec<TxnId>>) -> Vec<Anomaly> {
        // Versions known to precede each write: k, writer -> versions before (by RMW chains).
        let mut before: BTreeMap<(Account, TxnId), TxnId> = BTreeMap::new();
        for (&(k, prev), succ) in overwrote {
            for &s in succ {
                before.insert((k, s), prev);
            }
        }
        let precedes = |k: Account, older: TxnId, newer: TxnId| -> bool {
            let mut at = newer;
            let mut hops = 0;
            while let Some(&p) = before.get(&(k, at)) {
                if p == older {
                    return true;
                }
                at = p;
                hops += 1;
                if hops > history.len() {
                    return false; // a cycle; reported as G0
                }
            }
            older == 0 && newer != 0
        };
        let mut out = Vec::new();
        let mut clients: BTreeMap<u64, Vec<&Txn>> = BTreeMap::new();
        for t in history {
            clients.entry(t.client).or_default().push(t);
        }
        for (client, mut txns) in clients {
            txns.sort_by_key(|t| (t.call, t.id));
            let mut last_write: BTreeMap<Account, (TxnId, u64)> = BTreeMap::new();
            for t in txns {
                if t.status == TxnStatus::Committed {
                    for &(k, v) in &t.reads {
                        if let Some(&(w, ret)) = last_write.get(&k) {
                            if ret < t.call && v.writer != w && precedes(k, v.writer, w) {
                                out.push(Anomaly::ReadYourWrites { client, wrote: w, read: t.id, account: k, saw: v.writer });
                            }
                        }
                    }
                    if let Some(ret) = t.ret {
                        for &(k, _) in &t.writes {
                            last_write.insert(k, (t.id, ret));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Finds cycles: G0 and G1c among ww(+wr) edges, G-single by looking, for each rw edge, for a
/// ww/wr path back, G2 among all edges. One example per class is reported. Acyclic graphs (the
/// common case) are recognized in linear time by a topological sort.
fn cycles(edges: &BTreeSet<(TxnId, TxnId, Edge)>) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let ww = Graph::new(edges.iter().filter(|e| e.2 == Edge::Ww));
    let wwr = Graph::new(edges.iter().filter(|e| e.2 != Edge::Rw));
    if let Some(c) = ww.find_cycle() {
        out.push(Anomaly::Cycle { kind: CycleKind::G0, steps: c });
    } else if let Some(c) = wwr.find_cycle() {
        out.push(Anomaly::Cycle { kind: CycleKind::G1c, steps: c });
    }
    for &(a, b, e) in edges.iter().filter(|e| e.2 == Edge::Rw) {
        if let Some(mut path) = wwr.path(b, a) {
            path.insert(0, (a, e));
            out.push(Anomaly::Cycle { kind: CycleKind::GSingle, steps: path });
            break;
        }
    }
    if !out.iter().any(|a| matches!(a, Anomaly::Cycle { .. })) {
        if let Some(c) = Graph::new(edges.iter()).find_cycle() {
            out.push(Anomaly::Cycle { kind: CycleKind::G2, steps: c });
        }
    }
    out
}

/// Adjacency lists of a dependency graph.
struct Graph {
    adj: BTreeMap<TxnId, Vec<(TxnId, Edge)>>,
}

impl Graph {
    fn new<'a>(edges: impl Iterator<Item = &'a (TxnId, TxnId, Edge)>) -> Graph {
        let mut adj: BTreeMap<TxnId, Vec<(TxnId, Edge)>> = BTreeMap::new();
        for &(a, b, e) in edges {
            adj.entry(a).or_default().push((b, e));
            adj.entry(b).or_default();
        }
        Graph { adj }
    }

    /// Some cycle, as (node, edge to next) steps.
    fn find_cycle(&self) -> Option<Vec<(TxnId, Edge)>> {
        // Kahn: strip nodes without incoming edges; what is left lies on or before a cycle.
        let mut indegree: BTreeMap<TxnId, usize> = self.adj.keys().map(|&n| (n, 0)).collect();
        for &(m, _) in self.adj.values().flatten() {
            *indegree.entry(m).or_default() += 1;
        }
        let mut ready: Vec<TxnId> = indegree.iter().filter(|(_, &d)| d == 0).map(|(&n, _)| n).collect();
        while let Some(n) = ready.pop() {
            indegree.remove(&n);
            for &(m, _) in self.adj.get(&n).into_iter().flatten() {
                if let Some(d) = indegree.get_mut(&m) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(m);
                    }
                }
            }
        }
        for &n in indegree.keys() {
            for &(m, e) in self.adj.get(&n).into_iter().flatten() {
                if let Some(mut p) = self.path(m, n) {
                    p.insert(0, (n, e));
                    return Some(p);
                }
            }
        }
        None
    }

    /// A shortest path `from` → `to` (breadth first), as (node, edge to next) steps ending
    /// before `to`; empty when `from == to`.
    fn path(&self, from: TxnId, to: TxnId) -> Option<Vec<(TxnId, Edge)>> {
        let mut prev: BTreeMap<TxnId, (TxnId, Edge)> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                let mut steps = Vec::new();
                let mut at = to;
                while at != from {
                    let (p, e) = prev[&at];
                    steps.push((p, e));
                    at = p;
                }
                steps.reverse();
                return Some(steps);
            }
            for &(m, e) in self.adj.get(&n).into_iter().flatten() {
                if seen.insert(m) {
                    prev.insert(m, (n, e));
                    queue.push_back(m);
                }
            }
        }
        None
    }
}
