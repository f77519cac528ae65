// A pool of pre-opened OPFS files for the embedded store, after SQLite-wasm's "opfs-sahpool":
// every file in the pool directory is opened once, at start, with
// `FileSystemFileHandle.createSyncAccessHandle()` (asynchronous, and only allowed in a
// dedicated Worker); from then on every file operation the store asks for is a synchronous
// call on one of those handles. The store's file names are mapped to pool slots by a *name
// map* kept in the first slot (`map`), so creating or deleting a store file never needs an
// asynchronous OPFS call.
//
// Name map layout (slot file `map`): two copies, at offset 0 and at REGION, each
//   magic "SPM1" (4 bytes) | sequence u32 LE | length u32 LE | crc32 u32 LE | JSON (length bytes)
// JSON: {"files": {"<store>/<file>": "<slot file name>", ...}}. A change writes the copy the
// current one is not in, with the next sequence number, then flush()es it: a torn write
// leaves the other copy, whose crc still holds, so the map is always one of the two last.
//
// Durability: `sync(path)` is `handle.flush()` on that file's slot, which persists the bytes
// written so far to the origin's storage; a map change is flushed before the call that made
// it returns. The engine acknowledges a write only after its log's sync returned
// (durability "sync"), so a reload or a tab crash after an acknowledged write finds it.
//
// The pool implements the storage interface of `bindings/wasm/src/db/backend.rs` (`list`,
// `read`, `size`, `append`, `sync`, `truncate`, `remove`, `writeFile`); errors carry `code`
// "ENOENT" (no such file) or "ENOSPC" (no free slot: call `grow()` between requests).

const MAGIC = 0x314d5053; // "SPM1" little-endian
export const REGION = 256 * 1024;
const HEADER = 16;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function fsError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

export class SahPool {
  /// Opens (creating) the pool in `dir` (a FileSystemDirectoryHandle, e.g. a subdirectory of
  /// `await navigator.storage.getDirectory()`), with at least `capacity` data slots.
  static async open(dir, { capacity = 64 } = {}) {
    const pool = new SahPool(dir);
    pool.mapHandle = await pool.openSlot('map');
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind === 'file' && name.startsWith('slot-')) {
        pool.handles.set(name, await handle.createSyncAccessHandle());
      }
    }
    pool.loadMap();
    await pool.grow(capacity);
    return pool;
  }

  constructor(dir) {
    this.dir = dir;
    this.handles = new Map(); // slot file name -> sync access handle
    this.files = new Map(); // "<store>/<file>" -> slot file name
    this.seq = 0;
    this.mapHandle = null;
  }

  async openSlot(name) {
    const fh = await this.dir.getFileHandle(name, { create: true });
    return fh.createSyncAccessHandle();
  }

  /// Slots not holding a file.
  freeSlots() {
    const used = new Set(this.files.values());
    return [...this.handles.keys()].filter((s) => !used.has(s)).sort();
  }

  /// Opens new slots until at least `free` are unused (asynchronous: call between requests).
  async grow(free = 16) {
    let have = this.freeSlots().length;
    let n = this.handles.size;
    while (have < free) {
      let name;
      do {
        name = `slot-${String(n++).padStart(5, '0')}`;
      } while (this.handles.has(name));
      this.handles.set(name, await this.openSlot(name));
      have++;
    }
  }

  /// Closes every handle (the files stay). The pool is unusable afterwards.
  close() {
    for (const h of this.handles.values()) h.close();
    this.mapHandle?.close();
    this.handles.clear();
    this.mapHandle = null;
  }

  loadMap() {
    let best = null;
    for (const at of [0, REGION]) {
      const head = new Uint8Array(HEADER);
      if (this.mapHandle.read(head, { at }) < HEADER) continue;
      const v = new DataView(head.buffer);
      if (v.getUint32(0, true) !== MAGIC) continue;
      const seq = v.getUint32(4, true);
      const len = v.getUint32(8, true);
      if (len > REGION - HEADER) continue;
      const body = new Uint8Array(len);
      if (this.mapHandle.read(body, { at: at + HEADER }) < len) continue;
      if (crc32(body) !== v.getUint32(12, true)) continue;
      if (!best || seq > best.seq) best = { seq, body };
    }
    this.files.clear();
    this.seq = best ? best.seq : 0;
    if (best) {
      const map = JSON.parse(new TextDecoder().decode(best.body));
      for (const [path, slot] of Object.entries(map.files || {})) this.files.set(path, slot);
    }
  }

  saveMap() {
    const body = new TextEncoder().encode(JSON.stringify({ files: Object.fromEntries(this.files) }));
    if (body.length > REGION - HEADER) throw fsError('ENOSPC', 'the pool name map is full');
    const seq = this.seq + 1;
    const buf = new Uint8Array(HEADER + body.length);
    const v = new DataView(buf.buffer);
    v.setUint32(0, MAGIC, true);
    v.setUint32(4, seq, true);
    v.setUint32(8, body.length, true);
    v.setUint32(12, crc32(body), true);
    buf.set(body, HEADER);
    this.mapHandle.write(buf, { at: seq % 2 === 0 ? 0 : REGION });
    this.mapHandle.flush();
    this.seq = seq;
  }

  handleOf(path) {
    const slot = this.files.get(path);
    if (slot === undefined) throw fsError('ENOENT', `no such file: ${path}`);
    return this.handles.get(slot);
  }

  create(path) {
    const slot = this.freeSlots()[0];
    if (slot === undefined) throw fsError('ENOSPC', `no free slot in the OPFS pool for ${path}`);
    const h = this.handles.get(slot);
    h.truncate(0);
    h.flush();
    this.files.set(path, slot);
    this.saveMap();
    return h;
  }

  // ----- the storage interface -----

  list(dir) {
    const prefix = dir + '/';
    const out = [];
    for (const path of this.files.keys()) if (path.startsWith(prefix)) out.push(path.slice(prefix.length));
    return out;
  }

  read(path, offset, len) {
    const h = this.handleOf(path);
    const size = h.getSize();
    const n = Math.max(0, Math.min(len, size - offset));
    const buf = new Uint8Array(n);
    if (n > 0) {
      const got = h.read(buf, { at: offset });
      return got < n ? buf.subarray(0, got) : buf;
    }
    return buf;
  }

  size(path) {
    return this.handleOf(path).getSize();
  }

  append(path, bytes) {
    const h = this.files.has(path) ? this.handleOf(path) : this.create(path);
    const at = h.getSize();
    const wrote = h.write(bytes, { at });
    if (wrote !== bytes.length) throw fsError('EIO', `short write to ${path}: ${wrote} of ${bytes.length} bytes`);
  }

  sync(path) {
    this.handleOf(path).flush();
  }

  truncate(path, len) {
    this.handleOf(path).truncate(len);
  }

  remove(path) {
    const slot = this.files.get(path);
    if (slot === undefined) return;
    this.files.delete(path);
    this.saveMap();
    const h = this.handles.get(slot);
    h.truncate(0);
    h.flush();
  }

  writeFile(path, bytes) {
    const h = this.files.has(path) ? this.handleOf(path) : this.create(path);
    h.truncate(0);
    const wrote = h.write(bytes, { at: 0 });
    if (wrote !== bytes.length) throw fsError('EIO', `short write to ${path}: ${wrote} of ${bytes.length} bytes`);
    h.flush();
  }
}
