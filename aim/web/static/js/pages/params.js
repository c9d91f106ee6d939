// Params explorer: parallel coordinates over chosen params and metric last values, each
// run one polyline coloured by a chosen metric.

import { el, clear, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatNumber, formatValue } from '../format.js';
import { setUrlState } from '../app.js';

const PAD = { left: 60, right: 80, top: 36, bottom: 24 };

function colourScale(t) {  // dark blue -> teal -> yellow
  const stops = [[49, 54, 149], [33, 145, 140], [253, 231, 37]];
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u)); const f = u - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function makeAxis(label, values) {
  const nums = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (nums.length && nums.length === values.filter((v) => v !== null && v !== undefined).length) {
    const lo = Math.min(...nums); const hi = Math.max(...nums);
    return { label, kind: 'number', lo, hi, pos: (v) => (typeof v === 'number' && Number.isFinite(v) ? (hi > lo ? (v - lo) / (hi - lo) : 0.5) : null) };
  }
  const cats = [...new Set(values.filter((v) => v !== null && v !== undefined).map((v) => formatValue(v)))].sort();
  return { label, kind: 'category', cats, pos: (v) => (v === null || v === undefined ? null : (cats.length > 1 ? cats.indexOf(formatValue(v)) / (cats.length - 1) : 0.5)) };
}

export async function mount(root, { query }) {
  const state = { q: query.get('q') || '', params: (query.get('params') || '').split(',').filter(Boolean),
    metrics: (query.get('metrics') || '').split(',').filter(Boolean), color: query.get('color') || '' };
  const bar = new QueryBar({ value: state.q, placeholder: 'run.experiment == "baseline"', onSubmit: (q) => { state.q = q; load(); } });
  const chooser = el('details', { class: 'columns-menu' }, el('summary', { text: 'Axes' }));
  const colorSelect = el('select', { id: 'params-color', onchange: () => { state.color = colorSelect.value; load(); } });
  const canvas = el('canvas', { id: 'parallel', class: 'parallel' });
  const status = el('span', { class: 'muted' });
  root.append(el('h1', { text: 'Params' }), bar.root,
    el('div', { class: 'toolbar' }, chooser, el('label', { class: 'control' }, 'Colour by metric', colorSelect), status), canvas);
  let paramPaths = []; let metricNames = [];
  try {
    const [ps, ms] = await Promise.all([getJSON('/api/params'), getJSON('/api/metric-names')]);
    paramPaths = Object.keys(ps).filter((p) => !p.startsWith('__system_params'));
    metricNames = [...new Set(ms.map((m) => m.name))].filter((n) => !n.startsWith('__system__'));
    bar.setParamNames(Object.keys(ps));
  } catch (e) { root.append(errorBox(e)); return null; }
  if (!state.params.length) state.params = paramPaths.slice(0, 6);
  if (!state.metrics.length) state.metrics = metricNames.slice(0, 2);
  if (!state.color) state.color = state.metrics[0] || '';
  const box = (label, list, v) => el('label', { class: 'check' }, el('input', { type: 'checkbox', checked: list.includes(v), onchange: (e) => {
    const i = list.indexOf(v); if (e.target.checked && i < 0) list.push(v); else if (!e.target.checked && i >= 0) list.splice(i, 1); load();
  } }), label);
  chooser.append(el('div', { class: 'columns-list' }, el('strong', { text: 'Params' }), ...paramPaths.map((p) => box(p, state.params, p)),
    el('strong', { text: 'Metrics (last value)' }), ...metricNames.map((m) => box(m, state.metrics, m))));

  async function load() {
    setUrlState({ q: state.q, params: state.params.join(','), metrics: state.metrics.join(','), color: state.color });
    colorSelect.replaceChildren(el('option', { value: '', text: '(none)' }), ...metricNames.map((m) => el('option', { value: m, text: m, selected: m === state.color })));
    let page;
    try {
      page = await getJSON('/api/runs', { q: state.q, limit: 1000, params: state.params,
        metrics: [...new Set([...state.metrics, state.color].filter(Boolean))] });
    } catch (e) { if (e.detail && 'position' in e.detail) bar.showError(e); else root.append(errorBox(e)); return; }
    bar.showError(null);
    status.textContent = `${page.runs.length} of ${page.total} runs`;
    const lastOf = (run, name) => { const m = (run.metrics || []).find((x) => x.name === name && !Object.keys(x.context).length) || (run.metrics || []).find((x) => x.name === name); return m ? m.last : null; };
    const columns = [...state.params.map((p) => ({ label: p, get: (r) => r.params?.[p] })),
      ...state.metrics.map((m) => ({ label: m, get: (r) => lastOf(r, m) }))];
    const axes = columns.map((c) => makeAxis(c.label, page.runs.map(c.get)));
    const colourAxis = state.color ? makeAxis(state.color, page.runs.map((r) => lastOf(r, state.color))) : null;
    draw(page.runs, columns, axes, colourAxis);
    root.dataset.ready = '1';
  }

  function draw(runs, columns, axes, colourAxis) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(400, bar.root.clientWidth); const h = 460;  // the content width
    canvas.width = w * dpr; canvas.height = h * dpr; canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
    const ctx = canvas.getContext('2d'); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, w, h);
    if (!axes.length) return;
    const xOf = (i) => PAD.left + (axes.length > 1 ? (i * (w - PAD.left - PAD.right)) / (axes.length - 1) : 0);
    const yOf = (t) => PAD.top + (1 - t) * (h - PAD.top - PAD.bottom);
    ctx.lineWidth = 1.2; ctx.globalAlpha = runs.length > 300 ? 0.35 : 0.8;
    for (const run of runs) {
      const c = colourAxis ? colourAxis.pos(columns.length && lastOfColour(run)) : null;
      ctx.strokeStyle = c === null || c === undefined ? '#8892a0' : colourScale(c);
      ctx.beginPath(); let pen = false;
      columns.forEach((col, i) => {
        const t = axes[i].pos(col.get(run));
        if (t === null || t < 0) { pen = false; return; }
        if (pen) ctx.lineTo(xOf(i), yOf(t)); else { ctx.moveTo(xOf(i), yOf(t)); pen = true; }
      });
      ctx.stroke();
    }
    ctx.globalAlpha = 1; ctx.strokeStyle = '#333'; ctx.fillStyle = '#222'; ctx.font = '11px system-ui, sans-serif'; ctx.textAlign = 'center';
    axes.forEach((a, i) => {
      const x = xOf(i);
      ctx.beginPath(); ctx.moveTo(x, yOf(0)); ctx.lineTo(x, yOf(1)); ctx.stroke();
      ctx.fillText(a.label, x, PAD.top - 18);
      const labels = a.kind === 'number' ? [[0, a.lo], [1, a.hi]] : a.cats.slice(0, 12).map((cat, k) => [a.cats.length > 1 ? k / (a.cats.length - 1) : 0.5, cat]);
      ctx.textAlign = 'left';
      for (const [t, v] of labels) ctx.fillText(typeof v === 'number' ? formatNumber(v) : String(v), x + 4, yOf(t) + 4);
      ctx.textAlign = 'center';
    });
    function lastOfColour(run) { const m = (run.metrics || []).find((x) => x.name === state.color); return m ? m.last : null; }
  }

  await load();
  return null;
}
