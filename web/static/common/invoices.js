// Invoice pieces shared by AgencyWeb (pay by card) and SystemWeb (finance: transfers).

import { h, stacked } from './dom.js';
import { dateOnly, money, statusLabel, when } from './format.js';

export const INVOICE_STATUSES = ['issued', 'partially_paid', 'paid', 'overdue'];
const KINDS = { commission: 'Commission', abort_fee: 'Abort fee' };

export function kindLabel(kind) {
  return KINDS[kind] ?? kind;
}

export function invoiceBadge(status) {
  return h('span', { class: `badge badge-${status}`, testid: 'invoice-status', dataset: { value: status } }, statusLabel(status));
}

/**
 * The table of invoices; `action(inv)` gives the last cell's content, which stays in view at the right
 * edge on a wide screen (sticky) and ends each card on a phone. `open(inv)`, when given, makes the
 * invoice number a button too.
 */
export function invoiceTable(items, { action, open = null, showAgency = false, selected = null } = {}) {
  const head = ['Number', showAgency ? 'Agency' : null, 'Launch', 'Kind', 'Amount', 'Paid', 'Balance', 'Status', 'Due'].filter((x) => x !== null);
  const el = h('table', { testid: 'invoices-table' },
    h('thead', {}, h('tr', {}, head.map((x) => h('th', { scope: 'col' }, x)),
      h('th', { scope: 'col', class: 'row-action' }, h('span', { class: 'sr-only' }, 'Action')))),
    h('tbody', {}, items.map((inv) => h('tr', {
      testid: 'invoice-row',
      class: inv.id === selected ? 'selected' : '',
      dataset: { invoiceId: inv.id, number: inv.number, status: inv.status },
    },
    h('td', { class: 'nowrap lead', testid: 'invoice-number' },
      open ? h('button', { type: 'button', class: 'btn link', onclick: () => open(inv), title: `Open ${inv.number}` }, inv.number) : inv.number),
    showAgency ? h('td', { class: 'long-text' }, inv.agency_name) : null,
    h('td', { class: 'long-text' }, inv.mission),
    h('td', {}, kindLabel(inv.kind), inv.kind === 'commission' ? h('div', { class: 'muted' }, `${inv.rate_pct} % of `, h('span', { class: 'money' }, money(inv.net_revenue_cents))) : null),
    h('td', { class: 'num' }, money(inv.amount_cents)),
    h('td', { class: 'num' }, money(inv.paid_cents)),
    h('td', { class: 'num', testid: 'invoice-balance' }, money(inv.balance_cents)),
    h('td', {}, invoiceBadge(inv.status)),
    h('td', { class: 'nowrap' }, dateOnly(inv.due_at)),
    h('td', { class: 'nowrap row-action' }, action ? action(inv) : null)))));
  stacked(el);
  return h('div', { class: 'table-wrap' }, el);
}

/** An invoice's payments (GET .../invoices/{id} answers them). */
export function paymentsList(inv) {
  const list = inv.payments ?? [];
  if (!list.length) return h('p', { class: 'muted', testid: 'payments-empty' }, 'No payments yet.');
  return h('ul', { testid: 'payments' }, list.map((p) => h('li', { dataset: { status: p.status } },
    when(p.paid_at ?? p.created_at), `: ${money(p.amount_cents)} by ${p.method}`,
    p.reference ? ` (ref. ${p.reference})` : '',
    p.status !== 'done' ? h('span', { class: `badge badge-${p.status === 'declined' ? 'failed' : 'pending'}` }, ` ${p.status}`) : null)));
}
