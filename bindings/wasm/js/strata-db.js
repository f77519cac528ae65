// The main-thread side of the persistent embedded store: starts `strata-worker.js` in a
// dedicated module Worker (where OPFS synchronous access handles are allowed) and forwards
// calls to it. Every method returns a Promise; errors reject with an Error carrying the same
// `code` as the synchronous API (`WRITE_CONFLICT`, `INVALID_ARGUMENT`, `STORAGE`, ...).
//
//   import { openDb } from './strata-db.js';
//   const db = await openDb('notes');            // { persist: true } is the default
//   db.persistent      // true: files in OPFS; false: memory, and db.fallbackReason says why
//   await db.put('k', 'v'); await db.getString('k');
//   const tx = await db.begin(); await tx.put('a', '1'); await tx.commit();
//   const w = await db.watch('', 1n); await w.poll();
//   await db.close();
//
// Options: persist (default true), durability ("sync" default | "manual"), memtableBytes,
// glueUrl / wasmUrl (where the wasm-bindgen web glue and the .wasm are; default
// ../pkg/web/ relative to the worker), workerUrl, poolDir (OPFS directory, default
// "strata-pool"), poolCapacity (file slots opened at start, default 64).
// One page (one worker) owns a pool at a time: OPFS access handles are exclusive.

class Remote {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    this.next = 1;
    worker.onmessage = (ev) => {
      const { id, ok, value, error } = ev.data;
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (ok) p.resolve(value);
      else p.reject(Object.assign(new Error(error.message), error, { name: 'StrataError' }));
    };
    worker.onerror = (ev) => {
      const e = Object.assign(new Error(`worker failed: ${ev.message || ev}`), { code: 'INTERNAL' });
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
  }

  call(method, ...args) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, args });
    });
  }
}

class RemoteHandle {
  constructor(remote, id) {
    this.remote = remote;
    this.id = id;
  }
  call(method, ...args) {
    return this.remote.call('handle.call', this.id, method, args);
  }
  close() {
    return this.remote.call('handle.close', this.id);
  }
}

class RemoteWatch extends RemoteHandle {
  poll() {
    return this.call('poll');
  }
}

class RemoteSubscription extends RemoteHandle {
  poll() {
    return this.call('poll');
  }
}

class RemoteTxn extends RemoteHandle {
  constructor(remote, id, revision) {
    super(remote, id);
    this.revision = revision;
  }
  get(k) { return this.call('get', k); }
  put(k, v) { return this.call('put', k, v); }
  delete(k) { return this.call('delete', k); }
  range(from, to, limit, reverse) { return this.call('range', from, to, limit, reverse); }
  commit() { return this.call('commit'); }
  rollback() { return this.close(); }
}

export class RemoteDb {
  constructor(remote, name, info) {
    this.remote = remote;
    this.name = name;
    this.persistent = info.persistent;
    this.storage = info.storage;
    this.fallbackReason = info.fallbackReason;
  }
  get(k) { return this.remote.call('get', k); }
  getString(k) { return this.remote.call('getString', k); }
  put(k, v) { return this.remote.call('put', k, v); }
  delete(k) { return this.remote.call('delete', k); }
  range(from, to, limit, reverse) { return this.remote.call('range', from, to, limit, reverse); }
  revision() { return this.remote.call('revision'); }
  transaction(ops) { return this.remote.call('transaction', ops); }
  sync() { return this.remote.call('sync'); }
  flush() { return this.remote.call('flush'); }
  publish(subject, payload) { return this.remote.call('publish', subject, payload); }
  async begin() {
    const { handle, revision } = await this.remote.call('begin');
    return new RemoteTxn(this.remote, handle, revision);
  }
  async watch(prefix, fromRevision) {
    return new RemoteWatch(this.remote, await this.remote.call('watch', prefix, fromRevision));
  }
  async subscribe(pattern, queue) {
    return new RemoteSubscription(this.remote, await this.remote.call('subscribe', pattern, queue));
  }
  async close() {
    await this.remote.call('close');
    this.remote.worker.terminate();
  }
}

/// Opens the store `name` in a new dedicated Worker. Resolves to a RemoteDb.
export async function openDb(name, options = {}) {
  const workerUrl = options.workerUrl || new URL('./strata-worker.js', import.meta.url);
  const worker = new Worker(workerUrl, { type: 'module', name: `strata-db:${name}` });
  const remote = new Remote(worker);
  const { workerUrl: _w, ...opts } = options;
  try {
    const info = await remote.call('open', name, opts);
    return new RemoteDb(remote, name, info);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}
