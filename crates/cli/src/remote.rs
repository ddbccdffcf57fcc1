//! Connecting to a tapvault server as a client: address, pinned
//! certificate, token.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tapvault_api::client::{self, BackupClient, Trust, UniverseClient};

#[derive(Args, Clone, Debug)]
pub struct RemoteArgs {
    /// The tapvault server's gRPC address (host:port).
    #[arg(long, env = "TAPVAULT_SERVER")]
    pub server: Option<String>,
    /// The server's certificate (its data dir's tls.cert), pinned: only
    /// this exact certificate is accepted.
    #[arg(
        long,
        env = "TAPVAULT_SERVER_CERT",
        conflicts_with = "server_fingerprint"
    )]
    pub server_cert: Option<PathBuf>,
    /// Or the SHA-256 fingerprint of that certificate (hex, colons allowed).
    #[arg(long, env = "TAPVAULT_SERVER_FINGERPRINT")]
    pub server_fingerprint: Option<String>,
    /// Talk plaintext gRPC (only for a server on loopback or behind a
    /// TLS-terminating proxy).
    #[arg(long, conflicts_with_all = ["server_cert", "server_fingerprint"])]
    pub plaintext: bool,
    /// The access token (`tapvault token issue`).
    #[arg(long, env = "TAPVAULT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from a file instead.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

impl RemoteArgs {
    pub fn server(&self) -> Result<&str> {
        self.server
            .as_deref()
            .context("the server's address is needed: --server HOST:PORT (or TAPVAULT_SERVER)")
    }

    pub fn trust(&self) -> Result<Trust> {
        match (&self.server_cert, &self.server_fingerprint, self.plaintext) {
            (Some(p), None, false) => Trust::from_cert_file(p),
            (None, Some(f), false) => Trust::from_fingerprint(f),
            (None, None, true) => Ok(Trust::Plaintext),
            (None, None, false) => bail!(
                "give the server's certificate to pin (--server-cert FILE or --server-fingerprint HEX), or --plaintext"
            ),
            _ => bail!("--server-cert, --server-fingerprint and --plaintext exclude each other"),
        }
    }

    pub fn token(&self) -> Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.trim().to_string())),
            (None, Some(p)) => Ok(Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .trim()
                    .to_string(),
            )),
            (None, None) => Ok(None),
        }
    }

    pub fn clients(&self) -> Result<(BackupClient, UniverseClient)> {
        let ch = client::channel(self.server()?, &self.trust()?)?;
        client::clients(ch, self.token()?.as_deref())
    }

    /// The backup and receipt-log clients over one channel.
    pub fn log_clients(&self) -> Result<(BackupClient, client::LogClient)> {
        let ch = client::channel(self.server()?, &self.trust()?)?;
        let token = self.token()?;
        let (b, _) = client::clients(ch.clone(), token.as_deref())?;
        Ok((b, client::log_client(ch, token.as_deref())?))
    }
}

/// A gRPC error as a one-line message for the operator.
pub fn status_msg(what: &str, s: tonic::Status) -> anyhow::Error {
    // Transport failures carry their cause (refused, TLS, pin) as sources.
    let mut msg = format!("{what}: {} ({:?})", s.message(), s.code());
    let mut src = std::error::Error::source(&s);
    while let Some(e) = src {
        msg.push_str(&format!(": {e}"));
        src = e.source();
    }
    anyhow::anyhow!(msg)
}
