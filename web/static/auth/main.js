// AuthWeb `/auth`: log in, register as a traveler or an agency, log out; `/auth/forgot` asks for a password
// reset link, `/auth/reset?token=` (the e-mailed link) sets a new password, `/auth/password` changes it.

import { api } from '../common/api.js';
import { banner, busy, clearMarks, field, h, replace, showError, values } from '../common/dom.js';
import { header, logout } from '../common/shell.js';
import * as session from '../common/session.js';

const main = document.getElementById('main');
const params = new URLSearchParams(location.search);
const REASONS = {
  token_expired: 'Your session expired. Please log in again.',
  token_revoked: 'Your session ended. Please log in again.',
  invalid_token: 'Please log in again.',
  unauthenticated: 'Please log in to continue.',
  user_disabled: 'This account is disabled. Contact AstroBookings support.',
  logged_out: 'You are logged out. See you soon!',
  password_reset: 'Your new password is set. Log in with it.',
};

async function start() {
  document.body.prepend(header({ title: 'Account', account: false }));
  const page = location.pathname.replace(/\/+$/, '');
  if (page === '/auth/forgot') return replace(main, forgotForm());
  if (page === '/auth/reset') return replace(main, resetForm());
  const s = await session.restore(); // a new tab: the session cookie gives its token
  if (page === '/auth/password') {
    if (!s) return location.assign(`/auth?next=${encodeURIComponent('/auth/password')}`);
    return replace(main, changeForm(s.user));
  }
  if (s && params.get('switch') !== '1') {
    replace(main, signedIn(s.user));
    return;
  }
  replace(main, h('div', { class: 'auth-box' }, tabs()));
}

function signedIn(user) {
  return h('div', { class: 'auth-box panel', testid: 'signed-in' },
    h('h1', {}, 'You are logged in'),
    h('p', {}, `As ${user.name} (${user.email}), ${user.role}.`),
    h('div', { class: 'actions' },
      h('a', { class: 'btn primary', href: destinationFor(user.role), testid: 'continue-link' }, 'Continue'),
      h('button', { type: 'button', class: 'btn', onclick: logout, testid: 'signed-in-logout' }, 'Log out')));
}

function tabs() {
  const loginPanel = loginForm();
  const registerPanel = registerForm();
  const wantRegister = location.hash === '#register';
  const tabLogin = h('button', { type: 'button', role: 'tab', id: 'tab-login', 'aria-controls': 'panel-login', testid: 'tab-login' }, 'Log in');
  const tabRegister = h('button', { type: 'button', role: 'tab', id: 'tab-register', 'aria-controls': 'panel-register', testid: 'tab-register' }, 'Create an account');
  const panels = [
    h('div', { role: 'tabpanel', id: 'panel-login', 'aria-labelledby': 'tab-login' }, loginPanel),
    h('div', { role: 'tabpanel', id: 'panel-register', 'aria-labelledby': 'tab-register' }, registerPanel),
  ];
  const select = (register) => {
    tabLogin.setAttribute('aria-selected', String(!register));
    tabRegister.setAttribute('aria-selected', String(register));
    tabLogin.tabIndex = register ? -1 : 0;
    tabRegister.tabIndex = register ? 0 : -1;
    panels[0].hidden = register;
    panels[1].hidden = !register;
    history.replaceState(null, '', `${location.pathname}${location.search}${register ? '#register' : ''}`);
    document.title = `${register ? 'Create an account' : 'Log in'} · AstroBookings`;
  };
  tabLogin.addEventListener('click', () => { select(false); tabLogin.focus(); });
  tabRegister.addEventListener('click', () => { select(true); tabRegister.focus(); });
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Log in or create an account' }, tabLogin, tabRegister);
  tablist.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const toRegister = tabLogin.getAttribute('aria-selected') === 'true';
      (toRegister ? tabRegister : tabLogin).click();
    }
  });
  select(wantRegister);
  const reason = REASONS[params.get('reason')];
  return h('div', { class: 'panel' },
    reason ? h('p', { class: `banner ${params.get('reason') === 'logged_out' ? 'banner-success' : 'banner-info'}`, role: 'status', testid: 'auth-reason' }, reason) : null,
    tablist, ...panels);
}

function loginForm() {
  const errors = banner();
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'login-submit' }, 'Log in');
  const form = h('form', { testid: 'login-form', novalidate: true },
    h('h1', {}, 'Log in'),
    errors,
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, testid: 'login-email' })),
    field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, testid: 'login-password' })),
    h('div', { class: 'actions' }, submit),
    h('p', {}, h('a', { href: '/auth/forgot', testid: 'forgot-link' }, 'Forgot your password?')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearMarks(form);
    errors.hide();
    const v = values(form);
    if (!v.email || !v.password) {
      errors.show('Enter your email and password.');
      return;
    }
    busy(submit, async () => {
      try {
        const out = await api('/api/system/auth/login', { method: 'POST', body: { email: v.email, password: v.password }, anonymous: true });
        signIn(out);
      } catch (err) {
        showError(errors, err, form);
      }
    }, 'Logging in…');
  });
  return form;
}

function registerForm() {
  const errors = banner();
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'register-submit' }, 'Create account');
  const roleChoice = h('fieldset', {},
    h('legend', {}, 'I am'),
    h('div', { class: 'choice' },
      h('label', {}, h('input', { type: 'radio', name: 'role', value: 'traveler', checked: true, testid: 'register-role-traveler' }), 'a traveler'),
      h('label', {}, h('input', { type: 'radio', name: 'role', value: 'agency', testid: 'register-role-agency' }), 'a space agency')));
  const traveler = h('fieldset', { testid: 'traveler-fields' },
    h('legend', {}, 'Contact and tax details'),
    field('Phone', h('input', { type: 'tel', name: 'phone', autocomplete: 'tel', required: true, testid: 'register-phone' }), { hint: 'Digits, spaces, ( ) - and a leading +' }),
    field('Contact email', h('input', { type: 'email', name: 'contact_email', testid: 'register-contact-email' }), { optional: true, hint: 'If you want emails somewhere other than your login email' }),
    field('Tax ID', h('input', { name: 'tax_id', required: true, testid: 'register-tax-id' })),
    field('Address', h('textarea', { name: 'address', autocomplete: 'street-address', required: true, testid: 'register-address' })));
  const agency = h('fieldset', { testid: 'agency-fields' },
    h('legend', {}, 'Legal details'),
    field('Legal name', h('input', { name: 'legal_name', autocomplete: 'organization', required: true, testid: 'register-legal-name' })),
    field('Tax ID', h('input', { name: 'tax_id', required: true, testid: 'register-agency-tax-id' })),
    field('Legal address', h('textarea', { name: 'legal_address', required: true, testid: 'register-legal-address' })),
    field('Description', h('textarea', { name: 'description', testid: 'register-description' }), { optional: true }),
    field('Contact email', h('input', { type: 'email', name: 'contact_email', testid: 'register-agency-contact-email' }), { optional: true }));
  const form = h('form', { testid: 'register-form', novalidate: true },
    h('h1', {}, 'Create an account'),
    errors,
    roleChoice,
    h('fieldset', {},
      h('legend', {}, 'Account'),
      field('Name', h('input', { name: 'name', autocomplete: 'name', required: true, testid: 'register-name' }), { hint: 'Your name, or the name travelers know your agency by' }),
      field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true, testid: 'register-email' }), { hint: 'You log in with it' }),
      field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: 10, required: true, testid: 'register-password' }), { hint: 'At least 10 characters, hard to guess: a few uncommon words' })),
    traveler, agency,
    h('div', { class: 'actions' }, submit));
  const showRole = () => {
    const isAgency = form.querySelector('input[name="role"]:checked').value === 'agency';
    traveler.hidden = isAgency;
    traveler.disabled = isAgency;
    agency.hidden = !isAgency;
    agency.disabled = !isAgency;
  };
  roleChoice.addEventListener('change', showRole);
  showRole();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearMarks(form);
    errors.hide();
    const v = values(form);
    const missing = checkRequired(form);
    if (missing.length) {
      errors.show(`Please fill in: ${missing.join(', ')}.`);
      return;
    }
    if (v.password.length < 10) {
      errors.show('The password needs at least 10 characters.');
      form.querySelector('[name="password"]').focus();
      return;
    }
    const profile = v.role === 'agency'
      ? { legal_name: v.legal_name, tax_id: v.tax_id, legal_address: v.legal_address, description: v.description || null, contact_email: v.contact_email || null }
      : { phone: v.phone, contact_email: v.contact_email || null, tax_id: v.tax_id, address: v.address };
    busy(submit, async () => {
      try {
        const out = await api('/api/system/auth/register', {
          method: 'POST',
          anonymous: true,
          body: { email: v.email, password: v.password, name: v.name, role: v.role, profile },
        });
        signIn(out);
      } catch (err) {
        showError(errors, err, form);
      }
    }, 'Creating…');
  });
  return form;
}

/** Labels of required controls left empty (enabled ones only). */
function checkRequired(form) {
  const missing = [];
  for (const el of form.querySelectorAll('[required]')) {
    if (el.disabled || el.closest('fieldset:disabled')) continue;
    if (!el.value.trim()) {
      el.setAttribute('aria-invalid', 'true');
      missing.push(form.querySelector(`label[for="${el.id}"]`)?.firstChild?.textContent ?? el.name);
    }
  }
  form.querySelector('[aria-invalid="true"]')?.focus();
  return missing;
}

function signIn(out) {
  session.save(out);
  session.announceLogin(); // other tabs join the session
  location.assign(destinationFor(out.user.role));
}

/** `/auth/forgot`: the e-mail address to send a reset link to; the same answer whether it has an account. */
function forgotForm() {
  document.title = 'Forgot your password · AstroBookings';
  const errors = banner();
  const sent = h('p', { class: 'banner banner-success', role: 'status', testid: 'forgot-sent', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'forgot-submit' }, 'Send the link');
  const form = h('form', { testid: 'forgot-form', novalidate: true },
    h('h1', {}, 'Forgot your password?'),
    h('p', {}, 'Enter the email you log in with. We will send it a link to choose a new password.'),
    errors, sent,
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, testid: 'forgot-email' })),
    h('div', { class: 'actions' }, h('a', { href: '/auth', class: 'btn' }, 'Back to log in'), submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearMarks(form);
    errors.hide();
    const v = values(form);
    if (!v.email) {
      errors.show('Enter your email.');
      return;
    }
    busy(submit, async () => {
      try {
        await api('/api/system/auth/password-reset', { method: 'POST', anonymous: true, body: { email: v.email } });
        sent.textContent = `If an account uses ${v.email}, a link to choose a new password is on its way. It works once, for 30 minutes.`;
        sent.hidden = false;
      } catch (err) {
        showError(errors, err, form);
      }
    }, 'Sending…');
  });
  return h('div', { class: 'auth-box panel' }, form);
}

/** Two password fields: the new one and its repetition, checked alike before anything is sent. */
function newPasswordFields(prefix) {
  return [
    field('New password', h('input', { type: 'password', name: 'new_password', autocomplete: 'new-password', minlength: 10, required: true, testid: `${prefix}-new-password` }), { hint: 'At least 10 characters, hard to guess: a few uncommon words' }),
    field('Repeat the new password', h('input', { type: 'password', name: 'repeat', autocomplete: 'new-password', required: true, testid: `${prefix}-repeat` })),
  ];
}

function checkNewPassword(v, errors) {
  if (v.new_password.length < 10) {
    errors.show('The new password needs at least 10 characters.');
    return false;
  }
  if (v.new_password !== v.repeat) {
    errors.show('The two new passwords differ. Type the same one twice.');
    return false;
  }
  return true;
}

/** `/auth/reset?token=…`: the e-mailed link's page; the token leaves the address bar at once. */
function resetForm() {
  document.title = 'Choose a new password · AstroBookings';
  const token = params.get('token') || '';
  history.replaceState(null, '', '/auth/reset'); // not kept in the history or shown over a shoulder
  const errors = banner();
  if (!token) {
    return h('div', { class: 'auth-box panel', testid: 'reset-missing' },
      h('h1', {}, 'Choose a new password'),
      h('p', { class: 'banner banner-error', role: 'alert' }, 'This link has no reset code. Open the link from the e-mail again, or ask for a new one.'),
      h('p', {}, h('a', { href: '/auth/forgot', class: 'btn primary' }, 'Ask for a new link')));
  }
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'reset-submit' }, 'Set the new password');
  const again = h('p', { hidden: true, testid: 'reset-again' }, h('a', { href: '/auth/forgot' }, 'Ask for a new link'));
  const form = h('form', { testid: 'reset-form', novalidate: true },
    h('h1', {}, 'Choose a new password'),
    errors, again,
    ...newPasswordFields('reset'),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearMarks(form);
    errors.hide();
    const v = values(form);
    if (!checkNewPassword(v, errors)) return;
    busy(submit, async () => {
      try {
        await api('/api/system/auth/password-reset/confirm', { method: 'POST', anonymous: true, body: { token, password: v.new_password } });
        location.assign('/auth?reason=password_reset');
      } catch (err) {
        showError(errors, err, form, { password: 'new_password' });
        again.hidden = err.code !== 'invalid_reset_token';
      }
    }, 'Saving…');
  });
  return h('div', { class: 'auth-box panel' }, form);
}

/** `/auth/password`: change the password; this browser stays logged in, every other device is logged out. */
function changeForm(user) {
  document.title = 'Change your password · AstroBookings';
  const errors = banner();
  const done = h('div', { class: 'banner banner-success', role: 'status', testid: 'password-changed', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'change-submit' }, 'Change the password');
  const form = h('form', { testid: 'change-form', novalidate: true },
    h('h1', {}, 'Change your password'),
    h('p', { class: 'muted' }, `For ${user.email}. Other devices and browsers will have to log in again.`),
    errors, done,
    field('Current password', h('input', { type: 'password', name: 'current_password', autocomplete: 'current-password', required: true, testid: 'change-current' })),
    ...newPasswordFields('change'),
    h('div', { class: 'actions' }, h('a', { href: session.homeOf(user.role), class: 'btn', testid: 'change-back' }, 'Back'), submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearMarks(form);
    errors.hide();
    done.hidden = true;
    const v = values(form);
    if (!v.current_password) {
      errors.show('Enter your current password.');
      return;
    }
    if (!checkNewPassword(v, errors)) return;
    busy(submit, async () => {
      try {
        const out = await api('/api/system/auth/password', {
          method: 'POST', body: { current_password: v.current_password, new_password: v.new_password },
        });
        session.save(out);
        form.reset();
        done.replaceChildren('Your password is changed. You stay logged in here; other devices have to log in again. ',
          h('a', { href: session.homeOf(user.role) }, 'Continue'));
        done.hidden = false;
      } catch (err) {
        showError(errors, err, form);
      }
    }, 'Saving…');
  });
  return h('div', { class: 'auth-box panel' }, form);
}

/** ?next= when it belongs to this role's app or the public pages; else the role's app. */
function destinationFor(role) {
  const next = session.safeNext(params.get('next'));
  const home = session.homeOf(role);
  if (next) {
    const path = next.split(/[?#]/)[0];
    const apps = Object.values(session.HOME);
    const publicPage = path === '/' || path.startsWith('/launches/');
    if (publicPage || path === home || (!apps.includes(path) && path !== '/auth')) return next;
  }
  return home;
}

start();
