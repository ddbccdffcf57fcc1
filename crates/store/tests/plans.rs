//! Queries asked once per output or per proof must stay index lookups on
//! their whole key: a scan, or an index that leaves rows to filter, makes
//! recovery grow with the square of a tenant's outputs. Sequential scans
//! are priced out, so a query the indexes cannot serve still plans as one
//! and fails here.

use tapvault_store::db::testdb;

/// The lines of `explain` (an EXPLAIN of `EXECUTE q(args)`) for `sql`,
/// prepared as `q` after the `SET` statement `setting`.
async fn explain(
    pool: &sqlx::PgPool,
    setting: &str,
    sql: &str,
    explain: &str,
    args: &str,
) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET {setting}; PREPARE q AS {sql}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{explain} EXECUTE q({args})")))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// The plan of `sql` run with `args` (SQL literals).
async fn plan(pool: &sqlx::PgPool, sql: &str, args: &str) -> String {
    explain(pool, "enable_seqscan = off", sql, "EXPLAIN", args)
        .await
        .join("\n")
}

fn bytes(n: usize, b: u8) -> String {
    format!("'\\x{}'::BYTEA", hex::encode(vec![b; n]))
}

#[tokio::test]
async fn spenders_of_an_output_are_found_by_index() {
    let t = testdb::create().await;
    let p = plan(
        &t.db.pool,
        tapvault_store::backup::SPENDERS_OF,
        &format!("1, {}", bytes(32, 7)),
    )
    .await;
    assert!(
        p.contains("universe_heads_prev") && !p.contains("Seq Scan on universe_heads"),
        "spenders_of scans universe_heads:\n{p}"
    );
    t.drop_db().await;
}

#[tokio::test]
async fn a_proof_is_found_by_its_whole_output_key() {
    let t = testdb::create().await;
    let p = plan(
        &t.db.pool,
        tapvault_store::backup::PROOF_AT,
        &format!("1, {}, 0, {}", bytes(32, 1), bytes(32, 2)),
    )
    .await;
    let cond = p
        .lines()
        .find(|l| l.contains("Index Cond") && l.contains("anchor_vout"))
        .unwrap_or_default();
    assert!(
        cond.contains("script_key_x"),
        "proof_at filters the rows of an anchor output instead of looking the key up:\n{p}"
    );
    t.drop_db().await;
}

/// The maximum `actual rows` of any node of `sql`'s generic plan, run.
async fn most_rows_read(pool: &sqlx::PgPool, sql: &str, args: &str) -> (usize, String) {
    let rows = explain(
        pool,
        "plan_cache_mode = force_generic_plan",
        sql,
        "EXPLAIN (ANALYZE, TIMING OFF)",
        args,
    )
    .await;
    let most = rows
        .iter()
        .filter_map(|l| l.split("actual rows=").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    (most, rows.join("\n"))
}

/// A batch's lookup reads its own keys' heads, not the tenant's: each key
/// is an index probe even while the statistics say the tables are empty
/// (a new tenant's tables grow between two analyzes). As joins, a generic
/// plan hash-joined the batch against every head of the tenant, so ingest
/// slowed as the tenant grew.
#[tokio::test]
async fn a_batch_looks_up_only_its_own_keys() {
    let t = testdb::create().await;
    let pool = &t.db.pool;
    for table in ["proofs", "universe_leaves", "universe_heads"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        )))
        .execute(pool)
        .await
        .unwrap();
    }
    let tenant = tapvault_store::db::ensure_tenant(pool, "plans")
        .await
        .unwrap();
    // 5,000 heads of one universe, half of them waiting for their ancestry;
    // only their number matters here.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO proofs (tenant_id, hash, raw)
         SELECT {t}, sha256(int4send(i)), '\\x00' FROM generate_series(1, 5000) i;
         INSERT INTO universe_leaves (tenant_id, universe_id, proof_type, leaf_key, version,
             proof_hash, asset_id, anchor_txid, anchor_vout, script_key, script_key_x, amount,
             leaf_sum, leaf_node_hash, block_height, block_hash, asset_name)
         SELECT {t}, {u}, 2, sha256(int4send(i)), 1, sha256(int4send(i)), {u}, {u}, i, {sk},
             {u}, 1, 1, {u}, 1, {u}, 'a'
         FROM generate_series(1, 5000) i;
         INSERT INTO universe_heads (tenant_id, universe_id, proof_type, leaf_key, leaf_id,
             prev_leaf_key, complete)
         SELECT tenant_id, universe_id, proof_type, leaf_key, id, {u}, anchor_vout % 2 = 0
         FROM universe_leaves;",
        t = tenant.0,
        u = bytes(32, 1),
        sk = bytes(33, 2),
    )))
    .execute(pool)
    .await
    .unwrap();
    let key = |i: i32| format!("sha256(int4send({i}))");
    let args = format!(
        "{t}, ARRAY[{u}, {u}, {u}], ARRAY[2, 2, 2]::INT2[], ARRAY[{}, {}, {}],
         ARRAY[{u}], ARRAY[{}], ARRAY['multiverse-transfer']",
        key(7),
        key(8),
        key(9_000),
        key(10),
        t = tenant.0,
        u = bytes(32, 1),
    );
    let (most, plan) = most_rows_read(pool, tapvault_store::universe::BATCH_LOOKUP, &args).await;
    assert!(
        most <= 10,
        "a batch of three keys read {most} rows in one step:\n{plan}"
    );
    t.drop_db().await;
}
