// Texts explorer: every tracked text of the matching series as a table by run, step and
// context, filtered by a search box (words, match case, or a regular expression).

import { el, clear, errorBox } from '../dom.js';
import { QueryBar } from '../query_bar.js';
import { setUrlState } from '../app.js';
import { contextLabel } from '../format.js';
import {
  addQueryWords, explorerFrame, emptyNote, fetchPoints, fetchSeries, liveRunsOf, runLabel, seriesChanges,
  showQueryError, sortSeries,
} from '../objects.js';
import { LiveFollow } from '../live_follow.js';

const PAGE = 500;

// Rows of [series, point, index, text] for every text object of the points.
function textRows(series, points) {
  const byId = new Map(series.map((s) => [s.id, s]));
  const rows = [];
  for (const p of points) {
    const s = byId.get(p.id);
    if (!s) continue;
    (p.objects || []).forEach((o, i) => rows.push({ s, p, i, many: p.objects.length > 1, text: String(o.text ?? '') }));
  }
  return rows;
}

// A predicate for the search box, or an Error for a bad regular expression.
export function textMatcher(search, { regex = false, matchCase = false } = {}) {
  if (!search) return () => true;
  if (regex) {
    try { const re = new RegExp(search, matchCase ? '' : 'i'); return (t) => re.test(t); } catch (e) { return e; }
  }
  const needle = matchCase ? search : search.toLowerCase();
  return (t) => (matchCase ? t : t.toLowerCase()).includes(needle);
}

function textTable(rows, runs, { withRun = true } = {}) {
  return el('table', { class: 'texts-table' },
    el('thead', {}, el('tr', {}, withRun ? el('th', { text: 'Run' }) : null, el('th', { text: 'Name' }), el('th', { text: 'Context' }),
      el('th', { text: 'Step' }), el('th', { text: 'Index' }), el('th', { text: 'Text' }))),
    el('tbody', {}, rows.map((r) => el('tr', {},
      withRun ? el('td', {}, el('a', { href: `/runs/${encodeURIComponent(r.s.run)}`, 'data-nav': true, text: runLabel(runs, r.s.run) })) : null,
      el('td', { text: r.s.name }), el('td', { text: contextLabel(r.s.context) }),
      el('td', { class: 'num', text: r.p.step }), el('td', { class: 'num', text: r.many ? r.i : '' }),
      el('td', {}, el('pre', { class: 'text-cell', text: r.text }))))));
}

export async function mount(root, { query }) {
  const state = { q: query.get('q') || '', search: query.get('search') || '', regex: query.get('regex') === '1', matchCase: query.get('case') === '1' };
  let rows = []; let runs = {}; let limit = PAGE; let series = []; let points = []; let loads = 0;
  const bar = new QueryBar({ value: state.q, placeholder: "texts.name == 'predictions' and run.hparams.lr > 0.01",
    onSubmit: (q) => { state.q = q; load(); } });
  addQueryWords(bar, 'texts');
  const search = el('input', { type: 'search', id: 'text-search', placeholder: 'search texts', 'aria-label': 'search texts', value: state.search });
  const regex = el('input', { type: 'checkbox', checked: state.regex, onchange: (e) => { state.regex = e.target.checked; filter(); } });
  const matchCase = el('input', { type: 'checkbox', checked: state.matchCase, onchange: (e) => { state.matchCase = e.target.checked; filter(); } });
  let timer = null;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => { state.search = search.value; limit = PAGE; filter(); }, 150); });
  const follow = new LiveFollow({ id: 'texts-live', root, refresh });
  const { status, body } = explorerFrame(root, { title: 'Texts', bar, tools: [search,
    el('label', { class: 'check' }, matchCase, 'match case'), el('label', { class: 'check' }, regex, 'regular expression'), follow.badge] });

  async function load() {
    delete root.dataset.ready;
    const mine = ++loads;
    follow.update([]);   // a new view: followed again once it is read
    let data; let answer;
    try {
      data = await fetchSeries('texts', state.q);
      bar.showError(null);
      const sorted = sortSeries(data.series, data.runs);
      answer = sorted.length ? await fetchPoints('texts', sorted.map((s) => s.id), { all: true }) : { points: [] };
      if (mine !== loads) return;
      runs = data.runs; series = sorted; points = answer.points;
      rows = textRows(series, points);
      state.truncated = data.truncated || answer.truncated;
    } catch (e) { showQueryError(bar, body, e, errorBox); root.dataset.ready = '1'; return; }
    filter();
    follow.update(...liveRunsOf(data));
  }

  // Live runs: the series again, then only the steps written since, of the series that
  // grew (or every step of a new series). The search, its page and the scroll stay.
  async function refresh(signal) {
    const mine = loads;
    const data = await fetchSeries('texts', state.q, { signal });
    if (mine !== loads) return;
    const sorted = sortSeries(data.series, data.runs);
    const { changed } = seriesChanges(series, sorted);
    const known = new Set(series.map((s) => s.id));
    const last = new Map();
    for (const p of points) last.set(p.id, Math.max(last.get(p.id) ?? -Infinity, p.step));
    const grown = sorted.filter((s) => changed.has(s.id) || !known.has(s.id));
    let fresh = [];
    if (grown.length) {
      const from = Math.min(...grown.map((s) => (known.has(s.id) ? last.get(s.id) ?? -Infinity : -Infinity)));
      const answer = await fetchPoints('texts', grown.map((s) => s.id), { all: true, ...(Number.isFinite(from) ? { first_step: from + 1 } : {}) }, { signal });
      if (mine !== loads) return;
      fresh = answer.points.filter((p) => p.step > (last.get(p.id) ?? -Infinity));
      state.truncated = state.truncated || answer.truncated;
    }
    const same = sorted.length === series.length && sorted.every((s, i) => s.id === series[i].id);
    runs = data.runs; series = sorted;
    if (fresh.length || !same) {
      const order = new Map(series.map((s, i) => [s.id, i]));   // the series' order, then the steps
      points = [...points, ...fresh].filter((p) => order.has(p.id))
        .sort((a, b) => order.get(a.id) - order.get(b.id) || a.step - b.step);
      rows = textRows(series, points);
      filter();
    }
    follow.update(...liveRunsOf(data));
  }

  function filter() {
    setUrlState({ q: state.q, search: state.search, regex: state.regex ? '1' : '', case: state.matchCase ? '1' : '' });
    const match = textMatcher(state.search, state);
    if (match instanceof Error) {
      clear(body).append(errorBox(`Not a regular expression: ${match.message}`));
      status.textContent = '';
      root.dataset.ready = '1';
      return;
    }
    const found = rows.filter((r) => match(r.text));
    const more = found.length > limit
      ? el('button', { text: `Show ${Math.min(PAGE, found.length - limit)} more`, onclick: () => { limit += PAGE; filter(); } }) : null;
    clear(body).append(...[rows.length ? textTable(found.slice(0, limit), runs) : emptyNote('texts', state.q), more].filter(Boolean));
    status.textContent = rows.length ? `${found.length} of ${rows.length} texts${state.truncated ? ' (only the first ones were read: narrow the query)' : ''}` : '';
    root.dataset.ready = '1';
  }

  await load();
  return () => { follow.close(); clearTimeout(timer); };
}

// The run page's Texts tab: every text of the run, with the same search box.
export async function renderRunTab(panel, runHash, series) {
  const answer = await fetchPoints('texts', series.map((s) => s.id), { all: true, max_points: 5000 });
  const all = textRows(series, answer.points);
  const box = el('div');
  const search = el('input', { type: 'search', placeholder: 'search texts', 'aria-label': 'search texts' });
  const draw = () => {
    const match = textMatcher(search.value);
    clear(box).append(textTable(all.filter((r) => match(r.text)).slice(0, 1000), {}, { withRun: false }));
  };
  search.addEventListener('input', draw);
  panel.append(el('div', { class: 'toolbar' }, search), box);
  draw();
  return null;
}
