-- Journeys, their immutable versions, enrollments with durable timers, the message outbox.

create table templates (
  id                uuid primary key,
  tenant_id         uuid not null references tenants (id) on delete cascade,
  name              text not null,
  channel           text not null check (channel in ('sms', 'email', 'whatsapp', 'voice', 'webhook')),
  subject           text,
  body              text,
  html              text,
  whatsapp_template jsonb,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  unique (tenant_id, name)
);

create table journeys (
  id           uuid primary key,
  tenant_id    uuid not null references tenants (id) on delete cascade,
  name         text not null,
  status       text not null check (status in ('draft', 'active', 'paused', 'archived')),
  -- the editable definition; publishing copies it into journey_versions
  draft        jsonb not null,
  version      integer,
  -- the live version's entry event, so ingest finds the journeys an event enrols into with one index probe
  entry_event  text,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  published_at timestamptz
);
create index journeys_tenant on journeys (tenant_id, created_at);
create index journeys_entry on journeys (tenant_id, entry_event) where status = 'active';

create table journey_versions (
  journey_id   uuid not null references journeys (id) on delete cascade,
  version      integer not null,
  tenant_id    uuid not null,
  definition   jsonb not null,
  -- channels its send nodes use: an opt-out on one channel finds the enrollments it concerns
  channels     text[] not null,
  published_at timestamptz not null,
  published_by text not null,
  primary key (journey_id, version)
);

create table enrollments (
  id            uuid primary key,
  tenant_id     uuid not null,
  journey_id    uuid not null references journeys (id) on delete cascade,
  version       integer not null,
  contact_id    uuid not null references contacts (id) on delete cascade,
  status        text not null check (status in ('active', 'completed', 'converted', 'exited', 'cancelled', 'failed')),
  -- the node it is at; null before the first step
  node          text,
  -- when a worker should next look at it: the durable timer. Null while paused or ended.
  due_at        timestamptz,
  paused_due_at timestamptz,
  -- what it waits for besides time (events, a reply, a webhook answer); null otherwise
  wait          jsonb,
  vars          jsonb not null default '{}',
  -- the engine's own bookkeeping: split assignments {node: variant}, the last send node,
  -- replies by send node; kept apart from vars, which templates and conditions read
  memo          jsonb not null default '{}',
  steps         integer not null default 0,
  source        text not null,
  entered_at    timestamptz not null,
  updated_at    timestamptz not null,
  ended_at      timestamptz,
  end_reason    text
);
create index enrollments_due on enrollments (due_at) where due_at is not null;
-- a contact is in a journey at most once at a time
create unique index enrollments_open on enrollments (journey_id, contact_id) where ended_at is null;
create index enrollments_contact on enrollments (tenant_id, contact_id) where ended_at is null;
create index enrollments_journey on enrollments (journey_id, id);

-- How often and when each contact entered each journey: re-entry rules are checked and
-- counted in one upsert that locks this row, so concurrent triggers cannot both pass.
create table journey_entries (
  journey_id      uuid not null references journeys (id) on delete cascade,
  contact_id      uuid not null references contacts (id) on delete cascade,
  entries         integer not null,
  last_entered_at timestamptz not null,
  primary key (journey_id, contact_id)
);

-- Each step an enrollment took: the inspectable history.
create table enrollment_steps (
  enrollment_id uuid not null references enrollments (id) on delete cascade,
  seq           integer not null,
  at            timestamptz not null,
  node          text,
  outcome       text not null,
  detail        jsonb,
  primary key (enrollment_id, seq)
);

-- The outbox: one row per send attempt of one channel, also its delivery record.
create table messages (
  id                  uuid primary key,
  tenant_id           uuid not null,
  contact_id          uuid not null references contacts (id) on delete cascade,
  enrollment_id       uuid references enrollments (id) on delete set null,
  journey_id          uuid,
  node                text,
  kind                text not null default 'send' check (kind in ('send', 'action_webhook')),
  channel             text not null check (channel in ('sms', 'email', 'whatsapp', 'voice', 'webhook')),
  topic               text,
  transactional       boolean not null default false,
  status              text not null check (status in ('queued', 'sending', 'sent', 'delivered', 'read', 'opened', 'clicked', 'replied',
                                                      'failed', 'bounced', 'undeliverable', 'suppressed', 'cancelled')),
  reason              text,
  -- enrollment, node and attempt: providers and the sandbox recognise a repeated call by it
  idempotency_key     text not null,
  -- when the dispatcher may take it; null once it has left the queue
  due_at              timestamptz,
  -- what to render at dispatch: the node's content and the enrollment variables it may use
  content             jsonb not null,
  rendered            jsonb,
  to_address          text,
  provider            text,
  provider_message_id text,
  cost                numeric,
  currency            text,
  attempts            integer not null default 0,
  created_at          timestamptz not null,
  updated_at          timestamptz not null,
  sent_at             timestamptz,
  delivered_at        timestamptz,
  opened_at           timestamptz,
  clicked_at          timestamptz,
  replied_at          timestamptz,
  failed_at           timestamptz
);
create unique index messages_idempotency on messages (tenant_id, idempotency_key);
create index messages_due on messages (due_at) where due_at is not null;
-- frequency caps and the contact timeline read a contact's recent messages
create index messages_contact on messages (tenant_id, contact_id, created_at desc);
create index messages_enrollment on messages (enrollment_id) where enrollment_id is not null;
create index messages_provider_id on messages (provider, provider_message_id) where provider_message_id is not null;

-- Every status a message went through, with its time.
create table message_status (
  id         bigint generated always as identity primary key,
  message_id uuid not null references messages (id) on delete cascade,
  status     text not null,
  at         timestamptz not null,
  detail     jsonb
);
create index message_status_message on message_status (message_id, id);
