// The log-in dialog over the current page, when the session ended: the page stays as it is (forms keep
// what was typed) and the request that found the session gone is sent again once logged in.

import { api } from './api.js';
import { banner, busy, field, h, showError } from './dom.js';
import * as session from './session.js';

const WHY = {
  token_expired: 'Your session has ended.',
  token_revoked: 'Your session was ended (you logged out elsewhere or changed your password).',
  invalid_token: 'Your session has ended.',
  user_disabled: 'This account is disabled. Contact AstroBookings support.',
};

/** Show the dialog; resolves with the new session, or null when the person chose to leave. */
export function showRelogin({ user, reason }) {
  return new Promise((resolve) => {
    const errors = banner();
    const email = h('input', {
      type: 'email', name: 'email', autocomplete: 'username', required: true, value: user?.email ?? '', testid: 'relogin-email',
    });
    const password = h('input', {
      type: 'password', name: 'password', autocomplete: 'current-password', required: true, testid: 'relogin-password',
    });
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'relogin-submit' }, 'Log in');
    const leave = h('a', { class: 'btn', href: session.loginUrl(reason), testid: 'relogin-leave' }, 'Go to the login page');
    const form = h('form', { testid: 'relogin-form', novalidate: true },
      h('h2', { id: 'relogin-title' }, 'Log in to continue'),
      h('p', {}, `${WHY[reason] ?? WHY.token_expired} Log in again to go on where you were: nothing on this page is lost.`),
      errors,
      field('Email', email),
      field('Password', password),
      h('div', { class: 'actions' }, leave, submit));
    const dlg = h('dialog', { class: 'dialog', testid: 'relogin-dialog', 'aria-labelledby': 'relogin-title' }, form);
    let stop = () => {};
    let finished = false;
    const done = (s) => {
      if (finished) return;
      finished = true;
      stop();
      dlg.close();
      dlg.remove();
      resolve(s);
    };
    // Another tab logged in meanwhile: this one has joined the session (session.js refreshed it).
    stop = session.onChange((s) => {
      if (s) done(s);
    });
    dlg.addEventListener('cancel', (e) => e.preventDefault()); // Escape would leave a page that cannot work
    leave.addEventListener('click', () => {
      stop();
      resolve(null);
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      errors.hide();
      if (!email.value.trim() || !password.value) {
        errors.show('Enter your email and password.');
        return;
      }
      busy(submit, async () => {
        try {
          const out = await api('/api/system/auth/login', {
            method: 'POST', anonymous: true, on401: 'throw', body: { email: email.value.trim(), password: password.value },
          });
          const s = session.save(out);
          session.announceLogin();
          done(s);
        } catch (err) {
          showError(errors, err);
        }
      }, 'Logging in…');
    });
    document.body.append(dlg);
    dlg.showModal();
    (email.value ? password : email).focus();
  });
}
