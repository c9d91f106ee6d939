// A canvas line chart built for many series: one path per line on a base canvas, hover
// and zoom drawn on an overlay canvas so moving the mouse never redraws the lines.

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

function lowerBound(arr, v) {
  let lo = 0; let hi = arr.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < v) lo = mid + 1; else hi = mid; }
  return lo;
}

export class LineChart {
  constructor(container, options = {}) {
    this.options = { height: 320, logY: false, xAxis: 'step', ...options };
    this.root = el('div', { class: 'chart', style: { height: `${this.options.height}px` } });
    this.base = el('canvas', { class: 'chart-base' });
    this.overlay = el('canvas', { class: 'chart-overlay' });
    this.tip = el('div', { class: 'chart-tooltip', hidden: true });
    this.root.append(this.base, this.overlay, this.tip);
    container.appendChild(this.root);
    this.lines = []; this.bands = [];
    this.hover = null; this.drag = null;
    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => { this.hover = null; this.drag = null; this.drawOverlay(); });
    this.overlay.addEventListener('mousedown', (e) => { this.drag = { x0: this.localX(e), x1: this.localX(e) }; });
    this.overlay.addEventListener('mouseup', (e) => this.onUp(e));
    this.overlay.addEventListener('dblclick', () => this.options.onZoom && this.options.onZoom(null, null));
  }

  localX(e) { return e.clientX - this.overlay.getBoundingClientRect().left; }
  localY(e) { return e.clientY - this.overlay.getBoundingClientRect().top; }

  setData({ lines = [], bands = [], xRange = null } = {}) {
    this.lines = lines; this.bands = bands; this.xRange = xRange;
    this.draw();
  }

  setOptions(options) { Object.assign(this.options, options); }

  yOf(v) { return this.options.logY ? (v > 0 ? Math.log10(v) : NaN) : v; }

  bounds() {
    let xlo = Infinity; let xhi = -Infinity; let ylo = Infinity; let yhi = -Infinity;
    const visit = (xs, ys) => {
      const n = xs.length;
      if (!n) return;
      if (xs[0] < xlo) xlo = xs[0];
      if (xs[n - 1] > xhi) xhi = xs[n - 1];
      for (let i = 0; i < n; i++) {
        const v = this.yOf(ys[i]);
        if (v < ylo && v > -Infinity) ylo = v;
        if (v > yhi && v < Infinity) yhi = v;
      }
    };
    for (const line of this.lines) visit(line.x, line.y);
    for (const band of this.bands) { visit(band.x, band.lo); visit(band.x, band.hi); }
    if (this.xRange && this.xRange[0] !== null && this.xRange[1] !== null) [xlo, xhi] = this.xRange;
    if (!Number.isFinite(xlo)) { xlo = 0; xhi = 1; }
    if (!Number.isFinite(ylo)) { ylo = 0; yhi = 1; }
    if (xhi === xlo) { xlo -= 0.5; xhi += 0.5; }
    if (yhi === ylo) { ylo -= 0.5; yhi += 0.5; }
    const pad = (yhi - ylo) * 0.04;
    return { xlo, xhi, ylo: ylo - pad, yhi: yhi + pad };
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(200, this.root.clientWidth);
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
    this.px = (x) => PAD.left + (x - b.xlo) * sx;
    this.py = (y) => PAD.top + ph - (y - b.ylo) * sy;
    this.invX = (px) => b.xlo + (px - PAD.left) / sx;
    this.drawAxes(ctx, b, pw, ph);
    ctx.save();
    ctx.beginPath(); ctx.rect(PAD.left, PAD.top, pw, ph); ctx.clip();
    for (const band of this.bands) {
      ctx.fillStyle = band.color; ctx.globalAlpha = 0.18;
      ctx.beginPath();
      const n = band.x.length;
      for (let i = 0; i < n; i++) ctx.lineTo(this.px(band.x[i]), this.py(this.yOf(band.hi[i])));
      for (let i = n - 1; i >= 0; i--) ctx.lineTo(this.px(band.x[i]), this.py(this.yOf(band.lo[i])));
      ctx.closePath(); ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.lineJoin = 'round';
    const ox = PAD.left - b.xlo * sx; const oy = PAD.top + ph + b.ylo * sy;
    const logY = this.options.logY;
    for (const line of this.lines) {
      ctx.strokeStyle = line.color; ctx.lineWidth = line.width || 1.2;
      ctx.globalAlpha = line.alpha ?? 1;
      ctx.setLineDash(DASHES[line.dash] || []);
      ctx.beginPath();
      const xs = line.x; const ys = line.y; const n = xs.length;
      // Points that fall into the same pixel column collapse to that column's lowest and
      // highest point and the last one: the stroke looks the same, with far fewer segments.
      let pen = false; let col = NaN; let lo = 0; let hi = 0; let lastY = 0; let many = false;
      for (let i = 0; i < n; i++) {
        const v = logY ? (ys[i] > 0 ? Math.log10(ys[i]) : NaN) : ys[i];
        if (v !== v || v === Infinity || v === -Infinity) {
          if (many) { ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, lastY); }
          pen = false; many = false; col = NaN; continue;
        }
        const X = ox + xs[i] * sx; const Y = oy - v * sy;
        const c = Math.round(X);
        if (pen && c === col) {
          if (Y < lo) lo = Y;
          if (Y > hi) hi = Y;
          lastY = Y; many = true; continue;
        }
        if (many) { ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, lastY); }
        if (pen) ctx.lineTo(c, Y); else { ctx.moveTo(c, Y); pen = true; }
        col = c; lo = hi = lastY = Y; many = false;
      }
      if (many) { ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, lastY); }
      if (n === 1) ctx.rect(ox + xs[0] * sx - 1, oy - ys[0] * sy - 1, 2, 2);
      ctx.stroke();
    }
    ctx.restore();
    this.drawMs = performance.now() - started;
    this.root.dataset.lines = String(this.lines.length);
    this.root.dataset.drawMs = this.drawMs.toFixed(1);
    this.drawOverlay();
  }

  formatX(v) {
    return this.options.xAxis === 'wall_time' ? formatTime(v).slice(5) : formatNumber(v);
  }

  drawAxes(ctx, b, pw, ph) {
    ctx.strokeStyle = '#d0d4da'; ctx.fillStyle = '#5b6270'; ctx.lineWidth = 1;
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (const t of ticks(b.xlo, b.xhi, Math.max(2, pw / 110))) {
      const X = Math.round(this.px(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(X, PAD.top); ctx.lineTo(X, PAD.top + ph); ctx.stroke();
      ctx.fillText(this.formatX(t), X, PAD.top + ph + 6);
    }
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (const t of ticks(b.ylo, b.yhi, Math.max(2, ph / 45))) {
      const Y = Math.round(this.py(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(PAD.left, Y); ctx.lineTo(PAD.left + pw, Y); ctx.stroke();
      ctx.fillText(this.options.logY ? formatNumber(Math.pow(10, t)) : formatNumber(t), PAD.left - 6, Y);
    }
  }

  nearest(mx, my) {
    let best = null; let bestD = 400; // within 20 px
    const xv = this.invX(mx);
    for (let li = 0; li < this.lines.length; li++) {
      const line = this.lines[li];
      const xs = line.x; if (!xs.length) continue;
      let i = lowerBound(xs, xv);
      for (const j of [i - 1, i]) {
        if (j < 0 || j >= xs.length) continue;
        const v = this.yOf(line.y[j]);
        if (!Number.isFinite(v)) continue;
        const dx = this.px(xs[j]) - mx; const dy = this.py(v) - my;
        const d = dx * dx + dy * dy;
        if (d < bestD) { bestD = d; best = { line, index: j, x: xs[j], y: line.y[j] }; }
      }
    }
    return best;
  }

  onMove(e) {
    const mx = this.localX(e); const my = this.localY(e);
    if (this.drag) { this.drag.x1 = mx; this.drawOverlay(); return; }
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.hover = this.lines.length ? this.nearest(mx, my) : null;
      this.drawOverlay();
    });
  }

  onUp(e) {
    const drag = this.drag; this.drag = null;
    if (!drag) return;
    const x0 = Math.min(drag.x0, drag.x1); const x1 = Math.max(drag.x0, drag.x1);
    this.drawOverlay();
    if (x1 - x0 >= 5 && this.options.onZoom) this.options.onZoom(this.invX(x0), this.invX(x1));
  }

  drawOverlay() {
    if (!this.w) return;
    const ctx = this.overlay.getContext('2d');
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    if (this.drag) {
      const x0 = Math.min(this.drag.x0, this.drag.x1);
      ctx.fillStyle = 'rgba(60,110,220,0.15)';
      ctx.fillRect(x0, PAD.top, Math.abs(this.drag.x1 - this.drag.x0), this.h - PAD.top - PAD.bottom);
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
      const v = this.yOf(line.y[i]);
      if (!Number.isFinite(v)) { pen = false; continue; }
      const X = this.px(line.x[i]); const Y = this.py(v);
      if (pen) ctx.lineTo(X, Y); else { ctx.moveTo(X, Y); pen = true; }
    }
    ctx.stroke();
    const X = this.px(hit.x); const Y = this.py(this.yOf(hit.y));
    ctx.fillStyle = line.color; ctx.beginPath(); ctx.arc(X, Y, 4, 0, Math.PI * 2); ctx.fill();
    ctx.restore();
    const rows = this.options.tooltip ? this.options.tooltip(hit) : [`${hit.x}: ${hit.y}`];
    this.tip.replaceChildren(...rows.map((r) => el('div', { text: r })));
    this.tip.hidden = false;
    const left = X + 14 + 260 > this.w ? X - 274 : X + 14;
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${Math.max(0, Math.min(Y - 10, this.h - 80))}px`;
  }
}
