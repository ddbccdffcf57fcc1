-- What tapd never pushes: wallet backup blobs, TAP addresses, tapscript
-- trees. Append-only like the rest: rows are inserted, never updated.

-- Every distinct backup blob a tenant pushed, with when it arrived.
-- kind 'tapbak' = decoded and validated TAPBAK; 'opaque' = stored as-is
-- (tapd's encrypted assets.backup file).
CREATE TABLE wallet_backups (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     BIGINT NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL CHECK (kind IN ('tapbak', 'opaque')),
    version       INT,                      -- TAPBAK version (1, 2, 3)
    sha256        BYTEA NOT NULL,
    raw           BYTEA NOT NULL,
    asset_count   INT NOT NULL,
    source        TEXT NOT NULL,            -- who pushed it (free text)
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sha256)
);
CREATE INDEX wallet_backups_newest ON wallet_backups (tenant_id, kind, id DESC);

-- The per-asset entries of TAPBAK blobs, with the key locators tapd needs
-- to spend again.
CREATE TABLE backup_entries (
    id                  BIGSERIAL PRIMARY KEY,
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    backup_id           BIGINT NOT NULL REFERENCES wallet_backups(id),
    position            INT NOT NULL,
    asset_id            BYTEA NOT NULL,
    group_key           BYTEA,
    amount              BIGINT NOT NULL,
    script_key          BYTEA NOT NULL,
    script_key_x        BYTEA NOT NULL,
    anchor_txid         BYTEA NOT NULL,
    anchor_vout         INT NOT NULL,
    anchor_height       INT NOT NULL,
    script_key_family   INT,
    script_key_index    INT,
    script_raw_key      BYTEA,
    script_key_tweak    BYTEA,
    internal_key        BYTEA,
    internal_key_family INT,
    internal_key_index  INT,
    proofs              TEXT NOT NULL CHECK (proofs IN ('full', 'stripped', 'none')),
    UNIQUE (backup_id, position)
);
CREATE INDEX backup_entries_script_key ON backup_entries (tenant_id, script_key_x);
CREATE INDEX backup_entries_anchor ON backup_entries (tenant_id, anchor_txid, anchor_vout);

-- TAP addresses, every field decoded; the string is the identity.
CREATE TABLE addresses (
    id                  BIGSERIAL PRIMARY KEY,
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    encoded             TEXT NOT NULL,
    network             TEXT NOT NULL,
    version             SMALLINT NOT NULL,
    asset_version       SMALLINT NOT NULL,
    asset_id            BYTEA,
    group_key           BYTEA,
    script_key          BYTEA NOT NULL,
    script_key_x        BYTEA NOT NULL,
    internal_key        BYTEA NOT NULL,
    internal_key_x      BYTEA NOT NULL,
    tapscript_sibling   BYTEA,
    amount              BIGINT NOT NULL,
    proof_courier_addr  TEXT NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, encoded)
);
CREATE INDEX addresses_script_key ON addresses (tenant_id, script_key_x);
CREATE INDEX addresses_internal_key ON addresses (tenant_id, internal_key_x);

-- Tapscript trees (their leaves, in tapd's assembly order) for a key.
CREATE TABLE tapscripts (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    key_x           BYTEA NOT NULL,         -- x-only key the tree belongs to
    raw_key         BYTEA,                  -- internal key, when given (33 bytes)
    root_hash       BYTEA NOT NULL,
    leaves          BYTEA NOT NULL,         -- (u8 version ‖ BigSize len ‖ script)*
    content_hash    BYTEA NOT NULL,
    label           TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, key_x, content_hash)
);
