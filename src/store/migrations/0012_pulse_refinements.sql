-- Pulse messages waiting for the configured chat model (docs/campaigns.md, "With a model").
-- A pulse batch is written inside the campaign runner's transaction, where a call of seconds to
-- a model cannot go: the composer's message is written held (no due time, `content.refine`),
-- and a row here says what to ask the model and when the message was meant to go. A worker
-- leases rows, asks the model outside any transaction, checks the answer, and then releases the
-- message (or opens its review task) and deletes the row.
create table pulse_refinements (
  message_id  uuid primary key references messages(id) on delete cascade,
  tenant_id   uuid not null,
  -- the occurrence stays running (it can be paused or stopped) until its messages are refined
  occurrence_id uuid not null,
  -- what the composer was given, without the contact (read again when refining): items, voice,
  -- channel, max_length, cta, footer, language
  input       jsonb not null,
  -- when the message was meant to go (its throttle slot or its recipient's local time)
  due_at      timestamptz not null,
  -- recipient-local: past this the recipient's moment has gone and the message is cancelled
  latest_at   timestamptz,
  -- the tenant reviews synthesized messages: a review task is opened instead of releasing
  review      boolean not null,
  attempts    int not null default 0,
  lease_until timestamptz,
  created_at  timestamptz not null
);
create index pulse_refinements_claim on pulse_refinements (created_at);
create index pulse_refinements_occurrence on pulse_refinements (occurrence_id);
