// Images explorer: query image series, group them into rows and columns (run, a param, a
// context key), pick the step (newest by default) and the index within the step's list;
// thumbnails are made by the server and fetched only when shown; click for the full size.

import { el, clear, errorBox } from '../dom.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import {
  StepSlider, addQueryWords, blobUrl, explorerFrame, emptyNote, fetchPoints, fetchSeries, fitBox,
  groupChoices, groupGrid, groupSelect, lazyLoader, liveRunsOf, openViewer, pointChanged, replaceSeriesCards,
  runLabel, seriesChanges, seriesTitle, showQueryError, sortSeries, stepRange,
} from '../objects.js';
import { LiveFollow } from '../live_follow.js';

const SIZES = [96, 160, 256, 384];

// One card per object: a fixed-size box (from the stored width and height) so the layout is
// stable and only the cards on screen intersect the viewport.
export function imageCard(obj, { series, runs, point, index, size, lazy }) {
  const [w, h] = fitBox(obj.width, obj.height, size);
  const thumb = window.devicePixelRatio > 1 ? Math.min(2048, size * 2) : size;
  const title = `${runLabel(runs, series.run)} · ${seriesTitle(series)}`;
  const meta = `step ${point.step}${index !== null ? ` · #${index}` : ''}${obj.width ? ` · ${obj.width}×${obj.height}` : ''}`;
  if (!obj.blob) {  // the bytes were never stored or are gone: say so instead of a broken image
    return el('figure', { class: 'obj-card', dataset: { series: series.id, step: point.step } },
      el('div', { class: 'thumb-box thumb-missing muted small', style: { width: `${w}px`, height: `${h}px` }, text: 'no image data' }),
      el('figcaption', {}, obj.caption ? el('div', { class: 'caption', text: obj.caption }) : null, el('div', { class: 'muted small', text: meta })));
  }
  const img = el('img', { class: 'thumb', alt: obj.caption || series.name, width: w, height: h,
    'data-src': blobUrl(obj.blob, thumb), style: { width: `${w}px`, height: `${h}px` } });
  if (lazy) lazy.observe(img); else img.src = img.dataset.src;
  return el('figure', { class: 'obj-card image-card', tabindex: 0, title, dataset: { series: series.id, step: point.step },
    onclick: () => openViewer({ src: blobUrl(obj.blob), title: `${title} · ${meta}`, caption: obj.caption, width: obj.width, height: obj.height }),
    onkeydown: (e) => { if (e.key === 'Enter') e.currentTarget.click(); } },
  el('div', { class: 'thumb-box', style: { width: `${w}px`, height: `${h}px` } }, img),
  el('figcaption', {}, obj.caption ? el('div', { class: 'caption', text: obj.caption }) : null,
    el('div', { class: 'muted small', text: meta })));
}

// The objects of the chosen index ('all': every one) of one point, as cards.
export function pointCards(point, { series, runs, index, size, lazy }) {
  const objects = point.objects || [];
  const picked = index === 'all' ? objects.map((o, i) => [o, i]) : objects[index] ? [[objects[index], Number(index)]] : [];
  return picked.map(([o, i]) => imageCard(o, { series, runs, point, index: objects.length > 1 ? i : null, size, lazy }));
}

export async function mount(root, { query }) {
  const state = {
    q: query.get('q') || '',
    rows: query.get('rows') || 'run',
    cols: query.get('cols') || 'none',
    step: query.get('step') !== null && query.get('step') !== '' ? Number(query.get('step')) : null,
    index: query.get('index') || 'all',
    size: SIZES.includes(Number(query.get('size'))) ? Number(query.get('size')) : 160,
    smooth: query.get('render') === 'smooth',
  };
  let data = null; let ordered = []; let points = new Map(); let lazy = null; let loading = 0; let loads = 0;
  const bar = new QueryBar({ value: state.q, placeholder: "images.name == 'samples' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; state.step = null; load(); } });
  const follow = new LiveFollow({ id: 'images-live', root, refresh });
  addQueryWords(bar, 'images');
  const rowsHolder = el('span'); const colsHolder = el('span');
  const slider = new StepSlider({ onChange: (v) => { state.step = v; showStep(); } });
  const indexSelect = el('select', { 'aria-label': 'index', id: 'image-index', onchange: (e) => { state.index = e.target.value; draw(); } });
  const sizeSelect = el('select', { 'aria-label': 'size', onchange: (e) => { state.size = Number(e.target.value); draw(); } },
    ...SIZES.map((s) => el('option', { value: s, text: `${s}px`, selected: s === state.size })));
  const renderSelect = el('select', { 'aria-label': 'rendering', onchange: (e) => {
    state.smooth = e.target.value === 'smooth'; body.classList.toggle('smooth', state.smooth); saveUrl();
  } }, el('option', { value: 'pixelated', text: 'pixelated' }), el('option', { value: 'smooth', text: 'smooth', selected: state.smooth }));
  const { status, body } = explorerFrame(root, { title: 'Images', bar, tools: [rowsHolder, colsHolder, slider.root,
    el('label', { class: 'inline' }, 'Index ', indexSelect), el('label', { class: 'inline' }, 'Size ', sizeSelect),
    el('label', { class: 'inline' }, 'Rendering ', renderSelect), follow.badge] });
  body.classList.toggle('smooth', state.smooth);
  body.id = 'images-grid';

  function saveUrl() {
    setUrlState({ q: state.q, rows: state.rows === 'run' ? '' : state.rows, cols: state.cols === 'none' ? '' : state.cols,
      step: state.step ?? '', index: state.index === 'all' ? '' : state.index, size: state.size === 160 ? '' : state.size,
      render: state.smooth ? 'smooth' : '' });
  }

  async function load() {
    delete root.dataset.ready;
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let answer;
    try {
      answer = await fetchSeries('images', state.q, { newest: state.step === null });
    } catch (e) { showQueryError(bar, body, e, errorBox); status.textContent = ''; root.dataset.ready = '1'; return; }
    if (mine !== loads) return;
    data = answer;
    bar.showError(null);
    ordered = sortSeries(data.series, data.runs);
    fillGroups();
    const [min, max] = stepRange(ordered);
    if (state.step === null || state.step > max || state.step < min) state.step = null;
    slider.setRange(min, max, state.step ?? max);
    await showStep(state.step === null ? data.points : null);
    follow.update(...liveRunsOf(data));
  }

  function fillGroups() {
    const choices = groupChoices(ordered, data.runs);
    const regroup = (key) => (v) => { state[key] = v; draw(); };
    rowsHolder.replaceChildren(groupSelect('Rows', choices, state.rows, regroup('rows')));
    colsHolder.replaceChildren(groupSelect('Columns', choices, state.cols, regroup('cols')));
  }

  // Live runs: the series again (with their newest objects when the newest step is shown):
  // the slider's range grows, changed series get new cards, new series lay the grid out.
  async function refresh(signal) {
    const mine = loads; const ticket = loading;
    const newest = slider.atNewest(state.step);
    const fresh = await fetchSeries('images', state.q, { newest, signal });
    if (mine !== loads || ticket !== loading || !data) return;   // the user asked for something else meanwhile
    const { sameSet } = seriesChanges(data.series, fresh.series);
    data = fresh;
    ordered = sortSeries(data.series, data.runs);
    if (!sameSet) fillGroups();
    const step = slider.grow(stepRange(ordered), newest ? null : state.step);
    if (!newest && step === null) {   // the step shown is gone: the newest one instead
      state.step = null; await showStep(); follow.update(...liveRunsOf(fresh)); return;
    }
    state.step = step;
    if (newest) {
      const next = new Map(fresh.points.map((p) => [p.id, p]));
      const changed = ordered.filter((s) => pointChanged(points.get(s.id), next.get(s.id)) && next.get(s.id));
      const before = points; points = next;
      fillIndex();
      if (!sameSet || !changed.every((s) => before.has(s.id) && replaceSeriesCards(body, s.id, seriesCards(s)))) draw();
      else if (changed.length) { saveUrl(); showStatus(body.querySelectorAll('.obj-card').length); }
    } else if (!sameSet) {
      const missing = ordered.filter((s) => !points.has(s.id)).map((s) => s.id);
      if (missing.length) {
        const answer = await fetchPoints('images', missing, state.step === null ? {} : { step: state.step }, { signal });
        if (mine !== loads || ticket !== loading) return;
        for (const p of answer.points) points.set(p.id, p);
        fillIndex();
      }
      draw();
    } else saveUrl();
    follow.update(...liveRunsOf(fresh));
  }

  // known: the points at the newest step, when the series answer brought them
  async function showStep(known = null) {
    const ticket = ++loading;
    delete root.dataset.ready;
    try {
      const answer = known ? { points: known } : ordered.length ? await fetchPoints('images', ordered.map((s) => s.id),
        state.step === null ? {} : { step: state.step }) : { points: [] };
      if (ticket !== loading) return;
      points = new Map(answer.points.map((p) => [p.id, p]));
    } catch (e) { clear(body).append(errorBox(e)); root.dataset.ready = '1'; return; }
    fillIndex();
    draw();
  }

  function fillIndex() {
    const most = Math.max(0, ...[...points.values()].map((p) => (p.objects || []).length));
    if (indexSelect.options.length !== most + 1) {
      indexSelect.replaceChildren(el('option', { value: 'all', text: 'all' }),
        ...Array.from({ length: most }, (_, i) => el('option', { value: String(i), text: String(i) })));
    }
    if (state.index !== 'all' && Number(state.index) >= most) state.index = 'all';
    indexSelect.value = state.index;
    indexSelect.disabled = most <= 1;
  }

  function seriesCards(s) {
    const p = points.get(s.id);
    return p ? pointCards(p, { series: s, runs: data.runs, index: state.index, size: state.size, lazy }) : [];
  }

  function showStatus(shown) {
    status.textContent = ordered.length
      ? `${ordered.length} series${data.truncated ? ' (more match: narrow the query)' : ''} · ${shown} images at ${state.step === null ? 'the newest step' : `step ${slider.value}`}`
      : '';
  }

  function draw() {
    if (lazy) lazy.disconnect();
    lazy = lazyLoader();
    saveUrl();
    const grid = groupGrid(ordered, data.runs, state.rows, state.cols);
    const hasCols = state.cols !== 'none';
    const hasRows = state.rows !== 'none';
    let shown = 0;
    const rows = grid.rows.map(({ key, cols }) => el('tr', {},
      hasRows ? el('th', { class: 'group-label', scope: 'row', text: key || '(none)' }) : null,
      ...grid.cols.map((c) => {
        const cards = (cols.get(c) || []).flatMap((s) => {
          const made = seriesCards(s);
          shown += made.length;
          return made;
        });
        return el('td', {}, el('div', { class: 'cards' }, cards));
      })));
    const head = hasCols ? el('thead', {}, el('tr', {}, hasRows ? el('th') : null,
      ...grid.cols.map((c) => el('th', { class: 'group-label', scope: 'col', text: c || '(none)' })))) : null;
    clear(body).append(ordered.length
      ? el('table', { class: 'object-grid' }, head, el('tbody', {}, rows))
      : emptyNote('images', state.q));
    showStatus(shown);
    root.dataset.ready = '1';
  }

  await load();
  return () => { follow.close(); if (lazy) lazy.disconnect(); };
}

// The run page's Images tab: the newest step of each of the run's image series.
export async function renderRunTab(panel, runHash, series) {
  const runs = { [runHash]: { hash: runHash } };
  const lazy = lazyLoader();
  const answer = await fetchPoints('images', series.map((s) => s.id));
  const byId = new Map(answer.points.map((p) => [p.id, p]));
  panel.append(...series.map((s) => {
    const p = byId.get(s.id);
    return el('div', { class: 'run-object' }, el('h4', { text: `${seriesTitle(s)}${p ? ` · step ${p.step}` : ''}` }),
      el('div', { class: 'cards' }, p ? pointCards(p, { series: s, runs, index: 'all', size: 160, lazy }) : []));
  }));
  return () => lazy.disconnect();
}
