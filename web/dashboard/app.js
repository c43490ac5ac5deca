// SPDX-License-Identifier: Apache-2.0
// The cvdeploy dashboard: polls the server's monitor endpoints and draws plain SVG charts.
// No inline script (CSP script-src 'self'); untrusted text is only ever set as textContent.
// The API key / token lives in sessionStorage (this tab only) and is sent as a Bearer header.

const TOKEN_KEY = 'cvdeploy.dashboard.token';
const $ = (id) => document.getElementById(id);
const state = { models: [], interval: 5, timer: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

// GET a JSON document; returns {status, body} (body null when not JSON). Never throws for HTTP
// errors; a network failure becomes status 0.
async function getJson(path) {
  try {
    const r = await fetch(path, { headers: headers(), cache: 'no-store' });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body };
  } catch (e) {
    return { status: 0, body: null };
  }
}

function authProblem(status) {
  if (status === 401) return 'authentication required: enter an API key or token with the monitor permission';
  if (status === 403) return 'this key or token lacks the monitor permission';
  return null;
}

function fmt(v, digits = 1) {
  return v === null || v === undefined ? '–' : Number(v).toFixed(digits);
}

function renderModels(models) {
  const body = $('models').querySelector('tbody');
  body.replaceChildren();
  for (const m of models) {
    for (const v of m.versions) {
      const golden = v.golden === undefined ? '–' : v.golden;
      const opt = v.optimizations === null || v.optimizations === undefined
        ? el('span', { class: 'muted' }, 'none recorded')
        : el('pre', {}, JSON.stringify(v.optimizations, null, 1));
      body.append(el('tr', { 'data-model': m.name },
        el('td', {}, m.name), el('td', {}, v.version),
        el('td', { class: v.ready ? 'ok' : 'bad' }, v.state + (v.reason ? `: ${v.reason}` : '')),
        el('td', {}, v.load_ms === undefined ? '–' : `${fmt(v.load_ms / 1000, 2)} s`),
        el('td', { class: golden === 'passed' ? 'ok' : 'muted' }, golden),
        el('td', {}, v.task ? `${v.task} ${v.imgsz.join('×')}, ${v.classes} classes` : '–'),
        el('td', {}, opt)));
    }
  }
  const select = $('try-model');
  const chosen = select.value;
  select.replaceChildren(...models.map((m) => el('option', { value: m.name }, m.name)));
  if (models.some((m) => m.name === chosen)) select.value = chosen;
}

// One line chart: `series` is [{name, values}] over the shared `times`.
function chart(title, id, times, series, unit) {
  const W = 300, H = 120, P = 22;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  const dataMax = all.length ? Math.max(...all) : 0;
  const max = Math.max(1e-9, dataMax) * 1.1;
  const t0 = times.length ? times[0] : 0, t1 = times.length ? times[times.length - 1] : 1;
  const x = (t) => P + (W - P - 4) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
  const y = (v) => H - P + 6 - (H - P) * (v / max);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, id, 'data-points': String(times.length), 'data-max': String(dataMax) });
  svg.append(svgEl('line', { class: 'axis', x1: P, y1: H - P + 6, x2: W, y2: H - P + 6 }));
  const top = svgEl('text', { x: 2, y: 10 });
  top.textContent = `${fmt(max / 1.1, 2)} ${unit}`;
  svg.append(top);
  const last = [];
  series.forEach((s, i) => {
    const pts = [];
    s.values.forEach((v, j) => { if (v !== null && Number.isFinite(v)) pts.push(`${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`); });
    svg.append(svgEl('polyline', { class: `s${i}`, points: pts.join(' ') }));
    // A value between two gaps (an interval with requests between idle ones) is a dot.
    const ok = (v) => v !== null && v !== undefined && Number.isFinite(v);
    s.values.forEach((v, j) => {
      if (ok(v) && !ok(s.values[j - 1]) && !ok(s.values[j + 1])) {
        svg.append(svgEl('circle', { class: `s${i} dot`, cx: x(times[j]).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
      }
    });
    const seen = s.values.filter(ok);
    const lv = seen.length ? seen[seen.length - 1] : null;
    last.push(el('span', { class: `s${i}` }, `${s.name} ${fmt(lv, 2)}`));
  });
  svg.setAttribute('data-last', series.map((s) => s.values[s.values.length - 1] ?? '').join(','));
  return el('div', { class: 'chart' }, el('h3', {}, title), svg, el('div', { class: 'legend' }, ...last));
}

function renderHistory(doc) {
  $('history-info').textContent = `every ${doc.interval_s} s, last ${doc.points} samples`;
  const charts = $('charts');
  charts.replaceChildren();
  for (const [model, h] of Object.entries(doc.models)) {
    const s = h.samples;
    const t = s.map((p) => p.t);
    const col = (k) => s.map((p) => p[k]);
    const safe = model.replace(/[^A-Za-z0-9_-]/g, '_');
    charts.append(
      chart(`${model}: throughput`, `chart-throughput-${safe}`, t, [{ name: 'req/s', values: col('throughput_rps') }], 'req/s'),
      chart(`${model}: latency`, `chart-latency-${safe}`, t, [
        { name: 'p50', values: col('p50_ms') }, { name: 'p95', values: col('p95_ms') },
        { name: 'p99', values: col('p99_ms') }], 'ms'),
      chart(`${model}: queue depth`, `chart-queue-${safe}`, t, [{ name: 'queued', values: col('queue_depth') }], ''),
      chart(`${model}: error ratio`, `chart-errors-${safe}`, t, [{ name: 'errors', values: col('error_ratio') }], ''));
  }
  if (!charts.childElementCount) charts.append(el('p', { class: 'muted' }, 'no model is serving'));
}

async function renderDrift(models) {
  const box = $('drift');
  const parts = [];
  for (const m of models) {
    const r = await getJson(`/v1/models/${encodeURIComponent(m.name)}/drift`);
    const head = el('h3', {}, m.name);
    if (r.status === 404) { parts.push(head, el('p', { class: 'muted', 'data-drift': 'none' }, 'no drift baseline')); continue; }
    if (r.status !== 200 || !r.body) { parts.push(head, el('p', { class: 'bad' }, authProblem(r.status) || `drift: HTTP ${r.status}`)); continue; }
    const th = r.body.thresholds || { warn: 0.1, alert: 0.25 };
    const win = r.body.window || {};
    // A bar per feature: PSI against the thresholds (full width = 2 x alert). Its width is set
    // through the CSSOM: the CSP (style-src 'self') refuses style attributes.
    const bar = (psi, level) => {
      const fill = el('span', { class: `fill ${level || ''}` });
      fill.style.width = `${Math.min(100, (100 * (psi || 0)) / (2 * th.alert)).toFixed(1)}%`;
      return el('span', { class: 'bar' }, fill);
    };
    const rows = Object.entries(r.body.features || {}).map(([name, f]) =>
      el('tr', { 'data-feature': name, 'data-level': f.level || '' }, el('td', {}, name), el('td', {}, fmt(f.psi, 3)),
        el('td', {}, bar(f.psi, f.level)), el('td', { class: f.level || '' }, f.level || '')));
    const summary = r.body.alert ? el('p', { class: 'alert' }, `ALERT: a feature is at PSI >= ${th.alert}`) : '';
    parts.push(head, el('p', { class: 'muted' },
      `PSI thresholds: warn ${th.warn}, alert ${th.alert}; window ${win.filled ?? '–'} of ${win.size ?? '–'} requests; ` +
      `baseline ${r.body.baseline_images ?? '–'} images`), summary,
    el('table', { 'data-drift': 'on' }, el('thead', {}, el('tr', {}, el('th', {}, 'feature'), el('th', {}, 'PSI'),
      el('th', {}, ''), el('th', {}, 'level'))), el('tbody', {}, ...rows)));
  }
  box.replaceChildren(...parts);
}

async function renderSamples(models) {
  const box = $('samples');
  const parts = [];
  for (const m of models) {
    const r = await getJson(`/v1/models/${encodeURIComponent(m.name)}/samples`);
    if (r.status === 404) { parts.push(el('p', { class: 'muted', 'data-samples': 'off' }, `${m.name}: sampling off`)); continue; }
    if (r.status !== 200 || !r.body) { parts.push(el('p', { class: 'bad' }, `${m.name}: ${authProblem(r.status) || `HTTP ${r.status}`}`)); continue; }
    // Metadata only (the endpoint never serves an image): time, request id, version, input.
    const items = (r.body.samples || []).slice(-10).map((s) => el('li', { 'data-sample': s.request_id },
      `${s.time} ${s.request_id} v${s.version} ${s.kind} ${s.input || '(input not stored)'}` +
      `${s.redacted ? ` redacted ${s.redacted_regions}` : ''}` +
      `${s.timings_ms && s.timings_ms.inference !== undefined ? ` ${s.timings_ms.inference.toFixed(1)} ms` : ''}`));
    parts.push(el('h3', { 'data-samples': 'on' }, `${m.name}: sampling at ${r.body.rate}, ${(r.body.stored_bytes / 1048576).toFixed(1)} of ${(r.body.max_bytes / 1048576).toFixed(0)} MiB` +
      `${r.body.redact ? ', persons redacted' : ''}`),
      items.length ? el('ol', {}, ...items) : el('p', { class: 'muted' }, 'no sample yet'));
  }
  box.replaceChildren(...parts);
}

async function refreshModels() {
  const r = await getJson('/v1/dashboard/models');
  if (r.status !== 200) { setStatus(authProblem(r.status) || `models: HTTP ${r.status}`, true); return false; }
  state.models = r.body.models;
  renderModels(state.models);
  await Promise.all([renderDrift(state.models), renderSamples(state.models)]);
  return true;
}

async function refreshHistory() {
  const r = await getJson('/v1/dashboard/history');
  if (r.status !== 200) { setStatus(authProblem(r.status) || `history: HTTP ${r.status}`, true); return; }
  state.interval = r.body.interval_s || 5;
  renderHistory(r.body);
  setStatus(`updated ${new Date().toLocaleTimeString()}`);
}

async function refresh() {
  if (await refreshModels()) await refreshHistory();
  clearTimeout(state.timer);
  state.timer = setTimeout(refresh, Math.max(1000, Math.min(state.interval, 10) * 1000));
}

async function tryImage(ev) {
  ev.preventDefault();
  const file = $('try-file').files[0];
  const model = $('try-model').value;
  const status = $('try-status');
  if (!file || !model) { status.textContent = 'choose a model and an image'; return; }
  status.textContent = 'predicting…';
  let r;
  try {
    r = await fetch(`/v1/models/${encodeURIComponent(model)}/predict`, {
      method: 'POST', headers: { ...headers(), 'Content-Type': file.type || 'application/octet-stream' }, body: file });
  } catch (e) { status.textContent = 'request failed'; return; }
  const body = await r.json().catch(() => null);
  if (!r.ok || !body) { status.textContent = `HTTP ${r.status}: ${(body && body.error) || ''}`; return; }
  const img = await createImageBitmap(file);
  const canvas = $('try-canvas');
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const dets = body.detections || [];
  ctx.lineWidth = Math.max(2, img.width / 300);
  ctx.font = `${Math.max(12, Math.round(img.width / 40))}px sans-serif`;
  const list = $('try-detections');
  list.replaceChildren();
  dets.forEach((d, i) => {
    const hue = (d.class_id * 47) % 360;
    ctx.strokeStyle = ctx.fillStyle = `hsl(${hue} 80% 45%)`;
    if (d.box) {
      const { x1, y1, x2, y2 } = d.box;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillText(`${d.class_name} ${d.confidence.toFixed(2)}`, x1 + 3, Math.max(12, y1 - 4));
    }
    list.append(el('li', { 'data-class': d.class_name }, `${d.class_name} ${d.confidence.toFixed(2)}`));
  });
  canvas.setAttribute('data-detections', String(dets.length));
  status.textContent = `${dets.length} detection(s) in ${fmt(Object.values(body.speed_ms || {}).reduce((a, b) => a + b, 0), 0)} ms`;
}

function init() {
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    $('token').value = '';
    refresh();
  });
  $('token-clear').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); refresh(); });
  $('try-form').addEventListener('submit', tryImage);
  refresh();
}

init();
