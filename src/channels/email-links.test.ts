import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../core/secrets.js';
import { clickToken, openToken, readClickToken, readOpenToken, readUnsubscribeToken, trackingSigner, unsubscribeToken } from './email-links.js';

const box = new SecretBox('email-links-test-key-0123456789-abcdef');
const otherBox = new SecretBox('another-key-entirely-0123456789-abcdef');
const ID = '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e';
const URL_A = 'https://acme.example/spring?utm_source=mail&x=1#top';

/** The token with one character of the given part changed to another URL-safe one. */
function flip(token: string, part: 1 | 2, at = 3): string {
  const parts = token.split('.');
  const s = parts[part]!;
  const c = s[at] === 'A' ? 'B' : 'A';
  parts[part] = s.slice(0, at) + c + s.slice(at + 1);
  return parts.join('.');
}

describe('e-mail link tokens', () => {
  it('are URL-safe, versioned and name their message', () => {
    const t = openToken(box, ID);
    expect(t).toMatch(/^1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(encodeURIComponent(t)).toBe(t);
    expect(readOpenToken(box, t)).toBe(ID);
    expect(readUnsubscribeToken(box, unsubscribeToken(box, ID))).toBe(ID);
    expect(readClickToken(box, clickToken(box, ID, URL_A), URL_A)).toBe(ID);
  });

  it('refuses a tampered signature or message id', () => {
    const t = openToken(box, ID);
    expect(readOpenToken(box, flip(t, 2))).toBeNull();
    expect(readOpenToken(box, flip(t, 1))).toBeNull();
    const other = openToken(box, '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6f');
    // Another message's id with this message's signature: the signature covers the id.
    expect(readOpenToken(box, `${other.split('.').slice(0, 2).join('.')}.${t.split('.')[2]}`)).toBeNull();
  });

  it('refuses a token made for another purpose', () => {
    const open = openToken(box, ID);
    const unsub = unsubscribeToken(box, ID);
    expect(readUnsubscribeToken(box, open)).toBeNull();
    expect(readOpenToken(box, unsub)).toBeNull();
    expect(readClickToken(box, open, URL_A)).toBeNull();
    expect(readOpenToken(box, clickToken(box, ID, URL_A))).toBeNull();
  });

  it('refuses a token signed with another key', () => {
    expect(readOpenToken(box, openToken(otherBox, ID))).toBeNull();
    expect(readUnsubscribeToken(box, unsubscribeToken(otherBox, ID))).toBeNull();
    expect(readClickToken(box, clickToken(otherBox, ID, URL_A), URL_A)).toBeNull();
  });

  it('ties a click token to its URL, so the tracker cannot be pointed elsewhere', () => {
    const t = clickToken(box, ID, URL_A);
    expect(readClickToken(box, t, 'https://evil.example/')).toBeNull();
    expect(readClickToken(box, t, `${URL_A}x`)).toBeNull();
    expect(readClickToken(box, t, URL_A.toUpperCase())).toBeNull();
  });

  it('refuses malformed tokens and unknown versions', () => {
    const t = openToken(box, ID);
    for (const bad of ['', '.', '1..', t.replace(/^1\./, '2.'), `${t}.x`, t.slice(0, -1), `${t}A`, t.replace(/\./g, '_'), 'x'.repeat(600), `1.${'+'.repeat(10)}.${t.split('.')[2]}`]) {
      expect(readOpenToken(box, bad), bad).toBeNull();
    }
  });

  it('is what composeEmail signs with: an open token without a URL, a click token with one', () => {
    const sign = trackingSigner(box);
    expect(readOpenToken(box, sign(ID))).toBe(ID);
    expect(readClickToken(box, sign(ID, URL_A), URL_A)).toBe(ID);
  });

  it('round-trips any message id and URL, and never accepts another URL', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme' }), fc.webUrl({ withQueryParameters: true, withFragments: true }), fc.string(), (id, url, other) => {
        expect(readOpenToken(box, openToken(box, id))).toBe(id);
        expect(readUnsubscribeToken(box, unsubscribeToken(box, id))).toBe(id);
        const c = clickToken(box, id, url);
        expect(encodeURIComponent(c)).toBe(c);
        expect(readClickToken(box, c, url)).toBe(id);
        if (other !== url) expect(readClickToken(box, c, other)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });
});
