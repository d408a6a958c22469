import { isIP } from 'node:net';
import type { ConsentChannel, ConsentType } from './channels.js';
import type { FieldProblem } from './errors.js';

/** The topic that stands for a whole channel: a grant or revocation on it covers every topic. */
export const ALL_TOPICS = 'all';

/** How far ahead of the server's clock a recorded_at may be: client clocks drift, the ledger must not be post-dated. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface ConsentEntry {
  channel: ConsentChannel;
  topic: string;
  status: 'granted' | 'revoked';
  type: ConsentType | null;
  recorded_at: Date;
}

export interface EffectiveConsent {
  granted: boolean;
  /** The record that decided it, or null when nothing was ever recorded (no consent). */
  decidedBy: ConsentEntry | null;
}

/**
 * Whether record a takes precedence over b when both speak for the same channel and topic: the
 * later one wins, and at the same instant a revocation wins, so an ambiguous ledger never sends.
 */
export function supersedes(a: Pick<ConsentEntry, 'status' | 'recorded_at'>, b: Pick<ConsentEntry, 'status' | 'recorded_at'>): boolean {
  const d = a.recorded_at.getTime() - b.recorded_at.getTime();
  return d > 0 || (d === 0 && a.status === 'revoked' && b.status === 'granted');
}

/**
 * Current consent for one channel and topic: the latest record among that topic and the
 * channel-wide topic decides, so "STOP" on the channel overrides earlier topic grants, and a
 * later grant for one topic re-opens only that topic. Ties go to the revocation.
 */
export function effectiveConsent(entries: readonly ConsentEntry[], channel: ConsentChannel, topic: string = ALL_TOPICS): EffectiveConsent {
  let best: ConsentEntry | null = null;
  for (const e of entries) {
    if (e.channel !== channel || (e.topic !== topic && e.topic !== ALL_TOPICS)) continue;
    if (!best || supersedes(e, best)) best = e;
  }
  return { granted: best?.status === 'granted', decidedBy: best };
}

/**
 * The record that stands for each (key, channel, topic): what consent_state holds once every
 * record has been appended. `key` separates contacts when a batch spans several.
 */
export function latestPerTopic<T extends Pick<ConsentEntry, 'channel' | 'topic' | 'status' | 'recorded_at'>>(entries: readonly T[], key: (e: T) => string = () => ''): T[] {
  const best = new Map<string, T>();
  for (const e of entries) {
    const k = `${key(e)}\u0000${e.channel}\u0000${e.topic}`;
    const held = best.get(k);
    if (!held || supersedes(e, held)) best.set(k, e);
  }
  return [...best.values()];
}

/** A consent record as a caller sends it. */
export interface ConsentInput {
  channel: ConsentChannel;
  topic?: string;
  status: 'granted' | 'revoked';
  type?: ConsentType | null;
  source: string;
  wording?: string | null;
  ip?: string | null;
  proof?: Record<string, unknown> | null;
  recorded_at?: string;
}

const MAX_PROOF_BYTES = 16 * 1024;

/** Checks what the body schema cannot: rules between fields and against the clock. Fields are named under `prefix`. */
export function consentProblems(input: ConsentInput, now: Date, prefix = ''): FieldProblem[] {
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const problems: FieldProblem[] = [];
  if (input.status === 'granted' && !input.type) {
    problems.push({ field: at('type'), message: 'is required when status is granted (express_written, express, implied or transactional)' });
  }
  if (input.recorded_at !== undefined) {
    const t = Date.parse(input.recorded_at);
    if (Number.isNaN(t)) problems.push({ field: at('recorded_at'), message: 'is not a date-time' });
    else if (t > now.getTime() + MAX_CLOCK_SKEW_MS) problems.push({ field: at('recorded_at'), message: 'is in the future; consent can only be recorded once given' });
  }
  if (input.ip && isIP(input.ip) === 0) problems.push({ field: at('ip'), message: `${JSON.stringify(input.ip)} is not an IPv4 or IPv6 address` });
  if (input.proof && Buffer.byteLength(JSON.stringify(input.proof)) > MAX_PROOF_BYTES) {
    problems.push({ field: at('proof'), message: `is larger than ${MAX_PROOF_BYTES / 1024} KiB` });
  }
  return problems;
}
