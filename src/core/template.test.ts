import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { render, renderDeep, renderHtml, templateProblems } from './template.js';

const scope = {
  contact: { name: 'Ana', email: 'ana@example.com', first_name: 'Ana', plan: 'pro', attributes: { first_name: 'Ana', plan: 'pro' }, tags: ['vip', 'beta'] },
  vars: { order: { id: 'A-17', total: 42.5 } },
  trigger: { source: 'qr' },
  journey: { name: 'Welcome' },
  tenant: { name: 'Acme' },
};

describe('render', () => {
  it('fills variables from the scope', () => {
    expect(render('Hi {{ contact.first_name }}, order {{ vars.order.id }} from {{ tenant.name }}', scope)).toBe('Hi Ana, order A-17 from Acme');
  });

  it('renders a missing variable empty, and default covers it', () => {
    expect(render('[{{ contact.nickname }}]', scope)).toBe('[]');
    expect(render('Hi {{ contact.nickname | default: "there" }}', scope)).toBe('Hi there');
    expect(render('{{ nothing.at.all }}', {})).toBe('');
  });

  it('does not escape output for text channels', () => {
    expect(render('{{ x }}', { x: '<b>&"' })).toBe('<b>&"');
  });

  it('runs tags and filters liquidjs ships', () => {
    expect(render('{% if contact.tags contains "vip" %}VIP{% else %}-{% endif %}', scope)).toBe('VIP');
    expect(render('{% for t in contact.tags %}{{ t | upcase }}{% unless forloop.last %},{% endunless %}{% endfor %}', scope)).toBe('VIP,BETA');
    expect(render('{{ vars.order.total | times: 2 }}', scope)).toBe('85');
  });

  it('renders dates in UTC unless the filter names a zone', () => {
    const at = { at: '2026-03-01T10:00:00Z' };
    expect(render('{{ at | date: "%H:%M" }}', at)).toBe('10:00');
    expect(render('{{ at | date: "%H:%M", "Europe/Paris" }}', at)).toBe('11:00');
  });

  it('returns text without Liquid as it is', () => {
    fc.assert(
      fc.property(fc.string().filter((s) => !s.includes('{')), (s) => {
        expect(render(s, scope)).toBe(s);
      }),
    );
  });

  it('throws on a template that does not parse', () => {
    expect(() => render('{{ x', {})).toThrow(/not closed/);
  });

  it('stops a runaway template', () => {
    expect(() => render('{% for i in (1..100000000) %}{{ i }}{% endfor %}', {})).toThrow(/limit exceeded/);
    expect(() => render('{% assign s = "xx" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}', {})).toThrow(/limit exceeded/);
  });

  it('gives the same answer from the cache', () => {
    const source = 'Hello {{ contact.name }} #{{ n }}';
    for (let n = 0; n < 3; n++) expect(render(source, { contact: { name: 'Bo' }, n })).toBe(`Hello Bo #${n}`);
  });
});

describe('renderHtml', () => {
  it('escapes every output, unless raw', () => {
    expect(renderHtml('<p>{{ x }}</p>', { x: '<script>"&' })).toBe('<p>&lt;script&gt;&#34;&amp;</p>');
    expect(renderHtml('<p>{{ x | raw }}</p>', { x: '<b>ok</b>' })).toBe('<p><b>ok</b></p>');
  });

  it('keeps text and html caches apart', () => {
    const source = '{{ x }}';
    expect(render(source, { x: '<i>' })).toBe('<i>');
    expect(renderHtml(source, { x: '<i>' })).toBe('&lt;i&gt;');
    expect(render(source, { x: '<i>' })).toBe('<i>');
  });
});

describe('templateProblems', () => {
  it('is null for a valid template', () => {
    expect(templateProblems('Hi {{ contact.name | default: "there" }}{% if vars.x %}!{% endif %}')).toBeNull();
    expect(templateProblems('no liquid at all')).toBeNull();
  });

  it('names an unknown filter (strict filters)', () => {
    expect(templateProblems('{{ contact.name | shout }}')).toMatch(/undefined filter: shout/);
  });

  it('reports unclosed outputs and tags with their position', () => {
    expect(templateProblems('Hi {{ contact.name')).toMatch(/not closed, line:1, col:4/);
    expect(templateProblems('{% if x %}yes')).toMatch(/not closed/);
    expect(templateProblems('{% frobnicate %}')).toMatch(/tag "frobnicate" not found/);
  });

  it('refuses partials: nothing is read from disk', () => {
    expect(templateProblems('{% include "/etc/passwd" %}')).toMatch(/tag "include" not found/);
    expect(templateProblems('{% render "footer" %}')).toMatch(/tag "render" not found/);
    expect(templateProblems('{% layout "base" %}')).toMatch(/tag "layout" not found/);
  });
});

describe('renderDeep', () => {
  it('renders every string in a JSON value and leaves the rest', () => {
    const body = { name: '{{ contact.first_name }}', n: 3, ok: true, none: null, list: ['{{ tenant.name }}', 1, { deep: '{{ trigger.source }}' }], '{{ key }}': 'k' };
    expect(renderDeep(body, scope)).toEqual({ name: 'Ana', n: 3, ok: true, none: null, list: ['Acme', 1, { deep: 'qr' }], '{{ key }}': 'k' });
    expect(renderDeep('{{ journey.name }}', scope)).toBe('Welcome');
    expect(renderDeep(7, scope)).toBe(7);
  });

  it('does not change the value it is given', () => {
    const body = { a: ['{{ contact.plan }}'] };
    renderDeep(body, scope);
    expect(body).toEqual({ a: ['{{ contact.plan }}'] });
  });
});
