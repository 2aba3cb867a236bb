// The agency's invoices from AstroBookings, and paying them by card.

import { all, api, newKey } from '../../common/api.js';
import { CARDS } from '../../common/cards.js';
import { banner, busy, field, h, replace, select, showError, values } from '../../common/dom.js';
import { centsToInput, money, parseMoney, statusLabel } from '../../common/format.js';
import { pdfButton } from '../../common/files.js';
import { INVOICE_STATUSES, invoiceTable } from '../../common/invoices.js';

export default {
  mount(el, ctx) {
    const errors = banner();
    const ok = banner('success');
    ok.dataset.testid = 'payment-result';
    const listBox = h('div', { testid: 'invoices' });
    const payBox = h('div', {});
    const filters = h('form', { class: 'filters panel', testid: 'invoice-filters' },
      field('Status', select('status', [['', 'Any status'], ...INVOICE_STATUSES.map((s) => [s, statusLabel(s)])], { testid: 'invoice-status-filter' })),
      field('Year', h('input', { type: 'number', name: 'year', min: 2000, max: 2200, placeholder: 'Any year', inputmode: 'numeric', testid: 'invoice-year' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary' }, 'Show')));
    el.append(h('h1', {}, 'Invoices'),
      h('p', { class: 'muted' }, 'AstroBookings invoices a commission when a launch succeeds, and a flat fee when one is aborted. Due 30 days after issue.'),
      filters, errors, ok, payBox, listBox);
    let invoices = [];

    async function load() {
      const v = values(filters);
      try {
        invoices = await all('/api/agency/invoices', { status: v.status, year: v.year });
        draw(ctx?.arg ?? null); // #invoices/<id>, the link of the invoice's e-mail, marks that one
      } catch (err) {
        showError(errors, err);
      }
    }

    function draw(selected = null) {
      replace(listBox, invoices.length
        ? invoiceTable(invoices, {
          selected,
          action: (inv) => h('span', { class: 'actions' },
            inv.balance_cents > 0
              ? h('button', { type: 'button', class: 'btn small primary', testid: 'invoice-pay', onclick: () => payForm(inv) }, 'Pay')
              : h('span', { class: 'muted' }, 'Paid'),
            pdfButton(`/api/agency/invoices/${encodeURIComponent(inv.id)}.pdf`, inv, errors)),
        })
        : h('p', { class: 'panel empty', testid: 'no-invoices' }, 'No invoices.'));
    }

    function payForm(inv) {
      errors.hide();
      ok.hide();
      draw(inv.id);
      const amount = h('input', { name: 'amount', inputmode: 'decimal', value: centsToInput(inv.balance_cents), required: true, testid: 'pay-amount' });
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'pay-submit' }, 'Pay');
      const form = h('form', { class: 'panel narrow', testid: 'pay-form', dataset: { invoiceId: inv.id }, novalidate: true },
        h('h2', {}, `Pay ${inv.number}`),
        h('p', {}, `Open balance: `, h('strong', {}, money(inv.balance_cents)), ` of ${money(inv.amount_cents)}.`),
        h('div', { class: 'row' },
          field('Amount (USD)', amount, { hint: 'Pay in full or in part' }),
          field('Card', select('card_token', CARDS, { testid: 'pay-card' }))),
        h('div', { class: 'actions' }, submit,
          h('button', { type: 'button', class: 'btn', onclick: () => { replace(payBox); draw(); } }, 'Cancel')));
      let attempt = { body: null, key: null };
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        const cents = parseMoney(amount.value);
        if (!cents) {
          errors.show('Enter an amount like 1234.56.');
          amount.setAttribute('aria-invalid', 'true');
          amount.focus();
          return;
        }
        if (cents > inv.balance_cents) {
          errors.show(`That is more than the open balance of ${money(inv.balance_cents)}.`);
          amount.focus();
          return;
        }
        const body = { amount_cents: cents, card_token: values(form).card_token };
        const text = JSON.stringify(body);
        if (attempt.body !== text) attempt = { body: text, key: newKey() };
        busy(submit, async () => {
          try {
            const out = await api(`/api/agency/invoices/${encodeURIComponent(inv.id)}/payments`, { method: 'POST', body, idempotencyKey: attempt.key });
            ok.show(`Paid ${money(cents)} on ${inv.number}. It is now ${statusLabel(out.invoice.status).toLowerCase()}; balance ${money(out.invoice.balance_cents)}.`);
            replace(payBox);
            await load();
          } catch (err) {
            if (!(err.status === 0 || err.status >= 500 || err.code === 'idempotency_in_progress')) attempt = { body: null, key: null };
            showError(errors, err);
          }
        }, body.card_token === 'tok_slow' ? 'Waiting for the bank…' : 'Paying…');
      });
      replace(payBox, form);
      amount.focus();
    }

    filters.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
