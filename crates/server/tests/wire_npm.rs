//! tapd's own npm client (protos + grpc-js) against a running server, over
//! TLS with the generated certificate. Installs the client with npm on first
//! run (`tests/wire`).

mod common;
use common::*;
use tapvault_server::VerifyLevel;

#[path = "../../../tests/wire/npm_runner.rs"]
mod npm_runner;
use npm_runner::run_node as run_node_at;

async fn run_node(s: &TestServer, mode: &str, token: Option<&str>) -> (bool, String) {
    let addr = format!("127.0.0.1:{}", s.running().grpc_addr.port());
    run_node_at(&addr, &s.dir.join("tls.cert"), &vectors(), mode, token).await
}

#[tokio::test]
async fn tapd_npm_client_needs_a_token_and_sees_only_its_tenant() {
    let s = TestServer::start_auth_tls(vec![], &["alice", "bob"], true).await;
    let (ok, out) = run_node(&s, "refused", None).await;
    assert!(ok, "without a token the client must be refused:\n{out}");
    let alice = s.token("alice", "push,read", 600).await;
    let (ok, out) = run_node(&s, "full", Some(&alice)).await;
    assert!(ok, "with a token the client works:\n{out}");
    let bob = s.token("bob", "read", 600).await;
    let (ok, out) = run_node(&s, "empty", Some(&bob)).await;
    assert!(ok, "another tenant sees nothing:\n{out}");
    s.stop().await;
}

#[tokio::test]
async fn tapd_npm_client_against_tapvault() {
    let s = TestServer::start(VerifyLevel::Full, true).await;
    let (ok, out) = run_node(&s, "full", None).await;
    assert!(ok, "wire test failed:\n{out}");
    assert!(out.contains("\"ok\":true"), "{out}");
    s.stop().await;
}
