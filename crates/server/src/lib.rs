// tonic::Status is the error type of every gRPC handler; boxing it buys nothing.
#![allow(clippy::result_large_err)]

//! tapvault's server: the tapd-compatible `universerpc.Universe` service
//! over gRPC (TLS by default), plus an HTTP port with health and metrics.

pub mod admin_svc;
pub mod auth;
pub mod backup_svc;
pub mod checks;
pub mod errors;
pub mod ingestor;
pub mod limits;
pub mod log_svc;
pub mod metrics;
pub mod wire;
/// The private PostgreSQL cluster (lives in the store crate).
pub use tapvault_store::cluster as pgembed;
pub mod universe_svc;

pub use tapvault_api::{client, compat, listener, proto, tls, MAX_MESSAGE_BYTES};

pub use metrics::Metrics;
pub use tapvault_verify::VerifyLevel;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tapvault_store::Db;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The tenant a request acts for (set by the auth layer).
pub use tapvault_store::TenantId as Tenant;

/// How long shutdown waits for in-flight calls.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// `None`: run a private PostgreSQL cluster in the data dir.
    pub database_url: Option<String>,
    pub tls: bool,
    /// Extra DNS names / IPs for the generated certificate.
    pub tls_names: Vec<String>,
    pub verify: VerifyLevel,
    /// Require JWTs (default). Off: every request acts as `default_tenant`.
    pub auth: bool,
    /// Tenant that requests act for when auth is off.
    pub default_tenant: Option<String>,
    /// HS256 secret instead of the generated Ed25519 keys.
    pub jwt_hs256_secret: Option<Vec<u8>>,
    /// Credential-less universe calls from these ranges act as a tenant.
    pub trusted_networks: Vec<auth::TrustedNetwork>,
    /// The tenant whose admin tokens manage every tenant over the API.
    pub operator_tenant: Option<String>,
    pub max_db_connections: u32,
    /// Accept-loop limits of the gRPC port.
    pub conn_limits: listener::ConnLimits,
    /// Bytes of large request messages (over [`limits::LARGE_CALL`]) held
    /// in memory at once, over all calls; more wait (HTTP/2 flow control
    /// holds the senders back).
    pub large_call_budget: u64,
    /// How long a large call waits for room in the budget before it is
    /// refused with RESOURCE_EXHAUSTED.
    pub large_call_wait: std::time::Duration,
    /// Start even when the database may lose committed transactions
    /// (`fsync` or `synchronous_commit` off).
    pub allow_unsafe_durability: bool,
    /// Longest time between a log growing and a signed head covering it.
    pub log_head_interval: std::time::Duration,
    /// Serve reads only, from a hot standby (writes: FAILED_PRECONDITION).
    pub read_only: bool,
}

impl ServeConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        ServeConfig {
            data_dir,
            grpc_listen: "0.0.0.0:10029".parse().expect("static addr"),
            http_listen: "127.0.0.1:10080".parse().expect("static addr"),
            database_url: None,
            tls: true,
            tls_names: Vec::new(),
            verify: VerifyLevel::Full,
            auth: true,
            default_tenant: Some("default".into()),
            jwt_hs256_secret: None,
            trusted_networks: Vec::new(),
            operator_tenant: None,
            max_db_connections: 16,
            conn_limits: listener::ConnLimits::default(),
            large_call_budget: limits::DEFAULT_LARGE_CALL_BUDGET,
            large_call_wait: limits::BUDGET_WAIT,
            allow_unsafe_durability: false,
            log_head_interval: std::time::Duration::from_secs(1),
            read_only: false,
        }
    }
}

/// A running server.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub db: Db,
    pub cert_pem: Option<Vec<u8>>,
    /// The receipt log's Ed25519 public key.
    pub log_key: [u8; 32],
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cluster: Option<pgembed::PrivateCluster>,
    /// The receipt log's signer (none on a read-only server).
    log: Option<Arc<log_svc::LogState>>,
}

impl Running {
    /// Data directory of the private PostgreSQL cluster, if serve owns one.
    pub fn private_cluster_dir(&self) -> Option<&std::path::Path> {
        self.cluster.as_ref().map(|c| c.data.as_path())
    }

    /// Stops accepting, lets in-flight calls finish (their transactions
    /// commit or roll back), then stops the private cluster if any.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        // In-flight calls get a grace period; a client that keeps an idle
        // connection open must not hold the process up forever. Aborting a
        // call mid-transaction rolls the transaction back.
        for mut t in self.tasks.drain(..) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut t).await.is_err() {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; closing them");
                t.abort();
            }
        }
        // Every call is answered: a final head signs everything acknowledged,
        // so a standby taking over holds a head covering all of it.
        if let Some(log) = self.log.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, log.sign_pending()).await {
                Ok(Ok(n)) => tracing::info!("receipt log: {n} final heads signed"),
                Ok(Err(e)) => tracing::warn!("receipt log: signing the final heads: {e}"),
                Err(_) => {
                    tracing::warn!("receipt log: the final heads took over {SHUTDOWN_GRACE:?}")
                }
            }
        }
        self.db.pool.close().await;
        if let Some(c) = self.cluster.take() {
            c.stop();
        }
    }
}

/// Opens (and migrates) the configured database, starting the private
/// cluster if no URL is given. A cluster started here is stopped again
/// when opening fails.
pub async fn open_db(cfg: &ServeConfig) -> Result<(Db, Option<pgembed::PrivateCluster>)> {
    let (url, cluster) = match &cfg.database_url {
        Some(u) => (u.clone(), None),
        None => {
            let c = pgembed::PrivateCluster::prepare(&cfg.data_dir)?;
            let started = c.start()?;
            // Only a cluster we started is ours to stop.
            match create_private_db(&c).await {
                Ok(url) => (url, started.then_some(c)),
                Err(e) => {
                    if started {
                        c.stop();
                    }
                    return Err(e);
                }
            }
        }
    };
    match connect_checked(cfg, &url).await {
        Ok(db) => Ok((db, cluster)),
        Err(e) => {
            if let Some(c) = cluster {
                c.stop();
            }
            Err(e)
        }
    }
}

async fn create_private_db(c: &pgembed::PrivateCluster) -> Result<String> {
    let admin = tapvault_store::connect(&c.url("postgres"), 1).await?;
    tapvault_store::db::create_database_if_missing(&admin.pool, "tapvault").await?;
    admin.pool.close().await;
    tracing::info!(
        "using the private PostgreSQL cluster in {}",
        c.data.display()
    );
    Ok(c.url("tapvault"))
}

async fn connect_checked(cfg: &ServeConfig, url: &str) -> Result<Db> {
    // Several hosts (libpq style) are tried in order: the first that takes
    // writes is used, and the failover task moves to the next when it fails.
    let urls = tapvault_store::db::expand_hosts(url);
    let db = tapvault_store::db::connect_many(&urls, cfg.max_db_connections, cfg.read_only)
        .await
        .with_context(|| "connecting to PostgreSQL")?;
    tracing::info!(
        "database: {}{}",
        db.targets.current(),
        if urls.len() > 1 {
            format!(" (of {})", db.targets.all().join(", "))
        } else {
            String::new()
        }
    );
    let unsafe_settings = tapvault_store::db::unsafe_durability(&db.pool)
        .await
        .context("reading the database's durability settings")?;
    if !unsafe_settings.is_empty() {
        let what = unsafe_settings.join(", ");
        if cfg.allow_unsafe_durability {
            tracing::warn!(
                "the database runs with {what}: a crash of its machine can lose proofs tapvault acknowledged"
            );
        } else {
            db.pool.close().await;
            anyhow::bail!(
                "the database runs with {what}: a crash of its machine could lose proofs tapvault already \
                 acknowledged. Turn it back on, or start with --allow-unsafe-durability (tests only)"
            );
        }
    }
    if cfg.read_only {
        // A standby cannot be migrated; it replays the primary's schema.
        tracing::warn!(
            "read-only: serving reads from {}; writes are refused",
            db.targets.current()
        );
    } else {
        tapvault_store::migrate(&db.pool)
            .await
            .context("running migrations")?;
    }
    Ok(db)
}

/// Starts the gRPC and HTTP servers; returns once both listen. When it
/// fails, whatever it started (the private cluster) is stopped again.
pub async fn start(cfg: ServeConfig) -> Result<Running> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let (db, mut cluster) = open_db(&cfg).await?;
    match start_on(cfg, db.clone(), &mut cluster).await {
        Ok(r) => Ok(r),
        Err(e) => {
            db.pool.close().await;
            if let Some(c) = cluster.take() {
                c.stop();
            }
            Err(e)
        }
    }
}

async fn start_on(
    cfg: ServeConfig,
    db: Db,
    cluster: &mut Option<pgembed::PrivateCluster>,
) -> Result<Running> {
    let keys = match &cfg.jwt_hs256_secret {
        Some(s) => auth::Keys::hs256(s)?,
        None => auth::Keys::ed25519_in(&cfg.data_dir)?,
    };
    let operator = match &cfg.operator_tenant {
        Some(name) => Some(auth::tenant_id(&db, name).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "--operator-tenant names unknown tenant {name:?} (add it with `tapvault tenant add`)"
            )
        })?),
        None => None,
    };
    let mode = if cfg.auth {
        let keys = keys.clone();
        let mut trusted = Vec::new();
        for n in &cfg.trusted_networks {
            let tid = auth::tenant_id(&db, &n.tenant).await?.ok_or_else(|| {
                anyhow::anyhow!("--trust-network names unknown tenant {:?}", n.tenant)
            })?;
            tracing::warn!(
                "accepting credential-less calls from {}/{} as tenant {:?}: anyone in that network can push and read its data",
                n.net,
                n.prefix,
                n.tenant
            );
            trusted.push((n.clone(), tid));
        }
        auth::AuthMode::On { keys, trusted }
    } else {
        let name = cfg
            .default_tenant
            .clone()
            .unwrap_or_else(|| "default".into());
        tracing::warn!("authentication is off: every request acts as tenant {name:?}");
        auth::AuthMode::Off {
            tenant: if cfg.read_only {
                auth::tenant_id(&db, &name).await?.ok_or_else(|| {
                    anyhow::anyhow!("read-only: tenant {name:?} does not exist on this database")
                })?
            } else {
                tapvault_store::db::ensure_tenant(&db.pool, &name).await?
            },
        }
    };
    let authenticator = Arc::new(auth::Authenticator {
        db: db.clone(),
        mode,
        operator,
        read_only: cfg.read_only,
        verified: Default::default(),
    });
    let default_tenant = None;
    let metrics = Arc::new(Metrics::default());
    let svc = universe_svc::UniverseService {
        db: db.clone(),
        ingestor: ingestor::Ingestor::start(db.clone()),
        default_tenant,
        runtime_id: rand::random::<i64>().abs(),
        verify: cfg.verify,
        metrics: metrics.clone(),
    };

    let (shutdown, rx) = watch::channel(false);
    let grpc_listener = TcpListener::bind(cfg.grpc_listen)
        .await
        .with_context(|| format!("binding gRPC on {}", cfg.grpc_listen))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_listener = TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("binding HTTP on {}", cfg.http_listen))?;
    let http_addr = http_listener.local_addr()?;

    // Pushes of proof files and backups are megabytes: a window larger than
    // HTTP/2's default 64 KiB lets them stream without a window update per
    // 64 KiB (the large-call budget still bounds what is held at once).
    let builder = tonic::transport::Server::builder()
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20);
    let mut cert_pem = None;
    let mut tls_config = None;
    if cfg.tls {
        // One crypto provider for the whole process, whatever features other
        // crates enable (an ambiguous default makes rustls panic).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (cert, key) = tls::TlsFiles::in_dir(&cfg.data_dir).load_or_create(&cfg.tls_names)?;
        // The accept loop terminates TLS itself (with a handshake timeout),
        // advertising ALPN h2, which grpc-go ≥ 1.67 requires.
        tls_config = Some(listener::tls_config(&cert, &key)?);
        cert_pem = Some(cert);
    }
    let (health_reporter, health_svc) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::universerpc::universe_server::UniverseServer<universe_svc::UniverseService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection")?;
    let universe = proto::universerpc::universe_server::UniverseServer::new(svc)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let backup = proto::tapvault_v1::backup_server::BackupServer::new(backup_svc::BackupService {
        db: db.clone(),
        verify: cfg.verify,
        metrics: metrics.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    health_reporter
        .set_serving::<proto::tapvault_v1::backup_server::BackupServer<backup_svc::BackupService>>()
        .await;
    let admin = proto::tapvault_v1::admin_server::AdminServer::new(admin_svc::AdminService {
        db: db.clone(),
        keys,
    });
    let log_state = log_svc::LogState::new(
        db.clone(),
        log_svc::load_or_create_key(&cfg.data_dir)?,
        cfg.read_only,
    );
    let log_key = log_state.public_key();
    tracing::info!("receipt log key (Ed25519): {}", hex::encode(log_key));
    let log = proto::tapvault_v1::log_server::LogServer::new(log_svc::LogService {
        state: log_state.clone(),
    });
    let router = builder
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .tcp_keepalive(Some(std::time::Duration::from_secs(60)))
        .layer(
            tower::ServiceBuilder::new()
                .layer(auth::AuthLayer {
                    auth: authenticator.clone(),
                })
                .layer(limits::BudgetLayer {
                    budget: limits::Budget::new(cfg.large_call_budget, cfg.large_call_wait),
                }),
        )
        .add_service(health_svc)
        .add_service(reflection)
        .add_service(universe)
        .add_service(backup)
        .add_service(admin)
        .add_service(log);
    let nofile = listener::raise_nofile_limit();
    let mut limits = cfg.conn_limits.clone();
    limits.max_connections = listener::cap_for_nofile(limits.max_connections, nofile);
    tracing::info!(
        "gRPC: at most {} connections (descriptor limit {nofile}), TLS handshake timeout {:?}",
        limits.max_connections,
        limits.handshake_timeout
    );
    let incoming = listener::incoming(
        grpc_listener,
        tls_config,
        limits.clone(),
        metrics.conn.clone(),
    );
    let mut grpc_rx = rx.clone();
    let grpc_task = tokio::spawn(async move {
        let res = router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = grpc_rx.wait_for(|v| *v).await;
            })
            .await;
        if let Err(e) = res {
            tracing::error!("gRPC server stopped: {e}");
        }
    });

    let http_conns = metrics.http_conn.clone();
    let http_app = http_router(db.clone(), metrics, authenticator);
    // The HTTP port gets the gRPC port's accept loop: a cap, the first
    // request within the handshake timeout, idle connections closed.
    let http_limits = listener::ConnLimits {
        handshake_timeout: limits.handshake_timeout,
        idle_timeout: limits.handshake_timeout,
        max_connections: limits.max_connections.min(HTTP_MAX_CONNECTIONS),
    };
    let http_task = tokio::spawn(serve_http(
        listener::incoming(http_listener, None, http_limits, http_conns),
        http_app,
        rx.clone(),
    ));
    tracing::info!(
        "tapvault serving universerpc on {grpc_addr} ({}), HTTP on {http_addr}",
        if cfg.tls { "TLS" } else { "plaintext" }
    );
    let mut tasks = vec![grpc_task, http_task];
    let mut log = None;
    if !cfg.read_only {
        tasks.push(log_svc::spawn_signer(
            log_state.clone(),
            cfg.log_head_interval,
            rx.clone(),
        ));
        log = Some(log_state);
    }
    if db.targets.all().len() > 1 {
        tasks.push(spawn_failover(db.clone(), rx.clone()));
    }
    {
        let (db, mut rx) = (db.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = tapvault_store::tenants::follow_token_changes(db) => {}
                _ = rx.wait_for(|v| *v) => {}
            }
        }));
    }
    Ok(Running {
        grpc_addr,
        http_addr,
        db,
        cert_pem,
        log_key,
        shutdown,
        tasks,
        cluster: cluster.take(),
        log,
    })
}

/// Most open connections of the HTTP port (health checks and scrapes).
const HTTP_MAX_CONNECTIONS: usize = 1024;

/// Serves the HTTP port: each connection with hyper, each request counted
/// open on its connection until its response is sent; on shutdown,
/// connections finish what they serve and close.
async fn serve_http(
    incoming: impl tokio_stream::Stream<Item = std::io::Result<listener::Conn>>,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    use tokio_stream::StreamExt as _;
    let mut incoming = std::pin::pin!(incoming);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let conn = tokio::select! {
            c = incoming.next() => match c {
                Some(Ok(c)) => c,
                _ => break,
            },
            _ = shutdown.wait_for(|v| *v) => break,
        };
        let info = conn.info();
        let app = app.clone().layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let guard = info.watch.request();
                async move {
                    let res = next.run(req).await;
                    res.map(|b| axum::body::Body::new(auth::Guarded::new(b, guard)))
                }
            },
        ));
        let mut stop = shutdown.clone();
        conns.spawn(async move {
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let c = builder.serve_connection(hyper_util::rt::TokioIo::new(conn), svc);
            let mut c = std::pin::pin!(c);
            tokio::select! {
                r = c.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("HTTP connection: {e}");
                    }
                }
                _ = stop.changed() => {
                    c.as_mut().graceful_shutdown();
                    let _ = c.await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}

/// Watches the database in use; when it fails (or becomes a standby),
/// points the pool at the next database that takes writes. Calls meanwhile
/// fail fast with UNAVAILABLE.
fn spawn_failover(db: Db, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|v| *v) => return,
            }
            match tapvault_store::db::check_failover(&db).await {
                Ok(Some(to)) => tracing::warn!("database failover: now using {to}"),
                Ok(None) => {}
                Err(e) => tracing::warn!("database failover check: {e}"),
            }
        }
    })
}

fn http_router(db: Db, metrics: Arc<Metrics>, authn: Arc<auth::Authenticator>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let ready_db = db.clone();
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let db = ready_db.clone();
                async move {
                    match tapvault_store::db::ping(&db).await {
                        Ok(()) => (
                            StatusCode::OK,
                            format!(
                                "ready: {} {}\n",
                                if db.targets.read_only { "reading (read-only) from" } else { "writing to" },
                                db.targets.current()
                            ),
                        ),
                        Err(e) => {
                            tracing::warn!("readiness: database unavailable: {e}");
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "not ready: the database is unavailable\n".to_string(),
                            )
                        }
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let m = metrics.clone();
                let authn = authn.clone();
                async move {
                    use axum::response::IntoResponse;
                    let header = match auth::authorization_header(&headers) {
                        Ok(h) => h,
                        Err(s) => {
                            return (StatusCode::UNAUTHORIZED, format!("{}\n", s.message()))
                                .into_response()
                        }
                    };
                    match authn.check(header.as_deref(), None, auth::Scope::Admin).await {
                        Err(s) => {
                            let code = match s.code() {
                                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                                _ => StatusCode::UNAUTHORIZED,
                            };
                            return (code, format!("{}\n", s.message())).into_response();
                        }
                        // The counters cover every tenant: only the operator reads them.
                        Ok(p) if !p.operator => {
                            return (
                                StatusCode::FORBIDDEN,
                                "metrics cover every tenant: only the operator tenant's admin tokens \
                                 (serve --operator-tenant) may read them\n",
                            )
                                .into_response();
                        }
                        Ok(_) => {}
                    }
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                        .into_response()
                }
            }),
        )
}
