import { HttpFake, sendJson, type FakeRequest, type ScriptedAnswer } from './http-fake.js';

/**
 * An OpenAI-compatible chat endpoint (`POST /v1/chat/completions`). Each request takes the next
 * scripted answer: `reply(text)` answers as a model would, `fail(...)` scripts a status or a hang.
 * With the script empty it answers 503, so a test that forgot to script notices.
 */
export class FakeLlm {
  readonly requests: { model: string; messages: { role: string; content: string }[]; temperature?: number; max_tokens?: number; authorization?: string }[] = [];
  private readonly script: ScriptedAnswer[] = [];
  private responder: ((req: FakeLlm['requests'][number]) => string | ScriptedAnswer) | null = null;

  private constructor(private readonly http: HttpFake) {}

  static async start(): Promise<FakeLlm> {
    const ref: { fake?: FakeLlm } = {};
    const http = await HttpFake.listen((req, res) => ref.fake!.handle(req, res));
    ref.fake = new FakeLlm(http);
    return ref.fake;
  }

  /** The base URL to configure (`RAPPORT_LLM_URL`). */
  get baseUrl(): string {
    return `${this.http.url}/v1`;
  }

  /** The next request is answered with this message text. */
  reply(content: string): this {
    this.script.push(chatAnswer(content, this.script.length));
    return this;
  }

  /**
   * Requests the script does not cover are answered by `fn`, from what was asked: a string as the
   * model's text, or a scripted answer. For concurrent callers, whose order a script cannot know.
   */
  respondWith(fn: (req: FakeLlm['requests'][number]) => string | ScriptedAnswer): this {
    this.responder = fn;
    return this;
  }

  /** The next request gets this answer instead (a status, a body, a hang). */
  fail(answer: ScriptedAnswer): this {
    this.script.push({ body: { error: { message: 'the fake is failing on purpose', type: 'server_error' } }, ...answer });
    return this;
  }

  private async handle(req: FakeRequest, res: Parameters<typeof sendJson>[0]): Promise<void> {
    if (req.method !== 'POST' || req.path !== '/v1/chat/completions') return sendJson(res, 404, { error: { message: 'not found' } });
    const body = JSON.parse(req.body) as FakeLlm['requests'][number];
    this.requests.push({ model: body.model, messages: body.messages, temperature: body.temperature, max_tokens: body.max_tokens, authorization: req.headers.authorization });
    let next = this.script.shift();
    if (!next && this.responder) {
      const r = this.responder(this.requests[this.requests.length - 1]!);
      next = typeof r === 'string' ? chatAnswer(r, this.requests.length) : r;
    }
    if (!next) return sendJson(res, 503, { error: { message: 'no answer scripted' } });
    await this.http.answer(res, next);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** A chat completion as OpenAI's API answers one. */
function chatAnswer(content: string, n: number): ScriptedAnswer {
  return {
    body: {
      id: `chatcmpl-fake-${n}`,
      object: 'chat.completion',
      created: 1_767_225_600,
      model: 'fake-chat',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    },
  };
}
