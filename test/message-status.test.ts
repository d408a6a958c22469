import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContact } from '../src/store/contacts.js';
import type { Db } from '../src/store/db.js';
import { newId } from '../src/store/ids.js';
import { recordStatuses, type StatusUpdate } from '../src/store/message-status.js';
import { createTenant } from '../src/store/tenants.js';
import { freshDb } from './helpers/db.js';

let db: Db;
let tenant: string;
let contact: string;

const T0 = Date.parse('2026-03-02T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);

beforeAll(async () => {
  db = await freshDb();
  tenant = (await createTenant(db, { name: 'Receipts' })).id;
  contact = (await createContact(db, tenant, { email: 'r@example.com' }, {}, new Date(T0))).id;
});
afterAll(() => db.close());

/** A message in the given status; one that has left carries sent_at. */
async function message(status = 'sent'): Promise<string> {
  const id = newId();
  await db.query(
    `insert into messages (id, tenant_id, contact_id, channel, status, idempotency_key, content, created_at, updated_at, sent_at)
     values ($1, $2, $3, 'email', $4, $5, '{}', $6, $6, case when $4 in ('queued', 'sending') then null else $6::timestamptz end)`,
    [id, tenant, contact, status, `k-${id}`, at(0)],
  );
  return id;
}

async function row(id: string) {
  const { rows } = await db.query<any>('select status, reason, delivered_at, opened_at, clicked_at, replied_at, failed_at from messages where id = $1', [id]);
  return rows[0];
}

async function timeline(id: string) {
  const { rows } = await db.query<any>('select status, at, detail from message_status where message_id = $1 order by id', [id]);
  return rows.map((r) => [r.status, (r.at.getTime() - T0) / 1000, r.detail]);
}

const apply = (updates: StatusUpdate[]) => db.transaction((tx) => recordStatuses(tx, updates));

describe('recordStatuses', () => {
  it('moves a message forward, sets each time once and appends the timeline', async () => {
    const m = await message();
    expect(await apply([{ message_id: m, status: 'delivered', at: at(5) }])).toBe(1);
    expect(await apply([{ message_id: m, status: 'opened', at: at(60) }, { message_id: m, status: 'clicked', at: at(90), detail: { url: 'https://x.example' } }])).toBe(2);
    expect(await row(m)).toMatchObject({ status: 'clicked', delivered_at: at(5), opened_at: at(60), clicked_at: at(90), replied_at: null });
    expect(await timeline(m)).toEqual([
      ['delivered', 5, null],
      ['opened', 60, null],
      ['clicked', 90, { url: 'https://x.example' }],
    ]);
  });

  it('never moves back: a late delivered after a click fills delivered_at only', async () => {
    const m = await message();
    await apply([{ message_id: m, status: 'clicked', at: at(30) }]);
    expect(await apply([{ message_id: m, status: 'delivered', at: at(4) }])).toBe(1);
    expect(await row(m)).toMatchObject({ status: 'clicked', delivered_at: at(4), clicked_at: at(30) });
    // Read and opened are the same fact: one after the other changes nothing.
    await apply([{ message_id: m, status: 'read', at: at(20) }]);
    expect(await apply([{ message_id: m, status: 'opened', at: at(25) }])).toBe(0);
    expect((await row(m)).opened_at).toEqual(at(20));
  });

  it('applies receipts of one batch in the order they happened, whatever order they came in', async () => {
    const m = await message();
    expect(await apply([{ message_id: m, status: 'replied', at: at(300), detail: { text: 'Yes' } }, { message_id: m, status: 'delivered', at: at(3) }, { message_id: m, status: 'read', at: at(200) }])).toBe(3);
    expect(await row(m)).toMatchObject({ status: 'replied', delivered_at: at(3), opened_at: at(200), replied_at: at(300) });
    expect((await timeline(m)).map((t) => t[0])).toEqual(['delivered', 'read', 'replied']);
  });

  it('changes nothing on a repeated receipt, in the same batch or a later one', async () => {
    const m = await message();
    expect(await apply([{ message_id: m, status: 'delivered', at: at(5) }, { message_id: m, status: 'delivered', at: at(5) }])).toBe(1);
    expect(await apply([{ message_id: m, status: 'delivered', at: at(6) }])).toBe(0);
    expect(await timeline(m)).toHaveLength(1);
    expect((await row(m)).delivered_at).toEqual(at(5));
  });

  it('ends a message on a bounce, after which nothing moves it; a failure after engagement is ignored', async () => {
    const bounced = await message();
    await apply([{ message_id: bounced, status: 'delivered', at: at(2) }]);
    expect(await apply([{ message_id: bounced, status: 'bounced', at: at(40), detail: { reason: 'mailbox full' } }])).toBe(1);
    expect(await apply([{ message_id: bounced, status: 'opened', at: at(50) }, { message_id: bounced, status: 'failed', at: at(60) }])).toBe(0);
    expect(await row(bounced)).toMatchObject({ status: 'bounced', reason: 'mailbox full', failed_at: at(40), opened_at: null });

    const opened = await message();
    await apply([{ message_id: opened, status: 'opened', at: at(10) }]);
    expect(await apply([{ message_id: opened, status: 'undeliverable', at: at(20) }])).toBe(0);
    expect(await row(opened)).toMatchObject({ status: 'opened', failed_at: null });
  });

  it('leaves messages that have not left, or never will, alone', async () => {
    const ids = await Promise.all(['queued', 'sending', 'suppressed', 'cancelled'].map((s) => message(s)));
    expect(await apply(ids.map((id) => ({ message_id: id, status: 'delivered' as const, at: at(5) })))).toBe(0);
    for (const [i, s] of ['queued', 'sending', 'suppressed', 'cancelled'].entries()) expect(await row(ids[i]!)).toMatchObject({ status: s, delivered_at: null });
  });

  it('handles thousands of messages in one call and ignores unknown ids', async () => {
    const ids = await Promise.all(Array.from({ length: 2000 }, () => message()));
    const updates: StatusUpdate[] = ids.flatMap((id, i) => [
      { message_id: id, status: 'delivered' as const, at: at(1 + (i % 7)) },
      ...(i % 2 ? [{ message_id: id, status: 'opened' as const, at: at(100) }] : []),
    ]);
    updates.push({ message_id: newId(), status: 'delivered', at: at(1) });
    expect(await apply(updates)).toBe(3000);
    const { rows } = await db.query<any>('select status, count(*)::int as n from messages where id = any($1::uuid[]) group by status order by status', [ids]);
    expect(rows).toEqual([
      { status: 'delivered', n: 1000 },
      { status: 'opened', n: 1000 },
    ]);
  });

  it('refuses a status that is not a receipt before writing anything', async () => {
    const m = await message();
    await expect(apply([{ message_id: m, status: 'delivered', at: at(1) }, { message_id: m, status: 'sent' as never, at: at(2) }])).rejects.toThrow(/not a receipt status/);
    expect((await row(m)).status).toBe('sent');
  });
});
