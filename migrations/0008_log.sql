-- The per-tenant append-only log of everything stored (docs/RECEIPTS.md).
-- Entries are appended by statement-level triggers on the four item tables,
-- in the same transaction as the items: an item is acknowledged only once
-- its entry is committed, and an entry never exists without its item.
--
-- Entry (leaf data, 50 bytes): 0x01 | kind u8 | content hash (32) |
-- index u64 BE | arrival time i64 BE (unix microseconds).
-- Leaf hash: SHA-256(0x00 | entry), as RFC 9162.
-- Kinds: 1 proof version (hash of the raw proof), 2 wallet backup (hash of
-- the blob), 3 address (hash of the encoded string), 4 tapscript tree (its
-- content hash).

CREATE TABLE log_entries (
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    seq           BIGINT NOT NULL,               -- log index, 0-based, gap-free
    kind          SMALLINT NOT NULL,
    content_hash  BYTEA NOT NULL,
    arrived_at    TIMESTAMPTZ NOT NULL,
    leaf_hash     BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX log_entries_item ON log_entries (tenant_id, kind, content_hash);

-- Signed tree heads, as issued.
CREATE TABLE log_heads (
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    tree_size     BIGINT NOT NULL,
    root_hash     BYTEA NOT NULL,
    signed_at     TIMESTAMPTZ NOT NULL,
    public_key    BYTEA NOT NULL,
    signature     BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, tree_size, public_key)
);

-- The log's size lives in the usage row: the quota triggers lock that row
-- already, so every writer of a tenant takes one lock, in one order, and
-- indexes are handed out gap-free in commit order.
ALTER TABLE tenant_usage ADD COLUMN log_size BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION tapvault_log_entry(kind INT, h BYTEA, seq BIGINT, at TIMESTAMPTZ)
RETURNS BYTEA LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT '\x01'::BYTEA || set_byte('\x00'::BYTEA, 0, kind) || h || int8send(seq)
        || int8send(tapvault_micros(at))
$$;

-- TG_ARGV: kind, the SQL expression of the content hash, the time column.
-- A session that replays an exported log (import) sets tapvault.log_replay.
CREATE FUNCTION tapvault_log_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r RECORD;
    base BIGINT;
BEGIN
    IF current_setting('tapvault.log_replay', true) = 'on' THEN
        RETURN NULL;
    END IF;
    FOR r IN SELECT tenant_id, count(*) AS n FROM new_rows GROUP BY tenant_id LOOP
        INSERT INTO tenant_usage AS x (tenant_id, log_size) VALUES (r.tenant_id, r.n)
        ON CONFLICT (tenant_id) DO UPDATE SET log_size = x.log_size + r.n
        RETURNING x.log_size - r.n INTO base;
        EXECUTE format(
            'INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
             SELECT $1, s, $2, h, at, sha256(''\x00''::BYTEA || tapvault_log_entry($2, h, s, at))
             FROM (SELECT $3 + row_number() OVER (ORDER BY id) - 1 AS s, %s AS h, %I AS at
                   FROM new_rows WHERE tenant_id = $1) q',
            TG_ARGV[1], TG_ARGV[2])
        USING r.tenant_id, TG_ARGV[0]::SMALLINT, base;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER universe_leaves_log AFTER INSERT ON universe_leaves
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tapvault_log_rows('1', 'proof_hash', 'inserted_at');
CREATE TRIGGER wallet_backups_log AFTER INSERT ON wallet_backups
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tapvault_log_rows('2', 'sha256', 'received_at');
CREATE TRIGGER addresses_log AFTER INSERT ON addresses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tapvault_log_rows('3', 'sha256(convert_to(encoded, ''UTF8''))', 'received_at');
CREATE TRIGGER tapscripts_log AFTER INSERT ON tapscripts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION tapvault_log_rows('4', 'content_hash', 'received_at');

-- What was stored before the log existed joins it in arrival order.
INSERT INTO tenant_usage (tenant_id) SELECT id FROM tenants ON CONFLICT DO NOTHING;
WITH items AS (
    SELECT tenant_id, 1 AS kind, proof_hash AS h, inserted_at AS at, id FROM universe_leaves
    UNION ALL SELECT tenant_id, 2, sha256, received_at, id FROM wallet_backups
    UNION ALL SELECT tenant_id, 3, sha256(convert_to(encoded, 'UTF8')), received_at, id FROM addresses
    UNION ALL SELECT tenant_id, 4, content_hash, received_at, id FROM tapscripts
), numbered AS (
    SELECT tenant_id, kind, h, at,
           row_number() OVER (PARTITION BY tenant_id ORDER BY at, kind, id) - 1 AS s
    FROM items
)
INSERT INTO log_entries (tenant_id, seq, kind, content_hash, arrived_at, leaf_hash)
SELECT tenant_id, s, kind, h, at, sha256('\x00'::BYTEA || tapvault_log_entry(kind, h, s, at))
FROM numbered;
UPDATE tenant_usage u SET log_size = (SELECT count(*) FROM log_entries e WHERE e.tenant_id = u.tenant_id);
