// The top bar's "Save view" button: saves the current page with its settings (path and
// query string) under a name, in the repository (POST /api/views). The saved views are
// listed on /views.

import { el } from './dom.js';
import { sendJSON } from './api.js';

export function installSaveView({ button, onSaved }) {
  const name = el('input', { type: 'text', id: 'save-view-name', maxlength: 200, required: true, 'aria-label': 'view name', placeholder: 'name' });
  const description = el('textarea', { id: 'save-view-description', rows: 2, maxlength: 2000, 'aria-label': 'description', placeholder: 'description (optional)' });
  const where = el('div', { class: 'save-view-where' });
  const status = el('div', { class: 'save-view-status', id: 'save-view-status', role: 'status' });
  const save = el('button', { type: 'submit', class: 'primary', id: 'save-view-submit', text: 'Save' });
  const panel = el('form', { class: 'save-view-panel', id: 'save-view-panel', hidden: true,
    onsubmit: (e) => { e.preventDefault(); submit(); } },
  el('strong', { text: 'Save this view' }), where, name, description,
  el('div', { class: 'save-view-buttons' }, save, el('button', { type: 'button', text: 'Close', onclick: () => close() })), status);
  button.after(panel);

  const current = () => location.pathname + location.search;
  function open() {
    panel.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    where.replaceChildren(el('code', { text: current() }));
    status.textContent = ''; status.className = 'save-view-status';
    name.value = document.title.replace(/ · aim$/, '');
    description.value = '';
    name.focus(); name.select();
  }
  function close() {
    panel.hidden = true;
    button.setAttribute('aria-expanded', 'false');
  }
  async function submit() {
    save.disabled = true;
    try {
      const view = await sendJSON('POST', '/api/views', { name: name.value, description: description.value, path: current() });
      status.className = 'save-view-status';
      status.replaceChildren(`Saved as “${view.name}”. `, el('a', { href: '/views', 'data-nav': true, text: 'All views' }));
      if (onSaved) onSaved(view);
    } catch (e) {
      status.className = 'save-view-status error';
      status.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  }
  button.setAttribute('aria-expanded', 'false');
  button.addEventListener('click', () => (panel.hidden ? open() : close()));
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !panel.hidden) close(); });
  document.addEventListener('click', (e) => {
    if (!panel.hidden && !panel.contains(e.target) && e.target !== button) close();
  });
  return { close };
}
