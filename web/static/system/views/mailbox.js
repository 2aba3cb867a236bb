// Mailbox (IT): every email the embedded SMTP sink received, newest first, by recipient; open one
// to read it as it was sent.

import { api } from '../../common/api.js';
import { banner, field, h, replace, showError, values } from '../../common/dom.js';
import { dateTime, when } from '../../common/format.js';
import { moreButton, readQuery, writeQuery } from '../ops.js';

const URL_IN_TEXT = /(\bhttps?:\/\/[^\s<>"]+)/;

/** The body as text, with its web addresses as links (built as nodes, never as HTML). */
function bodyText(text) {
  const clean = String(text ?? '').replace(/\r\n/g, '\n').replace(/\n+$/, '');
  return clean.split(URL_IN_TEXT).map((part, i) => (i % 2
    ? h('a', { href: part, rel: 'noopener noreferrer', target: '_blank' }, part)
    : part));
}

function preview(text) {
  const line = String(text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > 140 ? `${line.slice(0, 140)}…` : line;
}

export default {
  mount(el, ctx) {
    const errors = banner();
    const preset = readQuery(ctx, ['to']);
    const list = h('div', { class: 'mail-list', testid: 'mail-list' });
    const count = h('p', { class: 'muted', 'aria-live': 'polite', testid: 'mail-count' });
    const more = moreButton('mail-more', () => load(true));
    const to = h('input', { type: 'email', name: 'to', value: preset.to ?? '', autocomplete: 'off', spellcheck: 'false', placeholder: 'ada@example.com', testid: 'mail-to' });
    const form = h('form', { class: 'filters one panel', testid: 'mail-filters', role: 'search', 'aria-label': 'Filter the mailbox', novalidate: true },
      field('Recipient address', to, { hint: 'The exact address; leave empty for every message' }),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'btn primary', testid: 'mail-apply' }, 'Show'),
        h('button', { type: 'button', class: 'btn', testid: 'mail-refresh', onclick: () => load() }, 'Refresh')));
    el.append(
      h('h1', {}, 'Mailbox'),
      h('p', { class: 'muted' }, 'The emails the embedded SMTP sink received (it is used when ASTRO_SMTP_URL is not set). Open a message to read it.'),
      form, errors, count, list, h('div', { class: 'actions' }, more));

    let applied = {};
    let cursor = null;
    let shown = 0;

    async function load(append = false) {
      errors.hide();
      if (!append) {
        const v = values(form);
        if (v.to && !/^[^\s@]+@[^\s@]+$/.test(v.to)) {
          errors.show('Enter a whole email address, like ada@example.com.');
          to.setAttribute('aria-invalid', 'true');
          to.focus();
          return;
        }
        to.removeAttribute('aria-invalid');
        applied = { to: v.to };
        writeQuery(ctx.view.id, applied);
      }
      try {
        const page = await api('/api/notify/mailbox', { query: { ...applied, limit: 50, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        if (!append) {
          list.replaceChildren();
          shown = 0;
        }
        list.append(...page.items.map(message));
        shown += page.items.length;
        if (!shown) replace(list, h('p', { class: 'panel empty', testid: 'mail-empty' }, applied.to ? `No message to ${applied.to}.` : 'The mailbox is empty.'));
        count.textContent = shown ? `${shown} message${shown === 1 ? '' : 's'}${cursor ? ' (more below)' : ''}` : '';
        count.dataset.value = shown;
        more.hidden = !cursor;
      } catch (err) {
        showError(errors, err, form);
      }
    }

    function message(m) {
      const body = h('pre', { class: 'mail-body', testid: 'mail-body' }, bodyText(m.body));
      return h('details', { class: 'panel mail', testid: 'mail-message', dataset: { mailId: m.id, to: m.to.join(',') } },
        h('summary', {},
          h('span', { class: 'mail-subject', testid: 'mail-subject' }, m.subject || '(no subject)'),
          h('span', { class: 'muted mail-meta' }, `to ${m.to.join(', ')} · ${dateTime(m.received_at)}`),
          h('span', { class: 'muted mail-preview' }, preview(m.body)),
          h('span', { class: 'mail-open', 'aria-hidden': 'true' }, 'Read the message ▾')),
        h('dl', { class: 'facts' },
          h('dt', {}, 'From'), h('dd', {}, m.mail_from ?? '—'),
          h('dt', {}, 'To'), h('dd', {}, m.to.join(', ')),
          h('dt', {}, 'Received'), h('dd', {}, when(m.received_at)),
          h('dt', {}, 'Message-ID'), h('dd', { class: 'ids' }, m.message_id || '—')),
        body);
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
