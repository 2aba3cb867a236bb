// Formatting shared by every app: money in cents, dates in the viewer's time zone (UTC on hover),
// labels for the API's codes.

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const DATE_TIME = new Intl.DateTimeFormat('en-US', {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  hourCycle: 'h23', timeZone: 'UTC',
});
// The viewer's own zone, named after the time ("14:00 GMT+1", "09:00 EST"; "UTC" where that is theirs).
const LOCAL_DATE_TIME = new Intl.DateTimeFormat('en-US', {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  hourCycle: 'h23', timeZoneName: 'short',
});
const LOCAL_TIME = new Intl.DateTimeFormat('en-US', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const DATE = new Intl.DateTimeFormat('en-US', {
  year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC',
});
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

/** 123456 -> "$1,234.56" (integer cents, never floats from the API). */
export function money(cents) {
  if (cents === null || cents === undefined || Number.isNaN(Number(cents))) return '—';
  const n = Number(cents);
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  // Format whole dollars and cents separately, so large amounts keep exact cents.
  const dollars = USD.format(Math.trunc(abs / 100)).replace(/\.00$/, '');
  return `${sign}${dollars}.${String(abs % 100).padStart(2, '0')}`;
}

/** "1,234.5" or "$1234.56" -> 123450 / 123456; null when it is not an amount. */
export function parseMoney(text) {
  const clean = String(text ?? '').trim().replace(/[$,\s]/g, '');
  const m = /^(\d{1,10})(?:\.(\d{1,2}))?$/.exec(clean);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

/** Cents as a plain dollar amount for an input: 123456 -> "1234.56". */
export function centsToInput(cents) {
  const n = Math.max(0, Number(cents) || 0);
  return `${Math.trunc(n / 100)}.${String(n % 100).padStart(2, '0')}`;
}

/** "2027-03-01T14:00:00+00:00" -> "Mar 1, 2027, 15:00 GMT+1": in the viewer's time zone. */
export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : LOCAL_DATE_TIME.format(d);
}

/** "2027-03-01T14:00:00+00:00" -> "Mar 1, 2027, 14:00 UTC". */
export function utcDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${DATE_TIME.format(d)} UTC`;
}

/**
 * An instant for the page: <time datetime="ISO" title="… UTC">the viewer's local time</time>.
 * Options: relative (append " (in 3 days)"), timeOnly (today's events: "14:05:09"), testid.
 */
export function when(iso, { relative: withRelative = false, timeOnly = false, testid = null } = {}) {
  const el = document.createElement('time');
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) {
    el.textContent = iso ? String(iso) : '—';
    return el;
  }
  el.dateTime = d.toISOString();
  el.title = utcDateTime(iso);
  el.textContent = timeOnly ? LOCAL_TIME.format(d) : dateTime(iso);
  if (withRelative) el.textContent += ` (${relative(iso)})`;
  if (testid) el.dataset.testid = testid;
  return el;
}

/** The viewer's time zone, as the browser names it: "Europe/Paris". */
export function zoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

/** "2027-03-01T14:00:00+00:00" -> "Mar 1, 2027" (the UTC day). */
export function dateOnly(iso) {
  if (!iso) return '—';
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  return Number.isNaN(d.getTime()) ? String(iso) : DATE.format(d);
}

/** The UTC calendar day of an instant: "2027-03-01". */
export function utcDay(iso) {
  return new Date(iso).toISOString().slice(0, 10);
}

/** "in 3 days", "in 5 hours", "2 days ago". */
export function relative(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  const abs = Math.abs(ms);
  const units = [['year', 365 * 864e5], ['month', 30 * 864e5], ['day', 864e5], ['hour', 36e5],
    ['minute', 6e4]];
  for (const [unit, size] of units) {
    if (abs >= size) {
      const n = Math.floor(abs / size);
      const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
      return ms >= 0 ? `in ${text}` : `${text} ago`;
    }
  }
  return ms >= 0 ? 'in less than a minute' : 'just now';
}

export function monthName(month) {
  return MONTHS[month - 1] ?? String(month);
}

export const DESTINATIONS = { low_earth: 'Low Earth orbit', moon: 'Moon', mars: 'Mars' };
export const RANGES = DESTINATIONS;

export function destination(code) {
  return DESTINATIONS[code] ?? code;
}

const STATUS_LABELS = {
  scheduled: 'Scheduled', confirmed: 'Confirmed', delayed: 'Delayed', aborted: 'Aborted',
  successful: 'Successful', failed: 'Failed', cancelled: 'Cancelled', issued: 'Issued',
  partially_paid: 'Partially paid', paid: 'Paid', overdue: 'Overdue',
};

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? String(status ?? '').replace(/_/g, ' ');
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

/** Age in whole years on a day, as the API counts it (both "YYYY-MM-DD"). */
export function ageOn(birth, day) {
  const [by, bm, bd] = birth.split('-').map(Number);
  const [y, m, d] = day.split('-').map(Number);
  return y - by - ((m < bm || (m === bm && d < bd)) ? 1 : 0);
}

/** A datetime-local value ("2027-03-01T14:00") in the viewer's time zone -> ISO 8601 with Z. */
export function localInputToIso(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value ?? '')) return null;
  const d = new Date(value); // a date-time without a zone is local time
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** ISO instant -> a datetime-local value in the viewer's time zone ("2027-03-01T15:00"). */
export function isoToLocalInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A datetime-local value ("2027-03-01T14:00"), read as UTC -> ISO 8601 with Z. */
export function localInputToUtcIso(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value ?? '')) return null;
  const iso = `${value.length === 16 ? `${value}:00` : value}Z`;
  return Number.isNaN(new Date(iso).getTime()) ? null : new Date(iso).toISOString();
}

/** ISO instant -> a datetime-local value in UTC ("2027-03-01T14:00"). */
export function utcIsoToLocalInput(iso) {
  return new Date(iso).toISOString().slice(0, 16);
}
