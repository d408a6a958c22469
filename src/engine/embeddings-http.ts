import { normalise, type EmbeddingsClient } from '../core/embeddings.js';

/**
 * An OpenAI-compatible embeddings endpoint (OpenAI, Azure OpenAI's compatible route, Ollama,
 * vLLM, LiteLLM, …): `POST <base>/embeddings` with `{ model, input: [...] }` answering
 * `{ data: [{ index, embedding }] }`.
 */
export interface HttpEmbeddingsOptions {
  /** The API root, e.g. https://api.openai.com/v1 */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Asked of models that can shorten their vectors (OpenAI text-embedding-3-*). */
  dimensions?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

// OpenAI takes up to 2,048 inputs a request; smaller batches keep one request's tokens (and a
// failed request's cost) modest.
const BATCH = 96;

export function httpEmbeddings(opts: HttpEmbeddingsOptions): EmbeddingsClient {
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/embeddings`;
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const call = async (input: string[]): Promise<number[][]> => {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
      body: JSON.stringify({ model: opts.model, input, encoding_format: 'float', ...(opts.dimensions ? { dimensions: opts.dimensions } : {}) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`embeddings endpoint answered HTTP ${res.status}: ${text.slice(0, 300)}`);
    const body = JSON.parse(text) as { data?: { index?: number; embedding?: unknown }[] };
    const out: number[][] = new Array<number[]>(input.length);
    (body.data ?? []).forEach((d, i) => {
      const at = typeof d.index === 'number' ? d.index : i;
      if (Array.isArray(d.embedding) && d.embedding.every((x) => typeof x === 'number')) out[at] = normalise(d.embedding as number[]);
    });
    for (let i = 0; i < input.length; i++) if (!out[i]) throw new Error(`embeddings endpoint gave no vector for input ${i}`);
    const dims = out[0]!.length;
    if (!dims || out.some((v) => v.length !== dims)) throw new Error('embeddings endpoint gave vectors of different sizes');
    return out;
  };
  return {
    space: opts.dimensions ? `${opts.model}:${opts.dimensions}` : opts.model,
    async embed(texts) {
      const out: number[][] = [];
      // An empty input is refused by OpenAI; a chunk is never empty, but a query may be blank.
      for (let i = 0; i < texts.length; i += BATCH) out.push(...(await call(texts.slice(i, i + BATCH).map((t) => t || ' '))));
      return out;
    },
  };
}

/**
 * The embeddings client the environment configures, or null when RAPPORT_EMBEDDINGS_URL is
 * unset (search is then full-text and trigram only).
 */
export function embeddingsFromEnv(env: NodeJS.ProcessEnv): EmbeddingsClient | null {
  const baseUrl = env.RAPPORT_EMBEDDINGS_URL?.trim();
  if (!baseUrl) return null;
  if (!/^https?:\/\//.test(baseUrl)) throw new Error(`RAPPORT_EMBEDDINGS_URL must be an http(s) URL, got ${JSON.stringify(baseUrl)}`);
  const dims = env.RAPPORT_EMBEDDINGS_DIMENSIONS?.trim();
  const dimensions = dims ? Number(dims) : undefined;
  if (dimensions !== undefined && (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > 16_000)) {
    throw new Error(`RAPPORT_EMBEDDINGS_DIMENSIONS must be a whole number from 1 to 16000, got ${JSON.stringify(dims)}`);
  }
  return httpEmbeddings({
    baseUrl,
    model: env.RAPPORT_EMBEDDINGS_MODEL?.trim() || 'text-embedding-3-small',
    apiKey: env.RAPPORT_EMBEDDINGS_API_KEY?.trim() || undefined,
    dimensions,
  });
}
