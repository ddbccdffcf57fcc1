//! Ingest with a synchronous standby against the same pair without one, in
//! one run: `cargo run --release -p tapvault-server --example bench_replica [N] [K]`
//!
//! Builds a primary and a streaming standby with `deploy/replica/*.sh` (two
//! clusters from the installed `initdb`, loopback), pushes N distinct proofs
//! with K clients while every commit waits for the standby, then again with
//! `synchronous_standby_names = ''` (the standby still streaming).

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/replica.rs"]
mod replica;

use std::sync::Arc;
use tapvault_server::{ServeConfig, VerifyLevel};

async fn ingest(addr: &str, n: usize, k: usize, tag: &str) -> f64 {
    common::ingest(addr, &[], Arc::new(common::synthetic(n, tag)), k).await
}

#[tokio::main]
async fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (n, k) = (arg(1, 2000), arg(2, 16));
    let pair = replica::Pair::new("sync");
    let mut cfg = ServeConfig::new(pair.base.join("tapvault"));
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(pair.url_of(pair.primary));
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    cfg.max_db_connections = (k as u32 + 4).max(8);
    let server = tapvault_server::start(cfg).await.unwrap();
    let addr = server.grpc_addr.to_string();
    let sync1 = ingest(&addr, n, k, "sync-1").await;
    for q in [
        "ALTER SYSTEM SET synchronous_standby_names = ''",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(q).execute(&server.db.pool).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let none = ingest(&addr, n, k, "async").await;
    for q in [
        "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (tapvault_standby)'",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(q).execute(&server.db.pool).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sync2 = ingest(&addr, n, k, "sync-2").await;
    let sync = (sync1 + sync2) / 2.0;
    println!(
        "| scenario ({n} proofs, {k} clients, decode-only, loopback standby) | rate | ratio |"
    );
    println!("|---|---|---|");
    println!("| InsertProof, commits not waiting for the standby | {none:.0} proofs/s | 1.00 |");
    println!(
        "| InsertProof, synchronous standby (remote_apply; mean of {sync1:.0} and {sync2:.0}) | {sync:.0} proofs/s | {:.2} |",
        sync / none
    );
    server.shutdown().await;
}
