#!/usr/bin/env node
// Serves the demo on 127.0.0.1: web-demo/ at `/`, the wasm binding's web build
// (bindings/wasm/pkg/web) at `/pkg/`, and the binding's OPFS worker glue (bindings/wasm/js)
// at `/js/`. No dependencies; nothing leaves the machine.
//
//   node web-demo/serve.mjs [PORT]        (or PORT=... ; default 8080; 0 picks a free port)
//
// Prints `serving http://127.0.0.1:PORT/` once listening (the tests read that line).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

/** URL prefix → folder. Longest prefix first. */
const mounts = [
  ['/pkg/', join(repo, 'bindings/wasm/pkg/web')],
  ['/js/', join(repo, 'bindings/wasm/js')],
  ['/', here],
];

/** Folders under web-demo/ that are never served. */
const hidden = ['node_modules', 'test-output', 'tests'];

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** The file a URL path names, or null when it is outside every mount or hidden. */
export function resolvePath(urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0].split('#')[0]);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  for (const [prefix, dir] of mounts) {
    if (!path.startsWith(prefix)) continue;
    let rest = path.slice(prefix.length);
    if (rest === '' || rest.endsWith('/')) rest += 'index.html';
    const file = normalize(join(dir, rest));
    if (file !== dir && !file.startsWith(dir + sep)) return null;
    if (dir === here && hidden.some((h) => file.startsWith(join(here, h) + sep))) return null;
    return file;
  }
  return null;
}

async function handle(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const file = resolvePath(req.url ?? '/');
  let body;
  try {
    if (file === null || !(await stat(file)).isFile()) throw new Error('not a file');
    body = await readFile(file);
  } catch {
    const hint = (req.url ?? '').startsWith('/pkg/')
      ? 'not built yet: run `bash bindings/wasm/build.sh` (or `bash web-demo/run.sh`)\n'
      : 'not found\n';
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(hint);
    return;
  }
  res.writeHead(200, {
    'content-type': types[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-store',
    // Same-origin isolation keeps SharedArrayBuffer and OPFS workers available to the page.
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function main() {
  const arg = process.argv[2] ?? process.env.PORT ?? '8080';
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve.mjs: bad port ${JSON.stringify(arg)} (want 0..65535)`);
    process.exit(2);
  }
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      console.error(e);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.on('error', (e) => {
    console.error(`serve.mjs: cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(1);
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(`serving http://127.0.0.1:${server.address().port}/`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
