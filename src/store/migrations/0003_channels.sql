-- Channels: provider accounts per tenant, inbound routing, conversations and replies, keywords,
-- the WhatsApp template registry.

create table provider_accounts (
  id          uuid primary key,
  tenant_id   uuid not null references tenants (id) on delete cascade,
  name        text not null,
  kind        text not null,
  channel     text not null check (channel in ('sms', 'email', 'whatsapp', 'voice', 'webhook')),
  -- lower goes first; the next one takes over when it fails
  priority    integer not null default 100,
  -- AES-256-GCM sealed JSON of the secrets (src/core/secrets.ts); never returned by the API
  credentials text not null,
  config      jsonb not null default '{}',
  enabled     boolean not null default true,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  unique (tenant_id, name)
);
create index provider_accounts_channel on provider_accounts (tenant_id, channel, priority) where enabled;

-- A receiving number, address or provider-side id belongs to one account, and so to one tenant:
-- an inbound webhook finds its tenant here before anything in it is trusted.
create table provider_routes (
  kind       text not null,
  key        text not null,
  account_id uuid not null references provider_accounts (id) on delete cascade,
  tenant_id  uuid not null,
  primary key (kind, key)
);
create index provider_routes_account on provider_routes (account_id);

-- One thread per contact and channel, as an inbox shows it. The WhatsApp customer-service
-- window runs 24 hours from last_inbound_at of the contact's whatsapp conversation.
create table conversations (
  id               uuid primary key,
  tenant_id        uuid not null,
  contact_id       uuid not null references contacts (id) on delete cascade,
  channel          text not null check (channel in ('sms', 'email', 'whatsapp', 'voice', 'webhook')),
  status           text not null default 'open' check (status in ('open', 'closed')),
  -- a person took it over (a handoff); journeys keep their hands off while it is set
  assignee         text,
  last_inbound_at  timestamptz,
  last_outbound_at timestamptz,
  created_at       timestamptz not null,
  updated_at       timestamptz not null,
  unique (tenant_id, contact_id, channel)
);

create table inbound_messages (
  id                  uuid primary key,
  tenant_id           uuid not null,
  contact_id          uuid not null references contacts (id) on delete cascade,
  conversation_id     uuid not null references conversations (id) on delete cascade,
  channel             text not null,
  provider            text not null,
  account_id          uuid,
  provider_message_id text not null,
  from_address        text not null,
  to_address          text not null,
  text                text,
  payload             text,
  -- what keyword handling made of it: opt_out, opt_in, help, or a named intent
  keyword             text,
  intent              text,
  media               jsonb,
  -- the message of ours it answers, when known
  in_reply_to         uuid,
  received_at         timestamptz not null,
  -- a provider delivering the same webhook twice finds its message already here
  unique (tenant_id, provider, provider_message_id)
);
create index inbound_messages_conversation on inbound_messages (conversation_id, received_at);

-- The tenant's additions to and overrides of the default keyword table (src/core/keywords.ts).
create table keywords (
  id         uuid primary key,
  tenant_id  uuid not null references tenants (id) on delete cascade,
  -- normalised: lower case, inner spaces collapsed, surrounding punctuation removed
  phrase     text not null,
  language   text,
  action     text not null check (action in ('opt_out', 'opt_in', 'help', 'intent', 'none')),
  intent     text,
  reply      text,
  created_at timestamptz not null default now(),
  unique (tenant_id, phrase)
);

create table whatsapp_templates (
  id                   uuid primary key,
  tenant_id            uuid not null references tenants (id) on delete cascade,
  name                 text not null,
  language             text not null,
  category             text not null check (category in ('marketing', 'utility', 'authentication')),
  -- the components as Meta describes them: header, body with {{1}}... placeholders, footer, buttons
  components           jsonb not null default '[]',
  status               text not null default 'approved' check (status in ('pending', 'approved', 'rejected', 'paused', 'disabled')),
  -- the provider's own id (Twilio's ContentSid HX…, Meta's template id)
  provider_template_id text,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  unique (tenant_id, name, language)
);

alter table messages add column account_id uuid;
-- 1 (lowest) to 5 (urgent): the dispatcher takes urgent messages first
alter table messages add column priority smallint not null default 3;

-- Receipts that came before the dispatcher recorded the provider's id (a fast provider calls back
-- while its own API answer is still on the way). Applied when the message is recorded as sent;
-- old ones that never match are dropped.
create table pending_receipts (
  provider            text not null,
  provider_message_id text not null,
  status              text not null,
  at                  timestamptz not null,
  detail              jsonb,
  received_at         timestamptz not null
);
create index pending_receipts_lookup on pending_receipts (provider, provider_message_id);
