// Params explorer: parallel coordinates over params and metric last values of the runs a
// query selects, each run one polyline coloured by a chosen metric (legend below).
// Without axes in the URL the page picks them from the selected runs: the params that vary
// across them and that most of them have (see defaultParams).

import { el, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatValue } from '../format.js';
import { setUrlState } from '../app.js';

const PAD = { left: 60, right: 90, top: 40, bottom: 24 };
const MAX_AUTO_AXES = 8;
const LOG_SPAN = 100;         // a positive numeric axis spanning more than two decades is log
const MISSING_COLOUR = '#8892a0';

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
      return { label, kind: 'number', scale: 'log', lo, hi, ticks: logTicks(lo, hi),
        pos: (v) => (isNum(v) && v > 0 ? (Math.log10(v) - a) / (b - a) : null) };
    }
    return { label, kind: 'number', scale: 'linear', lo, hi, ticks: linearTicks(lo, hi),
      pos: (v) => (isNum(v) ? (hi > lo ? (v - lo) / (hi - lo) : 0.5) : null) };
  }
  const cats = [...new Set(given.map((v) => formatValue(v)))].sort();
  const catPos = (k) => (cats.length > 1 ? k / (cats.length - 1) : 0.5);
  const shown = cats.length > 12 ? cats.filter((_, k) => k % Math.ceil(cats.length / 12) === 0) : cats;
  return { label, kind: 'category', scale: 'category', cats,
    ticks: shown.map((cat) => ({ value: cat, t: catPos(cats.indexOf(cat)) })),
    pos: (v) => (present(v) ? catPos(cats.indexOf(formatValue(v))) : null) };
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
    metrics: (query.get('metrics') || '').split(',').filter(Boolean), color: query.get('color') || '' };
  state.auto = !state.params.length;   // axes follow the selected runs until the user picks
  const bar = new QueryBar({ value: state.q, placeholder: 'run.experiment == "baseline"', onSubmit: (q) => { state.q = q; load(); } });
  const chooser = el('details', { class: 'columns-menu' }, el('summary', { text: 'Axes' }));
  const colorSelect = el('select', { id: 'params-color', onchange: () => { state.color = colorSelect.value; load(); } });
  const canvas = el('canvas', { id: 'parallel', class: 'parallel' });
  const legend = el('div', { id: 'params-legend', class: 'params-legend', hidden: true },
    el('span', { class: 'params-legend-title' }), el('canvas', { class: 'params-legend-bar' }),
    el('span', { class: 'params-legend-missing' }, el('span', { class: 'params-legend-swatch' }), 'no value'));
  const status = el('span', { class: 'muted' });
  root.append(el('h1', { text: 'Params' }), bar.root,
    el('div', { class: 'toolbar' }, chooser, el('label', { class: 'control' }, 'Colour by metric', colorSelect), status), canvas, legend);
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

  async function load() {
    colorSelect.replaceChildren(el('option', { value: '', text: '(none)' }), ...metricNames.map((m) => el('option', { value: m, text: m, selected: m === state.color })));
    let page;
    try {
      page = await getJSON('/api/runs', { q: state.q, limit: 1000, params: state.auto ? ['*'] : state.params,
        metrics: [...new Set([...state.metrics, state.color].filter(Boolean))] });
    } catch (e) { if (e.detail && 'position' in e.detail) bar.showError(e); else root.append(errorBox(e)); return; }
    bar.showError(null);
    if (state.auto) state.params = defaultParams(page.runs);
    setUrlState({ q: state.q, params: state.auto ? '' : state.params.join(','), metrics: state.metrics.join(','), color: state.color });
    renderChooser();
    status.textContent = `${page.runs.length} of ${page.total} runs`;
    const lastOf = (run, name) => { const m = (run.metrics || []).find((x) => x.name === name && !Object.keys(x.context).length) || (run.metrics || []).find((x) => x.name === name); return m ? m.last : null; };
    const columns = [...state.params.map((p) => ({ label: p, get: (r) => r.params?.[p] })),
      ...state.metrics.map((m) => ({ label: m, get: (r) => lastOf(r, m) }))];
    const axes = columns.map((c) => makeAxis(c.label, page.runs.map(c.get)));
    const colourAxis = state.color ? makeAxis(state.color, page.runs.map((r) => lastOf(r, state.color))) : null;
    draw(page.runs, columns, axes, (run) => (colourAxis ? colourAxis.pos(lastOf(run, state.color)) : null));
    drawLegend(legend, colourAxis);
    canvas.dataset.axes = JSON.stringify(axes.map((a) => ({ label: a.label, scale: a.scale, ticks: a.ticks.map(labelOf) })));
    root.dataset.ready = '1';
  }

  function draw(runs, columns, axes, colourOf) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(400, bar.root.clientWidth); const h = 460;  // the content width
    canvas.width = w * dpr; canvas.height = h * dpr; canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    const ctx = canvas.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    if (!axes.length) return;
    const gap = axes.length > 1 ? (w - PAD.left - PAD.right) / (axes.length - 1) : w - PAD.left - PAD.right;
    const xOf = (i) => PAD.left + (axes.length > 1 ? i * gap : 0);
    const yOf = (t) => PAD.top + (1 - t) * (h - PAD.top - PAD.bottom);
    ctx.lineWidth = 1.2; ctx.globalAlpha = runs.length > 300 ? 0.35 : 0.8;
    for (const run of runs) {
      const c = colourOf(run);
      ctx.strokeStyle = c === null || c === undefined ? MISSING_COLOUR : colourScale(c);
      ctx.beginPath(); let pen = false;
      columns.forEach((col, i) => {
        const t = axes[i].pos(col.get(run));
        if (t === null || t < 0) { pen = false; return; }
        if (pen) ctx.lineTo(xOf(i), yOf(t)); else { ctx.moveTo(xOf(i), yOf(t)); pen = true; }
      });
      ctx.stroke();
    }
    ctx.globalAlpha = 1; ctx.strokeStyle = '#333'; ctx.fillStyle = '#222'; ctx.font = '11px system-ui, sans-serif';
    axes.forEach((a, i) => {
      const x = xOf(i);
      ctx.beginPath(); ctx.moveTo(x, yOf(0)); ctx.lineTo(x, yOf(1)); ctx.stroke();
      ctx.textAlign = 'center'; ctx.font = '600 11px system-ui, sans-serif';
      ctx.fillText(fitText(ctx, a.label, Math.max(40, gap - 8)), x, PAD.top - 22);
      ctx.font = '10px system-ui, sans-serif'; ctx.fillStyle = '#666';
      ctx.fillText(a.scale === 'log' ? 'log' : a.scale === 'category' ? '' : 'linear', x, PAD.top - 10);
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

  await load();
  return null;
}
