//! # strata-engine — the pure core of Strata
//!
//! This crate performs no I/O, reads no clock, starts no thread and draws no ambient randomness
//! (see `DESIGN.md` §2). It is a set of deterministic state machines: a binding feeds them inputs
//! (requests, I/O completions, the time) and carries out their outputs (I/O requests, replies).
//!
//! * [`lsm`] — the LSM key-value store: WAL, memtable, SSTables, manifest, compaction, reads.
//! * [`mvcc`] — Percolator transactions as pure functions over a snapshot: key layout, records,
//!   the timestamp oracle, the commands.
//! * [`subject`] — NATS-style subjects and patterns, and the subscription index (a token trie).
//! * [`broker`] — the publish/subscribe broker state machine: clients, subscriptions, queue
//!   groups, request/reply, per-subscriber pending limits.
//! * [`stream`] — persistent streams and durable consumers (JetStream's model) stored in the
//!   LSM under the `s` key namespace; publishes and acks acknowledged after durability.
//! * [`node`] — the replicated node: the store behind Raft (wire types, log commands, apply,
//!   the durable Raft log).
//! * [`wire`] — the NATS client text protocol (the subset Strata's server speaks): incremental
//!   parsers for both directions and encoders.
//!
//! The same inputs always produce the same outputs, byte for byte, so a `sim` binding can replay
//! any run from its seed and a `native` binding can serve real files with the same code.
//!
//! # Driving the store
//!
//! A binding is a loop: drain outputs, carry them out, feed back the results. Here is a whole
//! binding whose "disk" is a map in memory (the `sim` and `native` crates do the same with
//! fault injection and with real files):
//!
//! ```
//! use std::collections::BTreeMap;
//! use strata_engine::lsm::batch::Batch;
//! use strata_engine::lsm::config::Config;
//! use strata_engine::lsm::io::{FileName, IoRequest, IoResult};
//! use strata_engine::lsm::job::JobStep;
//! use strata_engine::lsm::store::{Output, Reply, Request, Store};
//!
//! let mut files: BTreeMap<FileName, Vec<u8>> = BTreeMap::new();
//! let mut disk = |req: IoRequest, files: &mut BTreeMap<FileName, Vec<u8>>| match req {
//!     IoRequest::List => IoResult::Listed(files.keys().copied().collect()),
//!     IoRequest::Read { file, offset, len } => {
//!         let f = &files[&file];
//!         let start = (offset as usize).min(f.len());
//!         IoResult::Data(f[start..(start + len as usize).min(f.len())].to_vec())
//!     }
//!     IoRequest::ReadAll { file } => IoResult::Data(files[&file].clone()),
//!     IoRequest::Append { file, data } => { files.entry(file).or_default().extend(data); IoResult::Done }
//!     IoRequest::Sync { .. } => IoResult::Done,
//!     IoRequest::Truncate { file, len } => { files.get_mut(&file).map(|f| f.truncate(len as usize)); IoResult::Done }
//!     IoRequest::Delete { file } => { files.remove(&file); IoResult::Done }
//! };
//!
//! // Runs the store until it has nothing to do; returns the replies.
//! let mut run = |store: &mut Store, files: &mut BTreeMap<FileName, Vec<u8>>| {
//!     let mut replies = Vec::new();
//!     while let Some(out) = store.poll() {
//!         match out {
//!             Output::Io { id, req } => { let r = disk(req, files); store.handle_io(0, id, r) }
//!             Output::Job(mut job) => {
//!                 loop {
//!                     match job.step() {
//!                         JobStep::Read { file, offset, len } => {
//!                             let f = &files[&file];
//!                             job.handle_read(Ok(f[offset as usize..(offset + len) as usize].to_vec()));
//!                         }
//!                         JobStep::WriteFile { file, data } => { files.insert(file, data); job.handle_write(Ok(())) }
//!                         JobStep::Done => break,
//!                     }
//!                 }
//!                 store.handle_job(0, job);
//!             }
//!             Output::Reply { result, .. } => replies.push(result),
//!             Output::Opened(r) => r.expect("recovery"),
//!         }
//!     }
//!     replies
//! };
//!
//! let mut store = Store::open(Config::default());
//! run(&mut store, &mut files);                                   // recovery: a new store
//! let mut batch = Batch::new();
//! batch.put(b"hello", b"world");
//! store.submit(0, Request::Write(batch));                       // appended and synced ...
//! assert!(matches!(run(&mut store, &mut files)[..], [Ok(Reply::Written { seq: 1 })]));
//! store.submit(0, Request::Flush);                              // ... and flushed to an SST
//! run(&mut store, &mut files);
//!
//! // Reopen from the same files: recovery finds the data.
//! let mut store = Store::open(Config::default());
//! run(&mut store, &mut files);
//! store.submit(0, Request::Get { key: b"hello".to_vec(), snapshot: None });
//! assert_eq!(run(&mut store, &mut files), [Ok(Reply::Value(Some(b"world".to_vec())))]);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;

pub mod broker;
pub mod lsm;
pub mod mvcc;
pub mod node;
pub mod stream;
pub mod subject;
pub mod wire;
