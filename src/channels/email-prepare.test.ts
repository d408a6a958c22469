import { describe, expect, it } from 'vitest';
import { SecretBox } from '../core/secrets.js';
import { readClickToken, readOpenToken, readUnsubscribeToken } from './email-links.js';
import { emailPreparer } from './email-prepare.js';
import type { OutgoingMessage } from './types.js';

const box = new SecretBox('email-prepare-test-key-0123456789-abcdef');
const ID = '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e';
const PUBLIC = 'https://rapport.example/';
const ADDRESS = 'Acme Inc., 1 Main Street, Springfield';

function message(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: ID,
    tenant_id: 't1',
    channel: 'email',
    to: 'ada@example.org',
    idempotency_key: 'e:n:0',
    subject: 'Spring news',
    html: '<html><body><p>See <a href="https://acme.example/spring">the range</a>.</p></body></html>',
    ...over,
  };
}

const marketing = { marketing: true, settings: { postal_address: ADDRESS } };

describe('emailPreparer', () => {
  it('signs every link of a marketing mail with the key, under the public URL', async () => {
    const { message: out, warnings } = await emailPreparer({ secrets: box, publicUrl: PUBLIC })(message(), marketing);
    expect(warnings).toEqual([]);
    const unsub = /^<https:\/\/rapport\.example\/u\/([^>]+)>$/.exec(out.headers!['List-Unsubscribe']!);
    expect(readUnsubscribeToken(box, unsub![1]!)).toBe(ID);
    expect(out.headers!['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const pixel = /src="https:\/\/rapport\.example\/t\/o\/([^"]+)"/.exec(out.html!);
    expect(readOpenToken(box, decodeURIComponent(pixel![1]!))).toBe(ID);
    const click = /href="https:\/\/rapport\.example\/t\/c\/([^"?]+)\?u=([^"]+)"/.exec(out.html!);
    expect(readClickToken(box, decodeURIComponent(click![1]!), decodeURIComponent(click![2]!))).toBe(ID);
    expect(decodeURIComponent(click![2]!)).toBe('https://acme.example/spring');
    expect(out.body).toContain(ADDRESS);
    expect(out.body).toContain('https://acme.example/spring');
    expect(out.html).toContain(ADDRESS);
  });

  it('keeps transactional mail free of footer and List-Unsubscribe', async () => {
    const { message: out } = await emailPreparer({ secrets: box, publicUrl: PUBLIC })(message(), { marketing: false, settings: { postal_address: ADDRESS } });
    expect(out.headers).toBeUndefined();
    expect(out.html).not.toContain(ADDRESS);
    expect(out.body).not.toContain(ADDRESS);
    expect(out.html).toContain('/t/o/');
  });

  it('follows the tenant switches and offers the mailto address', async () => {
    const { message: out } = await emailPreparer({ secrets: box, publicUrl: PUBLIC })(message(), {
      marketing: true,
      settings: { postal_address: ADDRESS, email_open_tracking: false, email_click_tracking: false, unsubscribe_mailto: 'unsub@acme.example' },
    });
    expect(out.html).not.toContain('/t/o/');
    expect(out.html).not.toContain('/t/c/');
    expect(out.html).toContain('href="https://acme.example/spring"');
    expect(out.headers!['List-Unsubscribe']).toMatch(/^<https:\/\/rapport\.example\/u\/[^>]+>, <mailto:unsub@acme\.example>$/);
  });

  it('without a secret key or a public URL sends the mail with no links back, and says why', async () => {
    for (const [opts, why] of [
      [{ secrets: null, publicUrl: PUBLIC }, /RAPPORT_SECRET_KEY/],
      [{ secrets: box, publicUrl: null }, /RAPPORT_PUBLIC_URL/],
    ] as const) {
      const { message: out, warnings } = await emailPreparer(opts)(message(), marketing);
      expect(out.html).not.toMatch(/\/t\/[oc]\/|\/u\//);
      expect(out.headers?.['List-Unsubscribe']).toBeUndefined();
      expect(out.body).toContain(ADDRESS);
      expect(warnings[0]).toMatch(why);
    }
  });

  it('renders MJML and derives the text part', async () => {
    const mjml = '<mjml><mj-body><mj-section><mj-column><mj-text>Hello <b>Ada</b></mj-text></mj-column></mj-section></mj-body></mjml>';
    const { message: out } = await emailPreparer({ secrets: box, publicUrl: PUBLIC })(message({ html: mjml, body: undefined }), marketing);
    expect(out.html).toMatch(/^<!doctype html>/i);
    expect(out.body).toMatch(/^Hello Ada/);
  });
});
