// Files the API makes (PDF tickets and invoices): fetched with the session, saved under the server's name.

import { api } from './api.js';
import { saveBlob } from './csv.js';
import { busy, h, showError } from './dom.js';

/** The browser's IANA time zone ("Europe/Madrid"), for documents that show local times; UTC when unknown. */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** GET `path` as a file and save it; the name from Content-Disposition, else `fallback`. Throws ApiError. */
export async function downloadFile(path, { query, fallback = 'document.pdf', accept = 'application/pdf' } = {}) {
  const resp = await api(path, { query, raw: true, headers: { Accept: accept } });
  const name = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') ?? '')?.[1] ?? fallback;
  saveBlob(await resp.blob(), name);
  return name;
}

/** A button that downloads an invoice's PDF; a refusal is shown in `errors` (a banner). */
export function pdfButton(path, inv, errors, label = 'PDF') {
  return h('button', {
    type: 'button', class: 'btn small', testid: 'invoice-pdf', title: `Download ${inv.number} as PDF`, 'aria-label': `Download ${inv.number} as PDF`,
    onclick: (e) => busy(e.currentTarget, async () => {
      errors.hide();
      try {
        await downloadFile(path, { fallback: `${inv.number}.pdf` });
      } catch (err) {
        showError(errors, err);
      }
    }, 'Preparing…'),
  }, label);
}
