//! # strata-sim — a deterministic world for Strata's core
//!
//! The simulated binding: an in-memory disk that knows what is durable and injects faults
//! ([`disk::SimDisk`]), and a driver that runs a store over it ([`store::SimStore`]), and one that runs the MVCC executor beside it ([`mvcc::SimMvcc`]). Everything
//! is seeded, so a failing run replays exactly from its seed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod disk;
pub mod mvcc;
pub mod rng;
pub mod store;
