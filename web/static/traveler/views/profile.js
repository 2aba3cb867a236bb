// The traveler's contact and tax data (BookingAPI /profile), and the account behind it.

import { api } from '../../common/api.js';
import { banner, busy, clearMarks, field, h, showError, values } from '../../common/dom.js';

export default {
  async mount(el, ctx) {
    const errors = banner();
    const saved = banner('success');
    const u = ctx.user;
    el.append(
      h('h1', {}, 'Profile'),
      h('div', { class: 'panel', testid: 'account' },
        h('h2', {}, 'Account'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Name'), h('dd', {}, u.name),
          h('dt', {}, 'Email'), h('dd', {}, u.email),
          h('dt', {}, 'VIP'), h('dd', { testid: 'vip-status' }, u.vip
            ? 'Yes — you see new launches first and may book up to 6 seats at once.'
            : 'Not yet — travelers with confirmed bookings on two launches become VIP.'))),
      errors, saved);
    let profile;
    try {
      profile = await api('/api/booking/profile');
    } catch (err) {
      showError(errors, err);
      return;
    }
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'profile-save' }, 'Save');
    const form = h('form', { class: 'panel', testid: 'profile-form', novalidate: true },
      h('h2', {}, 'Contact and tax details'),
      field('Phone', h('input', { type: 'tel', name: 'phone', value: profile.phone ?? '', required: true, autocomplete: 'tel', testid: 'profile-phone' })),
      field('Contact email', h('input', { type: 'email', name: 'contact_email', value: profile.contact_email ?? '', testid: 'profile-contact-email' }), { optional: true }),
      field('Tax ID', h('input', { name: 'tax_id', value: profile.tax_id ?? '', required: true, testid: 'profile-tax-id' })),
      field('Address', h('textarea', { name: 'address', required: true, autocomplete: 'street-address', testid: 'profile-address' }, profile.address ?? '')),
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
          await api('/api/booking/profile', {
            method: 'PUT',
            body: { phone: v.phone, contact_email: v.contact_email || null, tax_id: v.tax_id, address: v.address },
          });
          saved.show('Saved.');
        } catch (err) {
          showError(errors, err, form);
        }
      }, 'Saving…');
    });
  },
};
