// Distributions explorer: per series, a heatmap of its histograms over the steps (x: step,
// y: value over the range of all steps, shade: the weight of the step's bin holding that
// value relative to the step's largest) and, under it, the
// histogram of the step chosen with the slider.

import { el, clear, errorBox } from '../dom.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import { formatNumber } from '../format.js';
import {
  StepSlider, addQueryWords, explorerFrame, emptyNote, fetchPoints, fetchSeries, liveRunsOf, runLabel,
  seriesChanges, seriesTitle, showQueryError, sortSeries, stepRange,
} from '../objects.js';
import { LiveFollow } from '../live_follow.js';

const MAX_SERIES = 48;  // drawn on one page; the query narrows the rest
const WIDTH = 420; const HEAT_HEIGHT = 140; const HIST_HEIGHT = 110;

const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

// The point shown for a step: at it, or the newest before it (the first if none is).
export function pointAt(points, step) {
  let found = points[0];
  for (const p of points) { if (p.step <= step) found = p; else break; }
  return found;
}

function setupCanvas(width, height) {
  const canvas = el('canvas', { width: width * (window.devicePixelRatio || 1), height: height * (window.devicePixelRatio || 1) });
  canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.scale(window.devicePixelRatio || 1, window.devicePixelRatio || 1);
  return [canvas, ctx];
}

// The value range every step's histogram falls in (each step has its own range).
function valueRange(points) {
  let lo = Infinity; let hi = -Infinity;
  for (const p of points) {
    const [a, b] = (p.objects[0] || {}).range || [];
    if (Number.isFinite(a)) lo = Math.min(lo, a);
    if (Number.isFinite(b)) hi = Math.max(hi, b);
  }
  return Number.isFinite(lo) && hi > lo ? [lo, hi] : [0, 1];
}

const HEAT_ROWS = 100;

function drawHeatmap(ctx, points, marker, [lo, hi]) {
  const off = document.createElement('canvas');
  off.width = Math.max(1, points.length); off.height = HEAT_ROWS;
  const octx = off.getContext('2d');
  const image = octx.createImageData(off.width, HEAT_ROWS);
  points.forEach((p, x) => {
    const d = p.objects[0] || {};
    const w = (d.weights || []).map(finite);
    const [a, b] = d.range || [lo, hi];
    const top = Math.max(0, ...w) || 1;
    for (let row = 0; row < HEAT_ROWS; row++) {
      // the value at this row's middle, and the bin of this step that holds it
      const v = lo + ((row + 0.5) / HEAT_ROWS) * (hi - lo);
      const bin = b > a ? Math.floor(((v - a) / (b - a)) * w.length) : -1;
      const t = bin >= 0 && bin < w.length ? w[bin] / top : 0;
      const at = ((HEAT_ROWS - 1 - row) * off.width + x) * 4;   // low values at the bottom
      image.data[at] = Math.round(255 - 215 * t); image.data[at + 1] = Math.round(255 - 155 * t);
      image.data[at + 2] = Math.round(255 - 40 * t); image.data[at + 3] = 255;
    }
  });
  octx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, WIDTH, HEAT_HEIGHT);
  ctx.drawImage(off, 0, 0, WIDTH, HEAT_HEIGHT);
  const i = points.indexOf(marker);
  if (i >= 0) {
    ctx.strokeStyle = '#d62728'; ctx.lineWidth = 1.5;
    const x = ((i + 0.5) / points.length) * WIDTH;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, HEAT_HEIGHT); ctx.stroke();
  }
}

function drawHistogram(ctx, dist) {
  const w = (dist.weights || []).map(finite);
  const top = Math.max(0, ...w) || 1;
  ctx.clearRect(0, 0, WIDTH, HIST_HEIGHT);
  ctx.fillStyle = '#3b6fd8';
  const barW = WIDTH / Math.max(1, w.length);
  w.forEach((v, i) => { const h = (v / top) * (HIST_HEIGHT - 4); ctx.fillRect(i * barW, HIST_HEIGHT - h, Math.max(1, barW - 0.5), h); });
}

// A card for one series: heatmap, histogram and labels; .show(step) redraws for a step.
export function distributionCard(series, points, title) {
  const [heat, hctx] = setupCanvas(WIDTH, HEAT_HEIGHT);
  const [hist, gctx] = setupCanvas(WIDTH, HIST_HEIGHT);
  const note = el('div', { class: 'muted small' });
  const axis = el('div', { class: 'muted small hist-axis' });
  const values = valueRange(points);
  const card = el('div', { class: 'obj-card dist-card', dataset: { series: series.id } },
    el('h4', { text: title }), heat, el('div', { class: 'muted small', text: points.length
      ? `steps ${points[0].step}–${points[points.length - 1].step} · values ${formatNumber(values[0])} … ${formatNumber(values[1])}`
      : 'no points' }), hist, axis, note);
  card.show = (step) => {
    if (!points.length) return;
    const p = pointAt(points, step);
    const d = p.objects[0] || {};
    drawHeatmap(hctx, points, p, values);
    drawHistogram(gctx, d);
    const [lo, hi] = d.range || [null, null];
    axis.textContent = `${formatNumber(lo)} … ${formatNumber(hi)}`;
    note.textContent = `step ${p.step} · ${d.bin_count ?? (d.weights || []).length} bins · total weight ${formatNumber((d.weights || []).reduce((a, b) => a + finite(b), 0))}`;
  };
  return card;
}

async function seriesPoints(series, params = {}, options = {}) {
  const answer = await fetchPoints('distributions', series.map((s) => s.id), { all: true, ...params }, options);
  const by = new Map(series.map((s) => [s.id, []]));
  for (const p of answer.points) if (by.has(p.id)) by.get(p.id).push(p);
  return by;
}

export async function mount(root, { query }) {
  const state = { q: query.get('q') || '', step: query.get('step') ? Number(query.get('step')) : null };
  let cards = []; let shown = []; let runs = {}; let pointsBy = new Map(); let loads = 0;
  const bar = new QueryBar({ value: state.q, placeholder: "distributions.name == 'weights' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; state.step = null; load(); } });
  addQueryWords(bar, 'distributions');
  const slider = new StepSlider({ onChange: (v) => { state.step = v; show(); } });
  const follow = new LiveFollow({ id: 'distributions-live', root, refresh });
  const { status, body } = explorerFrame(root, { title: 'Distributions', bar, tools: [slider.root, follow.badge] });

  function show() {
    setUrlState({ q: state.q, step: state.step ?? '' });
    for (const c of cards) c.show(state.step ?? slider.value);
  }

  const cardOf = (s) => distributionCard(s, pointsBy.get(s.id) || [], `${runLabel(runs, s.run)} · ${seriesTitle(s)}`);

  async function load() {
    delete root.dataset.ready;
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let data; let by;
    try {
      data = await fetchSeries('distributions', state.q);
      bar.showError(null);
      const series = sortSeries(data.series, data.runs).slice(0, MAX_SERIES);
      by = await seriesPoints(series);
      data.shown = series;
    } catch (e) { showQueryError(bar, body, e, errorBox); root.dataset.ready = '1'; return; }
    if (mine !== loads) return;
    const [min, max] = stepRange(data.shown);
    if (state.step !== null && (state.step < min || state.step > max)) state.step = null;
    slider.setRange(min, max, state.step ?? max);
    lay(data, by);
    follow.update(...liveRunsOf(data));
  }

  function lay(data, by) {
    runs = data.runs; shown = data.shown; pointsBy = by;
    cards = shown.map(cardOf);
    clear(body).append(cards.length ? el('div', { class: 'cards' }, cards) : emptyNote('distributions', state.q));
    status.textContent = cards.length ? `${data.series.length} series${data.series.length > MAX_SERIES || data.truncated
      ? ` (the first ${MAX_SERIES} drawn: narrow the query)` : ''}` : '';
    show();
    root.dataset.ready = '1';
  }

  // Live runs: the series again; the steps written since are asked only of the series that
  // grew, and only their cards are drawn again. New series lay the page out again.
  async function refresh(signal) {
    const mine = loads;
    const newest = slider.atNewest(state.step);
    const data = await fetchSeries('distributions', state.q, { signal });
    if (mine !== loads) return;
    data.shown = sortSeries(data.series, data.runs).slice(0, MAX_SERIES);
    const { changed, sameSet } = seriesChanges(shown, data.shown);
    const grown = data.shown.filter((s) => changed.has(s.id));
    const by = new Map(pointsBy);
    if (!sameSet) {   // new series: all their points; the others keep theirs
      const added = data.shown.filter((s) => !by.has(s.id));
      const got = added.length ? await seriesPoints(added, {}, { signal }) : new Map();
      for (const [id, list] of got) by.set(id, list);
    }
    if (grown.length) {
      const last = (id) => { const list = by.get(id) || []; return list.length ? list[list.length - 1].step : -Infinity; };
      const from = Math.min(...grown.map((s) => last(s.id)));
      const got = await seriesPoints(grown, Number.isFinite(from) ? { first_step: from + 1 } : {}, { signal });
      for (const s of grown) by.set(s.id, [...(by.get(s.id) || []), ...got.get(s.id).filter((p) => p.step > last(s.id))]);
    }
    if (mine !== loads) return;
    state.step = slider.grow(stepRange(data.shown), newest ? null : state.step);
    if (!sameSet) lay(data, by);
    else if (grown.length) {
      runs = data.runs; shown = data.shown; pointsBy = by;
      cards = cards.map((c) => {
        const s = grown.find((x) => String(x.id) === c.dataset.series);
        if (!s) return c;
        const fresh = cardOf(s);
        c.replaceWith(fresh);
        return fresh;
      });
      show();
    } else { runs = data.runs; shown = data.shown; }
    follow.update(...liveRunsOf(data));
  }

  await load();
  return () => follow.close();
}

export async function renderRunTab(panel, runHash, series) {
  const by = await seriesPoints(series.slice(0, MAX_SERIES));
  const cards = series.slice(0, MAX_SERIES).map((s) => distributionCard(s, by.get(s.id), seriesTitle(s)));
  const [min, max] = stepRange(series);
  const slider = new StepSlider({ onChange: (v) => cards.forEach((c) => c.show(v)) });
  panel.append(el('div', { class: 'toolbar' }, slider.root), el('div', { class: 'cards' }, cards));
  slider.setRange(min, max, max);
  cards.forEach((c) => c.show(max));
  return null;
}
