-- Replies Rapport sends on its own to an inbound message (the STOP / HELP / START confirmations
-- the law asks for). They answer the contact, so consent, quiet hours and caps do not hold them.
alter table messages drop constraint messages_kind_check;
alter table messages add constraint messages_kind_check check (kind in ('send', 'action_webhook', 'reply'));
