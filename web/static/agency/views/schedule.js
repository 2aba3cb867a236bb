// Schedule a launch on one of the agency's rockets.

import { all, api } from '../../common/api.js';
import { banner, busy, clearMarks, field, h, markFields, showError, values } from '../../common/dom.js';
import { DESTINATIONS, dateTime, isoToLocalInput, localInputToIso, parseMoney, plural, utcDateTime, zoneName } from '../../common/format.js';

const REACH = { low_earth: 0, moon: 1, mars: 2 };

export default {
  async mount(el, ctx) {
    const errors = banner();
    el.append(h('h1', {}, 'Schedule a launch'), errors);
    let rockets = [];
    let rules = null;
    try {
      [rockets, rules] = await Promise.all([all('/api/agency/rockets'), api('/api/agency/scheduling')]);
    } catch (err) {
      showError(errors, err);
      return;
    }
    if (!rockets.length) {
      el.append(h('div', { class: 'panel empty', testid: 'no-rockets' }, 'Add a rocket first. ', h('a', { href: '#rockets' }, 'Your rockets')));
      return;
    }
    const rocket = h('select', { name: 'rocket_id', testid: 'launch-rocket', required: true },
      rockets.map((r) => h('option', { value: r.id }, `${r.name} — ${r.capacity} seats, up to ${DESTINATIONS[r.range]}`)));
    const dest = h('select', { name: 'destination', testid: 'launch-destination', required: true });
    const minPassengers = h('input', { type: 'number', name: 'min_passengers', min: 1, value: 1, required: true, inputmode: 'numeric', testid: 'launch-min-passengers' });
    const inMonth = new Date(Date.now() + 30 * 864e5);
    inMonth.setUTCMinutes(0, 0, 0);
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'launch-submit' }, 'Schedule');
    const dateInput = h('input', { type: 'datetime-local', name: 'scheduled_at', required: true, value: isoToLocalInput(inMonth.toISOString()), testid: 'launch-date' });
    const utcEcho = h('small', { class: 'hint', testid: 'launch-date-utc' });
    const showUtc = () => {
      const iso = localInputToIso(dateInput.value);
      utcEcho.textContent = iso ? `That is ${utcDateTime(iso)}.` : '';
      utcEcho.hidden = !iso || new Date(iso).getTimezoneOffset() === 0; // said already when local is UTC
    };
    const dateField = field(`Date and time (${zoneName()})`, dateInput, { hint: 'In your time zone' });
    dateField.append(utcEcho);
    dateInput.addEventListener('input', showUtc);
    showUtc();
    const form = h('form', { class: 'panel narrow', testid: 'launch-form', novalidate: true },
      field('Rocket', rocket),
      field('Mission', h('input', { name: 'mission', required: true, maxlength: 500, testid: 'launch-mission' }), { hint: 'The name travelers see' }),
      field('Destination', dest, { hint: 'As far as the rocket reaches' }),
      dateField,
      h('div', { class: 'row' },
        field('Price per seat (USD)', h('input', { name: 'price', required: true, inputmode: 'decimal', placeholder: '250000.00', testid: 'launch-price' })),
        field('Minimum passengers', minPassengers, { hint: 'The launch is confirmed once this many seats are booked' })),
      vipNote(rules, ctx.user),
      h('div', { class: 'actions' }, submit));
    el.append(form);

    const syncRocket = () => {
      const r = rockets.find((x) => x.id === rocket.value);
      const keep = dest.value;
      dest.replaceChildren(...Object.entries(DESTINATIONS)
        .filter(([code]) => REACH[code] <= REACH[r.range])
        .map(([code, label]) => h('option', { value: code }, label)));
      if ([...dest.options].some((o) => o.value === keep)) dest.value = keep;
      minPassengers.max = r.capacity;
    };
    rocket.addEventListener('change', syncRocket);
    syncRocket();

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      errors.hide();
      clearMarks(form);
      const v = values(form);
      const problems = {};
      const r = rockets.find((x) => x.id === v.rocket_id);
      const when = localInputToIso(v.scheduled_at);
      const price = parseMoney(v.price);
      const minP = Number(v.min_passengers);
      if (!v.mission) problems.mission = 'enter the mission name';
      if (!when) problems.scheduled_at = 'enter the date and time';
      else if (new Date(when) <= new Date()) problems.scheduled_at = 'must be in the future';
      if (!price) problems.price = 'enter a price like 250000.00';
      if (!Number.isInteger(minP) || minP < 1 || minP > r.capacity) problems.min_passengers = `1 to ${r.capacity} (the rocket's seats)`;
      if (Object.keys(problems).length) {
        errors.show('Please check the highlighted fields.');
        markFields(form, problems);
        return;
      }
      busy(submit, async () => {
        try {
          const out = await api('/api/agency/launches', {
            method: 'POST',
            body: { rocket_id: v.rocket_id, mission: v.mission, destination: v.destination, scheduled_at: when, price_cents: price, min_passengers: minP },
          });
          ctx.agency.set(out.launch);
          ctx.navigate(`#launch/${encodeURIComponent(out.launch.id)}`);
        } catch (err) {
          showError(errors, err, form, { price_cents: 'price' });
        }
      }, 'Scheduling…');
    });
  },
};

/** The VIP window, said where a launch is scheduled: who sees the new launch first, and from when everyone. */
function vipNote(rules, user) {
  const seconds = rules?.vip_window_seconds ?? 0;
  const pending = user?.verified === false
    ? h('p', {}, 'Your agency is not verified yet: its launches become public, bookable and announced once IT verifies it.')
    : null;
  if (!seconds) return h('div', { class: 'note', testid: 'vip-window-note' }, pending ?? 'Your launch is public and bookable as soon as you schedule it.');
  const length = seconds % 3600 === 0 ? plural(seconds / 3600, 'hour') : plural(Math.round(seconds / 60), 'minute');
  const publicAt = new Date(Date.now() + seconds * 1000).toISOString();
  return h('div', { class: 'note', testid: 'vip-window-note', dataset: { seconds } },
    h('p', {}, h('strong', {}, `VIP window: ${length}. `),
      `For its first ${length} a new launch is shown only to VIP travelers, who are e-mailed about it at once and may book it early. `,
      `Everyone else sees and books it from then on: scheduled now, it is public from ${dateTime(publicAt)}.`),
    pending);
}
