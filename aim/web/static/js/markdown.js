// A small, safe markdown renderer for run notes: headings, paragraphs, lists (- * + and
// 1.), block quotes, rules, fenced and inline code, **strong**, *emphasis*, and links whose
// address is http:// or https://. It builds DOM nodes and puts every piece of text in as
// a text node, so markup in the notes (<script>, <img onerror>) is shown, never run; a
// link with any other scheme (javascript:, data:) is shown as its text.

import { el } from './dom.js';

const ESCAPABLE = /[\\`*_[\]()#+\-.!>~|{}]/;

// The address of a link, or null when it is not plain http(s).
export function safeHref(url) {
  const text = String(url || '').trim();
  if (!/^https?:\/\//i.test(text)) return null;
  try {
    const parsed = new URL(text);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch (_) { return null; }
}

// Where the closing `marker` of a span opened at `from` is (or -1): not right after the
// opening, and not preceded by a space, as CommonMark asks of emphasis.
function closing(text, marker, from) {
  let i = from;
  while (i < text.length) {
    const j = text.indexOf(marker, i);
    if (j < 0) return -1;
    if (j > from && text[j - 1] !== ' ' && text[j - 1] !== '\\') return j;
    i = j + 1;
  }
  return -1;
}

// The ']' matching the '[' at `open` (nested brackets counted), or -1.
function matchingBracket(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '\\') { i++; continue; }
    if (text[i] === '[') depth++;
    else if (text[i] === ']' && --depth === 0) return i;
  }
  return -1;
}

// The ')' matching the '(' at `open` (an address may hold balanced parentheses), or -1.
function matchingParen(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

const WORD = /[\p{L}\p{N}_]/u;

export function renderInline(text) {
  const out = [];
  let buf = '';
  const flush = () => { if (buf) { out.push(document.createTextNode(buf)); buf = ''; } };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length && ESCAPABLE.test(text[i + 1])) { buf += text[i + 1]; i += 2; continue; }
    if (c === '`') {
      let ticks = 1; while (text[i + ticks] === '`') ticks++;
      const fence = '`'.repeat(ticks);
      const end = text.indexOf(fence, i + ticks);
      if (end > i) {
        flush();
        out.push(el('code', { text: text.slice(i + ticks, end).replace(/^ (.*) $/, '$1') }));
        i = end + ticks; continue;
      }
      buf += fence; i += ticks; continue;
    }
    const two = text.slice(i, i + 2);
    // underscores never open or close inside a word (snake_case, __dunder__ stay text)
    const wordBefore = i > 0 && WORD.test(text[i - 1]);
    if (two === '**' || (two === '__' && !wordBefore)) {
      const end = closing(text, two, i + 2);
      if (end > i + 2 && text[i + 2] !== ' ' && (two === '**' || !WORD.test(text[end + 2] || ''))) {
        flush(); out.push(el('strong', {}, renderInline(text.slice(i + 2, end)))); i = end + 2; continue;
      }
    }
    if ((c === '*' || c === '_') && text[i + 1] !== c && text[i + 1] !== ' ' && text[i + 1] !== undefined
        && (c === '*' || !wordBefore)) {
      const end = closing(text, c, i + 1);
      if (end > i + 1 && (c === '*' || !WORD.test(text[end + 1] || ''))) {
        flush(); out.push(el('em', {}, renderInline(text.slice(i + 1, end)))); i = end + 1; continue;
      }
    }
    if (c === '[') {
      const close = matchingBracket(text, i);
      if (close > i && text[close + 1] === '(') {
        const end = matchingParen(text, close + 1);
        if (end > close) {
          const label = text.slice(i + 1, close);
          const href = safeHref(text.slice(close + 2, end).trim().split(/\s+/)[0]);
          flush();
          if (href) {
            out.push(el('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, renderInline(label)));
          } else {
            out.push(...renderInline(label));   // an address we do not follow: the text alone
          }
          i = end + 1; continue;
        }
      }
    }
    buf += c; i += 1;
  }
  flush();
  return out;
}

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const FENCE = /^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;

// Block structure of the text -> a DocumentFragment.
export function renderMarkdown(source) {
  const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
  const fragment = document.createDocumentFragment();
  let i = 0;
  const isBlank = (l) => !l || !l.trim();
  const startsBlock = (l) => HEADING.test(l) || BULLET.test(l) || ORDERED.test(l) || RULE.test(l)
    || FENCE.test(l) || QUOTE.test(l);
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) { i++; continue; }
    let m = line.match(FENCE);
    if (m) {
      const body = [];
      i++;
      while (i < lines.length && !(lines[i].trim().startsWith(m[1]) && lines[i].trim().replace(/[`~]/g, '') === '')) body.push(lines[i++]);
      i++;   // the closing fence (or the end)
      fragment.append(el('pre', {}, el('code', { text: body.join('\n'), dataset: m[2] ? { lang: m[2] } : undefined })));
      continue;
    }
    m = line.match(HEADING);
    if (m) { fragment.append(el(`h${m[1].length}`, {}, renderInline(m[2]))); i++; continue; }
    if (RULE.test(line)) { fragment.append(el('hr')); i++; continue; }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].match(QUOTE)[1]);
      fragment.append(el('blockquote', {}, renderMarkdown(body.join('\n'))));
      continue;
    }
    const bullet = BULLET.test(line);
    if (bullet || ORDERED.test(line)) {
      const pattern = bullet ? BULLET : ORDERED;
      const first = line.match(ORDERED);
      const list = el(bullet ? 'ul' : 'ol', { start: !bullet && first && first[1] !== '1' ? Number(first[1]) : undefined });
      while (i < lines.length && pattern.test(lines[i])) {
        const parts = lines[i].match(pattern);
        let text = bullet ? parts[1] : parts[2];
        i++;
        // lazy continuation: indented lines that start no block belong to the item
        while (i < lines.length && !isBlank(lines[i]) && /^\s{2,}/.test(lines[i]) && !pattern.test(lines[i])) text += ` ${lines[i++].trim()}`;
        list.append(el('li', {}, renderInline(text)));
      }
      fragment.append(list);
      continue;
    }
    const para = [line.trim()];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i])) para.push(lines[i++].trim());
    const p = el('p');
    para.forEach((text, k) => {
      if (k) p.append(el('br'));
      p.append(...renderInline(text));
    });
    fragment.append(p);
  }
  return fragment;
}
