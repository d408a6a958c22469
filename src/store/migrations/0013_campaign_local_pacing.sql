-- A recipient-local occurrence's throttle (docs/campaigns.md, "Schedules"). Its recipients are due
-- at their local time, and every zone at one offset reaches Monday 09:00 at the same instant, so
-- the throttle paces the recipients of each instant from that instant. The count must carry from
-- one batch to the next and over a pause, so it is kept here: per instant (ISO), when its pace
-- started and how many recipients it has given a slot, {"<instant>": {"from": "<ISO>", "n": 12}}.
alter table campaign_occurrences add column local_pace jsonb not null default '{}';
