import { createHmac } from 'node:crypto';
import { accountIdFromPath, apiBase, bodyJson, callProvider, failure, failureFromStatus, isCallFailure, safeEqual } from '../http.js';
import type {
  AccountProblem,
  ChannelAdapter,
  InboundAdapter,
  InboundItem,
  InboundMessage,
  InboundRequest,
  InboundStatus,
  OutgoingMessage,
  ProviderAccount,
  SendContext,
  SendResult,
} from '../types.js';

/**
 * Vapi (https://vapi.ai): an AI voice assistant places the call. Rapport creates an outbound
 * phone call with `POST /call` (saved assistant + imported phone number + customer), passing the
 * rendered step text as the assistant variable `{{message}}` so its prompt can speak it, and the
 * message id in `assistantOverrides.metadata`. Vapi has no idempotency key for calls: a retry
 * after a timeout can ring the customer twice, which is why timeouts stay temporary but the
 * dispatcher's retry spacing matters here more than anywhere.
 *
 * Vapi reports back to the assistant's (or phone number's) Server URL with "server messages",
 * `{ message: { type, call, ... } }`. Rapport reads two:
 *   status-update        in-progress → delivered (the line was answered); ended → only the
 *                        endings below that no conversation can contradict (voicemail, no
 *                        answer, misdialed, never connected); the rest wait for the report
 *   end-of-call-report   by endedReason and what was said:
 *     voicemail                                  → delivered, detail.voicemail
 *     customer-did-not-answer / -busy, SIP 408/480 → failed (no one picked up; the number is fine)
 *     twilio-reported-customer-misdialed          → undeliverable
 *     the customer spoke                          → replied, plus an InboundMessage (channel voice)
 *                                                   so a journey waiting for a reply wakes
 *     any other normal hang-up                    → delivered
 *     anything else (start errors, pipeline faults) → failed, provider_code = endedReason
 * The report's transcript, summary, structured data, duration, recording URL and cost go into
 * the status detail. The webhook URL is per account: `<public url>/webhooks/vapi/<account id>`.
 */

const API_ROOT = 'https://api.vapi.ai';
const E164 = /^\+[1-9]\d{1,14}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How long to back off when the account's concurrent-call slots are full: calls last minutes. */
const CONCURRENCY_WAIT_MS = 30_000;
/** A delivery signed with a timestamp further than this from our clock is a replay. */
const HMAC_TOLERANCE_MS = 5 * 60 * 1000;
const MAX_TRANSCRIPT = 20_000;

// ---------------------------------------------------------------------------------------------
// Account

const HMAC_ALGORITHMS = ['sha256', 'sha512', 'sha1'] as const;
const HMAC_PLACEHOLDERS = new Set(['{body}', '{timestamp}', '{method}', '{url}']);

/**
 * How Vapi signs, when the account's server credential at Vapi is an HMAC one. The defaults are
 * Vapi's own for an HMAC credential: SHA-256 over `{timestamp}.{body}`, hex, in `x-signature`
 * with the timestamp in `x-timestamp`. Each field mirrors the credential's setting of that name.
 */
interface HmacPlan {
  algorithm: (typeof HMAC_ALGORITHMS)[number];
  signatureHeader: string;
  timestampHeader: string;
  payloadFormat: string;
  signaturePrefix: string;
  encoding: 'hex' | 'base64';
  secretIsBase64: boolean;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function hmacPlan(config: Record<string, unknown>): HmacPlan {
  const algorithm = HMAC_ALGORITHMS.find((a) => a === config.hmac_algorithm) ?? 'sha256';
  return {
    algorithm,
    signatureHeader: (str(config.hmac_signature_header) ?? 'x-signature').toLowerCase(),
    timestampHeader: (str(config.hmac_timestamp_header) ?? 'x-timestamp').toLowerCase(),
    payloadFormat: str(config.hmac_payload_format) ?? '{timestamp}.{body}',
    signaturePrefix: str(config.hmac_signature_prefix) ?? '',
    encoding: config.hmac_signature_encoding === 'base64' ? 'base64' : 'hex',
    secretIsBase64: config.hmac_secret_is_base64 === true,
  };
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems: AccountProblem[] = [];
  const need = (ok: boolean, field: string, message: string) => {
    if (!ok) problems.push({ field, message });
  };
  need(!!credentials.api_key, 'credentials.api_key', 'required: the private API key from the Vapi dashboard');
  need(
    !!credentials.webhook_secret && credentials.webhook_secret.length >= 16,
    'credentials.webhook_secret',
    'required, at least 16 characters: the secret of the server credential Vapi sends with every server message',
  );
  need(typeof config.phone_number_id === 'string' && UUID.test(config.phone_number_id), 'config.phone_number_id', 'required: the id (a UUID) of the Vapi phone number that places the calls');
  if (config.assistant_id !== undefined) need(typeof config.assistant_id === 'string' && UUID.test(config.assistant_id), 'config.assistant_id', 'must be a Vapi assistant id (a UUID)');
  if (config.phone_number !== undefined) need(typeof config.phone_number === 'string' && E164.test(config.phone_number), 'config.phone_number', 'must be the E.164 number behind phone_number_id');
  if (config.base_url !== undefined) need(typeof config.base_url === 'string' && /^https?:\/\/\S+$/.test(config.base_url), 'config.base_url', 'must be an http(s) URL');
  if (config.hmac_algorithm !== undefined) need(HMAC_ALGORITHMS.some((a) => a === config.hmac_algorithm), 'config.hmac_algorithm', `must be one of ${HMAC_ALGORITHMS.join(', ')}`);
  if (config.hmac_signature_encoding !== undefined) need(config.hmac_signature_encoding === 'hex' || config.hmac_signature_encoding === 'base64', 'config.hmac_signature_encoding', 'must be hex or base64');
  for (const field of ['hmac_signature_header', 'hmac_timestamp_header', 'hmac_signature_prefix'] as const) {
    if (config[field] !== undefined) need(typeof config[field] === 'string', `config.${field}`, 'must be a string');
  }
  if (config.hmac_secret_is_base64 !== undefined) need(typeof config.hmac_secret_is_base64 === 'boolean', 'config.hmac_secret_is_base64', 'must be true or false');
  if (config.hmac_payload_format !== undefined) {
    const format = config.hmac_payload_format;
    const unknown = typeof format === 'string' ? (format.match(/\{[^}]*\}/g) ?? []).filter((p) => !HMAC_PLACEHOLDERS.has(p)) : [];
    need(typeof format === 'string' && format.includes('{body}') && unknown.length === 0, 'config.hmac_payload_format', 'must contain {body} and only {body}, {timestamp}, {method}, {url}');
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Sending

function plainObject(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Vapi's error `message` is a string or, from its validation pipe, an array of strings. */
function vapiError(json: unknown, text: string): string {
  const m = plainObject(json)?.message;
  if (Array.isArray(m)) return m.map(String).join('; ');
  if (typeof m === 'string') return m;
  const e = plainObject(json)?.error;
  return typeof e === 'string' ? e : text.slice(0, 300) || 'no body';
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  const { credentials, config } = ctx.account;
  if (!msg.to || !E164.test(msg.to)) return failure('invalid_recipient', `not an E.164 phone number: ${msg.to ?? '(none)'}`);
  const assistantId = str(msg.options?.assistant_id) ?? str(config.assistant_id);
  if (!assistantId) return failure('config', 'no assistant: set config.assistant_id or the step option assistant_id');
  const phoneNumberId = str(config.phone_number_id);
  if (!phoneNumberId) return failure('config', 'config.phone_number_id is not set');

  const name = msg.contact?.name?.trim();
  const body = {
    assistantId,
    phoneNumberId,
    // Vapi keeps the customer name for reference only; long names are cut rather than refused.
    customer: { number: msg.to, ...(name ? { name: name.slice(0, 40) } : {}) },
    assistantOverrides: {
      variableValues: { ...plainObject(msg.options?.variables), ...(msg.body !== undefined ? { message: msg.body } : {}) },
      // CreateCallDTO has no top-level metadata (Vapi refuses unknown properties); the
      // assistant's metadata rides along on the call and comes back in every server message.
      metadata: { rapport_message_id: msg.id, rapport_tenant_id: msg.tenant_id },
    },
  };

  const res = await callProvider(ctx, `${apiBase(config, API_ROOT)}/call`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credentials.api_key ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (isCallFailure(res)) return res;

  if (res.status >= 200 && res.status < 300) {
    const call = plainObject(res.json);
    const id = str(call?.id);
    if (!call || !id) return failure('server', `HTTP ${res.status} without a call id: ${res.text.slice(0, 200)}`);
    // Vapi answers 201 even when every concurrent-call slot is taken; the call never rings.
    if (plainObject(call.subscriptionLimits)?.concurrencyBlocked === true) {
      return failure('rate_limited', 'Vapi concurrency limit reached: the call was not placed', { retry_after_ms: CONCURRENCY_WAIT_MS, provider_code: 'concurrency-blocked' });
    }
    // The cost at creation is 0; the real one arrives with the end-of-call report.
    const cost = typeof call.cost === 'number' && call.cost > 0 ? call.cost : undefined;
    return { ok: true, provider_message_id: id, status: 'sent', ...(cost !== undefined ? { cost, currency: 'USD' } : {}) };
  }

  const said = vapiError(res.json, res.text);
  if (res.status === 400) {
    if (/customer\.number|customer number/i.test(said)) return failure('invalid_recipient', `HTTP 400: ${said}`, { provider_code: '400' });
    if (/concurrency/i.test(said)) return failure('rate_limited', `HTTP 400: ${said}`, { retry_after_ms: CONCURRENCY_WAIT_MS, provider_code: '400' });
    // The account points at an assistant or phone number Vapi does not know: our side.
    if (/couldn'?t get (assistant|phone number)|\bassistantId\b|\bphoneNumberId\b/i.test(said)) return failure('config', `HTTP 400: ${said}`, { provider_code: '400' });
  }
  return failureFromStatus(res, said, String(res.status));
}

// ---------------------------------------------------------------------------------------------
// Server messages

function route(req: InboundRequest): { account_id: string } | null {
  const id = accountIdFromPath(req.url, 'vapi');
  return id ? { account_id: id } : null;
}

/** When the HMAC timestamp was made, from Unix seconds, Unix milliseconds or an ISO date. */
function stampMs(raw: string): number | null {
  if (/^\d+(\.\d+)?$/.test(raw)) {
    const n = Number(raw);
    return n > 1e12 ? n : n * 1000;
  }
  const t = Date.parse(raw);
  return Number.isNaN(t) ? null : t;
}

function verifyHmac(req: InboundRequest, secret: string, plan: HmacPlan): boolean {
  const given = req.headers[plan.signatureHeader];
  if (!given) return false;
  let timestamp = '';
  if (plan.payloadFormat.includes('{timestamp}')) {
    timestamp = req.headers[plan.timestampHeader] ?? '';
    const at = stampMs(timestamp);
    if (at === null || Math.abs(req.receivedAt.getTime() - at) > HMAC_TOLERANCE_MS) return false;
  }
  if (!given.startsWith(plan.signaturePrefix)) return false;
  const signature = given.slice(plan.signaturePrefix.length);
  const [head, tail] = plan.payloadFormat.split('{body}', 2) as [string, string | undefined];
  const fill = (s: string) => s.replaceAll('{timestamp}', timestamp).replaceAll('{method}', req.method).replaceAll('{url}', req.url);
  const key = plan.secretIsBase64 ? Buffer.from(secret, 'base64') : Buffer.from(secret, 'utf8');
  // The body goes in as the bytes received: re-serialised JSON would not match.
  const expected = createHmac(plan.algorithm, key).update(fill(head)).update(req.rawBody).update(fill(tail ?? '')).digest(plan.encoding);
  return safeEqual(plan.encoding === 'hex' ? signature.toLowerCase() : signature, expected);
}

/**
 * Vapi sends the account's secret in one of the ways its server credentials allow: the legacy
 * `x-vapi-secret` header (also a Bearer credential renamed to it), `Authorization: Bearer`, or an
 * HMAC signature of the body. Whichever the request carries must match; none means unsigned.
 */
function verify(req: InboundRequest, account: ProviderAccount): boolean {
  const secret = account.credentials.webhook_secret;
  if (!secret) return false;
  const plan = hmacPlan(account.config);
  const checks: boolean[] = [];
  const legacy = req.headers['x-vapi-secret'];
  if (legacy !== undefined) checks.push(safeEqual(legacy, secret));
  const auth = req.headers.authorization;
  if (auth !== undefined && /^Bearer /i.test(auth)) checks.push(safeEqual(auth.slice(7).trim(), secret));
  if (req.headers[plan.signatureHeader] !== undefined) checks.push(verifyHmac(req, secret, plan));
  return checks.length > 0 && checks.every(Boolean);
}

type Outcome = Pick<InboundStatus, 'status' | 'error' | 'provider_code'> & { outcome: string };

const NO_ANSWER = new Set(['customer-did-not-answer', 'customer-busy']);
const NORMAL_END = new Set([
  'silence-timed-out',
  'exceeded-max-duration',
  'assistant-said-end-call-phrase',
  'assistant-forwarded-call',
  'call.in-progress.twilio-completed-call',
  'call.in-progress.sip-completed-call',
  'vonage-completed',
]);

const SETTLED_AT_END = new Set(['voicemail', 'no-answer', 'busy', 'misdialed']);

/** Failures before anyone could have spoken: setup errors and calls that never connected. */
function neverConnected(endedReason: string): boolean {
  return /^call[.-]start[.-]|failed-to-connect|never-connected|^assistant-not-|^assistant-request-|rejected$/.test(endedReason);
}

function classify(endedReason: string, spoke: boolean): Outcome {
  if (endedReason === 'voicemail') return { status: 'delivered', outcome: 'voicemail' };
  if (NO_ANSWER.has(endedReason) || /outbound-sip-(408|480)-/.test(endedReason)) {
    return { status: 'failed', outcome: endedReason === 'customer-busy' ? 'busy' : 'no-answer', error: endedReason, provider_code: endedReason };
  }
  if (endedReason === 'twilio-reported-customer-misdialed') return { status: 'undeliverable', outcome: 'misdialed', error: endedReason, provider_code: endedReason };
  if (spoke) return { status: 'replied', outcome: 'conversation' };
  if (NORMAL_END.has(endedReason) || endedReason.startsWith('customer-ended-call') || endedReason.startsWith('assistant-ended-call')) {
    return { status: 'delivered', outcome: 'answered' };
  }
  return { status: 'failed', outcome: 'error', error: endedReason || 'call ended without a reason', provider_code: endedReason || undefined };
}

function customerSpoke(messages: unknown, transcript: string | undefined): boolean {
  if (Array.isArray(messages)) {
    return messages.some((m) => plainObject(m)?.role === 'user' && typeof plainObject(m)?.message === 'string' && (plainObject(m)!.message as string).trim() !== '');
  }
  return transcript !== undefined && /(^|\n)\s*(User|Customer):\s*\S/.test(transcript);
}

function messageTime(m: Record<string, unknown>, call: Record<string, unknown>, fallback: Date): Date {
  if (typeof m.timestamp === 'number' && Number.isFinite(m.timestamp)) return new Date(m.timestamp);
  const ended = str(m.endedAt) ?? str(call.endedAt);
  const t = ended ? Date.parse(ended) : NaN;
  return Number.isNaN(t) ? fallback : new Date(t);
}

function durationSeconds(m: Record<string, unknown>, call: Record<string, unknown>): number | undefined {
  if (typeof m.durationSeconds === 'number') return m.durationSeconds;
  const start = Date.parse(str(m.startedAt) ?? str(call.startedAt) ?? '');
  const end = Date.parse(str(m.endedAt) ?? str(call.endedAt) ?? '');
  return Number.isNaN(start) || Number.isNaN(end) ? undefined : Math.max(0, Math.round((end - start) / 100) / 10);
}

function recordingUrl(m: Record<string, unknown>, artifact: Record<string, unknown>): string | undefined {
  const rec = plainObject(artifact.recording);
  return str(rec?.stereoUrl) ?? str(plainObject(rec?.mono)?.combinedUrl) ?? str(artifact.recordingUrl) ?? str(artifact.stereoRecordingUrl) ?? str(m.recordingUrl) ?? str(m.stereoRecordingUrl);
}

/** A reply's payload: the assistant's extracted `intent`, else all its structured data as JSON. */
function replyPayload(structured: Record<string, unknown> | undefined): string | null {
  if (!structured || Object.keys(structured).length === 0) return null;
  return typeof structured.intent === 'string' ? structured.intent : JSON.stringify(structured);
}

function parse(req: InboundRequest, account: ProviderAccount): InboundItem[] {
  const m = plainObject(plainObject(bodyJson(req))?.message);
  const call = plainObject(m?.call);
  const callId = str(call?.id);
  if (!m || !call || !callId) return [];
  const type = m.type;
  const outbound = call.type === 'outboundPhoneCall';
  const at = messageTime(m, call, req.receivedAt);

  if (type === 'status-update') {
    if (!outbound) return [];
    if (m.status === 'in-progress') return [{ type: 'status', provider_message_id: callId, status: 'delivered', at, detail: { call_status: 'in-progress' } }];
    if (m.status !== 'ended') return [];
    // Only endings no conversation can contradict are settled here; the rest wait for the
    // end-of-call report, since a 'failed' recorded now would stand even after a reply.
    const endedReason = str(m.endedReason) ?? str(call.endedReason) ?? '';
    const o = classify(endedReason, false);
    if (!SETTLED_AT_END.has(o.outcome) && !neverConnected(endedReason)) return [];
    return [statusItem(callId, o, at, { ended_reason: endedReason, outcome: o.outcome, ...(o.outcome === 'voicemail' ? { voicemail: true } : {}) })];
  }

  if (type !== 'end-of-call-report') return [];
  const artifact = plainObject(m.artifact) ?? {};
  const analysis = plainObject(m.analysis) ?? plainObject(call.analysis) ?? {};
  const transcript = str(artifact.transcript) ?? str(m.transcript);
  const summary = str(analysis.summary) ?? str(m.summary);
  const structured = plainObject(analysis.structuredData);
  const endedReason = str(m.endedReason) ?? str(call.endedReason) ?? '';
  const spoke = customerSpoke(artifact.messages ?? m.messages, transcript);
  const o = classify(endedReason, spoke);
  const cost = typeof m.cost === 'number' ? m.cost : typeof call.cost === 'number' ? call.cost : undefined;
  const duration = durationSeconds(m, call);
  const recording = recordingUrl(m, artifact);
  const detail: Record<string, unknown> = {
    ended_reason: endedReason,
    outcome: o.outcome,
    ...(o.outcome === 'voicemail' ? { voicemail: true } : {}),
    ...(transcript ? { transcript: transcript.slice(0, MAX_TRANSCRIPT) } : {}),
    ...(summary ? { summary } : {}),
    ...(structured ? { structured_data: structured } : {}),
    ...(analysis.successEvaluation !== undefined && analysis.successEvaluation !== null ? { success_evaluation: analysis.successEvaluation } : {}),
    ...(duration !== undefined ? { duration_seconds: duration } : {}),
    ...(recording ? { recording_url: recording } : {}),
    ...(cost !== undefined ? { cost } : {}),
  };

  const items: InboundItem[] = [];
  if (outbound) items.push({ ...statusItem(callId, o, at, detail), ...(cost !== undefined ? { cost, currency: 'USD' } : {}) });
  // A conversation is the voice channel's reply, on outbound calls and on calls the customer
  // placed to the tenant's Vapi number alike.
  const customer = str(plainObject(m.customer)?.number) ?? str(plainObject(call.customer)?.number);
  if (spoke && o.outcome === 'conversation' && customer && call.type !== 'webCall') {
    const ours = str(plainObject(m.phoneNumber)?.number) ?? str(plainObject(call.phoneNumber)?.number) ?? str(account.config.phone_number) ?? '';
    const reply: InboundMessage = {
      type: 'message',
      channel: 'voice',
      from: customer,
      to: ours,
      text: summary ?? transcript?.slice(0, MAX_TRANSCRIPT) ?? null,
      payload: replyPayload(structured),
      provider_message_id: `${callId}:report`,
      at,
      ...(outbound ? { in_reply_to: callId } : {}),
    };
    items.push(reply);
  }
  return items;
}

function statusItem(callId: string, o: Outcome, at: Date, detail: Record<string, unknown>): InboundStatus {
  return {
    type: 'status',
    provider_message_id: callId,
    status: o.status,
    at,
    ...(o.error ? { error: o.error } : {}),
    ...(o.provider_code ? { provider_code: o.provider_code } : {}),
    detail,
  };
}

const inbound: InboundAdapter = {
  route,
  verify,
  parse,
  // Only assistant-request, tool-calls and the like expect an answer, and Rapport's URL is not
  // meant to receive those; an empty JSON object acknowledges everything else.
  respond: () => ({ status: 200, contentType: 'application/json', body: '{}' }),
};

export const vapiAdapter: ChannelAdapter = {
  kind: 'vapi',
  channels: ['voice'],
  check,
  send,
  inbound,
  // Each call holds one of the account's concurrent-call slots (10 by default) for minutes, so
  // placing them faster than one a second only fills the slots and earns concurrency refusals.
  defaultRatePerSecond: 1,
};
