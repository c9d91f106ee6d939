// A canvas line chart built for many series: one path per line on a base canvas, hover
// and zoom drawn on an overlay canvas so moving the mouse never redraws the lines. The
// chart follows its box's width (ResizeObserver) and draws at devicePixelRatio.
//
// Options: height, logY, logX, xAxis, tooltip(hit) -> rows, onZoom(x0, x1[, y0, y1]) (a
// drag zooms x; a drag that also spans 10 px or more vertically is a rectangle and gives
// the y range too), onCursor(x | null) (the data x under the mouse, null once it leaves),
// robustY (the y range from the 2nd-98th percentiles of the visible points: a spike is
// clipped instead of flattening the rest), label (names the chart to screen readers).
// setData takes lines, bands, xRange and yRange.
//
// Keyboard: the overlay canvas takes focus (Tab, or a click); then + or = zooms x in around
// the mouse's x (the middle when the mouse is off the plot), - zooms out, Left / Right pan
// x, Up / Down (with or without Shift) zoom y in / out, 0 resets. These go through zoomTo,
// as a drag does: a page's onZoom sees the same calls.

import { el } from './dom.js';
import { formatNumber, formatTime } from './format.js';

const PAD = { left: 64, right: 16, top: 12, bottom: 30 };
const DASHES = { solid: [], dashed: [6, 4], dotted: [2, 3], dashdot: [8, 3, 2, 3] };

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// Log-axis ticks over [lo, hi] given in log10 units: powers of ten (every k-th one when
// there are too many), with 2 and 5 between them when the range spans few decades.
export function logTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const first = Math.ceil(lo - 1e-9); const last = Math.floor(hi + 1e-9);
  const decades = last - first + 1;
  const out = [];
  // three marks a decade fit when the span times three is about the ticks room allows
  if (decades <= 1 || (hi - lo) * 3 <= count * 1.25) {
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
      for (const m of [1, 2, 5]) {
        const t = e + Math.log10(m);
        if (t >= lo - 1e-9 && t <= hi + 1e-9) out.push(t);
      }
    }
    if (out.length >= 2) return out;
    // less than a decade without a 1-2-5 mark inside: linear ticks between
    return ticks(Math.pow(10, lo), Math.pow(10, hi), count).filter((v) => v > 0).map(Math.log10);
  }
  const every = Math.max(1, Math.ceil(decades / Math.max(2, count)));
  for (let e = first; e <= last; e++) if (e % every === 0) out.push(e);
  return out;
}

// 1e-4, 0.001, 0.01, 0.1, 1, 2, 5, 10, 100, 1k, 20k, 1M, 1e9: short and exact at the ticks.
export function formatLogTick(v) {
  if (!Number.isFinite(v) || v === 0) return String(v);
  const a = Math.abs(v);
  const clean = (x) => String(Number(x.toPrecision(3)));
  if (a >= 1e9 || a < 1e-3) {
    const e = Math.floor(Math.log10(a) + 1e-9);
    const m = Number((v / Math.pow(10, e)).toPrecision(3));
    return `${m}e${e}`;
  }
  if (a >= 1e6) return `${clean(v / 1e6)}M`;
  if (a >= 1e3) return `${clean(v / 1e3)}k`;
  return clean(v);
}

function lowerBound(arr, v) {
  let lo = 0; let hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < v) lo = mid + 1; else hi = mid; }
  return lo;
}

let sheetLinked = false;
function linkSheet() {
  // The page's CSP allows no inline <style>: the chart rules live in a same-origin sheet.
  if (sheetLinked || document.querySelector('link[href="/static/css/charts.css"]')) { sheetLinked = true; return; }
  document.head.appendChild(el('link', { rel: 'stylesheet', href: '/static/css/charts.css' }));
  sheetLinked = true;
}

// Where the y range of robustY comes from: at most this many visible points (strided).
const ROBUST_SAMPLE = 20000;
const RECT_MIN_PX = 10;
const KEY_ZOOM = 0.5;   // + halves the visible span (around the anchor), - doubles it
const KEY_PAN = 0.2;    // Left / Right move the x range by a fifth of its span
const KEYS_HELP = 'keys: + and - zoom x, Left and Right pan x, Shift+Up and Shift+Down zoom y, 0 resets the zoom';

const finite = (v) => v === v && v !== Infinity && v !== -Infinity;
const nonFiniteName = (v) => (v !== v ? 'NaN' : v > 0 ? '+inf' : '-inf');

export class LineChart {
  constructor(container, options = {}) {
    linkSheet();
    this.options = { height: 320, logY: false, logX: false, xAxis: 'step', ...options };
    this.root = el('div', { class: 'chart', style: { height: `${this.options.height}px` } });
    this.base = el('canvas', { class: 'chart-base' });
    this.overlay = el('canvas', { class: 'chart-overlay' });
    this.tip = el('div', { class: 'chart-tooltip', hidden: true });
    this.root.append(this.base, this.overlay, this.tip);
    container.appendChild(this.root);
    this.lines = []; this.bands = []; this.markers = []; this.dots = [];
    this.hover = null; this.drag = null; this.zoomRange = null; this.zoomY = null; this.pending = null;
    this.yRange = null;
    this.tickLabels = { x: [], y: [] };
    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => this.onLeave());
    this.overlay.addEventListener('mousedown', (e) => {
      const x = this.localX(e); const y = this.localY(e);
      this.drag = { x0: x, x1: x, y0: y, y1: y };
    });
    this.overlay.addEventListener('mouseup', (e) => this.onUp(e));
    this.overlay.addEventListener('dblclick', () => this.zoomTo(null, null));
    this.listenToTouch();
    this.listenToKeys();
    this.cursorX = null;  // a vertical rule at this data x (setCursor), e.g. another chart's
    // Redraw when the box's width changes (window resize, a sidebar, the grid reflowing)
    // or when the window moves to a screen of another pixel density.
    if (typeof ResizeObserver === 'function') {
      this.observer = new ResizeObserver(() => {
        if (!this.root.isConnected) { this.destroy(); return; }
        if (this.root.clientWidth !== this.measured || (window.devicePixelRatio || 1) !== this.dpr) this.draw();
      });
      this.observer.observe(this.root);
    }
  }

  destroy() {
    if (this.observer) { this.observer.disconnect(); this.observer = null; }
    if (this.pending) { cancelAnimationFrame(this.pending); this.pending = null; }
  }

  localX(e) { return e.clientX - this.overlay.getBoundingClientRect().left; }
  localY(e) { return e.clientY - this.overlay.getBoundingClientRect().top; }

  setData({ lines = [], bands = [], xRange = null, yRange = null } = {}) {
    this.lines = lines; this.bands = bands; this.xRange = xRange; this.yRange = yRange;
    this.hover = null;  // it pointed into the old lines: a tooltip must not outlive them
    this.asked = null;  // a key's zoom handed to onZoom has arrived (or was not taken)
    this.describe();
    this.draw();
  }

  setOptions(options) { Object.assign(this.options, options); }

  // Draws a vertical rule at data x (null: none) without redrawing the lines.
  setCursor(x) {
    if (x === this.cursorX) return;
    this.cursorX = x;
    this.drawOverlay();
  }

  yOf(v) { return this.options.logY ? (v > 0 ? Math.log10(v) : NaN) : v; }
  xOf(v) { return this.options.logX ? (v > 0 ? Math.log10(v) : NaN) : v; }

  bounds() {
    let xlo = Infinity; let xhi = -Infinity; let ylo = Infinity; let yhi = -Infinity;
    const logX = this.options.logX;
    const visit = (xs, ys) => {
      const n = xs.length;
      if (!n) return;
      if (logX) {
        for (let i = 0; i < n; i++) {
          const x = this.xOf(xs[i]);
          if (x < xlo) xlo = x;
          if (x > xhi) xhi = x;
        }
      } else {
        if (xs[0] < xlo) xlo = xs[0];
        if (xs[n - 1] > xhi) xhi = xs[n - 1];
      }
      for (let i = 0; i < n; i++) {
        const v = this.yOf(ys[i]);
        if (v < ylo && v > -Infinity) ylo = v;
        if (v > yhi && v < Infinity) yhi = v;
      }
    };
    for (const line of this.lines) visit(line.x, line.y);
    for (const band of this.bands) { visit(band.x, band.lo); visit(band.x, band.hi); }
    const range = this.zoomRange || this.xRange;
    let xRanged = false;
    if (range && range[0] !== null && range[1] !== null) {
      const a = this.xOf(range[0]); const b = this.xOf(range[1]);
      if (finite(a) && finite(b)) { [xlo, xhi] = [a, b]; xRanged = true; }
    }
    if (!Number.isFinite(xlo)) { xlo = 0; xhi = 1; }
    if (this.options.robustY && Number.isFinite(ylo)) {
      const r = this.robustRange(xRanged ? xlo : -Infinity, xRanged ? xhi : Infinity);
      if (r) { ylo = Math.max(ylo, r[0]); yhi = Math.min(yhi, r[1]); }
    }
    if (!Number.isFinite(ylo)) { ylo = 0; yhi = 1; }
    if (xhi === xlo) { xlo -= 0.5; xhi += 0.5; }
    if (yhi === ylo) { ylo -= 0.5; yhi += 0.5; }
    const pad = (yhi - ylo) * 0.04;
    const yr = this.zoomY || this.yRange;
    if (yr && yr[0] !== null && yr[1] !== null) {
      const a = this.yOf(yr[0]); const b = this.yOf(yr[1]);
      if (finite(a) && finite(b) && b > a) return { xlo, xhi, ylo: a, yhi: b };
    }
    return { xlo, xhi, ylo: ylo - pad, yhi: yhi + pad };
  }

  // The y range that ignores outliers: the 2nd to 98th percentile of the visible points
  // (on the axis' own scale), widened by a tenth of that span each side; null when too
  // few points. Points are taken with a stride so that at most ROBUST_SAMPLE are sorted.
  robustRange(xlo, xhi) {
    let total = 0;
    for (const line of this.lines) total += line.y.length;
    if (total < 8) return null;
    const stride = Math.max(1, Math.ceil(total / ROBUST_SAMPLE));
    const sample = new Float64Array(Math.ceil(total / stride) + this.lines.length);
    let k = 0;
    for (const line of this.lines) {
      const xs = line.x; const ys = line.y;
      const a = xlo === -Infinity ? 0 : Math.max(0, lowerBound(xs, this.options.logX ? Math.pow(10, xlo) : xlo));
      for (let i = a; i < ys.length; i += stride) {
        const x = this.xOf(xs[i]);
        if (x > xhi) break;
        const v = this.yOf(ys[i]);
        if (finite(v)) sample[k++] = v;
      }
    }
    if (k < 8) return null;
    const sorted = sample.subarray(0, k).sort();
    const at = (p) => { const f = (k - 1) * p; const i = Math.floor(f); return i + 1 < k ? sorted[i] + (sorted[i + 1] - sorted[i]) * (f - i) : sorted[i]; };
    const lo = at(0.02); const hi = at(0.98);
    const margin = (hi - lo) * 0.1 || Math.abs(hi) * 0.05 || 0.5;
    return [lo - margin, hi + margin];
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    this.measured = this.root.clientWidth;
    const w = Math.max(200, this.measured);
    const h = this.options.height;
    for (const c of [this.base, this.overlay]) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      c.style.width = `${w}px`; c.style.height = `${h}px`;
    }
    this.w = w; this.h = h; this.dpr = dpr;
  }

  draw() {
    const started = performance.now();
    this.resize();
    const ctx = this.base.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    const b = this.b = this.bounds();
    const pw = this.w - PAD.left - PAD.right; const ph = this.h - PAD.top - PAD.bottom;
    const sx = pw / (b.xhi - b.xlo); const sy = ph / (b.yhi - b.ylo);
    const logX = this.options.logX; const logY = this.options.logY;
    // px/py take values on the axis' own scale (log10 units on a log axis)
    this.px = (x) => PAD.left + (x - b.xlo) * sx;
    this.py = (y) => PAD.top + ph - (y - b.ylo) * sy;
    this.invX = (px) => { const v = b.xlo + (px - PAD.left) / sx; return logX ? Math.pow(10, v) : v; };
    this.invY = (py) => { const v = b.ylo + (PAD.top + ph - py) / sy; return logY ? Math.pow(10, v) : v; };
    this.drawAxes(ctx, b, pw, ph);
    ctx.save();
    ctx.beginPath(); ctx.rect(PAD.left, PAD.top, pw, ph); ctx.clip();
    for (const band of this.bands) {
      ctx.fillStyle = band.color; ctx.globalAlpha = 0.18;
      ctx.beginPath();
      const n = band.x.length;
      // one polygon per run of points where both edges are drawable
      let start = -1;
      const close = (end) => {
        if (start < 0) return;
        for (let i = end; i >= start; i--) ctx.lineTo(this.px(this.xOf(band.x[i])), this.py(this.yOf(band.lo[i])));
        ctx.closePath(); start = -1;
      };
      for (let i = 0; i < n; i++) {
        const X = this.xOf(band.x[i]); const hi = this.yOf(band.hi[i]); const lo = this.yOf(band.lo[i]);
        if (!finite(X) || !finite(hi) || !finite(lo)) { close(i - 1); continue; }
        if (start < 0) { start = i; ctx.moveTo(this.px(X), this.py(hi)); } else ctx.lineTo(this.px(X), this.py(hi));
      }
      close(n - 1);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.lineJoin = 'round';
    const ox = PAD.left - b.xlo * sx; const oy = PAD.top + ph + b.ylo * sy;
    const markers = []; const dots = [];
    for (const line of this.lines) {
      ctx.strokeStyle = line.color; ctx.lineWidth = line.width || 1.2;
      ctx.globalAlpha = line.alpha ?? 1;
      ctx.setLineDash(DASHES[line.dash] || []);
      ctx.beginPath();
      const xs = line.x; const ys = line.y; const n = xs.length;
      // Points that fall into the same pixel column collapse to that column's lowest and
      // highest point and the last one: the stroke looks the same, with far fewer segments.
      let pen = false; let col = NaN; let lo = 0; let hi = 0; let lastY = 0; let many = false;
      let runLength = 0; let lastI = -1; // finite points since the pen went down
      const lift = (i) => {
        if (many) { ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, lastY); }
        // a point with no drawable neighbour makes no segment: draw it as a dot
        if (pen && runLength === 1) dots.push({ line, index: lastI });
        // the series turns NaN/inf here: mark its last finite point
        if (pen && i < n && !finite(ys[i])) markers.push({ line, index: lastI, next: i });
        pen = false; many = false; col = NaN; runLength = 0;
      };
      for (let i = 0; i < n; i++) {
        const v = logY ? (ys[i] > 0 ? Math.log10(ys[i]) : NaN) : ys[i];
        const x = logX ? (xs[i] > 0 ? Math.log10(xs[i]) : NaN) : xs[i];
        if (!finite(v) || !finite(x)) { lift(i); continue; }
        const X = ox + x * sx; const Y = oy - v * sy;
        const c = Math.round(X);
        runLength++; lastI = i;
        if (pen && c === col) {
          if (Y < lo) lo = Y;
          if (Y > hi) hi = Y;
          lastY = Y; many = true; continue;
        }
        if (many) { ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, lastY); }
        if (pen) ctx.lineTo(c, Y); else { ctx.moveTo(c, Y); pen = true; }
        col = c; lo = hi = lastY = Y; many = false;
      }
      lift(n);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    for (const { line, index } of dots) {
      ctx.globalAlpha = line.alpha ?? 1; ctx.fillStyle = line.color;
      ctx.beginPath();
      ctx.arc(this.px(this.xOf(line.x[index])), this.py(this.yOf(line.y[index])), Math.max(2, (line.width || 1.2) + 0.8), 0, Math.PI * 2);
      ctx.fill();
    }
    for (const { line, index } of markers) this.drawMarker(ctx, line, index);
    ctx.restore();
    this.markers = markers; this.dots = dots;
    this.drawMs = performance.now() - started;
    this.root.dataset.lines = String(this.lines.length);
    this.root.dataset.markers = String(markers.length);
    this.root.dataset.drawMs = this.drawMs.toFixed(1);
    this.drawOverlay();
  }

  // A hollow ring with a cross at the last finite point before NaN/inf.
  drawMarker(ctx, line, index) {
    const X = this.px(this.xOf(line.x[index])); const Y = this.py(this.yOf(line.y[index]));
    ctx.globalAlpha = 1; ctx.strokeStyle = line.color; ctx.lineWidth = 1.5; ctx.fillStyle = '#fff';
    ctx.beginPath(); ctx.arc(X, Y, 5, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(X - 3, Y - 3); ctx.lineTo(X + 3, Y + 3); ctx.moveTo(X + 3, Y - 3); ctx.lineTo(X - 3, Y + 3); ctx.stroke();
  }

  formatX(v) {
    return this.options.xAxis === 'wall_time' ? formatTime(v).slice(5) : formatNumber(v);
  }

  drawAxes(ctx, b, pw, ph) {
    ctx.strokeStyle = '#d0d4da'; ctx.fillStyle = '#5b6270'; ctx.lineWidth = 1;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    const xs = this.options.logX ? logTicks(b.xlo, b.xhi, Math.max(2, pw / 70)) : ticks(b.xlo, b.xhi, Math.max(2, pw / 110));
    const xl = []; const yl = [];
    for (const t of xs) {
      const X = Math.round(this.px(t)) + 0.5;
      const label = this.options.logX ? formatLogTick(Math.pow(10, t)) : this.formatX(t);
      xl.push(label);
      ctx.beginPath(); ctx.moveTo(X, PAD.top); ctx.lineTo(X, PAD.top + ph); ctx.stroke();
      ctx.fillText(label, X, PAD.top + ph + 6);
    }
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    const ys = this.options.logY ? logTicks(b.ylo, b.yhi, Math.max(2, ph / 28)) : ticks(b.ylo, b.yhi, Math.max(2, ph / 45));
    for (const t of ys) {
      const Y = Math.round(this.py(t)) + 0.5;
      const label = this.options.logY ? formatLogTick(Math.pow(10, t)) : formatNumber(t);
      yl.push(label);
      ctx.beginPath(); ctx.moveTo(PAD.left, Y); ctx.lineTo(PAD.left + pw, Y); ctx.stroke();
      ctx.fillText(label, PAD.left - 6, Y);
    }
    this.tickLabels = { x: xl, y: yl };
  }

  nearest(mx, my, radius = 20) {   // a tap (a fingertip, not a pixel) takes any distance
    let best = null; let bestD = radius * radius;
    const xv = this.invX(mx);
    const consider = (line, j) => {
      if (j < 0 || j >= line.x.length) return;
      const v = this.yOf(line.y[j]); const x = this.xOf(line.x[j]);
      if (!finite(v) || !finite(x)) return;
      const dx = this.px(x) - mx; const dy = this.py(v) - my;
      const d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = { line, index: j, x: line.x[j], y: line.y[j] }; }
    };
    for (let li = 0; li < this.lines.length; li++) {
      const line = this.lines[li];
      const xs = line.x; if (!xs.length) continue;
      const i = lowerBound(xs, xv);
      consider(line, i - 1); consider(line, i);
    }
    // a divergence marker or a lone dot may sit a few points away from the cursor's x
    for (const m of this.markers) consider(m.line, m.index);
    for (const d of this.dots) consider(d.line, d.index);
    if (best) {
      const ys = best.line.y; const j = best.index;
      if (j + 1 < ys.length && !finite(ys[j + 1])) best.turns = { value: nonFiniteName(ys[j + 1]), x: best.line.x[j + 1] };
    }
    return best;
  }

  // Touch (pointer events of type 'touch'; the mouse keeps its own handlers): a tap
  // shows the nearest point's tooltip, a double tap resets the zoom, a sideways drag of
  // one finger zooms x as a mouse drag does, two fingers pinch-zoom x (applied when they
  // lift). Vertical swipes still scroll the page (touch-action: pan-y).
  listenToTouch() {
    const fingers = new Map();   // pointerId -> {x, y}
    let gesture = null;          // {kind: 'tap' | 'drag' | 'pinch', ...}
    let lastTap = null;          // {t, x, y}: a second tap close by resets the zoom
    this.overlay.style.touchAction = 'pan-y';
    const at = (e) => ({ x: this.localX(e), y: this.localY(e) });
    this.overlay.addEventListener('pointerdown', (e) => {
      if (e.pointerType !== 'touch' || !this.invX) return;
      e.preventDefault();   // no emulated mouse events after it
      fingers.set(e.pointerId, at(e));
      if (fingers.size === 1) {
        const p = at(e);
        gesture = { kind: 'tap', x0: p.x, y0: p.y };
      } else if (fingers.size === 2) {
        const [a, b] = [...fingers.values()];
        this.drag = null;
        const L = (v) => (this.options.logX ? Math.log10(v) : v);   // pinch in drawn units
        gesture = { kind: 'pinch', ids: [...fingers.keys()], d0: [L(this.invX(a.x)), L(this.invX(b.x))],
          p: [a.x, b.x] };
      }
    });
    this.overlay.addEventListener('pointermove', (e) => {
      if (e.pointerType !== 'touch' || !fingers.has(e.pointerId) || !gesture) return;
      const p = at(e);
      fingers.set(e.pointerId, p);
      if (gesture.kind === 'pinch') {
        const i = gesture.ids.indexOf(e.pointerId);
        if (i >= 0) gesture.p[i] = p.x;
        return;
      }
      if (gesture.kind === 'tap' && Math.abs(p.x - gesture.x0) > 8) {
        gesture.kind = 'drag';
        this.hover = null;
        this.drag = { x0: gesture.x0, x1: p.x, y0: gesture.y0, y1: gesture.y0 };
      }
      if (gesture.kind === 'drag') { this.drag.x1 = p.x; this.drawOverlay(); }
    });
    const end = (e) => {
      if (e.pointerType !== 'touch' || !fingers.has(e.pointerId)) return;
      fingers.delete(e.pointerId);
      if (fingers.size || !gesture) return;
      const g = gesture; gesture = null;
      if (e.type === 'pointercancel') { this.drag = null; this.drawOverlay(); return; }
      if (g.kind === 'drag') { this.onUp(); return; }
      if (g.kind === 'pinch') {
        const [d0, d1] = g.d0; const [p0, p1] = g.p;
        if (Math.abs(p1 - p0) < 10 || !(d1 !== d0)) return;
        const scale = (p1 - p0) / (d1 - d0);            // pixels per unit of x
        const left = d0 - (p0 - PAD.left) / scale;
        const right = left + (this.w - PAD.left - PAD.right) / scale;
        const [lo, hi] = left < right ? [left, right] : [right, left];
        if (this.options.logX) this.zoomTo(10 ** lo, 10 ** hi); else this.zoomTo(lo, hi);
        return;
      }
      const now = performance.now();
      if (lastTap && now - lastTap.t < 350 && Math.abs(g.x0 - lastTap.x) < 24 && Math.abs(g.y0 - lastTap.y) < 24) {
        lastTap = null; this.hover = null; this.zoomTo(null, null); return;
      }
      lastTap = { t: now, x: g.x0, y: g.y0 };
      this.hover = this.lines.length ? this.nearest(g.x0, g.y0, Infinity) : null;
      if (this.options.onCursor) {
        const inside = g.x0 >= PAD.left && g.x0 <= this.w - PAD.right;
        this.options.onCursor(inside ? this.invX(g.x0) : null, this);
      }
      this.drawOverlay();
    };
    this.overlay.addEventListener('pointerup', end);
    this.overlay.addEventListener('pointercancel', end);
  }

  // --- Keyboard ----------------------------------------------------------------------------
  listenToKeys() {
    const o = this.overlay;
    o.tabIndex = 0;
    o.setAttribute('role', 'application');
    o.setAttribute('aria-roledescription', 'line chart');
    // a ring inside the canvas (the chart's box clips what lies outside it); a click
    // focuses without a ring until a key is pressed, as :focus-visible does elsewhere
    const ring = (on) => { o.style.outline = on ? '2px solid var(--accent, #2f6fde)' : ''; o.style.outlineOffset = on ? '-2px' : ''; };
    o.addEventListener('focus', () => ring(o.matches(':focus-visible')));
    o.addEventListener('blur', () => ring(false));
    o.addEventListener('keydown', (e) => {
      if (!this.onKey(e)) return;
      e.preventDefault();   // the arrows would scroll the page
      ring(true);
    });
    this.describe();
  }

  describe() {
    const n = this.lines.length;
    const label = `${this.options.label ? `${this.options.label}: ` : ''}line chart of ${n} series by ${this.options.xAxis}; ${KEYS_HELP}`;
    if (this.overlay.getAttribute('aria-label') !== label) this.overlay.setAttribute('aria-label', label);
  }

  // True when the key was one of the chart's. New ranges are worked out on the axes' own
  // scale (log10 units on a log axis) from what is drawn, or from what the last key asked
  // for while the page's onZoom is still fetching it (a key held down zooms on).
  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || !this.b || !this.invX) return false;
    const t = e.target;
    if (t !== this.overlay && t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return false;
    const k = e.key;
    if (k === '0') { this.asked = null; this.hover = null; this.zoomTo(null, null); return true; }
    const b = this.asked || this.b;
    const inside = this.pointer && this.pointer.x >= PAD.left && this.pointer.x <= this.w - PAD.right
      && this.pointer.y >= PAD.top && this.pointer.y <= this.h - PAD.bottom;
    // the anchor stays where it is on the screen: the mouse's x / y, or the middle
    const frac = (v) => Math.min(1, Math.max(0, v));
    const fx = inside ? frac((this.pointer.x - PAD.left) / (this.w - PAD.left - PAD.right)) : 0.5;
    const fy = inside ? frac(1 - (this.pointer.y - PAD.top) / (this.h - PAD.top - PAD.bottom)) : 0.5;
    const around = (lo, hi, f, scale) => { const at = lo + (hi - lo) * f; return [at - (at - lo) * scale, at + (hi - at) * scale]; };
    let x = null; let y = null;
    if (k === '+' || k === '=') x = around(b.xlo, b.xhi, fx, KEY_ZOOM);
    else if (k === '-' || k === '_') x = around(b.xlo, b.xhi, fx, 1 / KEY_ZOOM);
    else if (k === 'ArrowLeft' || k === 'ArrowRight') {
      const d = (b.xhi - b.xlo) * KEY_PAN * (k === 'ArrowLeft' ? -1 : 1);
      x = [b.xlo + d, b.xhi + d];
    } else if (k === 'ArrowUp' || k === 'ArrowDown') y = around(b.ylo, b.yhi, fy, k === 'ArrowUp' ? KEY_ZOOM : 1 / KEY_ZOOM);
    else return false;
    if (x && !(x[1] - x[0] > 0 && Number.isFinite(x[1] - x[0]))) return true;   // too narrow (or wide) to zoom on
    if (y && !(y[1] - y[0] > 0 && Number.isFinite(y[1] - y[0]))) return true;
    const toX = (v) => (this.options.logX ? 10 ** v : v);
    const toY = (v) => (this.options.logY ? 10 ** v : v);
    this.hover = null;
    if (!this.options.onZoom) {
      // the chart's own zoom: a key on one axis leaves the other as it is (a y key does
      // not pin x, so live points still widen an unzoomed x)
      if (x) this.zoomRange = x.map(toX);
      if (y) this.zoomY = y.map(toY);
      this.draw();
      return true;
    }
    // as a drag or a rectangle: x always; y when a key zooms it or it is zoomed already
    const xr = x || [b.xlo, b.xhi];
    const yZoomed = this.zoomY || (this.yRange && this.yRange[0] !== null && this.yRange[1] !== null);
    const yr = y || (yZoomed ? [b.ylo, b.yhi] : null);
    this.asked = { xlo: xr[0], xhi: xr[1], ylo: yr ? yr[0] : b.ylo, yhi: yr ? yr[1] : b.yhi };
    if (yr) this.zoomTo(toX(xr[0]), toX(xr[1]), toY(yr[0]), toY(yr[1]));
    else this.zoomTo(toX(xr[0]), toX(xr[1]));
    return true;
  }

  onMove(e) {
    const mx = this.localX(e); const my = this.localY(e);
    this.pointer = { x: mx, y: my };
    if (this.drag) { this.drag.x1 = mx; this.drag.y1 = my; this.drawOverlay(); return; }
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.hover = this.lines.length ? this.nearest(mx, my) : null;
      if (this.options.onCursor && this.invX) {
        const inside = mx >= PAD.left && mx <= this.w - PAD.right;
        this.options.onCursor(inside ? this.invX(mx) : null, this);
      }
      this.drawOverlay();
    });
  }

  onLeave() {
    // a move still waiting for its frame would bring the tooltip back after the mouse left
    if (this.pending) { cancelAnimationFrame(this.pending); this.pending = null; }
    this.pointer = null;
    this.hover = null; this.drag = null; this.drawOverlay();
    if (this.options.onCursor) this.options.onCursor(null, this);
  }

  onUp() {
    const drag = this.drag; this.drag = null;
    if (!drag) return;
    const x0 = Math.min(drag.x0, drag.x1); const x1 = Math.max(drag.x0, drag.x1);
    const y0 = Math.max(drag.y0, drag.y1); const y1 = Math.min(drag.y0, drag.y1);  // pixels grow down
    this.drawOverlay();
    if (x1 - x0 < 5) return;
    if (y0 - y1 >= RECT_MIN_PX) this.zoomTo(this.invX(x0), this.invX(x1), this.invY(y0), this.invY(y1));
    else this.zoomTo(this.invX(x0), this.invX(x1));
  }

  // The page's onZoom re-queries the server; without one the chart zooms on its own
  // points (and keeps that range across setData, e.g. live updates) until double-click.
  // y0/y1 (a rectangle) are given only when the drag spanned them.
  zoomTo(x0, x1, y0, y1) {
    const rect = y0 !== undefined && y1 !== undefined;
    if (this.options.onZoom) {
      if (rect) this.options.onZoom(x0, x1, y0, y1); else this.options.onZoom(x0, x1);
      return;
    }
    this.zoomRange = x0 === null ? null : [x0, x1];
    this.zoomY = x0 === null || !rect ? null : [y0, y1];
    this.draw();
  }

  drawOverlay() {
    if (!this.w) return;
    const ctx = this.overlay.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    if (this.drag) {
      const d = this.drag;
      const x0 = Math.min(d.x0, d.x1);
      ctx.fillStyle = 'rgba(60,110,220,0.15)';
      if (Math.abs(d.y1 - d.y0) >= RECT_MIN_PX) {
        ctx.fillRect(x0, Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
      } else ctx.fillRect(x0, PAD.top, Math.abs(d.x1 - d.x0), this.h - PAD.top - PAD.bottom);
    }
    if (this.cursorX !== null && this.px && !this.hover) {
      const cx = this.xOf(this.cursorX);
      if (finite(cx)) {
        const X = Math.round(this.px(cx)) + 0.5;
        if (X >= PAD.left && X <= this.w - PAD.right) {
          ctx.strokeStyle = 'rgba(90,98,112,0.6)'; ctx.lineWidth = 1;
          ctx.beginPath(); ctx.moveTo(X, PAD.top); ctx.lineTo(X, this.h - PAD.bottom); ctx.stroke();
        }
      }
    }
    const hit = this.hover;
    if (!hit) { this.tip.hidden = true; return; }
    const line = hit.line;
    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top, this.w - PAD.left - PAD.right, this.h - PAD.top - PAD.bottom);
    ctx.clip();
    ctx.strokeStyle = line.color; ctx.lineWidth = 2.5;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < line.x.length; i++) {
      const v = this.yOf(line.y[i]); const x = this.xOf(line.x[i]);
      if (!finite(v) || !finite(x)) { pen = false; continue; }
      const X = this.px(x); const Y = this.py(v);
      if (pen) ctx.lineTo(X, Y); else { ctx.moveTo(X, Y); pen = true; }
    }
    ctx.stroke();
    const X = this.px(this.xOf(hit.x)); const Y = this.py(this.yOf(hit.y));
    ctx.fillStyle = line.color; ctx.beginPath(); ctx.arc(X, Y, 4, 0, Math.PI * 2); ctx.fill();
    ctx.restore();
    const rows = this.options.tooltip ? this.options.tooltip(hit) : [`${hit.x}: ${hit.y}`];
    const nodes = rows.map((r) => el('div', { text: r }));
    if (hit.turns) {
      nodes.push(el('div', { class: 'chart-tooltip-warning',
        text: `last finite value: the series turns ${hit.turns.value} at ${this.options.xAxis} ${this.formatX(hit.turns.x)}` }));
    }
    this.tip.replaceChildren(...nodes);
    this.tip.hidden = false;
    const left = X + 14 + 260 > this.w ? X - 274 : X + 14;
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${Math.max(0, Math.min(Y - 10, this.h - 80))}px`;
  }
}
