import type { FieldProblem } from './errors.js';

/** Identifiers that find (or create) the contact an event happened to. */
export interface EventContactRef {
  external_id?: string;
  phone?: string;
  email?: string;
}

/** An event as a sender posts it. */
export interface EventInput {
  name: string;
  /** The sender's own id: a second delivery with the same id is recorded once. */
  id?: string;
  contact_id?: string;
  contact?: EventContactRef;
  properties?: Record<string, unknown>;
  occurred_at?: string;
}

export const MAX_EVENT_PROPERTIES_BYTES = 32 * 1024;

/** Checks what the body schema cannot. Fields are named under `prefix` (e.g. `events[7]`). */
export function eventProblems(input: EventInput, prefix = ''): FieldProblem[] {
  const at = (f: string) => (prefix ? `${prefix}.${f}` : f);
  const problems: FieldProblem[] = [];
  if (input.contact_id !== undefined && input.contact !== undefined) {
    problems.push({ field: at('contact'), message: 'give contact_id or contact, not both' });
  } else if (input.contact_id === undefined && input.contact === undefined) {
    problems.push({ field: at('contact_id'), message: 'is required unless contact (external_id, phone or email) is given' });
  }
  if (input.properties && Buffer.byteLength(JSON.stringify(input.properties)) > MAX_EVENT_PROPERTIES_BYTES) {
    problems.push({ field: at('properties'), message: `is larger than ${MAX_EVENT_PROPERTIES_BYTES / 1024} KiB` });
  }
  if (input.occurred_at !== undefined && Number.isNaN(Date.parse(input.occurred_at))) {
    problems.push({ field: at('occurred_at'), message: 'is not a date-time' });
  }
  return problems;
}
