// TravelerWeb `/traveler`: book seats, my bookings with live status, cancel, waiting lists, profile, inbox.

import { startApp } from '../common/shell.js';
import * as session from '../common/session.js';
import { Live } from '../common/ws.js';
import { BookingStore } from './store.js';

startApp({
  title: 'Traveler',
  roles: ['traveler'],
  defaultView: 'bookings',
  views: [
    { id: 'bookings', title: 'My bookings', load: () => import('./views/bookings.js') },
    { id: 'book', title: 'Book a launch', load: () => import('./views/book.js') },
    { id: 'waitlist', title: 'Waiting list', load: () => import('./views/waitlist.js') },
    { id: 'profile', title: 'Profile', load: () => import('./views/profile.js') },
    { id: 'inbox', title: 'Inbox', load: () => import('./views/inbox.js') },
  ],
  async setup() {
    const live = new Live({ onAuthError: () => session.toLogin('token_expired') });
    return { live, bookings: new BookingStore(live) };
  },
});
