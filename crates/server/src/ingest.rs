//! decode → check against the request → verify offline → a `NewLeaf`.

use crate::wire::{LeafKey, Subject, UniverseId};
use tapvault_codec::universe::universe_leaf_key;
use tapvault_codec::{Proof, ProofType, RawProof};
use tapvault_store::universe::NewLeaf;
use tapvault_verify::{verify_proof, Options};
use tonic::Status;

/// How much offline verification an insert gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyLevel {
    /// Every offline check (default).
    Full,
    /// Every offline check, plus every witness through the Taproot Assets
    /// VM: genesis proofs always, transfers when their inputs come along
    /// (proof files, wallet backups); a lone transfer's witness stays pending.
    FullVm,
    /// Every offline check but the header proof-of-work / merkle check.
    NoHeader,
    /// Decode only (for importing proofs that are known good).
    DecodeOnly,
}

impl VerifyLevel {
    /// The verifier's options, or `None` when nothing is verified.
    pub fn options(self) -> Option<Options> {
        match self {
            VerifyLevel::Full => Some(Options {
                header: true,
                vm: false,
            }),
            VerifyLevel::FullVm => Some(Options {
                header: true,
                vm: true,
            }),
            VerifyLevel::NoHeader => Some(Options {
                header: false,
                vm: false,
            }),
            VerifyLevel::DecodeOnly => None,
        }
    }
}

impl std::str::FromStr for VerifyLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(VerifyLevel::Full),
            "full-vm" => Ok(VerifyLevel::FullVm),
            "no-header" => Ok(VerifyLevel::NoHeader),
            "decode-only" => Ok(VerifyLevel::DecodeOnly),
            o => Err(format!(
                "unknown verify level {o:?} (full, full-vm, no-header, decode-only)"
            )),
        }
    }
}

/// A proof refused by the verifier: INVALID_ARGUMENT naming the check.
pub fn verification_failed(e: tapvault_verify::VerifyError) -> Status {
    Status::invalid_argument(format!(
        "proof failed verification ({}): {e}",
        e.check().title()
    ))
}

/// The largest single proof accepted (tapd's per-proof cap).
pub const MAX_PROOF_BYTES: usize = 128 * 1024 * 1024;

/// The most bytes of unknown (odd, forward-compatible) records a proof may
/// carry, in all. tapd writes none today; any record a tapd could add fits
/// under its own largest per-record cap (asset and anchor transaction:
/// 4,000,000 bytes), so a real proof never comes near it. Without it, a
/// valid proof padded with a 100 MiB unknown record would be stored whole.
pub const MAX_UNKNOWN_BYTES: usize = 4_000_000;

pub fn check_unknown(p: &Proof) -> Result<(), Status> {
    let n: usize = p.unknown.values().map(Vec::len).sum::<usize>()
        + p.asset.unknown.values().map(Vec::len).sum::<usize>();
    if n > MAX_UNKNOWN_BYTES {
        return Err(crate::errors::too_large(format!(
            "proof carries {n} bytes of unknown TLV records, over the {MAX_UNKNOWN_BYTES} byte cap"
        )));
    }
    Ok(())
}

/// Decodes and verifies a raw single proof; the leaf to store.
pub fn prepare(raw: &[u8], level: VerifyLevel) -> Result<(RawProof, NewLeaf), Status> {
    if raw.is_empty() {
        return Err(Status::invalid_argument("asset_leaf.proof is empty"));
    }
    if raw.len() > MAX_PROOF_BYTES {
        return Err(crate::errors::too_large(format!(
            "proof is {} bytes, over the {} byte cap",
            raw.len(),
            MAX_PROOF_BYTES
        )));
    }
    if !raw.starts_with(b"TAPP") {
        return Err(Status::invalid_argument(
            "asset_leaf.proof must be a single proof starting with the TAPP magic (not a proof file)",
        ));
    }
    let rp = RawProof::decode(raw)
        .map_err(|e| Status::invalid_argument(format!("invalid proof: {e}")))?;
    check_unknown(&rp.proof)?;
    if let Some(opts) = level.options() {
        verify_proof(&rp.proof, opts)
            .into_result()
            .map_err(verification_failed)?;
    }
    let leaf = new_leaf(&rp);
    Ok((rp, leaf))
}

pub fn new_leaf(rp: &RawProof) -> NewLeaf {
    let p: &Proof = &rp.proof;
    let info = tapvault_codec::universe_leaf_info(p);
    let prev_leaf_key = match info.proof_type {
        ProofType::Issuance => None,
        ProofType::Transfer => p
            .asset
            .primary_prev_id()
            .map(|pid| universe_leaf_key(&pid.out_point, &pid.script_key)),
    };
    NewLeaf {
        universe_id: info.subject.id_bytes(),
        proof_type: info.proof_type,
        leaf_key: info.leaf_key,
        raw: rp.raw.clone(),
        asset_id: p.asset.id(),
        group_key: p.asset.group_key.map(|g| g.0),
        anchor: info.anchor,
        script_key: p.asset.script_key.0,
        amount: p.asset.amount,
        leaf_sum: info.sum,
        block_height: p.block_height,
        block_hash: bitcoin::hashes::Hash::to_byte_array(p.block_header.block_hash()),
        asset_name: p.asset.genesis.tag_lossy(),
        prev_leaf_key,
        received_at: None,
    }
}

/// Checks that the request's universe ID and leaf key name this proof.
pub fn check_request(
    id: &UniverseId,
    key: &LeafKey,
    rp: &RawProof,
    leaf: &NewLeaf,
) -> Result<(), Status> {
    let a = &rp.proof.asset;
    match (&id.subject, &a.group_key) {
        (Subject::GroupKey(x), Some(g)) if *x == g.x_only() => {}
        (Subject::GroupKey(x), Some(g)) => {
            return Err(Status::invalid_argument(format!(
                "group key mismatch: request names {}, proof's asset has {}",
                hex::encode(x),
                hex::encode(g.x_only())
            )))
        }
        (Subject::GroupKey(_), None) => {
            return Err(Status::invalid_argument(
                "request names a group key universe but the proof's asset has no group key",
            ))
        }
        (Subject::AssetId(_), Some(_)) => {
            return Err(Status::invalid_argument(
                "the proof's asset is grouped: use its group key as the universe id",
            ))
        }
        (Subject::AssetId(want), None) if *want != a.id() => {
            return Err(Status::invalid_argument(format!(
                "asset id mismatch: request names {}, proof is for {}",
                hex::encode(want),
                hex::encode(a.id())
            )))
        }
        (Subject::AssetId(_), None) => {}
    }
    if let Some(t) = id.proof_type {
        if t != leaf.proof_type {
            return Err(Status::invalid_argument(format!(
                "proof type mismatch: expected {}, got {}",
                leaf.proof_type.as_str(),
                t.as_str()
            )));
        }
    }
    if key.script_key_x != a.script_key.x_only() {
        return Err(Status::invalid_argument(format!(
            "script key mismatch: leaf key names {}, proof's asset has {}",
            hex::encode(key.script_key_x),
            a.script_key
        )));
    }
    if key.outpoint != leaf.anchor {
        return Err(Status::invalid_argument(format!(
            "outpoint mismatch: leaf key names {}, proof is anchored at {}",
            key.outpoint, leaf.anchor
        )));
    }
    Ok(())
}
