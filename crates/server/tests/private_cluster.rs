//! `tapvault serve` without a database URL runs its own PostgreSQL cluster
//! (the README's run command): created, used, stopped, and reused.

mod common;
use common::*;
use tapvault_server::proto::universerpc::universe_client::UniverseClient;
use tapvault_server::{ServeConfig, VerifyLevel};

#[tokio::test]
async fn serve_runs_and_reuses_a_private_cluster() {
    let dir = std::env::temp_dir().join(format!("tapvault-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mk = || {
        let mut cfg = ServeConfig::new(dir.clone());
        cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
        cfg.http_listen = "127.0.0.1:0".parse().unwrap();
        cfg.tls = false;
        cfg.verify = VerifyLevel::Full;
        cfg.auth = false;
        cfg
    };
    let running = tapvault_server::start(mk())
        .await
        .expect("serve with a private cluster");
    let cluster = running
        .private_cluster_dir()
        .expect("owns a cluster")
        .to_path_buf();
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = UniverseClient::new(ch);
    let g = find("valid regtest genesis proof with meta reveal");
    c.insert_proof(courier_request(&g)).await.unwrap();
    drop(c);
    running.shutdown().await;
    // Restart: same cluster, data still there.
    let running = tapvault_server::start(mk()).await.expect("restart");
    assert_eq!(running.private_cluster_dir().unwrap(), cluster);
    let ch = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let q = UniverseClient::new(ch)
        .query_proof(query_key(&courier_request(&g)))
        .await
        .unwrap();
    assert_eq!(q.into_inner().asset_leaf.unwrap().proof, g);
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(cluster.parent().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
