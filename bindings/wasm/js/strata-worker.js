// The dedicated Worker that runs the embedded store with its files in the Origin Private File
// System. Started by `strata-db.js` as a module worker; speaks a small request/response
// protocol over postMessage:
//   → {id, method: 'open', args: [name, {persist, durability, memtableBytes, glueUrl, poolCapacity}]}
//   ← {id, ok: true, value: {persistent, storage, fallbackReason}}
//   → {id, method, args}   (a Db method: get, put, ... or 'watch.poll', 'sub.poll', ...)
//   ← {id, ok: true, value} | {id, ok: false, error: {code, message, ...}}
// Requests are served one at a time, in order; between two requests the pool opens more file
// slots if it is running low (the only asynchronous OPFS step after start).
import { SahPool } from './opfs-pool.js';

let db = null;
let pool = null;
let wasm = null;
const handles = new Map(); // handle id -> Watch | Subscription | Txn
let nextHandle = 1;

async function open(name, opts = {}) {
  const glueUrl = opts.glueUrl || new URL('../pkg/web/strata_wasm.js', import.meta.url).href;
  wasm = await import(glueUrl);
  await wasm.default(opts.wasmUrl ? { module_or_path: opts.wasmUrl } : undefined);
  let storage = 'memory';
  let fallbackReason = null;
  if (opts.persist !== false) {
    try {
      if (!globalThis.navigator?.storage?.getDirectory) throw new Error('navigator.storage.getDirectory is not available');
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle(opts.poolDir || 'strata-pool', { create: true });
      if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) {
        throw new Error('FileSystemFileHandle.createSyncAccessHandle is not available');
      }
      pool = await SahPool.open(dir, { capacity: opts.poolCapacity || 64 });
      storage = pool;
    } catch (e) {
      pool = null;
      fallbackReason = `OPFS unavailable (${e && e.message ? e.message : e}); using memory: data is lost on reload`;
    }
  }
  const options = { durability: opts.durability, memtableBytes: opts.memtableBytes };
  db = wasm.Db.open(name, storage, options);
  return { persistent: pool !== null, storage: pool ? 'opfs' : 'memory', fallbackReason };
}

function keep(h) {
  const id = nextHandle++;
  handles.set(id, h);
  return id;
}

function handle(id) {
  const h = handles.get(id);
  if (!h) {
    const e = new Error(`no handle ${id} (closed?)`);
    e.code = 'CLOSED';
    throw e;
  }
  return h;
}

const methods = {
  get: (k) => db.get(k),
  getString: (k) => db.getString(k),
  put: (k, v) => db.put(k, v),
  delete: (k) => db.delete(k),
  range: (from, to, limit, reverse) => db.range(from, to, limit, reverse),
  revision: () => db.revision(),
  transaction: (ops) => db.transaction(ops),
  sync: () => db.sync(),
  flush: () => db.flush(),
  publish: (subject, payload) => db.publish(subject, payload),
  watch: (prefix, from) => keep(db.watch(prefix, from)),
  subscribe: (pattern, queue) => keep(db.subscribe(pattern, queue)),
  begin: () => {
    const t = db.begin();
    return { handle: keep(t), revision: t.revision };
  },
  'handle.call': (id, method, args) => handle(id)[method](...args),
  'handle.close': (id) => {
    const h = handles.get(id);
    handles.delete(id);
    if (h && typeof h.close === 'function') h.close();
    else if (h && typeof h.rollback === 'function') h.rollback();
  },
  close: () => {
    for (const h of handles.values()) if (typeof h.close === 'function') h.close();
    handles.clear();
    db?.close();
    db = null;
    pool?.close();
    pool = null;
  },
};

function errorOut(e) {
  const out = { message: e && e.message ? e.message : String(e), code: (e && e.code) || 'INTERNAL' };
  for (const k of ['key', 'conflictRevision', 'lockRevision', 'requested', 'compacted', 'retryable']) {
    if (e && e[k] !== undefined) out[k] = e[k];
  }
  return out;
}

let queue = Promise.resolve();
self.onmessage = (ev) => {
  const { id, method, args = [] } = ev.data;
  queue = queue.then(async () => {
    try {
      let value;
      if (method === 'open') value = await open(...args);
      else if (!db) throw Object.assign(new Error('the database is not open'), { code: 'CLOSED' });
      else if (!(method in methods)) throw Object.assign(new Error(`unknown method ${method}`), { code: 'INVALID_ARGUMENT' });
      else value = methods[method](...args);
      self.postMessage({ id, ok: true, value });
    } catch (e) {
      self.postMessage({ id, ok: false, error: errorOut(e) });
    }
    if (pool && pool.freeSlots().length < 8) {
      try {
        await pool.grow(16);
      } catch (_) {
        // Out of quota: the next file creation reports ENOSPC through the store.
      }
    }
  });
};
