// Live: charts of the runs that are being written now. Every few seconds only the points
// written since the previous answer are fetched and appended. A legend names the runs'
// colours; dragging zooms a chart into its own points (double-click goes back), and the
// zoom survives the updates.

import { el, clear, errorBox } from '../dom.js';
import { getJSON, getSeries } from '../api.js';
import { LineChart } from '../chart.js';
import { PALETTE } from '../series_ops.js';
import { formatNumber, seriesLabel } from '../format.js';

const REFRESH_MS = 2000;

function concat(a, b) { const out = new Float64Array(a.length + b.length); out.set(a); out.set(b, a.length); return out; }

export async function mount(root) {
  const status = el('span', { class: 'muted', id: 'live-status' });
  const charts = el('div', { class: 'charts', id: 'live-charts' });
  const legend = el('div', { class: 'legend', id: 'live-legend' });
  root.append(el('h1', { text: 'Live' }), el('div', { class: 'toolbar' }, status), legend, charts);
  const series = new Map(); // key -> {x, y, step, name, context, run}
  const chartsByName = new Map();
  let runs = []; let until = null; let timer = null; let stopped = false;

  async function refreshRuns() {
    const page = await getJSON('/api/runs/active');
    runs = page.runs;
  }

  function key(s) { return `${s.run}|${s.name}|${JSON.stringify(s.context)}`; }

  async function poll() {
    try {
      await refreshRuns();
      if (!runs.length) { status.textContent = 'No run is being written right now.'; return; }
      const head = await getSeries({ runs: runs.map((r) => r.hash), since: until ?? undefined, width: 1000 });
      let added = 0;
      for (const s of head.series) {
        const k = key(s); const old = series.get(k);
        if (!old) { series.set(k, { ...s, runInfo: head.runs[s.run] }); added += s.n; continue; }
        const last = old.x.length ? old.x[old.x.length - 1] : -Infinity;
        let from = 0; while (from < s.n && s.x[from] <= last) from++;
        if (from < s.n) {
          old.x = concat(old.x, s.x.subarray(from)); old.y = concat(old.y, s.y.subarray(from));
          old.step = concat(old.step, s.step.subarray(from)); added += s.n - from;
        }
      }
      if (head.until !== null && head.until !== undefined) until = head.until;
      draw();
      const names = runs.slice(0, 5).map((r) => r.name || r.hash).join(', ');
      status.textContent = `${runs.length} running (${names}${runs.length > 5 ? ', …' : ''}) · ${series.size} series · +${added} points · ${new Date().toLocaleTimeString()}`;
      root.dataset.points = String([...series.values()].reduce((a, s) => a + s.x.length, 0));
      root.dataset.ready = '1';
    } catch (e) {
      status.textContent = e.message;
    } finally {
      if (!stopped) timer = setTimeout(poll, REFRESH_MS);
    }
  }

  function draw() {
    const byName = new Map();
    for (const s of series.values()) {
      const label = seriesLabel(s);
      if (!byName.has(label)) byName.set(label, []);
      byName.get(label).push(s);
    }
    const runIndex = new Map(runs.map((r, i) => [r.hash, i]));
    drawLegend(runIndex);
    for (const [label, list] of byName) {
      let chart = chartsByName.get(label);
      if (!chart) {
        const box = el('section', { class: 'chart-box' }, el('h3', { text: label }));
        charts.append(box);
        chart = new LineChart(box, { height: 220, xAxis: 'step', tooltip: (hit) => [hit.line.meta.runInfo?.name || hit.line.meta.run, `step ${hit.x}`, `value ${formatNumber(hit.y)}`] });
        chartsByName.set(label, chart);
        window.__aimLiveCharts = [...chartsByName.values()];
      }
      chart.setData({ lines: list.map((s) => ({ x: s.x, y: s.y, color: PALETTE[(runIndex.get(s.run) ?? 0) % PALETTE.length], meta: s })) });
    }
  }

  // One swatch per run that has a series here, in the colour its lines have.
  function drawLegend(runIndex) {
    const shown = new Map();
    for (const s of series.values()) {
      if (!shown.has(s.run)) shown.set(s.run, s.runInfo?.name || s.run);
    }
    const items = [...shown].map(([hash, name]) => el('span', { class: 'legend-item', title: hash },
      el('span', { class: 'swatch', style: { background: PALETTE[(runIndex.get(hash) ?? 0) % PALETTE.length] } }), name));
    if (items.length) items.unshift(el('strong', { text: 'runs:' }));
    legend.replaceChildren(...items);
  }

  await poll();
  return () => {
    stopped = true; clearTimeout(timer);
    for (const chart of chartsByName.values()) chart.destroy();
  };
}
