//! # strata-sim — a deterministic world for Strata's core
//!
//! The simulated binding: an in-memory disk that knows what is durable and injects faults
//! ([`disk::SimDisk`]), a driver that runs a store over it ([`store::SimStore`]), one that
//! runs the MVCC executor beside it ([`mvcc::SimMvcc`]), and one that runs the stream engine
//! over such a store ([`stream::SimStreams`]). Everything
//! is seeded, so a failing run replays exactly from its seed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod disk;
pub mod mvcc;
pub mod rng;
pub mod store;
pub mod stream;
