// Number, time and label formatting shared by the pages.

export function formatNumber(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;  // "NaN", "Infinity" from the API
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  // six significant digits: 6.30626e-5 rather than 0.00006306263089267136
  if (a !== 0 && (a < 1e-4 || a >= 1e9)) return v.toExponential(5).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function formatValue(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v) || typeof v === 'object') return JSON.stringify(v);
  return typeof v === 'number' ? formatNumber(v) : String(v);
}

export function contextLabel(context) {
  const keys = Object.keys(context || {});
  if (!keys.length) return '';
  return keys.sort().map((k) => `${k}=${formatValue(context[k])}`).join(', ');
}

export function seriesLabel(s) {
  const ctx = contextLabel(s.context);
  return ctx ? `${s.name} (${ctx})` : s.name;
}
