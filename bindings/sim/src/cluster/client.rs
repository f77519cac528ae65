//! Simulated clients of a cluster: each is one session with one operation outstanding at a
//! time; it sends to the leader it knows (or a random node), follows `NotLeader` hints, times
//! out and retries (a write under the same sequence number, so it applies at most once), and
//! records every operation for the linearizability checker.
use crate::lincheck::{KvInput, KvOutput, Operation, Outcome};
use crate::rng::Rng;
use strata_engine::node::wire::{
    ClientError, ClientId, ClientMessage, ClientOp, ClientReply, ClientRequest, ClientResponse, Consistency, Epoch, RegionId, WriteOp,
};

/// The history type the cluster records: keys and values are `u64`s.
pub type KvOp = Operation<KvInput<u64, u64>, KvOutput<u64>>;

/// How clients behave.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Distinct keys the clients touch.
    pub keys: u64,
    /// An attempt not answered within this many ms is retried.
    pub attempt_timeout_ms: u64,
    /// An operation not answered within this many ms is given up (a write's outcome is then
    /// unknown).
    pub give_up_ms: u64,
    /// Pause after a retryable error before the next attempt.
    pub backoff_ms: u64,
    /// Most pause between two operations of one client.
    pub think_ms: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { keys: 8, attempt_timeout_ms: 300, give_up_ms: 3_000, backoff_ms: 20, think_ms: 20 }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    input: KvInput<u64, u64>,
    seq: u64,
    call: u64,
    first_msg: u64,
    last_msg: u64,
}

/// One client session.
#[derive(Clone, Debug)]
pub struct Client {
    /// Its network address.
    pub addr: u64,
    session: ClientId,
    next_seq: u64,
    next_msg: u64,
    leader_hint: Option<u64>,
    op: Option<InFlight>,
    /// When it next wants [`Client::wake`].
    pub wake_at: Option<u64>,
    /// Operations it may still start.
    pub ops_left: u64,
    values: u64,
    last_seen: Vec<Option<u64>>,
    /// The pending wake is a retry after an error answer (not an attempt's timeout).
    after_error: bool,
}

/// What a client wants sent: `(node, bytes)`.
pub type Send = (u64, Vec<u8>);

impl Client {
    /// A client at `addr` with session `session` that will run `ops` operations.
    pub fn new(addr: u64, session: u64, ops: u64, keys: u64) -> Client {
        Client {
            addr,
            session: ClientId(session),
            next_seq: 1,
            next_msg: 1,
            leader_hint: None,
            op: None,
            wake_at: Some(0),
            ops_left: ops,
            values: 0,
            last_seen: vec![None; keys as usize],
            after_error: false,
        }
    }

    /// True when it has nothing outstanding and nothing left to do.
    pub fn is_done(&self) -> bool {
        self.op.is_none() && self.ops_left == 0
    }

    /// Its timer fired: start the next operation, or retry (or give up) the current one.
    pub fn wake(&mut self, now: u64, cfg: &ClientConfig, nodes: u64, rng: &mut Rng, history: &mut Vec<KvOp>) -> Option<Send> {
        self.wake_at = None;
        if self.op.is_none() {
            self.after_error = false;
        }
        if let Some(op) = &self.op {
            if now >= op.call + cfg.give_up_ms {
                let op = self.op.take()?;
                if !matches!(op.input, KvInput::Get(_)) {
                    history.push(Operation { client: self.session.0, call: op.call, input: op.input, outcome: Outcome::Unknown });
                }
                self.wake_at = Some(now + rng.below(cfg.think_ms + 1));
                return None;
            }
            if !std::mem::take(&mut self.after_error) {
                // The attempt timed out: the hinted node may be down; try another one.
                self.leader_hint = None;
            }
            return Some(self.attempt(now, cfg, nodes, rng));
        }
        if self.ops_left == 0 {
            return None;
        }
        self.ops_left -= 1;
        let key = rng.below(cfg.keys);
        self.values += 1;
        let value = (self.session.0 << 32) | self.values;
        let input = match rng.below(20) {
            0..=7 => KvInput::Get(key),
            8..=12 => KvInput::Put(key, value),
            13..=17 => {
                let expected = if rng.below(4) == 0 { None } else { self.last_seen[key as usize] };
                KvInput::Cas { key, expected, new: value }
            }
            _ => KvInput::Delete(key),
        };
        let seq = if matches!(input, KvInput::Get(_)) { 0 } else { self.next_seq };
        if seq > 0 {
            self.next_seq += 1;
        }
        self.op = Some(InFlight { input, seq, call: now, first_msg: self.next_msg, last_msg: self.next_msg });
        Some(self.attempt(now, cfg, nodes, rng))
    }

    /// A response arrived.
    pub fn on_response(&mut self, now: u64, resp: ClientResponse, cfg: &ClientConfig, rng: &mut Rng, history: &mut Vec<KvOp>) {
        let Some(op) = &self.op else { return };
        if resp.id < op.first_msg {
            return;
        }
        match resp.result {
            Ok(reply) => {
                let Some(op) = self.op.take() else { return };
                let output = match (&op.input, reply) {
                    (KvInput::Get(k), ClientReply::Value { value, .. }) => {
                        let v = value.map(|v| decode_value(&v));
                        self.last_seen[*k as usize] = v;
                        KvOutput::Read(v)
                    }
                    (KvInput::Cas { key, new, .. }, ClientReply::Swapped { swapped, .. }) => {
                        if swapped {
                            self.last_seen[*key as usize] = Some(*new);
                        }
                        KvOutput::Swapped(swapped)
                    }
                    (KvInput::Put(k, v), ClientReply::Written { .. }) => {
                        self.last_seen[*k as usize] = Some(*v);
                        KvOutput::Written
                    }
                    (KvInput::Delete(k), ClientReply::Written { .. }) => {
                        self.last_seen[*k as usize] = None;
                        KvOutput::Written
                    }
                    (input, reply) => panic!("client {}: {input:?} answered {reply:?}", self.session.0),
                };
                history.push(Operation { client: self.session.0, call: op.call, input: op.input, outcome: Outcome::Returned { at: now, output } });
                self.wake_at = Some(now + rng.below(cfg.think_ms + 1));
            }
            Err(e) => {
                if resp.id != op.last_msg {
                    return; // an earlier attempt's failure: the latest attempt is still out
                }
                assert!(e.is_retryable(), "client {}: {:?} refused: {e}", self.session.0, op.input);
                match e {
                    ClientError::NotLeader { leader } => self.leader_hint = leader,
                    ClientError::Unavailable(_) | ClientError::Removed { .. } => self.leader_hint = None,
                    _ => {}
                }
                self.after_error = true;
                // A hint is worth following at once; other errors wait a little.
                let hinted = matches!(e, ClientError::NotLeader { leader: Some(_) });
                self.wake_at = Some(now + if hinted { 0 } else { cfg.backoff_ms });
            }
        }
    }

    fn attempt(&mut self, now: u64, cfg: &ClientConfig, nodes: u64, rng: &mut Rng) -> Send {
        let msg_id = self.next_msg;
        self.next_msg += 1;
        let op = self.op.as_mut().expect("an operation in flight");
        op.last_msg = msg_id;
        let client_op = match &op.input {
            KvInput::Get(k) => ClientOp::Read { key: encode_key(*k), consistency: Consistency::Linearizable },
            KvInput::Put(k, v) => write(self.session, op.seq, WriteOp::Put { key: encode_key(*k), value: v.to_be_bytes().to_vec() }),
            KvInput::Delete(k) => write(self.session, op.seq, WriteOp::Delete { key: encode_key(*k) }),
            KvInput::Cas { key, expected, new } => write(
                self.session,
                op.seq,
                WriteOp::Cas { key: encode_key(*key), expected: expected.map(|v| v.to_be_bytes().to_vec()), new: Some(new.to_be_bytes().to_vec()) },
            ),
        };
        // A third of the reads go to a random node: follower reads (ReadIndex through the
        // leader) get exercised too.
        let is_read = matches!(op.input, KvInput::Get(_));
        let to = match self.leader_hint {
            Some(l) if !(is_read && rng.below(3) == 0) => l,
            _ => 1 + rng.below(nodes),
        };
        self.wake_at = Some(now + cfg.attempt_timeout_ms);
        let msg = ClientMessage { id: msg_id, request: ClientRequest { region: RegionId(1), epoch: Epoch::INITIAL, op: client_op } };
        (to, msg.encode())
    }
}

fn write(client: ClientId, seq: u64, op: WriteOp) -> ClientOp {
    ClientOp::Write { client, seq, op }
}

/// The store key of model key `k`.
pub fn encode_key(k: u64) -> Vec<u8> {
    format!("k{k:03}").into_bytes()
}

/// A model value from stored bytes (values are written as 8 bytes BE).
pub fn decode_value(v: &[u8]) -> u64 {
    <[u8; 8]>::try_from(v).map(u64::from_be_bytes).unwrap_or(u64::MAX)
}
