// Figures explorer: plotly figures of the matching series at the chosen step (newest by
// default), drawn interactively by plotly.js. plotly.js is loaded only once a figure comes
// into view; a server without it (scripts/setup_web.sh not run) gets a note saying so.

import { el, clear, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import {
  StepSlider, addQueryWords, blobUrl, explorerFrame, emptyNote, fetchPoints, fetchSeries, lazyLoader,
  liveRunsOf, loadPlotly, pointChanged, replaceSeriesCards, runLabel, seriesChanges, seriesTitle, showQueryError,
  sortSeries, stepRange,
} from '../objects.js';
import { LiveFollow } from '../live_follow.js';

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
  let data = null; let ordered = []; let lazy = null; let loading = 0; let loads = 0; let shown = new Map();
  const bar = new QueryBar({ value: state.q, placeholder: "figures.name == 'confusion' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; state.step = null; load(); } });
  addQueryWords(bar, 'figures');
  const slider = new StepSlider({ onChange: (v) => { state.step = v; showStep(); } });
  const follow = new LiveFollow({ id: 'figures-live', root, refresh });
  const { status, body } = explorerFrame(root, { title: 'Figures', bar, tools: [slider.root, follow.badge] });

  async function load() {
    delete root.dataset.ready;
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let answer;
    try { answer = await fetchSeries('figures', state.q); } catch (e) { showQueryError(bar, body, e, errorBox); root.dataset.ready = '1'; return; }
    if (mine !== loads) return;
    data = answer;
    bar.showError(null);
    ordered = sortSeries(data.series, data.runs).slice(0, MAX_FIGURES);
    const [min, max] = stepRange(ordered);
    if (state.step !== null && (state.step < min || state.step > max)) state.step = null;
    slider.setRange(min, max, state.step ?? max);
    await showStep();
    follow.update(...liveRunsOf(data));
  }

  async function showStep() {
    const ticket = ++loading;
    delete root.dataset.ready;
    let points;
    try {
      points = ordered.length ? (await fetchPoints('figures', ordered.map((s) => s.id), state.step === null ? {} : { step: state.step })).points : [];
    } catch (e) { clear(body).append(errorBox(e)); root.dataset.ready = '1'; return; }
    if (ticket !== loading) return;
    draw(points);
  }

  const cardsOf = (p, s) => (p.objects || []).map((o) => figureCard(o, { series: s, runs: data.runs, point: p, lazy }));

  function draw(points) {
    setUrlState({ q: state.q, step: state.step ?? '' });
    shown = new Map(points.map((p) => [p.id, p]));
    if (lazy) lazy.disconnect();
    lazy = lazyLoader('300px');
    const byId = new Map(ordered.map((s) => [s.id, s]));
    const cards = points.filter((p) => byId.has(p.id)).flatMap((p) => cardsOf(p, byId.get(p.id)));
    clear(body).append(cards.length ? el('div', { class: 'cards figure-cards' }, cards) : emptyNote('figures', state.q));
    status.textContent = ordered.length ? `${data.series.length} series${data.series.length > MAX_FIGURES || data.truncated
      ? ` (the first ${MAX_FIGURES} shown: narrow the query)` : ''}` : '';
    root.dataset.ready = '1';
  }

  // Live runs: the series again (with their newest figures when the newest step is shown);
  // only the figures that changed are drawn again.
  async function refresh(signal) {
    const mine = loads; const ticket = loading;
    const newest = slider.atNewest(state.step);
    const fresh = await fetchSeries('figures', state.q, { newest, signal });
    if (mine !== loads || ticket !== loading || !data) return;
    const before = ordered;
    data = fresh;
    ordered = sortSeries(data.series, data.runs).slice(0, MAX_FIGURES);
    const { sameSet } = seriesChanges(before, ordered);
    const step = slider.grow(stepRange(ordered), newest ? null : state.step);
    if (!newest && step === null) { state.step = null; await showStep(); follow.update(...liveRunsOf(fresh)); return; }
    state.step = step;
    if (newest) {
      const ids = new Set(ordered.map((s) => s.id));
      const points = fresh.points.filter((p) => ids.has(p.id));
      const changed = ordered.filter((s) => points.some((p) => p.id === s.id && pointChanged(shown.get(s.id), p)));
      if (!sameSet) draw(points);
      else if (changed.length) {
        const next = new Map(points.map((p) => [p.id, p]));
        if (!changed.every((s) => shown.has(s.id) && replaceSeriesCards(body, s.id, cardsOf(next.get(s.id), s)))) draw(points);
        else { shown = next; setUrlState({ q: state.q, step: '' }); }
      }
    } else if (!sameSet) await showStep();
    follow.update(...liveRunsOf(fresh));
  }

  await load();
  return () => { follow.close(); if (lazy) lazy.disconnect(); };
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
