// The page loads the real engine (wasm) from the local server and makes no external request.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { openSession, screenshot } from './harness.mjs';

let s;
before(async () => {
  s = await openSession();
});
after(async () => {
  await s?.close();
});

test('the page loads the wasm engine and shows its version', async () => {
  const page = await s.open();
  const version = await page.evaluate(() => window.demo.version);
  assert.match(version, /^\d+\.\d+\.\d+/);
  assert.match(await page.textContent('#engine-version'), new RegExp(version.replaceAll('.', '\\.')));
  await screenshot(page, 'load');
  assert.deepEqual(s.problems, []);
});

test('the server serves .wasm as application/wasm and refuses paths outside its folders', async () => {
  const wasm = await fetch(s.server.url + 'pkg/strata_wasm_bg.wasm');
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  // Raw paths (fetch would normalize the dots away before sending).
  const { port } = new URL(s.server.url);
  const status = (path) =>
    new Promise((ok, fail) => get({ host: '127.0.0.1', port, path }, (r) => ok(r.resume() && r.statusCode)).on('error', fail));
  for (const bad of ['/../Cargo.toml', '/%2e%2e/Cargo.toml', '/pkg/../../../Cargo.toml', '/pkg/%2e%2e/%2e%2e/%2e%2e/Cargo.toml', '/node_modules/playwright-core/package.json', '/tests/harness.mjs']) {
    assert.equal(await status(bad), 404, bad);
  }
  assert.equal(await status('/index.html'), 200);
});
