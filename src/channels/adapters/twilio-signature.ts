import { createHash, createHmac } from 'node:crypto';
import { safeEqual } from '../http.js';
import type { InboundRequest } from '../types.js';

/**
 * Twilio's X-Twilio-Signature (https://www.twilio.com/docs/usage/webhooks/webhooks-security):
 *
 *   base64( HMAC-SHA1( key = the account's Auth Token,
 *                      data = the full URL Twilio requested (scheme, host, path, query)
 *                             + every POST parameter, sorted by name, as name + value ) )
 *
 * Parameters are the decoded form fields, not the raw bytes; a GET request signs the URL alone.
 * A JSON body is not signed field by field: Twilio adds `bodySHA256=<hex SHA-256 of the body>` to
 * the URL's query and signs that URL with no parameters, so the body is checked against the hash.
 *
 * Twilio's own validators accept the URL with and without the scheme's default port (":443"),
 * because Twilio's side has signed both ways; this does the same.
 */

export type SignedParams = Record<string, string | readonly string[]> | ReadonlyArray<readonly [string, string]>;

/** The exact string Twilio signs: the URL, then name + value for each parameter in name order. */
export function twilioSignatureBase(url: string, params: SignedParams = {}): string {
  const grouped = new Map<string, string[]>();
  const pairs: ReadonlyArray<readonly [string, string | readonly string[]]> = Array.isArray(params)
    ? (params as ReadonlyArray<readonly [string, string]>)
    : Object.entries(params as Record<string, string | readonly string[]>);
  for (const [name, value] of pairs) {
    const values = grouped.get(name) ?? [];
    for (const v of typeof value === 'string' ? [value] : value) values.push(v);
    grouped.set(name, values);
  }
  let data = url;
  // Default sort compares UTF-16 code units: Twilio's "Unix-style case-sensitive" order for the
  // ASCII names it sends. A repeated name contributes each distinct value in order, as the
  // reference validators do.
  for (const name of [...grouped.keys()].sort()) {
    for (const value of [...new Set(grouped.get(name))].sort()) data += name + value;
  }
  return data;
}

/** The X-Twilio-Signature Twilio would send for this URL and these parameters. */
export function twilioSignature(authToken: string, url: string, params: SignedParams = {}): string {
  return createHmac('sha1', authToken).update(twilioSignatureBase(url, params), 'utf8').digest('base64');
}

/** The hex SHA-256 Twilio puts in `bodySHA256` for a JSON body. */
export function twilioBodyHash(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The URL as given, and with the default port added or removed: Twilio has signed each form. */
function urlVariants(url: string): string[] {
  const out = new Set<string>([url]);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [...out];
  }
  out.add(parsed.toString());
  const defaultPort = parsed.protocol === 'https:' ? '443' : parsed.protocol === 'http:' ? '80' : null;
  // URL drops a default port, so an empty port means the default one.
  if (defaultPort && parsed.port === '') {
    const withoutPort = new URL(parsed.toString());
    withoutPort.port = '';
    out.add(withoutPort.toString());
    // The ported form cannot be built through URL (it would drop the port again).
    const auth = parsed.username ? `${parsed.username}${parsed.password ? `:${parsed.password}` : ''}@` : '';
    out.add(`${parsed.protocol}//${auth}${parsed.hostname}:${defaultPort}${parsed.pathname}${parsed.search}`);
  }
  return [...out];
}

/** True when `signature` is Twilio's signature of this URL and these parameters. */
export function verifyTwilioSignature(authToken: string, signature: string | undefined, url: string, params: SignedParams = {}): boolean {
  if (!authToken || !signature) return false;
  let ok = false;
  // Every variant is compared, so the time taken does not tell which one matched.
  for (const candidate of urlVariants(url)) {
    if (safeEqual(signature, twilioSignature(authToken, candidate, params))) ok = true;
  }
  return ok;
}

/** True when a JSON-bodied request is signed over its URL and the URL's bodySHA256 is the body's. */
export function verifyTwilioBodySignature(authToken: string, signature: string | undefined, url: string, body: string | Buffer): boolean {
  let hash: string | null;
  try {
    hash = new URL(url).searchParams.get('bodySHA256');
  } catch {
    return false;
  }
  if (!hash) return false;
  const signed = verifyTwilioSignature(authToken, signature, url);
  return safeEqual(hash, twilioBodyHash(body)) && signed;
}

/** The name/value pairs of an application/x-www-form-urlencoded body, repeats kept, in order. */
export function formPairs(body: Buffer | string): Array<[string, string]> {
  return [...new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))];
}

/**
 * Whether an inbound request carries a valid X-Twilio-Signature for this account's Auth Token:
 * the form fields of a POST, nothing for a GET, the bodySHA256 scheme for any other body.
 */
export function verifyTwilioRequest(req: InboundRequest, authToken: string | undefined): boolean {
  if (!authToken) return false;
  const signature = req.headers['x-twilio-signature'];
  if (!signature) return false;
  if (req.method === 'GET') return verifyTwilioSignature(authToken, signature, req.url);
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('application/x-www-form-urlencoded') || (!type && !req.url.includes('bodySHA256='))) {
    return verifyTwilioSignature(authToken, signature, req.url, formPairs(req.rawBody));
  }
  return verifyTwilioBodySignature(authToken, signature, req.url, req.rawBody);
}
