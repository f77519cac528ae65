//! One TCP connection: a reader thread that parses client operations and feeds the broker, and
//! a writer thread that is the only one to write to the socket.
//!
//! The writer sleeps on the connection's broker-client wake-up (under the hub's lock). Each
//! round it takes the deliveries queued for the connection (all of them when control frames
//! are waiting, so a `PONG` never overtakes a message routed before its `PING`), then the control
//! frames (`INFO`, `PONG`, `+OK`, `-ERR`) the reader queued, encodes them into one buffer and
//! writes it with one `write_all`. Whatever the client does not read stays in the broker's
//! queue for it, bounded by the broker's pending limits (beyond them messages are dropped and
//! counted, as for any slow consumer).
//!
//! Lock order: the hub's lock, then a connection's `ctrl` lock; the socket is written with
//! neither held.
use crate::pubsub::{Hub, HubState, MessagingError};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use strata_engine::broker::{ClientId, Delivery, Sid, UnsubscribeError};
use strata_engine::wire::{self, ClientOp, ConnectOptions, Limits};

/// Deliveries moved per writer round when no control frame waits.
const WRITE_BATCH: usize = 1024;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

struct ConnShared {
    /// Control frames waiting for the writer.
    ctrl: Mutex<Vec<u8>>,
    /// The reader is done: the writer sends what control frames remain and stops.
    closing: AtomicBool,
    /// The client said `"headers":true` in `CONNECT`: messages with headers go out as `HMSG`
    /// (to other clients their headers are dropped, as NATS does).
    headers: AtomicBool,
}

/// Serves one accepted connection until it closes; runs on the calling thread.
pub(crate) fn serve_connection(hub: Arc<Hub>, stream: TcpStream, limits: Limits, info: Vec<u8>) {
    // INFO goes out before anything else can be queued for the connection.
    if (&stream).write_all(&info).is_err() {
        return;
    }
    let Ok((client, waker)) = hub.connect() else { return };
    let shared = Arc::new(ConnShared { ctrl: Mutex::new(Vec::new()), closing: AtomicBool::new(false), headers: AtomicBool::new(false) });
    let writer = match stream.try_clone() {
        Ok(out) => {
            let (hub, shared, waker) = (hub.clone(), shared.clone(), waker.clone());
            std::thread::Builder::new()
                .name("strata-conn-writer".into())
                .spawn(move || write_loop(&hub, client, &waker, &shared, out))
                .ok()
        }
        Err(_) => None,
    };
    if writer.is_some() {
        read_loop(&hub, client, &waker, &shared, &stream, &limits);
    }
    {
        let _st = hub.lock();
        shared.closing.store(true, Ordering::SeqCst);
        waker.notify_all();
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let _ = stream.shutdown(Shutdown::Both);
    hub.disconnect(client);
}

fn lock_ctrl(shared: &ConnShared) -> std::sync::MutexGuard<'_, Vec<u8>> {
    shared.ctrl.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_loop(hub: &Hub, client: ClientId, waker: &Condvar, shared: &ConnShared, mut stream: &TcpStream, limits: &Limits) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut opts = ConnectOptions::default();
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let now = hub.now_ms();
        let mut st = hub.lock();
        let mut at = 0;
        let mut fatal = false;
        let mut wrote_ctrl = false;
        loop {
            match wire::parse_client_op(&buf[at..], limits) {
                Ok(Some((op, used))) => {
                    at += used;
                    wrote_ctrl |= handle(&mut st, now, client, shared, op, &mut opts);
                }
                Ok(None) => break,
                Err(e) => {
                    wire::encode_err(&mut lock_ctrl(shared), &e.to_string());
                    wrote_ctrl = true;
                    fatal = true;
                    break;
                }
            }
        }
        if st.closed {
            fatal = true;
        }
        st.dispatch();
        if wrote_ctrl {
            waker.notify_all();
        }
        drop(st);
        hub.flush_capture();
        buf.drain(..at);
        if fatal {
            return;
        }
    }
}

/// Carries out one operation; true when it queued a control frame.
fn handle(st: &mut HubState, now: u64, client: ClientId, shared: &ConnShared, op: ClientOp<'_>, opts: &mut ConnectOptions) -> bool {
    let mut status = false;
    let err = match op {
        ClientOp::Connect(o) => {
            *opts = o;
            shared.headers.store(o.headers, Ordering::SeqCst);
            None
        }
        ClientOp::Pub { subject, reply, payload } => {
            publish(st, now, client, shared, opts, subject, reply, None, payload, &mut status)
        }
        ClientOp::HPub { subject, reply, headers, payload } => {
            publish(st, now, client, shared, opts, subject, reply, Some(headers), payload, &mut status)
        }
        ClientOp::Sub { subject, queue, sid } => st
            .broker
            .handle_subscribe(now, client, Sid(sid), subject, queue)
            .err()
            .map(|e| format!("Invalid Subscription: {}", MessagingError::from_subscribe(e))),
        ClientOp::Unsub { sid, max } => match st.broker.handle_unsubscribe(now, client, Sid(sid), max) {
            // As NATS: unsubscribing an unknown sid is not an error.
            Ok(()) | Err(UnsubscribeError::UnknownSid(_)) => None,
            Err(e) => Some(format!("Unsubscribe: {e:?}")),
        },
        ClientOp::Ping => {
            lock_ctrl(shared).extend_from_slice(wire::PONG);
            return true;
        }
        ClientOp::Pong => return false,
    };
    match err {
        Some(e) => {
            wire::encode_err(&mut lock_ctrl(shared), &e);
            true
        }
        None if opts.verbose => {
            lock_ctrl(shared).extend_from_slice(wire::OK);
            true
        }
        None => status,
    }
}

/// Publishes; a request (reply subject) that matched nobody gets NATS's "no responders" status
/// on the client's own subscription to the reply subject, when the client asked for it. Returns
/// the error to report; `status` is set when the status was queued.
#[allow(clippy::too_many_arguments)]
fn publish(
    st: &mut HubState,
    now: u64,
    client: ClientId,
    shared: &ConnShared,
    opts: &ConnectOptions,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
    status: &mut bool,
) -> Option<String> {
    match st.broker.handle_publish_with_headers(now, client, subject, reply, headers, payload) {
        Ok(out) => {
            if let (0, Some(reply), true, true) = (out.matched, reply, opts.headers, opts.no_responders) {
                if let Some(sid) = st.broker.subscription_matching(client, reply) {
                    wire::encode_hmsg(&mut lock_ctrl(shared), reply, sid.0, None, wire::NO_RESPONDERS_HEADERS, b"");
                    *status = true;
                }
            }
            None
        }
        Err(e) => Some(format!("Invalid Publish: {}", MessagingError::from_publish(e))),
    }
}

fn write_loop(hub: &Hub, client: ClientId, waker: &Condvar, shared: &ConnShared, mut stream: TcpStream) {
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(WRITE_BATCH);
    let mut ctrl: Vec<u8> = Vec::new();
    let mut frame: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        let mut last = false;
        {
            let mut st = hub.lock();
            loop {
                let closing = shared.closing.load(Ordering::SeqCst) || st.closed;
                let ctrl_waiting = !lock_ctrl(shared).is_empty();
                if !closing {
                    let max = if ctrl_waiting { usize::MAX } else { WRITE_BATCH };
                    while deliveries.len() < max {
                        match st.broker.poll_delivery(client) {
                            Some(d) => deliveries.push(d),
                            None => break,
                        }
                    }
                }
                if ctrl_waiting {
                    ctrl.append(&mut lock_ctrl(shared));
                }
                if closing {
                    last = true;
                    break;
                }
                if !deliveries.is_empty() || !ctrl.is_empty() {
                    break;
                }
                st = hub.wait(st, client, waker, None);
            }
        }
        // Control frames were taken after the deliveries: write the deliveries first.
        frame.clear();
        let headers = shared.headers.load(Ordering::SeqCst);
        for d in deliveries.drain(..) {
            if let Delivery::Message { sid, message } = d {
                match (&message.headers, headers) {
                    (Some(h), true) => {
                        wire::encode_hmsg(&mut frame, &message.subject, sid.0, message.reply.as_deref(), h, &message.payload)
                    }
                    _ => wire::encode_msg(&mut frame, &message.subject, sid.0, message.reply.as_deref(), &message.payload),
                }
            }
        }
        frame.append(&mut ctrl);
        if stream.write_all(&frame).is_err() || last {
            let _ = stream.flush();
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}
