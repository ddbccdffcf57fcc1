//! The agent's connection to its own tapd: tapd's TLS certificate pinned,
//! its macaroon sent on every call.

use crate::proto::assetwalletrpc::asset_wallet_client::AssetWalletClient;
use crate::proto::taprpc::taproot_assets_client::TaprootAssetsClient;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tapvault_api::client::{channel, Trust};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[derive(Clone, Debug)]
pub struct TapdConfig {
    /// tapd's gRPC address (default 127.0.0.1:10029).
    pub addr: String,
    /// tapd's `tls.cert` (pinned).
    pub tls_cert: PathBuf,
    /// A macaroon with assets read+write (the backup export needs write),
    /// addresses read and proofs read; tapd's admin.macaroon works.
    pub macaroon: PathBuf,
}

impl TapdConfig {
    /// tapd's default paths for `network` under `tapd_dir` (~/.tapd).
    pub fn defaults(tapd_dir: &Path, network: &str) -> Self {
        TapdConfig {
            addr: "127.0.0.1:10029".into(),
            tls_cert: tapd_dir.join("tls.cert"),
            macaroon: tapd_dir.join("data").join(network).join("admin.macaroon"),
        }
    }
}

/// Adds `macaroon: <hex>` to every call.
#[derive(Clone)]
pub struct Macaroon(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Macaroon {
    fn call(
        &mut self,
        mut req: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("macaroon", self.0.clone());
        Ok(req)
    }
}

pub type Assets = TaprootAssetsClient<InterceptedService<Channel, Macaroon>>;
pub type Wallet = AssetWalletClient<InterceptedService<Channel, Macaroon>>;

/// Clients for tapd's TaprootAssets and AssetWallet services.
pub fn connect(cfg: &TapdConfig) -> Result<(Assets, Wallet)> {
    let mac = std::fs::read(&cfg.macaroon)
        .with_context(|| format!("reading tapd's macaroon {}", cfg.macaroon.display()))?;
    let mac = Macaroon(hex::encode(mac).parse().context("macaroon as metadata")?);
    let trust = Trust::from_cert_file(&cfg.tls_cert)
        .with_context(|| format!("tapd's certificate {}", cfg.tls_cert.display()))?;
    let ch = channel(&cfg.addr, &trust)?;
    let max = tapvault_api::MAX_MESSAGE_BYTES;
    Ok((
        TaprootAssetsClient::with_interceptor(ch.clone(), mac.clone())
            .max_decoding_message_size(max),
        AssetWalletClient::with_interceptor(ch, mac).max_decoding_message_size(max),
    ))
}
