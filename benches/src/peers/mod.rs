//! One adapter per engine. Each module's docs say how its durability matches ours.
pub mod fjall;
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod sled;
pub mod strata;
