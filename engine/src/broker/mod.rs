//! The publish/subscribe broker: NATS's core semantics as a deterministic state machine.
//!
//! Clients connect and get a [`ClientId`]; they subscribe to patterns under their own [`Sid`]s
//! (optionally in a queue group), unsubscribe (at once or after N more messages), publish, and
//! make requests. A publish is matched against the [`SubjectIndex`](crate::subject::SubjectIndex)
//! and becomes one [`Delivery`] per chosen subscription, queued on the subscriber's client. A
//! request subscribes the requester to a fresh inbox (`_INBOX.<client>.<request>`), publishes
//! with that inbox as the reply subject, and ends with the first reply, with an immediate
//! [`Delivery::NoResponders`] if nothing matched, or with [`Delivery::TimedOut`]. Every
//! subscription has pending limits (messages and bytes queued but not yet drained): past them
//! messages for it are dropped and an [`Event::SlowConsumer`] is raised, so memory stays
//! bounded by the limits however slowly a client drains.
//!
//! # Calling protocol
//!
//! * Inputs are `handle_*` calls, each with the current time in milliseconds. They validate
//!   everything and return a typed error that leaves the broker unchanged; they never panic.
//! * After every input, drain [`Broker::poll_event`] until it returns `None`. An
//!   [`Event::Deliverable`] says a client's queue became non-empty.
//! * Drain a client's queue with [`Broker::poll_delivery`] as fast as that client can take
//!   messages (its socket is writable, its channel has room). What is not drained counts
//!   against the client's pending limits.
//! * When [`Broker::next_deadline`] is `Some(t)`, call [`Broker::handle_timeout`] at or after
//!   `t` (early, late or repeated calls are harmless): requests past their timeout end.
//!
//! ```
//! use strata_engine::broker::{Broker, BrokerConfig, Delivery, Event, Sid};
//!
//! let mut broker = Broker::new(BrokerConfig::default());
//! let alice = broker.handle_connect(0);
//! let bob = broker.handle_connect(0);
//! broker.handle_subscribe(0, bob, Sid(1), "orders.*", None).unwrap();
//!
//! let out = broker.handle_publish(1, alice, "orders.new", None, b"hello").unwrap();
//! assert_eq!(out.queued, 1);
//! assert_eq!(broker.poll_event(), Some(Event::Deliverable { client: bob }));
//! assert_eq!(broker.poll_event(), None);
//! match broker.poll_delivery(bob) {
//!     Some(Delivery::Message { sid, message }) => {
//!         assert_eq!(sid, Sid(1));
//!         assert_eq!(&*message.payload, b"hello");
//!     }
//!     other => panic!("{other:?}"),
//! }
//!
//! // A request nobody listens to is answered at once.
//! let req = broker.handle_request(2, alice, "billing.quote", b"?", Some(1000)).unwrap();
//! assert_eq!(broker.poll_event(), Some(Event::Deliverable { client: alice }));
//! assert_eq!(broker.poll_delivery(alice), Some(Delivery::NoResponders { request: req }));
//! assert_eq!(broker.next_deadline(), None);
//! ```
mod error;
mod types;

pub use error::{ClientError, PublishError, RequestError, SubscribeError, UnsubscribeError};
pub use types::{
    BrokerConfig, BrokerStats, ClientId, Delivery, Event, Message, PublishOutcome, RequestId,
    Sid, SubscriptionStatus,
};

use crate::lsm::hash::FixedState;
use crate::subject::{IndexConfig, Matches, Pattern, SubId, Subject, SubjectIndex};
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use hashbrown::HashMap;

/// The prefix of request inboxes.
pub const INBOX_PREFIX: &str = "_INBOX";

/// The broker state machine. See the module docs for the calling protocol.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    index: SubjectIndex<u32>,
    clients: HashMap<u64, ClientState, FixedState>,
    next_client: u64,
    subs: Vec<SubState>,
    free_subs: Vec<u32>,
    /// (deadline, client, request) of requests with a timeout.
    deadlines: BTreeSet<(u64, u64, u64)>,
    events: VecDeque<Event>,
    scratch: Matches<u32>,
    stats: BrokerStats,
}

#[derive(Debug, Default)]
struct ClientState {
    subs: BTreeMap<Sid, u32>,
    requests: BTreeMap<RequestId, PendingRequest>,
    next_request: u64,
    outbox: VecDeque<Queued>,
}

#[derive(Debug)]
struct PendingRequest {
    sub: u32,
    deadline: Option<u64>,
}

#[derive(Debug)]
struct Queued {
    delivery: Delivery,
    sub: u32,
    sub_gen: u32,
    bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Sid(Sid),
    Request(RequestId),
}

#[derive(Debug)]
struct SubState {
    gen: u32,
    live: bool,
    client: u64,
    owner: Owner,
    index_id: Option<SubId>,
    pattern: Arc<str>,
    queue: Option<Arc<str>>,
    routed: u64,
    dropped: u64,
    max_msgs: Option<u64>,
    pending_msgs: usize,
    pending_bytes: usize,
    slow: bool,
}

impl Broker {
    /// A broker with no clients.
    pub fn new(config: BrokerConfig) -> Self {
        let index = SubjectIndex::new(IndexConfig {
            seed: config.seed,
            cache: config.cache,
            max_subject_bytes: config.max_subject_bytes,
        });
        Broker {
            config,
            index,
            clients: HashMap::with_hasher(FixedState),
            next_client: 1,
            subs: Vec::new(),
            free_subs: Vec::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            scratch: Matches::new(),
            stats: BrokerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> BrokerStats {
        BrokerStats { clients: self.clients.len(), subscriptions: self.index.len(), ..self.stats }
    }

    /// The client's subscriptions in sid order (request inboxes excluded), or `None` for an
    /// unknown client.
    pub fn subscriptions(&self, client: ClientId) -> Option<Vec<SubscriptionStatus>> {
        let c = self.clients.get(&client.0)?;
        Some(
            c.subs
                .iter()
                .map(|(&sid, &slot)| {
                    let s = &self.subs[slot as usize];
                    SubscriptionStatus {
                        sid,
                        pattern: s.pattern.clone(),
                        queue: s.queue.clone(),
                        routed: s.routed,
                        dropped: s.dropped,
                        pending_msgs: s.pending_msgs,
                        pending_bytes: s.pending_bytes,
                        max_msgs: s.max_msgs,
                    }
                })
                .collect(),
        )
    }

    /// Messages dropped so far for the client's subscription `sid` (slow consumer), or `None`
    /// when the client or the subscription is gone. Cheap: no allocation.
    pub fn subscription_dropped(&self, client: ClientId, sid: Sid) -> Option<u64> {
        let &slot = self.clients.get(&client.0)?.subs.get(&sid)?;
        Some(self.subs[slot as usize].dropped)
    }

    /// The client's outstanding requests, or `None` for an unknown client.
    pub fn outstanding_requests(&self, client: ClientId) -> Option<Vec<RequestId>> {
        Some(self.clients.get(&client.0)?.requests.keys().copied().collect())
    }

    /// Deliveries queued for the client, or `None` for an unknown client.
    pub fn queued_deliveries(&self, client: ClientId) -> Option<usize> {
        Some(self.clients.get(&client.0)?.outbox.len())
    }

    /// A new client.
    pub fn handle_connect(&mut self, _now_ms: u64) -> ClientId {
        let id = self.next_client;
        self.next_client += 1;
        self.clients.insert(id, ClientState { next_request: 1, ..ClientState::default() });
        ClientId(id)
    }

    /// Removes the client with its subscriptions, requests and undelivered messages.
    pub fn handle_disconnect(&mut self, _now_ms: u64, client: ClientId) -> Result<(), ClientError> {
        let c = self.clients.remove(&client.0).ok_or(ClientError::UnknownClient(client))?;
        for (_, slot) in c.subs {
            self.free_sub(slot);
        }
        for (r, req) in c.requests {
            self.free_sub(req.sub);
            if let Some(d) = req.deadline {
                self.deadlines.remove(&(d, client.0, r.0));
            }
        }
        Ok(())
    }

    /// Subscribes `client` to `pattern` under `sid`, in queue group `queue` if given.
    pub fn handle_subscribe(
        &mut self,
        _now_ms: u64,
        client: ClientId,
        sid: Sid,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<(), SubscribeError> {
        let max_subs = self.config.max_subscriptions_per_client;
        let c = self.clients.get(&client.0).ok_or(SubscribeError::UnknownClient(client))?;
        let p = Pattern::parse_with_max(pattern, self.config.max_subject_bytes)
            .map_err(SubscribeError::InvalidPattern)?;
        if let Some(q) = queue {
            if q.is_empty()
                || q.len() > self.config.max_subject_bytes
                || q.bytes().any(|b| b.is_ascii_whitespace())
            {
                return Err(SubscribeError::InvalidQueue);
            }
        }
        if c.subs.contains_key(&sid) {
            return Err(SubscribeError::DuplicateSid(sid));
        }
        if c.subs.len() >= max_subs {
            return Err(SubscribeError::TooManySubscriptions { max: max_subs });
        }
        let slot = self.alloc_sub(client.0, Owner::Sid(sid), p, queue);
        if let Some(c) = self.clients.get_mut(&client.0) {
            c.subs.insert(sid, slot);
        }
        Ok(())
    }

    /// Unsubscribes: at once when `after_msgs` is `None`, else once the subscription has been
    /// routed `after_msgs` messages in all (at once if it already has).
    pub fn handle_unsubscribe(
        &mut self,
        _now_ms: u64,
        client: ClientId,
        sid: Sid,
        after_msgs: Option<u64>,
    ) -> Result<(), UnsubscribeError> {
        let c = self.clients.get_mut(&client.0).ok_or(UnsubscribeError::UnknownClient(client))?;
        let &slot = c.subs.get(&sid).ok_or(UnsubscribeError::UnknownSid(sid))?;
        let s = &mut self.subs[slot as usize];
        match after_msgs {
            Some(n) if s.routed < n => s.max_msgs = Some(n),
            _ => {
                c.subs.remove(&sid);
                self.free_sub(slot);
            }
        }
        Ok(())
    }

    /// Publishes `payload` on `subject`, with `reply` as the reply subject if given.
    pub fn handle_publish(
        &mut self,
        now_ms: u64,
        client: ClientId,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
    ) -> Result<PublishOutcome, PublishError> {
        self.handle_publish_with_headers(now_ms, client, subject, reply, None, payload)
    }

    /// [`Broker::handle_publish`] with NATS headers (carried as opaque bytes; they count
    /// against the maximum payload together with the payload, as in NATS).
    pub fn handle_publish_with_headers(
        &mut self,
        _now_ms: u64,
        client: ClientId,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<PublishOutcome, PublishError> {
        if !self.clients.contains_key(&client.0) {
            return Err(PublishError::UnknownClient(client));
        }
        let max = self.config.max_payload_bytes;
        let len = payload.len() + headers.map_or(0, <[u8]>::len);
        if len > max {
            return Err(PublishError::PayloadTooLarge { len, max });
        }
        let s = Subject::parse_with_max(subject, self.config.max_subject_bytes)
            .map_err(PublishError::InvalidSubject)?;
        let reply = match reply {
            Some(r) => Some(
                Subject::parse_with_max(r, self.config.max_subject_bytes)
                    .map_err(PublishError::InvalidReply)?,
            ),
            None => None,
        };
        Ok(self.route(s, reply.map(|r| Arc::from(r.as_str())), headers, payload))
    }

    /// The first of `client`'s own subscriptions (not request inboxes) whose pattern matches
    /// `subject`: where NATS sends a "no responders" status for a request whose reply subject
    /// is `subject`. `None` for an unknown client, an invalid subject, or no match.
    pub fn subscription_matching(&self, client: ClientId, subject: &str) -> Option<Sid> {
        let c = self.clients.get(&client.0)?;
        let s = Subject::parse_with_max(subject, self.config.max_subject_bytes).ok()?;
        let matches = |slot: u32| {
            let pattern = &self.subs[slot as usize].pattern;
            Pattern::parse_with_max(pattern, crate::subject::MAX_SUBJECT_BYTES_LIMIT).is_ok_and(|p| p.matches(s))
        };
        c.subs.iter().find(|&(_, &slot)| matches(slot)).map(|(&sid, _)| sid)
    }

    /// Sends a request: subscribes the client to a fresh inbox, publishes `payload` on
    /// `subject` with the inbox as reply subject, and ends with the first reply
    /// ([`Delivery::Response`]), at once with [`Delivery::NoResponders`] if no subscription
    /// matched, or with [`Delivery::TimedOut`] `timeout_ms` after `now_ms` if given.
    pub fn handle_request(
        &mut self,
        now_ms: u64,
        client: ClientId,
        subject: &str,
        payload: &[u8],
        timeout_ms: Option<u64>,
    ) -> Result<RequestId, RequestError> {
        let max_requests = self.config.max_requests_per_client;
        let c = self.clients.get(&client.0).ok_or(RequestError::UnknownClient(client))?;
        if c.requests.len() >= max_requests {
            return Err(RequestError::TooManyRequests { max: max_requests });
        }
        let max = self.config.max_payload_bytes;
        if payload.len() > max {
            return Err(RequestError::PayloadTooLarge { len: payload.len(), max });
        }
        let s = Subject::parse_with_max(subject, self.config.max_subject_bytes)
            .map_err(RequestError::InvalidSubject)?;
        let request = RequestId(c.next_request);
        let inbox = format!("{INBOX_PREFIX}.{}.{}", client.0, request.0);
        // A client id and request number always make a valid pattern.
        let p = Pattern::parse_with_max(&inbox, crate::subject::MAX_SUBJECT_BYTES_LIMIT)
            .map_err(RequestError::InvalidSubject)?;
        let slot = self.alloc_sub(client.0, Owner::Request(request), p, None);
        self.subs[slot as usize].max_msgs = Some(1);
        let deadline = timeout_ms.map(|t| now_ms.saturating_add(t));
        if let Some(c) = self.clients.get_mut(&client.0) {
            c.next_request += 1;
            c.requests.insert(request, PendingRequest { sub: slot, deadline });
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, client.0, request.0));
        }
        let out = self.route(s, Some(Arc::from(inbox.as_str())), None, payload);
        if out.matched == 0 {
            self.stats.no_responders += 1;
            self.finish_request(client.0, request, Delivery::NoResponders { request });
        }
        Ok(request)
    }

    /// Abandons an outstanding request (its inbox is removed; nothing more is delivered for it).
    pub fn handle_cancel(&mut self, _now_ms: u64, client: ClientId, request: RequestId) -> Result<(), ClientError> {
        let c = self.clients.get_mut(&client.0).ok_or(ClientError::UnknownClient(client))?;
        let req = c.requests.remove(&request).ok_or(ClientError::UnknownRequest(request))?;
        if let Some(d) = req.deadline {
            self.deadlines.remove(&(d, client.0, request.0));
        }
        self.free_sub(req.sub);
        Ok(())
    }

    /// Ends every request whose deadline is at or before `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while let Some(&(d, client, r)) = self.deadlines.first() {
            if d > now_ms {
                break;
            }
            self.deadlines.remove(&(d, client, r));
            self.stats.timed_out += 1;
            let request = RequestId(r);
            self.finish_request(client, request, Delivery::TimedOut { request });
        }
    }

    /// When [`Broker::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(d, _, _)| d)
    }

    /// The next broker-wide event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The client's next delivery; draining releases its share of the pending limits.
    pub fn poll_delivery(&mut self, client: ClientId) -> Option<Delivery> {
        let q = self.clients.get_mut(&client.0)?.outbox.pop_front()?;
        if let Some(s) = self.subs.get_mut(q.sub as usize) {
            if s.live && s.gen == q.sub_gen {
                s.pending_msgs -= 1;
                s.pending_bytes -= q.bytes;
            }
        }
        Some(q.delivery)
    }

    /// Checks internal invariants; panics with a description if one is broken.
    pub fn check_invariants(&self) {
        self.index.check_invariants();
        let mut live = 0;
        for (slot, s) in self.subs.iter().enumerate() {
            if !s.live {
                continue;
            }
            live += 1;
            let c = self.clients.get(&s.client).expect("a live subscription's client exists");
            match s.owner {
                Owner::Sid(sid) => assert_eq!(c.subs.get(&sid), Some(&(slot as u32))),
                Owner::Request(r) => assert_eq!(c.requests.get(&r).map(|q| q.sub), Some(slot as u32)),
            }
            assert!(s.pending_msgs <= self.config.max_pending_msgs, "pending messages bounded");
            assert!(s.pending_bytes <= self.config.max_pending_bytes, "pending bytes bounded");
            if let Some(m) = s.max_msgs {
                assert!(s.routed < m, "auto-unsubscribe happened");
            }
        }
        assert_eq!(live, self.index.len(), "index and broker agree on subscriptions");
        for (&(d, client, r), _) in self.deadlines.iter().zip(0..) {
            let req = self.clients.get(&client).and_then(|c| c.requests.get(&RequestId(r)));
            assert_eq!(req.and_then(|q| q.deadline), Some(d), "deadline of a live request");
        }
    }

    fn route(&mut self, subject: Subject<'_>, reply: Option<Arc<str>>, headers: Option<&[u8]>, payload: &[u8]) -> PublishOutcome {
        self.stats.published += 1;
        let mut matches = core::mem::take(&mut self.scratch);
        self.index.match_into(subject, &mut matches);
        let mut out = PublishOutcome { matched: matches.len(), ..PublishOutcome::default() };
        if !matches.is_empty() {
            let message = Message { subject: Arc::from(subject.as_str()), reply, headers: headers.map(Arc::from), payload: Arc::from(payload) };
            for &slot in matches.plain.iter().chain(matches.queued.iter()) {
                if self.deliver(slot, &message) {
                    out.queued += 1;
                } else {
                    out.dropped += 1;
                }
            }
        }
        self.scratch = matches;
        out
    }

    /// Queues `message` for subscription `slot`, or drops it at the pending limits.
    fn deliver(&mut self, slot: u32, message: &Message) -> bool {
        let (max_msgs, max_bytes) = (self.config.max_pending_msgs, self.config.max_pending_bytes);
        let s = &mut self.subs[slot as usize];
        let Some(c) = self.clients.get_mut(&s.client) else { return false };
        s.routed += 1;
        let bytes = message.size_bytes();
        let queued = s.pending_msgs < max_msgs && bytes <= max_bytes - s.pending_bytes;
        if queued {
            s.slow = false;
            s.pending_msgs += 1;
            s.pending_bytes += bytes;
            let delivery = match s.owner {
                Owner::Sid(sid) => Delivery::Message { sid, message: message.clone() },
                Owner::Request(request) => Delivery::Response { request, message: message.clone() },
            };
            if c.outbox.is_empty() {
                self.events.push_back(Event::Deliverable { client: ClientId(s.client) });
            }
            c.outbox.push_back(Queued { delivery, sub: slot, sub_gen: s.gen, bytes });
            self.stats.queued += 1;
        } else {
            s.dropped += 1;
            self.stats.dropped += 1;
            if !s.slow {
                s.slow = true;
                let sid = match s.owner {
                    Owner::Sid(sid) => Some(sid),
                    Owner::Request(_) => None,
                };
                self.events.push_back(Event::SlowConsumer { client: ClientId(s.client), sid });
            }
        }
        if s.max_msgs.is_some_and(|m| s.routed >= m) {
            let client = s.client;
            match s.owner {
                Owner::Sid(sid) => {
                    c.subs.remove(&sid);
                }
                Owner::Request(r) => {
                    if let Some(req) = c.requests.remove(&r) {
                        if let Some(d) = req.deadline {
                            self.deadlines.remove(&(d, client, r.0));
                        }
                    }
                }
            }
            self.free_sub(slot);
        }
        queued
    }

    /// Ends a request with a final control delivery (not subject to pending limits: at most
    /// one per request, and requests per client are bounded).
    fn finish_request(&mut self, client: u64, request: RequestId, last: Delivery) {
        let Some(c) = self.clients.get_mut(&client) else { return };
        let Some(req) = c.requests.remove(&request) else { return };
        if let Some(d) = req.deadline {
            self.deadlines.remove(&(d, client, request.0));
        }
        if c.outbox.is_empty() {
            self.events.push_back(Event::Deliverable { client: ClientId(client) });
        }
        c.outbox.push_back(Queued { delivery: last, sub: u32::MAX, sub_gen: 0, bytes: 0 });
        self.free_sub(req.sub);
    }

    fn alloc_sub(&mut self, client: u64, owner: Owner, pattern: Pattern<'_>, queue: Option<&str>) -> u32 {
        let slot = match self.free_subs.pop() {
            Some(s) => s,
            None => {
                self.subs.push(SubState {
                    gen: 0,
                    live: false,
                    client: 0,
                    owner,
                    index_id: None,
                    pattern: Arc::from(""),
                    queue: None,
                    routed: 0,
                    dropped: 0,
                    max_msgs: None,
                    pending_msgs: 0,
                    pending_bytes: 0,
                    slow: false,
                });
                (self.subs.len() - 1) as u32
            }
        };
        let index_id = self.index.insert(pattern, queue, slot);
        let s = &mut self.subs[slot as usize];
        *s = SubState {
            gen: s.gen,
            live: true,
            client,
            owner,
            index_id: Some(index_id),
            pattern: Arc::from(pattern.as_str()),
            queue: queue.map(Arc::from),
            routed: 0,
            dropped: 0,
            max_msgs: None,
            pending_msgs: 0,
            pending_bytes: 0,
            slow: false,
        };
        slot
    }

    fn free_sub(&mut self, slot: u32) {
        let Some(s) = self.subs.get_mut(slot as usize) else { return };
        if !s.live {
            return;
        }
        if let Some(id) = s.index_id.take() {
            self.index.remove(id);
        }
        s.live = false;
        s.gen = s.gen.wrapping_add(1);
        s.pattern = Arc::from("");
        s.queue = None;
        self.free_subs.push(slot);
    }
}
