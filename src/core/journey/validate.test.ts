import { describe, expect, it } from 'vitest';
import { checkDefinition, checkPublishable, compileJourney, type JourneyProblem } from './validate.js';

/** Reach a contact on WhatsApp, wait for the answer, and A/B test the follow-up offer with those who say yes. */
const example = () => ({
  name: 'QR welcome',
  entry: { event: 'qr_scanned', where: { property: 'source', value: 'poster' } },
  reentry: { mode: 'cooldown', cooldown: '30d' },
  send_window: { days: [1, 2, 3, 4, 5], start: '09:00', end: '18:00', time_zone: 'recipient' },
  goals: [{ event: 'purchase', where: { property: 'total', op: 'gt', value: 0 } }],
  exit_on: [{ event: 'opted_out' }],
  nodes: [
    {
      id: 'welcome',
      type: 'send',
      channel: 'whatsapp',
      content: {
        body: 'Hi {{ contact.first_name | default: "there" }}! Want 10% off? Reply YES.',
        whatsapp_template: { name: 'welcome_offer', language: 'en', parameters: ['{{ contact.first_name }}'] },
      },
      next: 'wait_reply',
    },
    {
      id: 'wait_reply',
      type: 'wait',
      until_event: { reply: {}, events: [{ event: 'purchase', where: { property: 'total', op: 'gte', value: 1 } }], timeout: '2d' },
      on_reply: 'by_reply',
      on_event: 'done',
      next: 'done',
    },
    {
      id: 'by_reply',
      type: 'branch',
      branches: [
        { name: 'yes', when: { reply_to: 'welcome', text: { op: 'in', value: ['yes', 'y', 'sim'] } }, next: 'ab' },
        { name: 'engaged', when: { all: [{ engaged: { node: 'welcome', status: 'delivered', within: '1h' } }, { event: 'page_view', within: '7d', min_count: 2 }] }, next: 'ab' },
        { name: 'stop', when: { reply_to: 'any', text: { op: 'matches', value: '^(stop|no)\\b' } }, next: 'done' },
      ],
      default: 'done',
    },
    {
      id: 'ab',
      type: 'split',
      variants: [
        { name: 'email', weight: 50, next: 'offer_email' },
        { name: 'sms', weight: 50, next: 'offer_sms' },
      ],
    },
    { id: 'offer_email', type: 'send', channel: 'email', content: { template: 'offer' }, next: 'mark' },
    { id: 'offer_sms', type: 'send', channel: 'sms', content: { body: 'Your code: {{ vars.trigger.code | upcase }}' }, next: 'mark' },
    { id: 'mark', type: 'action', update: { attributes: { offer: '{{ journey.name }}', offered: true }, add_tags: ['offered'] }, next: 'crm' },
    {
      id: 'crm',
      type: 'action',
      webhook: { url: 'https://crm.example.com/leads/{{ contact.external_id }}', method: 'POST', body: { email: '{{ contact.email }}', tags: ['{{ contact.tags | join: "," }}'] }, save_as: 'crm' },
      next: 'done',
    },
    { id: 'done', type: 'exit' },
  ],
});

type Def = ReturnType<typeof example> & Record<string, unknown>;
const ctx = (templates: string[] = ['offer']) => ({ templateExists: (name: string) => templates.includes(name) });
const draft = (def: unknown) => checkDefinition(def).problems;
const journey = (nodes: unknown[], extra: Record<string, unknown> = {}) => ({ entry: { api: true }, nodes, ...extra });
const send = (id: string, next?: string, extra: Record<string, unknown> = {}) => ({ id, type: 'send', channel: 'sms', content: { body: 'hi' }, ...(next ? { next } : {}), ...extra });
const exit = (id = 'done') => ({ id, type: 'exit' });
const branchOn = (when: unknown) => journey([{ id: 'b', type: 'branch', branches: [{ when, next: 'done' }] }, exit()]);
const whenAt = 'nodes[0].branches[0].when';

function publish(def: unknown, templates?: string[]): JourneyProblem[] {
  const { definition, problems } = checkDefinition(def);
  expect(problems).toEqual([]);
  return checkPublishable(definition, ctx(templates));
}

describe('the example journey', () => {
  it('passes both checks', () => {
    const { definition, problems } = checkDefinition(example());
    expect(problems).toEqual([]);
    expect(checkPublishable(definition, ctx())).toEqual([]);
  });

  it('compiles', () => {
    const def = example() as Def;
    const c = compileJourney(checkDefinition(def).definition);
    expect(c.start).toBe('welcome');
    expect([...c.nodes.keys()]).toEqual(def.nodes.map((n) => n.id));
    expect(c.nodes.get('ab')?.type).toBe('split');
    expect(c.channels).toEqual(['whatsapp', 'email', 'sms']);
    expect(c.entryEvent).toBe('qr_scanned');
    expect(c.waitsForEvents).toBe(true);
    expect(c.needs).toEqual({ eventHistory: new Map([['page_view', 7 * 86_400_000]]), engagement: true, replies: true });
  });
});

describe('checkDefinition: shape', () => {
  it('wants an object', () => {
    expect(draft(null)).toEqual([{ field: '', message: 'must be an object (a journey definition)' }]);
    expect(draft([])).toEqual([{ field: '', message: 'must be an object (a journey definition)' }]);
  });

  it('names missing and unknown top-level fields', () => {
    expect(draft({})).toEqual([
      { field: 'entry', message: 'is required' },
      { field: 'nodes', message: 'is required' },
    ]);
    const p = draft({ ...journey([exit()]), colour: 'red' });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ field: 'colour', message: expect.stringMatching(/^is not a known field; expected .*entry.*nodes/) });
    expect(draft(journey([]))).toEqual([{ field: 'nodes', message: 'must have at least 1 item' }]);
    expect(draft(journey(Array.from({ length: 501 }, () => 'junk')))).toEqual([{ field: 'nodes', message: 'must have at most 500 items' }]);
  });

  it('names the node and the field inside it', () => {
    const def = journey([{ id: 'welcome', type: 'send', channel: 'sms', content: { body: 42 } }]);
    expect(draft(def)).toEqual([{ field: 'nodes[0].content.body', node: 'welcome', message: 'must be a string' }]);
  });

  it('folds a union into one line saying what it accepts', () => {
    expect(draft(journey([{ ...send('s'), channel: 'pigeon' }]))).toEqual([
      { field: 'nodes[0].channel', node: 's', message: 'must be one of "sms", "email", "whatsapp", "voice", "webhook"' },
    ]);
    expect(draft(branchOn({ reply_to: 7 }))).toEqual([{ field: `${whenAt}.reply_to`, node: 'b', message: 'must be a node id (a letter, then up to 63 letters, digits, _ or -) or "any"' }]);
    expect(draft(branchOn({ attribute: 'a', value: { x: 1 } }))).toEqual([{ field: `${whenAt}.value`, node: 'b', message: 'must be a string, a number, a boolean, null or a list' }]);
  });

  it('checks a node only against the schema of its type', () => {
    expect(draft(journey([{ id: 'x', type: 'teleport', to: 'y' }]))).toEqual([
      { field: 'nodes[0].type', node: 'x', message: 'unknown node type "teleport"; expected one of send, wait, branch, split, action, exit' },
    ]);
    expect(draft(journey([{ id: 'x' }]))).toEqual([{ field: 'nodes[0].type', node: 'x', message: 'is required: one of send, wait, branch, split, action, exit' }]);
    expect(draft(journey(['send']))).toEqual([{ field: 'nodes[0]', message: 'must be an object (a node)' }]);
  });

  it('names unknown, missing and malformed node fields', () => {
    expect(draft(journey([{ ...exit('e'), colour: 'red' }]))).toEqual([{ field: 'nodes[0].colour', node: 'e', message: 'is not a known field; expected id, name, type' }]);
    expect(draft(journey([{ id: 'b', type: 'branch' }]))).toEqual([{ field: 'nodes[0].branches', node: 'b', message: 'is required' }]);
    expect(draft(journey([{ id: 'w', type: 'wait', duration: '2 days' }]))).toEqual([
      { field: 'nodes[0].duration', node: 'w', message: 'must be a duration such as "30s", "15m", "2h", "3d", "1w" or "1d12h"' },
    ]);
    expect(draft(journey([{ id: '1st', type: 'exit' }]))).toEqual([{ field: 'nodes[0].id', node: '1st', message: 'must be a node id (a letter, then up to 63 letters, digits, _ or -)' }]);
    expect(draft(journey([{ id: 's', type: 'split', variants: [{ name: 'A', weight: 0, next: 'done' }] }, exit()]))).toEqual([
      { field: 'nodes[0].variants', node: 's', message: 'must have at least 2 items' },
      { field: 'nodes[0].variants[0].weight', node: 's', message: 'must be more than 0' },
    ]);
    expect(draft(journey([exit()], { send_window: { days: [1, 1], start: '9:00', end: '18:00' } }))).toEqual([
      { field: 'send_window.days', message: 'must not repeat an item (items 0 and 1 are the same)' },
      { field: 'send_window.start', message: 'must be a local time HH:MM (24-hour)' },
    ]);
  });

  it('reads attribute keys in paths as keys, list positions as indexes', () => {
    const def = journey([{ id: 'a', type: 'action', update: { attributes: { '0': 'x' }, add_tags: ['ok', ''] } }]);
    expect(draft(def)).toEqual([{ field: 'nodes[0].update.add_tags[1]', node: 'a', message: 'must not be empty' }]);
  });
});

describe('checkDefinition: rules', () => {
  it('refuses duplicate node ids', () => {
    expect(draft(journey([send('a'), send('b'), send('a')]))).toEqual([{ field: 'nodes[2].id', node: 'a', message: '"a" is already the id of nodes[0]' }]);
  });

  it('refuses a start that names no node', () => {
    expect(draft(journey([exit()], { start: 'begin' }))).toEqual([{ field: 'start', message: '"begin" names no node' }]);
  });

  it('refuses every target that names no node', () => {
    const def = journey([
      send('s', 'x1'),
      { id: 'w', type: 'wait', until_event: { events: [{ event: 'e' }], reply: {}, timeout: '1d' }, on_event: 'x2', on_reply: 'x3', on_timeout: 'x4', next: 'x5' },
      { id: 'b', type: 'branch', branches: [{ when: { tag: 't' }, next: 'x6' }], default: 'x7' },
      { id: 'sp', type: 'split', variants: [{ name: 'A', weight: 1, next: 's' }, { name: 'B', weight: 1, next: 'x8' }] },
    ]);
    expect(draft(def)).toEqual([
      { field: 'nodes[0].next', node: 's', message: '"x1" names no node' },
      { field: 'nodes[1].next', node: 'w', message: '"x5" names no node' },
      { field: 'nodes[1].on_event', node: 'w', message: '"x2" names no node' },
      { field: 'nodes[1].on_reply', node: 'w', message: '"x3" names no node' },
      { field: 'nodes[1].on_timeout', node: 'w', message: '"x4" names no node' },
      { field: 'nodes[2].default', node: 'b', message: '"x7" names no node' },
      { field: 'nodes[2].branches[0].next', node: 'b', message: '"x6" names no node' },
      { field: 'nodes[3].variants[1].next', node: 'sp', message: '"x8" names no node' },
    ]);
  });

  it('wants exactly one mode per wait', () => {
    expect(draft(journey([{ id: 'w', type: 'wait' }]))).toEqual([{ field: 'nodes[0]', node: 'w', message: 'needs one of duration, until_time, until_date, until_event' }]);
    expect(draft(journey([{ id: 'w', type: 'wait', duration: '1d', until_time: { time: '09:00' } }]))).toEqual([
      { field: 'nodes[0]', node: 'w', message: 'has duration and until_time; use exactly one of duration, until_time, until_date, until_event' },
    ]);
  });

  it('takes on_past only on an until_date wait', () => {
    expect(draft(journey([{ id: 'w', type: 'wait', duration: '1d', on_past: 'w' }]))).toEqual([{ field: 'nodes[0].on_past', node: 'w', message: 'is only used with until_date' }]);
    expect(draft(journey([{ id: 'w', type: 'wait', until_date: { attribute: 'renewal_date' }, on_past: 'nowhere' }]))).toEqual([
      { field: 'nodes[0].on_past', node: 'w', message: '"nowhere" names no node' },
    ]);
  });

  it('wants exactly one kind per action', () => {
    expect(draft(journey([{ id: 'a', type: 'action' }]))).toEqual([{ field: 'nodes[0]', node: 'a', message: 'needs one of update, webhook, emit' }]);
    expect(draft(journey([{ id: 'a', type: 'action', update: { add_tags: ['x'] }, emit: { event: 'e' } }]))).toEqual([
      { field: 'nodes[0]', node: 'a', message: 'has update and emit; use exactly one of update, webhook, emit' },
    ]);
  });

  it('keeps on_event, on_reply and on_timeout to waits for events', () => {
    expect(draft(journey([{ id: 'w', type: 'wait', duration: '1d', on_event: 'done', on_reply: 'done', on_timeout: 'done' }, exit()]))).toEqual([
      { field: 'nodes[0].on_event', node: 'w', message: 'is only used with until_event; use next' },
      { field: 'nodes[0].on_reply', node: 'w', message: 'is only used with until_event; use next' },
      { field: 'nodes[0].on_timeout', node: 'w', message: 'is only used with until_event; use next' },
    ]);
    expect(draft(journey([{ id: 'w', type: 'wait', until_event: { events: [{ event: 'e' }], timeout: '1d' }, on_reply: 'done' }, exit()]))).toEqual([
      { field: 'nodes[0].on_reply', node: 'w', message: 'is only used when until_event has reply' },
    ]);
    expect(draft(journey([{ id: 'w', type: 'wait', until_event: { reply: { channel: 'sms' }, timeout: '1d' }, on_event: 'done' }, exit()]))).toEqual([
      { field: 'nodes[0].on_event', node: 'w', message: 'is only used when until_event has events' },
    ]);
  });

  it('wants until_event to wait for something', () => {
    expect(draft(journey([{ id: 'w', type: 'wait', until_event: { timeout: '1d' } }]))).toEqual([
      { field: 'nodes[0].until_event', node: 'w', message: 'needs events, reply or both: otherwise it only waits for the timeout (use duration)' },
    ]);
  });

  it('wants a cooldown exactly when re-entry is by cooldown', () => {
    expect(draft(journey([exit()], { reentry: { mode: 'cooldown' } }))).toEqual([{ field: 'reentry.cooldown', message: 'is required when mode is "cooldown"' }]);
    expect(draft(journey([exit()], { reentry: { mode: 'always', cooldown: '1d' } }))).toEqual([{ field: 'reentry.cooldown', message: 'is only used when mode is "cooldown" (mode is "always")' }]);
    expect(draft(journey([exit()], { reentry: { mode: 'cooldown', cooldown: '7d', max_entries: 3 } }))).toEqual([]);
  });

  it('wants the send window in the recipient\'s, the tenant\'s or an IANA zone', () => {
    const window = (time_zone: string) => journey([exit()], { send_window: { days: [1, 2], start: '09:00', end: '17:00', time_zone } });
    expect(draft(window('recipient'))).toEqual([]);
    expect(draft(window('tenant'))).toEqual([]);
    expect(draft(window('Europe/Paris'))).toEqual([]);
    expect(draft(window('Mars/Olympus'))).toEqual([{ field: 'send_window.time_zone', message: '"Mars/Olympus" is not "recipient", "tenant" or an IANA time zone (e.g. "Europe/Paris")' }]);
  });

  it('wants some way in', () => {
    expect(draft({ entry: {}, nodes: [exit()] })).toEqual([{ field: 'entry', message: 'needs at least one of event, api or campaign: nothing could enrol a contact' }]);
    expect(draft({ entry: { api: false, where: { tag: 'x' } }, nodes: [exit()] })).toHaveLength(1);
    expect(draft({ entry: { event: 'signup' }, nodes: [exit()] })).toEqual([]);
    expect(draft({ entry: { campaign: true }, nodes: [exit()] })).toEqual([]);
  });

  it('refuses two variants of one split with the same name', () => {
    const def = journey([{ id: 's', type: 'split', variants: [{ name: 'A', weight: 1, next: 'done' }, { name: 'A', weight: 1, next: 'done' }] }, exit()]);
    expect(draft(def)).toEqual([{ field: 'nodes[0].variants[1].name', node: 's', message: '"A" is already the name of variants[0]' }]);
  });
});

describe('checkDefinition: conditions', () => {
  it('names an unknown condition once, with what is expected', () => {
    expect(draft(branchOn({ colour: 'red' }))).toEqual([
      { field: whenAt, node: 'b', message: 'unknown condition ("colour"); expected one of all, any, not, attribute, field, property, variable, tag, consent, event, reply_to, engaged' },
    ]);
    expect(draft(branchOn('plan = pro'))).toEqual([{ field: whenAt, node: 'b', message: 'must be a condition (an object such as {"attribute": "plan", "value": "pro"})' }]);
  });

  it('checks a leaf against the schema its key picks', () => {
    expect(draft(branchOn({ attribute: 'plan', op: 'equals', value: 'pro' }))).toEqual([
      { field: `${whenAt}.op`, node: 'b', message: expect.stringMatching(/^must be one of "eq", "neq", .*"not_exists"$/) },
    ]);
    expect(draft(branchOn({ field: 'age', value: 3 }))).toEqual([
      { field: `${whenAt}.field`, node: 'b', message: 'must be one of "name", "email", "phone", "whatsapp", "time_zone", "locale", "external_id"' },
    ]);
    expect(draft(branchOn({ attribute: 'plan', tag: 'vip' }))).toEqual([
      { field: `${whenAt}.tag`, node: 'b', message: 'is not a known field; expected attribute, op, value' },
    ]);
    expect(draft(branchOn({ engaged: { node: 'welcome', status: 'read' } }))).toEqual([
      { field: `${whenAt}.engaged.status`, node: 'b', message: 'must be one of "sent", "delivered", "opened", "clicked", "replied", "failed"' },
    ]);
    expect(draft(branchOn({ event: 'purchase', within: 'a week' }))).toEqual([
      { field: `${whenAt}.within`, node: 'b', message: 'must be a duration such as "30s", "15m", "2h", "3d", "1w" or "1d12h"' },
    ]);
  });

  it('walks all, any and not, naming the path down to the leaf', () => {
    const when = { all: [{ tag: 'x' }, { any: [{ not: { attribute: 'a', op: 'gt', value: true } }] }] };
    expect(draft(branchOn(when))).toEqual([{ field: `${whenAt}.all[1].any[0].not.value`, node: 'b', message: 'must be a number, a date or a string with op "gt"' }]);
    expect(draft(branchOn({ all: [] }))).toEqual([{ field: `${whenAt}.all`, node: 'b', message: 'must have at least one condition' }]);
    expect(draft(branchOn({ any: { tag: 'x' } }))).toEqual([{ field: `${whenAt}.any`, node: 'b', message: 'must be a list of conditions' }]);
    expect(draft(branchOn({ not: { tag: 'x' }, tag: 'y' }))).toEqual([{ field: `${whenAt}.tag`, node: 'b', message: 'is not allowed beside not; combine conditions inside it' }]);
  });

  it('refuses conditions nested beyond reason', () => {
    let when: unknown = { tag: 'x' };
    for (let i = 0; i < 40; i++) when = { not: when };
    expect(draft(branchOn(when))).toEqual([{ field: `${whenAt}${'.not'.repeat(33)}`, node: 'b', message: 'nests deeper than 32 levels' }]);
  });

  it('checks op against value', () => {
    const cases: [unknown, string, string][] = [
      [{ attribute: 'a', op: 'exists', value: 1 }, 'value', 'is not used with op "exists"'],
      [{ attribute: 'a', op: 'not_exists', value: null }, 'value', 'is not used with op "not_exists"'],
      [{ attribute: 'a', op: 'in', value: 'pro' }, 'value', 'must be a list with op "in"'],
      [{ attribute: 'a', op: 'not_in' }, 'value', 'is required with op "not_in"'],
      [{ attribute: 'a', op: 'eq', value: ['a', 'b'] }, 'value', 'must be a single value with op "eq" (use "in" for a list)'],
      [{ attribute: 'a', value: ['a', 'b'] }, 'value', 'is a list; use op "in" to match any of several values'],
      [{ attribute: 'a', op: 'matches', value: '(' }, 'value', 'is not a valid regular expression: Invalid regular expression: /(/i: Unterminated group'],
      [{ attribute: 'a', op: 'matches', value: 3 }, 'value', 'must be a regular expression (a string) with op "matches"'],
      [{ attribute: 'a', op: 'lte', value: null }, 'value', 'must be a number, a date or a string with op "lte"'],
      [{ attribute: 'a', op: 'gte' }, 'value', 'is required with op "gte"'],
      [{ attribute: 'a', op: 'contains', value: false }, 'value', 'must be a string or a number with op "contains"'],
      [{ variable: 'crm.tier', op: 'starts_with', value: null }, 'value', 'must be a string or a number with op "starts_with"'],
      [{ property: 'total', op: 'in', value: 3 }, 'value', 'must be a list with op "in"'],
      [{ field: 'email', op: 'exists', value: 'x' }, 'value', 'is not used with op "exists"'],
      [{ reply_to: 'any', text: { op: 'in', value: 'yes' } }, 'text.value', 'must be a list with op "in"'],
      [{ reply_to: 'any', text: { op: 'matches', value: '[' } }, 'text.value', 'is not a valid regular expression: Invalid regular expression: /[/i: Unterminated character class'],
      [{ event: 'purchase', max_count: 0 }, 'max_count', 'is less than min_count (1, the default), so this never holds; for "did not", set min_count and max_count to 0'],
      [{ event: 'purchase', min_count: 3, max_count: 2 }, 'max_count', 'is less than min_count (3), so this never holds; for "did not", set min_count and max_count to 0'],
    ];
    for (const [when, field, message] of cases) expect(draft(branchOn(when))).toEqual([{ field: `${whenAt}.${field}`, node: 'b', message }]);
    for (const when of [{ attribute: 'a', op: 'exists' }, { attribute: 'a', op: 'in', value: [] }, { attribute: 'a', op: 'eq', value: null }, { attribute: 'a', op: 'matches', value: '^a+$' }, { event: 'e', min_count: 0, max_count: 0 }]) {
      expect(draft(branchOn(when))).toEqual([]);
    }
  });

  it('checks conditions wherever they are', () => {
    const bad = { attribute: 'a', op: 'in', value: 1 };
    const def = {
      entry: { event: 'e', where: bad },
      goals: [{ event: 'g', where: bad }],
      exit_on: [{ event: 'x' }, { event: 'y', where: bad }],
      nodes: [{ id: 'w', type: 'wait', until_event: { events: [{ event: 'e', where: bad }], timeout: '1d' } }],
    };
    expect(draft(def).map((p) => [p.field, p.node])).toEqual([
      ['entry.where.value', undefined],
      ['goals[0].where.value', undefined],
      ['exit_on[1].where.value', undefined],
      ['nodes[0].until_event.events[0].where.value', 'w'],
    ]);
  });
});

describe('checkPublishable: graph', () => {
  it('wants every node reachable from the start', () => {
    expect(publish(journey([send('a'), send('b', 'done'), exit()]))).toEqual([
      { field: 'nodes[1]', node: 'b', message: 'is not reachable from the start node "a"' },
      { field: 'nodes[2]', node: 'done', message: 'is not reachable from the start node "a"' },
    ]);
    expect(publish(journey([send('a'), send('b')], { start: 'b' }))).toEqual([{ field: 'nodes[0]', node: 'a', message: 'is not reachable from the start node "b"' }]);
  });

  it('refuses a loop without a wait', () => {
    const def = journey([
      send('hello', 'check'),
      { id: 'check', type: 'branch', branches: [{ when: { tag: 'done' }, next: 'done' }], default: 'tag' },
      { id: 'tag', type: 'action', update: { add_tags: ['seen'] }, next: 'check' },
      exit(),
    ]);
    expect(publish(def)).toEqual([{ field: 'nodes[1].default', node: 'check', message: 'loops back without a wait: check → tag → check; put a wait of some duration in the loop' }]);
  });

  it('refuses a node that leads to itself', () => {
    const def = journey([{ id: 'b', type: 'branch', branches: [{ when: { tag: 'x' }, next: 'done' }], default: 'b' }, exit()]);
    expect(publish(def)).toEqual([{ field: 'nodes[0].default', node: 'b', message: 'loops back without a wait: b → b; put a wait of some duration in the loop' }]);
  });

  it('does not count a wait of zero as a wait', () => {
    const loop = (duration: string) =>
      journey([
        send('nudge', 'pause'),
        { id: 'pause', type: 'wait', duration, next: 'check' },
        { id: 'check', type: 'branch', branches: [{ when: { reply_to: 'nudge' }, next: 'done' }], default: 'nudge' },
        exit(),
      ]);
    expect(publish(loop('0s'))).toEqual([{ field: 'nodes[0].next', node: 'nudge', message: 'loops back without a wait: nudge → pause → check → nudge; put a wait of some duration in the loop' }]);
    expect(publish(loop('0d0h'))).toHaveLength(1);
    expect(publish(loop('1h'))).toEqual([]);
    expect(publish(loop('10s'))).toEqual([]);
  });

  it('lets every wait mode but a zero duration break a loop', () => {
    const loop = (wait: Record<string, unknown>) =>
      journey([send('nudge', 'pause'), { id: 'pause', type: 'wait', ...wait }, { id: 'check', type: 'branch', branches: [{ when: { tag: 'stop' }, next: 'done' }], default: 'nudge' }, exit()]);
    expect(publish(loop({ until_time: { time: '09:00' }, next: 'check' }))).toEqual([]);
    expect(publish(loop({ until_date: { attribute: 'renewal', offset: '-3d' }, next: 'check' }))).toEqual([]);
    expect(publish(loop({ until_event: { reply: {}, timeout: '1d' }, next: 'check' }))).toEqual([]);
  });

  it('wants every path to end', () => {
    const def = journey([send('pulse', 'week'), { id: 'week', type: 'wait', duration: '1w', next: 'pulse' }]);
    expect(publish(def)).toEqual([{ field: 'nodes[0]', node: 'pulse', message: 'never ends: pulse → week → pulse has no way out; give the loop a branch, default or timeout that leads out of it' }]);
    const escapes = journey([
      send('pulse', 'week'),
      { id: 'week', type: 'wait', until_event: { events: [{ event: 'unsubscribe' }], timeout: '1w' }, on_event: 'done', on_timeout: 'pulse' },
      exit(),
    ]);
    expect(publish(escapes)).toEqual([]);
  });

  it('ends a wait for events whose outcome has no target', () => {
    const def = journey([send('a', 'w'), { id: 'w', type: 'wait', until_event: { reply: {}, timeout: '1d' }, on_reply: 'a' }]);
    expect(publish(def)).toEqual([]);
  });

  it('reports the loop, not each node that leads into it', () => {
    const def = journey([send('a', 'b'), send('b', 'c'), send('c', 'w'), { id: 'w', type: 'wait', duration: '1d', next: 'c' }]);
    expect(publish(def)).toEqual([{ field: 'nodes[2]', node: 'c', message: 'never ends: c → w → c has no way out; give the loop a branch, default or timeout that leads out of it' }]);
  });
});

describe('checkPublishable: content', () => {
  it('wants every Liquid template to parse', () => {
    const def = journey([
      send('s', 'e', { content: { body: 'Hi {{ contact.name', whatsapp_template: { name: 't', language: 'en', parameters: ['ok', '{{ x | nope }}'] } }, channel: 'whatsapp' }),
      send('e', 'h', { channel: 'email', content: { subject: '{% if %}', html: '<p>{{ x }}</p>', body: '{% endif %}' } }),
      send('h', 'u', { channel: 'webhook', content: { url: 'https://x.test/{{ a' } }),
      { id: 'u', type: 'action', update: { attributes: { a: '{{ b', n: 1, nested: { deep: ['{{ c }}', '{{ d'] } } }, next: 'wh' },
      { id: 'wh', type: 'action', webhook: { url: '{{ url', body: { list: [{ x: '{% for %}' }] } }, next: 'em' },
      { id: 'em', type: 'action', emit: { event: 'done', properties: { by: '{{ who' } } },
    ]);
    const problems = publish(def);
    expect(problems.map((p) => [p.field, p.node])).toEqual([
      ['nodes[0].content.body', 's'],
      ['nodes[0].content.whatsapp_template.parameters[1]', 's'],
      ['nodes[1].content.subject', 'e'],
      ['nodes[1].content.body', 'e'],
      ['nodes[2].content.url', 'h'],
      ['nodes[3].update.attributes.a', 'u'],
      ['nodes[3].update.attributes.nested.deep[1]', 'u'],
      ['nodes[4].webhook.url', 'wh'],
      ['nodes[4].webhook.body.list[0].x', 'wh'],
      ['nodes[5].emit.properties.by', 'em'],
    ]);
    expect(problems[0]!.message).toBe('is not a valid Liquid template: output "{{ contact.name" not closed, line:1, col:4');
    expect(problems[1]!.message).toBe('is not a valid Liquid template: undefined filter: nope, line:1, col:1');
  });

  it('wants stored templates to exist', () => {
    const def = journey([send('s', undefined, { content: { template: 'gone' } })]);
    expect(publish(def)).toEqual([{ field: 'nodes[0].content.template', node: 's', message: '"gone" names no stored template' }]);
    expect(publish(def, ['gone'])).toEqual([]);
  });

  it('wants what each channel needs', () => {
    const one = (channel: string, content: Record<string, unknown>) => publish(journey([{ id: 's', type: 'send', channel, content }]));
    expect(one('sms', {})).toEqual([{ field: 'nodes[0].content', node: 's', message: 'a sms send needs body or a stored template' }]);
    expect(one('voice', { subject: 'x' })).toEqual([{ field: 'nodes[0].content', node: 's', message: 'a voice send needs body or a stored template' }]);
    expect(one('whatsapp', {})).toEqual([{ field: 'nodes[0].content', node: 's', message: 'a whatsapp send needs body, whatsapp_template or a stored template' }]);
    expect(one('whatsapp', { whatsapp_template: { name: 'hello', language: 'pt_BR' } })).toEqual([]);
    expect(one('sms', { template: 'offer' })).toEqual([]);
    expect(one('email', { body: 'x' })).toEqual([{ field: 'nodes[0].content.subject', node: 's', message: 'is required for an email send without a stored template' }]);
    expect(one('email', { subject: 'x' })).toEqual([{ field: 'nodes[0].content', node: 's', message: 'an email send needs body or html, or a stored template' }]);
    expect(one('email', { subject: 'x', html: '<p>x</p>' })).toEqual([]);
    expect(one('email', { template: 'offer' })).toEqual([]);
    expect(one('webhook', { body: '{}' })).toEqual([{ field: 'nodes[0].content.url', node: 's', message: 'is required for a webhook send' }]);
    expect(one('webhook', { url: 'https://x.test/hook' })).toEqual([]);
  });

  it('wants engaged and reply_to to name a send node of this journey', () => {
    const def = journey([
      send('s', 'w'),
      { id: 'w', type: 'wait', duration: '1d', next: 'b' },
      {
        id: 'b',
        type: 'branch',
        branches: [
          { when: { engaged: { node: 'w', status: 'opened' } }, next: 'done' },
          { when: { any: [{ reply_to: 'ghost' }, { reply_to: 'any' }, { reply_to: 's' }, { engaged: { node: 's', status: 'clicked' } }] }, next: 'done' },
          { when: { not: { engaged: { node: 'nope', status: 'sent' } } }, next: 'done' },
        ],
      },
      exit(),
    ]);
    expect(publish(def)).toEqual([
      { field: 'nodes[2].branches[0].when.engaged.node', node: 'b', message: '"w" is a wait node, not a send node' },
      { field: 'nodes[2].branches[1].when.any[0].reply_to', node: 'b', message: '"ghost" names no node' },
      { field: 'nodes[2].branches[2].when.not.engaged.node', node: 'b', message: '"nope" names no node' },
    ]);
  });

  it('wants attribute paths well formed', () => {
    const def = journey(
      [
        { id: 'w', type: 'wait', until_date: { attribute: 'birthday.', offset: '-1d' }, next: 'b' },
        { id: 'b', type: 'branch', branches: [{ when: { all: [{ attribute: 'address city' }, { attribute: 'address.city-code_2' }] }, next: 'done' }] },
        exit(),
      ],
      { entry: { event: 'x', where: { attribute: 'a..b', value: 1 } } },
    );
    expect(publish(def)).toEqual([
      { field: 'nodes[0].until_date.attribute', node: 'w', message: '"birthday." is not an attribute path: names of letters, digits, _ or -, separated by dots' },
      { field: 'entry.where.attribute', message: '"a..b" is not an attribute path: names of letters, digits, _ or -, separated by dots' },
      { field: 'nodes[1].branches[0].when.all[0].attribute', node: 'b', message: '"address city" is not an attribute path: names of letters, digits, _ or -, separated by dots' },
    ]);
  });
});

describe('compileJourney', () => {
  it('starts at start, else at the first node', () => {
    expect(compileJourney(checkDefinition(journey([send('a'), send('b')])).definition).start).toBe('a');
    expect(compileJourney(checkDefinition(journey([send('a'), send('b')], { start: 'b' })).definition).start).toBe('b');
  });

  it('lists what the engine needs to load', () => {
    const def = checkDefinition(
      journey([send('a', 'w'), { id: 'w', type: 'wait', duration: '1d' }, send('c', undefined, { channel: 'sms' })], {
        entry: { api: true, where: { event: 'visit', within: '1d' } },
        goals: [{ event: 'purchase', where: { event: 'visit' } }],
      }),
    ).definition;
    const c = compileJourney(def);
    expect(c.channels).toEqual(['sms']);
    expect(c.entryEvent).toBeNull();
    expect(c.waitsForEvents).toBe(false);
    expect(c.needs).toEqual({ eventHistory: new Map([['visit', Infinity]]), engagement: false, replies: false });
  });

  it('refuses a definition without its start', () => {
    expect(() => compileJourney({ entry: { api: true }, start: 'x', nodes: [] })).toThrow(/at least one node|does not exist/);
    expect(() => compileJourney({ entry: { api: true }, start: 'x', nodes: [{ id: 'a', type: 'exit' }] })).toThrow('start node "x" does not exist');
  });
});
