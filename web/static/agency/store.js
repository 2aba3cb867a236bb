// The agency's launches with live occupancy, and what happens to them, from the `agency` channel; the
// feed starts from the agency's recent history (GET /api/agency/activity), so a reload keeps it.

import { all, api } from '../common/api.js';
import { money, plural, statusLabel } from '../common/format.js';
import { applyEvent } from '../common/launches.js';

const FEED_SIZE = 50;

/** The feed's line for one thing that happened (a live event or an item of the history). */
export function feedText(kind, x) {
  const mission = x.mission ?? 'a launch';
  if (kind === 'launch_added') return `Launch scheduled: ${mission}.`;
  if (kind === 'status') return `${mission} is now ${statusLabel(x.status).toLowerCase()}${x.reason ? ` (${x.reason})` : ''}.`;
  if (kind === 'booking') return `${plural(x.seats, 'seat')} booked on ${mission} — ${money(x.total_cents)}.`;
  const refund = x.refund_cents ? `, ${money(x.refund_cents)} refunded (${x.refund_pct} %)` : ', no refund';
  // A traveler's cancellation without refund keeps the seats sold; a launch's own end cancels them all.
  const kept = x.seats_released || (x.cancel_reason && x.cancel_reason !== 'traveler') ? '' : ' (the seats stay sold)';
  return `${plural(x.seats, 'seat')} cancelled on ${mission}${refund}${kept}.`;
}

function keyOf(kind, x) {
  if (kind === 'launch_added') return `added:${x.launch_id}`;
  if (kind === 'status') return `status:${x.launch_id}:${x.status}`;
  return `${kind}:${x.booking_id}`;
}

export class AgencyStore extends EventTarget {
  constructor(live) {
    super();
    this.launches = new Map(); // id -> launch with occupancy (LaunchOut)
    this.feed = []; // newest first: {at, kind, text, launchId, key}
    this.loaded = false;
    this.error = null;
    this.snapshots = 0; // a REST answer begun before the latest snapshot is older than it
    live.subscribe('agency', {
      snapshot: (data) => {
        this.snapshots += 1;
        this.replace(data.launches ?? []);
      },
      event: (name, data) => this.onEvent(name, data),
      error: (code, message) => {
        this.error = message;
        this.emit({ kind: 'error' });
      },
    });
    this.load();
    this.loadHistory();
  }

  async load() {
    const seen = this.snapshots;
    try {
      const list = await all('/api/agency/launches');
      if (this.snapshots === seen) this.replace(list);
    } catch (err) {
      this.error = err.message;
      this.emit({ kind: 'error' });
    }
  }

  /** The recent history under what arrived live meanwhile (each thing once). */
  async loadHistory() {
    try {
      const { items } = await api('/api/agency/activity', { query: { limit: FEED_SIZE } });
      const seen = new Set(this.feed.map((f) => f.key));
      const past = items
        .map((x) => ({ at: new Date(x.at), kind: x.kind, text: feedText(x.kind, x), launchId: x.launch_id, key: keyOf(x.kind, x) }))
        .filter((f) => !seen.has(f.key));
      this.feed = [...this.feed, ...past].slice(0, FEED_SIZE);
      this.historyLoaded = true;
      this.emit({ kind: 'feed' });
    } catch {
      // the feed then starts with what happens from now on
    }
  }

  replace(list) {
    this.launches = new Map(list.map((l) => [l.id, l]));
    this.loaded = true;
    this.emit({ kind: 'reset' });
  }

  get(id) {
    return this.launches.get(id);
  }

  set(launch) {
    this.launches.set(launch.id, { ...(this.launches.get(launch.id) ?? {}), ...launch });
    this.emit({ kind: 'launch', id: launch.id });
  }

  onEvent(name, data) {
    if (name === 'launch_added') {
      this.launches.set(data.id, { ...data, vip_only: new Date(data.public_from).getTime() > Date.now() });
      this.note('launch_added', { ...data, launch_id: data.id });
      this.emit({ kind: 'launch', id: data.id });
      return;
    }
    const id = data.launch_id;
    const launch = this.launches.get(id);
    const mission = launch?.mission ?? data.mission;
    if (name === 'waitlist_demand') {
      // The demand on the launch's waiting list: travelers waiting, the seats they want, seats on offer.
      if (launch) {
        this.launches.set(id, {
          ...launch, waitlist_length: data.waitlist_length, waitlist_seats: data.waitlist_seats, seats_offered: data.seats_offered,
        });
      }
      this.emit({ kind: 'waitlist', id });
      return;
    }
    if (name === 'occupancy' || name === 'status') {
      if (launch) this.launches.set(id, applyEvent(launch, name, data));
      if (name === 'status') this.note('status', { ...data, mission });
      this.emit({ kind: name, id });
    } else if (name === 'booking_confirmed') {
      this.note('booking', { ...data, booking_id: data.id, mission });
      this.emit({ kind: 'booking', id });
    } else if (name === 'booking_cancelled') {
      this.note('cancel', { ...data, mission });
      this.emit({ kind: 'cancel', id });
    }
  }

  note(kind, x) {
    const key = keyOf(kind, x);
    this.feed = this.feed.filter((f) => f.key !== key || kind === 'status');
    this.feed.unshift({ at: new Date(), kind, text: feedText(kind, x), launchId: x.launch_id, key });
    this.feed.length = Math.min(this.feed.length, FEED_SIZE);
    this.emit({ kind: 'feed', text: this.feed[0].text });
  }

  emit(detail) {
    this.dispatchEvent(new CustomEvent('change', { detail }));
  }
}
