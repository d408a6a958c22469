import { decodeHTMLAttribute } from 'entities';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeEmail, htmlToPlainText, isMjml, parseMailbox, safeHeaders, type ComposeInput } from './email-compose.js';

const TRACK = 'https://rapport.example';
const UNSUB = 'https://rapport.example/u/unsub-token';

/** A stand-in signer: deterministic, URL-safe, and it records what it was asked to sign. */
function signer() {
  const calls: [string, string | undefined][] = [];
  const sign = (id: string, url?: string) => {
    calls.push([id, url]);
    return Buffer.from(`${id}|${url ?? ''}`).toString('base64url').slice(0, 24);
  };
  return { sign, calls };
}

function input(over: Partial<ComposeInput> = {}): ComposeInput {
  return {
    subject: 'Spring news',
    html: '<html><body><p>Hello</p></body></html>',
    marketing: false,
    messageId: 'msg-1',
    trackBase: TRACK,
    unsubscribeUrl: UNSUB,
    postalAddress: 'Acme Inc.\n1 Main Street\nSpringfield',
    sign: signer().sign,
    openTracking: true,
    clickTracking: true,
    ...over,
  };
}

/** Every href of <a> tags, entity-decoded as a browser would read them. */
function hrefs(html: string): string[] {
  return [...html.matchAll(/<a\s(?:[^>"']|"[^"]*"|'[^']*')*>/gi)].map((m) => {
    const h = /\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(m[0]);
    return decodeHTMLAttribute(h?.[1] ?? h?.[2] ?? h?.[3] ?? '');
  });
}

describe('composeEmail: MJML', () => {
  it('renders MJML to a responsive table layout', async () => {
    const mjml = `<mjml>
      <mj-head><mj-preview>Spring is here</mj-preview></mj-head>
      <mj-body>
        <mj-section><mj-column>
          <mj-text>Hello Ada, our <a href="https://acme.example/spring">spring range</a> is out.</mj-text>
          <mj-button href="https://acme.example/shop">Shop now</mj-button>
        </mj-column></mj-section>
      </mj-body>
    </mjml>`;
    expect(isMjml(mjml)).toBe(true);
    const out = await composeEmail(input({ html: mjml, trackBase: null }));
    expect(out.html).toMatch(/^<!doctype html>/i);
    expect(out.html).toMatch(/<table[^>]*role="presentation"/);
    expect(out.html).not.toContain('<mj-');
    expect(hrefs(out.html!)).toEqual(['https://acme.example/spring', 'https://acme.example/shop']);
    expect(out.warnings).toEqual([]);
    // The text part comes from the rendered HTML: links spelled out, the hidden preheader left out.
    expect(out.text).toContain('spring range (https://acme.example/spring)');
    expect(out.text).toContain('Shop now (https://acme.example/shop)');
    expect(out.text).not.toContain('Spring is here');
  });

  it('renders invalid MJML softly and reports what is wrong, without server paths', async () => {
    const out = await composeEmail(input({ html: '<mjml><mj-body><mj-section><mj-column><mj-text color="notacolor">Hi</mj-text><mj-bogus/></mj-column></mj-section></mj-body></mjml>', trackBase: null }));
    expect(out.html).toContain('Hi');
    expect(out.warnings.length).toBe(2);
    expect(out.warnings.join('\n')).toMatch(/mj-bogus/);
    expect(out.warnings.join('\n')).not.toContain(process.cwd());
  });

  it('leaves plain HTML alone', async () => {
    expect(isMjml('<html><body>x</body></html>')).toBe(false);
    expect(isMjml('  <mjml lang="en"><mj-body></mj-body></mjml>')).toBe(true);
    const out = await composeEmail(input({ html: '<p>Hi</p>', trackBase: null }));
    expect(out.html).toBe('<p>Hi</p>');
  });
});

describe('composeEmail: plain text', () => {
  it('derives text from HTML: links as "text (url)", blocks on lines, entities decoded', () => {
    const text = htmlToPlainText(
      '<html><head><style>p{color:red}</style><title>T</title></head><body><h1>Hello &amp; welcome</h1><p>Line one<br>Line two &eacute; &#8364; &quot;q&quot;</p>' +
        '<p>See <a href="https://acme.example/a?x=1&amp;y=2">our site</a> or <a href="https://acme.example">https://acme.example</a>.</p>' +
        '<table><tr><td>Cell A</td><td>Cell B</td></tr></table><ul><li>One</li><li>Two</li></ul><img src="x.png" alt="logo"></body></html>',
    );
    expect(text).toBe(
      ['Hello & welcome', '', 'Line one', 'Line two é € "q"', '', 'See our site (https://acme.example/a?x=1&y=2) or https://acme.example.', '', 'Cell A', '', 'Cell B', '', ' * One', ' * Two'].join('\n'),
    );
  });

  it('keeps a given text part and never shows tracker URLs in a derived one', async () => {
    expect((await composeEmail(input({ text: 'Plain as given' }))).text).toBe('Plain as given');
    const out = await composeEmail(input({ html: '<p><a href="https://acme.example/x">x</a></p>' }));
    expect(out.text).toBe('x (https://acme.example/x)');
    expect(hrefs(out.html!)[0]).toMatch(/^https:\/\/rapport\.example\/t\/c\//);
  });

  it('sends text-only mail when there is no HTML', async () => {
    const out = await composeEmail(input({ html: undefined, text: 'Just text' }));
    expect(out).toEqual({ subject: 'Spring news', text: 'Just text', headers: {}, warnings: [] });
  });
});

describe('composeEmail: tracking', () => {
  const html = `<html><body>
    <a href="https://acme.example/a">A</a>
    <a class="btn" href='http://acme.example/b?x=1&amp;y=2#frag' target="_blank">B</a>
    <a href="mailto:help@acme.example">mail</a>
    <a href="tel:+15555550100">call</a>
    <a href="#top">top</a>
    <a href="${UNSUB}">Unsubscribe</a>
    <a data-rapport-notrack href="https://acme.example/private">private</a>
    <a name="anchor">no href</a>
    <area shape="rect" href="https://acme.example/map" alt="map">
  </body></html>`;

  it('points every http(s) link at the tracker, carrying the original', async () => {
    const s = signer();
    const out = await composeEmail(input({ html, sign: s.sign }));
    const links = hrefs(out.html!);
    expect(links.slice(0, 2).every((l) => l.startsWith(`${TRACK}/t/c/`))).toBe(true);
    expect(links.slice(0, 2).map((l) => new URL(l).searchParams.get('u'))).toEqual(['https://acme.example/a', 'http://acme.example/b?x=1&y=2#frag']);
    expect(out.html).toMatch(/<area shape="rect" href="https:\/\/rapport\.example\/t\/c\/[^"]+\?u=https%3A%2F%2Facme\.example%2Fmap" alt="map">/);
    // The token is the signer's, for this message and this link.
    const first = new URL(links[0]!);
    expect(first.pathname).toBe(`/t/c/${s.sign('msg-1', 'https://acme.example/a')}`);
    expect(s.calls).toContainEqual(['msg-1', 'http://acme.example/b?x=1&y=2#frag']);
    // Other attributes survive the rewrite.
    expect(out.html).toMatch(/<a class="btn" href="[^"]+" target="_blank">B<\/a>/);
  });

  it('leaves mailto:, tel:, anchors, the unsubscribe link and notrack links alone', async () => {
    const out = await composeEmail(input({ html }));
    expect(hrefs(out.html!).slice(2)).toEqual(['mailto:help@acme.example', 'tel:+15555550100', '#top', UNSUB, 'https://acme.example/private', '']);
  });

  it('adds the open pixel just before </body>', async () => {
    const s = signer();
    const out = await composeEmail(input({ sign: s.sign }));
    expect(out.html).toBe(
      `<html><body><p>Hello</p><img src="${TRACK}/t/o/${s.sign('msg-1')}" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" /></body></html>`,
    );
  });

  it('tracks nothing when told not to, or when there is no tracking base', async () => {
    const off = await composeEmail(input({ html, openTracking: false, clickTracking: false }));
    expect(off.html).toBe(html);
    const nobase = await composeEmail(input({ html, trackBase: null }));
    expect(nobase.html).toBe(html);
    const opensOnly = await composeEmail(input({ html, clickTracking: false }));
    expect(hrefs(opensOnly.html!)[0]).toBe('https://acme.example/a');
    expect(opensOnly.html).toContain('/t/o/');
  });

  it('property: any set of hrefs is rewritten and the original is recoverable from u', async () => {
    const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.webUrl({ withQueryParameters: true, withFragments: true }), { minLength: 1, maxLength: 8 }), async (urls) => {
        const s = signer();
        const body = urls.map((u, i) => `<p><a href="${escape(u)}" title="link ${i}">link ${i}</a></p>`).join('\n');
        const out = await composeEmail(input({ html: `<html><body>${body}</body></html>`, unsubscribeUrl: null, sign: s.sign }));
        const links = hrefs(out.html!);
        expect(links).toHaveLength(urls.length);
        links.forEach((link, i) => {
          const parsed = new URL(link);
          expect(`${parsed.origin}${parsed.pathname}`).toBe(`${TRACK}/t/c/${s.sign('msg-1', urls[i]!)}`);
          expect(parsed.searchParams.get('u')).toBe(urls[i]);
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe('composeEmail: marketing footer and List-Unsubscribe', () => {
  it('adds the postal address and unsubscribe link to both parts of marketing mail only', async () => {
    const marketing = await composeEmail(input({ marketing: true, text: 'Hello' }));
    expect(marketing.html).toContain('Acme Inc.<br>1 Main Street<br>Springfield');
    expect(hrefs(marketing.html!)).toContain(UNSUB);
    expect(marketing.html!.indexOf('Acme Inc.')).toBeLessThan(marketing.html!.indexOf('/t/o/'));
    expect(marketing.text).toBe(`Hello\n\n--\nAcme Inc.\n1 Main Street\nSpringfield\nUnsubscribe: ${UNSUB}\n`);

    const transactional = await composeEmail(input({ marketing: false, text: 'Hello' }));
    expect(transactional.html).not.toContain('Acme Inc.');
    expect(transactional.text).toBe('Hello');
    expect(transactional.headers).toEqual({});
  });

  it('escapes the postal address into the HTML', async () => {
    const out = await composeEmail(input({ marketing: true, postalAddress: 'A <b>&</b> "B"' }));
    expect(out.html).toContain('A &lt;b&gt;&amp;&lt;/b&gt; &quot;B&quot;');
  });

  it('sets the headers exactly as RFC 8058 asks', async () => {
    expect((await composeEmail(input({ marketing: true }))).headers).toEqual({
      'List-Unsubscribe': `<${UNSUB}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
    expect((await composeEmail(input({ marketing: true, unsubscribeMailto: 'mailto:unsub@acme.example?subject=unsubscribe' }))).headers).toEqual({
      'List-Unsubscribe': `<${UNSUB}>, <mailto:unsub@acme.example?subject=unsubscribe>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
  });

  it('leaves out one-click for a non-https URL and warns when marketing mail lacks what the law asks', async () => {
    const http = await composeEmail(input({ marketing: true, unsubscribeUrl: 'http://localhost:3000/u/t' }));
    expect(http.headers).toEqual({ 'List-Unsubscribe': '<http://localhost:3000/u/t>' });
    expect(http.warnings.join(' ')).toMatch(/not https/);
    const bare = await composeEmail(input({ marketing: true, unsubscribeUrl: null, postalAddress: null }));
    expect(bare.headers).toEqual({});
    expect(bare.warnings).toHaveLength(2);
  });
});

describe('e-mail helpers', () => {
  it('keeps only safe extra headers', () => {
    expect(safeHeaders({ 'X-Campaign': 'spring', 'List-Unsubscribe': '<https://x/u>', From: 'evil@x.example', 'Message-ID': '<x@y>', 'X-Bad': 'a\r\nBcc: v@x', 'Bad Name': 'x' })).toEqual({
      'X-Campaign': 'spring',
      'List-Unsubscribe': '<https://x/u>',
    });
  });

  it('parses mailboxes', () => {
    expect(parseMailbox('Acme News <news@acme.example>')).toEqual({ name: 'Acme News', email: 'news@acme.example' });
    expect(parseMailbox('"Acme, Inc." <news@acme.example>')).toEqual({ name: 'Acme, Inc.', email: 'news@acme.example' });
    expect(parseMailbox('news@acme.example')).toEqual({ name: null, email: 'news@acme.example' });
    expect(parseMailbox('news')).toBeNull();
    expect(parseMailbox('a <b@c.d> <e@f.g>')).toBeNull();
  });
});
