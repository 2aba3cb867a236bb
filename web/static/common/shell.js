// The frame of every signed-in app: header with nav and account, a hash router mounting one view
// module at a time. A view is {id, title, roles?, load}: load() imports the view's module, which
// exports default {mount(el, ctx) -> cleanup?}. Adding a view is one file and one entry.

import { api } from './api.js';
import { h, replace, clear } from './dom.js';
import { liveIndicator } from './ws.js';
import * as session from './session.js';

/** The account area of the header: who is signed in (My account, Change password, Log out), or Log in. */
function accountArea(user, ended = false) {
  if (!user) {
    return h('div', { class: 'account' },
      ended ? h('span', { class: 'session-ended', testid: 'session-ended' }, 'Session ended') : null,
      h('a', { href: session.loginUrl(), class: 'btn small primary', testid: 'login-link' }, 'Log in'));
  }
  return h('div', { class: 'account' },
    h('span', { class: 'who', testid: 'session-user', dataset: { role: user.role }, title: `${user.name} · ${user.role}` },
      user.name, h('span', { class: 'role' }, ` · ${user.role}`),
      user.vip ? h('span', { class: 'badge badge-vip', testid: 'vip-badge' }, 'VIP') : null),
    location.pathname.startsWith(session.homeOf(user.role)) ? null
      : h('a', { href: session.homeOf(user.role), class: 'btn small', testid: 'my-app-link' }, 'My account'),
    h('a', { href: '/auth/password', class: 'account-link', testid: 'change-password-link', title: 'Change your password' }, 'Password'),
    h('button', { type: 'button', class: 'btn small', testid: 'logout-button', onclick: logout }, 'Log out'));
}

/** The brand, app links and the account area; used by the public pages too. The account area follows
 * the session: it never shows a name whose session has ended. */
export function header({ title, nav = [], live = null, user = session.user(), account: showAccount = true }) {
  let account = showAccount ? accountArea(user) : null;
  if (account) {
    session.onChange((s, reason) => {
      const next = accountArea(s?.user ?? null, !s && reason !== 'logged_out');
      account.replaceWith(next);
      account = next;
    });
  }
  const navEl = nav.length
    ? h('nav', { class: 'app-nav', 'aria-label': `${title} sections` },
      h('ul', {}, nav.map((n) => h('li', {}, h('a', {
        href: n.href, testid: `nav-${n.id}`, dataset: { view: n.id },
      }, n.title)))))
    : null;
  return h('header', { class: 'site-header' },
    h('div', { class: 'bar' },
      h('a', { href: '/', class: 'brand', 'aria-label': 'AstroBookings home' }, h('span', { 'aria-hidden': 'true', class: 'logo' }, '◐'), ' AstroBookings'),
      h('span', { class: 'app-title' }, title),
      live ? liveIndicator(live) : null,
      account),
    navEl);
}

/** Log out of this browser: every tab. */
export function logout() {
  return session.logout();
}

/**
 * Start a signed-in app: check the session and role, draw the header, route #view/arg?query.
 * views: [{id, title, roles?, hidden?, load}], ctx: extra context handed to every view.
 */
export async function startApp({ title, roles, views, defaultView, setup }) {
  const s = await session.restore(); // a new tab or a reopened page: from the session cookie
  if (!s) {
    session.clear();
    location.assign(session.loginUrl());
    return;
  }
  // Logged out in another tab: this one leaves too (a session that merely ended gets the dialog).
  session.onChange((now, reason) => {
    if (!now && reason === 'logged_out') location.assign('/auth?reason=logged_out');
  });
  let me;
  try {
    me = (await api('/api/system/auth/me')).user;
    session.save({ user: me });
  } catch (err) {
    if (err.status === 401) return; // api() is already on its way to /auth
    me = s.user;
  }
  if (!roles.includes(me.role)) {
    location.replace(session.homeOf(me.role));
    return;
  }
  const mine = views.filter((v) => !v.roles || v.roles.includes(me.role));
  const ctx = { user: me, params: {}, navigate, title };
  if (setup) Object.assign(ctx, await setup(ctx));
  if (ctx.live) ctx.live.needsSession = true; // its indicator says "Signed out" when the session ends
  const headerEl = header({
    title,
    live: ctx.live ?? null,
    user: me,
    nav: mine.filter((v) => !v.hidden).map((v) => ({ id: v.id, title: v.title, href: `#${v.id}` })),
  });
  const main = document.getElementById('main');
  document.body.prepend(headerEl);
  const first = defaultView ? (typeof defaultView === 'function' ? defaultView(me) : defaultView) : mine[0].id;
  let cleanup = null;
  let token = 0;
  let routed = false; // the first view keeps the page's own focus

  async function route() {
    const { id, arg, query } = parseHash(location.hash);
    const view = mine.find((v) => v.id === id);
    if (!view) {
      history.replaceState(null, '', `#${first}`);
      return route();
    }
    const mine_ = ++token;
    if (typeof cleanup === 'function') cleanup();
    cleanup = null;
    headerEl.querySelectorAll('.app-nav a').forEach((a) => {
      if (a.dataset.view === view.id) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    document.title = `${view.title} · ${title} · AstroBookings`;
    clear(main);
    main.dataset.view = view.id;
    main.append(h('p', { class: 'loading' }, 'Loading…'));
    let mod;
    try {
      mod = (await view.load()).default;
    } catch (err) {
      console.error(err);
      replace(main, h('p', { class: 'banner banner-error', role: 'alert' }, 'This page could not be loaded. Reload to try again.'));
      return undefined;
    }
    if (mine_ !== token) return undefined;
    clear(main);
    const el = h('section', { class: 'view', testid: `view-${view.id}`, 'aria-labelledby': `${view.id}-title` });
    main.append(el);
    cleanup = await mod.mount(el, { ...ctx, arg, query, view });
    const heading = el.querySelector('h1');
    if (heading && routed) {
      heading.id ||= `${view.id}-title`;
      heading.tabIndex = -1;
      heading.focus({ preventScroll: false });
    }
    routed = true;
    return undefined;
  }
  window.addEventListener('hashchange', route);
  await route();
}

/** "#bookings/bkg_1?launch=x" -> {id: 'bookings', arg: 'bkg_1', query: URLSearchParams}. */
export function parseHash(hash) {
  const raw = (hash || '').replace(/^#/, '');
  const [path, qs = ''] = raw.split('?');
  const [id, ...rest] = path.split('/');
  return { id: decodeURIComponent(id || ''), arg: rest.length ? decodeURIComponent(rest.join('/')) : null, query: new URLSearchParams(qs) };
}

export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/** A view still to be built: a clear place for it, with what it will show. */
export function comingSoon(title, text) {
  return {
    mount(el) {
      el.append(
        h('h1', {}, title),
        h('div', { class: 'coming-soon', testid: 'coming-soon' },
          h('p', {}, h('strong', {}, 'Coming soon. '), text)));
    },
  };
}
