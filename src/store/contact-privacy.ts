import { NotFoundError } from '../core/errors.js';
import { addressHash } from '../core/suppression.js';
import { writeAudit, type AuditRow } from './audit.js';
import { consentRecords, consentState, type ConsentRecordRow, type ConsentStateRow } from './consent.js';
import { getContactRow, type ContactRow } from './contacts.js';
import type { Db, Queryable } from './db.js';
import { contactEvents, listEvents, type EventRow } from './events.js';
import { suppressionsFor, type SuppressionRow } from './suppressions.js';

/**
 * What a tenant holds about one person, for the people who ask: the contact page, erasure
 * (GDPR art. 17) and export (art. 15 and 20).
 */

const RECENT_EVENTS = 20;

export interface ContactDetail extends ContactRow {
  consent: ConsentStateRow[];
  recent_events: EventRow[];
}

function addressesOf(c: Pick<ContactRow, 'phone' | 'email' | 'whatsapp'>): string[] {
  return [...new Set([c.phone, c.email, c.whatsapp].filter((a): a is string => !!a))];
}

export async function getContactDetail(db: Queryable, tenantId: string, id: string): Promise<ContactDetail> {
  const contact = await getContactRow(db, tenantId, id);
  const [consent, events] = await Promise.all([consentState(db, tenantId, id), listEvents(db, tenantId, { contact_id: id, limit: RECENT_EVENTS })]);
  return { ...contact, consent, recent_events: events.data };
}

export interface ErasureCounts {
  events: number;
  consent_records: number;
  /** Suppressions whose address was blanked; they keep blocking by hash. */
  suppressions_anonymised: number;
}

/**
 * Erases a contact in one transaction. The cascade removes its consent ledger and events;
 * suppressions of its addresses lose the address but keep the hash, so an opted-out person
 * stays opted out. The audit entry holds counts only.
 */
export async function eraseContact(db: Db, tenantId: string, id: string, actor: string): Promise<ErasureCounts> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<Pick<ContactRow, 'phone' | 'email' | 'whatsapp'>>(
      'select phone, email, whatsapp from contacts where tenant_id = $1 and id = $2 for update',
      [tenantId, id],
    );
    const contact = rows[0];
    if (!contact) throw new NotFoundError('contact');
    const { rows: counted } = await tx.query<{ events: number; consent_records: number }>(
      `select (select count(*) from events where tenant_id = $1 and contact_id = $2)::int as events,
              (select count(*) from consent_records where tenant_id = $1 and contact_id = $2)::int as consent_records`,
      [tenantId, id],
    );
    const blanked = await tx.query('update suppressions set address = null where tenant_id = $1 and address_hash = any($2::text[]) and address is not null', [
      tenantId,
      addressesOf(contact).map(addressHash),
    ]);
    await tx.query('delete from contacts where tenant_id = $1 and id = $2', [tenantId, id]);
    const counts: ErasureCounts = { ...counted[0]!, suppressions_anonymised: blanked.rowCount };
    await writeAudit(tx, { tenantId, actor, action: 'contact.erased', entityType: 'contact', entityId: id, data: { ...counts } });
    return counts;
  });
}

export interface ContactExport {
  exported_at: Date;
  contact: ContactRow;
  consent: { records: ConsentRecordRow[]; current: ConsentStateRow[] };
  events: EventRow[];
  suppressions: SuppressionRow[];
  audit: AuditRow[];
}

/** Everything held about a contact as one document; the export itself is audited. */
export async function exportContact(db: Db, tenantId: string, id: string, actor: string, now: Date): Promise<ContactExport> {
  const contact = await getContactRow(db, tenantId, id);
  const [records, current, events, suppressions, audit] = await Promise.all([
    consentRecords(db, tenantId, id),
    consentState(db, tenantId, id),
    contactEvents(db, tenantId, id),
    suppressionsFor(db, tenantId, addressesOf(contact)),
    db.query<AuditRow>(
      `select id, actor, action, entity_type, entity_id, data, created_at from audit_log
        where tenant_id = $1 and entity_type = 'contact' and entity_id = $2 order by id`,
      [tenantId, id],
    ),
  ]);
  await writeAudit(db, { tenantId, actor, action: 'contact.exported', entityType: 'contact', entityId: id, data: { events: events.length, consent_records: records.length } });
  return { exported_at: now, contact, consent: { records, current }, events, suppressions, audit: audit.rows };
}
