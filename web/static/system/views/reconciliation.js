// Finance: reconciliation. Every payment attempt of a period compared with its booking and with what the
// payment gateway holds (GET /api/finance/reconciliation): the period's totals, the attempts per state,
// and each attempt that disagrees with what disagrees and what to do. Expected: none.

import { api } from '../../common/api.js';
import { banner, busy, field, h, replace, showError, values } from '../../common/dom.js';
import { money, plural, when } from '../../common/format.js';

const PAGE = 200; // attempts checked per request: the gateway is asked once for each
const PAGES_AT_ONCE = 10; // then the operator asks for more
const TOTALS = [
  ['captured_cents', 'Captured', 'taken from cards'],
  ['refunded_cents', 'Refunded', 'paid back'],
  ['booked_cents', 'Booked', 'stored bookings’ totals'],
  ['refunds_due_cents', 'Refunds due', 'what cancellations give back'],
  ['difference_cents', 'Difference', '0 when all is settled'],
];
const STATES = ['captured', 'booked', 'authorized', 'created', 'voiding', 'voided', 'declined', 'failed'];
const PROBLEMS = {
  captured_without_booking: 'Charged without a booking',
  booking_not_paid: 'Booking not paid',
  booking_missing: 'Booking missing',
  hold_not_released: 'Hold not released',
  state_differs: 'States differ',
  amount_differs: 'Amounts differ',
  metadata_differs: 'Paid for another booking',
  refund_differs: 'Refunds differ',
  refund_unpaid: 'Refund not paid',
  open_past_deadline: 'Still open past its deadline',
  gateway_unanswered: 'Gateway did not answer',
};

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

function gatewaySays(g) {
  if (!g.answered) return `did not answer${g.error ? ` (${g.error})` : ''}`;
  if (!g.state) return 'no payment under this attempt';
  return `${g.state}, ${money(g.amount_cents)}${g.refunded_cents ? `, ${money(g.refunded_cents)} refunded` : ''}${g.ref ? ` (${g.ref})` : ''}`;
}

function bookingSays(b) {
  if (!b) return 'none stored';
  const refund = b.refund_due_cents ? `; gives back ${money(b.refund_due_cents)}, ${money(b.refunded_cents)} paid` : '';
  return `${b.id}: ${b.status}, ${money(b.total_cents)}${refund}`;
}

function mismatch(item) {
  return h('section', {
    class: 'panel recon-item', testid: 'recon-item',
    dataset: { attemptId: item.attempt_id, codes: item.problems.map((p) => p.code).join(' ') },
  },
  h('h3', {}, `${money(item.amount_cents)} `, h('span', { class: 'badge badge-failed' }, item.problems.map((p) => PROBLEMS[p.code] ?? p.code).join(', '))),
  h('dl', { class: 'facts' },
    h('dt', {}, 'Attempt'), h('dd', { class: 'ids' }, item.attempt_id),
    h('dt', {}, 'Ours'), h('dd', { testid: 'recon-ours' }, item.state),
    h('dt', {}, 'Gateway'), h('dd', { class: 'ids', testid: 'recon-gateway' }, gatewaySays(item.gateway)),
    h('dt', {}, 'Booking'), h('dd', { class: 'ids' }, bookingSays(item.booking)),
    h('dt', {}, 'Traveler'), h('dd', { class: 'ids' }, item.traveler_id),
    h('dt', {}, 'Created'), h('dd', {}, when(item.created_at))),
  h('ul', { class: 'recon-problems' }, item.problems.map((p) => h('li', { testid: 'recon-problem', dataset: { code: p.code } },
    h('strong', {}, `${PROBLEMS[p.code] ?? p.code}: `), p.what,
    h('br'), h('span', { class: 'muted', testid: 'recon-action' }, `What to do: ${p.action}`)))));
}

export default {
  mount(el) {
    const errors = banner();
    const summary = h('div', { testid: 'recon-summary' });
    const verdict = h('div', { testid: 'recon-verdict', 'aria-live': 'polite' });
    const list = h('div', { testid: 'recon-items' });
    const more = h('button', { type: 'button', class: 'btn', testid: 'recon-more', hidden: true }, 'Check more attempts');
    const today = new Date();
    const from = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - 29));
    const to = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 1));
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'recon-submit' }, 'Check');
    const form = h('form', { class: 'filters panel', testid: 'recon-form', novalidate: true },
      field('Attempts from', h('input', { type: 'date', name: 'from', value: isoDay(from), testid: 'recon-from' })),
      field('Up to (not including)', h('input', { type: 'date', name: 'to', value: isoDay(to), testid: 'recon-to' })),
      h('div', { class: 'actions' }, submit));
    el.append(h('h1', {}, 'Reconciliation'),
      h('p', { class: 'muted' }, 'Every payment attempt made in the period, compared with its booking and with what the payment gateway holds. Expected: no disagreements.'),
      form, errors, summary, verdict, list, h('div', { class: 'actions' }, more));

    // The check under way: its period, where the next page starts (null: no more), what it found so far.
    let run = null;

    async function pages(count) {
      for (let i = 0; i < count && run.cursor !== null; i += 1) {
        const page = await api('/api/finance/reconciliation', { query: { ...run.query, limit: PAGE, cursor: run.cursor } });
        if (!run.pages++) drawSummary(page); // the totals are the whole period's on every page
        run.checked += page.checked;
        run.inFlight += page.in_flight;
        run.items.push(...page.items);
        run.cursor = page.next_cursor;
        list.append(...page.items.map(mismatch));
      }
      drawVerdict();
    }

    function drawSummary(page) {
      const states = STATES.filter((s) => page.states[s]).map((s) => `${page.states[s]} ${s}`);
      replace(summary,
        h('section', { class: 'panel', 'aria-labelledby': 'recon-totals-title' },
          h('h2', { id: 'recon-totals-title' }, 'Totals of the period'),
          h('div', { class: 'grid tiles recon-tiles', testid: 'recon-totals' }, TOTALS.map(([key, label, hint]) => h('div', { class: 'panel', testid: `recon-${key.replace(/_cents$/, '').replace(/_/g, '-')}`, dataset: { cents: page.totals[key] } },
            h('div', { class: 'muted' }, label),
            h('div', { class: 'big-number' }, money(page.totals[key])),
            h('div', { class: 'muted' }, hint)))),
          h('p', { testid: 'recon-states' }, states.length ? `Attempts: ${states.join(' · ')}` : 'No payment attempts in this period.')));
    }

    function drawVerdict() {
      const done = run.cursor === null;
      const flying = run.inFlight ? ` Not judged yet: ${plural(run.inFlight, 'attempt')} still within the time the booking has to finish.` : '';
      const n = run.items.length;
      let text;
      let kind;
      if (n) {
        text = `${plural(n, 'payment')} disagree${n === 1 ? 's' : ''} with ${n === 1 ? 'its booking' : 'their bookings'} (${plural(run.checked, 'attempt')} checked${done ? '' : ' so far'}).`;
        kind = 'error';
      } else if (done) {
        text = `None: every payment matches its booking (${plural(run.checked, 'attempt')} checked).`;
        kind = 'success';
      } else {
        text = `No disagreement among the ${plural(run.checked, 'attempt')} checked so far; more remain.`;
        kind = 'info';
      }
      replace(verdict, h('p', { class: `banner banner-${kind}`, testid: n ? 'recon-found' : done ? 'recon-none' : 'recon-partial', dataset: { count: n } }, text + flying));
      more.hidden = done;
    }

    async function load() {
      errors.hide();
      const v = values(form);
      if (v.from && v.to && v.from >= v.to) {
        errors.show('"Attempts from" must be before "Up to".');
        return;
      }
      replace(summary);
      replace(verdict, h('p', { class: 'loading' }, 'Asking the payment gateway about every attempt…'));
      replace(list);
      more.hidden = true;
      run = { query: { from: v.from, to: v.to }, cursor: undefined, pages: 0, checked: 0, inFlight: 0, items: [] };
      try {
        await pages(PAGES_AT_ONCE);
      } catch (err) {
        replace(verdict);
        showError(errors, err, form);
      }
    }

    more.addEventListener('click', () => busy(more, async () => {
      try {
        await pages(PAGES_AT_ONCE);
      } catch (err) {
        showError(errors, err);
      }
    }, 'Checking…'));
    form.addEventListener('submit', (e) => { e.preventDefault(); busy(submit, load, 'Checking…'); });
    busy(submit, load, 'Checking…');
  },
};
