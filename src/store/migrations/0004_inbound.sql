-- Replies Rapport sends on its own to an inbound message (the STOP / HELP / START confirmations
-- the law asks for). They answer the contact, so consent, quiet hours and caps do not hold them.
-- Result webhooks tell a journey's caller how an enrollment ended (result_webhook in the
-- definition); they go to the caller's endpoint, not to the contact.
alter table messages drop constraint messages_kind_check;
alter table messages add constraint messages_kind_check check (kind in ('send', 'action_webhook', 'reply', 'result_webhook'));

-- The dispatcher takes urgent messages (priority 4 and 5) before the rest of the outbox.
create index messages_urgent on messages (due_at) where due_at is not null and priority >= 4;
