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
