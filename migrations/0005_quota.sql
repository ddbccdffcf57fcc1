-- Per-tenant usage and quotas. Usage is charged by statement-level triggers
-- in the same transaction as the rows it counts, so it can never drift from
-- what is stored; a write that would go over a quota raises, and its whole
-- transaction (the reply's items) rolls back: nothing half-written.
-- Items: raw proofs, wallet backups, addresses, tapscript trees. Bytes: their
-- payloads (proof bytes, backup blobs, encoded addresses, tapscript leaves).

CREATE TABLE tenant_usage (
    tenant_id   BIGINT PRIMARY KEY REFERENCES tenants(id),
    bytes       BIGINT NOT NULL DEFAULT 0,
    items       BIGINT NOT NULL DEFAULT 0,
    max_bytes   BIGINT,                      -- NULL: no quota
    max_items   BIGINT
);

INSERT INTO tenant_usage (tenant_id, bytes, items)
SELECT t.id,
       COALESCE((SELECT sum(length(raw)) FROM proofs WHERE tenant_id = t.id), 0)
     + COALESCE((SELECT sum(length(raw)) FROM wallet_backups WHERE tenant_id = t.id), 0)
     + COALESCE((SELECT sum(length(encoded)) FROM addresses WHERE tenant_id = t.id), 0)
     + COALESCE((SELECT sum(length(leaves)) FROM tapscripts WHERE tenant_id = t.id), 0),
       (SELECT count(*) FROM proofs WHERE tenant_id = t.id)
     + (SELECT count(*) FROM wallet_backups WHERE tenant_id = t.id)
     + (SELECT count(*) FROM addresses WHERE tenant_id = t.id)
     + (SELECT count(*) FROM tapscripts WHERE tenant_id = t.id)
FROM tenants t;

CREATE FUNCTION tapvault_charge(t BIGINT, b BIGINT, n BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    u tenant_usage%ROWTYPE;
BEGIN
    INSERT INTO tenant_usage AS x (tenant_id, bytes, items) VALUES (t, b, n)
    ON CONFLICT (tenant_id) DO UPDATE SET bytes = x.bytes + b, items = x.items + n
    RETURNING * INTO u;
    IF u.max_bytes IS NOT NULL AND u.bytes > u.max_bytes THEN
        RAISE EXCEPTION 'tenant byte quota exceeded: this write would bring the tenant to % bytes, over its quota of % bytes; nothing was stored',
            u.bytes, u.max_bytes USING ERRCODE = 'TVQ01';
    END IF;
    IF u.max_items IS NOT NULL AND u.items > u.max_items THEN
        RAISE EXCEPTION 'tenant item quota exceeded: this write would bring the tenant to % items, over its quota of % items; nothing was stored',
            u.items, u.max_items USING ERRCODE = 'TVQ02';
    END IF;
END $$;

-- One trigger function for the four tables: TG_ARGV[0] names the column
-- whose length is charged.
CREATE FUNCTION tapvault_charge_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'SELECT tapvault_charge(tenant_id, sum(length(%I))::BIGINT, count(*))
         FROM new_rows GROUP BY tenant_id', TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE TRIGGER proofs_charge AFTER INSERT ON proofs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_charge_rows('raw');
CREATE TRIGGER wallet_backups_charge AFTER INSERT ON wallet_backups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_charge_rows('raw');
CREATE TRIGGER addresses_charge AFTER INSERT ON addresses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_charge_rows('encoded');
CREATE TRIGGER tapscripts_charge AFTER INSERT ON tapscripts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tapvault_charge_rows('leaves');

-- Append-only: stored items are never updated or deleted by the server; a
-- row changed behind its back is what `tapvault fsck` looks for.
