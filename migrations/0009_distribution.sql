-- Every table a tenant owns has a primary key and unique constraints that
-- begin with tenant_id: the distribution column a Citus cluster shards by
-- (docs/SCALING.md), so a tenant's rows, and every statement about them,
-- stay on one shard. Row ids stay unique on their own (sequences); a plain
-- index on universe_leaves (id) keeps the joins from heads to leaves by id
-- as fast as before (every other lookup by id names the tenant too). Global tables:
-- tenants and tokens (reference tables), _sqlx_migrations.

ALTER TABLE universe_heads DROP CONSTRAINT universe_heads_leaf_id_fkey;
ALTER TABLE backup_entries DROP CONSTRAINT backup_entries_backup_id_fkey;
ALTER TABLE universe_leaves DROP CONSTRAINT universe_leaves_pkey, ADD PRIMARY KEY (tenant_id, id);
CREATE INDEX universe_leaves_by_id ON universe_leaves (id);
ALTER TABLE universe_heads DROP CONSTRAINT universe_heads_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE universes DROP CONSTRAINT universes_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE ingest_events DROP CONSTRAINT ingest_events_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE wallet_backups DROP CONSTRAINT wallet_backups_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE backup_entries DROP CONSTRAINT backup_entries_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE addresses DROP CONSTRAINT addresses_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE tapscripts DROP CONSTRAINT tapscripts_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE node_outputs DROP CONSTRAINT node_outputs_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE key_locators DROP CONSTRAINT key_locators_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE inventory_runs DROP CONSTRAINT inventory_runs_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE backup_entries DROP CONSTRAINT backup_entries_backup_id_position_key,
    ADD CONSTRAINT backup_entries_position_key UNIQUE (tenant_id, backup_id, position);
ALTER TABLE universe_heads ADD CONSTRAINT universe_heads_leaf_fkey
    FOREIGN KEY (tenant_id, leaf_id) REFERENCES universe_leaves (tenant_id, id);
ALTER TABLE backup_entries ADD CONSTRAINT backup_entries_backup_fkey
    FOREIGN KEY (tenant_id, backup_id) REFERENCES wallet_backups (tenant_id, id);

-- Receipt checks find an address by its content hash (migration 0008). The
-- conversion to UTF-8 is deterministic, so the wrapper may be IMMUTABLE
-- (which an index expression needs).
CREATE FUNCTION tapvault_address_hash(encoded TEXT) RETURNS BYTEA
    LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(encoded, 'UTF8')) $$;
CREATE INDEX addresses_content_hash ON addresses (tenant_id, tapvault_address_hash(encoded));
