//! # strata-engine — the pure core of Strata
//!
//! This crate performs no I/O, reads no clock, starts no thread and draws no ambient randomness
//! (see `DESIGN.md` §2). It is a set of deterministic state machines: a binding feeds them inputs
//! (requests, I/O completions, the time) and carries out their outputs (I/O requests, replies).
//!
//! * [`lsm`] — the LSM key-value store: WAL, memtable, SSTables, manifest, compaction, reads.
//!
//! The same inputs always produce the same outputs, byte for byte, so a `sim` binding can replay
//! any run from its seed and a `native` binding can serve real files with the same code.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;

pub mod lsm;
