// Bookings of the agency's successful launches with each traveler's tax data, for its own invoicing.

import { api } from '../../common/api.js';
import { banner, field, h, replace, showError, stacked, values } from '../../common/dom.js';
import { centsToInput, dateOnly, money, utcDateTime } from '../../common/format.js';
import { saveBlob, toCsv } from '../../common/csv.js';

export default {
  mount(el) {
    const errors = banner();
    const out = h('div', { testid: 'report' });
    const year = new Date().getUTCFullYear();
    const form = h('form', { class: 'filters panel', testid: 'report-form' },
      field('Launches from', h('input', { type: 'date', name: 'from', value: `${year}-01-01`, testid: 'report-from' })),
      field('Up to (not including)', h('input', { type: 'date', name: 'to', value: `${year + 1}-01-01`, testid: 'report-to' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'report-submit' }, 'Show')));
    el.append(h('h1', {}, 'Bookings report'),
      h('p', { class: 'muted' }, 'Bookings of your successful launches, with each traveler’s tax details.'),
      form, errors, out);
    let last = null;

    async function load() {
      errors.hide();
      const v = values(form);
      if (v.from && v.to && v.from >= v.to) {
        errors.show('"Launches from" must be before "Up to".');
        return;
      }
      try {
        last = await api('/api/agency/reports/bookings', { query: { from: v.from, to: v.to } });
        last.range = v;
        draw(last);
      } catch (err) {
        showError(errors, err);
      }
    }

    function draw(r) {
      if (!r.items.length) {
        replace(out, h('p', { class: 'panel empty', testid: 'report-empty' }, 'No bookings of successful launches in this period.'));
        return;
      }
      replace(out,
        h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', testid: 'report-csv', onclick: csv }, 'Download CSV')),
        h('div', { class: 'table-wrap' }, stacked(h('table', { testid: 'report-table' },
          h('thead', {}, h('tr', {}, ['Launch', 'Traveler', 'Tax ID', 'Address', 'Seats', 'Total', 'Refund', 'Net'].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', {}, r.items.map((x) => h('tr', { testid: 'report-row' },
            h('td', { class: 'lead long-text' }, x.mission, h('div', { class: 'muted' }, dateOnly(x.scheduled_at))),
            h('td', { class: 'long-text' }, x.traveler_name, x.contact_email ? h('div', { class: 'muted' }, x.contact_email) : null),
            h('td', { class: 'long-text' }, x.tax_id),
            h('td', { class: 'long-text' }, x.address),
            h('td', { class: 'num' }, String(x.seats)),
            h('td', { class: 'num' }, money(x.total_cents)),
            h('td', { class: 'num' }, money(x.refund_cents)),
            h('td', { class: 'num' }, money(x.net_cents))))),
          h('tfoot', {}, h('tr', {},
            h('td', { colspan: 5 }, 'Total'),
            h('td', { class: 'num', testid: 'report-total' }, money(r.total_cents)),
            h('td', { class: 'num' }, money(r.refund_cents)),
            h('td', { class: 'num', testid: 'report-net' }, money(r.net_cents))))))));
    }

    function csv() {
      // Amounts in decimal units of the currency named on each row; the launch date in UTC.
      const rows = [['booking_id', 'launch', 'launch_date', 'traveler', 'tax_id', 'address', 'contact_email', 'seats', 'currency', 'total', 'refund', 'net']];
      for (const x of last.items) {
        rows.push([x.booking_id, x.mission, utcDateTime(x.scheduled_at), x.traveler_name, x.tax_id, x.address, x.contact_email ?? '',
          x.seats, 'USD', centsToInput(x.total_cents), centsToInput(x.refund_cents), centsToInput(x.net_cents)]);
      }
      saveBlob(new Blob([toCsv(rows)], { type: 'text/csv' }), `bookings-${last.range.from || 'all'}-${last.range.to || 'all'}.csv`);
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
