// SystemWeb `/system`: the employees' app. Finance: invoices and reports. IT: users, and the
// operations views (logs, notification queue, mailbox, sync jobs, metrics, change log).
//
// Adding a view: write views/<id>.js exporting default {mount(el, ctx) -> cleanup?} and add one
// entry below. ctx: {user, live, navigate, arg (after #id/), query (after ?)}.

import { startApp } from '../common/shell.js';
import * as session from '../common/session.js';
import { Live } from '../common/ws.js';

const FINANCE = ['finance'];
const IT = ['it'];

startApp({
  title: 'System',
  roles: ['finance', 'it'],
  defaultView: (user) => (user.role === 'finance' ? 'invoices' : 'users'),
  views: [
    { id: 'invoices', title: 'Invoices', roles: FINANCE, load: () => import('./views/invoices.js') },
    { id: 'agencies', title: 'Agency report', roles: FINANCE, load: () => import('./views/agencies.js') },
    { id: 'annual', title: 'Annual report', roles: FINANCE, load: () => import('./views/annual.js') },
    { id: 'reconciliation', title: 'Reconciliation', roles: FINANCE, load: () => import('./views/reconciliation.js') },
    { id: 'users', title: 'Users', roles: IT, load: () => import('./views/users.js') },
    { id: 'logs', title: 'Logs', roles: IT, load: () => import('./views/logs.js') },
    { id: 'queue', title: 'Notification queue', roles: IT, load: () => import('./views/queue.js') },
    { id: 'mailbox', title: 'Mailbox', roles: IT, load: () => import('./views/mailbox.js') },
    { id: 'sync', title: 'Sync jobs', roles: IT, load: () => import('./views/sync.js') },
    { id: 'metrics', title: 'Metrics', roles: IT, load: () => import('./views/metrics.js') },
    { id: 'changes', title: 'Change log', roles: IT, load: () => import('./views/changes.js') },
    { id: 'nodes', title: 'Nodes', roles: IT, load: () => import('./views/nodes.js') },
  ],
  async setup() {
    // One live connection for the views that want one; none subscribes yet (sync jobs and the queue
    // have no channel: their views ask the API every few seconds while they are open).
    return { live: new Live({ onAuthError: () => session.toLogin('token_expired') }) };
  },
});
