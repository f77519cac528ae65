// Node tests of the embedded store's JS API (`Db`, `Txn`, `Watch`, `Subscription`) and of the
// OPFS pool's logic over fake synchronous access handles. Run after `bash bindings/wasm/build.sh`:
//   node --test bindings/wasm/tests/db.test.mjs
// STRATA_DB_MODEL_STEPS sets the model test's steps per seed (default 1500).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { SahPool, REGION } from '../js/opfs-pool.js';

const require = createRequire(import.meta.url);
const { Db } = require('../pkg/node/strata_wasm.js');

const enc = new TextEncoder();
const dec = new TextDecoder();
const str = (b) => (b === undefined ? undefined : dec.decode(b));
const pairs = (rows) => rows.map(({ key, value }) => [dec.decode(key), dec.decode(value)]);
let unique = 0;
const fresh = (tag) => `${tag}-${process.pid}-${unique++}`;

function throwsCode(fn, code, re) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected an error with code ${code}`);
  assert.equal(err.code, code, `code of: ${err.message}`);
  assert.ok(err instanceof Error);
  if (re) assert.match(err.message, re);
  return err;
}

/// A storage object over a Map of Uint8Arrays (the interface `js/opfs-pool.js` implements),
/// remembering what was synced, with fault injection.
class MapStorage {
  constructor() {
    this.files = new Map();
    this.failAppends = false;
    this.calls = { append: 0, sync: 0, read: 0, writeFile: 0 };
  }
  list(dir) {
    return [...this.files.keys()].filter((p) => p.startsWith(dir + '/')).map((p) => p.slice(dir.length + 1));
  }
  get(path) {
    const f = this.files.get(path);
    if (!f) throw Object.assign(new Error(`no such file ${path}`), { code: 'ENOENT' });
    return f;
  }
  read(path, offset, len) {
    this.calls.read++;
    const f = this.get(path);
    return f.slice(offset, Math.min(f.length, offset + len));
  }
  size(path) {
    return this.get(path).length;
  }
  append(path, bytes) {
    this.calls.append++;
    if (this.failAppends) throw new Error('injected append failure');
    const f = this.files.get(path) || new Uint8Array(0);
    const g = new Uint8Array(f.length + bytes.length);
    g.set(f);
    g.set(bytes, f.length);
    this.files.set(path, g);
  }
  sync(path) {
    this.calls.sync++;
    this.get(path);
  }
  truncate(path, len) {
    this.files.set(path, this.get(path).slice(0, len));
  }
  remove(path) {
    this.files.delete(path);
  }
  writeFile(path, bytes) {
    this.calls.writeFile++;
    this.files.set(path, Uint8Array.from(bytes));
  }
}

test('put, get, delete, getString, binary keys', () => {
  const db = Db.open(fresh('basic'), 'memory');
  assert.equal(db.storage, 'memory');
  assert.equal(db.get('missing'), undefined);
  const r1 = db.put('alpha', 'one');
  assert.equal(typeof r1, 'bigint');
  assert.equal(db.getString('alpha'), 'one');
  assert.deepEqual(db.get('alpha'), enc.encode('one'));
  const r2 = db.put('alpha', 'two');
  assert.ok(r2 > r1, 'revisions increase');
  assert.equal(db.getString('alpha'), 'two');
  const r3 = db.delete('alpha');
  assert.ok(r3 > r2);
  assert.equal(db.get('alpha'), undefined);
  assert.equal(db.revision(), r3);
  const bin = new Uint8Array([0, 255, 1, 0]);
  db.put(bin, new Uint8Array([9, 8, 7]));
  assert.deepEqual(db.get(bin), new Uint8Array([9, 8, 7]));
  assert.equal(db.get(new Uint8Array([0, 255, 1])), undefined);
  db.put('empty-value', '');
  assert.deepEqual(db.get('empty-value'), new Uint8Array(0));
  db.close();
});

test('range forwards and backwards, bounds and limits', () => {
  const db = Db.open(fresh('range'), 'memory');
  for (const k of ['b', 'a', 'd', 'c', 'e', 'ca']) db.put(k, k.toUpperCase());
  db.delete('e');
  assert.deepEqual(pairs(db.range()), [['a', 'A'], ['b', 'B'], ['c', 'C'], ['ca', 'CA'], ['d', 'D']]);
  assert.deepEqual(pairs(db.range('b', 'd')), [['b', 'B'], ['c', 'C'], ['ca', 'CA']]);
  assert.deepEqual(pairs(db.range('b', 'd', 2)), [['b', 'B'], ['c', 'C']]);
  assert.deepEqual(pairs(db.range('b', 'd', undefined, true)), [['ca', 'CA'], ['c', 'C'], ['b', 'B']]);
  assert.deepEqual(pairs(db.range('b', undefined, 2, true)), [['d', 'D'], ['ca', 'CA']]);
  assert.deepEqual(pairs(db.range(undefined, 'b', undefined, true)), [['a', 'A']]);
  assert.deepEqual(pairs(db.range('x')), []);
  assert.deepEqual(pairs(db.range('c', 'c')), []);
  assert.deepEqual(pairs(db.range('a', undefined, 0)), []);
  db.close();
});

test('transactions: read-your-writes, snapshot reads, a write conflict, rollback', () => {
  const db = Db.open(fresh('txn'), 'memory');
  db.put('x', '1');
  db.put('y', '1');
  const t = db.begin();
  assert.equal(typeof t.revision, 'bigint');
  t.put('x', '2');
  t.delete('y');
  t.put('z', '3');
  assert.equal(str(t.get('x')), '2', 'own write');
  assert.equal(t.get('y'), undefined, 'own delete');
  assert.deepEqual(pairs(t.range()), [['x', '2'], ['z', '3']]);
  assert.deepEqual(pairs(t.range(undefined, undefined, 1, true)), [['z', '3']]);
  assert.equal(db.getString('x'), '1', 'not visible before commit');
  db.put('w', 'outside');
  assert.equal(t.get('w'), undefined, 'snapshot: a later commit is not seen');
  const rev = t.commit();
  assert.ok(rev > t.revision);
  assert.deepEqual(pairs(db.range()), [['w', 'outside'], ['x', '2'], ['z', '3']]);
  throwsCode(() => t.put('q', '1'), 'TXN_FINISHED');
  throwsCode(() => t.commit(), 'TXN_FINISHED');

  // Two transactions write the same key: the first committer wins.
  const a = db.begin();
  const b = db.begin();
  a.put('k', 'a');
  b.put('k', 'b');
  b.put('other', 'b');
  const ra = a.commit();
  const e = throwsCode(() => b.commit(), 'WRITE_CONFLICT', /write conflict on "k"/);
  assert.equal(dec.decode(e.key), 'k');
  assert.equal(e.conflictRevision, ra);
  assert.equal(e.retryable, true);
  assert.equal(db.getString('k'), 'a');
  assert.equal(db.get('other'), undefined, 'nothing of the failed transaction is visible');
  // Retry from a new snapshot succeeds, and no lock was left behind.
  const b2 = db.begin();
  b2.put('k', 'b');
  b2.commit();
  assert.equal(db.getString('k'), 'b');

  // A read-only conflict does not exist under SI: a reader of k commits fine.
  const r = db.begin();
  r.get('k');
  db.put('k', 'c');
  assert.equal(r.commit(), r.revision);

  const rb = db.begin();
  rb.put('gone', '1');
  rb.rollback();
  throwsCode(() => rb.commit(), 'TXN_FINISHED');
  assert.equal(db.get('gone'), undefined);

  // The batch form.
  const out = db.transaction([
    { op: 'put', key: 'p', value: '1' },
    { op: 'get', key: 'p' },
    { op: 'delete', key: 'k' },
    { op: 'get', key: 'k' },
    { op: 'get', key: 'x' },
  ]);
  assert.equal(typeof out.revision, 'bigint');
  assert.deepEqual(out.results.map(str), [undefined, '1', undefined, undefined, '2']);
  assert.equal(db.getString('p'), '1');
  assert.equal(db.get('k'), undefined);
  throwsCode(() => db.transaction([{ op: 'frob', key: 'a' }]), 'INVALID_ARGUMENT', /unknown op/);
  throwsCode(() => db.transaction([{ op: 'put', key: 'a' }]), 'INVALID_ARGUMENT', /value must be/);
  db.close();
});

test('watch: events since a revision, previous values, live changes, close', () => {
  const db = Db.open(fresh('watch'), 'memory');
  throwsCode(() => db.watch('user/', -1.5), 'INVALID_ARGUMENT', /fromRevision must be a non-negative integer, not -1\.5/);
  const r1 = db.put('user/1', 'ann');
  db.put('other', 'x');
  const r2 = db.put('user/1', 'bob');
  const w = db.watch('user/', r1);
  let batches = w.poll();
  assert.deepEqual(batches.map((b) => b.revision), [r1, r2]);
  assert.deepEqual(batches[0].events.map((e) => [e.type, str(e.key), str(e.value)]), [['put', 'user/1', 'ann']]);
  assert.equal(batches[0].events[0].prev, undefined);
  assert.equal(str(batches[1].events[0].prev.value), 'ann');
  assert.equal(batches[1].events[0].prev.revision, r1);
  assert.deepEqual(w.poll(), [], 'nothing new');

  const t = db.begin();
  t.put('user/2', 'cy');
  t.put('user/3', 'di');
  t.put('zzz', 'not watched');
  const rt = t.commit();
  const rd = db.delete('user/1');
  batches = w.poll();
  assert.deepEqual(batches.map((b) => b.revision), [rt, rd]);
  assert.deepEqual(batches[0].events.map((e) => str(e.key)), ['user/2', 'user/3'], 'one batch per revision, key order');
  assert.equal(batches[1].events[0].type, 'delete');
  assert.equal(batches[1].events[0].value, undefined);
  assert.equal(str(batches[1].events[0].prev.value), 'bob');

  // From now on only (no revision), and everything (empty prefix) with a number revision.
  const live = db.watch('user/');
  const all = db.watch('', Number(1));
  db.put('user/4', 'ed');
  assert.deepEqual(live.poll().map((b) => str(b.events[0].key)), ['user/4']);
  assert.equal(all.poll().length, 6, "every revision since 1: 3 puts, a transaction, a delete, a put");
  live.close();
  live.close();
  throwsCode(() => live.poll(), 'CLOSED');
  throwsCode(() => db.watch('x', 0), 'INVALID_ARGUMENT', /at least 1/);
  throwsCode(() => db.watch('x', -1), 'INVALID_ARGUMENT');
  throwsCode(() => db.watch('x', 'soon'), 'INVALID_ARGUMENT');
  w.close();
  all.close();
  db.close();
});

test('watch: a watcher far behind is caught up from history, across a flush', () => {
  const db = Db.open(fresh('watch-lag'), 'memory');
  const w = db.watch('k/');
  const revs = [];
  for (let i = 0; i < 1500; i++) revs.push(db.put(`k/${i % 50}`, `v${i}`));
  db.flush();
  for (let i = 0; i < 300; i++) revs.push(db.put(`k/${i % 7}`, `w${i}`));
  const seen = [];
  for (let round = 0; round < 20 && seen.length < revs.length; round++) for (const b of w.poll()) seen.push(b.revision);
  assert.deepEqual(seen, revs, 'every revision once, in order');
  w.close();
  db.close();
});

test('publish/subscribe through the broker', () => {
  const db = Db.open(fresh('pubsub'), 'memory');
  const star = db.subscribe('orders.*');
  const tail = db.subscribe('orders.>');
  const q1 = db.subscribe('jobs', 'workers');
  const q2 = db.subscribe('jobs', 'workers');
  assert.equal(star.pattern, 'orders.*');
  assert.equal(db.publish('orders.new', 'hello'), 2);
  assert.equal(db.publish('orders.eu.new', new Uint8Array([1, 2])), 1);
  assert.equal(db.publish('nobody.listens', 'x'), 0);
  assert.deepEqual(star.poll().map((m) => [m.subject, str(m.payload)]), [['orders.new', 'hello']]);
  assert.deepEqual(tail.poll().map((m) => m.subject), ['orders.new', 'orders.eu.new']);
  assert.deepEqual(star.poll(), []);
  for (let i = 0; i < 10; i++) assert.equal(db.publish('jobs', `j${i}`), 1, 'one member of the queue group');
  assert.equal(q1.poll().length + q2.poll().length, 10);
  star.close();
  assert.equal(db.publish('orders.new', 'again'), 1);
  throwsCode(() => star.poll(), 'CLOSED');
  throwsCode(() => db.subscribe('orders..x'), 'SUBJECT', /orders\.\.x/);
  throwsCode(() => db.subscribe(''), 'SUBJECT');
  throwsCode(() => db.publish('orders.*', 'x'), 'SUBJECT');
  throwsCode(() => db.publish('a b', 'x'), 'SUBJECT');
  throwsCode(() => db.publish('ok', 42), 'INVALID_ARGUMENT', /payload must be/);
  db.close();
});

test('bad input gets clear errors', () => {
  throwsCode(() => Db.open('', 'memory'), 'INVALID_ARGUMENT', /name/);
  throwsCode(() => Db.open('a/b', 'memory'), 'INVALID_ARGUMENT', /name/);
  throwsCode(() => Db.open('x', 'disk'), 'INVALID_ARGUMENT', /storage/);
  throwsCode(() => Db.open('x', 'memory', { durability: 'always' }), 'INVALID_ARGUMENT', /durability/);
  throwsCode(() => Db.open('x', 'memory', { memtableBytes: -5 }), 'INVALID_ARGUMENT', /memtableBytes/);
  const db = Db.open(fresh('bad'), 'memory');
  throwsCode(() => db.put('', 'v'), 'INVALID_ARGUMENT', /empty key/);
  throwsCode(() => db.get(''), 'INVALID_ARGUMENT', /empty key/);
  throwsCode(() => db.put(17, 'v'), 'INVALID_ARGUMENT', /key must be a string or a Uint8Array, not number/);
  throwsCode(() => db.put('k', { a: 1 }), 'INVALID_ARGUMENT', /value must be/);
  throwsCode(() => db.put('k'.repeat(5000), 'v'), 'INVALID_ARGUMENT', /key of 5000 bytes/);
  throwsCode(() => db.put('k', new Uint8Array(2 << 20)), 'INVALID_ARGUMENT', /value of 2097152 bytes/);
  throwsCode(() => db.range('b', 'a'), 'INVALID_ARGUMENT', /sorts before/);
  throwsCode(() => db.range(undefined, undefined, -1), 'INVALID_ARGUMENT', /limit/);
  throwsCode(() => db.range(undefined, undefined, 1.5), 'INVALID_ARGUMENT', /limit/);
  const t = db.begin();
  throwsCode(() => t.put('', 'x'), 'INVALID_ARGUMENT', /empty key/);
  assert.equal(t.commit(), t.revision, 'the transaction stays usable after a refused op');
  db.close();
  db.close();
  throwsCode(() => db.get('k'), 'CLOSED');
  throwsCode(() => db.put('k', 'v'), 'CLOSED');
  throwsCode(() => db.begin(), 'CLOSED');
  assert.equal(db.storage, 'closed');
});

test('a JS storage object: files survive close and reopen, through flushes and compactions', () => {
  const storage = new MapStorage();
  const name = fresh('js');
  let db = Db.open(name, storage, { memtableBytes: 64 * 1024 });
  assert.equal(db.storage, 'js');
  const value = 'v'.repeat(200);
  for (let i = 0; i < 3000; i++) db.put(`key-${String(i).padStart(5, '0')}`, `${i}:${value}`);
  for (let i = 0; i < 3000; i += 3) db.delete(`key-${String(i).padStart(5, '0')}`);
  assert.ok(storage.calls.sync > 0, 'each acknowledged write synced its log');
  assert.ok(storage.calls.writeFile > 1, 'flushes wrote table files');
  assert.ok([...storage.files.keys()].every((p) => p.startsWith(name + '/')));
  const before = pairs(db.range());
  db.close();
  db = Db.open(name, storage, { memtableBytes: 64 * 1024 });
  assert.deepEqual(pairs(db.range()), before);
  assert.equal(db.getString('key-00001'), `1:${value}`);
  assert.equal(db.get('key-00000'), undefined);
  assert.ok(storage.calls.read > 0, 'reads went to the table files');
  // A new write after reopen gets a revision above every earlier one.
  const w = db.watch('key-0000', 1);
  const revs = w.poll().map((b) => b.revision);
  const r = db.put('key-00001', 'new');
  assert.ok(revs.length > 0 && r > revs[revs.length - 1]);
  db.close();
});

test('storage failures surface as STORAGE errors and leave acknowledged data intact', () => {
  const storage = new MapStorage();
  const name = fresh('fail');
  const db = Db.open(name, storage);
  db.put('safe', '1');
  storage.failAppends = true;
  throwsCode(() => db.put('lost', '1'), 'STORAGE', /injected append failure/);
  storage.failAppends = false;
  db.close();
  const again = Db.open(name, storage);
  assert.equal(again.getString('safe'), '1');
  assert.equal(again.get('lost'), undefined);
  again.close();
  const broken = new MapStorage();
  broken.list = () => {
    throw new Error('quota exceeded');
  };
  throwsCode(() => Db.open(fresh('broken'), broken), 'STORAGE', /quota exceeded/);
});

test('memory stores are kept by name until destroyed; durability "manual" needs sync', () => {
  const name = fresh('mem');
  let db = Db.open(name);
  db.put('a', '1');
  db.close();
  db = Db.open(name, 'memory', { durability: 'manual' });
  assert.equal(db.getString('a'), '1');
  db.put('b', '2');
  db.sync();
  db.close();
  assert.equal(Db.destroyMemory(name), true);
  db = Db.open(name);
  assert.equal(db.get('a'), undefined);
  db.close();
});

// ----- the OPFS pool over fake synchronous access handles -----

class FakeSah {
  constructor(file) {
    this.file = file;
    this.open = true;
    this.flushed = 0;
  }
  check() {
    if (!this.open) throw new Error('closed handle');
  }
  getSize() {
    this.check();
    return this.file.data.length;
  }
  read(buf, { at }) {
    this.check();
    const part = this.file.data.subarray(at, at + buf.length);
    buf.set(part);
    return part.length;
  }
  write(buf, { at }) {
    this.check();
    const end = at + buf.length;
    if (end > this.file.data.length) {
      const g = new Uint8Array(end);
      g.set(this.file.data);
      this.file.data = g;
    }
    this.file.data.set(buf, at);
    return buf.length;
  }
  truncate(n) {
    this.check();
    const g = new Uint8Array(n);
    g.set(this.file.data.subarray(0, n));
    this.file.data = g;
  }
  flush() {
    this.check();
    this.flushed++;
  }
  close() {
    this.open = false;
  }
}

class FakeDir {
  constructor() {
    this.files = new Map();
  }
  async getFileHandle(name, { create } = {}) {
    if (!this.files.has(name)) {
      if (!create) throw new Error('NotFoundError');
      this.files.set(name, { data: new Uint8Array(0) });
    }
    const file = this.files.get(name);
    return { kind: 'file', createSyncAccessHandle: async () => new FakeSah(file) };
  }
  async *entries() {
    for (const name of [...this.files.keys()]) yield [name, await this.getFileHandle(name)];
  }
}

test('OPFS pool: a store on pre-opened slots survives a "reload"; the name map survives a torn copy', async () => {
  const dir = new FakeDir();
  let pool = await SahPool.open(dir, { capacity: 8 });
  assert.equal(pool.freeSlots().length, 8);
  let db = Db.open('notes', pool, { memtableBytes: 64 * 1024 });
  for (let i = 0; i < 1500; i++) db.put(`n${i}`, 'x'.repeat(100));
  db.put('hello', 'world');
  // The pool runs low on slots as tables appear; the worker grows it between requests.
  await pool.grow(8);
  db.flush();
  db.put('after-flush', 'yes');
  const want = pairs(db.range());
  db.close();
  pool.close();

  // "Reload": a new pool over the same directory finds the map and the files.
  pool = await SahPool.open(dir, { capacity: 8 });
  db = Db.open('notes', pool);
  assert.deepEqual(pairs(db.range()), want);
  assert.equal(db.getString('hello'), 'world');
  assert.equal(db.getString('after-flush'), 'yes');
  db.close();
  // A store of another name in the same pool is separate.
  const other = Db.open('other', pool);
  assert.equal(other.get('hello'), undefined);
  other.put('mine', '1');
  other.close();
  const seq = pool.seq;
  pool.close();

  // Tear the newest map copy: the pool falls back to the previous one (one change older).
  const map = dir.files.get('map');
  const at = seq % 2 === 0 ? 0 : REGION;
  map.data[at + 20] ^= 0xff;
  pool = await SahPool.open(dir, { capacity: 8 });
  assert.equal(pool.seq, seq - 1);
  pool.close();

  // Out of slots: a clear ENOSPC from the storage becomes a STORAGE error.
  const small = await SahPool.open(new FakeDir(), { capacity: 1 });
  const full = Db.open('tiny', small, { memtableBytes: 64 * 1024 });
  let err;
  try {
    for (let i = 0; i < 5000; i++) full.put(`k${i}`, 'y'.repeat(100));
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the pool filled up');
  assert.equal(err.code, 'STORAGE');
  assert.match(err.message, /no (free slot|space)/);
});

// ----- model-based: random operations against a JS Map -----

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function modelRange(model, from, to, limit, reverse) {
  let keys = [...model.keys()].filter((k) => (from === undefined || k >= from) && (to === undefined || k < to)).sort();
  if (reverse) keys.reverse();
  if (limit !== undefined) keys = keys.slice(0, limit);
  return keys.map((k) => [k, model.get(k)]);
}

test('model: random puts, deletes, transactions, ranges, flushes and reopens match a Map', () => {
  const steps = Number(process.env.STRATA_DB_MODEL_STEPS || 1500);
  for (const seed of [1, 2, 3]) {
    const rnd = mulberry32(seed);
    const pick = (n) => Math.floor(rnd() * n);
    const key = () => `k${String(pick(120)).padStart(3, '0')}`;
    const storage = new MapStorage();
    const name = `model-${seed}`;
    const opts = { memtableBytes: 64 * 1024 };
    let db = Db.open(name, storage, opts);
    const model = new Map();
    const ctx = () => `seed ${seed}`;
    const counts = { conflicts: 0, commits: 0, reopens: 0 };
    for (let step = 0; step < steps; step++) {
      const r = rnd();
      if (r < 0.35) {
        const k = key();
        const v = `v${step}-${'p'.repeat(pick(300))}`;
        db.put(k, v);
        model.set(k, v);
      } else if (r < 0.45) {
        const k = key();
        db.delete(k);
        model.delete(k);
      } else if (r < 0.65) {
        const k = key();
        assert.equal(db.getString(k), model.get(k), `${ctx()} step ${step} get ${k}`);
      } else if (r < 0.75) {
        let from = rnd() < 0.2 ? undefined : key();
        let to = rnd() < 0.2 ? undefined : key();
        if (from !== undefined && to !== undefined && to < from) [from, to] = [to, from];
        const limit = rnd() < 0.5 ? undefined : pick(20);
        const reverse = rnd() < 0.5;
        assert.deepEqual(pairs(db.range(from, to, limit, reverse)), modelRange(model, from, to, limit, reverse), `${ctx()} step ${step} range`);
      } else if (r < 0.9) {
        // A transaction reading its own writes; sometimes a commit in between conflicts.
        const t = db.begin();
        const writes = new Map(); // key -> value | null (delete)
        const seen = (k) => (writes.has(k) ? writes.get(k) ?? undefined : model.get(k));
        const n = 1 + pick(5);
        for (let i = 0; i < n; i++) {
          const k = key();
          if (rnd() < 0.3) {
            assert.equal(str(t.get(k)), seen(k), `${ctx()} step ${step} txn get ${k}`);
          } else if (rnd() < 0.8) {
            t.put(k, `t${step}.${i}`);
            writes.set(k, `t${step}.${i}`);
          } else {
            t.delete(k);
            writes.set(k, null);
          }
        }
        let clash = null;
        if (rnd() < 0.3) {
          clash = rnd() < 0.7 && writes.size > 0 ? [...writes.keys()][pick(writes.size)] : key();
          db.put(clash, `clash${step}`);
          model.set(clash, `clash${step}`);
        }
        try {
          t.commit();
          assert.ok(clash === null || !writes.has(clash), `${ctx()} step ${step}: a conflicting commit succeeded`);
          for (const [k, v] of writes) if (v === null) model.delete(k); else model.set(k, v);
          counts.commits++;
        } catch (e) {
          assert.equal(e.code, 'WRITE_CONFLICT', `${ctx()} step ${step}: ${e.message}`);
          assert.ok(writes.has(clash), `${ctx()} step ${step}: conflict without a clash`);
          assert.equal(str(e.key), clash);
          counts.conflicts++;
        }
      } else if (r < 0.95) {
        db.flush();
      } else {
        db.close();
        db = Db.open(name, storage, opts);
        counts.reopens++;
      }
    }
    assert.deepEqual(pairs(db.range()), modelRange(model), `${ctx()} final state`);
    assert.ok(counts.conflicts > 5 && counts.commits > 50 && counts.reopens > 5, `${ctx()} exercised: ${JSON.stringify(counts)}`);
    db.close();
  }
});
