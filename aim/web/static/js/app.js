// Client-side routing between the pages; each page module exports mount(root, route)
// and may return a cleanup function (timers, listeners) run when leaving the page.

import { clear, el, errorBox } from './dom.js';
import { getJSON } from './api.js';
import { installSaveView } from './save_view.js';

// [path pattern, page name, title, module]; the run page titles itself with the run's name.
const PAGES = [
  [/^\/(runs)?\/?$/, 'runs', 'Runs', () => import('./pages/runs.js')],
  [/^\/runs\/([^/]+)\/?$/, 'run', 'Run', () => import('./pages/run.js')],
  [/^\/metrics\/?$/, 'metrics', 'Metrics', () => import('./pages/metrics.js')],
  [/^\/params\/?$/, 'params', 'Params', () => import('./pages/params.js')],
  [/^\/live\/?$/, 'live', 'Live', () => import('./pages/live.js')],
  [/^\/images\/?$/, 'images', 'Images', () => import('./pages/images.js')],
  [/^\/texts\/?$/, 'texts', 'Texts', () => import('./pages/texts.js')],
  [/^\/audios\/?$/, 'audios', 'Audio', () => import('./pages/audios.js')],
  [/^\/distributions\/?$/, 'distributions', 'Distributions', () => import('./pages/distributions.js')],
  [/^\/figures\/?$/, 'figures', 'Figures', () => import('./pages/figures.js')],
  [/^\/experiments\/?$/, 'experiments', 'Experiments', () => import('./pages/experiments.js')],
  [/^\/compare\/?$/, 'compare', 'Compare runs', () => import('./pages/compare.js')],
  [/^\/scatters\/?$/, 'scatters', 'Scatters', () => import('./pages/scatters.js')],
  [/^\/views\/?$/, 'views', 'Saved views', () => import('./pages/views.js')],
];
// Pages that show nothing at all in a repository without runs: they say how to start instead.
const NEEDS_RUNS = new Set(['runs', 'metrics', 'experiments', 'scatters']);

let cleanup = null;
export const server = { readOnly: false };
let renders = 0;  // a navigation during a page's loading makes that loading stale

// `Runs · aim`; the tab, history and bookmarks tell pages apart.
export function setTitle(text) {
  document.title = text ? `${text} · aim` : 'aim';
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', url); else history.pushState(null, '', url);
  render();
}

// Updates the URL's query string without leaving the page (explorer state for sharing).
export function setUrlState(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    search.set(k, String(v));
  }
  const text = search.toString();
  history.replaceState(null, '', location.pathname + (text ? `?${text}` : ''));
}

async function render() {
  if (cleanup) { try { cleanup(); } catch (_) { /* ignore */ } cleanup = null; }
  saveView.close();
  const mine = ++renders;
  refocusSort = null;
  const root = clear(document.getElementById('page'));
  for (const key of Object.keys(root.dataset)) delete root.dataset[key];  // e.g. data-ready
  const path = location.pathname;
  for (const [pattern, name, title, load] of PAGES) {
    const m = path.match(pattern);
    if (!m) continue;
    document.querySelectorAll('.topbar a[data-page]').forEach((a) => a.classList.toggle('current',
      a.dataset.page === name || (name === 'run' && a.dataset.page === 'runs')));
    document.body.dataset.page = name;
    setTitle(title);
    try {
      const [page, status] = await Promise.all([load(),
        NEEDS_RUNS.has(name) ? getJSON('/api/status').catch(() => null) : null]);
      if (mine !== renders) return;
      if (status && status.total_runs === 0) { cleanup = gettingStarted(root, status); return; }
      cleanup = (await page.mount(root, { params: m.slice(1).map(decodeURIComponent),
        query: new URLSearchParams(location.search) })) || null;
    } catch (e) {
      root.appendChild(errorBox(e));
    }
    return;
  }
  document.querySelectorAll('.topbar a[data-page]').forEach((a) => a.classList.remove('current'));
  document.body.dataset.page = 'not-found';
  notFound(root, path);
}

// The server answers unknown paths with this page and a 404 (aim/web/static_files.py).
function notFound(root, path) {
  setTitle('Page not found');
  root.append(el('section', { class: 'not-found' },
    el('h1', { text: 'Page not found' }),
    el('p', {}, 'There is no page at ', el('code', { text: path }), '.'),
    el('p', {}, el('a', { href: '/runs', 'data-nav': true, text: 'Back to the runs' }),
      ' or pick a page from the bar above.')));
  root.dataset.ready = '1';
}

// An empty repository: how to track a first run; the page draws itself once one exists.
function gettingStarted(root, status) {
  root.append(el('section', { class: 'card getting-started' },
    el('h1', { text: 'No runs yet' }),
    el('p', {}, 'This repository', status.repo ? el('span', {}, ' (', el('code', { text: status.repo }), ')') : null,
      ' has no runs. Track one from Python, started in the folder that holds the repository:'),
    el('pre', {}, el('code', { text: "from aim import Run\nRun().track(0.5, name='loss', step=0)" })),
    el('p', { class: 'muted', text: 'In a training loop keep the run (run = Run()) and call ' +
      'run.track(value, name=..., step=...) for each point. This page shows the run as soon as ' +
      'it is written.' })));
  root.dataset.ready = '1';
  const timer = setInterval(async () => {
    try {
      const now = await getJSON('/api/status');
      if (now.total_runs > 0 && root.isConnected) { clearInterval(timer); render(); }
    } catch (_) { /* the next tick tries again */ }
  }, 3000);
  return () => clearInterval(timer);
}

// Sortable headers (th.sortable, pages/runs.js) are reached with Tab and sort with Enter or
// Space. The table is redrawn after a sort, so the new header of that key takes the focus.
let refocusSort = null;
const pageRoot = document.getElementById('page');
new MutationObserver(() => {
  for (const th of pageRoot.querySelectorAll('th.sortable:not([tabindex])')) {
    th.tabIndex = 0;
    if (refocusSort !== null && th.dataset.sort === refocusSort &&
        (!document.activeElement || document.activeElement === document.body)) {
      th.focus();
      refocusSort = null;
    }
  }
}).observe(pageRoot, { childList: true, subtree: true });
document.addEventListener('keydown', (e) => {
  if ((e.key !== 'Enter' && e.key !== ' ') || e.altKey || e.ctrlKey || e.metaKey) return;
  const th = e.target instanceof Element && e.target.matches('th.sortable') ? e.target : null;
  if (!th) return;
  e.preventDefault();  // Space would scroll the page
  refocusSort = th.dataset.sort ?? null;
  th.click();
});

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', render);

// "Save view" in the top bar; the views page shows a view saved while it is open.
const saveButton = document.getElementById('save-view');
const saveView = installSaveView({ button: saveButton,
  onSaved: () => { if (document.body.dataset.page === 'views') render(); } });

getJSON('/api/status').then((s) => {
  server.readOnly = s.read_only;
  if (s.read_only) {
    saveButton.disabled = true;
    saveButton.title = 'read-only: this UI was started with --read-only, views cannot be saved';
  }
  document.getElementById('server-status').textContent =
    `${s.total_runs} runs${s.read_only ? ' · read-only' : ''}`;
}).catch(() => {});
render();
