// Change log (IT): every change to PostgreSQL and MongoDB with its origin, newest first.

import { api } from '../../common/api.js';
import { banner, field, h, select, showError, values } from '../../common/dom.js';
import { dateOnly } from '../../common/format.js';
import { clock, jsonDetails, moreButton, readQuery, utcInput, utcValue, writeQuery } from '../ops.js';

const ENTITIES = ['agencies', 'travelers', 'rockets', 'launches', 'bookings', 'passengers', 'traveler_payments', 'invoices', 'invoice_payments', 'users'];

export default {
  mount(el, ctx) {
    const errors = banner();
    const preset = readQuery(ctx, ['entity', 'origin', 'since']);
    const tbody = h('tbody', {});
    const more = moreButton('changes-more', () => load(true));
    const form = h('form', { class: 'filters panel', testid: 'changes-filters', role: 'search', 'aria-label': 'Filter the changes', novalidate: true },
      field('Entity', select('entity', [['', 'Every entity'], ...ENTITIES.map((e) => [e, e.replace(/_/g, ' ')])], { value: preset.entity ?? '', testid: 'changes-entity' })),
      field('Origin', h('input', { name: 'origin', value: preset.origin ?? '', list: 'change-origins', autocomplete: 'off', testid: 'changes-origin' }), { hint: 'api, actor, sync, system or a service' }),
      field('Since (UTC)', utcInput('since', preset.since, { testid: 'changes-since' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', testid: 'changes-apply' }, 'Show')),
      h('datalist', { id: 'change-origins' }, ['api', 'actor', 'sync', 'system', 'booking', 'agency', 'auth', 'finance'].map((o) => h('option', { value: o }))));
    el.append(
      h('h1', {}, 'Change log'),
      h('p', { class: 'muted' }, 'What changed in each store, and who or what changed it (the origin: via, service, user, request).'),
      form, errors,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack', testid: 'changes-table' },
        h('thead', {}, h('tr', {}, ['When', 'Store', 'Entity', 'Change', 'Origin'].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)),
      h('div', { class: 'actions' }, more));
    let applied = {};
    let cursor = null;

    async function load(append = false) {
      errors.hide();
      if (!append) {
        const v = values(form);
        const since = utcValue(v.since);
        if (since === null) {
          errors.show('"Since" is not a date and time.');
          return;
        }
        applied = { entity: v.entity, origin: v.origin, since };
        writeQuery(ctx.view.id, applied);
      }
      try {
        const page = await api('/api/system/changes', { query: { ...applied, limit: 100, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        if (!append) tbody.replaceChildren();
        tbody.append(...page.items.map(row));
        if (!tbody.children.length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No changes match.')));
        more.hidden = !cursor;
      } catch (err) {
        showError(errors, err, form);
      }
    }

    function row(c) {
      const o = c.origin ?? {};
      return h('tr', { testid: 'change-row', dataset: { entity: c.entity, entityId: c.entity_id, via: o.via ?? '' } },
        h('td', { class: 'nowrap inline' }, h('time', { datetime: c.at }, clock(c.at)), h('div', { class: 'muted' }, dateOnly(c.at))),
        h('td', { class: 'inline' }, c.store),
        h('td', { class: 'ids' }, c.entity, h('div', { class: 'muted' }, c.entity_id)),
        h('td', {}, h('strong', {}, c.op), jsonDetails(`Fields (${Object.keys(c.fields ?? {}).length})`, c.fields, 'change-fields')),
        h('td', { class: 'ids', dataset: { label: 'Origin' } }, `${o.via ?? '?'} · ${o.service ?? '?'}`,
          o.user_id ? h('div', { class: 'muted' }, o.user_id) : null,
          o.request_id ? h('div', {}, h('a', { href: `#logs?request_id=${encodeURIComponent(o.request_id)}`, title: 'Log entries of this request' }, o.request_id)) : null,
          o.node ? h('div', { class: 'muted' }, o.node) : null));
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
