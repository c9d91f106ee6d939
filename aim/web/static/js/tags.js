// Tags as coloured chips (the runs table, the run page) and the repository's tag list
// (GET /api/tags: name, run count, colour, description). Names go in as text.

import { el } from './dom.js';
import { getJSON } from './api.js';

// name -> {name, runs, color, description}
export async function loadTags() {
  const list = await getJSON('/api/tags');
  return new Map(list.map((t) => [t.name, t]));
}

// Black or white text, whichever reads better on the colour.
function textOn(hex) {
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? '#111' : '#fff';
}

export function paintChip(chip, tag) {
  const color = tag && /^#[0-9a-f]{6}$/i.test(tag.color || '') ? tag.color : null;
  chip.style.background = color || '';
  chip.style.color = color ? textOn(color) : '';
  chip.dataset.color = color || '';
  chip.title = (tag && tag.description) || '';
}

// A chip for `name`; `onRemove` adds a × button that calls it.
export function tagChip(name, tags, { onRemove } = {}) {
  const chip = el('span', { class: 'tag', dataset: { tag: name } }, el('span', { class: 'tag-name', text: name }));
  if (onRemove) {
    chip.append(el('button', { type: 'button', class: 'tag-remove', 'aria-label': `remove tag ${name}`, text: '×', onclick: onRemove }));
  }
  paintChip(chip, tags && tags.get(name));
  return chip;
}

// Repaint every chip under `root` from the tag list (colours arrive after the chips).
export function paintChips(root, tags) {
  for (const chip of root.querySelectorAll('.tag[data-tag]')) paintChip(chip, tags.get(chip.dataset.tag));
}
