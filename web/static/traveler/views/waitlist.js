// The waiting lists: join a sold-out launch with a party size, see the place live, and an offer's countdown
// with "Book now" (the booking form with the offered seats).

import { all, api } from '../../common/api.js';
import { banner, busy, h, replace, showError, toast } from '../../common/dom.js';
import { dateTime, plural, when } from '../../common/format.js';

const STATUS_TEXT = {
  waiting: 'Waiting',
  offered: 'Seats offered to you',
  booked: 'Booked',
  expired: 'Offer expired',
  left: 'Left the list',
  closed: 'List closed',
};

export default {
  async mount(el, ctx) {
    const vip = Boolean(ctx.user.vip);
    const maxSeats = vip ? 6 : 4;
    const wanted = ctx.query.get('launch');
    const errors = banner();
    const joinBox = h('div', { testid: 'waitlist-join' });
    const list = h('div', { class: 'grid cards', testid: 'waitlist-list' }, h('p', { class: 'loading' }, 'Loading…'));
    el.append(
      h('h1', {}, 'Waiting list'),
      h('p', { class: 'muted' }, 'When seats come free on a sold-out launch, they are offered in joining order to the first travelers whose party fits. Your place updates live.'),
      errors, joinBox, list);
    let entries = [];
    let ticking = null;

    if (wanted) await drawJoin(wanted);
    await load();
    const onChange = (e) => {
      if (e.detail.kind !== 'waitlist') return;
      if (e.detail.name === 'waitlist_offer') {
        toast(`${plural(e.detail.data.seats, 'seat')} on ${e.detail.data.mission} are yours until ${dateTime(e.detail.data.offer_expires_at)}.`, 'success');
      }
      load();
    };
    ctx.bookings.addEventListener('change', onChange);
    ticking = setInterval(tick, 1000);

    async function drawJoin(ref) {
      let launch;
      try {
        launch = (await api(`/api/booking/launches/${encodeURIComponent(ref)}`)).launch;
      } catch (err) {
        showError(errors, err);
        return;
      }
      const seats = h('select', { name: 'seats', testid: 'waitlist-seats' },
        Array.from({ length: maxSeats }, (_, i) => h('option', { value: i + 1 }, plural(i + 1, 'seat'))));
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'waitlist-join-submit' }, 'Join the waiting list');
      const form = h('form', { class: 'panel narrow', testid: 'waitlist-join-form' },
        h('h2', {}, launch.mission),
        h('p', {}, when(launch.scheduled_at), ` · ${launch.seats_available <= 0 ? 'sold out' : plural(launch.seats_available, 'seat') + ' left'}`),
        h('label', {}, 'Party size ', seats),
        h('p', { class: 'muted' }, `1 to ${maxSeats} seats${vip ? ' (you are a VIP traveler)' : ' (6 for VIP travelers)'}. Nothing is charged until you book an offer.`),
        h('div', { class: 'actions' }, submit));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        busy(submit, async () => {
          try {
            const out = await api(`/api/booking/launches/${encodeURIComponent(launch.id)}/waitlist`, {
              method: 'POST', body: { seats: Number(seats.value) },
            });
            replace(joinBox, h('p', { class: 'banner banner-success', role: 'status', testid: 'waitlist-joined' },
              `You are on the waiting list of ${launch.mission}: number ${out.entry.position} in line.`));
            await load();
          } catch (err) {
            if (err.code === 'seats_available') {
              replace(joinBox, h('p', { class: 'banner banner-info', testid: 'waitlist-seats-free' },
                'Seats enough for your party are free: ',
                h('a', { href: `#book?launch=${encodeURIComponent(launch.id)}` }, 'book them now'), '.'));
              return;
            }
            showError(errors, err);
          }
        });
      });
      replace(joinBox, form);
    }

    async function load() {
      try {
        entries = await all('/api/booking/waitlist');
        render();
      } catch (err) {
        showError(errors, err);
      }
    }

    function render() {
      if (!entries.length) {
        replace(list, h('div', { class: 'panel empty', testid: 'waitlist-empty' },
          'You are on no waiting list. A sold-out launch offers to put you on its list.'));
        return;
      }
      replace(list, ...entries.map(row));
      tick();
    }

    function row(e) {
      const open = e.status === 'waiting' || e.status === 'offered';
      const leave = open ? h('button', { type: 'button', class: 'btn', testid: 'waitlist-leave' }, 'Leave the list') : null;
      leave?.addEventListener('click', () => busy(leave, async () => {
        try {
          await api(`/api/booking/launches/${encodeURIComponent(e.launch_id)}/waitlist`, { method: 'DELETE' });
          await load();
        } catch (err) {
          showError(errors, err);
        }
      }));
      const offer = e.status === 'offered'
        ? h('div', { class: 'banner banner-success', testid: 'waitlist-offer' },
          h('p', {}, h('strong', {}, `${plural(e.seats, 'seat')} held for you`), ` until ${dateTime(e.offer_expires_at)}: `,
            h('span', { testid: 'waitlist-countdown', dataset: { until: e.offer_expires_at } }, '')),
          h('a', {
            class: 'btn primary', testid: 'waitlist-book-now',
            href: `#book?launch=${encodeURIComponent(e.launch_id)}&seats=${e.seats}&offer=${encodeURIComponent(e.offer_expires_at)}`,
          }, 'Book now'))
        : null;
      return h('article', { class: 'panel', testid: 'waitlist-row', dataset: { entryId: e.id, status: e.status, launchId: e.launch_id } },
        h('h2', {}, e.mission),
        h('p', {}, when(e.scheduled_at), ` · ${plural(e.seats, 'seat')}`),
        h('p', { testid: 'waitlist-status' }, STATUS_TEXT[e.status] ?? e.status,
          e.status === 'waiting' ? h('span', { testid: 'waitlist-position' }, ` · number ${e.position} in line`) : null),
        offer,
        h('div', { class: 'actions' }, leave));
    }

    function tick() {
      for (const span of list.querySelectorAll('[data-testid="waitlist-countdown"]')) {
        const left = Math.max(0, Math.round((new Date(span.dataset.until).getTime() - Date.now()) / 1000));
        span.textContent = left > 0 ? `${Math.floor(left / 60)} min ${String(left % 60).padStart(2, '0')} s left` : 'expiring…';
      }
    }

    return () => {
      clearInterval(ticking);
      ctx.bookings.removeEventListener('change', onChange);
    };
  },
};
