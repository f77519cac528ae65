//! # strata-sim — a deterministic world for Strata's core
//!
//! The simulated binding: an in-memory disk that knows what is durable and injects faults
//! ([`disk::SimDisk`]), a driver that runs a store over it ([`store::SimStore`]), one that
//! runs the MVCC executor beside it ([`mvcc::SimMvcc`]), one that runs the stream engine over
//! such a store ([`stream::SimStreams`]), a network that drops, duplicates, delays and
//! partitions ([`net::SimNet`]), and a linearizability checker for client histories
//! ([`lincheck::check`]), and the cluster world ([`cluster::Cluster`]): replicated nodes with
//! two disks each, faults, clients with sessions and a readable trace. Everything is seeded,
//! so a failing run replays exactly from its seed. `docs/checking.md` describes the checkers and the network's fault model.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cluster;
pub mod disk;
pub mod golden;
pub mod lincheck;
pub mod mvcc;
pub mod net;
pub mod rng;
pub mod store;
pub mod stream;
pub mod txncheck;
