-- Ingest cost (docs/PERFORMANCE.md): what PostgreSQL did per leaf that
-- protected nothing.

-- Tenants are never deleted: a tenant is disabled, and its rows stay (the
-- guard below makes that a rule of the database, not just of the code). So
-- the foreign keys from data rows to `tenants` guarded against nothing, yet
-- each inserted row paid a lookup and a share lock on its tenant's row: about
-- twenty per leaf, one per tree node. They go; the keys between data rows
-- (a leaf's proof, a head's leaf, an entry's backup) stay.
CREATE FUNCTION tapvault_tenants_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenants are never deleted (disable the tenant instead); nothing was changed'
        USING ERRCODE = 'TVT01';
END $$;
CREATE TRIGGER tenants_are_kept BEFORE DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tapvault_tenants_are_kept();

ALTER TABLE mssmt_nodes DROP CONSTRAINT mssmt_nodes_tenant_id_fkey;
ALTER TABLE mssmt_roots DROP CONSTRAINT mssmt_roots_tenant_id_fkey;
ALTER TABLE proofs DROP CONSTRAINT proofs_tenant_id_fkey;
ALTER TABLE universe_leaves DROP CONSTRAINT universe_leaves_tenant_id_fkey;
ALTER TABLE universe_heads DROP CONSTRAINT universe_heads_tenant_id_fkey;
ALTER TABLE universes DROP CONSTRAINT universes_tenant_id_fkey;
ALTER TABLE ingest_events DROP CONSTRAINT ingest_events_tenant_id_fkey;
ALTER TABLE log_entries DROP CONSTRAINT log_entries_tenant_id_fkey;
ALTER TABLE wallet_backups DROP CONSTRAINT wallet_backups_tenant_id_fkey;
ALTER TABLE backup_entries DROP CONSTRAINT backup_entries_tenant_id_fkey;
ALTER TABLE addresses DROP CONSTRAINT addresses_tenant_id_fkey;
ALTER TABLE tapscripts DROP CONSTRAINT tapscripts_tenant_id_fkey;

-- The quota and log triggers built their SQL per call (EXECUTE format), so
-- every insert statement parsed and planned two more statements. One
-- function per table with static SQL keeps its plans for the session.
CREATE FUNCTION tapvault_log_append(t BIGINT, n BIGINT) RETURNS BIGINT LANGUAGE SQL AS $$
    INSERT INTO tenant_usage AS x (tenant_id, log_size) VALUES (t, n)
    ON CONFLICT (tenant_id) DO UPDATE SET log_size = x.log_size + n
    RETURNING x.log_size - n
$$;

-- proofs and wallet_backups both charge their `raw` column.
CREATE FUNCTION tapvault_raw_charge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tapvault_charge(tenant_id, sum(length(raw))::BIGINT, count(*))
    FROM new_rows GROUP BY tenant_id;
    RETURN NULL;
END $$;
CREATE FUNCTION tapvault_addresses_charge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tapvault_charge(tenant_id, sum(length(encoded))::BIGINT, count(*))
    FROM new_rows GROUP BY tenant_id;
    RETURN NULL;
END $$;
CREATE FUNCTION tapvault_tapscripts_charge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tapvault_charge(tenant_id, sum(length(leaves))::BIGINT, count(*))
    FROM new_rows GROUP BY tenant_id;
    RETURN NULL;
END $$;

-- Kind, content hash and time column as in 0008's tapvault_log_rows.
CREATE FUNCTION tapvault_universe_leaves_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r RECORD; base BIGINT;
BEGIN
    IF current_setting('tapvault.log_replay', true) = 'on' THEN RETURN NULL; END IF;
    FOR r IN SELECT tenant_id, count(*) AS n FROM new_rows GROUP BY tenant_id LOOP
        base := tapvault_log_append(r.tenant_id, r.n);
        INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
        SELECT r.tenant_id, s, 1, h, at, sha256('\x00'::BYTEA || tapvault_log_entry(1, h, s, at))
        FROM (SELECT base + row_number() OVER (ORDER BY id) - 1 AS s, proof_hash AS h,
                     inserted_at AS at
              FROM new_rows WHERE tenant_id = r.tenant_id) q;
    END LOOP;
    RETURN NULL;
END $$;
CREATE FUNCTION tapvault_wallet_backups_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r RECORD; base BIGINT;
BEGIN
    IF current_setting('tapvault.log_replay', true) = 'on' THEN RETURN NULL; END IF;
    FOR r IN SELECT tenant_id, count(*) AS n FROM new_rows GROUP BY tenant_id LOOP
        base := tapvault_log_append(r.tenant_id, r.n);
        INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
        SELECT r.tenant_id, s, 2, h, at, sha256('\x00'::BYTEA || tapvault_log_entry(2, h, s, at))
        FROM (SELECT base + row_number() OVER (ORDER BY id) - 1 AS s, sha256 AS h,
                     received_at AS at
              FROM new_rows WHERE tenant_id = r.tenant_id) q;
    END LOOP;
    RETURN NULL;
END $$;
CREATE FUNCTION tapvault_addresses_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r RECORD; base BIGINT;
BEGIN
    IF current_setting('tapvault.log_replay', true) = 'on' THEN RETURN NULL; END IF;
    FOR r IN SELECT tenant_id, count(*) AS n FROM new_rows GROUP BY tenant_id LOOP
        base := tapvault_log_append(r.tenant_id, r.n);
        INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
        SELECT r.tenant_id, s, 3, h, at, sha256('\x00'::BYTEA || tapvault_log_entry(3, h, s, at))
        FROM (SELECT base + row_number() OVER (ORDER BY id) - 1 AS s,
                     sha256(convert_to(encoded, 'UTF8')) AS h, received_at AS at
              FROM new_rows WHERE tenant_id = r.tenant_id) q;
    END LOOP;
    RETURN NULL;
END $$;
CREATE FUNCTION tapvault_tapscripts_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r RECORD; base BIGINT;
BEGIN
    IF current_setting('tapvault.log_replay', true) = 'on' THEN RETURN NULL; END IF;
    FOR r IN SELECT tenant_id, count(*) AS n FROM new_rows GROUP BY tenant_id LOOP
        base := tapvault_log_append(r.tenant_id, r.n);
        INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
        SELECT r.tenant_id, s, 4, h, at, sha256('\x00'::BYTEA || tapvault_log_entry(4, h, s, at))
        FROM (SELECT base + row_number() OVER (ORDER BY id) - 1 AS s, content_hash AS h,
                     received_at AS at
              FROM new_rows WHERE tenant_id = r.tenant_id) q;
    END LOOP;
    RETURN NULL;
END $$;

DROP TRIGGER proofs_charge ON proofs;
DROP TRIGGER wallet_backups_charge ON wallet_backups;
DROP TRIGGER addresses_charge ON addresses;
DROP TRIGGER tapscripts_charge ON tapscripts;
DROP TRIGGER universe_leaves_log ON universe_leaves;
DROP TRIGGER wallet_backups_log ON wallet_backups;
DROP TRIGGER addresses_log ON addresses;
DROP TRIGGER tapscripts_log ON tapscripts;
DROP FUNCTION tapvault_charge_rows();
DROP FUNCTION tapvault_log_rows();

CREATE TRIGGER proofs_charge AFTER INSERT ON proofs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_raw_charge();
CREATE TRIGGER wallet_backups_charge AFTER INSERT ON wallet_backups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_raw_charge();
CREATE TRIGGER addresses_charge AFTER INSERT ON addresses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_addresses_charge();
CREATE TRIGGER tapscripts_charge AFTER INSERT ON tapscripts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_tapscripts_charge();
CREATE TRIGGER universe_leaves_log AFTER INSERT ON universe_leaves
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_universe_leaves_log();
CREATE TRIGGER wallet_backups_log AFTER INSERT ON wallet_backups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_wallet_backups_log();
CREATE TRIGGER addresses_log AFTER INSERT ON addresses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_addresses_log();
CREATE TRIGGER tapscripts_log AFTER INSERT ON tapscripts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_tapscripts_log();
