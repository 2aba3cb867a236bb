// fetch for the AstroBookings API: the token, a request id, and errors as plain sentences.

import { dateTime, money } from './format.js';
import * as session from './session.js';

/** An answer the API refused, or no answer at all (status 0). `message` is for people. */
export class ApiError extends Error {
  constructor({ status, code, message, details = {}, requestId = null, retryAfter = null }) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }

  /** Field paths the API named (e.g. "profile.tax_id", "passengers.1.birth_date") -> its text. */
  get fields() {
    const f = this.details?.fields;
    return f && typeof f === 'object' ? f : {};
  }
}

const FIELD_LABELS = {
  body: 'the form',
  email: 'Email',
  password: 'Password',
  current_password: 'Current password',
  new_password: 'New password',
  name: 'Name',
  role: 'Account type',
  'profile.phone': 'Phone',
  'profile.contact_email': 'Contact email',
  'profile.tax_id': 'Tax ID',
  'profile.address': 'Address',
  'profile.legal_name': 'Legal name',
  'profile.legal_address': 'Legal address',
  'profile.description': 'Description',
  phone: 'Phone',
  contact_email: 'Contact email',
  tax_id: 'Tax ID',
  address: 'Address',
  legal_name: 'Legal name',
  legal_address: 'Legal address',
  description: 'Description',
  launch_id: 'Launch',
  seats: 'Seats',
  passengers: 'Passengers',
  card_token: 'Card',
  rocket_id: 'Rocket',
  mission: 'Mission',
  destination: 'Destination',
  scheduled_at: 'Date and time',
  price_cents: 'Price per seat',
  min_passengers: 'Minimum passengers',
  capacity: 'Capacity',
  range: 'Range',
  status: 'Status',
  reason: 'Reason',
  amount_cents: 'Amount',
  reference: 'Reference',
  from: 'From',
  to: 'To',
  year: 'Year',
  limit: 'Page size',
  cursor: 'Page',
  vip: 'VIP',
  disabled: 'Disabled',
};

/** "passengers.1.birth_date" -> "Passenger 2's birth date"; known names get their form label. */
export function fieldLabel(path) {
  const p = /^passengers\.(\d+)\.(name|birth_date)$/.exec(path);
  if (p) return `Passenger ${Number(p[1]) + 1}'s ${p[2] === 'name' ? 'name' : 'birth date'}`;
  return FIELD_LABELS[path] ?? path.replace(/^profile\./, '').replace(/[._]/g, ' ');
}

function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** A validation message in plain words: the API's (pydantic's) wording is for developers. */
export function fieldProblem(path, text) {
  const t = String(text ?? '').replace(/^Value error, /, '');
  let m;
  if (/^String should match pattern/.test(t)) {
    if (/email/.test(path)) return 'is not a valid email address';
    if (/phone/.test(path)) return 'may only have digits, spaces, ( ) - and a leading +';
    return 'has characters that are not allowed';
  }
  if ((m = /^String should have at least (\d+) characters?/.exec(t))) return Number(m[1]) === 1 ? 'is required' : `needs at least ${m[1]} characters`;
  if ((m = /^String should have at most (\d+) characters?/.exec(t))) return `may have at most ${m[1]} characters`;
  if (/^Field required|^missing$/.test(t)) return 'is required';
  if (/^Input should be a valid date/.test(t)) return 'is not a valid date';
  if (/^Input should be a valid datetime|timezone/.test(t)) return 'is not a valid date and time';
  if (/^Input should be a valid integer/.test(t)) return 'must be a whole number';
  if ((m = /^Input should be greater than or equal to (\S+)/.exec(t))) return `must be at least ${m[1]}`;
  if ((m = /^Input should be greater than (\S+)/.exec(t))) return `must be more than ${m[1]}`;
  if ((m = /^Input should be less than or equal to (\S+)/.exec(t))) return `must be at most ${m[1]}`;
  if (/^Extra inputs are not permitted/.test(t)) return 'is not expected here';
  if ((m = /^Input should be (.+)$/.exec(t))) return `must be ${m[1].replace(/'/g, '')}`;
  return t;
}

function fieldList(fields) {
  return Object.entries(fields).map(([k, v]) => `${fieldLabel(k)} ${fieldProblem(k, v)}`);
}

/** The plain sentence for an API error body {code, message, details}. */
export function explain(status, code, message, details = {}, retryAfter = null) {
  const d = details || {};
  const fields = d.fields && typeof d.fields === 'object' ? d.fields : {};
  switch (code) {
    case 'invalid_input': {
      const list = fieldList(fields);
      return list.length ? `Please check: ${list.join('; ')}.` : sentence(message) || 'Please check the form.';
    }
    case 'invalid_credentials':
      return 'Wrong email or password.';
    case 'too_many_attempts': {
      const wait = retryAfter ? ` Wait ${retryAfter} seconds and try again.` : ' Wait a minute and try again.';
      return `Too many failed attempts.${wait}`;
    }
    case 'email_taken':
      return 'An account with this email already exists. Log in instead, or use another email.';
    case 'tax_id_taken':
      return 'Another agency is already registered with this tax ID.';
    case 'unauthenticated':
    case 'invalid_token':
    case 'token_revoked':
      return 'Please log in again.';
    case 'token_expired':
      return 'Your session has expired. Please log in again.';
    case 'invalid_reset_token':
      if (d.reason === 'used') return 'This reset link has been used already. Ask for a new one if you still need it.';
      if (d.reason === 'expired') return 'This reset link has expired (links work for 30 minutes). Ask for a new one.';
      return 'This reset link is not valid. Open the link from the e-mail again, or ask for a new one.';
    case 'user_disabled':
      return 'This account is disabled. Contact AstroBookings support.';
    case 'forbidden':
      return 'Your account is not allowed to do this.';
    case 'not_found':
      return 'We could not find that. It may have been removed.';
    case 'vip_only':
      return d.public_from
        ? `This launch is open to VIP travelers only until ${dateTime(d.public_from)}.`
        : 'This launch is open to VIP travelers only for now.';
    case 'sold_out':
      if (d.seats_available === 0 || d.seats_available === undefined) return 'Sold out: no seats are left on this launch.';
      return `Not enough seats: only ${d.seats_available} left, and you asked for ${d.seats_requested}.`;
    case 'launch_not_bookable':
      return d.status
        ? `This launch no longer takes bookings (it is ${d.status}, or its date has passed).`
        : 'This launch no longer takes bookings.';
    case 'seat_limit':
      if (fields.passengers) return `Give exactly one passenger per seat (${fields.passengers}).`;
      return `A booking has 1 to ${d.max_seats ?? 4} seats${d.max_seats === 6 ? '' : ' (6 for VIP travelers)'}.`;
    case 'passenger_age': {
      const who = Object.entries(fields).map(([k, v]) => {
        const m = /^passengers\.(\d+)\./.exec(k);
        return m ? `passenger ${Number(m[1]) + 1} would be ${String(v).replace(/ on the launch date$/, '')}` : v;
      });
      const tail = who.length ? ` On the launch date ${who.join(', ')}.` : '';
      return `Every passenger must be 18 to 70 years old on the launch date.${tail}`;
    }
    case 'payment_declined':
      return 'Your card was declined. Nothing was charged — try another card.';
    case 'payment_gateway_error':
      return 'The payment service did not answer. Nothing was charged — please try again in a moment.';
    case 'overpayment':
      return d.balance_cents === 0
        ? 'This invoice is already paid in full.'
        : `That is more than the open balance of ${money(d.balance_cents)}.`;
    case 'already_cancelled':
      return 'This booking is already cancelled.';
    case 'launch_finished':
      return 'This launch has finished, so its bookings can no longer be cancelled.';
    case 'invalid_transition': {
      const allowed = Array.isArray(d.allowed) && d.allowed.length ? ` Allowed now: ${d.allowed.join(', ')}.` : ' No change is allowed now.';
      return `A ${d.status ?? 'launch in this'} launch cannot move to that status.${allowed}`;
    }
    case 'too_early':
      return `That can only be reported after the scheduled time${d.scheduled_at ? ` (${dateTime(d.scheduled_at)})` : ''}.`;
    case 'date_in_past':
      if (fields.scheduled_at === 'required') return 'A delay needs the new date and time.';
      if (fields.scheduled_at === 'not later') return 'The new date must be later than the current one and in the future.';
      return 'The date must be in the future.';
    case 'out_of_range':
      return 'This rocket cannot fly that far. Choose a nearer destination or another rocket.';
    case 'rocket_in_use':
      return 'This rocket still has launches that have not finished, so it cannot be deleted.';
    case 'slug_taken':
      return 'Could not name this launch (another one has the same rocket, destination and day). Please try again.';
    case 'invoice_exists':
      return 'This launch already has its invoice.';
    case 'launch_not_invoiceable':
      return `Only successful and aborted launches are invoiced${d.status ? `; this one is ${d.status}` : ''}.`;
    case 'idempotency_in_progress':
      return 'Your previous attempt is still being processed. Wait a moment, then check before trying again.';
    case 'idempotency_mismatch':
      return 'This attempt differs from the one already sent. Reload the page and start again.';
    case 'unavailable':
      return `The service is briefly unavailable. Please try again${retryAfter ? ` in ${retryAfter} seconds` : ' shortly'}.`;
    case 'payload_too_large':
      return 'That is too much data to send at once.';
    case 'internal':
      return `Something went wrong on our side.${message && /request id/i.test(message) ? ` ${sentence(message.replace(/^.*?quote/i, 'Quote'))}` : ''}`;
    default:
      if (status >= 500) return 'Something went wrong on our side. Please try again.';
      return sentence(message) || `The request was refused (${status}).`;
  }
}

// A 401 with one of these means this tab's access token is no longer good (expired, revoked): the
// session cookie may still give a new one.
const TOKEN_GONE = new Set(['token_expired', 'token_revoked', 'invalid_token', 'unauthenticated']);
// Requests that are themselves about getting a session: their 401 is the answer, never retried.
const SESSION_PATHS = /^\/api\/system\/auth\/(login|register|refresh|logout|password-reset)/;

/**
 * Call the API. Options: method, body (JSON), query (object; empty values left out), headers,
 * idempotencyKey, anonymous (send no token), on401: 'login' (default) | 'drop' | 'throw'; raw (answer
 * the Response itself). A token that expired or was revoked is refreshed from the session cookie and
 * the request sent once more; when the session itself has ended, 'login' opens the log-in dialog over
 * the page and sends the request again once logged in, 'drop' sends it without a token.
 */
export async function api(path, opts = {}) {
  const {
    method = 'GET', body, query, headers = {}, idempotencyKey, anonymous = false, on401 = 'login', raw = false, retried = false,
  } = opts;
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const qs = q.toString();
    if (qs) url += `${url.includes('?') ? '&' : '?'}${qs}`;
  }
  const h = { Accept: 'application/json', 'X-Request-ID': session.requestId(), ...headers };
  if (!anonymous && !session.token() && session.signedIn()) await session.restore(); // a new tab
  const token = anonymous ? null : session.token();
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (idempotencyKey) h['Idempotency-Key'] = idempotencyKey;
  let resp;
  try {
    resp = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError({
      status: 0, code: 'network',
      message: 'Cannot reach AstroBookings. Check your connection and try again.',
    });
  }
  if (resp.ok) {
    if (raw) return resp;
    if (resp.status === 204) return null;
    const type = resp.headers.get('Content-Type') || '';
    return type.includes('json') ? resp.json() : resp.text();
  }
  const error = await toError(resp);
  // Without a token too, when someone was signed in here: their session ended (the header says so).
  if (resp.status === 401 && (token || (!anonymous && session.known())) && on401 !== 'throw' && !retried && TOKEN_GONE.has(error.code) && !SESSION_PATHS.test(path)) {
    // Another request of this tab may have refreshed the token meanwhile; else ask the cookie.
    const fresh = session.token() && session.token() !== token ? session.current() : await session.refresh();
    if (fresh) return api(path, { ...opts, retried: true });
    if (on401 === 'drop') {
      session.clear();
      return api(path, { ...opts, anonymous: true });
    }
    const again = await session.relogin(error.code);
    if (again) return api(path, { ...opts, retried: true });
  }
  throw error;
}

async function toError(resp) {
  const requestId = resp.headers.get('X-Request-ID');
  const retryAfter = resp.headers.get('Retry-After');
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const e = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : {};
  const code = typeof e.code === 'string' ? e.code : `http_${resp.status}`;
  const details = e.details && typeof e.details === 'object' ? e.details : {};
  return new ApiError({
    status: resp.status,
    code,
    message: explain(resp.status, code, typeof e.message === 'string' ? e.message : '', details, retryAfter),
    details,
    requestId,
    retryAfter,
  });
}

/** A fresh Idempotency-Key. */
export function newKey() {
  return session.requestId();
}

/** GET every page of a list (up to `max` items); opts as for api(). */
export async function all(path, query = {}, max = 1000, opts = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, { ...opts, query: { ...query, limit: 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
