// Nodes (IT): the platform's node processes, whether each is alive, and the launches each owns now.
// Read when the view opens and on "Refresh".

import { api } from '../../common/api.js';
import { badge, banner, busy, h, showError } from '../../common/dom.js';
import { dateOnly } from '../../common/format.js';
import { clock, duration, secondsBetween } from '../ops.js';

export default {
  mount(el) {
    const errors = banner();
    const tbody = h('tbody', {});
    const summary = h('p', { class: 'muted', testid: 'nodes-summary', 'aria-live': 'polite' });
    const refresh = h('button', { type: 'button', class: 'btn', testid: 'nodes-refresh' }, 'Refresh');
    el.append(
      h('h1', {}, 'Nodes'),
      h('p', { class: 'muted' }, 'Every node process of the platform. A node is alive while it is not stopped and its last heartbeat is younger than three leases; each launch is owned by one node at a time.'),
      h('div', { class: 'actions' }, refresh),
      summary, errors,
      h('div', { class: 'table-wrap' }, h('table', { class: 'stack', testid: 'nodes-table' },
        h('thead', {}, h('tr', {}, ['Node', 'State', 'Launches owned', 'Last heartbeat', 'Started', 'Address'].map((x) => h('th', { scope: 'col' }, x)))),
        tbody)));

    async function load() {
      errors.hide();
      try {
        const body = await api('/api/system/nodes');
        tbody.replaceChildren(...body.items.map(row));
        if (!body.items.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty', testid: 'no-nodes' }, 'No node has registered yet.')));
        const alive = body.items.filter((n) => n.alive).length;
        summary.textContent = `${alive} of ${body.items.length} alive · lease ${body.lease_seconds} s · answered by ${body.node} at ${clock(new Date().toISOString())}`;
      } catch (err) {
        showError(errors, err);
      }
    }

    function row(n) {
      const state = n.stopped_at ? 'stopped' : n.alive ? 'alive' : 'silent';
      return h('tr', { testid: 'node-row', dataset: { name: n.name, alive: String(n.alive), owned: String(n.launches_owned) } },
        h('td', { class: 'ids' }, h('strong', {}, n.name), h('div', { class: 'muted' }, `pid ${n.pid}`)),
        h('td', { dataset: { label: 'State' } }, badge(state, state, 'node-state')),
        h('td', { class: 'num', dataset: { label: 'Launches owned' }, testid: 'node-owned' }, String(n.launches_owned)),
        h('td', { class: 'nowrap', dataset: { label: 'Last heartbeat' } }, h('time', { datetime: n.heartbeat_at }, clock(n.heartbeat_at)),
          h('div', { class: 'muted' }, `${duration(secondsBetween(n.heartbeat_at))} ago`)),
        h('td', { class: 'nowrap', dataset: { label: 'Started' } }, h('time', { datetime: n.started_at }, clock(n.started_at)), h('div', { class: 'muted' }, dateOnly(n.started_at)),
          n.stopped_at ? h('div', { class: 'muted' }, `stopped ${clock(n.stopped_at)}`) : null),
        h('td', { class: 'ids', dataset: { label: 'Address' } }, n.url));
    }

    refresh.addEventListener('click', () => busy(refresh, load, 'Refreshing…'));
    load();
  },
};
