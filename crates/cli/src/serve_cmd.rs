//! `tapvault serve`: flags, environment and an optional TOML file.

use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use tapvault_server::{ServeConfig, VerifyLevel};

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of: data_dir, grpc_listen, http_listen,
    /// database_url, tls, tls_names, verify, auth, operator_tenant. Flags and env win over it.
    #[arg(long, env = "TAPVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where keys, the TLS certificate and (without a database URL) the
    /// private PostgreSQL cluster live. Default: ~/.tapvault
    #[arg(long, env = "TAPVAULT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address (default 0.0.0.0:10029, tapd's universe port).
    #[arg(long, env = "TAPVAULT_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// HTTP listen address for /healthz, /readyz, /metrics (default 127.0.0.1:10080).
    #[arg(long, env = "TAPVAULT_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// PostgreSQL URL. Without one, tapvault runs its own private cluster.
    /// Several hosts, libpq style (`postgres://u@primary:5432,standby:5432/tapvault`):
    /// tapvault writes to the one that is not in recovery and fails over to
    /// the next when it goes (deploy/REPLICATION.md).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Serve gRPC without TLS (only behind a TLS-terminating proxy or for tests).
    #[arg(long)]
    pub no_tls: bool,
    /// Extra host names / IPs for the generated certificate (repeatable).
    #[arg(long = "tls-name")]
    pub tls_names: Vec<String>,
    /// Offline verification of inserted proofs: full, full-vm, no-header, decode-only.
    #[arg(long, env = "TAPVAULT_VERIFY")]
    pub verify: Option<VerifyLevel>,
    /// Turn authentication off: every request acts as tenant `default`
    /// (local development only).
    #[arg(long)]
    pub no_auth: bool,
    /// Accept credential-less universe calls from a network as a tenant,
    /// e.g. `10.8.0.0/24=alice` (repeatable; for servers inside a VPN).
    #[arg(long = "trust-network", value_parser = parse_trusted)]
    pub trust_network: Vec<tapvault_server::auth::TrustedNetwork>,
    /// The tenant whose `admin` tokens manage every tenant and token over
    /// the Admin API (other tenants' admins manage only their own tokens).
    #[arg(long, env = "TAPVAULT_OPERATOR_TENANT")]
    pub operator_tenant: Option<String>,
    /// Start even if the database runs with fsync or synchronous_commit
    /// off (it could then lose proofs tapvault acknowledged). Tests only.
    #[arg(long)]
    pub allow_unsafe_durability: bool,
    /// Close a gRPC connection whose TLS handshake has not finished in
    /// this many seconds (default 10).
    #[arg(long)]
    pub handshake_timeout_secs: Option<u64>,
    /// Close a connection with no open request after this many seconds
    /// once one of its requests passed authentication (before that, after
    /// the handshake timeout). Default 300.
    #[arg(long)]
    pub idle_timeout_secs: Option<u64>,
    /// Longest time (seconds) between a tenant's receipt log growing and a
    /// signed tree head covering it; clients can also ask for a fresh head.
    #[arg(long, default_value_t = 1)]
    pub log_head_interval_secs: u64,
    /// Serve reads only, from a hot standby: every read RPC (universe
    /// queries and sync, proof files, wallet backups, addresses, tapscript
    /// trees, Status, the receipt log) works, writes get FAILED_PRECONDITION.
    /// `tapvault recover` works against it unchanged.
    #[arg(long)]
    pub read_only: bool,
    /// Most open gRPC connections (default 4096; always kept under the
    /// process's file descriptor limit).
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Bytes of large request messages (1 MiB and up) held at once over all
    /// calls; more wait (default 512 MiB).
    #[arg(long)]
    pub large_call_budget: Option<u64>,
}

fn parse_trusted(s: &str) -> Result<tapvault_server::auth::TrustedNetwork, String> {
    tapvault_server::auth::TrustedNetwork::parse(s)
}

#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    grpc_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    database_url: Option<String>,
    tls: Option<bool>,
    tls_names: Option<Vec<String>>,
    verify: Option<VerifyLevel>,
    auth: Option<bool>,
    operator_tenant: Option<String>,
}

pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".tapvault")
}

pub fn config(a: ServeArgs) -> Result<ServeConfig> {
    let file: FileConfig = match &a.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("parsing {}", p.display()))?,
        None => FileConfig::default(),
    };
    let data_dir = a
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(default_data_dir);
    let mut c = ServeConfig::new(data_dir);
    if let Some(v) = a.grpc_listen.or(file.grpc_listen) {
        c.grpc_listen = v;
    }
    if let Some(v) = a.http_listen.or(file.http_listen) {
        c.http_listen = v;
    }
    c.database_url = a.database_url.or(file.database_url);
    c.tls = !a.no_tls && file.tls.unwrap_or(true);
    c.tls_names = if a.tls_names.is_empty() {
        file.tls_names.unwrap_or_default()
    } else {
        a.tls_names
    };
    if let Some(v) = a.verify.or(file.verify) {
        c.verify = v;
    }
    c.auth = !a.no_auth && file.auth.unwrap_or(true);
    c.trusted_networks = a.trust_network;
    c.operator_tenant = a.operator_tenant.or(file.operator_tenant);
    c.allow_unsafe_durability = a.allow_unsafe_durability;
    c.log_head_interval = std::time::Duration::from_secs(a.log_head_interval_secs.max(1));
    c.read_only = a.read_only;
    if let Some(t) = a.handshake_timeout_secs {
        anyhow::ensure!(t > 0, "--handshake-timeout-secs must be positive");
        c.conn_limits.handshake_timeout = std::time::Duration::from_secs(t);
    }
    if let Some(t) = a.idle_timeout_secs {
        anyhow::ensure!(t > 0, "--idle-timeout-secs must be positive");
        c.conn_limits.idle_timeout = std::time::Duration::from_secs(t);
    }
    if let Some(m) = a.max_connections {
        anyhow::ensure!(m > 0, "--max-connections must be positive");
        c.conn_limits.max_connections = m;
    }
    if let Some(b) = a.large_call_budget {
        anyhow::ensure!(
            b >= tapvault_server::limits::LARGE_CALL,
            "--large-call-budget must be at least {} bytes",
            tapvault_server::limits::LARGE_CALL
        );
        c.large_call_budget = b;
    }
    Ok(c)
}

pub async fn run(a: ServeArgs) -> Result<()> {
    let cfg = config(a)?;
    let running = tapvault_server::start(cfg).await?;
    if let Some(pem) = &running.cert_pem {
        if let Ok(fp) = tapvault_api::tls::cert_fingerprint(pem) {
            tracing::info!("TLS certificate SHA-256 fingerprint (for pinning): {fp}");
        }
    }
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
