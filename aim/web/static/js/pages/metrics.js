// Metrics explorer: query, line charts grouped into colours / line styles / charts, EMA or
// centred-moving-average smoothing (computed by the server on every point, before
// downsampling), group aggregation (mean or median, with a min–max, ±std, ±std-err or 95 %
// CI band), x-axis choice (step, epoch, times, or another metric's value), log scales, an
// "ignore outliers" y range, drag / rectangle zoom with a history (Back) that re-queries
// the server at full resolution, tooltip, legend and a table of the series (show / hide,
// value at the cursor, min / max / last). The whole view state lives in the URL. While
// charted runs are being written, new points are fetched with since= and appended.

import { el, clear, errorBox } from '../dom.js';
import { getJSON, getSeries } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { LineChart } from '../chart.js';
import { PALETTE, DASH_STYLES, groupValue, GroupIndex, aggregate } from '../series_ops.js';
import { formatNumber, formatTime, formatValue, seriesLabel, contextLabel } from '../format.js';
import { setUrlState } from '../app.js';
import { pollMs } from '../live_follow.js';

const X_AXES = [['step', 'Step'], ['epoch', 'Epoch'], ['relative_time', 'Relative time (s)'], ['wall_time', 'Wall time']];
const MAX_CHARTS = 24;
const TABLE_PAGE = 100;   // series table rows drawn at first, and added by "Show more"
const AGG_LINES = [['', 'none'], ['mean', 'mean'], ['median', 'median'],
  // the two views this select offered before the band got its own select
  ['minmax', 'mean, min–max'], ['std', 'mean ± std']];
const AGG_BANDS = [['minmax', 'min–max'], ['std', '± std'], ['sem', '± std-err'], ['ci95', '95% CI'], ['', 'no band']];
const isSystem = (name) => name.startsWith('__system__');

// System metrics (__system__*) after the others, the rest in the server's order.
function systemLast(series) {
  if (!series.some((s) => isSystem(s.name))) return series;
  return [...series.filter((s) => !isSystem(s.name)), ...series.filter((s) => isSystem(s.name))];
}

// `smooth` in the URL: an EMA factor ("0.6"), or "cma:<window>".
function parseSmooth(text) {
  if (text && text.startsWith('cma:')) return { kind: 'cma', on: true, factor: 0.6, window: Math.max(3, Number(text.slice(4)) || 11) };
  const f = Number(text || 0);
  return { kind: 'ema', on: f > 0, factor: f > 0 ? f : 0.6, window: 11 };
}

// --- Hidden series in the URL ----------------------------------------------------------
// `hide=` lists the hidden series by a short key each, comma-separated:
// <first 8 characters of the run hash>:<metric name>[:<context key>=<value>...] (context
// keys sorted, string values as they are, others as JSON), e.g.
// hide=3f2a9c1b:loss:subset=train,3f2a9c1b:__system__cpu. A `%`, `,`, `:` or `=` inside a
// part is written %25, %2C, %3A, %3D. Earlier URLs held a JSON list of `run|name|context`
// series keys: they still open, read into the short keys.
const HIDE_HASH = 8;
const escapePart = (v) => String(v).replace(/[%,:=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);

function hideKeyOf(run, name, context) {
  const ctx = context && typeof context === 'object' ? context : {};
  const pairs = Object.keys(ctx).sort().map((k) => {
    const v = ctx[k];
    return `:${escapePart(k)}=${escapePart(typeof v === 'string' ? v : JSON.stringify(v))}`;
  });
  return `${escapePart(String(run).slice(0, HIDE_HASH))}:${escapePart(name)}${pairs.join('')}`;
}

export function hideKey(s) { return hideKeyOf(s.run, s.name, s.context); }

// A series key of the old JSON form (`run|name|{context json}`) as a short key; null when
// it is not one. The run hash holds no `|`; the name may: the context is the first tail
// after a `|` that reads as a JSON object.
function hideKeyFromSeriesKey(key) {
  const first = key.indexOf('|');
  if (first < 0) return null;
  for (let at = key.indexOf('|', first + 1); at >= 0; at = key.indexOf('|', at + 1)) {
    try {
      const ctx = JSON.parse(key.slice(at + 1));
      if (ctx && typeof ctx === 'object' && !Array.isArray(ctx)) return hideKeyOf(key.slice(0, first), key.slice(first + 1, at), ctx);
    } catch (_) { /* a `|` inside the name: try the next one */ }
  }
  return null;
}

export function parseHidden(text) {
  text = (text || '').trim();
  if (!text) return new Set();
  if (text.startsWith('[')) {   // a bookmark from before: a JSON list of series keys
    try {
      const keys = JSON.parse(text);
      return new Set(Array.isArray(keys) ? keys.map((k) => hideKeyFromSeriesKey(String(k))).filter(Boolean) : []);
    } catch (_) { return new Set(); }
  }
  return new Set(text.split(',').filter(Boolean));
}

// The short keys keep `,`, `:` and `=` as they are in the URL (URLSearchParams would write
// %2C, %3A and %3D): everything else as encodeURIComponent writes it.
function hideParam(keys) {
  return encodeURIComponent([...keys].join(',')).replace(/%2C/g, ',').replace(/%3A/g, ':').replace(/%3D/g, '=');
}

// Index of the point of (ascending) xs nearest to x; -1 for an empty series.
function nearestIndex(xs, x) {
  const n = xs.length;
  if (!n) return -1;
  let lo = 0; let hi = n;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
  if (lo >= n) return n - 1;
  if (lo > 0 && x - xs[lo - 1] <= xs[lo] - x) return lo - 1;
  return lo;
}
const LIVE_MS = 5000;    // new points of the live runs charted (since=)
const SLOW_MS = 15000;   // a smoothed view re-read whole (the API refuses since= with
                         // smoothing), and a query view asking whether a run started

function seriesKey(s) { return `${s.run}|${s.name}|${JSON.stringify(s.context || {})}`; }

function concat(a, b) { const out = new Float64Array(a.length + b.length); out.set(a); out.set(b, a.length); return out; }

// Appends the points of `fresh` (an answer to since=) after the last step `old` holds:
// answers may repeat points (since= is the oldest last write among the series), and the
// step, unlike an epoch x, always grows. Returns how many were added.
function appendPoints(old, fresh) {
  const n = old.x.length;
  const lastStep = n ? old.step[n - 1] : -Infinity;
  let from = 0;
  while (from < fresh.n && fresh.step[from] <= lastStep) from++;
  if (from >= fresh.n) return 0;
  const stepIsX = old.step === old.x;
  old.x = concat(old.x, fresh.x.subarray(from));
  old.y = concat(old.y, fresh.y.subarray(from));
  old.step = stepIsX ? old.x : concat(old.step, fresh.step.subarray(from));
  old.n = old.x.length;
  return fresh.n - from;
}

function stateFromUrl(query) {
  const num = (k) => (query.get(k) !== null && query.get(k) !== '' ? Number(query.get(k)) : null);
  const smooth = parseSmooth(query.get('smooth'));
  let agg = query.get('agg') || ''; let band = query.get('band') ?? 'minmax';
  if (agg === 'minmax' || agg === 'std') { band = agg; agg = 'mean'; }  // earlier URLs
  if (!AGG_BANDS.some(([v]) => v === band)) band = '';  // band=none
  return {
    q: query.get('q') || '', runs: query.get('runs') || '',
    x: query.get('x') || 'step',
    smooth: smooth.on ? smooth.factor : 0, skind: smooth.kind, sfactor: smooth.factor, swindow: smooth.window, son: smooth.on,
    // by default a colour per run and a line style per context: train and val differ
    color: query.get('color') ?? 'run.hash', style: query.get('style') ?? 'context',
    chart: query.get('chart') ?? 'metric.name', agg, band,
    log: query.get('log') === '1', logx: query.get('logx') === '1', robust: query.get('robust') === '1',
    xmin: num('xmin'), xmax: num('xmax'), ymin: num('ymin'), ymax: num('ymax'), ychart: query.get('ychart'),
    hidden: parseHidden(query.get('hide')),
  };
}

export async function mount(root, { query }) {
  const state = stateFromUrl(query);
  let data = null;
  let controller = null;
  let drawn = [];   // [{chart, items, colors}]: the charts on the page and the series each shows
  let generation = 0;   // a new view (fetchAndDraw) makes the live updates of the old one stale
  let stopped = false;
  const live = { timer: null, controller: null, wasLive: false };
  let smoothTimer = null;
  let zoomStack = [];   // earlier zooms, for Back: {xmin, xmax, ymin, ymax, ychart}
  let rows = [];        // the series table's rows drawn: {key, s, run, cells}
  let tableLimit = TABLE_PAGE;
  let cursorX = null;   // the data x under the mouse on any chart (null: off the charts)
  let info = new Map(); // series key -> {s, run, ci, si, color, dash, groups}
  const smoothed = () => state.son && (state.skind === 'cma' || state.smooth > 0);
  // The server smooths: ask again once the slider rests for a moment.
  const smoothChanged = () => { clearTimeout(smoothTimer); smoothTimer = setTimeout(fetchAndDraw, 150); };
  const bar = new QueryBar({ value: state.q, withMetric: true,
    placeholder: 'metric.name == "loss" and run.hparams.lr < 0.01',
    onSubmit: (q) => { state.q = q; state.runs = ''; clearZoom(); fetchAndDraw(); } });
  const status = el('span', { class: 'muted', id: 'metrics-status' });
  const liveBadge = el('span', { class: 'badge live', id: 'metrics-live', hidden: true });
  const charts = el('div', { class: 'charts', id: 'charts' });
  const legend = el('div', { class: 'legend', id: 'legend' });
  const table = el('div', { class: 'series-table-box', id: 'series-table' });
  const fieldSelect = (id, key, label) => {
    const select = el('select', { id, 'aria-label': label, onchange: () => { state[key] = select.value; redraw(); } });
    return { select, node: el('label', { class: 'control' }, label, select) };
  };
  const color = fieldSelect('group-color', 'color', 'Colour by');
  const style = fieldSelect('group-style', 'style', 'Line style by');
  const chartBy = fieldSelect('group-chart', 'chart', 'Charts by');
  const xSelect = el('select', { id: 'x-axis', 'aria-label': 'X axis', onchange: () => { state.x = xSelect.value; clearZoom(); fetchAndDraw(); } });
  let metricNames = [];
  const fillXAxes = () => {
    const names = new Set(metricNames);
    for (const s of data?.series || []) names.add(s.name);
    const options = [...X_AXES, ...[...names].sort().map((n) => [`metric:${n}`, `Metric: ${n}`])];
    if (!options.some(([v]) => v === state.x)) options.push([state.x, state.x]);
    xSelect.replaceChildren(...options.map(([v, l]) => el('option', { value: v, text: l, selected: v === state.x })));
  };
  fillXAxes();
  const smooth = el('input', { type: 'range', min: 0, max: 0.99, step: 0.01, id: 'smoothing', value: state.sfactor,
    'aria-label': 'EMA factor', oninput: () => {
      state.sfactor = Number(smooth.value); smoothValue.textContent = smooth.value;
      if (state.son && state.skind === 'ema') { state.smooth = state.sfactor; smoothChanged(); }
    } });
  const smoothValue = el('span', { class: 'muted', text: String(state.sfactor) });
  const smoothWindow = el('input', { type: 'number', min: 3, max: 100001, step: 2, id: 'smoothing-window', value: state.swindow,
    'aria-label': 'CMA window (points)', title: 'centred moving average: points in the window', onchange: () => {
      state.swindow = Math.max(3, Math.min(100001, Math.round(Number(smoothWindow.value)) || 11));
      smoothWindow.value = state.swindow;
      if (state.son && state.skind === 'cma') smoothChanged();
    } });
  const smoothKind = el('select', { id: 'smoothing-kind', 'aria-label': 'Smoothing', onchange: () => {
    state.skind = smoothKind.value; showSmoothInputs(); if (state.son) fetchAndDraw(); else saveUrl();
  } }, el('option', { value: 'ema', text: 'EMA', selected: state.skind === 'ema' }),
  el('option', { value: 'cma', text: 'CMA (centred)', selected: state.skind === 'cma' }));
  const showSmoothInputs = () => {
    const ema = state.skind === 'ema';
    smooth.hidden = !ema; smoothValue.hidden = !ema; smoothWindow.hidden = ema;
    state.smooth = state.son && ema ? state.sfactor : 0;
  };
  const smoothToggle = el('input', { type: 'checkbox', id: 'smoothing-on', checked: state.son, onchange: () => {
    state.son = smoothToggle.checked;
    if (!(state.sfactor > 0)) state.sfactor = 0.6;
    smooth.value = state.sfactor; smoothValue.textContent = String(state.sfactor);
    showSmoothInputs(); fetchAndDraw();
  } });
  showSmoothInputs();
  const agg = el('select', { id: 'aggregate', 'aria-label': 'Aggregate', onchange: () => {
    if (agg.value === 'minmax' || agg.value === 'std') { state.agg = 'mean'; state.band = agg.value; } else state.agg = agg.value;
    agg.value = state.agg; aggBand.value = state.band; aggBand.disabled = !state.agg; redraw();
  } }, ...AGG_LINES.map(([v, l]) => el('option', { value: v, text: l, selected: v === state.agg })));
  const aggBand = el('select', { id: 'agg-band', 'aria-label': 'Aggregation band', disabled: !state.agg,
    onchange: () => { state.band = aggBand.value; redraw(); } },
  ...AGG_BANDS.map(([v, l]) => el('option', { value: v, text: l, selected: v === state.band })));
  const logY = el('input', { type: 'checkbox', id: 'log-scale', checked: state.log, onchange: () => { state.log = logY.checked; redraw(); } });
  const logX = el('input', { type: 'checkbox', id: 'log-x', checked: state.logx, onchange: () => { state.logx = logX.checked; redraw(); } });
  const robust = el('input', { type: 'checkbox', id: 'ignore-outliers', checked: state.robust,
    onchange: () => { state.robust = robust.checked; redraw(); } });
  const backZoom = el('button', { text: 'Back', id: 'zoom-back', title: 'the previous zoom (Backspace)', disabled: true, onclick: () => zoomBack() });
  const resetZoom = el('button', { text: 'Reset zoom', id: 'reset-zoom', onclick: () => zoom(null, null) });
  const exportLink = el('a', { class: 'button', text: 'Export CSV', id: 'export' });
  root.append(el('h1', { text: 'Metrics' }), bar.root,
    el('div', { class: 'toolbar controls' }, color.node, style.node, chartBy.node,
      el('label', { class: 'control' }, 'X axis', xSelect),
      el('label', { class: 'control' }, smoothToggle, 'Smoothing', smoothKind, smooth, smoothValue, smoothWindow),
      el('label', { class: 'control' }, 'Aggregate', agg, aggBand),
      el('label', { class: 'control' }, logY, 'Log scale'),
      el('label', { class: 'control' }, logX, 'Log x'),
      el('label', { class: 'control', title: 'y axis from the 2nd–98th percentile of the visible points; spikes are clipped' }, robust, 'Ignore outliers'),
      backZoom, resetZoom, exportLink, liveBadge, status),
    legend, charts, table);

  getJSON('/api/metric-names').then((list) => {
    metricNames = [...new Set(list.map((m) => m.name))].filter((n) => !isSystem(n));
    fillXAxes();
  }).catch(() => {});
  getJSON('/api/params').then((p) => bar.setParamNames(Object.keys(p))).catch(() => {});

  function fieldOptions() {
    const fields = ['metric.name', 'run.hash', 'run.name', 'run.experiment', 'context', 'series'];
    const ctxKeys = new Set(); const paramKeys = new Set();
    for (const s of data?.series || []) for (const k of Object.keys(s.context || {})) ctxKeys.add(`context.${k}`);
    for (const r of Object.values(data?.runs || {})) for (const k of Object.keys(r.params || {})) {
      if (!k.startsWith('__system_params')) paramKeys.add(`run.${k}`);
    }
    return ['', ...fields, ...[...ctxKeys].sort(), ...[...paramKeys].sort()];
  }

  function fillSelects() {
    const options = fieldOptions();
    for (const [{ select }, key] of [[color, 'color'], [style, 'style'], [chartBy, 'chart']]) {
      const opts = options.includes(state[key]) ? options : [...options, state[key]];
      select.replaceChildren(...opts.map((f) => el('option', { value: f, text: f || '(none)', selected: f === state[key] })));
    }
  }

  function saveUrl() {
    const smoothText = !smoothed() ? '' : state.skind === 'cma' ? `cma:${state.swindow}` : state.smooth;
    setUrlState({ q: state.q, runs: state.runs, x: state.x === 'step' ? '' : state.x,
      smooth: smoothText, color: state.color === 'run.hash' ? null : (state.color || 'none'),
      style: state.style === 'context' ? null : (state.style || 'none'),
      chart: state.chart === 'metric.name' ? null : (state.chart || 'none'),
      agg: state.agg, band: state.agg && state.band !== 'minmax' ? (state.band || 'none') : '',
      log: state.log ? '1' : '', logx: state.logx ? '1' : '', robust: state.robust ? '1' : '',
      xmin: state.xmin ?? '', xmax: state.xmax ?? '',
      ymin: state.ymin ?? '', ymax: state.ymax ?? '', ychart: state.ymin !== null ? state.ychart : '' });
    // hide= last, written by hand so that its separators stay readable (see hideParam)
    if (state.hidden.size) {
      history.replaceState(null, '', `${location.pathname}${location.search ? `${location.search}&` : '?'}hide=${hideParam(state.hidden)}`);
    }
    backZoom.disabled = !zoomStack.length;
    const search = new URLSearchParams({ q: state.q, runs: state.runs, format: 'csv' });
    exportLink.href = `/api/series/export?${search}`;
  }

  // M4 is exact at one bucket per pixel column, so ask for as many buckets as a chart in
  // the grid (two columns from 1,064 px: see .charts in style.css) has pixels to draw on.
  function plotWidth() {
    const total = charts.clientWidth || 1000;
    const columns = Math.max(1, Math.floor((total + 12) / 532));
    const plot = (total - 12 * (columns - 1)) / columns - 20 - 80;
    return Math.min(1000, Math.max(200, Math.round(plot * (window.devicePixelRatio || 1))));
  }

  // --- Zoom: x (drag), x and y (a rectangle on one chart), Back, Reset ---------------------
  const zoomOf = () => ({ xmin: state.xmin, xmax: state.xmax, ymin: state.ymin, ymax: state.ymax, ychart: state.ychart });
  function clearZoom() {
    zoomStack = [];
    Object.assign(state, { xmin: null, xmax: null, ymin: null, ymax: null, ychart: null });
  }

  // Goes to a zoom; the server is asked again only when the x range changed (y is the
  // chart's own business).
  function applyZoom(z) {
    const xChanged = z.xmin !== state.xmin || z.xmax !== state.xmax;
    Object.assign(state, z);
    if (xChanged) fetchAndDraw(); else { saveUrl(); updateCharts(); }
  }

  // x0 === null: reset (double-click, Reset zoom). y0/y1 come with a rectangle drawn on
  // the chart `chartKey`; the y range applies to that chart only.
  function zoom(x0, x1, y0, y1, chartKey) {
    if (x0 === null) { clearZoom(); fetchAndDraw(); return; }
    zoomStack.push(zoomOf());
    const rect = y0 !== undefined && y1 !== undefined;
    applyZoom({ xmin: x0, xmax: x1, ymin: rect ? y0 : null, ymax: rect ? y1 : null, ychart: rect ? chartKey : null });
  }

  function zoomBack() {
    if (!zoomStack.length) return;
    applyZoom(zoomStack.pop());
  }

  const onKey = (e) => {
    if (e.key !== 'Backspace' || !zoomStack.length || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    e.preventDefault(); zoomBack();
  };
  document.addEventListener('keydown', onKey);

  function viewParams() {
    return { q: state.q, runs: state.runs, x_axis: state.x,
      width: plotWidth(),
      x_min: state.xmin, x_max: state.xmax,
      // smoothed on the server at full resolution: the curve does not change with the
      // chart's width or zoom
      smoothing: smoothed() && state.skind === 'ema' ? Math.min(0.999, state.smooth) : undefined,
      smoothing_kind: smoothed() && state.skind === 'cma' ? 'cma' : undefined,
      window: smoothed() && state.skind === 'cma' ? state.swindow : undefined,
      // Overview in float32 (half the bytes, finer than a pixel); a zoomed view in float64.
      precision: state.xmin === null ? 'f32' : 'f64' };
  }

  async function fetchAndDraw() {
    if (state.color === 'none') state.color = '';
    if (state.chart === 'none') state.chart = '';
    saveUrl();
    if (controller) controller.abort();
    stopLive();
    const mine = ++generation;
    controller = new AbortController();
    status.textContent = 'loading…';
    root.dataset.ready = '0';
    const started = performance.now();
    try {
      data = await getSeries(viewParams(), { signal: controller.signal });
      data.series = systemLast(data.series);
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.detail && 'position' in e.detail) bar.showError(e); else clear(charts).append(errorBox(e));
      status.textContent = ''; return;
    }
    const fetched = performance.now();
    bar.showError(null);
    fillSelects(); fillXAxes();
    redraw();
    const points = showStatus(`fetch ${Math.round(fetched - started)} ms · draw ${Math.round(performance.now() - fetched)} ms`);
    window.__aimMetrics = { fetchMs: fetched - started, drawMs: performance.now() - fetched,
      series: data.series.length, points, readyAt: performance.now() };
    root.dataset.ready = '1';
    if (mine === generation) liveTick(true);
  }

  function showStatus(tail) {
    const points = data.series.reduce((a, s) => a + s.n, 0);
    const more = data.total === null ? ' (more match: narrow the query)' : ` of ${data.total}`;
    status.textContent = `${data.series.length}${data.truncated ? more : ''} series · ${points} points · ${tail}`;
    return points;
  }

  // --- Live runs -------------------------------------------------------------------------
  // While a charted run is written: every 5 s the points written since the last answer,
  // appended to the charts in place (zoom, grouping and smoothing stay as they are); with
  // smoothing on, the whole view every 15 s. Once every charted run has finished, one last
  // read, then no more series requests. A query view keeps asking /api/runs/active every
  // 15 s, since a run started later may match its query; a view of listed runs stops.

  function stopLive() {
    clearTimeout(live.timer); live.timer = null;
    if (live.controller) { live.controller.abort(); live.controller = null; }
    live.wasLive = false;
    liveBadge.hidden = true;
    root.dataset.live = '0';
  }

  function chartedRuns() {
    const hashes = new Set(Object.keys(data?.runs || {}));
    for (const s of data?.series || []) hashes.add(s.run);
    if (state.runs) for (const h of state.runs.split(',')) hashes.add(h);
    return hashes;
  }

  function showLive(hashes) {
    liveBadge.hidden = !hashes.length;
    root.dataset.live = hashes.length ? '1' : '0';
    if (!hashes.length) return;
    const every = smoothed() ? `re-read every ${SLOW_MS / 1000} s (smoothed)` : `updating every ${LIVE_MS / 1000} s`;
    liveBadge.textContent = `${hashes.length} running · ${every}`;
    liveBadge.title = hashes.map((h) => data.runs[h]?.name || h).join(', ');
  }

  async function liveTick(first = false) {
    live.timer = null;
    const mine = generation;
    let active = null;
    try { active = (await getJSON('/api/runs/active')).runs.map((r) => r.hash); } catch (_) { /* unknown: ask again later */ }
    if (stopped || mine !== generation || !data) return;
    if (active === null) { live.timer = setTimeout(liveTick, pollMs(SLOW_MS)); return; }
    const charted = chartedRuns();
    const liveCharted = active.filter((h) => charted.has(h));
    const newcomers = !state.runs && active.some((h) => !charted.has(h));
    const wasLive = live.wasLive;
    live.wasLive = liveCharted.length > 0;
    showLive(liveCharted);
    // The first tick follows a fresh answer: nothing to read yet.
    if (!first && (liveCharted.length || wasLive || newcomers)) {
      try {
        // another metric's value as x need not grow with the step: read the view again
        if (smoothed() || state.x.startsWith('metric:') || data.until === null || data.until === undefined) await rereadView(mine);
        else await readNewPoints(mine);
      } catch (e) {
        if (e.name === 'AbortError') return;
        /* the next tick tries again */
      }
      if (stopped || mine !== generation) return;
    }
    if (liveCharted.length) live.timer = setTimeout(liveTick, pollMs(smoothed() ? SLOW_MS : LIVE_MS));
    else if (!state.runs) live.timer = setTimeout(liveTick, pollMs(SLOW_MS));
  }

  async function readNewPoints(mine) {
    live.controller = new AbortController();
    const fresh = await getSeries({ q: state.q, runs: state.runs, x_axis: state.x, width: plotWidth(),
      since: data.until, precision: 'f64' }, { signal: live.controller.signal });
    live.controller = null;
    if (mine !== generation) return;
    if (fresh.until !== null && fresh.until !== undefined) data.until = fresh.until;
    Object.assign(data.runs, fresh.runs);
    const known = new Map(data.series.map((s) => [seriesKey(s), s]));
    let added = 0; let newSeries = false;
    for (const s of fresh.series) {
      const old = known.get(seriesKey(s));
      if (old) { added += appendPoints(old, s); continue; }
      data.series.push(s); known.set(seriesKey(s), s); added += s.n; newSeries = true;
    }
    // A new series may need a new colour, chart or legend entry: lay the charts out again.
    if (newSeries) { data.series = systemLast(data.series); fillSelects(); redraw(); } else if (added) updateCharts();
    showStatus(`+${added} points at ${new Date().toLocaleTimeString()}`);
  }

  // With smoothing the curve's every point depends on those before it, so since= is
  // refused: read the whole view again, and keep the charts when the series are the same.
  async function rereadView(mine) {
    live.controller = new AbortController();
    const fresh = await getSeries(viewParams(), { signal: live.controller.signal });
    live.controller = null;
    if (mine !== generation) return;
    const known = new Map(data.series.map((s) => [seriesKey(s), s]));
    const same = fresh.series.length === data.series.length && fresh.series.every((s) => known.has(seriesKey(s)));
    if (same) {
      for (const s of fresh.series) Object.assign(known.get(seriesKey(s)), { x: s.x, y: s.y, step: s.step, n: s.n });
      Object.assign(data, { until: fresh.until, runs: fresh.runs, range: fresh.range, total: fresh.total });
      updateCharts();
    } else {
      data = fresh;
      data.series = systemLast(data.series);
      fillSelects(); redraw();
    }
    showStatus(`re-read at ${new Date().toLocaleTimeString()}`);
  }

  function redraw() {
    saveUrl();
    // a chart zoomed with the keyboard is drawn anew: its successor takes the focus
    const focused = drawn.find(({ chart }) => chart.overlay === document.activeElement);
    for (const { chart } of drawn) chart.destroy();
    drawn = [];
    clear(charts); clear(legend); clear(table);
    rows = []; info = new Map();
    if (!data) return;
    if (!data.series.length) { charts.append(el('p', { class: 'muted', text: 'No series match this query.' })); return; }
    const colors = new GroupIndex(); const styles = new GroupIndex(); const chartKeys = new GroupIndex();
    const byChart = new Map();
    for (const s of data.series) {
      const run = data.runs[s.run] || {};
      const ci = colors.of(groupValue(s, run, state.color));
      const si = styles.of(groupValue(s, run, state.style));
      const ki = chartKeys.of(groupValue(s, run, state.chart));
      if (!byChart.has(ki)) byChart.set(ki, []);
      const item = { s, run, ci, si, key: seriesKey(s), hide: hideKey(s), color: PALETTE[ci % PALETTE.length], dash: DASH_STYLES[si % DASH_STYLES.length] };
      byChart.get(ki).push(item);
      info.set(item.key, item);
    }
    const chartTitles = chartKeys.entries();
    window.__aimCharts = [];
    for (const [ki, items] of byChart) {
      if (drawn.length >= MAX_CHARTS) { charts.append(el('p', { class: 'muted', text: `Only the first ${MAX_CHARTS} charts are drawn; group by fewer values.` })); break; }
      const title = chartTitles[ki][0];
      const box = el('section', { class: 'chart-box', dataset: { chartKey: title } }, el('h3', { text: state.chart ? `${state.chart} = ${title}` : 'all series' }));
      charts.append(box);
      const chart = new LineChart(box, { height: byChart.size > 1 ? 260 : 380, logY: state.log, logX: state.logx, xAxis: state.x,
        robustY: state.robust, label: state.chart ? `${state.chart} = ${title}` : 'all series',
        onZoom: (x0, x1, y0, y1) => zoom(x0, x1, y0, y1, title), tooltip: (hit) => tooltipRows(hit),
        onCursor: (x, from) => moveCursor(x, from) });
      chart.chartKey = title;
      chart.setData(chartData(items, colors, title));
      window.__aimCharts.push(chart);
      drawn.push({ chart, items, colors, title });
    }
    const successor = focused && drawn.find((d) => d.title === focused.title);
    if (successor) {
      successor.chart.pointer = focused.chart.pointer;   // a mouse resting there stays the keys' anchor
      successor.chart.overlay.focus({ preventScroll: true });
    }
    drawLegend(colors, styles);
    drawTable();
  }

  // New points were appended to the series (or their arrays replaced), series were shown
  // or hidden, or the y zoom changed: the same charts draw them, so nothing else moves.
  function updateCharts() {
    for (const { chart, items, colors, title } of drawn) chart.setData(chartData(items, colors, title));
    refreshTable();
  }

  function chartData(items, colors, title) {
    const lines = []; const bands = [];
    const shown = items.filter((it) => !state.hidden.has(it.hide));
    if (state.agg) {
      const groups = new Map();
      for (const it of shown) {
        const key = `${it.ci}/${it.si}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(it);
      }
      for (const members of groups.values()) {
        const { ci, si } = members[0];
        // one grid point per bucket the server reduced to: its extremes reach the band
        const a = aggregate(members.map(({ s }) => ({ x: s.x, y: s.y })),
          Math.max(100, Math.min(2000, data.width || 400)), state.band, state.agg);
        if (!a) continue;
        const c = PALETTE[ci % PALETTE.length];
        if (state.band) bands.push({ x: a.x, lo: a.lo, hi: a.hi, color: c });
        lines.push({ x: a.x, y: a.mean, color: c, dash: DASH_STYLES[si % DASH_STYLES.length], width: 2,
          meta: { aggregate: true, count: members.length, label: colors.entries()[ci][0], band: a } });
      }
    } else {
      for (const { s, run, color, dash } of shown) {
        lines.push({ x: s.x, y: s.y, color, dash, width: shown.length > 20 ? 1 : 1.5, meta: { s, run } });
      }
    }
    const yRange = state.ymin !== null && state.ychart === title ? [state.ymin, state.ymax] : null;
    return { lines, bands, xRange: state.xmin !== null ? [state.xmin, state.xmax] : null, yRange };
  }

  function formatX(v) { return state.x === 'wall_time' ? formatTime(v) : formatNumber(v); }

  function smoothingNote() {
    if (!data.smoothing_kind) return data.smoothing ? ` (EMA ${data.smoothing})` : '';
    return data.smoothing_kind === 'cma' ? ` (CMA ${data.window})` : ` (EMA ${data.smoothing})`;
  }

  const BAND_NAMES = { minmax: 'min–max', std: '± std', sem: '± std-err', ci95: '95% CI' };

  function tooltipRows(hit) {
    const meta = hit.line.meta || {};
    if (meta.aggregate) {
      const rows = [`group ${state.color || 'all'} = ${meta.label}`, `${state.agg} of ${meta.count} series`,
        `${state.x}: ${formatX(hit.x)}`, `${state.agg}: ${formatNumber(hit.y)}`];
      const b = meta.band;
      if (state.band && b && Number.isFinite(b.lo[hit.index])) {
        rows.push(`${BAND_NAMES[state.band]}: ${formatNumber(b.lo[hit.index])} … ${formatNumber(b.hi[hit.index])}`);
      }
      return rows;
    }
    const { s, run } = meta;
    const rows = [`${run.name || s.run}`, seriesLabel(s), `${state.x}: ${formatX(hit.x)}`];
    if (state.x !== 'step') rows.push(`step: ${s.step[hit.index]}`);
    rows.push(`value: ${formatNumber(hit.y)}${smoothingNote()}`);
    const params = Object.entries(run.params || {}).filter(([k]) => !k.startsWith('__system_params')).slice(0, 6);
    for (const [k, v] of params) rows.push(`${k}: ${formatValue(v)}`);
    return rows;
  }

  function drawLegend(colors, styles) {
    const items = [];
    if (state.color) {
      const entries = colors.entries();
      items.push(el('strong', { text: `${state.color}:` }));
      for (const [label, i] of entries.slice(0, 30)) {
        const text = state.color === 'run.hash' ? (data.runs[label]?.name || label) : label;
        items.push(el('span', { class: 'legend-item', title: label }, el('span', { class: 'swatch', style: { background: PALETTE[i % PALETTE.length] } }), text));
      }
      if (entries.length > 30) items.push(el('span', { class: 'muted', text: `+${entries.length - 30} more` }));
    }
    if (state.style) {
      items.push(el('strong', { text: ` ${state.style}:` }));
      for (const [label, i] of styles.entries().slice(0, 8)) {
        items.push(el('span', { class: 'legend-item' }, el('span', { class: `dash dash-${DASH_STYLES[i % DASH_STYLES.length]}` }), label));
      }
    }
    legend.replaceChildren(...items);
  }

  // --- Series table ------------------------------------------------------------------------
  // One row per series: show / hide, colour, run, metric, context, the grouping values,
  // its value at the cursor's x (the last value when the cursor is off the charts) and
  // min / max / last over the visible x range. Rows are drawn TABLE_PAGE at a time.

  // Fields grouped by that the run / metric / context columns do not show already.
  function groupColumns() {
    const shown = new Set(['', 'run.hash', 'run.name', 'metric.name', 'context', 'series']);
    return [...new Set([state.color, state.style, state.chart])].filter((f) => !shown.has(f));
  }

  // min, max and last finite value of a series within the visible x range
  function stats(s) {
    const xs = s.x; const ys = s.y;
    let a = 0; let b = xs.length;
    if (state.xmin !== null) { while (a < b && xs[a] < state.xmin) a++; while (b > a && xs[b - 1] > state.xmax) b--; }
    let mn = Infinity; let mx = -Infinity; let last = NaN; let lastStep = null;
    for (let i = a; i < b; i++) {
      const v = ys[i];
      if (!Number.isFinite(v)) continue;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
      last = v; lastStep = s.step[i];
    }
    return { min: mn === Infinity ? NaN : mn, max: mx === -Infinity ? NaN : mx, last, lastStep };
  }

  const cell = (v) => (Number.isFinite(v) ? formatNumber(v) : '—');

  function tableRow(item, columns) {
    const { s, run, key, hide, color } = item;
    const hidden = state.hidden.has(hide);
    const box = el('input', { type: 'checkbox', checked: !hidden, 'aria-label': 'show series',
      onchange: () => { if (box.checked) state.hidden.delete(hide); else state.hidden.add(hide); saveUrl(); updateCharts(); } });
    // the value at the cursor changes on every mouse move: its text sits in an absolutely
    // placed span, so that changing it lays out that span and not the whole table
    const atText = el('span', { class: 'live-text' });
    const at = el('td', { class: 'num cursor-value' }, atText);
    const mn = el('td', { class: 'num series-min' }); const mx = el('td', { class: 'num series-max' });
    const last = el('td', { class: 'num series-last' });
    const tr = el('tr', { dataset: { key, run: s.run }, class: hidden ? 'series-hidden' : '' },
      el('td', {}, box),
      el('td', {}, el('span', { class: 'swatch', style: { background: color } })),
      el('td', {}, el('a', { href: `/runs/${encodeURIComponent(s.run)}`, text: run.name || s.run.slice(0, 8), title: s.run })),
      el('td', { text: s.name }),
      el('td', { text: contextLabel(s.context) }),
      ...columns.map((f) => el('td', { text: groupValue(s, run, f) })),
      at, mn, mx, last);
    const row = { key, hide, s, tr, box, at, atText, mn, mx, last };
    fillStats(row);
    return row;
  }

  function fillStats(row) {
    const st = stats(row.s);
    row.stat = st;
    row.mn.textContent = cell(st.min); row.mx.textContent = cell(st.max); row.last.textContent = cell(st.last);
    row.tr.classList.toggle('series-hidden', state.hidden.has(row.hide));
    row.box.checked = !state.hidden.has(row.hide);
    fillCursor(row);
  }

  // The series' value at the point nearest the cursor's x, or its last visible value.
  function fillCursor(row) {
    row.shownAt = cursorX;
    if (cursorX === null) {
      row.atText.textContent = cell(row.stat.last);
      row.at.dataset.step = row.stat.lastStep ?? '';
      return;
    }
    const i = nearestIndex(row.s.x, cursorX);
    row.atText.textContent = i < 0 ? '—' : cell(row.s.y[i]);
    row.at.dataset.step = i < 0 ? '' : String(row.s.step[i]);
  }

  // The rows scrolled into the table's box (the others catch up when scrolled to).
  let holder = null; let rowHeight = 0;
  function rowsInView() {
    if (!holder || !rows.length) return rows;
    if (!rowHeight) rowHeight = rows[0].tr.offsetHeight || 20;
    const first = Math.max(0, Math.floor(holder.scrollTop / rowHeight) - 2);
    return rows.slice(first, first + Math.ceil(holder.clientHeight / rowHeight) + 4);
  }

  function catchUp() {
    for (const row of rowsInView()) if (row.shownAt !== cursorX) fillCursor(row);
  }

  let cursorHead = null;
  function drawTable() {
    clear(table);
    if (!data || !data.series.length) return;
    const columns = groupColumns();
    cursorHead = el('span', { class: 'live-text', id: 'cursor-head', text: 'last value' });
    const allBox = el('input', { type: 'checkbox', 'aria-label': 'show all series', id: 'series-all', checked: !state.hidden.size,
      onchange: () => {
        if (allBox.checked) state.hidden.clear(); else for (const s of data.series) state.hidden.add(hideKey(s));
        saveUrl(); updateCharts();
      } });
    const body = el('tbody');
    const t = el('table', { class: 'series-table' },
      el('thead', {}, el('tr', {}, el('th', { class: 'col-box' }, allBox), el('th', { class: 'col-swatch' }), el('th', { text: 'run' }), el('th', { text: 'metric' }),
        el('th', { text: 'context' }), ...columns.map((f) => el('th', { text: f })),
        el('th', { class: 'num cursor-value' }, cursorHead),
        el('th', { class: 'num', text: 'min' }), el('th', { class: 'num', text: 'max' }), el('th', { class: 'num', text: 'last' }))),
      body);
    const more = el('button', { id: 'series-more', onclick: () => { tableLimit += TABLE_PAGE * 2; addRows(); } });
    const addRows = () => {
      const items = data.series.slice(rows.length, tableLimit).map((s) => info.get(seriesKey(s))).filter(Boolean);
      const fresh = items.map((it) => tableRow(it, columns));
      rows.push(...fresh);
      body.append(...fresh.map((r) => r.tr));
      const left = data.series.length - rows.length;
      more.hidden = left <= 0;
      more.textContent = `Show ${Math.min(left, TABLE_PAGE * 2)} more of ${left}`;
    };
    const hiddenCount = el('span', { class: 'muted', id: 'series-hidden-count' });
    holder = el('div', { class: 'table-holder series-table-holder', onscroll: catchUp }, t);
    rowHeight = 0;
    table.append(el('div', { class: 'toolbar' }, el('strong', { text: `Series (${data.series.length})` }), hiddenCount,
      el('span', { class: 'muted', text: 'value at the cursor; min, max and last over the visible range' })),
    holder, more);
    addRows();
    showHiddenCount();
  }

  function showHiddenCount() {
    const n = document.getElementById('series-hidden-count');
    if (n) n.textContent = state.hidden.size ? `${state.hidden.size} hidden` : '';
    const all = document.getElementById('series-all');
    if (all) {
      all.checked = !state.hidden.size;
      all.indeterminate = state.hidden.size > 0 && state.hidden.size < (data?.series.length || 0);
    }
  }

  function refreshTable() {
    for (const row of rows) fillStats(row);
    showHiddenCount();
  }

  // The mouse moved over a chart (x) or left it (null): every chart shows a rule there
  // and the table the values at that x.
  function moveCursor(x, from) {
    cursorX = x;
    for (const { chart } of drawn) if (chart !== from) chart.setCursor(x);
    if (cursorHead) {
      const at = state.x === 'step' ? String(Math.round(x)) : state.x.startsWith('metric:') ? formatNumber(Number(x?.toPrecision(4))) : formatX(x);
      cursorHead.textContent = x === null ? 'last value' : `at ${state.x === 'step' ? 'step' : state.x.replace(/^metric:/, '')} ${at}`;
      cursorHead.title = cursorHead.textContent;
    }
    catchUp();
  }

  // The charts redraw themselves on resize; ask the server again only when the plot width
  // moved far from the buckets the answer has (M4 is exact at one bucket per column).
  let resizeTimer = null;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (data && data.width && Math.abs(plotWidth() - data.width) > 0.2 * data.width) fetchAndDraw();
    }, 300);
  };
  window.addEventListener('resize', onResize);

  fetchAndDraw();
  return () => {
    stopped = true;
    if (controller) controller.abort();
    stopLive();
    window.removeEventListener('resize', onResize);
    document.removeEventListener('keydown', onKey);
    clearTimeout(smoothTimer); clearTimeout(resizeTimer);
    for (const { chart } of drawn) chart.destroy();
  };
}
