// Client-side transforms of fetched series: EMA smoothing, grouping keys, group aggregation.

import { contextLabel } from './format.js';

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
  // the whole context (train and val apart) and each series on its own
  if (field === 'context') return contextLabel(series.context) || '(no context)';
  if (field === 'series') return `${series.run}|${series.name}|${contextLabel(series.context)}`;
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

// Group aggregation on a shared grid of `points` x values: a line (`line`: the mean or
// the median) and a band (`band`): 'minmax', 'std' (mean ± std), 'sem' (mean ± standard
// error), 'ci95' (mean ± the 95 % confidence interval of the mean, Student's t) or ''.
// Line, std, sem and CI come from each series linearly interpolated at the grid points;
// the min–max band also takes every point of each series into the bucket of its nearest
// grid point, so a one-step spike that falls between grid points still reaches the band
// (the server's M4 answer holds every bucket's extremes at the chart's width).
export function aggregate(group, points = 400, band = 'minmax', line = 'mean') {
  let lo = Infinity; let hi = -Infinity;
  for (const s of group) {
    if (!s.x.length) continue;
    lo = Math.min(lo, s.x[0]); hi = Math.max(hi, s.x[s.x.length - 1]);
  }
  if (!Number.isFinite(lo)) return null;
  const n = hi > lo ? Math.max(2, points) : 1;
  const m = group.length;
  const x = new Float64Array(n); const sum = new Float64Array(n); const sq = new Float64Array(n);
  const cnt = new Float64Array(n);
  const mn = new Float64Array(n).fill(Infinity); const mx = new Float64Array(n).fill(-Infinity);
  // the interpolated values, grid point by grid point, for the median
  const cells = line === 'median' ? new Float64Array(n * m).fill(NaN) : null;
  for (let i = 0; i < n; i++) x[i] = n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1);
  const scale = n === 1 ? 0 : (n - 1) / (hi - lo);
  group.forEach((s, si) => {
    const xs = s.x; const ys = s.y; let j = 0;
    if (!xs.length) return;
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
      if (cells) cells[i * m + si] = v;
      if (v < mn[i]) mn[i] = v;
      if (v > mx[i]) mx[i] = v;
    }
    if (band !== 'minmax') return;
    for (let k = 0; k < xs.length; k++) {
      const v = ys[k];
      if (!Number.isFinite(v)) continue;
      const i = Math.min(n - 1, Math.max(0, Math.round((xs[k] - lo) * scale)));
      if (v < mn[i]) mn[i] = v;
      if (v > mx[i]) mx[i] = v;
    }
  });
  const mean = new Float64Array(n); const centre = new Float64Array(n);
  const bandLo = new Float64Array(n); const bandHi = new Float64Array(n);
  const count = new Float64Array(n);
  const column = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    count[i] = cnt[i];
    if (!cnt[i]) {
      mean[i] = centre[i] = NaN;
      bandLo[i] = band !== 'minmax' || mn[i] === Infinity ? NaN : mn[i];
      bandHi[i] = band !== 'minmax' || mx[i] === -Infinity ? NaN : mx[i];
      continue;
    }
    const mu = sum[i] / cnt[i];
    mean[i] = mu;
    if (cells) {
      let k = 0;
      for (let j = 0; j < m; j++) { const v = cells[i * m + j]; if (v === v) column[k++] = v; }
      const sorted = column.subarray(0, k).sort();
      centre[i] = k % 2 ? sorted[k >> 1] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2;
    } else centre[i] = mu;
    if (band === 'minmax') { bandLo[i] = mn[i]; bandHi[i] = mx[i]; continue; }
    if (!band) { bandLo[i] = bandHi[i] = NaN; continue; }
    // std of the group (population, as before); the standard error and the CI use the
    // sample std (n - 1) and are undefined for a single series
    const sd = Math.sqrt(Math.max(0, sq[i] / cnt[i] - mu * mu));
    let half = sd;
    if (band === 'sem' || band === 'ci95') {
      const k = cnt[i];
      const sample = k > 1 ? sd * Math.sqrt(k / (k - 1)) : NaN;
      half = sample / Math.sqrt(k);
      if (band === 'ci95') half *= tCritical95(k - 1);
    }
    bandLo[i] = mu - half; bandHi[i] = mu + half;
  }
  return { x, mean: centre, average: mean, lo: bandLo, hi: bandHi, count };
}

// Two-sided 95 % critical values of Student's t by degrees of freedom (1.96 beyond 120).
const T95 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
  2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069,
  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
export function tCritical95(df) {
  if (!(df >= 1)) return NaN;
  if (df < T95.length) return T95[df];
  if (df <= 40) return 2.021; if (df <= 60) return 2.000; if (df <= 120) return 1.980;
  return 1.960;
}

// The p-th quantile (0..1) of the finite values, linearly interpolated; NaN when none.
export function quantile(sorted, p) {
  const n = sorted.length;
  if (!n) return NaN;
  const at = (n - 1) * p; const i = Math.floor(at); const f = at - i;
  return i + 1 < n ? sorted[i] + (sorted[i + 1] - sorted[i]) * f : sorted[i];
}
