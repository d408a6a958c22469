import { describe, expect, it } from 'vitest';
import { enrollmentResult, type ResultFacts, type ResultInbound, type ResultMessage } from './enrollment-result.js';

const T0 = Date.parse('2026-03-02T10:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

let seq = 0;
function sent(minutes: number, what: { channel?: string; template?: string; status?: string; sentAfter?: number } = {}): ResultMessage {
  const channel = what.channel ?? 'whatsapp';
  const n = ++seq;
  const status = what.status ?? 'delivered';
  const went = !['queued', 'sending', 'suppressed', 'cancelled'].includes(status);
  return {
    id: `m${n}`,
    channel,
    status,
    rendered: went ? (what.template ? { whatsapp_template: { name: what.template, language: 'en', parameters: [] } } : { body: 'text' }) : null,
    provider_message_id: went ? `p${n}` : null,
    created_at: at(minutes),
    sent_at: went ? at(minutes + (what.sentAfter ?? 0)) : null,
  };
}

function reply(minutes: number, r: Partial<ResultInbound> = {}): ResultInbound {
  return { channel: 'whatsapp', text: null, payload: null, keyword: null, intent: null, in_reply_to: null, received_at: at(minutes), ...r };
}

function facts(f: { status?: ResultFacts['enrollment']['status']; ended?: number | null; messages: ResultMessage[]; inbound?: ResultInbound[]; wroteBefore?: number | null }): ResultFacts {
  return {
    enrollment: {
      id: 'e1',
      journey_id: 'j1',
      status: f.status ?? (f.ended === null ? 'active' : 'completed'),
      entered_at: at(0),
      ended_at: f.ended === null || f.ended === undefined ? null : at(f.ended),
      vars: { trigger: { urgency: 3, plate: 'ABC-123', event: 'parking.alert' } },
    },
    messages: f.messages,
    inbound: f.inbound ?? [],
    whatsappInboundBefore: f.wroteBefore === null || f.wroteBefore === undefined ? null : at(f.wroteBefore),
  };
}

describe('enrollmentResult', () => {
  it('a direct text inside the window, answered: success, direct, active, with the follow-up not counted as escalation', () => {
    const alert = sent(0);
    const followUp = sent(2);
    const r = enrollmentResult(facts({ ended: 2, messages: [followUp, alert], inbound: [reply(1, { text: 'moving now', keyword: 'intent', intent: 'moving_now' })], wroteBefore: -120 }));
    expect(r).toMatchObject({
      status: 'success',
      deliveryMethod: 'direct',
      sessionStatus: 'active',
      escalationLevel: 0,
      templateUsed: null,
      userResponse: 'moving_now',
      messageId: followUp.provider_message_id,
      maxEscalationReached: false,
      followUpSent: true,
      enrollment_status: 'completed',
      trigger: { urgency: 3, plate: 'ABC-123', event: 'parking.alert' },
    });
    expect(r.timestamps).toEqual({ triggered: at(0).toISOString(), first_sent: at(0).toISOString(), responded: at(1).toISOString(), escalations: [], ended: at(2).toISOString() });
  });

  it('a smart template outside the window, answered by a button: reactivated, the payload when there is no intent', () => {
    const alert = sent(0, { template: 'parking_alert_smart' });
    const r = enrollmentResult(facts({ ended: 3, messages: [alert, sent(3)], inbound: [reply(3, { text: 'More details', payload: 'More details', in_reply_to: alert.id })], wroteBefore: -3 * 24 * 60 }));
    expect(r).toMatchObject({ status: 'success', deliveryMethod: 'smart_template', sessionStatus: 'reactivated', templateUsed: 'parking_alert_smart', userResponse: 'More details', escalationLevel: 0, followUpSent: true });
  });

  it('escalation to the last step without an answer: each method by its place, the voice call decides', () => {
    const messages = [sent(0, { template: 'smart' }), sent(5, { template: 'critical' }), sent(8, { template: 'emergency' }), sent(8, { channel: 'voice', sentAfter: 0 })];
    const r = enrollmentResult(facts({ ended: 13, messages }));
    expect(r).toMatchObject({
      status: 'delivered_with_escalation',
      deliveryMethod: 'voice_call',
      sessionStatus: 'expired',
      escalationLevel: 3,
      templateUsed: 'emergency',
      userResponse: null,
      maxEscalationReached: true,
      followUpSent: false,
    });
    expect(r.timestamps.escalations).toEqual([at(5), at(8), at(8)].map((d) => d.toISOString()));
    // Answered after the emergency template: the answer names the message it replies to.
    const answered = enrollmentResult(facts({ ended: 10, messages, inbound: [reply(9, { payload: 'moving_now', intent: 'moving_now', in_reply_to: messages[2]!.id })] }));
    expect(answered).toMatchObject({ status: 'success', deliveryMethod: 'emergency_template', templateUsed: 'emergency', escalationLevel: 3, sessionStatus: 'reactivated' });
  });

  it('two templates are smart then escalation; the emergency name needs a third message', () => {
    const r = enrollmentResult(facts({ ended: 8, messages: [sent(0, { template: 'smart' }), sent(5, { template: 'critical' })] }));
    expect(r).toMatchObject({ deliveryMethod: 'escalation_template', escalationLevel: 1, templateUsed: 'critical', maxEscalationReached: false });
    const afterText = enrollmentResult(facts({ ended: 8, messages: [sent(0), sent(5, { template: 'critical' }), sent(8, { template: 'emergency' })], wroteBefore: -60 }));
    expect(afterText).toMatchObject({ deliveryMethod: 'emergency_template', sessionStatus: 'active', maxEscalationReached: true });
  });

  it('a template alone, unanswered, ended: delivered_with_escalation at level 0; while it runs, pending', () => {
    expect(enrollmentResult(facts({ ended: 5, messages: [sent(0, { template: 'smart' })] }))).toMatchObject({
      status: 'delivered_with_escalation',
      deliveryMethod: 'smart_template',
      escalationLevel: 0,
      maxEscalationReached: false,
      messageId: 'p' + String(seq),
    });
    expect(enrollmentResult(facts({ ended: null, messages: [sent(0, { template: 'smart' })] })).status).toBe('pending');
  });

  it('nothing went out: failed once ended, with no method; blocked, cancelled and failed sends do not count', () => {
    const r = enrollmentResult(facts({ ended: 0, status: 'completed', messages: [sent(0, { status: 'suppressed' }), sent(0, { status: 'failed' }), sent(0, { status: 'cancelled' })] }));
    expect(r).toMatchObject({ status: 'failed', deliveryMethod: null, escalationLevel: 0, messageId: null, templateUsed: null });
    expect(r.timestamps.first_sent).toBeNull();
  });

  it('STOP is no answer, nor is a reply after the end or before the start; the first answer counts', () => {
    const messages = [sent(0, { template: 'smart' })];
    const inbound = [reply(-1, { text: 'earlier' }), reply(1, { text: 'STOP', keyword: 'opt_out' }), reply(6, { text: 'too late' })];
    expect(enrollmentResult(facts({ ended: 5, messages, inbound }))).toMatchObject({ status: 'delivered_with_escalation', userResponse: null, sessionStatus: 'expired' });
    const two = [reply(2, { channel: 'sms', text: 'who is this?' }), reply(3, { text: 'ok', intent: 'moving_now' })];
    expect(enrollmentResult(facts({ ended: 5, messages, inbound: two }))).toMatchObject({ userResponse: 'who is this?', sessionStatus: 'reactivated' });
  });

  it('the window is open only for an inbound WhatsApp message less than 24 hours before the start', () => {
    const messages = [sent(0)];
    expect(enrollmentResult(facts({ ended: 5, messages, wroteBefore: -24 * 60 })).sessionStatus).toBe('expired');
    expect(enrollmentResult(facts({ ended: 5, messages, wroteBefore: -24 * 60 + 1 })).sessionStatus).toBe('active');
  });

  it('webhook sends are not messages to the contact', () => {
    const r = enrollmentResult(facts({ ended: 1, messages: [sent(0, { channel: 'webhook' }), sent(1, { channel: 'sms' })] }));
    expect(r).toMatchObject({ deliveryMethod: 'sms', escalationLevel: 0 });
  });
});
