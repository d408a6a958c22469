-- Recurring and recipient-local campaign schedules (docs/campaigns.md, "Schedules").
-- A recipient-local occurrence is a wall-clock time that reaches each recipient in their own
-- zone; next_run_at (when it starts, at UTC+14) cannot say which wall time it was, so it is kept
-- beside it, and on the occurrence the recipients' due times are computed from.
alter table campaigns add column next_local text;
alter table campaign_occurrences add column local_at text;
