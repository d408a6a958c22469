-- What each synthesized message was built from, kept beside the message (docs/campaigns.md,
-- "Relational Pulse"): the knowledge items and personal elements it used, its personalization
-- score, whether the composer or a model wrote it, and for a pulse its week and its arm of a tone
-- test. The pulse reads it back for its back-off (the contact's last pulses and whether they were
-- answered) and to avoid sending a contact last week's items again; the runs report reads the
-- score and the arms.
--
-- Keyed by the message, and gone with it (erasing the contact removes its messages). The
-- campaign and occurrence are kept as plain ids, as campaign_recipients keeps them: deleting a
-- finished campaign must not erase the history the back-off of later pulses depends on.
create table synthesized_messages (
  message_id            uuid primary key references messages(id) on delete cascade,
  tenant_id             uuid not null,
  campaign_id           uuid,
  occurrence_id         uuid,
  contact_id            uuid not null references contacts(id) on delete cascade,
  source                text not null check (source in ('composer', 'llm')),
  -- [{id, title}], titles as they were when the message was written
  items                 jsonb not null,
  -- first_name, interest:<x>, topic:<x>, purchase:<x>
  elements              text[] not null,
  personalization_score real not null,
  fallback_reason       text,
  -- the tone test's arm and its tone; null without a test
  variant               text,
  tone                  text,
  -- the ISO week ("2026-W10") of a pulse; null for other synthesized messages
  pulse_week            text,
  created_at            timestamptz not null
);
-- A contact's latest pulses, for the back-off and for the items sent last time.
create index synthesized_messages_pulses on synthesized_messages (tenant_id, contact_id, created_at desc) where pulse_week is not null;
-- The runs report: one occurrence's messages.
create index synthesized_messages_occurrence on synthesized_messages (occurrence_id) where occurrence_id is not null;
