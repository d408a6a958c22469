import { HttpFake, sendJson, type FakeRequest } from './http-fake.js';

/**
 * An OpenAI-compatible embeddings endpoint (`POST /v1/embeddings`) with deterministic vectors:
 * each word counts towards one dimension, chosen by a hash of its concept. Words listed as
 * synonyms share a concept, so "refund" and "reimburse" point the same way while sharing no
 * letters — what a real model does and full-text search cannot.
 */
export class FakeEmbeddings {
  readonly requests: { model: string; input: string[]; authorization?: string; dimensions?: number }[] = [];
  /** Answer every request with this status (500: an outage) until set back to undefined. */
  failWith: number | undefined;

  private constructor(
    private readonly http: HttpFake,
    private readonly dims: number,
    private readonly concepts: Map<string, string>,
  ) {}

  static async start(opts: { dims?: number; synonyms?: string[][] } = {}): Promise<FakeEmbeddings> {
    const concepts = new Map<string, string>();
    for (const group of opts.synonyms ?? []) for (const w of group) concepts.set(w, group[0]!);
    const ref: { fake?: FakeEmbeddings } = {};
    const http = await HttpFake.listen((req, res) => ref.fake!.handle(req, res));
    ref.fake = new FakeEmbeddings(http, opts.dims ?? 32, concepts);
    return ref.fake;
  }

  /** The base URL to configure (`RAPPORT_EMBEDDINGS_URL`). */
  get baseUrl(): string {
    return `${this.http.url}/v1`;
  }

  vector(text: string): number[] {
    const v = new Array<number>(this.dims).fill(0);
    for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
      const concept = this.concepts.get(word) ?? word;
      let h = 2166136261;
      for (let i = 0; i < concept.length; i++) h = Math.imul(h ^ concept.charCodeAt(i), 16777619) >>> 0;
      v[h % this.dims]! += 1;
    }
    return v;
  }

  private handle(req: FakeRequest, res: Parameters<typeof sendJson>[0]): void {
    if (req.method !== 'POST' || req.path !== '/v1/embeddings') return sendJson(res, 404, { error: { message: 'not found' } });
    if (this.failWith) return sendJson(res, this.failWith, { error: { message: 'the fake is failing on purpose' } });
    const body = JSON.parse(req.body) as { model: string; input: string | string[]; dimensions?: number };
    const input = Array.isArray(body.input) ? body.input : [body.input];
    this.requests.push({ model: body.model, input, authorization: req.headers.authorization, dimensions: body.dimensions });
    // Answered in reverse order: the index, not the position, says which input a vector is for.
    const data = input.map((text, index) => ({ object: 'embedding', index, embedding: this.vector(text) })).reverse();
    sendJson(res, 200, { object: 'list', data, model: body.model, usage: { prompt_tokens: 0, total_tokens: 0 } });
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
