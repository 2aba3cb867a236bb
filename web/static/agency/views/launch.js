// One launch: live seats, the status moves allowed now (DESIGN 5), and the manifest.

import { api } from '../../common/api.js';
import { banner, busy, confirmDialog, field, h, replace, showError, table } from '../../common/dom.js';
import { dateTime, destination, isoToLocalInput, localInputToIso, money, plural, statusLabel, utcDateTime, when, zoneName } from '../../common/format.js';
import { flash, gauge, statusBadge, TRANSITIONS } from '../../common/launches.js';

const MOVES = {
  confirmed: { label: 'Confirm', hint: 'The launch will fly, whatever the number of passengers.' },
  delayed: { label: 'Delay…', hint: 'Set a later date; travelers booked before the delay may cancel with a full refund.' },
  aborted: { label: 'Abort…', hint: 'Cancels the launch: every active booking is refunded in full.', danger: true },
  successful: { label: 'Mark successful', hint: 'After the scheduled time: the launch flew. Its commission invoice is issued.' },
  failed: { label: 'Mark failed', hint: 'After the scheduled time: every traveler is refunded in full.', danger: true },
};

export default {
  async mount(el, ctx) {
    const store = ctx.agency;
    const id = ctx.arg;
    const errors = banner();
    const done = banner('success');
    done.dataset.testid = 'status-result';
    el.append(h('p', {}, h('a', { href: '#dashboard' }, '← All launches')), errors);
    let launch;
    try {
      launch = (await api(`/api/agency/launches/${encodeURIComponent(id)}`)).launch;
      store.set(launch);
    } catch (err) {
      el.append(h('h1', {}, 'Launch'));
      showError(errors, err);
      return undefined;
    }
    const title = h('h1', { testid: 'launch-mission' });
    const badges = h('div', { class: 'badges', testid: 'launch-status', 'aria-live': 'polite' });
    const facts = h('dl', { class: 'facts' });
    const seats = h('p', { class: 'big-number', testid: 'seats-booked', 'aria-live': 'polite' });
    const meter = gauge(launch, { big: true });
    const viability = h('p', { testid: 'viability' });
    const actions = h('div', { testid: 'status-actions' });
    const manifestBox = h('div', { testid: 'manifest' });
    el.append(title, badges, done,
      h('div', { class: 'grid two' },
        h('section', { class: 'panel' }, h('h2', {}, 'Details'), facts),
        h('section', { class: 'panel' }, h('h2', {}, 'Seats'), seats, meter, viability)),
      h('section', { class: 'panel', 'aria-labelledby': 'status-title' }, h('h2', { id: 'status-title' }, 'Change the status'), actions),
      h('section', { 'aria-labelledby': 'manifest-title' },
        h('div', { class: 'actions' }, h('h2', { id: 'manifest-title' }, 'Manifest'),
          h('button', { type: 'button', class: 'btn small', testid: 'manifest-reload', onclick: loadManifest }, 'Reload')),
        manifestBox));

    function draw() {
      launch = store.get(id) ?? launch;
      const l = launch;
      title.textContent = l.mission;
      const vip = l.vip_only || new Date(l.public_from).getTime() > Date.now();
      replace(badges, statusBadge(l.status), vip ? h('span', { class: 'badge badge-vip', title: utcDateTime(l.public_from) }, `VIP window until ${dateTime(l.public_from)}`) : null);
      replace(facts,
        h('dt', {}, 'Destination'), h('dd', {}, destination(l.destination)),
        h('dt', {}, 'Date'), h('dd', { testid: 'launch-date' }, when(l.scheduled_at, { relative: true })),
        vip ? [h('dt', {}, 'Public from'), h('dd', { testid: 'public-from' }, when(l.public_from),
          h('div', { class: 'hint' }, 'Until then only VIP travelers see and book it (they were e-mailed at once).'))] : null,
        h('dt', {}, 'Rocket'), h('dd', {}, l.rocket?.name ?? '—'),
        h('dt', {}, 'Price'), h('dd', {}, `${money(l.price_cents)} per seat`),
        h('dt', {}, 'Public page'), h('dd', {}, h('a', { href: `/launches/${encodeURIComponent(l.slug)}` }, `/launches/${l.slug}`)),
        l.status_reason ? [h('dt', {}, 'Reason'), h('dd', { testid: 'status-reason' }, l.status_reason)] : null);
      const before = seats.textContent;
      seats.textContent = `${l.seats_booked} / ${l.capacity}`;
      seats.dataset.value = l.seats_booked;
      if (before && before !== seats.textContent) flash(seats);
      meter.update(l);
      viability.textContent = l.viable
        ? `Viable: at least ${plural(l.min_passengers, 'passenger')} booked.`
        : `Not viable yet: ${plural(l.min_passengers - l.seats_booked, 'more passenger')} needed (min ${l.min_passengers}).`;
      if (!delaying) drawActions(); // live numbers must not wipe a date being typed
    }

    let delaying = false;
    let dueTimer = null;
    /** Successful and failed open at the scheduled time: redraw the actions then, without a reload. */
    function armDueTimer(l) {
      clearTimeout(dueTimer);
      const wait = new Date(l.scheduled_at).getTime() - Date.now();
      if (wait > 0 && wait < 2 ** 31 - 1) dueTimer = setTimeout(() => { if (!delaying) drawActions(); }, wait + 50);
    }
    function drawActions() {
      delaying = false;
      const l = launch;
      armDueTimer(l);
      const moves = TRANSITIONS[l.status] ?? [];
      if (!moves.length) {
        replace(actions, h('p', { class: 'muted', testid: 'no-moves' }, `${statusLabel(l.status)} is final: the status cannot change any more.`));
        return;
      }
      const early = Date.now() < new Date(l.scheduled_at).getTime();
      replace(actions,
        h('p', { class: 'muted' }, `Now ${statusLabel(l.status)}. You may:`),
        h('div', { class: 'actions' }, moves.map((to) => {
          const m = MOVES[to];
          const tooEarly = early && (to === 'successful' || to === 'failed');
          return h('button', {
            type: 'button',
            class: m.danger ? 'btn danger' : 'btn',
            testid: `status-action-${to}`,
            disabled: tooEarly,
            title: tooEarly ? `Possible after ${dateTime(l.scheduled_at)} (${utcDateTime(l.scheduled_at)})` : m.hint,
            onclick: (e) => move(to, e.currentTarget),
          }, m.label);
        })),
        early && moves.includes('successful') ? h('p', { class: 'hint', testid: 'moves-later' }, 'Successful and failed can be reported from ', when(l.scheduled_at), ' (these buttons turn on by themselves then).') : null);
    }

    async function move(to, button) {
      errors.hide();
      done.hide();
      if (to === 'delayed') {
        delayForm();
        return;
      }
      let reason = null;
      if (to === 'aborted' || to === 'failed') {
        let costs = null;
        try { // what it costs now, from the server: the bookings refunded, the fee invoiced
          costs = await busy(button, () => api(`/api/agency/launches/${encodeURIComponent(id)}/bookings`));
        } catch (err) {
          showError(errors, err);
          return;
        }
        if (!costs) return; // a click while it was busy
        const reasonInput = h('textarea', { name: 'reason', testid: 'status-reason-input', maxlength: 1000 });
        const ok = await confirmDialog({
          title: to === 'aborted' ? 'Abort this launch?' : 'Report this launch as failed?',
          body: h('div', {}, consequences(to, costs), field('Reason', reasonInput, { optional: true })),
          confirm: to === 'aborted' ? 'Abort launch' : 'Mark failed',
          cancel: 'Back',
          danger: true,
          testid: 'status-dialog',
        });
        if (!ok) return;
        reason = reasonInput.value.trim() || null;
      }
      await send({ status: to, reason }, button);
    }

    /** What aborting or failing does, in figures: the refunds and (aborting) the fee. */
    function consequences(to, costs) {
      const refunds = costs.active_bookings
        ? h('li', { testid: 'dialog-refunds' }, `Every active booking is refunded in full: ${plural(costs.active_bookings, 'booking')}, `,
          h('strong', { class: 'money' }, money(costs.refund_all_cents)), ' back to travelers, who are e-mailed.')
        : h('li', { testid: 'dialog-refunds' }, 'No active bookings: nobody needs a refund.');
      const fee = to === 'aborted'
        ? h('li', { testid: 'dialog-fee' }, 'AstroBookings invoices your agency a flat abort fee of ',
          h('strong', { class: 'money' }, money(costs.abort_fee_cents)), ', due in 30 days.')
        : h('li', { testid: 'dialog-fee' }, 'No commission and no fee is invoiced for a failed launch.');
      return h('div', { testid: 'status-consequences' },
        h('ul', {}, refunds, fee, h('li', {}, 'The launch takes no more bookings. This cannot be undone.')));
    }

    function delayForm() {
      delaying = true;
      const current = new Date(launch.scheduled_at);
      const suggestion = new Date(Math.max(current.getTime(), Date.now()) + 7 * 864e5);
      const whenInput = h('input', { type: 'datetime-local', name: 'scheduled_at', required: true, value: isoToLocalInput(suggestion.toISOString()), testid: 'delay-date' });
      const reason = h('input', { name: 'reason', maxlength: 1000, testid: 'delay-reason' });
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'delay-submit' }, 'Delay the launch');
      const form = h('form', { class: 'panel', testid: 'delay-form', novalidate: true },
        h('h3', {}, 'Delay'),
        h('p', { class: 'muted' }, 'Currently ', when(launch.scheduled_at), '. The new date must be later.'),
        h('div', { class: 'row' }, field(`New date and time (${zoneName()})`, whenInput, { hint: 'In your time zone' }), field('Reason', reason, { optional: true })),
        h('div', { class: 'actions' }, submit,
          h('button', { type: 'button', class: 'btn', onclick: () => drawActions() }, 'Back')));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const iso = localInputToIso(whenInput.value);
        if (!iso) {
          errors.show('Enter the new date and time.');
          whenInput.focus();
          return;
        }
        if (new Date(iso) <= new Date(launch.scheduled_at) || new Date(iso) <= new Date()) {
          errors.show('The new date must be later than the current one and in the future.');
          whenInput.setAttribute('aria-invalid', 'true');
          whenInput.focus();
          return;
        }
        send({ status: 'delayed', scheduled_at: iso, reason: reason.value.trim() || null }, submit);
      });
      replace(actions, form);
      whenInput.focus();
    }

    async function send(body, button) {
      errors.hide();
      await busy(button, async () => {
        try {
          const out = await api(`/api/agency/launches/${encodeURIComponent(id)}/status`, { method: 'POST', body });
          delaying = false;
          store.set(out.launch);
          done.show(`The launch is now ${statusLabel(out.launch.status)}.`);
          draw();
          loadManifest();
        } catch (err) {
          showError(errors, err);
          if (!delaying) drawActions(); // a refused delay keeps its form, to correct the date
        }
      }, 'Saving…');
    }

    async function loadManifest() {
      try {
        const m = await api(`/api/agency/launches/${encodeURIComponent(id)}/bookings`);
        if (!m.items.length) {
          replace(manifestBox, h('p', { class: 'panel empty', testid: 'manifest-empty' }, 'No bookings yet.'));
          return;
        }
        replace(manifestBox,
          table(['Booked', 'Traveler', 'Seats', 'Total', 'Status', 'Passengers'], m.items.map((b) => h('tr', { testid: 'manifest-row', dataset: { bookingId: b.id, status: b.status } },
            h('td', { class: 'nowrap' }, when(b.created_at)),
            h('td', { class: 'lead long-text' }, b.traveler_name, h('div', { class: 'muted' }, b.traveler_email)),
            h('td', { class: 'num' }, String(b.seats)),
            h('td', { class: 'num' }, money(b.total_cents)),
            h('td', {}, statusBadge(b.status, 'booking-status'), b.refund_cents ? h('div', { class: 'muted' }, `refund ${money(b.refund_cents)}`) : null),
            h('td', { class: 'long-text' }, h('ul', {}, b.passengers.map((p) => h('li', {}, `${p.name} (${p.birth_date})`)))))), { testid: 'manifest-table' }),
          h('p', { class: 'muted' }, `${plural(m.seats_booked, 'seat')} booked.`));
      } catch (err) {
        replace(manifestBox, h('p', { class: 'banner banner-error', role: 'alert' }, err.message));
      }
    }

    let reloadTimer = null;
    const onChange = (e) => {
      if (e.detail?.id !== id) return;
      draw();
      if (['booking', 'cancel', 'status'].includes(e.detail.kind)) {
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(loadManifest, 300);
      }
    };
    store.addEventListener('change', onChange);
    draw();
    loadManifest();
    return () => {
      store.removeEventListener('change', onChange);
      clearTimeout(reloadTimer);
      clearTimeout(dueTimer);
    };
  },
};
