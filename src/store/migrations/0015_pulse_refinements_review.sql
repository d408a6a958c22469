-- Whether a refined pulse message opens a review task is decided by the tenant's setting when the
-- model answers (engine/pulse-refine.ts), not when the batch was written: the column went unread.
alter table pulse_refinements drop column review;
