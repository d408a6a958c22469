import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SandboxProvider, sandboxRegistry } from '../src/engine/providers.js';
import { startServer } from '../src/server.js';

const dir = mkdtempSync(join(tmpdir(), 'rapport-engine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the worker inside rapport start', () => {
  it('takes an event through a published journey to the provider in well under a second, woken by notification', async () => {
    const sandbox = new SandboxProvider();
    let delivered: (at: number) => void = () => {};
    const arrived = new Promise<number>((resolve) => (delivered = resolve));
    const onSend = sandbox.send.bind(sandbox);
    sandbox.send = (m) => {
      delivered(performance.now());
      return onSend(m);
    };
    // A poll interval far longer than the test: only the notification can wake the worker in time.
    const server = await startServer(loadConfig({ PORT: '0', RAPPORT_DATA_DIR: dir, RAPPORT_POLL_MS: '60000' }), {
      logger: pino({ enabled: false }),
      providers: sandboxRegistry(sandbox),
    });
    try {
      const key = server.firstTenant!.apiKey;
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${server.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      await call('PATCH', '/v1/tenant', { send_window: { days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00' }, quiet_hours: {} });
      const contact = await call('POST', '/v1/contacts', { external_id: 'c1', email: 'ada@example.com', attributes: { first_name: 'Ada' } });
      await call('POST', `/v1/contacts/${contact.body.id}/consent`, { channel: 'email', status: 'granted', type: 'express', source: 'test' });
      const journey = await call('POST', '/v1/journeys', {
        name: 'welcome',
        definition: { entry: { event: 'signed_up' }, nodes: [{ id: 'hi', type: 'send', channel: 'email', content: { subject: 'Hi {{ contact.first_name }}', body: 'Welcome' } }] },
      });
      expect(journey.status).toBe(201);
      expect((await call('POST', `/v1/journeys/${journey.body.id}/publish`)).status).toBe(201);
      // Let the worker go idle: it now sleeps for the poll interval unless notified.
      await new Promise((r) => setTimeout(r, 300));

      const sentAt = performance.now();
      const ev = await call('POST', '/v1/events', { name: 'signed_up', contact: { external_id: 'c1' } });
      expect(ev.status).toBe(202);
      const took = (await Promise.race([arrived, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no send within 5 s')), 5000))])) - sentAt;
      expect(took).toBeLessThan(1000);
      expect(sandbox.sent.at(-1)?.message).toMatchObject({ channel: 'email', to: 'ada@example.com', subject: 'Hi Ada', body: 'Welcome' });
    } finally {
      await server.close();
    }
  });
});
