// Finance: revenue per month of a year, actual (paid) and pending (issued, unpaid); CSV download.

import { api } from '../../common/api.js';
import { banner, busy, field, h, replace, showError, values } from '../../common/dom.js';
import { saveBlob } from '../../common/csv.js';
import { money, monthName } from '../../common/format.js';

export default {
  mount(el) {
    const errors = banner();
    const out = h('div', { testid: 'annual-report' });
    const download = h('button', { type: 'button', class: 'btn', testid: 'annual-csv' }, 'Download CSV');
    const form = h('form', { class: 'filters panel', testid: 'annual-form' },
      field('Year', h('input', { type: 'number', name: 'year', min: 2000, max: 2200, value: new Date().getUTCFullYear(), required: true, inputmode: 'numeric', testid: 'annual-year' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'annual-submit' }, 'Show'), download));
    el.append(h('h1', {}, 'Annual report'),
      h('p', { class: 'muted' }, 'Actual: payments received in the month. Pending: invoices issued in the month and not yet paid.'),
      form, errors, out);

    function year() {
      const y = Number(values(form).year);
      if (!Number.isInteger(y) || y < 2000 || y > 2200) {
        errors.show('Enter a year like 2027.');
        return null;
      }
      return y;
    }

    async function load() {
      errors.hide();
      const y = year();
      if (!y) return;
      try {
        draw(await api('/api/finance/reports/annual', { query: { year: y } }));
      } catch (err) {
        showError(errors, err, form);
      }
    }

    function draw(r) {
      const peak = Math.max(1, ...r.months.map((m) => m.actual_cents + m.pending_cents));
      const bars = h('div', { class: 'bars', 'aria-hidden': 'true', testid: 'annual-chart' }, r.months.map((m) => {
        const actual = h('span', { class: 'actual', title: `${monthName(m.month)} actual ${money(m.actual_cents)}` });
        const pending = h('span', { class: 'pending', title: `${monthName(m.month)} pending ${money(m.pending_cents)}` });
        actual.style.height = `${(100 * m.actual_cents) / peak}%`;
        pending.style.height = `${(100 * m.pending_cents) / peak}%`;
        return h('div', { class: 'bar' }, pending, actual);
      }));
      replace(out,
        h('section', { class: 'panel' },
          h('h2', {}, `${r.year}`),
          bars,
          h('div', { class: 'bar-labels', 'aria-hidden': 'true' }, r.months.map((m) => h('span', {}, monthName(m.month).slice(0, 3)))),
          h('div', { class: 'legend' },
            h('span', {}, h('span', { class: 'sw bars-actual' }), 'Actual'),
            h('span', {}, h('span', { class: 'sw bars-pending' }), 'Pending'))),
        h('div', { class: 'table-wrap' }, h('table', { testid: 'annual-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Month'), h('th', { scope: 'col', class: 'num' }, 'Actual'), h('th', { scope: 'col', class: 'num' }, 'Pending'))),
          h('tbody', {}, r.months.map((m) => h('tr', { testid: 'annual-row', dataset: { month: m.month } },
            h('td', {}, monthName(m.month)),
            h('td', { class: 'num' }, money(m.actual_cents)),
            h('td', { class: 'num' }, money(m.pending_cents))))),
          h('tfoot', {}, h('tr', {},
            h('td', {}, 'Total'),
            h('td', { class: 'num', testid: 'annual-total-actual' }, money(r.total_actual_cents)),
            h('td', { class: 'num', testid: 'annual-total-pending' }, money(r.total_pending_cents)))))));
    }

    download.addEventListener('click', () => {
      errors.hide();
      const y = year();
      if (!y) return;
      busy(download, async () => {
        try {
          const resp = await api('/api/finance/reports/annual', { query: { year: y, format: 'csv' }, raw: true, headers: { Accept: 'text/csv' } });
          const name = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') ?? '')?.[1] ?? `revenue-${y}.csv`;
          saveBlob(await resp.blob(), name);
        } catch (err) {
          showError(errors, err);
        }
      }, 'Preparing…');
    });
    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
