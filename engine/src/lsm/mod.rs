//! The LSM store.
//!
//! Module map (one concept each):
//! * [`io`] — the narrow disk interface: file names, I/O requests and their completions.
//! * [`error`] — typed errors.
//! * [`key`] — sequence numbers, value kinds and the internal-key order.
//! * [`batch`] — an atomic write batch and its encoded form (the WAL payload).
//! * [`frame`] — `len | crc32 | payload` frames, the unit of every durable log.
//! * [`wal`] — WAL file header, record encoding and recovery scan.
//! * [`sstable`] — SST blocks, bloom filters, builder and reader.
//! * [`manifest`] — version edits and the manifest log.
//! * [`hash`] — a deterministic 64-bit hash (bloom filters, the block cache).
//! * [`cache`] — the block cache with a byte budget.
pub mod batch;
pub mod cache;
pub mod error;
pub mod frame;
pub mod hash;
pub mod io;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod sstable;
pub mod varint;
pub mod wal;
pub mod compaction;
pub mod config;
pub mod iter;
pub mod job;
pub mod read;
pub mod store;
pub mod version;
mod wal_writer;
