-- Universe storage: raw proofs, every version of every leaf, the head
-- (newest version) of each leaf, the universes, and an ingest log.

-- Raw proof bytes exactly as received, deduplicated by SHA-256.
CREATE TABLE proofs (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    hash        BYTEA NOT NULL,
    raw         BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, hash)
);

-- One row per (leaf, version); never updated or deleted.
CREATE TABLE universe_leaves (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    universe_id     BYTEA NOT NULL,          -- asset id, or SHA256(x-only group key)
    proof_type      SMALLINT NOT NULL CHECK (proof_type IN (1, 2)),
    leaf_key        BYTEA NOT NULL,
    version         INT NOT NULL,
    proof_hash      BYTEA NOT NULL,
    asset_id        BYTEA NOT NULL,
    group_key       BYTEA,                   -- 33-byte compressed, if grouped
    anchor_txid     BYTEA NOT NULL,          -- internal byte order
    anchor_vout     INT NOT NULL,
    script_key      BYTEA NOT NULL,          -- 33-byte compressed
    script_key_x    BYTEA NOT NULL,          -- x-only, for lookups by either form
    amount          BIGINT NOT NULL,         -- u64 bit-cast
    leaf_sum        BIGINT NOT NULL,
    leaf_node_hash  BYTEA NOT NULL,          -- SHA256(raw || sum)
    block_height    INT NOT NULL,
    block_hash      BYTEA NOT NULL,
    asset_name      TEXT NOT NULL,
    inserted_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, universe_id, proof_type, leaf_key, version),
    FOREIGN KEY (tenant_id, proof_hash) REFERENCES proofs(tenant_id, hash)
);
CREATE INDEX universe_leaves_script_key ON universe_leaves (tenant_id, script_key_x);
CREATE INDEX universe_leaves_anchor ON universe_leaves (tenant_id, anchor_txid, anchor_vout);
CREATE INDEX universe_leaves_asset_id ON universe_leaves (tenant_id, asset_id);
CREATE INDEX universe_leaves_group_key ON universe_leaves (tenant_id, group_key) WHERE group_key IS NOT NULL;

-- The newest version of each leaf. `complete` = its ancestry back to an
-- issuance leaf of the same universe is stored; only complete leaves are in
-- the universe MS-SMT (what tapd syncs), so a syncing tapd never receives a
-- leaf whose predecessor it cannot find.
CREATE TABLE universe_heads (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    universe_id     BYTEA NOT NULL,
    proof_type      SMALLINT NOT NULL,
    leaf_key        BYTEA NOT NULL,
    leaf_id         BIGINT NOT NULL REFERENCES universe_leaves(id),
    prev_leaf_key   BYTEA,                   -- NULL for issuance leaves
    complete        BOOLEAN NOT NULL,
    UNIQUE (tenant_id, universe_id, proof_type, leaf_key)
);
CREATE INDEX universe_heads_waiting ON universe_heads (tenant_id, universe_id, prev_leaf_key) WHERE NOT complete;
CREATE INDEX universe_heads_leaf_key ON universe_heads (tenant_id, universe_id, leaf_key);

-- Universes, in first-seen order (the stable order of AssetRoots pages).
CREATE TABLE universes (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    universe_id     BYTEA NOT NULL,
    proof_type      SMALLINT NOT NULL,
    asset_id        BYTEA,                   -- set for asset-ID universes
    group_key       BYTEA,                   -- set for group universes
    asset_name      TEXT NOT NULL,
    UNIQUE (tenant_id, universe_id, proof_type)
);

CREATE TABLE ingest_events (
    id              BIGSERIAL PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    kind            TEXT NOT NULL,           -- 'new_leaf', 'new_version', 'duplicate'
    universe_id     BYTEA NOT NULL,
    proof_type      SMALLINT NOT NULL,
    leaf_key        BYTEA NOT NULL,
    proof_hash      BYTEA NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ingest_events_at ON ingest_events (tenant_id, at);
