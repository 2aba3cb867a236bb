// The live occupancy dashboard: every launch's seats, viability and status; bookings as they happen.

import { h, replace, banner, stacked } from '../../common/dom.js';
import { destination, money, plural, when } from '../../common/format.js';
import { bySchedule, flash, FINAL, gauge, statusBadge } from '../../common/launches.js';

export default {
  mount(el, ctx) {
    const store = ctx.agency;
    const errors = banner();
    const tiles = h('div', { class: 'grid tiles', testid: 'totals' });
    const tbody = h('tbody', {});
    const feed = h('ol', { class: 'feed', testid: 'activity-feed', 'aria-live': 'polite', 'aria-relevant': 'additions' });
    const showFinished = h('input', { type: 'checkbox', id: 'show-finished', testid: 'show-finished' });
    const rows = new Map();
    const finishedNote = h('p', { class: 'muted', testid: 'finished-note', hidden: true });
    el.append(
      h('h1', {}, 'Occupancy'),
      h('p', { class: 'muted' }, 'Seats, viability and status of your launches, live. ',
        h('a', { href: '#schedule' }, 'Schedule a launch')),
      errors, tiles,
      h('div', { class: 'layout-split' },
        h('section', { 'aria-labelledby': 'occ-title' },
          h('div', { class: 'actions' }, h('h2', { id: 'occ-title', class: 'sr-only' }, 'Launches'),
            h('label', { class: 'choice', for: 'show-finished' }, showFinished, ' Show finished launches')),
          h('div', { class: 'table-wrap' },
            stacked(h('table', { testid: 'occupancy-table' },
              h('thead', {}, h('tr', {}, ['Launch', 'Status', 'Seats booked', 'Viable', 'Waiting list', 'Booked value', ''].map((x) => h('th', { scope: 'col' }, x)))),
              tbody))),
          finishedNote),
        h('section', { class: 'panel', 'aria-labelledby': 'feed-title' },
          h('h2', { id: 'feed-title' }, 'As it happens'),
          feed)));
    showFinished.addEventListener('change', render);

    function render() {
      if (store.error) errors.show(`Live updates: ${store.error}`);
      const all = [...store.launches.values()].sort(bySchedule);
      const finished = all.filter((l) => FINAL.has(l.status));
      // With nothing still to fly, the finished launches are the dashboard: listed without asking.
      const withFinished = showFinished.checked || finished.length === all.length;
      const shown = all.filter((l) => withFinished || !FINAL.has(l.status));
      const keep = new Set(shown.map((l) => l.id));
      for (const [id, row] of rows) if (!keep.has(id)) { row.remove(); rows.delete(id); }
      shown.forEach((l, i) => {
        let row = rows.get(l.id);
        if (!row) {
          row = launchRow(l);
          rows.set(l.id, row);
        } else {
          row.update(l);
        }
        if (tbody.children[i] !== row) tbody.insertBefore(row, tbody.children[i] ?? null);
      });
      tbody.querySelector('.empty-row')?.remove();
      if (!shown.length) {
        tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 7, class: 'empty', testid: 'no-launches' },
          store.loaded ? 'No launches yet. Schedule your first one.' : 'Loading…')));
      }
      finishedNote.hidden = !finished.length;
      finishedNote.textContent = !finished.length ? ''
        : finished.length === all.length ? `Every launch you scheduled has finished (${all.length}). Schedule the next one.`
          : withFinished ? `Showing ${plural(finished.length, 'finished launch', 'finished launches')} too.`
            : `${plural(finished.length, 'finished launch', 'finished launches')} hidden: tick “Show finished launches” to see them.`;
      const open = all.filter((l) => !FINAL.has(l.status));
      const seats = open.reduce((n, l) => n + l.seats_booked, 0);
      const value = open.reduce((n, l) => n + l.seats_booked * l.price_cents, 0);
      const wanted = open.reduce((n, l) => n + (l.waitlist_seats ?? 0), 0);
      replace(tiles,
        tile('Open launches', String(open.length), 'open-launches'),
        tile('Seats booked on them', String(seats), 'seats-booked-total'),
        tile('Booked value', money(value), 'booked-value'),
        tile('Seats wanted on waiting lists', String(wanted), 'waitlist-seats-total'));
      const today = new Date().toDateString();
      replace(feed, store.feed.length
        ? store.feed.map((f) => h('li', { dataset: { kind: f.kind, launchId: f.launchId }, testid: 'feed-item' },
          when(f.at.toISOString(), { timeOnly: f.at.toDateString() === today }), ' ', f.text))
        : [h('li', { class: 'muted' }, 'Bookings and cancellations appear here as they happen.')]);
    }

    function launchRow(l) {
      const status = h('td', { testid: 'status-cell' });
      const seats = h('td', { class: 'seats' });
      const booked = h('strong', { testid: 'seats-booked', 'aria-live': 'polite' });
      const meter = gauge(l);
      const viable = h('td', { testid: 'viability' });
      const value = h('td', { class: 'num', testid: 'booked-value' });
      const waiting = h('td', { testid: 'waitlist-demand', 'aria-live': 'polite' });
      const whenBox = h('div', { class: 'muted' });
      const row = h('tr', { testid: 'occupancy-row', dataset: { launchId: l.id } },
        h('td', { class: 'lead long-text' }, h('a', { href: `#launch/${encodeURIComponent(l.id)}`, testid: 'launch-link' }, l.mission), whenBox,
          h('div', { class: 'muted' }, `${destination(l.destination)} · ${l.rocket?.name ?? ''}`)),
        status, seats, viable, waiting, value,
        h('td', { class: 'nowrap' }, h('a', { class: 'btn small', href: `#launch/${encodeURIComponent(l.id)}`, testid: 'manage-link' }, 'Manage')));
      seats.append(booked, ` of ${l.capacity}`, meter);
      row.update = (x) => {
        const before = booked.textContent;
        booked.textContent = String(x.seats_booked);
        booked.dataset.value = x.seats_booked;
        if (before && before !== booked.textContent) { flash(booked); flash(row); }
        meter.update(x);
        replace(whenBox, when(x.scheduled_at));
        replace(status, statusBadge(x.status), x.vip_only ? h('span', { class: 'badge badge-vip' }, 'VIP window') : null);
        row.dataset.status = x.status;
        viable.dataset.viable = String(Boolean(x.viable));
        viable.textContent = x.viable
          ? `Yes (min ${x.min_passengers})`
          : `Needs ${plural(x.min_passengers - x.seats_booked, 'more passenger')} (min ${x.min_passengers})`;
        value.textContent = money(x.seats_booked * x.price_cents);
        const length = x.waitlist_length ?? 0;
        waiting.dataset.length = String(length);
        waiting.dataset.seats = String(x.waitlist_seats ?? 0);
        waiting.textContent = length
          ? `${plural(length, 'traveler')} waiting, ${plural(x.waitlist_seats, 'seat')} wanted${x.seats_offered ? ` (${plural(x.seats_offered, 'seat')} on offer)` : ''}`
          : x.seats_offered ? `${plural(x.seats_offered, 'seat')} on offer` : '—';
      };
      row.update(l);
      return row;
    }

    const onChange = () => render();
    store.addEventListener('change', onChange);
    render();
    return () => store.removeEventListener('change', onChange);
  },
};

function tile(label, value, testid) {
  return h('div', { class: 'panel' }, h('div', { class: 'muted' }, label), h('div', { class: 'big-number', testid }, value));
}
