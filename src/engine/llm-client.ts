import type { ChatMessage } from '../core/synthesis.js';

/**
 * An OpenAI-compatible chat endpoint (OpenAI, Azure OpenAI's compatible route, Ollama, vLLM,
 * LiteLLM, …): `POST <base>/chat/completions` with `{ model, messages, temperature, max_tokens }`
 * answering `{ choices: [{ message: { content } }] }`.
 *
 * Error rule: every failure (HTTP status, timeout, an answer without text) is thrown as an
 * LlmError whose `reason` names it; the caller falls back to the composer and records the reason.
 *
 * It uses fetch rather than the dispatcher's keep-alive requester: one call per synthesized
 * message, whose seconds of model time dwarf the client's microseconds.
 */
export interface LlmClient {
  model: string;
  /** How many calls a worker makes at once (RAPPORT_LLM_CONCURRENCY); default 4. */
  concurrency?: number;
  /** How long a call may wait for its answer; work is leased for longer than this. */
  timeoutMs?: number;
  complete(messages: ChatMessage[], opts: { maxTokens: number; temperature?: number }): Promise<string>;
}

export interface HttpLlmOptions {
  /** The API root, e.g. https://api.openai.com/v1 */
  baseUrl: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
  concurrency?: number;
  fetch?: typeof fetch;
}

export class LlmError extends Error {
  constructor(
    /** `timeout`, `http_<status>`, `unreachable` or `bad_answer`. */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'LlmError';
  }
}

export const DEFAULT_LLM_TIMEOUT_MS = 20_000;

export function httpLlm(opts: HttpLlmOptions): LlmClient {
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LLM_TIMEOUT_MS;
  return {
    model: opts.model,
    concurrency: opts.concurrency,
    timeoutMs,
    async complete(messages, { maxTokens, temperature = 0.4 }) {
      let text: string;
      let status: number;
      try {
        const res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
          body: JSON.stringify({ model: opts.model, messages, temperature, max_tokens: maxTokens }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
        text = await res.text();
      } catch (err) {
        if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) throw new LlmError('timeout', `no answer within ${timeoutMs} ms`);
        throw new LlmError('unreachable', err instanceof Error ? err.message : String(err));
      }
      if (status < 200 || status > 299) throw new LlmError(`http_${status}`, `chat endpoint answered HTTP ${status}: ${text.slice(0, 300)}`);
      let content: unknown;
      try {
        content = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
      } catch {
        throw new LlmError('bad_answer', 'chat endpoint answered with something other than JSON');
      }
      if (typeof content !== 'string' || !content.trim()) throw new LlmError('bad_answer', 'chat endpoint gave no message text');
      return content;
    },
  };
}

/**
 * The chat client the environment configures, or null when RAPPORT_LLM_URL is unset (synthesis
 * then uses the deterministic composer).
 */
export function llmFromEnv(env: NodeJS.ProcessEnv): LlmClient | null {
  const baseUrl = env.RAPPORT_LLM_URL?.trim();
  if (!baseUrl) return null;
  if (!/^https?:\/\//.test(baseUrl)) throw new Error(`RAPPORT_LLM_URL must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  const t = env.RAPPORT_LLM_TIMEOUT_MS?.trim();
  const timeoutMs = t ? Number(t) : undefined;
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000)) {
    throw new Error(`RAPPORT_LLM_TIMEOUT_MS must be a whole number of milliseconds from 1 to 600000, got ${JSON.stringify(t)}`);
  }
  const c = env.RAPPORT_LLM_CONCURRENCY?.trim();
  const concurrency = c ? Number(c) : undefined;
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)) {
    throw new Error(`RAPPORT_LLM_CONCURRENCY must be a whole number from 1 to 256, got ${JSON.stringify(c)}`);
  }
  return httpLlm({
    baseUrl,
    model: env.RAPPORT_LLM_MODEL?.trim() || 'gpt-4o-mini',
    apiKey: env.RAPPORT_LLM_API_KEY?.trim() || undefined,
    timeoutMs,
    concurrency,
  });
}
