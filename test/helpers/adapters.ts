import type { OutgoingMessage } from '../../src/channels/types.js';

/**
 * Inputs the provider adapter tests share: the e-mail the e-mail adapters send, and
 * the one-byte change their signature properties make.
 */

/** A rendered welcome e-mail with text, HTML and one-click List-Unsubscribe headers; `over` replaces fields. */
export function welcomeEmail(over: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: '0190a8f4-7c1e-7b3a-9d2e-1f2a3b4c5d6e',
    tenant_id: 't1',
    channel: 'email',
    to: 'ada@example.org',
    idempotency_key: 'enr1:welcome:0',
    subject: 'Welcome, Ada',
    body: 'Hello Ada',
    html: '<p>Hello <b>Ada</b></p>',
    headers: { 'List-Unsubscribe': '<https://rapport.example/u/tok>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    ...over,
  };
}

/** A copy of `bytes` with the byte at `pos` (modulo the length) XORed with `flip`, which 1 to 255 always changes. */
export function oneByteChanged(bytes: Uint8Array, pos: number, flip: number): Buffer {
  const changed = Buffer.from(bytes);
  const i = pos % changed.length;
  changed[i] = changed[i]! ^ flip;
  return changed;
}
