import { templateProblems } from '../template.js';
import { durationMs } from '../time.js';
import { collectNeeds, type ConditionNeeds } from './conditions.js';
import type { Condition, EventMatch, JourneyDefinition, JourneyNode, SendChannel, SendNode } from './definition.js';
import { child, isObject, problem, quote, type JourneyProblem, type Push } from './problems.js';

/**
 * The publish stage of the journey checks (the draft stage is in validate.ts): what a version
 * that enrolls contacts needs beyond a well-formed definition, namely a reachable, terminating
 * graph, templates that parse and content each channel can send. Then compileJourney(), which
 * works out once what the engine reads of a published version.
 */

// ---------------------------------------------------------------------------------------------
// Publish checks

export interface PublishContext {
  templateExists(name: string): boolean;
}

const ATTRIBUTE_PATH = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Graph and content rules a version must meet before it enrolls anyone. `def` has passed checkDefinition. */
export function checkPublishable(def: JourneyDefinition, ctx: PublishContext): JourneyProblem[] {
  const problems: JourneyProblem[] = [];
  const push: Push = (field, node, msg) => problems.push(problem(field, node, msg));
  const index = new Map<string, number>();
  def.nodes.forEach((n, i) => index.set(n.id, i));
  const start = def.start ?? def.nodes[0]?.id;
  const graph = edges(def.nodes, index);

  const reachable = new Set<number>();
  if (start !== undefined && index.has(start)) {
    const queue = [index.get(start)!];
    reachable.add(queue[0]!);
    for (let q = 0; q < queue.length; q++) {
      for (const e of graph[queue[q]!]!.out) {
        if (!reachable.has(e.to)) {
          reachable.add(e.to);
          queue.push(e.to);
        }
      }
    }
  }
  def.nodes.forEach((n, i) => {
    if (!reachable.has(i)) push(`nodes[${i}]`, n.id, `is not reachable from the start node ${quote(start)}`);
  });

  // A loop must pass through a wait that takes time, or one step could run forever.
  const breaks = def.nodes.map((n) => n.type === 'wait' && !isZeroWait(n));
  const instant = scc(def.nodes.length, (i) => (reachable.has(i) && !breaks[i] ? graph[i]!.out.filter((e) => reachable.has(e.to) && !breaks[e.to]) : []));
  for (const comp of instant) {
    const first = Math.min(...comp);
    const loop = cycleThrough(first, new Set(comp), graph);
    if (!loop) continue;
    push(loop.field, def.nodes[first]!.id, `loops back without a wait: ${loop.path.map((i) => def.nodes[i]!.id).join(' → ')}; put a wait of some duration in the loop`);
  }

  // An enrollment that cannot end keeps a timer forever: from each reachable node, some path must reach an end.
  const ends = new Set<number>();
  const into: number[][] = def.nodes.map(() => []);
  graph.forEach((g, i) => g.out.forEach((e) => into[e.to]!.push(i)));
  const queue = graph.flatMap((g, i) => (g.canEnd ? [i] : []));
  for (const i of queue) ends.add(i);
  for (let q = 0; q < queue.length; q++) {
    for (const j of into[queue[q]!]!) {
      if (!ends.has(j)) {
        ends.add(j);
        queue.push(j);
      }
    }
  }
  const trapped = (i: number) => reachable.has(i) && !ends.has(i);
  for (const comp of scc(def.nodes.length, (i) => (trapped(i) ? graph[i]!.out.filter((e) => trapped(e.to)) : []))) {
    const members = new Set(comp);
    // Report only the loops nothing leads out of; the nodes leading into them are fixed with them.
    if (comp.some((i) => graph[i]!.out.some((e) => !members.has(e.to)))) continue;
    const first = Math.min(...comp);
    const loop = cycleThrough(first, members, graph);
    const path = loop ? loop.path.map((i) => def.nodes[i]!.id).join(' → ') : def.nodes[first]!.id;
    push(`nodes[${first}]`, def.nodes[first]!.id, `never ends: ${path} has no way out; give the loop a branch, default or timeout that leads out of it`);
  }

  def.nodes.forEach((n, i) => {
    const at = `nodes[${i}]`;
    if (n.type === 'send') sendProblems(n, at, ctx, push);
    else if (n.type === 'action') {
      if (n.update?.attributes) liquidDeep(n.update.attributes, `${at}.update.attributes`, n.id, push);
      if (n.webhook) {
        liquid(n.webhook.url, `${at}.webhook.url`, n.id, push);
        if (n.webhook.body !== undefined) liquidDeep(n.webhook.body, `${at}.webhook.body`, n.id, push);
      }
      if (n.emit?.properties) liquidDeep(n.emit.properties, `${at}.emit.properties`, n.id, push);
    } else if (n.type === 'wait' && n.until_date && !ATTRIBUTE_PATH.test(n.until_date.attribute)) {
      push(`${at}.until_date.attribute`, n.id, attributePathMessage(n.until_date.attribute));
    }
  });

  if (def.result_webhook) {
    const wrong = templateProblems(def.result_webhook.url);
    if (wrong !== null) push('result_webhook.url', undefined, `is not a valid Liquid template: ${wrong}`);
  }

  forEachCondition(def, (cond, at, node) => {
    if ('attribute' in cond && !ATTRIBUTE_PATH.test(cond.attribute)) push(`${at}.attribute`, node, attributePathMessage(cond.attribute));
    else if ('engaged' in cond) sendTarget(cond.engaged.node, `${at}.engaged.node`, node, def.nodes, index, push);
    else if ('reply_to' in cond && cond.reply_to !== 'any') sendTarget(cond.reply_to, `${at}.reply_to`, node, def.nodes, index, push);
  });
  return problems;
}

function attributePathMessage(path: string): string {
  return `${quote(path)} is not an attribute path: names of letters, digits, _ or -, separated by dots`;
}

function sendTarget(target: string, field: string, node: string | undefined, nodes: JourneyNode[], index: Map<string, number>, push: Push): void {
  const i = index.get(target);
  if (i === undefined) push(field, node, `${quote(target)} names no node`);
  else if (nodes[i]!.type !== 'send') push(field, node, `${quote(target)} is a ${nodes[i]!.type} node, not a send node`);
}

function liquid(source: string, field: string, node: string, push: Push): void {
  const problem = templateProblems(source);
  if (problem !== null) push(field, node, `is not a valid Liquid template: ${problem}`);
}

function liquidDeep(value: unknown, field: string, node: string, push: Push): void {
  if (typeof value === 'string') liquid(value, field, node, push);
  else if (Array.isArray(value)) value.forEach((v, i) => liquidDeep(v, child(field, i), node, push));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) liquidDeep(v, child(field, k), node, push);
}

function sendProblems(n: SendNode, at: string, ctx: PublishContext, push: Push): void {
  const c = n.content;
  for (const k of ['subject', 'body', 'html', 'url'] as const) if (c[k] !== undefined) liquid(c[k], `${at}.content.${k}`, n.id, push);
  c.whatsapp_template?.parameters?.forEach((p, k) => liquid(p, `${at}.content.whatsapp_template.parameters[${k}]`, n.id, push));
  if (c.template !== undefined && !ctx.templateExists(c.template)) push(`${at}.content.template`, n.id, `${quote(c.template)} names no stored template`);

  const stored = c.template !== undefined;
  switch (n.channel) {
    case 'sms':
    case 'voice':
      if (!stored && c.body === undefined) push(`${at}.content`, n.id, `a ${n.channel} send needs body or a stored template`);
      break;
    case 'whatsapp':
      if (!stored && c.body === undefined && c.whatsapp_template === undefined) push(`${at}.content`, n.id, 'a whatsapp send needs body, whatsapp_template or a stored template');
      break;
    case 'email':
      if (stored) break;
      if (c.subject === undefined) push(`${at}.content.subject`, n.id, 'is required for an email send without a stored template');
      if (c.body === undefined && c.html === undefined) push(`${at}.content`, n.id, 'an email send needs body or html, or a stored template');
      break;
    case 'webhook':
      if (c.url === undefined) push(`${at}.content.url`, n.id, 'is required for a webhook send');
      break;
  }
}

/** A duration wait of zero lets a loop spin within one step, so it does not count as a wait. */
function isZeroWait(n: JourneyNode): boolean {
  return n.type === 'wait' && n.duration !== undefined && durationMs(n.duration) === 0;
}

interface Edge {
  to: number;
  field: string;
}

/** Each node's successors (with the field naming them) and whether the journey can end there. */
function edges(nodes: JourneyNode[], index: Map<string, number>): { out: Edge[]; canEnd: boolean }[] {
  return nodes.map((n, i) => {
    const at = `nodes[${i}]`;
    const out: Edge[] = [];
    let canEnd = false;
    const to = (target: string | undefined, field: string) => {
      if (target === undefined) canEnd = true;
      else {
        const j = index.get(target);
        if (j !== undefined) out.push({ to: j, field });
      }
    };
    switch (n.type) {
      case 'send':
        to(n.next, `${at}.next`);
        if (n.on_blocked !== undefined) to(n.on_blocked, `${at}.on_blocked`);
        break;
      case 'action':
        to(n.next, `${at}.next`);
        break;
      case 'wait':
        if (n.until_event) {
          if (n.until_event.events) to(n.on_event ?? n.next, `${at}.${n.on_event ? 'on_event' : 'next'}`);
          if (n.until_event.reply) to(n.on_reply ?? n.next, `${at}.${n.on_reply ? 'on_reply' : 'next'}`);
          to(n.on_timeout ?? n.next, `${at}.${n.on_timeout ? 'on_timeout' : 'next'}`);
        } else {
          to(n.next, `${at}.next`);
          if (n.on_past !== undefined) to(n.on_past, `${at}.on_past`);
        }
        break;
      case 'branch':
        n.branches.forEach((b, k) => to(b.next, `${at}.branches[${k}].next`));
        to(n.default, `${at}.default`);
        break;
      case 'split':
        n.variants.forEach((v, k) => to(v.next, `${at}.variants[${k}].next`));
        break;
      case 'exit':
        canEnd = true;
        break;
    }
    return { out, canEnd };
  });
}

/** Strongly connected components that contain a cycle (Tarjan, iterative so a long chain cannot overflow the stack). */
function scc(size: number, out: (i: number) => Edge[]): number[][] {
  const order = new Array<number>(size).fill(-1);
  const low = new Array<number>(size).fill(0);
  const onStack = new Array<boolean>(size).fill(false);
  const stack: number[] = [];
  const found: number[][] = [];
  let counter = 0;
  for (let root = 0; root < size; root++) {
    if (order[root] !== -1) continue;
    const work: { v: number; edges: Edge[]; k: number }[] = [{ v: root, edges: out(root), k: 0 }];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length) {
      const top = work.at(-1)!;
      if (top.k < top.edges.length) {
        const w = top.edges[top.k++]!.to;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push({ v: w, edges: out(w), k: 0 });
        } else if (onStack[w]) low[top.v] = Math.min(low[top.v]!, order[w]!);
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent) low[parent.v] = Math.min(low[parent.v]!, low[top.v]!);
      if (low[top.v] !== order[top.v]) continue;
      const comp: number[] = [];
      let w: number;
      do {
        w = stack.pop()!;
        onStack[w] = false;
        comp.push(w);
      } while (w !== top.v);
      if (comp.length > 1 || top.edges.some((e) => e.to === top.v)) found.push(comp);
    }
  }
  return found;
}

/** A shortest cycle from `from` back to itself inside `members`, and the field of its first step. */
function cycleThrough(from: number, members: Set<number>, graph: { out: Edge[] }[]): { path: number[]; field: string } | null {
  const prev = new Map<number, Edge & { from: number }>();
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q]!;
    for (const e of graph[v]!.out) {
      if (!members.has(e.to)) continue;
      if (e.to === from) {
        const path = [from];
        for (let u = v; u !== from; u = prev.get(u)!.from) path.splice(1, 0, u);
        path.push(from);
        return { path, field: path.length > 2 ? prev.get(path[1]!)!.field : e.field };
      }
      if (!prev.has(e.to)) {
        prev.set(e.to, { ...e, from: v });
        queue.push(e.to);
      }
    }
  }
  return null;
}

/** Calls visit with every condition in the definition (not descending into all/any/not: `visit` sees leaves). */
function forEachCondition(def: JourneyDefinition, visit: (leaf: Condition, at: string, node: string | undefined) => void): void {
  const walk = (c: Condition, at: string, node: string | undefined) => {
    if ('all' in c) c.all.forEach((x, i) => walk(x, `${at}.all[${i}]`, node));
    else if ('any' in c) c.any.forEach((x, i) => walk(x, `${at}.any[${i}]`, node));
    else if ('not' in c) walk(c.not, `${at}.not`, node);
    else visit(c, at, node);
  };
  const matches = (list: EventMatch[] | undefined, at: string, node?: string) => list?.forEach((m, i) => m.where && walk(m.where, `${at}[${i}].where`, node));
  if (def.entry.where) walk(def.entry.where, 'entry.where', undefined);
  matches(def.goals, 'goals');
  matches(def.exit_on, 'exit_on');
  def.nodes.forEach((n, i) => {
    if (n.type === 'branch') n.branches.forEach((b, k) => walk(b.when, `nodes[${i}].branches[${k}].when`, n.id));
    else if (n.type === 'wait') matches(n.until_event?.events, `nodes[${i}].until_event.events`, n.id);
  });
}

// ---------------------------------------------------------------------------------------------
// Compiled journey

/** What the engine needs of a published version, worked out once and cached with it. */
export interface CompiledJourney {
  def: JourneyDefinition;
  start: string;
  nodes: Map<string, JourneyNode>;
  /** Distinct channels of the send nodes, in the order they first appear. */
  channels: SendChannel[];
  entryEvent: string | null;
  /** Whether some wait listens for events or replies, so incoming ones must be matched against waiting enrollments. */
  waitsForEvents: boolean;
  /** Facts conditions read: event history (name to its widest window in ms, Infinity for "ever"), message statuses, replies. */
  needs: ConditionNeeds;
}

/** The engine's view of `def`, which has passed both checks; throws if it has no start node. */
export function compileJourney(def: JourneyDefinition): CompiledJourney {
  const start = def.start ?? def.nodes[0]?.id;
  if (start === undefined) throw new Error('a journey needs at least one node');
  const nodes = new Map(def.nodes.map((n) => [n.id, n]));
  if (!nodes.has(start)) throw new Error(`start node ${quote(start)} does not exist`);
  const channels = [...new Set(def.nodes.flatMap((n) => (n.type === 'send' ? [n.channel] : [])))];
  const needs: ConditionNeeds = { eventHistory: new Map(), engagement: false, replies: false };
  // collectNeeds only gathers from leaves, so feeding it leaf by leaf gathers what the whole conditions hold.
  forEachCondition(def, (leaf) => collectNeeds(leaf, needs));
  return {
    def,
    start,
    nodes,
    channels,
    entryEvent: def.entry.event ?? null,
    waitsForEvents: def.nodes.some((n) => n.type === 'wait' && n.until_event !== undefined),
    needs,
  };
}
