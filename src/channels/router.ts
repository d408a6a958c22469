import type { SendChannel } from '../core/journey/definition.js';
import type { Delivery, ProviderRegistry } from '../engine/providers.js';
import { keepAliveRequester, type HttpRequester } from './http-client.js';
import type { ChannelAdapter, FailureCode, OutgoingMessage, ProviderAccount, ProviderKind, SendResult } from './types.js';

/**
 * Picks the provider account for each message and survives the ones that fail:
 *
 * - a tenant's accounts for the channel are tried in priority order; a channel with none goes
 *   to the sandbox, which is what a new tenant has;
 * - a failure that is the provider's (5xx, network, bad credentials) counts against the account
 *   and moves the message to the next account; five in a row open the account's circuit for
 *   30 s, during which it is skipped, then one message tries it again (half-open). A timeout
 *   counts too but is not failed over: the provider may have taken the message, and another
 *   would send it again; it goes back to the dispatcher's retries, on the record;
 * - with every circuit open the message waits (`unavailable`) without counting an attempt;
 * - a failure that is the message's (invalid recipient, unsubscribed, rejected content) is final:
 *   another provider would refuse it too;
 * - throughput per sender (1 msg/s for a US long code, 80/s for a WhatsApp number, or the
 *   account's `rate_per_second`) is kept by handing out send slots; a message whose slot is
 *   more than a second away is not held: it goes back to the outbox with a rate_limited answer
 *   and its slot time, without counting an attempt.
 *
 * Circuits and slots are per process: with N worker processes a sender's limit is shared by
 * dividing it (`rate_per_second / processes`, see docs/providers.md).
 */

export interface ProviderRouterOptions {
  adapters: ReadonlyMap<ProviderKind, ChannelAdapter>;
  /** The tenant's enabled accounts for a channel, in priority order, credentials decrypted. */
  accounts(tenantId: string, channel: SendChannel): Promise<ProviderAccount[]>;
  /** Where a channel without accounts goes. */
  fallback: ProviderRegistry;
  fetch?: typeof fetch;
  /** The keep-alive HTTP client; the process-wide one by default, none when `fetch` is given (tests that bring their own). */
  request?: HttpRequester;
  publicUrl?: string | null;
  timeoutMs?: number;
  /** Worker processes sharing each sender's throughput (divides it). */
  processes?: number;
  breaker?: { failures: number; openMs: number };
  /** A slot further away than this is not waited for: the message is requeued. */
  maxWaitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Failures that say something about the provider, not the message. */
const PROVIDER_FAULTS: ReadonlySet<FailureCode> = new Set(['server', 'timeout', 'network', 'auth', 'config']);

export class ProviderRouter implements ProviderRegistry {
  private readonly circuits = new Map<string, { failures: number; openUntil: number }>();
  private readonly nextSlot = new Map<string, number>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  private readonly request: HttpRequester | undefined;

  constructor(private readonly opts: ProviderRouterOptions) {
    this.request = opts.request ?? (opts.fetch ? undefined : sharedRequester());
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async send(msg: OutgoingMessage): Promise<Delivery> {
    const configured = await this.opts.accounts(msg.tenant_id, msg.channel);
    const preferred = msg.via_account ? configured.find((a) => a.id === msg.via_account) : undefined;
    const accounts = preferred ? [preferred, ...configured.filter((a) => a !== preferred)] : configured;
    if (!accounts.length) return this.opts.fallback.send(msg);
    let last: Delivery | null = null;
    let skipped = 0;
    for (const account of accounts) {
      const adapter = this.opts.adapters.get(account.kind);
      if (!adapter) {
        last = { provider: account.kind, account_id: account.id, result: { ok: false, permanent: false, code: 'config', error: `no adapter for provider kind ${account.kind}` } };
        continue;
      }
      if (!this.admit(account.id)) {
        skipped++;
        continue;
      }
      const wait = this.reserve(account, adapter);
      if (wait > (this.opts.maxWaitMs ?? 1000)) {
        this.release(account.id);
        return { provider: account.kind, account_id: account.id, result: { ok: false, permanent: false, code: 'rate_limited', error: `sender throughput limit of ${this.rateOf(account, adapter)}/s`, retry_after_ms: wait } };
      }
      if (wait > 0) await this.sleep(wait);
      let result: SendResult;
      try {
        result = await adapter.send(msg, {
          account,
          fetch: this.opts.fetch ?? fetch,
          ...(this.request ? { request: this.request } : {}),
          publicUrl: this.opts.publicUrl ?? null,
          timeoutMs: this.opts.timeoutMs ?? 15_000,
        });
      } catch (err) {
        // Adapters return failures as values; a throw is a bug or an unexpected library error.
        result = { ok: false, permanent: false, code: 'server', error: `adapter error: ${(err as Error).message}` };
      }
      const delivery: Delivery = { provider: account.kind, account_id: account.id, result };
      if (result.ok) {
        this.succeeded(account.id);
        return delivery;
      }
      if (result.code === 'timeout') {
        // The provider may have taken it and only the answer was lost: another provider would
        // send it a second time. It goes back to the dispatcher, whose retry is on the record.
        this.failed(account.id);
        return delivery;
      }
      if (result.code && PROVIDER_FAULTS.has(result.code)) {
        this.failed(account.id);
        last = delivery;
        continue;
      }
      this.release(account.id);
      // Rate limits: another account may have room; the message is not at fault.
      if (result.code === 'rate_limited') {
        last = delivery;
        continue;
      }
      return delivery;
    }
    if (last) return last;
    return {
      provider: accounts[0]!.kind,
      account_id: accounts[0]!.id,
      result: { ok: false, permanent: false, code: 'unavailable', error: `every ${msg.channel} provider of this tenant is failing (${skipped} circuit${skipped === 1 ? '' : 's'} open)`, retry_after_ms: this.opts.breaker?.openMs ?? 30_000 },
    };
  }

  /** The circuit's state, for operators and tests. */
  circuit(accountId: string): 'closed' | 'open' | 'half-open' {
    const c = this.circuits.get(accountId);
    if (!c || c.failures < this.threshold()) return 'closed';
    return this.now() < c.openUntil ? 'open' : 'half-open';
  }

  private threshold(): number {
    return this.opts.breaker?.failures ?? 5;
  }

  /** Closed: go. Open: skip. Past its open time: let this one message try, and keep the rest out. */
  private admit(accountId: string): boolean {
    const c = this.circuits.get(accountId);
    if (!c || c.failures < this.threshold()) return true;
    const t = this.now();
    if (t < c.openUntil) return false;
    c.openUntil = t + (this.opts.breaker?.openMs ?? 30_000);
    return true;
  }

  private failed(accountId: string): void {
    const c = this.circuits.get(accountId) ?? { failures: 0, openUntil: 0 };
    c.failures++;
    if (c.failures >= this.threshold()) c.openUntil = this.now() + (this.opts.breaker?.openMs ?? 30_000);
    this.circuits.set(accountId, c);
  }

  private succeeded(accountId: string): void {
    this.circuits.delete(accountId);
  }

  /** A half-open trial that ended without judging the provider lets the next message try. */
  private release(accountId: string): void {
    const c = this.circuits.get(accountId);
    if (c && c.failures >= this.threshold()) c.openUntil = this.now();
  }

  private rateOf(account: ProviderAccount, adapter: ChannelAdapter): number {
    const configured = Number(account.config.rate_per_second);
    const rate = Number.isFinite(configured) && configured > 0 ? configured : (adapter.defaultRatePerSecond ?? Infinity);
    return rate / Math.max(1, this.opts.processes ?? 1);
  }

  /** Reserves the sender's next slot when it is near enough to wait for; returns the wait in ms. */
  private reserve(account: ProviderAccount, adapter: ChannelAdapter): number {
    const rate = this.rateOf(account, adapter);
    if (!Number.isFinite(rate)) return 0;
    const sender = typeof account.config.from === 'string' ? account.config.from : typeof account.config.phone_number_id === 'string' ? account.config.phone_number_id : '';
    const key = `${account.id}|${sender}`;
    const t = this.now();
    const slot = Math.max(t, this.nextSlot.get(key) ?? 0);
    const wait = slot - t;
    if (wait > (this.opts.maxWaitMs ?? 1000)) return wait;
    this.nextSlot.set(key, slot + 1000 / rate);
    if (this.nextSlot.size > 10_000) {
      for (const [k, v] of this.nextSlot) if (v < t) this.nextSlot.delete(k);
    }
    return wait;
  }
}

let shared: HttpRequester | undefined;

/** One set of keep-alive connections per process, shared by every router in it. */
function sharedRequester(): HttpRequester {
  shared ??= keepAliveRequester();
  return shared;
}
