//! MS-SMT through PostgreSQL: `cargo run --release -p tapvault-store --example bench_pg_mssmt [N]`
//! (uses DATABASE_URL or local PostgreSQL; creates and drops a scratch database).

use std::time::Instant;
use tapvault_mssmt::{LeafUpdate, Tree};
use tapvault_store::db::{ensure_tenant, testdb};
use tapvault_store::PgTree;

fn keys(n: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut x: u64 = seed | 1;
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            for c in k.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            k
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let t = testdb::create().await;
    let tenant = ensure_tenant(&t.db.pool, "bench").await.unwrap();
    let value = [0xabu8; 64];

    // Raw baseline: the same number of 72-byte rows inserted in batches of 100.
    sqlx::query("CREATE TABLE raw_bench (k BYTEA PRIMARY KEY, v BYTEA)")
        .execute(&t.db.pool)
        .await
        .unwrap();
    let ks = keys(n, 7);
    let start = Instant::now();
    for chunk in ks.chunks(100) {
        let k: Vec<Vec<u8>> = chunk.iter().map(|k| k.to_vec()).collect();
        let v: Vec<Vec<u8>> = chunk.iter().map(|_| value[..40].to_vec()).collect();
        sqlx::query("INSERT INTO raw_bench SELECT * FROM UNNEST($1::bytea[], $2::bytea[])")
            .bind(&k)
            .bind(&v)
            .execute(&t.db.pool)
            .await
            .unwrap();
    }
    let raw = start.elapsed();
    println!(
        "raw rows, batches of 100: {:.0} rows/s",
        n as f64 / raw.as_secs_f64()
    );

    for (label, batch, seed) in [("batches of 100", 100usize, 1u64), ("one by one", 1, 2)] {
        let ks = keys(n, seed);
        let ns = format!("bench-{batch}");
        let mut written = 0;
        let start = Instant::now();
        for chunk in ks.chunks(batch) {
            let mut tx = t.db.pool.begin().await.unwrap();
            let mut tree = Tree::new(PgTree::writer(&mut tx, tenant, &ns, t.db.cache.clone()));
            tree.apply(
                chunk
                    .iter()
                    .map(|k| LeafUpdate::new(*k, &value, 1))
                    .collect(),
            )
            .await
            .unwrap();
            written += tree.store().nodes_written;
            drop(tree);
            tx.commit().await.unwrap();
        }
        let el = start.elapsed();
        println!(
            "mssmt via PostgreSQL, {label}: {n} leaves in {:.2}s = {:.0} leaves/s; {:.2} node rows written per leaf",
            el.as_secs_f64(),
            n as f64 / el.as_secs_f64(),
            written as f64 / n as f64
        );
    }
    t.drop_db().await;
}
