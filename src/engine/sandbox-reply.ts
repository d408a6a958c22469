import { randomUUID } from 'node:crypto';
import { PROVIDER_KINDS } from '../channels/types.js';
import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import { addressFor } from '../core/policy.js';
import { normalizeAddress } from '../core/suppression.js';
import type { Db } from '../store/db.js';
import { recordInbound, type InboundMessageOutcome, type InboundSource } from './inbound.js';

/**
 * A reply or button press typed by a person trying Rapport out, recorded exactly as a provider's
 * webhook would record it (src/engine/inbound.ts): the contact found or created by address, the
 * conversation joined, the answered message marked replied, keywords and intents applied, and
 * the `message.received` event that wakes waiting journeys. Only the provenance differs: the
 * provider message id is `sandbox-reply:<id>`, so a simulated reply is never mistaken for a real
 * one, and the client's id makes a retried request harmless.
 *
 * Which provider the reply is filed under: the built-in sandbox, unless it answers a named
 * message, in which case the provider and account that message went out through. The inbound
 * pipeline finds the answered message by that provider's id for it, so this is what lets a
 * reply name a message sent through Twilio or Meta while the tenant tries the flow out.
 */

export const SANDBOX_REPLY_CHANNELS = ['sms', 'whatsapp', 'email', 'voice'] as const;
export type SandboxReplyChannel = (typeof SANDBOX_REPLY_CHANNELS)[number];

export const SANDBOX_REPLY_LIMITS = { text: 4096, payload: 1000, id: 200, from: 320 } as const;

export interface SandboxReplyInput {
  channel: SandboxReplyChannel;
  /** The contact replying; or `from`, the address it replies from (an unknown one becomes a contact). */
  contact_id?: string;
  from?: string;
  text?: string | null;
  /** A quick-reply button's payload, a list row's id, or the digits pressed on a call. */
  payload?: string | null;
  /** Rapport's message being answered; without it, the latest one sent to the contact on the channel. */
  message_id?: string;
  /** The caller's idempotency id: the same id twice records one reply. */
  id?: string;
}

export type SandboxReplyOutcome = Omit<InboundMessageOutcome, 'index'>;

/** The prefix of the provider message id a simulated reply is stored under. */
const SANDBOX_REPLY_PREFIX = 'sandbox-reply:';

const E164 = /^\+[1-9]\d{6,14}$/;

/** Records one simulated inbound message for the tenant; see the module comment. */
export async function simulateReply(db: Db, tenantId: string, input: SandboxReplyInput, now: Date): Promise<SandboxReplyOutcome> {
  checkShape(input);
  const channel = input.channel;
  const from = input.contact_id ? await addressOfContact(db, tenantId, input.contact_id, channel) : senderAddress(input.from!, channel);
  const answered = input.message_id ? await answeredMessage(db, tenantId, input, from) : null;

  let source: InboundSource = answered
    ? { tenant_id: tenantId, provider: answered.provider, account_id: answered.account_id }
    : { tenant_id: tenantId, provider: 'sandbox', account_id: null };
  const providerMessageId = SANDBOX_REPLY_PREFIX + (input.id ?? randomUUID());
  if (input.id !== undefined) {
    // Stored ids are unique per provider; a repeat that names another message (so another
    // provider) must still find the first one, so every provider is looked in.
    const { rows } = await db.query<{ provider: string; account_id: string | null }>(
      'select provider, account_id from inbound_messages where tenant_id = $1 and provider = any($2::text[]) and provider_message_id = $3 limit 1',
      [tenantId, [...PROVIDER_KINDS], providerMessageId],
    );
    if (rows[0]) source = { tenant_id: tenantId, provider: rows[0].provider, account_id: rows[0].account_id };
  }

  const outcome = await recordInbound(
    db,
    source,
    [
      {
        type: 'message',
        channel,
        from,
        to: 'sandbox',
        text: input.text ?? null,
        payload: input.payload ?? null,
        provider_message_id: providerMessageId,
        at: now,
        ...(answered ? { in_reply_to: answered.provider_message_id } : {}),
      },
    ],
    now,
  );
  const recorded = outcome.messages[0];
  if (!recorded) throw new Error(`the simulated reply from ${from} was not recorded`);
  const { index: _index, ...rest } = recorded;
  return rest;
}

function checkShape(input: SandboxReplyInput): void {
  if (!(SANDBOX_REPLY_CHANNELS as readonly string[]).includes(input.channel)) throw InputError.field('channel', `must be one of ${SANDBOX_REPLY_CHANNELS.join(', ')}`);
  if (input.contact_id !== undefined && input.from !== undefined) throw InputError.field('from', 'cannot be given with contact_id: name the contact one way');
  if (input.contact_id === undefined && input.from === undefined) throw InputError.field('contact_id', 'or from is required: the contact replying, or the address it replies from');
  if (!input.text && !input.payload) throw InputError.field('text', 'or payload is required: what the contact typed, the payload of the button pressed, or both');
  for (const field of ['text', 'payload', 'id', 'from'] as const) {
    const value = input[field];
    if (typeof value === 'string' && value.length > SANDBOX_REPLY_LIMITS[field]) throw InputError.field(field, `must not have more than ${SANDBOX_REPLY_LIMITS[field]} characters`);
  }
  if (input.id !== undefined && !input.id.length) throw InputError.field('id', 'must not be empty');
}

/** What the channel needs of a contact, for the message naming what is missing. */
const NEEDS: Record<SandboxReplyChannel, string> = {
  sms: 'phone',
  voice: 'phone',
  whatsapp: 'whatsapp number or phone',
  email: 'email',
};

async function addressOfContact(db: Db, tenantId: string, contactId: string, channel: SandboxReplyChannel): Promise<string> {
  const { rows } = await db.query<{ phone: string | null; email: string | null; whatsapp: string | null }>('select phone, email, whatsapp from contacts where tenant_id = $1 and id = $2', [
    tenantId,
    contactId,
  ]);
  if (!rows[0]) throw new NotFoundError('contact');
  const address = addressFor(channel, rows[0]);
  if (!address) throw InputError.field('contact_id', `the contact has no ${NEEDS[channel]}, needed for a reply on ${channel}`);
  if (channel !== 'email') {
    // The inbound pipeline finds the contact by the number alone, as a real reply would be found;
    // when another contact holds it too, the reply might be filed under that one instead.
    const { rows: others } = await db.query<{ id: string }>('select id from contacts where tenant_id = $1 and id <> $2 and (phone = $3 or whatsapp = $3) limit 1', [
      tenantId,
      contactId,
      address,
    ]);
    if (others[0]) {
      throw new ConflictError(`contact ${others[0].id} also has ${address}, so a reply from that number is not certainly this contact's; name the sender by its address (from) instead, and it is filed as a real reply would be`, 'contact_id');
    }
  }
  return address;
}

/** The sender's address as the inbound pipeline stores it: E.164, or a lower-case e-mail. */
function senderAddress(raw: string, channel: SandboxReplyChannel): string {
  if (channel === 'email') {
    const n = normalizeAddress('email', raw);
    if ('problem' in n) throw InputError.field('from', n.problem);
    return n.address;
  }
  if (raw.includes('@')) throw InputError.field('from', `is an e-mail address; a ${channel} reply comes from a phone number in international format, e.g. +14155550123`);
  const n = normalizeAddress('sms', raw);
  if ('address' in n) return n.address;
  // As the inbound pipeline does: a number in a range the numbering metadata does not know (or a
  // test range) is still a number someone could write from.
  const digits = raw.replace(/[\s().-]/g, '');
  if (E164.test(digits)) return digits;
  throw InputError.field('from', n.problem);
}

interface AnsweredMessage {
  provider: string;
  account_id: string | null;
  provider_message_id: string;
}

async function answeredMessage(db: Db, tenantId: string, input: SandboxReplyInput, from: string): Promise<AnsweredMessage> {
  const { rows } = await db.query<{ contact_id: string; channel: string; status: string; to_address: string | null; provider: string | null; account_id: string | null; provider_message_id: string | null }>(
    'select contact_id, channel, status, to_address, provider, account_id, provider_message_id from messages where tenant_id = $1 and id = $2',
    [tenantId, input.message_id],
  );
  const m = rows[0];
  if (!m) throw new NotFoundError('message');
  if (m.channel !== input.channel) throw InputError.field('message_id', `was sent on ${m.channel}; a reply to it is on ${m.channel} too`);
  if (input.contact_id !== undefined ? m.contact_id !== input.contact_id : m.to_address !== from) {
    throw InputError.field('message_id', input.contact_id !== undefined ? 'was sent to another contact' : `was sent to another address than ${from}`);
  }
  if (!m.provider || !m.provider_message_id) throw new ConflictError(`message_id has not been sent (it is ${m.status}); only a message that went out can be answered`, 'message_id');
  return { provider: m.provider, account_id: m.account_id, provider_message_id: m.provider_message_id };
}
