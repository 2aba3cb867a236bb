// Finance: every agency's figures for launches scheduled in [from, to).

import { api } from '../../common/api.js';
import { banner, field, h, replace, showError, stacked, values } from '../../common/dom.js';
import { money } from '../../common/format.js';

const COLUMNS = [
  ['gross_cents', 'Gross'], ['refund_cents', 'Refunds'], ['net_cents', 'Net'], ['commission_cents', 'Commission'],
  ['abort_fee_cents', 'Abort fees'], ['paid_cents', 'Paid'], ['outstanding_cents', 'Outstanding'],
];

export default {
  mount(el) {
    const errors = banner();
    const out = h('div', { testid: 'agency-report' });
    const year = new Date().getUTCFullYear();
    const form = h('form', { class: 'filters panel', testid: 'agency-report-form' },
      field('Launches from', h('input', { type: 'date', name: 'from', value: `${year}-01-01`, testid: 'agency-report-from' })),
      field('Up to (not including)', h('input', { type: 'date', name: 'to', value: `${year + 1}-01-01`, testid: 'agency-report-to' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'agency-report-submit' }, 'Show')));
    el.append(h('h1', {}, 'Agency report'),
      h('p', { class: 'muted' }, 'Per agency, for launches scheduled in the period: what travelers paid, refunds, our commission and fees, and what is paid or still owed.'),
      form, errors, out);

    async function load() {
      errors.hide();
      const v = values(form);
      if (v.from && v.to && v.from >= v.to) {
        errors.show('"Launches from" must be before "Up to".');
        return;
      }
      try {
        const r = await api('/api/finance/reports/agencies', { query: { from: v.from, to: v.to } });
        if (!r.items.length) {
          replace(out, h('p', { class: 'panel empty', testid: 'agency-report-empty' }, 'No launches in this period.'));
          return;
        }
        replace(out, h('div', { class: 'table-wrap' }, stacked(h('table', { testid: 'agency-report-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Agency'), h('th', { scope: 'col' }, 'Launches'),
            COLUMNS.map(([, label]) => h('th', { scope: 'col', class: 'num' }, label)))),
          h('tbody', {}, r.items.map((a) => h('tr', { testid: 'agency-report-row', dataset: { agencyId: a.agency_id } },
            h('td', { class: 'lead long-text' }, h('a', { href: `#invoices?agency=${encodeURIComponent(a.agency_id)}`, title: 'This agency’s invoices' }, a.agency_name)),
            h('td', { class: 'num' }, String(a.launches)),
            COLUMNS.map(([key]) => h('td', { class: 'num', dataset: { key } }, money(a[key])))))),
          h('tfoot', {}, h('tr', { testid: 'agency-report-totals' },
            h('td', {}, 'Total'), h('td', { class: 'num' }, String(r.totals.launches ?? '')),
            COLUMNS.map(([key]) => h('td', { class: 'num', dataset: { key } }, money(r.totals[key] ?? 0)))))))));
      } catch (err) {
        showError(errors, err, form);
      }
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
