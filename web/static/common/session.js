// The login session. Every tab of the browser shares one session: its refresh token is an HttpOnly
// cookie only the server reads (Path=/api/system/auth, SameSite=Strict). Each tab holds its own
// short-lived access token in sessionStorage (it survives a reload), gets one from the cookie when it
// has none (a new tab, a reopened page), and refreshes it before it expires. When the session ends
// (logged out elsewhere, password changed, cookie expired) a log-in dialog opens over the page, so
// nothing typed is lost; logging out ends it in every tab.

const KEY = 'astro.session'; // sessionStorage: {token, expires_at, user} of this tab
const SIGNED_IN = 'astro.signed_in'; // localStorage: '1' while this browser has a session cookie (a hint)
const CHANNEL = 'astro-session'; // BroadcastChannel between the tabs: {type: 'login' | 'logout'}
const REFRESH_PATH = '/api/system/auth/refresh';
const LOGOUT_PATH = '/api/system/auth/logout';
const tokenListeners = new Set();
const changeListeners = new Set();
let refreshTimer = null;
let refreshing = null;
let relogging = null;
let lastUser = null; // who was signed in on this tab (kept when the session ends: the dialog names them)
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : null;

/** Where each role works. */
export const HOME = { traveler: '/traveler', agency: '/agency', finance: '/system', it: '/system' };

export function current() {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    if (!s || typeof s.token !== 'string' || !s.user) return null;
    if (new Date(s.expires_at).getTime() <= Date.now()) {
      sessionStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function token() {
  return current()?.token ?? null;
}

export function user() {
  return current()?.user ?? null;
}

/** Whether someone was signed in on this tab (their session may have ended since). */
export function known() {
  return lastUser !== null;
}

/** Whether this browser had a session when last seen (its cookie may still refresh a token). */
export function signedIn() {
  try {
    return localStorage.getItem(SIGNED_IN) === '1';
  } catch {
    return false;
  }
}

function markSignedIn(on) {
  try {
    if (on) localStorage.setItem(SIGNED_IN, '1');
    else localStorage.removeItem(SIGNED_IN);
  } catch {
    // storage refused (private mode): each tab then refreshes from the cookie on its own
  }
}

/** Keep an AuthOut ({user, token, expires_at}) or update the user only ({user}). */
export function save(data) {
  const before = current();
  const next = {
    token: data.token ?? before?.token,
    expires_at: data.expires_at ?? before?.expires_at,
    user: { ...(before?.user ?? {}), ...data.user },
  };
  sessionStorage.setItem(KEY, JSON.stringify(next));
  lastUser = next.user;
  if (data.token) markSignedIn(true);
  if (data.token && data.token !== before?.token) {
    tokenListeners.forEach((fn) => fn(next));
    if (!before) changed(next, 'login');
  }
  schedule();
  return next;
}

/** Forget this tab's access token (the browser session, if any, stays). */
export function clear() {
  sessionStorage.removeItem(KEY);
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

/** Called with the new session each time the token changes (WebSocket re-authentication). */
export function onToken(fn) {
  tokenListeners.add(fn);
  return () => tokenListeners.delete(fn);
}

/** Called with (session, 'login') when this tab gets a session, (null, reason) when it loses it. */
export function onChange(fn) {
  changeListeners.add(fn);
  return () => changeListeners.delete(fn);
}

function changed(s, reason) {
  changeListeners.forEach((fn) => {
    try {
      fn(s, reason);
    } catch (err) {
      console.error(err);
    }
  });
}

/** This tab's session, asking the cookie for an access token when the tab has none. */
export async function restore() {
  const s = current();
  if (s) return s;
  if (!signedIn()) return null;
  return refresh();
}

/** The app's URL for a role. */
export function homeOf(role) {
  return HOME[role] ?? '/';
}

/**
 * A same-origin path from ?next=, or null: never another origin. The value is parsed as the browser
 * would parse it (which drops tabs and newlines and reads `\` as `/`: `/%09/evil.example` is
 * `//evil.example`), and only the parsed path of a URL of this origin is given back.
 */
export function safeNext(raw, origin = location.origin) {
  if (!raw || typeof raw !== 'string' || !raw.startsWith('/')) return null;
  let url;
  try {
    url = new URL(raw, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin || !url.pathname.startsWith('/') || url.pathname.startsWith('//')) return null;
  return url.pathname + url.search + url.hash;
}

/** The login page's URL, coming back to this page afterwards. */
export function loginUrl(reason) {
  const params = new URLSearchParams({ next: location.pathname + location.search + location.hash });
  if (reason) params.set('reason', reason);
  return `/auth?${params}`;
}

/**
 * The session is gone: on a page where someone was signed in, the log-in dialog opens over it (what
 * was typed stays); on a page nobody was signed in to, on to the login page.
 */
export function toLogin(reason) {
  if (lastUser) return relogin(reason);
  clear();
  location.assign(loginUrl(reason));
  return Promise.resolve(null);
}

/**
 * A new access token from the session cookie; one refresh at a time in this tab, and across the tabs
 * (the cookie is rotated by each use: a second tab must send the new one). Null when the session has
 * ended; the tab's current session when the server could not be reached.
 */
export function refresh() {
  if (refreshing) return refreshing;
  const run = async () => {
    let resp;
    try {
      resp = await fetch(REFRESH_PATH, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { Accept: 'application/json', 'X-Request-ID': requestId() },
      });
    } catch {
      return current();
    }
    if (resp.status === 401) {
      ended('token_expired');
      return null;
    }
    if (!resp.ok) return current(); // try again at the next occasion
    return save(await resp.json());
  };
  const locked = globalThis.navigator?.locks?.request
    ? navigator.locks.request('astro-session-refresh', run)
    : run();
  refreshing = locked.finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** The browser session ended (found out by this tab): no token, no stale name or "Live". */
function ended(reason) {
  const had = current() || lastUser;
  clear();
  markSignedIn(false);
  if (had) changed(null, reason);
}

/**
 * The log-in dialog over the page: resolves with the new session once the person logged in again
 * (the same account: a different one reloads the page into its own app). One dialog at a time.
 */
export function relogin(reason = 'token_expired') {
  if (relogging) return relogging;
  if (current()) ended(reason);
  const before = lastUser;
  relogging = import('./relogin.js')
    .then(({ showRelogin }) => showRelogin({ user: before, reason }))
    .then((s) => {
      if (s && before && s.user.id !== before.id) {
        location.assign(homeOf(s.user.role));
        return null;
      }
      return s;
    })
    .finally(() => {
      relogging = null;
    });
  return relogging;
}

/** After a log-in here: the other tabs learn that the browser has a session again. */
export function announceLogin() {
  channel?.postMessage({ type: 'login' });
}

/** Log out: the server ends the session (every tab's tokens, the cookie); every tab learns it. */
export async function logout() {
  const t = token();
  try {
    await fetch(LOGOUT_PATH, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Request-ID': requestId(), ...(t ? { Authorization: `Bearer ${t}` } : {}) },
    });
  } catch {
    // offline: the tokens expire soon; this browser forgets the session now
  }
  clear();
  markSignedIn(false);
  lastUser = null;
  channel?.postMessage({ type: 'logout' });
  location.assign('/auth?reason=logged_out');
}

channel?.addEventListener('message', (e) => {
  const type = e.data?.type;
  if (type === 'logout') {
    const had = current() || lastUser;
    clear();
    lastUser = null;
    if (had) changed(null, 'logged_out');
  } else if (type === 'login' && !current()) {
    refresh(); // another tab logged in: this one joins the session (a dialog open here closes)
  }
});

/** Plan the next refresh: a few minutes before expiry (a fifth of the time left when shorter). */
function schedule() {
  clearTimeout(refreshTimer);
  const s = current();
  if (!s) return;
  const left = new Date(s.expires_at).getTime() - Date.now();
  const margin = Math.min(5 * 60e3, left / 5);
  const wait = Math.max(1000, left - margin);
  // setTimeout holds at most ~24.8 days; a longer token is checked again then.
  refreshTimer = setTimeout(async () => {
    const now = current();
    if (!now) return;
    const remaining = new Date(now.expires_at).getTime() - Date.now();
    if (remaining > margin + 1000) schedule();
    else await refresh();
  }, Math.min(wait, 2 ** 31 - 1));
}

// A tab asleep misses its timer: check again when it is shown.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  const s = current();
  if (!s) return;
  const left = new Date(s.expires_at).getTime() - Date.now();
  if (left < 5 * 60e3) refresh();
  else schedule();
});

export function requestId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

lastUser = user();
schedule();
