-- tapvault schema. Append-only: rows are inserted, never updated in place,
-- except the per-tree root pointer (mssmt_roots) and the leaf "latest" view.
-- u64 quantities (sums, amounts) are stored bit-cast into BIGINT.

CREATE TABLE tenants (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- MS-SMT nodes, content-addressed per tenant and immutable.
-- kind 1 = branch: data = l_hash32 || l_sum8 || r_hash32 || r_sum8
-- kind 2 = compacted leaf: data = key32 || leaf_hash32 || leaf_sum8
CREATE TABLE mssmt_nodes (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    hash        BYTEA NOT NULL,
    kind        SMALLINT NOT NULL CHECK (kind IN (1, 2)),
    data        BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);

-- One row per tree; writers lock it (SELECT … FOR UPDATE) to serialize
-- updates of that tree only.
CREATE TABLE mssmt_roots (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    namespace   TEXT NOT NULL,
    root_hash   BYTEA NOT NULL,
    root_sum    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, namespace)
);
