// Sync jobs (IT): full sync jobs with live progress
// Replace this placeholder with the view when its API lands: export default {mount(el, ctx) -> cleanup?}.

import { comingSoon } from '../../common/shell.js';

export default comingSoon('Sync jobs', 'Start a full sync (launch cache, user directory or all) and watch its progress, from /api/system/sync/jobs.');
