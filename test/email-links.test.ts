import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/api/app.js';
import { closeSmtpTransports } from '../src/channels/adapters/smtp.js';
import { deliveryFor } from '../src/channels/delivery.js';
import { SecretBox } from '../src/core/secrets.js';
import { ManualClock } from '../src/engine/clock.js';
import { Worker } from '../src/engine/worker.js';
import { createApiKey } from '../src/store/apikeys.js';
import type { Db } from '../src/store/db.js';
import { createTenant } from '../src/store/tenants.js';
import { freshDb } from './helpers/db.js';
import { allowAnyTime, publishJourney } from './helpers/journeys.js';

/**
 * E-mail as it leaves and comes back: a journey sends through the worker to a real SMTP server,
 * and the links in the received mail are then followed through the HTTP app, the way a mail
 * client and a mailbox provider would.
 */

const PUBLIC = 'https://rapport.example';
const ADDRESS = 'Acme Garden Supplies\n12 Orchard Lane\nSpringfield, IL 62701';
const box = new SecretBox('email-links-integration-key-0123456789');

interface Received {
  parsed: ParsedMail;
  to: string[];
}

let db: Db;
let app: App;
let clock: ManualClock;
let worker: Worker;
let smtp: SMTPServer;
const inbox: Received[] = [];
let tenant: { id: string; key: string };
let contactId: string;
let marketingMail: Received;
let receiptMail: Received;

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${tenant.key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    payload: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
}

function header(mail: ParsedMail, name: string): string | undefined {
  const line = mail.headerLines.find((h) => h.key === name.toLowerCase())?.line;
  return line?.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

/** The path and query of a public URL, as the app is reached behind RAPPORT_PUBLIC_URL. */
function local(url: string): string {
  expect(url.startsWith(`${PUBLIC}/`), url).toBe(true);
  return url.slice(PUBLIC.length);
}

const links = (html: string) => [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
const messageOf = async (node: string) => (await db.query<any>('select * from messages where contact_id = $1 and node = $2 order by created_at limit 1', [contactId, node])).rows[0];
const statuses = async (id: string) => (await db.query<{ status: string; detail: any }>('select status, detail from message_status where message_id = $1 order by at, status', [id])).rows;
const emailConsent = async () =>
  (await db.query<{ topic: string; status: string; source: string }>(
    `select s.topic, s.status, r.source from consent_state s join consent_records r on r.id = s.record_id where s.contact_id = $1 and s.channel = 'email' order by s.topic`,
    [contactId],
  )).rows;

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, cb) {
      simpleParser(stream).then(
        (parsed) => {
          inbox.push({ parsed, to: session.envelope.rcptTo.map((r) => r.address) });
          cb();
        },
        (err: Error) => cb(err),
      );
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as { port: number }).port;

  db = await freshDb();
  clock = new ManualClock('2026-03-02T15:00:00Z');
  const delivery = deliveryFor(db, { secrets: box, publicUrl: PUBLIC });
  app = await buildApp({ db, clock, secrets: box, publicUrl: PUBLIC, adapters: delivery.adapters });
  worker = new Worker({ db, clock, providers: delivery.router, email: delivery.email });

  const t = await createTenant(db, { name: 'Acme Garden' });
  tenant = { id: t.id, key: (await createApiKey(db, t.id, 'test', 'test')).secret };
  await allowAnyTime(db, t.id);
  expect((await call('PATCH', '/v1/tenant', { settings: { postal_address: ADDRESS, unsubscribe_mailto: 'unsub@acme.example' } })).status).toBe(200);
  const account = await call('POST', '/v1/providers', {
    name: 'relay',
    kind: 'smtp',
    credentials: {},
    config: { host: '127.0.0.1', port, secure: false, from: 'Acme Garden <news@acme.example>' },
  });
  expect(account.status, JSON.stringify(account.body)).toBe(201);

  const contact = await call('POST', '/v1/contacts', { email: 'ada@example.org', attributes: { first_name: 'Ada' } });
  contactId = contact.body.id;
  expect((await call('POST', `/v1/contacts/${contactId}/consent`, { channel: 'email', status: 'granted', type: 'express', source: 'web_form' })).status).toBe(201);

  await publishJourney(db, t.id, {
    entry: { event: 'spring' },
    reentry: { mode: 'always' },
    nodes: [
      {
        id: 'news',
        type: 'send',
        channel: 'email',
        content: {
          subject: 'Spring is here, {{ contact.first_name }}',
          html: `<mjml><mj-body><mj-section><mj-column>
            <mj-text>Hello {{ contact.first_name }}, see <a href="https://acme.example/spring?utm_source=mail&amp;id=7">the spring range</a>.</mj-text>
            <mj-button href="https://acme.example/shop">Shop now</mj-button>
          </mj-column></mj-section></mj-body></mjml>`,
        },
        next: 'receipt',
      },
      {
        id: 'receipt',
        type: 'send',
        channel: 'email',
        transactional: true,
        content: { subject: 'Your receipt', body: 'Order 1042: 2 rakes.', html: '<html><body><p>Order 1042: 2 <a href="https://acme.example/orders/1042">rakes</a>.</p></body></html>' },
      },
    ],
  });
  expect((await call('POST', '/v1/events', { name: 'spring', contact_id: contactId })).status).toBe(202);
  await worker.drain();
  expect(inbox).toHaveLength(2);
  marketingMail = inbox.find((m) => m.parsed.subject === 'Spring is here, Ada')!;
  receiptMail = inbox.find((m) => m.parsed.subject === 'Your receipt')!;
});

afterAll(async () => {
  closeSmtpTransports();
  await app?.close();
  await db?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

describe('marketing e-mail as received', () => {
  it('has an HTML part rendered from MJML and a text part, both with the postal address', () => {
    const { parsed, to } = marketingMail;
    expect(to).toEqual(['ada@example.org']);
    expect(parsed.html).toMatch(/^<!doctype html>/i);
    expect(parsed.html).not.toContain('<mj-');
    expect(parsed.html).toContain('12 Orchard Lane');
    expect(parsed.text).toContain('Hello Ada, see the spring range');
    expect(parsed.text).toContain(ADDRESS);
    // The text part shows real destinations, not tracker URLs.
    expect(parsed.text).toContain('https://acme.example/spring?utm_source=mail&id=7');
    expect(parsed.text).not.toContain('/t/c/');
  });

  it('carries List-Unsubscribe with the one-click URL and the mailto, and List-Unsubscribe-Post', () => {
    const value = header(marketingMail.parsed, 'List-Unsubscribe')!;
    expect(value).toMatch(/^<https:\/\/rapport\.example\/u\/[A-Za-z0-9._-]+>, <mailto:unsub@acme\.example>$/);
    expect(header(marketingMail.parsed, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    const unsub = value.slice(1, value.indexOf('>'));
    expect(marketingMail.parsed.text).toContain(`Unsubscribe: ${unsub}`);
    expect(links(marketingMail.parsed.html as string)).toContain(unsub);
  });

  it('routes its links through the click tracker and carries the open pixel', () => {
    const html = marketingMail.parsed.html as string;
    const tracked = links(html).filter((l) => l.includes('/t/c/'));
    expect(tracked.map((l) => new URL(l).searchParams.get('u'))).toEqual(['https://acme.example/spring?utm_source=mail&id=7', 'https://acme.example/shop']);
    expect(html).toMatch(/<img src="https:\/\/rapport\.example\/t\/o\/[^"]+" width="1" height="1"/);
  });

  it('records what was sent, with no warnings when everything is configured', async () => {
    const m = await messageOf('news');
    expect(m.status).toBe('sent');
    expect(m.rendered.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(m.rendered.warnings).toBeUndefined();
  });
});

describe('transactional e-mail as received', () => {
  it('has no footer, no unsubscribe link and no List-Unsubscribe headers, but is tracked', () => {
    const { parsed } = receiptMail;
    expect(header(parsed, 'List-Unsubscribe')).toBeUndefined();
    expect(header(parsed, 'List-Unsubscribe-Post')).toBeUndefined();
    expect(parsed.text).toBe('Order 1042: 2 rakes.');
    expect(parsed.html).not.toContain('Orchard Lane');
    expect(parsed.html).not.toContain('/u/');
    expect(parsed.html).toContain('/t/o/');
  });
});

describe('tracking links', () => {
  it('answers the pixel with a no-cache 1×1 GIF and records the first open only', async () => {
    const pixel = /<img src="([^"]+)"/.exec(marketingMail.parsed.html as string)![1]!;
    const m = await messageOf('news');
    clock.advance(60_000);
    const first = await app.inject({ method: 'GET', url: local(pixel) });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('image/gif');
    expect(first.headers['cache-control']).toContain('no-store');
    const gif = first.rawPayload;
    expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
    expect([gif.readUInt16LE(6), gif.readUInt16LE(8)]).toEqual([1, 1]);
    const openedAt = clock.now().toISOString();
    clock.advance(60_000);
    expect((await app.inject({ method: 'GET', url: local(pixel) })).statusCode).toBe(200);
    const after = await messageOf('news');
    expect(after.status).toBe('opened');
    expect(new Date(after.opened_at).toISOString()).toBe(openedAt);
    expect((await statuses(m.id)).filter((s) => s.status === 'opened')).toHaveLength(1);
  });

  it('answers the GIF to a bad pixel token too, and records nothing', async () => {
    const receipt = await messageOf('receipt');
    const res = await app.inject({ method: 'GET', url: '/t/o/1.bm90LWEtdG9rZW4.AAAAAAAAAAAAAAAAAAAAAA' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('image/gif');
    expect((await messageOf('receipt')).status).toBe(receipt.status);
  });

  it('records a click with its URL and redirects to it', async () => {
    const link = links(marketingMail.parsed.html as string).find((l) => l.includes('/t/c/'))!;
    const res = await app.inject({ method: 'GET', url: local(link) });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('https://acme.example/spring?utm_source=mail&id=7');
    const m = await messageOf('news');
    expect(m.status).toBe('clicked');
    expect((await statuses(m.id)).find((s) => s.status === 'clicked')?.detail).toEqual({ url: 'https://acme.example/spring?utm_source=mail&id=7' });
  });

  it('refuses a tampered link with a 400 page and no redirect', async () => {
    const link = links(marketingMail.parsed.html as string).find((l) => l.includes('/t/c/'))!;
    const elsewhere = new URL(link);
    elsewhere.searchParams.set('u', 'https://evil.example/login');
    const token = link.slice(link.indexOf('/t/c/') + 5, link.indexOf('?'));
    const forged = `/t/c/${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}?u=${encodeURIComponent('https://acme.example/spring?utm_source=mail&id=7')}`;
    for (const url of [local(elsewhere.toString()), forged, '/t/c/garbage?u=https%3A%2F%2Fevil.example', `/t/c/${token}`]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers.location, url).toBeUndefined();
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
  });
});

describe('unsubscribe link', () => {
  const unsubscribePath = () => {
    const value = header(marketingMail.parsed, 'List-Unsubscribe')!;
    return local(value.slice(1, value.indexOf('>')));
  };

  it('shows a page with a button on GET, and changes nothing', async () => {
    const res = await app.inject({ method: 'GET', url: unsubscribePath() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Unsubscribe <strong>a***@example.org</strong> from Acme Garden’s emails');
    expect(res.body).toMatch(/<form method="post">/);
    expect(res.body).not.toContain('ada@example.org');
    expect(await emailConsent()).toEqual([{ topic: 'all', status: 'granted', source: 'web_form' }]);
  });

  it('refuses a bad token with a 400 page and changes nothing', async () => {
    const path = unsubscribePath();
    for (const url of [`${path.slice(0, -1)}${path.endsWith('A') ? 'B' : 'A'}`, '/u/nonsense']) {
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(400);
      expect((await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' })).statusCode).toBe(400);
    }
    expect(await emailConsent()).toEqual([{ topic: 'all', status: 'granted', source: 'web_form' }]);
  });

  it('revokes e-mail consent for the message topic on an RFC 8058 one-click POST, once', async () => {
    const res = await app.inject({ method: 'POST', url: unsubscribePath(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
    expect(res.statusCode).toBe(200);
    expect(res.headers.location).toBeUndefined();
    expect(res.body).toContain('will no longer receive Acme Garden’s emails');
    expect(await emailConsent()).toEqual([
      { topic: 'all', status: 'granted', source: 'web_form' },
      { topic: 'marketing', status: 'revoked', source: 'unsubscribe_link' },
    ]);
    const news = await messageOf('news');
    const { rows } = await db.query<any>(`select proof from consent_records where contact_id = $1 and source = 'unsubscribe_link'`, [contactId]);
    expect(rows.map((r) => r.proof)).toEqual([{ message_id: news.id, method: 'one_click' }]);

    // A mailbox retrying, multipart this time: still 200, nothing more recorded.
    const boundary = 'rapportboundary42';
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`;
    const again = await app.inject({ method: 'POST', url: unsubscribePath(), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: multipart });
    expect(again.statusCode).toBe(200);
    expect((await db.query(`select 1 from consent_records where contact_id = $1 and source = 'unsubscribe_link'`, [contactId])).rows).toHaveLength(1);

    // The revocation stops the next marketing mail; transactional mail (its own topic) still goes.
    const before = inbox.length;
    clock.advance(3600_000);
    expect((await call('POST', '/v1/events', { name: 'spring', contact_id: contactId })).status).toBe(202);
    await worker.drain();
    expect(inbox.slice(before).map((m) => m.parsed.subject)).toEqual(['Your receipt']);
  });
});

describe('without a secret key', () => {
  it('still answers the pixel, and refuses every click and unsubscribe link', async () => {
    const keyless = await buildApp({ db, clock, secrets: null, publicUrl: PUBLIC });
    try {
      const html = marketingMail.parsed.html as string;
      const pixel = await keyless.inject({ method: 'GET', url: local(/<img src="([^"]+)"/.exec(html)![1]!) });
      expect([pixel.statusCode, pixel.headers['content-type']]).toEqual([200, 'image/gif']);
      const click = await keyless.inject({ method: 'GET', url: local(links(html).find((l) => l.includes('/t/c/'))!) });
      expect([click.statusCode, click.headers.location]).toEqual([400, undefined]);
      const value = header(marketingMail.parsed, 'List-Unsubscribe')!;
      expect((await keyless.inject({ method: 'GET', url: local(value.slice(1, value.indexOf('>'))) })).statusCode).toBe(400);
    } finally {
      await keyless.close();
    }
  });
});

describe('e-mail tenant settings', () => {
  it('are refused by field name when invalid', async () => {
    for (const [settings, field] of [
      [{ postal_address: 'x'.repeat(501) }, 'settings.postal_address'],
      [{ email_open_tracking: 'sometimes' }, 'settings.email_open_tracking'],
      [{ email_click_tracking: 3 }, 'settings.email_click_tracking'],
      [{ unsubscribe_mailto: 'not an address' }, 'settings.unsubscribe_mailto'],
      [{ unsubscribe_mailto: 'unsub@acme.example>\r\nBcc: x@y.example' }, 'settings.unsubscribe_mailto'],
    ] as const) {
      const res = await call('PATCH', '/v1/tenant', { settings });
      expect(res.status, JSON.stringify(settings)).toBe(400);
      expect(res.body.error.fields.map((f: { field: string }) => f.field)).toContain(field);
    }
    const after = await call('GET', '/v1/tenant');
    expect(after.body.settings).toEqual({ postal_address: ADDRESS, unsubscribe_mailto: 'unsub@acme.example' });
  });

  it('turn tracking off per tenant', async () => {
    expect((await call('PATCH', '/v1/tenant', { settings: { postal_address: ADDRESS, email_open_tracking: false, email_click_tracking: false } })).status).toBe(200);
    expect((await call('POST', `/v1/contacts/${contactId}/consent`, { channel: 'email', topic: 'marketing', status: 'granted', type: 'express', source: 'web_form' })).status).toBe(201);
    const before = inbox.length;
    clock.advance(3600_000);
    expect((await call('POST', '/v1/events', { name: 'spring', contact_id: contactId })).status).toBe(202);
    await worker.drain();
    const news = inbox.slice(before).find((m) => m.parsed.subject === 'Spring is here, Ada')!;
    expect(news.parsed.html).not.toMatch(/\/t\/[oc]\//);
    expect(links(news.parsed.html as string)).toContain('https://acme.example/shop');
    expect(header(news.parsed, 'List-Unsubscribe')).toMatch(/^<https:\/\/rapport\.example\/u\/[^>]+>$/);
  });
});
