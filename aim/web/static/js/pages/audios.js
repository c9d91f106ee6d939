// Audio explorer: the matching audio series grouped by run (or another key), one player per
// object at the chosen step (newest by default). Players fetch nothing until played.

import { el, clear, errorBox } from '../dom.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import {
  StepSlider, addQueryWords, blobUrl, explorerFrame, emptyNote, fetchPoints, fetchSeries, groupChoices,
  groupGrid, groupSelect, liveRunsOf, pointChanged, replaceSeriesCards, runLabel, seriesChanges, seriesTitle,
  showQueryError, sortSeries, stepRange,
} from '../objects.js';
import { LiveFollow } from '../live_follow.js';

// A player's key: the series, the step, the index in the step's list and the blob. A card
// drawn again (a live re-read, a new series) takes the player of its key from `keep`, so
// a clip being played goes on playing where it is, and a paused one keeps its position.
const playerKey = (series, point, index, obj) => `${series.id}|${point.step}|${index ?? 0}|${obj.blob}`;

export function audioCard(obj, { series, runs, point, index, keep = null }) {
  const meta = [`step ${point.step}`, index !== null ? `#${index}` : null, obj.rate ? `${obj.rate} Hz` : null,
    obj.format || null].filter(Boolean).join(' · ');
  const key = playerKey(series, point, index, obj);
  const player = !obj.blob ? null : (keep && keep.get(key))
    || el('audio', { controls: true, preload: 'none', src: blobUrl(obj.blob), dataset: { key } });
  if (keep && player) keep.delete(key);   // one card per player
  return el('figure', { class: 'obj-card audio-card', dataset: { series: series.id, step: point.step } },
    player || el('div', { class: 'muted small', text: 'no audio data' }),
    el('figcaption', {}, obj.caption ? el('div', { class: 'caption', text: obj.caption }) : null,
      el('div', { class: 'muted small', text: `${runLabel(runs, series.run)} · ${seriesTitle(series)}` }),
      el('div', { class: 'muted small', text: meta })));
}

const cardsOf = (p, s, runs, keep = null) => (p ? (p.objects || []).map((o, i) => audioCard(o, { series: s, runs, point: p, index: p.objects.length > 1 ? i : null, keep })) : []);

// The players on the page by key (see audioCard), to be put into the cards drawn next.
// Moving a media element within one task does not pause it (the pause on removal waits
// for a stable state, and by then it is back in the document).
const playersIn = (box) => new Map([...box.querySelectorAll('audio[data-key]')].map((a) => [a.dataset.key, a]));

export async function mount(root, { query }) {
  const state = { q: query.get('q') || '', rows: query.get('rows') || 'run',
    step: query.get('step') ? Number(query.get('step')) : null };
  let data = null; let ordered = []; let points = new Map(); let loading = 0; let loads = 0;
  const bar = new QueryBar({ value: state.q, placeholder: "audios.name == 'speech' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; state.step = null; load(); } });
  addQueryWords(bar, 'audios');
  const rowsHolder = el('span');
  const slider = new StepSlider({ onChange: (v) => { state.step = v; showStep(); } });
  const follow = new LiveFollow({ id: 'audios-live', root, refresh });
  const { status, body } = explorerFrame(root, { title: 'Audio', bar, tools: [rowsHolder, slider.root, follow.badge] });

  async function load() {
    delete root.dataset.ready;
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let answer;
    try { answer = await fetchSeries('audios', state.q); } catch (e) { showQueryError(bar, body, e, errorBox); root.dataset.ready = '1'; return; }
    if (mine !== loads) return;
    data = answer;
    bar.showError(null);
    ordered = sortSeries(data.series, data.runs);
    fillGroups();
    const [min, max] = stepRange(ordered);
    if (state.step !== null && (state.step < min || state.step > max)) state.step = null;
    slider.setRange(min, max, state.step ?? max);
    await showStep();
    follow.update(...liveRunsOf(data));
  }

  function fillGroups() {
    rowsHolder.replaceChildren(groupSelect('Group by', groupChoices(ordered, data.runs), state.rows, (v) => { state.rows = v; draw(); }));
  }

  // Live runs: the series again (with their newest objects when the newest step is
  // shown); changed series get new players, except one that is playing.
  async function refresh(signal) {
    const mine = loads; const ticket = loading;
    const newest = slider.atNewest(state.step);
    const fresh = await fetchSeries('audios', state.q, { newest, signal });
    if (mine !== loads || ticket !== loading || !data) return;
    const { sameSet } = seriesChanges(data.series, fresh.series);
    data = fresh;
    ordered = sortSeries(data.series, data.runs);
    if (!sameSet) fillGroups();
    const step = slider.grow(stepRange(ordered), newest ? null : state.step);
    if (!newest && step === null) { state.step = null; await showStep(); follow.update(...liveRunsOf(fresh)); return; }
    state.step = step;
    if (newest) {
      const next = new Map(fresh.points.map((p) => [p.id, p]));
      const playing = (id) => [...body.querySelectorAll(`[data-series="${Number(id)}"] audio`)].some((a) => !a.paused);
      for (const s of ordered) if (playing(s.id) && points.has(s.id)) next.set(s.id, points.get(s.id));   // heard to the end
      const changed = ordered.filter((s) => next.get(s.id) && pointChanged(points.get(s.id), next.get(s.id)));
      const before = points; points = next;
      const keep = playersIn(body);
      if (!sameSet || !changed.every((s) => before.has(s.id) && replaceSeriesCards(body, s.id, cardsOf(points.get(s.id), s, data.runs, keep)))) draw();
      else setUrlState({ q: state.q, rows: state.rows === 'run' ? '' : state.rows, step: state.step ?? '' });
    } else if (!sameSet) {
      const missing = ordered.filter((s) => !points.has(s.id)).map((s) => s.id);
      if (missing.length) {
        const answer = await fetchPoints('audios', missing, state.step === null ? {} : { step: state.step }, { signal });
        if (mine !== loads || ticket !== loading) return;
        for (const p of answer.points) points.set(p.id, p);
      }
      draw();
    }
    follow.update(...liveRunsOf(fresh));
  }

  async function showStep() {
    const ticket = ++loading;
    delete root.dataset.ready;
    try {
      const answer = ordered.length ? await fetchPoints('audios', ordered.map((s) => s.id), state.step === null ? {} : { step: state.step }) : { points: [] };
      if (ticket !== loading) return;
      points = new Map(answer.points.map((p) => [p.id, p]));
    } catch (e) { clear(body).append(errorBox(e)); root.dataset.ready = '1'; return; }
    draw();
  }

  function draw() {
    setUrlState({ q: state.q, rows: state.rows === 'run' ? '' : state.rows, step: state.step ?? '' });
    const grid = groupGrid(ordered, data.runs, state.rows, 'none');
    const keep = playersIn(body);   // taken before the cards are made, put back with them
    const made = ordered.length ? grid.rows.map(({ key, cols }) => el('section', { class: 'object-group' },
      state.rows !== 'none' ? el('h3', { class: 'group-label', text: key || '(none)' }) : null,
      el('div', { class: 'cards' }, (cols.get('') || []).flatMap((s) => cardsOf(points.get(s.id), s, data.runs, keep)))))
      : [emptyNote('audios', state.q)];
    clear(body).append(...made);
    status.textContent = ordered.length ? `${ordered.length} series${data.truncated ? ' (more match: narrow the query)' : ''}` : '';
    root.dataset.ready = '1';
  }

  await load();
  return () => follow.close();
}

export async function renderRunTab(panel, runHash, series) {
  const runs = { [runHash]: { hash: runHash } };
  const answer = await fetchPoints('audios', series.map((s) => s.id));
  const byId = new Map(answer.points.map((p) => [p.id, p]));
  panel.append(el('div', { class: 'cards' }, series.flatMap((s) => cardsOf(byId.get(s.id), s, runs))));
  return null;
}
