import { accountIdFromPath, failure } from '../http.js';
import { callTwiml, choiceTwiml, EMPTY_TWIML, HANGUP, response, sayVoice, twilioLanguage, voicemailTwiml, type MenuItem, type SayVoice } from '../twiml.js';
import type {
  AccountProblem,
  ChannelAdapter,
  InboundItem,
  InboundRequest,
  InboundResponse,
  InboundStatus,
  OutgoingMessage,
  ProviderAccount,
  RouteKeys,
  SendContext,
  SendResult,
} from '../types.js';
import { checkTwilioAccount, createTwilioResource, E164, formOf, verifyTwilioWebhook } from './twilio-api.js';

/**
 * Outbound calls through Twilio Programmable Voice (https://www.twilio.com/docs/voice/api/call-resource):
 * `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` with To, From and the call's TwiML inline
 * (`Twiml`, at most 4000 characters), so Twilio fetches nothing from Rapport to run the call.
 * Progress comes to `StatusCallback` (`/webhooks/twilio_voice`) for the initiated, ringing,
 * answered and completed events.
 *
 * The script is read with <Say> in the contact's language (twiml.ts). `options.menu` adds a
 * keypad menu: a <Gather> whose action URL carries each key's payload (`p1=moving_now`), which
 * digits transfer (`x`) and where to (`t`). Twilio signs the full URL it calls, query included,
 * so none of that can be altered on the way back; the choice arrives as an InboundMessage whose
 * payload is the key's payload, and the answer to it is TwiML: thanks, or a <Dial> transfer.
 *
 * Voicemail (`options.voicemail`). TwiML cannot branch on who answered, and asynchronous AMD
 * reports its verdict to a callback whose answer Twilio ignores (the call would have to be
 * modified through the REST API, which an inbound adapter cannot do). So a call with a
 * voicemail uses synchronous answering machine detection
 * (https://www.twilio.com/docs/voice/answering-machine-detection): `MachineDetection=
 * DetectMessageEnd` holds the call's TwiML until Twilio knows who answered and, for a machine,
 * until its greeting has ended (the beep), then requests `Url` with `AnsweredBy`. That Url is
 * Rapport's own webhook, carrying the call's plan (script, menu, voicemail, voice) in its signed
 * query, and respond() answers with the voicemail for `machine_*`, the script for `human` or
 * `unknown`, a hang-up for `fax`. Such calls need the public URL and must fit the plan in 4000
 * URL characters. Humans hear a second or two of silence while detection runs.
 */

const TWIML_LIMIT = 4000;
/** Twilio's documented limit for callback URLs, which the plan-carrying Url must also respect. */
const URL_LIMIT = 4000;
const STATUS_EVENTS = ['initiated', 'ringing', 'answered', 'completed'];
const MENU_DIGIT = /^[0-9*]$/;

interface VoiceOptions {
  language?: string;
  voice?: string;
  menu: MenuItem[];
  voicemail?: string;
  transferTo?: string;
  speech: boolean;
  thanks?: string;
}

/** The send node's voice options, or what is wrong with them. */
function voiceOptions(options: Record<string, unknown> = {}): VoiceOptions | string {
  const str = (k: string): string | undefined => (typeof options[k] === 'string' && options[k] !== '' ? (options[k] as string) : undefined);
  for (const k of ['language', 'voice', 'voicemail', 'transfer_to', 'thanks']) {
    if (options[k] !== undefined && typeof options[k] !== 'string') return `options.${k} must be a string`;
  }
  const transferTo = str('transfer_to');
  if (transferTo && !E164.test(transferTo)) return 'options.transfer_to must be an E.164 number';
  const menu: MenuItem[] = [];
  if (options.menu !== undefined) {
    if (!Array.isArray(options.menu)) return 'options.menu must be a list of {digit, say, payload}';
    for (const [i, raw] of options.menu.entries()) {
      const item = (raw ?? {}) as Record<string, unknown>;
      const { digit, say, payload, transfer } = item;
      if (typeof digit !== 'string' || !MENU_DIGIT.test(digit)) return `options.menu[${i}].digit must be one key: 0-9 or *`;
      if (menu.some((m) => m.digit === digit)) return `options.menu[${i}].digit ${digit} is used twice`;
      if (typeof say !== 'string' || !say) return `options.menu[${i}].say must be the prompt to read`;
      if (typeof payload !== 'string' || !payload) return `options.menu[${i}].payload must be a non-empty string`;
      if (transfer !== undefined && typeof transfer !== 'boolean') return `options.menu[${i}].transfer must be true or false`;
      if (transfer && !transferTo) return `options.menu[${i}] transfers, but options.transfer_to is not set`;
      menu.push({ digit, say, payload, ...(transfer ? { transfer: true } : {}) });
    }
  }
  return { language: str('language'), voice: str('voice'), menu, voicemail: str('voicemail'), transferTo, speech: options.speech === true, thanks: str('thanks') };
}

/** Everything respond() needs to build the call's TwiML later, kept short: it travels in a URL. */
interface CallPlan {
  l: string;
  v?: string;
  b: string;
  vm?: string;
  m?: { d: string; s: string; p: string; x?: 1 }[];
  t?: string;
  sp?: 1;
  ty?: string;
}

function encodePlan(plan: CallPlan): string {
  return Buffer.from(JSON.stringify(plan), 'utf8').toString('base64url');
}

function decodePlan(s: string | undefined): CallPlan | null {
  if (!s) return null;
  try {
    const p = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as CallPlan;
    return p && typeof p.l === 'string' && typeof p.b === 'string' ? p : null;
  } catch {
    return null;
  }
}

function planVoice(plan: CallPlan): SayVoice {
  return plan.v ? { language: plan.l, voice: plan.v } : { language: plan.l };
}

function planMenu(plan: CallPlan): MenuItem[] {
  return (plan.m ?? []).map((i) => ({ digit: i.d, say: i.s, payload: i.p, ...(i.x ? { transfer: true } : {}) }));
}

/** The <Gather> action: the webhook URL with what each key means in its (signed) query. */
function gatherUrl(webhook: string, plan: CallPlan): string {
  const q = new URLSearchParams({ e: 'gather', l: plan.l });
  if (plan.v) q.set('v', plan.v);
  for (const item of plan.m ?? []) q.set(`p${item.d}`, item.p);
  const transfers = (plan.m ?? []).filter((i) => i.x).map((i) => i.d).join('');
  if (transfers && plan.t) {
    q.set('x', transfers);
    q.set('t', plan.t);
  }
  if (plan.ty) q.set('ty', plan.ty);
  return `${webhook}?${q.toString()}`;
}

function humanTwiml(plan: CallPlan, webhook: string): string {
  const menu = planMenu(plan);
  return callTwiml(planVoice(plan), plan.b, menu.length ? { items: menu, action: gatherUrl(webhook, plan), speech: plan.sp === 1 } : undefined);
}

function check(credentials: Record<string, string>, config: Record<string, unknown>): AccountProblem[] {
  const problems = checkTwilioAccount(credentials, config);
  if (typeof config.from !== 'string' || !E164.test(config.from)) problems.push({ field: 'config.from', message: "required: the calling number in E.164, e.g. '+14155550100', a Twilio number or a verified caller ID" });
  const voices = config.voices;
  if (voices !== undefined && !(voices && typeof voices === 'object' && !Array.isArray(voices) && Object.values(voices).every((v) => typeof v === 'string' && v !== ''))) {
    problems.push({ field: 'config.voices', message: "must map Twilio language codes to voices, e.g. {\"de-DE\": \"Polly.Marlene\"}" });
  }
  return problems;
}

async function send(msg: OutgoingMessage, ctx: SendContext): Promise<SendResult> {
  if (!msg.to || !E164.test(msg.to)) return failure('invalid_recipient', `not an E.164 phone number: ${msg.to ?? '(none)'}`);
  if (!msg.body) return failure('rejected', 'a call needs a script (body)');
  const opts = voiceOptions(msg.options);
  if (typeof opts === 'string') return failure('rejected', opts);
  const config = ctx.account.config;
  if (typeof config.from !== 'string') return failure('config', 'the account has no config.from number');
  if ((opts.menu.length || opts.voicemail) && !ctx.publicUrl) {
    return failure('config', 'a call with a menu or a voicemail needs Rapport\'s public URL, where Twilio sends the answers');
  }
  const voice = sayVoice(twilioLanguage(opts.language ?? msg.contact?.locale), (config.voices ?? {}) as Record<string, unknown>, opts.voice);
  const plan: CallPlan = {
    l: voice.language,
    ...(voice.voice ? { v: voice.voice } : {}),
    b: msg.body,
    ...(opts.voicemail ? { vm: opts.voicemail } : {}),
    ...(opts.menu.length ? { m: opts.menu.map((i) => ({ d: i.digit, s: i.say, p: i.payload, ...(i.transfer ? { x: 1 as const } : {}) })) } : {}),
    ...(opts.transferTo ? { t: opts.transferTo } : {}),
    ...(opts.speech ? { sp: 1 as const } : {}),
    ...(opts.thanks ? { ty: opts.thanks } : {}),
  };
  const webhook = ctx.publicUrl ? `${ctx.publicUrl}/webhooks/twilio_voice` : null;

  const form = new URLSearchParams();
  form.set('To', msg.to);
  form.set('From', config.from);
  if (webhook && plan.vm) {
    const url = `${webhook}?${new URLSearchParams({ e: 'answer', s: encodePlan(plan) }).toString()}`;
    if (url.length > URL_LIMIT) return failure('rejected', `the script, menu and voicemail are too long to carry in the answer URL (${url.length} > ${URL_LIMIT} characters)`);
    form.set('Url', url);
    form.set('Method', 'POST');
    form.set('MachineDetection', 'DetectMessageEnd');
  } else {
    const twiml = humanTwiml(plan, webhook ?? '');
    if (twiml.length > TWIML_LIMIT) return failure('rejected', `the call's TwiML is ${twiml.length} characters; Twilio takes at most ${TWIML_LIMIT}`);
    form.set('Twiml', twiml);
  }
  if (webhook) {
    form.set('StatusCallback', webhook);
    form.set('StatusCallbackMethod', 'POST');
    for (const event of STATUS_EVENTS) form.append('StatusCallbackEvent', event);
  }
  return createTwilioResource(ctx, 'Calls', form);
}

// ---------------------------------------------------------------------------------------------
// Inbound: call status callbacks, the AMD answer request, menu choices

function kindOf(req: InboundRequest): 'answer' | 'gather' | 'status' {
  const e = req.query.e;
  return e === 'answer' || e === 'gather' ? e : 'status';
}

/** Rapport's number and the contact's, whichever way the call went. */
function parties(form: Record<string, string>): { ours: string; theirs: string } {
  const outbound = (form.Direction ?? 'outbound-api').startsWith('outbound');
  return outbound ? { ours: form.From ?? '', theirs: form.To ?? '' } : { ours: form.To ?? '', theirs: form.From ?? '' };
}

const MACHINE = /^machine_/;

function callStatus(form: Record<string, string>, at: Date): InboundStatus | null {
  const id = form.CallSid;
  if (!id) return null;
  const detail: Record<string, unknown> = { call_status: form.CallStatus };
  if (form.AnsweredBy) detail.answered_by = form.AnsweredBy;
  if (form.CallDuration) detail.duration_s = Number(form.CallDuration);
  if (form.SipResponseCode) detail.sip_response_code = form.SipResponseCode;
  const item = (status: InboundStatus['status'], extra: Partial<InboundStatus> = {}): InboundStatus => ({ type: 'status', provider_message_id: id, status, at, detail, ...extra });
  if (form.AnsweredBy === 'fax') return item('undeliverable', { error: 'a fax machine answered', provider_code: 'fax' });
  switch (form.CallStatus) {
    // Answered (by a person or, with a voicemail, a machine), then ended: the message got through.
    case 'in-progress':
    case 'completed':
      return item('delivered');
    case 'busy':
    case 'no-answer':
    case 'canceled':
    case 'failed':
      return item('failed', { error: `call ${form.CallStatus}`, provider_code: form.CallStatus });
    default:
      // queued, initiated, ringing: the call is on its way; send() already recorded that.
      return null;
  }
}

function gatherMessage(req: InboundRequest, form: Record<string, string>): InboundItem | null {
  const digits = form.Digits || undefined;
  const speech = form.SpeechResult || undefined;
  if (!form.CallSid || (!digits && !speech)) return null;
  const { ours, theirs } = parties(form);
  return {
    type: 'message',
    channel: 'voice',
    from: theirs,
    to: ours,
    text: speech ?? null,
    // The menu item's payload for the key pressed, from the signed action URL; the raw keys otherwise.
    payload: digits ? (req.query[`p${digits}`] ?? digits) : null,
    provider_message_id: `${form.CallSid}:gather`,
    at: req.receivedAt,
    in_reply_to: form.CallSid,
  };
}

function route(req: InboundRequest): RouteKeys | null {
  const accountId = accountIdFromPath(req.url, 'twilio_voice');
  if (accountId) return { account_id: accountId };
  const { ours } = parties(formOf(req));
  return ours ? { address: ours } : null;
}

function parse(req: InboundRequest): InboundItem[] {
  const form = formOf(req);
  const timestamp = form.Timestamp ? new Date(form.Timestamp) : null;
  const at = timestamp && !Number.isNaN(timestamp.getTime()) ? timestamp : req.receivedAt;
  const item = kindOf(req) === 'gather' ? gatherMessage(req, form) : callStatus(form, at);
  return item ? [item] : [];
}

function twiml(body: string): InboundResponse {
  return { status: 200, contentType: 'text/xml', body };
}

function respond(req: InboundRequest, account: ProviderAccount): InboundResponse {
  const form = formOf(req);
  const q = req.query;
  switch (kindOf(req)) {
    case 'answer': {
      const plan = decodePlan(q.s);
      if (!plan) return twiml(response([HANGUP]));
      const answeredBy = form.AnsweredBy ?? 'unknown';
      if (answeredBy === 'fax') return twiml(response([HANGUP]));
      if (MACHINE.test(answeredBy) && plan.vm) return twiml(voicemailTwiml(planVoice(plan), plan.vm));
      const webhook = new URL(req.url);
      webhook.search = '';
      return twiml(humanTwiml(plan, webhook.toString()));
    }
    case 'gather': {
      const voice: SayVoice = q.v ? { language: q.l ?? 'en-US', voice: q.v } : { language: q.l ?? 'en-US' };
      const digits = form.Digits;
      const transfer = digits && digits.length === 1 && q.t && (q.x ?? '').includes(digits) ? q.t : undefined;
      const callerId = typeof account.config.from === 'string' ? account.config.from : undefined;
      return twiml(choiceTwiml(voice, { transferTo: transfer, callerId, thanks: q.ty }));
    }
    default:
      return twiml(EMPTY_TWIML);
  }
}

export const twilioVoiceAdapter: ChannelAdapter = {
  kind: 'twilio_voice',
  channels: ['voice'],
  // Twilio's default of one outbound call per second per account.
  defaultRatePerSecond: 1,
  check,
  send,
  inbound: {
    route,
    verify: verifyTwilioWebhook,
    parse,
    respond,
  },
};
