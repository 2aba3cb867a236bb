// The caller's own notifications (NotifyAPI /inbox), for travelers and agencies alike: the list, and one
// message opened with its full text (#inbox/<id>).

import { api } from './api.js';
import { banner, h, replace, showError, table } from './dom.js';
import { dateTime, statusLabel, when } from './format.js';

const EVENTS = {
  launch_scheduled: 'New launch', launch_confirmed: 'Launch confirmed', launch_delayed: 'Launch delayed',
  launch_aborted: 'Launch aborted', launch_successful: 'Launch successful', launch_failed: 'Launch failed',
  booking_confirmed: 'Booking confirmed', booking_cancelled: 'Booking cancelled',
  invoice_issued: 'Invoice issued', payment_received: 'Payment received', password_reset: 'Password reset',
  waitlist_offer: 'Seats offered to you', waitlist_closed: 'Waiting list closed',
};

/** The text with its web addresses as links (to this site or any other: they open in a new tab). */
function linked(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/https?:\/\/[^\s<>"]+[^\s<>".,;:!?)]/g)) {
    out.push(text.slice(last, m.index));
    out.push(h('a', { href: m[0], rel: 'noopener noreferrer', ...(sameSite(m[0]) ? {} : { target: '_blank' }) }, m[0]));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

function sameSite(url) {
  try {
    return new URL(url).origin === location.origin;
  } catch {
    return false;
  }
}

function delivery(n) {
  return n.status === 'sent' ? `Sent ${dateTime(n.sent_at)}` : statusLabel(n.status);
}

export default {
  async mount(el, ctx) {
    const errors = banner();
    const detail = h('div', { testid: 'inbox-detail-box' });
    const listBox = h('div', {});
    el.append(h('h1', {}, 'Inbox'), h('p', { class: 'muted' }, 'The emails AstroBookings sent you, newest first. Open one to read it.'), errors, detail, listBox);
    const base = `#${ctx.view?.id ?? 'inbox'}`;
    let items = [];
    let selected = ctx.arg;

    function draw() {
      if (!items.length) {
        replace(listBox, h('p', { class: 'panel empty', testid: 'inbox-empty' }, 'No messages yet.'));
        return;
      }
      // Three columns, the subject first: it stays readable on a phone.
      replace(listBox, table(['Message', 'Email', ''], items.map((n) => h('tr', {
        testid: 'inbox-row', class: n.id === selected ? 'selected' : '', dataset: { id: n.id },
      },
      h('td', {},
        h('a', { href: `${base}/${encodeURIComponent(n.id)}`, testid: 'inbox-subject', onclick: (e) => { e.preventDefault(); open(n.id); } }, n.subject || '(no subject)'),
        h('div', { class: 'muted' }, `${EVENTS[n.event] ?? n.event} · ${dateTime(n.created_at)}`)),
      h('td', {}, delivery(n)),
      h('td', {}, h('button', { type: 'button', class: 'btn small', testid: 'inbox-open', 'aria-label': `Open: ${n.subject ?? ''}`, onclick: () => open(n.id) }, 'Open')))), { testid: 'inbox' }));
    }

    async function open(id) {
      errors.hide();
      selected = id;
      history.replaceState(null, '', `${base}/${encodeURIComponent(id)}`);
      draw();
      try {
        const { message: m } = await api(`/api/notify/inbox/${encodeURIComponent(id)}`);
        const heading = h('h2', { tabindex: -1, testid: 'message-subject' }, m.subject || '(no subject)');
        replace(detail, h('article', { class: 'panel message', testid: 'inbox-message', dataset: { id: m.id } },
          heading,
          h('dl', { class: 'facts' },
            h('dt', {}, 'What'), h('dd', {}, EVENTS[m.event] ?? m.event),
            h('dt', {}, 'To'), h('dd', {}, m.recipient_email),
            h('dt', {}, 'Written'), h('dd', {}, when(m.created_at)),
            h('dt', {}, 'Email'), h('dd', {}, delivery(m))),
          h('div', { class: 'message-body', testid: 'message-body' }, linked(m.body || '')),
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', testid: 'message-close', onclick: close }, 'Back to the inbox'))));
        heading.focus();
      } catch (err) {
        replace(detail);
        showError(errors, err);
      }
    }

    function close() {
      selected = null;
      replace(detail);
      history.replaceState(null, '', base);
      draw();
      listBox.querySelector('a, button')?.focus();
    }

    try {
      items = (await api('/api/notify/inbox', { query: { limit: 100 } })).items;
    } catch (err) {
      if (err.status === 404 || err.status === 405) {
        el.append(h('div', { class: 'coming-soon', testid: 'inbox-unavailable' },
          h('p', {}, h('strong', {}, 'Your inbox is not available yet. '), 'We still email you about every booking and launch change.')));
      } else {
        showError(errors, err);
      }
      return;
    }
    draw();
    if (selected) await open(selected);
  },
};
