-- Campaigns: one audience, one action (a message or a journey), a schedule and a throttle
-- (docs/campaigns.md). A campaign fires in occurrences; a one-off campaign has one, a recurring
-- one (cron, or a local time in each recipient's zone) will have one per tick. The unique
-- (campaign_id, occurrence_key) is what keeps a tick from firing twice when several workers
-- sweep at once: the one whose insert lands starts it, the others insert nothing.
create table campaigns (
  id            uuid primary key,
  tenant_id     uuid not null references tenants(id) on delete cascade,
  name          text not null,
  description   text,
  type          text not null check (type in ('win_back', 'follow_up', 'promotional', 'feedback', 'pulse', 'custom')),
  status        text not null check (status in ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
  -- {segment_id} | {definition} | {contact_ids}
  audience      jsonb not null,
  -- {send: {channel, content, topic?, transactional?, priority?}} | {journey_id}
  action        jsonb not null,
  -- {at?}; recurrence (cron, zone, local time) will live here too
  schedule      jsonb not null default '{}',
  -- {per_minute?}
  throttle      jsonb not null default '{}',
  -- the instant of the next occurrence to start; null when none is due (draft, one-off already started)
  next_run_at   timestamptz,
  created_at    timestamptz not null,
  updated_at    timestamptz not null,
  started_at    timestamptz,
  paused_at     timestamptz,
  completed_at  timestamptz,
  cancelled_at  timestamptz,
  unique (tenant_id, name)
);
create index campaigns_due on campaigns (next_run_at) where next_run_at is not null;
-- the runner closes running campaigns whose occurrences are all written
create index campaigns_running on campaigns (id) where status = 'running';

-- One firing of a campaign. The runner writes its audience a batch at a time, each batch in its
-- own transaction holding this row's lock; `after` is the last contact written (audiences are
-- walked in contact id order), so a batch interrupted by a crash or a pause resumes where it was.
-- Throttled sends are spaced from pace_from: the nth recipient since then is due at
-- pace_from + floor(n / per_minute) minutes, n counted by paced.
create table campaign_occurrences (
  id             uuid primary key,
  tenant_id      uuid not null,
  campaign_id    uuid not null references campaigns(id) on delete cascade,
  -- the scheduled instant (ISO 8601) for time-based schedules; a recipient-local schedule will add its zone
  occurrence_key text not null,
  scheduled_for  timestamptz not null,
  status         text not null check (status in ('running', 'paused', 'completed', 'cancelled')),
  after          uuid,
  written        integer not null default 0,
  -- every member has been written; the occurrence completes once its last send falls due
  audience_done  boolean not null default false,
  -- the latest due_at given to its messages or enrollments
  sends_until    timestamptz,
  pace_from      timestamptz not null,
  paced          integer not null default 0,
  started_at     timestamptz not null,
  completed_at   timestamptz,
  unique (campaign_id, occurrence_key)
);
create index campaign_occurrences_running on campaign_occurrences (started_at) where status = 'running';

-- Who an occurrence reached and with what: a message or an enrollment. Their state is read from
-- those (campaign results), so nothing here changes after the row is written.
create table campaign_recipients (
  occurrence_id uuid not null references campaign_occurrences(id) on delete cascade,
  tenant_id     uuid not null,
  campaign_id   uuid not null,
  contact_id    uuid not null references contacts(id) on delete cascade,
  -- position in the occurrence's audience, from 0
  seq           integer not null,
  message_id    uuid references messages(id) on delete set null,
  enrollment_id uuid references enrollments(id) on delete set null,
  -- 'queued' (a message), 'enrolled', or 'skipped' with a reason (already in the journey, re-entry refused)
  outcome       text not null check (outcome in ('queued', 'enrolled', 'skipped')),
  reason        text,
  created_at    timestamptz not null,
  primary key (occurrence_id, contact_id)
);
create index campaign_recipients_campaign on campaign_recipients (campaign_id, contact_id, occurrence_id);
create index campaign_recipients_message on campaign_recipients (message_id) where message_id is not null;
