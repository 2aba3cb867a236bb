// Logs (IT): entry logs with filters, newest first, and the same entries exported as NDJSON or CSV.

import { api } from '../../common/api.js';
import { saveBlob } from '../../common/csv.js';
import { banner, clearMarks, field, h, replace, select, showError, values } from '../../common/dom.js';
import { dateOnly } from '../../common/format.js';
import { clock, jsonDetails, linkButton, moreButton, readQuery, utcInput, utcValue, writeQuery } from '../ops.js';

const LEVELS = [
  ['', 'Any level'], ['warning,error,critical', 'Warnings and worse'], ['error,critical', 'Errors and worse'],
  ['debug', 'Debug'], ['info', 'Info'], ['warning', 'Warning'], ['error', 'Error'], ['critical', 'Critical'],
];
const SERVICES = ['web', 'auth', 'booking', 'catalog', 'finance', 'notify', 'sync', 'actors', 'ws', 'broadcast', 'monitor'];
const FILTERS = ['level', 'service', 'user_id', 'entity_id', 'request_id', 'q', 'since', 'until'];
const EXPORT = '/api/system/logs/export';

export default {
  mount(el, ctx) {
    const errors = banner();
    const count = h('p', { class: 'muted', 'aria-live': 'polite', testid: 'logs-count' });
    const tbody = h('tbody', {});
    const more = moreButton('logs-more', () => load(true));
    const preset = readQuery(ctx, FILTERS);
    const levelSelect = select('level', LEVELS, { testid: 'logs-level' });
    if (preset.level) {
      if (!LEVELS.some(([v]) => v === preset.level)) levelSelect.append(h('option', { value: preset.level }, preset.level));
      levelSelect.value = preset.level;
    }
    const text = (name, label, testid, attrs = {}) => field(label,
      h('input', { name, value: preset[name] ?? '', autocomplete: 'off', spellcheck: 'false', testid, ...attrs }));
    const form = h('form', { class: 'filters wide panel', testid: 'logs-filters', role: 'search', 'aria-label': 'Filter the logs', novalidate: true },
      field('Level', levelSelect),
      text('service', 'Service', 'logs-service', { list: 'log-services', placeholder: 'e.g. booking or web,auth' }),
      text('q', 'Message contains', 'logs-text', { type: 'search' }),
      text('request_id', 'Request id', 'logs-request-id'),
      text('user_id', 'User id', 'logs-user-id', { placeholder: 'usr_…' }),
      text('entity_id', 'Entity id', 'logs-entity-id', { placeholder: 'lch_…, bkg_…, ntf_…' }),
      field('Since (UTC)', utcInput('since', preset.since, { testid: 'logs-since' })),
      field('Until (UTC)', utcInput('until', preset.until, { testid: 'logs-until' })),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'btn primary', testid: 'logs-apply' }, 'Show'),
        h('button', { type: 'button', class: 'btn', testid: 'logs-clear', onclick: clearFilters }, 'Clear')),
      h('datalist', { id: 'log-services' }, SERVICES.map((s) => h('option', { value: s }))));
    const ndjson = exportLink('ndjson', 'Export NDJSON');
    const csv = exportLink('csv', 'Export CSV');
    el.append(
      h('h1', {}, 'Logs'),
      h('p', { class: 'muted' }, 'Every request, login, domain event, email and actor step, newest first. Click an id to filter by it.'),
      form, errors,
      h('div', { class: 'actions toolbar' }, count,
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, 'Matching entries, oldest first:'), ndjson, csv),
      h('div', { class: 'table-wrap' }, h('table', { class: 'logs stack', testid: 'logs-table' },
        h('thead', {}, h('tr', {}, ['Time', 'Level', 'Service', 'Message', 'User', 'About', 'Request'].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)),
      h('div', { class: 'actions' }, more));

    let applied = {}; // the filters of the list shown (the export links use them too)
    let cursor = null;
    let shown = 0;

    /** The form's filters as the API takes them, or null (and a message) when one is wrong. */
    function filters() {
      const v = values(form);
      const out = {};
      for (const name of FILTERS) if (v[name]) out[name] = v[name];
      for (const name of ['since', 'until']) {
        if (!v[name]) continue;
        const iso = utcValue(v[name]);
        if (!iso) {
          errors.show(`${name === 'since' ? 'Since' : 'Until'} is not a date and time.`);
          return null;
        }
        out[name] = iso;
      }
      if (out.since && out.until && out.since >= out.until) {
        errors.show('"Since" must be before "Until".');
        form.querySelector('[name="until"]').setAttribute('aria-invalid', 'true');
        return null;
      }
      return out;
    }

    async function load(append = false) {
      errors.hide();
      clearMarks(form);
      if (!append) {
        const f = filters();
        if (!f) return;
        applied = f;
        writeQuery(ctx.view.id, applied);
        updateLinks();
      }
      try {
        const page = await api('/api/system/logs', { query: { ...applied, limit: 100, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        if (!append) {
          tbody.replaceChildren();
          shown = 0;
        }
        tbody.append(...page.items.map(row));
        shown += page.items.length;
        if (!shown) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'empty', testid: 'logs-empty' }, 'No entries match these filters.')));
        count.textContent = shown ? `${shown} entr${shown === 1 ? 'y' : 'ies'}${cursor ? ' (more below)' : ''}` : '';
        count.dataset.value = shown;
        more.hidden = !cursor;
      } catch (err) {
        showError(errors, err, form);
      }
    }

    function row(e) {
      const filterBy = (name, value) => linkButton(value, () => {
        form.querySelector(`[name="${name}"]`).value = value;
        load();
      }, { title: `Only entries with ${name.replace('_', ' ')} ${value}`, testid: `filter-${name}` });
      return h('tr', {
        testid: 'log-row',
        class: `level-${e.level}`,
        dataset: { entryId: e.id, level: e.level, service: e.service, message: e.message, requestId: e.request_id ?? '', userId: e.user_id ?? '', entityId: e.entity?.id ?? '' },
      },
      h('td', { class: 'nowrap inline' }, h('time', { datetime: e.time, title: e.time }, clock(e.time)), h('div', { class: 'muted' }, dateOnly(e.time))),
      h('td', { class: 'inline' }, h('span', { class: `badge level level-${e.level}`, testid: 'log-level' }, e.level)),
      h('td', { class: 'inline', testid: 'log-service' }, e.service),
      h('td', { class: 'message' }, h('strong', { testid: 'log-message' }, e.message),
        e.node ? h('span', { class: 'muted' }, ` · ${e.node}`) : null,
        jsonDetails('Data', e.data, 'log-data')),
      h('td', { class: 'ids', dataset: { label: 'User' } }, e.user_id ? filterBy('user_id', e.user_id) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'ids', dataset: { label: 'About' } }, e.entity ? [h('span', { class: 'muted' }, `${e.entity.type} `), filterBy('entity_id', e.entity.id)] : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'ids', dataset: { label: 'Request' } }, e.request_id ? filterBy('request_id', e.request_id) : h('span', { class: 'muted' }, '—')));
    }

    function exportLink(format, label) {
      const a = h('a', { class: 'btn small', href: EXPORT, download: '', testid: `logs-export-${format}`, dataset: { format } }, label);
      a.addEventListener('click', async (e) => {
        e.preventDefault(); // the API wants the token, which a plain link cannot send
        if (a.getAttribute('aria-busy') === 'true') return;
        errors.hide();
        a.setAttribute('aria-busy', 'true');
        try {
          const resp = await api(a.getAttribute('href'), { raw: true, headers: { Accept: format === 'csv' ? 'text/csv' : 'application/x-ndjson' } });
          const name = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') ?? '')?.[1] ?? `entry_logs.${format}`;
          saveBlob(await resp.blob(), name);
        } catch (err) {
          showError(errors, err);
        } finally {
          a.removeAttribute('aria-busy');
        }
      });
      return a;
    }

    function updateLinks() {
      for (const a of [ndjson, csv]) {
        const q = new URLSearchParams({ ...applied, format: a.dataset.format });
        a.setAttribute('href', `${EXPORT}?${q}`);
        a.title = `Download the matching entries as ${a.dataset.format.toUpperCase()}`;
      }
    }

    function clearFilters() {
      form.reset();
      for (const input of form.querySelectorAll('input')) input.value = '';
      levelSelect.value = '';
      load();
    }

    form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
