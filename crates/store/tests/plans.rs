//! Queries asked once per output or per proof must stay index lookups on
//! their whole key: a scan, or an index that leaves rows to filter, makes
//! recovery grow with the square of a tenant's outputs. Sequential scans
//! are priced out, so a query the indexes cannot serve still plans as one
//! and fails here.

use tapvault_store::db::testdb;

/// The plan of `sql` run with `args` (SQL literals).
async fn plan(pool: &sqlx::PgPool, sql: &str, args: &str) -> String {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET enable_seqscan = off; PREPARE q AS {sql}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE q({args})")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.join("\n")
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
