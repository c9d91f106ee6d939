// Saved views (/views): pages saved with their settings by the top bar's "Save view"
// button, kept in the repository (/api/views). Open, rename or delete them.

import { el, errorBox } from '../dom.js';
import { getJSON, sendJSON } from '../api.js';
import { formatTime } from '../format.js';

function linkStylesheet() {
  if (document.getElementById('views-css')) return;
  document.head.appendChild(el('link', { id: 'views-css', rel: 'stylesheet', href: '/static/css/views.css' }));
}

export async function mount(root) {
  linkStylesheet();
  const info = el('span', { class: 'muted', id: 'views-count' });
  const status = el('div', { role: 'status' });
  const holder = el('div', { class: 'table-holder views-holder' });
  root.append(el('h1', { text: 'Saved views' }),
    el('p', { class: 'muted', text: 'A view is a page with its settings (query, axes, grouping …). Save one with "Save view" in the bar above; it is kept in the repository, for everyone who opens it.' }),
    el('div', { class: 'toolbar' }, info), status, holder);
  let views = []; let readOnly = false;

  async function load() {
    try {
      const answer = await getJSON('/api/views');
      views = answer.views; readOnly = answer.read_only;
    } catch (e) { status.replaceChildren(errorBox(e)); return; }
    draw();
  }

  async function change(method, view, body) {
    status.replaceChildren();
    try {
      await sendJSON(method, `/api/views/${encodeURIComponent(view.id)}`, body);
    } catch (e) { status.replaceChildren(errorBox(e)); return false; }
    await load();
    return true;
  }

  function actions(view, nameCell, actionsCell) {
    if (readOnly) return [];
    const rename = el('button', { type: 'button', class: 'view-rename-button', text: 'Rename', onclick: () => {
      const input = el('input', { type: 'text', class: 'view-rename', value: view.name, maxlength: 200, 'aria-label': 'new name' });
      const save = () => change('PATCH', view, { name: input.value });
      input.addEventListener('keydown', (e) => { if (e.key === 'Enter') save(); if (e.key === 'Escape') draw(); });
      nameCell.replaceChildren(input);
      actionsCell.replaceChildren(el('button', { type: 'button', class: 'primary view-rename-save', text: 'Save', onclick: save }),
        el('button', { type: 'button', text: 'Cancel', onclick: () => draw() }));
      input.focus(); input.select();
    } });
    const remove = el('button', { type: 'button', class: 'danger view-delete', text: 'Delete', onclick: () => {
      actionsCell.replaceChildren(el('button', { type: 'button', class: 'danger view-delete-confirm', text: 'Delete for good',
        onclick: () => change('DELETE', view) }),
      el('button', { type: 'button', text: 'Keep', onclick: () => draw() }));
    } });
    return [rename, remove];
  }

  function draw() {
    info.textContent = `${views.length} saved view${views.length === 1 ? '' : 's'}${readOnly ? ' · read-only: they cannot be changed here' : ''}`;
    if (!views.length) {
      holder.replaceChildren(el('p', { class: 'muted empty-note', text: 'No saved views yet.' }));
      root.dataset.ready = '1';
      return;
    }
    const rows = views.map((view) => {
      // the server accepts only paths of this UI's pages; a value written into the
      // repository by other means that is not one shows as text, not as a link
      const path = String(view.path || '');
      const ours = path.startsWith('/') && !path.startsWith('//') && !path.includes('\\');
      const nameCell = el('td', { class: 'view-name' }, ours
        ? el('a', { href: path, 'data-nav': true, class: 'view-open', text: view.name })
        : el('span', { class: 'view-open', text: view.name }));
      const actionsCell = el('td', { class: 'view-actions' });
      actionsCell.append(...actions(view, nameCell, actionsCell));
      return el('tr', { class: 'view-row', dataset: { id: view.id } }, nameCell,
        el('td', { class: 'view-description', text: view.description || '' }),
        el('td', { class: 'view-path', title: view.path, text: view.path }),
        el('td', { class: 'view-time', text: formatTime(view.updated || view.created) }), actionsCell);
    });
    holder.replaceChildren(el('table', { class: 'views-table', id: 'views-table' },
      el('thead', {}, el('tr', {}, ...['Name', 'Description', 'Page', 'Saved', ''].map((h) => el('th', { text: h })))),
      el('tbody', {}, rows)));
    root.dataset.ready = '1';
  }

  await load();
  return null;
}
