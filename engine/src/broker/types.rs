//! The broker's vocabulary: identifiers, configuration, messages and outputs.
use crate::subject::CacheConfig;
use alloc::sync::Arc;

/// A connected client, numbered by the broker from 1 in connection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// A subscription id, chosen by the client and unique among its live subscriptions (as in
/// NATS's `SUB <subject> <sid>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(pub u64);

/// A request made with [`super::Broker::handle_request`], numbered per client from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Limits and seeds of a [`super::Broker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Seeds queue-group choices.
    pub seed: u64,
    /// The largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// The longest subject, reply subject, pattern or queue name, in bytes.
    pub max_subject_bytes: usize,
    /// Messages queued for one subscription and not yet drained; more are dropped.
    pub max_pending_msgs: usize,
    /// Bytes (subject + reply + payload) queued for one subscription; more are dropped.
    pub max_pending_bytes: usize,
    /// Live subscriptions per client.
    pub max_subscriptions_per_client: usize,
    /// Outstanding requests per client.
    pub max_requests_per_client: usize,
    /// The subscription index's match cache.
    pub cache: CacheConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            seed: 0,
            max_payload_bytes: 1 << 20,
            max_subject_bytes: crate::subject::MAX_SUBJECT_BYTES,
            max_pending_msgs: 65_536,
            max_pending_bytes: 64 << 20,
            max_subscriptions_per_client: 65_536,
            max_requests_per_client: 4096,
            cache: CacheConfig::default(),
        }
    }
}

/// A published message. Its parts are shared by every delivery of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The subject it was published on.
    pub subject: Arc<str>,
    /// Where replies go, if the publisher asked for them.
    pub reply: Option<Arc<str>>,
    /// NATS headers, as sent (`NATS/1.0\r\nKey: Value\r\n...\r\n\r\n`), if any. The broker
    /// carries them without reading them.
    pub headers: Option<Arc<[u8]>>,
    /// The payload.
    pub payload: Arc<[u8]>,
}

impl Message {
    /// What the message counts for against pending byte limits.
    pub fn size_bytes(&self) -> usize {
        self.subject.len()
            + self.reply.as_ref().map_or(0, |r| r.len())
            + self.headers.as_ref().map_or(0, |h| h.len())
            + self.payload.len()
    }
}

/// What a client receives, in order, from [`super::Broker::poll_delivery`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Delivery {
    /// A message for one of the client's subscriptions.
    Message {
        /// The subscription it matched.
        sid: Sid,
        /// The message.
        message: Message,
    },
    /// The reply to one of the client's requests.
    Response {
        /// The request.
        request: RequestId,
        /// The reply message (published on the request's inbox).
        message: Message,
    },
    /// Nobody was subscribed to the request's subject: the request is over.
    NoResponders {
        /// The request.
        request: RequestId,
    },
    /// The request's timeout passed without a reply: the request is over.
    TimedOut {
        /// The request.
        request: RequestId,
    },
}

/// Broker-wide notifications, drained with [`super::Broker::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Event {
    /// The client's delivery queue went from empty to non-empty: drain it with
    /// [`super::Broker::poll_delivery`] when the client can take more.
    Deliverable {
        /// The client.
        client: ClientId,
    },
    /// A subscription hit its pending limit and a message for it was dropped. Reported once per
    /// episode: again only after the subscription has accepted a message since.
    SlowConsumer {
        /// The client.
        client: ClientId,
        /// Its subscription (`None` for a request's inbox).
        sid: Option<Sid>,
    },
}

/// What a publish did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Subscriptions chosen: every matching plain one and one per matching queue group.
    pub matched: usize,
    /// Deliveries queued.
    pub queued: usize,
    /// Deliveries dropped because the subscription was over its pending limits.
    pub dropped: usize,
}

/// A subscription as [`super::Broker::subscriptions`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionStatus {
    /// Its id.
    pub sid: Sid,
    /// The pattern.
    pub pattern: Arc<str>,
    /// The queue group, if any.
    pub queue: Option<Arc<str>>,
    /// Messages routed to it so far (queued or dropped).
    pub routed: u64,
    /// Messages dropped for it (slow consumer).
    pub dropped: u64,
    /// Messages queued and not yet drained.
    pub pending_msgs: usize,
    /// Bytes queued and not yet drained.
    pub pending_bytes: usize,
    /// It will be removed once `routed` reaches this.
    pub max_msgs: Option<u64>,
}

/// Counters over the broker's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connected clients.
    pub clients: usize,
    /// Live subscriptions, request inboxes included.
    pub subscriptions: usize,
    /// Messages accepted by publish and request.
    pub published: u64,
    /// Deliveries queued.
    pub queued: u64,
    /// Deliveries dropped at pending limits.
    pub dropped: u64,
    /// Requests answered with no responders.
    pub no_responders: u64,
    /// Requests that timed out.
    pub timed_out: u64,
}
