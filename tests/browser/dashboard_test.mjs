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
//  2. With API keys, a drift baseline beside the model (profile-data on the two sample images)
//     and sampling at rate 1: the shell is served anonymously; /v1/dashboard/*, drift and
//     samples need the monitor permission (401 without credentials, 403 for an inferencer key
//     or a viewer key scoped to other models, 200 for a viewer key); no stored sample file holds
//     a key. In the page, a viewer key typed into the token field shows the model, the drift
//     panel's per-feature PSI rows with the thresholds and the window filled by the requests,
//     and the recent-samples panel lists the requests sent (by their X-Request-Id), with no
//     console error once the key is in. Screenshot: OUT/dashboard-monitor.png.
//
// Usage: node dashboard_test.mjs --cvdeploy BIN --assets DIR --out DIR [--browser-deps DIR]
// Exit 0 on success, 1 on a failed check (the message says which), 77 when chromium or
// puppeteer-core is missing (CTest: SKIP_RETURN_CODE).
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
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
async function startServer(extra, model = MODEL) {
  const proc = spawn(BIN, ['serve', '--model', model, '--host', '127.0.0.1', '--port', '0',
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
// `allow401`: the page's requests before an API key is entered answer 401 on purpose.
function watchConsole(page, allow401 = false) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = (m.location() && m.location().url) || '';
    if (/Failed to load resource/.test(m.text()) && /\/v1\/models\/[^/]+\/(drift|samples)$/.test(url)) return;
    if (allow401 && /Failed to load resource.* 401/.test(m.text())) return;
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

// DIR/model/yolo11n-dq.onnx (a link to the asset) with baseline.json beside it, profiled on
// the two sample images. Returns the model path.
function modelWithBaseline(dir) {
  const images = path.join(dir, 'images');
  const modelDir = path.join(dir, 'model');
  mkdirSync(images);
  mkdirSync(modelDir);
  for (const f of ['bus.jpg', 'zidane.jpg']) copyFileSync(path.join(ASSETS, 'images', f), path.join(images, f));
  const model = path.join(modelDir, 'yolo11n-dq.onnx');
  symlinkSync(MODEL, model);
  execFileSync(BIN, ['profile-data', '--model', model, '--images', images, '--out', path.join(modelDir, 'baseline.json')],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  return model;
}

// Every file under `dir`, recursively.
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
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
    const store = path.join(dir, 'samples');
    const s = await startServer(['--keys-file', keys, '--sample-rate', '1', '--sample-dir', store],
      modelWithBaseline(dir));
    try {
      const get = async (p, k) => (await fetch(s.base + p, {
        headers: k ? { Authorization: `Bearer ${k}` } : {} })).status;
      check(await get('/dashboard') === 200, 'shell not served anonymously');
      check(await get('/dashboard/app.js') === 200, 'app.js not served anonymously');
      const monitored = ['/v1/dashboard/history', '/v1/dashboard/models', '/v1/models/yolo11n-dq/drift',
        '/v1/models/yolo11n-dq/samples'];
      for (const p of monitored) {
        check(await get(p) === 401, `${p} without credentials: not 401`);
        check(await get(p, inferencer) === 403, `${p} with an inferencer key: not 403`);
        check(await get(p, viewer) === 200, `${p} with a viewer key: not 200`);
      }
      // A key scoped to other models sees none of this one's data.
      const scopedGet = async (p) => (await fetch(s.base + p, { headers: { Authorization: `Bearer ${scoped}` } })).json();
      const listed = await scopedGet('/v1/dashboard/models');
      check(Array.isArray(listed.models) && listed.models.length === 0, `scoped key sees ${JSON.stringify(listed)}`);
      const hist = await scopedGet('/v1/dashboard/history');
      check(hist.models && Object.keys(hist.models).length === 0, `scoped key sees history ${Object.keys(hist.models)}`);
      for (const p of monitored.slice(2)) check(await get(p, scoped) === 403, `${p} of an out-of-scope model: not 403`);
      // A viewer may watch but not infer.
      const denied = await fetch(`${s.base}/v1/models/yolo11n-dq/predict`, {
        method: 'POST', headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${viewer}` }, body: readFileSync(IMAGE) });
      check(denied.status === 403, `predict with a viewer key: HTTP ${denied.status}`);

      // Two sampled requests from the application's key, then what the operator sees.
      const ids = ['dash-sample-1', 'dash-sample-2'];
      for (const id of ids) await predict(s.base, { Authorization: `Bearer ${inferencer}`, 'X-Request-Id': id });

      const page = await browser.newPage();
      const errors = watchConsole(page, true);
      await page.setViewport({ width: 1280, height: 1100 });
      await page.goto(`${s.base}/dashboard`, { waitUntil: 'load' });
      await page.waitForFunction(() => /authentication required/.test(document.getElementById('status').textContent), { timeout: 10000 });
      await page.type('#token', viewer);
      await page.click('#auth-form button[type="submit"]');
      await page.waitForSelector('tr[data-model="yolo11n-dq"]', { timeout: 20000 });
      const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
      check(stored[0] === 1 && stored[1] === 0, `token storage: session ${stored[0]}, local ${stored[1]}`);

      // Drift: a row per feature with a PSI and a level, the thresholds and the filled window.
      await page.waitForFunction(() => /window 2 of /.test(document.getElementById('drift').textContent), { timeout: 20000 });
      const drift = await page.$$eval('table[data-drift="on"] tr[data-feature]', (trs) =>
        trs.map((tr) => [tr.dataset.feature, tr.dataset.level, tr.children[1].textContent]));
      const names = drift.map((d) => d[0]);
      for (const f of ['brightness', 'sharpness', 'saturation', 'detections', 'class']) {
        check(names.includes(f), `drift panel lacks ${f}: ${names}`);
      }
      check(drift.every((d) => ['ok', 'warn', 'alert'].includes(d[1]) && Number.isFinite(Number(d[2]))),
        `drift rows without a level or PSI: ${JSON.stringify(drift)}`);
      const driftText = await page.$eval('#drift', (e) => e.textContent);
      check(/PSI thresholds: warn 0\.1, alert 0\.25/.test(driftText), `drift thresholds not shown: ${driftText}`);

      // Samples: both requests listed by their request ids, with the stored input's name.
      await page.waitForFunction((want) => want.every((id) => document.querySelector(`li[data-sample="${id}"]`)),
        { timeout: 20000 }, ids);
      const head = await page.$eval('h3[data-samples="on"]', (h) => h.textContent);
      check(/sampling at 1/.test(head), `samples panel head: ${head}`);
      const item = await page.$eval(`li[data-sample="${ids[0]}"]`, (li) => li.textContent);
      check(item.includes('input.jpg') && item.includes('image'), `sample item: ${item}`);
      await sleep(300);
      const panels = await page.$eval('#drift-panel', (e) => { const r = e.getBoundingClientRect(); return [r.y, r.height]; });
      const samplesBox = await page.$eval('#samples-panel', (e) => { const r = e.getBoundingClientRect(); return [r.y, r.height]; });
      const top = Math.min(panels[0], samplesBox[0]);
      const bottom = Math.max(panels[0] + panels[1], samplesBox[0] + samplesBox[1]);
      await page.screenshot({ path: path.join(OUT, 'dashboard-monitor.png'),
        clip: { x: 0, y: top, width: 1280, height: bottom - top }, captureBeyondViewport: true });
      check(errors.length === 0, `console errors: ${errors.join('; ')}`);
      await page.close();

      // The samples are on disk, and none of their files holds a key.
      const files = filesUnder(store);
      check(files.some((f) => f.endsWith('meta.json')), `no sample under ${store}`);
      for (const f of files) {
        const text = readFileSync(f).toString('latin1');
        for (const k of [viewer, inferencer, scoped]) check(!text.includes(k.slice(4)), `${f} holds an API key`);
      }
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
