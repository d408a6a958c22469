import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedFrom, CAMPAIGN_ACTIONS, campaignProblems, nextStatus, type CampaignStatus } from './campaign.js';

describe('campaign lifecycle', () => {
  it('follows draft → scheduled → running → paused → running → completed', () => {
    let s: CampaignStatus = 'draft';
    s = nextStatus(s, 'start', false)!;
    expect(s).toBe('scheduled');
    s = nextStatus(s, 'run', false)!;
    expect(s).toBe('running');
    s = nextStatus(s, 'pause', true)!;
    expect(s).toBe('paused');
    expect(nextStatus(s, 'resume', true)).toBe('running');
    expect(nextStatus('running', 'complete', true)).toBe('completed');
  });

  it('resumes a campaign paused before it fired as scheduled', () => {
    expect(nextStatus('paused', 'resume', false)).toBe('scheduled');
  });

  it('refuses actions from the wrong status', () => {
    expect(nextStatus('running', 'start', true)).toBeNull();
    expect(nextStatus('draft', 'pause', false)).toBeNull();
    expect(nextStatus('running', 'resume', true)).toBeNull();
    expect(nextStatus('completed', 'stop', true)).toBeNull();
    expect(allowedFrom('resume')).toEqual(['paused']);
    expect(allowedFrom('stop')).toEqual(['draft', 'scheduled', 'running', 'paused']);
  });

  it('never leaves completed or cancelled, whatever the actions', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CAMPAIGN_ACTIONS), { maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (actions, started) => {
        let s: CampaignStatus = 'draft';
        let ended = false;
        actions.forEach((a, i) => {
          const next = nextStatus(s, a, started[i]!);
          if (ended) expect(next).toBeNull();
          if (next) s = next;
          if (s === 'completed' || s === 'cancelled') ended = true;
        });
        if (ended) expect(['completed', 'cancelled']).toContain(s);
      }),
    );
  });
});

describe('campaignProblems', () => {
  it('names the audience and action when they give none or two alternatives', () => {
    const fields = campaignProblems({ audience: { segment_id: '0190a1b2-0000-7000-8000-000000000000', contact_ids: ['0190a1b2-0000-7000-8000-000000000001'] }, action: {} }).map((p) => p.field);
    expect(fields).toEqual(['audience', 'action']);
  });

  it('wants something to send', () => {
    const problems = campaignProblems({ audience: { definition: { tag: 'x' } }, action: { send: { channel: 'sms', content: {} } } });
    expect(problems.map((p) => p.field)).toEqual(['action.send.content']);
    expect(campaignProblems({ audience: { definition: { tag: 'x' } }, action: { send: { channel: 'sms', content: { body: 'hi' } } } })).toEqual([]);
  });
});
