// Pieces shared by IT's operations views (logs, queue, mailbox, sync jobs, metrics, changes):
// filters kept in the URL fragment, UTC time inputs, durations, JSON blocks, "load more".

import { h } from '../common/dom.js';
import { localInputToUtcIso, utcIsoToLocalInput } from '../common/format.js';

/** The filters of a view from its URL fragment (#logs?request_id=...), as a plain object. */
export function readQuery(ctx, names) {
  const out = {};
  for (const name of names) {
    const v = ctx.query.get(name);
    if (v) out[name] = v;
  }
  return out;
}

/** Keep a view's filters in its URL fragment, so the page can be reloaded or shared as it is. */
export function writeQuery(viewId, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  history.replaceState(null, '', `#${viewId}${qs ? `?${qs}` : ''}`);
}

/** A datetime-local input read and written as UTC; `value` is an ISO instant or ''. */
export function utcInput(name, value, attrs = {}) {
  const iso = value && !Number.isNaN(new Date(value).getTime()) ? utcIsoToLocalInput(value) : '';
  return h('input', { type: 'datetime-local', name, value: iso, step: 1, ...attrs });
}

/** The ISO instant of a utcInput's value; '' when empty, null when it is not a time. */
export function utcValue(text) {
  if (!text) return '';
  return localInputToUtcIso(text);
}

/** 3725 -> "1 h 2 min", 42.4 -> "42 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
  let s = Math.max(0, Math.round(Number(seconds)));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hr = Math.floor(s / 3600);
  s -= hr * 3600;
  const min = Math.floor(s / 60);
  s -= min * 60;
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${min} min`;
  if (min) return `${min} min ${s} s`;
  return `${s} s`;
}

/** Seconds between two ISO instants (the second one defaults to now). */
export function secondsBetween(fromIso, toIso = null) {
  if (!fromIso) return null;
  const end = toIso ? new Date(toIso).getTime() : Date.now();
  return (end - new Date(fromIso).getTime()) / 1000;
}

/** "HH:MM:SS UTC" of an instant, for dense tables. */
export function clock(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toISOString().slice(11, 19)} UTC`;
}

/** A JSON value shown readable, collapsed under a summary; null when there is nothing to show. */
export function jsonDetails(summary, value, testid = 'json-details') {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object' && !Object.keys(value).length) return null;
  return h('details', { class: 'json', testid },
    h('summary', {}, summary),
    h('pre', {}, JSON.stringify(value, null, 2)));
}

/** A small button that looks like a link, e.g. to filter by a value shown in a table. */
export function linkButton(text, onclick, attrs = {}) {
  return h('button', { type: 'button', class: 'btn link', onclick, ...attrs }, text);
}

/** A "load more" button wired to an async loader; hidden while there is nothing more. */
export function moreButton(testid, load) {
  const b = h('button', { type: 'button', class: 'btn', testid, hidden: true }, 'Load more');
  b.addEventListener('click', async () => {
    if (b.disabled) return;
    b.disabled = true;
    try {
      await load();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/** Run `tick` every `ms` while the page is visible; returns stop(). Never overlaps itself. */
export function every(ms, tick) {
  let running = false;
  const id = setInterval(async () => {
    if (running || document.visibilityState === 'hidden') return;
    running = true;
    try {
      await tick();
    } finally {
      running = false;
    }
  }, ms);
  return () => clearInterval(id);
}
