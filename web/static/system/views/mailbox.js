// Mailbox (IT): the embedded SMTP sink's messages
// Replace this placeholder with the view when its API lands: export default {mount(el, ctx) -> cleanup?}.

import { comingSoon } from '../../common/shell.js';

export default comingSoon('Mailbox', 'Every email captured by the embedded SMTP sink, by recipient, from GET /api/notify/mailbox.');
