//! A TCP server speaking a subset of the NATS client protocol over a [`Db`]'s broker.
//!
//! `strata serve` runs one; tests and benchmarks start one in-process with [`Server::start`].
//! NATS clients can connect: the server sends `INFO` (with `"headers":true` and its
//! `max_payload`), then accepts `CONNECT` (`verbose`, `headers` and `no_responders` are
//! honoured), `PUB`, `HPUB`, `SUB` (with queue groups), `UNSUB` (with a message count), `PING`
//! and `PONG`, and sends `MSG`, `HMSG` (to clients that asked for headers), `PING`/`PONG`,
//! `+OK` (verbose mode) and `-ERR '<reason>'`.
//!
//! * A malformed operation (unknown name, wrong arguments, a control line over 4 KiB, a
//!   payload over the maximum announced before it is read, a payload not ended by `\r\n`,
//!   header bytes over the total) gets `-ERR` with the reason and the connection is closed, as
//!   NATS does.
//! * A refused operation (invalid subject or pattern, wildcard in a publish subject, invalid
//!   queue name) gets `-ERR` with the reason and the connection stays open.
//! * Every connection is one broker client with a reader and a writer thread (`conn`), so
//!   the broker's pending limits bound what a slow reader can hold in memory.
//! * Requests over TCP are NATS-style (subscribe to an inbox, publish with it as reply
//!   subject). A request nobody listens to gets NATS's "no responders" status (`HMSG` with
//!   `NATS/1.0 503`) on the requester's inbox subscription when its `CONNECT` asked for it.
//! * On a versioned [`Db`], publishes on subjects captured by its streams are stored, and
//!   requests on them are answered with JetStream's publish acknowledgement
//!   ([`crate::streams`]).
//! * Publishers see their own messages when subscribed (NATS's `echo`, always on here).
mod conn;

use crate::db::Db as RawDb;
use crate::Db;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use strata_engine::wire::{self, Limits};

/// A running server; [`Server::shutdown`] (or drop) stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `addr` (port 0 picks a free port: see [`Server::local_addr`]) and serves the
    /// broker of `db` until shut down. Payloads are limited by the broker's
    /// `max_payload_bytes`.
    pub fn start(db: &Db, addr: impl ToSocketAddrs) -> io::Result<Server> {
        Server::start_raw(db.raw(), addr)
    }

    /// [`Server::start`] for an unversioned [`raw::Db`](crate::raw::Db).
    pub fn start_raw(db: &RawDb, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let hub = db.hub().clone();
        let max_payload = hub.lock().broker.config().max_payload_bytes;
        let limits = Limits { max_payload, ..Limits::default() };
        let mut info = Vec::new();
        let id = format!("strata-{}-{}", std::process::id(), addr.port());
        wire::encode_info(&mut info, &id, env!("CARGO_PKG_VERSION"), &addr.ip().to_string(), addr.port(), max_payload);
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let (stop2, conns2, db) = (stop.clone(), conns.clone(), db.clone());
        let accept = std::thread::Builder::new().name("strata-accept".into()).spawn(move || {
            let mut next = 0u64;
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                next += 1;
                let id = next;
                if let Ok(clone) = stream.try_clone() {
                    conns2.lock().unwrap_or_else(|p| p.into_inner()).insert(id, clone);
                }
                let (hub, info, conns3, db) = (hub.clone(), info.clone(), conns2.clone(), db.clone());
                let spawned = std::thread::Builder::new().name("strata-conn".into()).spawn(move || {
                    conn::serve_connection(hub, stream, limits, info);
                    conns3.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    drop(db);
                });
                if spawned.is_err() {
                    conns2.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                }
            }
        })?;
        Ok(Server { addr, stop, accept: Some(accept), conns })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the server stops (it stops only at [`Server::shutdown`] from another
    /// handle, so this is "serve forever").
    pub fn wait(mut self) {
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for (_, s) in self.conns.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_now();
        }
    }
}
