// Runs page: query bar, sortable and pageable table, column choice, select to compare.

import { el, clear, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatTime, formatValue, formatNumber, contextLabel } from '../format.js';
import { navigate, setUrlState } from '../app.js';

const PAGE_SIZE = 50;
const PROP_COLUMNS = [
  ['name', 'Name'], ['experiment', 'Experiment'], ['tags', 'Tags'],
  ['creation_time', 'Created'], ['active', 'Status'],
];

export async function mount(root, { query }) {
  const state = {
    q: query.get('q') || '',
    offset: Number(query.get('offset') || 0),
    sort: query.get('sort') || '-creation_time',
    params: query.get('params') ? query.get('params').split(',') : null,
    metrics: query.get('metrics') ? query.get('metrics').split(',') : null,
  };
  const selected = new Set();
  const bar = new QueryBar({ value: state.q, placeholder: 'run.hparams.lr < 0.01 and run.experiment == "baseline"',
    onSubmit: (q) => { state.q = q; state.offset = 0; load(); } });
  const info = el('span', { class: 'muted', id: 'runs-count' });
  const compare = el('button', { text: 'Compare selected', disabled: true, id: 'compare',
    onclick: () => navigate(`/metrics?runs=${[...selected].join(',')}`) });
  const columnsMenu = el('details', { class: 'columns-menu' }, el('summary', { text: 'Columns' }));
  const tableHolder = el('div', { class: 'table-holder' });
  const pager = el('div', { class: 'pager' });
  root.append(el('h1', { text: 'Runs' }), bar.root,
    el('div', { class: 'toolbar' }, info, compare, columnsMenu), tableHolder, pager);

  let paramPaths = []; let metricNames = [];
  // The repository-wide lists (completion, column chooser) load beside the first page:
  // summarising 10,000 runs' params must not hold the table back.
  const facts = Promise.all([getJSON('/api/params'), getJSON('/api/metric-names')]).then(([params, metrics]) => {
    paramPaths = Object.keys(params).filter((p) => !p.startsWith('__system_params'));
    metricNames = [...new Set(metrics.map((m) => m.name))].filter((n) => !n.startsWith('__system__'));
    bar.setParamNames(Object.keys(params));
  }).catch((e) => root.appendChild(errorBox(e)));

  function buildColumnsMenu() {
    if (!state.params || !state.metrics) return;
    const box = (label, list, value) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', checked: list.includes(value), onchange: (e) => {
        const i = list.indexOf(value);
        if (e.target.checked && i < 0) list.push(value); else if (!e.target.checked && i >= 0) list.splice(i, 1);
        load();
      } }), label);
    clear(columnsMenu).append(el('summary', { text: 'Columns' }),
      el('div', { class: 'columns-list' },
        el('strong', { text: 'Params' }), ...paramPaths.map((p) => box(p, state.params, p)),
        el('strong', { text: 'Metrics (last value)' }), ...metricNames.map((m) => box(m, state.metrics, m))));
  }

  function header(key, label) {
    const current = state.sort.replace(/^-/, '');
    const arrow = current === key ? (state.sort.startsWith('-') ? ' ▼' : ' ▲') : '';
    return el('th', { class: 'sortable', text: label + arrow, title: `sort by ${key}`, onclick: () => {
      state.sort = current === key && !state.sort.startsWith('-') ? `-${key}` : key;
      load();
    } });
  }

  function cell(run, key) {
    if (key === 'name') {
      return el('td', {}, el('a', { href: `/runs/${encodeURIComponent(run.hash)}`, 'data-nav': true,
        class: 'run-link', text: run.name || run.hash }));
    }
    if (key === 'tags') return el('td', {}, ...(run.tags || []).map((t) => el('span', { class: 'tag', text: t })));
    if (key === 'creation_time') return el('td', { text: formatTime(run.creation_time) });
    if (key === 'active') {
      return el('td', {}, el('span', { class: run.active ? 'badge live' : 'badge', text:
        run.archived ? 'archived' : run.active ? 'running' : 'finished' }));
    }
    return el('td', { text: formatValue(run[key]) });
  }

  function defaultColumns(lists, count, hiddenPrefix) {
    const seen = [];
    for (const list of lists) for (const k of list) if (!k.startsWith(hiddenPrefix) && !seen.includes(k)) seen.push(k);
    return seen.slice(0, count);
  }

  async function load() {
    let page;
    try {
      // Without chosen columns, ask for everything once and pick defaults from the page.
      page = await getJSON('/api/runs', { q: state.q, offset: state.offset, limit: PAGE_SIZE,
        sort: state.sort, params: state.params ?? '*', metrics: state.metrics ?? '*' });
      if (!state.params) state.params = defaultColumns(page.runs.map((r) => Object.keys(r.params || {})), 8, '__system_params');
      if (!state.metrics) state.metrics = defaultColumns(page.runs.map((r) => (r.metrics || []).map((m) => m.name)), 4, '__system__');
    } catch (e) {
      if (e.detail && 'position' in e.detail) bar.showError(e); else clear(tableHolder).append(errorBox(e));
      return;
    }
    setUrlState({ q: state.q, offset: state.offset || '', sort: state.sort === '-creation_time' ? '' : state.sort,
      params: state.params.join(','), metrics: state.metrics.join(',') });
    bar.showError(null);
    info.textContent = `${page.total} runs`;
    const head = el('tr', {}, el('th', {}, el('input', { type: 'checkbox', 'aria-label': 'select page',
      onchange: (e) => { for (const r of page.runs) e.target.checked ? selected.add(r.hash) : selected.delete(r.hash); load(); } })),
    ...PROP_COLUMNS.map(([k, l]) => header(k, l)),
    ...state.params.map((p) => header(`params.${p}`, p)),
    ...state.metrics.map((m) => header(`metric:${m}`, m)));
    const rows = page.runs.map((run) => {
      const lastOf = (name) => (run.metrics || []).filter((m) => m.name === name);
      return el('tr', { dataset: { hash: run.hash }, class: selected.has(run.hash) ? 'selected' : '' },
        el('td', {}, el('input', { type: 'checkbox', checked: selected.has(run.hash), 'aria-label': 'select run',
          onchange: (e) => { e.target.checked ? selected.add(run.hash) : selected.delete(run.hash); updateCompare(); } })),
        ...PROP_COLUMNS.map(([k]) => cell(run, k)),
        ...state.params.map((p) => el('td', { class: 'num', text: formatValue(run.params?.[p]) })),
        ...state.metrics.map((m) => el('td', { class: 'num', title: lastOf(m).map((x) => contextLabel(x.context) || 'no context').join(' / ') },
          lastOf(m).map((x) => formatNumber(x.last)).join(' / '))));
    });
    clear(tableHolder).append(el('table', { class: 'runs-table' }, el('thead', {}, head), el('tbody', {}, rows)));
    const last = Math.min(page.total, state.offset + PAGE_SIZE);
    clear(pager).append(
      el('button', { text: '‹ Previous', disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); } }),
      el('span', { text: page.total ? ` ${state.offset + 1}–${last} of ${page.total} ` : ' no runs match ' }),
      el('button', { text: 'Next ›', disabled: last >= page.total, onclick: () => { state.offset += PAGE_SIZE; load(); } }));
    updateCompare();
  }

  function updateCompare() {
    compare.disabled = selected.size === 0;
    compare.textContent = selected.size ? `Compare ${selected.size} selected` : 'Compare selected';
  }

  await load();
  await facts;
  buildColumnsMenu();
  root.dataset.ready = '1';
}
