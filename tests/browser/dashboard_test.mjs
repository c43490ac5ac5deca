// SPDX-License-Identifier: Apache-2.0
// The dashboard in a real headless browser (Debian chromium driven by puppeteer-core from
// .deps/browser; scripts/setup-browser.sh installs both; nothing is downloaded here).
//
//  1. Without auth: `cvdeploy serve` with yolo11n-dq on 127.0.0.1 (port 0, history every
//     0.5 s). /dashboard and its assets carry the security headers; the page loads with no
//     console error (the expected 404s of the absent drift/samples endpoints aside), lists the
//     model, shows "no drift baseline" and "sampling off"; after predict requests the
//     throughput and latency charts get new, non-zero points; "try an image" with bus.jpg
//     draws detections and lists a bus and persons. Screenshot: OUT/dashboard.png.
//  2. With API keys: the shell is served anonymously; /v1/dashboard/* and drift need the
//     monitor permission (401 without credentials, 403 for an inferencer key, 200 for a
//     viewer key); in the page, a viewer key typed into the token field shows the model.
//
// Usage: node dashboard_test.mjs --cvdeploy BIN --assets DIR --out DIR [--browser-deps DIR]
// Exit 0 on success, 1 on a failed check (the message says which), 77 when chromium or
// puppeteer-core is missing (CTest: SKIP_RETURN_CODE).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = args.cvdeploy;
const ASSETS = args.assets || process.env.CVDEPLOY_ASSETS || path.join(root, '../shared/assets');
const OUT = args.out || path.join(root, 'build/test-artifacts/dashboard');
const DEPS = args['browser-deps'] || path.join(root, '.deps/browser');
const CHROMIUM = '/usr/bin/chromium';
const MODEL = path.join(ASSETS, 'models/yolo11n-dq.onnx');
const IMAGE = path.join(ASSETS, 'images/bus.jpg');

function fail(message) {
  console.error(`dashboard_test: FAIL: ${message}`);
  throw new Error(message);
}
function check(cond, message) { if (!cond) fail(message); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let puppeteer;
try {
  puppeteer = createRequire(path.join(DEPS, 'package.json'))('puppeteer-core');
} catch (e) {
  console.error(`dashboard_test: SKIP: puppeteer-core not in ${DEPS} (run scripts/setup-browser.sh)`);
  process.exit(77);
}
if (!existsSync(CHROMIUM)) {
  console.error(`dashboard_test: SKIP: ${CHROMIUM} missing (run scripts/setup-browser.sh)`);
  process.exit(77);
}
check(BIN && existsSync(BIN), `--cvdeploy ${BIN}: no such binary`);
check(existsSync(MODEL) && existsSync(IMAGE), `assets missing under ${ASSETS}`);
mkdirSync(OUT, { recursive: true });

// Starts `cvdeploy serve` and resolves with {proc, base} once it is ready.
async function startServer(extra) {
  const proc = spawn(BIN, ['serve', '--model', MODEL, '--host', '127.0.0.1', '--port', '0',
    '--history-interval', '0.5', '--access-log', '', '--threads', '2', ...extra],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const deadline = Date.now() + 90000;
  while (Date.now() < deadline) {
    const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m && /\bready\b/.test(log)) return { proc, base: `http://127.0.0.1:${m[1]}`, log: () => log };
    if (proc.exitCode !== null) fail(`server exited ${proc.exitCode}: ${log}`);
    await sleep(100);
  }
  proc.kill('SIGTERM');
  fail(`server not ready in 90 s: ${log}`);
}

async function stopServer(s) {
  if (s.proc.exitCode !== null) return;
  s.proc.kill('SIGTERM');
  for (let i = 0; i < 100 && s.proc.exitCode === null; ++i) await sleep(100);
  if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
}

async function predict(base, headers = {}) {
  const r = await fetch(`${base}/v1/models/yolo11n-dq/predict`, {
    method: 'POST', headers: { 'Content-Type': 'image/jpeg', ...headers }, body: readFileSync(IMAGE) });
  check(r.status === 200, `predict: HTTP ${r.status}`);
  await r.arrayBuffer();
}

function checkSecurityHeaders(r, what) {
  const csp = r.headers.get('content-security-policy') || '';
  check(csp.includes("default-src 'self'"), `${what}: CSP without default-src 'self': ${csp}`);
  check(csp.includes("frame-ancestors 'none'"), `${what}: CSP without frame-ancestors 'none'`);
  check(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), `${what}: CSP allows inline/eval`);
  check(r.headers.get('x-content-type-options') === 'nosniff', `${what}: no nosniff`);
  check((r.headers.get('cache-control') || '') !== '', `${what}: no Cache-Control`);
}

function launch() {
  return puppeteer.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

// Console errors and page errors, except the 404s of endpoints the page probes on purpose.
function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    if (/Failed to load resource/.test(m.text()) && /\/v1\/models\/[^/]+\/(drift|samples)$/.test(url)) return;
    errors.push(`${m.text()} (${url})`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return errors;
}

async function chartState(page, id) {
  return page.$eval(`#${id}`, (svg) => ({
    points: Number(svg.getAttribute('data-points')),
    max: Number(svg.getAttribute('data-max')),
    lines: [...svg.querySelectorAll('polyline')].map((p) => p.getAttribute('points')).join('|'),
  }));
}

async function withoutAuth(browser) {
  const s = await startServer([]);
  try {
    for (const p of ['/dashboard', '/dashboard/app.js', '/dashboard/style.css']) {
      const r = await fetch(s.base + p);
      check(r.status === 200, `GET ${p}: HTTP ${r.status}`);
      checkSecurityHeaders(r, p);
    }
    const js = await fetch(`${s.base}/dashboard/app.js`);
    check(js.headers.get('content-type').startsWith('text/javascript'), 'app.js content type');
    check((await fetch(`${s.base}/dashboard/nope.js`)).status === 404, '/dashboard/nope.js: not 404');
    check((await fetch(`${s.base}/v1/dashboard/history`, { method: 'POST' })).status === 405, 'POST history: not 405');

    const page = await browser.newPage();
    const errors = watchConsole(page);
    await page.setViewport({ width: 1280, height: 1100 });
    await page.goto(`${s.base}/dashboard`, { waitUntil: 'load' });
    await page.waitForSelector('tr[data-model="yolo11n-dq"]', { timeout: 20000 });
    const row = await page.$eval('tr[data-model="yolo11n-dq"]', (tr) => tr.textContent);
    check(row.includes('READY'), `model row not ready: ${row}`);
    await page.waitForSelector('[data-drift="none"]', { timeout: 10000 });
    await page.waitForSelector('[data-samples="off"]', { timeout: 10000 });

    await page.waitForSelector('#chart-throughput-yolo11n-dq', { timeout: 20000 });
    const before = await chartState(page, 'chart-throughput-yolo11n-dq');
    check(before.max === 0, `throughput ${before.max} before any request`);
    for (let i = 0; i < 3; ++i) await predict(s.base);
    // The charts must get points with non-zero throughput and latency.
    let after = before, latency = null;
    const until = Date.now() + 30000;
    while (Date.now() < until) {
      await sleep(500);
      after = await chartState(page, 'chart-throughput-yolo11n-dq');
      latency = await chartState(page, 'chart-latency-yolo11n-dq');
      if (after.max > 0 && latency.max > 0) break;
    }
    check(after.max > 0 && after.lines !== before.lines, 'throughput chart did not change after requests');
    check(latency.max > 0, 'latency chart shows no latency after requests');
    const hist = await (await fetch(`${s.base}/v1/dashboard/history`)).json();
    const samples = hist.models['yolo11n-dq'].samples;
    check(hist.interval_s === 0.5 && hist.points === 360, `history settings ${hist.interval_s}, ${hist.points}`);
    check(samples.length <= 360, 'history longer than its ring');
    check(samples.some((x) => x.throughput_rps > 0), 'no sample with throughput > 0');
    check(samples.some((x) => x.p50_ms > 0 && x.p99_ms >= x.p50_ms), 'no sample with latency');

    const input = await page.$('#try-file');
    await input.uploadFile(IMAGE);
    await page.click('#try-form button[type="submit"]');
    await page.waitForSelector('#try-canvas[data-detections]', { timeout: 60000 });
    const classes = await page.$$eval('#try-detections li', (lis) => lis.map((li) => li.dataset.class));
    check(classes.includes('bus'), `no bus among ${classes}`);
    check(classes.filter((c) => c === 'person').length >= 3, `fewer than 3 persons among ${classes}`);
    const canvas = await page.$eval('#try-canvas', (c) => [c.width, c.height]);
    check(canvas[0] === 810 && canvas[1] === 1080, `canvas ${canvas} is not the image's size`);
    await sleep(600);
    await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
    // A small one of the top (models, charts, drift) for the docs.
    await page.screenshot({ path: path.join(OUT, 'dashboard-top.png'), clip: { x: 0, y: 0, width: 1280, height: 780 } });
    check(errors.length === 0, `console errors: ${errors.join('; ')}`);
    await page.close();
  } finally {
    await stopServer(s);
  }
}

async function withAuth(browser) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cvdeploy-dash-'));
  try {
    const keys = path.join(dir, 'keys.json');
    const key = (name, role, extra = []) => execFileSync(BIN, ['keys', 'create', '--name', name, '--role', role,
      '--keys-file', keys, ...extra], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const viewer = key('dash-viewer', 'viewer');
    const inferencer = key('dash-app', 'inferencer');
    const scoped = key('dash-other', 'viewer', ['--models', 'other*']);
    const s = await startServer(['--keys-file', keys]);
    try {
      const get = async (p, k) => (await fetch(s.base + p, {
        headers: k ? { Authorization: `Bearer ${k}` } : {} })).status;
      check(await get('/dashboard') === 200, 'shell not served anonymously');
      check(await get('/dashboard/app.js') === 200, 'app.js not served anonymously');
      for (const p of ['/v1/dashboard/history', '/v1/dashboard/models', '/v1/models/yolo11n-dq/drift']) {
        check(await get(p) === 401, `${p} without credentials: not 401`);
        check(await get(p, inferencer) === 403, `${p} with an inferencer key: not 403`);
      }
      check(await get('/v1/dashboard/history', viewer) === 200, 'history with a viewer key: not 200');
      check(await get('/v1/dashboard/models', viewer) === 200, 'models with a viewer key: not 200');
      // A key scoped to other models sees none of this one's data.
      const scopedGet = async (p) => (await fetch(s.base + p, { headers: { Authorization: `Bearer ${scoped}` } })).json();
      const listed = await scopedGet('/v1/dashboard/models');
      check(Array.isArray(listed.models) && listed.models.length === 0, `scoped key sees ${JSON.stringify(listed)}`);
      const hist = await scopedGet('/v1/dashboard/history');
      check(hist.models && Object.keys(hist.models).length === 0, `scoped key sees history ${Object.keys(hist.models)}`);
      check(await get('/v1/models/yolo11n-dq/drift', scoped) === 403, 'drift of an out-of-scope model: not 403');

      const page = await browser.newPage();
      await page.goto(`${s.base}/dashboard`, { waitUntil: 'load' });
      await page.waitForFunction(() => /authentication required/.test(document.getElementById('status').textContent), { timeout: 10000 });
      await page.type('#token', viewer);
      await page.click('#auth-form button[type="submit"]');
      await page.waitForSelector('tr[data-model="yolo11n-dq"]', { timeout: 20000 });
      const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
      check(stored[0] === 1 && stored[1] === 0, `token storage: session ${stored[0]}, local ${stored[1]}`);
      await page.close();
    } finally {
      await stopServer(s);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const t0 = Date.now();
const browser = await launch();
let code = 0;
try {
  await withoutAuth(browser);
  console.log(`dashboard_test: without auth ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  await withAuth(browser);
  console.log(`dashboard_test: with auth ok; screenshot ${path.join(OUT, 'dashboard.png')}`);
} catch (e) {
  if (!String(e.message).length) console.error(e);
  code = 1;
} finally {
  await browser.close();
}
console.log(`dashboard_test: ${code ? 'FAILED' : 'passed'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(code);
