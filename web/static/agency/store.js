// The agency's launches with live occupancy, and what happens to them, from the `agency` channel.

import { all } from '../common/api.js';
import { money } from '../common/format.js';
import { applyEvent } from '../common/launches.js';

const FEED_SIZE = 50;

export class AgencyStore extends EventTarget {
  constructor(live) {
    super();
    this.launches = new Map(); // id -> launch with occupancy (LaunchOut)
    this.feed = []; // newest first: {at, kind, text, launchId}
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
      this.note('launch_added', `Launch scheduled: ${data.mission}.`, data.id);
      this.emit({ kind: 'launch', id: data.id });
      return;
    }
    const id = data.launch_id;
    const launch = this.launches.get(id);
    const mission = launch?.mission ?? 'a launch';
    if (name === 'occupancy' || name === 'status') {
      if (launch) this.launches.set(id, applyEvent(launch, name, data));
      if (name === 'status') {
        this.note('status', `${mission} is now ${data.status}${data.reason ? ` (${data.reason})` : ''}.`, id);
      }
      this.emit({ kind: name, id });
    } else if (name === 'booking_confirmed') {
      this.note('booking', `${data.seats} seat(s) booked on ${mission} — ${money(data.total_cents)}.`, id);
      this.emit({ kind: 'booking', id });
    } else if (name === 'booking_cancelled') {
      const refund = data.refund_cents ? `, ${money(data.refund_cents)} refunded (${data.refund_pct} %)` : ', no refund';
      // A traveler's cancellation without refund keeps the seats sold; a launch's own end cancels them all.
      const seats = data.seats_released || data.cancel_reason !== 'traveler' ? '' : ' (the seats stay sold)';
      this.note('cancel', `${data.seats} seat(s) cancelled on ${mission}${refund}${seats}.`, id);
      this.emit({ kind: 'cancel', id });
    }
  }

  note(kind, text, launchId) {
    this.feed.unshift({ at: new Date(), kind, text, launchId });
    this.feed.length = Math.min(this.feed.length, FEED_SIZE);
    this.emit({ kind: 'feed', text });
  }

  emit(detail) {
    this.dispatchEvent(new CustomEvent('change', { detail }));
  }
}
