//! User-driven clients: operations a person (the browser demo) or a script issues one by one,
//! with string keys and values, against a chosen node or "any".
//!
//! Each operation runs in a session (`u1`, `u2`, …; a session has one operation outstanding
//! at a time, so a new session opens when every one is busy) and travels over the simulated
//! network like any client's. Sent to a chosen node, it stays there: a follower's
//! `NotLeader` is its answer. Sent to "any", it goes to the leader the sessions last heard
//! of (or a random node), follows `NotLeader` hints, backs off on other retryable errors and
//! retries after an attempt's timeout, under the same sequence number (applied at most once).
//! Either way it is given up after `give_up_ms`. Every operation that returned, and every
//! write whose outcome is unknown, enters [`Users::history`] for the linearizability checker.
//!
//! **The unsafe read** (a teaching toggle, never a default): a read marked `unsafe_read` is
//! served by the node it reaches from that replica's own applied state, without a read index —
//! the cluster turns it into a stale read at the replica's applied timestamp when it arrives
//! (the node's explicit stale-read path; the node's linearizable path is untouched). A lagging
//! or partitioned replica then answers with old data, and the checker reports it.
use crate::lincheck::{KvInput, KvOutput, Operation, Outcome};
use crate::rng::Rng;
use serde::Serialize;
use std::collections::BTreeSet;
use strata_engine::node::wire::{
    ClientError, ClientId, ClientMessage, ClientOp, ClientReply, ClientRequest, ClientResponse, Consistency, Epoch, RegionId, WriteOp,
};

/// The network address of user session `s` (from 1) is `USER_BASE + s`.
pub const USER_BASE: u64 = 2_000;
/// Whether network address `a` is a user session's.
pub fn is_user_addr(a: u64) -> bool {
    a > USER_BASE && a < super::BANK_BASE
}

/// The node-side session id of user session `s` is `USER_SESSION_BASE + s`.
pub const USER_SESSION_BASE: u64 = 1_000_000;

/// The name of node-side session `id`: `u3` for user session 3, `b1` for bank client 1, `c2`
/// for workload client 2.
pub fn session_name(id: u64) -> String {
    if id > USER_SESSION_BASE {
        format!("u{}", id - USER_SESSION_BASE)
    } else if id > super::BANK_BASE {
        format!("b{}", id - super::BANK_BASE)
    } else {
        format!("c{id}")
    }
}

/// The history type of user operations.
pub type UserKvOp = Operation<KvInput<String, String>, KvOutput<String>>;

/// What a user asks (fields: the key, the value, a CAS's expected value — `None`: absent).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum UserInput {
    /// Read a key (`unsafe_read`: from the reached replica's local state, no read index).
    Get { key: String, unsafe_read: bool },
    /// Write a key.
    Put { key: String, value: String },
    /// Remove a key.
    Delete { key: String },
    /// Write `new` if the key holds `expected` (`None`: absent).
    Cas { key: String, expected: Option<String>, new: String },
}

impl UserInput {
    /// The key.
    pub fn key(&self) -> &str {
        match self {
            UserInput::Get { key, .. } | UserInput::Put { key, .. } | UserInput::Delete { key } | UserInput::Cas { key, .. } => key,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, UserInput::Get { .. })
    }

    /// One readable line: `put x=1`.
    pub fn describe(&self) -> String {
        match self {
            UserInput::Get { key, unsafe_read: false } => format!("get {key}"),
            UserInput::Get { key, unsafe_read: true } => format!("get {key} UNSAFE (local state, no read index)"),
            UserInput::Put { key, value } => format!("put {key}={value}"),
            UserInput::Delete { key } => format!("delete {key}"),
            UserInput::Cas { key, expected, new } => format!("cas {key} {} -> {new}", expected.as_deref().unwrap_or("(absent)")),
        }
    }

    fn history_input(&self) -> KvInput<String, String> {
        match self.clone() {
            UserInput::Get { key, .. } => KvInput::Get(key),
            UserInput::Put { key, value } => KvInput::Put(key, value),
            UserInput::Delete { key } => KvInput::Delete(key),
            UserInput::Cas { key, expected, new } => KvInput::Cas { key, expected, new },
        }
    }
}

/// How an operation ended, as its session saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum UserResult {
    /// Answered.
    Ok {
        /// Always true.
        ok: bool,
        /// A read's value (`None`: absent).
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<Option<String>>,
        /// A read's timestamp.
        #[serde(skip_serializing_if = "Option::is_none")]
        read_ts: Option<u64>,
        /// A write's revision (commit timestamp).
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
        /// A compare-and-swap's answer.
        #[serde(skip_serializing_if = "Option::is_none")]
        swapped: Option<bool>,
    },
    /// Refused or not answered.
    Err {
        /// Always false.
        ok: bool,
        /// `NotLeader`, `Timeout`, `Unknown`, `Busy`, `Unavailable`, `DataNotReady`, …
        code: String,
        /// Readable.
        error: String,
    },
}

/// One user operation (also its JSON view).
#[derive(Clone, Debug, Serialize)]
pub struct UserOp {
    /// Its id (from 0).
    pub id: u64,
    /// Its session, `u1`, ….
    pub session: String,
    /// `get`, `put`, `delete` or `cas`.
    pub kind: &'static str,
    /// The key.
    pub key: String,
    /// The value written (put, cas).
    pub value: Option<String>,
    /// A compare-and-swap's expected value (`None`: absent).
    pub expected: Option<String>,
    /// The node asked (`None`: any).
    pub node: Option<u64>,
    /// The teaching toggle (reads only).
    #[serde(rename = "unsafe")]
    pub unsafe_read: bool,
    /// Issued at (ms).
    pub call: u64,
    /// Whether it ended.
    pub done: bool,
    /// Ended at (ms).
    pub ret: Option<u64>,
    /// Attempts sent.
    pub attempts: u32,
    /// The node whose answer ended it.
    pub served_by: Option<u64>,
    /// The answer.
    pub result: Option<UserResult>,
    /// `pending`, `ok`, `failed` (surely not applied) or `unknown` (a write that may have
    /// applied).
    pub outcome: &'static str,
    /// Readable input.
    pub text: String,
    #[serde(skip)]
    input: Option<UserInput>,
    #[serde(skip)]
    seq: u64,
    #[serde(skip)]
    uncertain: bool,
}

impl UserOp {
    /// What was asked.
    pub fn input(&self) -> &UserInput {
        self.input.as_ref().expect("every op has an input")
    }
}

#[derive(Clone, Debug)]
struct Session {
    next_seq: u64,
    next_msg: u64,
    /// The op in flight and the message ids of its first and latest attempts.
    op: Option<(u64, u64, u64)>,
    wake_at: Option<u64>,
    after_error: bool,
}

/// How user sessions time out and retry.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// An attempt not answered within this many ms is retried.
    pub attempt_timeout_ms: u64,
    /// An operation not answered within this many ms is given up.
    pub give_up_ms: u64,
    /// Pause after a retryable error before the next attempt ("any" only).
    pub backoff_ms: u64,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig { attempt_timeout_ms: 300, give_up_ms: 3_000, backoff_ms: 20 }
    }
}

/// The user sessions and their operations. The cluster drives them (see the module docs).
#[derive(Clone, Debug)]
pub struct Users {
    /// Timing.
    pub cfg: UserConfig,
    sessions: Vec<Session>,
    /// Every operation, by id.
    pub ops: Vec<UserOp>,
    /// The history for the checker (returned ops and writes with unknown outcome).
    pub history: Vec<UserKvOp>,
    /// For each history entry, the op id.
    pub history_ops: Vec<u64>,
    /// The leader the sessions last heard of.
    leader_hint: Option<u64>,
    rng: Rng,
    /// `(address, message id)` of unsafe reads in flight.
    unsafe_msgs: BTreeSet<(u64, u64)>,
}

/// What a session wants sent: `(from address, to node, bytes)`.
pub type UserSend = (u64, u64, Vec<u8>);

impl Users {
    /// No sessions yet.
    pub fn new(seed: u64, cfg: UserConfig) -> Users {
        Users {
            cfg,
            sessions: Vec::new(),
            ops: Vec::new(),
            history: Vec::new(),
            history_ops: Vec::new(),
            leader_hint: None,
            rng: Rng::new(seed ^ 0x7573_6572_7321),
            unsafe_msgs: BTreeSet::new(),
        }
    }

    /// Sessions opened so far (addresses `USER_BASE + 1 ..= USER_BASE + n`).
    pub fn sessions(&self) -> u64 {
        self.sessions.len() as u64
    }

    /// Starts an operation; returns its id, whether a session was opened (its address must be
    /// added to the network) and what to send.
    pub fn start(&mut self, now: u64, input: UserInput, node: Option<u64>, nodes: u64) -> (u64, Option<u64>, UserSend) {
        let (s, opened) = match self.sessions.iter().position(|s| s.op.is_none()) {
            Some(s) => (s, None),
            None => {
                self.sessions.push(Session { next_seq: 1, next_msg: 1, op: None, wake_at: None, after_error: false });
                (self.sessions.len() - 1, Some(USER_BASE + self.sessions.len() as u64))
            }
        };
        let id = self.ops.len() as u64;
        let seq = if input.is_read() {
            0
        } else {
            self.sessions[s].next_seq += 1;
            self.sessions[s].next_seq - 1
        };
        let (kind, value, expected) = match &input {
            UserInput::Get { .. } => ("get", None, None),
            UserInput::Put { value, .. } => ("put", Some(value.clone()), None),
            UserInput::Delete { .. } => ("delete", None, None),
            UserInput::Cas { expected, new, .. } => ("cas", Some(new.clone()), expected.clone()),
        };
        self.ops.push(UserOp {
            id,
            session: format!("u{}", s + 1),
            kind,
            key: input.key().to_string(),
            value,
            expected,
            node,
            unsafe_read: matches!(input, UserInput::Get { unsafe_read: true, .. }),
            call: now,
            done: false,
            ret: None,
            attempts: 0,
            served_by: None,
            result: None,
            outcome: "pending",
            text: input.describe(),
            input: Some(input),
            seq,
            uncertain: false,
        });
        let first = self.sessions[s].next_msg;
        self.sessions[s].op = Some((id, first, first));
        let send = self.attempt(now, s, nodes);
        (id, opened, send)
    }

    /// When a session next wants [`Users::wake`].
    pub fn next_wake(&self) -> Option<u64> {
        self.sessions.iter().filter_map(|s| s.wake_at).min()
    }

    /// Sessions whose timer is due, in order.
    pub fn due(&self, now: u64) -> Vec<usize> {
        (0..self.sessions.len()).filter(|&s| self.sessions[s].wake_at.is_some_and(|w| w <= now)).collect()
    }

    /// Session `s`'s timer fired: retry its operation, or give it up. Returns what to send
    /// and, when the op ended, its id.
    pub fn wake(&mut self, now: u64, s: usize, nodes: u64) -> (Option<UserSend>, Option<u64>) {
        self.sessions[s].wake_at = None;
        let Some((id, _, _)) = self.sessions[s].op else { return (None, None) };
        let after_error = std::mem::take(&mut self.sessions[s].after_error);
        let op = &mut self.ops[id as usize];
        if !after_error {
            // The attempt timed out: a write may have been proposed.
            op.uncertain |= !op.input().is_read();
        }
        if now >= op.call + self.cfg.give_up_ms {
            let r = UserResult::Err { ok: false, code: "Timeout".into(), error: format!("no answer within {} ms", self.cfg.give_up_ms) };
            self.finish(now, s, None, r, false);
            return (None, Some(id));
        }
        if !after_error && op.node.is_none() {
            self.leader_hint = None;
        }
        (Some(self.attempt(now, s, nodes)), None)
    }

    /// A response reached session address `addr` from node `from`. Returns the id of the op
    /// it ended, if it did, and whether to wake the session at once (a hint to follow).
    pub fn on_response(&mut self, now: u64, addr: u64, from: u64, resp: ClientResponse) -> Option<u64> {
        let s = addr.checked_sub(USER_BASE + 1)? as usize;
        let (id, first, last) = self.sessions.get(s)?.op?;
        if resp.id < first {
            return None;
        }
        self.unsafe_msgs.remove(&(addr, resp.id));
        match resp.result {
            Ok(reply) => {
                let r = match reply {
                    ClientReply::Value { value, read_ts } => UserResult::Ok {
                        ok: true,
                        value: Some(value.map(|v| String::from_utf8_lossy(&v).into_owned())),
                        read_ts: Some(read_ts),
                        revision: None,
                        swapped: None,
                    },
                    ClientReply::Written { revision } => UserResult::Ok { ok: true, value: None, read_ts: None, revision: Some(revision), swapped: None },
                    ClientReply::Swapped { swapped, revision } => {
                        UserResult::Ok { ok: true, value: None, read_ts: None, revision: Some(revision), swapped: Some(swapped) }
                    }
                    // Users send no transactions yet.
                    ClientReply::Txn(t) => UserResult::Ok { ok: true, value: None, read_ts: None, revision: Some(t.revision), swapped: None },
                    // Users send no admin requests (the cluster's `admin` does).
                    ClientReply::Admin(_) => UserResult::Ok { ok: true, value: None, read_ts: None, revision: None, swapped: None },
                };
                if self.ops[id as usize].node.is_none() {
                    self.leader_hint = Some(from);
                }
                self.finish(now, s, Some(from), r, true);
                Some(id)
            }
            Err(e) => {
                if resp.id != last {
                    return None; // an earlier attempt's failure: the latest is still out
                }
                let op = &mut self.ops[id as usize];
                if matches!(e, ClientError::Unknown) && !op.input().is_read() {
                    op.uncertain = true;
                }
                let fixed = op.node.is_some();
                if !fixed && e.is_retryable() {
                    if let ClientError::NotLeader { leader } = e {
                        self.leader_hint = leader;
                    }
                    let hinted = matches!(e, ClientError::NotLeader { leader: Some(_) });
                    self.sessions[s].after_error = true;
                    self.sessions[s].wake_at = Some(now + if hinted { 0 } else { self.cfg.backoff_ms });
                    return None;
                }
                let r = UserResult::Err { ok: false, code: error_code(&e), error: e.to_string() };
                self.finish(now, s, Some(from), r, false);
                Some(id)
            }
        }
    }

    /// Whether message `msg_id` from `addr` is an unsafe read.
    pub fn is_unsafe(&self, addr: u64, msg_id: u64) -> bool {
        self.unsafe_msgs.contains(&(addr, msg_id))
    }

    fn finish(&mut self, now: u64, s: usize, from: Option<u64>, r: UserResult, answered: bool) {
        let sess = &mut self.sessions[s];
        let Some((id, _, _)) = sess.op.take() else { return };
        sess.wake_at = None;
        sess.after_error = false;
        let op = &mut self.ops[id as usize];
        op.done = true;
        op.ret = Some(now);
        op.served_by = from;
        let input = op.input().clone();
        let output = match (&r, &input) {
            (UserResult::Ok { value: Some(v), .. }, UserInput::Get { .. }) => Some(KvOutput::Read(v.clone())),
            (UserResult::Ok { swapped: Some(w), .. }, UserInput::Cas { .. }) => Some(KvOutput::Swapped(*w)),
            (UserResult::Ok { .. }, UserInput::Put { .. } | UserInput::Delete { .. }) => Some(KvOutput::Written),
            _ => None,
        };
        op.outcome = match (&output, answered) {
            (Some(_), _) => "ok",
            (None, _) if op.uncertain && !input.is_read() => "unknown",
            _ => "failed",
        };
        op.result = Some(r);
        let outcome = match output {
            Some(output) => Some(Outcome::Returned { at: now, output }),
            None if op.outcome == "unknown" => Some(Outcome::Unknown),
            None => None,
        };
        if let Some(outcome) = outcome {
            self.history.push(Operation { client: USER_SESSION_BASE + s as u64 + 1, call: op.call, input: input.history_input(), outcome });
            self.history_ops.push(id);
        }
    }

    fn attempt(&mut self, now: u64, s: usize, nodes: u64) -> UserSend {
        let addr = USER_BASE + s as u64 + 1;
        let sess = &mut self.sessions[s];
        let msg_id = sess.next_msg;
        sess.next_msg += 1;
        let Some((id, first, _)) = sess.op else { unreachable!("attempt without an op") };
        sess.op = Some((id, first, msg_id));
        sess.wake_at = Some(now + self.cfg.attempt_timeout_ms);
        let op = &mut self.ops[id as usize];
        op.attempts += 1;
        let client = ClientId(USER_SESSION_BASE + s as u64 + 1);
        let seq = op.seq;
        let client_op = match op.input().clone() {
            UserInput::Get { key, unsafe_read } => {
                if unsafe_read {
                    self.unsafe_msgs.insert((addr, msg_id));
                }
                ClientOp::Read { key: key.into_bytes(), consistency: Consistency::Linearizable }
            }
            UserInput::Put { key, value } => ClientOp::Write { client, seq, op: WriteOp::Put { key: key.into_bytes(), value: value.into_bytes() } },
            UserInput::Delete { key } => ClientOp::Write { client, seq, op: WriteOp::Delete { key: key.into_bytes() } },
            UserInput::Cas { key, expected, new } => ClientOp::Write {
                client,
                seq,
                op: WriteOp::Cas { key: key.into_bytes(), expected: expected.map(String::into_bytes), new: Some(new.into_bytes()) },
            },
        };
        let to = match (op.node, self.leader_hint) {
            (Some(n), _) => n,
            (None, Some(l)) => l,
            (None, None) => 1 + self.rng.below(nodes),
        };
        let msg = ClientMessage { id: msg_id, request: ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op: client_op } };
        (addr, to, msg.encode())
    }
}

/// The variant name of a client error (`NotLeader`, `Unknown`, …).
pub fn error_code(e: &ClientError) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_string()
}
