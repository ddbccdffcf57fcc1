//! Universe identifiers and leaf keys as they arrive over RPC.

use crate::proto::universerpc as pb;
use bitcoin::OutPoint;
use tapvault_codec::primitives::sha256;
use tapvault_codec::ProofType;
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
    Status::invalid_argument(msg.into())
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
