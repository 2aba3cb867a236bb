// The agency's rockets: add, edit, delete.

import { all, api } from '../../common/api.js';
import { banner, busy, clearMarks, confirmDialog, field, h, replace, showError, table, values } from '../../common/dom.js';
import { DESTINATIONS, RANGES } from '../../common/format.js';

export default {
  async mount(el) {
    const errors = banner();
    const ok = banner('success');
    const listBox = h('div', { testid: 'rockets' });
    el.append(h('h1', {}, 'Rockets'), errors, ok, listBox);
    el.append(rocketForm(null));

    async function load() {
      try {
        const rockets = await all('/api/agency/rockets');
        replace(listBox, rockets.length
          ? table(['Name', 'Seats', 'Range', ''], rockets.map(row), { testid: 'rockets-table' })
          : h('p', { class: 'panel empty', testid: 'no-rockets' }, 'No rockets yet. Add your first one below.'));
      } catch (err) {
        showError(errors, err);
      }
    }

    function row(r) {
      const tr = h('tr', { testid: 'rocket-row', dataset: { rocketId: r.id } },
        h('td', { class: 'lead long-text', testid: 'rocket-name' }, r.name),
        h('td', { class: 'num' }, String(r.capacity)),
        h('td', {}, `Up to ${DESTINATIONS[r.range]}`),
        h('td', { class: 'nowrap' },
          h('button', { type: 'button', class: 'btn small', testid: 'rocket-edit', onclick: () => edit(tr, r) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'btn small', testid: 'rocket-delete', onclick: (e) => remove(r, e.currentTarget) }, 'Delete')));
      return tr;
    }

    function edit(tr, r) {
      const cell = h('td', { colspan: 4 }, rocketForm(r, () => load()));
      tr.replaceChildren(cell);
      cell.querySelector('input').focus();
    }

    async function remove(r, button) {
      errors.hide();
      ok.hide();
      const yes = await confirmDialog({
        title: `Delete ${r.name}?`,
        body: h('p', {}, 'Its finished launches keep their history. A rocket with launches still to fly cannot be deleted.'),
        confirm: 'Delete', danger: true, testid: 'rocket-delete-dialog',
      });
      if (!yes) return;
      await busy(button, async () => {
        try {
          await api(`/api/agency/rockets/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
          ok.show(`${r.name} deleted.`);
          load();
        } catch (err) {
          showError(errors, err);
        }
      });
    }

    /** The add form (rocket null) or the edit form of one rocket. */
    function rocketForm(r, after = null) {
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: r ? 'rocket-save' : 'rocket-submit' }, r ? 'Save' : 'Add rocket');
      const form = h('form', { class: r ? '' : 'panel', testid: r ? 'rocket-edit-form' : 'rocket-form', novalidate: true },
        r ? null : h('h2', {}, 'Add a rocket'),
        h('div', { class: 'row' },
          field('Name', h('input', { name: 'name', required: true, value: r?.name ?? '', testid: 'rocket-name-input' })),
          field('Seats', h('input', { type: 'number', name: 'capacity', min: 1, max: 1000, required: true, value: r?.capacity ?? '', inputmode: 'numeric', testid: 'rocket-capacity' }), { hint: '1 to 1000' }),
          field('Range', h('select', { name: 'range', testid: 'rocket-range' },
            Object.entries(RANGES).map(([v, label]) => h('option', { value: v, selected: r?.range === v }, `Up to ${label}`))))),
        r ? h('p', { class: 'hint' }, 'Launches already scheduled keep the capacity they were scheduled with.') : null,
        h('div', { class: 'actions' }, submit,
          r ? h('button', { type: 'button', class: 'btn', onclick: () => load() }, 'Cancel') : null));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        ok.hide();
        clearMarks(form);
        const v = values(form);
        const capacity = Number(v.capacity);
        if (!v.name || !Number.isInteger(capacity) || capacity < 1 || capacity > 1000) {
          errors.show('Give the rocket a name and 1 to 1000 seats.');
          return;
        }
        busy(submit, async () => {
          try {
            const body = { name: v.name, capacity, range: v.range };
            if (r) await api(`/api/agency/rockets/${encodeURIComponent(r.id)}`, { method: 'PUT', body });
            else await api('/api/agency/rockets', { method: 'POST', body });
            ok.show(r ? `${v.name} saved.` : `${v.name} added.`);
            if (!r) form.reset();
            (after ?? load)();
          } catch (err) {
            showError(errors, err, form);
          }
        }, 'Saving…');
      });
      return form;
    }

    await load();
  },
};
