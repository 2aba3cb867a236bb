// The caller's own notifications (NotifyAPI /inbox), for travelers and agencies alike.

import { api } from './api.js';
import { banner, h, showError, table } from './dom.js';
import { dateTime, statusLabel } from './format.js';

const EVENTS = {
  launch_scheduled: 'New launch', launch_confirmed: 'Launch confirmed', launch_delayed: 'Launch delayed',
  launch_aborted: 'Launch aborted', launch_successful: 'Launch successful', launch_failed: 'Launch failed',
  booking_confirmed: 'Booking confirmed', booking_cancelled: 'Booking cancelled',
  invoice_issued: 'Invoice issued', payment_received: 'Payment received',
};

export default {
  async mount(el) {
    const errors = banner();
    el.append(h('h1', {}, 'Inbox'), h('p', { class: 'muted' }, 'The emails AstroBookings sent you, newest first.'), errors);
    let page;
    try {
      page = await api('/api/notify/inbox', { query: { limit: 100 } });
    } catch (err) {
      if (err.status === 404 || err.status === 405) {
        el.append(h('div', { class: 'coming-soon', testid: 'inbox-unavailable' },
          h('p', {}, h('strong', {}, 'Your inbox is not available yet. '), 'We still email you about every booking and launch change.')));
      } else {
        showError(errors, err);
      }
      return;
    }
    if (!page.items.length) {
      el.append(h('p', { class: 'panel empty', testid: 'inbox-empty' }, 'No messages yet.'));
      return;
    }
    el.append(table(['When', 'What', 'Subject', 'Email'], page.items.map((n) => h('tr', { testid: 'inbox-row', dataset: { id: n.id } },
      h('td', { class: 'nowrap' }, dateTime(n.created_at)),
      h('td', {}, EVENTS[n.event] ?? n.event),
      h('td', {}, n.subject ?? '—'),
      h('td', {}, n.status === 'sent' ? `Sent ${dateTime(n.sent_at)}` : statusLabel(n.status)))), { testid: 'inbox' }));
  },
};
