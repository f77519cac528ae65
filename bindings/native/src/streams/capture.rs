//! How streams capture messages published through the broker (JetStream's model: any publish
//! on a subject a stream captures is stored).
//!
//! The streams are one broker client, the *capture client*, subscribed to every pattern of
//! every stream (patterns of different streams never overlap, so a message matches at most
//! one subscription of it). Because it is an ordinary subscriber, a request on a captured
//! subject has a responder (the stream's acknowledgement), as in NATS.
//!
//! * Under the hub's lock, whenever the broker reports the capture client deliverable,
//!   [`HubState::dispatch`](crate::pubsub::HubState::dispatch) moves its messages, in broker
//!   order, into the shared [`CaptureQueue`].
//! * After releasing the hub's lock, the publishing thread calls
//!   [`Hub::flush_capture`](crate::pubsub::Hub::flush_capture): under the store's lock it takes
//!   the whole queue, in order, and hands it to the engine. Whoever flushes first submits every
//!   queued message, so the engine sees them in broker order.
//! * Lock order: the hub's lock and the store's lock are never held together; the queue's own
//!   lock is taken briefly under either.
//!
//! A plain publish does not wait for the write. A publish with a reply subject is answered on
//! it, once durable, with `{"stream":"S","seq":N}` (or an error object), by the ack thread.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use strata_engine::broker::{ClientId, Message};

/// A message the capture client received.
#[derive(Debug)]
pub(crate) struct CaptureItem {
    pub(crate) subject: Arc<str>,
    pub(crate) reply: Option<Arc<str>>,
    pub(crate) payload: Arc<[u8]>,
    pub(crate) msg_id: Option<String>,
    /// The capture id a caller waits on ([`crate::Streams::publish`]).
    pub(crate) waiter: Option<u64>,
}

impl CaptureItem {
    /// The message's `Nats-Msg-Id` header, if any, becomes its message id (JetStream's
    /// deduplication).
    pub(crate) fn from_message(m: Message) -> CaptureItem {
        let msg_id = m.headers.as_deref().and_then(|h| strata_engine::wire::header(h, "Nats-Msg-Id")).filter(|id| !id.is_empty()).map(str::to_owned);
        CaptureItem { subject: m.subject, reply: m.reply, payload: m.payload, msg_id, waiter: None }
    }
}

/// Messages captured and not yet handed to the engine.
#[derive(Debug, Default)]
pub(crate) struct CaptureQueue {
    items: Mutex<VecDeque<CaptureItem>>,
    len: AtomicUsize,
}

impl CaptureQueue {
    pub(crate) fn push(&self, item: CaptureItem) {
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back(item);
        self.len.store(q.len(), Ordering::Release);
    }

    /// Takes everything queued.
    pub(crate) fn take(&self) -> VecDeque<CaptureItem> {
        let mut q = self.items.lock().unwrap_or_else(|p| p.into_inner());
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut *q)
    }

    /// Cheap check without the lock.
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

/// The capture client as the hub knows it.
#[derive(Debug)]
pub(crate) struct CaptureHook {
    pub(crate) client: ClientId,
    pub(crate) queue: Arc<CaptureQueue>,
}
