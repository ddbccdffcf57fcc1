//! Runs `universe_wire.js` (tapd's npm client) against an address; shared by
//! the server's and the agent's wire tests (included with `#[path]`).

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/wire")
}

/// `npm ci` once per test binary (its tests run in parallel).
pub fn ensure_npm_deps() {
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

/// Runs the client in `mode` ("full", "refused", "empty"); (success, output).
pub async fn run_node(
    addr: &str,
    cert: &Path,
    vectors: &Path,
    mode: &str,
    token: Option<&str>,
) -> (bool, String) {
    ensure_npm_deps();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("universe_wire.js")
        .current_dir(wire_dir())
        .env("TAPVAULT_ADDR", addr)
        .env("TAPVAULT_CERT", cert)
        .env("TAPVAULT_VECTORS", vectors)
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
