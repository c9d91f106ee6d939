// Run comparison (/compare?runs=HASH1,HASH2,...): the chosen runs side by side, one column
// each. Props first, then every param (flattened: one row per path) and the last value of
// every metric (one row per name and context). Rows whose values are not all the same are
// highlighted; "Only differences" hides the others. Runs are added by hash and removed
// with the × of their column; the list (and the toggle) stays in the URL.

import { el, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { formatDuration, formatTime, formatValue, seriesLabel } from '../format.js';
import { setUrlState } from '../app.js';
import { LiveFollow, activeRuns } from '../live_follow.js';

function linkStylesheet() {
  if (document.getElementById('compare-css')) return;
  document.head.appendChild(el('link', { id: 'compare-css', rel: 'stylesheet', href: '/static/css/compare.css' }));
}

const MAX_RUNS = 50;
const same = (values) => values.every((v) => v === values[0]);
// a value's identity for the comparison: a missing value differs from null and from ''
const keyOf = (v) => (v === undefined ? '\u0000missing' : JSON.stringify(v));

const PROPS = [
  ['Name', (r) => el('a', { href: `/runs/${encodeURIComponent(r.hash)}`, 'data-nav': true, text: r.name || r.hash })],
  ['Hash', (r) => el('code', { text: r.hash })],
  ['Experiment', (r) => r.experiment ?? ''],
  ['Created', (r) => formatTime(r.creation_time)],
  ['Ended', (r) => (r.active ? el('span', { class: 'badge live', text: 'active' }) : formatTime(r.end_time))],
  ['Duration', (r) => formatDuration(r.duration)],
  ['Tags', (r) => (r.tags || []).map((t) => el('span', { class: 'tag', text: t }))],
  ['Description', (r) => r.description || ''],
];

export async function mount(root, { query }) {
  linkStylesheet();
  const state = {
    runs: (query.get('runs') || '').split(',').map((h) => h.trim()).filter(Boolean),
    diff: query.get('diff') === '1',
  };
  const addInput = el('input', { type: 'text', id: 'compare-add-hash', placeholder: 'run hash', 'aria-label': 'run hash to add', spellcheck: 'false' });
  const addButton = el('button', { text: 'Add run', id: 'compare-add' });
  const onlyDiff = el('input', { type: 'checkbox', id: 'compare-only-diff', checked: state.diff });
  const info = el('span', { class: 'muted', id: 'compare-info' });
  const toMetrics = el('a', { id: 'compare-metrics', 'data-nav': true, hidden: true, text: 'Their metrics in the explorer' });
  const notes = el('div');
  const holder = el('div', { class: 'table-holder compare-holder' });
  const follow = new LiveFollow({ id: 'compare-live', root, refresh });
  root.append(el('h1', { text: 'Compare runs' }),
    el('div', { class: 'toolbar' },
      el('form', { class: 'compare-add inline', onsubmit: (e) => { e.preventDefault(); add(); } }, addInput, addButton),
      el('label', { class: 'check' }, onlyDiff, 'Only differences'), info, toMetrics, follow.badge),
    notes, holder);
  let data = { runs: [], missing: [] };

  function keepUrl() { setUrlState({ runs: state.runs.join(','), diff: state.diff ? '1' : '' }); }

  let loads = 0;
  async function load() {
    keepUrl();
    notes.replaceChildren();
    const mine = ++loads;
    follow.update([]);
    if (!state.runs.length) {
      data = { runs: [], missing: [] };
      draw();
      return;
    }
    let answer;
    try {
      answer = await getJSON('/api/compare', { runs: state.runs.join(',') });
    } catch (e) { notes.append(errorBox(e)); answer = { runs: [], missing: [] }; }
    if (mine !== loads) return;
    data = answer;
    if (data.missing.length) {
      notes.append(el('div', { class: 'error', role: 'alert', id: 'compare-missing',
        text: `No run with hash ${data.missing.join(', ')}.` }));
    }
    draw();
    followLive();
  }

  function followLive() {
    const live = activeRuns(data.runs);
    follow.update(live.hashes, { names: live.names });
  }

  // Live runs: only the compared runs being written are asked for again (their last
  // values, duration, end); the table is drawn again when an answer differs, keeping the
  // toggle and the table's scroll.
  async function refresh(signal) {
    const mine = loads;
    const live = follow.live();
    if (!live.length) return;
    const answer = await getJSON('/api/compare', { runs: live.join(',') }, { signal });
    if (mine !== loads) return;
    const byHash = new Map(answer.runs.map((r) => [r.hash, r]));
    const runs = data.runs.map((r) => byHash.get(r.hash) || r);
    if (JSON.stringify(runs) !== JSON.stringify(data.runs)) {
      data = { ...data, runs };
      const { scrollLeft, scrollTop } = holder;
      draw();
      holder.scrollLeft = scrollLeft; holder.scrollTop = scrollTop;
    }
    followLive();
  }

  function add() {
    const hashes = addInput.value.split(/[\s,]+/).filter(Boolean);
    if (!hashes.length) return;
    for (const h of hashes) if (!state.runs.includes(h) && state.runs.length < MAX_RUNS) state.runs.push(h);
    addInput.value = '';
    load();
  }
  addButton.addEventListener('click', (e) => { e.preventDefault(); add(); });
  onlyDiff.addEventListener('change', () => { state.diff = onlyDiff.checked; keepUrl(); draw(); });

  function remove(hash) {
    state.runs = state.runs.filter((h) => h !== hash);
    load();
  }

  function draw() {
    const runs = data.runs;
    toMetrics.hidden = !runs.length;
    toMetrics.setAttribute('href', `/metrics?${new URLSearchParams({ runs: runs.map((r) => r.hash).join(',') })}`);
    if (!runs.length) {
      info.textContent = '';
      holder.replaceChildren(el('p', { class: 'muted empty-note', text: 'No runs to compare yet: add runs by hash above, or select runs on the Runs page and compare them.' }));
      root.dataset.ready = '1';
      return;
    }
    const head = el('tr', {}, el('th', { class: 'row-key', text: '' }),
      ...runs.map((r) => el('th', { dataset: { hash: r.hash } },
        el('span', { class: 'run-col-name', text: r.name || r.hash }),
        el('button', { type: 'button', class: 'compare-remove', title: 'remove from the comparison', 'aria-label': `remove ${r.name || r.hash}`, text: '×', onclick: () => remove(r.hash) }))));
    const body = [];
    const section = (title) => body.push(el('tr', { class: 'section' }, el('th', { colspan: runs.length + 1, text: title })));
    section('Run');
    for (const [label, cell] of PROPS) {
      body.push(el('tr', { class: 'prop-row' }, el('th', { class: 'row-key', text: label }), ...runs.map((r) => el('td', {}, cell(r)))));
    }
    let differing = 0; let equal = 0;
    const valueRows = (kind, keys, valueOf) => {
      for (const { key, label } of keys) {
        const values = runs.map((r) => valueOf(r, key));
        const differs = !same(values.map(keyOf));
        if (differs) differing += 1; else equal += 1;
        if (state.diff && !differs) continue;
        body.push(el('tr', { class: `${kind}-row${differs ? ' differs' : ''}`, dataset: { key: label } },
          el('th', { class: 'row-key', title: label, text: label }),
          ...values.map((v) => (v === undefined ? el('td', { class: 'missing', text: '—' })
            : el('td', { class: typeof v === 'number' ? 'num' : '', title: formatValue(v), text: formatValue(v) })))));
      }
    };
    const paths = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))]
      .filter((p) => !p.startsWith('__system_params')).sort();
    section('Params');
    valueRows('param', paths.map((p) => ({ key: p, label: p })), (r, p) => (p in r.params ? r.params[p] : undefined));
    const metricKeys = new Map();
    for (const r of runs) {
      for (const m of r.metrics || []) {
        if (m.name.startsWith('__system__')) continue;
        const key = `${m.name}\u0000${JSON.stringify(m.context)}`;
        if (!metricKeys.has(key)) metricKeys.set(key, { key, label: seriesLabel(m) });
      }
    }
    section('Metrics (last value)');
    valueRows('metric', [...metricKeys.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
      (r, key) => {
        const m = (r.metrics || []).find((x) => `${x.name}\u0000${JSON.stringify(x.context)}` === key);
        return m ? m.last : undefined;
      });
    info.textContent = `${runs.length} runs · ${differing} rows differ, ${equal} alike`;
    holder.replaceChildren(el('table', { class: 'compare-table', id: 'compare-table' }, el('thead', {}, head), el('tbody', {}, body)));
    root.dataset.ready = '1';
  }

  await load();
  return () => follow.close();
}
