//! The bank workload: clients move money between accounts with multi-key transactions through
//! the node ([`strata_engine::node::txn`]), and read every account at once; the history goes
//! to [`crate::txncheck`] (the total on every read-all snapshot, read-your-writes, aborted
//! reads, dependency cycles).
//!
//! Every account starts absent, which reads as the initial balance written by transaction 0.
//! A stored value is 16 bytes: the balance (i64 BE) and the id of the transaction that wrote
//! it (u64 BE), so every read names its writer.
//!
//! * **Read-all**: one read-only transaction of `Get`s over every account — all at one
//!   revision, in one log entry.
//! * **Transfer** (optimistic read-modify-write, etcd's STM pattern): a transaction of two
//!   `Get`s returns both balances and their `mod_revision`s; the client picks an amount and
//!   commits a transaction whose compares require both `mod_revision`s unchanged and whose
//!   success branch writes both new balances. `succeeded == false`: another transfer won,
//!   nothing was written (recorded as aborted). A commit whose answer never came is unknown.
//!
//! Each transaction is a session write with its own sequence number: retries after a timeout
//! or a leader change apply it at most once and get the recorded answer.
use super::client::Send;
use crate::rng::Rng;
use crate::txncheck::{Account, Txn, TxnId, TxnStatus, Val};
use strata_engine::node::txn::{CompareKind, StepResult, TxnCompare, TxnSpec, TxnStep, TxnTarget};
use strata_engine::node::wire::{ClientError, ClientId, ClientMessage, ClientOp, ClientReply, ClientRequest, ClientResponse, Epoch, RegionId, WriteOp};

/// The bank's shape.
#[derive(Clone, Debug)]
pub struct BankConfig {
    /// Accounts `0..accounts`.
    pub accounts: u64,
    /// Each account's initial balance.
    pub balance: i64,
    /// Bank clients (sessions).
    pub clients: u64,
    /// Transactions (transfers and read-alls) per client.
    pub txns_per_client: u64,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig { accounts: 5, balance: 100, clients: 4, txns_per_client: 40 }
    }
}

/// The store key of account `a`.
pub fn account_key(a: Account) -> Vec<u8> {
    format!("acct{a:03}").into_bytes()
}

/// Encodes a stored value.
pub fn encode_val(v: Val) -> Vec<u8> {
    let mut b = v.balance.to_be_bytes().to_vec();
    b.extend_from_slice(&v.writer.to_be_bytes());
    b
}

/// Decodes a stored value (`None`: not 16 bytes).
pub fn decode_val(b: &[u8]) -> Option<Val> {
    let balance = i64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let writer = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    (b.len() == 16).then_some(Val { balance, writer })
}

/// What a client is doing.
#[derive(Clone, Debug)]
enum Stage {
    /// Reading every account.
    ReadAll,
    /// Reading the two accounts of a transfer.
    ReadPair { from: Account, to: Account },
    /// Committing transfer `id`, which read `reads` (values and mod revisions).
    Commit { id: TxnId, reads: Vec<(Account, Val, u64)>, writes: Vec<(Account, i64)> },
}

#[derive(Clone, Debug)]
struct InFlight {
    stage: Stage,
    seq: u64,
    /// When the transaction began (its first step was sent).
    call: u64,
    /// When this step was sent.
    step_call: u64,
    first_msg: u64,
    last_msg: u64,
}

/// One bank client session.
#[derive(Clone, Debug)]
pub struct BankClient {
    /// Its network address.
    pub addr: u64,
    session: ClientId,
    next_seq: u64,
    next_msg: u64,
    next_txn: u64,
    leader_hint: Option<u64>,
    op: Option<InFlight>,
    /// When it next wants [`BankClient::wake`].
    pub wake_at: Option<u64>,
    /// Transactions it may still start.
    pub txns_left: u64,
    after_error: bool,
}

/// The client behaviour shared with the KV clients.
pub use super::client::ClientConfig;

impl BankClient {
    /// A client at `addr` with session `session`.
    pub fn new(addr: u64, session: u64, txns: u64) -> BankClient {
        BankClient {
            addr,
            session: ClientId(session),
            next_seq: 1,
            next_msg: 1,
            next_txn: 1,
            leader_hint: None,
            op: None,
            wake_at: Some(0),
            txns_left: txns,
            after_error: false,
        }
    }

    /// True when it has nothing outstanding and nothing left to do.
    pub fn is_done(&self) -> bool {
        self.op.is_none() && self.txns_left == 0
    }

    fn txn_id(&mut self) -> TxnId {
        let id = (self.session.0 << 32) | self.next_txn;
        self.next_txn += 1;
        id
    }

    /// Its timer fired: start the next transaction, or retry (or give up) the current step.
    pub fn wake(&mut self, now: u64, cfg: &ClientConfig, bank: &BankConfig, nodes: u64, rng: &mut Rng, history: &mut Vec<Txn>) -> Option<Send> {
        self.wake_at = None;
        if self.op.is_none() {
            self.after_error = false;
        }
        if let Some(op) = &self.op {
            if now >= op.step_call + cfg.give_up_ms {
                let op = self.op.take()?;
                // Only a commit's outcome matters: a read given up wrote nothing.
                if let Stage::Commit { id, reads, writes } = op.stage {
                    history.push(Txn { id, client: self.session.0, call: op.call, ret: None, status: TxnStatus::Unknown, reads: plain(&reads), writes });
                }
                self.wake_at = Some(now + rng.below(cfg.think_ms + 1));
                return None;
            }
            if !std::mem::take(&mut self.after_error) {
                self.leader_hint = None;
            }
            return Some(self.attempt(now, cfg, bank, nodes, rng));
        }
        if self.txns_left == 0 {
            return None;
        }
        self.txns_left -= 1;
        let stage = if rng.below(10) < 3 {
            Stage::ReadAll
        } else {
            let from = rng.below(bank.accounts);
            let to = (from + 1 + rng.below(bank.accounts - 1)) % bank.accounts;
            Stage::ReadPair { from, to }
        };
        self.begin_step(now, now, stage);
        Some(self.attempt(now, cfg, bank, nodes, rng))
    }

    fn begin_step(&mut self, now: u64, call: u64, stage: Stage) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.op = Some(InFlight { stage, seq, call, step_call: now, first_msg: self.next_msg, last_msg: self.next_msg });
    }

    /// A response arrived; the next step's request, if the transaction goes on.
    #[allow(clippy::too_many_arguments)]
    pub fn on_response(
        &mut self,
        now: u64,
        resp: ClientResponse,
        cfg: &ClientConfig,
        bank: &BankConfig,
        nodes: u64,
        rng: &mut Rng,
        history: &mut Vec<Txn>,
    ) -> Option<Send> {
        let op = self.op.as_ref()?;
        if resp.id < op.first_msg {
            return None;
        }
        let reply = match resp.result {
            Ok(ClientReply::Txn(t)) => t,
            Ok(other) => panic!("bank client {}: a transaction answered {other:?}", self.session.0),
            Err(e) => {
                if resp.id != op.last_msg {
                    return None;
                }
                assert!(e.is_retryable(), "bank client {}: {:?} refused: {e}", self.session.0, op.stage);
                match e {
                    ClientError::NotLeader { leader } => self.leader_hint = leader,
                    ClientError::Unavailable(_) | ClientError::Removed { .. } => self.leader_hint = None,
                    _ => {}
                }
                self.after_error = true;
                let hinted = matches!(e, ClientError::NotLeader { leader: Some(_) });
                self.wake_at = Some(now + if hinted { 0 } else { cfg.backoff_ms });
                return None;
            }
        };
        let op = self.op.take()?;
        let gets = |results: &[StepResult]| -> Vec<(Val, u64)> {
            results
                .iter()
                .map(|r| match r {
                    StepResult::Get(Some(kv)) => (decode_val(&kv.value).expect("bank values are 16 bytes"), kv.mod_revision),
                    StepResult::Get(None) => (Val { balance: bank.balance, writer: 0 }, 0),
                    other => panic!("a read step answered {other:?}"),
                })
                .collect()
        };
        match op.stage {
            Stage::ReadAll => {
                let vals = gets(&reply.results);
                let reads = vals.iter().enumerate().map(|(a, (v, _))| (a as Account, *v)).collect();
                let id = self.txn_id();
                history.push(Txn { id, client: self.session.0, call: op.call, ret: Some(now), status: TxnStatus::Committed, reads, writes: Vec::new() });
            }
            Stage::ReadPair { from, to } => {
                let vals = gets(&reply.results);
                let ((vf, rf), (vt, rt)) = (vals[0], vals[1]);
                // Move up to 10, never below zero (an empty account sends nothing: a no-op
                // transfer still commits and is checked like any other).
                let amount = (1 + rng.below(10) as i64).min(vf.balance.max(0));
                let reads = vec![(from, vf, rf), (to, vt, rt)];
                let writes = vec![(from, vf.balance - amount), (to, vt.balance + amount)];
                let id = self.txn_id();
                self.begin_step(now, op.call, Stage::Commit { id, reads, writes });
                return Some(self.attempt(now, cfg, bank, nodes, rng));
            }
            Stage::Commit { id, reads, writes } => {
                let status = if reply.succeeded { TxnStatus::Committed } else { TxnStatus::Aborted };
                history.push(Txn { id, client: self.session.0, call: op.call, ret: Some(now), status, reads: plain(&reads), writes });
            }
        }
        self.wake_at = Some(now + rng.below(cfg.think_ms + 1));
        None
    }

    fn attempt(&mut self, now: u64, cfg: &ClientConfig, bank: &BankConfig, nodes: u64, rng: &mut Rng) -> Send {
        let msg_id = self.next_msg;
        self.next_msg += 1;
        let op = self.op.as_mut().expect("a step in flight");
        op.last_msg = msg_id;
        let get = |a: Account| TxnStep::Get { key: account_key(a) };
        let spec = match &op.stage {
            Stage::ReadAll => TxnSpec { success: (0..bank.accounts).map(get).collect(), ..TxnSpec::default() },
            Stage::ReadPair { from, to } => TxnSpec { success: vec![get(*from), get(*to)], ..TxnSpec::default() },
            Stage::Commit { id, reads, writes } => TxnSpec {
                compares: reads
                    .iter()
                    .map(|&(a, _, rev)| TxnCompare { key: account_key(a), op: CompareKind::Equal, target: TxnTarget::ModRevision(rev) })
                    .collect(),
                success: writes
                    .iter()
                    .map(|&(a, balance)| TxnStep::Put { key: account_key(a), value: encode_val(Val { balance, writer: *id }) })
                    .collect(),
                failure: Vec::new(),
            },
        };
        let to = match self.leader_hint {
            Some(l) => l,
            None => 1 + rng.below(nodes),
        };
        self.wake_at = Some(now + cfg.attempt_timeout_ms);
        let request = ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op: ClientOp::Write { client: self.session, seq: op.seq, op: WriteOp::Txn(spec) } };
        (to, ClientMessage { id: msg_id, request }.encode())
    }
}

fn plain(reads: &[(Account, Val, u64)]) -> Vec<(Account, Val)> {
    reads.iter().map(|&(a, v, _)| (a, v)).collect()
}

impl super::Cluster {
    /// Reads every account through the leader once the workload is over and adds the read to
    /// the bank history (as client 0's transaction `u64::MAX`), so an acknowledged transfer
    /// that was lost shows up even if no client read its accounts afterwards. The read is a
    /// log entry: the cluster then runs one more second so every replica applies it. Returns
    /// the values read.
    pub fn read_all_accounts(&mut self) -> Vec<(Account, Val)> {
        let bank = self.cfg.bank.clone().expect("a bank workload");
        let deadline = self.now + 10_000;
        let get = |a: Account| TxnStep::Get { key: account_key(a) };
        let spec = TxnSpec { success: (0..bank.accounts).map(get).collect(), ..TxnSpec::default() };
        loop {
            assert!(self.now < deadline, "seed {}: the final read of the accounts was not answered", self.cfg.seed);
            let Some(k) = self.leader() else {
                self.step();
                continue;
            };
            let call = self.now;
            let op = ClientOp::Write { client: ClientId(super::BANK_BASE), seq: 1, op: WriteOp::Txn(spec.clone()) };
            let Some(p) = self.probe(k, ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op }) else { continue };
            while !self.probe_replies.contains_key(&p) && self.now < deadline {
                self.step();
            }
            if let Some((at, Ok(ClientReply::Txn(t)))) = self.probe_replies.remove(&p) {
                let reads: Vec<(Account, Val)> = t
                    .results
                    .iter()
                    .enumerate()
                    .map(|(a, r)| match r {
                        StepResult::Get(Some(kv)) => (a as Account, decode_val(&kv.value).expect("16-byte values")),
                        _ => (a as Account, Val { balance: bank.balance, writer: 0 }),
                    })
                    .collect();
                self.bank_history.push(Txn { id: u64::MAX, client: 0, call, ret: Some(at), status: TxnStatus::Committed, reads: reads.clone(), writes: Vec::new() });
                let end = self.now + 1_000;
                while self.now < end {
                    self.step();
                }
                return reads;
            }
        }
    }

    /// Checks the bank history ([`crate::txncheck::BankCheck`]: totals, read-your-writes,
    /// aborted reads, cycles) and that the final read (`final_reads`, from
    /// [`Cluster::read_all_accounts`]) sees the last version of every account: no committed
    /// transfer overwrote the version it read. Panics naming the seed.
    pub fn check_bank(&self, final_reads: &[(Account, Val)]) {
        let bank = self.cfg.bank.as_ref().expect("a bank workload");
        let anomalies = crate::txncheck::BankCheck::new(bank.accounts, bank.balance).check(&self.bank_history);
        if !anomalies.is_empty() {
            let list: Vec<String> = anomalies.iter().take(10).map(ToString::to_string).collect();
            panic!("seed {}: {} bank anomalies:\n{}", self.cfg.seed, anomalies.len(), list.join("\n"));
        }
        for &(a, v) in final_reads {
            let lost = self.bank_history.iter().find(|t| {
                t.status == TxnStatus::Committed && t.writes.iter().any(|w| w.0 == a) && t.reads.iter().any(|r| r.0 == a && r.1.writer == v.writer)
            });
            if let Some(t) = lost {
                panic!("seed {}: account {a} reads {v:?} at the end, but committed t{} overwrote that version: a lost write", self.cfg.seed, t.id);
            }
        }
    }

    /// Committed, aborted and unknown transfers, and committed read-alls, so far.
    pub fn bank_counts(&self) -> (usize, usize, usize, usize) {
        let h = &self.bank_history;
        let transfers = |s: TxnStatus| h.iter().filter(|t| t.status == s && !t.writes.is_empty()).count();
        let read_alls = h.iter().filter(|t| t.writes.is_empty()).count();
        (transfers(TxnStatus::Committed), transfers(TxnStatus::Aborted), transfers(TxnStatus::Unknown), read_alls)
    }
}
