-- The outbox and the histories are written on every step of every journey, each row in the same
-- transaction as the row it names (a message with its enrollment's step, a status with its
-- message). Their foreign keys checked what that transaction already guarantees, and each check
-- took a share lock on the referenced row: a fifth of PostgreSQL's CPU in the engine benchmark
-- (docs/performance.md). Without them, erasing a contact deletes these rows itself
-- (store/contact-privacy.ts), where the cascades did it before. Journeys and contacts keep their
-- keys: enrollments, consent and events still cannot name a contact that does not exist.
alter table messages drop constraint if exists messages_contact_id_fkey;
alter table messages drop constraint if exists messages_enrollment_id_fkey;
alter table message_status drop constraint if exists message_status_message_id_fkey;
alter table enrollment_steps drop constraint if exists enrollment_steps_enrollment_id_fkey;
