// Logs (IT): entry logs with filters and export
// Replace this placeholder with the view when its API lands: export default {mount(el, ctx) -> cleanup?}.

import { comingSoon } from '../../common/shell.js';

export default comingSoon('Logs', 'Entry logs with filters (level, service, user, entity, request id, text, time) and export as NDJSON or CSV, from GET /api/system/logs.');
