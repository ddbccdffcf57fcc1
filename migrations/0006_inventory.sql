-- The node's inventory as its agent reports it: every owned asset output
-- (all script key types, leased ones included) with its key locators, and
-- the key locators of its keys. tapd's wallet backup leaves leased and
-- unconfirmed outputs out and tapd v0.7 has none: recovery takes their keys
-- from here. One row per output (its latest report), one per key.

CREATE TABLE node_outputs (
    id                  BIGSERIAL PRIMARY KEY,
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    anchor_txid         BYTEA NOT NULL,          -- internal byte order
    anchor_vout         INT NOT NULL,
    script_key          BYTEA NOT NULL,          -- 33-byte compressed
    script_key_x        BYTEA NOT NULL,
    asset_id            BYTEA NOT NULL,
    amount              BIGINT NOT NULL,
    script_key_type     SMALLINT NOT NULL,
    leased              BOOLEAN NOT NULL,
    anchor_height       INT NOT NULL,
    sk_raw_key          BYTEA,
    sk_family           INT,
    sk_index            INT,
    sk_tweak            BYTEA,
    ik_raw_key          BYTEA,
    ik_family           INT,
    ik_index            INT,
    last_run_id         TEXT NOT NULL,
    first_seen_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, anchor_txid, anchor_vout, script_key_x)
);
CREATE INDEX node_outputs_run ON node_outputs (tenant_id, last_run_id);

CREATE TABLE key_locators (
    id                  BIGSERIAL PRIMARY KEY,
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    kind                TEXT NOT NULL CHECK (kind IN ('script', 'internal')),
    key_x               BYTEA NOT NULL,
    key                 BYTEA NOT NULL,
    raw_key             BYTEA NOT NULL,
    family              INT NOT NULL,
    idx                 INT NOT NULL,
    tweak               BYTEA,
    script_key_type     SMALLINT NOT NULL DEFAULT 0,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, key_x)
);

-- Completed inventory runs; the newest one's outputs are the node's set.
CREATE TABLE inventory_runs (
    id                  BIGSERIAL PRIMARY KEY,
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    run_id              TEXT NOT NULL,
    source              TEXT NOT NULL,
    outputs             INT NOT NULL,
    completed_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, run_id)
);
