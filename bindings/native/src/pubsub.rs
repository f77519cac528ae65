//! In-process publish/subscribe on a [`Db`]: the core's [`Broker`] behind a mutex.
//!
//! Every [`Subscription`] (and every TCP connection of the server, and every in-flight
//! [`Db::request`]) is one broker client. Messages wait in the broker's per-client queue until
//! the subscriber drains them, so the broker's pending limits (`Options::broker`) bound the
//! memory a slow subscriber can hold; past them messages for it are dropped and its next
//! receive returns [`RecvError::Lagged`] with the number missed.
//!
//! Threads: a publisher locks the hub, feeds the broker, drains its events and wakes the
//! condition variable of each client whose queue became non-empty. A subscriber drains up to
//! [`RECV_BATCH`] messages per lock into a local buffer. Request timeouts need no timer thread:
//! the only deadlines in the broker are those of requests, and each requester waits on its own
//! deadline and then calls `handle_timeout` itself.
use crate::db::Db;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use strata_engine::broker::{
    Broker, BrokerConfig, ClientId, Delivery, Event, PublishError, RequestError as BrokerRequestError,
    Sid, SubscribeError,
};
pub use strata_engine::broker::{Message, PublishOutcome};
use strata_engine::subject::SubjectError;
use crate::streams::capture::{CaptureHook, CaptureItem};

/// Messages a [`Subscription`] moves from the broker's queue to its own buffer per lock.
pub const RECV_BATCH: usize = 128;

/// The sid of a [`Subscription`]'s only subscription on its broker client.
const SID: Sid = Sid(1);

/// Why a messaging call was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessagingError {
    /// The subject is malformed or has wildcards (what and where in the [`SubjectError`]).
    InvalidSubject(SubjectError),
    /// The reply subject is malformed or has wildcards.
    InvalidReply(SubjectError),
    /// The subscription pattern is malformed.
    InvalidPattern(SubjectError),
    /// The queue group name is empty, too long or contains whitespace.
    InvalidQueue,
    /// The payload is over [`BrokerConfig::max_payload_bytes`].
    PayloadTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too many subscriptions on one client.
    TooManySubscriptions {
        /// The limit.
        max: usize,
    },
    /// The subscription id is already in use on this client.
    DuplicateSid(u64),
    /// Too many requests in flight on one client.
    TooManyRequests {
        /// The limit.
        max: usize,
    },
    /// The KV watch bucket name is not one literal subject token.
    InvalidBucket(strata_engine::subject::kv::BucketError),
    /// [`Db::watch`] on a database opened without [`Options::kv_watch`](crate::Options::kv_watch).
    WatchDisabled,
    /// The database is closed.
    Closed,
}

impl fmt::Display for MessagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessagingError::InvalidSubject(e) => write!(f, "invalid subject: {e}"),
            MessagingError::InvalidReply(e) => write!(f, "invalid reply subject: {e}"),
            MessagingError::InvalidPattern(e) => write!(f, "invalid pattern: {e}"),
            MessagingError::InvalidQueue => f.write_str("invalid queue group name"),
            MessagingError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes is over the maximum {max}")
            }
            MessagingError::TooManySubscriptions { max } => write!(f, "too many subscriptions (max {max})"),
            MessagingError::DuplicateSid(s) => write!(f, "subscription id {s} is already in use"),
            MessagingError::TooManyRequests { max } => write!(f, "too many requests in flight (max {max})"),
            MessagingError::InvalidBucket(e) => e.fmt(f),
            MessagingError::WatchDisabled => f.write_str("KV watch is off (set Options::kv_watch)"),
            MessagingError::Closed => f.write_str("the database is closed"),
        }
    }
}

impl std::error::Error for MessagingError {}

impl MessagingError {
    pub(crate) fn from_publish(e: PublishError) -> Self {
        match e {
            PublishError::InvalidSubject(e) => MessagingError::InvalidSubject(e),
            PublishError::InvalidReply(e) => MessagingError::InvalidReply(e),
            PublishError::PayloadTooLarge { len, max } => MessagingError::PayloadTooLarge { len, max },
            PublishError::UnknownClient(_) => MessagingError::Closed,
        }
    }

    pub(crate) fn from_subscribe(e: SubscribeError) -> Self {
        match e {
            SubscribeError::InvalidPattern(e) => MessagingError::InvalidPattern(e),
            SubscribeError::InvalidQueue => MessagingError::InvalidQueue,
            SubscribeError::DuplicateSid(s) => MessagingError::DuplicateSid(s.0),
            SubscribeError::TooManySubscriptions { max } => MessagingError::TooManySubscriptions { max },
            SubscribeError::UnknownClient(_) => MessagingError::Closed,
        }
    }
}

/// Why [`Db::request`] got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Nobody is subscribed to the subject: answered at once, without waiting for the timeout.
    NoResponders,
    /// No reply arrived within the timeout.
    TimedOut {
        /// The timeout.
        timeout: Duration,
    },
    /// The request was refused before it was sent.
    Rejected(MessagingError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoResponders => f.write_str("no responders"),
            RequestError::TimedOut { timeout } => write!(f, "no reply within {timeout:?}"),
            RequestError::Rejected(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RequestError {}

/// What a receive on a [`Subscription`] got instead of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// The subscriber fell behind its pending limits and this many messages for it were
    /// dropped since the last report. The subscription continues; receive again.
    Lagged {
        /// Messages missed.
        missed: u64,
    },
    /// Nothing queued ([`Subscription::try_recv`] only).
    Empty,
    /// Nothing arrived in time ([`Subscription::recv_timeout`] only).
    Timeout,
    /// The subscription is over: its [`Subscription::unsubscribe_after`] count was reached and
    /// everything was received, or the database closed.
    Closed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Lagged { missed } => write!(f, "slow consumer: {missed} messages dropped"),
            RecvError::Empty => f.write_str("no message queued"),
            RecvError::Timeout => f.write_str("no message within the timeout"),
            RecvError::Closed => f.write_str("subscription closed"),
        }
    }
}

impl std::error::Error for RecvError {}

/// The broker of one [`Db`] and the wake-ups of its clients.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    start: Instant,
    /// Where captured messages go (a versioned `Db` with streams; see `streams::capture`).
    pub(crate) sink: std::sync::OnceLock<std::sync::Weak<crate::driver::Shared>>,
    /// Held while the capture client's subscriptions are replaced.
    pub(crate) capture_sync: Mutex<()>,
    /// Numbers the publishes that wait for their capture.
    pub(crate) capture_ids: std::sync::atomic::AtomicU64,
}

pub(crate) struct HubState {
    pub(crate) broker: Broker,
    /// Each client's wake-up, and whether a thread sleeps on it (a publish signals only
    /// sleepers: a wake is a system call).
    wakers: HashMap<u64, (Arc<Condvar>, bool)>,
    pub(crate) publisher: ClientId,
    pub(crate) closed: bool,
    /// The streams' capture client, once streams run on this hub.
    pub(crate) capture: Option<CaptureHook>,
}

impl Hub {
    pub(crate) fn new(config: BrokerConfig) -> Hub {
        let mut broker = Broker::new(config);
        let publisher = broker.handle_connect(0);
        let state = HubState { broker, wakers: HashMap::new(), publisher, closed: false, capture: None };
        Hub {
            state: Mutex::new(state),
            start: Instant::now(),
            sink: std::sync::OnceLock::new(),
            capture_sync: Mutex::new(()),
            capture_ids: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The broker's clock: milliseconds since the hub was made.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HubState> {
        // The broker's inputs never panic on bad input; a poisoned lock means a bug elsewhere,
        // and the broker is still consistent between inputs.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the hub closed and wakes everybody.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        for (w, _) in st.wakers.values() {
            w.notify_all();
        }
    }

    /// A new broker client with its wake-up.
    pub(crate) fn connect(&self) -> Result<(ClientId, Arc<Condvar>), MessagingError> {
        let now = self.now_ms();
        let mut st = self.lock();
        if st.closed {
            return Err(MessagingError::Closed);
        }
        let id = st.broker.handle_connect(now);
        let waker = Arc::new(Condvar::new());
        st.wakers.insert(id.0, (waker.clone(), false));
        Ok((id, waker))
    }

    pub(crate) fn disconnect(&self, client: ClientId) {
        let now = self.now_ms();
        let mut st = self.lock();
        st.wakers.remove(&client.0);
        // Unknown only if already gone.
        let _ = st.broker.handle_disconnect(now, client);
        st.dispatch();
    }

    /// Publishes from the hub's own client (or `from`).
    pub(crate) fn publish(
        &self,
        from: Option<ClientId>,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
    ) -> Result<PublishOutcome, MessagingError> {
        let now = self.now_ms();
        let mut st = self.lock();
        if st.closed {
            return Err(MessagingError::Closed);
        }
        let client = from.unwrap_or(st.publisher);
        let out = st.broker.handle_publish(now, client, subject, reply, payload).map_err(MessagingError::from_publish)?;
        st.dispatch();
        drop(st);
        self.flush_capture();
        Ok(out)
    }

    /// Hands captured messages to the streams. Call after releasing the hub's lock, after
    /// anything that may have published.
    pub(crate) fn flush_capture(&self) {
        let Some(sink) = self.sink.get() else { return };
        if let Some(shared) = sink.upgrade() {
            shared.flush_capture();
        }
    }

    /// Waits on `client`'s `waker` (with the hub's lock) until woken or `deadline`.
    pub(crate) fn wait<'a>(
        &self,
        mut st: MutexGuard<'a, HubState>,
        client: ClientId,
        waker: &Condvar,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, HubState> {
        st.set_sleeping(client, true);
        let mut st = match deadline {
            None => waker.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                waker.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0
            }
        };
        st.set_sleeping(client, false);
        st
    }
}

impl HubState {
    fn set_sleeping(&mut self, client: ClientId, sleeping: bool) {
        if let Some(w) = self.wakers.get_mut(&client.0) {
            w.1 = sleeping;
        }
    }

    /// Drains the broker's events: wakes clients whose queue became non-empty. Slow consumers
    /// are reported through the drop counters ([`Broker::subscription_dropped`]).
    pub(crate) fn dispatch(&mut self) {
        while let Some(e) = self.broker.poll_event() {
            if let Event::Deliverable { client } = e {
                if self.capture.as_ref().is_some_and(|c| c.client == client) {
                    self.drain_capture();
                } else if let Some((w, true)) = self.wakers.get(&client.0) {
                    w.notify_all();
                }
            }
        }
    }
}

impl HubState {
    /// Moves the capture client's messages into the capture queue, in broker order; returns
    /// how many.
    pub(crate) fn drain_capture(&mut self) -> usize {
        let Some(hook) = self.capture.as_ref() else { return 0 };
        let mut n = 0;
        while let Some(d) = self.broker.poll_delivery(hook.client) {
            if let Delivery::Message { message, .. } = d {
                hook.queue.push(CaptureItem::from_message(message));
                n += 1;
            }
        }
        n
    }
}

impl Db {
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Publishes `payload` on `subject` to every matching subscription (and one member of
    /// each matching queue group). Returns at once; `matched` says how many subscriptions
    /// were chosen.
    pub fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> Result<PublishOutcome, MessagingError> {
        self.hub().publish(None, subject, None, payload.as_ref())
    }

    /// Publishes with a reply subject (where responders should answer).
    pub fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<PublishOutcome, MessagingError> {
        self.hub().publish(None, subject, Some(reply), payload.as_ref())
    }

    /// Subscribes to `pattern` (`*` matches one token, a final `>` the rest).
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, MessagingError> {
        Subscription::new(self.hub().clone(), pattern, None)
    }

    /// Subscribes to `pattern` in queue group `group`: each message matching the group goes to
    /// one of its members only.
    pub fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, MessagingError> {
        Subscription::new(self.hub().clone(), pattern, Some(group))
    }

    /// Publishes `payload` on `subject` with a fresh inbox as reply subject and waits for the
    /// first reply. Fails at once with [`RequestError::NoResponders`] when nothing is
    /// subscribed, and with [`RequestError::TimedOut`] after `timeout`.
    pub fn request(&self, subject: &str, payload: impl AsRef<[u8]>, timeout: Duration) -> Result<Message, RequestError> {
        let hub = self.hub();
        let (client, waker) = hub.connect().map_err(RequestError::Rejected)?;
        let r = request_on(hub, client, &waker, subject, payload.as_ref(), timeout);
        hub.disconnect(client);
        r
    }

    /// Counters of the broker: clients, subscriptions, messages published, queued, dropped.
    pub fn broker_stats(&self) -> strata_engine::broker::BrokerStats {
        self.hub().lock().broker.stats()
    }
}

fn request_on(
    hub: &Hub,
    client: ClientId,
    waker: &Condvar,
    subject: &str,
    payload: &[u8],
    timeout: Duration,
) -> Result<Message, RequestError> {
    let now = hub.now_ms();
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let deadline = Instant::now() + timeout;
    let mut st = hub.lock();
    st.broker.handle_request(now, client, subject, payload, Some(timeout_ms)).map_err(|e| {
        RequestError::Rejected(match e {
            BrokerRequestError::InvalidSubject(e) => MessagingError::InvalidSubject(e),
            BrokerRequestError::PayloadTooLarge { len, max } => MessagingError::PayloadTooLarge { len, max },
            BrokerRequestError::TooManyRequests { max } => MessagingError::TooManyRequests { max },
            BrokerRequestError::UnknownClient(_) => MessagingError::Closed,
        })
    })?;
    st.dispatch();
    if st.capture.is_some() {
        drop(st);
        hub.flush_capture();
        st = hub.lock();
    }
    loop {
        match st.broker.poll_delivery(client) {
            Some(Delivery::Response { message, .. }) => return Ok(message),
            Some(Delivery::NoResponders { .. }) => return Err(RequestError::NoResponders),
            Some(Delivery::TimedOut { .. }) => return Err(RequestError::TimedOut { timeout }),
            Some(Delivery::Message { .. }) => continue,
            None => {}
        }
        if st.closed {
            return Err(RequestError::Rejected(MessagingError::Closed));
        }
        // Our own deadline in real time: the broker's is in whole milliseconds, rounded down.
        st = hub.wait(st, client, waker, Some(deadline));
        let now = hub.now_ms();
        if Instant::now() >= deadline && st.broker.next_deadline().is_some_and(|d| d <= now) {
            st.broker.handle_timeout(now);
            st.dispatch();
        }
    }
}

/// A subscription on a [`Db`]'s broker. Receive with [`recv`](Subscription::recv),
/// [`recv_timeout`](Subscription::recv_timeout), [`try_recv`](Subscription::try_recv) or by
/// iterating; dropping it unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    client: ClientId,
    waker: Arc<Condvar>,
    buf: VecDeque<Message>,
    dropped_seen: u64,
    pattern: String,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("pattern", &self.pattern).field("client", &self.client.0).finish()
    }
}

impl Subscription {
    fn new(hub: Arc<Hub>, pattern: &str, queue: Option<&str>) -> Result<Subscription, MessagingError> {
        let (client, waker) = hub.connect()?;
        let now = hub.now_ms();
        let r = hub.lock().broker.handle_subscribe(now, client, SID, pattern, queue);
        if let Err(e) = r {
            hub.disconnect(client);
            return Err(MessagingError::from_subscribe(e));
        }
        Ok(Subscription { hub, client, waker, buf: VecDeque::new(), dropped_seen: 0, pattern: pattern.to_owned() })
    }

    /// The pattern subscribed to.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Ends the subscription once `n` messages in all have been routed to it (counting those
    /// already received); at once if that many already have. Messages already queued can still
    /// be received; then receives return [`RecvError::Closed`].
    pub fn unsubscribe_after(&self, n: u64) {
        let now = self.hub.now_ms();
        let mut st = self.hub.lock();
        // Unknown only when already ended, which is what was asked.
        let _ = st.broker.handle_unsubscribe(now, self.client, SID, Some(n));
        self.waker.notify_all();
    }

    /// The next message, waiting as long as it takes. `Err` is [`RecvError::Lagged`] (then
    /// receive again) or [`RecvError::Closed`].
    pub fn recv(&mut self) -> Result<Message, RecvError> {
        self.next(None, true)
    }

    /// The next message, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Message, RecvError> {
        self.next(Some(Instant::now() + timeout), true)
    }

    /// The next message if one is queued ([`RecvError::Empty`] if not).
    pub fn try_recv(&mut self) -> Result<Message, RecvError> {
        self.next(None, false)
    }

    fn next(&mut self, deadline: Option<Instant>, block: bool) -> Result<Message, RecvError> {
        if let Some(m) = self.buf.pop_front() {
            return Ok(m);
        }
        let hub = self.hub.clone();
        let mut st = hub.lock();
        loop {
            if st.closed {
                return Err(RecvError::Closed);
            }
            let dropped = st.broker.subscription_dropped(self.client, SID);
            if let Some(d) = dropped {
                if d > self.dropped_seen {
                    let missed = d - self.dropped_seen;
                    self.dropped_seen = d;
                    return Err(RecvError::Lagged { missed });
                }
            }
            while self.buf.len() < RECV_BATCH {
                match st.broker.poll_delivery(self.client) {
                    Some(Delivery::Message { message, .. }) => self.buf.push_back(message),
                    Some(_) => {}
                    None => break,
                }
            }
            if let Some(m) = self.buf.pop_front() {
                return Ok(m);
            }
            if dropped.is_none() {
                return Err(RecvError::Closed);
            }
            if !block {
                return Err(RecvError::Empty);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvError::Timeout);
            }
            st = hub.wait(st, self.client, &self.waker, deadline);
        }
    }
}

impl Iterator for Subscription {
    /// Messages, and [`RecvError::Lagged`] notices when messages were dropped.
    type Item = Result<Message, RecvError>;

    /// Blocks for the next message; `None` once the subscription is closed.
    fn next(&mut self) -> Option<Self::Item> {
        match self.recv() {
            Err(RecvError::Closed) => None,
            r => Some(r),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.disconnect(self.client);
    }
}
