import { lookup as systemLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { keepAliveRequester, type HttpRequester } from './http-client.js';

/**
 * Keeps journey webhooks from reaching the network Rapport runs in. A tenant writes the URL of an
 * action webhook and reads the answer back into enrollment variables, so without a guard any
 * tenant could ask the server for its database port, the cloud metadata service
 * (169.254.169.254) or any service on the private network. The webhook channel and result
 * webhooks (whose URL may come from an event) call tenant URLs too and use the same guard
 * (channels/delivery.ts builds one for all three).
 *
 * A request is refused before it leaves when its URL is not http(s), or when its host is, or
 * resolves to, an address outside public unicast space (loopback, private, link-local,
 * unique-local, carrier-grade NAT, multicast, unspecified, reserved, and the IPv4 forms hidden
 * in IPv6: mapped, NAT64, 6to4). A host with several addresses is refused when any one is.
 * The check runs inside the HTTP agent's `lookup`, so the socket connects to exactly the
 * addresses that were checked: no second resolution, no window for a DNS rebinding. Literal IPs
 * never reach `lookup` and are checked before the request. Redirects are not followed (node:http
 * does not), so a 3xx cannot lead the request elsewhere.
 *
 * Self-hosters whose services live on a private network allow their ranges with
 * RAPPORT_WEBHOOK_ALLOW_PRIVATE (see docs/operations.md).
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Ranges the operator lets webhooks reach although they are not public: all of them, or these CIDRs. */
export type PrivateAllowList = 'all' | readonly (readonly [Address, number])[];

/** No private range allowed: the default. */
export const NO_PRIVATE: PrivateAllowList = [];

/** Resolves a host name to every address it has; the system resolver unless a test stubs it. */
export type HostLookup = (hostname: string) => Promise<{ address: string; family: number }[]>;

/** A request refused for where it was going; the message starts with `blocked_destination:`. */
export class BlockedDestinationError extends Error {
  readonly code = 'blocked_destination';
  constructor(reason: string) {
    super(`blocked_destination: ${reason}`);
    this.name = 'BlockedDestinationError';
  }
}

/**
 * Reads "all" or comma-separated CIDRs ("10.0.0.0/8, fd00::/8"); a bare address stands for
 * itself alone. Empty or unset allows nothing. Throws on anything else.
 */
export function parsePrivateAllowList(raw: string | undefined): PrivateAllowList {
  const text = raw?.trim() ?? '';
  if (!text) return NO_PRIVATE;
  if (text.toLowerCase() === 'all') return 'all';
  return text.split(',').map((part) => {
    const entry = part.trim();
    const [address = '', bits, ...rest] = entry.split('/');
    // node:net's strict forms only: ipaddr.js would also read "10/8" as 0.0.0.10/8.
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!family || rest.length || !(prefix >= 0 && prefix <= max)) throw new Error(`${JSON.stringify(entry)} is not a CIDR range or an IP address`);
    return [ipaddr.parse(address), prefix] as const;
  });
}

const WORDS: Record<string, string> = {
  private: 'a private address',
  loopback: 'a loopback address',
  linkLocal: 'a link-local address',
  uniqueLocal: 'a unique-local address',
  carrierGradeNat: 'a carrier-grade NAT address',
  multicast: 'a multicast address',
  unspecified: 'an unspecified address',
  broadcast: 'the broadcast address',
  deprecatedSiteLocal: 'a site-local address',
};

/** IPv6 forms that carry an IPv4 address a packet may end up at, and where it sits. */
const IPV4_INSIDE: readonly { name: string; range: readonly [ipaddr.IPv6, number]; at: number }[] = [
  { name: 'IPv4-mapped', range: ipaddr.IPv6.parseCIDR('::ffff:0:0/96'), at: 12 },
  { name: 'IPv4-translated', range: ipaddr.IPv6.parseCIDR('::ffff:0:0:0/96'), at: 12 },
  { name: 'NAT64', range: ipaddr.IPv6.parseCIDR('64:ff9b::/96'), at: 12 },
  { name: '6to4', range: ipaddr.IPv6.parseCIDR('2002::/16'), at: 2 },
  // Deprecated IPv4-compatible (::a.b.c.d); :: and ::1 are classified before this is looked at.
  { name: 'IPv4-compatible', range: ipaddr.IPv6.parseCIDR('::/96'), at: 12 },
];

function classify(a: Address): string | null {
  const range = a.range();
  if (range === 'unicast') return null;
  return WORDS[range] ?? `a reserved address (${range})`;
}

function allowed(a: Address, allow: PrivateAllowList): boolean {
  if (allow === 'all') return true;
  return allow.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
}

/**
 * Why a request may not go to this address ("a private address", "a loopback address (IPv4-mapped
 * 127.0.0.1)"), or null when it may: public unicast, or inside the allow-list.
 */
export function destinationProblem(address: string, allow: PrivateAllowList): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const a = ipaddr.parse(address);
  if (allowed(a, allow)) return null;
  if (a.kind() === 'ipv6' && !['unspecified', 'loopback'].includes(a.range())) {
    const v6 = a as ipaddr.IPv6;
    for (const form of IPV4_INSIDE) {
      if (!v6.match(form.range[0], form.range[1])) continue;
      const bytes = v6.toByteArray().slice(form.at, form.at + 4);
      const inner = ipaddr.fromByteArray(bytes);
      if (allowed(inner, allow)) return null;
      const why = classify(inner);
      return why ? `${why} (${form.name} ${inner.toString()})` : null;
    }
  }
  return classify(a);
}

export interface DestinationGuardOptions {
  /** Private ranges that may be reached anyway; none by default. */
  allowPrivate?: PrivateAllowList;
  /** The resolver; the system's (dns.lookup, every address) by default. */
  lookup?: HostLookup;
}

const resolveAll: HostLookup = (hostname) => systemLookup(hostname, { all: true });

/**
 * An HTTP client (keep-alive, as provider calls) that refuses destinations the guard forbids
 * with a BlockedDestinationError and connects only to addresses it has checked.
 */
export function guardedRequester(opts: DestinationGuardOptions = {}): HttpRequester & { close(): void } {
  const allow = opts.allowPrivate ?? NO_PRIVATE;
  const resolve = opts.lookup ?? resolveAll;
  const checkedLookup: LookupFunction = (hostname, options, callback) => {
    resolve(hostname)
      .then((found) => {
        if (!found.length) throw new Error(`${hostname} has no address`);
        for (const { address } of found) {
          const why = destinationProblem(address, allow);
          if (why) throw new BlockedDestinationError(`${hostname} resolves to ${address}, ${why}`);
        }
        const usable = options.family === 4 || options.family === 6 ? found.filter((f) => f.family === options.family) : found;
        if (!usable.length) throw new Error(`${hostname} has no IPv${options.family} address`);
        return usable;
      })
      .then(
        (usable) => (options.all ? callback(null, usable) : callback(null, usable[0]!.address, usable[0]!.family)),
        (err: unknown) => callback(err as NodeJS.ErrnoException, []),
      );
  };
  const inner = keepAliveRequester({ lookup: checkedLookup });
  const request: HttpRequester = async (url, init, timeoutMs) => {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BlockedDestinationError(`only http and https URLs are called, not ${u.protocol}`);
    // A literal address connects without a lookup, so it is checked here.
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const why = isIP(host) ? destinationProblem(host, allow) : null;
    if (why) throw new BlockedDestinationError(`${host} is ${why}`);
    return inner(url, init, timeoutMs);
  };
  return Object.assign(request, { close: () => inner.close() });
}
