-- Human review of synthesized messages (docs/synthesis.md, "Human review"). A tenant with
-- settings.synthesis_review on gets a review task instead of a message; a person approves, edits
-- or rejects it once, and whatever sends it reads `final`.
--
-- The task belongs to the contact: erasing the contact removes its drafts with it.
create table review_tasks (
  id          uuid primary key,
  tenant_id   uuid not null references tenants(id) on delete cascade,
  contact_id  uuid not null references contacts(id) on delete cascade,
  channel     text not null check (channel in ('whatsapp', 'sms', 'email')),
  draft       text not null,
  -- the text to send: the draft on approval, the reviewer's text on edit, null otherwise
  final       text,
  -- what the draft was built from: items_used, elements, source, fallback_reason, personalization_score
  sources     jsonb not null,
  -- the length, call to action and footer an edit is checked against again
  rules       jsonb not null,
  -- what the draft is for (campaign_id, occurrence, enrollment_id, message_id …); {} for none
  subject     jsonb not null default '{}',
  status      text not null default 'pending' check (status in ('pending', 'approved', 'edited', 'rejected')),
  decided_by  text,
  decided_at  timestamptz,
  reason      text,
  created_at  timestamptz not null,
  constraint review_tasks_decided check ((status = 'pending') = (decided_at is null)),
  constraint review_tasks_final check ((status in ('approved', 'edited')) = (final is not null))
);
create index review_tasks_tenant on review_tasks (tenant_id, id);
-- The reviewers' queue: the pending tasks of one tenant, oldest first.
create index review_tasks_pending on review_tasks (tenant_id, id) where status = 'pending';
