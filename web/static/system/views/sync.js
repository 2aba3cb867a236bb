// Sync jobs (IT): start a full sync and watch it live: every job still pending or running is asked
// for its progress every second until it ends.

import { api } from '../../common/api.js';
import { banner, busy, h, replace, showError } from '../../common/dom.js';
import { dateTime } from '../../common/format.js';
import { duration, moreButton, secondsBetween } from '../ops.js';

const KINDS = [
  ['launch_cache', 'Launch cache', 'Rebuild every launch card and the public list in Redis from PostgreSQL.'],
  ['user_directory', 'User directory', 'Compare every traveler and agency user in MongoDB with its PostgreSQL row, and repair the row.'],
  ['all', 'Everything', 'Both of the above, one after the other.'],
];
const ACTIVE = new Set(['pending', 'running']);
const POLL_MS = 1000;

function kindLabel(kind) {
  return KINDS.find(([k]) => k === kind)?.[1] ?? kind;
}

/** The progress bar of a job: percent, done / total. */
function progress(job) {
  const pct = Math.max(0, Math.min(100, Number(job.percent) || 0));
  const shown = job.status === 'completed' ? 100 : pct;
  const bar = h('span', {});
  bar.style.width = `${shown}%`;
  return h('div', { class: 'progress-wrap' },
    h('div', {
      class: ['progress', `progress-${job.status}`],
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.round(shown),
      'aria-label': `${kindLabel(job.kind)}: ${Math.round(shown)} %`,
      testid: 'job-progress',
      dataset: { percent: Math.round(shown) },
    }, bar),
    h('span', { class: 'progress-text', testid: 'job-percent' }, `${Math.round(shown)} %`),
    h('span', { class: 'muted', testid: 'job-count' }, job.total ? ` · ${job.done} of ${job.total}` : job.status === 'pending' ? ' · waiting to start' : ''));
}

export default {
  mount(el) {
    const errors = banner();
    const ok = banner('success');
    ok.dataset.testid = 'sync-result';
    const list = h('div', { class: 'jobs', testid: 'jobs' });
    const announce = h('p', { class: 'sr-only', 'aria-live': 'polite', testid: 'sync-announcer' });
    const more = moreButton('jobs-more', () => load(true));
    const submit = h('button', { type: 'submit', class: 'btn primary', testid: 'sync-start' }, 'Start sync');
    const form = h('form', { class: 'panel narrow', testid: 'sync-form' },
      h('fieldset', {},
        h('legend', {}, 'What to synchronize'),
        KINDS.map(([kind, label, hint], i) => h('div', { class: 'choice-line' },
          h('input', { type: 'radio', name: 'kind', value: kind, id: `sync-kind-${kind}`, checked: i === 0, testid: `sync-kind-${kind}`, 'aria-describedby': `sync-kind-${kind}-hint` }),
          h('label', { for: `sync-kind-${kind}` }, label),
          h('small', { class: 'hint', id: `sync-kind-${kind}-hint` }, hint)))),
      h('div', { class: 'actions' }, submit));
    el.append(
      h('h1', {}, 'Sync jobs'),
      h('p', { class: 'muted' }, 'The sync worker keeps the stores consistent by itself; a full job checks everything once. Progress updates live.'),
      form, errors, ok, announce,
      h('h2', {}, 'Jobs'), list, h('div', { class: 'actions' }, more));

    const cards = new Map(); // id -> element
    const jobs = new Map(); // id -> job
    let cursor = null;
    let stopped = false;
    let timer = null;

    async function load(append = false) {
      try {
        const page = await api('/api/system/sync/jobs', { query: { limit: 20, cursor: append ? cursor : null } });
        cursor = page.next_cursor;
        more.hidden = !cursor;
        for (const job of page.items) show(job, { atEnd: true });
        if (!cards.size) replace(list, h('p', { class: 'panel empty', testid: 'no-jobs' }, 'No sync job has run yet.'));
        watch();
      } catch (err) {
        showError(errors, err);
      }
    }

    /** Draw a job (new ones first); announce when one ends. */
    function show(job, { atEnd = false } = {}) {
      const before = jobs.get(job.id);
      jobs.set(job.id, job);
      list.querySelector('.empty')?.remove();
      const fresh = card(job);
      const old = cards.get(job.id);
      if (old) old.replaceWith(fresh);
      else if (atEnd) list.append(fresh);
      else list.prepend(fresh);
      cards.set(job.id, fresh);
      if (before && ACTIVE.has(before.status) && !ACTIVE.has(job.status)) {
        announce.textContent = `${kindLabel(job.kind)} sync ${job.status}${job.errors.length ? ` with ${job.errors.length} error(s)` : ''}.`;
      }
    }

    function card(job) {
      const took = job.started_at ? duration(secondsBetween(job.started_at, job.finished_at)) : null;
      return h('article', { class: 'panel job', testid: 'job', dataset: { jobId: job.id, status: job.status, kind: job.kind } },
        h('div', { class: 'job-head' },
          h('h3', {}, kindLabel(job.kind)),
          h('span', { class: `badge badge-${job.status === 'completed' ? 'sent' : job.status}`, testid: 'job-status', dataset: { value: job.status } }, job.status)),
        progress(job),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Started'), h('dd', { testid: 'job-started' }, job.started_at ? dateTime(job.started_at) : `not yet (asked ${dateTime(job.created_at)})`),
          h('dt', {}, 'Ended'), h('dd', { testid: 'job-finished' }, job.finished_at ? `${dateTime(job.finished_at)}${took ? ` (took ${took})` : ''}` : ACTIVE.has(job.status) && took ? `running for ${took}` : '—'),
          job.node ? [h('dt', {}, 'Node'), h('dd', {}, job.node)] : null,
          h('dt', {}, 'Errors'), h('dd', { testid: 'job-errors', dataset: { value: job.errors.length } }, job.errors.length ? String(job.errors.length) : 'None')),
        job.failure ? h('p', { class: 'banner banner-error', testid: 'job-failure' }, `Failed: ${job.failure}`) : null,
        job.errors.length ? h('details', { class: 'json', open: job.errors.length <= 5 },
          h('summary', {}, `The ${job.errors.length === 1 ? 'error' : `${job.errors.length} errors`}`),
          h('ul', { class: 'job-errors' }, job.errors.map((e) => h('li', {}, e)))) : null);
    }

    /** Ask every job still pending or running for its progress, once a second, while any is. */
    function watch() {
      clearTimeout(timer);
      if (stopped) return;
      const active = [...jobs.values()].filter((j) => ACTIVE.has(j.status));
      if (!active.length) return;
      timer = setTimeout(async () => {
        await Promise.all(active.map(async (j) => {
          try {
            const fresh = (await api(`/api/system/sync/jobs/${encodeURIComponent(j.id)}`)).job;
            if (!stopped) show(fresh);
          } catch (err) {
            if (err.status === 404) jobs.set(j.id, { ...j, status: 'failed' });
            else showError(errors, err);
          }
        }));
        watch();
      }, POLL_MS);
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      errors.hide();
      ok.hide();
      const kind = form.querySelector('input[name="kind"]:checked')?.value;
      busy(submit, async () => {
        try {
          const { job } = await api('/api/system/sync/jobs', { method: 'POST', body: { kind } });
          show(job);
          ok.show(`${kindLabel(job.kind)} sync started. Its progress shows below.`);
          watch();
        } catch (err) {
          showError(errors, err);
        }
      }, 'Starting…');
    });
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  },
};
