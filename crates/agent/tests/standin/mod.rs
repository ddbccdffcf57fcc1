//! A stand-in for tapd. tapd itself cannot run on these machines, so this
//! gRPC server implements the tapd RPCs the agent calls, from the same
//! protos, over TLS with its own certificate and checking the macaroon, as
//! tapd does. It keeps tapd's defaults, limits and refusals (read in tapd
//! v0.7.0 and v0.8.1's rpcserver and tapdb), because a stand-in kinder than
//! tapd hides exactly the bugs it should find:
//!
//! * ListAssets without `script_key_type` lists BIP-86 (and unique
//!   Pedersen) script keys only; `all_types` lists every type.
//! * v0.8 pages ListAssets: limit 0 = 512, more than 16,384 is refused,
//!   descending (newest first) unless asked otherwise; v0.7 has no paging
//!   fields and answers everything.
//! * Leased outputs are listed only with `include_leased`;
//!   `include_spent` with `include_leased` is refused; unconfirmed transfers
//!   are not listed at all (only counted) until they confirm.
//! * QueryAddrs: limit 0 = no limit, in creation order.
//! * ExportAssetWalletBackup (v0.8 only; v0.7 answers UNIMPLEMENTED): a RAW
//!   TAPBAK of the confirmed, unleased outputs, every script key type.
//! * QueryScriptKey / QueryInternalKey on both: the key's locator, or
//!   tapd's "not found" error for a key the wallet does not hold.
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

/// tapd's default and largest ListAssets page (tapdb).
pub const DEFAULT_PAGE: usize = 512;
pub const MAX_PAGE: i32 = 16_384;

/// Which tapd.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Version {
    V07,
    #[default]
    V08,
}

/// A key locator as tapd's wallet knows it.
#[derive(Clone, Debug)]
pub struct Loc {
    pub raw_key: [u8; 33],
    pub family: i32,
    pub index: i32,
}

/// One owned asset output: its proof file (genesis → it) and what tapd
/// knows about it.
#[derive(Clone)]
pub struct Output {
    pub file: Vec<u8>,
    /// tapd's ScriptKeyType (1 BIP-86, 2 script path, 5 channel, 6 Pedersen).
    pub script_key_type: i32,
    pub leased: bool,
    /// Not confirmed yet: tapd does not list it (only counts the transfer).
    pub unconfirmed: bool,
    pub script_key_loc: Option<Loc>,
    pub tweak: Vec<u8>,
    pub internal_key_loc: Option<Loc>,
}

impl Output {
    /// A confirmed, unleased BIP-86 output with no locators.
    pub fn bip86(file: Vec<u8>) -> Self {
        Output {
            file,
            script_key_type: 1,
            leased: false,
            unconfirmed: false,
            script_key_loc: None,
            tweak: Vec::new(),
            internal_key_loc: None,
        }
    }
}

/// An address and its keys' locators.
#[derive(Clone)]
pub struct Addr {
    pub encoded: String,
    pub script_key: Vec<u8>,
    pub internal_key: Vec<u8>,
    pub script_key_loc: Option<Loc>,
    pub internal_key_loc: Option<Loc>,
}

#[derive(Default)]
pub struct Wallet {
    pub version: Version,
    pub outputs: Vec<Output>,
    pub addresses: Vec<String>,
    /// Addresses with their keys (listed after `addresses`).
    pub addrs: Vec<Addr>,
    /// A fixed backup blob; without one a v0.8 tapd builds its own.
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

/// The last proof of a file, decoded once per distinct file (tapd looks
/// outputs up by index; decoding every file on every call would make the
/// stand-in, not the agent, the slow part).
fn last_proof(file: &[u8]) -> Arc<tapvault_codec::Proof> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    type Tips = Mutex<HashMap<(usize, usize), (Vec<u8>, Arc<tapvault_codec::Proof>)>>;
    static TIPS: OnceLock<Tips> = OnceLock::new();
    // Found by the buffer's address and length, confirmed by its bytes (a
    // freed buffer's address may come back with other content).
    let id = (file.as_ptr() as usize, file.len());
    let tips = TIPS.get_or_init(Default::default);
    if let Some((bytes, p)) = tips.lock().unwrap().get(&id) {
        if bytes.as_slice() == file {
            return p.clone();
        }
    }
    let p = Arc::new(
        tapvault_codec::File::decode(file)
            .unwrap()
            .last_proof()
            .unwrap()
            .unwrap(),
    );
    tips.lock().unwrap().insert(id, (file.to_vec(), p.clone()));
    p
}

/// What tapd's ListAssets returns for an output.
fn asset_pb(o: &Output) -> tpb::Asset {
    let p = last_proof(&o.file);
    tpb::Asset {
        amount: p.asset.amount,
        script_key: p.asset.script_key.0.to_vec(),
        script_key_type: o.script_key_type,
        lease_owner: if o.leased { vec![9; 32] } else { vec![] },
        asset_genesis: Some(tpb::GenesisInfo {
            genesis_point: p.asset.genesis.first_prev_out.to_string(),
            name: p.asset.genesis.tag_lossy(),
            asset_id: p.asset.id().to_vec(),
            ..Default::default()
        }),
        chain_anchor: Some(tpb::AnchorInfo {
            anchor_outpoint: p.outpoint().to_string(),
            block_height: p.block_height,
            internal_key: p.inclusion_proof.internal_key.0.to_vec(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn key_desc(l: &Loc) -> tpb::KeyDescriptor {
    tpb::KeyDescriptor {
        raw_key_bytes: l.raw_key.to_vec(),
        key_loc: Some(tpb::KeyLocator {
            key_family: l.family,
            key_index: l.index,
        }),
    }
}

/// Keys match as tapd's lookups do: 33 bytes exactly, 32 bytes by x.
fn same_key(asked: &[u8], have: &[u8]) -> bool {
    match asked.len() {
        33 => asked == have,
        32 => have.len() == 33 && &have[1..] == asked,
        _ => false,
    }
}

impl Wallet {
    /// tapd v0.8's RAW backup: confirmed, unleased outputs of every type.
    fn build_backup(&self) -> Vec<u8> {
        use tapvault_codec::backup::{AssetBackup, KeyDescriptorBackup, ScriptKeyBackup};
        let assets = self
            .outputs
            .iter()
            .filter(|o| !o.leased && !o.unconfirmed)
            .map(|o| {
                let f = tapvault_codec::File::decode(&o.file).unwrap();
                let p = last_proof(&o.file);
                let sk = o.script_key_loc.as_ref().map(|l| ScriptKeyBackup {
                    pub_key: p.asset.script_key,
                    family: l.family as u32,
                    index: l.index as u32,
                    raw_pub_key: Some(tapvault_codec::PubKey(l.raw_key)),
                    tweak: (!o.tweak.is_empty()).then(|| o.tweak.clone()),
                    unknown: Default::default(),
                });
                let ik = o.internal_key_loc.as_ref().map(|l| KeyDescriptorBackup {
                    pub_key: tapvault_codec::PubKey(l.raw_key),
                    family: l.family as u32,
                    index: l.index as u32,
                    unknown: Default::default(),
                });
                AssetBackup::from_proof_file(&f, sk, ik).unwrap()
            })
            .collect();
        tapvault_codec::backup::WalletBackup {
            version: tapvault_codec::backup::VERSION_RAW,
            federation_urls: vec![],
            assets,
        }
        .encode()
    }
}

#[tonic::async_trait]
impl taproot_assets_server::TaprootAssets for StandIn {
    async fn list_assets(
        &self,
        req: Request<tpb::ListAssetRequest>,
    ) -> Result<Response<tpb::ListAssetResponse>, Status> {
        self.check(req.metadata(), "ListAssets")?;
        let r = req.into_inner();
        if r.include_spent && r.include_leased {
            return Err(Status::unknown(
                "cannot specify both include_spent and include_leased",
            ));
        }
        let w = self.wallet.lock().unwrap();
        let v08 = w.version == Version::V08;
        if v08 {
            if r.offset < 0 {
                return Err(Status::unknown("offset must be non-negative"));
            }
            if r.limit < 0 {
                return Err(Status::unknown("limit must be non-negative"));
            }
            if r.limit > MAX_PAGE {
                return Err(Status::unknown(format!(
                    "limit must be less than {MAX_PAGE}"
                )));
            }
        }
        use tpb::script_key_type_query::Type;
        let types: Option<Vec<i32>> = match r.script_key_type.and_then(|q| q.r#type) {
            None => Some(vec![1, 6]),
            Some(Type::AllTypes(true)) => None,
            Some(Type::AllTypes(false)) => Some(vec![1, 6]),
            Some(Type::ExplicitType(1)) => Some(vec![1, 6]),
            Some(Type::ExplicitType(t)) => Some(vec![t]),
        };
        let mut list: Vec<&Output> = w
            .outputs
            .iter()
            .filter(|o| !o.unconfirmed)
            .filter(|o| r.include_leased || !o.leased)
            .filter(|o| {
                types
                    .as_ref()
                    .is_none_or(|t| t.contains(&o.script_key_type))
            })
            .collect();
        if v08 {
            // Creation order is the order of `outputs`; DESC (0) by default.
            if r.direction != tpb::SortDirection::Asc as i32 {
                list.reverse();
            }
            let limit = if r.limit == 0 {
                DEFAULT_PAGE
            } else {
                r.limit as usize
            };
            list = list
                .into_iter()
                .skip(r.offset as usize)
                .take(limit)
                .collect();
        }
        let assets = list.into_iter().map(asset_pb).collect();
        let unconfirmed_transfers = w.outputs.iter().filter(|o| o.unconfirmed).count() as u64;
        Ok(Response::new(tpb::ListAssetResponse {
            assets,
            unconfirmed_transfers,
            unconfirmed_mints: 0,
        }))
    }

    async fn query_addrs(
        &self,
        req: Request<tpb::QueryAddrRequest>,
    ) -> Result<Response<tpb::QueryAddrResponse>, Status> {
        self.check(req.metadata(), "QueryAddrs")?;
        let r = req.into_inner();
        let w = self.wallet.lock().unwrap();
        let all: Vec<tpb::Addr> = w
            .addresses
            .iter()
            .map(|encoded| tpb::Addr {
                encoded: encoded.clone(),
                ..Default::default()
            })
            .chain(w.addrs.iter().map(|a| tpb::Addr {
                encoded: a.encoded.clone(),
                script_key: a.script_key.clone(),
                internal_key: a.internal_key.clone(),
                ..Default::default()
            }))
            .collect();
        // tapd's address book: limit 0 is no limit; creation order.
        let limit = if r.limit <= 0 {
            usize::MAX
        } else {
            r.limit as usize
        };
        let addrs = all
            .into_iter()
            .skip(r.offset.max(0) as usize)
            .take(limit)
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
        let w = self.wallet.lock().unwrap();
        for o in &w.outputs {
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
        let w = self.wallet.lock().unwrap();
        if w.version == Version::V07 {
            // What a tapd before v0.8 answers.
            return Err(Status::unimplemented(
                "unknown method ExportAssetWalletBackup for service assetwalletrpc.AssetWallet",
            ));
        }
        let backup = match &w.backup {
            Some(b) => b.clone(),
            None => w.build_backup(),
        };
        Ok(Response::new(awpb::ExportAssetWalletBackupResponse {
            backup,
        }))
    }

    async fn import_assets_from_backup(
        &self,
        _req: Request<awpb::ImportAssetsFromBackupRequest>,
    ) -> Result<Response<awpb::ImportAssetsFromBackupResponse>, Status> {
        Err(Status::unimplemented("not part of the stand-in"))
    }

    async fn query_internal_key(
        &self,
        req: Request<awpb::QueryInternalKeyRequest>,
    ) -> Result<Response<awpb::QueryInternalKeyResponse>, Status> {
        self.check(req.metadata(), "QueryInternalKey")?;
        let k = req.into_inner().internal_key;
        if k.len() != 32 && k.len() != 33 {
            return Err(Status::unknown("invalid internal key length"));
        }
        let w = self.wallet.lock().unwrap();
        let found = w
            .outputs
            .iter()
            .filter_map(|o| o.internal_key_loc.as_ref())
            .chain(w.addrs.iter().filter_map(|a| a.internal_key_loc.as_ref()))
            .find(|l| same_key(&k, &l.raw_key));
        match found {
            Some(l) => Ok(Response::new(awpb::QueryInternalKeyResponse {
                internal_key: Some(key_desc(l)),
            })),
            None => Err(Status::unknown(
                "error fetching internal key: internal key not found",
            )),
        }
    }

    async fn query_script_key(
        &self,
        req: Request<awpb::QueryScriptKeyRequest>,
    ) -> Result<Response<awpb::QueryScriptKeyResponse>, Status> {
        self.check(req.metadata(), "QueryScriptKey")?;
        let k = req.into_inner().tweaked_script_key;
        if k.len() != 32 && k.len() != 33 {
            return Err(Status::unknown("invalid script key length"));
        }
        let w = self.wallet.lock().unwrap();
        let from_outputs = w.outputs.iter().find_map(|o| {
            let p = last_proof(&o.file);
            let l = o.script_key_loc.as_ref()?;
            same_key(&k, &p.asset.script_key.0).then(|| tpb::ScriptKey {
                pub_key: p.asset.script_key.0[1..].to_vec(),
                key_desc: Some(key_desc(l)),
                tap_tweak: o.tweak.clone(),
                r#type: o.script_key_type,
            })
        });
        let found = from_outputs.or_else(|| {
            w.addrs.iter().find_map(|a| {
                let l = a.script_key_loc.as_ref()?;
                same_key(&k, &a.script_key).then(|| tpb::ScriptKey {
                    pub_key: a.script_key[1..].to_vec(),
                    key_desc: Some(key_desc(l)),
                    tap_tweak: vec![],
                    r#type: 1,
                })
            })
        });
        match found {
            Some(sk) => Ok(Response::new(awpb::QueryScriptKeyResponse {
                script_key: Some(sk),
            })),
            None => Err(Status::unknown(
                "error fetching script key: script key not found",
            )),
        }
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
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
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
