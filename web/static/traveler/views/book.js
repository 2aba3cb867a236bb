// Book a launch: one passenger form per seat, the rules checked before sending, a sandbox card.

import { all, api, newKey } from '../../common/api.js';
import { CARDS } from '../../common/cards.js';
import { banner, busy, clearMarks, field, h, markFields, replace, showError, values } from '../../common/dom.js';
import { ageOn, dateTime, destination, money, plural, utcDay } from '../../common/format.js';
import { when } from '../../common/format.js';
import { applyEvent, bookable, FINAL, flash, gauge, seatsText, statusBadge } from '../../common/launches.js';

const MIN_AGE = 18;
const MAX_AGE = 70;

export default {
  async mount(el, ctx) {
    const vip = Boolean(ctx.user.vip);
    const maxSeats = vip ? 6 : 4;
    const wanted = ctx.query.get('launch');
    // From a waiting-list offer: its seats and deadline (the seats are held for this traveler alone).
    const offerSeats = Number(ctx.query.get('seats')) || null;
    const offerUntil = ctx.query.get('offer');
    const errors = banner();
    let launches = [];
    let launch = null;
    let unsubscribe = null;
    let attempt = { body: null, key: null }; // the Idempotency-Key is reused only to retry the same booking

    el.append(h('h1', {}, 'Book a launch'), errors);
    const body = h('div', {}, h('p', { class: 'loading' }, 'Loading launches…'));
    el.append(body);
    // Seats offered to this traveler from waiting lists, by launch: the public count shows them taken
    // (they are nobody else's), but this traveler may book them.
    const offers = new Map();
    try {
      for (const e of await all('/api/booking/waitlist')) {
        if (e.status === 'offered' && new Date(e.offer_expires_at).getTime() > Date.now()) offers.set(e.launch_id, e.seats);
      }
    } catch {
      // No offers known: the launches show the public count, and the server decides anyway.
    }
    /** The launch as this traveler may book it: the public count plus the seats offered to them. */
    const own = (l) => (offers.has(l.id) ? { ...l, seats_available: l.seats_available + offers.get(l.id) } : l);
    try {
      launches = (await all('/api/booking/launches')).filter((l) => bookable(own(l)));
    } catch (err) {
      showError(errors, err);
    }
    if (wanted && !launches.some((l) => l.id === wanted || l.slug === wanted)) {
      try {
        const one = (await api(`/api/booking/launches/${encodeURIComponent(wanted)}`)).launch;
        if (!bookable(own(one))) {
          errors.show(`${one.mission} takes no bookings now (${one.status}${one.seats_available <= 0 ? ', sold out' : ''}).`);
          if (one.seats_available <= 0 && !FINAL.has(one.status)) {
            el.append(h('p', { class: 'actions' }, h('a', {
              class: 'btn primary', testid: 'join-waitlist-link', href: `#waitlist?launch=${encodeURIComponent(one.id)}`,
            }, 'Join the waiting list')));
          }
        } else launches.push(one);
      } catch (err) {
        showError(errors, err);
      }
    }
    if (!launches.length) {
      replace(body, h('div', { class: 'panel empty', testid: 'nothing-to-book' }, 'No launch takes bookings right now. ',
        h('a', { href: '/' }, 'See upcoming launches')));
      return undefined;
    }

    // -- the form --------------------------------------------------------------------------------
    const launchSelect = h('select', { name: 'launch_id', testid: 'launch-select', required: true },
      launches.map((l) => h('option', { value: l.id }, `${l.mission} — ${destination(l.destination)}, ${dateTime(l.scheduled_at)}`)));
    const summary = h('div', { class: 'panel', testid: 'launch-summary' });
    const seatsInput = h('input', {
      type: 'number', name: 'seats', min: 1, max: maxSeats, value: 1, inputmode: 'numeric', required: true, testid: 'seats-input',
    });
    const passengersBox = h('div', { testid: 'passengers' });
    const card = h('select', { name: 'card_token', testid: 'card-select' }, CARDS.map(([v, label]) => h('option', { value: v }, label)));
    const total = h('p', { class: 'total-line', 'aria-live': 'polite', testid: 'book-total' });
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'book-submit' }, 'Pay and book');
    const offerNote = offerSeats && offerUntil
      ? h('p', { class: 'banner banner-success', testid: 'offer-note' },
        `${plural(offerSeats, 'seat')} ${offerSeats === 1 ? 'is' : 'are'} held for you from the waiting list until ${dateTime(offerUntil)}.`)
      : null;
    const form = h('form', { class: 'narrow', testid: 'book-form', novalidate: true },
      offerNote,
      field('Launch', launchSelect),
      summary,
      field('Seats', seatsInput, { hint: `1 to ${maxSeats} seats per booking${vip ? ' (you are a VIP traveler)' : ' (6 for VIP travelers)'}; one passenger per seat` }),
      passengersBox,
      h('fieldset', {}, h('legend', {}, 'Payment'),
        field('Card', card, { hint: 'Sandbox: choose how the test payment should go' }),
        total),
      h('div', { class: 'actions' }, submit));
    replace(body, form);

    const initial = launches.find((l) => l.id === wanted || l.slug === wanted) ?? launches[0];
    launchSelect.value = initial.id;
    if (offerSeats && offerSeats <= maxSeats) seatsInput.value = String(offerSeats);
    choose(initial.id);
    buildPassengers();

    launchSelect.addEventListener('change', () => choose(launchSelect.value));
    seatsInput.addEventListener('input', () => { buildPassengers(); showTotal(); });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      book();
    });

    function choose(id) {
      launch = launches.find((l) => l.id === id);
      unsubscribe?.();
      drawSummary();
      showTotal();
      unsubscribe = ctx.live.subscribe(`launch:${launch.id}`, {
        snapshot(data) { if (data.launch) update({ ...launch, ...data.launch }); },
        event(name, data) { update(applyEvent(launch, name, data)); },
      });
    }

    function update(next) {
      launches = launches.map((l) => (l.id === next.id ? next : l));
      if (launch?.id !== next.id) return;
      launch = next;
      drawSummary();
    }

    function drawSummary() {
      const mine = own(launch);
      const seats = summary.querySelector('[data-testid="seats-left"]');
      const before = seats?.textContent;
      replace(summary,
        h('div', { class: 'badges' }, statusBadge(launch.status), launch.vip_only ? h('span', { class: 'badge badge-vip' }, 'VIP early access') : null),
        h('p', {}, h('strong', {}, launch.mission), ` · ${destination(launch.destination)} · ${launch.rocket?.name ?? ''}`),
        h('p', {}, when(launch.scheduled_at), ' · ', h('strong', { testid: 'launch-price' }, money(launch.price_cents)), ' per seat'),
        h('p', { class: 'seats', testid: 'seats-left', 'aria-live': 'polite', dataset: { value: mine.seats_available } }, seatsText(mine)),
        gauge(mine),
        bookable(mine) ? null : h('p', { class: 'banner banner-warn', testid: 'not-bookable' },
          `${launch.mission} takes no more bookings (${mine.seats_available <= 0 ? 'sold out' : launch.status}).`));
      const now = summary.querySelector('[data-testid="seats-left"]');
      if (before && before !== now.textContent) flash(now);
    }

    function seatCount() {
      const n = Number(seatsInput.value);
      return Number.isInteger(n) ? n : 0;
    }

    /** One fieldset per seat; what was typed is kept when the number changes. */
    function buildPassengers() {
      const n = Math.min(Math.max(seatCount(), 1), maxSeats);
      const typed = [...passengersBox.querySelectorAll('fieldset')].map((fs) => ({
        name: fs.querySelector('[name$=".name"]').value,
        birth: fs.querySelector('[name$=".birth_date"]').value,
      }));
      replace(passengersBox, Array.from({ length: n }, (_, i) => h('fieldset', { class: 'passenger', testid: 'passenger-fieldset', dataset: { index: i } },
        h('legend', {}, `Passenger ${i + 1}`),
        h('div', { class: 'row' },
          field('Full name', h('input', { name: `passengers.${i}.name`, autocomplete: i === 0 ? 'name' : 'off', required: true, value: typed[i]?.name ?? (i === 0 ? ctx.user.name : ''), testid: `passenger-name-${i}` })),
          field('Birth date', h('input', { type: 'date', name: `passengers.${i}.birth_date`, required: true, max: new Date().toISOString().slice(0, 10), value: typed[i]?.birth ?? '', testid: `passenger-birth-${i}` }),
            { hint: `${MIN_AGE} to ${MAX_AGE} years old on the launch date` })))));
    }

    function showTotal() {
      const n = seatCount();
      total.replaceChildren(n >= 1 && n <= maxSeats
        ? h('span', {}, `${plural(n, 'seat')} × ${money(launch.price_cents)} = `, h('strong', {}, money(n * launch.price_cents)))
        : h('span', { class: 'muted' }, `Choose 1 to ${maxSeats} seats.`));
    }

    /** The booking rules, checked here first: {field path: problem}. */
    function check(v, n) {
      const problems = {};
      if (!Number.isInteger(n) || n < 1 || n > maxSeats) {
        problems.seats = `choose 1 to ${maxSeats} seats${vip ? '' : ' (6 for VIP travelers)'}`;
        return problems; // the passengers follow the number of seats: fix that first
      }
      const left = own(launch).seats_available;
      if (n > left) problems.seats = `only ${plural(left, 'seat')} left`;
      const day = utcDay(launch.scheduled_at);
      for (let i = 0; i < Math.min(n, maxSeats); i += 1) {
        const name = v[`passengers.${i}.name`];
        const birth = v[`passengers.${i}.birth_date`];
        if (!name) problems[`passengers.${i}.name`] = 'enter the passenger’s name';
        if (!/^\d{4}-\d{2}-\d{2}$/.test(birth ?? '')) {
          problems[`passengers.${i}.birth_date`] = 'enter the birth date';
        } else {
          const age = ageOn(birth, day);
          if (age < MIN_AGE || age > MAX_AGE) problems[`passengers.${i}.birth_date`] = `${age} years old on the launch date; passengers must be ${MIN_AGE} to ${MAX_AGE}`;
        }
      }
      return problems;
    }

    async function book() {
      errors.hide();
      clearMarks(form);
      const v = values(form);
      const n = seatCount();
      const problems = check(v, n);
      if (Object.keys(problems).length) {
        const count = Object.keys(problems).length;
        errors.show(`Please fix ${plural(count, 'problem')} before paying: ${Object.entries(problems).map(([k, t]) => `${label(k)} — ${t}`).join('; ')}.`);
        markFields(form, problems);
        return;
      }
      const payload = {
        launch_id: launch.id,
        seats: n,
        passengers: Array.from({ length: n }, (_, i) => ({ name: v[`passengers.${i}.name`], birth_date: v[`passengers.${i}.birth_date`] })),
        card_token: v.card_token,
      };
      const text = JSON.stringify(payload);
      if (attempt.body !== text) attempt = { body: text, key: newKey() };
      await busy(submit, async () => {
        try {
          const out = await api('/api/booking/bookings', { method: 'POST', body: payload, idempotencyKey: attempt.key });
          ctx.bookings.update(out.booking);
          attempt = { body: null, key: null };
          done(out.booking);
        } catch (err) {
          // A refusal is final for this key; only "no answer" may be retried with the same one.
          const retryable = err.status === 0 || err.status >= 500 || err.code === 'idempotency_in_progress';
          if (!retryable) attempt = { body: null, key: null };
          showError(errors, err, form);
          if (err.code === 'sold_out' && !form.querySelector('[data-testid="join-waitlist-link"]')) {
            // Its last seats may be offered to travelers on its waiting list: the traveler may join it.
            submit.after(h('a', {
              class: 'btn', testid: 'join-waitlist-link', href: `#waitlist?launch=${encodeURIComponent(launch.id)}`,
            }, 'Join the waiting list'));
          }
        }
      }, v.card_token === 'tok_slow' ? 'Waiting for the bank…' : 'Paying…');
    }

    function done(b) {
      unsubscribe?.();
      unsubscribe = null;
      replace(body, h('div', { class: 'panel banner-success', role: 'status', testid: 'booking-success', dataset: { bookingId: b.id } },
        h('h2', {}, 'You are booked!'),
        h('p', {}, `${plural(b.seats, 'seat')} on ${b.mission}, ${dateTime(b.scheduled_at)}. `,
          h('strong', {}, `${money(b.total_cents)} charged.`)),
        h('p', { class: 'muted' }, `Booking reference ${b.id}`),
        h('div', { class: 'actions' },
          h('a', { class: 'btn primary', href: '#bookings' }, 'See my bookings'),
          h('a', { class: 'btn', href: '/' }, 'More launches'))));
      body.querySelector('h2').tabIndex = -1;
      body.querySelector('h2').focus();
    }

    return () => unsubscribe?.();
  },
};

function label(path) {
  const m = /^passengers\.(\d+)\.(name|birth_date)$/.exec(path);
  if (m) return `Passenger ${Number(m[1]) + 1} ${m[2] === 'name' ? 'name' : 'birth date'}`;
  return path === 'seats' ? 'Seats' : path;
}
