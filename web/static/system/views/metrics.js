// Metrics (IT): charts of the sampled system metrics
// Replace this placeholder with the view when its API lands: export default {mount(el, ctx) -> cleanup?}.

import { comingSoon } from '../../common/shell.js';

export default comingSoon('Metrics', 'Charts of the system metrics sampled every 15 seconds, over a chosen period, from GET /api/system/metrics.');
