//! Between the wire (tapd's and tapvault's protos) and the codec: universe
//! identifiers and leaf keys as they arrive over RPC, and proofs as taprpc
//! messages (informational; tapd clients read only the raw proof bytes).

use crate::errors::ApiError;
use crate::proto::taprpc as tp;
use crate::proto::universerpc as pb;
use bitcoin::OutPoint;
use tapvault_codec::primitives::sha256;
use tapvault_codec::ProofType;
use tapvault_codec::{GroupKeyReveal, Proof};
use tonic::Status;

/// What a request's `ID` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    AssetId([u8; 32]),
    /// x-only bytes (parity is irrelevant to universe identity).
    GroupKey([u8; 32]),
}

#[derive(Clone, Debug)]
pub struct UniverseId {
    pub subject: Subject,
    pub proof_type: Option<ProofType>,
}

impl UniverseId {
    pub fn id_bytes(&self) -> [u8; 32] {
        match &self.subject {
            Subject::AssetId(a) => *a,
            Subject::GroupKey(x) => sha256(&[x]),
        }
    }
}

fn bad(msg: impl Into<String>) -> Status {
    ApiError::invalid(msg.into()).into()
}

fn key_bytes(b: &[u8], what: &str) -> Result<[u8; 32], Status> {
    match b.len() {
        32 => Ok(b
            .try_into()
            .map_err(|_| bad(format!("{what}: bad length")))?),
        33 => {
            if b[0] != 2 && b[0] != 3 {
                return Err(bad(format!("{what}: 33-byte key must start with 02 or 03")));
            }
            Ok(b[1..]
                .try_into()
                .map_err(|_| bad(format!("{what}: bad length")))?)
        }
        n => Err(bad(format!(
            "{what}: key must be 32 (x-only) or 33 (compressed) bytes, got {n}"
        ))),
    }
}

fn hex_of(s: &str, what: &str) -> Result<Vec<u8>, Status> {
    hex::decode(s).map_err(|e| bad(format!("{what}: not hex: {e}")))
}

pub fn proof_type_of(v: i32) -> Result<Option<ProofType>, Status> {
    match pb::ProofType::try_from(v) {
        Ok(pb::ProofType::Unspecified) => Ok(None),
        Ok(pb::ProofType::Issuance) => Ok(Some(ProofType::Issuance)),
        Ok(pb::ProofType::Transfer) => Ok(Some(ProofType::Transfer)),
        Err(_) => Err(bad(format!("unknown proof type {v}"))),
    }
}

pub fn proof_type_pb(t: ProofType) -> i32 {
    match t {
        ProofType::Issuance => pb::ProofType::Issuance as i32,
        ProofType::Transfer => pb::ProofType::Transfer as i32,
    }
}

pub fn parse_id(id: Option<&pb::Id>) -> Result<UniverseId, Status> {
    let id = id.ok_or_else(|| bad("universe id must be set"))?;
    let subject = match &id.id {
        None => return Err(bad("universe id must set an asset id or a group key")),
        Some(pb::id::Id::AssetId(b)) => Subject::AssetId(
            b.as_slice()
                .try_into()
                .map_err(|_| bad(format!("asset id must be 32 bytes, got {}", b.len())))?,
        ),
        Some(pb::id::Id::AssetIdStr(s)) => {
            let b = hex_of(s, "asset_id_str")?;
            Subject::AssetId(
                b.as_slice()
                    .try_into()
                    .map_err(|_| bad(format!("asset id must be 32 bytes, got {}", b.len())))?,
            )
        }
        Some(pb::id::Id::GroupKey(b)) => Subject::GroupKey(key_bytes(b, "group key")?),
        Some(pb::id::Id::GroupKeyStr(s)) => {
            Subject::GroupKey(key_bytes(&hex_of(s, "group_key_str")?, "group key")?)
        }
    };
    Ok(UniverseId {
        subject,
        proof_type: proof_type_of(id.proof_type)?,
    })
}

/// A leaf key from RPC: the anchor outpoint and the x-only script key.
#[derive(Clone, Debug)]
pub struct LeafKey {
    pub outpoint: OutPoint,
    pub script_key_x: [u8; 32],
}

impl LeafKey {
    pub fn key(&self) -> [u8; 32] {
        sha256(&[
            &tapvault_codec::primitives::outpoint_hash_bytes(&self.outpoint),
            &self.script_key_x,
        ])
    }
}

pub fn parse_leaf_key(k: Option<&pb::AssetKey>) -> Result<LeafKey, Status> {
    let k = k.ok_or_else(|| bad("leaf key must be set"))?;
    let script_key_x = match &k.script_key {
        None => return Err(bad("leaf key: script key must be set")),
        Some(pb::asset_key::ScriptKey::ScriptKeyBytes(b)) => key_bytes(b, "script key")?,
        Some(pb::asset_key::ScriptKey::ScriptKeyStr(s)) => {
            key_bytes(&hex_of(s, "script_key_str")?, "script key")?
        }
    };
    let outpoint = match &k.outpoint {
        None => return Err(bad("leaf key: outpoint must be set")),
        Some(pb::asset_key::Outpoint::OpStr(s)) => s
            .parse::<OutPoint>()
            .map_err(|e| bad(format!("leaf key: bad outpoint {s:?}: {e}")))?,
        Some(pb::asset_key::Outpoint::Op(op)) => {
            let txid = op
                .hash_str
                .parse()
                .map_err(|e| bad(format!("leaf key: bad txid {:?}: {e}", op.hash_str)))?;
            if op.index < 0 {
                return Err(bad("leaf key: negative output index"));
            }
            OutPoint {
                txid,
                vout: op.index as u32,
            }
        }
    };
    Ok(LeafKey {
        outpoint,
        script_key_x,
    })
}

/// How tapd marshals an ID in responses: asset id, or x-only group key.
/// A universe's id on the wire; `None` for a universe with neither an
/// asset id nor a group key (corrupt: never invent one).
pub fn id_pb(
    asset_id: Option<[u8; 32]>,
    group_key: Option<[u8; 33]>,
    t: ProofType,
) -> Option<pb::Id> {
    let id = match (group_key, asset_id) {
        (Some(g), _) => pb::id::Id::GroupKey(g[1..].to_vec()),
        (None, Some(a)) => pb::id::Id::AssetId(a.to_vec()),
        (None, None) => return None,
    };
    Some(pb::Id {
        id: Some(id),
        proof_type: proof_type_pb(t),
    })
}

pub fn asset_key_pb(outpoint: &OutPoint, script_key_x: &[u8]) -> pb::AssetKey {
    pb::AssetKey {
        outpoint: Some(pb::asset_key::Outpoint::OpStr(outpoint.to_string())),
        script_key: Some(pb::asset_key::ScriptKey::ScriptKeyBytes(
            script_key_x.to_vec(),
        )),
    }
}

pub fn asset_pb(p: &Proof) -> tp::Asset {
    let a = &p.asset;
    let g = &a.genesis;
    tp::Asset {
        version: a.version as i32,
        asset_genesis: Some(tp::GenesisInfo {
            genesis_point: g.first_prev_out.to_string(),
            name: g.tag_lossy(),
            meta_hash: g.meta_hash.to_vec(),
            asset_id: a.id().to_vec(),
            asset_type: a.asset_type as i32,
            output_index: g.output_index,
        }),
        amount: a.amount,
        lock_time: a.lock_time as i32,
        relative_lock_time: a.relative_lock_time as i32,
        script_version: a.script_version as i32,
        script_key: a.script_key.0.to_vec(),
        asset_group: a.group_key.map(|k| tp::AssetGroup {
            tweaked_group_key: k.0.to_vec(),
            raw_group_key: match &p.group_key_reveal {
                Some(GroupKeyReveal::V0 { raw_key, .. }) => raw_key.0.to_vec(),
                Some(GroupKeyReveal::V1 { internal_key, .. }) => internal_key.0.to_vec(),
                None => Vec::new(),
            },
            ..Default::default()
        }),
        chain_anchor: Some(tp::AnchorInfo {
            anchor_tx: p.anchor_tx.raw.clone(),
            anchor_block_hash: p.block_header.block_hash().to_string(),
            anchor_outpoint: p.outpoint().to_string(),
            internal_key: p.inclusion_proof.internal_key.0.to_vec(),
            block_height: p.block_height,
            tapscript_sibling: p
                .inclusion_proof
                .commitment_proof
                .as_ref()
                .and_then(|c| c.tap_sibling_preimage.as_ref())
                .map(|s| s.encode())
                .unwrap_or_default(),
            block_timestamp: p.block_header.parse().map(|h| h.time as i64).unwrap_or(0),
            ..Default::default()
        }),
        prev_witnesses: a
            .prev_witnesses
            .iter()
            .map(|w| tp::PrevWitness {
                prev_id: w.prev_id.map(|pid| tp::PrevInputAsset {
                    anchor_point: pid.out_point.to_string(),
                    asset_id: pid.asset_id.to_vec(),
                    script_key: pid.script_key.0.to_vec(),
                    amount: 0,
                }),
                tx_witness: w.tx_witness.clone(),
                split_commitment: None,
            })
            .collect(),
        decimal_display: p
            .meta_reveal
            .as_ref()
            .and_then(|m| m.decimal_display)
            .map(|d| tp::DecimalDisplay { decimal_display: d }),
        ..Default::default()
    }
}

pub fn issuance_data(p: &Proof) -> Option<crate::proto::universerpc::IssuanceData> {
    let g = p.genesis_reveal.as_ref()?;
    Some(crate::proto::universerpc::IssuanceData {
        meta_reveal: p.meta_reveal.as_ref().map(|m| tp::AssetMeta {
            data: m.data.clone(),
            r#type: m.meta_type as i32,
            meta_hash: m.meta_hash().to_vec(),
        }),
        genesis_reveal: Some(tp::GenesisReveal {
            genesis_base_reveal: Some(tp::GenesisInfo {
                genesis_point: g.first_prev_out.to_string(),
                name: g.tag_lossy(),
                meta_hash: g.meta_hash.to_vec(),
                asset_id: g.asset_id().to_vec(),
                asset_type: g.asset_type as i32,
                output_index: g.output_index,
            }),
        }),
        group_key_reveal: p.group_key_reveal.as_ref().map(|r| match r {
            GroupKeyReveal::V0 {
                raw_key,
                tapscript_root,
            } => tp::GroupKeyReveal {
                raw_group_key: raw_key.0.to_vec(),
                tapscript_root: tapscript_root.map(|t| t.to_vec()).unwrap_or_default(),
            },
            GroupKeyReveal::V1 {
                internal_key,
                tapscript_root,
                ..
            } => tp::GroupKeyReveal {
                raw_group_key: internal_key.0.to_vec(),
                tapscript_root: tapscript_root.to_vec(),
            },
        }),
    })
}
