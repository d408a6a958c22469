import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asInboundRequest, signedJsonWebhook, signedWebhook, twilioWebhookSignature } from '../../../test/fakes/twilio.js';
import {
  formPairs,
  twilioBodyHash,
  twilioSignature,
  twilioSignatureBase,
  verifyTwilioBodySignature,
  verifyTwilioRequest,
  verifyTwilioSignature,
} from './twilio-signature.js';

const TOKEN = '0123456789abcdef0123456789abcdef';

describe("Twilio's documented example", () => {
  // twilio.com/docs/usage/security: Auth Token 12345, this URL and these POST parameters.
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const params = { CallSid: 'CA1234567890ABCDE', Caller: '+14158675310', Digits: '1234', From: '+14158675310', To: '+18005551212' };

  it('builds the documented string: the URL, then name+value in name order, no separators', () => {
    expect(twilioSignatureBase(url, params)).toBe(
      'https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675310Digits1234From+14158675310To+18005551212',
    );
  });

  it('produces the documented signature, whatever order the parameters come in', () => {
    expect(twilioSignature('12345', url, params)).toBe('GvWf1cFY/Q7PnoempGyD5oXAezc=');
    const shuffled = Object.fromEntries(Object.entries(params).reverse());
    expect(twilioSignature('12345', url, shuffled)).toBe('GvWf1cFY/Q7PnoempGyD5oXAezc=');
    expect(verifyTwilioSignature('12345', 'GvWf1cFY/Q7PnoempGyD5oXAezc=', url, params)).toBe(true);
  });

  it('refuses it with another token, URL, scheme or parameter', () => {
    const sig = 'GvWf1cFY/Q7PnoempGyD5oXAezc=';
    expect(verifyTwilioSignature('12346', sig, url, params)).toBe(false);
    expect(verifyTwilioSignature('12345', sig, url.replace('foo=1', 'foo=2'), params)).toBe(false);
    expect(verifyTwilioSignature('12345', sig, url.replace('https:', 'http:'), params)).toBe(false);
    expect(verifyTwilioSignature('12345', sig, url, { ...params, Digits: '1235' })).toBe(false);
    expect(verifyTwilioSignature('12345', sig, url, { ...params, Extra: '' })).toBe(false);
    expect(verifyTwilioSignature('12345', undefined, url, params)).toBe(false);
    expect(verifyTwilioSignature('', sig, url, params)).toBe(false);
  });
});

describe('X-Twilio-Signature', () => {
  it('accepts the URL with or without the default port, as Twilio has signed both', () => {
    const signedWithout = twilioSignature(TOKEN, 'https://rapport.example/webhooks/twilio', {});
    const signedWith = twilioSignature(TOKEN, 'https://rapport.example:443/webhooks/twilio', {});
    expect(verifyTwilioSignature(TOKEN, signedWithout, 'https://rapport.example:443/webhooks/twilio')).toBe(true);
    expect(verifyTwilioSignature(TOKEN, signedWith, 'https://rapport.example/webhooks/twilio')).toBe(true);
    expect(verifyTwilioSignature(TOKEN, signedWithout, 'https://rapport.example:8443/webhooks/twilio')).toBe(false);
  });

  it('signs repeated parameters value by value in sorted order', () => {
    expect(twilioSignatureBase('u', [['b', '2'], ['a', 'y'], ['b', '1'], ['a', 'x']])).toBe('ua' + 'x' + 'a' + 'y' + 'b1b2');
  });

  it('verifies an inbound form POST, a GET (URL only) and refuses unsigned, forged and tampered ones', () => {
    const hook = signedWebhook(TOKEN, 'https://rapport.example/webhooks/twilio', { From: '+15551230000', Body: 'Hi & bye +1', To: '+15557654321' });
    const req = asInboundRequest(hook);
    expect(verifyTwilioRequest(req, TOKEN)).toBe(true);
    expect(verifyTwilioRequest(req, 'ffffffffffffffffffffffffffffffff')).toBe(false);
    expect(verifyTwilioRequest(req, undefined)).toBe(false);
    expect(verifyTwilioRequest({ ...req, headers: { ...req.headers, 'x-twilio-signature': undefined } }, TOKEN)).toBe(false);
    expect(verifyTwilioRequest({ ...req, rawBody: Buffer.from(hook.body.replace('Hi', 'Ho')) }, TOKEN)).toBe(false);
    expect(verifyTwilioRequest({ ...req, url: `${hook.url}?x=1` }, TOKEN)).toBe(false);

    const getUrl = 'https://rapport.example/webhooks/twilio_voice?CallSid=CA1&Digits=1';
    const get = { ...req, method: 'GET' as const, url: getUrl, rawBody: Buffer.alloc(0), headers: { 'x-twilio-signature': twilioWebhookSignature(TOKEN, getUrl, {}) } };
    expect(verifyTwilioRequest(get, TOKEN)).toBe(true);
    expect(verifyTwilioRequest({ ...get, url: getUrl.replace('Digits=1', 'Digits=2') }, TOKEN)).toBe(false);
  });

  it('verifies a JSON body through bodySHA256 and refuses a changed body or hash', () => {
    const hook = signedJsonWebhook(TOKEN, 'https://rapport.example/webhooks/twilio?x=1', { event: 'com.twilio.messaging.message.delivered', data: { sid: 'SM1' } });
    const req = asInboundRequest(hook);
    expect(verifyTwilioRequest(req, TOKEN)).toBe(true);
    expect(verifyTwilioBodySignature(TOKEN, hook.headers['x-twilio-signature'], hook.url, hook.body)).toBe(true);
    expect(verifyTwilioRequest({ ...req, rawBody: Buffer.from(hook.body.replace('SM1', 'SM2')) }, TOKEN)).toBe(false);
    const otherHash = hook.url.replace(/bodySHA256=[0-9a-f]+/, `bodySHA256=${twilioBodyHash('{}')}`);
    expect(verifyTwilioRequest({ ...req, url: otherHash }, TOKEN)).toBe(false);
    expect(verifyTwilioBodySignature(TOKEN, hook.headers['x-twilio-signature'], 'https://rapport.example/webhooks/twilio?x=1', hook.body)).toBe(false);
  });
});

describe('signature properties', () => {
  const name = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\u0000'));
  const params = fc.dictionary(name, fc.string({ maxLength: 40 }), { maxKeys: 8 });
  const path = fc.webPath();

  it("matches the fake's independent signer and verifies for any URL and parameters", () => {
    fc.assert(
      fc.property(path, params, (p, ps) => {
        const url = `https://rapport.example${p}`;
        const sig = twilioWebhookSignature(TOKEN, url, ps);
        expect(twilioSignature(TOKEN, url, ps)).toBe(sig);
        expect(verifyTwilioSignature(TOKEN, sig, url, ps)).toBe(true);
        const req = asInboundRequest(signedWebhook(TOKEN, url, ps));
        expect(verifyTwilioRequest(req, TOKEN)).toBe(true);
      }),
    );
  });

  it('fails when any one character of a parameter name or value changes', () => {
    fc.assert(
      fc.property(params.filter((ps) => Object.keys(ps).length > 0), fc.nat(), fc.nat(), fc.boolean(), fc.string({ minLength: 1, maxLength: 1 }), (ps, which, at, inName, ch) => {
        const url = 'https://rapport.example/webhooks/twilio';
        const sig = twilioSignature(TOKEN, url, ps);
        const entries = Object.entries(ps);
        const [k, v] = entries[which % entries.length]!;
        const target = inName ? k : v;
        const i = target.length ? at % target.length : 0;
        const changed = target.slice(0, i) + ch + target.slice(i + 1);
        fc.pre(changed !== target);
        const tampered = { ...ps };
        if (inName) {
          fc.pre(!(changed in ps));
          delete tampered[k];
          tampered[changed] = v;
        } else tampered[k] = changed;
        expect(verifyTwilioSignature(TOKEN, sig, url, tampered)).toBe(false);
      }),
    );
  });

  it('a changed byte in the raw body either fails or leaves the signed parameters exactly as they were', () => {
    // Twilio signs the decoded parameters, not the bytes: "a+b" and "a%20b" are the same value.
    fc.assert(
      fc.property(params.filter((ps) => Object.keys(ps).length > 0), fc.nat(), fc.integer({ min: 0, max: 255 }), (ps, at, byte) => {
        const hook = signedWebhook(TOKEN, 'https://rapport.example/webhooks/twilio', ps);
        const raw = Buffer.from(hook.body);
        const i = at % raw.length;
        fc.pre(raw[i] !== byte);
        raw[i] = byte;
        const req = { ...asInboundRequest(hook), rawBody: raw };
        const same = JSON.stringify(formPairs(raw)) === JSON.stringify(formPairs(hook.body));
        expect(verifyTwilioRequest(req, TOKEN)).toBe(same);
      }),
    );
  });

  it('fails when any one character of the signature changes', () => {
    fc.assert(
      fc.property(params, fc.nat(), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='), (ps, at, ch) => {
        const url = 'https://rapport.example/webhooks/twilio';
        const sig = twilioSignature(TOKEN, url, ps);
        const i = at % sig.length;
        fc.pre(sig[i] !== ch);
        expect(verifyTwilioSignature(TOKEN, sig.slice(0, i) + ch + sig.slice(i + 1), url, ps)).toBe(false);
      }),
    );
  });
});
