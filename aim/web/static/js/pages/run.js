// Run page: a header (name, live badge, tag chips) over tabs: Overview (props, progress,
// editable name / description / tags, archive, delete), Params (a tree with a filter),
// Metrics and System (small charts; system also git / environment), Logs (terminal output,
// log records, artifacts), Objects (a tab per kind), Notes (markdown with a preview) and
// Settings (the colours of the run's tags). The tab is kept in the address (?tab=params)
// so that it can be linked. A tab reads its data the first time it is shown; while the
// run is written only the visible tab is refreshed (every 3 s), and once it has ended
// nothing is asked any more (a tab opened later reads once what it missed).

import { el, clear, errorBox } from '../dom.js';
import { getJSON, getSeries, sendJSON } from '../api.js';
import { LineChart } from '../chart.js';
import { PALETTE } from '../series_ops.js';
import { formatTime, formatDuration, formatValue, formatNumber, seriesLabel } from '../format.js';
import { navigate, server, setTitle } from '../app.js';
import { mountRunObjects, KIND_TITLES } from '../objects.js';
import { mountRunRecords } from '../run_records.js';
import { renderMarkdown } from '../markdown.js';
import { loadTags, tagChip } from '../tags.js';
import { pollMs } from '../live_follow.js';

const TABS = [['overview', 'Overview'], ['params', 'Params'], ['metrics', 'Metrics'], ['system', 'System'],
  ['logs', 'Logs'], ['objects', 'Objects'], ['notes', 'Notes'], ['settings', 'Settings']];
const POLL_MS = 3000;
const SYSTEM_PREFIX = '__system__';

function linkStylesheet() {
  if (document.getElementById('run-css')) return;
  document.head.appendChild(el('link', { id: 'run-css', rel: 'stylesheet', href: '/static/css/run.css' }));
}

function paramsTree(value, depth = 0, openAll = false) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (!keys.length) return el('span', { class: 'muted', text: '{}' });
    return el('ul', { class: 'tree' }, ...keys.map((k) => {
      const v = value[k];
      const nested = v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length;
      return nested
        ? el('li', {}, el('details', { open: openAll || depth < 2 }, el('summary', { class: 'key', text: k }), paramsTree(v, depth + 1, openAll)))
        : el('li', {}, el('span', { class: 'key', text: `${k}: ` }), el('span', { class: 'value', text: formatValue(v) }));
    }));
  }
  return el('span', { class: 'value', text: formatValue(value) });
}

// The part of a params tree whose paths or values hold `needle` (lower case); a key that
// matches keeps its whole subtree. Returns [tree or undefined, number of leaves kept].
function pruneParams(value, needle, path = '') {
  if (!(value && typeof value === 'object' && !Array.isArray(value))) {
    return formatValue(value).toLowerCase().includes(needle) || path.toLowerCase().includes(needle) ? [value, 1] : [undefined, 0];
  }
  const out = {}; let count = 0;
  for (const [k, v] of Object.entries(value)) {
    const here = path ? `${path}.${k}` : k;
    if (k.toLowerCase().includes(needle)) { out[k] = v; count += countLeaves(v); continue; }
    const [kept, n] = pruneParams(v, needle, here);
    if (n) { out[k] = kept; count += n; }
  }
  return count ? [out, count] : [undefined, 0];
}

function countLeaves(value) {
  if (!(value && typeof value === 'object' && !Array.isArray(value))) return 1;
  return Object.values(value).reduce((n, v) => n + countLeaves(v), 0) || 1;
}

export async function mount(root, { params, query }) {
  linkStylesheet();
  const runHash = params[0];
  const runUrl = `/api/runs/${encodeURIComponent(runHash)}`;
  let info;
  let tags = new Map();
  let status = null;
  try {
    [info, tags, status] = await Promise.all([getJSON(runUrl), loadTags().catch(() => new Map()),
      getJSON('/api/status').catch(() => null)]);
  } catch (e) { root.append(errorBox(e)); return null; }
  const p = info.props;
  // a page opened straight at this address may mount before app.js has read the status
  const readOnly = status ? Boolean(status.read_only) : server.readOnly;
  let timer = null;
  let active = Boolean(p.active);
  const cleanups = [];

  // --- header ---------------------------------------------------------------------------
  const title = el('h1', { id: 'run-title', text: p.name || p.hash });
  setTitle(p.name || p.hash);
  const liveBadge = p.active ? el('span', { class: 'badge live', text: 'running' }) : null;
  const headChips = el('div', { class: 'run-tags', id: 'run-tag-chips', 'aria-label': 'tags' });
  const message = el('div', { class: 'notice', hidden: true, role: 'status', id: 'run-message' });
  function flash(text, isError = false) {
    message.textContent = text; message.hidden = false; message.classList.toggle('error', isError);
  }
  function renderHeadChips() {
    headChips.replaceChildren(...(info.props.tags || []).map((t) => tagChip(t, tags)));
  }
  renderHeadChips();

  // --- tabs -----------------------------------------------------------------------------
  const objectCount = Object.values(info.objects || {}).reduce((a, b) => a + b, 0);
  const tablist = el('div', { class: 'run-tabs', role: 'tablist', 'aria-label': 'Run sections' });
  const panels = {};
  const buttons = {};
  for (const [key, label] of TABS) {
    const text = key === 'objects' && objectCount ? `${label} (${objectCount})` : label;
    buttons[key] = el('button', { role: 'tab', type: 'button', id: `tab-${key}`, 'aria-controls': `panel-${key}`,
      'aria-selected': 'false', tabindex: -1, dataset: { tab: key }, text, onclick: () => select(key) });
    panels[key] = el('div', { role: 'tabpanel', id: `panel-${key}`, class: 'run-panel', 'aria-labelledby': `tab-${key}`,
      tabindex: 0, hidden: true, dataset: { tab: key } });
    tablist.append(buttons[key]);
  }
  tablist.addEventListener('keydown', (e) => {
    const keys = TABS.map(([k]) => k);
    const at = keys.indexOf(current);
    let next = null;
    if (e.key === 'ArrowRight') next = keys[(at + 1) % keys.length];
    else if (e.key === 'ArrowLeft') next = keys[(at - 1 + keys.length) % keys.length];
    else if (e.key === 'Home') next = keys[0];
    else if (e.key === 'End') next = keys[keys.length - 1];
    if (next === null) return;
    e.preventDefault();
    select(next);
    buttons[next].focus();
  });

  root.append(el('div', { class: 'run-head' }, title, liveBadge, headChips), message, tablist,
    ...TABS.map(([k]) => panels[k]));

  // --- overview -------------------------------------------------------------------------
  const propsTable = el('table', { class: 'props' });
  function renderProps() {
    const q = info.props;
    const progress = q.progress && q.progress.reported_at
      ? `last report ${formatTime(q.progress.reported_at)}${q.progress.expect_next_in ? `, next expected within ${q.progress.expect_next_in} s` : ''}`
      : 'none reported';
    const rows = [['Hash', q.hash], ['Experiment', q.experiment], ['Status', q.archived ? 'archived' : q.active ? 'running' : 'finished'],
      ['Created', formatTime(q.creation_time)], ['Ended', formatTime(q.end_time)], ['Duration', formatDuration(q.duration)],
      ['Progress', progress], ['Successful finish', q.successful_finish ? 'yes' : (q.active ? 'not yet' : 'not reported')],
      ['Tags', el('span', { class: 'run-tags' }, ...(q.tags || []).map((t) => tagChip(t, tags)))],
      ['Description', q.description || '']];
    propsTable.replaceChildren(...rows.map(([k, v]) => el('tr', {}, el('th', { text: k }),
      v instanceof Node ? el('td', {}, v) : el('td', { text: v ?? '' }))));
  }

  function buildOverview(panel) {
    renderProps();
    const nameInput = el('input', { type: 'text', id: 'edit-name', value: info.props.name || '', maxlength: 1000 });
    const descInput = el('textarea', { id: 'edit-description', rows: 2 });
    descInput.value = info.props.description || '';
    // the tag editor: chips with a remove button, and a field that adds (Enter or comma)
    const editorChips = el('span', { class: 'run-tags', id: 'run-tags-editor' });
    const options = el('datalist', { id: 'run-tag-options' });
    const tagsInput = el('input', { type: 'text', id: 'edit-tags', list: 'run-tag-options', maxlength: 200,
      placeholder: 'add a tag', 'aria-label': 'add a tag', disabled: readOnly, autocomplete: 'off' });
    function renderEditor() {
      const mine = info.props.tags || [];
      editorChips.replaceChildren(...mine.map((t) => tagChip(t, tags, readOnly ? {} : { onRemove: () => setTags(mine.filter((x) => x !== t)) })));
      options.replaceChildren(...[...tags.keys()].filter((t) => !mine.includes(t)).map((t) => el('option', { value: t })));
    }
    const pending = () => tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean);
    async function setTags(list) {
      try {
        info = await sendJSON('PATCH', runUrl, { tags: [...new Set(list)] });
        tagsInput.value = '';
        await afterTagEdit();
        flash('Tags saved.');
      } catch (e) { flash(e.message, true); }
    }
    tagsInput.addEventListener('keydown', (e) => {
      if ((e.key === 'Enter' || e.key === ',') && tagsInput.value.trim()) {
        e.preventDefault();
        setTags([...(info.props.tags || []), ...pending()]);
      }
    });
    tagsInput.addEventListener('input', (e) => {   // a pick from the completion list
      if (e.inputType && e.inputType !== 'insertReplacementText') return;
      if (tags.has(tagsInput.value.trim())) setTags([...(info.props.tags || []), ...pending()]);
    });
    overview.renderEditor = renderEditor;
    renderEditor();
    const save = el('button', { class: 'primary', text: 'Save', id: 'save-run', disabled: readOnly, onclick: async () => {
      try {
        const body = { name: nameInput.value, description: descInput.value };
        if (pending().length) body.tags = [...new Set([...(info.props.tags || []), ...pending()])];
        info = await sendJSON('PATCH', runUrl, body);
        tagsInput.value = '';
        title.textContent = info.props.name || runHash;
        setTitle(info.props.name || runHash);
        await afterTagEdit();
        flash('Saved.');
      } catch (e) { flash(e.message, true); }
    } });
    const archive = el('button', { id: 'archive-run', disabled: readOnly, text: info.props.archived ? 'Unarchive' : 'Archive', onclick: async () => {
      try {
        info = await sendJSON('PATCH', runUrl, { archived: !info.props.archived });
        archive.textContent = info.props.archived ? 'Unarchive' : 'Archive'; renderProps();
        flash(info.props.archived ? 'Archived.' : 'Unarchived.');
      } catch (e) { flash(e.message, true); }
    } });
    const del = el('button', { class: 'danger', id: 'delete-run', disabled: readOnly, text: 'Delete', onclick: async () => {
      if (!window.confirm(`Delete run ${info.props.name || runHash}? This cannot be undone.`)) return;
      try { await sendJSON('DELETE', runUrl); navigate('/runs'); } catch (e) { flash(e.message, true); }
    } });
    panel.append(
      el('section', { class: 'card' }, el('h2', { text: 'Overview' }), propsTable),
      el('section', { class: 'card' }, el('h2', { text: 'Edit' }),
        el('label', { class: 'field' }, 'Name', nameInput), el('label', { class: 'field' }, 'Description', descInput),
        el('div', { class: 'field' }, el('span', { text: 'Tags' }),
          el('div', { class: 'tag-editor' }, editorChips, tagsInput, options)),
        el('div', { class: 'toolbar' }, save, archive, del, readOnly ? el('span', { class: 'muted', text: 'read-only server' }) : null)));
  }

  // The tag list (colours, completion) and every chip after the run's tags changed.
  async function afterTagEdit() {
    try { tags = await loadTags(); } catch (_) { /* keep the old colours */ }
    renderHeadChips(); renderProps();
    if (overview.renderEditor) overview.renderEditor();
    if (settings.render) settings.render();
  }

  const overview = {
    build: buildOverview,
    async refresh() {
      try { info = await getJSON(runUrl); } catch (_) { return; }
      renderProps();
    },
  };

  // --- params ---------------------------------------------------------------------------
  const paramsTab = {
    build(panel) {
      const holder = el('div', { id: 'run-params' });
      const count = el('span', { class: 'muted', id: 'params-filter-count', role: 'status' });
      const filter = el('input', { type: 'search', id: 'params-filter', placeholder: 'filter by key or value',
        'aria-label': 'filter params', autocomplete: 'off' });
      const draw = () => {
        const needle = filter.value.trim().toLowerCase();
        if (!needle) { holder.replaceChildren(paramsTree(info.params)); count.textContent = ''; return; }
        const [kept, n] = pruneParams(info.params, needle);
        holder.replaceChildren(kept === undefined ? el('p', { class: 'muted', text: 'No param matches.' }) : paramsTree(kept, 0, true));
        count.textContent = `${n} match${n === 1 ? '' : 'es'}`;
      };
      filter.addEventListener('input', draw);
      draw();
      panel.append(el('section', { class: 'card' }, el('h2', { text: 'Params' }),
        el('div', { class: 'toolbar' }, filter, count), holder));
    },
  };

  // --- metrics and system metrics: small charts -------------------------------------------
  function chartsTab(id, system, emptyText) {
    const small = new Map(); // series key -> {chart, line, note}
    let until = null;
    const keyOf = (s) => `${s.name}|${JSON.stringify(s.context)}`;
    const caption = (line) => `last ${formatNumber(line.y[line.y.length - 1])} at step ${line.x[line.x.length - 1]}`;
    const names = [...new Set((info.traces || []).filter((t) => t.system === system).map((t) => t.name))];
    // names go comma-separated; one holding a comma: ask for all and keep ours
    const asked = names.some((n) => n.includes(',')) ? {} : { names: names.join(',') };
    const mine = (s) => s.name.startsWith(SYSTEM_PREFIX) === system;
    return {
      charts: small,
      async build(panel) {
        const grid = el('div', { class: 'small-charts', id });
        panel.prepend(el('section', { class: 'card' }, el('h2', { text: system ? 'System metrics' : 'Metrics' }), grid));
        if (!names.length) { grid.append(el('p', { class: 'muted', text: emptyText })); return; }
        try {
          const data = await getSeries({ runs: runHash, ...asked, width: 300, max_series: 1000 });
          until = data.until;
          for (const s of data.series.filter(mine)) {
            const line = { x: s.x, y: s.y, color: PALETTE[0] };
            const note = el('div', { class: 'muted', text: s.n ? caption(line) : 'no points yet' });
            const box = el('div', { class: 'small-chart' }, el('h4', { text: seriesLabel(s) }), note);
            grid.append(box);
            const chart = new LineChart(box, { height: 160, tooltip: (hit) => [`step ${hit.x}`, `value ${formatNumber(hit.y)}`] });
            chart.setData({ lines: [line] });
            small.set(keyOf(s), { chart, line, note });
          }
          if (!grid.children.length) grid.append(el('p', { class: 'muted', text: emptyText }));
        } catch (e) { grid.append(errorBox(e)); }
      },
      // only the points written since the last answer
      async refresh() {
        if (until === null || until === undefined) return;
        try {
          const fresh = await getSeries({ runs: runHash, ...asked, since: until, width: 300 });
          if (fresh.until !== null && fresh.until !== undefined) until = fresh.until;
          for (const s of fresh.series) {
            const entry = small.get(keyOf(s));
            if (!entry) continue;
            const { line } = entry;
            const last = line.x.length ? line.x[line.x.length - 1] : -Infinity;
            let from = 0; while (from < s.n && s.x[from] <= last) from++;
            if (from >= s.n) continue;
            const grow = (a, b) => { const out = new Float64Array(a.length + b.length - from); out.set(a); out.set(b.subarray(from), a.length); return out; };
            line.x = grow(line.x, s.x); line.y = grow(line.y, s.y);
            entry.chart.setData({ lines: [line] });
            entry.note.textContent = caption(line);
          }
        } catch (_) { /* the next tick tries again */ }
      },
    };
  }
  const metricsTab = chartsTab('run-traces', false, 'No metrics tracked.');
  const systemTab = chartsTab('run-system', true, 'No system metrics (Run(system_tracking_interval=...) records them).');
  const buildSystemCharts = systemTab.build;
  systemTab.build = async (panel) => {
    const sys = info.system_params || {};
    panel.append(el('section', { class: 'card' }, el('h2', { text: 'Environment and git' }),
      el('div', { id: 'run-env' }, Object.keys(sys).length ? paramsTree(sys)
        : el('p', { class: 'muted', text: 'Nothing captured (track with log_system_params=True).' }))));
    await buildSystemCharts(panel);
  };

  // --- logs: terminal output, log records, artifacts ------------------------------------------
  const logsTab = (() => {
    let nextLine = 0;
    let logs = null;
    let loadRecords = async () => {};
    async function loadLogs() {
      try {
        const page = await getJSON(`${runUrl}/logs`, { since_line: nextLine });
        if (page.lines.length) {
          if (logs.dataset.empty) { logs.textContent = ''; delete logs.dataset.empty; }
          logs.append(document.createTextNode(page.lines.join('\n') + '\n'));
        }
        nextLine = page.next_line;
        if (!logs.textContent) { logs.textContent = '(no terminal output captured)'; logs.dataset.empty = '1'; }
      } catch (e) { logs.textContent = e.message; }
    }
    return {
      async build(panel) {
        logs = el('pre', { class: 'logs', id: 'run-logs' });
        const recordsCard = el('section', { class: 'card', id: 'run-records' });
        const artifactsCard = el('section', { class: 'card', id: 'run-artifacts-card' });
        panel.append(el('section', { class: 'card' }, el('h2', { text: 'Terminal logs' }), logs), recordsCard, artifactsCard);
        const [, refresh] = await Promise.all([loadLogs(),
          mountRunRecords(recordsCard, artifactsCard, runHash).catch((e) => { recordsCard.append(errorBox(e)); return async () => {}; })]);
        loadRecords = refresh;
      },
      async refresh() { await Promise.all([loadLogs(), loadRecords()]); },
    };
  })();

  // --- objects --------------------------------------------------------------------------
  const objectsTab = {
    async build(panel) {
      const card = el('section', { class: 'card', id: 'run-objects' });
      panel.append(card);
      try {
        const done = await mountRunObjects(card, runHash);
        if (done) cleanups.push(done);
        else {
          card.hidden = false;
          card.append(el('h2', { text: 'Tracked objects' }), el('p', { class: 'muted',
            text: `No ${Object.values(KIND_TITLES).join(', ').toLowerCase()} tracked: run.track(Image(...)) & co. add them.` }));
        }
      } catch (e) { card.hidden = false; card.append(errorBox(e)); }
    },
  };

  // --- notes ----------------------------------------------------------------------------
  const notesTab = {
    async build(panel) {
      let saved = '';
      try { saved = (await getJSON(`${runUrl}/notes`)).notes || ''; } catch (e) { panel.append(errorBox(e)); return; }
      const input = el('textarea', { id: 'run-notes-input', rows: 14, 'aria-label': 'notes (markdown)',
        placeholder: '# Notes\n\nWhat this run tried, what came out. *Markdown*: headings, lists, `code`, [links](https://…).',
        readonly: readOnly });
      input.value = saved;
      const preview = el('div', { class: 'markdown card', id: 'run-notes-preview', 'aria-label': 'preview' });
      const state = el('span', { class: 'muted', id: 'notes-state', role: 'status' });
      const draw = () => {
        preview.replaceChildren(input.value.trim() ? renderMarkdown(input.value) : el('p', { class: 'muted', text: 'No notes yet.' }));
        state.textContent = input.value === saved ? '' : 'unsaved changes';
      };
      let drawTimer = null;
      input.addEventListener('input', () => { clearTimeout(drawTimer); drawTimer = setTimeout(draw, 120); });
      const save = el('button', { class: 'primary', id: 'save-notes', text: 'Save notes', disabled: readOnly, onclick: async () => {
        try {
          await sendJSON('PATCH', runUrl, { notes: input.value });
          saved = input.value; draw(); flash('Notes saved.');
        } catch (e) { flash(e.message, true); }
      } });
      input.addEventListener('keydown', (e) => {
        if (e.key === 's' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); if (!readOnly) save.click(); }
      });
      draw();
      panel.append(el('section', { class: 'card' }, el('h2', { text: 'Notes' }),
        el('div', { class: 'notes-grid' },
          el('div', { class: 'notes-edit' }, input,
            el('div', { class: 'toolbar' }, save, state, readOnly ? el('span', { class: 'muted', text: 'read-only server' }) : null)),
          preview)));
    },
  };

  // --- settings: the colours and descriptions of the run's tags ------------------------------
  const settings = {
    build(panel) {
      const list = el('div', { id: 'run-tag-settings' });
      settings.render = () => {
        const mine = info.props.tags || [];
        if (!mine.length) { list.replaceChildren(el('p', { class: 'muted', text: 'This run has no tags; add some in the Overview.' })); return; }
        list.replaceChildren(...mine.map((name) => {
          const meta = tags.get(name) || {};
          const color = el('input', { type: 'color', value: meta.color || '#e8ecf4', 'aria-label': `colour of ${name}`, disabled: readOnly, class: 'tag-color' });
          const desc = el('input', { type: 'text', value: meta.description || '', maxlength: 2000, placeholder: 'description',
            'aria-label': `description of ${name}`, disabled: readOnly, class: 'tag-description' });
          const send = async (body) => {
            try {
              await sendJSON('PUT', `/api/tags/${encodeURIComponent(name)}`, body);
              await afterTagEdit(); flash(`Tag ${name} saved.`);
            } catch (e) { flash(e.message, true); }
          };
          return el('div', { class: 'tag-setting', dataset: { tag: name } }, tagChip(name, tags), color, desc,
            el('button', { text: 'Save', class: 'save-tag', disabled: readOnly, onclick: () => send({ color: color.value, description: desc.value }) }),
            el('button', { text: 'No colour', class: 'clear-tag', disabled: readOnly || !meta.color, onclick: () => send({ color: null }) }),
            el('button', { text: 'Rename…', class: 'rename-tag', disabled: readOnly, onclick: () => rename(name) }),
            el('button', { text: 'Remove everywhere', class: 'danger remove-tag', disabled: readOnly, onclick: () => removeEverywhere(name) }),
            el('span', { class: 'muted', text: `${meta.runs || 0} run${meta.runs === 1 ? '' : 's'}` }));
        }));
      };
      // renaming and removing change every run that carries the tag
      const reportSkipped = (answer, done) => flash(answer.skipped && answer.skipped.length
        ? `${done}; ${answer.skipped.length} run(s) being written kept the old tag.` : `${done}.`, Boolean(answer.skipped && answer.skipped.length));
      async function rename(name) {
        const to = (window.prompt(`Rename tag ${name} on every run to:`, name) || '').trim();
        if (!to || to === name) return;
        try {
          const answer = await sendJSON('PUT', `/api/tags/${encodeURIComponent(name)}`, { name: to });
          await overview.refresh(); await afterTagEdit();
          reportSkipped(answer, `Renamed ${name} to ${to} on ${(answer.renamed || []).length} run(s)`);
        } catch (e) { flash(e.message, true); }
      }
      async function removeEverywhere(name) {
        if (!window.confirm(`Remove tag ${name} from every run that carries it?`)) return;
        try {
          const answer = await sendJSON('DELETE', `/api/tags/${encodeURIComponent(name)}`);
          await overview.refresh(); await afterTagEdit();
          reportSkipped(answer, `Removed ${name} from ${answer.removed_from.length} run(s)`);
        } catch (e) { flash(e.message, true); }
      }
      settings.render();
      panel.append(el('section', { class: 'card' }, el('h2', { text: 'Tag colours' }),
        el('p', { class: 'muted', text: 'A tag\'s colour and description are shared by every run that carries it; renaming or removing one changes every such run.' }), list));
    },
  };

  const TAB_IMPL = { overview, params: paramsTab, metrics: metricsTab, system: systemTab, logs: logsTab,
    objects: objectsTab, notes: notesTab, settings };
  const built = {};   // key -> promise of the build
  const stale = new Set();   // tabs built while the run was written, not read since it ended
  let current = null;

  function tabFromAddress() {
    const wanted = query.get('tab') || location.hash.replace(/^#/, '');
    return TAB_IMPL[wanted] ? wanted : 'overview';
  }

  async function select(key) {
    if (current === key) return;
    current = key;
    for (const [k] of TABS) {
      const on = k === key;
      buttons[k].setAttribute('aria-selected', on ? 'true' : 'false');
      buttons[k].tabIndex = on ? 0 : -1;
      buttons[k].classList.toggle('current', on);
      panels[k].hidden = !on;
    }
    root.dataset.tab = key;
    buttons[key].scrollIntoView({ block: 'nearest', inline: 'nearest' });
    history.replaceState(null, '', location.pathname + (key === 'overview' ? '' : `?tab=${key}`));
    const impl = TAB_IMPL[key];
    const panel = panels[key];
    if (!built[key]) {
      built[key] = Promise.resolve(impl.build(panel)).catch((e) => panel.append(errorBox(e)))
        .then(() => { panel.dataset.ready = '1'; });
      return built[key];
    }
    await built[key];
    // back on a tab built earlier: catch up on what was written meanwhile
    if (impl.refresh && (active || stale.has(key))) { stale.delete(key); await impl.refresh(); }
  }

  // Every 3 s while the run is written: is it still, and the visible tab's new data. Once
  // it has ended, one last read (what was written between the previous tick and the
  // close) and no more requests.
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      let still = true;
      try {
        still = (await getJSON('/api/runs/active')).runs.some((r) => r.hash === runHash);
      } catch (_) { /* unknown: keep polling */ }
      const impl = TAB_IMPL[current];
      if (built[current] && impl.refresh) { await built[current]; await impl.refresh(); }
      if (still || timer === null) return;
      clearInterval(timer); timer = null; active = false;
      if (liveBadge) liveBadge.remove();
      for (const [k] of TABS) if (built[k] && k !== current) stale.add(k);
      await overview.refresh();
    } finally { polling = false; }
  }

  await select(tabFromAddress());
  if (p.active) timer = setInterval(poll, pollMs(POLL_MS));
  root.dataset.ready = '1';
  return () => {
    clearInterval(timer);
    cleanups.forEach((f) => f());
    for (const tab of [metricsTab, systemTab]) for (const { chart } of tab.charts.values()) chart.destroy();
  };
}
