//! `tapvault tenant` and `tapvault token` against a real database.

use std::process::Command;

fn tapvault(args: &[&str], url: &str, dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TAPVAULT_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn tenants_and_tokens() {
    let t = tapvault_store::db::testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-cli-{}", t.name));
    let out = tapvault(&["tenant", "add", "alice"], &t.url, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tapvault(&["tenant", "add", "bad name!"], &t.url, &dir);
    assert!(!out.status.success());
    let out = tapvault(&["tenant", "list"], &t.url, &dir);
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));

    let out = tapvault(
        &[
            "token",
            "issue",
            "--tenant",
            "alice",
            "--scope",
            "push,read",
            "--ttl",
            "1h",
        ],
        &t.url,
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    assert!(dir.join("jwt-ed25519.pem").exists());
    let jti: String = sqlx::query_scalar("SELECT jti FROM tokens")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    let out = tapvault(&["token", "revoke", &jti], &t.url, &dir);
    assert!(out.status.success());
    let revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM tokens WHERE jti = $1")
            .bind(&jti)
            .fetch_one(&t.db.pool)
            .await
            .unwrap();
    assert!(revoked);
    let out = tapvault(&["token", "revoke", &jti], &t.url, &dir);
    assert!(!out.status.success(), "revoking twice is an error");

    let out = tapvault(&["token", "issue", "--tenant", "nobody"], &t.url, &dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tenant"));
    let out = tapvault(
        &["token", "issue", "--tenant", "alice", "--ttl", "9x"],
        &t.url,
        &dir,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ttl"));
    let out = tapvault(
        &["token", "issue", "--tenant", "alice", "--scope", "write"],
        &t.url,
        &dir,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope"));
    t.drop_db().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The same commands with `--server`: over the Admin API, with the
/// operator's admin token and the pinned certificate; no database access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_tokens_over_the_api() {
    let t = tapvault_store::db::testdb::create().await;
    tapvault_store::db::ensure_tenant(&t.db.pool, "ops")
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tapvault-cli-api-{}", t.name));
    let mut cfg = tapvault_server::ServeConfig::new(dir.clone());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(t.url.clone());
    cfg.operator_tenant = Some("ops".into());
    let running = tapvault_server::start(cfg).await.unwrap();
    let keys = tapvault_server::auth::Keys::ed25519_in(&dir).unwrap();
    let (ops_token, _) = tapvault_server::auth::issue(
        &running.db,
        &keys,
        "ops",
        &[tapvault_server::auth::Scope::Admin],
        3600,
    )
    .await
    .unwrap();
    let addr = format!("localhost:{}", running.grpc_addr.port());
    let remote = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tapvault"))
            .args(args)
            .args(["--server", &addr, "--server-cert"])
            .arg(dir.join("tls.cert"))
            .env("TAPVAULT_TOKEN", &ops_token)
            .env_remove("DATABASE_URL")
            .env("TAPVAULT_DATA_DIR", dir.join("not-the-server"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ok(&remote(&["tenant", "add", "bob"]));
    let listed = ok(&remote(&["tenant", "list"]));
    assert!(listed.contains("\tbob\t0 active tokens"), "{listed}");
    let token = ok(&remote(&[
        "token", "issue", "--tenant", "bob", "--scope", "read", "--ttl", "1h",
    ]));
    assert_eq!(token.trim().split('.').count(), 3, "a JWT");
    let jti: String = sqlx::query_scalar(
        "SELECT jti FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE n.name = 'bob'",
    )
    .fetch_one(&t.db.pool)
    .await
    .unwrap();
    let listed = ok(&remote(&["token", "list", "--tenant", "bob"]));
    assert!(
        listed.contains(&format!("{jti}\tbob\tread\texpires at")),
        "{listed}"
    );
    ok(&remote(&["token", "revoke", &jti]));
    assert_eq!(ok(&remote(&["token", "list", "--tenant", "bob"])), "");
    let out = remote(&["token", "revoke", &jti]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no active token") && err.contains("NotFound"),
        "{err}"
    );
    // bob's revoked token is refused, and says so.
    let out = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["tenant", "list", "--server", &addr, "--server-cert"])
        .arg(dir.join("tls.cert"))
        .args(["--token", token.trim()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("revoked"), "{err}");
    assert!(!dir.join("not-the-server").exists(), "no local keys made");
    running.shutdown().await;
    t.drop_db().await;
    let _ = std::fs::remove_dir_all(dir);
}
