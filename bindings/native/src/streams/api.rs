//! [`Streams`]: the handle through which a [`Db`] manages streams and consumers.
use super::capture::{CaptureHook, CaptureItem, CaptureQueue};
use super::error::StreamsError;
use super::side::FetchSlot;
use crate::driver::{Shared, State};
use crate::error::Error;
use crate::pubsub::Hub;
use crate::Db;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_engine::broker::{Delivery as BrokerDelivery, Sid};
use strata_engine::lsm::store::Store;
use strata_engine::stream::{
    AckKind, ConsumerConfig, ConsumerInfo, Delivery, PublishError, Purge, StoredMessage, StreamConfig,
    StreamInfo, Streams as Engine, StreamsConfig, Ticket,
};

/// Streams and consumers of one [`Db`] (from [`Db::streams`]; a cheap clone of the handle).
#[derive(Clone, Debug)]
pub struct Streams {
    db: Db,
}

/// A publish stored durably in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubAck {
    /// The stream that captured the subject.
    pub stream: String,
    /// The message's sequence number in it.
    pub seq: u64,
    /// Its timestamp (wall-clock milliseconds).
    pub ts_ms: u64,
    /// The message id was seen within the duplicate window: nothing new was stored and `seq`
    /// is the original's.
    pub duplicate: bool,
}

type R<T> = Result<T, StreamsError>;

/// Past its own deadline, a fetch waits this much longer for the engine to end it (the
/// engine's clock is the wall clock, the fetch's a monotonic one).
const FETCH_GRACE: Duration = Duration::from_millis(50);

impl Db {
    /// Streams and durable consumers on this database (see [`Streams`]).
    pub fn streams(&self) -> Streams {
        Streams { db: self.clone() }
    }
}

/// Starts the stream engine on an open versioned database and hooks it into the broker.
pub(crate) fn start(shared: &Arc<Shared>, hub: &Arc<Hub>, config: StreamsConfig) -> crate::Result<()> {
    let queue = Arc::new(CaptureQueue::default());
    let (tx, rx) = std::sync::mpsc::channel::<super::side::AckOut>();
    shared.with_state(|st| {
        let now = Shared::exec_now_ms();
        st.side.engine = Some(Engine::open(config, now, &mut st.store));
        st.side.ack_out = Some(tx);
        st.side.queue = Some(queue.clone());
    })?;
    let opened = shared.wait_for(None, |st| st.side.opened.clone(), |_| {})?;
    if let Some(Err(e)) = opened {
        return Err(Error::from(StreamsError::Open(e)));
    }
    // Acknowledgements of captured publishes go out from their own thread: the broker's lock
    // is never taken under the store's.
    let ack_hub = hub.clone();
    std::thread::Builder::new()
        .name("strata-stream-acks".into())
        .spawn(move || {
            for (reply, body) in rx {
                // Fails only once the database closes.
                let _ = ack_hub.publish(None, &reply, None, &body);
            }
        })
        .map_err(|e| Error::io("strata-stream-acks", e))?;
    let (client, _waker) = hub.connect()?;
    hub.lock().capture = Some(CaptureHook { client, queue });
    let _ = hub.sink.set(Arc::downgrade(shared));
    sync_capture(shared, hub)
}

/// Subscribes the capture client to exactly the patterns of the current streams.
fn sync_capture(shared: &Shared, hub: &Hub) -> crate::Result<()> {
    let _one_at_a_time = hub.capture_sync.lock().unwrap_or_else(|p| p.into_inner());
    let patterns = shared.with_state(|st| {
        let Some(e) = st.side.engine.as_ref() else { return Vec::new() };
        let mut all = Vec::new();
        for name in e.stream_names() {
            if let Ok(info) = e.stream_info(&name) {
                all.extend(info.config.subjects);
            }
        }
        all
    })?;
    let now = hub.now_ms();
    let mut st = hub.lock();
    let Some(client) = st.capture.as_ref().map(|c| c.client) else { return Ok(()) };
    for s in st.broker.subscriptions(client).unwrap_or_default() {
        let _ = st.broker.handle_unsubscribe(now, client, s.sid, None);
    }
    for (i, p) in patterns.iter().enumerate() {
        // The engine accepted these patterns; the broker's limits are at least as wide.
        let _ = st.broker.handle_subscribe(now, client, Sid(i as u64 + 1), p, None);
    }
    Ok(())
}

impl Streams {
    fn shared(&self) -> &Arc<Shared> {
        &self.db.raw().inner.shared
    }

    fn hub(&self) -> &Arc<Hub> {
        self.db.raw().hub()
    }

    /// Runs a read against the engine.
    fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> R<T> {
        self.shared().with_state(|st| st.side.engine.as_ref().map(f))?.ok_or(StreamsError::Db(Error::Closed))
    }

    /// Runs a command and waits until its ticket is acknowledged (durable).
    fn command<T, E: Into<StreamsError>>(&self, f: impl FnOnce(&mut Engine, u64, &mut Store) -> Result<(Ticket, T), E>) -> R<T> {
        let r = self.shared().with_state(|st| {
            let now = Shared::exec_now_ms();
            let State { store, side, .. } = st;
            let Some(engine) = side.engine.as_mut() else { return Err(StreamsError::Db(Error::Closed)) };
            let (ticket, t) = f(engine, now, store).map_err(Into::into)?;
            side.waited.insert(ticket);
            Ok((ticket, t))
        })?;
        let (ticket, t) = r?;
        self.wait_ticket(ticket)?;
        Ok(t)
    }

    fn wait_ticket(&self, ticket: Ticket) -> R<()> {
        match self.shared().wait_for(None, |st| st.side.done.remove(&ticket), |_| {})? {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StreamsError::Write(e)),
            None => Err(StreamsError::Db(Error::Closed)),
        }
    }

    /// Creates a stream; returns once its configuration is durable.
    pub fn create(&self, config: StreamConfig) -> R<StreamInfo> {
        let name = config.name.clone();
        self.command(|e, now, store| e.create_stream(now, store, config).map(|t| (t, ())))?;
        sync_capture(self.shared(), self.hub())?;
        self.info(&name)
    }

    /// Replaces a stream's configuration (subjects, limits; tightened limits apply at once).
    pub fn update(&self, config: StreamConfig) -> R<StreamInfo> {
        let name = config.name.clone();
        self.command(|e, now, store| e.update_stream(now, store, config).map(|t| (t, ())))?;
        sync_capture(self.shared(), self.hub())?;
        self.info(&name)
    }

    /// Deletes a stream, its messages and its consumers (their waiting fetches end).
    pub fn delete(&self, name: &str) -> R<()> {
        self.command(|e, now, store| e.delete_stream(now, store, name).map(|t| (t, ())))?;
        sync_capture(self.shared(), self.hub())?;
        Ok(())
    }

    /// A stream's configuration and state.
    pub fn info(&self, name: &str) -> R<StreamInfo> {
        Ok(self.read(|e| e.stream_info(name))??)
    }

    /// Every stream's name, in order.
    pub fn names(&self) -> R<Vec<String>> {
        self.read(Engine::stream_names)
    }

    /// Every stream's configuration and state, by name.
    pub fn list(&self) -> R<Vec<StreamInfo>> {
        self.read(|e| e.stream_names().iter().filter_map(|n| e.stream_info(n).ok()).collect())
    }

    /// Publishes `payload` on `subject` and returns once a stream has stored it durably. The
    /// message also reaches the subject's subscribers, like any publish.
    pub fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> R<PubAck> {
        self.publish_inner(subject, None, payload.as_ref())
    }

    /// [`Streams::publish`] with a message id (NATS's `Nats-Msg-Id`): a second publish with
    /// the same id within the stream's duplicate window stores nothing and returns the
    /// original's sequence with `duplicate: true`.
    pub fn publish_with_id(&self, subject: &str, msg_id: &str, payload: impl AsRef<[u8]>) -> R<PubAck> {
        self.publish_inner(subject, Some(msg_id), payload.as_ref())
    }

    fn publish_inner(&self, subject: &str, msg_id: Option<&str>, payload: &[u8]) -> R<PubAck> {
        let hub = self.hub();
        let id = hub.capture_ids.fetch_add(1, Ordering::Relaxed) + 1;
        let captured = {
            let now = hub.now_ms();
            let mut st = hub.lock();
            if st.closed {
                return Err(StreamsError::Db(Error::Closed));
            }
            // Whatever the capture client holds is older than this publish.
            st.drain_capture();
            let publisher = st.publisher;
            st.broker.handle_publish(now, publisher, subject, None, payload).map_err(crate::pubsub::MessagingError::from_publish)?;
            let client = st.capture.as_ref().map(|c| c.client);
            // The capture client's only delivery now is this message, if a stream captures it.
            let mine = client.and_then(|c| st.broker.poll_delivery(c));
            let captured = match (mine, st.capture.as_ref()) {
                (Some(BrokerDelivery::Message { message, .. }), Some(hook)) => {
                    let mut item = CaptureItem::from_message(message);
                    item.msg_id = msg_id.map(str::to_owned);
                    item.waiter = Some(id);
                    hook.queue.push(item);
                    true
                }
                _ => false,
            };
            st.dispatch();
            captured
        };
        hub.flush_capture();
        if !captured {
            return Err(StreamsError::Publish(PublishError::NoStream(subject.to_owned())));
        }
        let published = match self.shared().wait_for(None, |st| st.side.captured.remove(&id), |_| {})? {
            Some(r) => r?,
            None => return Err(StreamsError::Db(Error::Closed)),
        };
        self.wait_ticket(published.ticket)?;
        Ok(PubAck { stream: published.stream, seq: published.seq, ts_ms: published.ts_ms, duplicate: published.duplicate })
    }

    /// The durable message `seq` of a stream.
    pub fn get(&self, stream: &str, seq: u64) -> R<StoredMessage> {
        Ok(self.read(|e| e.get(stream, seq))??)
    }

    /// The last durable message on `subject` (a literal subject) in a stream.
    pub fn last(&self, stream: &str, subject: &str) -> R<StoredMessage> {
        Ok(self.read(|e| e.last_by_subject(stream, subject))??)
    }

    /// Deletes messages (all; those matching `purge.subject`; those below `purge.below_seq`);
    /// returns how many, once durable. Sequence numbers are never reused.
    pub fn purge(&self, stream: &str, purge: &Purge) -> R<u64> {
        self.command(|e, now, store| e.purge(now, store, stream, purge))
    }

    /// Adds a durable consumer to a stream.
    pub fn add_consumer(&self, stream: &str, config: ConsumerConfig) -> R<ConsumerInfo> {
        let name = config.name.clone();
        self.command(|e, now, store| e.add_consumer(now, store, stream, config).map(|t| (t, ())))?;
        self.consumer_info(stream, &name)
    }

    /// Deletes a consumer (its waiting fetches end).
    pub fn delete_consumer(&self, stream: &str, consumer: &str) -> R<()> {
        self.command(|e, now, store| e.delete_consumer(now, store, stream, consumer).map(|t| (t, ())))
    }

    /// A consumer's configuration and state.
    pub fn consumer_info(&self, stream: &str, consumer: &str) -> R<ConsumerInfo> {
        Ok(self.read(|e| e.consumer_info(stream, consumer))??)
    }

    /// The names of a stream's consumers, in order.
    pub fn consumer_names(&self, stream: &str) -> R<Vec<String>> {
        Ok(self.read(|e| e.consumer_names(stream))??)
    }

    /// Pulls up to `batch` messages for a consumer: redeliveries first, then new messages in
    /// sequence order. Returns when the batch is full or `expires` has passed (at once with
    /// what is available for `Duration::ZERO`). Only durable messages are delivered.
    pub fn fetch(&self, stream: &str, consumer: &str, batch: usize, expires: Duration) -> R<Vec<Delivery>> {
        let expires_ms = u64::try_from(expires.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now().checked_add(expires);
        let fetch = self.shared().with_state(|st| {
            let now = Shared::exec_now_ms();
            let State { store, side, .. } = st;
            let Some(engine) = side.engine.as_mut() else { return Err(StreamsError::Db(Error::Closed)) };
            let f = engine.fetch(now, store, stream, consumer, batch, expires_ms)?;
            side.fetches.insert(f, FetchSlot::default());
            Ok(f)
        })??;
        let fire = |st: &mut State| {
            let State { store, side, .. } = st;
            if let Some(e) = side.engine.as_mut() {
                e.handle_timeout(Shared::exec_now_ms(), store);
            }
        };
        let ended = |st: &mut State| match st.side.fetches.get(&fetch) {
            Some(slot) if slot.ended.is_none() => None,
            _ => st.side.fetches.remove(&fetch),
        };
        let mut slot = self.shared().wait_for(deadline, ended, fire)?;
        if slot.is_none() {
            slot = self.shared().wait_for(Some(Instant::now() + FETCH_GRACE), ended, fire)?;
        }
        // Still not ended (the wall clock went back): what arrives later is redelivered after
        // the ack wait.
        let slot = match slot {
            Some(s) => s,
            None => self.shared().with_state(|st| st.side.fetches.remove(&fetch))?.unwrap_or_default(),
        };
        Ok(slot.messages)
    }

    /// Acknowledges delivery `seq` (with `AckPolicy::All`, every earlier delivery too); returns
    /// once the consumer's state is durable.
    pub fn ack(&self, stream: &str, consumer: &str, seq: u64) -> R<()> {
        self.answer(stream, consumer, seq, AckKind::Ack)
    }

    /// Asks for delivery `seq` again as soon as possible.
    pub fn nak(&self, stream: &str, consumer: &str, seq: u64) -> R<()> {
        self.answer(stream, consumer, seq, AckKind::Nak)
    }

    /// Never delivers `seq` to this consumer again.
    pub fn term(&self, stream: &str, consumer: &str, seq: u64) -> R<()> {
        self.answer(stream, consumer, seq, AckKind::Term)
    }

    fn answer(&self, stream: &str, consumer: &str, seq: u64, kind: AckKind) -> R<()> {
        self.command(|e, now, store| e.ack(now, store, stream, consumer, seq, kind).map(|t| (t, ())))
    }

    /// Messages given up at a consumer's `max_deliver` since the database opened.
    pub fn max_deliveries_reached(&self) -> R<u64> {
        Ok(self.shared().with_state(|st| st.side.max_deliveries)?)
    }
}
