//! The `tapvault.v1.Backup` service: what tapd never pushes (wallet backup
//! blobs, addresses, tapscript trees, whole proof files) and the lookups
//! recovery needs. Every push is validated completely before anything is
//! written, and written in one transaction.

use crate::checks::{
    address_row, check_tapscript, decode_leaves, file_leaves, network_name, prepare_tapbak,
    VerifyLevel,
};
use crate::errors::ApiError;
use crate::proto::tapvault_v1::{self as pb, backup_server::Backup};
use crate::universe_svc::{page, store_err};
use bitcoin::OutPoint;
use std::collections::HashSet;
use std::sync::Arc;
use tapvault_codec::backup::{is_tapbak, WalletBackup};
use tapvault_codec::log::{address_content_hash, Kind};
use tapvault_codec::primitives::sha256;
use tapvault_codec::{AddressNetwork, File};
use tapvault_store::backup as sb;
use tapvault_store::inventory as si;
use tapvault_store::universe::{InsertOutcome, InsertResult};
use tapvault_store::{Db, TenantId};
use tonic::{Request, Response, Status};

/// The largest backup blob accepted (tapd caps one asset entry at 100 MB).
pub const MAX_BACKUP_BYTES: usize = 190 * 1024 * 1024;
pub const MAX_ADDRESSES_PER_CALL: usize = 10_000;
pub const MAX_TAPSCRIPT_LEAVES: usize = 10_000;
/// Most outputs and keys in one PushInventory chunk.
pub const MAX_INVENTORY_PER_CALL: usize = 16_384;

pub struct BackupService {
    pub db: Db,
    pub verify: VerifyLevel,
    pub metrics: Arc<crate::Metrics>,
}

fn tenant<T>(req: &Request<T>) -> Result<TenantId, Status> {
    req.extensions()
        .get::<TenantId>()
        .copied()
        .ok_or_else(|| ApiError::unauthenticated("missing credentials").into())
}

/// A key given as 33-byte compressed or 32-byte x-only: its x coordinate.
pub fn key_x(b: &[u8], what: &str) -> Result<[u8; 32], Status> {
    match b.len() {
        33 => {
            tapvault_codec::PubKey::from_slice(b)
                .map_err(|e| ApiError::invalid(format!("{what}: {e}")))?;
            let mut x = [0u8; 32];
            x.copy_from_slice(&b[1..]);
            Ok(x)
        }
        32 => Ok(b.try_into().unwrap_or([0; 32])),
        n => Err(ApiError::invalid(format!(
            "{what} must be 33 (compressed) or 32 (x-only) bytes, got {n}"
        ))
        .into()),
    }
}

pub fn outpoint_of(o: Option<&pb::OutPoint>, what: &str) -> Result<OutPoint, Status> {
    let o = o.ok_or_else(|| ApiError::invalid(format!("{what} is required")))?;
    let txid = o
        .txid
        .parse::<bitcoin::Txid>()
        .map_err(|e| ApiError::invalid(format!("{what}.txid {:?}: {e}", o.txid)))?;
    Ok(OutPoint { txid, vout: o.vout })
}

pub fn outpoint_pb(o: &OutPoint) -> pb::OutPoint {
    pb::OutPoint {
        txid: o.txid.to_string(),
        vout: o.vout,
    }
}

fn counts(results: &[InsertResult]) -> (u32, u32) {
    let new = results
        .iter()
        .filter(|r| r.outcome != InsertOutcome::Duplicate)
        .count() as u32;
    (new, results.len() as u32 - new)
}

fn locator_of(l: Option<&pb::KeyLocator>, what: &str) -> Result<Option<si::Locator>, Status> {
    let Some(l) = l else { return Ok(None) };
    key_x(&l.raw_key, what)?;
    let raw_key: [u8; 33] = l
        .raw_key
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::invalid(format!("{what} must be a 33-byte compressed key")))?;
    if l.family < 0 || l.index < 0 {
        return Err(ApiError::invalid(format!("{what}: family and index must be >= 0")).into());
    }
    Ok(Some(si::Locator {
        raw_key,
        family: l.family,
        index: l.index,
    }))
}

fn locator_pb(l: &si::Locator) -> pb::KeyLocator {
    pb::KeyLocator {
        raw_key: l.raw_key.to_vec(),
        family: l.family,
        index: l.index,
    }
}

/// Checks one reported output completely.
pub fn node_output(o: &pb::NodeOutput, i: usize) -> Result<si::NodeOutput, Status> {
    let what = |f: &str| format!("outputs[{i}].{f}");
    let anchor = outpoint_of(o.anchor.as_ref(), &what("anchor"))?;
    key_x(&o.script_key, &what("script_key"))?;
    let script_key: [u8; 33] = o
        .script_key
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::invalid(format!("{} must be 33 bytes", what("script_key"))))?;
    let asset_id: [u8; 32] = o
        .asset_id
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::invalid(format!("{} must be 32 bytes", what("asset_id"))))?;
    if !(0..=6).contains(&o.script_key_type) {
        return Err(ApiError::invalid(format!(
            "{} {} is not a tapd script key type (0-6)",
            what("script_key_type"),
            o.script_key_type
        ))
        .into());
    }
    if o.script_key_tweak.len() > 32 {
        return Err(
            ApiError::invalid(format!("{} is over 32 bytes", what("script_key_tweak"))).into(),
        );
    }
    Ok(si::NodeOutput {
        anchor,
        script_key,
        asset_id,
        amount: o.amount,
        script_key_type: o.script_key_type as i16,
        leased: o.leased,
        anchor_height: o.anchor_height,
        script_key_internal: locator_of(
            o.script_key_internal.as_ref(),
            &what("script_key_internal"),
        )?,
        script_key_tweak: (!o.script_key_tweak.is_empty()).then(|| o.script_key_tweak.clone()),
        anchor_internal_key: locator_of(
            o.anchor_internal_key.as_ref(),
            &what("anchor_internal_key"),
        )?,
    })
}

pub fn node_output_pb(o: &si::NodeOutput) -> pb::NodeOutput {
    pb::NodeOutput {
        anchor: Some(outpoint_pb(&o.anchor)),
        script_key: o.script_key.to_vec(),
        asset_id: o.asset_id.to_vec(),
        amount: o.amount,
        script_key_type: o.script_key_type as i32,
        leased: o.leased,
        anchor_height: o.anchor_height,
        script_key_internal: o.script_key_internal.as_ref().map(locator_pb),
        script_key_tweak: o.script_key_tweak.clone().unwrap_or_default(),
        anchor_internal_key: o.anchor_internal_key.as_ref().map(locator_pb),
    }
}

fn key_row(k: &pb::KeyInfo, i: usize) -> Result<si::KeyRow, Status> {
    let what = |f: &str| format!("keys[{i}].{f}");
    key_x(&k.key, &what("key"))?;
    let kind = si::KeyKind::parse(&k.kind).ok_or_else(|| {
        ApiError::invalid(format!(
            "{} must be \"script\" or \"internal\", got {:?}",
            what("kind"),
            k.kind
        ))
    })?;
    let locator = locator_of(k.locator.as_ref(), &what("locator"))?
        .ok_or_else(|| ApiError::invalid(format!("{} is required", what("locator"))))?;
    if k.tweak.len() > 32 {
        return Err(ApiError::invalid(format!("{} is over 32 bytes", what("tweak"))).into());
    }
    Ok(si::KeyRow {
        kind,
        key: k.key.clone(),
        locator,
        tweak: (!k.tweak.is_empty()).then(|| k.tweak.clone()),
        script_key_type: k.script_key_type.clamp(0, 6) as i16,
    })
}

fn key_pb(k: &si::KeyRow) -> pb::KeyInfo {
    pb::KeyInfo {
        key: k.key.clone(),
        kind: k.kind.as_str().to_string(),
        locator: Some(locator_pb(&k.locator)),
        tweak: k.tweak.clone().unwrap_or_default(),
        script_key_type: k.script_key_type as i32,
    }
}

pub fn backup_info_pb(b: &sb::BackupInfo) -> pb::WalletBackupInfo {
    pb::WalletBackupInfo {
        id: b.id,
        kind: b.kind.clone(),
        version: b.version.unwrap_or(0),
        sha256: b.sha256.to_vec(),
        size: b.size,
        num_assets: b.asset_count,
        source: b.source.clone(),
        received_at: b.received_at.secs(),
    }
}

#[tonic::async_trait]
impl Backup for BackupService {
    async fn push_wallet_backup(
        &self,
        req: Request<pb::PushWalletBackupRequest>,
    ) -> Result<Response<pb::PushWalletBackupResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        if r.backup.is_empty() {
            return Err(ApiError::invalid("backup is empty").into());
        }
        if r.backup.len() > MAX_BACKUP_BYTES {
            return Err(crate::errors::ApiError::too_large(format!(
                "backup is {} bytes, over the {MAX_BACKUP_BYTES} byte cap",
                r.backup.len()
            ))
            .into());
        }
        if r.source.len() > 256 {
            return Err(ApiError::invalid("source is over 256 bytes").into());
        }
        let (version, num_assets, mut nb) = if r.opaque {
            let nb = sb::NewBackup {
                kind: "opaque",
                version: None,
                sha256: sha256(&[&r.backup]),
                raw: r.backup,
                source: String::new(),
                received_at: None,
                entries: Vec::new(),
                leaves: Vec::new(),
            };
            (0, 0, nb)
        } else {
            if !is_tapbak(&r.backup) {
                return Err(ApiError::invalid(
                    "not a TAPBAK wallet backup (bad magic); set opaque = true to store an encrypted backup file as-is",
                ).into());
            }
            // Decoding and verifying a large blob is CPU work: keep it off
            // the async workers.
            let level = self.verify;
            let (wb, nb) = tokio::task::spawn_blocking(move || prepare_tapbak(&r.backup, level))
                .await
                .map_err(|e| crate::errors::internal("verification task", e))??;
            (wb.version, wb.assets.len() as u32, nb)
        };
        nb.source = r.source;
        let stored = sb::insert_backup(&self.db, t, &nb)
            .await
            .map_err(store_err)?;
        let (num_proofs_new, num_proofs_known) = counts(&stored.leaves);
        self.metrics.record_backup(stored.duplicate);
        let mut items = vec![(Kind::WalletBackup, nb.sha256)];
        items.extend(nb.leaves.iter().map(|l| (Kind::Proof, sha256(&[&l.raw]))));
        let receipts = crate::log_svc::receipts_for(&self.db, t, &items).await?;
        Ok(Response::new(pb::PushWalletBackupResponse {
            backup_id: stored.id,
            duplicate: stored.duplicate,
            version,
            num_assets,
            num_proofs_new,
            num_proofs_known,
            sha256: nb.sha256.to_vec(),
            receipts,
        }))
    }

    async fn push_addresses(
        &self,
        req: Request<pb::PushAddressesRequest>,
    ) -> Result<Response<pb::PushAddressesResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        if r.addresses.is_empty() {
            return Err(ApiError::invalid("no addresses given").into());
        }
        if r.addresses.len() > MAX_ADDRESSES_PER_CALL {
            return Err(crate::errors::ApiError::too_large(format!(
                "{} addresses in one call, over the limit of {MAX_ADDRESSES_PER_CALL}",
                r.addresses.len()
            ))
            .into());
        }
        let want = match r.network.as_str() {
            "" => None,
            "mainnet" => Some(AddressNetwork::Mainnet),
            "testnet" | "signet" | "testnet4" => Some(AddressNetwork::Testnet),
            "regtest" => Some(AddressNetwork::Regtest),
            "simnet" => Some(AddressNetwork::Simnet),
            o => {
                return Err(ApiError::invalid(format!(
                    "unknown network {o:?} (mainnet, testnet, regtest, simnet)"
                ))
                .into())
            }
        };
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let held = sb::address_network(&mut conn, t).await.map_err(store_err)?;
        drop(conn);
        let mut rows = Vec::with_capacity(r.addresses.len());
        for (i, s) in r.addresses.iter().enumerate() {
            let (network, row) =
                address_row(s).map_err(|e| ApiError::invalid(format!("address {i}: {e}")))?;
            let net = network_name(network);
            if let Some(w) = want {
                if network != w {
                    return Err(ApiError::invalid(format!(
                        "address {i} is a {net} address, not {}",
                        network_name(w)
                    ))
                    .into());
                }
            }
            if let Some(h) = &held {
                if h != net {
                    return Err(ApiError::invalid(format!(
                        "address {i} is a {net} address but this tenant's addresses are {h}"
                    ))
                    .into());
                }
            }
            if let Some(first) = rows.first().map(|r: &sb::AddressRow| r.network.clone()) {
                if first != net {
                    return Err(ApiError::invalid(format!(
                        "address {i} is a {net} address, address 0 is {first}: one network per call"
                    ))
                    .into());
                }
            }
            rows.push(row);
        }
        let news = sb::insert_addresses(&self.db, t, &rows)
            .await
            .map_err(store_err)?;
        let num_new = news.iter().filter(|n| **n).count() as u32;
        let items: Vec<_> = rows
            .iter()
            .map(|a| (Kind::Address, address_content_hash(&a.encoded)))
            .collect();
        let receipts = crate::log_svc::receipts_for(&self.db, t, &items).await?;
        Ok(Response::new(pb::PushAddressesResponse {
            num_new,
            num_known: news.len() as u32 - num_new,
            receipts,
        }))
    }

    async fn push_tapscript(
        &self,
        req: Request<pb::PushTapscriptRequest>,
    ) -> Result<Response<pb::PushTapscriptResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let kx = key_x(&r.key, "key")?;
        if r.leaves.is_empty() {
            return Err(ApiError::invalid("a tapscript tree needs at least one leaf").into());
        }
        if r.leaves.len() > MAX_TAPSCRIPT_LEAVES {
            return Err(crate::errors::ApiError::too_large(format!(
                "{} leaves, over the limit of {MAX_TAPSCRIPT_LEAVES}",
                r.leaves.len()
            ))
            .into());
        }
        if r.label.len() > 256 {
            return Err(ApiError::invalid("label is over 256 bytes").into());
        }
        let mut versioned = Vec::with_capacity(r.leaves.len());
        for (i, l) in r.leaves.iter().enumerate() {
            let v = u8::try_from(l.leaf_version).map_err(|_| {
                ApiError::invalid(format!(
                    "leaf {i}: leaf version {:#x} is over 0xff",
                    l.leaf_version
                ))
            })?;
            versioned.push((v, l.script.as_slice()));
        }
        let enc = tapvault_codec::log::tapscript_leaves(versioned);
        let root_hash: [u8; 32] = r.root_hash.as_slice().try_into().map_err(|_| {
            ApiError::invalid(format!(
                "root_hash must be 32 bytes, got {}",
                r.root_hash.len()
            ))
        })?;
        let raw_key = if r.raw_key.is_empty() {
            None
        } else {
            Some(
                tapvault_codec::PubKey::from_slice(&r.raw_key)
                    .ok()
                    .filter(|k| !k.is_zero())
                    .ok_or_else(|| ApiError::invalid("raw_key is not a valid 33-byte key"))?
                    .0,
            )
        };
        let row = sb::TapscriptRow {
            key_x: kx,
            raw_key,
            root_hash,
            leaves: enc,
            label: r.label,
            received_at: None,
        };
        check_tapscript(&row)?;
        let root = row.root_hash;
        let new = sb::insert_tapscript(&self.db, t, &row)
            .await
            .map_err(store_err)?;
        let receipt =
            crate::log_svc::receipts_for(&self.db, t, &[(Kind::Tapscript, row.content_hash())])
                .await?
                .pop();
        Ok(Response::new(pb::PushTapscriptResponse {
            new,
            root_hash: root.to_vec(),
            receipt,
        }))
    }

    async fn push_proof_file(
        &self,
        req: Request<pb::PushProofFileRequest>,
    ) -> Result<Response<pb::PushProofFileResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        if r.proof_file.is_empty() {
            return Err(ApiError::invalid("proof_file is empty").into());
        }
        let level = self.verify;
        let (_, _, leaves) =
            tokio::task::spawn_blocking(move || file_leaves(&r.proof_file, level, "proof_file"))
                .await
                .map_err(|e| crate::errors::internal("verification task", e))??;
        let results = tapvault_store::universe::insert_leaves(&self.db, t, &leaves)
            .await
            .map_err(store_err)?;
        let (num_new, num_known) = counts(&results);
        let items: Vec<_> = leaves
            .iter()
            .map(|l| (Kind::Proof, sha256(&[&l.raw])))
            .collect();
        let receipts = crate::log_svc::receipts_for(&self.db, t, &items).await?;
        Ok(Response::new(pb::PushProofFileResponse {
            num_proofs: leaves.len() as u32,
            num_new,
            num_known,
            complete: results.last().map(|r| r.complete).unwrap_or(false),
            receipts,
        }))
    }

    async fn list_leaves(
        &self,
        req: Request<pb::ListLeavesRequest>,
    ) -> Result<Response<pb::ListLeavesResponse>, Status> {
        use pb::list_leaves_request::Selector;
        let t = tenant(&req)?;
        let r = req.into_inner();
        let f = match &r.selector {
            Some(Selector::ScriptKey(k)) => sb::LeafFilter::ScriptKey(key_x(k, "script_key")?),
            Some(Selector::Outpoint(o)) => {
                sb::LeafFilter::Outpoint(outpoint_of(Some(o), "outpoint")?)
            }
            Some(Selector::Txid(s)) => sb::LeafFilter::Txid(
                s.parse()
                    .map_err(|e| ApiError::invalid(format!("txid {s:?}: {e}")))?,
            ),
            Some(Selector::AssetId(id)) => {
                sb::LeafFilter::AssetId(id.as_slice().try_into().map_err(|_| {
                    ApiError::invalid(format!("asset_id must be 32 bytes, got {}", id.len()))
                })?)
            }
            Some(Selector::GroupKey(k)) => sb::LeafFilter::GroupKey(key_x(k, "group_key")?),
            Some(Selector::All(true)) => sb::LeafFilter::All,
            Some(Selector::All(false)) | None => {
                return Err(ApiError::invalid(
                    "choose leaves by script_key, outpoint, txid, asset_id, group_key or all",
                )
                .into())
            }
        };
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let mut rows = sb::list_leaves(&mut conn, t, &f, r.include_proofs, offset, limit + 1)
            .await
            .map_err(store_err)?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let leaves = rows
            .into_iter()
            .map(|l| pb::Leaf {
                proof_type: l.proof_type.as_str().to_string(),
                universe_id: l.universe_id.to_vec(),
                leaf_key: l.leaf_key.to_vec(),
                version: l.version,
                is_newest_version: l.is_head,
                in_universe: l.is_head && l.complete,
                asset_id: l.asset_id.to_vec(),
                group_key: l.group_key.map(|g| g.to_vec()).unwrap_or_default(),
                anchor: Some(outpoint_pb(&l.anchor)),
                script_key: l.script_key.to_vec(),
                amount: l.amount,
                block_height: l.block_height,
                asset_name: l.asset_name,
                inserted_at: l.inserted_at.secs(),
                proof: l.raw.unwrap_or_default(),
                leaf_node_hash: l.leaf_node_hash.to_vec(),
            })
            .collect();
        Ok(Response::new(pb::ListLeavesResponse { leaves, has_more }))
    }

    async fn get_proof_file(
        &self,
        req: Request<pb::GetProofFileRequest>,
    ) -> Result<Response<pb::GetProofFileResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let op = outpoint_of(r.outpoint.as_ref(), "outpoint")?;
        let kx = key_x(&r.script_key, "script_key")?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        // The chain starts from the stored proof's own (compressed) key.
        let Some(tip) = sb::proof_at(&mut conn, t, &op, &kx)
            .await
            .map_err(store_err)?
        else {
            return Err(ApiError::not_found(format!(
                "no proof stored for output {op} with script key {}",
                hex::encode(kx)
            ))
            .into());
        };
        let sk = tapvault_codec::Proof::decode(&tip)
            .map_err(|e| crate::errors::internal("stored proof does not decode", e))?
            .asset
            .script_key
            .0;
        let chain = sb::proof_chain(&mut conn, t, op, sk)
            .await
            .map_err(store_err)?;
        let leaf_key = tapvault_codec::universe_leaf_key(&op, &tapvault_codec::PubKey(sk));
        let spent_by = sb::spenders_of(&mut conn, t, &leaf_key)
            .await
            .map_err(store_err)?
            .iter()
            .map(|(o, k)| pb::Output {
                outpoint: Some(outpoint_pb(o)),
                script_key: k.to_vec(),
            })
            .collect();
        if let Some((mop, msk, by)) = chain.missing {
            return Ok(Response::new(pb::GetProofFileResponse {
                proof_file: Vec::new(),
                complete: false,
                num_proofs: chain.proofs.len() as u32,
                missing: vec![pb::MissingProof {
                    outpoint: Some(outpoint_pb(&mop)),
                    script_key: msk.to_vec(),
                    needed_by: by.map(|t| t.to_string()).unwrap_or_default(),
                }],
                spent_by,
            }));
        }
        let mut f = File::new();
        for p in chain.proofs {
            f.append_raw(p);
        }
        Ok(Response::new(pb::GetProofFileResponse {
            num_proofs: f.len() as u32,
            proof_file: f.encode(),
            complete: true,
            missing: Vec::new(),
            spent_by,
        }))
    }

    async fn list_wallet_backups(
        &self,
        req: Request<pb::ListWalletBackupsRequest>,
    ) -> Result<Response<pb::ListWalletBackupsResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let rows = sb::list_backups(&mut conn, t, None, offset, limit)
            .await
            .map_err(store_err)?;
        Ok(Response::new(pb::ListWalletBackupsResponse {
            backups: rows.iter().map(backup_info_pb).collect(),
        }))
    }

    async fn get_wallet_backup(
        &self,
        req: Request<pb::GetWalletBackupRequest>,
    ) -> Result<Response<pb::GetWalletBackupResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let kind = if r.opaque { "opaque" } else { "tapbak" };
        let id = (r.id != 0).then_some(r.id);
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let Some((info, raw)) = sb::get_backup(&mut conn, t, id, kind)
            .await
            .map_err(store_err)?
        else {
            return Err(ApiError::not_found(match id {
                Some(i) => format!("no wallet backup with id {i}"),
                None => format!("no {kind} wallet backup stored yet"),
            })
            .into());
        };
        Ok(Response::new(pb::GetWalletBackupResponse {
            info: Some(backup_info_pb(&info)),
            backup: raw,
        }))
    }

    async fn list_addresses(
        &self,
        req: Request<pb::ListAddressesRequest>,
    ) -> Result<Response<pb::ListAddressesResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let k = if r.key.is_empty() {
            None
        } else {
            Some(key_x(&r.key, "key")?)
        };
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let mut rows = sb::list_addresses(&mut conn, t, k.as_ref(), offset, limit + 1)
            .await
            .map_err(store_err)?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(Response::new(pb::ListAddressesResponse {
            addresses: rows
                .into_iter()
                .map(|a| pb::AddressRecord {
                    encoded: a.encoded,
                    network: a.network,
                    version: a.version as u32,
                    asset_version: a.asset_version as u32,
                    asset_id: a.asset_id.map(|v| v.to_vec()).unwrap_or_default(),
                    group_key: a.group_key.map(|v| v.to_vec()).unwrap_or_default(),
                    script_key: a.script_key.to_vec(),
                    internal_key: a.internal_key.to_vec(),
                    tapscript_sibling: a.tapscript_sibling.unwrap_or_default(),
                    amount: a.amount,
                    proof_courier_addr: a.proof_courier_addr,
                })
                .collect(),
            has_more,
        }))
    }

    async fn list_tapscripts(
        &self,
        req: Request<pb::ListTapscriptsRequest>,
    ) -> Result<Response<pb::ListTapscriptsResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let k = if r.key.is_empty() {
            None
        } else {
            Some(key_x(&r.key, "key")?)
        };
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let mut rows = sb::list_tapscripts(&mut conn, t, k.as_ref(), offset, limit + 1)
            .await
            .map_err(store_err)?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(pb::TapscriptRecord {
                key_x: row.key_x.to_vec(),
                raw_key: row.raw_key.map(|k| k.to_vec()).unwrap_or_default(),
                root_hash: row.root_hash.to_vec(),
                leaves: decode_leaves(&row.leaves)
                    .map_err(|e| crate::errors::internal("stored tapscript leaves", e))?,
                label: row.label,
            });
        }
        Ok(Response::new(pb::ListTapscriptsResponse {
            tapscripts: out,
            has_more,
        }))
    }

    async fn push_inventory(
        &self,
        req: Request<pb::PushInventoryRequest>,
    ) -> Result<Response<pb::PushInventoryResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        if r.run_id.is_empty() || r.run_id.len() > 64 {
            return Err(ApiError::invalid(
                "run_id must be 1-64 characters naming the collection run",
            )
            .into());
        }
        if r.outputs.len() > MAX_INVENTORY_PER_CALL || r.keys.len() > MAX_INVENTORY_PER_CALL {
            return Err(crate::errors::ApiError::too_large(format!(
                "at most {MAX_INVENTORY_PER_CALL} outputs and {MAX_INVENTORY_PER_CALL} keys per call; send the run in chunks"
            )).into());
        }
        let outputs = r
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| node_output(o, i))
            .collect::<Result<Vec<_>, _>>()?;
        let keys = r
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| key_row(k, i))
            .collect::<Result<Vec<_>, _>>()?;
        let (outputs_new, keys_new) = si::push(
            &self.db, t, &r.run_id, &r.source, &outputs, &keys, r.complete,
        )
        .await
        .map_err(store_err)?;
        Ok(Response::new(pb::PushInventoryResponse {
            outputs_new,
            keys_new,
        }))
    }

    async fn list_inventory(
        &self,
        req: Request<pb::ListInventoryRequest>,
    ) -> Result<Response<pb::ListInventoryResponse>, Status> {
        let t = tenant(&req)?;
        let r = req.into_inner();
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut outs = si::outputs(&self.db, t, r.all, offset, limit + 1)
            .await
            .map_err(store_err)?;
        let mut has_more = outs.len() as i64 > limit;
        outs.truncate(limit as usize);
        let keys = if r.include_keys {
            let mut k = si::keys(&self.db, t, offset, limit + 1)
                .await
                .map_err(store_err)?;
            has_more |= k.len() as i64 > limit;
            k.truncate(limit as usize);
            k.iter().map(key_pb).collect()
        } else {
            Vec::new()
        };
        let reported_at = si::newest_run(&self.db, t)
            .await
            .map_err(store_err)?
            .map(|(_, at)| at.secs())
            .unwrap_or(0);
        Ok(Response::new(pb::ListInventoryResponse {
            outputs: outs
                .iter()
                .map(|o| pb::InventoryOutput {
                    output: Some(node_output_pb(&o.output)),
                    first_seen_at: o.first_seen_at.secs(),
                    last_seen_at: o.last_seen_at.secs(),
                    current: o.current,
                })
                .collect(),
            keys,
            has_more,
            reported_at,
        }))
    }

    async fn status(
        &self,
        req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let t = tenant(&req)?;
        let coverage = !req.get_ref().skip_coverage;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let name = tapvault_store::tenants::tenant_name(&self.db, t)
            .await
            .map_err(store_err)?
            .unwrap_or_default();
        let h = sb::holdings(&mut conn, t).await.map_err(store_err)?;
        let newest = sb::get_backup(&mut conn, t, None, "tapbak")
            .await
            .map_err(store_err)?;
        let opaque = sb::get_backup(&mut conn, t, None, "opaque")
            .await
            .map_err(store_err)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (mut covered, mut uncovered) = (0u32, Vec::new());
        let mut in_backup: HashSet<(OutPoint, [u8; 32])> = HashSet::new();
        if let Some((_, raw)) = newest.as_ref().filter(|_| coverage) {
            let wb = WalletBackup::decode(raw)
                .map_err(|e| crate::errors::internal("stored backup does not decode", e))?;
            for a in &wb.assets {
                in_backup.insert((a.anchor_outpoint, a.asset.script_key.x_only()));
                let chain = sb::proof_chain(&mut conn, t, a.anchor_outpoint, a.asset.script_key.0)
                    .await
                    .map_err(store_err)?;
                if chain.missing.is_none() {
                    covered += 1;
                } else {
                    uncovered.push(outpoint_pb(&a.anchor_outpoint));
                }
            }
        }
        // The agent's newest inventory, against the newest backup.
        drop(conn);
        let run = si::newest_run(&self.db, t).await.map_err(store_err)?;
        let (mut inv_n, mut inv_cov, mut inv_uncov, mut collector_only) =
            (0u32, 0u32, Vec::new(), Vec::new());
        if run.is_some() && coverage {
            let mut conn = self
                .db
                .pool
                .acquire()
                .await
                .map_err(crate::errors::db_err)?;
            for offset in (0..).step_by(16384) {
                let page = si::outputs(&self.db, t, false, offset, 16384)
                    .await
                    .map_err(store_err)?;
                let n = page.len();
                for o in page {
                    let o = o.output;
                    inv_n += 1;
                    let chain = sb::proof_chain(&mut conn, t, o.anchor, o.script_key)
                        .await
                        .map_err(store_err)?;
                    let complete = chain.missing.is_none();
                    if complete {
                        inv_cov += 1;
                    } else {
                        inv_uncov.push(outpoint_pb(&o.anchor));
                    }
                    let mut x = [0u8; 32];
                    x.copy_from_slice(&o.script_key[1..]);
                    if !in_backup.contains(&(o.anchor, x)) {
                        let reason = if newest.is_none() {
                            "no wallet backup"
                        } else if o.leased {
                            "leased"
                        } else if o.anchor_height == 0 {
                            "unconfirmed"
                        } else {
                            "not in the newest wallet backup"
                        };
                        collector_only.push(pb::CollectorOnlyOutput {
                            anchor: Some(outpoint_pb(&o.anchor)),
                            script_key: o.script_key.to_vec(),
                            reason: reason.into(),
                            chain_complete: complete,
                        });
                    }
                }
                if n < 16384 {
                    break;
                }
            }
        }
        Ok(Response::new(pb::StatusResponse {
            inventory_reported_at: run.map(|(_, at)| at.secs()).unwrap_or(0),
            inventory_outputs: inv_n,
            inventory_covered: inv_cov,
            inventory_uncovered: inv_uncov,
            collector_only,
            tenant: name,
            num_proofs: h.proofs as u64,
            num_leaves: h.leaves as u64,
            num_leaves_in_universe: h.complete_leaves as u64,
            num_wallet_backups: h.backups as u64,
            num_opaque_backups: h.opaque_backups as u64,
            num_addresses: h.addresses as u64,
            num_tapscripts: h.tapscripts as u64,
            last_push_at: h.last_push_at.map(|t| t.secs()).unwrap_or(0),
            newest_backup_age_seconds: newest
                .as_ref()
                .map(|(i, _)| (now - i.received_at.secs()).max(0))
                .unwrap_or(0),
            newest_backup: newest.as_ref().map(|(i, _)| backup_info_pb(i)),
            outputs_covered: covered,
            outputs_not_covered: uncovered.len() as u32,
            uncovered,
            newest_opaque_backup: opaque.as_ref().map(|(i, _)| backup_info_pb(i)),
        }))
    }
}
