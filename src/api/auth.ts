import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { looksLikeApiKey } from '../core/apikey.js';
import type { Db } from '../store/db.js';
import { findActiveKey } from '../store/apikeys.js';
import { sendError } from './errors.js';

/** Who is calling, and for which tenant. Every /v1 handler reads the tenant from here and nowhere else. */
export interface AuthContext {
  tenantId: string;
  /** Written into the audit log: `key:<id>` or `admin`. */
  actor: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext;
  }
}

export interface AuthOptions {
  db: Db;
  /**
   * A token that may act for any tenant named in the `X-Rapport-Tenant` header: set by the operator
   * (RAPPORT_ADMIN_TOKEN) for agencies, and by the embedded server for the local CLI.
   */
  adminToken?: string;
}

export const TENANT_HEADER = 'x-rapport-tenant';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function isAdmin(req: FastifyRequest, opts: AuthOptions): boolean {
  const token = bearerToken(req);
  return !!(token && opts.adminToken && sameSecret(token, opts.adminToken));
}

/** An onRequest hook that resolves the caller's tenant from the bearer token, or answers 401. */
export function authenticate(opts: AuthOptions) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const token = bearerToken(req);
    if (!token) {
      return sendError(reply, 401, 'unauthorized', 'send an API key as "Authorization: Bearer <key>"');
    }
    if (isAdmin(req, opts)) {
      const tenant = req.headers[TENANT_HEADER];
      if (typeof tenant !== 'string' || !UUID.test(tenant)) {
        return sendError(reply, 400, 'invalid_request', `the admin token acts for the tenant named in the ${TENANT_HEADER} header`, [
          { field: TENANT_HEADER, in: 'header', message: 'is required with the admin token and must be a tenant id' },
        ]);
      }
      const { rows } = await opts.db.query('select 1 from tenants where id = $1', [tenant]);
      if (!rows[0]) return sendError(reply, 404, 'not_found', 'tenant not found');
      req.auth = { tenantId: tenant, actor: 'admin' };
      return;
    }
    const key = looksLikeApiKey(token) ? await findActiveKey(opts.db, token) : undefined;
    if (!key) return sendError(reply, 401, 'unauthorized', 'the API key is unknown or revoked');
    req.auth = { tenantId: key.tenant_id, actor: `key:${key.id}` };
  };
}
