//! `tapvault token …` and `tapvault tenant …`: run on the server machine,
//! against the same data dir (signing keys) and database as `serve`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tapvault_server::auth::{self, Keys, Scope};
use tapvault_server::ServeConfig;

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The server's data dir (default ~/.tapvault).
    #[arg(long, env = "TAPVAULT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's database (default: its private cluster).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue a token and print it.
    Issue {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: push, read, admin.
        #[arg(long, default_value = "push,read")]
        scope: String,
        /// Lifetime: 90d, 12h, 30m, 45s.
        #[arg(long, default_value = "90d")]
        ttl: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id (jti); effective on the next request.
    Revoke {
        jti: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Add a tenant (idempotent).
    Add {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn parse_ttl(s: &str) -> Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("bad ttl {s:?} (e.g. 90d, 12h, 30m)"))?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        u => bail!("bad ttl unit {u:?} in {s:?} (s, m, h, d)"),
    };
    if n == 0 {
        bail!("ttl must be positive");
    }
    Ok(n * mul)
}

fn cfg(s: &StoreArgs) -> ServeConfig {
    let mut c = ServeConfig::new(
        s.data_dir
            .clone()
            .unwrap_or_else(crate::serve_cmd::default_data_dir),
    );
    c.database_url = s.database_url.clone();
    c.max_db_connections = 2;
    c
}

pub async fn with_db<T>(
    s: &StoreArgs,
    f: impl AsyncFnOnce(&tapvault_store::Db, &ServeConfig) -> Result<T>,
) -> Result<T> {
    let c = cfg(s);
    let (db, cluster) = tapvault_server::open_db(&c).await?;
    let r = f(&db, &c).await;
    db.pool.close().await;
    if let Some(cl) = cluster {
        cl.stop();
    }
    r
}

pub async fn token(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Issue {
            tenant,
            scope,
            ttl,
            store,
        } => {
            let scopes = Scope::parse_list(&scope).map_err(anyhow::Error::msg)?;
            let ttl = parse_ttl(&ttl)?;
            with_db(&store, async |db, c| {
                let keys = Keys::ed25519_in(&c.data_dir)?;
                let (token, claims) = auth::issue(db, &keys, &tenant, &scopes, ttl).await?;
                eprintln!(
                    "jti {} for tenant {} (scope: {}), expires at unix {}",
                    claims.jti, claims.sub, claims.scope, claims.exp
                );
                println!("{token}");
                Ok(())
            })
            .await
        }
        TokenCmd::Revoke { jti, store } => {
            with_db(&store, async |db, _| {
                if !auth::revoke(db, &jti).await? {
                    bail!("no active token with jti {jti}");
                }
                println!("revoked {jti}");
                Ok(())
            })
            .await
        }
    }
}

pub async fn tenant(cmd: TenantCmd) -> Result<()> {
    match cmd {
        TenantCmd::Add { name, store } => {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                bail!("tenant names are 1-64 characters of [A-Za-z0-9-_.]");
            }
            with_db(&store, async |db, _| {
                let id = tapvault_store::db::ensure_tenant(&db.pool, &name).await?;
                println!("tenant {name} (id {id})");
                Ok(())
            })
            .await
        }
        TenantCmd::List { store } => {
            with_db(&store, async |db, _| {
                let rows: Vec<(i64, String)> =
                    sqlx::query_as("SELECT id, name FROM tenants ORDER BY id")
                        .fetch_all(&db.pool)
                        .await?;
                for (id, name) in rows {
                    println!("{id}\t{name}");
                }
                Ok(())
            })
            .await
        }
    }
}
