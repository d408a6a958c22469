import { describe, expect, it } from 'vitest';
import type { JourneyDefinition } from './definition.js';
import { advance, type ContactFacts, type EnrollmentState, type StepEnv, type StepOutcome } from './engine.js';
import { compileJourney } from './validate.js';

const ALL_DAY = { days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '00:00' };
const ada: ContactFacts = {
  id: '00000000-0000-7000-8000-000000000001',
  name: 'Ada',
  email: 'ada@example.com',
  phone: '+14155552671',
  whatsapp: null,
  time_zone: 'America/New_York',
  locale: 'en',
  external_id: 'ada',
  attributes: { plan: 'pro', renewal_date: '2026-03-20' },
  tags: ['vip'],
};
const granted = (['sms', 'email', 'whatsapp', 'voice'] as const).map((channel) => ({
  channel,
  topic: 'all',
  status: 'granted' as const,
  type: 'express' as const,
  recorded_at: new Date('2020-01-01T00:00:00Z'),
}));

function env(def: JourneyDefinition, now: string, over: Partial<StepEnv> = {}): StepEnv {
  return {
    now: new Date(now),
    journeyId: 'j1',
    journey: compileJourney(def),
    contact: ada,
    consent: granted,
    zone: 'America/New_York',
    tenantZone: 'UTC',
    policy: { quietHours: {}, sendWindow: ALL_DAY, caps: [], spreadMinutes: 10 },
    suppressed: () => false,
    recentSends: [],
    ...over,
  };
}

const fresh = (vars: Record<string, unknown> = {}): EnrollmentState => ({
  id: 'e1',
  contact_id: ada.id,
  node: null,
  wait: null,
  vars,
  memo: {},
  steps: 0,
  entered_at: new Date('2026-03-02T15:00:00Z'),
});

/** Carries an outcome into the state the scheduler would store. */
const stateAfter = (o: StepOutcome, prev: EnrollmentState): EnrollmentState => ({ ...prev, node: o.node, wait: o.wait, vars: o.vars, memo: o.memo, steps: o.steps });
const trail = (o: StepOutcome) => o.history.map((h) => `${h.node}:${h.outcome}`);

describe('advance', () => {
  it('runs a send and passes a zero wait in one pass, ending at the end of the path', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'a', type: 'send', channel: 'sms', content: { body: 'x' }, next: 'w' },
        { id: 'w', type: 'wait', duration: '0s', next: 'b' },
        { id: 'b', type: 'send', channel: 'email', content: { subject: 's', body: 'y' } },
      ],
    };
    const o = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    expect(trail(o)).toEqual(['a:queued', 'w:waited', 'b:queued', 'b:completed']);
    expect(o.status).toBe('completed');
    expect(o.messages.map((m) => [m.node, m.channel, m.status, m.to_address, m.idempotency_key])).toEqual([
      ['a', 'sms', 'queued', '+14155552671', 'e1:a:0'],
      ['b', 'email', 'queued', 'ada@example.com', 'e1:b:2'],
    ]);
    expect(o.steps).toBe(4);
  });

  it('gives the same idempotency keys when the same state is evaluated again', () => {
    const def: JourneyDefinition = { entry: { api: true }, nodes: [{ id: 'a', type: 'send', channel: 'sms', content: { body: 'x' } }] };
    const once = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    const again = advance(fresh(), env(def, '2026-03-02T15:00:05Z'));
    expect(again.messages[0]!.idempotency_key).toBe(once.messages[0]!.idempotency_key);
  });

  it('waits a calendar day across a daylight-saving change in the recipient\'s zone', () => {
    const def: JourneyDefinition = { entry: { api: true }, nodes: [{ id: 'w', type: 'wait', duration: '1d', next: 'x' }, { id: 'x', type: 'exit' }] };
    // 2026-03-08 is the spring-forward day in New York: a calendar day is 23 hours.
    const o = advance(fresh(), env(def, '2026-03-07T14:30:00Z'));
    expect(o.due_at?.toISOString()).toBe('2026-03-08T13:30:00.000Z');
    expect(o.wait).toEqual({ kind: 'time', node: 'w' });
    const next = advance(stateAfter(o, fresh()), env(def, '2026-03-08T13:30:00Z'));
    expect(trail(next)).toEqual(['w:waited', 'x:exit', 'x:completed']);
  });

  it('waits until the next weekday 09:30 local', () => {
    const def: JourneyDefinition = { entry: { api: true }, nodes: [{ id: 'w', type: 'wait', until_time: { time: '09:30', days: [1, 2, 3, 4, 5] } }] };
    // Friday 2026-03-06 10:00 in New York → Monday the 9th 09:30, already daylight time (UTC-4).
    const o = advance(fresh(), env(def, '2026-03-06T15:00:00Z'));
    expect(o.due_at?.toISOString()).toBe('2026-03-09T13:30:00.000Z');
  });

  it('waits until three days before a date attribute, at the given time, and skips when it is missing', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'w', type: 'wait', until_date: { attribute: 'renewal_date', offset: '-3d', time: '10:00' }, next: 'remind' },
        { id: 'remind', type: 'send', channel: 'sms', content: { body: 'renewal soon' } },
      ],
    };
    const o = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    expect(o.due_at?.toISOString()).toBe('2026-03-17T14:00:00.000Z');
    const none = advance(fresh(), env(def, '2026-03-02T15:00:00Z', { contact: { ...ada, attributes: {} } }));
    expect(trail(none)).toEqual(['w:skipped', 'remind:queued', 'remind:completed']);
  });

  it('takes on_past when the date moment has already gone by or is missing, and waits as usual when it is ahead', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'w', type: 'wait', until_date: { attribute: 'renewal_date', offset: '-30d', time: '10:00' }, on_past: 'late', next: 'remind' },
        { id: 'remind', type: 'send', channel: 'sms', content: { body: 'renewal in a month' } },
        { id: 'late', type: 'exit' },
      ],
    };
    // ada renews 2026-03-20: 30 days before is 2026-02-18, gone by on 2026-03-02.
    expect(trail(advance(fresh(), env(def, '2026-03-02T15:00:00Z')))).toEqual(['w:past', 'late:exit', 'late:completed']);
    expect(trail(advance(fresh(), env(def, '2026-03-02T15:00:00Z', { contact: { ...ada, attributes: {} } })))).toEqual(['w:skipped', 'late:exit', 'late:completed']);
    const ahead = advance(fresh(), env(def, '2026-02-01T15:00:00Z'));
    expect(trail(ahead)).toEqual(['w:waiting']);
    expect(ahead.due_at?.toISOString()).toBe('2026-02-18T15:00:00.000Z');
  });

  it('branches on attributes, tags and consent in order, falling back to the default', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        {
          id: 'b',
          type: 'branch',
          branches: [
            { name: 'basic', when: { attribute: 'plan', value: 'basic' }, next: 'x1' },
            { name: 'vip-sms', when: { all: [{ tag: 'vip' }, { consent: 'sms' }] }, next: 'x2' },
          ],
          default: 'x3',
        },
        { id: 'x1', type: 'exit' },
        { id: 'x2', type: 'exit' },
        { id: 'x3', type: 'exit' },
      ],
    };
    expect(trail(advance(fresh(), env(def, '2026-03-02T15:00:00Z')))[1]).toBe('x2:exit');
    expect(trail(advance(fresh(), env(def, '2026-03-02T15:00:00Z', { consent: [] })))[1]).toBe('x3:exit');
  });

  it('branches on engagement with an earlier send', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'b', type: 'branch', branches: [{ when: { engaged: { node: 'mail', status: 'opened', within: '2d' } }, next: 'yes' }], default: 'no' },
        { id: 'yes', type: 'exit' },
        { id: 'no', type: 'exit' },
        { id: 'mail', type: 'send', channel: 'email', content: { subject: 's', body: 'b' } },
      ],
    };
    const sent = new Date('2026-03-01T10:00:00Z');
    const opened = { sent_at: sent, delivered_at: sent, opened_at: new Date('2026-03-02T10:00:00Z'), clicked_at: null, replied_at: null, failed_at: null };
    expect(trail(advance(fresh(), env(def, '2026-03-04T10:00:00Z', { messages: { mail: opened } })))[1]).toBe('yes:exit');
    expect(trail(advance(fresh(), env(def, '2026-03-04T10:00:00Z', { messages: { mail: { ...opened, opened_at: null } } })))[1]).toBe('no:exit');
  });

  it('keeps a contact in the same split variant, and records it', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        {
          id: 's',
          type: 'split',
          variants: [
            { name: 'A', weight: 50, next: 'a' },
            { name: 'B', weight: 50, next: 'b' },
          ],
        },
        { id: 'a', type: 'exit' },
        { id: 'b', type: 'exit' },
      ],
    };
    const o1 = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    const o2 = advance(fresh(), env(def, '2026-03-09T15:00:00Z'));
    expect(o1.memo.splits?.s).toBeDefined();
    expect(o2.memo.splits?.s).toBe(o1.memo.splits?.s);
    // A recorded assignment wins over the hash (e.g. the weights changed in a later version).
    const held = advance({ ...fresh(), memo: { splits: { s: 'B' } } }, env(def, '2026-03-02T15:00:00Z'));
    expect(trail(held)).toEqual(['s:split', 'b:exit', 'b:completed']);
  });

  it('waits for an event with a timeout and follows the path of what happened', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'w', type: 'wait', until_event: { events: [{ event: 'purchase' }], timeout: '3d' }, on_event: 'bought', on_timeout: 'nudge' },
        { id: 'bought', type: 'exit' },
        { id: 'nudge', type: 'send', channel: 'sms', content: { body: 'still thinking?' } },
      ],
    };
    const waiting = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    expect(waiting.wait).toEqual({ kind: 'event', node: 'w', events: ['purchase'], reply: false });
    expect(waiting.due_at?.toISOString()).toBe('2026-03-05T15:00:00.000Z');
    const state = stateAfter(waiting, fresh());
    const woken = advance(
      { ...state, wait: { ...waiting.wait!, woken: { kind: 'event', name: 'purchase', properties: { total: 5 }, event_id: 'ev', at: '2026-03-03T00:00:00Z' } } as never },
      env(def, '2026-03-03T00:00:00Z'),
    );
    expect(trail(woken)).toEqual(['w:event', 'bought:exit', 'bought:completed']);
    expect(woken.vars.event).toEqual({ name: 'purchase', properties: { total: 5 }, at: '2026-03-03T00:00:00Z' });
    const timedOut = advance(state, env(def, '2026-03-05T15:00:00Z'));
    expect(trail(timedOut)).toEqual(['w:timeout', 'nudge:queued', 'nudge:completed']);
  });

  it('holds a send for the recipient\'s quiet hours instead of dropping it', () => {
    const def: JourneyDefinition = { entry: { api: true }, nodes: [{ id: 'a', type: 'send', channel: 'sms', content: { body: 'x' } }] };
    const quiet = { quietHours: { sms: { start: '08:00', end: '21:00' } }, sendWindow: ALL_DAY, caps: [], spreadMinutes: 10 };
    // 23:00 in New York.
    const o = advance(fresh(), env(def, '2026-03-03T04:00:00Z', { policy: quiet }));
    expect(o.messages).toEqual([]);
    expect(o.wait).toEqual({ kind: 'send', node: 'a', reason: 'quiet_hours' });
    expect(o.due_at!.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-03T13:00:00Z'));
    const later = advance(stateAfter(o, fresh()), env(def, o.due_at!.toISOString(), { policy: quiet }));
    expect(trail(later)).toEqual(['a:queued', 'a:completed']);
  });

  it('records a blocked send and continues: suppressed address', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'a', type: 'send', channel: 'sms', content: { body: 'x' }, next: 'b' },
        { id: 'b', type: 'exit' },
      ],
    };
    const o = advance(fresh(), env(def, '2026-03-02T15:00:00Z', { suppressed: () => true }));
    expect(o.messages.map((m) => [m.status, m.reason])).toEqual([['suppressed', 'suppressed']]);
    expect(trail(o)).toEqual(['a:blocked', 'b:exit', 'b:completed']);
  });

  it('counts its own sends toward the frequency cap within one pass', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'a', type: 'send', channel: 'sms', content: { body: 'x' }, next: 'b' },
        { id: 'b', type: 'send', channel: 'sms', content: { body: 'y' } },
      ],
    };
    const o = advance(fresh(), env(def, '2026-03-02T15:00:00Z', { policy: { quietHours: {}, sendWindow: ALL_DAY, caps: [{ channel: 'sms', limit: 1, period: '1d' }], spreadMinutes: 0 } }));
    expect(o.messages.map((m) => m.node)).toEqual(['a']);
    expect(o.wait).toMatchObject({ kind: 'send', node: 'b', reason: 'frequency_cap' });
    expect(o.due_at!.getTime()).toBeGreaterThanOrEqual(Date.parse('2026-03-03T15:00:00Z'));
  });

  it('updates attributes with Liquid and sees the change in later conditions', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'u', type: 'action', update: { attributes: { stage: 'won-{{ trigger.deal }}', plan: null }, add_tags: ['customer'], remove_tags: ['vip'] }, next: 'b' },
        { id: 'b', type: 'branch', branches: [{ when: { all: [{ attribute: 'stage', value: 'won-42' }, { tag: 'vip', present: false }] }, next: 'ok' }], default: 'ko' },
        { id: 'ok', type: 'exit' },
        { id: 'ko', type: 'exit' },
      ],
    };
    const o = advance(fresh({ trigger: { deal: 42 } }), env(def, '2026-03-02T15:00:00Z'));
    expect(o.contactUpdate).toEqual({ attributes: { stage: 'won-42', plan: null }, add_tags: ['customer'], remove_tags: ['vip'] });
    expect(trail(o)[1]).toBe('b:branch');
    expect(trail(o)[2]).toBe('ok:exit');
  });

  it('queues a webhook call and waits for its answer, keeping it in the variables', () => {
    const def: JourneyDefinition = {
      entry: { api: true },
      nodes: [
        { id: 'h', type: 'action', webhook: { url: 'https://example.com/q', save_as: 'quote', timeout: '10s' }, next: 's' },
        { id: 's', type: 'send', channel: 'sms', content: { body: '{{ vars.quote.price }}' } },
      ],
    };
    const o = advance(fresh(), env(def, '2026-03-02T15:00:00Z'));
    expect(o.messages).toMatchObject([{ kind: 'action_webhook', node: 'h', status: 'queued' }]);
    expect(o.wait).toEqual({ kind: 'webhook', node: 'h' });
    expect(o.due_at!.toISOString()).toBe('2026-03-02T15:00:15.000Z');
    const answered = advance(
      { ...stateAfter(o, fresh()), wait: { kind: 'webhook', node: 'h', woken: { kind: 'webhook', status: 200, body: { price: 9 } } } },
      env(def, '2026-03-02T15:00:01Z'),
    );
    expect(answered.vars.quote).toEqual({ price: 9 });
    expect(trail(answered)).toEqual(['h:webhook_answered', 's:queued', 's:completed']);
    const late = advance(stateAfter(o, fresh()), env(def, '2026-03-02T15:00:15Z'));
    expect(late.vars.quote).toBeNull();
    expect(trail(late)[0]).toBe('h:webhook_failed');
  });

  it('fails an enrollment whose node vanished rather than looping', () => {
    const def: JourneyDefinition = { entry: { api: true }, nodes: [{ id: 'a', type: 'exit' }] };
    const o = advance({ ...fresh(), node: 'gone' }, env(def, '2026-03-02T15:00:00Z'));
    expect(o.status).toBe('failed');
    expect(o.end_reason).toMatch(/gone/);
  });
});
