// The login session of this browser tab: token and user in sessionStorage, refreshed before it expires.

const KEY = 'astro.session';
const REFRESH_PATH = '/api/system/auth/refresh';
const listeners = new Set();
let refreshTimer = null;
let refreshing = null;

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

/** Keep an AuthOut ({user, token, expires_at}) or update the user only ({user}). */
export function save(data) {
  const before = current();
  const next = {
    token: data.token ?? before?.token,
    expires_at: data.expires_at ?? before?.expires_at,
    user: { ...(before?.user ?? {}), ...data.user },
  };
  sessionStorage.setItem(KEY, JSON.stringify(next));
  if (data.token && data.token !== before?.token) {
    listeners.forEach((fn) => fn(next));
  }
  schedule();
  return next;
}

export function clear() {
  sessionStorage.removeItem(KEY);
  clearTimeout(refreshTimer);
  refreshTimer = null;
}

/** Called with the new session each time the token changes (WebSocket re-authentication). */
export function onToken(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
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

/** Leave for the login page, coming back here afterwards. */
export function toLogin(reason) {
  clear();
  const next = location.pathname + location.search + location.hash;
  const params = new URLSearchParams({ next });
  if (reason) params.set('reason', reason);
  location.assign(`/auth?${params}`);
}

/** Refresh the token now; one refresh at a time (the old token is revoked by it). */
export async function refresh() {
  const s = current();
  if (!s) return null;
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const resp = await fetch(REFRESH_PATH, {
        method: 'POST',
        headers: { Authorization: `Bearer ${s.token}`, 'X-Request-ID': requestId() },
      });
      if (resp.status === 401) {
        clear();
        return null;
      }
      if (!resp.ok) return s; // try again at the next occasion; the token still works
      return save(await resp.json());
    } catch {
      return s;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

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

schedule();
