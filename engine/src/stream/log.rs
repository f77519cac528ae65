//! One stream in memory: its messages, per-subject sequences, byte count and limits. Every
//! change goes through a method that also records the matching store operations in a
//! [`Batch`], so memory and the batch written for it cannot disagree.
use super::codec::{self, StreamMark};
use super::types::{Discard, StoredMessage, StreamConfig};
use crate::lsm::batch::Batch;
use crate::subject::SubId;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A message held in memory (the payload is shared with deliveries).
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub subject: Arc<str>,
    pub ts_ms: u64,
    pub msg_id: Option<Arc<str>>,
    pub payload: Arc<[u8]>,
}

impl Msg {
    pub fn size(&self) -> u64 {
        codec::msg_size(&self.subject, &self.payload)
    }

    pub fn stored(&self, seq: u64) -> StoredMessage {
        StoredMessage {
            seq,
            subject: self.subject.clone(),
            ts_ms: self.ts_ms,
            msg_id: self.msg_id.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// A stream's state.
#[derive(Debug)]
pub(crate) struct StreamState {
    pub id: u32,
    pub config: StreamConfig,
    pub msgs: BTreeMap<u64, Msg>,
    /// Sequences stored per subject.
    pub subjects: BTreeMap<Arc<str>, BTreeSet<u64>>,
    pub bytes: u64,
    /// The last sequence assigned (durable or not).
    pub last_seq: u64,
    pub last_ts: u64,
    /// Every publish up to here is durable; consumers deliver no further.
    pub durable_seq: u64,
    /// Message id → (sequence, timestamp) within the duplicate window.
    pub dedup: BTreeMap<Arc<str>, (u64, u64)>,
    /// (timestamp, id) in arrival order, for pruning `dedup`.
    pub dedup_order: VecDeque<(u64, Arc<str>)>,
    /// The subject index entries capturing this stream's subjects.
    pub sub_ids: Vec<SubId>,
    /// Consumers by name → engine-wide consumer id.
    pub consumers: BTreeMap<String, u64>,
}

impl StreamState {
    pub fn new(id: u32, config: StreamConfig) -> Self {
        StreamState {
            id,
            config,
            msgs: BTreeMap::new(),
            subjects: BTreeMap::new(),
            bytes: 0,
            last_seq: 0,
            last_ts: 0,
            durable_seq: 0,
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            sub_ids: Vec::new(),
            consumers: BTreeMap::new(),
        }
    }

    pub fn first_seq(&self) -> u64 {
        self.msgs.keys().next().copied().unwrap_or(self.last_seq + 1)
    }

    /// Why a message of `size` bytes cannot be added under discard-new, if it cannot.
    pub fn refuses_new(&self, size: u64) -> Option<&'static str> {
        if self.config.discard != Discard::New {
            return None;
        }
        if self.config.max_msgs > 0 && self.msgs.len() as u64 >= self.config.max_msgs {
            return Some("max_msgs");
        }
        if self.config.max_bytes > 0 && self.bytes + size > self.config.max_bytes {
            return Some("max_bytes");
        }
        None
    }

    /// The original sequence of a message id seen within the window ending at `now_ms`.
    pub fn duplicate_of(&mut self, now_ms: u64, msg_id: &str) -> Option<u64> {
        let window = self.config.duplicate_window_ms;
        if window == 0 {
            return None;
        }
        while let Some((ts, id)) = self.dedup_order.front() {
            if ts.saturating_add(window) > now_ms {
                break;
            }
            if self.dedup.get(id).is_some_and(|&(_, t)| t == *ts) {
                self.dedup.remove(id);
            }
            self.dedup_order.pop_front();
        }
        self.dedup.get(msg_id).map(|&(seq, _)| seq)
    }

    /// Appends a message with the next sequence; returns (seq, ts).
    pub fn append(&mut self, batch: &mut Batch, now_ms: u64, msg: Msg) -> (u64, u64) {
        let seq = self.last_seq + 1;
        let ts = now_ms.max(self.last_ts);
        let msg = Msg { ts_ms: ts, ..msg };
        let mut v = Vec::new();
        codec::encode_msg(&mut v, ts, &msg.subject, msg.msg_id.as_deref(), &msg.payload);
        batch.put(&codec::msg_key(self.id, seq), &v);
        batch.put(&codec::last_key(self.id, &msg.subject), &seq.to_be_bytes());
        self.insert(seq, msg);
        self.last_seq = seq;
        self.last_ts = ts;
        (seq, ts)
    }

    /// Puts a recovered or appended message into memory.
    pub fn insert(&mut self, seq: u64, msg: Msg) {
        self.bytes += msg.size();
        self.subjects.entry(msg.subject.clone()).or_default().insert(seq);
        if let (Some(id), true) = (&msg.msg_id, self.config.duplicate_window_ms > 0) {
            self.dedup.insert(id.clone(), (seq, msg.ts_ms));
            self.dedup_order.push_back((msg.ts_ms, id.clone()));
        }
        self.msgs.insert(seq, msg);
    }

    /// Removes message `seq` (if present), keeping the last-by-subject index right.
    pub fn remove(&mut self, batch: &mut Batch, seq: u64) -> bool {
        let Some(msg) = self.msgs.remove(&seq) else { return false };
        self.bytes -= msg.size();
        batch.delete(&codec::msg_key(self.id, seq));
        let lkey = codec::last_key(self.id, &msg.subject);
        if let Some(set) = self.subjects.get_mut(&msg.subject) {
            let was_last = set.last() == Some(&seq);
            set.remove(&seq);
            match set.last() {
                None => {
                    self.subjects.remove(&msg.subject);
                    batch.delete(&lkey);
                }
                Some(&l) if was_last => {
                    batch.put(&lkey, &l.to_be_bytes());
                }
                Some(_) => {}
            }
        }
        true
    }

    /// Records the mark: sequences up to `last_seq` stay used even if no message is left.
    pub fn put_mark(&self, batch: &mut Batch) {
        let mark = StreamMark { last_seq: self.last_seq, last_ts: self.last_ts };
        batch.put(&codec::prefix(codec::TAG_MARK, self.id), &codec::encode_record(&mark));
    }

    /// Deletes what the limits no longer allow (age against `now_ms`, then count and bytes
    /// from the oldest); returns how many went. Writes the mark when anything went.
    pub fn enforce_limits(&mut self, batch: &mut Batch, now_ms: u64) -> u64 {
        let mut removed = 0;
        while let Some((&seq, m)) = self.msgs.iter().next() {
            let c = &self.config;
            let too_old = c.max_age_ms > 0 && m.ts_ms.saturating_add(c.max_age_ms) <= now_ms;
            let too_many = c.discard == Discard::Old && c.max_msgs > 0 && self.msgs.len() as u64 > c.max_msgs;
            let too_big = c.discard == Discard::Old && c.max_bytes > 0 && self.bytes > c.max_bytes;
            if !(too_old || too_many || too_big) {
                break;
            }
            self.remove(batch, seq);
            removed += 1;
        }
        if removed > 0 {
            self.put_mark(batch);
        }
        removed
    }

    /// When the oldest message expires by age.
    pub fn age_deadline(&self) -> Option<u64> {
        if self.config.max_age_ms == 0 {
            return None;
        }
        self.msgs.values().next().map(|m| m.ts_ms.saturating_add(self.config.max_age_ms))
    }

    /// Deletes every key of the stream.
    pub fn delete_all(&self, batch: &mut Batch) {
        for &seq in self.msgs.keys() {
            batch.delete(&codec::msg_key(self.id, seq));
        }
        for s in self.subjects.keys() {
            batch.delete(&codec::last_key(self.id, s));
        }
        for name in self.consumers.keys() {
            batch.delete(&codec::consumer_key(self.id, name));
        }
        batch.delete(&codec::prefix(codec::TAG_MARK, self.id));
        batch.delete(&codec::prefix(codec::TAG_CONFIG, self.id));
    }

    /// Panics when memory contradicts itself.
    pub fn check_invariants(&self) {
        let bytes: u64 = self.msgs.values().map(Msg::size).sum();
        assert_eq!(bytes, self.bytes, "stream {} byte count", self.config.name);
        let n: usize = self.subjects.values().map(BTreeSet::len).sum();
        assert_eq!(n, self.msgs.len(), "stream {} subject sets", self.config.name);
        assert!(self.durable_seq <= self.last_seq);
        if let Some((&last, _)) = self.msgs.iter().next_back() {
            assert!(last <= self.last_seq);
        }
        for (s, set) in &self.subjects {
            for seq in set {
                assert_eq!(self.msgs.get(seq).map(|m| &m.subject), Some(s));
            }
        }
    }
}
