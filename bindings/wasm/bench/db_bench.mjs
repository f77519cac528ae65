// The embedded store's put/get workload in wasm under Node: Strata (`pkg/node`, the memory
// backend) and, when built, redb 4 compiled to wasm with its in-memory backend
// (`bench/redb-wasm/pkg`). Both are driven through the same kind of calls (one JS → wasm call
// per put and per get, keys and values as Uint8Array), on the same data as the native
// example `examples/db_bench.rs`: 16-byte keys and 100-byte values from SplitMix64 seeded 42.
// Each put is one transaction (Strata: a one-phase commit, durability "manual"; redb: a write
// transaction committed with Durability::None), each get one read.
// Each phase reports wall time and the main thread's on-CPU time (`/proc/thread-self/schedstat`
// on Linux, else null): the machine is shared, and CPU time is what survives the load.
//   node bindings/wasm/bench/db_bench.mjs [keys] [rounds]      (run.sh builds and runs all)
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const n = Number(process.argv[2] || 100_000);
const rounds = Number(process.argv[3] || 3);

const M = (1n << 64n) - 1n;
let state = 42n;
function next() {
  state = (state + 0x9e3779b97f4a7c15n) & M;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
  return z ^ (z >> 31n);
}
function fill(buf) {
  for (let i = 0; i < buf.length; i += 8) {
    let x = next();
    for (let j = i; j < Math.min(i + 8, buf.length); j++) {
      buf[j] = Number(x & 0xffn);
      x >>= 8n;
    }
  }
  return buf;
}
const keys = [];
const values = [];
for (let i = 0; i < n; i++) {
  keys.push(fill(new Uint8Array(16)));
  values.push(fill(new Uint8Array(100)));
}

function same(a, b) {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// This thread's on-CPU nanoseconds so far (Linux), or null.
function threadCpuNs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}
const cpuMs = (from, to) => (from === null || to === null ? null : +((to - from) / 1e6).toFixed(1));

function run(engine, open) {
  for (let round = 0; round < rounds; round++) {
    const db = open(round);
    let c = threadCpuNs();
    let t = performance.now();
    for (let i = 0; i < n; i++) db.put(keys[i], values[i]);
    const put_ms = performance.now() - t;
    const put_cpu_ms = cpuMs(c, (c = threadCpuNs()));
    t = performance.now();
    let found = 0;
    for (let i = 0; i < n; i++) if (same(db.get(keys[i]), values[i])) found++;
    const get_ms = performance.now() - t;
    const get_cpu_ms = cpuMs(c, threadCpuNs());
    if (found !== n) throw new Error(`${engine}: read back ${found} of ${n}`);
    console.log(JSON.stringify({ engine, round, keys: n, put_ms: +put_ms.toFixed(1), get_ms: +get_ms.toFixed(1), put_cpu_ms, get_cpu_ms }));
    if (db.close) db.close();
  }
}

const { Db } = require(here('../pkg/node/strata_wasm.js'));
run('strata-wasm', (round) => Db.open(`bench-${round}`, 'memory', { durability: 'manual', memtableBytes: 64 << 20 }));
const redbPkg = here('./redb-wasm/pkg/redb_wasm_bench.js');
if (existsSync(redbPkg)) {
  const { RedbMem } = require(redbPkg);
  run('redb-wasm', () => RedbMem.open());
} else {
  console.error('redb-wasm not built (bench/run.sh builds it): skipped');
}
