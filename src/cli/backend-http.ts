import { TENANT_HEADER } from '../api/auth.js';
import { BULK_BODY_LIMIT } from '../api/app.js';
import type { ApiErrorBody } from '../api/errors.js';
import { MAX_BATCH } from '../api/schemas/contact.js';
import type { ContactFields } from '../core/contact.js';
import { ConflictError, InputError, NotFoundError } from '../core/errors.js';
import type { RowOutcome } from '../core/identity.js';
import type { Tenant } from '../core/tenant.js';
import type { SandboxReplyOutcome } from '../engine/sandbox-reply.js';
import type { ApiKeyRow } from '../store/apikeys.js';
import { JourneyProblemsError, type JourneySummary } from '../store/journeys.js';
import type { TemplateRow } from '../store/templates.js';
import type { CampaignDetail, CampaignItem, RecipientItem } from './backend.js';
import { apiKeySummary, campaignItem, journeyListItem, recipientItem, tenantSummary, type Backend } from './backend.js';
import { CliError } from './context.js';

export interface ServerHolder {
  url: string;
  adminToken: string;
  pid: number;
}

/** Leaves room for the `{"contacts":[…]}` wrapper and the server's own accounting. */
const BODY_BUDGET = Math.floor(BULK_BODY_LIMIT * 0.9);

/**
 * The Backend through a running Rapport server's HTTP API, acting with the admin token the server
 * wrote into its lock file. Node's fetch keeps connections alive, so batches reuse one socket.
 */
export function httpBackend(server: ServerHolder): Backend {
  const where = `the Rapport server at ${server.url} (pid ${server.pid})`;

  const request = async (method: string, path: string, opts: { tenant?: string; body?: string } = {}): Promise<Response> => {
    try {
      return await fetch(server.url + path, {
        method,
        headers: {
          authorization: `Bearer ${server.adminToken}`,
          ...(opts.tenant ? { [TENANT_HEADER]: opts.tenant } : {}),
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: opts.body,
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `could not reach ${where}, which holds the data folder (${cause?.code ?? cause?.message ?? (err as Error).message}). ` +
          'If it is shutting down, wait for it to stop and run this again.',
      );
    }
  };

  /** The error a refusal stands for, as the database backend would throw it. */
  const refusal = (res: Response, text: string, method: string, path: string): Error => {
    let error: ApiErrorBody['error'] | undefined;
    try {
      error = (JSON.parse(text) as ApiErrorBody).error;
    } catch {
      /* not one of Rapport's error bodies */
    }
    const message = error?.message ?? `${res.status} ${res.statusText}`;
    if (res.status === 404 && / not found$/.test(message)) return new NotFoundError(message.replace(/ not found$/, ''));
    if (res.status === 400 && error?.fields?.length) return new InputError(error.fields.map(({ field, message: m }) => ({ field, message: m })));
    if (res.status === 409) return new ConflictError(message, error?.fields?.[0]?.field);
    if (res.status === 422 && error?.fields?.length) {
      return new JourneyProblemsError(error.fields.map(({ field, message: m }) => ({ field, message: m, ...nodeOf(m) })));
    }
    if (res.status === 401) return new CliError(`${where} refused the admin token in its lock file (${message}). Restart the server, or stop it and run this again.`);
    return new CliError(`${where} answered ${method} ${path} with ${res.status}: ${message}`);
  };

  const call = async <T>(method: string, path: string, opts: { tenant?: string; body?: string } = {}): Promise<T> => {
    const res = await request(method, path, opts);
    const text = await res.text();
    if (res.ok) return JSON.parse(text) as T;
    throw refusal(res, text, method, path);
  };

  /** A response body as it arrives, for exports that should not sit in memory whole. */
  async function* stream(path: string, tenant: string): AsyncGenerator<string> {
    const res = await request('GET', path, { tenant });
    if (!res.ok || !res.body) throw refusal(res, await res.text(), 'GET', path);
    const decoder = new TextDecoder();
    for await (const chunk of res.body) yield decoder.decode(chunk, { stream: true });
    const rest = decoder.decode();
    if (rest) yield rest;
  }

  const sendBulk = async (tenantId: string, rows: ContactFields[], bodies: string[]): Promise<RowOutcome[]> => {
    try {
      const res = await call<{ results: RowOutcome[] }>('POST', '/v1/contacts/bulk', { tenant: tenantId, body: `{"contacts":[${bodies.join(',')}]}` });
      return res.results;
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      return rejectAndRetry(tenantId, rows, bodies, err);
    }
  };

  /**
   * The rows were validated here with the same rules, so a 400 means this server's rules differ
   * (another version): its per-row problems become rejected rows, and the rest are sent again.
   */
  const rejectAndRetry = async (tenantId: string, rows: ContactFields[], bodies: string[], err: InputError): Promise<RowOutcome[]> => {
    const bad = new Map<number, { field: string; message: string }[]>();
    for (const p of err.problems) {
      const m = /^contacts\[(\d+)\]\.?(.*)$/.exec(p.field);
      if (!m) throw new CliError(`${where} refused a batch of contacts: ${err.message}`);
      const index = Number(m[1]);
      bad.set(index, [...(bad.get(index) ?? []), { field: m[2] || 'row', message: p.message }]);
    }
    const keep = rows.map((_, i) => i).filter((i) => !bad.has(i));
    const sent = keep.length ? await call<{ results: RowOutcome[] }>('POST', '/v1/contacts/bulk', { tenant: tenantId, body: `{"contacts":[${keep.map((i) => bodies[i]).join(',')}]}` }) : { results: [] };
    const outcomes: RowOutcome[] = [...bad].map(([index, problems]) => ({
      index,
      status: 'rejected',
      field: problems.map((p) => p.field).join(', '),
      message: problems.map((p) => p.message).join('; '),
    }));
    sent.results.forEach((o) => outcomes.push({ ...o, index: keep[o.index]! }));
    return outcomes.sort((a, b) => a.index - b.index);
  };

  /** Every page of a list route. */
  const all = async <T>(path: string, tenant: string): Promise<T[]> => {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page: { data: T[]; next_cursor: string | null } = await call('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { tenant });
      out.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  };

  return {
    where,
    async createTenant(input) {
      const res = await call<{ tenant: Tenant; api_key: string }>('POST', '/v1/tenants', { body: JSON.stringify(input) });
      return { tenant: tenantSummary(res.tenant), apiKey: res.api_key };
    },
    async listTenants() {
      return (await call<{ data: Tenant[] }>('GET', '/v1/tenants')).data.map(tenantSummary);
    },
    async createApiKey(tenantId, name) {
      const { key, ...row } = await call<ApiKeyRow & { key: string }>('POST', '/v1/api-keys', { tenant: tenantId, body: JSON.stringify({ name }) });
      return { key: apiKeySummary(row), secret: key };
    },
    async listApiKeys(tenantId) {
      return (await call<{ data: ApiKeyRow[] }>('GET', '/v1/api-keys', { tenant: tenantId })).data.map(apiKeySummary);
    },
    async revokeApiKey(tenantId, keyId) {
      return apiKeySummary(await call<ApiKeyRow>('DELETE', `/v1/api-keys/${encodeURIComponent(keyId)}`, { tenant: tenantId }));
    },
    async tenantSettings(tenantId) {
      return (await call<Tenant>('GET', '/v1/tenant', { tenant: tenantId })).settings;
    },
    async upsertContacts(tenantId, rows) {
      // Requests stay under the route's row and byte limits, whatever batch size the caller chose.
      const outcomes: RowOutcome[] = [];
      let start = 0;
      while (start < rows.length) {
        const bodies: string[] = [];
        let bytes = 0;
        while (start + bodies.length < rows.length && bodies.length < MAX_BATCH) {
          const body = JSON.stringify(rows[start + bodies.length]);
          const size = Buffer.byteLength(body) + 1;
          if (bodies.length && bytes + size > BODY_BUDGET) break;
          bodies.push(body);
          bytes += size;
        }
        const chunk = rows.slice(start, start + bodies.length);
        for (const o of await sendBulk(tenantId, chunk, bodies)) outcomes.push({ ...o, index: o.index + start });
        start += bodies.length;
      }
      return outcomes;
    },
    async listJourneys(tenantId, name) {
      return (await all<JourneySummary>(`/v1/journeys${name ? `?name=${encodeURIComponent(name)}` : ''}`, tenantId)).map(journeyListItem);
    },
    async createJourney(tenantId, name, definition) {
      return journeyListItem(await call<JourneySummary>('POST', '/v1/journeys', { tenant: tenantId, body: JSON.stringify({ name, definition }) }));
    },
    async updateJourneyDraft(tenantId, journeyId, name, definition) {
      return journeyListItem(await call<JourneySummary>('PATCH', `/v1/journeys/${encodeURIComponent(journeyId)}`, { tenant: tenantId, body: JSON.stringify({ name, definition }) }));
    },
    async publishJourney(tenantId, journeyId) {
      const { version, status } = await call<{ version: number; status: JourneySummary['status'] }>('POST', `/v1/journeys/${encodeURIComponent(journeyId)}/publish`, { tenant: tenantId });
      return { version, status };
    },
    async templateNames(tenantId) {
      return (await all<TemplateRow>('/v1/templates', tenantId)).map((t) => t.name);
    },
    async sandboxReply(tenantId, input) {
      return call<SandboxReplyOutcome>('POST', '/v1/sandbox/replies', { tenant: tenantId, body: JSON.stringify(input) });
    },
    async listCampaigns(tenantId, status) {
      return (await all<CampaignItem>(`/v1/campaigns${status ? `?status=${status}` : ''}`, tenantId)).map(campaignItem);
    },
    async createCampaign(tenantId, body) {
      return campaignItem(await call<CampaignItem>('POST', '/v1/campaigns', { tenant: tenantId, body: JSON.stringify(body) }));
    },
    async getCampaign(tenantId, campaignId) {
      return campaignItem(await call<CampaignDetail>('GET', `/v1/campaigns/${encodeURIComponent(campaignId)}`, { tenant: tenantId }));
    },
    async changeCampaign(tenantId, campaignId, action) {
      return campaignItem(await call<CampaignItem>('POST', `/v1/campaigns/${encodeURIComponent(campaignId)}/${action}`, { tenant: tenantId }));
    },
    async campaignRecipients(tenantId, campaignId, f) {
      const query = new URLSearchParams({ ...(f.state ? { state: f.state } : {}), ...(f.limit ? { limit: String(f.limit) } : {}), ...(f.cursor ? { cursor: f.cursor } : {}) });
      const page = await call<{ data: RecipientItem[]; next_cursor: string | null }>('GET', `/v1/campaigns/${encodeURIComponent(campaignId)}/recipients?${query}`, { tenant: tenantId });
      return { data: page.data.map(recipientItem), next_cursor: page.next_cursor };
    },
    campaignRecipientsCsv(tenantId, campaignId, state) {
      return stream(`/v1/campaigns/${encodeURIComponent(campaignId)}/recipients?format=csv${state ? `&state=${state}` : ''}`, tenantId);
    },
    async close() {},
  };
}

/** The API names the node at the head of the message (`node "x": …`). */
function nodeOf(message: string): { node?: string } {
  const m = /^node "([^"]+)": /.exec(message);
  return m ? { node: m[1]! } : {};
}
