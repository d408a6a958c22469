import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { InboundRequest } from '../../src/channels/types.js';
import { HttpFake, sendJson, type FakeRequest } from './http-fake.js';

/**
 * A fake of Twilio's REST API for Messages and Calls: a real HTTP server on 127.0.0.1 that checks
 * Basic auth (Account SID and Auth Token) as Twilio does, validates the form-encoded create
 * requests, answers 201 with the resource JSON (`SM…`/`CA…` sid, status `queued`, price null) or
 * with Twilio's error JSON `{code, message, more_info, status}`, and records every request.
 * Twilio's magic test numbers (+1500555000x) fail the way Twilio's test credentials make them fail.
 * Tests can script the next answers: a 5xx, a 429 with code 20429 and Retry-After, any Twilio
 * error, or no answer at all.
 *
 * The webhook builders below make the requests Twilio makes to Rapport: form-encoded parameters
 * and an X-Twilio-Signature computed here, independently of src/, so a signing bug in Rapport
 * cannot verify itself.
 */

export interface TwilioApiRequest {
  resource: 'Messages' | 'Calls';
  accountSid: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The form fields; a repeated field (MediaUrl, StatusCallbackEvent) as a list. */
  params: Record<string, string | string[]>;
  /** The resource created, when the request was accepted. */
  sid?: string;
}

export type TwilioScript =
  | { status: number; code?: number; message?: string; retryAfter?: string }
  | { hang: true };

const E164 = /^\+[1-9]\d{6,14}$/;
const JSON_UTF8 = { 'content-type': 'application/json; charset=utf-8' };

/** Twilio's test-credential numbers: a message to one of these fails with this error. */
const MAGIC_TO: Record<string, [number, string]> = {
  '+15005550001': [21211, "The 'To' number +15005550001 is not a valid phone number."],
  '+15005550002': [21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS."],
  '+15005550003': [21408, 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number: +15005550003.'],
  '+15005550004': [21610, 'Attempt to send to unsubscribed recipient'],
  '+15005550009': [21614, "'To' number is not a valid mobile number"],
};

class TwilioError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function hex(n: number): string {
  return randomBytes(n / 2).toString('hex');
}

function rfc2822(d = new Date()): string {
  return d.toUTCString().replace('GMT', '+0000');
}

export class FakeTwilio {
  /** Every request that reached a resource, accepted or not. */
  readonly requests: TwilioApiRequest[] = [];
  private readonly scripts: TwilioScript[] = [];
  private price: { price: string; unit: string } | null = null;
  private http!: HttpFake;

  private constructor(private readonly accounts: Record<string, string>) {}

  /** Starts a fake for these accounts (Account SID → Auth Token). */
  static async start(accounts: Record<string, string>): Promise<FakeTwilio> {
    const fake = new FakeTwilio(accounts);
    fake.http = await HttpFake.listen((req, res) => fake.handle(req, res));
    return fake;
  }

  get url(): string {
    return this.http.url;
  }

  /** The requests Twilio accepted (201). */
  get accepted(): TwilioApiRequest[] {
    return this.requests.filter((r) => r.sid);
  }

  /** Answers the next requests, one script each, before any validation. */
  script(...scripts: TwilioScript[]): void {
    this.scripts.push(...scripts);
  }

  /** The price the next created resources report (Twilio's is negative: a charge). */
  setPrice(price: string, unit = 'USD'): void {
    this.price = { price, unit };
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private handle({ method, url, path, headers, body }: FakeRequest, res: ServerResponse): void {
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/.exec(path);
    if (!m || method !== 'POST') return this.error(res, new TwilioError(404, 20404, `The requested resource ${url} was not found`));
    const accountSid = decodeURIComponent(m[1]!);
    const params: Record<string, string | string[]> = {};
    for (const [k, v] of new URLSearchParams(body)) {
      const prev = params[k];
      params[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const record: TwilioApiRequest = { resource: m[2] as 'Messages' | 'Calls', accountSid, headers, body, params };
    this.requests.push(record);

    const script = this.scripts.shift();
    if (script && 'hang' in script) return this.http.hang(res);
    if (script) {
      const code = script.code ?? script.status * 100;
      if (script.retryAfter) res.setHeader('Retry-After', script.retryAfter);
      return this.error(res, new TwilioError(script.status, code, script.message ?? `scripted error ${code}`));
    }
    try {
      this.authenticate(accountSid, headers.authorization);
      if ((headers['content-type'] ?? '').split(';')[0] !== 'application/x-www-form-urlencoded') {
        throw new TwilioError(400, 20001, 'Content-Type must be application/x-www-form-urlencoded');
      }
      const created = record.resource === 'Messages' ? this.createMessage(accountSid, params) : this.createCall(accountSid, params);
      record.sid = created.sid as string;
      sendJson(res, 201, created, JSON_UTF8);
    } catch (err) {
      if (err instanceof TwilioError) return this.error(res, err);
      throw err;
    }
  }

  private authenticate(accountSid: string, authorization: string | undefined): void {
    const [scheme, encoded] = (authorization ?? '').split(' ');
    const [user, ...rest] = scheme === 'Basic' && encoded ? Buffer.from(encoded, 'base64').toString('utf8').split(':') : [];
    const token = rest.join(':');
    if (!user || this.accounts[user] === undefined || this.accounts[user] !== token || user !== accountSid) {
      throw new TwilioError(401, 20003, 'Authenticate');
    }
  }

  private one(params: Record<string, string | string[]>, name: string): string | undefined {
    const v = params[name];
    return Array.isArray(v) ? v[v.length - 1] : v;
  }

  private list(params: Record<string, string | string[]>, name: string): string[] {
    const v = params[name];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }

  private common(accountSid: string, sid: string, path: string): Record<string, unknown> {
    const now = rfc2822();
    return {
      sid,
      account_sid: accountSid,
      api_version: '2010-04-01',
      date_created: now,
      date_updated: now,
      price: this.price?.price ?? null,
      price_unit: this.price?.unit ?? 'USD',
      uri: `/2010-04-01/Accounts/${accountSid}/${path}/${sid}.json`,
    };
  }

  private checkCallback(url: string | undefined, code: number): void {
    if (url === undefined) return;
    try {
      if (!/^https?:$/.test(new URL(url).protocol)) throw new Error();
    } catch {
      throw new TwilioError(400, code, `The StatusCallback URL ${url} is not a valid URL.`);
    }
  }

  private createMessage(accountSid: string, params: Record<string, string | string[]>): Record<string, unknown> {
    const to = this.one(params, 'To');
    const from = this.one(params, 'From');
    const service = this.one(params, 'MessagingServiceSid');
    const body = this.one(params, 'Body');
    const media = this.list(params, 'MediaUrl');
    const content = this.one(params, 'ContentSid');
    const variables = this.one(params, 'ContentVariables');
    if (!to) throw new TwilioError(400, 21604, "A 'To' phone number is required.");
    if (!from && !service) throw new TwilioError(400, 21603, "A 'From' phone number is required.");
    if (service !== undefined && !/^MG[0-9a-f]{32}$/.test(service)) throw new TwilioError(400, 21701, `The Messaging Service Sid ${service} is invalid.`);
    const whatsapp = to.startsWith('whatsapp:');
    if (from && from.startsWith('whatsapp:') !== whatsapp) throw new TwilioError(400, 21910, 'Invalid From and To pair. From and To should be of the same channel');
    const number = to.replace(/^whatsapp:/, '');
    if (!E164.test(number)) throw new TwilioError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!body && !media.length && !content) throw new TwilioError(400, 21602, 'Message body is required.');
    if (body && body.length > 1600) throw new TwilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
    if (content !== undefined && !/^HX[0-9a-f]{32}$/.test(content)) throw new TwilioError(400, 21655, 'The ContentSid is Invalid.');
    if (variables !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(variables);
      } catch {
        parsed = null;
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TwilioError(400, 21656, 'The ContentVariables Parameter is invalid.');
    }
    for (const url of media) {
      if (!/^https?:\/\//.test(url)) throw new TwilioError(400, 21620, `Invalid media URL(s): ${url}`);
    }
    this.checkCallback(this.one(params, 'StatusCallback'), 21609);
    const magic = MAGIC_TO[number];
    if (magic) throw new TwilioError(400, magic[0], magic[1]);
    const sid = `SM${hex(32)}`;
    return {
      ...this.common(accountSid, sid, 'Messages'),
      body: body ?? '',
      date_sent: null,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: from ?? null,
      messaging_service_sid: service ?? null,
      num_media: String(media.length),
      num_segments: '1',
      status: service ? 'accepted' : 'queued',
      subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` },
      to,
    };
  }

  private createCall(accountSid: string, params: Record<string, string | string[]>): Record<string, unknown> {
    const to = this.one(params, 'To');
    const from = this.one(params, 'From');
    const url = this.one(params, 'Url');
    const twiml = this.one(params, 'Twiml');
    const detection = this.one(params, 'MachineDetection');
    if (!to) throw new TwilioError(400, 21201, "No 'To' number is specified");
    if (!from) throw new TwilioError(400, 21213, "No 'From' number is specified");
    if (!E164.test(to)) throw new TwilioError(400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (!url && !twiml && !this.one(params, 'ApplicationSid')) throw new TwilioError(400, 21205, 'Url parameter is required.');
    if (url !== undefined && !/^https?:\/\//.test(url)) throw new TwilioError(400, 21205, `Url is not a valid URL: ${url}`);
    if (twiml !== undefined && twiml.length > 4000) throw new TwilioError(400, 32018, 'Twiml size exceeded maximum allowed value of 4000 characters');
    if (detection !== undefined && detection !== 'Enable' && detection !== 'DetectMessageEnd') throw new TwilioError(400, 21263, 'Invalid Answering Machine Detection Parameters');
    for (const event of this.list(params, 'StatusCallbackEvent')) {
      if (!['initiated', 'ringing', 'answered', 'completed'].includes(event)) throw new TwilioError(400, 21626, `Invalid StatusCallbackEvent: ${event}`);
    }
    this.checkCallback(this.one(params, 'StatusCallback'), 21609);
    const sid = `CA${hex(32)}`;
    return {
      ...this.common(accountSid, sid, 'Calls'),
      answered_by: null,
      caller_name: null,
      direction: 'outbound-api',
      duration: null,
      end_time: null,
      forwarded_from: null,
      from,
      from_formatted: from,
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: `PN${hex(32)}`,
      queue_time: '0',
      start_time: null,
      status: 'queued',
      subresource_uris: { recordings: `/2010-04-01/Accounts/${accountSid}/Calls/${sid}/Recordings.json` },
      to,
      to_formatted: to,
      trunk_sid: null,
    };
  }

  private error(res: ServerResponse, err: TwilioError): void {
    if (err.code === 20003) res.setHeader('WWW-Authenticate', 'Basic realm="Twilio API"');
    sendJson(res, err.status, { code: err.code, message: err.message, more_info: `https://www.twilio.com/docs/errors/${err.code}`, status: err.status }, JSON_UTF8);
  }
}

// ---------------------------------------------------------------------------------------------
// Webhooks, as Twilio sends them

/** A request Twilio makes to Rapport: what goes on the wire. */
export interface TwilioWebhook {
  method: 'POST' | 'GET';
  url: string;
  headers: Record<string, string>;
  body: string;
  params: Record<string, string>;
}

/** Twilio's signing, written out here apart from src/: URL, then name+value sorted by name, HMAC-SHA1. */
export function twilioWebhookSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', Buffer.from(authToken, 'utf8')).update(Buffer.from(data, 'utf8')).digest('base64');
}

/** A form-encoded POST signed with the account's Auth Token, with the headers Twilio adds. */
export function signedWebhook(authToken: string, url: string, params: Record<string, string>): TwilioWebhook {
  return {
    method: 'POST',
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioWebhookSignature(authToken, url, params),
      'i-twilio-idempotency-token': randomBytes(16).toString('hex'),
      'user-agent': 'TwilioProxy/1.1',
      'x-home-region': 'us1',
    },
    body: new URLSearchParams(params).toString(),
    params,
  };
}

/** A JSON-bodied request signed the other way: bodySHA256 in the URL, the URL signed without parameters. */
export function signedJsonWebhook(authToken: string, url: string, json: unknown): TwilioWebhook {
  const body = JSON.stringify(json);
  const signedUrl = `${url}${url.includes('?') ? '&' : '?'}bodySHA256=${createHash('sha256').update(body, 'utf8').digest('hex')}`;
  return {
    method: 'POST',
    url: signedUrl,
    headers: { 'content-type': 'application/json', 'x-twilio-signature': twilioWebhookSignature(authToken, signedUrl, {}) },
    body,
    params: {},
  };
}

/** The request as Rapport's inbound routes hand it to an adapter. */
export function asInboundRequest(w: TwilioWebhook, receivedAt = new Date()): InboundRequest {
  const parsed = new URL(w.url);
  const isForm = (w.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
  let json: unknown;
  if (!isForm && w.body) {
    try {
      json = JSON.parse(w.body);
    } catch {
      json = undefined;
    }
  }
  return {
    method: w.method,
    url: w.url,
    headers: { ...w.headers },
    rawBody: Buffer.from(w.body, 'utf8'),
    query: Object.fromEntries(parsed.searchParams),
    ...(isForm ? { form: Object.fromEntries(new URLSearchParams(w.body)) } : {}),
    ...(json !== undefined ? { json } : {}),
    receivedAt,
  };
}

export const sid = (prefix: string): string => `${prefix}${hex(32)}`;

interface MessageParties {
  authToken: string;
  url: string;
  accountSid: string;
  /** E.164; prefixed with whatsapp: when `whatsapp` is set. */
  from: string;
  to: string;
  whatsapp?: boolean;
}

/** An incoming SMS/MMS or WhatsApp message to one of the account's numbers. */
export function incomingMessage(
  o: MessageParties & {
    body?: string;
    messageSid?: string;
    media?: { url: string; contentType: string }[];
    profileName?: string;
    buttonPayload?: string;
    buttonText?: string;
    originalRepliedMessageSid?: string;
  },
): TwilioWebhook {
  const prefix = o.whatsapp ? 'whatsapp:' : '';
  const id = o.messageSid ?? sid('SM');
  const params: Record<string, string> = {
    ToCountry: 'US',
    SmsMessageSid: id,
    NumMedia: String(o.media?.length ?? 0),
    SmsSid: id,
    SmsStatus: 'received',
    Body: o.body ?? '',
    To: prefix + o.to,
    NumSegments: '1',
    MessageSid: id,
    AccountSid: o.accountSid,
    From: prefix + o.from,
    ApiVersion: '2010-04-01',
  };
  o.media?.forEach((m, i) => {
    params[`MediaUrl${i}`] = m.url;
    params[`MediaContentType${i}`] = m.contentType;
  });
  if (o.whatsapp) {
    params.WaId = o.from.replace(/^\+/, '');
    params.ProfileName = o.profileName ?? '';
    params.MessageType = o.buttonPayload ? 'button' : o.media?.length ? 'image' : 'text';
    if (o.buttonPayload) params.ButtonPayload = o.buttonPayload;
    if (o.buttonText) params.ButtonText = o.buttonText;
    if (o.originalRepliedMessageSid) {
      params.OriginalRepliedMessageSid = o.originalRepliedMessageSid;
      params.OriginalRepliedMessageSender = prefix + o.to;
    }
  }
  return signedWebhook(o.authToken, o.url, params);
}

/** A message status callback: From is the account's number, To the recipient. */
export function messageStatusCallback(
  o: MessageParties & { messageSid: string; status: string; errorCode?: string; errorMessage?: string; messagingServiceSid?: string },
): TwilioWebhook {
  const prefix = o.whatsapp ? 'whatsapp:' : '';
  const params: Record<string, string> = {
    SmsSid: o.messageSid,
    SmsStatus: o.status,
    MessageStatus: o.status,
    To: prefix + o.to,
    MessageSid: o.messageSid,
    AccountSid: o.accountSid,
    From: prefix + o.from,
    ApiVersion: '2010-04-01',
  };
  if (o.messagingServiceSid) params.MessagingServiceSid = o.messagingServiceSid;
  if (o.errorCode) params.ErrorCode = o.errorCode;
  if (o.errorMessage) params.ErrorMessage = o.errorMessage;
  if (o.whatsapp) {
    params.ChannelPrefix = 'whatsapp';
    params.ChannelToAddress = o.to;
    params.ChannelInstallSid = sid('XE');
    if (o.status === 'read' || o.status === 'delivered') params.EventType = o.status.toUpperCase();
  }
  return signedWebhook(o.authToken, o.url, params);
}

interface CallParties {
  authToken: string;
  url: string;
  accountSid: string;
  callSid: string;
  /** The account's number (the call is outbound-api). */
  from: string;
  to: string;
}

function callParams(o: CallParties, status: string): Record<string, string> {
  return {
    Called: o.to,
    ToState: 'CA',
    CallerCountry: 'US',
    Direction: 'outbound-api',
    CallerState: 'CA',
    ToZip: '',
    CallSid: o.callSid,
    To: o.to,
    CallerZip: '',
    ToCountry: 'US',
    ApiVersion: '2010-04-01',
    CalledZip: '',
    CallStatus: status,
    CalledCity: '',
    From: o.from,
    AccountSid: o.accountSid,
    CalledCountry: 'US',
    CallerCity: '',
    Caller: o.from,
    FromCountry: 'US',
    ToCity: '',
    FromCity: '',
    CalledState: 'CA',
    FromZip: '',
    FromState: 'CA',
  };
}

/** A StatusCallback for one of the call's progress events. */
export function callStatusCallback(o: CallParties & { status: string; duration?: number; answeredBy?: string; sequence?: number; timestamp?: Date }): TwilioWebhook {
  const params = callParams(o, o.status);
  params.CallbackSource = 'call-progress-events';
  params.SequenceNumber = String(o.sequence ?? 0);
  params.Timestamp = rfc2822(o.timestamp);
  if (o.duration !== undefined) {
    params.CallDuration = String(o.duration);
    params.Duration = String(Math.ceil(o.duration / 60));
  }
  if (o.answeredBy) params.AnsweredBy = o.answeredBy;
  return signedWebhook(o.authToken, o.url, params);
}

/** The request to the call's Url once synchronous answering machine detection has decided. */
export function amdAnswerRequest(o: CallParties & { answeredBy: string }): TwilioWebhook {
  const params = callParams(o, 'in-progress');
  params.AnsweredBy = o.answeredBy;
  params.MachineDetectionDuration = '2300';
  return signedWebhook(o.authToken, o.url, params);
}

/** A <Gather> result posted to its action URL. */
export function gatherResult(o: CallParties & { digits?: string; speech?: string }): TwilioWebhook {
  const params = callParams(o, 'in-progress');
  params.msg = 'Gather End';
  if (o.digits !== undefined) {
    params.Digits = o.digits;
    params.FinishedOnKey = '';
  }
  if (o.speech !== undefined) {
    params.SpeechResult = o.speech;
    params.Confidence = '0.92';
  }
  return signedWebhook(o.authToken, o.url, params);
}
