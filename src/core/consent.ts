import type { ConsentChannel, ConsentType } from './channels.js';

/** The topic that stands for a whole channel: a grant or revocation on it covers every topic. */
export const ALL_TOPICS = 'all';

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
 * Current consent for one channel and topic: the latest record among that topic and the
 * channel-wide topic decides, so "STOP" on the channel overrides earlier topic grants, and a
 * later grant for one topic re-opens only that topic. Ties go to the revocation.
 */
export function effectiveConsent(entries: readonly ConsentEntry[], channel: ConsentChannel, topic: string = ALL_TOPICS): EffectiveConsent {
  let best: ConsentEntry | null = null;
  for (const e of entries) {
    if (e.channel !== channel || (e.topic !== topic && e.topic !== ALL_TOPICS)) continue;
    if (!best) {
      best = e;
      continue;
    }
    const d = e.recorded_at.getTime() - best.recorded_at.getTime();
    if (d > 0 || (d === 0 && e.status === 'revoked')) best = e;
  }
  return { granted: best?.status === 'granted', decidedBy: best };
}
