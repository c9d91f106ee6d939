// Figures explorer: plotly figures of the matching series at the chosen step (newest by
// default), drawn interactively by plotly.js. plotly.js is loaded only once a figure comes
// into view; a server without it (scripts/setup_web.sh not run) gets a note saying so.

import { el, clear, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import {
  StepSlider, addQueryWords, blobUrl, explorerFrame, emptyNote, fetchPoints, fetchSeries, lazyLoader,
  loadPlotly, runLabel, seriesTitle, showQueryError, sortSeries, stepRange,
} from '../objects.js';

const MAX_FIGURES = 60;

// A card whose figure is fetched and drawn when it scrolls into view.
export function figureCard(obj, { series, runs, point, lazy, onError }) {
  const plot = el('div', { class: 'figure-plot' }, el('span', { class: 'muted', text: 'loading figure…' }));
  plot.lazyRender = async () => {
    try {
      const [Plotly, figure] = await Promise.all([loadPlotly(), getJSON(blobUrl(obj.blob))]);
      clear(plot);
      await Plotly.newPlot(plot, figure.data || [], { autosize: true, margin: { l: 40, r: 10, t: 30, b: 30 }, ...(figure.layout || {}) },
        { responsive: true, displaylogo: false, displayModeBar: false });  // its bar needs inline <style>
      plot.dataset.drawn = '1';
    } catch (e) {
      clear(plot).append(errorBox(e));
      if (onError) onError(e);
    }
  };
  if (lazy) lazy.observe(plot); else plot.lazyRender();
  return el('figure', { class: 'obj-card figure-card', dataset: { series: series.id, step: point.step } }, plot,
    el('figcaption', { class: 'muted small', text: `${runLabel(runs, series.run)} · ${seriesTitle(series)} · step ${point.step}` }));
}

export async function mount(root, { query }) {
  const state = { q: query.get('q') || '', step: query.get('step') ? Number(query.get('step')) : null };
  let data = null; let ordered = []; let lazy = null; let loading = 0;
  const bar = new QueryBar({ value: state.q, placeholder: "figures.name == 'confusion' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; state.step = null; load(); } });
  addQueryWords(bar, 'figures');
  const slider = new StepSlider({ onChange: (v) => { state.step = v; showStep(); } });
  const { status, body } = explorerFrame(root, { title: 'Figures', bar, tools: [slider.root] });

  async function load() {
    delete root.dataset.ready;
    try { data = await fetchSeries('figures', state.q); } catch (e) { showQueryError(bar, body, e, errorBox); root.dataset.ready = '1'; return; }
    bar.showError(null);
    ordered = sortSeries(data.series, data.runs).slice(0, MAX_FIGURES);
    const [min, max] = stepRange(ordered);
    if (state.step !== null && (state.step < min || state.step > max)) state.step = null;
    slider.setRange(min, max, state.step ?? max);
    await showStep();
  }

  async function showStep() {
    const ticket = ++loading;
    delete root.dataset.ready;
    setUrlState({ q: state.q, step: state.step ?? '' });
    let points;
    try {
      points = ordered.length ? (await fetchPoints('figures', ordered.map((s) => s.id), state.step === null ? {} : { step: state.step })).points : [];
    } catch (e) { clear(body).append(errorBox(e)); root.dataset.ready = '1'; return; }
    if (ticket !== loading) return;
    if (lazy) lazy.disconnect();
    lazy = lazyLoader('300px');
    const byId = new Map(ordered.map((s) => [s.id, s]));
    const cards = points.flatMap((p) => (p.objects || []).map((o) => figureCard(o, { series: byId.get(p.id), runs: data.runs, point: p, lazy })));
    clear(body).append(cards.length ? el('div', { class: 'cards figure-cards' }, cards) : emptyNote('figures', state.q));
    status.textContent = ordered.length ? `${data.series.length} series${data.series.length > MAX_FIGURES || data.truncated
      ? ` (the first ${MAX_FIGURES} shown: narrow the query)` : ''}` : '';
    root.dataset.ready = '1';
  }

  await load();
  return () => { if (lazy) lazy.disconnect(); };
}

export async function renderRunTab(panel, runHash, series) {
  const runs = { [runHash]: { hash: runHash } };
  const lazy = lazyLoader('300px');
  const answer = await fetchPoints('figures', series.slice(0, MAX_FIGURES).map((s) => s.id));
  const byId = new Map(series.map((s) => [s.id, s]));
  panel.append(el('div', { class: 'cards figure-cards' }, answer.points.flatMap((p) => (p.objects || []).map((o) =>
    figureCard(o, { series: byId.get(p.id), runs, point: p, lazy })))));
  return () => lazy.disconnect();
}
