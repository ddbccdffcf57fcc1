-- The references between data rows become fsck's to check (docs/PERFORMANCE.md,
-- "the foreign key that read the tenant's leaves").
--
-- Each of these foreign keys ran, for every inserted row, a lookup of the row
-- it names plus a FOR KEY SHARE lock on it (a write to that row's page, and
-- WAL). Worse, PostgreSQL plans that lookup once per connection, and a
-- connection that first inserts while the tables are empty or unanalyzed gets
-- a plan that ties every index: the heads' check on universe_leaves(tenant_id,
-- id) was seen using universe_leaves_anchor, whose last column is the id, so
-- it read the tenant's whole anchor index for every new head (905 buffers,
-- 4.4 ms per leaf at 60,000 leaves).
--
-- The writes that create these rows create the rows they name in the same
-- statement or transaction, rows are never deleted by the server, and fsck
-- reports a leaf without its proof, a head without its leaf and a backup entry
-- without its backup. What the keys refused (a delete behind the server's
-- back) is what fsck and the receipt log exist to catch.
ALTER TABLE universe_leaves DROP CONSTRAINT universe_leaves_tenant_id_proof_hash_fkey;
ALTER TABLE universe_heads DROP CONSTRAINT universe_heads_leaf_fkey;
ALTER TABLE backup_entries DROP CONSTRAINT backup_entries_backup_fkey;
