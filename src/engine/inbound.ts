import type { InboundItem, InboundMessage, InboundStatus } from '../channels/types.js';
import { ALL_TOPICS } from '../core/consent.js';
import { matchKeyword, renderKeywordReply, type KeywordMatch } from '../core/keywords.js';
import { normalizeAddress } from '../core/suppression.js';
import { appendConsent, type ConsentBatchInput } from '../store/consent.js';
import { pgErrorCode, UNIQUE_VIOLATION, type Db, type Queryable, type Tx } from '../store/db.js';
import { notifyWork } from '../store/enrollments.js';
import { newId } from '../store/ids.js';
import { loadKeywordTable } from '../store/keywords.js';
import { recordProviderReceipts, recordStatuses, type StatusUpdate } from '../store/message-status.js';
import { suppressInTx } from '../store/suppressions.js';
import { onEventsRecorded, REPLY_EVENT, type RecordedEvent } from './triggers.js';

/**
 * What a provider's webhook tells Rapport, made durable in one transaction:
 *
 *   - receipts move their messages' status forward (or wait in pending_receipts for a message
 *     whose provider id is not recorded yet); a hard bounce or complaint suppresses the address,
 *     a complaint or provider-side unsubscribe revokes consent on the channel;
 *   - an inbound message finds or creates its contact by the sender's address, joins the
 *     contact's conversation on the channel (which opens the WhatsApp window), is stored once
 *     (the provider's id is unique per tenant: a webhook delivered twice changes nothing the
 *     second time), marks the message it answers as replied, and goes through keyword handling:
 *     an opt-out revokes consent (cancelling queued sends and ending journeys per the tenant's
 *     setting), an opt-in grants it, help and both of those queue the tenant's confirmation
 *     unless the provider answers them itself; every other message, intents included, is
 *     recorded as the `message.received` event that wakes journeys waiting for a reply.
 *
 * Nothing here trusts the request: the caller has verified its signature and found its tenant.
 */

export interface InboundSource {
  tenant_id: string;
  /** The provider kind, as messages.provider records it for sends through the same account. */
  provider: string;
  account_id: string | null;
  /**
   * The provider answers STOP, START and HELP itself (Twilio's Advanced Opt-Out does on SMS):
   * Rapport then records what the keyword means but sends no confirmation of its own.
   */
  provider_answers_keywords?: boolean;
}

export interface InboundMessageOutcome {
  /** The item's index in the list given. */
  index: number;
  /** The stored inbound message; on a duplicate, the one stored the first time. */
  id: string;
  contact_id: string;
  duplicate: boolean;
  created_contact?: boolean;
  keyword?: KeywordMatch['action'];
  intent?: string;
  /** Rapport's message this one answers, when known. */
  replied_to?: string;
  /** The confirmation queued in answer (opt-out, opt-in, help). */
  confirmation_id?: string;
}

export interface InboundOutcome {
  messages: InboundMessageOutcome[];
  /** Receipts that found their message. */
  receipts: number;
  /** Receipts kept for a message not recorded as sent yet. */
  pending: number;
}

/** The event a compliance keyword (STOP, START, HELP) is recorded as: not a reply to a journey. */
export const KEYWORD_EVENT = 'message.keyword';

/** How far back an inbound message without a reference looks for the message it answers. */
const REPLY_LOOKBACK_MS = 7 * 24 * 3600_000;

const MAX_ATTEMPTS = 5;

class ConcurrentInsert extends Error {}

export async function recordInbound(db: Db, source: InboundSource, items: readonly InboundItem[], now: Date): Promise<InboundOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => recordOnce(tx, source, items, now));
    } catch (err) {
      // Two deliveries of one webhook, or two messages from one new sender, racing: the loser's
      // transaction is rolled back whole and planned again against what the winner wrote.
      const raced = err instanceof ConcurrentInsert || pgErrorCode(err) === UNIQUE_VIOLATION;
      if (!raced || attempt >= MAX_ATTEMPTS) throw err;
    }
  }
}

async function recordOnce(tx: Tx, source: InboundSource, items: readonly InboundItem[], now: Date): Promise<InboundOutcome> {
  const statuses = items.filter((i): i is InboundStatus => i.type === 'status');
  const { receipts, pending } = await recordReceipts(tx, source, statuses, now);
  const messages = await recordMessages(tx, source, items, now);
  return { messages, receipts, pending };
}

// ---------------------------------------------------------------------------------------------
// Receipts

async function recordReceipts(tx: Tx, source: InboundSource, statuses: InboundStatus[], now: Date): Promise<{ receipts: number; pending: number }> {
  if (!statuses.length) return { receipts: 0, pending: 0 };
  const found = await recordProviderReceipts(
    tx,
    source.provider,
    statuses.map((s) => {
      const detail: Record<string, unknown> = { ...s.detail };
      if (s.error) detail.error = s.error;
      if (s.provider_code) detail.provider_code = s.provider_code;
      return { provider_message_id: s.provider_message_id, status: s.status, at: s.at, ...(Object.keys(detail).length ? { detail } : {}) };
    }),
    now,
  );
  const matched = statuses.filter((s) => found.has(s.provider_message_id));

  const costs = matched.filter((s) => s.cost !== undefined).map((s) => ({ id: found.get(s.provider_message_id)!, cost: s.cost!, currency: s.currency ?? null }));
  if (costs.length) {
    await tx.query(
      `update messages m set cost = x.cost, currency = coalesce(x.currency, m.currency)
         from jsonb_to_recordset($1::jsonb) as x(id uuid, cost numeric, currency text) where m.id = x.id`,
      [JSON.stringify(costs)],
    );
  }

  const refusals = matched.filter((s) => s.suppress);
  if (refusals.length) {
    const { rows } = await tx.query<{ id: string; tenant_id: string; contact_id: string; channel: string; to_address: string | null }>(
      'select id, tenant_id, contact_id, channel, to_address from messages where id = any($1::uuid[])',
      [refusals.map((s) => found.get(s.provider_message_id)!)],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const suppress: { channel: 'sms' | 'email' | 'whatsapp' | 'voice'; address: string; reason: string; source: string }[] = [];
    const revoke: ConsentBatchInput[] = [];
    for (const s of refusals) {
      const m = byId.get(found.get(s.provider_message_id)!);
      // A receipt names its message by the provider's id, which is unique per provider, not per
      // tenant: the message must be this account's tenant's before it may change anything.
      if (!m || m.tenant_id !== source.tenant_id || m.channel === 'webhook') continue;
      const channel = m.channel as 'sms' | 'email' | 'whatsapp' | 'voice';
      const why = s.provider_code ? `${s.suppress} (${source.provider} ${s.provider_code})` : `${s.suppress} (${source.provider})`;
      if (m.to_address && (s.suppress === 'bounce' || s.suppress === 'complaint')) suppress.push({ channel, address: m.to_address, reason: why, source: `provider:${source.provider}` });
      if (s.suppress === 'complaint' || s.suppress === 'unsubscribe') {
        revoke.push({ contact_id: m.contact_id, channel, status: 'revoked', source: `provider:${source.provider}`, proof: { message_id: m.id, event: s.suppress, ...(s.provider_code ? { provider_code: s.provider_code } : {}) }, recorded_at: notAfter(s.at, now) });
      }
    }
    await suppressInTx(tx, source.tenant_id, suppress, `provider:${source.provider}`, now);
    if (revoke.length) await appendConsent(tx, source.tenant_id, revoke, `provider:${source.provider}`, now);
  }
  return { receipts: matched.length, pending: statuses.length - matched.length };
}

// ---------------------------------------------------------------------------------------------
// Messages

interface Planned {
  index: number;
  item: InboundMessage;
  address: string;
  id: string;
  contact_id: string;
  created_contact: boolean;
  conversation_id: string;
  replied_to: string | null;
  keyword: KeywordMatch | null;
}

async function recordMessages(tx: Tx, source: InboundSource, items: readonly InboundItem[], now: Date): Promise<InboundMessageOutcome[]> {
  const all = items.flatMap((item, index) => (item.type === 'message' ? [{ item, index }] : []));
  if (!all.length) return [];

  const { rows: stored } = await tx.query<{ id: string; provider_message_id: string; contact_id: string; keyword: string | null; intent: string | null; in_reply_to: string | null }>(
    `select id, provider_message_id, contact_id, keyword, intent, in_reply_to from inbound_messages
      where tenant_id = $1 and provider = $2 and provider_message_id = any($3::text[])`,
    [source.tenant_id, source.provider, all.map((m) => m.item.provider_message_id)],
  );
  const before = new Map(stored.map((r) => [r.provider_message_id, r]));
  const outcomes: InboundMessageOutcome[] = [];
  const fresh: { item: InboundMessage; index: number; address: string }[] = [];
  const seen = new Set<string>();
  for (const { item, index } of all) {
    const old = before.get(item.provider_message_id);
    if (old) {
      outcomes.push({ index, id: old.id, contact_id: old.contact_id, duplicate: true, ...keywordFields(old.keyword, old.intent), ...(old.in_reply_to ? { replied_to: old.in_reply_to } : {}) });
      continue;
    }
    // The same message twice in one webhook: the first one counts.
    if (seen.has(item.provider_message_id)) continue;
    seen.add(item.provider_message_id);
    const address = senderAddress(item);
    if (address) fresh.push({ item, index, address });
  }
  if (!fresh.length) return outcomes;

  const contacts = await findOrCreateContacts(tx, source.tenant_id, fresh, now);
  const conversations = await joinConversations(tx, source.tenant_id, fresh.map((f) => ({ contact_id: contacts.get(f.address)!.id, channel: f.item.channel, at: f.item.at })), now);
  const answered = await answeredMessages(tx, source, fresh.map((f) => ({ item: f.item, contact_id: contacts.get(f.address)!.id })), now);
  const table = await loadKeywordTable(tx, source.tenant_id);
  const revoked = await revokedChannels(tx, source.tenant_id, [...new Set([...contacts.values()].map((c) => c.id))]);

  const planned: Planned[] = fresh.map((f, k) => {
    const contact = contacts.get(f.address)!;
    // A voice transcript is a conversation, not a keyword; a pressed key's payload still is one.
    let keyword = matchKeyword(f.item.channel === 'voice' ? null : f.item.text, f.item.payload, table);
    // YES opts back in only someone who opted out; from anyone else it answers a question.
    if (keyword?.after_opt_out && !revoked.has(`${contact.id}:${f.item.channel}`)) keyword = null;
    return {
      index: f.index,
      item: f.item,
      address: f.address,
      id: newId(),
      contact_id: contact.id,
      created_contact: contact.created,
      conversation_id: conversations.get(`${contact.id}:${f.item.channel}`)!,
      replied_to: answered[k] ?? null,
      keyword,
    };
  });

  const { rows: inserted } = await tx.query<{ id: string }>(
    `insert into inbound_messages (id, tenant_id, contact_id, conversation_id, channel, provider, account_id, provider_message_id, from_address, to_address,
                                   text, payload, keyword, intent, media, in_reply_to, received_at)
     select x.id, $1, x.contact_id, x.conversation_id, x.channel, $2, $3, x.provider_message_id, x.from_address, x.to_address,
            x.text, x.payload, x.keyword, x.intent, x.media, x.in_reply_to, x.received_at
       from jsonb_to_recordset($4::jsonb) as x(id uuid, contact_id uuid, conversation_id uuid, channel text, provider_message_id text, from_address text,
            to_address text, text text, payload text, keyword text, intent text, media jsonb, in_reply_to uuid, received_at timestamptz)
     on conflict (tenant_id, provider, provider_message_id) do nothing
     returning id`,
    [
      source.tenant_id,
      source.provider,
      source.account_id,
      JSON.stringify(
        planned.map((p) => ({
          id: p.id,
          contact_id: p.contact_id,
          conversation_id: p.conversation_id,
          channel: p.item.channel,
          provider_message_id: p.item.provider_message_id,
          from_address: p.address,
          to_address: p.item.to,
          text: p.item.text,
          payload: p.item.payload,
          keyword: p.keyword?.action ?? null,
          intent: p.keyword?.intent ?? null,
          media: p.item.media ?? null,
          in_reply_to: p.replied_to,
          received_at: p.item.at,
        })),
      ),
    ],
  );
  // Another delivery of the same webhook got there between our check and this insert.
  if (inserted.length !== planned.length) throw new ConcurrentInsert();

  const isCompliance = (p: Planned) => p.keyword !== null && p.keyword.action !== 'intent';
  const replied: StatusUpdate[] = planned
    .filter((p) => p.replied_to && !isCompliance(p))
    .map((p) => ({ message_id: p.replied_to!, status: 'replied', at: p.item.at, detail: { inbound_message_id: p.id } }));
  await recordStatuses(tx, replied);

  const confirmations = await applyKeywords(tx, source, planned, now);

  const events: RecordedEvent[] = planned.map((p) => ({
    id: newId(),
    contact_id: p.contact_id,
    name: isCompliance(p) ? KEYWORD_EVENT : REPLY_EVENT,
    properties: {
      channel: p.item.channel,
      text: p.item.text,
      payload: p.item.payload,
      message_id: p.id,
      conversation_id: p.conversation_id,
      ...(p.keyword ? { keyword: p.keyword.action } : {}),
      ...(p.keyword?.intent ? { intent: p.keyword.intent } : {}),
      ...(p.replied_to ? { in_reply_to: p.replied_to } : {}),
    },
    occurred_at: p.item.at,
  }));
  await tx.query(
    `insert into events (id, tenant_id, contact_id, name, properties, occurred_at, received_at)
     select x.id, $1, x.contact_id, x.name, x.properties, x.occurred_at, $3
       from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, name text, properties jsonb, occurred_at timestamptz)`,
    [source.tenant_id, JSON.stringify(events), now],
  );
  await onEventsRecorded(tx, source.tenant_id, events, now);

  for (const p of planned) {
    outcomes.push({
      index: p.index,
      id: p.id,
      contact_id: p.contact_id,
      duplicate: false,
      ...(p.created_contact ? { created_contact: true } : {}),
      ...keywordFields(p.keyword?.action ?? null, p.keyword?.intent ?? null),
      ...(p.replied_to ? { replied_to: p.replied_to } : {}),
      ...(confirmations.has(p.id) ? { confirmation_id: confirmations.get(p.id)! } : {}),
    });
  }
  return outcomes.sort((a, b) => a.index - b.index);
}

/** A provider's clock running ahead must not make consent look recorded in the future. */
function notAfter(at: Date, now: Date): string {
  return (at.getTime() > now.getTime() ? now : at).toISOString();
}

function keywordFields(keyword: string | null, intent: string | null): Pick<InboundMessageOutcome, 'keyword' | 'intent'> {
  return { ...(keyword ? { keyword: keyword as KeywordMatch['action'] } : {}), ...(intent ? { intent } : {}) };
}

/** The sender's address as contacts store it: E.164 for numbers, lower case for e-mail. */
function senderAddress(item: InboundMessage): string | null {
  if (item.channel === 'webhook') return null;
  let raw = item.from.trim();
  // Meta gives WhatsApp numbers as bare digits.
  if (item.channel !== 'email' && /^\d{7,15}$/.test(raw)) raw = `+${raw}`;
  const n = normalizeAddress(item.channel === 'email' ? 'email' : 'sms', raw);
  if ('address' in n) return n.address;
  // The provider says this number wrote to us; a numbering plan newer than our metadata (or a
  // test range) must not lose the message.
  return item.channel !== 'email' && /^\+[1-9]\d{6,14}$/.test(raw) ? raw : null;
}

/**
 * The contact behind each sender address, created when there is none. A WhatsApp sender is
 * looked up by WhatsApp number first, then phone; a new one gets both (a WhatsApp id is a phone
 * number) and the profile name WhatsApp gives.
 */
async function findOrCreateContacts(tx: Queryable, tenantId: string, fresh: { item: InboundMessage; address: string }[], now: Date): Promise<Map<string, { id: string; created: boolean }>> {
  const out = new Map<string, { id: string; created: boolean }>();
  const phones = [...new Set(fresh.filter((f) => f.item.channel !== 'email').map((f) => f.address))];
  const emails = [...new Set(fresh.filter((f) => f.item.channel === 'email').map((f) => f.address))];
  if (phones.length) {
    const { rows } = await tx.query<{ id: string; phone: string | null; whatsapp: string | null }>(
      `select id, phone, whatsapp from contacts where tenant_id = $1 and (phone = any($2::text[]) or whatsapp = any($2::text[])) order by created_at, id`,
      [tenantId, phones],
    );
    // The oldest holder of each number, as phone and as WhatsApp number.
    const byPhone = new Map<string, string>();
    const byWhatsapp = new Map<string, string>();
    for (const r of rows) {
      if (r.phone && !byPhone.has(r.phone)) byPhone.set(r.phone, r.id);
      if (r.whatsapp && !byWhatsapp.has(r.whatsapp)) byWhatsapp.set(r.whatsapp, r.id);
    }
    for (const f of fresh) {
      if (f.item.channel === 'email' || out.has(f.address)) continue;
      // A WhatsApp sender is first the contact with that WhatsApp number; an SMS or call, the one with that phone.
      const id = f.item.channel === 'whatsapp' ? (byWhatsapp.get(f.address) ?? byPhone.get(f.address)) : (byPhone.get(f.address) ?? byWhatsapp.get(f.address));
      if (id) out.set(f.address, { id, created: false });
    }
  }
  if (emails.length) {
    const { rows } = await tx.query<{ id: string; email: string }>('select id, email from contacts where tenant_id = $1 and email = any($2::text[])', [tenantId, emails]);
    for (const r of rows) out.set(r.email, { id: r.id, created: false });
  }
  const create = new Map<string, { id: string; phone: string | null; email: string | null; whatsapp: string | null; name: string | null }>();
  for (const f of fresh) {
    if (out.has(f.address) || create.has(f.address)) continue;
    const email = f.item.channel === 'email';
    create.set(f.address, {
      id: newId(),
      phone: email ? null : f.address,
      email: email ? f.address : null,
      whatsapp: f.item.channel === 'whatsapp' ? f.address : null,
      name: f.item.profile_name?.slice(0, 200) ?? null,
    });
  }
  if (create.size) {
    // A plain insert: a sender created by a concurrent webhook fails the unique index and the
    // whole transaction is planned again, finding it.
    await tx.query(
      `insert into contacts (id, tenant_id, name, phone, email, whatsapp, attributes, tags, created_at, updated_at)
       select x.id, $1, x.name, x.phone, x.email, x.whatsapp, '{}', '{}', $3, $3
         from jsonb_to_recordset($2::jsonb) as x(id uuid, name text, phone text, email text, whatsapp text)`,
      [tenantId, JSON.stringify([...create.values()]), now],
    );
    for (const [address, c] of create) out.set(address, { id: c.id, created: true });
  }
  return out;
}

/** Opens (or reopens) each contact's thread on the channel; returns conversation ids by `contact:channel`. */
async function joinConversations(tx: Queryable, tenantId: string, joins: { contact_id: string; channel: string; at: Date }[], now: Date): Promise<Map<string, string>> {
  const latest = new Map<string, { id: string; contact_id: string; channel: string; at: Date }>();
  for (const j of joins) {
    const key = `${j.contact_id}:${j.channel}`;
    const had = latest.get(key);
    if (!had || had.at < j.at) latest.set(key, { id: newId(), ...j });
  }
  // Rows are taken in (contact, channel) order, as the dispatcher locks threads when it records
  // sends: the two queue on a shared thread instead of deadlocking.
  const ordered = [...latest.values()].sort((a, b) => (a.contact_id < b.contact_id ? -1 : a.contact_id > b.contact_id ? 1 : a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
  const { rows } = await tx.query<{ id: string; contact_id: string; channel: string }>(
    `insert into conversations as c (id, tenant_id, contact_id, channel, status, last_inbound_at, created_at, updated_at)
     select x.id, $1, x.contact_id, x.channel, 'open', x.at, $3, $3
       from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, channel text, at timestamptz)
     on conflict (tenant_id, contact_id, channel) do update
       set status = 'open', updated_at = $3,
           last_inbound_at = greatest(c.last_inbound_at, excluded.last_inbound_at)
     returning id, contact_id, channel`,
    [tenantId, JSON.stringify(ordered), now],
  );
  return new Map(rows.map((r) => [`${r.contact_id}:${r.channel}`, r.id]));
}

/**
 * The message of ours each inbound message answers: the one the provider names (a WhatsApp
 * reply's context, a call's gather), else the latest one sent to the contact on the channel in
 * the last week.
 */
async function answeredMessages(tx: Queryable, source: InboundSource, list: { item: InboundMessage; contact_id: string }[], now: Date): Promise<(string | null)[]> {
  const named = [...new Set(list.flatMap((l) => (l.item.in_reply_to ? [l.item.in_reply_to] : [])))];
  const byProviderId = new Map<string, string>();
  if (named.length) {
    const { rows } = await tx.query<{ id: string; provider_message_id: string }>(
      'select id, provider_message_id from messages where provider = $1 and provider_message_id = any($2::text[]) and tenant_id = $3',
      [source.provider, named, source.tenant_id],
    );
    for (const r of rows) byProviderId.set(r.provider_message_id, r.id);
  }
  const open = list.filter((l) => !(l.item.in_reply_to && byProviderId.has(l.item.in_reply_to)));
  const latest = new Map<string, string>();
  if (open.length) {
    const pairs = [...new Map(open.map((l) => [`${l.contact_id}:${l.item.channel}`, { contact_id: l.contact_id, channel: l.item.channel }])).values()];
    const { rows } = await tx.query<{ id: string; contact_id: string; channel: string }>(
      `select m.id, x.contact_id, x.channel
         from jsonb_to_recordset($2::jsonb) as x(contact_id uuid, channel text)
         cross join lateral (
           select id from messages m
            where m.tenant_id = $1 and m.contact_id = x.contact_id and m.channel = x.channel and m.kind = 'send'
              and m.sent_at is not null and m.sent_at > $3
            order by m.sent_at desc limit 1) m`,
      [source.tenant_id, JSON.stringify(pairs), new Date(now.getTime() - REPLY_LOOKBACK_MS)],
    );
    for (const r of rows) latest.set(`${r.contact_id}:${r.channel}`, r.id);
  }
  return list.map((l) => (l.item.in_reply_to ? byProviderId.get(l.item.in_reply_to) : undefined) ?? latest.get(`${l.contact_id}:${l.item.channel}`) ?? null);
}

/** `contact:channel` for every channel on which a contact's consent to everything is revoked. */
async function revokedChannels(tx: Queryable, tenantId: string, contactIds: string[]): Promise<Set<string>> {
  const { rows } = await tx.query<{ contact_id: string; channel: string }>(
    `select contact_id, channel from consent_state where tenant_id = $1 and contact_id = any($2::uuid[]) and topic = $3 and status = 'revoked'`,
    [tenantId, contactIds, ALL_TOPICS],
  );
  return new Set(rows.map((r) => `${r.contact_id}:${r.channel}`));
}

/**
 * Consent changes the keywords ask for, and the confirmations the law asks for (CTIA: STOP and
 * HELP are answered once, at once, whatever the consent; the answer to STOP is the last message).
 * Returns the confirmation message id by inbound message id.
 */
async function applyKeywords(tx: Tx, source: InboundSource, planned: Planned[], now: Date): Promise<Map<string, string>> {
  const consent: ConsentBatchInput[] = [];
  const replies: Record<string, unknown>[] = [];
  const confirmations = new Map<string, string>();
  const withKeyword = planned.filter((p) => p.keyword && p.keyword.action !== 'intent');
  if (!withKeyword.length) return confirmations;
  const { rows } = await tx.query<{ name: string }>('select name from tenants where id = $1', [source.tenant_id]);
  const tenantName = rows[0]?.name ?? '';
  for (const p of withKeyword) {
    const k = p.keyword!;
    const channel = p.item.channel as 'sms' | 'whatsapp' | 'email' | 'voice';
    const proof = { inbound_message_id: p.id, provider: source.provider, provider_message_id: p.item.provider_message_id, via: k.via };
    if (k.action === 'opt_out') consent.push({ contact_id: p.contact_id, channel, status: 'revoked', source: 'keyword', wording: p.item.text, proof, recorded_at: notAfter(p.item.at, now) });
    if (k.action === 'opt_in') consent.push({ contact_id: p.contact_id, channel, status: 'granted', type: 'express', source: 'keyword', wording: p.item.text, proof, recorded_at: notAfter(p.item.at, now) });
    if (!k.reply || source.provider_answers_keywords || channel === 'voice' || channel === 'email') continue;
    const id = newId();
    confirmations.set(p.id, id);
    replies.push({
      id,
      contact_id: p.contact_id,
      channel,
      idempotency_key: `keyword-reply:${p.id}`,
      content: { inline: { body: renderKeywordReply(k.reply, { tenant: tenantName }) } },
      to_address: p.address,
      account_id: source.account_id,
    });
  }
  // Recorded in the order they were said: STOP then START leaves the contact subscribed.
  consent.sort((a, b) => a.recorded_at!.localeCompare(b.recorded_at!));
  if (consent.length) await appendConsent(tx, source.tenant_id, consent, 'contact', now);
  if (replies.length) {
    await tx.query(
      `with ins as (
         insert into messages (id, tenant_id, contact_id, kind, channel, topic, transactional, status, idempotency_key, due_at, content, to_address,
                               account_id, priority, created_at, updated_at)
         select x.id, $1, x.contact_id, 'reply', x.channel, 'transactional', true, 'queued', x.idempotency_key, $3, x.content, x.to_address,
                x.account_id, 5, $3, $3
           from jsonb_to_recordset($2::jsonb) as x(id uuid, contact_id uuid, channel text, idempotency_key text, content jsonb, to_address text, account_id uuid)
         on conflict (tenant_id, idempotency_key) do nothing
         returning id)
       insert into message_status (message_id, status, at) select id, 'queued', $3 from ins`,
      [source.tenant_id, JSON.stringify(replies), now],
    );
    await notifyWork(tx);
  }
  return confirmations;
}
