import { describe, expect, it } from 'vitest';
import { SandboxProvider, sandboxRegistry } from '../engine/providers.js';
import { ProviderRouter } from './router.js';
import type { ChannelAdapter, OutgoingMessage, ProviderAccount, SendResult } from './types.js';

const msg = (n = 1): OutgoingMessage => ({ id: `m${n}`, tenant_id: 't1', channel: 'sms', to: '+14155550100', idempotency_key: `e:n:${n}`, body: 'hi' });

function account(id: string, priority: number, config: Record<string, unknown> = {}): ProviderAccount {
  return { id, tenant_id: 't1', name: id, kind: id === 'b' ? 'vonage' : 'twilio', channel: 'sms', priority, credentials: {}, config: { from: '+14155550199', ...config } };
}

/** An adapter whose answers are scripted per account; it records who was called. */
function scripted(answers: Record<string, () => SendResult>, calls: string[], rate?: number): Map<'twilio' | 'vonage', ChannelAdapter> {
  const make = (kind: 'twilio' | 'vonage'): ChannelAdapter => ({
    kind,
    channels: ['sms'],
    check: () => [],
    ...(rate ? { defaultRatePerSecond: rate } : {}),
    send: (_m, ctx) => {
      calls.push(ctx.account.id);
      return Promise.resolve(answers[ctx.account.id]!());
    },
  });
  return new Map([
    ['twilio', make('twilio')],
    ['vonage', make('vonage')],
  ]);
}

const ok = (): SendResult => ({ ok: true, provider_message_id: 'x' });
const down = (): SendResult => ({ ok: false, permanent: false, code: 'server', error: 'HTTP 503' });

describe('ProviderRouter', () => {
  it('sends a channel without accounts to the sandbox', async () => {
    const sandbox = new SandboxProvider();
    const router = new ProviderRouter({ adapters: new Map(), accounts: () => Promise.resolve([]), fallback: sandboxRegistry(sandbox) });
    const d = await router.send(msg());
    expect(d).toMatchObject({ provider: 'sandbox', account_id: null, result: { ok: true } });
    expect(sandbox.sent).toHaveLength(1);
  });

  it('fails over to the next account when the first is down, and opens its circuit after five failures', async () => {
    const calls: string[] = [];
    let t = 0;
    const router = new ProviderRouter({
      adapters: scripted({ a: down, b: ok }, calls),
      accounts: () => Promise.resolve([account('a', 1), account('b', 2)]),
      fallback: sandboxRegistry(),
      now: () => t,
    });
    for (let i = 0; i < 5; i++) expect(await router.send(msg(i))).toMatchObject({ account_id: 'b', result: { ok: true } });
    expect(calls).toEqual(['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
    expect(router.circuit('a')).toBe('open');
    calls.length = 0;
    await router.send(msg(6));
    expect(calls).toEqual(['b']);
    t += 30_001;
    expect(router.circuit('a')).toBe('half-open');
  });

  it('sends a reply from the account that received what it answers, failing over as usual', async () => {
    const calls: string[] = [];
    let bUp = true;
    const router = new ProviderRouter({
      adapters: scripted({ a: ok, b: () => (bUp ? ok() : down()) }, calls),
      accounts: () => Promise.resolve([account('a', 1), account('b', 2)]),
      fallback: sandboxRegistry(),
    });
    expect(await router.send({ ...msg(), via_account: 'b' })).toMatchObject({ account_id: 'b' });
    bUp = false;
    expect(await router.send({ ...msg(2), via_account: 'b' })).toMatchObject({ account_id: 'a' });
    // An account no longer configured for the channel is no preference at all.
    expect(await router.send({ ...msg(3), via_account: 'gone' })).toMatchObject({ account_id: 'a' });
    expect(calls).toEqual(['b', 'b', 'a', 'a']);
  });

  it('does not fail a timed-out send over to another provider, which might send it twice', async () => {
    const calls: string[] = [];
    const router = new ProviderRouter({
      adapters: scripted({ a: () => ({ ok: false, permanent: false, code: 'timeout', error: 'no answer within 15000 ms' }), b: ok }, calls),
      accounts: () => Promise.resolve([account('a', 1), account('b', 2)]),
      fallback: sandboxRegistry(),
    });
    expect(await router.send(msg())).toMatchObject({ account_id: 'a', result: { ok: false, code: 'timeout' } });
    expect(calls).toEqual(['a']);
  });

  it('lets one message through a half-open circuit and keeps it closed on success', async () => {
    const calls: string[] = [];
    let t = 0;
    let aUp = false;
    const router = new ProviderRouter({
      adapters: scripted({ a: () => (aUp ? ok() : down()), b: ok }, calls),
      accounts: () => Promise.resolve([account('a', 1), account('b', 2)]),
      fallback: sandboxRegistry(),
      now: () => t,
    });
    for (let i = 0; i < 5; i++) await router.send(msg(i));
    expect(router.circuit('a')).toBe('open');
    t += 31_000;
    aUp = true;
    calls.length = 0;
    await router.send(msg(10));
    expect(calls).toEqual(['a']);
    expect(router.circuit('a')).toBe('closed');
  });

  it('does not fail over a failure that is the message\'s', async () => {
    const calls: string[] = [];
    const router = new ProviderRouter({
      adapters: scripted({ a: () => ({ ok: false, permanent: true, code: 'invalid_recipient', error: 'not a mobile number' }), b: ok }, calls),
      accounts: () => Promise.resolve([account('a', 1), account('b', 2)]),
      fallback: sandboxRegistry(),
    });
    expect(await router.send(msg())).toMatchObject({ account_id: 'a', result: { ok: false, code: 'invalid_recipient' } });
    expect(calls).toEqual(['a']);
    expect(router.circuit('a')).toBe('closed');
  });

  it('answers unavailable, naming the open circuits, when every provider is down', async () => {
    let t = 0;
    const router = new ProviderRouter({ adapters: scripted({ a: down }, []), accounts: () => Promise.resolve([account('a', 1)]), fallback: sandboxRegistry(), now: () => t });
    for (let i = 0; i < 5; i++) await router.send(msg(i));
    t += 10;
    const d = await router.send(msg(9));
    expect(d.result).toMatchObject({ ok: false, permanent: false, code: 'unavailable' });
    expect(d.result.ok === false && d.result.error).toMatch(/every sms provider .* failing \(1 circuit open\)/);
  });

  it('keeps a sender\'s throughput: waits for near slots and requeues messages whose slot is far', async () => {
    const calls: string[] = [];
    const t = 0;
    const waits: number[] = [];
    const router = new ProviderRouter({
      adapters: scripted({ a: ok }, calls, 2),
      accounts: () => Promise.resolve([account('a', 1)]),
      fallback: sandboxRegistry(),
      now: () => t,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    const results = await Promise.all([1, 2, 3, 4].map((n) => router.send(msg(n))));
    // 2 per second: slots at 0, 500, 1000 ms; the fourth (1500 ms away) goes back to the outbox.
    expect(waits).toEqual([500, 1000]);
    expect(results.map((r) => r.result.ok)).toEqual([true, true, true, false]);
    expect(results[3]!.result).toMatchObject({ code: 'rate_limited', retry_after_ms: 1500 });
    expect(calls).toHaveLength(3);
  });

  it('divides a sender\'s rate among worker processes, and an account setting overrides the default', async () => {
    const waits: number[] = [];
    const router = new ProviderRouter({
      adapters: scripted({ a: ok }, [], 80),
      accounts: () => Promise.resolve([account('a', 1, { rate_per_second: 10 })]),
      fallback: sandboxRegistry(),
      processes: 2,
      now: () => 0,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await Promise.all([1, 2, 3].map((n) => router.send(msg(n))));
    expect(waits).toEqual([200, 400]);
  });

  it('turns an adapter that throws into a temporary failure and tries the next account', async () => {
    const calls: string[] = [];
    const adapters = scripted({ b: ok }, calls);
    adapters.set('twilio', { kind: 'twilio', channels: ['sms'], check: () => [], send: () => Promise.reject(new Error('boom')) });
    const router = new ProviderRouter({ adapters, accounts: () => Promise.resolve([account('a', 1), account('b', 2)]), fallback: sandboxRegistry() });
    expect(await router.send(msg())).toMatchObject({ account_id: 'b', result: { ok: true } });
  });
});
