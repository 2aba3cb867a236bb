// The traveler's bookings, kept live from the `traveler` channel; views listen for 'change'.

import { all } from '../common/api.js';
import { plural } from '../common/format.js';

const REFUNDED_BY_LAUNCH = new Set(['aborted', 'failed']);

export class BookingStore extends EventTarget {
  constructor(live) {
    super();
    this.items = new Map(); // id -> booking (BookingOut)
    this.loaded = false;
    this.error = null;
    this.snapshots = 0; // a REST answer begun before the latest snapshot is older than it
    this.delayedAt = new Map(); // launch id -> when we saw it delayed (ms)
    this.live = live;
    this.refetching = null;
    live.subscribe('traveler', {
      snapshot: (data) => {
        this.snapshots += 1;
        this.replace(data.bookings ?? []);
      },
      event: (name, data) => this.onEvent(name, data),
      error: (code, message) => {
        this.error = message;
        this.emit({ kind: 'error' });
      },
    });
    this.load();
  }

  async load() {
    const seen = this.snapshots;
    try {
      const list = await all('/api/booking/bookings');
      if (this.snapshots === seen) this.replace(list);
      this.error = null;
    } catch (err) {
      this.error = err.message;
      this.emit({ kind: 'error' });
    }
  }

  replace(list) {
    const before = this.items;
    this.items = new Map(list.map((b) => [b.id, { ...(before.get(b.id) ?? {}), ...b }]));
    this.loaded = true;
    this.emit({ kind: 'reset' });
  }

  sorted() {
    return [...this.items.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  }

  onEvent(name, data) {
    if (name.startsWith('waitlist_')) {
      // The waiting-list view listens: an offer, a place that moved, an offer that expired.
      this.emit({ kind: 'waitlist', name, data });
      return;
    }
    if (name === 'booking_confirmed') {
      this.items.set(data.id, { ...(this.items.get(data.id) ?? {}), ...data });
      this.emit({ kind: 'booked', id: data.id, text: `Booking confirmed: ${plural(data.seats, 'seat')} on ${data.mission}.` });
    } else if (name === 'booking_cancelled') {
      const b = this.items.get(data.booking_id);
      if (b) {
        this.items.set(b.id, {
          ...b, status: 'cancelled', refund_cents: data.refund_cents, refund_pct: data.refund_pct,
          cancelled_at: b.cancelled_at ?? new Date().toISOString(),
        });
      }
      this.emit({ kind: 'cancelled', id: data.booking_id, text: `Booking cancelled${b ? ` on ${b.mission}` : ''}.` });
    } else if (name === 'status') {
      if (data.status === 'delayed') this.delayedAt.set(data.launch_id, Date.now());
      let mission = null;
      for (const b of this.items.values()) {
        if (b.launch_id !== data.launch_id) continue;
        mission = b.mission;
        this.items.set(b.id, { ...b, launch_status: data.status, scheduled_at: data.scheduled_at ?? b.scheduled_at });
      }
      this.emit({
        kind: 'status', launchId: data.launch_id,
        text: `${mission ?? 'A launch you booked'} is now ${data.status}${data.reason ? ` (${data.reason})` : ''}.`,
      });
      // An aborted or failed launch refunds its bookings by itself: fetch their refunds.
      if (REFUNDED_BY_LAUNCH.has(data.status)) this.refetchSoon();
    }
  }

  refetchSoon() {
    clearTimeout(this.refetching);
    this.refetching = setTimeout(() => this.load(), 800);
  }

  /** Did we see this booking's launch delayed after the booking was made? */
  delayedSinceBooking(b) {
    const at = this.delayedAt.get(b.launch_id);
    return at !== undefined && at > new Date(b.created_at).getTime();
  }

  update(booking) {
    this.items.set(booking.id, { ...(this.items.get(booking.id) ?? {}), ...booking });
    this.emit({ kind: 'updated', id: booking.id });
  }

  emit(detail) {
    this.dispatchEvent(new CustomEvent('change', { detail }));
  }
}

/** DESIGN 5 refund policy, as the browser can tell it before asking the API. */
export function refundQuote(b, { delayedSinceBooking = false, now = Date.now() } = {}) {
  const left = new Date(b.scheduled_at).getTime() - now;
  const days = Math.floor(left / 864e5);
  let pct = left >= 365 * 864e5 ? 90 : left >= 90 * 864e5 ? 70 : 0;
  let why = pct === 90
    ? `the launch is ${days} days away (365 or more: 90 %)`
    : pct === 70
      ? `the launch is ${days} days away (90 to 364: 70 %)`
      : `the launch is less than 90 days away (${Math.max(days, 0)} days: no refund, the seats stay sold)`;
  if (delayedSinceBooking) {
    pct = 100;
    why = 'the launch was delayed after you booked (100 %)';
  }
  return {
    pct,
    cents: Math.floor((b.total_cents * pct + 50) / 100),
    why,
    maybeFull: !delayedSinceBooking && b.launch_status === 'delayed',
  };
}
