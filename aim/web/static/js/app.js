// Client-side routing between the pages; each page module exports mount(root, route)
// and may return a cleanup function (timers, listeners) run when leaving the page.

import { clear, errorBox } from './dom.js';
import { getJSON } from './api.js';

const PAGES = [
  [/^\/(runs)?\/?$/, 'runs', () => import('./pages/runs.js')],
  [/^\/runs\/([^/]+)\/?$/, 'run', () => import('./pages/run.js')],
  [/^\/metrics\/?$/, 'metrics', () => import('./pages/metrics.js')],
  [/^\/params\/?$/, 'params', () => import('./pages/params.js')],
  [/^\/live\/?$/, 'live', () => import('./pages/live.js')],
  [/^\/images\/?$/, 'images', () => import('./pages/images.js')],
  [/^\/texts\/?$/, 'texts', () => import('./pages/texts.js')],
  [/^\/audios\/?$/, 'audios', () => import('./pages/audios.js')],
  [/^\/distributions\/?$/, 'distributions', () => import('./pages/distributions.js')],
  [/^\/figures\/?$/, 'figures', () => import('./pages/figures.js')],
];

let cleanup = null;
export const server = { readOnly: false };

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
  const root = clear(document.getElementById('page'));
  for (const key of Object.keys(root.dataset)) delete root.dataset[key];  // e.g. data-ready
  const path = location.pathname;
  for (const [pattern, name, load] of PAGES) {
    const m = path.match(pattern);
    if (!m) continue;
    document.querySelectorAll('nav a[data-page]').forEach((a) => a.classList.toggle('current',
      a.dataset.page === name || (name === 'run' && a.dataset.page === 'runs')));
    document.body.dataset.page = name;
    try {
      const page = await load();
      cleanup = (await page.mount(root, { params: m.slice(1).map(decodeURIComponent),
        query: new URLSearchParams(location.search) })) || null;
    } catch (e) {
      root.appendChild(errorBox(e));
    }
    return;
  }
  root.appendChild(errorBox(`No page at ${path}. Pick one from the bar above.`));
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', render);

getJSON('/api/status').then((s) => {
  server.readOnly = s.read_only;
  document.getElementById('server-status').textContent =
    `${s.total_runs} runs${s.read_only ? ' · read-only' : ''}`;
}).catch(() => {});
render();
