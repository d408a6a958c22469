import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpBackend } from '../src/cli/backend-http.js';
import type { ContactFields } from '../src/core/contact.js';
import { ConflictError, InputError, NotFoundError } from '../src/core/errors.js';

const TENANT = '0b6f7c3e-0000-4000-8000-000000000001';
const row = (external_id: string): ContactFields => ({ external_id, name: null, phone: null, email: null, whatsapp: null, time_zone: null, locale: null, attributes: null, tags: null });

/** A stand-in for a Rapport server: answers each request with the next canned reply, and records what it got. */
async function fakeServer(replies: { status: number; body: unknown }[]) {
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: any }[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: text ? JSON.parse(text) : undefined });
      const reply = replies.shift() ?? { status: 500, body: { error: { code: 'internal_error', message: 'no reply left' } } };
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, backend: httpBackend({ url, adminToken: 'local-admin-token', pid: 4242 }) };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('the HTTP backend', () => {
  it('acts for the tenant with the admin token and the tenant header', async () => {
    const { seen, backend } = await fakeServer([{ status: 200, body: { results: [{ index: 0, status: 'created', id: TENANT }] } }]);
    await backend.upsertContacts(TENANT, [row('a')]);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/contacts/bulk', headers: { authorization: 'Bearer local-admin-token', 'x-rapport-tenant': TENANT } });
    expect(seen[0]!.body.contacts[0].external_id).toBe('a');
  });

  it("turns a server's refusal of some rows into rejected rows and sends the others again", async () => {
    const { seen, backend } = await fakeServer([
      { status: 400, body: { error: { code: 'invalid_request', message: 'x', fields: [{ field: 'contacts[1].name', in: 'body', message: 'is too long here' }] } } },
      {
        status: 200,
        body: {
          results: [
            { index: 0, status: 'created', id: TENANT },
            { index: 1, status: 'updated', id: TENANT },
          ],
        },
      },
    ]);
    const outcomes = await backend.upsertContacts(TENANT, [row('a'), row('b'), row('c')]);
    expect(seen[1]!.body.contacts.map((c: ContactFields) => c.external_id)).toEqual(['a', 'c']);
    expect(outcomes).toEqual([
      { index: 0, status: 'created', id: TENANT },
      { index: 1, status: 'rejected', field: 'name', message: 'is too long here' },
      { index: 2, status: 'updated', id: TENANT },
    ]);
  });

  it('simulates a reply with POST /v1/sandbox/replies and hands its refusals back as the database backend throws them', async () => {
    const outcome = { id: TENANT, contact_id: TENANT, duplicate: false, keyword: 'intent', intent: 'moving_now' };
    const { seen, backend } = await fakeServer([
      { status: 201, body: outcome },
      { status: 400, body: { error: { code: 'invalid_request', message: 'x', fields: [{ field: 'contact_id', in: 'body', message: 'the contact has no phone, needed for a reply on sms' }] } } },
      { status: 409, body: { error: { code: 'conflict', message: 'message_id has not been sent (it is queued)', fields: [{ field: 'message_id', message: 'message_id has not been sent (it is queued)' }] } } },
      { status: 404, body: { error: { code: 'not_found', message: 'contact not found' } } },
    ]);
    const input = { channel: 'whatsapp' as const, from: '+14155550123', payload: 'moving_now', text: 'Moving now', id: 'press-1' };
    expect(await backend.sandboxReply(TENANT, input)).toEqual(outcome);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/v1/sandbox/replies', headers: { 'x-rapport-tenant': TENANT }, body: input });
    await expect(backend.sandboxReply(TENANT, { channel: 'sms', contact_id: TENANT, text: 'hi' })).rejects.toEqual(InputError.field('contact_id', 'the contact has no phone, needed for a reply on sms'));
    await expect(backend.sandboxReply(TENANT, { channel: 'sms', contact_id: TENANT, text: 'hi' })).rejects.toEqual(new ConflictError('message_id has not been sent (it is queued)', 'message_id'));
    await expect(backend.sandboxReply(TENANT, { channel: 'sms', contact_id: TENANT, text: 'hi' })).rejects.toEqual(new NotFoundError('contact'));
  });

  it('reports an unknown tenant as not found, and an unreachable server with what to do', async () => {
    const { backend, url } = await fakeServer([{ status: 404, body: { error: { code: 'not_found', message: 'tenant not found' } } }]);
    await expect(backend.tenantSettings(TENANT)).rejects.toEqual(new NotFoundError('tenant'));
    await new Promise((r) => servers.pop()!.close(r));
    await expect(httpBackend({ url, adminToken: 't', pid: 4242 }).listTenants()).rejects.toThrow(/could not reach the Rapport server at .* \(pid 4242\).*ECONNREFUSED.*run this again/);
  });
});
