//! # strata-sim — a deterministic world for Strata's core
