// Metrics (IT): the sampled system metrics over a chosen period, one inline SVG line chart per
// metric (one line per node), refreshed by itself while the period ends now.

import { api } from '../../common/api.js';
import { banner, field, h, replace, select, showError, values } from '../../common/dom.js';
import { dateTime } from '../../common/format.js';
import { every, readQuery, utcInput, utcValue, writeQuery } from '../ops.js';

const RANGES = [
  ['15m', 'Last 15 minutes', 15 * 60], ['1h', 'Last hour', 3600], ['6h', 'Last 6 hours', 6 * 3600],
  ['24h', 'Last 24 hours', 24 * 3600], ['3d', 'Last 3 days', 3 * 24 * 3600], ['custom', 'From … until …', null],
];
const TITLES = {
  http_requests_total: 'HTTP requests (total since start)',
  http_requests_per_second: 'HTTP requests per second',
  bookings_accepted_total: 'Bookings accepted (total since start)',
  bookings_refused_total: 'Bookings refused (total since start)',
  actors_active: 'Live actors',
  actor_mailbox_depth: 'Messages waiting in actor mailboxes',
  actor_restarts_total: 'Actor restarts (total since start)',
  ws_connections: 'WebSocket connections',
  pg_pool_size: 'PostgreSQL pool: connections',
  pg_pool_free: 'PostgreSQL pool: idle connections',
  redis_pool_in_use: 'Redis pool: connections in use',
  log_shipper_backlog: 'Log entries waiting to be shipped',
  log_shipper_dropped_total: 'Log entries dropped (total since start)',
  process_resident_memory_bytes: 'Memory of the process (resident)',
};
const REFRESH_MS = 15_000;
const H = 200;
const PAD = { left: 58, right: 12, top: 12, bottom: 26 };
// The SVG namespace, taken from the parser rather than spelled out.
const SVG_NS = (() => {
  const d = document.createElement('div');
  d.innerHTML = '<svg></svg>';
  return d.firstChild.namespaceURI;
})();

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A value as people read it: bytes in MB, counts with separators. */
function formatValue(name, v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (name.endsWith('_bytes')) return `${(v / 1048576).toLocaleString('en-US', { maximumFractionDigits: 1 })} MB`;
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** Points grouped into lines: one per node and label set. */
function lines(points) {
  const by = new Map();
  for (const p of points) {
    const labels = Object.entries(p.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
    const key = [p.node, labels].filter(Boolean).join(' ') || 'value';
    if (!by.has(key)) by.set(key, []);
    by.get(key).push({ t: new Date(p.time).getTime(), v: Number(p.value) });
  }
  return [...by.entries()].map(([key, pts]) => ({ key, pts: pts.sort((a, b) => a.t - b.t) }));
}

/** At most two points (min and max) per pixel column, in time order: the shape stays, the DOM stays small. */
function thin(pts, t0, t1, columns) {
  if (pts.length <= columns * 2) return pts;
  const out = [];
  let bucket = null;
  let lo = null;
  let hi = null;
  const flush = () => {
    if (lo === null) return;
    if (lo === hi) out.push(lo);
    else out.push(...(lo.t < hi.t ? [lo, hi] : [hi, lo]));
  };
  for (const p of pts) {
    const b = Math.floor(((p.t - t0) / (t1 - t0 || 1)) * columns);
    if (b !== bucket) {
      flush();
      bucket = b;
      lo = p;
      hi = p;
    } else {
      if (p.v < lo.v) lo = p;
      if (p.v > hi.v) hi = p;
    }
  }
  flush();
  return out;
}

function median(xs) {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One chart: axes, gridlines, a path per line (broken where samples are missing), a readout. */
function chart(name, points, since, until, W) {
  const t0 = new Date(since).getTime();
  const t1 = new Date(until).getTime();
  const all = lines(points);
  const nums = points.map((p) => Number(p.value));
  const title = TITLES[name] ?? name.replace(/_/g, ' ');
  const section = h('section', { class: 'panel chart', testid: 'metric-chart', dataset: { name, points: points.length }, 'aria-labelledby': `chart-${name}` },
    h('h2', { id: `chart-${name}` }, title, ' ', h('code', { class: 'muted' }, name)));
  if (!points.length) {
    section.append(h('p', { class: 'empty', testid: 'chart-empty' }, 'No samples in this period.'));
    return section;
  }
  // The newest sample of all (with several nodes, the legend shows each one's latest).
  const ends = all.map((l) => l.pts[l.pts.length - 1]);
  const latest = ends.reduce((a, b) => (b.t > a.t ? b : a)).v;
  let lo = Math.min(...nums);
  let hi = Math.max(...nums);
  if (lo >= 0 && lo <= hi * 0.5) lo = 0; // counts read best from zero
  if (hi === lo) { hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1); }
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0 || 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = lo + f * (hi - lo);
    return svg('g', {},
      svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid-line' }),
      svg('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis-label', 'text-anchor': 'end' }, formatValue(name, Number(v.toPrecision(4)))));
  });
  const xTicks = [0, 0.5, 1].map((f) => {
    const t = t0 + f * (t1 - t0);
    return svg('text', { x: x(t), y: H - 6, class: 'axis-label', 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, tickLabel(t, t1 - t0));
  });
  const paths = all.map((line, i) => {
    const pts = thin(line.pts, t0, t1, W - PAD.left - PAD.right);
    const gap = Math.max(median(pts.slice(1).map((p, j) => p.t - pts[j].t)) * 3, 1000);
    let d = '';
    pts.forEach((p, j) => {
      const move = j === 0 || p.t - pts[j - 1].t > gap;
      d += `${move ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
    });
    return svg('path', { d, class: `series series-${i % 6}`, 'data-line': line.key, 'data-testid': 'chart-line' });
  });
  const marker = svg('circle', { r: 3.5, class: 'marker', visibility: 'hidden' });
  const plot = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart-svg', role: 'img',
    'aria-label': `${title}: ${points.length} samples from ${dateTime(since)} to ${dateTime(until)}; latest ${formatValue(name, latest)}, lowest ${formatValue(name, Math.min(...nums))}, highest ${formatValue(name, Math.max(...nums))}.`,
  },
  svg('rect', { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom, class: 'plot-bg' }),
  ...grid, ...xTicks, ...paths, marker);
  const readout = h('p', { class: 'readout muted', 'aria-hidden': 'true', testid: 'chart-readout' }, 'Point at the chart to read a value.');
  const first = all[0].pts;
  plot.addEventListener('pointermove', (e) => {
    const box = plot.getBoundingClientRect();
    const t = t0 + (((e.clientX - box.left) / box.width) * W - PAD.left) / (W - PAD.left - PAD.right) * (t1 - t0);
    let a = 0;
    let b = first.length - 1;
    while (a < b) { const m = (a + b) >> 1; if (first[m].t < t) a = m + 1; else b = m; }
    const p = a > 0 && Math.abs(first[a - 1].t - t) < Math.abs(first[a].t - t) ? first[a - 1] : first[a];
    marker.setAttribute('cx', x(p.t));
    marker.setAttribute('cy', y(p.v));
    marker.setAttribute('visibility', 'visible');
    readout.textContent = `${new Date(p.t).toISOString().replace('T', ' ').slice(0, 19)} UTC — ${formatValue(name, p.v)}`;
  });
  plot.addEventListener('pointerleave', () => marker.setAttribute('visibility', 'hidden'));
  section.append(
    h('p', { class: 'chart-stats' },
      'Latest ', h('strong', { testid: 'chart-latest', dataset: { value: latest } }, formatValue(name, latest)),
      h('span', { class: 'muted' }, ` · lowest ${formatValue(name, Math.min(...nums))} · highest ${formatValue(name, Math.max(...nums))} · ${points.length} samples`)),
    h('div', { class: 'chart-box' }, plot),
    all.length > 1
      ? h('p', { class: 'legend' }, all.map((l, i) => h('span', {}, h('span', { class: `sw series-${i % 6}` }), `${l.key}: ${formatValue(name, ends[i].v)}`)))
      : '',
    readout);
  return section;
}

function tickLabel(t, span) {
  const iso = new Date(t).toISOString();
  return span > 36 * 3600e3 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, span > 2 * 3600e3 ? 16 : 19);
}

export default {
  mount(el, ctx) {
    const errors = banner();
    const warn = banner('warn');
    warn.dataset.testid = 'metrics-truncated';
    const preset = readQuery(ctx, ['range', 'since', 'until', 'name']);
    const range = select('range', RANGES.map(([v, label]) => [v, label]), { testid: 'metrics-range', value: preset.range ?? '1h' });
    const sinceInput = utcInput('since', preset.since, { testid: 'metrics-since' });
    const untilInput = utcInput('until', preset.until, { testid: 'metrics-until' });
    const nameSelect = select('name', [['', 'Every metric']], { testid: 'metrics-name' });
    const auto = h('input', { type: 'checkbox', id: 'metrics-auto', checked: true, testid: 'metrics-auto' });
    const custom = [field('From (UTC)', sinceInput), field('Until (UTC)', untilInput)];
    const form = h('form', { class: 'filters panel', testid: 'metrics-form', novalidate: true },
      field('Period', range),
      ...custom,
      field('Metric', nameSelect),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'metrics-apply' }, 'Show')));
    const summary = h('p', { class: 'muted', 'aria-live': 'polite', testid: 'metrics-period' });
    const charts = h('div', { class: 'charts', testid: 'metric-charts' });
    el.append(
      h('h1', {}, 'Metrics'),
      h('p', { class: 'muted' }, 'Figures sampled by every node (every 15 s by default) and kept 30 days.'),
      form,
      h('p', { class: 'choice' }, h('label', { for: 'metrics-auto' }, auto, ' Keep up to date while the period ends now')),
      errors, warn, summary, charts);
    const known = new Set();
    if (preset.name) {
      nameSelect.append(h('option', { value: preset.name }, preset.name));
      nameSelect.value = preset.name;
      known.add(preset.name);
    }

    function showCustom() {
      const isCustom = range.value === 'custom';
      custom.forEach((f) => { f.hidden = !isCustom; });
      sinceInput.disabled = !isCustom;
      untilInput.disabled = !isCustom;
      if (isCustom && !sinceInput.value) {
        const now = Date.now();
        sinceInput.value = new Date(now - 3600e3).toISOString().slice(0, 19);
        untilInput.value = new Date(now).toISOString().slice(0, 19);
      }
    }
    range.addEventListener('change', showCustom);
    showCustom();

    /** The period asked for: {since, until} as ISO, or null (and a message). */
    function period() {
      const v = values(form);
      if (v.range !== 'custom') {
        const seconds = RANGES.find(([k]) => k === v.range)?.[2] ?? 3600;
        const until = new Date();
        return { since: new Date(until.getTime() - seconds * 1000).toISOString(), until: until.toISOString(), relative: true };
      }
      const since = utcValue(v.since);
      const until = utcValue(v.until);
      if (!since || !until) {
        errors.show('Give both "From" and "Until" as dates and times (UTC).');
        (since ? untilInput : sinceInput).setAttribute('aria-invalid', 'true');
        return null;
      }
      if (since >= until) {
        errors.show('"From" must be before "Until".');
        untilInput.setAttribute('aria-invalid', 'true');
        return null;
      }
      return { since, until, relative: false };
    }

    /** Every series of the period; a truncated answer for every metric is asked again per metric. */
    async function fetchSeries(p, name) {
      const query = { since: p.since, until: p.until, name };
      const first = await api('/api/system/metrics', { query });
      if (!first.truncated || name) return first;
      const names = Object.keys(first.series);
      const parts = await Promise.all(names.map((n) => api('/api/system/metrics', { query: { ...query, name: n } })));
      const series = {};
      parts.forEach((part, i) => { series[names[i]] = part.series[names[i]] ?? []; });
      return { ...first, series, truncated: parts.some((part) => part.truncated) };
    }

    let current = null;
    let shown = null; // the last answer, drawn again when the width changes

    /** The width of one column of the chart grid (one or two columns, by the stylesheet). */
    function columnWidth() {
      const columns = getComputedStyle(charts).gridTemplateColumns.split(' ').filter(Boolean);
      const first = parseFloat(columns[0]);
      return Number.isFinite(first) && first > 0 ? first : charts.clientWidth;
    }

    function draw() {
      if (!shown) return;
      const names = Object.keys(shown.series).sort();
      // Drawn at the width they get (minus the panel's padding), so the labels keep their size.
      const width = Math.max(280, Math.floor(columnWidth() - 34));
      replace(charts, names.length
        ? names.map((n) => chart(n, shown.series[n], shown.since, shown.until, width))
        : h('p', { class: 'panel empty', testid: 'metrics-empty' }, 'No samples in this period. Is the sampler running?'));
      charts.dataset.width = width;
    }

    async function load({ quiet = false } = {}) {
      if (!quiet) errors.hide();
      sinceInput.removeAttribute('aria-invalid');
      untilInput.removeAttribute('aria-invalid');
      const p = period();
      if (!p) return;
      const v = values(form);
      current = p;
      writeQuery(ctx.view.id, p.relative ? { range: v.range, name: v.name } : { range: 'custom', since: p.since, until: p.until, name: v.name });
      try {
        const data = await fetchSeries(p, v.name || null);
        if (current !== p) return; // a newer request is on its way
        const names = Object.keys(data.series).sort();
        for (const n of names) {
          if (!known.has(n)) {
            known.add(n);
            nameSelect.append(h('option', { value: n }, TITLES[n] ?? n));
          }
        }
        summary.textContent = `${dateTime(data.since)} to ${dateTime(data.until)} · ${names.length} metric${names.length === 1 ? '' : 's'}`;
        summary.dataset.since = data.since;
        summary.dataset.until = data.until;
        if (data.truncated) warn.show('This period holds more samples than one answer carries: the charts stop early. Choose a shorter period or one metric.');
        else warn.hide();
        shown = data;
        draw();
      } catch (err) {
        showError(errors, err, form);
      }
    }

    let resizeTimer = null;
    const onResize = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (Math.abs(Math.max(280, Math.floor(columnWidth() - 34)) - Number(charts.dataset.width || 0)) > 8) draw();
      }, 200);
    };
    window.addEventListener('resize', onResize);
    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    const stopTimer = every(REFRESH_MS, () => (auto.checked && current?.relative ? load({ quiet: true }) : undefined));
    load();
    return () => {
      stopTimer();
      clearTimeout(resizeTimer);
      window.removeEventListener('resize', onResize);
    };
  },
};
