// AgencyWeb `/agency`: live occupancy, launches and their status, rockets, reports, invoices, profile.

import { startApp } from '../common/shell.js';
import * as session from '../common/session.js';
import { Live } from '../common/ws.js';
import { AgencyStore } from './store.js';

startApp({
  title: 'Agency',
  roles: ['agency'],
  defaultView: 'dashboard',
  views: [
    { id: 'dashboard', title: 'Occupancy', load: () => import('./views/dashboard.js') },
    { id: 'launch', title: 'Launch', hidden: true, load: () => import('./views/launch.js') },
    { id: 'schedule', title: 'Schedule a launch', load: () => import('./views/schedule.js') },
    { id: 'rockets', title: 'Rockets', load: () => import('./views/rockets.js') },
    { id: 'reports', title: 'Bookings report', load: () => import('./views/reports.js') },
    { id: 'invoices', title: 'Invoices', load: () => import('./views/invoices.js') },
    { id: 'profile', title: 'Profile', load: () => import('./views/profile.js') },
    { id: 'inbox', title: 'Inbox', load: () => import('../common/inbox.js') },
  ],
  async setup() {
    const live = new Live({ onAuthError: () => session.toLogin('token_expired') });
    return { live, agency: new AgencyStore(live) };
  },
});
