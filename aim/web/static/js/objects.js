// Shared pieces of the object pages (images, texts, audio, distributions, figures) and of
// the run page's object tabs: fetching series and points, grouping, the step slider, lazy
// images, the full-size viewer and plotly.js loading. Every user string goes in as text.

import { el, clear } from './dom.js';
import { getJSON } from './api.js';
import { contextLabel, formatValue } from './format.js';

export const KIND_TITLES = { images: 'Images', texts: 'Texts', audios: 'Audio', distributions: 'Distributions', figures: 'Figures' };
const ID_BATCH = 500;

// newest: the answer also holds every series' objects at its last step (one request less).
export function fetchSeries(kind, q, { maxSeries, newest = false, signal } = {}) {
  return getJSON(`/api/objects/${kind}`, { q, max_series: maxSeries, newest: newest || undefined }, { signal });
}

// Points of many series, asked in batches of ID_BATCH ids (same order as the ids).
export async function fetchPoints(kind, ids, params = {}, { signal } = {}) {
  const batches = [];
  for (let i = 0; i < ids.length; i += ID_BATCH) {
    batches.push(getJSON(`/api/objects/${kind}/points`, { ...params, ids: ids.slice(i, i + ID_BATCH) }, { signal }));
  }
  const answers = await Promise.all(batches);
  return { points: answers.flatMap((a) => a.points), truncated: answers.some((a) => a.truncated) };
}

export const blobUrl = (digest, thumb) => `/api/blobs/${encodeURIComponent(digest)}${thumb ? `?thumb=${thumb}` : ''}`;

export function runLabel(runs, hash) {
  const run = runs[hash];
  return (run && run.name) || hash;
}

export function seriesTitle(s) {
  const ctx = contextLabel(s.context);
  return ctx ? `${s.name} (${ctx})` : s.name;
}

// Newest runs first, then by name and context: the order of rows and cards.
export function sortSeries(series, runs) {
  const created = (s) => (runs[s.run] && runs[s.run].creation_time) || 0;
  return [...series].sort((a, b) => created(b) - created(a) || a.run.localeCompare(b.run)
    || a.name.localeCompare(b.name) || seriesTitle(a).localeCompare(seriesTitle(b)));
}

// --- grouping ------------------------------------------------------------------------------
export function groupChoices(series, runs) {
  const choices = [['none', 'nothing'], ['run', 'run'], ['experiment', 'run.experiment'], ['name', 'name']];
  const ctxKeys = new Set(); const params = new Set();
  for (const s of series) Object.keys(s.context || {}).forEach((k) => ctxKeys.add(k));
  for (const h of new Set(series.map((s) => s.run))) Object.keys((runs[h] && runs[h].params) || {}).forEach((p) => params.add(p));
  for (const k of [...ctxKeys].sort()) choices.push([`context.${k}`, `context.${k}`]);
  for (const p of [...params].filter((x) => !x.startsWith('__system_params')).sort()) choices.push([`params.${p}`, `run.${p}`]);
  return choices;
}

export function groupValue(s, runs, by) {
  if (!by || by === 'none') return '';
  if (by === 'run') return runLabel(runs, s.run);
  if (by === 'experiment') return (runs[s.run] && runs[s.run].experiment) || '';
  if (by === 'name') return s.name;
  if (by.startsWith('context.')) return formatValue((s.context || {})[by.slice(8)]);
  if (by.startsWith('params.')) return formatValue(((runs[s.run] && runs[s.run].params) || {})[by.slice(7)]);
  return '';
}

export function groupSelect(label, choices, value, onChange) {
  const select = el('select', { 'aria-label': label, onchange: (e) => onChange(e.target.value) },
    ...choices.map(([v, text]) => el('option', { value: v, text, selected: v === value })));
  if (!choices.some(([v]) => v === value)) select.value = 'none';
  return el('label', { class: 'inline' }, `${label} `, select);
}

// Rows × columns of series: [{key, cols: Map(colKey -> [series])}], plus the column keys.
export function groupGrid(series, runs, rowsBy, colsBy) {
  const rows = new Map(); const cols = [];
  for (const s of series) {
    const r = groupValue(s, runs, rowsBy); const c = groupValue(s, runs, colsBy);
    if (!rows.has(r)) rows.set(r, new Map());
    const row = rows.get(r);
    if (!row.has(c)) row.set(c, []);
    row.get(c).push(s);
    if (!cols.includes(c)) cols.push(c);
  }
  return { rows: [...rows.entries()].map(([key, m]) => ({ key, cols: m })), cols };
}

// --- the step slider ----------------------------------------------------------------------
export class StepSlider {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.input = el('input', { type: 'range', min: 0, max: 0, step: 1, 'aria-label': 'step', class: 'step-range' });
    this.label = el('span', { class: 'step-label' });
    this.timer = null;
    this.pending = false;   // moved by the user, not yet told (a live re-read leaves it alone)
    this.input.addEventListener('input', () => {
      this.label.textContent = `step ${this.input.value}`;
      clearTimeout(this.timer);
      this.pending = true;
      this.timer = setTimeout(() => { this.pending = false; this.onChange(Number(this.input.value)); }, 150);
    });
    const nudge = (d) => () => {
      const v = Math.min(Number(this.input.max), Math.max(Number(this.input.min), Number(this.input.value) + d));
      this.set(v); this.onChange(v);
    };
    this.root = el('span', { class: 'step-slider' }, el('button', { text: '‹', title: 'previous step', onclick: nudge(-1) }),
      this.input, el('button', { text: '›', title: 'next step', onclick: nudge(1) }), this.label);
  }

  setRange(min, max, value) {
    this.input.min = String(min); this.input.max = String(max);
    this.root.hidden = !(max > min);
    this.set(value);
  }

  set(value) { this.input.value = String(value); this.label.textContent = `step ${value}`; }
  get value() { return Number(this.input.value); }
  get max() { return Number(this.input.max); }

  // Live runs: whether the page shows the newest step (`step` null, or the slider at its
  // end), so that a re-read moves it to the new newest step.
  atNewest(step) { return !this.pending && (step === null || step >= this.max); }

  // After a re-read: the range grows; the slider keeps its step, or moves to the newest
  // one when it was there (`step` null). Returns the step to show (null: the newest).
  grow([min, max], step) {
    if (this.pending) { this.input.min = String(min); this.input.max = String(max); this.root.hidden = !(max > min); return step; }
    const kept = step !== null && step >= min && step <= max ? step : null;
    this.setRange(min, max, kept ?? max);
    return kept;
  }
}

// --- live runs ----------------------------------------------------------------------------
// The series of a re-read against those shown: the ids whose points changed (count, last
// step or last write) and whether the series are the same ones.
export function seriesChanges(oldSeries, newSeries) {
  const old = new Map(oldSeries.map((s) => [s.id, s]));
  const changed = new Set();
  let sameSet = oldSeries.length === newSeries.length;
  for (const s of newSeries) {
    const o = old.get(s.id);
    if (!o) { sameSet = false; continue; }
    if (o.count !== s.count || o.last_step !== s.last_step || o.last_time !== s.last_time) changed.add(s.id);
  }
  return { changed, sameSet };
}

// The runs of an objects answer being written (no end time), for LiveFollow.update.
export function liveRunsOf(answer) {
  const live = Object.values((answer && answer.runs) || {}).filter((r) => r.active);
  return [live.map((r) => r.hash), { names: live.map((r) => r.name || r.hash) }];
}

// The points of one step differ (another step, other objects)?
export const pointChanged = (a, b) => !a || !b || a.step !== b.step || JSON.stringify(a.objects) !== JSON.stringify(b.objects);

// Puts `made` (cards) where the cards of series `id` are in `box`, focus kept on the card
// that had it. False when the series had no card (the page lays out again).
export function replaceSeriesCards(box, id, made) {
  const old = [...box.querySelectorAll(`[data-series="${Number(id)}"]`)];
  if (!old.length) return false;
  const focused = old.some((n) => n.contains(document.activeElement));
  old[0].before(...made);
  old.forEach((n) => n.remove());
  if (focused && made[0] && made[0].focus) made[0].focus();
  return true;
}

export function stepRange(series) {
  let min = Infinity; let max = -Infinity;
  for (const s of series) {
    if (s.first_step !== null && s.first_step !== undefined) min = Math.min(min, s.first_step);
    if (s.last_step !== null && s.last_step !== undefined) max = Math.max(max, s.last_step);
  }
  return Number.isFinite(min) ? [min, max] : [0, 0];
}

// --- lazy images --------------------------------------------------------------------------
// Images carry their URL in data-src and get src only once near the viewport, so a grid of
// thousands fetches only the thumbnails shown.
export function lazyLoader(margin = '150px') {
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const node = entry.target;
      observer.unobserve(node);
      if (node.dataset.src) { node.src = node.dataset.src; delete node.dataset.src; }
      if (node.lazyRender) { const f = node.lazyRender; node.lazyRender = null; f(); }
    }
  }, { rootMargin: margin });
  return { observe: (node) => observer.observe(node), disconnect: () => observer.disconnect() };
}

// The box an image is shown in before it loads: its aspect, fitted into size × size.
export function fitBox(width, height, size) {
  if (!width || !height) return [size, size];
  const scale = Math.min(size / width, size / height, 4);
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

// --- full-size viewer with zoom ------------------------------------------------------------
export function openViewer({ src, title, caption, width, height }) {
  let zoom = 1;
  const img = el('img', { class: 'viewer-image', src, alt: caption || title || '' });
  const fit = () => {
    const w = width || img.naturalWidth || 1; const h = height || img.naturalHeight || 1;
    zoom = Math.min((window.innerWidth * 0.9) / w, (window.innerHeight * 0.75) / h);
    apply();
  };
  const zoomLabel = el('span', { class: 'muted zoom-label' });
  const apply = () => {
    const w = width || img.naturalWidth || 1; const h = height || img.naturalHeight || 1;
    img.style.width = `${Math.round(w * zoom)}px`; img.style.height = `${Math.round(h * zoom)}px`;
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
  };
  const by = (f) => () => { zoom = Math.min(64, Math.max(0.05, zoom * f)); apply(); };
  const close = () => { overlay.remove(); document.removeEventListener('keydown', onKey); };
  const onKey = (e) => { if (e.key === 'Escape') close(); else if (e.key === '+' || e.key === '=') by(1.25)(); else if (e.key === '-') by(0.8)(); };
  const stage = el('div', { class: 'viewer-stage' }, img);
  stage.addEventListener('wheel', (e) => { e.preventDefault(); by(e.deltaY < 0 ? 1.1 : 0.9)(); }, { passive: false });
  const overlay = el('div', { class: 'viewer', role: 'dialog', 'aria-modal': 'true', 'aria-label': title || 'image' },
    el('div', { class: 'viewer-bar' }, el('strong', { class: 'viewer-title', text: title || '' }),
      el('button', { text: '−', title: 'zoom out', onclick: by(0.8) }), zoomLabel,
      el('button', { text: '+', title: 'zoom in', onclick: by(1.25) }),
      el('button', { text: 'Fit', onclick: fit }), el('button', { text: '1:1', onclick: () => { zoom = 1; apply(); } }),
      el('button', { text: 'Close', class: 'viewer-close', onclick: close })),
    stage, caption ? el('div', { class: 'viewer-caption', text: caption }) : null);
  overlay.addEventListener('click', (e) => { if (e.target === overlay || e.target === stage) close(); });
  document.addEventListener('keydown', onKey);
  if (width && height) fit(); else img.addEventListener('load', fit, { once: true });
  document.body.append(overlay);
  return overlay;
}

// --- plotly.js, loaded only when a figure is shown -------------------------------------------
let plotlyLoading = null;
export const PLOTLY_MISSING = 'plotly.js is not installed on this server, so figures cannot be drawn. '
  + 'Run `bash scripts/setup_web.sh` (it installs plotly.js-dist-min from npm into '
  + 'aim/web/static/vendor/), then reload this page.';

// plotly.js adds its CSS rules into an element with id plotly.js-style-global, making an
// inline <style> when there is none, which the page's Content-Security-Policy refuses; a
// same-origin stylesheet with that id, loaded first, takes the rules through CSSOM instead.
function plotlyStyleHost() {
  if (document.getElementById('plotly.js-style-global')) return Promise.resolve();
  return new Promise((resolve) => {
    const link = el('link', { rel: 'stylesheet', id: 'plotly.js-style-global', href: '/static/css/plotly-host.css' });
    link.onload = resolve; link.onerror = resolve;
    document.head.append(link);
  });
}

export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = plotlyStyleHost().then(() => new Promise((resolve, reject) => {
      const script = el('script', { src: '/static/vendor/plotly.min.js' });
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error(PLOTLY_MISSING)));
      script.onerror = () => { plotlyLoading = null; script.remove(); reject(new Error(PLOTLY_MISSING)); };
      document.head.append(script);
    }));
  }
  return plotlyLoading;
}

// --- the shape every explorer shares ---------------------------------------------------------
// A heading, the query bar, a toolbar, a status line and the body the page draws into.
export function explorerFrame(root, { title, bar, tools = [] }) {
  const status = el('div', { class: 'muted objects-status', role: 'status' });
  const body = el('div', { class: 'objects-body' });
  root.append(el('h1', { text: title }), bar.root, el('div', { class: 'toolbar objects-toolbar' }, ...tools), status, body);
  return { status, body };
}

export function emptyNote(kind, q) {
  return el('p', { class: 'muted empty-note', text: q
    ? `No ${KIND_TITLES[kind].toLowerCase()} match this query.`
    : `No ${KIND_TITLES[kind].toLowerCase()} tracked yet: run.track(...) them from a script, then reload.` });
}

export function showQueryError(bar, body, e, errorBox) {
  if (e.detail && 'position' in e.detail) bar.showError(e);
  else clear(body).append(errorBox(e));
}

export function addQueryWords(bar, kind) {
  bar.words.push(`${kind}.name`, `${kind}.context`);
  getJSON('/api/params').then((p) => bar.setParamNames(Object.keys(p))).catch(() => {});
}

// --- the run page's object tabs -------------------------------------------------------------
// One tab per kind the run has; a tab's page module draws it the first time it is opened.
export async function mountRunObjects(card, runHash) {
  const { kinds } = await getJSON(`/api/runs/${encodeURIComponent(runHash)}/objects`);
  const present = Object.keys(KIND_TITLES).filter((k) => (kinds[k] || []).length);
  if (!present.length) return null;
  const cleanups = [];
  const tabs = el('div', { class: 'object-tabs', role: 'tablist', 'aria-label': 'object kinds' });
  const panel = el('div', { class: 'object-panel', role: 'tabpanel', id: `objects-panel-${runHash}` });
  const panels = new Map();
  async function open(kind) {
    tabs.querySelectorAll('button').forEach((b) => {
      const on = b.dataset.kind === kind;
      b.classList.toggle('current', on);
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    });
    for (const [k, p] of panels) p.hidden = k !== kind;
    if (panels.has(kind)) return;
    const box = el('div', { dataset: { kind } });
    panels.set(kind, box);
    panel.append(box);
    try {
      const page = await import(`./pages/${kind}.js`);
      const done = await page.renderRunTab(box, runHash, kinds[kind]);
      if (done) cleanups.push(done);
    } catch (e) {
      box.append(el('div', { class: 'error', role: 'alert', text: e && e.message ? e.message : String(e) }));
    }
    box.dataset.ready = '1';
  }
  tabs.append(...present.map((k) => el('button', { role: 'tab', dataset: { kind: k }, 'aria-controls': panel.id,
    text: `${KIND_TITLES[k]} (${kinds[k].length})`, onclick: () => open(k) })));
  // arrow keys, Home and End move between the kinds
  tabs.addEventListener('keydown', (e) => {
    const all = [...tabs.querySelectorAll('button')];
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: (at + 1) % all.length, ArrowLeft: (at - 1 + all.length) % all.length,
      Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    all[to].focus();
    open(all[to].dataset.kind);
  });
  card.append(el('h2', { text: 'Tracked objects' }), tabs, panel);
  card.hidden = false;
  await open(present[0]);
  return () => cleanups.forEach((f) => f());
}
