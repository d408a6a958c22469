-- A batch asks whether each of its addresses is suppressed on any channel. The unique key leads
-- with (tenant_id, channel), so without this index the lookup hashes the tenant's whole list,
-- which grows with every bounce and complaint; with it each address is one index probe.
create index suppressions_by_address on suppressions (tenant_id, address_hash);
