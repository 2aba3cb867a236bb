// The agency's legal profile (AgencyAPI /profile).

import { api } from '../../common/api.js';
import { banner, busy, clearMarks, field, h, showError, values } from '../../common/dom.js';

export default {
  async mount(el, ctx) {
    const errors = banner();
    const saved = banner('success');
    el.append(h('h1', {}, 'Agency profile'),
      h('p', { class: 'muted' }, `Logged in as ${ctx.user.name} (${ctx.user.email}).`), errors, saved);
    let p;
    try {
      p = await api('/api/agency/profile');
    } catch (err) {
      showError(errors, err);
      return;
    }
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'profile-save' }, 'Save');
    const form = h('form', { class: 'panel narrow', testid: 'profile-form', novalidate: true },
      field('Legal name', h('input', { name: 'legal_name', value: p.legal_name ?? '', required: true, testid: 'profile-legal-name' })),
      field('Tax ID', h('input', { name: 'tax_id', value: p.tax_id ?? '', required: true, testid: 'profile-tax-id' })),
      field('Legal address', h('textarea', { name: 'legal_address', required: true, testid: 'profile-legal-address' }, p.legal_address ?? '')),
      field('Description', h('textarea', { name: 'description', testid: 'profile-description' }, p.description ?? ''), { optional: true }),
      field('Contact email', h('input', { type: 'email', name: 'contact_email', value: p.contact_email ?? '', testid: 'profile-contact-email' }), { optional: true }),
      h('div', { class: 'actions' }, submit));
    el.append(form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      errors.hide();
      saved.hide();
      clearMarks(form);
      const v = values(form);
      busy(submit, async () => {
        try {
          await api('/api/agency/profile', {
            method: 'PUT',
            body: { legal_name: v.legal_name, tax_id: v.tax_id, legal_address: v.legal_address, description: v.description || null, contact_email: v.contact_email || null },
          });
          saved.show('Saved.');
        } catch (err) {
          showError(errors, err, form);
        }
      }, 'Saving…');
    });
  },
};
