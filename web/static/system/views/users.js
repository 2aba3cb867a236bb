// IT: users by role, their VIP and disabled flags, agencies' verification, and new finance or IT employees.

import { api } from '../../common/api.js';
import { banner, busy, clearMarks, field, h, replace, select, showError, stacked, values } from '../../common/dom.js';
import { dateOnly } from '../../common/format.js';

const ROLES = [['', 'Every role'], ['traveler', 'Travelers'], ['agency', 'Agencies'], ['finance', 'Finance'], ['it', 'IT']];

export default {
  mount(el, ctx) {
    const errors = banner();
    const ok = banner('success');
    ok.dataset.testid = 'users-result';
    const tbody = h('tbody', {});
    const more = h('button', { type: 'button', class: 'btn', testid: 'users-more', hidden: true }, 'Load more');
    const filters = h('form', { class: 'filters panel', testid: 'users-filters' },
      field('Role', select('role', ROLES, { testid: 'users-role' })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary' }, 'Show')));
    el.append(h('h1', {}, 'Users'), filters, errors, ok,
      h('div', { class: 'table-wrap' }, stacked(h('table', { testid: 'users-table' },
        h('thead', {}, h('tr', {}, ['Name', 'Email', 'Role', 'Since', 'VIP', 'Verified', 'Disabled'].map((x) => h('th', { scope: 'col' }, x)))),
        tbody))),
      h('div', { class: 'actions' }, more),
      employeeForm());
    let cursor = null;

    async function load(append = false) {
      errors.hide();
      const { role } = values(filters);
      try {
        const page = await api('/api/system/users', { query: { role, limit: 100, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        if (!append) tbody.replaceChildren();
        tbody.append(...page.items.map(row));
        if (!tbody.children.length) tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No users.')));
        more.hidden = !cursor;
      } catch (err) {
        showError(errors, err);
      }
    }

    function row(u) {
      const self = u.id === ctx.user.id;
      const vip = h('input', {
        type: 'checkbox', checked: u.vip, testid: 'vip-toggle', 'aria-label': `VIP: ${u.name}`,
        disabled: u.role !== 'traveler',
      });
      const disabled = h('input', {
        type: 'checkbox', checked: u.disabled, testid: 'disabled-toggle', 'aria-label': `Disabled: ${u.name}`,
        disabled: self, title: self ? 'You cannot disable your own account' : null,
      });
      const tr = h('tr', { testid: 'user-row', dataset: { userId: u.id, role: u.role } },
        h('td', { class: 'lead long-text' }, u.name),
        h('td', { class: 'long-text' }, u.email),
        h('td', {}, u.role),
        h('td', { class: 'nowrap' }, dateOnly(u.created_at)),
        h('td', {}, u.role === 'traveler' ? vip : h('span', { class: 'muted' }, '—')),
        h('td', {}, u.role === 'agency' ? verification(u) : h('span', { class: 'muted' }, '—')),
        h('td', {}, disabled));
      vip.addEventListener('change', () => flag(u, { vip: vip.checked }, vip));
      disabled.addEventListener('change', () => flag(u, { disabled: disabled.checked }, disabled));
      return tr;
    }

    // An agency is pending until IT verifies it: its launches are not public, bookable nor announced.
    // Verifying cannot be undone (disable the agency instead), so the cell then shows only the state.
    function verification(u) {
      const cell = h('span', { class: 'verification', testid: 'agency-verification', dataset: { verified: String(u.verified) } });
      if (u.verified) {
        cell.append('Verified');
        return cell;
      }
      const button = h('button', { type: 'button', class: 'btn', testid: 'verify-agency', 'aria-label': `Verify ${u.name}` }, 'Verify');
      cell.append(h('span', { class: 'muted' }, 'Pending '), button);
      button.addEventListener('click', () => busy(button, async () => {
        errors.hide();
        ok.hide();
        try {
          const out = (await api(`/api/system/users/${encodeURIComponent(u.id)}`, { method: 'PATCH', body: { verified: true } })).user;
          Object.assign(u, out);
          cell.replaceWith(verification(u));
          ok.show(`${out.name} is verified: its launches are now public and bookable.`);
        } catch (err) {
          showError(errors, err);
        }
      }, 'Verifying…'));
      return cell;
    }

    async function flag(u, change, box) {
      errors.hide();
      ok.hide();
      box.disabled = true;
      try {
        const out = (await api(`/api/system/users/${encodeURIComponent(u.id)}`, { method: 'PATCH', body: change })).user;
        Object.assign(u, out);
        const what = 'vip' in change ? (out.vip ? 'is now VIP' : 'is no longer VIP') : (out.disabled ? 'is disabled: they cannot log in' : 'is enabled again');
        ok.show(`${out.name} ${what}.`);
      } catch (err) {
        box.checked = !box.checked;
        showError(errors, err);
      } finally {
        box.disabled = false;
      }
    }

    function employeeForm() {
      const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'employee-submit' }, 'Create employee');
      const form = h('form', { class: 'panel narrow', testid: 'employee-form', novalidate: true },
        h('h2', {}, 'New employee'),
        h('p', { class: 'muted' }, 'Travelers and agencies register themselves; finance and IT staff are created here.'),
        h('div', { class: 'row' },
          field('Name', h('input', { name: 'name', required: true, testid: 'employee-name' })),
          field('Email', h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off', testid: 'employee-email' }))),
        h('div', { class: 'row' },
          field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: 10, required: true, testid: 'employee-password' }), { hint: 'At least 10 characters, hard to guess; share it safely' }),
          field('Role', select('role', [['finance', 'Finance'], ['it', 'IT']], { testid: 'employee-role' }))),
        h('div', { class: 'actions' }, submit));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        errors.hide();
        ok.hide();
        clearMarks(form);
        const v = values(form);
        if (!v.name || !v.email || (v.password ?? '').length < 10) {
          errors.show('Give a name, an email and a password of at least 10 characters.');
          return;
        }
        busy(submit, async () => {
          try {
            const out = (await api('/api/system/users', { method: 'POST', body: v })).user;
            ok.show(`${out.name} can now log in as ${out.role}.`);
            form.reset();
            load();
          } catch (err) {
            showError(errors, err, form);
          }
        }, 'Creating…');
      });
      return form;
    }

    more.addEventListener('click', () => busy(more, () => load(true)));
    filters.addEventListener('submit', (e) => { e.preventDefault(); load(); });
    load();
  },
};
