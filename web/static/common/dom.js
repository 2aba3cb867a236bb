// Small DOM helpers: build elements safely (text, never HTML), forms, error banners, dialogs.

import { fieldLabel, fieldProblem } from './api.js';

/**
 * h('a', {href: '/x', class: 'btn', testid: 'go', onclick: fn}, 'text', child, [more])
 * Attributes: class, testid (data-testid), dataset {k: v}, on<event> handlers, boolean attributes,
 * anything else with setAttribute. Children: nodes, strings, numbers, arrays; null/false skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.entries(v).forEach(([dk, dv]) => { if (dv !== undefined && dv !== null) el.dataset[dk] = dv; });
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'selected') el[k] = Boolean(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

/** A labelled form field: label + control (+ hint), ids wired for screen readers. */
let seq = 0;
export function field(label, control, { hint, optional = false } = {}) {
  const id = control.id || `f${++seq}`;
  control.id = id;
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errEl = h('small', { class: 'field-error', id: `${id}-error`, hidden: true });
  const described = [hintEl?.id, errEl.id].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  return h('div', { class: 'field' },
    h('label', { for: id }, label, optional ? h('span', { class: 'optional' }, ' (optional)') : null),
    control, hintEl, errEl);
}

export function input(name, attrs = {}) {
  return h('input', { name, id: attrs.id, ...attrs });
}

export function select(name, options, attrs = {}) {
  return h('select', { name, ...attrs },
    options.map(([value, label]) => h('option', { value, selected: attrs.value === value ? true : null }, label)));
}

/** The form's named controls as an object of trimmed strings (checkboxes as booleans). */
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.matches(':disabled')) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else if (el.type === 'radio') { if (el.checked) out[el.name] = el.value; }
    else out[el.name] = typeof el.value === 'string' ? el.value.trim() : el.value;
  }
  return out;
}

/** Mark fields wrong: {name: text}; names are the API's dotted paths or the controls' names. */
export function markFields(form, fields, alias = {}) {
  clearMarks(form);
  let first = null;
  for (const [path, text] of Object.entries(fields || {})) {
    const name = alias[path] ?? path.replace(/^profile\./, '');
    const el = [...form.querySelectorAll(`[name="${CSS.escape(name)}"]`)].find((x) => !x.matches(':disabled'));
    if (!el) continue;
    el.setAttribute('aria-invalid', 'true');
    const err = form.querySelector(`#${CSS.escape(el.id)}-error`);
    if (err) {
      err.textContent = fieldProblem(path, text);
      err.hidden = false;
    }
    first ??= el;
  }
  first?.focus();
  return first;
}

export function clearMarks(form) {
  form.querySelectorAll('[aria-invalid="true"]').forEach((el) => el.removeAttribute('aria-invalid'));
  form.querySelectorAll('.field-error').forEach((el) => { el.hidden = true; el.textContent = ''; });
}

/** The error banner: role=alert, data-testid="error-banner"; hidden when empty. */
export function banner(kind = 'error') {
  const el = h('div', {
    class: `banner banner-${kind}`,
    role: kind === 'error' ? 'alert' : 'status',
    testid: kind === 'error' ? 'error-banner' : `${kind}-banner`,
    hidden: true,
  });
  el.show = (text) => {
    el.textContent = text;
    el.hidden = !text;
  };
  el.hide = () => el.show('');
  return el;
}

/** Show an error (ApiError or anything) in a banner, marking the form's fields it names. */
export function showError(bannerEl, err, form = null, alias = {}) {
  const text = err?.message || 'Something went wrong. Please try again.';
  bannerEl.show(err?.requestId && err.status === 500 ? `${text} (reference ${err.requestId})` : text);
  if (form && err?.fields) markFields(form, err.fields, alias);
}

/** Run an async action from a button or form: busy state, no double submit. */
export async function busy(button, work, busyText) {
  if (button.disabled) return undefined;
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyText) button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    if (busyText) button.textContent = label;
  }
}

/** A modal <dialog>: resolves true when confirmed. */
export function confirmDialog({ title, body, confirm = 'Confirm', cancel = 'Back', danger = false, testid = 'confirm-dialog' }) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'submit', value: 'ok', class: danger ? 'btn danger' : 'btn primary', testid: `${testid}-confirm` }, confirm);
    const no = h('button', { type: 'submit', value: 'cancel', class: 'btn', testid: `${testid}-cancel` }, cancel);
    const dlg = h('dialog', { class: 'dialog', testid, 'aria-labelledby': `${testid}-title` },
      h('form', { method: 'dialog' },
        h('h2', { id: `${testid}-title` }, title),
        h('div', { class: 'dialog-body' }, body),
        h('div', { class: 'actions' }, no, ok)));
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

/** Announce a short message to screen readers and show it as a toast. */
export function toast(text, kind = 'info') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', class: 'toasts', 'aria-live': 'polite', testid: 'toasts' });
    document.body.append(box);
  }
  const t = h('div', { class: `toast toast-${kind}`, testid: 'toast' }, text);
  box.append(t);
  setTimeout(() => t.remove(), 6000);
}

export function badge(text, kind, testid = 'status-badge') {
  return h('span', { class: `badge badge-${kind}`, testid, dataset: { value: kind } }, text);
}

/** A table with a header row; rows are built by the caller. On a phone it shows as cards (stacked). */
export function table(headers, rows, attrs = {}) {
  const el = h('table', { ...attrs, class: ['stack', attrs.class] },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows));
  stacked(el);
  return h('div', { class: 'table-wrap' }, el);
}

/**
 * A table that becomes one card per row on a phone (CSS `table.stack`): each cell is labelled with its
 * column's heading (data-label), now and for every row added later. Answers the table.
 */
export function stacked(tableEl) {
  tableEl.classList.add('stack');
  const labels = [...tableEl.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  const label = (tr) => {
    if (tr.tagName !== 'TR') return;
    let col = 0;
    for (const td of tr.children) {
      const span = Number(td.getAttribute('colspan') || 1);
      const action = td.classList.contains('row-action'); // a button says what it does by itself
      if (span === 1 && labels[col] && !action && !td.dataset.label) td.dataset.label = labels[col];
      col += span;
    }
  };
  for (const body of tableEl.tBodies) {
    [...body.rows].forEach(label);
    new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(label)))
      .observe(body, { childList: true });
  }
  return tableEl;
}

export { fieldLabel };
