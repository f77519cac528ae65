// The real-browser test harness: starts web-demo/serve.mjs on a free port, launches Debian's
// Chromium headless through playwright-core with a fresh user-data dir, and offers small
// helpers (open the demo, wait for a condition, take a screenshot). How to add a test:
// /work/notes/s4/demo-harness.md, and web-demo/README.md.
//
// Environment: CHROMIUM (path of the browser; default /usr/lib/chromium/chromium, then
// /usr/bin/chromium), HEADED=1 (show the window), SLOWMO=ms.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const demoDir = join(here, '..');
export const outputDir = join(demoDir, 'test-output');

/** Flags from the issue: quiet, no sandbox (containers run as root), no network chatter. */
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The Chromium binary to drive. */
export function chromiumPath() {
  const candidates = [process.env.CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no Chromium at ${candidates.join(', ')}: apt-get install -y chromium (or set CHROMIUM)`);
  return found;
}

/** Starts serve.mjs on a free port; resolves to `{ url, stop }` once it prints its URL. */
export function startServer() {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, [join(demoDir, 'serve.mjs'), '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`serve.mjs printed no URL in 10 s: ${out}${err}`)), 10_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) {
        clearTimeout(timer);
        const stop = () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          });
        resolveStart({ url: m[1], stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve.mjs exited with ${code}: ${out}${err}`));
    });
  });
}

/**
 * One browser session for a test file: a server, Chromium with a fresh user-data dir (so
 * OPFS starts empty and survives reloads within the session), and a page.
 * Call `await s.close()` in `after`.
 */
export async function openSession() {
  const server = await startServer();
  const userDataDir = await mkdtemp(join(tmpdir(), 'strata-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath(),
    headless: process.env.HEADED !== '1',
    slowMo: Number(process.env.SLOWMO ?? 0),
    args: chromiumArgs,
    viewport: { width: 1280, height: 860 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  // Everything must be served locally: any request leaving 127.0.0.1 is a failure.
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.push(`external request: ${u}`);
  });
  const session = {
    server,
    context,
    page,
    /** Errors and external requests seen so far (a test asserts this stays empty). */
    problems,
    /** Opens the demo with `query` (e.g. `?seed=7`) or `hash`, and waits until it is ready. */
    async open(suffix = '') {
      await page.goto(server.url + suffix);
      await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      await server.stop();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
  return session;
}

/** Polls `fn` (run in the page with `arg`) until it returns a truthy value; returns it. */
export async function waitFor(page, fn, arg, { timeout = 20_000, what = String(fn) } = {}) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`timed out after ${timeout} ms waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}

/** Saves a full-page screenshot as web-demo/test-output/NAME.png (git-ignored). */
export async function screenshot(page, name) {
  await mkdir(outputDir, { recursive: true });
  const path = join(outputDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
