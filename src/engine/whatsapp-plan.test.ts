import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WHATSAPP_WINDOW_CLOSED } from '../core/journey/engine.js';
import { approvedLanguage, decideWhatsapp, WHATSAPP_TEMPLATE_LIMIT, type WhatsappCandidate, type WhatsappFacts } from './whatsapp-plan.js';

const now = new Date('2026-05-04T12:00:00Z');
const hoursAgo = (h: number) => new Date(now.getTime() - h * 3600_000);
const candidate = (o: Partial<WhatsappCandidate> = {}): WhatsappCandidate => ({
  id: 'm1',
  tenant_id: 't',
  contact_id: 'c',
  priority: 3,
  hasBody: true,
  template: { name: 'alert', language: 'en' },
  intervalMinutes: 60,
  ...o,
});
const facts = (o: Partial<WhatsappFacts> = {}): WhatsappFacts => ({ lastInbound: null, registry: [], lastTemplateSent: null, ...o });
const registered = (status: string, language = 'en') => [{ language, status }];

describe('the WhatsApp plan at dispatch', () => {
  it('sends text inside the window and the template outside it', () => {
    expect(decideWhatsapp(candidate(), facts({ lastInbound: hoursAgo(23.9) }), now)).toEqual({ mode: 'session' });
    expect(decideWhatsapp(candidate(), facts({ lastInbound: hoursAgo(24) }), now)).toEqual({ mode: 'template' });
    expect(decideWhatsapp(candidate(), facts(), now)).toEqual({ mode: 'template' });
    // Only a template: it goes inside the window too.
    expect(decideWhatsapp(candidate({ hasBody: false }), facts({ lastInbound: hoursAgo(1) }), now)).toEqual({ mode: 'template' });
  });

  it('blocks text without a template outside the window, and a registered template that is not approved', () => {
    expect(decideWhatsapp(candidate({ template: null }), facts({ lastInbound: hoursAgo(30) }), now)).toEqual({ block: WHATSAPP_WINDOW_CLOSED });
    const paused = decideWhatsapp(candidate(), facts({ registry: registered('paused') }), now);
    expect('block' in paused && paused.block).toMatch(/^whatsapp_template_not_approved: alert \(en\) is paused/);
    // Inside the window the text goes whatever the template's state.
    expect(decideWhatsapp(candidate(), facts({ registry: registered('rejected'), lastInbound: hoursAgo(2) }), now)).toEqual({ mode: 'session' });
  });

  it('sends the approved translation nearest the one asked for', () => {
    const registry = [
      { language: 'pt_PT', status: 'approved' },
      { language: 'pt_BR', status: 'pending' },
      { language: 'en', status: 'approved' },
    ];
    expect(approvedLanguage(registry, 'pt-BR')).toBe('pt_PT');
    expect(approvedLanguage(registry, 'EN')).toBe('en');
    expect(approvedLanguage(registry, 'de')).toBe('en');
    expect(decideWhatsapp(candidate({ template: { name: 'alert', language: 'pt_BR' } }), facts({ registry }), now)).toEqual({ mode: 'template', language: 'pt_PT' });
    expect(decideWhatsapp(candidate({ template: { name: 'alert', language: 'en' } }), facts({ registry }), now)).toEqual({ mode: 'template' });
  });

  it('holds a second template within the interval unless it is urgent', () => {
    const sent = hoursAgo(0.25);
    expect(decideWhatsapp(candidate(), facts({ lastTemplateSent: sent }), now)).toEqual({ hold_until: new Date(sent.getTime() + 3600_000), reason: WHATSAPP_TEMPLATE_LIMIT });
    expect(decideWhatsapp(candidate({ priority: 4 }), facts({ lastTemplateSent: sent }), now)).toEqual({ mode: 'template' });
    expect(decideWhatsapp(candidate({ intervalMinutes: 0 }), facts({ lastTemplateSent: sent }), now)).toEqual({ mode: 'template' });
    expect(decideWhatsapp(candidate(), facts({ lastTemplateSent: hoursAgo(1) }), now)).toEqual({ mode: 'template' });
  });

  it('never sends free-form text outside the window, never holds an urgent send, never holds past the interval', () => {
    fc.assert(
      fc.property(
        fc.option(fc.integer({ min: 0, max: 72 * 60 }), { nil: null }),
        fc.option(fc.integer({ min: 0, max: 180 }), { nil: null }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 1440 }),
        fc.constantFrom(undefined, 'approved', 'pending', 'rejected', 'paused', 'disabled'),
        (inboundMin, templateMin, hasBody, hasTemplate, priority, intervalMinutes, registry) => {
          const c = candidate({ hasBody, template: hasTemplate ? { name: 'x', language: 'en' } : null, priority, intervalMinutes });
          const f = facts({
            lastInbound: inboundMin === null ? null : new Date(now.getTime() - inboundMin * 60_000),
            lastTemplateSent: templateMin === null ? null : new Date(now.getTime() - templateMin * 60_000),
            registry: registry ? registered(registry) : [],
          });
          const plan = decideWhatsapp(c, f, now);
          const open = inboundMin !== null && inboundMin < 24 * 60;
          if ('mode' in plan && plan.mode === 'session') expect(open && hasBody).toBe(true);
          if ('mode' in plan && plan.mode === 'template') expect(hasTemplate && (registry === undefined || registry === 'approved')).toBe(true);
          if ('hold_until' in plan) {
            expect(priority).toBeLessThan(4);
            expect(plan.hold_until.getTime()).toBeGreaterThan(now.getTime());
            expect(plan.hold_until.getTime() - now.getTime()).toBeLessThanOrEqual(intervalMinutes * 60_000);
          }
        },
      ),
    );
  });
});
