import { createHmac, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, sendJson } from './http-fake.js';

/**
 * A local Vapi: `POST /call` with the checks Vapi makes (Bearer private key; its validation pipe
 * refusing unknown properties; an assistant and phone number that exist; customer.number in
 * E.164) and its answers (201 with the call object, NestJS-style error JSON), scriptable to fail.
 * Builders make the server messages Vapi posts to a Server URL, authenticated the ways Vapi's
 * server credentials allow (x-vapi-secret, Bearer, HMAC), as InboundRequests for the adapter.
 */

export interface FakeVapiOptions {
  apiKey: string;
  /** Phone numbers imported into the org: id → E.164 number. */
  phoneNumbers: Record<string, string>;
  assistants: string[];
  /** Concurrent-call slots; the answer's subscriptionLimits report them. Default 10. */
  concurrencyLimit?: number;
}

export type VapiScript =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { hang: true }
  /** A 201 whose subscriptionLimits say the call was blocked: all slots taken. */
  | { concurrencyBlocked: true };

export interface VapiRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export type VapiCall = Record<string, unknown> & { id: string; customer: { number: string; name?: string }; phoneNumberId: string; assistantId: string };

const E164 = /^\+[1-9]\d{1,14}$/;
const CREATE_CALL_FIELDS = new Set([
  'customers', 'name', 'schedulePlan', 'transport', 'assistantId', 'assistant', 'assistantOverrides', 'squadId', 'squad',
  'workflowId', 'workflow', 'workflowOverrides', 'phoneNumberId', 'phoneNumber', 'customerId', 'customer',
]);
const CUSTOMER_FIELDS = new Set(['numberE164CheckEnabled', 'extension', 'assistantOverrides', 'number', 'sipUri', 'name', 'email', 'externalId']);
// The AssistantOverrides fields a call-creating client commonly sends; Vapi's list is longer.
const OVERRIDE_FIELDS = new Set([
  'transcriber', 'model', 'voice', 'firstMessage', 'firstMessageMode', 'voicemailDetection', 'serverMessages', 'clientMessages',
  'maxDurationSeconds', 'variableValues', 'name', 'voicemailMessage', 'endCallMessage', 'endCallPhrases', 'metadata',
  'analysisPlan', 'artifactPlan', 'server', 'credentialIds',
]);

function badRequest(messages: string[]): { status: number; body: unknown } {
  return { status: 400, body: { message: messages, error: 'Bad Request', statusCode: 400 } };
}

export class FakeVapi {
  /** Every request that reached the server, accepted or not. */
  readonly requests: VapiRequest[] = [];
  /** The calls created, as Vapi answered them. */
  readonly calls: VapiCall[] = [];
  private readonly script: VapiScript[] = [];
  private http: HttpFake | null = null;
  readonly orgId = randomUUID();

  constructor(private readonly opts: FakeVapiOptions) {}

  get baseUrl(): string {
    return this.http?.url ?? 'http://127.0.0.1:0';
  }

  /** Answers the next requests with these, in order, before validating normally again. */
  next(...answers: VapiScript[]): this {
    this.script.push(...answers);
    return this;
  }

  async start(): Promise<this> {
    const http = await HttpFake.listen((req, res) => {
      let body: unknown;
      try {
        body = req.body ? JSON.parse(req.body) : undefined;
      } catch {
        body = undefined;
      }
      this.requests.push({ method: req.method, path: req.url, headers: req.headers, body });
      const answer = this.answer(req.method, req.url, req.headers, body);
      if (answer === 'hang') return http.hang(res);
      sendJson(res, answer.status, answer.body, { 'content-type': 'application/json; charset=utf-8', ...(answer.headers ?? {}) });
    });
    this.http = http;
    return this;
  }

  async close(): Promise<void> {
    await this.http?.close();
  }

  private answer(method: string, path: string, headers: IncomingHttpHeaders, body: unknown): 'hang' | { status: number; body?: unknown; headers?: Record<string, string> } {
    if (method !== 'POST' || path !== '/call') return { status: 404, body: { message: `Cannot ${method} ${path}`, error: 'Not Found', statusCode: 404 } };
    if (headers.authorization !== `Bearer ${this.opts.apiKey}`) {
      return {
        status: 401,
        body: { message: 'Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.', error: 'Unauthorized', statusCode: 401 },
      };
    }
    const scripted = this.script.shift();
    if (scripted && 'hang' in scripted) return 'hang';
    if (scripted && 'status' in scripted) return scripted;

    const problems = this.validate(body);
    if (problems) return problems;
    const dto = body as Record<string, unknown>;
    const customer = dto.customer as { number: string; name?: string };
    const limit = this.opts.concurrencyLimit ?? 10;
    const blocked = scripted !== undefined && 'concurrencyBlocked' in scripted;
    const now = new Date().toISOString();
    const call: VapiCall = {
      subscriptionLimits: { concurrencyBlocked: blocked, concurrencyLimit: limit, remainingConcurrentCalls: blocked ? 0 : limit - 1 },
      id: randomUUID(),
      assistantId: dto.assistantId as string,
      phoneNumberId: dto.phoneNumberId as string,
      type: 'outboundPhoneCall',
      createdAt: now,
      updatedAt: now,
      orgId: this.orgId,
      cost: 0,
      customer,
      status: blocked ? 'ended' : 'queued',
      ...(blocked ? { endedReason: 'call.start.error-subscription-concurrency-limit-reached' } : {}),
      phoneCallProvider: 'twilio',
      ...(dto.assistantOverrides ? { assistantOverrides: dto.assistantOverrides } : {}),
      monitor: { listenUrl: `wss://phone-call-websocket.example/${now}/listen`, controlUrl: `https://phone-call-websocket.example/${now}/control` },
      transport: { conversationType: 'voice', provider: 'twilio', accountSid: 'AC00000000000000000000000000000000' },
    };
    if (!blocked) this.calls.push(call);
    return { status: 201, body: call };
  }

  private validate(body: unknown): { status: number; body: unknown } | null {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return badRequest(['body must be an object']);
    const dto = body as Record<string, unknown>;
    const extra = [
      ...Object.keys(dto).filter((k) => !CREATE_CALL_FIELDS.has(k)).map((k) => `property ${k} should not exist`),
      ...Object.keys((dto.customer as object | undefined) ?? {}).filter((k) => !CUSTOMER_FIELDS.has(k)).map((k) => `customer.property ${k} should not exist`),
      ...Object.keys((dto.assistantOverrides as object | undefined) ?? {}).filter((k) => !OVERRIDE_FIELDS.has(k)).map((k) => `assistantOverrides.property ${k} should not exist`),
    ];
    if (extra.length) return badRequest(extra);
    const customer = dto.customer as { number?: unknown } | undefined;
    if (customer && (typeof customer.number !== 'string' || !E164.test(customer.number))) {
      return badRequest(['customer.number must be a valid phone number in the E.164 format. Hot tip, you may be missing the country code (Eg. US: +1).']);
    }
    if (!dto.phoneNumberId && !dto.phoneNumber) return badRequest(["Couldn't Get Phone Number. Need Either `phoneNumberId` Or `phoneNumber`."]);
    if (typeof dto.phoneNumberId === 'string' && !(dto.phoneNumberId in this.opts.phoneNumbers)) {
      return badRequest([`Couldn't Get Phone Number. \`phoneNumberId\` ${dto.phoneNumberId} Does Not Exist.`]);
    }
    if (!dto.assistantId && !dto.assistant && !dto.squadId && !dto.squad && !dto.workflowId && !dto.workflow) {
      return badRequest(["Couldn't Get Assistant. Need Either `assistant`, `assistantId`, `squad`, `squadId`, `workflow` Or `workflowId`."]);
    }
    if (typeof dto.assistantId === 'string' && !this.opts.assistants.includes(dto.assistantId)) {
      return badRequest([`Couldn't Get Assistant. \`assistantId\` ${dto.assistantId} Does Not Exist.`]);
    }
    if (!customer && !dto.customerId && !dto.customers) return badRequest(['Need Either `customer`, `customerId` Or `customers` For Outbound Calls.']);
    return null;
  }

  /** The phone-number object Vapi puts on server messages. */
  phoneNumberOf(call: VapiCall): { id: string; number: string; provider: string } {
    return { id: call.phoneNumberId, number: this.opts.phoneNumbers[call.phoneNumberId] ?? '', provider: 'twilio' };
  }
}

// ---------------------------------------------------------------------------------------------
// Server messages

export interface Turn {
  role: 'bot' | 'user';
  message: string;
}

export interface ReportOptions {
  endedReason: string;
  /** The conversation; empty when no one spoke. */
  turns?: Turn[];
  summary?: string;
  structuredData?: Record<string, unknown>;
  successEvaluation?: string;
  cost?: number;
  durationSeconds?: number;
  recordingUrl?: string;
  endedAt?: Date;
}

/** A status-update as Vapi posts it whenever call.status changes. */
export function statusUpdate(fake: FakeVapi, call: VapiCall, status: 'scheduled' | 'queued' | 'ringing' | 'in-progress' | 'forwarding' | 'ended', endedReason?: string, at = new Date()) {
  const updated = { ...call, status, updatedAt: at.toISOString(), ...(endedReason ? { endedReason } : {}) };
  return {
    message: {
      timestamp: at.getTime(),
      type: 'status-update',
      status,
      ...(endedReason ? { endedReason } : {}),
      call: updated,
      phoneNumber: fake.phoneNumberOf(call),
      customer: call.customer,
      assistant: { name: 'Rapport caller', metadata: (call.assistantOverrides as { metadata?: unknown } | undefined)?.metadata },
    },
  };
}

/** An end-of-call-report as Vapi posts it once the call has ended and been analysed. */
export function endOfCallReport(fake: FakeVapi, call: VapiCall, o: ReportOptions) {
  const endedAt = o.endedAt ?? new Date();
  const startedAt = new Date(endedAt.getTime() - (o.durationSeconds ?? 0) * 1000);
  const turns = o.turns ?? [];
  let clock = 0;
  const messages = turns.map((t) => {
    const m = { role: t.role, message: t.message, time: startedAt.getTime() + clock, endTime: startedAt.getTime() + clock + 1500, secondsFromStart: clock / 1000, duration: 1500 };
    clock += 2000;
    return m;
  });
  const transcript = turns.map((t) => `${t.role === 'bot' ? 'AI' : 'User'}: ${t.message}`).join('\n');
  const recording = o.recordingUrl ? { stereoUrl: o.recordingUrl, mono: { combinedUrl: o.recordingUrl.replace('stereo', 'mono') } } : undefined;
  const artifact = {
    messages,
    ...(turns.length ? { transcript } : {}),
    ...(recording ? { recording, recordingUrl: recording.mono.combinedUrl, stereoRecordingUrl: recording.stereoUrl } : {}),
  };
  const analysis = {
    ...(o.summary ? { summary: o.summary } : {}),
    ...(o.structuredData ? { structuredData: o.structuredData } : {}),
    ...(o.successEvaluation ? { successEvaluation: o.successEvaluation } : {}),
  };
  const ended = {
    ...call,
    status: 'ended',
    endedReason: o.endedReason,
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    updatedAt: endedAt.toISOString(),
    ...(o.cost !== undefined ? { cost: o.cost } : {}),
    artifact,
    analysis,
  };
  return {
    message: {
      timestamp: endedAt.getTime(),
      type: 'end-of-call-report',
      endedReason: o.endedReason,
      ...(o.cost !== undefined ? { cost: o.cost, costs: [{ type: 'vapi', cost: o.cost }] } : {}),
      artifact,
      analysis,
      startedAt: startedAt.toISOString(),
      endedAt: endedAt.toISOString(),
      call: ended,
      phoneNumber: fake.phoneNumberOf(call),
      customer: call.customer,
      assistant: { name: 'Rapport caller' },
    },
  };
}

/** How the account's server credential at Vapi authenticates. */
export type VapiAuth =
  | { kind: 'x-vapi-secret'; secret: string }
  | { kind: 'bearer'; secret: string }
  | {
      kind: 'hmac';
      secret: string;
      algorithm?: 'sha256' | 'sha512' | 'sha1';
      signatureHeader?: string;
      timestampHeader?: string;
      payloadFormat?: string;
      signaturePrefix?: string;
      encoding?: 'hex' | 'base64';
      /** The x-timestamp value; default the current time in Unix milliseconds. */
      timestamp?: string;
    }
  | { kind: 'none' };

/**
 * The HTTP request Vapi makes to `<public url>/webhooks/vapi/<account id>` with this server
 * message, as the inbound routes would hand it to the adapter: the exact JSON bytes, lower-cased
 * headers, and the credential applied the way Vapi applies it.
 */
export function vapiServerRequest(message: unknown, opts: { accountId: string; auth: VapiAuth; publicUrl?: string; receivedAt?: Date }): InboundRequest {
  const url = `${opts.publicUrl ?? 'https://rapport.example.com'}/webhooks/vapi/${opts.accountId}`;
  const raw = Buffer.from(JSON.stringify(message));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'Vapi/1.0', 'content-length': String(raw.length) };
  const auth = opts.auth;
  if (auth.kind === 'x-vapi-secret') headers['x-vapi-secret'] = auth.secret;
  if (auth.kind === 'bearer') headers.authorization = `Bearer ${auth.secret}`;
  if (auth.kind === 'hmac') {
    const timestamp = auth.timestamp ?? String(Date.now());
    const format = auth.payloadFormat ?? '{timestamp}.{body}';
    const signed = format.replaceAll('{timestamp}', timestamp).replaceAll('{method}', 'POST').replaceAll('{url}', url).replaceAll('{body}', raw.toString('utf8'));
    const mac = createHmac(auth.algorithm ?? 'sha256', auth.secret).update(signed).digest(auth.encoding ?? 'hex');
    headers[(auth.signatureHeader ?? 'x-signature').toLowerCase()] = `${auth.signaturePrefix ?? ''}${mac}`;
    if (format.includes('{timestamp}')) headers[(auth.timestampHeader ?? 'x-timestamp').toLowerCase()] = timestamp;
  }
  return { method: 'POST', url, headers, rawBody: raw, query: {}, json: JSON.parse(raw.toString('utf8')), receivedAt: opts.receivedAt ?? new Date() };
}
