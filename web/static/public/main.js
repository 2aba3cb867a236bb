// PublicWeb `/`: upcoming launches with live seats, status and new launches; filters.

import { all, api } from '../common/api.js';
import { banner, field, h, replace, select, showError, values } from '../common/dom.js';
import { destination, money, when, DESTINATIONS } from '../common/format.js';
import {
  applyEvent, bookable, bySchedule, flash, FINAL, gauge, isVipOnly, matches, seatsText, statusBadge,
} from '../common/launches.js';
import { header } from '../common/shell.js';
import * as session from '../common/session.js';
import { Live } from '../common/ws.js';

const state = {
  launches: new Map(), // id -> launch: every upcoming launch this visitor may see (filters apply on top)
  later: new Map(), // VIP-only launches announced live: shown to everyone once public
  filters: readFilters(),
  snapshot: false,
  user: session.user(),
};
const cards = new Map(); // id -> card element with .update(launch)

const main = document.getElementById('main');
const errors = banner();
const count = h('p', { class: 'muted', 'aria-live': 'polite', testid: 'launch-count' });
const list = h('div', { class: 'grid cards', testid: 'launch-list' });

async function start() {
  state.user = (await session.restore())?.user ?? null; // a new tab: the session cookie gives its token
  if (state.user) {
    try {
      const me = await api('/api/system/auth/me', { on401: 'drop' });
      if (me?.user) state.user = session.save({ user: me.user }).user;
    } catch {
      state.user = session.user();
    }
  }
  const live = new Live({ onAuthError: () => session.clear() });
  document.body.prepend(header({ title: 'Upcoming launches', live, user: state.user }));
  replace(main,
    h('div', { class: 'hero' },
      h('h1', {}, 'Upcoming launches'),
      h('p', { class: 'muted' }, 'Seats on crewed flights to orbit, the Moon and Mars. Seats left update live.')),
    filtersForm(), errors, count, list);
  await loadList();
  live.subscribe('launches', {
    snapshot(data) {
      state.launches = new Map((data.launches ?? []).map((l) => [l.id, l]));
      state.snapshot = true;
      render();
    },
    event(name, data) {
      onEvent(name, data);
    },
    error(code, message) {
      errors.show(`Live updates are unavailable: ${message}`);
    },
  });
}

async function loadList() {
  try {
    const items = await all('/api/booking/launches', state.filters, 1000, { on401: 'drop' });
    if (!state.snapshot) {
      state.launches = new Map(items.map((l) => [l.id, l]));
    }
    errors.hide();
  } catch (err) {
    showError(errors, err);
  }
  render();
}

function onEvent(name, data) {
  if (name === 'launch_added') {
    if (isVipOnly(data) && !state.user?.vip) {
      scheduleLater(data);
      return;
    }
    state.launches.set(data.id, { ...data, vip_only: isVipOnly(data) });
    render();
    return;
  }
  const id = data.launch_id;
  const later = state.later.get(id);
  if (later) state.later.set(id, applyEvent(later, name, data));
  const launch = state.launches.get(id);
  if (!launch) return;
  state.launches.set(id, applyEvent(launch, name, data));
  if (name === 'status' && cards.has(id)) render();
  else cards.get(id)?.update(state.launches.get(id));
}

/** A launch still VIP-only for this visitor: it joins the list when it becomes public. */
function scheduleLater(launch) {
  state.later.set(launch.id, launch);
  const wait = new Date(launch.public_from).getTime() - Date.now();
  if (wait > 2 ** 31 - 1) return; // further than setTimeout reaches; a reload will show it
  setTimeout(() => {
    const now = state.later.get(launch.id);
    state.later.delete(launch.id);
    if (now) {
      state.launches.set(now.id, { ...now, vip_only: false });
      render();
    }
  }, Math.max(0, wait) + 500);
}

function render() {
  const shown = [...state.launches.values()]
    .filter((l) => matches(l, state.filters))
    .filter((l) => new Date(l.scheduled_at).getTime() > Date.now() || FINAL.has(l.status))
    .sort(bySchedule);
  const keep = new Set(shown.map((l) => l.id));
  for (const [id, el] of cards) {
    if (!keep.has(id)) {
      el.remove();
      cards.delete(id);
    }
  }
  shown.forEach((l, i) => {
    let el = cards.get(l.id);
    if (!el || el.dataset.status !== l.status) {
      const fresh = card(l);
      if (el) el.replaceWith(fresh);
      el = fresh;
      cards.set(l.id, el);
    } else {
      el.update(l);
    }
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] ?? null);
  });
  count.textContent = shown.length
    ? `${shown.length} launch${shown.length === 1 ? '' : 'es'}`
    : '';
  if (!shown.length) {
    if (!list.querySelector('.empty')) list.append(h('p', { class: 'empty', testid: 'no-launches' }, 'No upcoming launches match. Try other filters.'));
  } else {
    list.querySelector('.empty')?.remove();
  }
}

function card(launch) {
  const seats = h('span', { class: 'seats', testid: 'seats-left', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const meter = gauge(launch);
  const whenBox = h('span', { testid: 'launch-date' });
  const isFinal = FINAL.has(launch.status);
  const el = h('article', {
    class: ['launch-card', isFinal ? 'final' : ''],
    testid: 'launch-card',
    dataset: { launchId: launch.id, slug: launch.slug, status: launch.status },
  },
  h('h2', {}, h('a', { href: `/launches/${encodeURIComponent(launch.slug)}`, testid: 'launch-link' }, launch.mission)),
  h('div', { class: 'badges' },
    statusBadge(launch.status),
    launch.vip_only || isVipOnly(launch) ? h('span', { class: 'badge badge-vip', testid: 'vip-only' }, 'VIP early access') : null),
  h('div', { class: 'meta' },
    h('span', { testid: 'launch-destination' }, destination(launch.destination)), ' · ',
    h('span', { testid: 'launch-rocket' }, launch.rocket?.name ?? 'rocket'), ' · ',
    h('span', {}, `by ${launch.agency?.name ?? 'an agency'}`)),
  h('div', { class: 'meta' }, whenBox),
  h('div', { class: 'price', testid: 'launch-price' }, money(launch.price_cents), h('span', { class: 'muted' }, ' per seat')),
  seats, meter,
  h('div', { class: 'actions' }, bookAction(launch)));
  el.update = (l) => {
    const before = seats.textContent;
    seats.replaceChildren(h('strong', {}, seatsText(l)));
    seats.dataset.value = l.seats_available;
    if (before && before !== seats.textContent) flash(seats);
    meter.update(l);
    replace(whenBox, when(l.scheduled_at, { relative: true }));
  };
  el.update(launch);
  return el;
}

function bookAction(launch) {
  if (!bookable(launch)) return h('span', { class: 'muted' }, FINAL.has(launch.status) ? 'No longer bookable' : '');
  const target = `/traveler#book?launch=${encodeURIComponent(launch.id)}`;
  const role = state.user?.role;
  if (role === 'traveler') return h('a', { class: 'btn primary', href: target, testid: 'book-link' }, 'Book');
  if (!role) return h('a', { class: 'btn', href: `/auth?next=${encodeURIComponent(target)}`, testid: 'login-to-book' }, 'Log in to book');
  return h('a', { class: 'btn', href: `/launches/${encodeURIComponent(launch.slug)}` }, 'Details');
}

function filtersForm() {
  const f = state.filters;
  const form = h('form', { class: 'filters panel', testid: 'filter-form', role: 'search', 'aria-label': 'Filter launches' },
    field('Destination', select('destination', [['', 'Any destination'], ...Object.entries(DESTINATIONS)], { value: f.destination ?? '', testid: 'filter-destination' })),
    field('From', h('input', { type: 'date', name: 'from', value: f.from ?? '', testid: 'filter-from' })),
    field('To', h('input', { type: 'date', name: 'to', value: f.to ?? '', testid: 'filter-to' })),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn primary', testid: 'filter-apply' }, 'Show launches'),
      h('button', { type: 'reset', class: 'btn', testid: 'filter-reset' }, 'Clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    applyFilters(values(form));
  });
  form.addEventListener('reset', () => setTimeout(() => applyFilters({}), 0));
  return form;
}

function applyFilters(v) {
  if (v.from && v.to && v.from > v.to) {
    errors.show('"From" must be on or before "To".');
    return;
  }
  errors.hide();
  state.filters = { destination: v.destination || null, from: v.from || null, to: v.to || null };
  const q = new URLSearchParams(Object.entries(state.filters).filter(([, x]) => x));
  history.replaceState(null, '', q.toString() ? `/?${q}` : '/');
  if (state.snapshot) render();
  else loadList();
}

function readFilters() {
  const q = new URLSearchParams(location.search);
  const dest = q.get('destination');
  const day = (x) => (/^\d{4}-\d{2}-\d{2}$/.test(x ?? '') ? x : null);
  return {
    destination: dest && dest in DESTINATIONS ? dest : null,
    from: day(q.get('from')),
    to: day(q.get('to')),
  };
}

start();
