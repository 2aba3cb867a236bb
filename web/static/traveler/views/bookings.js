// My bookings: each launch's live status, passengers, and cancelling with the refund shown first.

import { api, newKey } from '../../common/api.js';
import { banner, busy, confirmDialog, h, replace, showError, toast } from '../../common/dom.js';
import { browserZone, downloadFile } from '../../common/files.js';
import { dateTime, money, plural, relative } from '../../common/format.js';
import { when } from '../../common/format.js';
import { FINAL, statusBadge } from '../../common/launches.js';
import { refundQuote } from '../store.js';

const CANCELLED_BY = {
  traveler: 'cancelled by you',
  launch_aborted: 'the launch was aborted',
  launch_failed: 'the launch failed',
};

export default {
  mount(el, ctx) {
    const store = ctx.bookings;
    const errors = banner();
    const result = banner('success');
    result.dataset.testid = 'cancel-result';
    const announce = h('p', { class: 'sr-only', 'aria-live': 'polite', testid: 'live-announcer' });
    const list = h('div', { class: 'grid cards', testid: 'bookings-list' });
    const rows = new Map();
    el.append(
      h('h1', {}, 'My bookings'),
      h('p', { class: 'muted' }, 'Launch status updates live. ', h('a', { href: '#book' }, 'Book another launch')),
      errors, result, announce, list);

    function render() {
      if (store.error && !store.loaded) errors.show(store.error);
      const items = store.sorted();
      if (!store.loaded) {
        replace(list, h('p', { class: 'loading' }, 'Loading your bookings…'));
        return;
      }
      if (!items.length) {
        rows.clear();
        replace(list, h('div', { class: 'panel empty', testid: 'no-bookings' },
          h('p', {}, 'You have no bookings yet.'),
          h('p', {}, h('a', { class: 'btn primary', href: '/' }, 'See upcoming launches'))));
        return;
      }
      list.querySelector('.empty, .loading')?.remove();
      const keep = new Set(items.map((b) => b.id));
      for (const [id, row] of rows) if (!keep.has(id)) { row.remove(); rows.delete(id); }
      items.forEach((b, i) => {
        const sig = signature(b);
        let row = rows.get(b.id);
        if (!row || row.dataset.sig !== sig) {
          const fresh = bookingRow(b);
          fresh.dataset.sig = sig;
          if (row) row.replaceWith(fresh);
          row = fresh;
          rows.set(b.id, row);
        }
        if (list.children[i] !== row) list.insertBefore(row, list.children[i] ?? null);
      });
    }

    function bookingRow(b) {
      const cancellable = b.status === 'confirmed' && !FINAL.has(b.launch_status);
      const passengers = h('details', { testid: 'passengers' },
        h('summary', {}, `Passengers (${b.seats})`), h('p', { class: 'muted' }, 'Loading…'));
      passengers.addEventListener('toggle', async () => {
        if (!passengers.open || passengers.dataset.loaded) return;
        try {
          const full = (await api(`/api/booking/bookings/${encodeURIComponent(b.id)}`)).booking;
          passengers.dataset.loaded = '1';
          passengers.lastChild.replaceWith(h('ul', {}, (full.passengers ?? []).map((p) => h('li', {}, `${p.name}, born ${p.birth_date}`))));
        } catch (err) {
          passengers.lastChild.textContent = err.message;
        }
      });
      return h('article', { class: 'panel booking', testid: 'booking-row', dataset: { bookingId: b.id, launchId: b.launch_id, status: b.status } },
        h('div', { class: 'badges' },
          h('span', { class: 'muted' }, 'Launch:'),
          h('span', { testid: 'launch-status', 'aria-live': 'polite' }, statusBadge(b.launch_status)),
          h('span', { class: 'muted' }, 'Booking:'),
          statusBadge(b.status, 'booking-status')),
        h('h2', {}, h('a', { href: `/launches/${encodeURIComponent(b.launch_slug)}` }, b.mission)),
        h('p', { class: 'muted' }, when(b.scheduled_at, { relative: true })),
        h('p', {}, `${plural(b.seats, 'seat')} × ${money(b.price_cents)} = `, h('strong', { testid: 'booking-total' }, money(b.total_cents))),
        b.launch_status === 'delayed' && b.status === 'confirmed'
          ? h('p', { class: 'banner banner-warn', testid: 'delay-note' }, 'This launch was delayed. If the delay came after you booked, cancelling refunds you in full.')
          : null,
        b.status === 'cancelled'
          ? h('p', { testid: 'refund' }, 'Cancelled', b.cancelled_at ? [' on ', when(b.cancelled_at)] : null, '. Refund: ',
            h('strong', {}, money(b.refund_cents ?? 0)), b.refund_pct !== null && b.refund_pct !== undefined ? ` (${b.refund_pct} %)` : '',
            CANCELLED_BY[b.cancel_reason] ? ` — ${CANCELLED_BY[b.cancel_reason]}` : '')
          : null,
        passengers,
        h('p', { class: 'hint' }, 'Booked ', when(b.created_at), ` · ref. ${b.id}`),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'btn', testid: 'ticket-download', title: 'E-ticket and receipt (PDF)', onclick: (e) => ticket(b, e.currentTarget) },
            b.status === 'cancelled' ? 'Download receipt' : 'Download ticket'),
          cancellable ? h('button', { type: 'button', class: 'btn', testid: 'cancel-button', onclick: (e) => cancel(b, e.currentTarget) }, 'Cancel booking') : null));
    }

    function ticket(b, button) {
      errors.hide();
      return busy(button, async () => {
        try {
          await downloadFile(`/api/booking/bookings/${encodeURIComponent(b.id)}/ticket.pdf`, {
            query: { tz: browserZone() }, fallback: `astrobookings-ticket-${b.id}.pdf`,
          });
        } catch (err) {
          showError(errors, err);
        }
      }, 'Preparing…');
    }

    // #bookings/<id> (the link in the booking's e-mail): that booking, shown once the list is there.
    let focusOn = ctx.arg;
    function reveal() {
      if (!focusOn) return;
      const row = rows.get(focusOn);
      if (!row) return;
      focusOn = null;
      row.classList.add('highlight');
      row.scrollIntoView({ block: 'center' });
    }

    async function cancel(b, button) {
      result.hide();
      errors.hide();
      const q = refundQuote(b, { delayedSinceBooking: store.delayedSinceBooking(b) });
      const body = h('div', { testid: 'refund-estimate', dataset: { pct: q.pct, cents: q.cents } },
        h('p', {}, `Cancel ${plural(b.seats, 'seat')} on ${b.mission} (${dateTime(b.scheduled_at)})?`),
        h('p', { class: 'total-line' }, 'You get back ', h('strong', { testid: 'refund-amount' }, money(q.cents)),
          ` of ${money(b.total_cents)} (${q.pct} %).`),
        h('p', { class: 'muted' }, `Because ${q.why}.`),
        q.maybeFull ? h('p', { class: 'banner banner-info' }, `This launch has been delayed: if the delay came after your booking, you get 100 % (${money(b.total_cents)}).`) : null,
        q.pct === 0 && !q.maybeFull ? h('p', { class: 'banner banner-warn' }, 'You will not get any money back.') : null);
      const ok = await confirmDialog({
        title: 'Cancel this booking?', body, confirm: 'Cancel booking', cancel: 'Keep it', danger: true, testid: 'cancel-dialog',
      });
      if (!ok) return;
      const key = newKey();
      await busy(button, async () => {
        try {
          const out = await api(`/api/booking/bookings/${encodeURIComponent(b.id)}/cancel`, { method: 'POST', idempotencyKey: key });
          store.update(out.booking);
          const differs = out.refund_cents !== q.cents ? ' (the final figure from AstroBookings)' : '';
          result.show(`Booking cancelled. Refund: ${money(out.refund_cents)} (${out.refund_pct} %)${differs}.`);
          result.dataset.refundCents = out.refund_cents;
          result.focus?.();
        } catch (err) {
          showError(errors, err);
        }
      }, 'Cancelling…');
    }

    const onChange = (e) => {
      render();
      reveal();
      if (e.detail?.text) {
        announce.textContent = e.detail.text;
        if (e.detail.kind === 'status') toast(e.detail.text);
      }
      if (e.detail?.kind === 'error' && store.error) errors.show(store.error);
    };
    store.addEventListener('change', onChange);
    render();
    reveal();
    return () => store.removeEventListener('change', onChange);
  },
};

function signature(b) {
  return [b.status, b.launch_status, b.scheduled_at, b.refund_cents, b.cancelled_at].join('|');
}

