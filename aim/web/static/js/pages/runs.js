// Runs page: query bar, sortable and pageable table, column choice, select runs to compare
// (metrics, or params side by side), archive, delete or tag them (chips in the tags' colours),
// show or hide archived runs, export the table as CSV. While a run is being written the
// page is re-read every few seconds.

import { el, clear, errorBox } from '../dom.js';
import { getJSON, sendJSON } from '../api.js';
import { QueryBar } from '../query_bar.js';
import { formatTime, formatValue, formatNumber, contextLabel } from '../format.js';
import { navigate, setUrlState } from '../app.js';
import { loadTags, tagChip, paintChips } from '../tags.js';
import { pollMs } from '../live_follow.js';

const PAGE_SIZE = 50;
const EXPORT_PAGE = 1000;   // the API's largest page
const MAX_HASHES = 1000;    // the most run hashes one bulk request may carry
const LIVE_MS = 5000;      // re-read the page while a run is written
const IDLE_MS = 15000;     // otherwise only ask whether a run has started
const PROP_COLUMNS = [
  ['name', 'Name'], ['experiment', 'Experiment'], ['tags', 'Tags'],
  ['creation_time', 'Created'], ['active', 'Status'],
];

// The page's own sheet: the Content-Security-Policy refuses inline <style>, not same-origin
// sheets. Linked once, whatever the number of visits.
function linkStylesheet() {
  if (document.getElementById('runs-css')) return;
  document.head.appendChild(el('link', { id: 'runs-css', rel: 'stylesheet', href: '/static/css/runs.css' }));
}

// A metric column is one (name, context) pair; its sort key names the context exactly
// (`metric:acc@{"subset":"train"}`), so the server sorts by the values the column shows.
function metricKey(name, context) {
  return `metric:${name}@${JSON.stringify(context || {})}`;
}

function contextText(context) {
  return JSON.stringify(context || {});
}

// The metric columns for the chosen names: each context the runs carry (a name no run has
// still gets its column), plus the one the table is sorted by.
function metricColumns(names, runs, sort) {
  const columns = [];
  for (const name of names) {
    const contexts = new Map();
    for (const run of runs) {
      for (const m of run.metrics || []) if (m.name === name) contexts.set(contextText(m.context), m.context);
    }
    const sortKey = sort.replace(/^-/, '');
    const prefix = `metric:${name}@`;
    if (sortKey.startsWith(prefix)) {
      try {
        const ctx = JSON.parse(sortKey.slice(prefix.length));
        if (ctx && typeof ctx === 'object' && !Array.isArray(ctx)) contexts.set(contextText(ctx), ctx);
      } catch (_) { /* a name holding '@': no extra column */ }
    }
    if (!contexts.size) contexts.set('{}', {});
    // the context-less series first, then the contexts in the order of their JSON text
    const texts = [...contexts.keys()].sort((a, b) => (b === '{}') - (a === '{}') || (a < b ? -1 : a > b ? 1 : 0));
    texts.forEach((text, i) => {
      const context = contexts.get(text);
      // An address sorted by plain `metric:<name>` (the context-less series, else the
      // first context) marks the first column of that name.
      const key = i === 0 && sortKey === `metric:${name}` ? sortKey : metricKey(name, context);
      columns.push({ name, context, text, key, label: contextLabel(context) });
    });
  }
  return columns;
}

function metricValue(run, column) {
  const m = (run.metrics || []).find((x) => x.name === column.name && contextText(x.context) === column.text);
  return m ? m.last : null;
}

// One CSV field; text a spreadsheet would run as a formula (=, +, -, @) is prefixed with '.
function csvField(value) {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'string' ? value : (typeof value === 'number' ? String(value) : JSON.stringify(value));
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export async function mount(root, { query }) {
  linkStylesheet();
  const state = {
    q: query.get('q') || '',
    offset: Number(query.get('offset') || 0),
    sort: query.get('sort') || '-creation_time',
    params: query.get('params') ? query.get('params').split(',') : null,
    metrics: query.get('metrics') ? query.get('metrics').split(',') : null,
    archived: query.get('archived') === '1',
  };
  const selected = new Set();
  let page = { runs: [], total: 0 };
  let readOnly = false;
  let loads = 0;   // the newest load() wins when answers arrive out of order
  let shownAnswer = '';   // the answer the table shows: a refresh that reads the same draws nothing
  let liveTimer = null; let stopped = false; let wasLive = false;

  const bar = new QueryBar({ value: state.q, placeholder: 'run.hparams.lr < 0.01 and run.experiment == "baseline"',
    onSubmit: (q) => { state.q = q; state.offset = 0; load(); } });
  const info = el('span', { class: 'muted', id: 'runs-count' });
  const liveBadge = el('span', { class: 'badge live', id: 'runs-live', hidden: true });
  const compare = el('button', { text: 'Compare selected', disabled: true, id: 'compare',
    onclick: () => navigate(`/metrics?runs=${[...selected].join(',')}`) });
  const compareParams = el('button', { text: 'Compare params', disabled: true, id: 'compare-params',
    title: 'the params of two or more selected runs side by side',
    onclick: () => navigate(`/compare?runs=${[...selected].map(encodeURIComponent).join(',')}`) });
  let tagList = new Map();   // name -> {color, description, runs}: the chips' colours
  const columnsMenu = el('details', { class: 'columns-menu runs-menu', id: 'columns-menu' }, el('summary', { text: 'Columns' }));
  const showArchived = el('input', { type: 'checkbox', id: 'show-archived', checked: state.archived,
    onchange: (e) => { state.archived = e.target.checked; state.offset = 0; load(); } });
  const exportButton = el('button', { text: 'Export CSV', id: 'export-csv', title: 'the visible columns of every run the query matches, in the table\'s order',
    onclick: () => exportCsv() });

  // Bulk actions on the selected runs.
  const selectionInfo = el('span', { class: 'muted', id: 'selection-count' });
  const clearSelection = el('button', { text: 'Deselect all', id: 'deselect-all', disabled: true,
    onclick: () => { selected.clear(); refreshSelection(); } });
  const bulkStatus = el('span', { id: 'bulk-status', class: 'muted', role: 'status' });
  const archiveButton = el('button', { text: 'Archive', id: 'bulk-archive', onclick: () => bulkArchive(true) });
  const unarchiveButton = el('button', { text: 'Unarchive', id: 'bulk-unarchive', onclick: () => bulkArchive(false) });
  const deleteButton = el('button', { text: 'Delete', id: 'bulk-delete', class: 'danger', onclick: () => bulkDelete() });
  const tagOptions = el('datalist', { id: 'bulk-tag-options' });
  const tagInput = el('input', { type: 'text', id: 'bulk-tag-input', placeholder: 'tag', maxlength: 200, 'aria-label': 'tag',
    list: 'bulk-tag-options', autocomplete: 'off' });
  const addTag = el('button', { text: 'Add to selected', id: 'bulk-tag-add', onclick: () => bulkTag(true) });
  const removeTag = el('button', { text: 'Remove from selected', id: 'bulk-tag-remove', onclick: () => bulkTag(false) });
  const tagMenu = el('details', { class: 'runs-menu', id: 'tag-menu' }, el('summary', { text: 'Tag' }),
    el('div', { class: 'runs-menu-panel' }, tagInput, tagOptions, addTag, removeTag));
  const writeButtons = [archiveButton, unarchiveButton, deleteButton, addTag, removeTag];

  const tableHolder = el('div', { class: 'table-holder' });
  const pager = el('div', { class: 'pager' });
  root.append(el('h1', { text: 'Runs' }), bar.root,
    el('div', { class: 'toolbar' }, info, liveBadge, compare, compareParams, columnsMenu,
      el('label', { class: 'check' }, showArchived, 'Show archived'), exportButton),
    el('div', { class: 'toolbar bulk-actions' }, selectionInfo, clearSelection, archiveButton, unarchiveButton,
      tagMenu, deleteButton, bulkStatus),
    tableHolder, pager);

  // Menus close on Escape and on a click outside them.
  const onKey = (e) => {
    if (e.key !== 'Escape') return;
    for (const d of root.querySelectorAll('details[open]')) {
      d.open = false;
      if (d.contains(document.activeElement)) d.querySelector('summary').focus();
    }
  };
  const onClick = (e) => {
    for (const d of root.querySelectorAll('details[open]')) if (!d.contains(e.target)) d.open = false;
  };
  document.addEventListener('keydown', onKey);
  document.addEventListener('click', onClick);

  let paramPaths = []; let metricNames = [];
  // The repository-wide lists (completion, column chooser) load beside the first page:
  // summarising 10,000 runs' params must not hold the table back.
  const facts = Promise.all([getJSON('/api/params'), getJSON('/api/metric-names'), getJSON('/api/status')])
    .then(([params, metrics, status]) => {
      paramPaths = Object.keys(params).filter((p) => !p.startsWith('__system_params'));
      metricNames = [...new Set(metrics.map((m) => m.name))].filter((n) => !n.startsWith('__system__'));
      bar.setParamNames(Object.keys(params));
      readOnly = status.read_only;
      refreshSelection();
    }).catch((e) => root.appendChild(errorBox(e)));
  // Tag colours and the bulk tag field's completion; chips drawn before they arrive are
  // painted then.
  function refreshTags() {
    return loadTags().then((list) => {
      tagList = list;
      paintChips(tableHolder, list);
      tagOptions.replaceChildren(...[...list.keys()].map((name) => el('option', { value: name })));
    }).catch(() => { /* chips keep the plain colour */ });
  }
  refreshTags();

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
        el('strong', { text: 'Metrics (last value, a column per context)' }), ...metricNames.map((m) => box(m, state.metrics, m))));
  }

  function header(key, label, contextText) {
    const current = state.sort.replace(/^-/, '');
    const arrow = current === key ? (state.sort.startsWith('-') ? ' ▼' : ' ▲') : '';
    return el('th', { class: 'sortable', title: `sort by ${key}`, dataset: { sort: key }, onclick: () => {
      state.sort = current === key && !state.sort.startsWith('-') ? `-${key}` : key;
      load();
    } }, label, contextText ? el('span', { class: 'metric-context', text: contextText }) : null, arrow);
  }

  function cell(run, key) {
    if (key === 'name') {
      return el('td', {}, el('a', { href: `/runs/${encodeURIComponent(run.hash)}`, 'data-nav': true,
        class: 'run-link', text: run.name || run.hash }));
    }
    if (key === 'tags') return el('td', { class: 'tags-cell' }, ...(run.tags || []).map((t) => tagChip(t, tagList)));
    if (key === 'creation_time') return el('td', { text: formatTime(run.creation_time) });
    if (key === 'active') {
      return el('td', {}, el('span', { class: run.archived ? 'badge archived' : run.active ? 'badge live' : 'badge', text:
        run.archived ? 'archived' : run.active ? 'running' : 'finished' }));
    }
    return el('td', { text: formatValue(run[key]) });
  }

  function defaultColumns(lists, count, hiddenPrefix) {
    const seen = [];
    for (const list of lists) for (const k of list) if (!k.startsWith(hiddenPrefix) && !seen.includes(k)) seen.push(k);
    return seen.slice(0, count);
  }

  function requestParams(offset, limit) {
    return { q: state.q, offset, limit, sort: state.sort, params: state.params ?? '*',
      metrics: state.metrics ?? '*', archived: state.archived ? 'true' : 'false' };
  }

  // `refresh`: the live re-read of the same view. It gives way to a load the user started,
  // its errors leave the table as it is (the next tick tries again) and an unchanged answer
  // redraws nothing.
  let busy = 0;
  async function load({ refresh = false } = {}) {
    if (refresh && busy) return;
    busy += 1;
    try { await readPage(refresh); } finally { busy -= 1; }
  }

  async function readPage(refresh) {
    const mine = ++loads;
    let answer;
    try {
      // Without chosen columns, ask for everything once and pick defaults from the page.
      answer = await getJSON('/api/runs', requestParams(state.offset, PAGE_SIZE));
      if (mine !== loads) return;
      if (!state.params) state.params = defaultColumns(answer.runs.map((r) => Object.keys(r.params || {})), 8, '__system_params');
      if (!state.metrics) state.metrics = defaultColumns(answer.runs.map((r) => (r.metrics || []).map((m) => m.name)), 4, '__system__');
    } catch (e) {
      if (mine !== loads || refresh) return;
      if (e.detail && 'position' in e.detail) bar.showError(e); else clear(tableHolder).append(errorBox(e));
      return;
    }
    if (!answer.runs.length && state.offset > 0) {   // past the end (runs were deleted)
      state.offset = Math.max(0, Math.floor((answer.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      return readPage(refresh);
    }
    const text = JSON.stringify([answer, state.params, state.metrics]);
    if (refresh && text === shownAnswer) return;
    shownAnswer = text;
    const kept = refresh ? keepView() : null;
    page = answer;
    setUrlState({ q: state.q, offset: state.offset || '', sort: state.sort === '-creation_time' ? '' : state.sort,
      params: state.params.join(','), metrics: state.metrics.join(','), archived: state.archived ? '1' : '' });
    bar.showError(null);
    info.textContent = `${page.total} runs`;
    const columns = metricColumns(state.metrics, page.runs, state.sort);
    const selectPage = el('input', { type: 'checkbox', 'aria-label': 'select page', id: 'select-page',
      onchange: () => {
        const all = page.runs.length > 0 && page.runs.every((r) => selected.has(r.hash));
        for (const r of page.runs) if (all) selected.delete(r.hash); else selected.add(r.hash);
        refreshSelection();
      } });
    const head = el('tr', {}, el('th', {}, selectPage),
      ...PROP_COLUMNS.map(([k, l]) => header(k, l)),
      ...state.params.map((p) => header(`params.${p}`, p)),
      ...columns.map((c) => header(c.key, c.name, c.label)));
    const rows = page.runs.map((run) => el('tr', { dataset: { hash: run.hash }, class: run.archived ? 'archived' : '' },
      el('td', {}, el('input', { type: 'checkbox', 'aria-label': 'select run',
        onchange: (e) => { if (e.target.checked) selected.add(run.hash); else selected.delete(run.hash); refreshSelection(); } })),
      ...PROP_COLUMNS.map(([k]) => cell(run, k)),
      ...state.params.map((p) => el('td', { class: 'num', text: formatValue(run.params?.[p]) })),
      ...columns.map((c) => el('td', { class: 'num', title: c.label ? `${c.name} (${c.label})` : c.name,
        text: formatNumber(metricValue(run, c)) }))));
    clear(tableHolder).append(el('table', { class: 'runs-table' }, el('thead', {}, head), el('tbody', {}, rows)));
    const last = Math.min(page.total, state.offset + PAGE_SIZE);
    clear(pager).append(
      el('button', { text: '‹ Previous', disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); load(); } }),
      el('span', { text: page.total ? ` ${state.offset + 1}–${last} of ${page.total} ` : ' no runs match ' }),
      el('button', { text: 'Next ›', disabled: last >= page.total, onclick: () => { state.offset += PAGE_SIZE; load(); } }));
    refreshSelection();
    if (kept) kept();
  }

  // What a redrawn table would lose: the scroll of the page and of the table's own box,
  // and the focus on a header or a row's checkbox. Returns the function that restores it.
  function keepView() {
    const { scrollX, scrollY } = window;
    const { scrollLeft, scrollTop } = tableHolder;
    const focused = tableHolder.contains(document.activeElement) ? document.activeElement : null;
    const sortKey = focused?.dataset?.sort;
    const rowHash = focused?.closest('tr')?.dataset?.hash;
    const onSelectPage = focused?.id === 'select-page';
    return () => {
      tableHolder.scrollLeft = scrollLeft; tableHolder.scrollTop = scrollTop;
      if (window.scrollX !== scrollX || window.scrollY !== scrollY) window.scrollTo(scrollX, scrollY);
      if (!focused) return;
      let target = null;
      if (sortKey !== undefined) target = [...tableHolder.querySelectorAll('th.sortable')].find((th) => th.dataset.sort === sortKey);
      else if (onSelectPage) target = tableHolder.querySelector('#select-page');
      else if (rowHash !== undefined) {
        target = [...tableHolder.querySelectorAll('tbody tr')].find((tr) => tr.dataset.hash === rowHash)?.querySelector('input');
      }
      if (target) target.focus({ preventScroll: true });
    };
  }

  // Live runs: while any run is written, the page is re-read every 5 s (sort, selection,
  // scroll, focus and open menus stay); once none is, one last read (their status and last
  // values) and then only a check every 15 s for a run that starts.
  async function watchLive(first = false) {
    liveTimer = null;
    let live = null;
    try { live = (await getJSON('/api/runs/active')).runs; } catch (_) { /* unknown: ask again later */ }
    if (stopped) return;
    if (live) {
      liveBadge.hidden = !live.length;
      liveBadge.textContent = live.length ? `${live.length} running · updating every ${LIVE_MS / 1000} s` : '';
      liveBadge.title = live.slice(0, 20).map((r) => r.name || r.hash).join(', ');
      root.dataset.live = live.length ? '1' : '0';
      if (!first && (live.length || wasLive)) await load({ refresh: true });
      wasLive = live.length > 0;
    }
    if (!stopped) liveTimer = setTimeout(watchLive, pollMs(live && live.length ? LIVE_MS : IDLE_MS));
  }

  // Every checkbox, row highlight and button follows `selected`: the one source of truth.
  function refreshSelection() {
    for (const tr of tableHolder.querySelectorAll('tbody tr')) {
      const on = selected.has(tr.dataset.hash);
      tr.classList.toggle('selected', on);
      tr.querySelector('input[type=checkbox]').checked = on;
    }
    const selectPage = tableHolder.querySelector('#select-page');
    if (selectPage) {
      const onPage = page.runs.filter((r) => selected.has(r.hash)).length;
      selectPage.checked = onPage > 0 && onPage === page.runs.length;
      selectPage.indeterminate = onPage > 0 && onPage < page.runs.length;
    }
    const n = selected.size;
    compare.disabled = n === 0;
    compareParams.disabled = n < 2;
    compare.textContent = n ? `Compare ${n} selected` : 'Compare selected';
    selectionInfo.textContent = n ? `${n} selected` : 'none selected';
    clearSelection.disabled = n === 0;
    for (const b of writeButtons) {
      b.disabled = n === 0 || readOnly;
      b.title = readOnly ? 'read-only server: runs cannot be changed' : '';
    }
  }

  function report(text, error) {
    bulkStatus.className = error ? 'error' : 'muted';
    bulkStatus.textContent = text;
  }

  async function inBatches(hashes, send) {
    for (let i = 0; i < hashes.length; i += MAX_HASHES) await send(hashes.slice(i, i + MAX_HASHES));
  }

  async function bulkArchive(archived) {
    const hashes = [...selected];
    try {
      await inBatches(hashes, (part) => sendJSON('POST', '/api/runs/archive', { hashes: part, archived }));
      report(`${archived ? 'Archived' : 'Unarchived'} ${hashes.length} runs.`);
    } catch (e) { report(e.message, true); }
    await load();
  }

  async function bulkDelete() {
    const hashes = [...selected];
    if (!window.confirm(`Delete ${hashes.length} runs and all they tracked? This cannot be undone.`)) return;
    try {
      await inBatches(hashes, (part) => sendJSON('POST', '/api/runs/delete', { hashes: part }));
      report(`Deleted ${hashes.length} runs.`);
      selected.clear();
    } catch (e) { report(e.message, true); }
    await load();
  }

  async function bulkTag(add) {
    const tag = tagInput.value.trim();
    if (!tag) { report('Type a tag first.', true); tagInput.focus(); return; }
    const hashes = [...selected];
    let done = 0;
    try {
      // An edit sets a run's whole tag list: read each run's tags now, not the page's copy.
      for (const h of hashes) {
        const { props } = await getJSON(`/api/runs/${encodeURIComponent(h)}`);
        const tags = props.tags || [];
        if (add === tags.includes(tag)) { done += 1; continue; }
        await sendJSON('PATCH', `/api/runs/${encodeURIComponent(h)}`,
          { tags: add ? [...tags, tag] : tags.filter((t) => t !== tag) });
        done += 1;
      }
      report(`${add ? 'Tagged' : 'Untagged'} ${done} runs.`);
      refreshTags();
      tagMenu.open = false;
    } catch (e) { report(`${e.message} (${done} of ${hashes.length} runs were changed)`, true); }
    await load();
  }

  async function exportCsv() {
    exportButton.disabled = true;
    report('Exporting…');
    try {
      const runs = [];
      for (let offset = 0; ; offset += EXPORT_PAGE) {
        const part = await getJSON('/api/runs', requestParams(offset, EXPORT_PAGE));
        runs.push(...part.runs);
        if (!part.runs.length || runs.length >= part.total) break;
      }
      const columns = metricColumns(state.metrics, runs, state.sort);
      const lines = [['hash', ...PROP_COLUMNS.map(([, l]) => l), ...state.params,
        ...columns.map((c) => (c.label ? `${c.name} (${c.label})` : c.name))]];
      for (const run of runs) {
        lines.push([run.hash, run.name, run.experiment, (run.tags || []).join(' '),
          run.creation_time == null ? null : new Date(run.creation_time * 1000).toISOString(),
          run.archived ? 'archived' : run.active ? 'running' : 'finished',
          ...state.params.map((p) => run.params?.[p]), ...columns.map((c) => metricValue(run, c))]);
      }
      const text = lines.map((l) => l.map(csvField).join(',')).join('\r\n') + '\r\n';
      const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
      const link = el('a', { href: url, download: 'runs.csv', hidden: true });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      report(`Exported ${runs.length} runs.`);
    } catch (e) { report(e.message, true); }
    exportButton.disabled = false;
  }

  await load();
  await facts;
  buildColumnsMenu();
  root.dataset.ready = '1';
  watchLive(true);
  return () => {
    stopped = true;
    clearTimeout(liveTimer);
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('click', onClick);
  };
}
