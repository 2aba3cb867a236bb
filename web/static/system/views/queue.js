// Notification queue (IT): counts per status and the oldest pending, the email service's state,
// the queue with filters, and the moves IT may make on each notification (hold, release, retry,
// cancel, mark as sent). Counts and the list refresh by themselves every few seconds.

import { api } from '../../common/api.js';
import { banner, busy, confirmDialog, field, h, replace, select, showError, toast, values } from '../../common/dom.js';
import { dateTime, relative } from '../../common/format.js';
import { clock, duration, jsonDetails, moreButton, readQuery, every, writeQuery } from '../ops.js';

const STATUSES = ['pending', 'sending', 'sent', 'failed', 'held', 'cancelled'];
const EVENTS = [
  'launch_scheduled', 'launch_confirmed', 'launch_delayed', 'launch_aborted', 'launch_successful', 'launch_failed',
  'booking_confirmed', 'booking_cancelled', 'invoice_issued', 'payment_received', 'password_reset',
  'waitlist_offer', 'waitlist_closed',
];
// The moves of docs/api.md "IT's control": target status -> what the button says and does.
const MOVES = {
  held: { from: ['pending'], label: 'Hold', verb: 'hold', done: 'is held: it will not be sent until released' },
  pending: { from: ['held', 'failed'], label: (s) => (s === 'failed' ? 'Retry' : 'Release'), verb: 'release or retry', done: 'is queued again and goes out at once' },
  cancelled: { from: ['pending', 'held', 'failed'], label: 'Cancel', verb: 'cancel', done: 'is cancelled: it will never be sent', confirm: true, danger: true },
  sent: { from: ['pending', 'held', 'failed'], label: 'Mark sent', verb: 'mark as sent', done: 'is marked as sent (nothing was sent)', confirm: true },
};
const REFRESH_MS = 5000;
const STATUS_EVERY = 3; // the SMTP check makes a real connection: every third refresh is enough

function eventLabel(event) {
  return event.replace(/_/g, ' ');
}

/** The API's refusal of a move, in words. */
function refusal(err, n, to) {
  const d = err.details ?? {};
  if (err.code === 'invalid_transition') {
    const verb = MOVES[to]?.verb ?? `set to ${to}`;
    const allowed = Array.isArray(d.allowed_from) && d.allowed_from.length ? ` That is only possible while it is ${d.allowed_from.join(', ')}.` : '';
    return `Refused: this email to ${n.recipient_email} is ${d.from ?? 'in another state'} now, so you cannot ${verb} it.${allowed} The list is refreshed.`;
  }
  if (err.code === 'not_found') return 'This notification no longer exists.';
  return err.message;
}

export default {
  mount(el, ctx) {
    const errors = banner();
    const ok = banner('success');
    ok.dataset.testid = 'queue-result';
    ok.tabIndex = -1;
    const preset = readQuery(ctx, ['status', 'event', 'recipient']);
    const tiles = h('div', { class: 'grid tiles queue-tiles', testid: 'queue-counts' });
    const oldest = h('p', { class: 'oldest', testid: 'oldest-pending', 'aria-live': 'polite' });
    const service = h('div', { class: 'service-status', testid: 'notify-status' }, h('p', { class: 'loading' }, 'Checking…'));
    const tbody = h('tbody', {});
    const more = moreButton('queue-more', () => loadList({ append: true }));
    const statusSelect = select('status', [['', 'Any status'], ...STATUSES.map((s) => [s, s])], { testid: 'queue-status', value: preset.status ?? '' });
    const eventSelect = select('event', [['', 'Any event'], ...EVENTS.map((e) => [e, eventLabel(e)])], { testid: 'queue-event', value: preset.event ?? '' });
    const recipient = h('input', { name: 'recipient', value: preset.recipient ?? '', autocomplete: 'off', spellcheck: 'false', placeholder: 'usr_… or name@example.com', testid: 'queue-recipient' });
    const auto = h('input', { type: 'checkbox', id: 'queue-auto', checked: true, testid: 'queue-auto' });
    const form = h('form', { class: 'filters panel', testid: 'queue-filters', role: 'search', 'aria-label': 'Filter the queue', novalidate: true },
      field('Status', statusSelect),
      field('Event', eventSelect),
      Object.assign(field('Recipient', recipient, { hint: 'A user id or an email address' }), { className: 'field wide-on-phone' }),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'btn primary', testid: 'queue-apply' }, 'Show'),
        h('button', { type: 'button', class: 'btn', testid: 'queue-refresh', onclick: () => refreshAll(true) }, 'Refresh')));
    el.append(
      h('h1', {}, 'Notification queue'),
      h('div', { class: 'grid two' },
        h('section', { class: 'panel', 'aria-labelledby': 'queue-counts-title' },
          h('h2', { id: 'queue-counts-title' }, 'Queue'), tiles, oldest),
        h('section', { class: 'panel', 'aria-labelledby': 'notify-status-title' },
          h('h2', { id: 'notify-status-title' }, 'Email service'), service)),
      form,
      h('p', { class: 'choice' }, h('label', { for: 'queue-auto' }, auto, ` Refresh every ${REFRESH_MS / 1000} seconds`)),
      errors, ok,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack', testid: 'queue-table' },
        h('thead', {}, h('tr', {}, ['Created', 'Event', 'Recipient', 'Status', 'Attempts', 'Details', 'Actions'].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)),
      h('div', { class: 'actions' }, more));

    let applied = {};
    let cursor = null;
    const rows = new Map(); // id -> tr
    const notes = new Map(); // id -> the last refusal shown in the row
    let ticks = 0;

    // -- counts and the service ------------------------------------------------------------------
    async function loadCounts() {
      const q = await api('/api/notify/queue');
      replace(tiles, STATUSES.map((s) => h('button', {
        type: 'button',
        class: ['panel', 'tile', applied.status === s ? 'selected' : ''],
        testid: `count-${s}`,
        dataset: { value: q.counts[s] },
        'aria-pressed': String(applied.status === s),
        title: `Show ${s} notifications`,
        onclick: () => { statusSelect.value = applied.status === s ? '' : s; loadList(); },
      }, h('span', { class: 'muted' }, s), h('span', { class: 'big-number' }, String(q.counts[s])))));
      if (q.oldest_pending_at) {
        oldest.dataset.value = Math.round(q.oldest_pending_age_seconds);
        replace(oldest, 'Oldest pending: waiting ', h('strong', {}, duration(q.oldest_pending_age_seconds)),
          ` (queued ${dateTime(q.oldest_pending_at)}).`);
      } else {
        oldest.dataset.value = '';
        replace(oldest, 'Nothing is waiting to be sent.');
      }
    }

    async function loadStatus() {
      const s = await api('/api/notify/status');
      const d = s.dispatcher;
      const yes = (flag, good, bad, testid) => h('span', { class: `badge badge-${flag ? 'sent' : 'failed'}`, testid, dataset: { value: String(flag) } }, flag ? good : bad);
      replace(service, h('dl', { class: 'facts' },
        h('dt', {}, 'SMTP server'),
        h('dd', {}, yes(s.smtp.reachable, 'Reachable', 'Unreachable', 'smtp-reachable'),
          ` ${s.smtp.host}:${s.smtp.port}${s.smtp.tls ? ' (TLS)' : ''}`,
          s.smtp.latency_ms !== null ? h('span', { class: 'muted' }, ` · ${Math.round(s.smtp.latency_ms)} ms`) : null,
          s.smtp.error ? h('div', { class: 'error-text', testid: 'smtp-error' }, s.smtp.error) : null),
        h('dt', {}, 'Dispatcher'),
        h('dd', {}, yes(d.running, 'Running', 'Stopped', 'dispatcher-running'), ` on ${d.node}, every ${d.poll_interval_seconds} s`),
        h('dt', {}, 'Last success'),
        h('dd', { testid: 'last-success' }, d.last_success_at ? `${dateTime(d.last_success_at)} (${relative(d.last_success_at)})` : 'None since this node started'),
        h('dt', {}, 'Last error'),
        h('dd', { testid: 'last-error' }, d.last_error ? [h('span', { class: 'error-text' }, d.last_error), d.last_error_at ? h('div', { class: 'muted' }, dateTime(d.last_error_at)) : null] : 'None'),
        h('dt', {}, 'Last hour'),
        h('dd', { testid: 'last-hour', dataset: { sent: s.sent_last_hour, failed: s.failed_last_hour } },
          h('strong', {}, String(s.sent_last_hour)), ' sent, ',
          h('strong', { class: s.failed_last_hour ? 'error-text' : '' }, String(s.failed_last_hour)), ' failed (every node)')));
    }

    // -- the list --------------------------------------------------------------------------------
    async function loadList({ append = false, refresh = false } = {}) {
      if (!append && !refresh) {
        errors.hide();
        ok.hide();
        const v = values(form);
        applied = { status: v.status, event: v.event, recipient: v.recipient };
        writeQuery(ctx.view.id, applied);
        notes.clear();
      }
      try {
        // A refresh reloads as many rows as are shown, so nothing the user scrolled to goes away.
        const limit = refresh ? Math.min(200, Math.max(50, rows.size)) : 50;
        const page = await api('/api/notify/notifications', { query: { ...applied, limit, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        draw(page.items, append);
        more.hidden = !cursor;
        if (!refresh) await loadCounts();
      } catch (err) {
        showError(errors, err, form);
      }
    }

    function draw(items, append) {
      const keep = new Set(items.map((n) => n.id));
      if (!append) {
        for (const [id, tr] of rows) if (!keep.has(id)) { tr.remove(); rows.delete(id); }
      }
      tbody.querySelector('.empty-row')?.remove();
      let at = append ? tbody.children.length : 0;
      for (const n of items) {
        const sig = signature(n);
        let tr = rows.get(n.id);
        if (!tr || tr.dataset.sig !== sig) {
          const fresh = row(n);
          fresh.dataset.sig = sig;
          if (tr) {
            const hadFocus = tr.contains(document.activeElement);
            tr.replaceWith(fresh);
            if (hadFocus) fresh.querySelector('button')?.focus();
          }
          tr = fresh;
          rows.set(n.id, tr);
        }
        if (tbody.children[at] !== tr) tbody.insertBefore(tr, tbody.children[at] ?? null);
        at += 1;
      }
      if (!rows.size) tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: 7, class: 'empty', testid: 'queue-empty' }, 'No notifications match.')));
    }

    /** Redraw one row in place (after a move). */
    function update(n) {
      const tr = rows.get(n.id);
      if (!tr) return;
      const fresh = row(n);
      fresh.dataset.sig = signature(n);
      tr.replaceWith(fresh);
      rows.set(n.id, fresh);
      (fresh.querySelector('.row-actions button') ?? ok).focus();
    }

    function signature(n) {
      return [n.status, n.attempts, n.next_attempt_at, n.last_error, n.sent_at, notes.get(n.id) ?? ''].join('|');
    }

    function row(n) {
      const actions = Object.entries(MOVES)
        .filter(([, m]) => m.from.includes(n.status))
        .map(([to, m]) => {
          const label = typeof m.label === 'function' ? m.label(n.status) : m.label;
          return h('button', {
            type: 'button', class: `btn small${m.danger ? ' danger' : ''}`, testid: `action-${to}`,
            'aria-label': `${label}: ${eventLabel(n.event)} to ${n.recipient_email}`,
            onclick: (e) => move(n, to, e.currentTarget),
          }, label);
        });
      const when = n.status === 'sent' && n.sent_at ? `sent ${clock(n.sent_at)}`
        : n.status === 'pending' ? `due ${relative(n.next_attempt_at)}` : null;
      return h('tr', { testid: 'notification-row', dataset: { notificationId: n.id, status: n.status, event: n.event, recipient: n.recipient_email } },
        h('td', { class: 'nowrap inline' }, h('time', { datetime: n.created_at, title: dateTime(n.created_at) }, clock(n.created_at))),
        h('td', { class: 'inline strong' }, eventLabel(n.event)),
        h('td', {}, n.recipient_email, h('div', { class: 'muted' }, `${n.recipient_role} · ${n.recipient_id}`)),
        h('td', { class: 'inline' }, h('span', { class: `badge badge-${n.status}`, testid: 'notification-status', dataset: { value: n.status } }, n.status),
          when ? h('div', { class: 'muted' }, when) : null),
        h('td', { class: 'num inline', testid: 'attempts', dataset: { label: 'Attempts' } }, String(n.attempts)),
        h('td', { class: 'details' },
          n.subject ? h('div', {}, n.subject) : null,
          n.last_error ? h('div', { class: 'error-text', testid: 'last-error' }, n.last_error) : null,
          n.claimed_by ? h('div', { class: 'muted' }, `node ${n.claimed_by}`) : null,
          jsonDetails('Values', n.data, 'notification-data'),
          h('a', { href: `#logs?entity_id=${encodeURIComponent(n.id)}`, class: 'small-link' }, 'Log entries')),
        h('td', {},
          actions.length ? h('div', { class: 'row-actions' }, actions) : h('span', { class: 'muted' }, '—'),
          notes.get(n.id) ? h('p', { class: 'error-text', role: 'alert', testid: 'row-refusal' }, notes.get(n.id)) : null));
    }

    async function move(n, to, button) {
      errors.hide();
      ok.hide();
      const m = MOVES[to];
      const label = typeof m.label === 'function' ? m.label(n.status) : m.label;
      if (m.confirm) {
        const sure = await confirmDialog({
          title: `${label}?`,
          body: h('p', {}, `The ${eventLabel(n.event)} email to ${n.recipient_email} ${m.done}.`),
          confirm: label, cancel: 'Back', danger: Boolean(m.danger), testid: 'queue-dialog',
        });
        if (!sure) return;
      }
      await busy(button, async () => {
        try {
          const out = (await api(`/api/notify/notifications/${encodeURIComponent(n.id)}`, { method: 'PATCH', body: { status: to } })).notification;
          notes.delete(n.id);
          ok.show(`The ${eventLabel(out.event)} email to ${out.recipient_email} ${m.done}.`);
          toast(`${label}: done.`);
          update(out);
          await refreshAll(false);
        } catch (err) {
          const text = refusal(err, n, to);
          notes.set(n.id, text);
          errors.show(text);
          await refreshAll(false); // the row shows the notification as it is now, and the refusal
        }
      }, 'Saving…');
    }

    async function refreshAll(withStatus) {
      ticks += 1;
      const work = [loadList({ refresh: true }), loadCounts().catch((err) => showError(errors, err))];
      if (withStatus || ticks % STATUS_EVERY === 0) work.push(loadStatus().catch((err) => replace(service, h('p', { class: 'error-text' }, err.message))));
      await Promise.all(work);
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); loadList(); });
    const stop = every(REFRESH_MS, () => (auto.checked ? refreshAll(false) : undefined));
    loadList();
    loadStatus().catch((err) => replace(service, h('p', { class: 'error-text' }, err.message)));
    return stop;
  },
};
