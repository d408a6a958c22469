import { WHATSAPP_WINDOW_CLOSED, whatsappWindowOpen } from '../core/journey/engine.js';
import type { Queryable } from '../store/db.js';
import { loadWhatsappInbound } from '../store/step-batch.js';

/**
 * What a WhatsApp send becomes at dispatch, by the rules WhatsApp enforces and the ones Rapport
 * adds on top:
 *   - inside the 24-hour customer-service window (the contact wrote in the last 24 hours) the
 *     free-form body goes; a send with only a template sends the template;
 *   - outside it only an approved template may go, with its parameters; with none the send is
 *     blocked (`whatsapp_window_closed`), and a template the registry knows but that is not
 *     approved blocks it too;
 *   - a contact gets at most one template per interval (the tenant's
 *     `whatsapp_template_interval_minutes`, default 60): a later one waits for its turn, unless
 *     it is urgent (priority 4 or 5), as escalations are.
 */

/** `language`: the registry's approved translation to send, when it is not the one asked for. */
export type WhatsappPlan = { mode: 'session' } | { mode: 'template'; language?: string } | { block: string } | { hold_until: Date; reason: string };

export const WHATSAPP_TEMPLATE_NOT_APPROVED = 'whatsapp_template_not_approved';
export const WHATSAPP_TEMPLATE_LIMIT = 'whatsapp_template_limit';
export const DEFAULT_TEMPLATE_INTERVAL_MINUTES = 60;
/** Priorities from here on pass the per-contact template limit. */
export const URGENT_PRIORITY = 4;

export interface WhatsappCandidate {
  id: string;
  tenant_id: string;
  contact_id: string;
  priority: number;
  hasBody: boolean;
  template: { name: string; language: string } | null;
  /** 0 switches the per-contact limit off. */
  intervalMinutes: number;
}

export interface WhatsappFacts {
  lastInbound: Date | null;
  /** The template's translations in the tenant's registry; empty when it is not registered. */
  registry: readonly { language: string; status: string }[];
  lastTemplateSent: Date | null;
}

/**
 * The approved translation to send: the language asked for (pt_BR; `-` and case aside), else one
 * of the same base language (pt_PT), else the first approved one by code, so a contact whose
 * language has no translation still gets the message.
 */
export function approvedLanguage(registry: readonly { language: string; status: string }[], wanted: string): string | null {
  const norm = (l: string) => l.replace('-', '_').toLowerCase();
  const base = (l: string) => norm(l).split('_')[0];
  const approved = registry.filter((r) => r.status === 'approved').sort((a, b) => (a.language < b.language ? -1 : a.language > b.language ? 1 : 0));
  const exact = approved.find((r) => norm(r.language) === norm(wanted));
  const sameBase = approved.find((r) => base(r.language) === base(wanted));
  return (exact ?? sameBase ?? approved[0])?.language ?? null;
}

export function decideWhatsapp(c: WhatsappCandidate, facts: WhatsappFacts, now: Date): WhatsappPlan {
  const open = whatsappWindowOpen(facts.lastInbound, now);
  if (open && c.hasBody) return { mode: 'session' };
  if (!c.template) return { block: open ? 'a WhatsApp message needs a body or a template' : WHATSAPP_WINDOW_CLOSED };
  // An unregistered template is sent as written; the provider is the judge of it.
  let language: string | undefined;
  if (facts.registry.length) {
    const approved = approvedLanguage(facts.registry, c.template.language);
    if (!approved) {
      const own = facts.registry.find((r) => r.language.replace('-', '_').toLowerCase() === c.template!.language.replace('-', '_').toLowerCase()) ?? facts.registry[0]!;
      return { block: `${WHATSAPP_TEMPLATE_NOT_APPROVED}: ${c.template.name} (${own.language}) is ${own.status}` };
    }
    if (approved !== c.template.language) language = approved;
  }
  const interval = c.intervalMinutes * 60_000;
  if (c.priority < URGENT_PRIORITY && interval > 0 && facts.lastTemplateSent && now.getTime() - facts.lastTemplateSent.getTime() < interval) {
    return { hold_until: new Date(facts.lastTemplateSent.getTime() + interval), reason: WHATSAPP_TEMPLATE_LIMIT };
  }
  return language ? { mode: 'template', language } : { mode: 'template' };
}

/** Plans a batch: the facts in three statements, then each contact's sends in order of urgency. */
export async function planWhatsapp(db: Queryable, candidates: WhatsappCandidate[], now: Date): Promise<Map<string, WhatsappPlan>> {
  const plans = new Map<string, WhatsappPlan>();
  if (!candidates.length) return plans;
  const pairs = [...new Map(candidates.map((c) => [`${c.tenant_id}:${c.contact_id}`, { tenant_id: c.tenant_id, contact_id: c.contact_id }])).values()];
  const inbound = await loadWhatsappInbound(db, pairs);

  const named = [...new Map(candidates.filter((c) => c.template).map((c) => [`${c.tenant_id}|${c.template!.name}`, c])).values()];
  const registry = new Map<string, { language: string; status: string }[]>();
  if (named.length) {
    const { rows } = await db.query<{ tenant_id: string; name: string; language: string; status: string }>(
      `select t.tenant_id, t.name, t.language, t.status
         from unnest($1::uuid[], $2::text[]) as x(tenant_id, name)
         join whatsapp_templates t on t.tenant_id = x.tenant_id and t.name = x.name`,
      [named.map((c) => c.tenant_id), named.map((c) => c.template!.name)],
    );
    for (const r of rows) {
      const key = `${r.tenant_id}|${r.name}`;
      const list = registry.get(key) ?? [];
      list.push({ language: r.language, status: r.status });
      registry.set(key, list);
    }
  }

  const longest = Math.max(...candidates.map((c) => c.intervalMinutes)) * 60_000;
  const lastTemplate = new Map<string, Date>();
  if (longest > 0) {
    const { rows } = await db.query<{ contact_id: string; at: Date }>(
      `select m.contact_id, max(m.sent_at) as at
         from unnest($1::uuid[], $2::uuid[]) as x(tenant_id, contact_id)
         join messages m on m.tenant_id = x.tenant_id and m.contact_id = x.contact_id
        where m.channel = 'whatsapp' and m.sent_at > $3 and m.rendered ? 'whatsapp_template'
        group by m.contact_id`,
      [pairs.map((p) => p.tenant_id), pairs.map((p) => p.contact_id), new Date(now.getTime() - longest)],
    );
    for (const r of rows) lastTemplate.set(r.contact_id, new Date(r.at));
  }

  // Urgent first, so that an escalation and a routine template in one batch do not queue the
  // escalation behind the routine one.
  const ordered = [...candidates].sort((a, b) => b.priority - a.priority);
  for (const c of ordered) {
    const plan = decideWhatsapp(
      c,
      {
        lastInbound: inbound.get(c.contact_id) ?? null,
        registry: (c.template && registry.get(`${c.tenant_id}|${c.template.name}`)) || [],
        lastTemplateSent: lastTemplate.get(c.contact_id) ?? null,
      },
      now,
    );
    // A template going now counts against the next one for the same contact in this batch.
    if ('mode' in plan && plan.mode === 'template') lastTemplate.set(c.contact_id, now);
    plans.set(c.id, plan);
  }
  return plans;
}
