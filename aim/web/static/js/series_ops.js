// Client-side transforms of fetched series: EMA smoothing, grouping keys, group aggregation.

export const PALETTE = ['#3b6fd8', '#e0562b', '#2f9e5b', '#a845c2', '#d4a20b', '#1aa3b8',
  '#c2335f', '#6b7a1e', '#7a4b2a', '#5060a0', '#e08a2b', '#2b7f7f', '#8c8c8c', '#b05db0',
  '#4f9d2f', '#d45353'];
export const DASH_STYLES = ['solid', 'dashed', 'dotted', 'dashdot'];

// y_i = y_{i-1} * f + x_i * (1 - f); NaN points pass through without resetting the average.
export function ema(values, factor) {
  const out = new Float64Array(values.length);
  if (!(factor > 0)) { out.set(values); return out; }
  let acc = NaN;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) { out[i] = v; continue; }
    acc = acc !== acc ? v : acc * factor + v * (1 - factor);
    out[i] = acc;
  }
  return out;
}

// The value a series has for a grouping field such as 'run.hparams.lr', 'run.experiment',
// 'metric.name', 'context.subset' or 'run.hash'.
export function groupValue(series, run, field) {
  if (!field) return '';
  if (field === 'metric.name') return series.name;
  if (field.startsWith('context.')) return fmt(series.context?.[field.slice(8)]);
  if (field === 'run.hash') return series.run;
  if (field.startsWith('run.')) {
    const key = field.slice(4);
    if (run && key in run && key !== 'params') return fmt(run[key]);
    return fmt(run?.params?.[key.startsWith('params.') ? key.slice(7) : key]);
  }
  return '';
}

function fmt(v) {
  if (v === undefined) return '—';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// Assigns stable indices to group values in first-seen order.
export class GroupIndex {
  constructor() { this.map = new Map(); }
  of(key) {
    if (!this.map.has(key)) this.map.set(key, this.map.size);
    return this.map.get(key);
  }
  get size() { return this.map.size; }
  entries() { return [...this.map.entries()]; }
}

// Mean with min–max or ±std band of a group of series on a shared grid of `points` x
// values. The mean (and std) come from each series linearly interpolated at the grid
// points; the min–max band also takes every point of each series into the bucket of its
// nearest grid point, so a one-step spike that falls between grid points still reaches
// the band (the server's M4 answer holds every bucket's extremes at the chart's width).
export function aggregate(group, points = 400, band = 'minmax') {
  let lo = Infinity; let hi = -Infinity;
  for (const s of group) {
    if (!s.x.length) continue;
    lo = Math.min(lo, s.x[0]); hi = Math.max(hi, s.x[s.x.length - 1]);
  }
  if (!Number.isFinite(lo)) return null;
  const n = hi > lo ? Math.max(2, points) : 1;
  const x = new Float64Array(n); const sum = new Float64Array(n); const sq = new Float64Array(n);
  const cnt = new Float64Array(n);
  const mn = new Float64Array(n).fill(Infinity); const mx = new Float64Array(n).fill(-Infinity);
  for (let i = 0; i < n; i++) x[i] = n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1);
  const scale = n === 1 ? 0 : (n - 1) / (hi - lo);
  for (const s of group) {
    const xs = s.x; const ys = s.y; let j = 0;
    if (!xs.length) continue;
    for (let i = 0; i < n; i++) {
      const xv = x[i];
      if (xv < xs[0] || xv > xs[xs.length - 1]) continue;
      while (j < xs.length - 1 && xs[j + 1] < xv) j++;
      let v;
      if (xs[j] === xv || j === xs.length - 1) v = ys[j];
      else {
        const t = (xv - xs[j]) / (xs[j + 1] - xs[j]);
        v = ys[j] + (ys[j + 1] - ys[j]) * t;
      }
      if (!Number.isFinite(v)) continue;
      sum[i] += v; sq[i] += v * v; cnt[i] += 1;
      if (v < mn[i]) mn[i] = v;
      if (v > mx[i]) mx[i] = v;
    }
    if (band === 'std') continue;
    for (let k = 0; k < xs.length; k++) {
      const v = ys[k];
      if (!Number.isFinite(v)) continue;
      const i = Math.min(n - 1, Math.max(0, Math.round((xs[k] - lo) * scale)));
      if (v < mn[i]) mn[i] = v;
      if (v > mx[i]) mx[i] = v;
    }
  }
  const mean = new Float64Array(n); const bandLo = new Float64Array(n); const bandHi = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (!cnt[i]) {
      mean[i] = NaN;
      bandLo[i] = band === 'std' || mn[i] === Infinity ? NaN : mn[i];
      bandHi[i] = band === 'std' || mx[i] === -Infinity ? NaN : mx[i];
      continue;
    }
    mean[i] = sum[i] / cnt[i];
    if (band === 'std') {
      const sd = Math.sqrt(Math.max(0, sq[i] / cnt[i] - mean[i] * mean[i]));
      bandLo[i] = mean[i] - sd; bandHi[i] = mean[i] + sd;
    } else { bandLo[i] = mn[i]; bandHi[i] = mx[i]; }
  }
  return { x, mean, lo: bandLo, hi: bandHi };
}
