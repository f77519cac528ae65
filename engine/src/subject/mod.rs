//! Subject routing: NATS-style subjects, patterns and the subscription index.
//!
//! A message is published on a *subject*, a `.`-separated list of tokens (`orders.eu.created`).
//! A subscription names a *pattern*, which may use `*` for any one token and a final `>` for
//! one or more trailing tokens (`orders.*.created`, `orders.>`). [`parse`] turns text into
//! validated [`Subject`]s and [`Pattern`]s or a [`SubjectError`] that says what is wrong and at
//! which token and byte. The [`SubjectIndex`] is a trie over tokens: inserting a pattern walks
//! or creates one node per token and parks the subscription at the last; matching a subject
//! walks the trie once, following at every level the literal child, the `*` child and the `>`
//! child, and yields every plain subscriber plus one member of each queue group, chosen by a
//! seeded round-robin. A small [`cache`] in front of the walk answers repeated subjects
//! without walking, and is designed never to slow down a stream of distinct subjects. Results
//! are written into a caller-owned [`Matches`], so a match allocates nothing once warm.
//! [`kv`] maps key-value keys to subjects and back (KV watch).
//!
//! ```
//! use strata_engine::subject::{IndexConfig, Matches, Pattern, Subject, SubjectIndex};
//!
//! let mut index = SubjectIndex::new(IndexConfig::default());
//! index.insert(Pattern::parse("orders.*.created").unwrap(), None, 1u32);
//! index.insert(Pattern::parse("orders.>").unwrap(), None, 2);
//! index.insert(Pattern::parse("orders.eu.created").unwrap(), Some("workers"), 3);
//! index.insert(Pattern::parse("orders.eu.created").unwrap(), Some("workers"), 4);
//!
//! let mut out = Matches::new();
//! index.match_into(Subject::parse("orders.eu.created").unwrap(), &mut out);
//! assert_eq!(out.plain, [2, 1]);          // every plain subscriber
//! assert_eq!(out.queued.len(), 1);        // one member of the "workers" group
//! ```
pub mod cache;
pub mod index;
pub mod kv;
mod node;
pub mod parse;

pub use cache::CacheConfig;
pub use index::{IndexConfig, IndexStats, Matches, QueueId, SubId, SubjectIndex};
pub use parse::{Pattern, Subject, SubjectError, Token, MAX_SUBJECT_BYTES, MAX_SUBJECT_BYTES_LIMIT};
