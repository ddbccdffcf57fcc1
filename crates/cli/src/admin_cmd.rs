//! `tapvault token …` and `tapvault tenant …`: on the server machine,
//! against the same data dir (signing keys) and database as `serve`; or,
//! with `--server`, from anywhere over the Admin API with an `admin` token.

use crate::remote::{status_msg, RemoteArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tapvault_api::proto::tapvault_v1 as v1;
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
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Revoke a token by its id (jti); effective on the next request.
    Revoke {
        jti: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List tokens (id, tenant, scopes, expiry; never the tokens themselves).
    List {
        /// Only this tenant's (over the API: default the caller's).
        #[arg(long)]
        tenant: Option<String>,
        /// Include revoked and expired tokens.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Add a tenant (idempotent).
    Add {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Show a tenant's usage and quota; with --max-bytes/--max-items, set
    /// the quota (0: no limit). Writes over it are refused with
    /// RESOURCE_EXHAUSTED; nothing stored is removed.
    Quota {
        name: String,
        /// Bytes of stored payload: 500M, 10G, or a plain number.
        #[arg(long)]
        max_bytes: Option<String>,
        /// Stored items (proofs, backups, addresses, tapscript trees).
        #[arg(long)]
        max_items: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// `500M`, `10G`, `1T`, `4096`.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .with_context(|| format!("bad size {s:?} (e.g. 500M, 10G)"))?;
    let mul: i64 = match unit {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        u => bail!("bad size unit {u:?} in {s:?} (K, M, G, T)"),
    };
    n.checked_mul(mul)
        .with_context(|| format!("size {s:?} is too large"))
}

fn print_quota(q: &v1::QuotaInfo) {
    let lim = |v: i64| {
        if v == 0 {
            "no limit".to_string()
        } else {
            v.to_string()
        }
    };
    println!(
        "{}\t{} bytes (quota: {})\t{} items (quota: {})",
        q.tenant,
        q.bytes,
        lim(q.max_bytes),
        q.items,
        lim(q.max_items)
    );
}

fn admin(remote: &RemoteArgs) -> Result<tapvault_api::client::AdminClient> {
    let ch = tapvault_api::client::channel(remote.server()?, &remote.trust()?)?;
    tapvault_api::client::admin_client(ch, remote.token()?.as_deref())
}

fn print_token_row(t: &v1::TokenInfo) {
    let state = if t.revoked_at != 0 {
        format!("revoked at {}", t.revoked_at)
    } else {
        format!("expires at {}", t.expires_at)
    };
    println!("{}\t{}\t{}\t{state}", t.jti, t.tenant, t.scopes.join(","));
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
            remote,
        } => {
            let scopes = Scope::parse_list(&scope).map_err(anyhow::Error::msg)?;
            let ttl = parse_ttl(&ttl)?;
            if remote.server.is_some() {
                let r = admin(&remote)?
                    .issue_token(v1::IssueTokenRequest {
                        tenant,
                        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
                        ttl_seconds: ttl,
                    })
                    .await
                    .map_err(|s| status_msg("issuing the token", s))?
                    .into_inner();
                eprintln!(
                    "jti {} for tenant {} (scope: {}), expires at unix {}",
                    r.jti,
                    r.tenant,
                    r.scopes.join(" "),
                    r.expires_at
                );
                println!("{}", r.token);
                return Ok(());
            }
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
        TokenCmd::Revoke { jti, store, remote } => {
            if remote.server.is_some() {
                admin(&remote)?
                    .revoke_token(v1::RevokeTokenRequest { jti: jti.clone() })
                    .await
                    .map_err(|s| status_msg("revoking the token", s))?;
                println!("revoked {jti}");
                return Ok(());
            }
            with_db(&store, async |db, _| {
                if !auth::revoke(db, &jti, None).await? {
                    bail!("no active token with jti {jti}");
                }
                println!("revoked {jti}");
                Ok(())
            })
            .await
        }
        TokenCmd::List {
            tenant,
            all,
            store,
            remote,
        } => {
            if remote.server.is_some() {
                let r = admin(&remote)?
                    .list_tokens(v1::ListTokensRequest {
                        tenant: tenant.unwrap_or_default(),
                        include_inactive: all,
                    })
                    .await
                    .map_err(|s| status_msg("listing tokens", s))?
                    .into_inner();
                r.tokens.iter().for_each(print_token_row);
                return Ok(());
            }
            with_db(&store, async |db, _| {
                let tid = match &tenant {
                    Some(t) => Some(
                        auth::tenant_id(db, t)
                            .await?
                            .with_context(|| format!("unknown tenant {t:?}"))?,
                    ),
                    None => None,
                };
                for t in auth::list_tokens(db, tid, all).await? {
                    print_token_row(&tapvault_server::admin_svc::token_pb(t));
                }
                Ok(())
            })
            .await
        }
    }
}

pub async fn tenant(cmd: TenantCmd) -> Result<()> {
    match cmd {
        TenantCmd::Add {
            name,
            store,
            remote,
        } => {
            auth::check_tenant_name(&name).map_err(anyhow::Error::msg)?;
            if remote.server.is_some() {
                let r = admin(&remote)?
                    .add_tenant(v1::AddTenantRequest { name })
                    .await
                    .map_err(|s| status_msg("adding the tenant", s))?
                    .into_inner();
                println!("tenant {} (id {})", r.name, r.id);
                return Ok(());
            }
            with_db(&store, async |db, _| {
                let (id, _) = auth::add_tenant(db, &name).await?;
                println!("tenant {name} (id {id})");
                Ok(())
            })
            .await
        }
        TenantCmd::List { store, remote } => {
            let rows: Vec<(i64, String, i64)> = if remote.server.is_some() {
                admin(&remote)?
                    .list_tenants(v1::ListTenantsRequest {})
                    .await
                    .map_err(|s| status_msg("listing tenants", s))?
                    .into_inner()
                    .tenants
                    .into_iter()
                    .map(|t| (t.id, t.name, t.active_tokens as i64))
                    .collect()
            } else {
                with_db(&store, async |db, _| auth::list_tenants(db).await)
                    .await?
                    .into_iter()
                    .map(|t| (t.id.0, t.name, t.active_tokens))
                    .collect()
            };
            for (id, name, n) in rows {
                println!("{id}\t{name}\t{n} active tokens");
            }
            Ok(())
        }
        TenantCmd::Quota {
            name,
            max_bytes,
            max_items,
            store,
            remote,
        } => {
            let max_bytes = max_bytes.as_deref().map(parse_bytes).transpose()?;
            if max_bytes.is_some_and(|v| v < 0) || max_items.is_some_and(|v| v < 0) {
                bail!("quotas must be >= 0 (0: no limit)");
            }
            let set = max_bytes.is_some() || max_items.is_some();
            let q = if remote.server.is_some() {
                let mut c = admin(&remote)?;
                if set {
                    let cur = c
                        .get_quota(v1::GetQuotaRequest {
                            tenant: name.clone(),
                        })
                        .await
                        .map_err(|s| status_msg("reading the quota", s))?
                        .into_inner();
                    c.set_quota(v1::SetQuotaRequest {
                        tenant: name,
                        max_bytes: max_bytes.unwrap_or(cur.max_bytes),
                        max_items: max_items.unwrap_or(cur.max_items),
                    })
                    .await
                    .map_err(|s| status_msg("setting the quota", s))?
                    .into_inner()
                } else {
                    c.get_quota(v1::GetQuotaRequest { tenant: name })
                        .await
                        .map_err(|s| status_msg("reading the quota", s))?
                        .into_inner()
                }
            } else {
                with_db(&store, async |db, _| {
                    let tid = auth::tenant_id(db, &name)
                        .await?
                        .with_context(|| format!("unknown tenant {name:?}"))?;
                    let mut u = tapvault_store::quota::usage(db, tid).await?;
                    if set {
                        let keep = |new: Option<i64>, old: Option<i64>| match new {
                            Some(0) => None,
                            Some(v) => Some(v),
                            None => old,
                        };
                        u = tapvault_store::quota::set_quota(
                            db,
                            tid,
                            keep(max_bytes, u.max_bytes),
                            keep(max_items, u.max_items),
                        )
                        .await?;
                    }
                    Ok(tapvault_server::admin_svc::quota_pb(name.clone(), u))
                })
                .await?
            };
            print_quota(&q);
            Ok(())
        }
    }
}
