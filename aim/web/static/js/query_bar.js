// The query bar: a text input with completion of param names and props, and an error line
// that points at the position the server reported.

import { el } from './dom.js';

const RUN_PROPS = ['run.name', 'run.hash', 'run.experiment', 'run.tags', 'run.archived',
  'run.active', 'run.description', 'run.creation_time'];
const METRIC_WORDS = ['metric.name', 'metric.context', 'metric.last', 'metric.last_step'];

export class QueryBar {
  constructor({ value = '', placeholder = '', onSubmit, withMetric = false }) {
    this.onSubmit = onSubmit;
    this.words = [...RUN_PROPS, ...(withMetric ? METRIC_WORDS : [])];
    this.input = el('input', { type: 'text', class: 'query-input', placeholder, spellcheck: 'false',
      autocomplete: 'off', 'aria-label': 'query' });
    this.input.value = value;
    this.menu = el('ul', { class: 'completion', hidden: true, role: 'listbox' });
    this.errorLine = el('div', { class: 'query-error', hidden: true, role: 'alert' });
    this.button = el('button', { class: 'primary', text: 'Search', onclick: () => this.submit() });
    this.root = el('div', { class: 'query-bar' },
      el('div', { class: 'query-field' }, this.input, this.menu), this.button, this.errorLine);
    this.active = -1;
    this.input.addEventListener('input', () => this.complete());
    this.input.addEventListener('keydown', (e) => this.onKey(e));
    this.input.addEventListener('blur', () => setTimeout(() => { this.menu.hidden = true; }, 150));
  }

  setParamNames(paths) {
    this.words = [...new Set([...this.words, ...paths.map((p) => `run.${p}`)])];
  }

  get value() { return this.input.value; }
  set value(v) { this.input.value = v; }

  currentWord() {
    const pos = this.input.selectionStart ?? this.input.value.length;
    const before = this.input.value.slice(0, pos);
    const m = before.match(/[A-Za-z_][\w.]*$/);
    return m ? { text: m[0], start: pos - m[0].length, end: pos } : null;
  }

  complete() {
    const word = this.currentWord();
    const items = word && word.text.length >= 1
      ? this.words.filter((w) => w.startsWith(word.text) && w !== word.text).slice(0, 12) : [];
    this.active = -1;
    this.menu.replaceChildren(...items.map((w) => el('li', {
      text: w, role: 'option', onmousedown: (e) => { e.preventDefault(); this.accept(w); },
    })));
    this.menu.hidden = items.length === 0;
  }

  accept(word) {
    const cur = this.currentWord();
    if (!cur) return;
    const v = this.input.value;
    this.input.value = v.slice(0, cur.start) + word + v.slice(cur.end);
    const pos = cur.start + word.length;
    this.input.setSelectionRange(pos, pos);
    this.menu.hidden = true;
    this.input.focus();
  }

  onKey(e) {
    const items = [...this.menu.children];
    if (!this.menu.hidden && items.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.active = (this.active + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length;
        items.forEach((li, i) => li.classList.toggle('active', i === this.active));
        return;
      }
      if ((e.key === 'Tab' || e.key === 'Enter') && this.active >= 0) {
        e.preventDefault(); this.accept(items[this.active].textContent); return;
      }
      if (e.key === 'Escape') { this.menu.hidden = true; return; }
    }
    if (e.key === 'Enter') { e.preventDefault(); this.submit(); }
  }

  submit() { this.menu.hidden = true; this.showError(null); this.onSubmit(this.input.value); }

  showError(error) {
    if (!error) { this.errorLine.hidden = true; this.input.classList.remove('invalid'); return; }
    const pos = error.detail && Number.isInteger(error.detail.position) ? error.detail.position : null;
    const reason = (error.detail && error.detail.reason) || error.message;
    this.errorLine.replaceChildren(el('pre', { text: pos !== null
      ? `${this.input.value}\n${' '.repeat(pos)}^\n${reason}` : reason }),
    error.detail && error.detail.hint ? el('div', { class: 'muted', text: error.detail.hint }) : null);
    this.errorLine.hidden = false;
    this.input.classList.add('invalid');
    if (pos !== null) { this.input.focus(); this.input.setSelectionRange(pos, pos); }
  }
}
