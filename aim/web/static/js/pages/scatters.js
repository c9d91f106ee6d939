// Scatters explorer: one point per run of a run query, x and y chosen among the runs'
// params and the last values of their metrics (per name and context), coloured by a third
// choice (numbers: a colour scale with its legend; anything else: a palette of categories).
// Either axis may be logarithmic. Hovering a point names the run and its values; clicking
// opens the run. Every setting is kept in the URL.

import { el, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatValue, seriesLabel } from '../format.js';
import { navigate, setUrlState } from '../app.js';
import { LiveFollow, activeRuns, changedRunsQuery, changedSince, mergeRuns } from '../live_follow.js';

const PAGE = 1000;           // the API's largest page
const MAX_RUNS = 5000;       // points drawn at most (five pages)
const PAD = { left: 64, right: 16, top: 14, bottom: 44 };
const RADIUS = 4;
const MISSING = '#9aa1ad';
const PALETTE = ['#3b6fd8', '#e4572e', '#2f9e5b', '#9c4fd6', '#f2a541', '#17a2b8', '#d6336c', '#6c757d', '#8c6d31', '#20c997'];

function linkStylesheet() {
  if (document.getElementById('scatters-css')) return;
  document.head.appendChild(el('link', { id: 'scatters-css', rel: 'stylesheet', href: '/static/css/scatters.css' }));
}

export function colourScale(t) {  // dark blue -> teal -> yellow
  const stops = [[49, 54, 149], [33, 145, 140], [253, 231, 37]];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u)); const f = u - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const present = (v) => v !== null && v !== undefined;

export function tickLabel(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(4)));
  return Number(v.toPrecision(3)).toExponential();
}

// An axis over the values one field takes: numbers (linear or log; a linear one with a
// margin of 4 % each side unless `margin` is false) or categories. `pos`
// maps a value to 0..1 along the axis, or null when it has no place (no value; zero or a
// negative number on a log axis).
export function makeAxis(values, log, margin = true) {
  const given = values.filter(present);
  const nums = given.filter(isNum);
  if (given.length && nums.length === given.length) {
    const usable = log ? nums.filter((v) => v > 0) : nums;
    if (!usable.length) return { kind: 'number', log, ticks: [], pos: () => null };
    let lo = Math.min(...usable); let hi = Math.max(...usable);
    if (log) {
      let a = Math.log10(lo); let b = Math.log10(hi);
      if (b - a < 1e-9) { a -= 0.5; b += 0.5; }
      const ticks = [];
      const every = Math.max(1, Math.ceil((Math.floor(b) - Math.ceil(a) + 1) / 8));
      for (let e = Math.ceil(a - 1e-9); e <= Math.floor(b + 1e-9); e += every) ticks.push({ t: (e - a) / (b - a), label: tickLabel(Number(`1e${e}`)) });
      if (!ticks.length) for (const v of [10 ** a, 10 ** b]) ticks.push({ t: (Math.log10(v) - a) / (b - a), label: tickLabel(v) });
      return { kind: 'number', log, lo: 10 ** a, hi: 10 ** b, ticks, pos: (v) => (isNum(v) && v > 0 ? (Math.log10(v) - a) / (b - a) : null) };
    }
    if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) { lo -= 0.5; hi += 0.5; }
    if (margin) { const m = (hi - lo) * 0.04; lo -= m; hi += m; }
    const raw = (hi - lo) / 5; const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const ticks = [];
    for (let k = Math.ceil(lo / step); k * step <= hi; k += 1) {
      const value = Number((k * step).toPrecision(12));
      ticks.push({ t: (value - lo) / (hi - lo), label: tickLabel(value) });
    }
    return { kind: 'number', log, lo, hi, ticks, pos: (v) => (isNum(v) ? (v - lo) / (hi - lo) : null) };
  }
  const cats = [...new Set(given.map(formatValue))].sort();
  const at = (k) => (k + 0.5) / cats.length;
  const every = Math.ceil(cats.length / 12);
  return { kind: 'category', log: false, cats,
    ticks: cats.map((c, k) => ({ t: at(k), label: c })).filter((_, k) => k % every === 0),
    pos: (v) => (present(v) ? at(cats.indexOf(formatValue(v))) : null) };
}

// A fixed offset in -0.5..0.5 per run (and axis): the same run sits at the same place on
// every redraw.
function jitter(hash, salt) {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < hash.length; i += 1) h = Math.imul(h ^ hash.charCodeAt(i), 16777619);
  return ((h >>> 0) / 4294967296) - 0.5;
}

function fitText(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}

export async function mount(root, { query }) {
  linkStylesheet();
  const state = { q: query.get('q') || '', x: query.get('x') || '', y: query.get('y') || '',
    color: query.get('color') || '', logx: query.get('logx') === '1', logy: query.get('logy') === '1' };
  const bar = new QueryBar({ value: state.q, placeholder: 'run.hparams.lr < 0.01', onSubmit: (q) => { state.q = q; load(); } });
  const xSelect = el('select', { id: 'scatter-x', 'aria-label': 'x axis' });
  const ySelect = el('select', { id: 'scatter-y', 'aria-label': 'y axis' });
  const cSelect = el('select', { id: 'scatter-color', 'aria-label': 'colour by' });
  const logX = el('input', { type: 'checkbox', id: 'scatter-logx', checked: state.logx });
  const logY = el('input', { type: 'checkbox', id: 'scatter-logy', checked: state.logy });
  const status = el('span', { class: 'muted', id: 'scatter-status' });
  const canvas = el('canvas', { id: 'scatter', class: 'scatter-canvas', role: 'img' });
  const tooltip = el('div', { class: 'chart-tooltip scatter-tooltip', id: 'scatter-tooltip', hidden: true });
  const plot = el('div', { class: 'scatter-plot' }, canvas, tooltip);
  const legend = el('div', { class: 'scatter-legend', id: 'scatter-legend', hidden: true });
  const follow = new LiveFollow({ id: 'scatters-live', root, refresh });
  root.append(el('h1', { text: 'Scatters' }), bar.root,
    el('div', { class: 'toolbar' },
      el('label', { class: 'control' }, 'x', xSelect, el('label', { class: 'check' }, logX, 'log')),
      el('label', { class: 'control' }, 'y', ySelect, el('label', { class: 'check' }, logY, 'log')),
      el('label', { class: 'control' }, 'colour', cSelect), status, follow.badge),
    plot, legend);

  let runs = []; let fields = []; let points = []; let view = null; let loads = 0;
  const errors = el('div');
  root.insertBefore(errors, plot);
  try {
    bar.setParamNames(Object.keys(await getJSON('/api/params')));
  } catch (_) { /* completion only */ }

  // The fields a run may be placed by: params (flattened) and metrics' last values.
  function collectFields() {
    const params = new Set(); const metrics = new Map();
    for (const r of runs) {
      for (const p of Object.keys(r.params || {})) if (!p.startsWith('__system_params')) params.add(p);
      for (const m of r.metrics || []) {
        if (m.name.startsWith('__system__')) continue;
        const id = `metric:${m.name}@${JSON.stringify(m.context || {})}`;
        if (!metrics.has(id)) metrics.set(id, { id, label: seriesLabel(m), name: m.name, ctx: JSON.stringify(m.context || {}) });
      }
    }
    return [...[...params].sort().map((p) => ({ id: `param:${p}`, label: p, path: p })),
      ...[...metrics.values()].sort((a, b) => (a.id < b.id ? -1 : 1))];
  }
  const fieldOf = (id) => fields.find((f) => f.id === id);
  function valueOf(run, field) {
    if (!field) return null;
    if (field.path !== undefined) return run.params?.[field.path];
    const m = (run.metrics || []).find((x) => x.name === field.name && JSON.stringify(x.context || {}) === field.ctx);
    return m ? m.last : null;
  }

  function fillSelect(select, value, withNone) {
    const groups = [['Params', fields.filter((f) => f.path !== undefined)], ['Metrics (last value)', fields.filter((f) => f.path === undefined)]];
    select.replaceChildren(...(withNone ? [el('option', { value: '', text: '(none)' })] : []),
      ...groups.filter(([, fs]) => fs.length).map(([label, fs]) => el('optgroup', { label },
        ...fs.map((f) => el('option', { value: f.id, text: f.label, selected: f.id === value })))));
    select.value = value;
  }

  // Defaults: x the first param whose numbers differ across the runs, y the first metric.
  function pickDefaults() {
    if (!fieldOf(state.x)) {
      const numeric = fields.filter((f) => f.path !== undefined && new Set(runs.map((r) => valueOf(r, f)).filter(isNum)).size > 1);
      state.x = (numeric[0] || fields[0] || {}).id || '';
    }
    if (!fieldOf(state.y)) {
      const metric = fields.find((f) => f.path === undefined && f.id !== state.x);
      state.y = (metric || fields.find((f) => f.id !== state.x) || {}).id || '';
    }
    if (state.color && !fieldOf(state.color)) state.color = '';
  }

  async function load() {
    errors.replaceChildren();
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let page; const got = [];
    try {
      do {
        page = await getJSON('/api/runs', { q: state.q, offset: got.length, limit: PAGE, params: '*', metrics: '*' });
        got.push(...page.runs);
      } while (mine === loads && page.runs.length === PAGE && got.length < Math.min(page.total, MAX_RUNS));
    } catch (e) {
      if (mine !== loads) return;
      if (e.detail && 'position' in e.detail) bar.showError(e); else errors.append(errorBox(e));
      return;
    }
    if (mine !== loads) return;   // a newer query answered meanwhile
    bar.showError(null);
    runs = got;
    fields = collectFields();
    pickDefaults();
    fillSelects();
    status.dataset.total = String(page.total);
    draw();
    const live = activeRuns(runs);
    follow.update(live.hashes, { names: live.names });
  }

  function fillSelects() {
    fillSelect(xSelect, state.x, false); fillSelect(ySelect, state.y, false); fillSelect(cSelect, state.color, true);
  }

  // Live runs: only the runs written, started or ended since the last answer, merged into
  // those drawn (new points, points that move); the axes, colour and log scales stay.
  async function refresh(signal) {
    const mine = loads;
    const since = changedSince(runs, new Set(follow.live()));
    const page = await getJSON('/api/runs', { q: changedRunsQuery(state.q, since), limit: PAGE, params: '*', metrics: '*' }, { signal });
    if (mine !== loads) return;
    if (page.runs.length) {
      const known = new Set(runs.map((r) => r.hash));
      const added = page.runs.filter((r) => !known.has(r.hash)).length;
      runs = mergeRuns(runs, page.runs).slice(0, MAX_RUNS);
      status.dataset.total = String(Number(status.dataset.total || 0) + added);
      const before = fields.map((f) => f.id).join('\n');
      fields = collectFields();
      if (fields.map((f) => f.id).join('\n') !== before) { pickDefaults(); fillSelects(); }
      const shownTip = tooltip.hidden ? null : tooltip.dataset.hash;
      draw();
      const p = shownTip ? points.find((q) => q.run.hash === shownTip) : null;
      if (p) showTip(p);
    }
    const live = activeRuns(runs);
    follow.update(live.hashes, { names: live.names });
  }

  function keepUrl() {
    setUrlState({ q: state.q, x: state.x, y: state.y, color: state.color, logx: state.logx ? '1' : '', logy: state.logy ? '1' : '' });
  }

  function draw() {
    keepUrl();
    tooltip.hidden = true;
    const fx = fieldOf(state.x); const fy = fieldOf(state.y); const fc = fieldOf(state.color);
    const ax = makeAxis(runs.map((r) => valueOf(r, fx)), state.logx);
    const ay = makeAxis(runs.map((r) => valueOf(r, fy)), state.logy);
    const cValues = fc ? runs.map((r) => valueOf(r, fc)) : [];
    // numbers spanning more than two decades, all positive, are coloured on a log scale
    const cNums = cValues.filter(present);
    const cLog = cNums.length > 1 && cNums.every((v) => isNum(v) && v > 0) && Math.max(...cNums) / Math.min(...cNums) > 100;
    const ac = fc ? makeAxis(cValues, cLog, false) : null;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(240, plot.clientWidth); const h = Math.max(260, Math.min(480, Math.round(w * 0.62)));
    canvas.width = w * dpr; canvas.height = h * dpr; canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    const ctx = canvas.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    const pw = w - PAD.left - PAD.right; const ph = h - PAD.top - PAD.bottom;
    const px = (t) => PAD.left + t * pw; const py = (t) => PAD.top + (1 - t) * ph;
    // grid, ticks and axis titles
    ctx.strokeStyle = '#e3e6eb'; ctx.fillStyle = '#333'; ctx.font = '11px system-ui, sans-serif'; ctx.lineWidth = 1;
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    const xStep = Math.max(40, pw / Math.max(1, ax.ticks.length));
    for (const tick of ax.ticks) {
      ctx.beginPath(); ctx.moveTo(px(tick.t), PAD.top); ctx.lineTo(px(tick.t), PAD.top + ph); ctx.stroke();
      ctx.fillText(fitText(ctx, tick.label, xStep - 4), px(tick.t), PAD.top + ph + 4);
    }
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (const tick of ay.ticks) {
      ctx.beginPath(); ctx.moveTo(PAD.left, py(tick.t)); ctx.lineTo(PAD.left + pw, py(tick.t)); ctx.stroke();
      ctx.fillText(fitText(ctx, tick.label, PAD.left - 8), PAD.left - 5, py(tick.t));
    }
    ctx.strokeStyle = '#555'; ctx.strokeRect(PAD.left, PAD.top, pw, ph);
    ctx.font = '600 12px system-ui, sans-serif'; ctx.textAlign = 'center'; ctx.textBaseline = 'bottom';
    ctx.fillText(fitText(ctx, (fx ? fx.label : '') + (ax.log ? ' (log)' : ''), pw), PAD.left + pw / 2, h - 2);
    ctx.save(); ctx.translate(12, PAD.top + ph / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = 'middle';
    ctx.fillText(fitText(ctx, (fy ? fy.label : '') + (ay.log ? ' (log)' : ''), ph), 0, 0); ctx.restore();
    // the points
    const colourOf = (run) => {
      if (!ac) return PALETTE[0];
      const t = ac.pos(valueOf(run, fc));
      if (t === null) return MISSING;
      return ac.kind === 'number' ? colourScale(t) : PALETTE[ac.cats.indexOf(formatValue(valueOf(run, fc))) % PALETTE.length];
    };
    points = [];
    let unplaced = 0;
    for (const run of runs) {
      let tx = ax.pos(valueOf(run, fx)); let ty = ay.pos(valueOf(run, fy));
      if (tx === null || ty === null) { unplaced += 1; continue; }
      // runs of one category spread across a third of its band instead of hiding each other
      if (ax.kind === 'category') tx += jitter(run.hash, 1) / ax.cats.length / 3;
      if (ay.kind === 'category') ty += jitter(run.hash, 2) / ay.cats.length / 3;
      points.push({ run, x: px(tx), y: py(ty), colour: colourOf(run) });
    }
    ctx.globalAlpha = points.length > 300 ? 0.7 : 0.9; ctx.lineWidth = 1; ctx.strokeStyle = '#fff';
    for (const p of points) {
      ctx.fillStyle = p.colour; ctx.beginPath(); ctx.arc(p.x, p.y, RADIUS, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    }
    ctx.globalAlpha = 1;
    view = { fx, fy, fc };
    canvas.dataset.points = String(points.length);
    canvas.setAttribute('aria-label', `scatter plot of ${points.length} runs: ${fx ? fx.label : ''} against ${fy ? fy.label : ''}`);
    canvas.scatterPoints = points.map((p) => ({ x: p.x, y: p.y, hash: p.run.hash, colour: p.colour }));
    const total = Number(status.dataset.total || runs.length);
    status.textContent = `${points.length} runs shown` + (unplaced ? `, ${unplaced} without both values${ax.log || ay.log ? ' (or not positive on a log axis)' : ''}` : '') +
      (total > runs.length ? ` · the first ${runs.length} of ${total} matching runs` : '');
    drawLegend(ac, fc);
    root.dataset.ready = '1';
  }

  function drawLegend(ac, fc) {
    legend.hidden = !ac;
    if (!ac) { legend.replaceChildren(); delete legend.dataset.kind; return; }
    legend.dataset.kind = ac.kind;
    const title = el('span', { class: 'scatter-legend-title', text: fc.label + (ac.log ? ' (log scale)' : '') });
    legend.dataset.scale = ac.log ? 'log' : 'linear';
    if (ac.kind === 'number') {
      const bar = el('canvas', { class: 'scatter-legend-bar', width: 200, height: 12 });
      const c = bar.getContext('2d');
      for (let i = 0; i < 200; i += 1) { c.fillStyle = colourScale(i / 199); c.fillRect(i, 0, 1, 12); }
      legend.dataset.min = String(ac.lo); legend.dataset.max = String(ac.hi);
      legend.replaceChildren(title, el('span', { class: 'scatter-legend-end', text: tickLabel(ac.lo) }), bar,
        el('span', { class: 'scatter-legend-end', text: tickLabel(ac.hi) }),
        el('span', { class: 'legend-item' }, el('span', { class: 'swatch', style: { background: MISSING } }), 'no value'));
    } else {
      legend.replaceChildren(title, ...ac.cats.slice(0, 30).map((cat, k) => el('span', { class: 'legend-item scatter-category' },
        el('span', { class: 'swatch', style: { background: PALETTE[k % PALETTE.length] } }), cat)),
      ...(ac.cats.length > 30 ? [el('span', { class: 'muted', text: `… ${ac.cats.length - 30} more` })] : []),
      el('span', { class: 'legend-item' }, el('span', { class: 'swatch', style: { background: MISSING } }), 'no value'));
    }
  }

  function nearest(event) {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left; const y = event.clientY - box.top;
    let best = null; let bestD = (RADIUS + 5) ** 2;
    for (const p of points) {
      const d = (p.x - x) ** 2 + (p.y - y) ** 2;
      if (d <= bestD) { best = p; bestD = d; }
    }
    return best;
  }
  canvas.addEventListener('mousemove', (event) => {
    const p = nearest(event);
    canvas.style.cursor = p ? 'pointer' : 'default';
    if (!p) { tooltip.hidden = true; return; }
    showTip(p);
  });
  function showTip(p) {
    const row = (label, v) => el('div', {}, el('span', { class: 'muted', text: `${label}: ` }), formatValue(v));
    tooltip.replaceChildren(el('div', { class: 'scatter-tooltip-name', text: p.run.name || p.run.hash }),
      row(view.fx.label, valueOf(p.run, view.fx)), row(view.fy.label, valueOf(p.run, view.fy)),
      ...(view.fc ? [row(view.fc.label, valueOf(p.run, view.fc))] : []));
    tooltip.hidden = false;
    const left = p.x + 12 + tooltip.offsetWidth > canvas.clientWidth ? p.x - 12 - tooltip.offsetWidth : p.x + 12;
    tooltip.style.left = `${Math.max(0, left)}px`; tooltip.style.top = `${Math.max(0, p.y - 10)}px`;
    tooltip.dataset.hash = p.run.hash;
  }
  canvas.addEventListener('mouseleave', () => { tooltip.hidden = true; });
  canvas.addEventListener('click', (event) => {
    const p = nearest(event);
    if (p) navigate(`/runs/${encodeURIComponent(p.run.hash)}`);
  });
  xSelect.addEventListener('change', () => { state.x = xSelect.value; draw(); });
  ySelect.addEventListener('change', () => { state.y = ySelect.value; draw(); });
  cSelect.addEventListener('change', () => { state.color = cSelect.value; draw(); });
  logX.addEventListener('change', () => { state.logx = logX.checked; draw(); });
  logY.addEventListener('change', () => { state.logy = logY.checked; draw(); });
  let width = 0;
  const resize = new ResizeObserver(() => { if (runs.length && plot.clientWidth !== width) { width = plot.clientWidth; draw(); } });
  resize.observe(plot);

  await load();
  return () => { follow.close(); resize.disconnect(); };
}
