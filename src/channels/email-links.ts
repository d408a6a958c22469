import { timingSafeEqual } from 'node:crypto';
import type { SecretBox } from '../core/secrets.js';

/**
 * The tokens in the links Rapport puts in e-mail: the open pixel, click-tracked links and the
 * unsubscribe link. A token reads `1.<message id, base64url>.<signature>`: the leading version
 * lets the format change later while old mail keeps working, and the message id travels in
 * clear so the route can find the message (and so its tenant) without a lookup table.
 *
 * The signature is SecretBox.sign under a purpose of its own per kind of link, so an open token
 * cannot be replayed as an unsubscribe token. A click token also signs the destination URL, which
 * travels beside it in `?u=`: change the URL and the token no longer verifies, so the tracker is
 * never an open redirect. None expires: a newsletter's links must keep working years later.
 */

const VERSION = '1';
/** 128 bits of the HMAC: forging one is still out of reach, and every link in a mail is shorter. */
const SIGNATURE_CHARS = 22;
const MAX_TOKEN_CHARS = 512;

const PURPOSE = {
  open: 'email-link:open:v1',
  click: 'email-link:click:v1',
  unsubscribe: 'email-link:unsubscribe:v1',
} as const;
type Purpose = keyof typeof PURPOSE;

function signed(box: SecretBox, purpose: Purpose, messageId: string, url?: string): string {
  // JSON keeps (id, url) pairs apart whatever characters either holds.
  const data = url === undefined ? messageId : JSON.stringify([messageId, url]);
  return box.sign(PURPOSE[purpose], data).slice(0, SIGNATURE_CHARS);
}

function token(box: SecretBox, purpose: Purpose, messageId: string, url?: string): string {
  return `${VERSION}.${Buffer.from(messageId, 'utf8').toString('base64url')}.${signed(box, purpose, messageId, url)}`;
}

/** The message id a token names when its signature holds for this purpose (and URL); else null. */
function read(box: SecretBox, purpose: Purpose, value: string, url?: string): string | null {
  if (typeof value !== 'string' || value.length > MAX_TOKEN_CHARS) return null;
  const parts = value.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) return null;
  const [, encodedId, signature] = parts as [string, string, string];
  if (!/^[A-Za-z0-9_-]+$/.test(encodedId) || signature.length !== SIGNATURE_CHARS) return null;
  const messageId = Buffer.from(encodedId, 'base64url').toString('utf8');
  // A non-canonical encoding of the same id would be a second token for one link; refuse it.
  if (Buffer.from(messageId, 'utf8').toString('base64url') !== encodedId) return null;
  const expected = Buffer.from(signed(box, purpose, messageId, url));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected) ? messageId : null;
}

export const openToken = (box: SecretBox, messageId: string): string => token(box, 'open', messageId);
export const clickToken = (box: SecretBox, messageId: string, url: string): string => token(box, 'click', messageId, url);
export const unsubscribeToken = (box: SecretBox, messageId: string): string => token(box, 'unsubscribe', messageId);

/** The message id of a genuine open token, or null. */
export const readOpenToken = (box: SecretBox, value: string): string | null => read(box, 'open', value);
/** The message id when the token signs this message and exactly this URL, or null. */
export const readClickToken = (box: SecretBox, value: string, url: string): string | null => read(box, 'click', value, url);
/** The message id of a genuine unsubscribe token, or null. */
export const readUnsubscribeToken = (box: SecretBox, value: string): string | null => read(box, 'unsubscribe', value);

/** The signer composeEmail takes: an open token without a URL, a click token with one. */
export function trackingSigner(box: SecretBox): (messageId: string, url?: string) => string {
  return (messageId, url) => (url === undefined ? openToken(box, messageId) : clickToken(box, messageId, url));
}
