// PublicWeb `/launches/<slug>`: one launch with a live seat gauge and status.

import { api } from '../common/api.js';
import { h, replace } from '../common/dom.js';
import { dateTime, destination, money, plural, relative } from '../common/format.js';
import { applyEvent, bookable, flash, FINAL, gauge, isVipOnly, seatsText, statusBadge } from '../common/launches.js';
import { header } from '../common/shell.js';
import * as session from '../common/session.js';
import { Live } from '../common/ws.js';

const main = document.getElementById('main');
const slug = decodeURIComponent(location.pathname.replace(/^\/launches\//, '').replace(/\/$/, ''));
let user = session.user();
let launch = null;
let view = null;

async function start() {
  user = (await session.restore())?.user ?? null; // a new tab: the session cookie gives its token
  if (user) {
    try {
      const me = await api('/api/system/auth/me', { on401: 'drop' });
      if (me?.user) user = session.save({ user: me.user }).user;
    } catch {
      user = session.user();
    }
  }
  const live = new Live({ onAuthError: () => session.clear() });
  document.body.prepend(header({ title: 'Launch', live, user }));
  try {
    launch = (await api(`/api/booking/launches/${encodeURIComponent(slug)}`, { on401: 'drop' })).launch;
  } catch (err) {
    replace(main, notShown(err));
    return;
  }
  document.title = `${launch.mission} · AstroBookings`;
  view = render(launch);
  replace(main, view);
  live.subscribe(`launch:${launch.id}`, {
    snapshot(data) {
      if (data.launch) update({ ...launch, ...data.launch });
    },
    event(name, data) {
      update(applyEvent(launch, name, data));
    },
    error(code, message) {
      view.querySelector('[data-testid="live-note"]').textContent = `Live updates are unavailable: ${message}`;
    },
  });
}

function notShown(err) {
  const back = h('p', {}, h('a', { href: '/' }, '← All upcoming launches'));
  if (err.code === 'vip_only') {
    return h('div', { class: 'panel', testid: 'launch-vip-only' },
      h('h1', {}, 'VIP early access'), h('p', {}, err.message),
      user ? null : h('p', {}, h('a', { href: `/auth?next=${encodeURIComponent(location.pathname)}` }, 'Log in'), ' if you are a VIP traveler.'),
      back);
  }
  if (err.status === 404) {
    return h('div', { class: 'panel', testid: 'launch-not-found' },
      h('h1', {}, 'No such launch'), h('p', {}, `We have no launch called “${slug}”.`), back);
  }
  return h('div', { class: 'panel' }, h('h1', {}, 'Launch'),
    h('p', { class: 'banner banner-error', role: 'alert', testid: 'error-banner' }, err.message), back);
}

function render(l) {
  const seats = h('p', { class: 'big-number', testid: 'seats-left', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const booked = h('p', { class: 'muted', testid: 'seats-booked' });
  const viability = h('p', { testid: 'viability', 'aria-live': 'polite' });
  const meter = gauge(l, { big: true });
  const status = h('div', { class: 'badges', testid: 'launch-status', 'aria-live': 'polite' });
  const reason = h('p', { class: 'muted', testid: 'status-reason' });
  const when = h('dd', { testid: 'launch-date' });
  const action = h('div', { class: 'actions', testid: 'launch-actions' });
  const el = h('article', { class: 'launch-page', testid: 'launch-page', dataset: { launchId: l.id, slug: l.slug } },
    h('p', {}, h('a', { href: '/' }, '← All upcoming launches')),
    h('h1', { testid: 'launch-mission' }, l.mission),
    status, reason,
    h('div', { class: 'grid two' },
      h('section', { class: 'panel', 'aria-labelledby': 'facts-title' },
        h('h2', { id: 'facts-title' }, 'The flight'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Destination'), h('dd', { testid: 'launch-destination' }, destination(l.destination)),
          h('dt', {}, 'Date'), when,
          h('dt', {}, 'Rocket'), h('dd', { testid: 'launch-rocket' }, l.rocket?.name ?? '—'),
          h('dt', {}, 'Agency'), h('dd', {}, l.agency?.name ?? '—'),
          h('dt', {}, 'Price'), h('dd', { testid: 'launch-price' }, `${money(l.price_cents)} per seat`))),
      h('section', { class: 'panel', 'aria-labelledby': 'seats-title' },
        h('h2', { id: 'seats-title' }, 'Seats'),
        seats, meter, booked, viability,
        h('p', { class: 'muted', testid: 'live-note' }, 'These numbers update live as travelers book.'),
        action)));
  el.update = (x) => {
    const before = seats.textContent;
    seats.textContent = seatsText(x);
    seats.dataset.value = x.seats_available;
    if (before && before !== seats.textContent) flash(seats);
    meter.update(x);
    booked.textContent = `${plural(x.seats_booked, 'seat')} booked of ${x.capacity}`;
    viability.textContent = x.viable || x.status === 'confirmed'
      ? 'Enough passengers: this launch is set to fly.'
      : `${plural(x.min_passengers - x.seats_booked, 'more passenger')} needed to confirm this launch.`;
    viability.dataset.viable = String(Boolean(x.viable));
    replace(status, statusBadge(x.status),
      x.vip_only || isVipOnly(x) ? h('span', { class: 'badge badge-vip', testid: 'vip-only' }, `VIP early access until ${dateTime(x.public_from)}`) : null);
    reason.textContent = x.status_reason ? `Reason: ${x.status_reason}` : '';
    reason.hidden = !x.status_reason;
    when.textContent = `${dateTime(x.scheduled_at)} (${relative(x.scheduled_at)})`;
    replace(action, bookAction(x));
  };
  el.update(l);
  return el;
}

function bookAction(l) {
  if (!bookable(l)) {
    if (FINAL.has(l.status)) return h('p', { class: 'muted' }, `This launch is ${l.status}; it takes no more bookings.`);
    if (l.seats_available <= 0) return h('p', { class: 'muted' }, 'Sold out.');
    return h('p', { class: 'muted' }, 'This launch takes no more bookings.');
  }
  const target = `/traveler#book?launch=${encodeURIComponent(l.id)}`;
  if (user?.role === 'traveler') return h('a', { class: 'btn primary', href: target, testid: 'book-link' }, 'Book seats');
  if (!user) return h('a', { class: 'btn primary', href: `/auth?next=${encodeURIComponent(target)}`, testid: 'login-to-book' }, 'Log in to book');
  return h('p', { class: 'muted' }, 'Travelers book seats from their account.');
}

function update(next) {
  launch = next;
  view?.update(launch);
}

start();
