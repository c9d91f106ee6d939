// Params explorer: parallel coordinates over params and metric last values of the runs a
// query selects, each run one polyline coloured by a chosen metric (legend below).
// Without axes in the URL the page picks them from the selected runs: the params that vary
// across them and that most of them have (see defaultParams).
// Dragging along an axis brushes a range (several axes: a run must pass every brush); the
// brushes are kept in the URL (`brush=`, see brushText). The nearest line to the pointer is
// highlighted with a tooltip; a click opens its run. Dragging an axis title moves the axis.
// Each axis also has a focusable strip over it (Tab, or Left/Right between axes) whose keys
// make, move, resize and clear its brush (see KEY_HINT); on a touch screen a brush starts
// only on those strips (touch-action: pinch-zoom), so a swipe elsewhere scrolls the page.
// Drawing: the lines on the main canvas (a path per colour and 32 runs; under brushes the
// grey lines come from an offscreen copy), the axes from an offscreen canvas drawn once per
// layout, and brushes and the highlighted line on an overlay canvas above.

import { el, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatNumber, formatValue } from '../format.js';
import { navigate, setUrlState } from '../app.js';
import { LiveFollow, activeRuns, changedRunsQuery, changedSince, mergeRuns } from '../live_follow.js';

const PAD = { left: 60, right: 90, top: 40, bottom: 24 };
const MAX_AUTO_AXES = 8;
const LOG_SPAN = 100;         // a positive numeric axis spanning more than two decades is log
const MISSING_COLOUR = '#8892a0';
const FADED_COLOUR = '#c3c8d1';
const BUCKETS = 48;           // colours a run can take: one path each
const MAX_RUNS = 5000;        // runs asked of the server, 1,000 a page
const MAX_TABLE = 200;        // rows of the selected runs' table
const MAX_COMPARE = 50;       // runs the comparison page takes
const MAX_METRICS = 300;      // run hashes a metrics explorer link carries
const AXIS_GRAB = 12;         // px either side of an axis where a drag brushes
const HOVER_PX = 14;          // the nearest line within this distance is highlighted
const KEY_STEP = 0.05;        // a key moves or resizes a brush by a twentieth of the axis
const KEY_HINT = 'Keyboard: Tab to an axis (Left/Right: the next one); Up/Down make or move its selection, '
  + 'Shift+Up/Down extend or shrink its top, Home/End move it to the bottom or top, Delete or Escape clears it.';

function loadStylesheet() {
  if (document.getElementById('params-css')) return;
  document.head.appendChild(el('link', { id: 'params-css', rel: 'stylesheet', href: '/static/css/params.css' }));
}

function colourScale(t) {  // dark blue -> teal -> yellow
  const stops = [[49, 54, 149], [33, 145, 140], [253, 231, 37]];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u)); const f = u - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const present = (v) => v !== null && v !== undefined;

// Params worth an axis: set on at least half of the runs and with two values or more among
// them, most common first (then by name). A param set on one run, or the same everywhere,
// says nothing about the runs; when nothing varies, the common params still show.
export function defaultParams(runs, limit = MAX_AUTO_AXES) {
  const seen = new Map();
  for (const run of runs) {
    for (const [path, value] of Object.entries(run.params || {})) {
      if (path.startsWith('__system_params') || !present(value)) continue;
      let s = seen.get(path);
      if (!s) { s = { count: 0, values: new Set() }; seen.set(path, s); }
      s.count += 1;
      if (s.values.size < 2) s.values.add(JSON.stringify(value));
    }
  }
  const common = [...seen].filter(([, s]) => 2 * s.count >= runs.length)
    .sort(([a, s], [b, t]) => t.count - s.count || (a < b ? -1 : a > b ? 1 : 0));
  const varying = common.filter(([, s]) => s.values.size > 1);
  return (varying.length ? varying : common).slice(0, limit).map(([path]) => path);
}

// Tick labels people read: 0.001, 0.25, 3e-5, 1e+6.
export function tickLabel(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(4)));
  return Number(v.toPrecision(3)).toExponential();
}

function linearTicks(lo, hi) {
  if (!(hi > lo)) return [{ value: lo, t: 0.5 }];
  const raw = (hi - lo) / 4; const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k += 1) {
    const value = Number((k * step).toPrecision(12));
    ticks.push({ value, t: (value - lo) / (hi - lo) });
  }
  return ticks;
}

function logTicks(lo, hi) {  // every decade inside the range; every other one past eight
  const a = Math.log10(lo); const b = Math.log10(hi);
  const first = Math.ceil(a - 1e-9); const last = Math.floor(b + 1e-9);
  const every = Math.ceil((last - first + 1) / 8);
  const ticks = [];
  for (let e = first; e <= last; e += every) ticks.push({ value: Number(`1e${e}`), t: (e - a) / (b - a) });
  return ticks;
}

export function makeAxis(label, values) {
  const given = values.filter(present);
  const nums = given.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (nums.length && nums.length === given.length) {
    const lo = Math.min(...nums); const hi = Math.max(...nums);
    const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
    if (lo > 0 && hi / lo > LOG_SPAN) {
      const a = Math.log10(lo); const b = Math.log10(hi);
      const tOf = (v) => (Math.log10(v) - a) / (b - a);
      return { label, kind: 'number', scale: 'log', lo, hi, ticks: logTicks(lo, hi), tOf,
        valueAt: (t) => 10 ** (a + t * (b - a)),
        pos: (v) => (isNum(v) && v > 0 ? tOf(v) : null) };
    }
    // a constant axis sits in the middle of a unit span around its value
    const span = hi > lo ? hi - lo : (Math.abs(lo) || 1); const base = hi > lo ? lo : lo - span / 2;
    const tOf = (v) => (v - base) / span;
    return { label, kind: 'number', scale: 'linear', lo, hi, ticks: linearTicks(lo, hi), tOf,
      valueAt: (t) => base + t * span, pos: (v) => (isNum(v) ? tOf(v) : null) };
  }
  const cats = [...new Set(given.map((v) => formatValue(v)))].sort();
  const index = new Map(cats.map((cat, k) => [cat, k]));
  const catPos = (k) => (cats.length > 1 ? k / (cats.length - 1) : 0.5);
  const shown = cats.length > 12 ? cats.filter((_, k) => k % Math.ceil(cats.length / 12) === 0) : cats;
  return { label, kind: 'category', scale: 'category', cats,
    ticks: shown.map((cat) => ({ value: cat, t: catPos(index.get(cat)) })), catPos, index,
    pos: (v) => (present(v) ? catPos(index.get(formatValue(v))) : null) };
}

// Brushes in the URL: `hparams.lr:0.0002:0.05;hparams.optimizer=adam|sgd`, a value range
// (`label:lo:hi`) on a numeric axis, the categories inside (`label=a|b`) on another; the
// separators `%:;=|` inside labels and categories are %-escaped.
const esc = (s) => String(s).replace(/[%:;=|]/g, (c) => encodeURIComponent(c));

export function brushText(brushes) {
  return [...brushes].map(([label, b]) => (b.cats
    ? `${esc(label)}=${[...b.cats].map(esc).join('|')}` : `${esc(label)}:${b.lo}:${b.hi}`)).join(';');
}

export function parseBrushes(text) {
  const out = new Map();
  for (const part of (text || '').split(';')) {
    const m = part.match(/^([^:=]+)([:=])(.*)$/);
    if (!m) continue;
    try {
      const label = decodeURIComponent(m[1]);
      if (m[2] === '=') { out.set(label, { cats: new Set(m[3].split('|').map(decodeURIComponent)) }); continue; }
      const [lo, hi] = m[3].split(':').map(Number);
      if (Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi) out.set(label, { lo, hi });
    } catch (_) { /* a malformed entry is left out */ }
  }
  return out;
}

// A brush's ends are rounded to what a pixel can tell apart (four significant digits on a
// log axis, a ten-thousandth of the span on a linear one), so the URL stays short and a
// reload selects the same runs.
// Rounded outwards, so a brush drawn to an axis' end keeps the run at that end.
function roundEnd(axis, v, up) {
  const e = axis.scale === 'log' ? Math.floor(Math.log10(v)) - 3
    : Math.floor(Math.log10((axis.valueAt(1) - axis.valueAt(0)) / 1e4));
  const q = 10 ** e; const k = (up ? Math.ceil : Math.floor)(Number((v / q).toPrecision(12)));
  return Number((k * q).toPrecision(12));
}

const labelOf = (tick) => (typeof tick.value === 'number' ? tickLabel(tick.value) : String(tick.value));

// A numeric axis also names its ends (in grey) where no tick is close: the range at a glance.
function endLabels(axis) {
  if (axis.kind !== 'number' || !(axis.hi > axis.lo)) return [];
  return [{ value: axis.lo, t: 0 }, { value: axis.hi, t: 1 }]
    .filter((end) => axis.ticks.every((tick) => Math.abs(tick.t - end.t) > 0.07));
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`…${s}`).width > width) s = s.slice(1);
  return `…${s}`;   // keep the end: 'hparams.lr' reads better as '…ms.lr' than 'hpar…'
}

// The colour scale's legend: the metric, a gradient and the colour axis' ticks, and the
// grey of runs without a value.
function drawLegend(legend, axis) {
  legend.hidden = !axis || axis.kind !== 'number';
  if (legend.hidden) return;
  const [title, bar, missing] = legend.children;
  title.textContent = `${axis.label} (last value${axis.scale === 'log' ? ', log scale' : ''})`;
  legend.dataset.metric = axis.label; legend.dataset.scale = axis.scale;
  legend.dataset.min = String(axis.lo); legend.dataset.max = String(axis.hi);
  legend.dataset.ticks = axis.ticks.map(labelOf).join(',');
  const dpr = window.devicePixelRatio || 1; const w = 280; const h = 34; const inset = 14;
  bar.width = w * dpr; bar.height = h * dpr;
  const ctx = bar.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
  const span = w - 2 * inset;
  for (let x = 0; x < span; x += 1) { ctx.fillStyle = colourScale(x / (span - 1)); ctx.fillRect(inset + x, 0, 1, 12); }
  ctx.strokeStyle = '#555'; ctx.fillStyle = '#222'; ctx.font = '11px system-ui, sans-serif'; ctx.textAlign = 'center';
  for (const tick of axis.ticks) {
    const x = inset + tick.t * span;
    ctx.beginPath(); ctx.moveTo(x, 12); ctx.lineTo(x, 16); ctx.stroke();
    ctx.fillText(labelOf(tick), x, 28);
  }
  ctx.fillStyle = '#777';
  for (const end of endLabels(axis)) ctx.fillText(labelOf(end), inset + end.t * span, 28);
  missing.hidden = false;
}

export async function mount(root, { query }) {
  loadStylesheet();
  const state = { q: query.get('q') || '', params: (query.get('params') || '').split(',').filter(Boolean),
    metrics: (query.get('metrics') || '').split(',').filter(Boolean), color: query.get('color') || '',
    order: (query.get('order') || '').split(',').filter(Boolean), brushes: parseBrushes(query.get('brush')) };
  state.auto = !state.params.length;   // axes follow the selected runs until the user picks
  const bar = new QueryBar({ value: state.q, placeholder: 'run.experiment == "baseline"', onSubmit: (q) => { state.q = q; load(); } });
  const chooser = el('details', { class: 'columns-menu' }, el('summary', { text: 'Axes' }));
  const colorSelect = el('select', { id: 'params-color', onchange: () => { state.color = colorSelect.value; load(); } });
  const canvas = el('canvas', { id: 'parallel', class: 'parallel' });
  const overlay = el('canvas', { id: 'params-overlay', class: 'params-overlay', role: 'img',
    'aria-label': 'Parallel coordinates: drag along an axis, or focus it and use the arrow keys, to select a range of it; the selected runs are listed under the chart' });
  const tooltip = el('div', { id: 'params-tooltip', class: 'chart-tooltip params-tooltip', hidden: true });
  // a focusable strip over each axis: keyboard brushing, and where a touch may brush
  const strips = el('div', { class: 'params-axis-strips' });
  const plot = el('div', { class: 'params-plot' }, canvas, overlay, strips, tooltip);
  const keyHint = el('p', { id: 'params-keys', class: 'params-keys muted', text: KEY_HINT });
  const legend = el('div', { id: 'params-legend', class: 'params-legend', hidden: true },
    el('span', { class: 'params-legend-title' }), el('canvas', { class: 'params-legend-bar' }),
    el('span', { class: 'params-legend-missing' }, el('span', { class: 'params-legend-swatch' }), 'no value'));
  const status = el('span', { class: 'muted' });
  const follow = new LiveFollow({ id: 'params-live', root, refresh });
  const count = el('span', { id: 'params-count', class: 'params-count', 'aria-live': 'polite' });
  const clearButton = el('button', { type: 'button', id: 'params-clear', text: 'Clear selections',
    onclick: () => { state.brushes.clear(); selectionChanged(true); } });
  const metricsButton = el('button', { type: 'button', id: 'params-open-metrics', text: 'Open in metrics',
    onclick: () => navigate(`/metrics?runs=${selectedHashes().join(',')}`) });
  const compareButton = el('button', { type: 'button', id: 'params-open-compare', text: 'Compare',
    onclick: () => navigate(`/compare?runs=${selectedHashes().join(',')}`) });
  const tableBox = el('div', { id: 'params-selected', class: 'params-selected', hidden: true });
  const chips = el('span', { id: 'params-brushes', class: 'params-brushes' });
  root.append(el('h1', { text: 'Params' }), bar.root,
    el('div', { class: 'toolbar' }, chooser, el('label', { class: 'control' }, 'Colour by metric', colorSelect), status, follow.badge),
    plot, legend, keyHint, el('div', { class: 'toolbar params-selection-bar' }, count, chips, clearButton, metricsButton, compareButton),
    tableBox);
  let paramPaths = []; let metricNames = [];
  try {
    const [ps, ms] = await Promise.all([getJSON('/api/params'), getJSON('/api/metric-names')]);
    paramPaths = Object.keys(ps).filter((p) => !p.startsWith('__system_params'));
    metricNames = [...new Set(ms.map((m) => m.name))].filter((n) => !n.startsWith('__system__'));
    bar.setParamNames(Object.keys(ps));
  } catch (e) { root.append(errorBox(e)); return null; }
  if (!state.metrics.length) state.metrics = metricNames.slice(0, 2);
  if (!state.color) state.color = state.metrics[0] || '';

  function renderChooser() {
    const box = (list, v) => el('label', { class: 'check' }, el('input', { type: 'checkbox', checked: list.includes(v), onchange: (e) => {
      const i = list.indexOf(v); if (e.target.checked && i < 0) list.push(v); else if (!e.target.checked && i >= 0) list.splice(i, 1);
      if (list === state.params) state.auto = false;
      load();
    } }), v);
    chooser.replaceChildren(chooser.firstChild, el('div', { class: 'columns-list' },
      el('strong', { text: state.auto ? 'Params (chosen: they vary across these runs)' : 'Params' }),
      ...paramPaths.map((p) => box(state.params, p)),
      el('strong', { text: 'Metrics (last value)' }), ...metricNames.map((m) => box(state.metrics, m))));
  }

  function syncUrl() {
    setUrlState({ q: state.q, params: state.auto ? '' : state.params.join(','), metrics: state.metrics.join(','),
      color: state.color, order: state.order.join(','), brush: brushText(state.brushes) });
  }

  let loads = 0;
  async function load() {
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    colorSelect.replaceChildren(el('option', { value: '', text: '(none)' }), ...metricNames.map((m) => el('option', { value: m, text: m, selected: m === state.color })));
    const runs = []; let total = 0;
    try {
      while (runs.length < MAX_RUNS) {   // 1,000 runs a request
        const page = await getJSON('/api/runs', { q: state.q, offset: runs.length, limit: 1000,
          params: state.auto ? ['*'] : state.params, metrics: [...new Set([...state.metrics, state.color].filter(Boolean))] });
        runs.push(...page.runs); total = page.total;
        if (page.runs.length < 1000 || runs.length >= total) break;
      }
    } catch (e) { if (e.detail && 'position' in e.detail) bar.showError(e); else root.append(errorBox(e)); return; }
    if (mine !== loads) return;
    bar.showError(null);
    shownTotal = total; pending = null;
    show(runs);
    root.dataset.ready = '1';
  }

  let shownTotal = 0; let pending = null;
  function show(runs) {
    if (state.auto) state.params = defaultParams(runs);
    renderChooser();
    status.textContent = `${runs.length} of ${shownTotal} runs`;
    build(runs);
    const live = activeRuns(runs);
    follow.update(live.hashes, { names: live.names });
  }

  // Live runs: only the runs written, started or ended since the last answer (the same
  // query, params and metrics), merged into those drawn; brushes, axis order and colour
  // stay. A re-read during a drag waits for its end.
  async function refresh(signal) {
    const mine = loads;
    if (!view) return;
    const runs = pending || view.runs;
    const since = changedSince(runs, new Set(follow.live()));
    const page = await getJSON('/api/runs', { q: changedRunsQuery(state.q, since), limit: 1000,
      params: state.auto ? ['*'] : state.params, metrics: [...new Set([...state.metrics, state.color].filter(Boolean))] }, { signal });
    if (mine !== loads) return;
    const known = new Set(runs.map((r) => r.hash));
    shownTotal += page.runs.filter((r) => !known.has(r.hash)).length;
    const merged = mergeRuns(runs, page.runs).slice(0, MAX_RUNS);
    if (!page.runs.length) { follow.update(activeRuns(runs).hashes, { names: activeRuns(runs).names }); return; }
    if (drag) { pending = merged; const live = activeRuns(merged); follow.update(live.hashes, { names: live.names }); return; }
    pending = null;
    // a tooltip pinned by a tap stays on its run
    const pinnedHash = pinned && hover >= 0 ? view.runs[hover].hash : null;
    show(merged);
    const r = pinnedHash ? view.runs.findIndex((run) => run.hash === pinnedHash) : -1;
    if (r >= 0) { pinned = true; hover = r; fillTooltip(view.runs[r]); tooltip.hidden = false; schedule(false); }
  }

  // --- the view: runs, axes and every run's position on each axis -----------------------
  let width = 0;            // the plot's width at the last layout
  let view = null;          // { runs, columns, axes, n, k, ts, colourIdx } and, once laid out, xs, ys, w, h
  let selected = new Uint8Array(0); let nSelected = 0;
  let hover = -1; let pinned = false; let drag = null;
  const axesLayer = document.createElement('canvas');   // axes, ticks and titles, drawn once per layout
  const fadedLayer = document.createElement('canvas');  // every line in grey: what brushes leave out
  let fadedReady = false;

  const lastOf = (run, name) => { const m = (run.metrics || []).find((x) => x.name === name && !Object.keys(x.context).length) || (run.metrics || []).find((x) => x.name === name); return m ? m.last : null; };

  function build(runs) {
    const columns = [...state.params.map((p) => ({ label: p, get: (r) => r.params?.[p] })),
      ...state.metrics.map((m) => ({ label: m, get: (r) => lastOf(r, m) }))];
    const rank = (c) => { const i = state.order.indexOf(c.label); return i < 0 ? Infinity : i; };
    if (state.order.length) columns.sort((a, b) => rank(a) - rank(b));
    const axes = columns.map((c) => makeAxis(c.label, runs.map(c.get)));
    for (const [label, b] of state.brushes) {   // brushes of axes no longer shown go
      const a = axes.find((x) => x.label === label);
      if (!a || (a.kind === 'category') !== Boolean(b.cats)) state.brushes.delete(label);
    }
    const n = runs.length; const k = axes.length;
    const ts = new Float64Array(n * k);
    runs.forEach((run, r) => columns.forEach((col, j) => {
      const t = axes[j].pos(col.get(run));
      ts[r * k + j] = t === null || t === undefined || t < 0 ? NaN : t;
    }));
    const colourAxis = state.color ? makeAxis(state.color, runs.map((r) => lastOf(r, state.color))) : null;
    const colourIdx = new Int16Array(n).fill(-1);
    if (colourAxis) {
      runs.forEach((run, r) => {
        const c = colourAxis.pos(lastOf(run, state.color));
        if (c !== null && c !== undefined && c >= 0) colourIdx[r] = Math.round(Math.min(1, c) * (BUCKETS - 1));
      });
    }
    view = { runs, columns, axes, n, k, ts, colourIdx };
    hover = -1; pinned = false; tooltip.hidden = true;
    drawLegend(legend, colourAxis);
    canvas.dataset.axes = JSON.stringify(axes.map((a) => ({ label: a.label, scale: a.scale, ticks: a.ticks.map(labelOf) })));
    layout();
    selectionChanged(true);
  }

  function layout() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(280, plot.clientWidth); const h = 460;
    for (const c of [canvas, overlay, axesLayer, fadedLayer]) { c.width = w * dpr; c.height = h * dpr; }
    fadedReady = false;
    for (const c of [canvas, overlay]) { c.style.width = `${w}px`; c.style.height = `${h}px`; }
    const pad = w < 600 ? { ...PAD, left: 36, right: 56 } : PAD;
    const { k, n, ts } = view;
    const gap = k > 1 ? (w - pad.left - pad.right) / (k - 1) : w - pad.left - pad.right;
    const xs = Array.from({ length: k }, (_, i) => pad.left + (k > 1 ? i * gap : 0));
    const top = pad.top; const bottom = h - pad.bottom;
    const ys = new Float64Array(n * k);
    for (let i = 0; i < n * k; i += 1) ys[i] = top + (1 - ts[i]) * (bottom - top);
    Object.assign(view, { w, h, dpr, gap, xs, ys, top, bottom });
    width = plot.clientWidth;
    canvas.dataset.layout = JSON.stringify({ top, bottom, x: xs });
    drawAxes(axesLayer.getContext('2d'));
    placeStrips();
  }

  // --- the axes' strips: focus, keys, touch ----------------------------------------------
  // One per axis, over its pointer hit area (AXIS_GRAB either side, 6 px past its ends);
  // rebuilt per layout, the focus kept on the same axis.
  function placeStrips() {
    const focused = strips.contains(document.activeElement) ? document.activeElement.dataset.axis : null;
    strips.replaceChildren(...view.axes.map((a, j) => el('div', { class: 'params-axis-strip', tabindex: 0,
      role: 'slider', 'aria-orientation': 'vertical', 'aria-valuemin': 0, 'aria-valuemax': 100,
      'aria-describedby': 'params-keys', dataset: { axis: a.label, index: String(j) },
      style: { left: `${view.xs[j] - AXIS_GRAB}px`, top: `${view.top - 6}px`, width: `${2 * AXIS_GRAB}px`,
        height: `${view.bottom - view.top + 12}px` },
      onkeydown: onStripKey })));
    labelStrips();
    if (focused !== null) {
      const again = [...strips.children].find((s) => s.dataset.axis === focused);
      if (again) again.focus({ preventScroll: true });
    }
  }

  const brushWords = (b) => (b.cats ? [...b.cats].join(', ') : `${formatNumber(b.lo)} – ${formatNumber(b.hi)}`);

  // Each strip names its axis and its brush; the value a screen reader reads is the range.
  function labelStrips() {
    if (!view) return;
    [...strips.children].forEach((strip, j) => {
      const a = view.axes[j]; if (!a) return;
      const b = state.brushes.get(a.label); const range = brushRange(j);
      const what = b ? `selected ${brushWords(b) || '(nothing)'}` : 'no selection';
      strip.setAttribute('aria-label', `${a.label}, ${a.scale === 'category' ? 'categories' : `${a.scale} axis`}: ${what}`);
      strip.setAttribute('aria-valuetext', what);
      strip.setAttribute('aria-valuenow', String(range ? Math.round(50 * (Math.max(0, range[0]) + Math.min(1, range[1]))) : 0));
      strip.classList.toggle('brushed', Boolean(b));
    });
  }

  function onStripKey(e) {
    if (!view || e.altKey || e.ctrlKey || e.metaKey) return;
    const j = Number(e.currentTarget.dataset.index); const a = view.axes[j];
    if (!a) return;
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const next = strips.children[j + (e.key === 'ArrowLeft' ? -1 : 1)];
      if (next) next.focus();
      e.preventDefault(); return;
    }
    if (e.key === 'Delete' || e.key === 'Backspace' || e.key === 'Escape') {
      if (!state.brushes.has(a.label)) return;
      e.preventDefault(); state.brushes.delete(a.label); selectionChanged(true); return;
    }
    if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key)) return;
    e.preventDefault();
    if (a.kind === 'category') keyCategories(a, e.key, e.shiftKey); else keyRange(j, a, e.key, e.shiftKey);
    selectionChanged(true);
  }

  // A category brush by key: a run of neighbouring categories [i0, i1] (0 at the bottom).
  function keyCategories(a, key, shift) {
    const m = a.cats.length - 1; const b = state.brushes.get(a.label);
    const at = b ? [...b.cats].map((c) => a.index.get(c)).filter((i) => i !== undefined) : [];
    let i0; let i1;
    if (!at.length) { i0 = Math.floor(m / 2); i1 = i0; }   // a first key selects the middle one
    else {
      i0 = Math.min(...at); i1 = Math.max(...at);
      if (shift && key === 'ArrowUp') i1 = Math.min(m, i1 + 1);
      else if (shift && key === 'ArrowDown') i1 = Math.max(i0, i1 - 1);
      else {
        const d = key === 'ArrowUp' ? Math.min(1, m - i1) : key === 'ArrowDown' ? -Math.min(1, i0)
          : key === 'Home' ? -i0 : m - i1;
        i0 += d; i1 += d;
      }
    }
    state.brushes.set(a.label, { cats: new Set(a.cats.slice(i0, i1 + 1)) });
  }

  // A value brush by key, in axis units (so a log axis moves by a factor): a step is
  // KEY_STEP of the axis; the ends are rounded like a dragged brush's.
  function keyRange(j, a, key, shift) {
    const range = brushRange(j);
    let t0; let t1;
    if (!range) { t0 = 0.5 - 2 * KEY_STEP; t1 = 0.5 + 2 * KEY_STEP; }   // a first key: the middle fifth
    else {
      t0 = Math.max(0, Math.min(1, range[0])); t1 = Math.max(t0, Math.min(1, range[1]));
      if (shift && key === 'ArrowUp') t1 = Math.min(1, t1 + KEY_STEP);
      else if (shift && key === 'ArrowDown') t1 = Math.max(t0 + Math.min(KEY_STEP, t1 - t0), t1 - KEY_STEP);
      else {
        const d = key === 'ArrowUp' ? Math.min(KEY_STEP, 1 - t1) : key === 'ArrowDown' ? -Math.min(KEY_STEP, t0)
          : key === 'Home' ? -t0 : 1 - t1;
        t0 += d; t1 += d;
      }
    }
    state.brushes.set(a.label, { lo: roundEnd(a, a.valueAt(t0), false), hi: roundEnd(a, a.valueAt(t1), true) });
  }

  const yOf = (t) => view.top + (1 - t) * (view.bottom - view.top);
  const tAt = (y) => Math.max(0, Math.min(1, (view.bottom - y) / (view.bottom - view.top)));

  function drawAxes(ctx) {
    const { axes, xs, gap, w, h, dpr } = view;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = '#333'; ctx.fillStyle = '#222'; ctx.lineWidth = 1;
    axes.forEach((a, i) => {
      const x = xs[i];
      ctx.beginPath(); ctx.moveTo(x, yOf(0)); ctx.lineTo(x, yOf(1)); ctx.stroke();
      ctx.textAlign = 'center'; ctx.font = '600 11px system-ui, sans-serif';
      ctx.fillText(fitText(ctx, a.label, Math.max(40, gap - 8)), x, view.top - 22);
      ctx.font = '10px system-ui, sans-serif'; ctx.fillStyle = '#666';
      ctx.fillText(a.scale === 'log' ? 'log' : a.scale === 'category' ? '' : 'linear', x, view.top - 10);
      ctx.font = '11px system-ui, sans-serif'; ctx.fillStyle = '#222'; ctx.textAlign = 'left';
      if (a.scale === 'log') {  // unlabelled 2..9 marks between decades
        const lo = Math.log10(a.lo); const span = Math.log10(a.hi) - lo;
        for (let e = Math.floor(lo); e <= Math.ceil(lo + span); e += 1) {
          for (let m = 2; m < 10; m += 1) {
            const t = (Math.log10(m) + e - lo) / span;
            if (t > 0 && t < 1) { ctx.beginPath(); ctx.moveTo(x - 2, yOf(t)); ctx.lineTo(x, yOf(t)); ctx.stroke(); }
          }
        }
      }
      for (const tick of a.ticks) {
        ctx.beginPath(); ctx.moveTo(x - 4, yOf(tick.t)); ctx.lineTo(x, yOf(tick.t)); ctx.stroke();
        ctx.fillText(fitText(ctx, labelOf(tick), Math.max(40, gap - 12)), x + 5, yOf(tick.t) + 4);
      }
      ctx.fillStyle = '#777';
      for (const end of endLabels(a)) ctx.fillText(fitText(ctx, labelOf(end), Math.max(40, gap - 12)), x + 5, yOf(end.t) + 4);
      ctx.fillStyle = '#222';
    });
  }

  // --- brushes and the selection -------------------------------------------------------
  // The brushed span of axis j in axis units (0 bottom, 1 top), or null.
  function brushRange(j) {
    const a = view.axes[j]; const b = state.brushes.get(a.label);
    if (!b) return null;
    if (b.drag) return b.drag;
    if (b.cats) {
      const ts = [...b.cats].map((c) => a.index.get(c)).filter((i) => i !== undefined).map(a.catPos);
      if (!ts.length) return null;
      const half = a.cats.length > 1 ? 0.5 / (a.cats.length - 1) : 0.5;
      return [Math.max(0, Math.min(...ts) - half), Math.min(1, Math.max(...ts) + half)];
    }
    return [b.lo > 0 || a.scale !== 'log' ? a.tOf(b.lo) : -Infinity, b.hi > 0 || a.scale !== 'log' ? a.tOf(b.hi) : -Infinity];
  }

  function setBrush(j, t0, t1) {
    const a = view.axes[j];
    if (a.kind === 'category') {
      const cats = new Set(a.cats.filter((_, i) => a.catPos(i) >= t0 && a.catPos(i) <= t1));
      state.brushes.set(a.label, { cats, drag: [t0, t1] });
    } else {
      state.brushes.set(a.label, { lo: roundEnd(a, a.valueAt(t0), false), hi: roundEnd(a, a.valueAt(t1), true) });
    }
    selectionChanged(false);
  }

  function recomputeSelection() {
    const { n, k, ts, axes } = view;
    const tests = [];
    axes.forEach((a, j) => {
      const b = state.brushes.get(a.label);
      if (!b) return;
      if (a.kind === 'category') {
        const ok = new Uint8Array(a.cats.length); const m = a.cats.length - 1;
        for (const c of b.cats) { const i = a.index.get(c); if (i !== undefined) ok[i] = 1; }
        tests.push((r) => { const t = ts[r * k + j]; return t === t && ok[m > 0 ? Math.round(t * m) : 0] === 1; });
      } else {
        const [t0, t1] = brushRange(j);
        tests.push((r) => { const t = ts[r * k + j]; return t >= t0 && t <= t1; });
      }
    });
    selected = new Uint8Array(n); nSelected = 0;
    for (let r = 0; r < n; r += 1) {
      if (tests.every((test) => test(r))) { selected[r] = 1; nSelected += 1; }
    }
  }

  const brushed = () => state.brushes.size > 0;
  const selectedHashes = () => view.runs.filter((_, r) => selected[r]).map((run) => run.hash);

  function selectionChanged(commit) {
    recomputeSelection();
    schedule(true);
    const n = view.n;
    count.textContent = brushed() ? `${nSelected} of ${n} runs selected` : `${n} runs · drag along an axis to select a range`;
    count.dataset.selected = String(brushed() ? nSelected : n);
    clearButton.disabled = !brushed();
    metricsButton.disabled = !brushed() || nSelected === 0 || nSelected > MAX_METRICS;
    metricsButton.title = nSelected > MAX_METRICS ? `at most ${MAX_METRICS} runs` : '';
    compareButton.disabled = !brushed() || nSelected < 2 || nSelected > MAX_COMPARE;
    compareButton.title = nSelected > MAX_COMPARE ? `at most ${MAX_COMPARE} runs side by side` : nSelected < 2 ? 'select two runs or more' : '';
    renderChips();
    if (commit) { renderTable(); syncUrl(); }
  }

  // A chip per brush: the axis and its range (or categories), with a button that clears it.
  function renderChips() {
    labelStrips();
    chips.replaceChildren(...view.axes.filter((a) => state.brushes.has(a.label)).map((a) => {
      const b = state.brushes.get(a.label);
      const what = brushWords(b);
      return el('span', { class: 'params-brush-chip', dataset: { axis: a.label } },
        el('span', { class: 'params-brush-axis', text: a.label }), ` ${what || '(nothing)'}`,
        el('button', { type: 'button', class: 'params-brush-clear', text: '×', title: `Clear the selection on ${a.label}`,
          'aria-label': `Clear the selection on ${a.label}`,
          onclick: () => { state.brushes.delete(a.label); selectionChanged(true); } }));
    }));
  }

  function renderTable() {
    tableBox.hidden = !brushed() || nSelected === 0;
    if (tableBox.hidden) { tableBox.replaceChildren(); return; }
    const rows = [];
    for (let r = 0; r < view.n && rows.length < MAX_TABLE; r += 1) {
      if (!selected[r]) continue;
      const run = view.runs[r]; const href = `/runs/${encodeURIComponent(run.hash)}`;
      rows.push(el('tr', { dataset: { hash: run.hash } },
        el('td', {}, el('a', { href, 'data-nav': true, text: run.name || run.hash })),
        el('td', {}, el('a', { href, 'data-nav': true, class: 'params-hash', text: run.hash })),
        ...view.columns.map((c) => el('td', { class: 'params-value', text: formatValue(c.get(run)) }))));
    }
    tableBox.replaceChildren(...(nSelected > MAX_TABLE
      ? [el('p', { class: 'muted', text: `The first ${MAX_TABLE} of ${nSelected} selected runs.` })] : []),
      el('div', { class: 'table-holder' }, el('table', { class: 'params-selected-table' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Run' }), el('th', { text: 'Hash' }),
          ...view.columns.map((c) => el('th', { text: c.label })))),
        el('tbody', {}, rows))));
  }

  // --- drawing --------------------------------------------------------------------------
  let frame = 0; let linesDirty = false;
  function schedule(lines) {
    linesDirty = linesDirty || lines;
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; if (linesDirty) drawLines(); linesDirty = false; drawOverlay(); });
  }

  // A path per 32 runs (crossings still darken). Lines are 1 px wide: browsers draw such
  // hairlines far faster than wider ones (2,000 runs x 10 axes: 50 ms rather than 500 ms
  // in a software-rendered canvas).
  function strokeRuns(ctx, list) {
    const { k, xs, ys } = view;
    for (let s = 0; s < list.length; s += 32) {
      ctx.beginPath();
      for (const r of list.slice(s, s + 32)) {
        let pen = false; const o = r * k;
        for (let j = 0; j < k; j += 1) {
          const y = ys[o + j];
          if (y !== y) { pen = false; continue; }
          if (pen) ctx.lineTo(xs[j], y); else { ctx.moveTo(xs[j], y); pen = true; }
        }
      }
      ctx.stroke();
    }
  }

  // Under brushes every line is drawn in grey (once per layout, then copied), the
  // selected ones in colour over it: a brush move redraws only the selected lines.
  function drawLines() {
    if (!view) return;
    const { w, h, dpr, n, colourIdx } = view;
    const ctx = canvas.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    ctx.lineWidth = 1; ctx.lineJoin = 'round';
    const any = brushed();
    if (any) {
      if (!fadedReady) {
        const fc = fadedLayer.getContext('2d'); fc.setTransform(dpr, 0, 0, dpr, 0, 0); fc.clearRect(0, 0, w, h);
        fc.lineWidth = 1; fc.lineJoin = 'round'; fc.strokeStyle = FADED_COLOUR; fc.globalAlpha = n > 300 ? 0.3 : 0.7;
        strokeRuns(fc, Array.from({ length: n }, (_, r) => r));
        fadedReady = true;
      }
      ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.drawImage(fadedLayer, 0, 0); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    const groups = Array.from({ length: BUCKETS + 1 }, () => []);
    for (let r = 0; r < n; r += 1) if (!any || selected[r]) groups[colourIdx[r] + 1].push(r);
    ctx.globalAlpha = (any ? nSelected : n) > 300 ? 0.4 : 0.85;
    groups.forEach((g, i) => {
      if (!g.length) return;
      ctx.strokeStyle = i === 0 ? MISSING_COLOUR : colourScale((i - 1) / (BUCKETS - 1));
      strokeRuns(ctx, g);
    });
    ctx.globalAlpha = 1; ctx.setTransform(1, 0, 0, 1, 0, 0); ctx.drawImage(axesLayer, 0, 0);
  }

  function drawOverlay() {
    if (!view) return;
    const { w, h, dpr, k, xs, ys, axes } = view;
    const ctx = overlay.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    axes.forEach((_, j) => {
      const range = brushRange(j);
      if (!range) return;
      const y0 = Math.max(view.top - 2, yOf(Math.min(1, range[1]))); const y1 = Math.min(view.bottom + 2, yOf(Math.max(0, range[0])));
      if (!(y1 >= y0)) return;
      ctx.fillStyle = 'rgba(59,111,216,0.16)'; ctx.fillRect(xs[j] - 8, y0, 16, Math.max(2, y1 - y0));
      ctx.strokeStyle = '#3b6fd8'; ctx.lineWidth = 1.5; ctx.strokeRect(xs[j] - 8, y0, 16, Math.max(2, y1 - y0));
    });
    if (hover >= 0 && hover < view.n) {
      const c = view.colourIdx[hover];
      for (const [style, width] of [['rgba(255,255,255,0.9)', 5], [c < 0 ? '#4a5160' : colourScale(c / (BUCKETS - 1)), 2.5]]) {
        ctx.strokeStyle = style; ctx.lineWidth = width; ctx.lineJoin = 'round';
        strokeRuns(ctx, [hover]);
      }
      ctx.fillStyle = '#1d2330';
      for (let j = 0; j < k; j += 1) {
        const y = ys[hover * k + j];
        if (y === y) { ctx.beginPath(); ctx.arc(xs[j], y, 3, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
    if (drag && drag.mode === 'reorder' && drag.moved) {   // where the dragged axis goes
      ctx.strokeStyle = '#3b6fd8'; ctx.lineWidth = 2; ctx.setLineDash([5, 4]);
      ctx.beginPath(); ctx.moveTo(drag.x, view.top); ctx.lineTo(drag.x, view.bottom); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = '#3b6fd8'; ctx.font = '600 11px system-ui, sans-serif'; ctx.textAlign = 'center';
      ctx.fillText(fitText(ctx, axes[drag.j].label, 120), drag.x, view.top - 22);
    }
  }

  // --- pointer: hover, click, brushing, moving axes ------------------------------------
  const pointAt = (e) => { const box = overlay.getBoundingClientRect(); return { x: e.clientX - box.left, y: e.clientY - box.top }; };

  function nearestAxis(x, within) {
    let best = -1; let bestD = within;
    view.xs.forEach((ax, j) => { const d = Math.abs(ax - x); if (d <= bestD) { best = j; bestD = d; } });
    return best;
  }
  const axisAt = (p) => (p.y >= view.top - 6 && p.y <= view.bottom + 6 ? nearestAxis(p.x, AXIS_GRAB) : -1);
  const titleAt = (p) => (p.y < view.top - 4 && p.y > 2 ? nearestAxis(p.x, Math.max(24, view.gap / 2 - 4)) : -1);

  // The run whose line passes nearest (x, y): one segment per run (the one between the
  // axes around x), so a move costs O(runs).
  function nearestRun(p, radius) {
    const { n, k, xs, ys } = view;
    if (!k || !n) return -1;
    const penalty = brushed() ? 4 : 0;
    let j = 0; while (j < k - 2 && p.x > xs[j + 1]) j += 1;
    const x0 = xs[j]; const x1 = k > 1 ? xs[j + 1] : x0;
    const inside = k > 1 && p.x >= x0 && p.x <= x1;
    let best = -1; let bestD = radius;
    for (let r = 0; r < n; r += 1) {
      const ya = ys[r * k + j]; const yb = k > 1 ? ys[r * k + j + 1] : NaN;
      let d;
      if (inside && ya === ya && yb === yb) {
        const slope = (yb - ya) / (x1 - x0);
        d = Math.abs(p.y - (ya + slope * (p.x - x0))) / Math.sqrt(1 + slope * slope);
      } else {   // outside the axes, or a value missing: the nearer end point
        const da = ya === ya ? Math.hypot(p.x - x0, p.y - ya) : Infinity;
        const db = yb === yb ? Math.hypot(p.x - x1, p.y - yb) : Infinity;
        d = Math.min(da, db);
      }
      if (!selected[r]) d += penalty;
      if (d < bestD) { best = r; bestD = d; }
    }
    return best;
  }

  function showTooltip(r, p) {
    if (r < 0) { tooltip.hidden = true; return; }
    const run = view.runs[r];
    if (tooltip.hidden || tooltip.dataset.hash !== run.hash || tooltip.classList.contains('pinned') !== pinned) fillTooltip(run);
    tooltip.hidden = false;
    const tw = tooltip.offsetWidth; const th = tooltip.offsetHeight;
    const left = p.x + 14 + tw > view.w ? p.x - 14 - tw : p.x + 14;
    tooltip.style.left = `${Math.max(0, left)}px`;
    tooltip.style.top = `${Math.max(0, Math.min(view.h - th, p.y + 12))}px`;
  }

  function fillTooltip(run) {   // the run's name and its value on every axis, as text
    tooltip.classList.toggle('pinned', pinned);
    tooltip.replaceChildren(el('div', { class: 'params-tooltip-name', text: run.name || run.hash }),
      ...view.columns.map((c) => el('div', {}, el('span', { class: 'params-tooltip-key', text: `${c.label}: ` }),
        present(c.get(run)) ? formatValue(c.get(run)) : '–')),
      ...(pinned ? [el('a', { href: `/runs/${encodeURIComponent(run.hash)}`, 'data-nav': true, class: 'params-tooltip-open', text: 'Open run' })] : []));
    tooltip.dataset.hash = run.hash;
  }

  function setHover(r, p) {
    if (r !== hover) { hover = r; schedule(false); }
    showTooltip(r, p);
  }

  function reorder(j, x) {
    const labels = view.axes.map((a) => a.label); const label = labels[j];
    const others = labels.filter((_, i) => i !== j);
    const at = view.xs.filter((ax, i) => i !== j && ax < x).length;
    others.splice(at, 0, label);
    if (others.every((l, i) => l === labels[i])) { schedule(false); return; }
    state.order = others;
    build(view.runs);
  }

  // Pointer events come from the overlay and the axes' strips above it (the tooltip, once
  // pinned, is left alone). A touch brushes only from a strip: elsewhere on the chart
  // (touch-action: pan-y) a vertical swipe scrolls the page.
  const fromChart = (e) => e.target === overlay || e.target.classList.contains('params-axis-strip');
  const setCursor = (c) => { plot.style.cursor = c; };

  plot.addEventListener('pointerdown', (e) => {
    if (!view || e.button > 0 || !fromChart(e)) return;
    const p = pointAt(e);
    const j = e.pointerType === 'touch' && e.target === overlay ? -1 : axisAt(p);
    drag = { mode: 'click', x0: p.x, y0: p.y, x: p.x, moved: false, type: e.pointerType, j };
    if (j >= 0) {
      const range = brushRange(j);
      const inside = range && p.y >= yOf(Math.min(1, range[1])) - 3 && p.y <= yOf(Math.max(0, range[0])) + 3;
      drag.mode = inside ? 'move' : 'brush';
      if (inside) drag.range = [Math.max(0, range[0]), Math.min(1, range[1])];
    } else if (titleAt(p) >= 0) {
      drag.mode = 'reorder'; drag.j = titleAt(p);
    }
    if (drag.mode !== 'click') { e.preventDefault(); overlay.setPointerCapture(e.pointerId); pinned = false; setHover(-1, p); }
  });

  plot.addEventListener('pointermove', (e) => {
    if (!view || !(drag || fromChart(e))) return;
    const p = pointAt(e);
    if (drag && drag.mode !== 'click') {
      if (!drag.moved && Math.hypot(p.x - drag.x0, p.y - drag.y0) < 4) return;
      drag.moved = true;
      if (drag.mode === 'brush') {
        const t0 = tAt(drag.y0); const t1 = tAt(p.y);
        setBrush(drag.j, Math.min(t0, t1), Math.max(t0, t1));
      } else if (drag.mode === 'move') {
        let dt = (drag.y0 - p.y) / (view.bottom - view.top);
        dt = Math.max(-drag.range[0], Math.min(1 - drag.range[1], dt));
        setBrush(drag.j, drag.range[0] + dt, drag.range[1] + dt);
      } else { drag.x = p.x; schedule(false); }
      return;
    }
    if (drag && Math.hypot(p.x - drag.x0, p.y - drag.y0) >= 4) drag.moved = true;
    if (e.pointerType !== 'mouse' || pinned) return;
    const onAxis = axisAt(p); const onTitle = onAxis < 0 ? titleAt(p) : -1;
    if (onAxis >= 0 || onTitle >= 0) {
      const range = onAxis >= 0 ? brushRange(onAxis) : null;
      setCursor(onTitle >= 0 ? 'ew-resize'
        : range && p.y >= yOf(Math.min(1, range[1])) && p.y <= yOf(Math.max(0, range[0])) ? 'grab' : 'ns-resize');
      setHover(-1, p); return;
    }
    const r = nearestRun(p, HOVER_PX);
    setCursor(r >= 0 ? 'pointer' : 'default');
    setHover(r, p);
  });

  function finish(e) {
    if (!drag || !view) return;
    const d = drag; drag = null;
    if (pending) { const runs = pending; pending = null; queueMicrotask(() => { if (!drag) show(runs); }); }
    const p = pointAt(e);
    if (d.mode === 'brush' || d.mode === 'move') {
      const label = view.axes[d.j].label; const b = state.brushes.get(label);
      if (!d.moved) { if (d.mode === 'brush') state.brushes.delete(label); }   // a click beside a brush clears it
      else if (b && b.drag) { delete b.drag; if (!b.cats.size) state.brushes.delete(label); }
      selectionChanged(true);
    } else if (d.mode === 'reorder') {
      if (d.moved && e.type === 'pointerup') { reorder(d.j, p.x); syncUrl(); } else schedule(false);
    } else if (!d.moved && e.type === 'pointerup') {
      if (d.type === 'mouse') {
        const r = nearestRun(p, HOVER_PX); const href = r >= 0 ? `/runs/${encodeURIComponent(view.runs[r].hash)}` : '';
        if (href && (e.ctrlKey || e.metaKey)) window.open(href, '_blank', 'noopener'); else if (href) navigate(href);
      } else {   // a tap names the nearest run; its tooltip has a link to it
        const r = nearestRun(p, 28);
        pinned = r >= 0; setHover(r, p);
      }
    }
  }
  plot.addEventListener('pointerup', finish);
  plot.addEventListener('pointercancel', finish);
  plot.addEventListener('pointerleave', (e) => { if (e.pointerType === 'mouse' && !drag && !pinned) setHover(-1, pointAt(e)); });

  const resize = new ResizeObserver(() => {
    if (view && plot.clientWidth !== width) {
      width = plot.clientWidth; hover = -1; pinned = false; tooltip.hidden = true; layout(); schedule(true);
    }
  });
  resize.observe(plot);

  await load();
  return () => { follow.close(); resize.disconnect(); if (frame) cancelAnimationFrame(frame); };
}
