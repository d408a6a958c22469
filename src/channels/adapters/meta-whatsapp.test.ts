import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_META_WEBHOOK_URL,
  MetaGraphFake,
  metaInbound,
  metaNotification,
  metaSignature,
  metaStatus,
  metaVerification,
  signedPost,
  toInboundRequest,
  type MetaWebhookAccount,
} from '../../../test/fakes/meta-whatsapp.js';
import { oneByteChanged } from '../../../test/helpers/adapters.js';
import type { OutgoingMessage, ProviderAccount, SendContext } from '../types.js';
import { META_MEDIA_PREFIX, metaWhatsappAdapter as adapter } from './meta-whatsapp.js';

const TOKEN = 'EAAGm0PX4ZCpsBAtest-token';
const PHONE_ID = '106540352242922';
const APP_SECRET = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const VERIFY_TOKEN = 'rapport-verify-7f3c';
const inbound = adapter.inbound!;

let fake: MetaGraphFake;

beforeAll(async () => {
  fake = await MetaGraphFake.start({
    accessToken: TOKEN,
    phoneNumberIds: [PHONE_ID],
    templates: { order_shipped: { languages: ['en_US'], bodyParams: 2 }, welcome: { languages: ['en_US', 'de'], bodyParams: 0 } },
    notOnWhatsApp: ['15550001111'],
  });
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.requests.length = 0;
  fake.received.length = 0;
});

function account(over: Partial<ProviderAccount> = {}, config: Record<string, unknown> = {}): ProviderAccount {
  return {
    id: 'acc_meta_1',
    tenant_id: 'ten_1',
    name: 'WhatsApp main',
    kind: 'meta_whatsapp',
    channel: 'whatsapp',
    priority: 1,
    credentials: { access_token: TOKEN, app_secret: APP_SECRET, verify_token: VERIFY_TOKEN },
    config: { phone_number_id: PHONE_ID, base_url: fake.url, ...config },
    ...over,
  };
}

function ctx(acc = account(), timeoutMs = 2000): SendContext {
  return { account: acc, fetch, publicUrl: 'https://rapport.example.com', timeoutMs };
}

function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: 'msg_01', tenant_id: 'ten_1', channel: 'whatsapp', to: '+16315551181', idempotency_key: 'enr_1:n1:0', body: 'Your order is on its way', ...over };
}

describe('check', () => {
  it('accepts a complete account', () => {
    expect(adapter.check(account().credentials, { phone_number_id: PHONE_ID })).toEqual([]);
  });

  it('names each bad field', () => {
    const problems = adapter.check({ verify_token: '' }, { phone_number_id: '+1 555 0100', api_version: 'latest', base_url: 'ftp://x' });
    expect(problems.map((p) => p.field).sort()).toEqual(['config.api_version', 'config.base_url', 'config.phone_number_id', 'credentials.access_token', 'credentials.app_secret', 'credentials.verify_token']);
  });
});

describe('send', () => {
  it('sends session text and returns the wamid', async () => {
    const r = await adapter.send(message({ body: 'Track it at https://t.example/1' }), ctx());
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(r).toEqual({ ok: true, provider_message_id: req.messageId });
    expect(req.messageId).toMatch(/^wamid\./);
    expect(req.path).toBe(`/v23.0/${PHONE_ID}/messages`);
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '16315551181',
      biz_opaque_callback_data: 'msg_01',
      type: 'text',
      text: { body: 'Track it at https://t.example/1', preview_url: true },
    });
  });

  it('uses the configured Graph API version, and preview_url when told', async () => {
    await adapter.send(message({ options: { preview_url: false } }), ctx(account({}, { api_version: '21.0' })));
    expect(fake.requests[0]!.path).toBe(`/v21.0/${PHONE_ID}/messages`);
    expect(fake.requests[0]!.body.text).toEqual({ body: 'Your order is on its way', preview_url: false });
  });

  it('sends reply buttons from strings and objects', async () => {
    const r = await adapter.send(message({ body: 'Is 3pm still good?', options: { buttons: ['Yes', { payload: 'RESCHEDULE', title: 'Another time' }, { id: 'stop', title: 'Stop' }] } }), ctx());
    expect(r.ok).toBe(true);
    expect(fake.requests[0]!.body).toMatchObject({
      type: 'interactive',
      interactive: {
        type: 'button',
        body: { text: 'Is 3pm still good?' },
        action: {
          buttons: [
            { type: 'reply', reply: { id: 'Yes', title: 'Yes' } },
            { type: 'reply', reply: { id: 'RESCHEDULE', title: 'Another time' } },
            { type: 'reply', reply: { id: 'stop', title: 'Stop' } },
          ],
        },
      },
    });
  });

  it('heads buttons with an image when media is given', async () => {
    await adapter.send(message({ options: { buttons: ['OK'], media: { type: 'image', url: 'https://cdn.example/p.jpg' }, footer: 'Reply STOP to opt out' } }), ctx());
    expect(fake.requests[0]!.body.interactive).toMatchObject({ header: { type: 'image', image: { link: 'https://cdn.example/p.jpg' } }, footer: { text: 'Reply STOP to opt out' } });
  });

  it.each([
    [{ buttons: ['a', 'b', 'c', 'd'] }, /1 to 3 allowed, 4 given/],
    [{ buttons: [] }, /1 to 3 allowed, 0 given/],
    [{ buttons: ['Twenty-one characters'] }, /is 21 characters; WhatsApp allows 20/],
    [{ buttons: [{ id: 'x', title: 'A' }, { id: 'x', title: 'B' }] }, /used twice/],
    [{ buttons: 'Yes' }, /must be a list/],
    [{ buttons: [42] }, /button 1 must be/],
    [{ media: { type: 'audio', url: 'https://cdn.example/a.ogg' } }, /audio messages carry no text/],
    [{ media: { type: 'gif', url: 'https://cdn.example/a.gif' } }, /must be one of/],
    [{ media: { type: 'image', url: 'file:///etc/passwd' } }, /http\(s\) URL/],
    [{ buttons: ['OK'], media: { type: 'audio', url: 'https://cdn.example/a.ogg' } }, /cannot be headed by audio/],
  ])('fails permanently, without calling Meta, on %j', async (options, error) => {
    const r = await adapter.send(message({ options }), ctx());
    expect(r).toMatchObject({ ok: false, permanent: true, code: 'rejected', error: expect.stringMatching(error) });
    expect(fake.received).toHaveLength(0);
  });

  it('counts button titles in characters, not bytes', async () => {
    const r = await adapter.send(message({ options: { buttons: ['Ja, gerne! 👍🏽 Danke'] } }), ctx());
    expect(r.ok).toBe(true);
  });

  it('sends media with the body as caption, and documents with a filename', async () => {
    await adapter.send(message({ body: 'Your invoice', options: { media: { type: 'document', url: 'https://cdn.example/inv.pdf', filename: 'invoice-42.pdf' } } }), ctx());
    await adapter.send(message({ body: '', options: { media: { type: 'audio', url: 'https://cdn.example/a.ogg' } } }), ctx());
    await adapter.send(message({ body: 'ignored', options: { media: { type: 'image', url: 'https://cdn.example/p.jpg', caption: 'New arrivals' } } }), ctx());
    expect(fake.requests.map((r) => r.body.type)).toEqual(['document', 'audio', 'image']);
    expect(fake.requests[0]!.body.document).toEqual({ link: 'https://cdn.example/inv.pdf', caption: 'Your invoice', filename: 'invoice-42.pdf' });
    expect(fake.requests[1]!.body.audio).toEqual({ link: 'https://cdn.example/a.ogg' });
    expect(fake.requests[2]!.body.image).toEqual({ link: 'https://cdn.example/p.jpg', caption: 'New arrivals' });
  });

  it('sends a template with body parameters and button parameters, and prefers it to the body', async () => {
    const r = await adapter.send(
      message({
        body: 'session text that must not go',
        whatsapp_template: {
          name: 'order_shipped',
          language: 'en_US',
          parameters: ['Ada', 'A-1042'],
          buttons: [
            { index: 0, sub_type: 'url', parameter: 'A-1042' },
            { index: 1, sub_type: 'quick_reply', parameter: 'STOP_ORDERS' },
          ],
        },
      }),
      ctx(),
    );
    expect(r.ok).toBe(true);
    const body = fake.requests[0]!.body;
    expect(body.text).toBeUndefined();
    expect(body).toMatchObject({
      type: 'template',
      template: {
        name: 'order_shipped',
        language: { code: 'en_US' },
        components: [
          { type: 'body', parameters: [{ type: 'text', text: 'Ada' }, { type: 'text', text: 'A-1042' }] },
          { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'A-1042' }] },
          { type: 'button', sub_type: 'quick_reply', index: '1', parameters: [{ type: 'payload', payload: 'STOP_ORDERS' }] },
        ],
      },
    });
  });

  it('sends a template without parameters with no components, and a media header when given', async () => {
    await adapter.send(message({ whatsapp_template: { name: 'welcome', language: 'de', parameters: [] } }), ctx());
    await adapter.send(message({ whatsapp_template: { name: 'welcome', language: 'en_US', parameters: [] }, options: { media: { type: 'image', url: 'https://cdn.example/h.png' } } }), ctx());
    expect(fake.requests[0]!.body.template).toEqual({ name: 'welcome', language: { code: 'de' } });
    expect(fake.requests[1]!.body.template.components).toEqual([{ type: 'header', parameters: [{ type: 'image', image: { link: 'https://cdn.example/h.png' } }] }]);
  });

  it('refuses an address that is not a phone number', async () => {
    expect(await adapter.send(message({ to: 'ada@example.com' }), ctx())).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient' });
    expect(fake.received).toHaveLength(0);
  });

  describe('failures', () => {
    it('5xx is temporary', async () => {
      fake.script({ status: 503, body: 'Service Unavailable' });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server' });
    });

    it('131000 (something went wrong, HTTP 500) is a temporary server failure', async () => {
      fake.failNext(131000, 'Something went wrong', { status: 500 });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'server', provider_code: '131000' });
    });

    it('a hang past the timeout is a temporary timeout', async () => {
      fake.script({ hangMs: 1500 });
      const r = await adapter.send(message(), ctx(account(), 200));
      expect(r).toMatchObject({ ok: false, permanent: false, code: 'timeout' });
    });

    it('a refused connection is a temporary network failure', async () => {
      const r = await adapter.send(message(), ctx(account({}, { base_url: 'http://127.0.0.1:1' })));
      expect(r).toMatchObject({ ok: false, permanent: false, code: 'network' });
    });

    it('130429 (throughput, HTTP 400) is rate_limited with a wait', async () => {
      fake.failNext(130429, 'Rate limit hit', { details: 'Cloud API message throughput has been reached.' });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: false, code: 'rate_limited', retry_after_ms: 1000, provider_code: '130429' });
    });

    it('131056 (pair rate) waits about 6 s, and Retry-After wins when Meta sends one', async () => {
      fake.failNext(131056, '(Business Account, Consumer Account) pair rate limit hit');
      expect(await adapter.send(message(), ctx())).toMatchObject({ code: 'rate_limited', retry_after_ms: 6000 });
      fake.failNext(80007, 'Rate limit issues', { headers: { 'retry-after': '12' } });
      expect(await adapter.send(message(), ctx())).toMatchObject({ code: 'rate_limited', retry_after_ms: 12_000 });
    });

    it('131026 (not on WhatsApp) is invalid_recipient', async () => {
      const r = await adapter.send(message({ to: '+15550001111' }), ctx());
      expect(r).toMatchObject({ ok: false, permanent: true, code: 'invalid_recipient', provider_code: '131026' });
    });

    it('131047 (outside the 24-hour window) is rejected with a clear message', async () => {
      fake.failNext(131047, 'Re-engagement message', { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' });
      const r = await adapter.send(message(), ctx());
      expect(r).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '131047', error: expect.stringMatching(/24-hour customer service window.*template/) });
    });

    it('131050 (stopped marketing messages) is unsubscribed', async () => {
      fake.failNext(131050, 'User has stopped receipt of marketing messages');
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'unsubscribed' });
    });

    it('an unknown template (132001, HTTP 404) and a parameter mismatch (132000) are rejected', async () => {
      const unknown = await adapter.send(message({ whatsapp_template: { name: 'nope', language: 'en_US', parameters: [] } }), ctx());
      expect(unknown).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '132001' });
      const mismatch = await adapter.send(message({ whatsapp_template: { name: 'order_shipped', language: 'en_US', parameters: ['only one'] } }), ctx());
      expect(mismatch).toMatchObject({ ok: false, permanent: true, code: 'rejected', provider_code: '132000', error: expect.stringContaining('expected number of params') });
    });

    it('a wrong token (190, HTTP 401) is auth, temporary so another account can take over', async () => {
      const r = await adapter.send(message(), ctx(account({ credentials: { access_token: 'expired', app_secret: APP_SECRET } })));
      expect(r).toMatchObject({ ok: false, permanent: false, code: 'auth', provider_code: '190' });
    });

    it('an unknown phone_number_id (100/33) is config', async () => {
      const r = await adapter.send(message(), ctx(account({}, { phone_number_id: '999999999999' })));
      expect(r).toMatchObject({ ok: false, permanent: false, code: 'config', provider_code: '100' });
    });

    it('an error body that is not Graph JSON falls back to the HTTP status', async () => {
      fake.script({ status: 400, body: 'bad' });
      expect(await adapter.send(message(), ctx())).toMatchObject({ ok: false, permanent: true, code: 'rejected' });
    });
  });
});

// ---- inbound ----

const hook: MetaWebhookAccount = { appSecret: APP_SECRET, phoneNumberId: PHONE_ID, displayPhoneNumber: '15550783881' };
const T = 1_767_225_600; // 2026-01-01T00:00:00Z

describe('route', () => {
  it('routes a notification by its phone_number_id', () => {
    const req = toInboundRequest(metaNotification(hook, metaInbound.text({ from: '16315551181' }, 'hi')));
    expect(inbound.route(req)).toEqual({ external_id: PHONE_ID });
  });

  it('routes the GET handshake, and bodiless POSTs, by the account id at the end of the URL', () => {
    const get = toInboundRequest(metaVerification({ url: `${DEFAULT_META_WEBHOOK_URL}/acc_meta_1`, verifyToken: VERIFY_TOKEN, challenge: '1158201444' }));
    expect(inbound.route(get)).toEqual({ account_id: 'acc_meta_1' });
    const post = toInboundRequest(signedPost({ appSecret: APP_SECRET, url: `${DEFAULT_META_WEBHOOK_URL}/acc_meta_1` }, JSON.stringify({ object: 'whatsapp_business_account', entry: [] })));
    expect(inbound.route(post)).toEqual({ account_id: 'acc_meta_1' });
  });

  it('has nothing to route without a phone id or an account id', () => {
    expect(inbound.route(toInboundRequest(metaVerification({ url: DEFAULT_META_WEBHOOK_URL, verifyToken: 'x', challenge: 'y' })))).toBeNull();
    expect(inbound.route(toInboundRequest(signedPost({ appSecret: APP_SECRET }, 'not json')))).toBeNull();
  });
});

describe('handshake', () => {
  const url = `${DEFAULT_META_WEBHOOK_URL}/acc_meta_1`;

  it('echoes the challenge as text when the verify token matches', () => {
    const req = toInboundRequest(metaVerification({ url, verifyToken: VERIFY_TOKEN, challenge: '1158201444' }));
    expect(inbound.handshake!(req, account())).toEqual({ status: 200, contentType: 'text/plain', body: '1158201444' });
    expect(inbound.verify(req, account())).toBe(true);
  });

  it('answers nothing (403 at the route) for a wrong token, another mode, or an account without a token', () => {
    const wrong = toInboundRequest(metaVerification({ url, verifyToken: 'guess', challenge: '1' }));
    const mode = toInboundRequest(metaVerification({ url, verifyToken: VERIFY_TOKEN, challenge: '1', mode: 'unsubscribe' }));
    const right = toInboundRequest(metaVerification({ url, verifyToken: VERIFY_TOKEN, challenge: '1' }));
    expect(inbound.handshake!(wrong, account())).toBeNull();
    expect(inbound.verify(wrong, account())).toBe(false);
    expect(inbound.handshake!(mode, account())).toBeNull();
    expect(inbound.handshake!(right, account({ credentials: { access_token: TOKEN, app_secret: APP_SECRET } }))).toBeNull();
  });
});

describe('verify', () => {
  const signed = () => metaNotification(hook, metaInbound.text({ from: '16315551181', timestamp: T }, 'Hello'));

  it('accepts a correctly signed notification', () => {
    expect(inbound.verify(toInboundRequest(signed()), account())).toBe(true);
  });

  it('rejects unsigned, wrongly keyed, tampered and malformed signatures', () => {
    const w = signed();
    const unsigned = { ...w, headers: { 'content-type': 'application/json' } };
    const sha1Only = { ...w, headers: { 'x-hub-signature': w.headers['x-hub-signature']! } };
    const otherKey = { ...w, headers: { ...w.headers, 'x-hub-signature-256': metaSignature(w.body, 'another-app-secret') } };
    const tampered = { ...w, body: w.body.replace('Hello', 'Hellp') };
    const bare = { ...w, headers: { ...w.headers, 'x-hub-signature-256': w.headers['x-hub-signature-256']!.slice(7) } };
    for (const bad of [unsigned, sha1Only, otherKey, tampered, bare]) expect(inbound.verify(toInboundRequest(bad), account())).toBe(false);
    expect(inbound.verify(toInboundRequest(w), account({ credentials: { access_token: TOKEN, app_secret: '' } }))).toBe(false);
  });

  it('round-trips any body, and fails when any single byte changes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, pos, delta) => {
        const body = Buffer.from(bytes);
        const req = toInboundRequest({ method: 'POST', url: DEFAULT_META_WEBHOOK_URL, headers: { 'x-hub-signature-256': metaSignature(body, APP_SECRET) }, body: '' });
        const ok = { ...req, rawBody: body };
        expect(inbound.verify(ok, account())).toBe(true);
        const changed = oneByteChanged(body, pos, delta);
        expect(inbound.verify({ ...req, rawBody: changed }, account())).toBe(false);
      }),
    );
  });
});

describe('parse', () => {
  const parse = (w: ReturnType<typeof metaNotification>) => inbound.parse(toInboundRequest(w), account());

  it('reads an inbound text with the sender profile name', () => {
    const items = parse(metaNotification(hook, metaInbound.text({ from: '16315551181', name: 'Ada Lovelace', id: 'wamid.IN1', timestamp: T }, 'Where is my order?')));
    expect(items).toEqual([
      { type: 'message', channel: 'whatsapp', from: '+16315551181', to: '+15550783881', text: 'Where is my order?', payload: null, provider_message_id: 'wamid.IN1', at: new Date(T * 1000), profile_name: 'Ada Lovelace' },
    ]);
  });

  it('reads a template quick-reply button with its payload and the message it answers', () => {
    const [m] = parse(metaNotification(hook, metaInbound.button({ from: '16315551181', context: 'wamid.OUT1', timestamp: T }, 'Stop promotions', 'STOP_PROMOS')));
    expect(m).toMatchObject({ type: 'message', text: 'Stop promotions', payload: 'STOP_PROMOS', in_reply_to: 'wamid.OUT1' });
  });

  it('reads interactive button and list replies', () => {
    const [b] = parse(metaNotification(hook, metaInbound.buttonReply({ from: '16315551181', context: 'wamid.OUT2' }, 'RESCHEDULE', 'Another time')));
    const [l] = parse(metaNotification(hook, metaInbound.listReply({ from: '16315551181', context: 'wamid.OUT3' }, 'slot_9am', '9am', 'Tomorrow at 9')));
    expect(b).toMatchObject({ text: 'Another time', payload: 'RESCHEDULE', in_reply_to: 'wamid.OUT2' });
    expect(l).toMatchObject({ text: '9am', payload: 'slot_9am', in_reply_to: 'wamid.OUT3' });
  });

  it('reads media as a meta-media id with its type and caption', () => {
    const [img] = parse(metaNotification(hook, metaInbound.media({ from: '16315551181' }, 'image', { id: '1379016619581262', mime_type: 'image/jpeg', caption: 'the damage' })));
    const [doc] = parse(metaNotification(hook, metaInbound.media({ from: '16315551181' }, 'document', { id: '8812', mime_type: 'application/pdf', filename: 'receipt.pdf' })));
    expect(img).toMatchObject({ text: 'the damage', media: [{ url: `${META_MEDIA_PREFIX}1379016619581262`, content_type: 'image/jpeg' }] });
    expect(doc).toMatchObject({ text: null, media: [{ url: 'meta-media:8812', content_type: 'application/pdf' }] });
  });

  it('skips reactions: they are not messages', () => {
    expect(parse(metaNotification(hook, metaInbound.reaction({ from: '16315551181' }, 'wamid.OUT1', '👍')))).toEqual([]);
  });

  it('reads sent, delivered and read statuses with pricing in detail', () => {
    const items = (['sent', 'delivered', 'read'] as const).flatMap((status) =>
      parse(metaNotification(hook, metaStatus({ id: 'wamid.OUT9', status, recipient: '16315551181', timestamp: T, category: 'marketing', callbackData: 'msg_01' }))),
    );
    expect(items.map((i) => i.type === 'status' && i.status)).toEqual(['sent', 'delivered', 'read']);
    expect(items[1]).toMatchObject({
      type: 'status',
      provider_message_id: 'wamid.OUT9',
      at: new Date(T * 1000),
      detail: { recipient_id: '16315551181', callback_data: 'msg_01', pricing: { billable: true, category: 'marketing', pricing_model: 'PMP' } },
    });
  });

  it('reads failures: 131026 is undeliverable, 131050 suppresses, others are failed with the error', () => {
    const dead = parse(metaNotification(hook, metaStatus({ id: 'wamid.A', status: 'failed', recipient: '1', error: { code: 131026, title: 'Message undeliverable' } })));
    const optedOut = parse(metaNotification(hook, metaStatus({ id: 'wamid.B', status: 'failed', recipient: '1', error: { code: 131050, title: 'User has stopped receipt of marketing messages' } })));
    const other = parse(metaNotification(hook, metaStatus({ id: 'wamid.C', status: 'failed', recipient: '1', error: { code: 131049, title: 'This message was not delivered to maintain healthy ecosystem engagement.', details: 'per-user marketing limit' } })));
    expect(dead).toMatchObject([{ status: 'undeliverable', provider_code: '131026', error: expect.stringContaining('Message undeliverable') }]);
    expect(optedOut).toMatchObject([{ status: 'failed', provider_code: '131050', suppress: 'unsubscribe' }]);
    expect(other).toMatchObject([{ status: 'failed', provider_code: '131049', error: expect.stringContaining('per-user marketing limit') }]);
  });

  it("keeps only this account's number from a batched notification", () => {
    const ours = JSON.parse(metaNotification(hook, metaInbound.text({ from: '16315551181' }, 'for us')).body);
    const theirs = JSON.parse(metaNotification({ ...hook, phoneNumberId: '222222222222', displayPhoneNumber: '15550009999' }, metaInbound.text({ from: '16315551181' }, 'not for us')).body);
    ours.entry.push(...theirs.entry);
    const items = inbound.parse(toInboundRequest(signedPost(hook, JSON.stringify(ours))), account());
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ text: 'for us' });
  });

  it('ignores other webhook fields and other objects', () => {
    expect(parse(metaNotification(hook, { event: 'APPROVED', message_template_id: 1 }, { field: 'message_template_status_update' }))).toEqual([]);
    expect(inbound.parse(toInboundRequest(signedPost(hook, JSON.stringify({ object: 'page', entry: [] }))), account())).toEqual([]);
  });

  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        const req = toInboundRequest(signedPost(hook, JSON.stringify(json) ?? 'null'));
        expect(Array.isArray(inbound.parse(req, account()))).toBe(true);
        inbound.route(req);
      }),
    );
  });
});
