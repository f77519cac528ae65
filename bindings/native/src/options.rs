//! How a [`Db`](crate::Db) is opened.
use std::time::Duration;
use strata_engine::broker::BrokerConfig;
use strata_engine::lsm::config::Config;
pub use strata_engine::lsm::config::Durability;

/// Options for [`Db::open_with`](crate::Db::open_with). `Options::default()` suits an
/// embedded store: every write durable before it returns (with group commit), 64 MiB
/// memtable, 64 MiB block cache.
#[derive(Clone, Debug)]
pub struct Options {
    /// The core's configuration (durability, memtable and table sizes, limits).
    pub config: Config,
    /// Bytes of decoded SST blocks kept in memory, shared by all reading threads.
    pub block_cache_bytes: usize,
    /// Limits of the publish/subscribe broker (payload size, pending limits per subscriber).
    pub broker: BrokerConfig,
    /// KV watch: when set, every applied write is also published on
    /// `$KV.<bucket>.<key tokens>` (see [`Db::watch`](crate::Db::watch)). Off by default.
    pub kv_watch: Option<String>,
    /// Transactions of the versioned [`Db`](crate::Db): retries, backoff, lock TTL.
    pub txn: crate::txn::TxnOptions,
    /// Limits of the streams of a versioned [`Db`](crate::Db) ([`crate::Streams`]).
    pub streams: strata_engine::stream::StreamsConfig,
}

impl Default for Options {
    fn default() -> Self {
        let config = Config::default();
        let broker = BrokerConfig { max_subject_bytes: strata_engine::subject::MAX_SUBJECT_BYTES_LIMIT, ..BrokerConfig::default() };
        Options { block_cache_bytes: config.block_cache_bytes, config, broker, kv_watch: None, txn: crate::txn::TxnOptions::default(), streams: Default::default() }
    }
}

impl Options {
    /// When writes count as done. [`Durability::SyncEachWrite`] (the default) returns after the
    /// sync that covers the write; [`Durability::SyncEveryMs`] and [`Durability::Manual`] return
    /// at once and risk the most recent writes on a crash (see their docs).
    pub fn durability(mut self, d: Durability) -> Self {
        self.config.durability = d;
        self
    }

    /// Sync the WAL in the background every `every` (acknowledging writes before they are
    /// durable). Shorthand for [`Durability::SyncEveryMs`].
    pub fn sync_every(self, every: Duration) -> Self {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self.durability(Durability::SyncEveryMs(ms))
    }

    /// Freeze and flush the memtable at this size.
    pub fn memtable_bytes(mut self, bytes: usize) -> Self {
        self.config.memtable_bytes = bytes;
        self
    }

    /// How transactions retry and how long their locks live.
    pub fn txn(mut self, txn: crate::txn::TxnOptions) -> Self {
        self.txn = txn;
        self
    }

    /// Block cache budget.
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }

    /// Publish every write on `$KV.<bucket>.<key tokens>` so that subscriptions are watches.
    pub fn kv_watch(mut self, bucket: impl Into<String>) -> Self {
        self.kv_watch = Some(bucket.into());
        self
    }

    /// The broker's limits.
    pub fn broker(mut self, config: BrokerConfig) -> Self {
        self.broker = config;
        self
    }

    /// The core's configuration for this binding: its own request-path cache stays small,
    /// since reads go through the binding's shared cache.
    pub(crate) fn store_config(&self) -> Config {
        let mut c = self.config.clone();
        c.block_cache_bytes = c.block_cache_bytes.min(1 << 20);
        c
    }
}
