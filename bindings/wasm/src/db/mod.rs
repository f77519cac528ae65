//! The embedded store as JavaScript classes: [`Db`] (get, put, delete, range, transactions,
//! watch, publish/subscribe), [`Txn`], and in `events` the `Watch` and `Subscription` handles.
//!
//! Everything is synchronous: each method runs the engine's state machines to the end of the
//! request through the single-threaded driver in [`core`], which carries out the engine's I/O
//! on a [`backend`] — memory inside wasm, or a JavaScript storage object such as the OPFS
//! worker's pool of synchronous access handles (`js/opfs-pool.js`). The JS API is described in
//! `bindings/wasm/docs/db.md` and in `.d.ts` comments generated from these doc comments.
pub mod backend;
pub mod core;
mod events;
mod js;

use self::core::{Core, CoreOptions, DbError};
use backend::{Backend, JsBackend, MemBackend};
use events::{Broker, Subscription, Watch};
use js::{bytes_in, bytes_out, error, invalid, opt_bytes_in, opt_count_in, opt_revision_in, prop, set};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::rc::Rc;
use strata_engine::lsm::config::Durability;
use strata_engine::mvcc::watch::{WatchRequest, WatchTarget};
use strata_engine::mvcc::Ts;
use wasm_bindgen::prelude::*;

/// The open store shared by a `Db` and its transactions and watches; `None` once closed.
type Shared = Rc<RefCell<Option<Core>>>;

fn with_core<T>(shared: &Shared, f: impl FnOnce(&mut Core) -> Result<T, DbError>) -> Result<T, JsValue> {
    let mut guard = shared.borrow_mut();
    let core = guard.as_mut().ok_or_else(|| error(&DbError::Closed))?;
    f(core).map_err(|e| error(&e))
}

/// An embedded Strata store: versioned (MVCC) keys and values, snapshot-isolation
/// transactions, revision watches and a publish/subscribe broker.
#[wasm_bindgen]
pub struct Db {
    shared: Shared,
    name: String,
    broker: Rc<RefCell<Broker>>,
}

#[wasm_bindgen]
impl Db {
    /// Opens (creating if needed) the store `name` on `storage`: `"memory"` (or nothing) for
    /// files in wasm memory — kept by name until the page goes, so a reopen finds them — or a
    /// storage object with the synchronous file methods of `js/opfs-pool.js`. `options`:
    /// `{ durability: "sync" | "manual", memtableBytes }` — `"sync"` (default) acknowledges a
    /// write after the storage's `sync` of the log (OPFS: `FileSystemSyncAccessHandle.flush()`);
    /// `"manual"` only when `db.sync()` or `db.close()` runs.
    pub fn open(name: &str, storage: JsValue, options: JsValue) -> Result<Db, JsValue> {
        if name.is_empty() || name.len() > 128 || name.contains('/') || name.contains('\\') {
            return Err(invalid("the store name must be 1-128 characters without '/' or '\\'"));
        }
        let backend: Box<dyn Backend> = if storage.is_undefined() || storage.is_null() || storage.as_string().as_deref() == Some("memory") {
            Box::new(MemBackend::named(name))
        } else if storage.is_object() {
            Box::new(JsBackend::new(storage, name))
        } else {
            return Err(invalid("storage must be \"memory\" or a storage object"));
        };
        let mut opts = CoreOptions::default();
        match prop(&options, "durability").as_string().as_deref() {
            None | Some("sync") => {}
            Some("manual") => opts.durability = Durability::Manual,
            Some(other) => return Err(invalid(&format!("durability must be \"sync\" or \"manual\", not {other:?}"))),
        }
        if let Some(n) = opt_count_in(&prop(&options, "memtableBytes"), "memtableBytes")? {
            opts.memtable_bytes = n.clamp(64 << 10, 256 << 20);
        }
        let core = Core::open(backend, &opts, js::now_ms).map_err(|e| error(&e))?;
        Ok(Db { shared: Rc::new(RefCell::new(Some(core))), name: name.to_string(), broker: Rc::new(RefCell::new(Broker::new())) })
    }

    /// Forgets the memory store `name` (true if there was one). Open handles keep theirs.
    #[wasm_bindgen(js_name = destroyMemory)]
    pub fn destroy_memory(name: &str) -> bool {
        MemBackend::destroy(name)
    }

    /// The store's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Where the files are: `"memory"` or `"js"` (a storage object, e.g. OPFS).
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        self.shared.borrow().as_ref().map_or("closed", Core::backend_kind).to_string()
    }

    /// The value of `key` now (`Uint8Array`), or `undefined`.
    pub fn get(&self, key: JsValue) -> Result<JsValue, JsValue> {
        let key = bytes_in(&key, "key")?;
        let v = with_core(&self.shared, |c| c.get(&key))?;
        Ok(v.map_or(JsValue::UNDEFINED, |v| bytes_out(&v)))
    }

    /// The value of `key` as a string (UTF-8, invalid bytes replaced), or `undefined`.
    #[wasm_bindgen(js_name = getString)]
    pub fn get_string(&self, key: JsValue) -> Result<Option<String>, JsValue> {
        let key = bytes_in(&key, "key")?;
        let v = with_core(&self.shared, |c| c.get(&key))?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets `key` to `value` (one transaction); returns its revision (`BigInt`).
    pub fn put(&self, key: JsValue, value: JsValue) -> Result<u64, JsValue> {
        let key = bytes_in(&key, "key")?;
        let value = bytes_in(&value, "value")?;
        with_core(&self.shared, |c| c.put(&key, &value))
    }

    /// Deletes `key` (a no-op write when absent); returns its revision.
    pub fn delete(&self, key: JsValue) -> Result<u64, JsValue> {
        let key = bytes_in(&key, "key")?;
        with_core(&self.shared, |c| c.delete(&key))
    }

    /// Pairs with keys in `[from, to)` now (`from`/`to` undefined: unbounded), at most
    /// `limit`, ascending — or, with `reverse`, the last `limit` of them descending (a reverse
    /// range reads the whole range). Returns `[{key, value}]` of `Uint8Array`s.
    pub fn range(&self, from: JsValue, to: JsValue, limit: JsValue, reverse: Option<bool>) -> Result<js_sys::Array, JsValue> {
        let (from, to, limit) = range_args(&from, &to, &limit)?;
        let rows = with_core(&self.shared, |c| c.range(&from, to.as_deref(), limit, reverse.unwrap_or(false), Ts::ZERO))?;
        Ok(pairs_out(&rows))
    }

    /// The newest revision written through this handle's store (0 before the first write
    /// since open).
    pub fn revision(&self) -> Result<u64, JsValue> {
        with_core(&self.shared, |c| Ok(c.revision()))
    }

    /// Starts a snapshot-isolation transaction at a fresh snapshot.
    pub fn begin(&self) -> Result<Txn, JsValue> {
        let start = with_core(&self.shared, Core::timestamp)?;
        Ok(Txn { shared: self.shared.clone(), start_ts: start, writes: BTreeMap::new(), done: false })
    }

    /// Runs `ops` — `[{op: "get"|"put"|"delete", key, value?}]` — as one transaction: reads
    /// see the snapshot plus the earlier ops' writes; the writes commit together. Returns
    /// `{revision, results}` with one entry per op (the value of a `get`, else `undefined`).
    pub fn transaction(&self, ops: js_sys::Array) -> Result<js_sys::Object, JsValue> {
        let mut tx = self.begin()?;
        let results = js_sys::Array::new();
        for (i, op) in ops.iter().enumerate() {
            let kind = prop(&op, "op").as_string().ok_or_else(|| invalid(&format!("op {i}: `op` must be \"get\", \"put\" or \"delete\"")))?;
            let key = prop(&op, "key");
            match kind.as_str() {
                "get" => results.push(&tx.get(key)?),
                "put" => {
                    tx.put(key, prop(&op, "value"))?;
                    results.push(&JsValue::UNDEFINED)
                }
                "delete" => {
                    tx.delete(key)?;
                    results.push(&JsValue::UNDEFINED)
                }
                other => return Err(invalid(&format!("op {i}: unknown op {other:?}"))),
            };
        }
        let revision = tx.commit()?;
        let out = js_sys::Object::new();
        set(&out, "revision", &JsValue::from(revision));
        set(&out, "results", &results);
        Ok(out)
    }

    /// Watches keys starting with `prefix` (`""`: every key) from revision `fromRevision`
    /// (undefined: only changes from now on). Poll-based: `watch.poll()` returns what happened
    /// since the last poll.
    pub fn watch(&self, prefix: JsValue, from_revision: JsValue) -> Result<Watch, JsValue> {
        let prefix = bytes_in(&prefix, "prefix")?;
        let start = opt_revision_in(&from_revision, "fromRevision")?;
        if start == Some(0) {
            return Err(invalid("fromRevision must be at least 1"));
        }
        let target = if prefix.is_empty() { WatchTarget::Range(Vec::new(), None) } else { WatchTarget::Prefix(prefix) };
        let req = WatchRequest { target, start_revision: start.map(Ts) };
        let id = with_core(&self.shared, |c| c.watch(req))?;
        Ok(Watch::new(self.shared.clone(), id))
    }

    /// Subscribes to subjects matching `pattern` (`.`-separated tokens; `*` matches one token,
    /// a final `>` the rest), optionally in queue group `queue` (each message goes to one
    /// member of the group). Poll-based: `sub.poll()`.
    pub fn subscribe(&self, pattern: &str, queue: Option<String>) -> Result<Subscription, JsValue> {
        Subscription::new(self.broker.clone(), pattern, queue.as_deref())
    }

    /// Publishes `payload` on `subject`; returns how many subscriptions it was queued for.
    pub fn publish(&self, subject: &str, payload: JsValue) -> Result<u32, JsValue> {
        let payload = bytes_in(&payload, "payload")?;
        self.broker.borrow_mut().publish(subject, &payload)
    }

    /// Makes every acknowledged write durable (only needed with `durability: "manual"`).
    pub fn sync(&self) -> Result<(), JsValue> {
        with_core(&self.shared, Core::sync)
    }

    /// Writes the memtable to a table file (reads and recovery get faster).
    pub fn flush(&self) -> Result<(), JsValue> {
        with_core(&self.shared, Core::flush)
    }

    /// Closes: makes buffered writes durable; later calls on this handle, its transactions
    /// and watches fail with `CLOSED`. Closing twice is harmless.
    pub fn close(&self) -> Result<(), JsValue> {
        let Some(mut core) = self.shared.borrow_mut().take() else { return Ok(()) };
        core.close().map_err(|e| error(&e))
    }
}

/// A snapshot-isolation transaction: reads see the store as of `begin()` plus this
/// transaction's own writes; writes are buffered and commit together. `commit()` fails with
/// `WRITE_CONFLICT` if another transaction committed one of its keys after it began (first
/// committer wins); then nothing of it is visible and it can be run again with a new `begin()`.
#[wasm_bindgen]
pub struct Txn {
    shared: Shared,
    start_ts: Ts,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    done: bool,
}

#[wasm_bindgen]
impl Txn {
    /// The snapshot's revision.
    #[wasm_bindgen(getter)]
    pub fn revision(&self) -> u64 {
        self.start_ts.0
    }

    /// The value of `key` in the snapshot or as this transaction wrote it.
    pub fn get(&self, key: JsValue) -> Result<JsValue, JsValue> {
        let key = bytes_in(&key, "key")?;
        self.check_open()?;
        if let Some(v) = self.writes.get(&key) {
            return Ok(v.as_deref().map_or(JsValue::UNDEFINED, bytes_out));
        }
        let v = with_core(&self.shared, |c| c.get_at(&key, self.start_ts))?;
        Ok(v.map_or(JsValue::UNDEFINED, |v| bytes_out(&v)))
    }

    /// Sets `key` to `value` (buffered until commit).
    pub fn put(&mut self, key: JsValue, value: JsValue) -> Result<(), JsValue> {
        let key = bytes_in(&key, "key")?;
        let value = bytes_in(&value, "value")?;
        self.check_open()?;
        with_core(&self.shared, |c| c.check_key(&key).and_then(|()| c.check_value(&value)))?;
        self.writes.insert(key, Some(value));
        Ok(())
    }

    /// Deletes `key` (buffered until commit).
    pub fn delete(&mut self, key: JsValue) -> Result<(), JsValue> {
        let key = bytes_in(&key, "key")?;
        self.check_open()?;
        with_core(&self.shared, |c| c.check_key(&key))?;
        self.writes.insert(key, None);
        Ok(())
    }

    /// `Db.range` as of the snapshot plus this transaction's writes.
    pub fn range(&self, from: JsValue, to: JsValue, limit: JsValue, reverse: Option<bool>) -> Result<js_sys::Array, JsValue> {
        self.check_open()?;
        let (from, to, limit) = range_args(&from, &to, &limit)?;
        let rows = with_core(&self.shared, |c| c.range(&from, to.as_deref(), usize::MAX, false, self.start_ts))?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = rows.into_iter().collect();
        let upper = to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for (k, v) in self.writes.range::<[u8], _>((Bound::Included(from.as_slice()), upper)) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = merged.into_iter().collect();
        if reverse.unwrap_or(false) {
            rows.reverse();
        }
        rows.truncate(limit);
        Ok(pairs_out(&rows))
    }

    /// Commits; returns the commit revision (the snapshot's when nothing was written).
    pub fn commit(&mut self) -> Result<u64, JsValue> {
        self.check_open()?;
        self.done = true;
        if self.writes.is_empty() {
            return Ok(self.start_ts.0);
        }
        with_core(&self.shared, |c| c.commit(self.start_ts, &self.writes))
    }

    /// Drops the buffered writes; nothing was visible.
    pub fn rollback(&mut self) {
        self.done = true;
        self.writes.clear();
    }

    fn check_open(&self) -> Result<(), JsValue> {
        if self.done {
            Err(js::error_with("TXN_FINISHED", "the transaction is already committed or rolled back", &[]))
        } else {
            Ok(())
        }
    }
}

/// `[from, to)` and a limit.
type RangeArgs = (Vec<u8>, Option<Vec<u8>>, usize);

fn range_args(from: &JsValue, to: &JsValue, limit: &JsValue) -> Result<RangeArgs, JsValue> {
    let from = opt_bytes_in(from, "from")?.unwrap_or_default();
    let to = opt_bytes_in(to, "to")?;
    if to.as_ref().is_some_and(|t| t < &from) {
        return Err(invalid("range end `to` sorts before `from`"));
    }
    let limit = opt_count_in(limit, "limit")?.unwrap_or(usize::MAX);
    Ok((from, to, limit))
}

fn pairs_out(rows: &[(Vec<u8>, Vec<u8>)]) -> js_sys::Array {
    let out = js_sys::Array::new_with_length(rows.len() as u32);
    for (i, (k, v)) in rows.iter().enumerate() {
        let o = js_sys::Object::new();
        set(&o, "key", &bytes_out(k));
        set(&o, "value", &bytes_out(v));
        out.set(i as u32, o.into());
    }
    out
}
