// Finance: every agency's invoices, filters, one invoice with its payments, recording a transfer,
// issuing the invoice of a finished launch on demand.

import { all, api, newKey } from '../../common/api.js';
import { banner, busy, clearMarks, field, h, replace, select, showError, values } from '../../common/dom.js';
import { centsToInput, dateOnly, dateTime, money, parseMoney, statusLabel, when } from '../../common/format.js';
import { pdfButton } from '../../common/files.js';
import { INVOICE_STATUSES, invoiceBadge, invoiceTable, kindLabel, paymentsList } from '../../common/invoices.js';

export default {
  async mount(el, ctx) {
    const errors = banner();
    const ok = banner('success');
    ok.dataset.testid = 'finance-result';
    const listBox = h('div', { testid: 'invoices' });
    const detail = h('div', { testid: 'invoice-detail-box' });
    const agencySelect = select('agency_id', [['', 'Any agency']], { testid: 'invoice-agency' });
    const filters = h('form', { class: 'filters panel', testid: 'invoice-filters' },
      field('Agency', agencySelect),
      field('Status', select('status', [['', 'Any status'], ...INVOICE_STATUSES.map((s) => [s, statusLabel(s)])], { testid: 'invoice-status-filter' })),
      field('Year', h('input', { type: 'number', name: 'year', min: 2000, max: 2200, placeholder: 'Any year', inputmode: 'numeric', testid: 'invoice-year' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'invoice-filter-apply' }, 'Show')));
    el.append(h('h1', {}, 'Invoices'), filters, errors, ok, detail, listBox, issueForm());
    let invoices = [];
    let selected = ctx.arg;

    try {
      const report = await api('/api/finance/reports/agencies');
      for (const a of report.items) agencySelect.append(h('option', { value: a.agency_id }, a.agency_name));
    } catch {
      // the list filters without it too
    }
    const preset = ctx.query.get('agency');
    if (preset) agencySelect.value = preset;

    async function load() {
      errors.hide();
      const v = values(filters);
      try {
        invoices = await all('/api/finance/invoices', { agency_id: v.agency_id, status: v.status, year: v.year });
        draw();
      } catch (err) {
        showError(errors, err, filters);
      }
    }

    function draw() {
      replace(listBox, invoices.length
        ? invoiceTable(invoices, {
          showAgency: true,
          selected,
          open: (inv) => open(inv.id),
          action: (inv) => h('button', { type: 'button', class: 'btn small', testid: 'invoice-open', onclick: () => open(inv.id) }, 'Open'),
        })
        : h('p', { class: 'panel empty', testid: 'no-invoices' }, 'No invoices match.'));
    }

    async function open(id, { keepMessage = false } = {}) {
      selected = id;
      if (!keepMessage) ok.hide();
      errors.hide();
      history.replaceState(null, '', `#invoices/${encodeURIComponent(id)}`);
      draw();
      try {
        const inv = (await api(`/api/finance/invoices/${encodeURIComponent(id)}`)).invoice;
        replace(detail, invoiceDetail(inv));
        detail.querySelector('h2').focus();
      } catch (err) {
        showError(errors, err);
      }
    }

    function invoiceDetail(inv) {
      const box = h('section', { class: 'panel', testid: 'invoice-detail', dataset: { invoiceId: inv.id } },
        h('h2', { tabindex: -1 }, `${inv.number} `, invoiceBadge(inv.status)),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Agency'), h('dd', {}, inv.agency_name),
          h('dt', {}, 'Launch'), h('dd', {}, `${inv.mission} (${inv.launch_id})`),
          h('dt', {}, 'Kind'), h('dd', {}, kindLabel(inv.kind), inv.kind === 'commission' ? ` — ${inv.rate_pct} % of net revenue ${money(inv.net_revenue_cents)}` : ''),
          h('dt', {}, 'Amount'), h('dd', {}, money(inv.amount_cents)),
          h('dt', {}, 'Paid'), h('dd', {}, money(inv.paid_cents)),
          h('dt', {}, 'Balance'), h('dd', { testid: 'detail-balance' }, money(inv.balance_cents)),
          h('dt', {}, 'Issued'), h('dd', {}, when(inv.issued_at)),
          h('dt', {}, 'Due'), h('dd', {}, dateOnly(inv.due_at))),
        h('div', { class: 'actions' }, pdfButton(`/api/finance/invoices/${encodeURIComponent(inv.id)}.pdf`, inv, errors, 'Download PDF')),
        h('h3', {}, 'Payments'), paymentsList(inv),
        inv.balance_cents > 0 ? transferForm(inv) : h('p', { class: 'muted' }, 'Paid in full.'));
      return box;
    }

    function transferForm(inv) {
      const amount = h('input', { name: 'amount', inputmode: 'decimal', value: centsToInput(inv.balance_cents), required: true, testid: 'transfer-amount' });
      const reference = h('input', { name: 'reference', required: true, maxlength: 200, testid: 'transfer-reference' });
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'transfer-submit' }, 'Record transfer');
      const form = h('form', { testid: 'transfer-form', novalidate: true },
        h('h3', {}, 'Record a bank transfer'),
        h('div', { class: 'row' },
          field('Amount (USD)', amount, { hint: `At most the balance, ${money(inv.balance_cents)}` }),
          field('Bank reference', reference)),
        h('div', { class: 'actions' }, submit));
      let attempt = { body: null, key: null };
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        clearMarks(form);
        const cents = parseMoney(amount.value);
        if (!cents || cents > inv.balance_cents) {
          errors.show(cents ? `That is more than the open balance of ${money(inv.balance_cents)}.` : 'Enter an amount like 1234.56.');
          amount.setAttribute('aria-invalid', 'true');
          amount.focus();
          return;
        }
        if (!reference.value.trim()) {
          errors.show('Enter the bank reference of the transfer.');
          reference.setAttribute('aria-invalid', 'true');
          reference.focus();
          return;
        }
        const body = { amount_cents: cents, method: 'transfer', reference: reference.value.trim() };
        const text = JSON.stringify(body);
        if (attempt.body !== text) attempt = { body: text, key: newKey() };
        busy(submit, async () => {
          try {
            const out = await api(`/api/finance/invoices/${encodeURIComponent(inv.id)}/payments`, { method: 'POST', body, idempotencyKey: attempt.key });
            attempt = { body: null, key: null };
            ok.show(`Transfer of ${money(cents)} recorded on ${inv.number}; balance ${money(out.invoice.balance_cents)}.`);
            await load();
            await open(inv.id, { keepMessage: true });
          } catch (err) {
            if (!(err.status === 0 || err.status >= 500)) attempt = { body: null, key: null };
            showError(errors, err, form, { amount_cents: 'amount' });
          }
        }, 'Recording…');
      });
      return form;
    }

    // Issuing on demand: picked from the finished launches that have no invoice (never an id to type).
    function issueForm() {
      const submit = h('button', { type: 'submit', class: 'btn', testid: 'issue-submit' }, 'Issue invoice');
      const launchSelect = h('select', { name: 'launch_id', required: true, testid: 'issue-launch' });
      const box = h('div', { testid: 'issue-launches' });
      const form = h('form', { class: 'panel narrow', testid: 'issue-form', novalidate: true },
        h('h2', {}, 'Issue an invoice on demand'),
        h('p', { class: 'muted' }, 'Invoices are issued by themselves when a launch ends. These finished launches have none:'),
        box,
        h('div', { class: 'actions' }, submit));
      form.refresh = async () => {
        try {
          const items = await all('/api/finance/launches/uninvoiced');
          if (!items.length) {
            replace(box, h('p', { class: 'empty', testid: 'issue-none' }, 'Every finished launch has its invoice.'));
            submit.hidden = true;
            return;
          }
          launchSelect.replaceChildren(...items.map((l) => h('option', { value: l.launch_id, dataset: { agency: l.agency_name } },
            `${l.mission} — ${l.agency_name}, ${statusLabel(l.status).toLowerCase()} ${dateOnly(l.scheduled_at)} (${kindLabel(l.kind).toLowerCase()})`)));
          replace(box, field('Finished launch', launchSelect, { hint: 'Successful launches get the commission invoice, aborted ones the abort fee.' }));
          submit.hidden = false;
        } catch (err) {
          replace(box, h('p', { class: 'banner banner-error', role: 'alert' }, err.message));
          submit.hidden = true;
        }
      };
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        ok.hide();
        const launchId = launchSelect.value;
        if (!launchId) {
          errors.show('Pick the finished launch to invoice.');
          return;
        }
        busy(submit, async () => {
          try {
            const out = await api('/api/finance/invoices', { method: 'POST', body: { launch_id: launchId } });
            ok.show(`Invoice ${out.invoice.number} issued: ${money(out.invoice.amount_cents)} to ${out.invoice.agency_name}.`);
            await Promise.all([load(), form.refresh()]);
          } catch (err) {
            showError(errors, err, form);
            form.refresh();
          }
        });
      });
      form.refresh();
      return form;
    }

    filters.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    await load();
    if (selected) open(selected);
  },
};
