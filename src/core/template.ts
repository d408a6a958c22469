import { Liquid, type Template } from 'liquidjs';

/**
 * Message templates: Liquid, the dialect Braze, Customer.io and Shopify users already write.
 *
 * The scope the engine renders with:
 *
 *   {
 *     contact: { name, email, phone, whatsapp, time_zone, locale, external_id,
 *                ...attributes,          // so {{ contact.first_name }} reads an attribute
 *                attributes, tags },     // the raw attribute object and the tag list
 *     vars,                               // enrollment variables (webhook answers under their save_as name)
 *     trigger,                            // properties of the event that enrolled the contact
 *     journey: { name },
 *     tenant: { name },
 *   }
 *
 * A missing variable renders empty (strictVariables off: a contact without the attribute still
 * gets a message, and `| default:` covers it); an unknown filter is a parse error, so a typo is
 * caught when the journey is saved rather than shipped to customers. Dates render in UTC unless
 * the filter names a zone: `{{ contact.visit_at | date: "%H:%M", contact.time_zone }}`.
 */

/** Bounds on what one template may cost: a template is tenant input that runs on the hot path. */
const PARSE_LIMIT = 1_000_000;
// Wall-clock time, as liquidjs measures it: generous, so a worker that the OS descheduled mid-render
// does not fail a message; isRenderLimit() lets callers treat hitting it as worth a retry.
const RENDER_LIMIT_MS = 1000;
const MEMORY_LIMIT = 10_000_000;
const CACHE_SIZE = 5_000;

function engine(outputEscape?: 'escape'): Liquid {
  const liquid = new Liquid({
    strictFilters: true,
    strictVariables: false,
    ownPropertyOnly: true,
    // An empty in-memory map: nothing is ever read from disk.
    templates: {},
    timezoneOffset: 0,
    parseLimit: PARSE_LIMIT,
    renderLimit: RENDER_LIMIT_MS,
    memoryLimit: MEMORY_LIMIT,
    ...(outputEscape ? { outputEscape } : {}),
  });
  // Partials would resolve at render time and fail there; without the tags the save-time parse
  // reports them instead.
  for (const tag of ['include', 'render', 'layout']) delete liquid.tags[tag];
  return liquid;
}

/** Parsed templates by source, least recently used evicted first (a Map iterates in insertion order). */
class TemplateCache {
  private readonly map = new Map<string, Template[]>();
  constructor(
    private readonly liquid: Liquid,
    private readonly max: number,
  ) {}

  get(source: string): Template[] {
    let tpl = this.map.get(source);
    if (tpl) {
      this.map.delete(source);
      this.map.set(source, tpl);
      return tpl;
    }
    tpl = this.liquid.parse(source);
    this.map.set(source, tpl);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
    return tpl;
  }
}

const text = engine();
const html = engine('escape');
// Output escaping is decided when a template is parsed, so each engine keeps its own cache.
const textCache = new TemplateCache(text, CACHE_SIZE);
const htmlCache = new TemplateCache(html, CACHE_SIZE);

/** Why the source is not a valid template (liquidjs' message, with line and column), or null. */
export function templateProblems(source: string): string | null {
  try {
    textCache.get(source);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Renders for text channels (SMS, WhatsApp, voice, email plain text, webhooks): nothing is escaped. */
export function render(source: string, scope: Record<string, unknown>): string {
  if (!source.includes('{')) return source;
  return text.renderSync(textCache.get(source), scope) as string;
}

/** True when rendering stopped at its time bound, which a busy machine can cause: retry later. */
export function isRenderLimit(err: unknown): boolean {
  return err instanceof Error && /template render limit exceeded/.test(err.message);
}

/** Renders email HTML: every output is HTML-escaped unless the author writes `| raw`. */
export function renderHtml(source: string, scope: Record<string, unknown>): string {
  if (!source.includes('{')) return source;
  return html.renderSync(htmlCache.get(source), scope) as string;
}

/** Renders every string inside a JSON value (webhook bodies, attribute updates); keys are left as written. */
export function renderDeep(value: unknown, scope: Record<string, unknown>): unknown {
  if (typeof value === 'string') return render(value, scope);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, scope));
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, scope);
    return out;
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
