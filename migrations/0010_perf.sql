-- Servers cache token records for a few seconds (TOKEN_CACHE_TTL); a change
-- to a token or a tenant made by any process is announced at commit so that
-- every server drops what it cached at once. Payload: the token's jti, or
-- '*' for a tenant change (every cached token is dropped).
CREATE FUNCTION tapvault_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tokens' THEN
        PERFORM pg_notify('tapvault_token_changed', OLD.jti);
    ELSE
        PERFORM pg_notify('tapvault_token_changed', '*');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tapvault_token_changed AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION tapvault_token_changed();
CREATE TRIGGER tapvault_token_changed AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tapvault_token_changed();

-- Who spent an output: GetProofFile's `spent_by` and recovery's forward
-- walk ask this once per output. The only index on prev_leaf_key covered
-- waiting leaves alone, so every call scanned the tenant's heads and
-- recovery grew with the square of the outputs.
CREATE INDEX universe_heads_prev ON universe_heads (tenant_id, prev_leaf_key)
    WHERE prev_leaf_key IS NOT NULL;

-- A proof by output (GetProofFile, each step of a chain, recovery): the
-- anchor index alone leaves every asset sharing the anchor output to be
-- filtered (a batch transfer or a mint of many assets puts thousands
-- there), so it now ends with the script key, then the id its newest-first
-- order needs (else the planner may walk the primary key backwards instead).
DROP INDEX universe_leaves_anchor;
CREATE INDEX universe_leaves_anchor ON universe_leaves (tenant_id, anchor_txid, anchor_vout, script_key_x, id);
