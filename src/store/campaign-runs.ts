import { InputError } from '../core/errors.js';
import { toneVerdict, type ArmResult, type ToneVerdict } from '../core/pulse.js';
import { getCampaign, RECIPIENT_STATES, RECIPIENTS, type CampaignTotals, type RecipientState } from './campaigns.js';
import type { Queryable } from './db.js';

/**
 * Results per run of a campaign: one row per occurrence, newest first, with its recipients by
 * state and the delivery, read and response rates of the messages it sent (docs/campaigns.md,
 * "Results per run"). For a pulse, also the mean personalization score of its messages and,
 * with a tone test, each arm's response rate and which arm leads.
 *
 * The rates count messages, not recipients: a message campaign sends one per recipient, a
 * journey campaign every message its journey sent them.
 *   delivery  delivered or better / sent or better
 *   read      read (WhatsApp) or opened (e-mail) or better / delivered or better
 *   response  replied to within 48 hours of being sent / delivered or better
 * where "better" follows the status order sent < delivered < read < clicked < replied. A rate
 * whose denominator is 0 is null.
 */

/** A reply counts as a response to a message when it comes within this long of the send. */
export const RESPONSE_WINDOW_HOURS = 48;

export interface MessageCounts {
  sent: number;
  delivered: number;
  read: number;
  responded: number;
}

export interface RunRates {
  delivery: number | null;
  read: number | null;
  response: number | null;
}

export interface ArmReport extends ArmResult {
  response_rate: number | null;
}

export interface ToneReport extends ToneVerdict {
  variants: ArmReport[];
}

export interface PulseRunReport {
  /** Messages written for the run (one per contact reached). */
  synthesized: number;
  mean_personalization_score: number | null;
  tone_test: ToneReport | null;
}

export interface CampaignRun {
  id: string;
  key: string;
  scheduled_for: Date;
  status: string;
  started_at: Date;
  completed_at: Date | null;
  recipients: number;
  totals: CampaignTotals;
  messages: MessageCounts;
  rates: RunRates;
  pulse: PulseRunReport | null;
}

const rate = (n: number, d: number): number | null => (d > 0 ? Math.round((n / d) * 1000) / 1000 : null);

/**
 * Each message a recipient of the occurrences $3 received, with its occurrence: the campaign's
 * own message, or the messages its journey sent the enrollment.
 */
const RUN_MESSAGES = `
  select r.occurrence_id, m.sent_at, m.delivered_at, m.opened_at, m.clicked_at, m.replied_at
    from campaign_recipients r join messages m on m.id = r.message_id
   where r.tenant_id = $1 and r.campaign_id = $2 and r.occurrence_id = any($3::uuid[])
  union all
  select r.occurrence_id, m.sent_at, m.delivered_at, m.opened_at, m.clicked_at, m.replied_at
    from campaign_recipients r join messages m on m.enrollment_id = r.enrollment_id and m.kind = 'send'
   where r.tenant_id = $1 and r.campaign_id = $2 and r.occurrence_id = any($3::uuid[]) and r.enrollment_id is not null`;

/** The counts behind the rates, over rows with the message columns (see the top of this file). */
const COUNTS = `
  count(*) filter (where sent_at is not null) as sent,
  count(*) filter (where sent_at is not null and coalesce(delivered_at, opened_at, clicked_at, replied_at) is not null) as delivered,
  count(*) filter (where sent_at is not null and coalesce(opened_at, clicked_at, replied_at) is not null) as read,
  count(*) filter (where sent_at is not null and replied_at is not null and replied_at <= sent_at + interval '${RESPONSE_WINDOW_HOURS} hours') as responded`;

type CountRow = { sent: string; delivered: string; read: string; responded: string };
const counts = (r: CountRow | undefined): MessageCounts => ({ sent: Number(r?.sent ?? 0), delivered: Number(r?.delivered ?? 0), read: Number(r?.read ?? 0), responded: Number(r?.responded ?? 0) });

function emptyTotals(): CampaignTotals {
  return Object.fromEntries([['recipients', 0], ...RECIPIENT_STATES.map((s) => [s, 0])]) as CampaignTotals;
}

function decodeRunCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!/^[0-9a-f-]{36}$/.test(id)) throw InputError.field('cursor', 'is not a cursor returned by this API');
  return id;
}

/** One page of a campaign's runs, newest first; 404 for a campaign the tenant lacks. */
export async function listCampaignRuns(
  db: Queryable,
  tenantId: string,
  campaignId: string,
  f: { limit?: number; cursor?: string },
): Promise<{ data: CampaignRun[]; next_cursor: string | null; tone_test: ToneReport | null }> {
  const campaign = await getCampaign(db, tenantId, campaignId);
  const limit = f.limit ?? 100;
  const { rows: occurrences } = await db.query<{ id: string; key: string; scheduled_for: Date; status: string; started_at: Date; completed_at: Date | null }>(
    `select id, occurrence_key as key, scheduled_for, status, started_at, completed_at from campaign_occurrences
      where tenant_id = $1 and campaign_id = $2 and ($3::uuid is null or id < $3) order by id desc limit $4`,
    [tenantId, campaignId, f.cursor ? decodeRunCursor(f.cursor) : null, limit + 1],
  );
  const more = occurrences.length > limit;
  const page = more ? occurrences.slice(0, limit) : occurrences;
  const ids = page.map((o) => o.id);
  const isPulse = campaign.action.pulse !== undefined;
  const testing = campaign.action.pulse?.tone_test;

  const totals = new Map<string, CampaignTotals>();
  const messages = new Map<string, MessageCounts>();
  const pulse = new Map<string, { synthesized: number; mean: number | null }>();
  const arms = new Map<string, ArmResult[]>();
  if (ids.length) {
    const { rows: states } = await db.query<{ occurrence_id: string; state: RecipientState; n: string }>(
      `select occurrence_id, state, count(*) as n from (${RECIPIENTS} and r.occurrence_id = any($3::uuid[])) x group by occurrence_id, state`,
      [tenantId, campaignId, ids],
    );
    for (const s of states) {
      const t = totals.get(s.occurrence_id) ?? emptyTotals();
      t[s.state] = Number(s.n);
      t.recipients += Number(s.n);
      totals.set(s.occurrence_id, t);
    }
    const { rows: sent } = await db.query<CountRow & { occurrence_id: string }>(`select occurrence_id, ${COUNTS} from (${RUN_MESSAGES}) x group by occurrence_id`, [
      tenantId,
      campaignId,
      ids,
    ]);
    for (const r of sent) messages.set(r.occurrence_id, counts(r));
    if (isPulse) {
      const { rows } = await db.query<CountRow & { occurrence_id: string; variant: string | null; tone: string | null; n: string; score: string | null }>(
        `select s.occurrence_id, s.variant, s.tone, count(*) as n, sum(s.personalization_score) as score, ${COUNTS}
           from synthesized_messages s join messages m on m.id = s.message_id
          where s.tenant_id = $1 and s.occurrence_id = any($2::uuid[])
          group by s.occurrence_id, s.variant, s.tone`,
        [tenantId, ids],
      );
      for (const r of rows) {
        const p = pulse.get(r.occurrence_id) ?? { synthesized: 0, mean: 0 };
        p.mean = (p.mean ?? 0) + Number(r.score ?? 0);
        p.synthesized += Number(r.n);
        pulse.set(r.occurrence_id, p);
        if (r.variant !== null) arms.set(r.occurrence_id, [...(arms.get(r.occurrence_id) ?? []), arm(r)]);
      }
    }
  }

  const data = page.map((o): CampaignRun => {
    const m = messages.get(o.id) ?? counts(undefined);
    const p = pulse.get(o.id);
    return {
      ...o,
      recipients: totals.get(o.id)?.recipients ?? 0,
      totals: totals.get(o.id) ?? emptyTotals(),
      messages: m,
      rates: { delivery: rate(m.delivered, m.sent), read: rate(m.read, m.delivered), response: rate(m.responded, m.delivered) },
      pulse: isPulse
        ? {
            synthesized: p?.synthesized ?? 0,
            mean_personalization_score: p && p.synthesized ? Math.round(((p.mean ?? 0) / p.synthesized) * 1000) / 1000 : null,
            tone_test: testing ? toneReport(testing.variants, arms.get(o.id) ?? []) : null,
          }
        : null,
    };
  });
  return {
    data,
    next_cursor: more ? Buffer.from(page[page.length - 1]!.id).toString('base64url') : null,
    tone_test: testing ? toneReport(testing.variants, await campaignArms(db, tenantId, campaignId)) : null,
  };
}

function arm(r: CountRow & { variant: string | null; tone: string | null; n: string }): ArmResult {
  const c = counts(r);
  return { name: r.variant!, tone: r.tone ?? '', recipients: Number(r.n), delivered: c.delivered, responded: c.responded };
}

/** Every arm of the test, in the order the campaign lists them, with zeros for an arm nobody is in yet. */
function toneReport(variants: readonly { name: string; tone: string }[], found: ArmResult[]): ToneReport {
  const merged = variants.map((v) => {
    const rows = found.filter((a) => a.name === v.name);
    const sum = (k: 'recipients' | 'delivered' | 'responded') => rows.reduce((n, a) => n + a[k], 0);
    return { name: v.name, tone: rows[0]?.tone || v.tone, recipients: sum('recipients'), delivered: sum('delivered'), responded: sum('responded') };
  });
  return { ...toneVerdict(merged), variants: merged.map((a) => ({ ...a, response_rate: rate(a.responded, a.delivered) })) };
}

/** The test's arms over every run of the campaign. */
async function campaignArms(db: Queryable, tenantId: string, campaignId: string): Promise<ArmResult[]> {
  const { rows } = await db.query<CountRow & { variant: string | null; tone: string | null; n: string }>(
    `select s.variant, s.tone, count(*) as n, ${COUNTS}
       from synthesized_messages s join messages m on m.id = s.message_id
      where s.tenant_id = $1 and s.occurrence_id in (select id from campaign_occurrences where tenant_id = $1 and campaign_id = $2) and s.variant is not null
      group by s.variant, s.tone`,
    [tenantId, campaignId],
  );
  return rows.map(arm);
}
