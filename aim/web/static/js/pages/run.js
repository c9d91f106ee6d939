// Run page: props, editable name/description/tags, archive and delete, params as a tree,
// every trace as a small chart, system metrics, terminal logs, git/environment info.

import { el, clear, errorBox } from '../dom.js';
import { getJSON, getSeries, sendJSON } from '../api.js';
import { LineChart } from '../chart.js';
import { PALETTE } from '../series_ops.js';
import { formatTime, formatDuration, formatValue, formatNumber, seriesLabel } from '../format.js';
import { navigate, server, setTitle } from '../app.js';
import { mountRunObjects } from '../objects.js';
import { mountRunRecords } from '../run_records.js';

function paramsTree(value, depth = 0) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (!keys.length) return el('span', { class: 'muted', text: '{}' });
    return el('ul', { class: 'tree' }, ...keys.map((k) => {
      const v = value[k];
      const nested = v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length;
      return nested
        ? el('li', {}, el('details', { open: depth < 2 }, el('summary', { class: 'key', text: k }), paramsTree(v, depth + 1)))
        : el('li', {}, el('span', { class: 'key', text: `${k}: ` }), el('span', { class: 'value', text: formatValue(v) }));
    }));
  }
  return el('span', { class: 'value', text: formatValue(value) });
}

export async function mount(root, { params }) {
  const runHash = params[0];
  let timer = null;
  let info;
  try { info = await getJSON(`/api/runs/${encodeURIComponent(runHash)}`); } catch (e) { root.append(errorBox(e)); return null; }
  const p = info.props;
  const title = el('h1', { id: 'run-title', text: p.name || p.hash });
  setTitle(p.name || p.hash);
  const message = el('div', { class: 'notice', hidden: true, role: 'status' });
  const nameInput = el('input', { type: 'text', id: 'edit-name', value: p.name || '' });
  const descInput = el('textarea', { id: 'edit-description', rows: 2 });
  descInput.value = p.description || '';
  const tagsInput = el('input', { type: 'text', id: 'edit-tags', value: (p.tags || []).join(', '), placeholder: 'comma-separated' });
  const readOnly = server.readOnly;
  const save = el('button', { class: 'primary', text: 'Save', id: 'save-run', disabled: readOnly, onclick: async () => {
    try {
      const tags = tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean);
      info = await sendJSON('PATCH', `/api/runs/${encodeURIComponent(runHash)}`, { name: nameInput.value, description: descInput.value, tags });
      title.textContent = info.props.name || runHash;
      setTitle(info.props.name || runHash);
      renderProps(); flash('Saved.');
    } catch (e) { flash(e.message, true); }
  } });
  const archive = el('button', { id: 'archive-run', disabled: readOnly, text: p.archived ? 'Unarchive' : 'Archive', onclick: async () => {
    try {
      info = await sendJSON('PATCH', `/api/runs/${encodeURIComponent(runHash)}`, { archived: !info.props.archived });
      archive.textContent = info.props.archived ? 'Unarchive' : 'Archive'; renderProps();
      flash(info.props.archived ? 'Archived.' : 'Unarchived.');
    } catch (e) { flash(e.message, true); }
  } });
  const del = el('button', { class: 'danger', id: 'delete-run', disabled: readOnly, text: 'Delete', onclick: async () => {
    if (!window.confirm(`Delete run ${p.name || runHash}? This cannot be undone.`)) return;
    try { await sendJSON('DELETE', `/api/runs/${encodeURIComponent(runHash)}`); navigate('/runs'); } catch (e) { flash(e.message, true); }
  } });
  function flash(text, isError = false) {
    message.textContent = text; message.hidden = false; message.classList.toggle('error', isError);
  }
  const propsTable = el('table', { class: 'props' });
  function renderProps() {
    const q = info.props;
    const rows = [['Hash', q.hash], ['Experiment', q.experiment], ['Status', q.archived ? 'archived' : q.active ? 'running' : 'finished'],
      ['Created', formatTime(q.creation_time)], ['Ended', formatTime(q.end_time)], ['Duration', formatDuration(q.duration)],
      ['Tags', (q.tags || []).join(', ')], ['Description', q.description || '']];
    propsTable.replaceChildren(...rows.map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { text: v ?? '' }))));
  }
  renderProps();
  const metricsGrid = el('div', { class: 'small-charts', id: 'run-traces' });
  const systemGrid = el('div', { class: 'small-charts', id: 'run-system' });
  const logs = el('pre', { class: 'logs', id: 'run-logs' });
  const sys = info.system_params || {};
  const liveBadge = p.active ? el('span', { class: 'badge live', text: 'running' }) : null;
  root.append(
    el('div', { class: 'run-head' }, title, liveBadge),
    message,
    el('section', { class: 'card' }, el('h2', { text: 'Overview' }), propsTable),
    el('section', { class: 'card' }, el('h2', { text: 'Edit' }),
      el('label', { class: 'field' }, 'Name', nameInput), el('label', { class: 'field' }, 'Description', descInput),
      el('label', { class: 'field' }, 'Tags', tagsInput),
      el('div', { class: 'toolbar' }, save, archive, del, readOnly ? el('span', { class: 'muted', text: 'read-only server' }) : null)),
    el('section', { class: 'card' }, el('h2', { text: 'Params' }), el('div', { id: 'run-params' }, paramsTree(info.params))),
    el('section', { class: 'card' }, el('h2', { text: 'Metrics' }), metricsGrid),
    el('section', { class: 'card' }, el('h2', { text: 'System metrics' }), systemGrid),
    el('section', { class: 'card' }, el('h2', { text: 'Terminal logs' }), logs),
    el('section', { class: 'card' }, el('h2', { text: 'Environment and git' }),
      Object.keys(sys).length ? paramsTree(sys) : el('p', { class: 'muted', text: 'Nothing captured (track with log_system_params=True).' })));

  const small = new Map(); // series key -> {chart, line, caption}
  let until = null;
  const keyOf = (s) => `${s.name}|${JSON.stringify(s.context)}`;
  const caption = (line) => `last ${formatNumber(line.y[line.y.length - 1])} at step ${line.x[line.x.length - 1]}`;
  try {
    const data = await getSeries({ runs: runHash, width: 300, max_series: 1000 });
    until = data.until;
    for (const s of data.series) {
      const target = s.name.startsWith('__system__') ? systemGrid : metricsGrid;
      const line = { x: s.x, y: s.y, color: PALETTE[0] };
      const note = el('div', { class: 'muted', text: s.n ? caption(line) : 'no points yet' });
      const box = el('div', { class: 'small-chart' }, el('h4', { text: seriesLabel(s) }), note);
      target.append(box);
      const chart = new LineChart(box, { height: 160, tooltip: (hit) => [`step ${hit.x}`, `value ${formatNumber(hit.y)}`] });
      chart.setData({ lines: [line] });
      small.set(keyOf(s), { chart, line, note });
    }
    if (!metricsGrid.children.length) metricsGrid.append(el('p', { class: 'muted', text: 'No metrics tracked.' }));
    if (!systemGrid.children.length) systemGrid.append(el('p', { class: 'muted', text: 'No system metrics.' }));
  } catch (e) { metricsGrid.append(errorBox(e)); }

  let nextLine = 0;
  async function loadLogs() {
    try {
      const page = await getJSON(`/api/runs/${encodeURIComponent(runHash)}/logs`, { since_line: nextLine });
      if (page.lines.length) logs.append(document.createTextNode(page.lines.join('\n') + '\n'));
      nextLine = page.next_line;
      if (!logs.textContent) logs.textContent = '(no terminal output captured)';
    } catch (e) { logs.textContent = e.message; }
  }
  // While the run is written, append only the points written since the last answer.
  async function loadNewPoints() {
    if (until === null || until === undefined) return;
    try {
      const fresh = await getSeries({ runs: runHash, since: until, width: 300 });
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
  }
  // images, texts, audio, distributions and figures: a tab per kind the run has
  const objectsCard = el('section', { class: 'card', id: 'run-objects', hidden: true });
  metricsGrid.parentNode.after(objectsCard);
  const objectsDone = await mountRunObjects(objectsCard, runHash).catch((e) => {
    objectsCard.hidden = false; objectsCard.append(errorBox(e)); return null;
  });
  // log records (run.log_info ...) and artifacts
  const recordsCard = el('section', { class: 'card', id: 'run-records' });
  const artifactsCard = el('section', { class: 'card', id: 'run-artifacts-card' });
  logs.parentNode.after(recordsCard, artifactsCard);
  const loadRecords = await mountRunRecords(recordsCard, artifactsCard, runHash)
    .catch((e) => { recordsCard.append(errorBox(e)); return async () => {}; });
  // Every 3 s while the run is written; once it has finished, one last read (what was
  // written between the previous tick and the close) and no more requests.
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      let active = true;
      try {
        active = (await getJSON('/api/runs/active')).runs.some((r) => r.hash === runHash);
      } catch (_) { /* unknown: keep polling */ }
      await Promise.all([loadLogs(), loadNewPoints(), loadRecords()]);
      if (active || timer === null) return;
      clearInterval(timer); timer = null;
      if (liveBadge) liveBadge.remove();
      try { info = await getJSON(`/api/runs/${encodeURIComponent(runHash)}`); } catch (_) { info.props.active = false; }
      renderProps();
    } finally { polling = false; }
  }
  await loadLogs();
  if (p.active) timer = setInterval(poll, 3000);
  root.dataset.ready = '1';
  return () => { clearInterval(timer); if (objectsDone) objectsDone(); };
}
