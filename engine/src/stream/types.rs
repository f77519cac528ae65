//! The stream engine's vocabulary: configurations, policies, tickets, deliveries and events.
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Limits of the engine as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamsConfig {
    /// The longest subject or pattern accepted, in bytes.
    pub max_subject_bytes: usize,
    /// The largest payload any stream accepts, in bytes (a stream may set a lower limit).
    pub max_payload_bytes: usize,
    /// Streams at most.
    pub max_streams: usize,
    /// Consumers per stream at most.
    pub max_consumers_per_stream: usize,
    /// Outstanding pull requests at most (over all consumers).
    pub max_pulls: usize,
    /// Entries per store scan while recovering.
    pub recovery_page: usize,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            max_subject_bytes: crate::subject::MAX_SUBJECT_BYTES,
            max_payload_bytes: 1 << 20,
            max_streams: 4096,
            max_consumers_per_stream: 4096,
            max_pulls: 65_536,
            recovery_page: 512,
        }
    }
}

/// What a stream does when a publish would break one of its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Discard {
    /// Delete the oldest messages to make room (JetStream's default).
    Old,
    /// Refuse the publish with [`super::PublishError::LimitReached`].
    New,
}

/// A stream's configuration. Zero in a limit means "no limit".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamConfig {
    /// The name: 1 to 64 bytes of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// Subject patterns captured; they must not overlap another stream's.
    pub subjects: Vec<String>,
    /// Messages kept at most (0: no limit).
    pub max_msgs: u64,
    /// Payload + subject bytes kept at most (0: no limit).
    pub max_bytes: u64,
    /// Messages older than this many milliseconds are deleted (0: kept forever).
    pub max_age_ms: u64,
    /// The largest payload accepted (0: the engine's maximum).
    pub max_msg_bytes: u64,
    /// A publish whose message id was seen within this many milliseconds is a duplicate (0: off).
    pub duplicate_window_ms: u64,
    /// What to do at a limit.
    pub discard: Discard,
}

impl StreamConfig {
    /// A stream with no limits capturing `subjects`.
    pub fn new(name: &str, subjects: &[&str]) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.iter().map(|s| String::from(*s)).collect(),
            max_msgs: 0,
            max_bytes: 0,
            max_age_ms: 0,
            max_msg_bytes: 0,
            duplicate_window_ms: 0,
            discard: Discard::Old,
        }
    }
}

/// How a consumer's deliveries are acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AckPolicy {
    /// Each message is acknowledged on its own.
    Explicit,
    /// Acknowledging a message acknowledges every earlier one delivered.
    All,
    /// Nothing is acknowledged: a delivery is final.
    None,
}

/// Where a new consumer starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeliverPolicy {
    /// From the first message in the stream.
    All,
    /// From the last message (matching the filter).
    Last,
    /// Only messages published after the consumer was created.
    New,
    /// From this stream sequence.
    ByStartSequence(u64),
    /// From the first message with a timestamp at or after this many milliseconds.
    ByStartTime(u64),
    /// The last message of each subject (matching the filter), then everything new.
    LastPerSubject,
}

/// A durable consumer's configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsumerConfig {
    /// The name, unique within its stream (same rules as stream names).
    pub name: String,
    /// Only messages whose subject matches this pattern are delivered.
    pub filter_subject: Option<String>,
    /// How deliveries are acknowledged.
    pub ack_policy: AckPolicy,
    /// Where delivery starts.
    pub deliver_policy: DeliverPolicy,
    /// A delivery not acknowledged within this many milliseconds is delivered again.
    pub ack_wait_ms: u64,
    /// Deliveries of one message at most (0: no limit); then it is given up.
    pub max_deliver: u32,
    /// Messages delivered and not yet acknowledged at most; no new message is delivered
    /// while at the limit (0: no limit).
    pub max_ack_pending: u32,
}

impl ConsumerConfig {
    /// An explicit-ack consumer of everything with a 30 s ack wait.
    pub fn new(name: &str) -> Self {
        ConsumerConfig {
            name: name.into(),
            filter_subject: None,
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait_ms: 30_000,
            max_deliver: 0,
            max_ack_pending: 1000,
        }
    }
}

/// Identifies a command whose completion (after durability) comes as [`Event::Completed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Identifies a pull request made with [`super::Streams::fetch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FetchId(pub u64);

/// What [`super::Streams::publish`] decided; the publish is acknowledged when
/// [`Event::Completed`] arrives for `ticket`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Wait for this ticket.
    pub ticket: Ticket,
    /// The stream that captured the subject.
    pub stream: String,
    /// The message's sequence number in the stream.
    pub seq: u64,
    /// Its timestamp in milliseconds.
    pub ts_ms: u64,
    /// True when the message id was seen within the duplicate window: nothing was stored and
    /// `seq` is the original's.
    pub duplicate: bool,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its sequence number.
    pub seq: u64,
    /// The subject it was published on.
    pub subject: Arc<str>,
    /// Its timestamp in milliseconds.
    pub ts_ms: u64,
    /// The publisher's message id, if any.
    pub msg_id: Option<Arc<str>>,
    /// The payload.
    pub payload: Arc<[u8]>,
}

/// One message handed to a pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The message.
    pub message: StoredMessage,
    /// The consumer's delivery counter at this delivery (counts every delivery, from 1).
    pub consumer_seq: u64,
    /// How many times this message has been delivered to this consumer, this one included.
    pub deliveries: u32,
}

/// How a consumer acknowledges one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// Processed (with [`AckPolicy::All`], also every earlier delivery).
    Ack,
    /// Not processed: deliver it again as soon as possible.
    Nak,
    /// Never deliver it again.
    Term,
}

/// What to purge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purge {
    /// Only messages whose subject matches this pattern.
    pub subject: Option<String>,
    /// Only messages with a sequence below this one.
    pub below_seq: Option<u64>,
}

/// Why a pull request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchEnd {
    /// It received its whole batch.
    Filled,
    /// Its time ran out (or it asked not to wait).
    Expired,
    /// Its consumer or stream was deleted.
    Deleted,
    /// A store write failed and the engine rebuilt its state from the store; fetch again.
    Interrupted,
}

/// A stream's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The configuration.
    pub config: StreamConfig,
    /// Messages stored.
    pub msgs: u64,
    /// Their bytes (subject + payload).
    pub bytes: u64,
    /// The first sequence stored (`last_seq + 1` when empty).
    pub first_seq: u64,
    /// The last sequence assigned.
    pub last_seq: u64,
    /// The last sequence known durable (consumers see messages up to here).
    pub durable_seq: u64,
    /// Distinct subjects stored.
    pub subjects: u64,
    /// Consumers.
    pub consumers: u64,
}

/// A consumer's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The configuration.
    pub config: ConsumerConfig,
    /// The next stream sequence it will consider for a first delivery.
    pub next_seq: u64,
    /// Deliveries made (the consumer sequence of the last one).
    pub delivered: u64,
    /// Every stream sequence up to here is acknowledged (or not matching, or gone).
    pub ack_floor: u64,
    /// Delivered and not yet acknowledged.
    pub ack_pending: u64,
    /// Of those, past their ack wait (delivered again on the next fetch).
    pub redeliverable: u64,
    /// Messages matching the filter not yet delivered.
    pub num_pending: u64,
    /// Outstanding pull requests.
    pub waiting: u64,
}

/// Something the driver must act on, drained by [`super::Streams::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Recovery finished: at open, and again after the rebuild that follows a failed write.
    /// After an error the engine accepts nothing.
    Opened(Result<(), super::OpenError>),
    /// A command is durable (per the store's durability mode) and acknowledged, or failed.
    Completed {
        /// The command's ticket.
        ticket: Ticket,
        /// `Err` carries the store's error: the command was not applied (nor was any command
        /// sent after it before the failure was known), and the engine rebuilds its state from
        /// the store, refusing commands until [`Event::Opened`] comes again.
        result: Result<(), super::StoreFailure>,
    },
    /// Messages for a pull request.
    Messages {
        /// The request.
        fetch: FetchId,
        /// Its messages, in delivery order.
        messages: Vec<Delivery>,
    },
    /// A pull request ended.
    FetchEnded {
        /// The request.
        fetch: FetchId,
        /// Messages it received in all.
        delivered: u64,
        /// Why it ended.
        reason: FetchEnd,
    },
    /// A message reached the consumer's `max_deliver` without acknowledgement and is given up.
    MaxDeliveries {
        /// The stream.
        stream: String,
        /// The consumer.
        consumer: String,
        /// The message's stream sequence.
        seq: u64,
    },
}
