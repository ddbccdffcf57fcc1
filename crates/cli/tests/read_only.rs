//! Recovery from the standby: `serve --read-only` on a hot standby serves
//! every read, refuses writes, and `tapvault recover` works against it
//! unchanged, with the primary's PostgreSQL dead.

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;
#[path = "../../server/tests/common/mod.rs"]
mod common;
#[path = "../../server/tests/common/replica.rs"]
mod replica;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};
use tapvault_codec::backup::VERSION_RAW;
use tapvault_server::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::{ServeConfig, VerifyLevel};
use tonic::Code;

fn config(dir: &std::path::Path, url: String, read_only: bool) -> ServeConfig {
    let mut cfg = ServeConfig::new(dir.to_path_buf());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(url);
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::NoHeader;
    cfg.read_only = read_only;
    cfg
}

/// `tapvault recover` against a plaintext server, into `out`.
fn recover_from(addr: &str, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args([
            "recover",
            "--server",
            addr,
            "--plaintext",
            "--quiet",
            "--no-header",
            "--out",
        ])
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_server_on_the_standby_serves_recovery_while_the_primary_is_down() {
    let pair = replica::Pair::new("sync");
    let primary = tapvault_server::start(config(
        &pair.base.join("a"),
        pair.url_of(pair.primary),
        false,
    ))
    .await
    .unwrap();
    let ch = client::channel(&primary.grpc_addr.to_string(), &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch.clone(), None).unwrap();
    let chain = file_chain();
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: blobs::tapbak_from_chain(&chain, VERSION_RAW).encode(),
        opaque: false,
        source: "node".into(),
    })
    .await
    .unwrap();
    // A signed head, replicated with everything else.
    let mut log = client::log_client(ch, None).unwrap();
    let head = log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
        .unwrap()
        .into_inner();
    primary.shutdown().await;

    // The primary's database dies; the standby is not promoted.
    pair.kill_primary();
    let ro = tapvault_server::start(config(
        &pair.base.join("b"),
        pair.url_of(pair.standby),
        true,
    ))
    .await
    .unwrap();
    let addr = ro.grpc_addr.to_string();
    let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
    let (mut b, mut u) = client::clients(ch.clone(), None).unwrap();
    let st = b
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((st.num_wallet_backups, st.num_proofs), (1, 3));
    let leaves = b
        .list_leaves(v1::ListLeavesRequest {
            selector: Some(v1::list_leaves_request::Selector::All(true)),
            include_proofs: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .leaves;
    assert_eq!(leaves.len(), 3);
    u.multiverse_root(tapvault_server::proto::universerpc::MultiverseRootRequest {
        proof_type: tapvault_server::proto::universerpc::ProofType::Issuance as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut log = client::log_client(ch, None).unwrap();
    let h = log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h, head,
        "the replica serves the primary's head, signs nothing"
    );

    // Writes are refused, with what to do.
    let e = b
        .push_wallet_backup(v1::PushWalletBackupRequest {
            backup: b"x".to_vec(),
            opaque: true,
            source: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("read-only replica"), "{e:?}");
    let e = u
        .insert_proof(courier_request(&chain[0]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let ready = reqwest_ready(ro.http_addr).await;
    assert!(ready.contains("read-only"), "{ready}");

    // Recovery works against it unchanged.
    let out = pair.base.join("recovery");
    let t0 = Instant::now();
    let o = recover_from(&addr, &out);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["log_items_verified"].as_u64().unwrap() >= 4,
        "{report}"
    );
    ro.shutdown().await;
}

/// GET /readyz, without an HTTP client crate.
async fn reqwest_ready(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A clean shutdown signs a final head covering everything acknowledged;
/// and when no head was ever signed (the primary died first), recovery from
/// a read-only server still hands everything back, listing what no head
/// signs yet, rather than refusing to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_runs_without_a_signed_head_and_a_clean_stop_signs_one() {
    let tdb = tapvault_store::db::testdb::create().await;
    let base = std::env::temp_dir().join(format!("tapvault-nohead-{}", tdb.name));
    let mut cfg = config(&base.join("a"), tdb.url.clone(), false);
    // No periodic head: only the one shutdown signs.
    cfg.log_head_interval = Duration::from_secs(3600);
    let primary = tapvault_server::start(cfg).await.unwrap();
    let ch = client::channel(&primary.grpc_addr.to_string(), &Trust::Plaintext).unwrap();
    let (mut b, _) = client::clients(ch, None).unwrap();
    let chain = file_chain();
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: blobs::tapbak_from_chain(&chain, VERSION_RAW).encode(),
        opaque: false,
        source: "node".into(),
    })
    .await
    .unwrap();
    let pool = &tdb.db.pool;
    let size = || async {
        let s: (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT max(log_size) FROM tenant_usage), (SELECT max(tree_size) FROM log_heads)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        s
    };
    let (logged, signed) = size().await;
    assert!(logged >= 4, "{logged}");
    assert!(signed.unwrap_or(0) < logged, "nothing signed it yet");
    primary.shutdown().await;
    let (_, signed) = size().await;
    assert_eq!(
        signed,
        Some(logged),
        "the final head covers everything acknowledged"
    );

    // As if the primary had died before signing anything.
    sqlx::query("DELETE FROM log_heads")
        .execute(pool)
        .await
        .unwrap();
    let ro = tapvault_server::start(config(&base.join("b"), tdb.url.clone(), true))
        .await
        .unwrap();
    let out = base.join("recovery");
    let o = recover_from(&ro.grpc_addr.to_string(), &out);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("newer than the newest signed tree head"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(report["log_head"].is_null(), "{report}");
    assert!(
        report["log_unsigned"].as_array().unwrap().len() >= 4,
        "{report}"
    );
    assert!(out.join("wallet.tapbak").exists());
    ro.shutdown().await;
    tdb.drop_db().await;
    let _ = std::fs::remove_dir_all(&base);
}
