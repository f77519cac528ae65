//! Poll-based event handles: [`Watch`] (revision watch on keys) and [`Subscription`] (the
//! engine's publish/subscribe broker), and the broker as the `Db` holds it.
//!
//! JavaScript on one thread cannot block waiting for an event, so both handles queue what
//! arrives and `poll()` hands over everything queued since the last poll.
use super::js::{bytes_out, error, error_with, set};
use super::Shared;
use std::cell::RefCell;
use std::rc::Rc;
use strata_engine::broker::{Broker as EngineBroker, BrokerConfig, ClientId, Delivery, Event, Sid};
use strata_engine::mvcc::revision::Kv;
use strata_engine::mvcc::watch::{EventKind, WatchId, WatchResponse};
use wasm_bindgen::prelude::*;

/// The broker of one `Db`: the engine's state machine and the client that publishes.
pub(crate) struct Broker {
    broker: EngineBroker,
    publisher: ClientId,
}

impl Broker {
    pub(crate) fn new() -> Broker {
        let mut broker = EngineBroker::new(BrokerConfig::default());
        let publisher = broker.handle_connect(0);
        Broker { broker, publisher }
    }

    /// Publishes; returns the deliveries queued.
    pub(crate) fn publish(&mut self, subject: &str, payload: &[u8]) -> Result<u32, JsValue> {
        let now = super::js::now_ms();
        let out = self
            .broker
            .handle_publish(now, self.publisher, subject, None, payload)
            .map_err(|e| error_with("SUBJECT", &format!("publish on {subject:?}: {e}"), &[]))?;
        self.drain_events();
        Ok(u32::try_from(out.queued).unwrap_or(u32::MAX))
    }

    /// Broker-wide events: subscribers pull their queues in `poll`, so `Deliverable` needs no
    /// action; a `SlowConsumer` is counted on the subscription by the broker's drops.
    fn drain_events(&mut self) {
        while let Some(e) = self.broker.poll_event() {
            match e {
                Event::Deliverable { .. } | Event::SlowConsumer { .. } => {}
            }
        }
    }
}

/// A subscription to a subject pattern. Messages queue in the broker (at most 65,536 or
/// 64 MiB; past that they are dropped) until `poll()`.
#[wasm_bindgen]
pub struct Subscription {
    broker: Rc<RefCell<Broker>>,
    client: Option<ClientId>,
    pattern: String,
}

impl Subscription {
    pub(crate) fn new(broker: Rc<RefCell<Broker>>, pattern: &str, queue: Option<&str>) -> Result<Subscription, JsValue> {
        let client = {
            let mut b = broker.borrow_mut();
            let now = super::js::now_ms();
            let client = b.broker.handle_connect(now);
            if let Err(e) = b.broker.handle_subscribe(now, client, Sid(1), pattern, queue) {
                let _ = b.broker.handle_disconnect(now, client);
                return Err(error_with("SUBJECT", &format!("subscribe to {pattern:?}: {e}"), &[]));
            }
            b.drain_events();
            client
        };
        Ok(Subscription { broker, client: Some(client), pattern: pattern.to_string() })
    }
}

#[wasm_bindgen]
impl Subscription {
    /// The pattern subscribed to.
    #[wasm_bindgen(getter)]
    pub fn pattern(&self) -> String {
        self.pattern.clone()
    }

    /// The messages that arrived since the last poll: `[{subject, payload: Uint8Array}]`.
    pub fn poll(&self) -> Result<js_sys::Array, JsValue> {
        let client = self.client.ok_or_else(|| error_with("CLOSED", "the subscription is closed", &[]))?;
        let out = js_sys::Array::new();
        let mut b = self.broker.borrow_mut();
        while let Some(d) = b.broker.poll_delivery(client) {
            if let Delivery::Message { message, .. } = d {
                let o = js_sys::Object::new();
                set(&o, "subject", &JsValue::from_str(&message.subject));
                set(&o, "payload", &bytes_out(&message.payload));
                out.push(&o);
            }
        }
        b.drain_events();
        Ok(out)
    }

    /// Unsubscribes (messages not yet polled are dropped). Closing twice is harmless.
    pub fn close(&mut self) {
        if let Some(c) = self.client.take() {
            let mut b = self.broker.borrow_mut();
            let _ = b.broker.handle_disconnect(super::js::now_ms(), c);
            b.drain_events();
        }
    }
}

/// A revision watch: every change to the watched keys, one batch per revision, in revision
/// order, exactly once, each event with the key's previous state. A watcher that falls far
/// behind is caught up from history on the next poll; if that history was compacted, `poll`
/// throws `COMPACTED` and the watch ends.
#[wasm_bindgen]
pub struct Watch {
    shared: Shared,
    id: Option<WatchId>,
}

impl Watch {
    pub(crate) fn new(shared: Shared, id: WatchId) -> Watch {
        Watch { shared, id: Some(id) }
    }
}

#[wasm_bindgen]
impl Watch {
    /// What changed since the last poll: `[{revision: BigInt, events: [{type: "put" |
    /// "delete", key, value?, prev?: {value, revision}}]}]`.
    pub fn poll(&mut self) -> Result<js_sys::Array, JsValue> {
        let id = self.id.ok_or_else(|| error_with("CLOSED", "the watch is closed", &[]))?;
        let responses = {
            let mut guard = self.shared.borrow_mut();
            let core = guard.as_mut().ok_or_else(|| error(&super::core::DbError::Closed))?;
            core.watch_poll(id).map_err(|e| error(&e))?
        };
        let out = js_sys::Array::new();
        for r in responses {
            match r {
                WatchResponse::Events { revision, events } => {
                    let batch = js_sys::Object::new();
                    set(&batch, "revision", &JsValue::from(revision.0));
                    let list = js_sys::Array::new();
                    for e in events {
                        let o = js_sys::Object::new();
                        let kind = if e.kind == EventKind::Put { "put" } else { "delete" };
                        set(&o, "type", &JsValue::from_str(kind));
                        set(&o, "key", &bytes_out(&e.kv.key));
                        if e.kind == EventKind::Put {
                            set(&o, "value", &bytes_out(&e.kv.value));
                        }
                        if let Some(p) = &e.prev {
                            set(&o, "prev", &kv_out(p));
                        }
                        list.push(&o);
                    }
                    set(&batch, "events", &list);
                    out.push(&batch);
                }
                WatchResponse::Compacted { requested, compacted } => {
                    self.close();
                    return Err(error(&super::core::DbError::Compacted { requested: requested.0, compacted: compacted.0 }));
                }
            }
        }
        Ok(out)
    }

    /// Ends the watch. Closing twice is harmless.
    pub fn close(&mut self) {
        if let Some(id) = self.id.take() {
            if let Some(core) = self.shared.borrow_mut().as_mut() {
                core.watch_cancel(id);
            }
        }
    }
}

fn kv_out(kv: &Kv) -> JsValue {
    let o = js_sys::Object::new();
    set(&o, "value", &bytes_out(&kv.value));
    set(&o, "revision", &JsValue::from(kv.mod_revision.0));
    o.into()
}
