// Launch pieces shared by the apps: status rules, seat gauge, badges, filters.

import { h } from './dom.js';
import { statusLabel } from './format.js';

export const OPEN = new Set(['scheduled', 'confirmed', 'delayed']);
export const FINAL = new Set(['aborted', 'successful', 'failed']);
// DESIGN 5: which status the agency may set next.
export const TRANSITIONS = {
  scheduled: ['confirmed', 'delayed', 'aborted'],
  confirmed: ['delayed', 'aborted', 'successful', 'failed'],
  delayed: ['delayed', 'aborted', 'successful', 'failed'],
  aborted: [],
  successful: [],
  failed: [],
};

export function isVipOnly(launch, now = Date.now()) {
  return Boolean(launch.public_from) && new Date(launch.public_from).getTime() > now;
}

/** Can a traveler book it now (as far as the browser knows)? */
export function bookable(launch, now = Date.now()) {
  return OPEN.has(launch.status) && new Date(launch.scheduled_at).getTime() > now && launch.seats_available > 0;
}

export function statusBadge(status, testid = 'status-badge') {
  return h('span', { class: `badge badge-${status}`, testid, dataset: { value: status } }, statusLabel(status));
}

export function seatsText(launch) {
  if (launch.seats_available <= 0) return 'Sold out';
  return `${launch.seats_available} of ${launch.capacity} seats left`;
}

/** The seat gauge: booked share, with a mark at min_passengers. */
export function gauge(launch, { big = false } = {}) {
  const bar = h('span', {});
  const mark = h('span', { class: 'gauge-min', title: 'minimum passengers to fly', 'aria-hidden': 'true' });
  const el = h('div', {
    class: ['gauge', big ? 'big' : '', 'gauge-wrap'],
    role: 'meter',
    'aria-valuemin': 0,
    testid: 'seat-gauge',
  }, bar, mark);
  el.update = (l) => {
    const pct = l.capacity ? Math.min(100, (100 * l.seats_booked) / l.capacity) : 0;
    bar.style.width = `${pct}%`;
    mark.style.left = `${l.capacity ? (100 * l.min_passengers) / l.capacity : 0}%`;
    el.classList.toggle('full', l.seats_available <= 0);
    el.setAttribute('aria-valuemax', l.capacity);
    el.setAttribute('aria-valuenow', l.seats_booked);
    el.setAttribute('aria-label', `${l.seats_booked} of ${l.capacity} seats booked`);
    el.dataset.booked = l.seats_booked;
  };
  el.update(launch);
  return el;
}

/** Briefly highlight an element whose number just changed. */
export function flash(el) {
  el.classList.remove('bump');
  void el.offsetWidth; // restart the animation
  el.classList.add('bump');
}

/** Apply an `occupancy` or `status` event to a launch object (returns the updated copy). */
export function applyEvent(launch, event, data) {
  if (event === 'occupancy') {
    const { launch_id: _id, ...occupancy } = data;
    return { ...launch, ...occupancy };
  }
  if (event === 'status') {
    return {
      ...launch,
      status: data.status,
      scheduled_at: data.scheduled_at ?? launch.scheduled_at,
      status_reason: data.reason ?? null,
    };
  }
  return launch;
}

/** The list filters as the API applies them: destination, and the UTC day within [from, to]. */
export function matches(launch, { destination, from, to }) {
  if (destination && launch.destination !== destination) return false;
  const day = new Date(launch.scheduled_at).toISOString().slice(0, 10);
  if (from && day < from) return false;
  if (to && day > to) return false;
  return true;
}

export function bySchedule(a, b) {
  const d = new Date(a.scheduled_at).getTime() - new Date(b.scheduled_at).getTime();
  return d || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
