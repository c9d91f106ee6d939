// Metrics explorer: query, line charts grouped into colours / line styles / charts, EMA
// smoothing (computed by the server on every point, before downsampling), group
// aggregation, x-axis choice, log scales, zoom that re-queries the server at full
// resolution, tooltip and legend. The whole view state lives in the URL. While charted
// runs are being written, new points are fetched with since= and appended to the charts.

import { el, clear, errorBox } from '../dom.js';
import { getJSON, getSeries } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { LineChart } from '../chart.js';
import { PALETTE, DASH_STYLES, groupValue, GroupIndex, aggregate } from '../series_ops.js';
import { formatNumber, formatTime, seriesLabel } from '../format.js';
import { setUrlState } from '../app.js';

const X_AXES = [['step', 'Step'], ['epoch', 'Epoch'], ['relative_time', 'Relative time (s)'], ['wall_time', 'Wall time']];
const MAX_CHARTS = 24;
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
  return {
    q: query.get('q') || '', runs: query.get('runs') || '',
    x: query.get('x') || 'step', smooth: Number(query.get('smooth') || 0),
    color: query.get('color') ?? 'run.hash', style: query.get('style') || '',
    chart: query.get('chart') ?? 'metric.name', agg: query.get('agg') || '',
    log: query.get('log') === '1', logx: query.get('logx') === '1',
    xmin: query.get('xmin') !== null ? Number(query.get('xmin')) : null,
    xmax: query.get('xmax') !== null ? Number(query.get('xmax')) : null,
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
  // The server smooths: ask again once the slider rests for a moment.
  const smoothChanged = () => { clearTimeout(smoothTimer); smoothTimer = setTimeout(fetchAndDraw, 150); };
  const bar = new QueryBar({ value: state.q, withMetric: true,
    placeholder: 'metric.name == "loss" and run.hparams.lr < 0.01',
    onSubmit: (q) => { state.q = q; state.runs = ''; state.xmin = state.xmax = null; fetchAndDraw(); } });
  const status = el('span', { class: 'muted', id: 'metrics-status' });
  const liveBadge = el('span', { class: 'badge live', id: 'metrics-live', hidden: true });
  const charts = el('div', { class: 'charts', id: 'charts' });
  const legend = el('div', { class: 'legend', id: 'legend' });
  const fieldSelect = (id, key, label) => {
    const select = el('select', { id, 'aria-label': label, onchange: () => { state[key] = select.value; redraw(); } });
    return { select, node: el('label', { class: 'control' }, label, select) };
  };
  const color = fieldSelect('group-color', 'color', 'Colour by');
  const style = fieldSelect('group-style', 'style', 'Line style by');
  const chartBy = fieldSelect('group-chart', 'chart', 'Charts by');
  const xSelect = el('select', { id: 'x-axis', onchange: () => { state.x = xSelect.value; state.xmin = state.xmax = null; fetchAndDraw(); } },
    ...X_AXES.map(([v, l]) => el('option', { value: v, text: l, selected: v === state.x })));
  const smooth = el('input', { type: 'range', min: 0, max: 0.99, step: 0.01, id: 'smoothing', value: state.smooth,
    oninput: () => { state.smooth = Number(smooth.value); smoothValue.textContent = smooth.value; smoothChanged(); } });
  const smoothValue = el('span', { class: 'muted', text: String(state.smooth) });
  const smoothToggle = el('input', { type: 'checkbox', id: 'smoothing-on', checked: state.smooth > 0, onchange: () => {
    state.smooth = smoothToggle.checked ? (Number(smooth.value) || 0.6) : 0;
    smooth.value = state.smooth; smoothValue.textContent = String(state.smooth); fetchAndDraw();
  } });
  const agg = el('select', { id: 'aggregate', onchange: () => { state.agg = agg.value; redraw(); } },
    ...[['', 'none'], ['minmax', 'mean, min–max'], ['std', 'mean ± std']].map(([v, l]) => el('option', { value: v, text: l, selected: v === state.agg })));
  const logY = el('input', { type: 'checkbox', id: 'log-scale', checked: state.log, onchange: () => { state.log = logY.checked; redraw(); } });
  const logX = el('input', { type: 'checkbox', id: 'log-x', checked: state.logx, onchange: () => { state.logx = logX.checked; redraw(); } });
  const resetZoom = el('button', { text: 'Reset zoom', id: 'reset-zoom', onclick: () => zoom(null, null) });
  const exportLink = el('a', { class: 'button', text: 'Export CSV', id: 'export' });
  root.append(el('h1', { text: 'Metrics' }), bar.root,
    el('div', { class: 'toolbar controls' }, color.node, style.node, chartBy.node,
      el('label', { class: 'control' }, 'X axis', xSelect),
      el('label', { class: 'control' }, smoothToggle, 'Smoothing (EMA)', smooth, smoothValue),
      el('label', { class: 'control' }, 'Aggregate', agg),
      el('label', { class: 'control' }, logY, 'Log scale'),
      el('label', { class: 'control' }, logX, 'Log x'), resetZoom, exportLink, liveBadge, status),
    legend, charts);

  getJSON('/api/params').then((p) => bar.setParamNames(Object.keys(p))).catch(() => {});

  function fieldOptions() {
    const fields = ['metric.name', 'run.hash', 'run.name', 'run.experiment'];
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
    setUrlState({ q: state.q, runs: state.runs, x: state.x === 'step' ? '' : state.x,
      smooth: state.smooth || '', color: state.color === 'run.hash' ? null : (state.color || 'none'),
      style: state.style, chart: state.chart === 'metric.name' ? null : (state.chart || 'none'),
      agg: state.agg, log: state.log ? '1' : '', logx: state.logx ? '1' : '', xmin: state.xmin ?? '', xmax: state.xmax ?? '' });
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

  function zoom(x0, x1) {
    state.xmin = x0; state.xmax = x1;
    fetchAndDraw();
  }

  function viewParams() {
    return { q: state.q, runs: state.runs, x_axis: state.x,
      width: plotWidth(),
      x_min: state.xmin, x_max: state.xmax,
      // smoothed on the server at full resolution: the curve does not change with the
      // chart's width or zoom
      smoothing: state.smooth > 0 ? Math.min(0.999, state.smooth) : undefined,
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
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.detail && 'position' in e.detail) bar.showError(e); else clear(charts).append(errorBox(e));
      status.textContent = ''; return;
    }
    const fetched = performance.now();
    bar.showError(null);
    fillSelects();
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
    const every = state.smooth > 0 ? `re-read every ${SLOW_MS / 1000} s (smoothed)` : `updating every ${LIVE_MS / 1000} s`;
    liveBadge.textContent = `${hashes.length} running · ${every}`;
    liveBadge.title = hashes.map((h) => data.runs[h]?.name || h).join(', ');
  }

  async function liveTick(first = false) {
    live.timer = null;
    const mine = generation;
    let active = null;
    try { active = (await getJSON('/api/runs/active')).runs.map((r) => r.hash); } catch (_) { /* unknown: ask again later */ }
    if (stopped || mine !== generation || !data) return;
    if (active === null) { live.timer = setTimeout(liveTick, SLOW_MS); return; }
    const charted = chartedRuns();
    const liveCharted = active.filter((h) => charted.has(h));
    const newcomers = !state.runs && active.some((h) => !charted.has(h));
    const wasLive = live.wasLive;
    live.wasLive = liveCharted.length > 0;
    showLive(liveCharted);
    // The first tick follows a fresh answer: nothing to read yet.
    if (!first && (liveCharted.length || wasLive || newcomers)) {
      try {
        if (state.smooth > 0 || data.until === null || data.until === undefined) await rereadView(mine);
        else await readNewPoints(mine);
      } catch (e) {
        if (e.name === 'AbortError') return;
        /* the next tick tries again */
      }
      if (stopped || mine !== generation) return;
    }
    if (liveCharted.length) live.timer = setTimeout(liveTick, state.smooth > 0 ? SLOW_MS : LIVE_MS);
    else if (!state.runs) live.timer = setTimeout(liveTick, SLOW_MS);
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
    if (newSeries) { fillSelects(); redraw(); } else if (added) updateCharts();
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
      fillSelects(); redraw();
    }
    showStatus(`re-read at ${new Date().toLocaleTimeString()}`);
  }

  function redraw() {
    saveUrl();
    for (const { chart } of drawn) chart.destroy();
    drawn = [];
    clear(charts); clear(legend);
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
      byChart.get(ki).push({ s, run, ci, si });
    }
    const chartTitles = chartKeys.entries();
    window.__aimCharts = [];
    for (const [ki, items] of byChart) {
      if (drawn.length >= MAX_CHARTS) { charts.append(el('p', { class: 'muted', text: `Only the first ${MAX_CHARTS} charts are drawn; group by fewer values.` })); break; }
      const title = chartTitles[ki][0];
      const box = el('section', { class: 'chart-box' }, el('h3', { text: state.chart ? `${state.chart} = ${title}` : 'all series' }));
      charts.append(box);
      const chart = new LineChart(box, { height: byChart.size > 1 ? 260 : 380, logY: state.log, logX: state.logx, xAxis: state.x,
        onZoom: zoom, tooltip: (hit) => tooltipRows(hit) });
      chart.setData(chartData(items, colors));
      window.__aimCharts.push(chart);
      drawn.push({ chart, items, colors });
    }
    drawLegend(colors, styles);
  }

  // New points were appended to the series (or their arrays replaced): the same charts
  // draw them, so nothing else on the page moves.
  function updateCharts() {
    for (const { chart, items, colors } of drawn) chart.setData(chartData(items, colors));
  }

  function chartData(items, colors) {
    const lines = []; const bands = [];
    if (state.agg) {
      const groups = new Map();
      for (const it of items) {
        const key = `${it.ci}/${it.si}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(it);
      }
      for (const members of groups.values()) {
        const { ci, si } = members[0];
        // one grid point per bucket the server reduced to: its extremes reach the band
        const a = aggregate(members.map(({ s }) => ({ x: s.x, y: s.y })),
          Math.max(100, Math.min(2000, data.width || 400)), state.agg);
        if (!a) continue;
        const c = PALETTE[ci % PALETTE.length];
        bands.push({ x: a.x, lo: a.lo, hi: a.hi, color: c });
        lines.push({ x: a.x, y: a.mean, color: c, dash: DASH_STYLES[si % DASH_STYLES.length], width: 2,
          meta: { aggregate: true, count: members.length, label: colors.entries()[ci][0] } });
      }
    } else {
      for (const { s, run, ci, si } of items) {
        lines.push({ x: s.x, y: s.y, color: PALETTE[ci % PALETTE.length],
          dash: DASH_STYLES[si % DASH_STYLES.length], width: items.length > 100 ? 1 : 1.5, meta: { s, run } });
      }
    }
    return { lines, bands, xRange: state.xmin !== null ? [state.xmin, state.xmax] : null };
  }

  function formatX(v) { return state.x === 'wall_time' ? formatTime(v) : formatNumber(v); }

  function tooltipRows(hit) {
    const meta = hit.line.meta || {};
    if (meta.aggregate) return [`group ${state.color} = ${meta.label}`, `mean of ${meta.count} series`, `${state.x}: ${formatX(hit.x)}`, `value: ${formatNumber(hit.y)}`];
    const { s, run } = meta;
    const rows = [`${run.name || s.run}`, seriesLabel(s), `${state.x}: ${formatX(hit.x)}`];
    if (state.x !== 'step') rows.push(`step: ${s.step[hit.index]}`);
    rows.push(`value: ${formatNumber(hit.y)}${data.smoothing ? ` (EMA ${data.smoothing})` : ''}`);
    const params = Object.entries(run.params || {}).filter(([k]) => !k.startsWith('__system_params')).slice(0, 6);
    for (const [k, v] of params) rows.push(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
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
    clearTimeout(smoothTimer); clearTimeout(resizeTimer);
    for (const { chart } of drawn) chart.destroy();
  };
}
