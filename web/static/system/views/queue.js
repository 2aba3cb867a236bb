// Notification queue (IT): the notification queue and its actions
// Replace this placeholder with the view when its API lands: export default {mount(el, ctx) -> cleanup?}.

import { comingSoon } from '../../common/shell.js';

export default comingSoon('Notification queue', 'The notification queue: counts per status, the oldest pending, and hold, release, retry, cancel or mark-as-sent per notification, from /api/notify.');
