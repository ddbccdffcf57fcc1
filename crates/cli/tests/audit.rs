//! `tapvault audit` against a real server: a clean log passes; an item the
//! server lost, and a history it rewrote, fail it with the item named.

use std::path::Path;
use std::process::Command;
use tapvault_server::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::{ServeConfig, VerifyLevel};
use tapvault_store::db::testdb;

fn audit(addr: &str, state: &Path) -> (i32, serde_json::Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args([
            "audit",
            "--server",
            addr,
            "--plaintext",
            "--json",
            "--state",
        ])
        .arg(state)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let rep = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), rep)
}

/// A plaintext server without tokens on the test database.
fn config(dir: &Path, url: &str) -> ServeConfig {
    let mut cfg = ServeConfig::new(dir.to_path_buf());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(url.to_string());
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    cfg
}

fn problems(rep: &serde_json::Value) -> Vec<String> {
    rep["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_passes_a_clean_log_and_names_what_was_lost_or_rewritten() {
    let tdb = testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-audit-{}", tdb.name));
    let start = || tapvault_server::start(config(&dir, &tdb.url));
    let srv = start().await.unwrap();
    let addr = srv.grpc_addr.to_string();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, None).unwrap();
    let mut pushed = Vec::new();
    for i in 0..4u8 {
        let blob = format!("opaque backup {i}").into_bytes();
        let r = b
            .push_wallet_backup(v1::PushWalletBackupRequest {
                backup: blob,
                opaque: true,
                source: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        pushed.push(tapvault_api::receipts::SavedReceipt::of(&r.receipts[0]));
    }
    let state = dir.join("audit-state.json");
    let receipts = dir.join("receipts.json");
    std::fs::write(&receipts, serde_json::to_vec(&pushed).unwrap()).unwrap();

    let (code, rep) = audit(&addr, &state);
    assert_eq!(code, 0, "{rep}");
    assert_eq!(rep["ok"], true);
    assert_eq!(rep["entries"], 4);
    assert_eq!(rep["items_served"], 4);
    assert!(state.exists(), "a passing audit saves the head");
    // Receipts handed out at push time are in the log.
    let o = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args([
            "audit",
            "--server",
            &addr,
            "--plaintext",
            "--json",
            "--receipts",
        ])
        .arg(&receipts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // The server loses a backup behind its own back: named.
    let pool = &srv.db.pool;
    sqlx::query("DELETE FROM wallet_backups WHERE raw = $1")
        .bind(b"opaque backup 2".to_vec())
        .execute(pool)
        .await
        .unwrap();
    let (code, rep) = audit(&addr, &state);
    assert_eq!(code, 3);
    let ps = problems(&rep);
    assert!(
        ps.iter()
            .any(|p| p.contains(&pushed[2].content_hash) && p.contains("not served")),
        "{ps:?}"
    );

    // The server rewrites its history: the last entries replaced and the
    // log grown past the saved head. The saved head catches it.
    sqlx::query("DELETE FROM log_entries WHERE seq >= 1")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM wallet_backups WHERE raw <> $1")
        .bind(b"opaque backup 0".to_vec())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tenant_usage SET log_size = 1")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM log_heads")
        .execute(pool)
        .await
        .unwrap();
    srv.shutdown().await;
    let srv = start().await.unwrap();
    let addr = srv.grpc_addr.to_string();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, None).unwrap();
    for i in 0..5u8 {
        b.push_wallet_backup(v1::PushWalletBackupRequest {
            backup: format!("another {i}").into_bytes(),
            opaque: true,
            source: String::new(),
        })
        .await
        .unwrap();
    }
    let (code, rep) = audit(&addr, &state);
    assert_eq!(code, 3);
    let ps = problems(&rep);
    assert!(ps.iter().any(|p| p.contains("not consistent")), "{ps:?}");
    // The saved head is kept as evidence, not overwritten.
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["head"]["tree_size"], 4);
    srv.shutdown().await;
    tdb.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// One entry's bytes changed behind the server's back: the server serves
/// what it stores (it answered INTERNAL for every page holding the entry,
/// so the audit could only fail with an error id), and the auditor names
/// the entry that no longer hashes to its leaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_names_a_log_entry_changed_behind_the_servers_back() {
    let tdb = testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-audit-alt-{}", tdb.name));
    let srv = tapvault_server::start(config(&dir, &tdb.url))
        .await
        .unwrap();
    let addr = srv.grpc_addr.to_string();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, None).unwrap();
    for i in 0..3u8 {
        b.push_wallet_backup(v1::PushWalletBackupRequest {
            backup: format!("opaque backup {i}").into_bytes(),
            opaque: true,
            source: String::new(),
        })
        .await
        .unwrap();
    }
    let state = dir.join("audit-state.json");
    let (code, rep) = audit(&addr, &state);
    assert_eq!(code, 0, "{rep}");

    sqlx::query("UPDATE log_entries SET arrived_at = arrived_at + interval '1 day' WHERE seq = 1")
        .execute(&srv.db.pool)
        .await
        .unwrap();
    let (code, rep) = audit(&addr, &state);
    assert_eq!(code, 3, "a finding, not an error: {rep}");
    let ps = problems(&rep);
    assert!(
        ps.iter()
            .any(|p| p.contains("log entry 1 ") && p.contains("changed after it was logged")),
        "{ps:?}"
    );
    assert!(
        !ps.iter()
            .any(|p| p.contains("log entry 0 ") || p.contains("log entry 2 ")),
        "{ps:?}"
    );
    assert!(!ps.iter().any(|p| p.contains("internal error")), "{ps:?}");
    srv.shutdown().await;
    tdb.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}
