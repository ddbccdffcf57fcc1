//! Shared by the benches: the tests' fixtures (distinct proofs made from a
//! real regtest proof), pushing them with K clients, and the raw PostgreSQL
//! baseline every ratio is taken against.
#![allow(dead_code)]

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[allow(unused_imports)]
pub use fixtures::{forged, forged_chain, regtest, synthetic};

use std::sync::Arc;
use std::time::Instant;
use tapvault_server::proto::universerpc as pb;

pub type Items = Arc<Vec<(Vec<u8>, pb::AssetProof)>>;

/// Pushes `items` over InsertProof with `k` clients (plaintext), client `w`
/// with `tokens[w % len]` (none when `tokens` is empty); proofs/s.
pub async fn ingest(addr: &str, tokens: &[String], items: Items, k: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..k {
        let ch =
            tapvault_api::client::channel(addr, &tapvault_api::client::Trust::Plaintext).unwrap();
        let token = (!tokens.is_empty()).then(|| tokens[w % tokens.len()].as_str());
        let (_, mut u) = tapvault_api::client::clients(ch, token).unwrap();
        let items = items.clone();
        tasks.push(tokio::spawn(async move {
            for (_, req) in items.iter().skip(w).step_by(k) {
                u.insert_proof(req.clone()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    items.len() as f64 / start.elapsed().as_secs_f64()
}

/// Raw PostgreSQL: the same bytes, one row and one commit each, on `k`
/// connections; rows/s.
pub async fn raw_insert_rate(pool: &sqlx::PgPool, items: Items, k: usize) -> f64 {
    sqlx::query("CREATE TABLE raw_bench (id BIGSERIAL PRIMARY KEY, hash BYTEA UNIQUE, raw BYTEA)")
        .execute(pool)
        .await
        .unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..k {
        let (items, pool) = (items.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            for (raw, _) in items.iter().skip(w).step_by(k) {
                let h = tapvault_codec::primitives::sha256(&[raw]);
                sqlx::query("INSERT INTO raw_bench (hash, raw) VALUES ($1, $2)")
                    .bind(&h[..])
                    .bind(raw)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    items.len() as f64 / start.elapsed().as_secs_f64()
}

/// A bench's server on a fresh database: loopback ports, plaintext,
/// `decode-only` (for the synthetic proofs, which are not valid
/// commitments; benches of forged proofs set `full`), tokens on; `f`
/// adjusts the rest.
pub struct Server {
    pub tdb: tapvault_store::db::testdb::TestDb,
    pub dir: std::path::PathBuf,
    pub running: tapvault_server::Running,
}

pub async fn server(
    name: &str,
    tenants: &[&str],
    f: impl FnOnce(&mut tapvault_server::ServeConfig),
) -> Server {
    let tdb = tapvault_store::db::testdb::create().await;
    for t in tenants {
        tapvault_store::db::ensure_tenant(&tdb.db.pool, t)
            .await
            .unwrap();
    }
    let dir = std::env::temp_dir().join(format!("tapvault-bench-{name}-{}", tdb.name));
    let mut cfg = tapvault_server::ServeConfig::new(dir.clone());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(tdb.url.clone());
    cfg.tls = false;
    cfg.verify = tapvault_server::VerifyLevel::DecodeOnly;
    f(&mut cfg);
    let running = tapvault_server::start(cfg).await.unwrap();
    Server { tdb, dir, running }
}

impl Server {
    pub fn addr(&self) -> String {
        self.running.grpc_addr.to_string()
    }

    /// A push,read token of `tenant`, valid for an hour.
    pub async fn token(&self, tenant: &str) -> String {
        let keys = tapvault_server::auth::Keys::ed25519_in(&self.dir).unwrap();
        let scopes = tapvault_server::auth::Scope::parse_list("push,read").unwrap();
        tapvault_server::auth::issue(&self.running.db, &keys, tenant, &scopes, 3600)
            .await
            .unwrap()
            .0
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
        self.tdb.drop_db().await;
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

/// The `tapvault` binary built in the bench's own profile, if it is.
pub fn tapvault_bin() -> Option<std::path::PathBuf> {
    std::env::current_exe()
        .ok()?
        .parent()?
        .parent()
        .map(|p| p.join("tapvault"))
        .filter(|p| p.exists())
}
