//! tapvault's node-side agent (`tapvault agent`). It runs next to tapd and
//! closes the two gaps a stock tapd leaves (UNIVERSE-RPC.md §3.2, §8):
//!
//! * **relay** (`relay.rs`): tapd cannot send credentials, so it talks to
//!   the agent on loopback (TLS, ALPN h2) and the agent forwards every
//!   universe call to the server with the node's token, the server's
//!   certificate pinned;
//! * **collector** (`collector.rs`): tapd never pushes its wallet backup,
//!   addresses or change proofs, so the agent reads them from tapd's own API
//!   and pushes what changed.

pub mod audit;
pub mod collector;
pub mod relay;
pub mod state;
pub mod tapd;

pub use tapvault_api::proto;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tapvault_api::client::{self, Trust};
use tapvault_api::proto::universerpc::universe_server::UniverseServer;

pub struct AgentConfig {
    /// Where tapd reaches the relay (loopback).
    pub listen: SocketAddr,
    /// The agent's own files: relay TLS key/cert, state.
    pub data_dir: PathBuf,
    /// The tapvault server (host:port), how its certificate is pinned, and
    /// the node's token.
    pub server: String,
    pub server_trust: Trust,
    pub token: String,
    /// tapd to collect from; `None` = relay only.
    pub tapd: Option<tapd::TapdConfig>,
    pub poll_interval: Duration,
    /// Extra names for the relay certificate (besides localhost).
    pub tls_names: Vec<String>,
}

pub struct RunningAgent {
    pub relay_addr: SocketAddr,
    /// The relay's certificate (PEM): what tapd connects to.
    pub cert_pem: Vec<u8>,
    pub state: Arc<state::StateStore>,
    /// Wakes the collector now (tests; SIGHUP).
    pub wake: Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl RunningAgent {
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        if let Err(e) = self.state.flush() {
            tracing::warn!("saving agent state: {e:#}");
        }
    }
}

/// Starts the relay (and the collector when tapd is configured).
pub async fn start(cfg: AgentConfig) -> Result<RunningAgent> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let state = Arc::new(state::StateStore::open(&cfg.data_dir)?);
    let ch = client::channel(&cfg.server, &cfg.server_trust)?;
    let (backup, universe) = client::clients(ch.clone(), Some(&cfg.token))?;
    let log = client::log_client(ch, Some(&cfg.token))?;

    let (cert, key) =
        tapvault_api::tls::TlsFiles::in_dir(&cfg.data_dir).load_or_create(&cfg.tls_names)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding the relay on {}", cfg.listen))?;
    let relay_addr = listener.local_addr()?;
    if !relay_addr.ip().is_loopback() {
        tracing::warn!(
            "the relay listens on {relay_addr}: anyone who reaches it acts with this node's token"
        );
    }
    // The server's accept loop: TLS with a handshake timeout, backoff on
    // EMFILE, a connection cap.
    let incoming = tapvault_api::listener::incoming(
        listener,
        Some(tapvault_api::listener::tls_config(&cert, &key)?),
        tapvault_api::listener::ConnLimits::default(),
        Default::default(),
    );
    let svc = UniverseServer::new(relay::Relay {
        upstream: universe,
        state: state.clone(),
    })
    .max_decoding_message_size(tapvault_api::MAX_MESSAGE_BYTES)
    .max_encoding_message_size(tapvault_api::MAX_MESSAGE_BYTES);
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    // One service: served without a router (no axum in the agent).
    let server = tonic::transport::Server::builder();
    let mut tasks = vec![tokio::spawn(async move {
        let r = server
            .serve_with_incoming_shutdown(svc, incoming, async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!("relay stopped: {e}");
        }
    })];

    // Relay counters live in memory; save them now and then.
    let st = state.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if let Err(e) = st.flush() {
                tracing::warn!("saving agent state: {e:#}");
            }
        }
    }));
    let wake = Arc::new(tokio::sync::Notify::new());
    if let Some(t) = &cfg.tapd {
        let (assets, wallet) = tapd::connect(t)?;
        tasks.extend(collector::watch_events(
            assets.clone(),
            wake.clone(),
            cfg.poll_interval,
        ));
        let c = collector::Collector {
            assets,
            wallet,
            server: backup,
            state: state.clone(),
            source: "tapvault-agent".into(),
            auditor: Some(audit::Auditor {
                log,
                state: state.clone(),
            }),
        };
        tasks.push(tokio::spawn(c.run_forever(cfg.poll_interval, wake.clone())));
    }
    tracing::info!(
        "agent relaying universe calls on {relay_addr} to {}{}",
        cfg.server,
        if cfg.tapd.is_some() {
            ", collecting from tapd"
        } else {
            ""
        }
    );
    Ok(RunningAgent {
        relay_addr,
        cert_pem: cert,
        state,
        wake,
        tasks,
        shutdown,
    })
}
