// Reads the JSON lines of db_bench (native example, db_bench.mjs) on stdin and prints, per
// engine, the best round of each phase (wall and thread CPU ms) and the ratios issue 7 sets
// goals on, always computed the same way: best wasm round ÷ best native round (time; goal
// ≤ 1.5), and best redb-wasm round ÷ best strata-wasm round (speed; goal ≥ 1).
//   ... | node bindings/wasm/bench/summary.mjs        (run.sh pipes every run through it)
import { readFileSync } from 'node:fs';

const best = {};
for (const line of readFileSync(0, 'utf8').split('\n')) {
  if (!line.startsWith('{')) continue;
  const r = JSON.parse(line);
  const b = (best[r.engine] ??= { keys: r.keys, rounds: 0 });
  b.rounds++;
  for (const k of ['put_ms', 'get_ms', 'put_cpu_ms', 'get_cpu_ms']) {
    if (typeof r[k] === 'number') b[k] = Math.min(b[k] ?? Infinity, r[k]);
  }
}
const show = (x) => (x === undefined ? '-' : x.toFixed(1));
for (const [engine, b] of Object.entries(best)) {
  console.log(`${engine.padEnd(14)} ${b.keys} keys, best of ${b.rounds}: put ${show(b.put_ms)} ms (cpu ${show(b.put_cpu_ms)}), get ${show(b.get_ms)} ms (cpu ${show(b.get_cpu_ms)})`);
}
const ratio = (a, b, k) => (a && b && a[k] !== undefined && b[k] !== undefined ? (a[k] / b[k]).toFixed(2) + '×' : '-');
const [w, n, r] = [best['strata-wasm'], best['strata-native'], best['redb-wasm']];
for (const [what, k] of [['puts', 'put'], ['gets', 'get']]) {
  console.log(
    `${what}: wasm ÷ native time ${ratio(w, n, k + '_ms')} wall, ${ratio(w, n, k + '_cpu_ms')} cpu (goal ≤ 1.5×);` +
      ` redb-wasm ÷ strata-wasm time ${ratio(r, w, k + '_ms')} wall, ${ratio(r, w, k + '_cpu_ms')} cpu (goal ≥ 1×)`,
  );
}
