import { effectiveConsent, type ConsentEntry } from './consent.js';
import { EMAIL } from './contact.js';
import type { SendChannel } from './journey/definition.js';
import type { FrequencyCap, QuietHours } from './tenant.js';
import { durationMs, inWindowSets, nextAllowedInSets, spreadWithinSets, type LocalWindow, type WindowSet } from './time.js';

export interface SendRequest {
  channel: SendChannel;
  topic: string;
  transactional: boolean;
  ignoreQuietHours: boolean;
  /** stable per contact+node, spreads deferred sends */
  key: string;
}

export interface RecipientFacts {
  /** from resolveZone */
  zone: string;
  /** the normalised address for the channel (see addressFor); null = none or invalid */
  address: string | null;
  /** the contact's consent_state rows */
  consent: readonly ConsentEntry[];
  /** address on the tenant's suppression list */
  suppressed: boolean;
  /** this contact's messages counting toward caps (any order), including ones approved earlier in the same batch */
  recentSends: readonly { channel: string; at: Date }[];
}

export interface PolicySettings {
  /** tenant: allowed hours per channel in the recipient's zone */
  quietHours: QuietHours;
  /** the journey's window (or the tenant's default); `zone` set means that fixed zone instead of the recipient's */
  sendWindow: (LocalWindow & { zone?: string }) | null;
  /** tenant caps per channel ('any' counts all channels), period like '7d' */
  caps: readonly FrequencyCap[];
  /** deferred sends are spread over this many minutes after the moment they become allowed; default 10 */
  spreadMinutes?: number;
  /** default 'defer' */
  capAction?: 'defer' | 'block';
}

export type BlockReason = 'no_consent' | 'suppressed' | 'invalid_address' | 'frequency_cap' | 'no_allowed_time';
export type DeferReason = 'quiet_hours' | 'send_window' | 'frequency_cap';
export type PolicyDecision = { action: 'send' } | { action: 'defer'; until: Date; reason: DeferReason } | { action: 'block'; reason: BlockReason; detail?: string };

export const DEFAULT_SPREAD_MINUTES = 10;

const SEND: PolicyDecision = Object.freeze({ action: 'send' });
const E164 = /^\+[1-9][0-9]{6,14}$/;

function phone(v: string | null | undefined): string | null {
  return v && E164.test(v) ? v : null;
}

/** The address a channel sends to: phone for SMS and voice, the WhatsApp number (else the phone) for WhatsApp, email for email; null when there is none or it is malformed. */
export function addressFor(channel: SendChannel, contact: { phone?: string | null; email?: string | null; whatsapp?: string | null }): string | null {
  switch (channel) {
    case 'sms':
    case 'voice':
      return phone(contact.phone);
    case 'whatsapp':
      return phone(contact.whatsapp) ?? phone(contact.phone);
    case 'email':
      return contact.email && EMAIL.test(contact.email) ? contact.email : null;
    default:
      return null;
  }
}

/**
 * Decides whether one send may go out at `now`. Every send path passes through here, in this order:
 *
 * 1. A webhook is not a message to the contact: always sent, with no consent, hours or caps.
 * 2. No valid address for the channel: blocked, invalid_address.
 * 3. The address is on the tenant's suppression list: blocked, suppressed.
 * 4. Consent for the channel and topic (the latest ledger record for the topic or the whole
 *    channel) is not granted: blocked, no_consent. Transactional sends need consent too.
 * 5. Time: the channel's quiet hours (in the recipient's zone; skipped for a transactional send
 *    marked ignoreQuietHours) intersected with the send window (its own zone if set, else the
 *    recipient's; skipped for transactional sends). Outside them the send is deferred, not
 *    dropped, to the next moment inside both plus a stable spread from `key` that stays inside,
 *    reason quiet_hours when quiet hours exclude now, else send_window. When the two never
 *    overlap: blocked, no_allowed_time.
 * 6. Caps (skipped for transactional sends): each cap on the channel or 'any' counts the recent
 *    sends in (now - period, now]; at or above its limit the send is blocked (capAction 'block')
 *    or deferred, reason frequency_cap, until enough of the counted sends have left the window,
 *    moved to the next allowed time.
 *
 * A deferral's `until` is always later than `now`.
 */
export function decideSend(now: Date, req: SendRequest, who: RecipientFacts, settings: PolicySettings): PolicyDecision {
  if (req.channel === 'webhook') return SEND;
  if (!who.address) return { action: 'block', reason: 'invalid_address', detail: `no valid ${req.channel} address` };
  if (who.suppressed) return { action: 'block', reason: 'suppressed' };
  const consent = effectiveConsent(who.consent, req.channel, req.topic);
  if (!consent.granted) {
    const by = consent.decidedBy;
    return { action: 'block', reason: 'no_consent', detail: by ? `${req.channel} consent revoked (${by.topic})` : `no ${req.channel} consent recorded for ${req.topic}` };
  }

  const quiet = req.transactional && req.ignoreQuietHours ? undefined : settings.quietHours[req.channel];
  const window = req.transactional ? null : settings.sendWindow;
  const quietSet: WindowSet | null = quiet ? { zone: who.zone, windows: [quiet] } : null;
  const windowSet: WindowSet | null = window ? { zone: window.zone ?? who.zone, windows: [window] } : null;
  const sets: WindowSet[] = quietSet && windowSet ? [quietSet, windowSet] : quietSet ? [quietSet] : windowSet ? [windowSet] : [];
  const spread = settings.spreadMinutes ?? DEFAULT_SPREAD_MINUTES;

  if (sets.length && !inWindowSets(now, sets)) {
    const next = nextAllowedInSets(now, sets);
    if (!next) return { action: 'block', reason: 'no_allowed_time', detail: 'quiet hours and the send window never overlap' };
    const reason: DeferReason = quietSet && !inWindowSets(now, [quietSet]) ? 'quiet_hours' : 'send_window';
    return { action: 'defer', until: spreadWithinSets(next, req.key, spread, sets), reason };
  }

  if (req.transactional || !settings.caps.length) return SEND;
  let release = capRelease(now.getTime(), req.channel, who.recentSends, settings.caps);
  if (release === null) return SEND;
  if (settings.capAction === 'block') return { action: 'block', reason: 'frequency_cap', detail: release.detail };
  // Counts only fall as time passes, unless sends already scheduled later re-enter the window:
  // a few rounds settle it.
  let until = release.at;
  for (let round = 0; round < 8; round++) {
    const allowed = nextAllowedInSets(new Date(until), sets);
    if (!allowed) return { action: 'block', reason: 'no_allowed_time', detail: 'quiet hours and the send window never overlap' };
    const at = allowed.getTime() > until ? spreadWithinSets(allowed, req.key, spread, sets).getTime() : until;
    release = capRelease(at, req.channel, who.recentSends, settings.caps);
    until = at;
    if (release === null) break;
    until = release.at;
  }
  return { action: 'defer', until: new Date(until), reason: 'frequency_cap' };
}

/**
 * For caps reached at instant t: when the last of them frees a slot (the moment enough counted
 * sends leave their rolling window), with a note on the cap; null when no cap is reached.
 */
function capRelease(t: number, channel: SendChannel, sends: RecipientFacts['recentSends'], caps: readonly FrequencyCap[]): { at: number; detail: string } | null {
  let latest: { at: number; detail: string } | null = null;
  for (const cap of caps) {
    const any = cap.channel === 'any';
    if (!any && cap.channel !== channel) continue;
    const period = durationMs(cap.period);
    const from = t - period;
    let count = 0;
    for (const s of sends) {
      const at = s.at.getTime();
      if (at > from && at <= t && (any ? s.channel !== 'webhook' : s.channel === channel)) count++;
    }
    if (count < cap.limit) continue;
    const times: number[] = [];
    for (const s of sends) {
      const at = s.at.getTime();
      if (at > from && at <= t && (any ? s.channel !== 'webhook' : s.channel === channel)) times.push(at);
    }
    times.sort((a, b) => a - b);
    // Once the (count - limit + 1) oldest have left, the count is below the limit again.
    const at = times[count - cap.limit]! + period;
    if (!latest || at > latest.at) latest = { at, detail: `${cap.limit} per ${cap.period} on ${cap.channel}` };
  }
  return latest;
}
