import { timingSafeEqual } from 'node:crypto';
import { requesterCanSend } from './http-client.js';
import type { FailureCode, InboundRequest, SendContext, SendResult } from './types.js';

/** What a provider's HTTP API answered. */
export interface ProviderResponse {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** A call that never got an answer: a timeout or a network error, both worth a retry. */
export type CallFailure = Extract<SendResult, { ok: false }>;

/**
 * Calls a provider with the context's fetch and timeout. Returns the response whatever its status
 * (adapters know their providers' error bodies), or a temporary failure when none came back.
 */
export async function callProvider(ctx: SendContext, url: string, init: RequestInit): Promise<ProviderResponse | CallFailure> {
  try {
    let res: { status: number; headers: ProviderResponse['headers'] };
    let text: string;
    if (ctx.request && requesterCanSend(init.body)) {
      ({ text, ...res } = await ctx.request(url, { method: init.method, headers: init.headers, body: init.body }, ctx.timeoutMs));
    } else {
      const answer = await ctx.fetch(url, { ...init, signal: AbortSignal.timeout(ctx.timeoutMs) });
      text = await answer.text();
      res = answer;
    }
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return { ok: false, permanent: false, code: 'timeout', error: `no answer within ${ctx.timeoutMs} ms` };
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    // fetch wraps the socket's error as the cause; node:http throws it as is.
    return { ok: false, permanent: false, code: 'network', error: `network: ${cause?.code ?? (e as { code?: string }).code ?? cause?.message ?? e.message}` };
  }
}

export function isCallFailure(r: ProviderResponse | CallFailure): r is CallFailure {
  return 'ok' in r;
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(headers: ProviderResponse['headers'], now = Date.now()): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return Math.round(s * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The meaning of an HTTP status when the provider's body says nothing more specific: 429 waits,
 * 401/403 are our credentials (the next provider may do better), 5xx are temporary, other 4xx
 * refuse this message for good.
 */
export function failureFromStatus(res: ProviderResponse, error: string, providerCode?: string): CallFailure {
  const base = { error: `HTTP ${res.status}: ${error}`.slice(0, 500), ...(providerCode ? { provider_code: providerCode } : {}) };
  if (res.status === 429) return { ok: false, permanent: false, code: 'rate_limited', retry_after_ms: retryAfterMs(res.headers) ?? 1000, ...base };
  if (res.status === 401 || res.status === 403) return { ok: false, permanent: false, code: 'auth', ...base };
  if (res.status >= 500 || res.status === 408) return { ok: false, permanent: false, code: 'server', ...base };
  return { ok: false, permanent: true, code: 'rejected', ...base };
}

export function failure(code: FailureCode, error: string, opts: { permanent?: boolean; provider_code?: string; retry_after_ms?: number } = {}): CallFailure {
  const temporary: FailureCode[] = ['rate_limited', 'auth', 'config', 'timeout', 'server', 'network'];
  return {
    ok: false,
    permanent: opts.permanent ?? !temporary.includes(code),
    code,
    error: error.slice(0, 500),
    ...(opts.provider_code ? { provider_code: opts.provider_code } : {}),
    ...(opts.retry_after_ms !== undefined ? { retry_after_ms: opts.retry_after_ms } : {}),
  };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Constant-time comparison of two strings (signatures); false when lengths differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether `v` is an absolute http(s) URL: a base_url, a media link, a callback. */
export function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** The API root: the account's `base_url` when set (a local fake in tests), else the provider's. */
export function apiBase(config: Record<string, unknown>, fallback: string): string {
  const b = typeof config.base_url === 'string' && config.base_url ? config.base_url : fallback;
  return b.replace(/\/+$/, '');
}

/**
 * The account id in a per-account webhook URL, `/webhooks/<kind>/<account_id>`, or null: another
 * shape, or an id that is not valid percent-encoding (a request no provider made, answered 404).
 */
export function accountIdFromPath(url: string, kind: string): string | null {
  let segments: string[];
  try {
    segments = new URL(url, 'http://localhost').pathname.split('/').filter(Boolean);
  } catch {
    return null;
  }
  const i = segments.lastIndexOf(kind);
  if (i < 1 || segments[i - 1] !== 'webhooks' || segments.length !== i + 2) return null;
  try {
    return decodeURIComponent(segments[i + 1]!) || null;
  } catch {
    return null;
  }
}

/** A webhook's JSON body: what the route parsed, else the raw bytes parsed here; undefined when it is not JSON. */
export function bodyJson(req: InboundRequest): unknown {
  if (req.json !== undefined) return req.json;
  if (!req.rawBody.length) return undefined;
  try {
    return JSON.parse(req.rawBody.toString('utf8'));
  } catch {
    return undefined;
  }
}
