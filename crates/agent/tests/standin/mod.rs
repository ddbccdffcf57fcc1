//! A stand-in for tapd. tapd itself cannot run on these machines, so this
//! gRPC server implements exactly the tapd RPCs the agent calls, from the
//! same protos (`taprpc.TaprootAssets`: ListAssets, QueryAddrs, ExportProof,
//! SubscribeReceiveEvents, SubscribeSendEvents; `assetwalletrpc.AssetWallet`:
//! ExportAssetWalletBackup), over TLS with its own certificate and checking
//! the macaroon, as tapd does. It serves what the test puts in `Wallet`:
//! real regtest proof files, vector addresses, TAPBAK blobs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tapvault_agent::proto::assetwalletrpc::{self as awpb, asset_wallet_server};
use tapvault_agent::proto::taprpc::{self as tpb, taproot_assets_server};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

/// One owned asset output: its proof file (genesis → it).
#[derive(Clone)]
pub struct Output {
    pub file: Vec<u8>,
}

#[derive(Default)]
pub struct Wallet {
    pub outputs: Vec<Output>,
    pub addresses: Vec<String>,
    pub backup: Option<Vec<u8>>,
    /// Calls per method, to see what the agent asked.
    pub calls: BTreeMap<&'static str, usize>,
}

#[derive(Clone)]
pub struct StandIn {
    pub wallet: Arc<Mutex<Wallet>>,
    pub events: broadcast::Sender<()>,
    macaroon_hex: String,
}

impl StandIn {
    fn check(&self, md: &tonic::metadata::MetadataMap, method: &'static str) -> Result<(), Status> {
        *self.wallet.lock().unwrap().calls.entry(method).or_default() += 1;
        match md.get("macaroon").and_then(|v| v.to_str().ok()) {
            Some(m) if m == self.macaroon_hex => Ok(()),
            Some(_) => Err(Status::unknown(
                "verification failed: signature mismatch after caveat verification",
            )),
            None => Err(Status::unknown("expected 1 macaroon, got 0")),
        }
    }
}

fn last_proof(file: &[u8]) -> tapvault_codec::Proof {
    tapvault_codec::File::decode(file)
        .unwrap()
        .last_proof()
        .unwrap()
        .unwrap()
}

#[tonic::async_trait]
impl taproot_assets_server::TaprootAssets for StandIn {
    async fn list_assets(
        &self,
        req: Request<tpb::ListAssetRequest>,
    ) -> Result<Response<tpb::ListAssetResponse>, Status> {
        self.check(req.metadata(), "ListAssets")?;
        let outs = self.wallet.lock().unwrap().outputs.clone();
        let assets = outs
            .iter()
            .map(|o| {
                let p = last_proof(&o.file);
                tpb::Asset {
                    amount: p.asset.amount,
                    script_key: p.asset.script_key.0.to_vec(),
                    asset_genesis: Some(tpb::GenesisInfo {
                        genesis_point: p.asset.genesis.first_prev_out.to_string(),
                        name: p.asset.genesis.tag_lossy(),
                        asset_id: p.asset.id().to_vec(),
                        ..Default::default()
                    }),
                    chain_anchor: Some(tpb::AnchorInfo {
                        anchor_outpoint: p.outpoint().to_string(),
                        block_height: p.block_height,
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            })
            .collect();
        Ok(Response::new(tpb::ListAssetResponse { assets }))
    }

    async fn query_addrs(
        &self,
        req: Request<tpb::QueryAddrRequest>,
    ) -> Result<Response<tpb::QueryAddrResponse>, Status> {
        self.check(req.metadata(), "QueryAddrs")?;
        let r = req.into_inner();
        let all = self.wallet.lock().unwrap().addresses.clone();
        let limit = if r.limit <= 0 { 512 } else { r.limit as usize };
        let addrs = all
            .into_iter()
            .skip(r.offset.max(0) as usize)
            .take(limit)
            .map(|encoded| tpb::Addr {
                encoded,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(tpb::QueryAddrResponse { addrs }))
    }

    async fn export_proof(
        &self,
        req: Request<tpb::ExportProofRequest>,
    ) -> Result<Response<tpb::ProofFile>, Status> {
        self.check(req.metadata(), "ExportProof")?;
        let r = req.into_inner();
        let op = r
            .outpoint
            .ok_or_else(|| Status::invalid_argument("outpoint"))?;
        let outs = self.wallet.lock().unwrap().outputs.clone();
        for o in outs {
            let p = last_proof(&o.file);
            let want = p.outpoint();
            if bitcoin::hashes::Hash::to_byte_array(want.txid).to_vec() == op.txid
                && want.vout == op.output_index
                && p.asset.script_key.0.to_vec() == r.script_key
                && p.asset.id().to_vec() == r.asset_id
            {
                return Ok(Response::new(tpb::ProofFile {
                    raw_proof_file: o.file.clone(),
                    genesis_point: p.asset.genesis.first_prev_out.to_string(),
                }));
            }
        }
        Err(Status::not_found("no proof found"))
    }

    type SubscribeReceiveEventsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<tpb::ReceiveEvent, Status>> + Send>>;
    type SubscribeSendEventsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<tpb::SendEvent, Status>> + Send>>;

    async fn subscribe_receive_events(
        &self,
        req: Request<tpb::SubscribeReceiveEventsRequest>,
    ) -> Result<Response<Self::SubscribeReceiveEventsStream>, Status> {
        self.check(req.metadata(), "SubscribeReceiveEvents")?;
        let rx = self.events.subscribe();
        let s =
            tokio_stream::StreamExt::map(tokio_stream::wrappers::BroadcastStream::new(rx), |_| {
                Ok(tpb::ReceiveEvent {
                    timestamp: 1,
                    ..Default::default()
                })
            });
        Ok(Response::new(Box::pin(s)))
    }

    async fn subscribe_send_events(
        &self,
        req: Request<tpb::SubscribeSendEventsRequest>,
    ) -> Result<Response<Self::SubscribeSendEventsStream>, Status> {
        self.check(req.metadata(), "SubscribeSendEvents")?;
        // Send events are not simulated: a stream that stays open.
        let s = tokio_stream::pending();
        Ok(Response::new(Box::pin(s)))
    }
}

#[tonic::async_trait]
impl asset_wallet_server::AssetWallet for StandIn {
    async fn export_asset_wallet_backup(
        &self,
        req: Request<awpb::ExportAssetWalletBackupRequest>,
    ) -> Result<Response<awpb::ExportAssetWalletBackupResponse>, Status> {
        self.check(req.metadata(), "ExportAssetWalletBackup")?;
        match self.wallet.lock().unwrap().backup.clone() {
            Some(backup) => Ok(Response::new(awpb::ExportAssetWalletBackupResponse {
                backup,
            })),
            // What a tapd before v0.8 answers.
            None => Err(Status::unimplemented(
                "unknown method ExportAssetWalletBackup",
            )),
        }
    }

    async fn import_assets_from_backup(
        &self,
        _req: Request<awpb::ImportAssetsFromBackupRequest>,
    ) -> Result<Response<awpb::ImportAssetsFromBackupResponse>, Status> {
        Err(Status::unimplemented("not part of the stand-in"))
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub standin: StandIn,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.join("tls.cert")
    }
    pub fn macaroon(&self) -> PathBuf {
        self.dir.join("admin.macaroon")
    }
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Starts the stand-in on loopback with files in `dir` (tls.cert,
/// admin.macaroon).
pub async fn start(dir: &Path) -> Running {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = tapvault_server::tls::TlsFiles::in_dir(dir)
        .load_or_create(&[])
        .unwrap();
    let macaroon = b"\x02\x01stand-in macaroon".to_vec();
    std::fs::write(dir.join("admin.macaroon"), &macaroon).unwrap();
    let (events, _) = broadcast::channel(16);
    let standin = StandIn {
        wallet: Default::default(),
        events,
        macaroon_hex: hex::encode(&macaroon),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming =
        tonic::transport::server::TcpIncoming::from_listener(listener, true, None).unwrap();
    let router = tonic::transport::Server::builder()
        .tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&cert, &key)),
        )
        .unwrap()
        .add_service(taproot_assets_server::TaprootAssetsServer::new(
            standin.clone(),
        ))
        .add_service(asset_wallet_server::AssetWalletServer::new(standin.clone()));
    let task = tokio::spawn(async move {
        let _ = router.serve_with_incoming(incoming).await;
    });
    Running {
        addr,
        dir: dir.to_path_buf(),
        standin,
        task,
    }
}
