//! The `universerpc.Universe` service, against the store.

use crate::checks::{check_request, prepare, VerifyLevel};
use crate::errors::ApiError;
use crate::proto::universerpc::{self as pb, universe_server::Universe};
use crate::wire;
use crate::wire::{asset_key_pb, id_pb, parse_id, parse_leaf_key, proof_type_pb, UniverseId};
use std::sync::Arc;
use tapvault_codec::universe::{multiverse_leaf, universe_namespace};
use tapvault_codec::{Proof, ProofType};
use tapvault_mssmt::{MemTree, Node};
use tapvault_store::universe as su;
use tapvault_store::{Db, TenantId, Timestamp};
use tonic::{Request, Response, Status};

/// Page size tapd's sync client uses, and the largest page we serve.
pub const DEFAULT_PAGE: i64 = 512;
pub const MAX_PAGE: i64 = 16384;

pub struct UniverseService {
    pub db: Db,
    pub ingestor: crate::ingestor::Ingestor,
    pub default_tenant: Option<TenantId>,
    pub runtime_id: i64,
    pub verify: VerifyLevel,
    pub metrics: Arc<crate::Metrics>,
}

pub(crate) use crate::errors::store_err;

fn node_pb(n: &Node) -> pb::MerkleSumNode {
    pb::MerkleSumNode {
        root_hash: n.hash.to_vec(),
        root_sum: n.sum as i64,
    }
}

pub(crate) fn page(offset: i32, limit: i32) -> Result<(i64, i64), Status> {
    if offset < 0 {
        return Err(ApiError::invalid(format!("offset must be >= 0, got {offset}")).into());
    }
    let limit = match limit as i64 {
        0 => DEFAULT_PAGE,
        l if l < 0 => return Err(ApiError::invalid(format!("limit must be >= 0, got {l}")).into()),
        l if l > MAX_PAGE => {
            return Err(ApiError::invalid(format!(
                "limit {l} is over the maximum page size {MAX_PAGE}"
            ))
            .into())
        }
        l => l,
    };
    Ok((offset as i64, limit))
}

/// Whether a request's `direction` asks for descending order. 0 means
/// ascending and 1 descending, whatever the client's proto calls them:
/// tapd v0.7 declared ASC = 0, DESC = 1; v0.8 renamed the enum (DESC = 0,
/// ASC = 1) but its syncer still sends its internal order value (ascending
/// = 0) unconverted, and every syncer of both versions asks for ascending
/// pages. Only a v0.8 caller that names SORT_DIRECTION_ASC (1) explicitly
/// gets descending order here (tapd's own v0.8 server reads 0 as
/// descending, so it pages its own syncer backwards).
pub(crate) fn descending(direction: i32) -> bool {
    direction == 1
}

/// A stored universe on the wire; one without any id is corrupt data, an
/// internal error (never an invented all-zero id).
fn universe_root_pb(u: &su::UniverseInfo) -> Result<pb::UniverseRoot, Status> {
    let id = id_pb(u.asset_id, u.group_key, u.proof_type).ok_or_else(|| {
        crate::errors::internal(
            "universe listing",
            format!(
                "universe {} has neither an asset id nor a group key",
                hex::encode(u.universe_id)
            ),
        )
    })?;
    Ok(pb::UniverseRoot {
        id: Some(id),
        mssmt_root: Some(node_pb(&u.root)),
        asset_name: u.asset_name.clone(),
        amounts_by_asset_id: Default::default(),
    })
}

fn not_found_root(id: &UniverseId) -> ApiError {
    ApiError::not_found(format!(
        "no universe root found for {} universe {}",
        id.proof_type.map(|t| t.as_str()).unwrap_or("any"),
        hex::encode(id.id_bytes())
    ))
}

impl UniverseService {
    /// `full-vm`: a transfer's witnesses are checked against its input's
    /// proof when the tenant already holds it (the courier pushes genesis
    /// first); otherwise the check stays pending and the proof is kept.
    async fn vm_with_stored_input(&self, tenant: TenantId, p: &Proof) -> Result<(), Status> {
        if self.verify != VerifyLevel::FullVm || p.asset.is_genesis() {
            return Ok(());
        }
        let Some(pid) = p.asset.primary_prev_id() else {
            return Ok(());
        };
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let raw = tapvault_store::backup::proof_at(
            &mut conn,
            tenant,
            &pid.out_point,
            &pid.script_key.x_only(),
        )
        .await
        .map_err(store_err)?;
        drop(conn);
        let Some(raw) = raw else {
            return Ok(());
        };
        let prev = Proof::decode(&raw)
            .map_err(|e| crate::errors::internal("stored input proof does not decode", e))?;
        let p = p.clone();
        let r =
            tokio::task::spawn_blocking(move || tapvault_verify::verify_witness(&p, Some(&prev)))
                .await
                .map_err(|e| crate::errors::internal("verifier task", e))?;
        r.map(|_| ())
            .map_err(|e| crate::checks::verification_failed(e).into())
    }

    fn tenant<T>(&self, req: &Request<T>) -> Result<TenantId, Status> {
        if let Some(t) = req.extensions().get::<TenantId>() {
            return Ok(*t);
        }
        self.default_tenant.ok_or_else(|| {
            ApiError::unauthenticated("missing credentials: send `authorization: Bearer <token>`")
                .into()
        })
    }

    /// Builds the full proof answer from one consistent snapshot (one
    /// statement; the proofs' nodes come from the cache).
    async fn proof_answer(
        &self,
        tenant: TenantId,
        req_key: pb::UniverseKey,
        uid: [u8; 32],
        ty: ProofType,
        leaf_key: [u8; 32],
        allow_incomplete: bool,
    ) -> Result<Option<pb::AssetProofResponse>, Status> {
        let Some((leaf, proofs)) = su::leaf_answer(&self.db, tenant, &uid, ty, &leaf_key)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        // Leaves whose ancestry is not stored are kept, but not served as
        // universe leaves: a syncing tapd could not verify them.
        if !leaf.complete && !allow_incomplete {
            return Ok(None);
        }
        Ok(Some(answer_pb(
            req_key,
            ty,
            leaf.raw,
            leaf.asset_name,
            &proofs,
        )))
    }
}

/// The answer to QueryProof / InsertProof for one stored leaf.
fn answer_pb(
    mut req_key: pb::UniverseKey,
    ty: ProofType,
    raw: Vec<u8>,
    asset_name: String,
    p: &su::LeafProofs,
) -> pb::AssetProofResponse {
    let decoded = Proof::decode(&raw).ok();
    if let Some(id) = req_key.id.as_mut() {
        id.proof_type = proof_type_pb(ty);
    }
    pb::AssetProofResponse {
        universe_root: Some(pb::UniverseRoot {
            id: req_key.id.clone(),
            mssmt_root: Some(node_pb(&p.root)),
            asset_name,
            amounts_by_asset_id: Default::default(),
        }),
        req: Some(req_key),
        universe_inclusion_proof: p.proof.encode(),
        asset_leaf: Some(pb::AssetLeaf {
            asset: decoded.as_ref().map(wire::asset_pb),
            proof: raw,
        }),
        multiverse_root: Some(node_pb(&p.multiverse_root)),
        multiverse_inclusion_proof: p.multiverse_proof.encode(),
        issuance_data: if ty == ProofType::Issuance {
            decoded.as_ref().and_then(wire::issuance_data)
        } else {
            None
        },
    }
}

fn unimplemented<T>(what: &str) -> Result<Response<T>, Status> {
    Err(ApiError::unimplemented(format!(
        "{what} is not offered by tapvault, a passive private backup universe"
    ))
    .into())
}

#[tonic::async_trait]
impl Universe for UniverseService {
    async fn multiverse_root(
        &self,
        req: Request<pb::MultiverseRootRequest>,
    ) -> Result<Response<pb::MultiverseRootResponse>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let ty = crate::wire::proof_type_of(r.proof_type)?
            .ok_or_else(|| ApiError::invalid("proof_type must be ISSUANCE or TRANSFER"))?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let root = if r.specific_ids.is_empty() {
            su::tree_root(&mut conn, t, ty.multiverse_namespace())
                .await
                .map_err(store_err)?
        } else {
            let mut m = MemTree::new();
            for id in &r.specific_ids {
                let uid = parse_id(Some(id))?.id_bytes();
                if let Some(u) = su::universe(&mut conn, t, &uid, ty)
                    .await
                    .map_err(store_err)?
                {
                    let (v, s) = multiverse_leaf(ty, &u.root);
                    m.insert(uid, &v, s)
                        .map_err(|e| crate::errors::internal("multiverse", e))?;
                }
            }
            m.root()
                .map_err(|e| crate::errors::internal("multiverse", e))?
        };
        Ok(Response::new(pb::MultiverseRootResponse {
            multiverse_root: (!root.is_empty_at(0)).then(|| node_pb(&root)),
        }))
    }

    async fn asset_roots(
        &self,
        req: Request<pb::AssetRootRequest>,
    ) -> Result<Response<pb::AssetRootResponse>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut tx = su::snapshot(&self.db).await.map_err(store_err)?;
        let mut list = su::list_universes(&mut tx, t, offset, limit + 1, descending(r.direction))
            .await
            .map_err(store_err)?;
        let has_more = list.len() as i64 > limit;
        list.truncate(limit as usize);
        let universe_roots = list
            .iter()
            .map(|u| {
                Ok((
                    universe_namespace(&u.universe_id, u.proof_type),
                    universe_root_pb(u)?,
                ))
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::AssetRootResponse {
            universe_roots,
            has_more,
        }))
    }

    async fn query_asset_roots(
        &self,
        req: Request<pb::AssetRootQuery>,
    ) -> Result<Response<pb::QueryRootResponse>, Status> {
        let t = self.tenant(&req)?;
        let id = parse_id(req.get_ref().id.as_ref())?;
        let uid = id.id_bytes();
        let mut tx = su::snapshot(&self.db).await.map_err(store_err)?;
        let iss = su::universe(&mut tx, t, &uid, ProofType::Issuance)
            .await
            .map_err(store_err)?;
        let tra = su::universe(&mut tx, t, &uid, ProofType::Transfer)
            .await
            .map_err(store_err)?;
        let wanted_missing = match id.proof_type {
            Some(ProofType::Issuance) => iss.is_none(),
            Some(ProofType::Transfer) => tra.is_none(),
            None => iss.is_none() && tra.is_none(),
        };
        if wanted_missing {
            return Err(not_found_root(&id).into());
        }
        Ok(Response::new(pb::QueryRootResponse {
            issuance_root: iss.as_ref().map(universe_root_pb).transpose()?,
            transfer_root: tra.as_ref().map(universe_root_pb).transpose()?,
        }))
    }

    async fn delete_asset_root(
        &self,
        _req: Request<pb::DeleteRootQuery>,
    ) -> Result<Response<pb::DeleteRootResponse>, Status> {
        Err(ApiError::refused(
            "tapvault is an append-only backup: universe roots and leaves are never deleted",
        )
        .into())
    }

    async fn asset_leaf_keys(
        &self,
        req: Request<pb::AssetLeafKeysRequest>,
    ) -> Result<Response<pb::AssetLeafKeyResponse>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let id = parse_id(r.id.as_ref())?;
        let ty = id.proof_type.ok_or_else(|| {
            ApiError::invalid("AssetLeafKeys: id.proof_type must be ISSUANCE or TRANSFER")
        })?;
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut tx = su::snapshot(&self.db).await.map_err(store_err)?;
        let mut leaves = su::leaves_page(
            &mut tx,
            t,
            &id.id_bytes(),
            ty,
            offset,
            limit + 1,
            descending(r.direction),
        )
        .await
        .map_err(store_err)?;
        let has_more = leaves.len() as i64 > limit;
        leaves.truncate(limit as usize);
        let keys: Vec<pb::AssetKey> = leaves
            .iter()
            .map(|l| asset_key_pb(&l.anchor, &l.script_key[1..]))
            .collect();
        let entries = leaves
            .iter()
            .zip(&keys)
            .map(|(l, k)| pb::AssetLeafEntry {
                asset_key: Some(k.clone()),
                leaf_node_hash: l.leaf_node_hash.to_vec(),
            })
            .collect();
        Ok(Response::new(pb::AssetLeafKeyResponse {
            asset_keys: keys,
            has_more,
            entries,
        }))
    }

    async fn asset_leaves(
        &self,
        req: Request<crate::compat::AssetLeavesRequest>,
    ) -> Result<Response<pb::AssetLeafResponse>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let pid = r.id().map_err(|e| ApiError::invalid(format!("id: {e}")))?;
        let id = parse_id(pid.as_ref())?;
        let types = match id.proof_type {
            Some(t) => vec![t],
            None => vec![ProofType::Issuance, ProofType::Transfer],
        };
        // tapd v0.7 pages nothing (every leaf, up to our page cap, with
        // has_more); v0.8 pages as AssetLeafKeys does.
        let (offset, limit, desc) = if r.is_v07() {
            (0, MAX_PAGE, false)
        } else {
            let (o, l) = page(r.offset, r.limit)?;
            (o, l, descending(r.direction))
        };
        let mut tx = su::snapshot(&self.db).await.map_err(store_err)?;
        let mut leaves = Vec::new();
        let mut has_more = false;
        for ty in types {
            let mut page = su::leaves_page(&mut tx, t, &id.id_bytes(), ty, offset, limit + 1, desc)
                .await
                .map_err(store_err)?;
            has_more |= page.len() as i64 > limit;
            page.truncate(limit as usize);
            leaves.extend(page.into_iter().map(|l| pb::AssetLeaf {
                asset: Proof::decode(&l.raw).ok().as_ref().map(wire::asset_pb),
                proof: l.raw,
            }));
        }
        Ok(Response::new(pb::AssetLeafResponse { leaves, has_more }))
    }

    async fn query_proof(
        &self,
        req: Request<pb::UniverseKey>,
    ) -> Result<Response<pb::AssetProofResponse>, Status> {
        let start = std::time::Instant::now();
        let t = self.tenant(&req)?;
        let key = req.into_inner();
        let id = parse_id(key.id.as_ref())?;
        let lk = parse_leaf_key(key.leaf_key.as_ref())?;
        let types = match id.proof_type {
            Some(t) => vec![t],
            None => vec![ProofType::Issuance, ProofType::Transfer],
        };
        let uid = id.id_bytes();
        for ty in types {
            if let Some(resp) = self
                .proof_answer(t, key.clone(), uid, ty, lk.key(), false)
                .await?
            {
                self.metrics.observe_query(start.elapsed());
                return Ok(Response::new(resp));
            }
        }
        Err(ApiError::not_found(format!(
            "no universe proof found for universe {} leaf {}/{}",
            hex::encode(uid),
            lk.outpoint,
            hex::encode(lk.script_key_x)
        ))
        .into())
    }

    async fn insert_proof(
        &self,
        req: Request<pb::AssetProof>,
    ) -> Result<Response<pb::AssetProofResponse>, Status> {
        let start = std::time::Instant::now();
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let key = r.key.ok_or_else(|| ApiError::invalid("key must be set"))?;
        let id = parse_id(key.id.as_ref())?;
        let lk = parse_leaf_key(key.leaf_key.as_ref())?;
        let leaf_pb = r
            .asset_leaf
            .ok_or_else(|| ApiError::invalid("asset_leaf must be set"))?;
        let level = self.verify;
        let raw = leaf_pb.proof;
        let prepared = tokio::task::spawn_blocking(move || prepare(&raw, level))
            .await
            .map_err(|e| crate::errors::internal("verifier task", e))?;
        let (rp, leaf) = match prepared {
            Ok(v) => v,
            Err(e) => {
                self.metrics.inc_rejected();
                return Err(e.into());
            }
        };
        if let Err(e) = check_request(&id, &lk, &rp, &leaf) {
            self.metrics.inc_rejected();
            return Err(e.into());
        }
        if let Err(e) = self.vm_with_stored_input(t, &rp.proof).await {
            self.metrics.inc_rejected();
            return Err(e);
        }
        let res = self
            .ingestor
            .insert(t, vec![leaf.clone()])
            .await
            .map_err(store_err)?;
        self.metrics.observe_insert(start.elapsed(), res[0].outcome);
        // Answered only after the commit above, from the proofs computed in
        // its transaction. For a leaf still waiting for its ancestors the
        // inclusion proof is the key's exclusion proof.
        if let Some(p) = &res[0].proofs {
            let ty = leaf.proof_type;
            return Ok(Response::new(answer_pb(
                key,
                ty,
                leaf.raw,
                leaf.asset_name,
                p,
            )));
        }
        // An older version pushed again: the answer is the current head.
        let answer = self
            .proof_answer(
                t,
                key,
                leaf.universe_id,
                leaf.proof_type,
                leaf.leaf_key,
                true,
            )
            .await?
            .ok_or_else(|| {
                // Stored rows are never deleted: the commit went to a
                // database the pool has since failed over from (with an
                // asynchronous standby it can be lost). The caller must
                // push again, and then it lands on the new primary.
                tracing::warn!(
                    "a proof committed on {} is not on the database after a failover",
                    self.db.targets.current()
                );
                ApiError::Unavailable(
                    "the database failed over between storing this proof and answering: push it again"
                        .into(),
                )
            })?;
        Ok(Response::new(answer))
    }

    async fn push_proof(
        &self,
        _req: Request<pb::PushProofRequest>,
    ) -> Result<Response<pb::PushProofResponse>, Status> {
        Err(ApiError::refused(
            "tapvault is a passive universe: it pushes proofs to no one (send proofs to it with InsertProof)",
        ).into())
    }

    async fn info(
        &self,
        _req: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        Ok(Response::new(pb::InfoResponse {
            runtime_id: self.runtime_id,
        }))
    }

    async fn sync_universe(
        &self,
        _r: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        unimplemented("SyncUniverse (tapvault never syncs from other universes)")
    }
    async fn list_federation_servers(
        &self,
        _r: Request<pb::ListFederationServersRequest>,
    ) -> Result<Response<pb::ListFederationServersResponse>, Status> {
        unimplemented("federation management")
    }
    async fn add_federation_server(
        &self,
        _r: Request<pb::AddFederationServerRequest>,
    ) -> Result<Response<pb::AddFederationServerResponse>, Status> {
        unimplemented("federation management")
    }
    async fn delete_federation_server(
        &self,
        _r: Request<pb::DeleteFederationServerRequest>,
    ) -> Result<Response<pb::DeleteFederationServerResponse>, Status> {
        unimplemented("federation management")
    }

    async fn universe_stats(
        &self,
        req: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, Status> {
        let t = self.tenant(&req)?;
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let s = su::stats(&mut conn, t).await.map_err(store_err)?;
        Ok(Response::new(pb::StatsResponse {
            num_total_assets: s.assets,
            num_total_groups: s.groups,
            num_total_syncs: 0,
            num_total_proofs: s.leaves,
        }))
    }

    async fn query_asset_stats(
        &self,
        req: Request<pb::AssetStatsQuery>,
    ) -> Result<Response<pb::UniverseAssetStats>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let (offset, limit) = page(r.offset, r.limit)?;
        let mut tx = su::snapshot(&self.db).await.map_err(store_err)?;
        let id_filter = (!r.asset_id_filter.is_empty()).then_some(r.asset_id_filter.as_slice());
        let mut rows = su::asset_stats(
            &mut tx,
            t,
            &r.asset_name_filter,
            id_filter,
            offset,
            limit + 1,
            descending(r.direction),
        )
        .await
        .map_err(store_err)?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let asset_stats = rows
            .into_iter()
            .map(|u| {
                // The genesis facts come from the universe's first issuance
                // proof (stored exactly as received, so it decodes).
                let p = Proof::decode(&u.first_proof)
                    .map_err(|e| crate::errors::internal("stored issuance proof", e))?;
                let asset = pb::AssetStatsAsset {
                    asset_id: p.asset.id().to_vec(),
                    genesis_point: p.asset.genesis.first_prev_out.to_string(),
                    total_supply: u.root_sum,
                    asset_name: u.asset_name.clone(),
                    asset_type: p.asset.genesis.asset_type as i32,
                    genesis_height: p.block_height as i32,
                    genesis_timestamp: p
                        .block_header
                        .parse()
                        .map(|h| i64::from(h.time))
                        .unwrap_or(0),
                    anchor_point: p.outpoint().to_string(),
                    decimal_display: 0,
                };
                Ok(pb::AssetStatsSnapshot {
                    group_key: u.group_key.clone().unwrap_or_default(),
                    group_supply: if u.group_key.is_some() { u.root_sum } else { 0 },
                    group_anchor: u.group_key.is_some().then(|| asset.clone()),
                    asset: Some(asset),
                    total_syncs: 0,
                    total_proofs: u.proofs,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(pb::UniverseAssetStats {
            asset_stats,
            has_more,
        }))
    }

    async fn query_events(
        &self,
        req: Request<pb::QueryEventsRequest>,
    ) -> Result<Response<pb::QueryEventsResponse>, Status> {
        let t = self.tenant(&req)?;
        let r = req.into_inner();
        let end = if r.end_timestamp == 0 {
            i64::from(u32::MAX)
        } else {
            r.end_timestamp
        };
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::errors::db_err)?;
        let time = |what: &str, s: i64| {
            Timestamp::checked_from_secs(s).ok_or_else(|| {
                Status::from(ApiError::invalid(format!(
                    "{what} {s} is not a time between the years 1 and 9999 (unix seconds)"
                )))
            })
        };
        let (start, end) = (
            time("start_timestamp", r.start_timestamp)?,
            time("end_timestamp", end)?,
        );
        let rows = su::events_by_day(&mut conn, t, start, end)
            .await
            .map_err(store_err)?;
        Ok(Response::new(pb::QueryEventsResponse {
            events: rows
                .into_iter()
                .map(|(date, n)| pb::GroupedUniverseEvents {
                    date,
                    sync_events: 0,
                    new_proof_events: n as u64,
                })
                .collect(),
        }))
    }

    async fn set_federation_sync_config(
        &self,
        _r: Request<pb::SetFederationSyncConfigRequest>,
    ) -> Result<Response<pb::SetFederationSyncConfigResponse>, Status> {
        unimplemented("federation sync configuration")
    }
    async fn query_federation_sync_config(
        &self,
        _r: Request<pb::QueryFederationSyncConfigRequest>,
    ) -> Result<Response<pb::QueryFederationSyncConfigResponse>, Status> {
        unimplemented("federation sync configuration")
    }
    async fn ignore_asset_out_point(
        &self,
        _r: Request<pb::IgnoreAssetOutPointRequest>,
    ) -> Result<Response<pb::IgnoreAssetOutPointResponse>, Status> {
        unimplemented("supply commitments")
    }
    async fn update_supply_commit(
        &self,
        _r: Request<pb::UpdateSupplyCommitRequest>,
    ) -> Result<Response<pb::UpdateSupplyCommitResponse>, Status> {
        unimplemented("supply commitments")
    }
    async fn fetch_supply_commit(
        &self,
        _r: Request<pb::FetchSupplyCommitRequest>,
    ) -> Result<Response<pb::FetchSupplyCommitResponse>, Status> {
        unimplemented("supply commitments")
    }
    async fn fetch_supply_leaves(
        &self,
        _r: Request<pb::FetchSupplyLeavesRequest>,
    ) -> Result<Response<pb::FetchSupplyLeavesResponse>, Status> {
        unimplemented("supply commitments")
    }
    async fn insert_supply_commit(
        &self,
        _r: Request<pb::InsertSupplyCommitRequest>,
    ) -> Result<Response<pb::InsertSupplyCommitResponse>, Status> {
        unimplemented("supply commitments")
    }
}
