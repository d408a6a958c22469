-- Tenants, API keys, contacts, consent ledger, suppressions, events and the audit log.

create table tenants (
  id             uuid primary key,
  name           text not null,
  time_zone      text not null default 'UTC',
  -- {"days":[1..7], "start":"HH:MM", "end":"HH:MM"} in the recipient's zone
  send_window    jsonb not null default '{"days":[1,2,3,4,5,6,7],"start":"09:00","end":"20:00"}',
  -- per channel: {"sms":{"start":"08:00","end":"21:00"}, ...}; sends are held outside [start, end)
  quiet_hours    jsonb not null default '{"sms":{"start":"08:00","end":"21:00"},"voice":{"start":"08:00","end":"21:00"}}',
  -- [{"channel":"sms"|"any", "limit":n, "period":"1d"}]
  frequency_caps jsonb not null default '[]',
  brand_voice    jsonb not null default '{}',
  settings       jsonb not null default '{}',
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);

create table api_keys (
  id           uuid primary key,
  tenant_id    uuid not null references tenants (id) on delete cascade,
  name         text not null,
  -- the first characters of the key, shown in listings so a user can tell keys apart
  prefix       text not null,
  -- sha256 of the whole key: keys are 192 random bits, so a fast hash is enough
  key_hash     text not null unique,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
create index api_keys_tenant on api_keys (tenant_id, created_at);

create table contacts (
  id          uuid primary key,
  tenant_id   uuid not null references tenants (id) on delete cascade,
  external_id text,
  name        text,
  phone       text,
  email       text,
  whatsapp    text,
  time_zone   text,
  locale      text,
  attributes  jsonb not null default '{}',
  tags        text[] not null default '{}',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
create unique index contacts_external_id on contacts (tenant_id, external_id) where external_id is not null;
create unique index contacts_phone on contacts (tenant_id, phone) where phone is not null;
create unique index contacts_email on contacts (tenant_id, email) where email is not null;
-- cursor pagination walks (tenant_id, id)
create index contacts_tenant_id on contacts (tenant_id, id);
create index contacts_tags on contacts using gin (tags);

-- Append-only: a change of mind is a new row, never an update.
create table consent_records (
  id          uuid primary key,
  tenant_id   uuid not null references tenants (id) on delete cascade,
  contact_id  uuid not null references contacts (id) on delete cascade,
  channel     text not null check (channel in ('sms', 'email', 'whatsapp', 'voice')),
  topic       text not null,
  status      text not null check (status in ('granted', 'revoked')),
  type        text check (type in ('express_written', 'express', 'implied', 'transactional')),
  source      text not null,
  wording     text,
  ip          text,
  proof       jsonb,
  recorded_at timestamptz not null,
  created_at  timestamptz not null default now()
);
create index consent_records_contact on consent_records (tenant_id, contact_id, recorded_at);

-- Current consent, derived from consent_records in the same transaction that appends to it,
-- so the send path reads one row instead of replaying the ledger.
create table consent_state (
  tenant_id   uuid not null,
  contact_id  uuid not null references contacts (id) on delete cascade,
  channel     text not null,
  topic       text not null,
  status      text not null,
  type        text,
  record_id   uuid not null,
  recorded_at timestamptz not null,
  primary key (tenant_id, contact_id, channel, topic)
);

-- Addresses blocked outright. Matched by a hash of the normalised address so an entry
-- outlives the erasure of the contact it came from.
create table suppressions (
  id           uuid primary key,
  tenant_id    uuid not null references tenants (id) on delete cascade,
  channel      text not null check (channel in ('sms', 'email', 'whatsapp', 'voice', 'all')),
  address_hash text not null,
  address      text,
  reason       text not null,
  source       text not null,
  created_at   timestamptz not null default now(),
  unique (tenant_id, channel, address_hash)
);

create table events (
  id              uuid primary key,
  tenant_id       uuid not null references tenants (id) on delete cascade,
  contact_id      uuid not null references contacts (id) on delete cascade,
  name            text not null,
  -- the sender's own id: a retried delivery with the same id is recorded once
  source_event_id text,
  properties      jsonb not null default '{}',
  occurred_at     timestamptz not null,
  received_at     timestamptz not null default now()
);
create unique index events_source_id on events (tenant_id, source_event_id) where source_event_id is not null;
create index events_contact on events (tenant_id, contact_id, occurred_at desc);
create index events_tenant_name on events (tenant_id, name, occurred_at desc);

-- Who changed what. Holds ids and non-personal details only, so erasing a contact
-- leaves an anonymous trail.
create table audit_log (
  id          bigint generated always as identity primary key,
  tenant_id   uuid not null references tenants (id) on delete cascade,
  actor       text not null,
  action      text not null,
  entity_type text not null,
  entity_id   text,
  data        jsonb not null default '{}',
  created_at  timestamptz not null default now()
);
create index audit_log_tenant on audit_log (tenant_id, id desc);
create index audit_log_entity on audit_log (tenant_id, entity_type, entity_id);
