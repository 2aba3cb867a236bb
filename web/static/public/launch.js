// PublicWeb `/launches/<slug>`: one launch with a live seat gauge and status.

import { api } from '../common/api.js';
import { h, replace } from '../common/dom.js';
import { dateTime, destination, money, plural, relative, utcDateTime, when } from '../common/format.js';
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
  if (err.code === 'vip_only') return vipOnly(err.details?.public_from, back);
  if (err.status === 404) {
    return h('div', { class: 'panel', testid: 'launch-not-found' },
      h('h1', {}, 'No such launch'), h('p', {}, `We have no launch called “${slug}”.`), back);
  }
  return h('div', { class: 'panel' }, h('h1', {}, 'Launch'),
    h('p', { class: 'banner banner-error', role: 'alert', testid: 'error-banner' }, err.message), back);
}

/**
 * A launch still in its VIP window, opened by someone who is not VIP (a shared link): why it is hidden,
 * when it opens to everyone, how one becomes VIP; the page shows the launch by itself once it is public.
 */
function vipOnly(publicFrom, back) {
  const at = publicFrom ? new Date(publicFrom) : null;
  const opens = at && !Number.isNaN(at.getTime())
    ? h('p', { testid: 'vip-public-from' }, h('strong', {}, 'It opens to everyone on '), when(publicFrom),
      ` (${relative(publicFrom)}). Come back then, or keep this page open: it shows the launch by itself.`)
    : h('p', {}, 'It opens to everyone soon.');
  const who = user?.role === 'traveler'
    ? h('p', {}, 'You are logged in, but not VIP yet.')
    : user ? null
      : h('p', {}, 'Already VIP? ', h('a', { href: `/auth?next=${encodeURIComponent(location.pathname)}`, testid: 'vip-login' }, 'Log in'), ' to see and book it now.');
  if (at) {
    const wait = at.getTime() - Date.now();
    if (wait < 2 ** 31 - 1) setTimeout(() => location.reload(), Math.max(0, wait) + 1000);
  }
  return h('div', { class: 'panel', testid: 'launch-vip-only' },
    h('h1', {}, 'VIP early access'),
    h('p', {}, 'This launch was scheduled a short while ago. For its first hours it is open only to VIP travelers, who hear of new launches first and may book them early.'),
    opens,
    h('p', { class: 'muted' }, 'A traveler becomes VIP with active bookings on two confirmed launches.'),
    who,
    back);
}

function render(l) {
  const seats = h('p', { class: 'big-number', testid: 'seats-left', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const booked = h('p', { class: 'muted', testid: 'seats-booked' });
  const viability = h('p', { testid: 'viability', 'aria-live': 'polite' });
  const meter = gauge(l, { big: true });
  const status = h('div', { class: 'badges', testid: 'launch-status', 'aria-live': 'polite' });
  const reason = h('p', { class: 'muted', testid: 'status-reason' });
  const whenBox = h('dd', { testid: 'launch-date' });
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
          h('dt', {}, 'Date'), whenBox,
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
      x.vip_only || isVipOnly(x) ? h('span', { class: 'badge badge-vip', testid: 'vip-only', title: utcDateTime(x.public_from) }, `VIP early access until ${dateTime(x.public_from)}`) : null);
    reason.textContent = x.status_reason ? `Reason: ${x.status_reason}` : '';
    reason.hidden = !x.status_reason;
    replace(whenBox, when(x.scheduled_at, { relative: true }));
    replace(action, bookAction(x));
  };
  el.update(l);
  return el;
}

function bookAction(l) {
  if (!bookable(l)) {
    if (FINAL.has(l.status)) return h('p', { class: 'muted' }, `This launch is ${l.status}; it takes no more bookings.`);
    if (l.seats_available <= 0 && new Date(l.scheduled_at).getTime() > Date.now()) return waitlistAction(l);
    return h('p', { class: 'muted' }, 'This launch takes no more bookings.');
  }
  const target = `/traveler#book?launch=${encodeURIComponent(l.id)}`;
  if (user?.role === 'traveler') return h('a', { class: 'btn primary', href: target, testid: 'book-link' }, 'Book seats');
  if (!user) return h('a', { class: 'btn primary', href: `/auth?next=${encodeURIComponent(target)}`, testid: 'login-to-book' }, 'Log in to book');
  return h('p', { class: 'muted' }, 'Travelers book seats from their account.');
}

/** Sold out: a traveler may join the waiting list (freed seats are offered in joining order). */
function waitlistAction(l) {
  const target = `/traveler#waitlist?launch=${encodeURIComponent(l.id)}`;
  const note = h('p', { class: 'muted' }, 'Sold out. Join the waiting list: seats that come free are offered in joining order, each for a limited time.');
  if (user?.role === 'traveler') return h('div', {}, note, h('a', { class: 'btn primary', href: target, testid: 'join-waitlist' }, 'Join the waiting list'));
  if (!user) return h('div', {}, note, h('a', { class: 'btn primary', href: `/auth?next=${encodeURIComponent(target)}`, testid: 'login-to-wait' }, 'Log in to join the waiting list'));
  return note;
}

function update(next) {
  launch = next;
  view?.update(launch);
}

start();
