import { createHash } from 'node:crypto';
import { CONSENT_CHANNELS } from './channels.js';
import { EMAIL, toE164 } from './contact.js';

/** A suppression blocks one channel, or every channel with 'all'. */
export const SUPPRESSION_CHANNELS = [...CONSENT_CHANNELS, 'all'] as const;
export type SuppressionChannel = (typeof SUPPRESSION_CHANNELS)[number];

/**
 * The address in the form contacts store it (email lower-cased, phone in E.164), so that a
 * suppression and a contact's address hash alike. Email channels take an email, phone channels
 * a number; 'all' takes either, told apart by the @.
 */
export function normalizeAddress(channel: SuppressionChannel, raw: string, defaultCountry?: string): { address: string } | { problem: string } {
  const text = raw.trim();
  const isEmail = channel === 'email' || (channel === 'all' && text.includes('@'));
  if (isEmail) {
    const email = text.toLowerCase();
    return EMAIL.test(email) ? { address: email } : { problem: `${JSON.stringify(raw)} is not an email address` };
  }
  const r = toE164(text, defaultCountry);
  return 'problem' in r ? { problem: `${JSON.stringify(raw)} ${r.problem}` } : { address: r.e164 };
}

/**
 * Digest of a normalised address; suppressions are matched by it so that an entry keeps
 * blocking after the address itself is erased.
 */
export function addressHash(address: string): string {
  return createHash('sha256').update(address.trim().toLowerCase()).digest('hex');
}
