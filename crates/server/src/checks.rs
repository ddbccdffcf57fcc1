//! The checks every push goes through, without tonic: decode → check
//! against the request → verify offline → the rows to store; the same for
//! wallet backups, proof files, addresses and tapscript trees. Handlers only
//! translate ([`ApiError`] → status in `errors.rs`); `tapvault import` runs
//! the same checks.

use crate::errors::ApiError;
use crate::proto::tapvault_v1 as pb;
use crate::wire::{LeafKey, Subject, UniverseId};
use bitcoin::OutPoint;
use std::collections::HashSet;
use tapvault_codec::backup::WalletBackup;
use tapvault_codec::primitives::sha256;
use tapvault_codec::universe::universe_leaf_key;
use tapvault_codec::{Address, AddressNetwork, File};
use tapvault_codec::{Proof, ProofType, RawProof};
use tapvault_store::backup as sb;
use tapvault_store::universe::NewLeaf;
use tapvault_verify::verify_proof;
pub use tapvault_verify::VerifyLevel;

/// A proof refused by the verifier: INVALID_ARGUMENT naming the check.
pub fn verification_failed(e: tapvault_verify::VerifyError) -> ApiError {
    ApiError::from(e)
}

/// The largest single proof accepted (tapd's per-proof cap).
pub const MAX_PROOF_BYTES: usize = 128 * 1024 * 1024;

/// The most bytes of unknown (odd, forward-compatible) records a proof may
/// carry, in all. tapd writes none today; any record a tapd could add fits
/// under its own largest per-record cap (asset and anchor transaction:
/// 4,000,000 bytes), so a real proof never comes near it. Without it, a
/// valid proof padded with a 100 MiB unknown record would be stored whole.
pub const MAX_UNKNOWN_BYTES: usize = 4_000_000;

pub fn check_unknown(p: &Proof) -> Result<(), ApiError> {
    let n: usize = p.unknown.values().map(Vec::len).sum::<usize>()
        + p.asset.unknown.values().map(Vec::len).sum::<usize>();
    if n > MAX_UNKNOWN_BYTES {
        return Err(ApiError::too_large(format!(
            "proof carries {n} bytes of unknown TLV records, over the {MAX_UNKNOWN_BYTES} byte cap"
        )));
    }
    Ok(())
}

/// Decodes and verifies a raw single proof; the leaf to store.
pub fn prepare(raw: &[u8], level: VerifyLevel) -> Result<(RawProof, NewLeaf), ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid("asset_leaf.proof is empty"));
    }
    if raw.len() > MAX_PROOF_BYTES {
        return Err(ApiError::too_large(format!(
            "proof is {} bytes, over the {} byte cap",
            raw.len(),
            MAX_PROOF_BYTES
        )));
    }
    if !raw.starts_with(b"TAPP") {
        return Err(ApiError::invalid(
            "asset_leaf.proof must be a single proof starting with the TAPP magic (not a proof file)",
        ));
    }
    let rp = RawProof::decode(raw).map_err(|e| ApiError::invalid(format!("invalid proof: {e}")))?;
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
) -> Result<(), ApiError> {
    let a = &rp.proof.asset;
    match (&id.subject, &a.group_key) {
        (Subject::GroupKey(x), Some(g)) if *x == g.x_only() => {}
        (Subject::GroupKey(x), Some(g)) => {
            return Err(ApiError::invalid(format!(
                "group key mismatch: request names {}, proof's asset has {}",
                hex::encode(x),
                hex::encode(g.x_only())
            )))
        }
        (Subject::GroupKey(_), None) => {
            return Err(ApiError::invalid(
                "request names a group key universe but the proof's asset has no group key",
            ))
        }
        (Subject::AssetId(_), Some(_)) => {
            return Err(ApiError::invalid(
                "the proof's asset is grouped: use its group key as the universe id",
            ))
        }
        (Subject::AssetId(want), None) if *want != a.id() => {
            return Err(ApiError::invalid(format!(
                "asset id mismatch: request names {}, proof is for {}",
                hex::encode(want),
                hex::encode(a.id())
            )))
        }
        (Subject::AssetId(_), None) => {}
    }
    if let Some(t) = id.proof_type {
        if t != leaf.proof_type {
            return Err(ApiError::invalid(format!(
                "proof type mismatch: expected {}, got {}",
                leaf.proof_type.as_str(),
                t.as_str()
            )));
        }
    }
    if key.script_key_x != a.script_key.x_only() {
        return Err(ApiError::invalid(format!(
            "script key mismatch: leaf key names {}, proof's asset has {}",
            hex::encode(key.script_key_x),
            a.script_key
        )));
    }
    if key.outpoint != leaf.anchor {
        return Err(ApiError::invalid(format!(
            "outpoint mismatch: leaf key names {}, proof is anchored at {}",
            key.outpoint, leaf.anchor
        )));
    }
    Ok(())
}

/// Decodes and verifies a proof file; the leaves to file, genesis first.
pub fn file_leaves(
    bytes: &[u8],
    level: VerifyLevel,
    what: &str,
) -> Result<(File, Vec<RawProof>, Vec<NewLeaf>), ApiError> {
    let f = File::decode(bytes)
        .map_err(|e| ApiError::invalid(format!("{what}: invalid proof file: {e}")))?;
    if f.is_empty() {
        return Err(ApiError::invalid(format!(
            "{what}: the proof file holds no proofs"
        )));
    }
    let proofs = f
        .decode_proofs()
        .map_err(|e| ApiError::invalid(format!("{what}: {e}")))?;
    for (i, p) in proofs.iter().enumerate() {
        check_unknown(&p.proof)
            .map_err(|e| ApiError::too_large(format!("{what}: proof {i}: {e}")))?;
    }
    if let Some(opts) = level.options() {
        tapvault_verify::verify_chain(&proofs, opts).map_err(|e| {
            ApiError::invalid(format!(
                "{what}: proof file failed verification ({}): {e}",
                e.check().title()
            ))
        })?;
    }
    let leaves = proofs.iter().map(new_leaf).collect();
    Ok((f, proofs, leaves))
}

/// Validates a TAPBAK blob completely; the rows to store.
pub fn prepare_tapbak(
    raw: &[u8],
    level: VerifyLevel,
) -> Result<(WalletBackup, sb::NewBackup), ApiError> {
    let wb = WalletBackup::decode(raw)
        .map_err(|e| ApiError::invalid(format!("invalid wallet backup: {e}")))?;
    let mut entries = Vec::with_capacity(wb.assets.len());
    let mut leaves: Vec<NewLeaf> = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in wb.assets.iter().enumerate() {
        let what = format!("backup asset {i}");
        let proofs = if let Some(fb) = &a.proof_file {
            let (_, rps, ls) = file_leaves(fb, level, &what)?;
            // The file must end at the output the entry describes.
            let last = &rps[rps.len() - 1].proof;
            let at = OutPoint {
                txid: last.anchor_tx.txid(),
                vout: last.inclusion_proof.output_index,
            };
            if at != a.anchor_outpoint || last.asset.script_key != a.asset.script_key {
                return Err(ApiError::invalid(format!(
                        "{what}: its proof file ends at {at} (script key {}), not at the entry's output {} (script key {})",
                        last.asset.script_key, a.anchor_outpoint, a.asset.script_key
                    )));
            }
            for l in ls {
                if seen.insert(sha256(&[&l.raw])) {
                    leaves.push(l);
                }
            }
            "full"
        } else if let Some(sb) = &a.stripped_proof_file {
            // Stripped proofs lack the chain data needed to verify or
            // file them; keep them in the blob, check the framing.
            File::decode(sb).map_err(|e| {
                ApiError::invalid(format!("{what}: invalid stripped proof file: {e}"))
            })?;
            "stripped"
        } else {
            "none"
        };
        let sk = a.script_key.as_ref();
        let ik = a.anchor_internal_key.as_ref();
        entries.push(sb::EntryRow {
            asset_id: a.asset.id(),
            group_key: a.asset.group_key.map(|g| g.0),
            amount: a.asset.amount,
            script_key: a.asset.script_key.0,
            anchor: a.anchor_outpoint,
            anchor_height: a.anchor_block_height,
            script_key_family: sk.map(|k| k.family),
            script_key_index: sk.map(|k| k.index),
            script_raw_key: sk.and_then(|k| k.raw_pub_key).map(|k| k.0),
            script_key_tweak: sk.and_then(|k| k.tweak.clone()),
            internal_key: ik.map(|k| k.pub_key.0),
            internal_key_family: ik.map(|k| k.family),
            internal_key_index: ik.map(|k| k.index),
            proofs,
        });
    }
    let nb = sb::NewBackup {
        kind: "tapbak",
        version: Some(wb.version),
        sha256: sha256(&[raw]),
        raw: raw.to_vec(),
        source: String::new(),
        received_at: None,
        entries,
        leaves,
    };
    Ok((wb, nb))
}

/// Checks a tapscript tree: valid leaf versions, the leaves hash to the
/// claimed root, and (with a raw key) the raw key tweaked by the root is
/// the tree's key.
pub fn check_tapscript(row: &sb::TapscriptRow) -> Result<(), ApiError> {
    check_tapscript_tree(row).map_err(ApiError::invalid)
}

fn check_tapscript_tree(row: &sb::TapscriptRow) -> Result<(), String> {
    let leaves = decode_leaves(&row.leaves).map_err(|e| format!("leaves: {e}"))?;
    if leaves.is_empty() {
        return Err("a tapscript tree needs at least one leaf".into());
    }
    let mut refs: Vec<(u8, &[u8])> = Vec::with_capacity(leaves.len());
    for (i, l) in leaves.iter().enumerate() {
        let v = l.leaf_version as u8;
        if v & 1 != 0 {
            return Err(format!(
                "leaf {i}: leaf version {v:#x} is not a valid tapscript leaf version (must be even)"
            ));
        }
        refs.push((v, &l.script));
    }
    let root = tapvault_verify::taproot::assemble_tapscript_root(&refs)
        .ok_or_else(|| "empty tree".to_string())?;
    if root != row.root_hash {
        return Err(format!(
            "the leaves hash to root {}, not the claimed root {}",
            hex::encode(root),
            hex::encode(row.root_hash)
        ));
    }
    if let Some(rk) = &row.raw_key {
        let pk = tapvault_codec::PubKey(*rk)
            .to_secp()
            .ok_or_else(|| "raw_key is not a valid key".to_string())?;
        let out = tapvault_verify::taproot::taproot_output_key(&pk, Some(&root))
            .ok_or_else(|| "raw_key cannot be tweaked".to_string())?;
        let x = tapvault_verify::taproot::x_only(&out);
        if x != row.key_x {
            return Err(format!(
                "raw_key tweaked with root {} gives {}, not key {}",
                hex::encode(root),
                hex::encode(x),
                hex::encode(row.key_x)
            ));
        }
    }
    Ok(())
}

/// Decodes and validates a TAP address string into its stored row.
pub fn address_row(s: &str) -> Result<(AddressNetwork, sb::AddressRow), ApiError> {
    let a = Address::decode(s.trim()).map_err(|e| ApiError::invalid(e.to_string()))?;
    let row = sb::AddressRow {
        // The canonical (lower-case) form is the identity.
        encoded: a.encode().map_err(|e| ApiError::invalid(e.to_string()))?,
        network: network_name(a.network).to_string(),
        version: a.version,
        asset_version: a.asset_version,
        asset_id: a.asset_id,
        group_key: a.group_key.map(|g| g.0),
        script_key: a.script_key.0,
        internal_key: a.internal_key.0,
        tapscript_sibling: a.tapscript_sibling.as_ref().map(|s| s.encode()),
        amount: a.amount,
        proof_courier_addr: a.proof_courier_addr.clone(),
        received_at: None,
    };
    Ok((a.network, row))
}

pub fn network_name(n: AddressNetwork) -> &'static str {
    match n {
        AddressNetwork::Mainnet => "mainnet",
        AddressNetwork::Testnet => "testnet",
        AddressNetwork::Regtest => "regtest",
        AddressNetwork::Simnet => "simnet",
    }
}

/// Stored leaves `(u8 version ‖ BigSize len ‖ script)*` back to messages.
pub fn decode_leaves(b: &[u8]) -> Result<Vec<pb::TapLeaf>, tapvault_codec::DecodeError> {
    let mut r = tapvault_codec::tlv::Reader::new(b);
    let mut out = Vec::new();
    while !r.is_empty() {
        let v = r.u8()?;
        let s = r.var_bytes(u64::MAX)?;
        out.push(pb::TapLeaf {
            leaf_version: v as u32,
            script: s.to_vec(),
        });
    }
    Ok(out)
}
