//! One durable consumer: where it is in its stream, what it delivered and awaits
//! acknowledgement for, and the pure rules choosing what to deliver next.
use super::codec::{ConsumerRecord, PendingRecord};
use super::error::ConsumerError;
use super::log::StreamState;
use super::types::{AckKind, AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, Delivery, FetchId};
use crate::subject::{Pattern, Subject};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// A consumer in memory.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub stream: u32,
    pub config: ConsumerConfig,
    pub next_seq: u64,
    pub lps_until: u64,
    pub delivered: u64,
    pub pending: BTreeMap<u64, PendingRecord>,
    /// Pull requests waiting for messages, oldest first.
    pub waiting: VecDeque<FetchId>,
}

/// What an ack-wait timer found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The timer is stale (acknowledged or redelivered since).
    Stale,
    /// The message may be delivered again.
    Redeliverable,
    /// It reached `max_deliver`: given up and removed.
    GaveUp,
}

impl Consumer {
    /// A new consumer positioned by its deliver policy.
    pub fn new(stream: &StreamState, config: ConsumerConfig) -> Self {
        let mut c = Consumer {
            stream: stream.id,
            config,
            next_seq: 0,
            lps_until: 0,
            delivered: 0,
            pending: BTreeMap::new(),
            waiting: VecDeque::new(),
        };
        let last = stream.last_seq;
        c.next_seq = match c.config.deliver_policy {
            DeliverPolicy::All => stream.first_seq(),
            DeliverPolicy::New => last + 1,
            DeliverPolicy::ByStartSequence(s) => s.max(1),
            DeliverPolicy::ByStartTime(t) => {
                stream.msgs.iter().find(|(_, m)| m.ts_ms >= t).map_or(last + 1, |(&s, _)| s)
            }
            DeliverPolicy::Last => {
                stream.msgs.iter().rev().find(|(_, m)| c.matches(&m.subject)).map_or(last + 1, |(&s, _)| s)
            }
            DeliverPolicy::LastPerSubject => {
                c.lps_until = last + 1;
                let firsts = stream.subjects.iter().filter(|(s, _)| c.matches(s)).filter_map(|(_, set)| set.last());
                firsts.min().copied().unwrap_or(last + 1)
            }
        };
        c
    }

    /// Restores a consumer from its record.
    pub fn from_record(stream: u32, rec: ConsumerRecord) -> Self {
        Consumer {
            stream,
            config: rec.config,
            next_seq: rec.next_seq,
            lps_until: rec.lps_until,
            delivered: rec.delivered,
            pending: rec.pending.into_iter().map(|p| (p.seq, p)).collect(),
            waiting: VecDeque::new(),
        }
    }

    /// The record stored for it.
    pub fn record(&self) -> ConsumerRecord {
        ConsumerRecord {
            config: self.config.clone(),
            next_seq: self.next_seq,
            lps_until: self.lps_until,
            delivered: self.delivered,
            pending: self.pending.values().copied().collect(),
        }
    }

    /// True when `subject` passes the filter.
    pub fn matches(&self, subject: &str) -> bool {
        let Some(f) = &self.config.filter_subject else { return true };
        match (Pattern::parse(f), Subject::parse(subject)) {
            (Ok(p), Ok(s)) => p.matches(s),
            _ => false,
        }
    }

    fn redeliverable(&self, p: &PendingRecord, now_ms: u64) -> bool {
        p.nak || p.delivered_ms.saturating_add(self.config.ack_wait_ms) <= now_ms
    }

    /// Takes up to `max` deliveries: redeliveries first (in sequence order), then messages
    /// not yet delivered up to the stream's durable sequence. Sequences given up at
    /// `max_deliver` are pushed to `gave_up`. Returns true when the state changed.
    pub fn take(&mut self, stream: &StreamState, now_ms: u64, max: usize, out: &mut Vec<Delivery>, gave_up: &mut Vec<u64>) -> bool {
        let start = out.len();
        let next_before = self.next_seq;
        let mut changed = false;
        let due: Vec<u64> = self.pending.values().filter(|p| self.redeliverable(p, now_ms)).map(|p| p.seq).collect();
        for seq in due {
            if out.len() - start >= max {
                break;
            }
            let Some(msg) = stream.msgs.get(&seq) else {
                self.pending.remove(&seq);
                changed = true;
                continue;
            };
            let max_deliver = self.config.max_deliver;
            let Some(p) = self.pending.get_mut(&seq) else { continue };
            if max_deliver > 0 && p.deliveries >= max_deliver {
                self.pending.remove(&seq);
                gave_up.push(seq);
                changed = true;
                continue;
            }
            p.deliveries += 1;
            p.delivered_ms = now_ms;
            p.nak = false;
            let deliveries = p.deliveries;
            self.delivered += 1;
            out.push(Delivery { message: msg.stored(seq), consumer_seq: self.delivered, deliveries });
        }
        while out.len() - start < max {
            let limited = self.config.ack_policy != AckPolicy::None && self.config.max_ack_pending > 0;
            if limited && self.pending.len() >= self.config.max_ack_pending as usize {
                break;
            }
            let Some(seq) = self.next_new(stream) else { break };
            let Some(msg) = stream.msgs.get(&seq) else { break };
            self.delivered += 1;
            if self.config.ack_policy != AckPolicy::None {
                self.pending.insert(seq, PendingRecord { seq, deliveries: 1, delivered_ms: now_ms, nak: false });
            }
            out.push(Delivery { message: msg.stored(seq), consumer_seq: self.delivered, deliveries: 1 });
        }
        changed || out.len() > start || self.next_seq != next_before
    }

    /// The next undelivered sequence to deliver, advancing `next_seq` past it.
    fn next_new(&mut self, stream: &StreamState) -> Option<u64> {
        if self.next_seq > stream.durable_seq {
            return None;
        }
        let mut found = None;
        for (&seq, m) in stream.msgs.range(self.next_seq..=stream.durable_seq) {
            if !self.matches(&m.subject) {
                continue;
            }
            if seq < self.lps_until && stream.subjects.get(&m.subject).and_then(|s| s.last()) != Some(&seq) {
                continue;
            }
            found = Some(seq);
            break;
        }
        self.next_seq = match found {
            Some(s) => s + 1,
            None => stream.durable_seq + 1,
        };
        found
    }

    /// Applies an acknowledgement.
    pub fn ack(&mut self, seq: u64, kind: AckKind) -> Result<(), ConsumerError> {
        if self.config.ack_policy == AckPolicy::None {
            return Err(ConsumerError::AckNone);
        }
        if !self.pending.contains_key(&seq) {
            let all_below = self.config.ack_policy == AckPolicy::All
                && kind == AckKind::Ack
                && self.pending.range(..=seq).next().is_some();
            if !all_below {
                return Err(ConsumerError::NotPending { seq });
            }
        }
        match kind {
            AckKind::Ack if self.config.ack_policy == AckPolicy::All => {
                self.pending.retain(|&s, _| s > seq);
            }
            AckKind::Ack | AckKind::Term => {
                self.pending.remove(&seq);
            }
            AckKind::Nak => {
                if let Some(p) = self.pending.get_mut(&seq) {
                    p.nak = true;
                }
            }
        }
        Ok(())
    }

    /// What an ack-wait timer set for `seq` at `deadline` means now.
    pub fn expire(&mut self, seq: u64, deadline: u64) -> Expiry {
        let Some(p) = self.pending.get(&seq) else { return Expiry::Stale };
        if p.delivered_ms.saturating_add(self.config.ack_wait_ms) != deadline {
            return Expiry::Stale;
        }
        if self.config.max_deliver > 0 && p.deliveries >= self.config.max_deliver {
            self.pending.remove(&seq);
            return Expiry::GaveUp;
        }
        Expiry::Redeliverable
    }

    /// Every sequence up to here is acknowledged (or filtered out, or gone).
    pub fn ack_floor(&self) -> u64 {
        match self.pending.keys().next() {
            Some(&s) => s - 1,
            None => self.next_seq.saturating_sub(1),
        }
    }

    /// Its shape.
    pub fn info(&self, stream: &StreamState, now_ms: u64) -> ConsumerInfo {
        let num_pending = if self.next_seq > stream.last_seq {
            0
        } else {
            stream.msgs.range(self.next_seq..).filter(|(_, m)| self.matches(&m.subject)).count() as u64
        };
        ConsumerInfo {
            config: self.config.clone(),
            next_seq: self.next_seq,
            delivered: self.delivered,
            ack_floor: self.ack_floor(),
            ack_pending: self.pending.len() as u64,
            redeliverable: self.pending.values().filter(|p| self.redeliverable(p, now_ms)).count() as u64,
            num_pending,
            waiting: self.waiting.len() as u64,
        }
    }
}
