//! tapd's own npm client (protos + grpc-js) against a running server, over
//! TLS with the generated certificate. Installs the client with npm on first
//! run (`tests/wire`).

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;
use tapvault_server::VerifyLevel;

pub fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/wire")
}

pub fn ensure_npm_deps() {
    // Tests of this binary run in parallel: one `npm ci` at a time.
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = wire_dir();
        if dir.join("node_modules/@lightningpolar/tapd-api").is_dir() {
            return;
        }
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the wire tests");
        assert!(st.success(), "npm ci in tests/wire failed");
    });
}

async fn run_node(s: &TestServer, mode: &str, token: Option<&str>) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("universe_wire.js")
        .current_dir(wire_dir())
        .env(
            "TAPVAULT_ADDR",
            format!("127.0.0.1:{}", s.running().grpc_addr.port()),
        )
        .env("TAPVAULT_CERT", s.dir.join("tls.cert"))
        .env("TAPVAULT_VECTORS", vectors())
        .env("TAPVAULT_MODE", mode);
    if let Some(t) = token {
        cmd.env("TAPVAULT_TOKEN", t);
    }
    let out = cmd
        .output()
        .await
        .expect("node is needed for the wire tests");
    (
        out.status.success(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn tapd_npm_client_needs_a_token_and_sees_only_its_tenant() {
    ensure_npm_deps();
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
    ensure_npm_deps();
    let s = TestServer::start(VerifyLevel::Full, true).await;
    let cert = s.dir.join("tls.cert");
    let addr = format!("127.0.0.1:{}", s.running().grpc_addr.port());
    let out = tokio::process::Command::new("node")
        .arg("universe_wire.js")
        .current_dir(wire_dir())
        .env("TAPVAULT_ADDR", &addr)
        .env("TAPVAULT_CERT", &cert)
        .env("TAPVAULT_VECTORS", vectors())
        .output()
        .await
        .expect("node is needed for the wire tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "wire test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    s.stop().await;
}
