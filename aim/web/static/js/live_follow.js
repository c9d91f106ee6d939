// Following live runs on the explorers (params, scatters, experiments, compare and the
// object pages). While a run the page shows is being written, the page's `refresh` is
// called every LIVE_MS; it asks the server for what it shows (only what changed, where
// the API allows it) and calls `update` with the shown runs its answer marks active.
// Polling stops once none is, when the tab is hidden (it resumes with a re-read when
// shown again) and when the page is left (`close`, from the page's cleanup).
//
// A run without an end time may belong to a writer that died: `/api/runs/active` (lock
// files, not the index) tells. It is asked when a run not asked about before is marked
// active (the first answer, a new run) and every CHECK_EVERY re-reads, so a dead run
// stops the polling within half a minute; the other intervals cost one request.

import { el } from './dom.js';
import { getJSON } from './api.js';

export const LIVE_MS = 5000;   // the metrics explorer's interval (pages/metrics.js)
const CHECK_EVERY = 6;

// The interval; tests shorten it with window.__aimLiveMs.
export function liveInterval() {
  const v = Number(window.__aimLiveMs);
  return Number.isFinite(v) && v > 0 ? v : LIVE_MS;
}

// Any other polling interval of the UI (the metrics explorer, the runs table, the run
// page), shortened in the same proportion when a test sets window.__aimLiveMs.
export function pollMs(ms) {
  const v = Number(window.__aimLiveMs);
  return Number.isFinite(v) && v > 0 ? Math.max(20, Math.round(ms * v / LIVE_MS)) : ms;
}

export class LiveFollow {
  // id: the badge's id; refresh(signal): re-reads the page, resolves once it has called
  // update (or decided nothing changed); anyRun: the candidates are not run hashes (the
  // experiments page counts runs), so any active run keeps them alive.
  constructor({ id, root = null, refresh, anyRun = false }) {
    this.refresh = refresh;
    this.root = root;
    this.anyRun = anyRun;
    this.badge = el('span', { class: 'badge live', id, hidden: true });
    this.candidates = new Set();   // shown runs whose latest answer has no end time
    this.dead = new Set();         // candidates /api/runs/active does not list
    this.verified = new Set();     // candidates /api/runs/active was asked about
    this.label = { count: 0, names: [] };
    this.timer = null; this.busy = false; this.checking = false; this.closed = false;
    this.ticks = 0; this.controller = null;
    this.onVisibility = () => {
      if (this.closed) return;
      if (document.visibilityState === 'hidden') { clearTimeout(this.timer); this.timer = null; return; }
      // shown again: what changed meanwhile is read at once
      if (!this.timer && !this.busy && this.live().length) this.tick();
    };
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  live() { return [...this.candidates].filter((h) => !this.dead.has(h)); }

  get polling() { return !this.closed && (this.timer !== null || this.busy); }

  // After every answer of the page (its first load, a load the user started, a re-read):
  // the shown runs it marks active. names: their names for the badge's tooltip; count:
  // how many runs the badge names (default: one per candidate).
  update(active, { names = [], count = null } = {}) {
    if (this.closed) return;
    this.candidates = new Set(active);
    this.label = { count, names };
    if ([...this.candidates].some((h) => !this.verified.has(h))) this.check();
    else this.settle();
  }

  settle() {
    if (this.closed) return;
    const live = this.live();
    const n = this.label.count ?? live.length;
    this.badge.hidden = !live.length;
    this.badge.textContent = live.length ? `${n} running · updating every ${liveInterval() / 1000} s` : '';
    this.badge.title = live.length ? this.label.names.slice(0, 20).join(', ') : '';
    if (this.root) this.root.dataset.live = live.length ? '1' : '0';
    if (!live.length) { clearTimeout(this.timer); this.timer = null; return; }
    if (!this.timer && !this.busy && document.visibilityState !== 'hidden') {
      this.timer = setTimeout(() => this.tick(), liveInterval());
    }
  }

  async tick() {
    this.timer = null;
    if (this.closed || document.visibilityState === 'hidden' || !this.live().length) return;
    if (!this.badge.isConnected) { this.close(); return; }   // the page is gone
    this.busy = true;
    this.controller = new AbortController();
    try { await this.refresh(this.controller.signal); } catch (_) { /* the next tick tries again */ }
    this.controller = null;
    this.busy = false;
    if (this.closed) return;
    this.ticks += 1;
    if (this.ticks % CHECK_EVERY === 0 && this.live().length) await this.check();
    else this.settle();
  }

  // Which candidates a process still writes.
  async check() {
    if (this.checking) return;
    this.checking = true;
    let active = null;
    try { active = new Set((await getJSON('/api/runs/active')).runs.map((r) => r.hash)); } catch (_) { /* unknown */ }
    this.checking = false;
    if (this.closed) return;
    for (const h of this.candidates) {
      this.verified.add(h);
      if (!active) continue;   // unknown: counted live until the next check
      if (this.anyRun ? active.size > 0 : active.has(h)) this.dead.delete(h); else this.dead.add(h);
    }
    this.settle();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer); this.timer = null;
    if (this.controller) this.controller.abort();
    document.removeEventListener('visibilitychange', this.onVisibility);
  }
}

// Runs that changed: the `/api/runs` query of a re-read asks only for the runs written,
// started or ended since `since` (the user's query around it).
export function changedRunsQuery(q, since) {
  const s = since.toFixed(3);
  const changed = `run.updated_at > ${s} or run.end_time > ${s} or run.creation_time > ${s}`;
  // the newline ends a comment the query may close with
  return q && q.trim() ? `(${q}\n) and (${changed})` : changed;
}

// The time a re-read asks from: the oldest last write among the live runs (each run's
// times come from its own writer's clock), less a margin for writers whose clocks differ.
export function changedSince(runs, liveHashes) {
  let since = Infinity;
  for (const r of runs) {
    if (!liveHashes.has(r.hash)) continue;
    since = Math.min(since, Math.max(r.updated_at || 0, r.creation_time || 0));
  }
  return (Number.isFinite(since) ? since : Date.now() / 1000) - 2;
}

// The runs of `old` with those of `fresh` put in (same hash: replaced; new: first, as the
// newest runs come first).
export function mergeRuns(old, fresh) {
  const byHash = new Map(fresh.map((r) => [r.hash, r]));
  const known = new Set(old.map((r) => r.hash));
  return [...fresh.filter((r) => !known.has(r.hash)), ...old.map((r) => byHash.get(r.hash) || r)];
}

// The hashes of `runs` marked active (no end time), and their names.
export function activeRuns(runs) {
  const live = runs.filter((r) => r && r.active);
  return { hashes: live.map((r) => r.hash), names: live.map((r) => r.name || r.hash) };
}
