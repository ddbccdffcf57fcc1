//! Ingest and query benchmark against a real server and PostgreSQL:
//! `cargo run --release -p tapvault-server --example bench_ingest [N] [K]`
//!
//! Pushes N distinct proofs over gRPC with K concurrent clients, then
//! measures QueryProof latency at ~500 requests/s, and, in the same run, the
//! raw PostgreSQL rate of inserting the same bytes (one row and one commit
//! per proof, K concurrent connections). Synthetic proofs are the regtest
//! genesis proof with a fresh script key each, so the server runs at
//! `decode-only` verification for them (verification cost is measured by
//! the verify crate's own bench).

use std::sync::Arc;
use std::time::{Duration, Instant};
use tapvault_server::proto::universerpc::universe_client::UniverseClient;

#[path = "common/mod.rs"]
mod common;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let k: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    // One tenant, no tokens: the bench measures ingest, not JWT checks.
    let srv = common::server("ingest", &[], |c| {
        c.auth = false;
        c.max_db_connections = (k as u32 + 4).max(8);
    })
    .await;
    let running = &srv.running;
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let items = Arc::new(common::synthetic(n, ""));
    println!(
        "{n} proofs of {} bytes, {k} concurrent clients",
        items[0].0.len()
    );

    // Raw PostgreSQL baseline: the same bytes, one row + commit each.
    let raw_rate = common::raw_insert_rate(&running.db.pool, items.clone(), k).await;
    let addr = running.grpc_addr.to_string();
    let ingest_rate = common::ingest(&addr, &[], items.clone(), k).await;
    println!("raw PostgreSQL insert: {raw_rate:.0} rows/s");
    println!(
        "InsertProof over gRPC: {ingest_rate:.0} proofs/s = {:.0}% of raw",
        100.0 * ingest_rate / raw_rate
    );

    // QueryProof at ~500 requests/s for 4 s.
    let mut lat = Vec::new();
    let mut c = UniverseClient::new(ch.clone()).max_decoding_message_size(200 << 20);
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    let until = Instant::now() + Duration::from_secs(4);
    let mut i = 0;
    while Instant::now() < until {
        tick.tick().await;
        let key = items[i % n].1.key.clone().unwrap();
        let t = Instant::now();
        c.query_proof(key).await.unwrap();
        lat.push(t.elapsed());
        i += 1;
    }
    let count = lat.len();
    println!(
        "QueryProof at ~500 rps ({count} calls): p50 {:?}, p99 {:?}",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    srv.stop().await;
}
