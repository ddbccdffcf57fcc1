//! Queries asked once per output or per call must stay index lookups: a
//! sequential scan there makes recovery grow with the square of a tenant's
//! outputs. Sequential scans are priced out, so a query the indexes cannot
//! serve still plans as one and fails here.

use tapvault_store::db::testdb;

async fn plan(pool: &sqlx::PgPool, sql: &str, binds: (i64, Vec<u8>)) -> String {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .bind(binds.0)
        .bind(binds.1)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn spenders_of_an_output_are_found_by_index() {
    let t = testdb::create().await;
    let p = plan(
        &t.db.pool,
        tapvault_store::backup::SPENDERS_OF,
        (1, vec![7u8; 32]),
    )
    .await;
    assert!(
        p.contains("universe_heads_prev") && !p.contains("Seq Scan on universe_heads"),
        "spenders_of scans universe_heads:\n{p}"
    );
    t.drop_db().await;
}
