// The run page's "Log records" and "Artifacts" cards: what run.log_info() & co. recorded
// (level, time, message, extra fields) and where run.log_artifact() copied files. Every
// string goes in as text (el's `text`), never as markup.

import { el, clear, errorBox } from './dom.js';
import { getJSON } from './api.js';
import { formatTime, formatValue } from './format.js';

const LEVEL_CLASS = { DEBUG: 'muted', INFO: '', WARNING: 'warn', ERROR: 'error', CRITICAL: 'error' };

function recordsTable(records, total) {
  if (!records.length) return el('p', { class: 'muted', text: 'No log records: run.log_info(...), log_warning, log_error and log_debug add them.' });
  const rows = records.map((r) => el('tr', { class: `level-${(r.level_name || '').toLowerCase()}` },
    el('td', { text: formatTime(r.timestamp) }),
    el('td', { class: LEVEL_CLASS[r.level_name] || '', text: r.level_name || String(r.log_level) }),
    el('td', { class: 'record-message', text: r.message }),
    el('td', { class: 'muted', text: Object.entries(r.kwargs || {}).map(([k, v]) => `${k}=${formatValue(v)}`).join(', ') })));
  const note = total > records.length
    ? el('p', { class: 'muted', text: `The newest ${records.length} of ${total} records.` }) : null;
  return el('div', { class: 'table-scroll' },
    el('table', { class: 'records', id: 'run-log-records' },
      el('thead', {}, el('tr', {}, ...['Time', 'Level', 'Message', 'Fields'].map((t) => el('th', { text: t })))),
      el('tbody', {}, ...rows)), note);
}

function artifactsTable(artifacts, runHash) {
  if (!artifacts.length) return el('p', { class: 'muted', text: 'No artifacts: run.set_artifacts_uri(...) then run.log_artifact(path) adds them.' });
  return el('div', { class: 'table-scroll' },
    el('table', { class: 'artifacts', id: 'run-artifacts' },
      el('thead', {}, el('tr', {}, ...['Name', 'Stored at', 'Logged from'].map((t) => el('th', { text: t })))),
      el('tbody', {}, ...artifacts.map((a) => el('tr', {},
        el('td', {}, a.downloadable
          ? el('a', { href: `/api/runs/${encodeURIComponent(runHash)}/artifacts/${a.name.split('/').map(encodeURIComponent).join('/')}`, download: a.name.split('/').pop(), text: a.name })
          : el('span', { text: a.name })),
        el('td', {}, el('code', { text: a.uri })),
        el('td', { class: 'muted', text: a.path || '' }))))),
    el('p', { class: 'muted', text: artifacts.some((a) => a.downloadable)
      ? 'Click a name to download it.'
      : 'Copy them back with Repo(...).get_run(hash).artifacts[name].download(dir); `aim up --artifacts-root URI` lets this page serve them.' }));
}

// Fill `recordsCard` and `artifactsCard` (sections the run page made); returns a function
// that reads them again (the run page calls it while the run is live).
export async function mountRunRecords(recordsCard, artifactsCard, runHash) {
  const recordsBody = el('div');
  const artifactsBody = el('div');
  recordsCard.append(el('h2', { text: 'Log records' }), recordsBody);
  artifactsCard.append(el('h2', { text: 'Artifacts' }), artifactsBody);
  async function refresh() {
    let doc;
    try { doc = await getJSON(`/api/runs/${encodeURIComponent(runHash)}/records`); } catch (e) {
      clear(recordsBody); recordsBody.append(errorBox(e)); return;
    }
    clear(recordsBody); recordsBody.append(recordsTable(doc.log_records || [], doc.log_records_total || 0));
    clear(artifactsBody); artifactsBody.append(artifactsTable(doc.artifacts || [], runHash));
    if (doc.successful_finish) artifactsCard.dataset.finished = 'true';
  }
  await refresh();
  return refresh;
}
