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
