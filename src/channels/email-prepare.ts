import type { SecretBox } from '../core/secrets.js';
import type { TenantSettings } from '../core/tenant.js';
import { composeEmail } from './email-compose.js';
import { trackingSigner, unsubscribeToken } from './email-links.js';
import type { OutgoingMessage } from './types.js';

/** What the dispatcher knows about an e-mail beyond its rendered parts. */
export interface EmailFacts {
  /** Marketing mail gets the postal-address footer, the unsubscribe link and List-Unsubscribe. */
  marketing: boolean;
  /** The tenant's settings: postal address, tracking switches, the mailto for List-Unsubscribe. */
  settings: TenantSettings;
}

export interface PreparedEmail {
  message: OutgoingMessage;
  /** Problems that did not stop the mail (MJML validation, no unsubscribe URL...), kept with what was sent. */
  warnings: string[];
}

/**
 * Turns a rendered e-mail into the one that leaves. Rejects only when MJML itself fails to
 * render; a missing key or public URL turns tracking and the unsubscribe link off, with a warning.
 */
export type EmailPreparer = (msg: OutgoingMessage, facts: EmailFacts) => Promise<PreparedEmail>;

/**
 * The preparer of one process. Links need both a secret key (to sign their tokens) and a public
 * URL (where /t/… and /u/… are reachable from a mail client); without either, mail still goes
 * out, rendered and with its footer, but nothing in it points back at Rapport.
 */
export function emailPreparer(opts: { secrets: SecretBox | null; publicUrl: string | null }): EmailPreparer {
  const base = opts.publicUrl ? opts.publicUrl.replace(/\/+$/, '') : null;
  const linksOff = !opts.secrets
    ? 'no secret key (RAPPORT_SECRET_KEY): open and click tracking and the unsubscribe link are off'
    : !base
      ? 'no public URL (RAPPORT_PUBLIC_URL): open and click tracking and the unsubscribe link are off'
      : null;
  const sign = opts.secrets ? trackingSigner(opts.secrets) : () => '';

  return async (msg, { marketing, settings }) => {
    const openTracking = settings.email_open_tracking !== false;
    const clickTracking = settings.email_click_tracking !== false;
    const linked = opts.secrets && base ? { secrets: opts.secrets, base } : null;
    const composed = await composeEmail({
      subject: msg.subject ?? '',
      ...(msg.html !== undefined ? { html: msg.html } : {}),
      ...(msg.body !== undefined ? { text: msg.body } : {}),
      marketing,
      messageId: msg.id,
      trackBase: linked ? linked.base : null,
      unsubscribeUrl: linked && marketing ? `${linked.base}/u/${unsubscribeToken(linked.secrets, msg.id)}` : null,
      ...(settings.unsubscribe_mailto ? { unsubscribeMailto: settings.unsubscribe_mailto } : {}),
      postalAddress: settings.postal_address ?? null,
      sign,
      openTracking,
      clickTracking,
    });
    const warnings = linksOff && (marketing || openTracking || clickTracking) ? [linksOff, ...composed.warnings] : composed.warnings;
    const { html: _html, body: _body, ...rest } = msg;
    const headers = { ...msg.headers, ...composed.headers };
    return {
      message: {
        ...rest,
        ...(msg.subject !== undefined ? { subject: composed.subject } : {}),
        ...(composed.html !== undefined ? { html: composed.html } : {}),
        body: composed.text,
        ...(Object.keys(headers).length ? { headers } : {}),
      },
      warnings,
    };
  };
}
