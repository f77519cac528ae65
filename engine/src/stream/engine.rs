//! The [`Streams`] state machine: its state, the store plumbing, publish, fetch, ack, timers.
use super::codec;
use super::consumer::{Consumer, Expiry};
use super::error::{ConsumerError, OpenError, PublishError, StoreFailure, Unavailable};
use super::log::{Msg, StreamState};
use super::recovery::Recovery;
use super::types::{AckKind, Delivery, Event, FetchEnd, FetchId, Published, StreamsConfig, Ticket};
use crate::lsm::batch::Batch;
use crate::lsm::error::Error;
use crate::lsm::store::{ReqId, Reply, Request, Store};
use crate::subject::{IndexConfig, Matches, Subject, SubjectIndex};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

#[derive(Debug)]
pub(crate) enum Phase {
    Recovering(Recovery),
    Open,
    OpenFailed(OpenError),
    Failed(StoreFailure),
}

/// One command's share of a group write.
#[derive(Debug)]
pub(crate) enum Part {
    /// A publish: on success the stream's durable sequence reaches `seq`.
    Publish { ticket: Ticket, stream: u32, seq: u64 },
    /// A command acknowledged by its completion.
    Command { ticket: Ticket },
    /// A write nobody waits for (consumer state after a delivery, age expiry).
    Background,
}

/// Why a store request was made.
#[derive(Debug)]
pub(crate) enum Inflight {
    /// A group write (or, for a group of duplicates only, a sync) and the commands in it.
    Write(Vec<Part>),
    /// A recovery scan.
    Scan,
}

/// Commands waiting for the write in flight, merged into one batch.
#[derive(Debug)]
pub(crate) struct Group {
    batch: Batch,
    parts: Vec<Part>,
    /// A duplicate publish waits in it: an empty group is then a store `Sync`.
    sync: bool,
}

/// A group's batch is cut at this size (or the store's `max_batch_bytes`, if smaller).
const GROUP_BYTES: usize = 4 << 20;

/// After a rebuild failed to read the store, it is tried again this long after.
pub(crate) const REBUILD_RETRY_MS: u64 = 100;

/// An outstanding pull request.
#[derive(Debug)]
pub(crate) struct Pull {
    pub consumer: u64,
    pub left: usize,
    pub delivered: u64,
    pub expires_ms: Option<u64>,
}

/// Persistent streams and durable consumers over a [`Store`]. See the module docs for the
/// calling protocol.
#[derive(Debug)]
pub struct Streams {
    pub(crate) config: StreamsConfig,
    pub(crate) phase: Phase,
    pub(crate) streams: BTreeMap<u32, StreamState>,
    pub(crate) names: BTreeMap<String, u32>,
    pub(crate) next_stream: u32,
    pub(crate) index: SubjectIndex<u32>,
    pub(crate) consumers: BTreeMap<u64, Consumer>,
    pub(crate) next_consumer: u64,
    pub(crate) pulls: BTreeMap<FetchId, Pull>,
    pub(crate) next_fetch: u64,
    pub(crate) next_ticket: u64,
    pub(crate) inflight: BTreeMap<ReqId, Inflight>,
    /// The one group write in flight.
    pub(crate) writing: Option<ReqId>,
    /// Groups waiting for it; commands join the last.
    pub(crate) queued: VecDeque<Group>,
    /// While recovery is a rebuild after a failed write (not the first open): that failure.
    pub(crate) rebuilding: Option<StoreFailure>,
    /// When a failed rebuild is tried again.
    pub(crate) retry_at: Option<u64>,
    /// Rebuilds after failed writes so far.
    pub(crate) rebuilds: u64,
    /// (deadline, consumer, seq) of deliveries awaiting acknowledgement (some may be stale).
    pub(crate) ack_timers: BTreeSet<(u64, u64, u64)>,
    pub(crate) pull_timers: BTreeSet<(u64, FetchId)>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) now_ms: u64,
    scratch: Matches<u32>,
}

impl Streams {
    /// Starts recovery over an open `store`: scans of the `s` namespace are submitted now; route
    /// their replies to [`Streams::handle_store_reply`] and wait for [`Event::Opened`].
    pub fn open(config: StreamsConfig, now_ms: u64, store: &mut Store) -> Streams {
        let mut s = Streams {
            config,
            phase: Phase::Recovering(Recovery::default()),
            streams: BTreeMap::new(),
            names: BTreeMap::new(),
            next_stream: 1,
            index: SubjectIndex::new(IndexConfig::default()),
            consumers: BTreeMap::new(),
            next_consumer: 1,
            pulls: BTreeMap::new(),
            next_fetch: 1,
            next_ticket: 1,
            inflight: BTreeMap::new(),
            writing: None,
            queued: VecDeque::new(),
            rebuilding: None,
            retry_at: None,
            rebuilds: 0,
            ack_timers: BTreeSet::new(),
            pull_timers: BTreeSet::new(),
            events: VecDeque::new(),
            now_ms,
            scratch: Matches::new(),
        };
        s.submit_scan(store, None);
        s
    }

    /// True once recovery succeeded and no write has failed since.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// The configuration.
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// Takes the next event. Drain until `None` after every input.
    pub fn poll(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True while store requests of this engine are outstanding (or waiting to be submitted).
    pub fn has_inflight(&self) -> bool {
        !self.inflight.is_empty() || !self.queued.is_empty()
    }

    /// How many times the engine rebuilt its state from the store after a failed write.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// Feeds a store reply. Returns false (and does nothing) when `id` is not this engine's.
    pub fn handle_store_reply(&mut self, now_ms: u64, store: &mut Store, id: ReqId, result: &Result<Reply, Error>) -> bool {
        let Some(what) = self.inflight.remove(&id) else { return false };
        self.tick(now_ms);
        match what {
            Inflight::Scan => self.scan_done(now_ms, store, result),
            Inflight::Write(parts) => {
                self.writing = None;
                match result {
                    Ok(_) => self.group_done(now_ms, store, parts),
                    Err(e) => self.write_failed(now_ms, store, parts, e),
                }
            }
        }
        true
    }

    fn complete(&mut self, ticket: Ticket, result: Result<(), StoreFailure>) {
        self.events.push_back(Event::Completed { ticket, result });
    }

    /// A group is durable: acknowledge its commands, send the next group, serve consumers.
    fn group_done(&mut self, now_ms: u64, store: &mut Store, parts: Vec<Part>) {
        let mut served = BTreeSet::new();
        for part in parts {
            match part {
                Part::Publish { ticket, stream, seq } => {
                    self.complete(ticket, Ok(()));
                    if let Some(st) = self.streams.get_mut(&stream) {
                        st.durable_seq = st.durable_seq.max(seq).min(st.last_seq);
                    }
                    served.insert(stream);
                }
                Part::Command { ticket } => self.complete(ticket, Ok(())),
                Part::Background => {}
            }
        }
        self.flush(now_ms, store);
        for stream in served {
            self.serve_stream(now_ms, store, stream);
        }
    }

    /// A group write failed, so the store holds exactly the groups before it: every command
    /// in it and in the groups waiting behind it (built on its state) fails with the store's
    /// error, and memory is rebuilt from the store.
    fn write_failed(&mut self, now_ms: u64, store: &mut Store, parts: Vec<Part>, e: &Error) {
        let waiting: Vec<Part> = self.queued.drain(..).flat_map(|g| g.parts).collect();
        for part in parts.into_iter().chain(waiting) {
            if let Part::Publish { ticket, .. } | Part::Command { ticket } = part {
                self.complete(ticket, Err(e.clone()));
            }
        }
        self.phase = Phase::Failed(e.clone());
        self.rebuilding = Some(e.clone());
        self.rebuild(now_ms, store);
    }

    /// Drops the in-memory state and recovers it from the store (see [`super::recovery`]).
    /// Waiting pulls end with [`FetchEnd::Interrupted`].
    pub(crate) fn rebuild(&mut self, now_ms: u64, store: &mut Store) {
        let fetches: Vec<FetchId> = self.pulls.keys().copied().collect();
        for f in fetches {
            self.end_pull(f, FetchEnd::Interrupted);
        }
        self.streams.clear();
        self.names.clear();
        self.next_stream = 1;
        self.index = SubjectIndex::new(IndexConfig::default());
        self.consumers.clear();
        self.next_consumer = 1;
        self.ack_timers.clear();
        self.pull_timers.clear();
        self.retry_at = None;
        self.rebuilds += 1;
        self.phase = Phase::Recovering(Recovery::default());
        self.tick(now_ms);
        self.submit_scan(store, None);
    }

    pub(crate) fn available(&self) -> Result<(), Unavailable> {
        match &self.phase {
            Phase::Open => Ok(()),
            Phase::Recovering(_) => match &self.rebuilding {
                Some(e) => Err(Unavailable::Failed(e.clone())),
                None => Err(Unavailable::NotOpen),
            },
            Phase::OpenFailed(e) => Err(Unavailable::OpenFailed(e.clone())),
            Phase::Failed(e) => Err(Unavailable::Failed(e.clone())),
        }
    }

    pub(crate) fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    pub(crate) fn ticket(&mut self) -> Ticket {
        let t = Ticket(self.next_ticket);
        self.next_ticket += 1;
        t
    }

    /// Queues a command's batch behind the write in flight (one group write at a time, so
    /// that the store never applies a batch built on a failed one) and sends it when it can.
    pub(crate) fn write(&mut self, now_ms: u64, store: &mut Store, batch: Batch, part: Part) {
        self.write_part(now_ms, store, batch, part, false);
    }

    /// [`Self::write`], and with `sync` the group is a store `Sync` when its batch is empty.
    fn write_part(&mut self, now_ms: u64, store: &mut Store, batch: Batch, part: Part, sync: bool) {
        let cap = GROUP_BYTES.min(store.config().max_batch_bytes);
        match self.queued.back_mut() {
            Some(g) if g.batch.is_empty() => {
                if !batch.is_empty() {
                    g.batch = batch;
                }
                g.parts.push(part);
                g.sync |= sync;
            }
            Some(g) if batch.is_empty() || g.batch.encoded_len() + batch.encoded_len() <= cap => {
                for op in batch.iter() {
                    match op.kind {
                        crate::lsm::key::ValueKind::Put => g.batch.put(op.key, op.value),
                        crate::lsm::key::ValueKind::Delete => g.batch.delete(op.key),
                    };
                }
                g.parts.push(part);
                g.sync |= sync;
            }
            _ => self.queued.push_back(Group { batch, parts: alloc::vec![part], sync }),
        }
        self.flush(now_ms, store);
    }

    /// Sends the oldest waiting group unless a group write is in flight.
    fn flush(&mut self, now_ms: u64, store: &mut Store) {
        if self.writing.is_some() {
            return;
        }
        let Some(g) = self.queued.pop_front() else { return };
        let req = if g.batch.is_empty() && g.sync { Request::Sync } else { Request::Write(g.batch) };
        let id = store.submit(now_ms, req);
        self.writing = Some(id);
        self.inflight.insert(id, Inflight::Write(g.parts));
    }

    /// Writes a command's batch and returns the ticket its completion will carry.
    pub(crate) fn command(&mut self, now_ms: u64, store: &mut Store, batch: Batch) -> Ticket {
        let ticket = self.ticket();
        self.write(now_ms, store, batch, Part::Command { ticket });
        ticket
    }

    /// Publishes `payload` on `subject` into the stream capturing it. The returned sequence and
    /// timestamp are final, but the publish is acknowledged only by [`Event::Completed`] for the
    /// ticket, which comes after the store reports the write durable (with
    /// `Durability::SyncEachWrite`; the weaker modes acknowledge once the write is in memory).
    /// With a `msg_id` seen within the stream's duplicate window nothing is stored: the
    /// original's sequence comes back with `duplicate: true`, acknowledged once the original is
    /// durable.
    pub fn publish(&mut self, now_ms: u64, store: &mut Store, subject: &str, msg_id: Option<&str>, payload: &[u8]) -> Result<Published, PublishError> {
        self.available()?;
        self.tick(now_ms);
        let subj = Subject::parse_with_max(subject, self.config.max_subject_bytes).map_err(PublishError::InvalidSubject)?;
        if msg_id.is_some_and(|m| m.is_empty() || m.len() > codec::MAX_MSG_ID_BYTES) {
            return Err(PublishError::InvalidMsgId);
        }
        self.index.match_into(subj, &mut self.scratch);
        let Some(&id) = self.scratch.plain.first() else { return Err(PublishError::NoStream(subject.into())) };
        let max_payload = self.config.max_payload_bytes as u64;
        let engine_now = self.now_ms;
        let Some(st) = self.streams.get_mut(&id) else { return Err(PublishError::NoStream(subject.into())) };
        let max = match st.config.max_msg_bytes {
            0 => max_payload,
            m => m.min(max_payload),
        };
        if payload.len() as u64 > max {
            return Err(PublishError::MessageTooLarge { len: payload.len(), max });
        }
        let size = codec::msg_size(subject, payload);
        if st.config.max_bytes > 0 && size > st.config.max_bytes {
            return Err(PublishError::MessageTooLarge { len: payload.len(), max: st.config.max_bytes });
        }
        let stream = st.config.name.clone();
        if let Some(orig) = msg_id.and_then(|m| st.duplicate_of(engine_now, m)) {
            let ts_ms = st.msgs.get(&orig).map_or(st.last_ts, |m| m.ts_ms);
            let ticket = self.ticket();
            // Acknowledged with the next group, which is sent after the original's (a group of
            // duplicates alone is a store sync, which completes after every earlier write).
            self.write_part(now_ms, store, Batch::new(), Part::Command { ticket }, true);
            return Ok(Published { ticket, stream, seq: orig, ts_ms, duplicate: true });
        }
        if let Some(limit) = st.refuses_new(size) {
            return Err(PublishError::LimitReached { stream, limit });
        }
        let mut batch = Batch::new();
        let msg = Msg { subject: subject.into(), ts_ms: 0, msg_id: msg_id.map(Arc::from), payload: payload.into() };
        let (seq, ts_ms) = st.append(&mut batch, engine_now, msg);
        st.enforce_limits(&mut batch, engine_now);
        let ticket = self.ticket();
        self.write(now_ms, store, batch, Part::Publish { ticket, stream: id, seq });
        Ok(Published { ticket, stream, seq, ts_ms, duplicate: false })
    }

    /// Asks a consumer for up to `batch` messages. Messages come as [`Event::Messages`] (at once
    /// for what is available, later for what arrives) and the request ends with
    /// [`Event::FetchEnded`] when the batch is full or `expires_ms` has passed (`0`: do not
    /// wait). Only durable messages are delivered.
    pub fn fetch(&mut self, now_ms: u64, store: &mut Store, stream: &str, consumer: &str, batch: usize, expires_ms: u64) -> Result<FetchId, ConsumerError> {
        self.available()?;
        self.tick(now_ms);
        if batch == 0 {
            return Err(ConsumerError::InvalidConfig("batch must be at least 1"));
        }
        if self.pulls.len() >= self.config.max_pulls {
            return Err(ConsumerError::TooManyPulls { max: self.config.max_pulls });
        }
        let cid = self.consumer_id(stream, consumer)?;
        let fetch = FetchId(self.next_fetch);
        self.next_fetch += 1;
        let expires = (expires_ms > 0).then(|| self.now_ms.saturating_add(expires_ms));
        self.pulls.insert(fetch, Pull { consumer: cid, left: batch, delivered: 0, expires_ms: expires });
        if let Some(c) = self.consumers.get_mut(&cid) {
            c.waiting.push_back(fetch);
        }
        self.serve(now_ms, store, cid);
        if self.pulls.contains_key(&fetch) {
            match expires {
                None => self.end_pull(fetch, FetchEnd::Expired),
                Some(t) => {
                    self.pull_timers.insert((t, fetch));
                }
            }
        }
        Ok(fetch)
    }

    /// Acknowledges stream sequence `seq` delivered to a consumer. The state change is
    /// acknowledged by [`Event::Completed`] for the returned ticket once it is durable. Waiting
    /// pulls of the consumer are served at once (a nak, or room freed under `max_ack_pending`).
    pub fn ack(&mut self, now_ms: u64, store: &mut Store, stream: &str, consumer: &str, seq: u64, kind: AckKind) -> Result<Ticket, ConsumerError> {
        self.available()?;
        self.tick(now_ms);
        let cid = self.consumer_id(stream, consumer)?;
        let Some(c) = self.consumers.get_mut(&cid) else { return Err(ConsumerError::UnknownConsumer(consumer.into())) };
        c.ack(seq, kind)?;
        let batch = self.consumer_batch(cid);
        let ticket = self.command(now_ms, store, batch);
        // A nak makes a message deliverable; any ack may free room under max_ack_pending.
        self.serve(now_ms, store, cid);
        Ok(ticket)
    }

    pub(crate) fn consumer_id(&self, stream: &str, consumer: &str) -> Result<u64, ConsumerError> {
        let sid = self.names.get(stream).ok_or_else(|| ConsumerError::UnknownStream(stream.into()))?;
        let st = self.streams.get(sid).ok_or_else(|| ConsumerError::UnknownStream(stream.into()))?;
        st.consumers.get(consumer).copied().ok_or_else(|| ConsumerError::UnknownConsumer(consumer.into()))
    }

    /// A batch writing a consumer's record.
    pub(crate) fn consumer_batch(&self, cid: u64) -> Batch {
        let mut b = Batch::new();
        if let Some(c) = self.consumers.get(&cid) {
            b.put(&codec::consumer_key(c.stream, &c.config.name), &codec::encode_record(&c.record()));
        }
        b
    }

    /// Serves the waiting pulls of every consumer of a stream.
    fn serve_stream(&mut self, now_ms: u64, store: &mut Store, stream: u32) {
        let Some(st) = self.streams.get(&stream) else { return };
        let ids: Vec<u64> = st.consumers.values().copied().collect();
        for cid in ids {
            self.serve(now_ms, store, cid);
        }
    }

    /// Hands a consumer's deliverable messages to its waiting pulls, oldest first, and writes
    /// its state when anything changed.
    pub(crate) fn serve(&mut self, now_ms: u64, store: &mut Store, cid: u64) {
        if !self.is_open() {
            return;
        }
        let now = self.now_ms.max(now_ms);
        let mut changed = false;
        loop {
            let Some(c) = self.consumers.get_mut(&cid) else { return };
            let Some(&fetch) = c.waiting.front() else { break };
            let Some(st) = self.streams.get(&c.stream) else { break };
            let Some(pull) = self.pulls.get_mut(&fetch) else {
                c.waiting.pop_front();
                continue;
            };
            let mut out: Vec<Delivery> = Vec::new();
            let mut gave_up = Vec::new();
            changed |= c.take(st, now, pull.left, &mut out, &mut gave_up);
            let (stream_name, consumer_name) = (st.config.name.clone(), c.config.name.clone());
            let ack_wait = c.config.ack_wait_ms;
            let track = c.config.ack_policy != super::types::AckPolicy::None;
            for seq in gave_up {
                self.events.push_back(Event::MaxDeliveries { stream: stream_name.clone(), consumer: consumer_name.clone(), seq });
            }
            if out.is_empty() {
                break;
            }
            pull.left -= out.len();
            pull.delivered += out.len() as u64;
            let filled = pull.left == 0;
            if track {
                for d in &out {
                    self.ack_timers.insert((now.saturating_add(ack_wait), cid, d.message.seq));
                }
            }
            self.events.push_back(Event::Messages { fetch, messages: out });
            if filled {
                self.end_pull(fetch, FetchEnd::Filled);
            }
        }
        if changed {
            let batch = self.consumer_batch(cid);
            self.write(now_ms, store, batch, Part::Background);
        }
    }

    pub(crate) fn end_pull(&mut self, fetch: FetchId, reason: FetchEnd) {
        let Some(p) = self.pulls.remove(&fetch) else { return };
        if let Some(t) = p.expires_ms {
            self.pull_timers.remove(&(t, fetch));
        }
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.waiting.retain(|f| *f != fetch);
        }
        self.events.push_back(Event::FetchEnded { fetch, delivered: p.delivered, reason });
    }

    /// When the engine next wants [`Streams::handle_timeout`]: an ack wait, a pull expiry or a
    /// message's maximum age. Early, late or repeated calls are harmless.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.is_open() {
            return self.retry_at;
        }
        let ack = self.ack_timers.first().map(|t| t.0);
        let pull = self.pull_timers.first().map(|t| t.0);
        let age = self.streams.values().filter_map(StreamState::age_deadline).min();
        [ack, pull, age].into_iter().flatten().min()
    }

    /// Feeds the time: expires messages past their stream's maximum age, turns deliveries past
    /// their ack wait into redeliveries (or gives them up at `max_deliver`), and ends pulls
    /// past their expiry.
    pub fn handle_timeout(&mut self, now_ms: u64, store: &mut Store) {
        self.tick(now_ms);
        if matches!(self.phase, Phase::Failed(_)) && self.retry_at.is_some_and(|t| t <= self.now_ms) {
            self.rebuild(now_ms, store);
        }
        if !self.is_open() {
            return;
        }
        let now = self.now_ms;
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(st) = self.streams.get_mut(&id) else { continue };
            if st.age_deadline().is_some_and(|d| d <= now) {
                let mut batch = Batch::new();
                st.enforce_limits(&mut batch, now);
                self.write(now_ms, store, batch, Part::Background);
            }
        }
        let mut woken = BTreeSet::new();
        let mut gave_up_any = BTreeSet::new();
        while let Some(&(deadline, cid, seq)) = self.ack_timers.first() {
            if deadline > now {
                break;
            }
            self.ack_timers.pop_first();
            let Some(c) = self.consumers.get_mut(&cid) else { continue };
            match c.expire(seq, deadline) {
                Expiry::Stale => {}
                Expiry::Redeliverable => {
                    woken.insert(cid);
                }
                Expiry::GaveUp => {
                    let stream = self.streams.get(&c.stream).map(|s| s.config.name.clone()).unwrap_or_default();
                    let consumer = c.config.name.clone();
                    self.events.push_back(Event::MaxDeliveries { stream, consumer, seq });
                    gave_up_any.insert(cid);
                }
            }
        }
        for cid in gave_up_any {
            let batch = self.consumer_batch(cid);
            self.write(now_ms, store, batch, Part::Background);
            woken.insert(cid);
        }
        for cid in woken {
            self.serve(now_ms, store, cid);
        }
        while let Some(&(t, fetch)) = self.pull_timers.first() {
            if t > now {
                break;
            }
            self.end_pull(fetch, FetchEnd::Expired);
        }
    }

    /// Panics when an internal invariant is broken (tests call it after every step).
    pub fn check_invariants(&self) {
        for (name, id) in &self.names {
            assert_eq!(self.streams.get(id).map(|s| &s.config.name), Some(name));
        }
        assert_eq!(self.names.len(), self.streams.len());
        for st in self.streams.values() {
            st.check_invariants();
            for (n, cid) in &st.consumers {
                let c = &self.consumers[cid];
                assert_eq!(&c.config.name, n);
                assert_eq!(c.stream, st.id);
                assert!(c.pending.keys().all(|&s| s < c.next_seq), "pending beyond the consumer's position");
                for f in &c.waiting {
                    assert_eq!(self.pulls.get(f).map(|p| p.consumer), Some(*cid));
                }
            }
        }
        assert_eq!(self.consumers.len(), self.streams.values().map(|s| s.consumers.len()).sum::<usize>());
        for p in self.pulls.values() {
            assert!(p.left > 0);
        }
    }
}
