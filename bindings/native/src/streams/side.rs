//! The stream engine's place in the driver: the engine itself, and the tables through which its
//! events reach the threads waiting for them.
//!
//! Everything here lives in the driver's `State`, under the store's lock. The driver routes
//! every store reply through [`StreamSide::handle_reply`] (false: not the engine's) and, after
//! draining the store, calls [`StreamSide::drain`], which files the engine's events:
//!
//! * `Completed` for a ticket a caller waits for goes to `done`; for a captured publish with a
//!   reply subject, the JetStream-style publish acknowledgement goes to the ack thread (it is
//!   published into the broker there, never under the store's lock); other tickets are dropped.
//! * `Messages` and `FetchEnded` go to the fetch's slot (every fetch has a waiting caller).
//! * `MaxDeliveries` is counted.
use super::capture::CaptureItem;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use strata_engine::lsm::error::Error as StoreError;
use strata_engine::lsm::store::{ReqId, Reply, Store};
use strata_engine::stream::{
    Delivery, Event, FetchEnd, FetchId, OpenError, PublishError, Published, Streams as Engine, Ticket,
};

/// A JetStream-style acknowledgement on its way to a reply subject.
pub(crate) type AckOut = (Arc<str>, Vec<u8>);

/// What one fetch has received so far.
#[derive(Debug, Default)]
pub(crate) struct FetchSlot {
    pub(crate) messages: Vec<Delivery>,
    pub(crate) ended: Option<FetchEnd>,
}

/// The engine and its routing tables (see the module docs).
#[derive(Default)]
pub(crate) struct StreamSide {
    pub(crate) engine: Option<Engine>,
    pub(crate) opened: Option<Result<(), OpenError>>,
    /// Tickets a caller waits for.
    pub(crate) waited: HashSet<Ticket>,
    /// Their completions.
    pub(crate) done: HashMap<Ticket, Result<(), StoreError>>,
    pub(crate) fetches: HashMap<FetchId, FetchSlot>,
    /// Results of captured publishes a caller waits for, by capture id.
    pub(crate) captured: HashMap<u64, Result<Published, PublishError>>,
    /// Captured publishes whose completion is acknowledged on a reply subject.
    acks: HashMap<Ticket, (Arc<str>, Published)>,
    /// To the ack thread (`None` once the database closes).
    pub(crate) ack_out: Option<Sender<AckOut>>,
    /// Messages given up at a consumer's `max_deliver`.
    pub(crate) max_deliveries: u64,
    /// The engine deadline the background thread sleeps until (`None`: it sleeps without one).
    pub(crate) planned: Option<u64>,
    /// Messages the capture client received, waiting for the engine.
    pub(crate) queue: Option<Arc<super::capture::CaptureQueue>>,
}

impl StreamSide {
    /// Feeds a store reply to the engine; false when the request is not the engine's.
    pub(crate) fn handle_reply(&mut self, now_ms: u64, store: &mut Store, id: ReqId, result: &Result<Reply, StoreError>) -> bool {
        match self.engine.as_mut() {
            Some(e) => e.handle_store_reply(now_ms, store, id, result),
            None => false,
        }
    }

    /// Files the engine's events; true when a waiting thread (or the background thread, for a
    /// new earlier deadline) should wake.
    pub(crate) fn drain(&mut self) -> bool {
        if self.engine.is_none() {
            return false;
        }
        let mut wake = false;
        while let Some(ev) = self.engine.as_mut().and_then(Engine::poll) {
            match ev {
                Event::Opened(r) => {
                    self.opened = Some(r);
                    wake = true;
                }
                Event::Completed { ticket, result } => {
                    if self.waited.remove(&ticket) {
                        self.done.insert(ticket, result);
                        wake = true;
                    } else if let Some((reply, p)) = self.acks.remove(&ticket) {
                        let body = match result {
                            Ok(()) => pub_ack_json(&p),
                            Err(e) => error_json(503, &e.to_string()),
                        };
                        self.send_ack(reply, body);
                    }
                }
                Event::Messages { fetch, mut messages } => {
                    if let Some(slot) = self.fetches.get_mut(&fetch) {
                        slot.messages.append(&mut messages);
                        wake = true;
                    }
                }
                Event::FetchEnded { fetch, reason, .. } => {
                    if let Some(slot) = self.fetches.get_mut(&fetch) {
                        slot.ended = Some(reason);
                        wake = true;
                    }
                }
                Event::MaxDeliveries { .. } => self.max_deliveries += 1,
            }
        }
        let next = self.engine.as_ref().and_then(Engine::next_deadline);
        if next.is_some() && (self.planned.is_none() || next < self.planned) {
            wake = true;
        }
        wake
    }

    /// Hands captured publishes (in broker order) to the engine.
    pub(crate) fn capture(&mut self, now_ms: u64, store: &mut Store, items: impl IntoIterator<Item = CaptureItem>) {
        for item in items {
            let r = match self.engine.as_mut() {
                Some(e) => e.publish(now_ms, store, &item.subject, item.msg_id.as_deref(), &item.payload),
                None => continue,
            };
            if let Some(reply) = item.reply {
                match &r {
                    Ok(p) => {
                        self.acks.insert(p.ticket, (reply, p.clone()));
                    }
                    Err(e) => self.send_ack(reply, error_json(publish_error_code(e), &e.to_string())),
                }
            }
            if let Some(id) = item.waiter {
                if let Ok(p) = &r {
                    self.waited.insert(p.ticket);
                }
                self.captured.insert(id, r);
            }
        }
    }

    fn send_ack(&mut self, reply: Arc<str>, body: String) {
        if let Some(tx) = &self.ack_out {
            // The receiver is gone only while closing.
            let _ = tx.send((reply, body.into_bytes()));
        }
    }
}

/// JetStream's publish acknowledgement: `{"stream":"S","seq":N}` (`"duplicate":true` for a
/// duplicate message id).
pub(crate) fn pub_ack_json(p: &Published) -> String {
    let dup = if p.duplicate { ",\"duplicate\":true" } else { "" };
    format!("{{\"stream\":{},\"seq\":{}{dup}}}", json_string(&p.stream), p.seq)
}

/// JetStream's error reply: `{"error":{"code":C,"description":"..."}}`.
pub(crate) fn error_json(code: u16, description: &str) -> String {
    format!("{{\"error\":{{\"code\":{code},\"description\":{}}}}}", json_string(description))
}

fn publish_error_code(e: &PublishError) -> u16 {
    match e {
        PublishError::Unavailable(_) => 503,
        PublishError::NoStream(_) => 404,
        _ => 400,
    }
}

/// `s` as a JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_jetstream_json() {
        let p = Published { ticket: Ticket(1), stream: "ORDERS".into(), seq: 7, ts_ms: 1, duplicate: false };
        assert_eq!(pub_ack_json(&p), r#"{"stream":"ORDERS","seq":7}"#);
        let p = Published { duplicate: true, ..p };
        assert_eq!(pub_ack_json(&p), r#"{"stream":"ORDERS","seq":7,"duplicate":true}"#);
        assert_eq!(error_json(400, "bad \"x\"\n"), r#"{"error":{"code":400,"description":"bad \"x\"\n"}}"#);
        assert_eq!(json_string("\u{1}"), "\"\\u0001\"");
    }
}
