// Experiments page: every experiment with its run counts, last activity and the params
// that vary most across its runs (/api/experiments/summary). A row opens the runs page
// with the query `run.experiment == "<name>"`.

import { el, errorBox } from '../dom.js';
import { getJSON } from '../api.js';
import { formatTime, formatValue } from '../format.js';
import { navigate } from '../app.js';
import { LiveFollow } from '../live_follow.js';

function linkStylesheet() {
  if (document.getElementById('experiments-css')) return;
  document.head.appendChild(el('link', { id: 'experiments-css', rel: 'stylesheet', href: '/static/css/experiments.css' }));
}

// The run query that selects an experiment's runs; JSON's string escapes are the query
// language's (Python's) for quotes, backslashes and control characters.
export function experimentQuery(name) {
  return name === null || name === undefined ? 'run.experiment is None' : `run.experiment == ${JSON.stringify(name)}`;
}

export function runsUrl(name) {
  return `/runs?${new URLSearchParams({ q: experimentQuery(name) })}`;
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Date.now() / 1000 - seconds;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function paramChip(p) {
  const range = 'min' in p ? `${formatValue(p.min)} – ${formatValue(p.max)}`
    : (p.values || []).map(formatValue).join(', ') + (p.distinct > (p.values || []).length ? ', …' : '');
  const count = `${p.distinct}${p.distinct_capped ? '+' : ''} values`;
  return el('span', { class: 'exp-param', title: `${p.path}: ${count} across ${p.runs} runs` },
    el('span', { class: 'exp-param-path', text: p.path }), ' ',
    el('span', { class: 'exp-param-range', text: range }), ' ',
    el('span', { class: 'muted', text: `(${count})` }));
}

export async function mount(root) {
  linkStylesheet();
  const filter = el('input', { type: 'text', id: 'experiments-filter', placeholder: 'filter by name', 'aria-label': 'filter experiments' });
  const info = el('span', { class: 'muted', id: 'experiments-count' });
  const holder = el('div', { class: 'table-holder experiments-holder' });
  const follow = new LiveFollow({ id: 'experiments-live', root, refresh, anyRun: true });
  root.append(el('h1', { text: 'Experiments' }), el('div', { class: 'toolbar' }, filter, info, follow.badge), holder);
  let experiments;
  try {
    experiments = (await getJSON('/api/experiments/summary')).experiments;
  } catch (e) { root.append(errorBox(e)); return null; }

  // Sorting by a header: last activity (newest first) until another is clicked.
  const COLUMNS = [['name', 'Experiment'], ['runs', 'Runs'], ['active', 'Active'], ['archived', 'Archived'],
    ['last_activity', 'Last activity'], ['first_created', 'First run'], [null, 'Most varied params']];
  let sort = { key: 'last_activity', desc: true };
  const compare = (a, b) => {
    const u = a[sort.key]; const v = b[sort.key];
    if (u === v) return 0;
    if (u === null || u === undefined) return 1;        // no value: last either way
    if (v === null || v === undefined) return -1;
    const order = typeof u === 'number' ? u - v : String(u).localeCompare(String(v));
    return sort.desc ? -order : order;
  };
  const header = ([key, label]) => {
    if (!key) return el('th', { text: label });
    const mark = sort.key === key ? (sort.desc ? ' ▼' : ' ▲') : '';
    return el('th', { class: 'sortable', dataset: { sort: key }, 'aria-sort': sort.key === key ? (sort.desc ? 'descending' : 'ascending') : null,
      text: label + mark,
      onclick: () => { sort = { key, desc: sort.key === key ? !sort.desc : key !== 'name' }; draw(); } });
  };

  function draw() {
    const needle = filter.value.trim().toLowerCase();
    const shown = experiments.filter((x) => !needle || String(x.name ?? '').toLowerCase().includes(needle)).sort(compare);
    info.textContent = `${shown.length} of ${experiments.length} experiments`;
    const rows = shown.map((x) => {
      const url = runsUrl(x.name);
      return el('tr', { class: 'experiment-row', dataset: { experiment: x.name ?? '' },
        onclick: (e) => { if (!e.target.closest('a')) navigate(url); } },
      el('td', { class: 'exp-name' }, el('a', { href: url, 'data-nav': true, text: x.name ?? '(no experiment)' })),
      el('td', { class: 'num exp-runs', text: x.runs }),
      el('td', { class: 'num exp-active' }, x.active ? el('span', { class: 'badge live', text: `${x.active} active` }) : '0'),
      el('td', { class: 'num exp-archived', text: x.archived || '' }),
      el('td', { class: 'exp-last', title: formatTime(x.last_activity), text: ago(x.last_activity) }),
      el('td', { class: 'exp-first', text: formatTime(x.first_created) }),
      el('td', { class: 'exp-params' }, x.varied_params.length ? x.varied_params.map(paramChip)
        : el('span', { class: 'muted', text: x.runs > 1 ? 'all runs alike' : '' })));
    });
    holder.replaceChildren(el('table', { class: 'experiments-table' },
      el('thead', {}, el('tr', {}, ...COLUMNS.map(header))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No experiment matches.' })))));
  }
  filter.addEventListener('input', draw);
  draw();
  root.dataset.ready = '1';

  // Live runs: while an experiment has a run being written, the summary is read again
  // (counts, last activity) and drawn when it differs, keeping the filter, the sort and
  // the scroll. The candidates are experiments and their active counts: a count that
  // grows is a run to ask /api/runs/active about.
  function followLive() {
    const live = experiments.filter((x) => x.active > 0);
    follow.update(live.map((x) => `${x.name ?? ''}\u0000${x.active}`),
      { names: live.map((x) => `${x.name ?? '(no experiment)'}: ${x.active}`), count: live.reduce((a, x) => a + x.active, 0) });
  }
  async function refresh(signal) {
    const fresh = (await getJSON('/api/experiments/summary', {}, { signal })).experiments;
    if (JSON.stringify(fresh) !== JSON.stringify(experiments)) {
      experiments = fresh;
      const { scrollLeft, scrollTop } = holder;
      const focused = holder.contains(document.activeElement) ? document.activeElement.dataset.sort : null;
      draw();
      holder.scrollLeft = scrollLeft; holder.scrollTop = scrollTop;
      if (focused) holder.querySelector(`th[data-sort="${focused}"]`)?.focus();
    }
    followLive();
  }
  followLive();
  return () => follow.close();
}
