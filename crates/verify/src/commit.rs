//! Rebuilding anchor output keys from commitment proofs (spec §6, §2.10).

use crate::taproot::{
    commitment_script, preimage_hash, tap_branch, tap_leaf, taproot_output_key, x_only,
};
use crate::{stxo_keys, VerifyError};
use tapvault_codec::primitives::sha256;
use tapvault_codec::{
    Asset, AssetProof, Genesis, Proof, PubKey, TaprootAssetProof, TaprootProof, TapscriptPreimage,
};
use tapvault_mssmt::{CompressedProof, Node};

/// Slot of an asset in its asset commitment (inner tree).
pub fn asset_commitment_key(a: &Asset) -> [u8; 32] {
    match a.group_key {
        Some(_) => sha256(&[&a.id(), &a.script_key.x_only()]),
        None => sha256(&[&a.script_key.x_only()]),
    }
}

/// Slot of an asset's commitment in the TAP commitment (outer tree).
pub fn tap_commitment_key(a: &Asset) -> [u8; 32] {
    match a.group_key {
        Some(g) => sha256(&[&g.x_only()]),
        None => a.id(),
    }
}

pub(crate) fn empty_leaf() -> Node {
    Node::leaf(&[], 0)
}

fn root_of(p: &CompressedProof, key: &[u8; 32], leaf: Node) -> Result<(Node, Node, Node), String> {
    p.decompress()
        .map_err(|e| e.to_string())?
        .root_with_children(key, leaf)
        .map_err(|e| e.to_string())
}

/// The TAP commitment root implied by an asset-level proof of `leaf` (or of
/// the empty leaf, for exclusion) at `ac_key`, under `tap_key`.
pub(crate) fn top_root_via_asset(
    ap: &AssetProof,
    tp: &TaprootAssetProof,
    tap_key: &[u8; 32],
    ac_key: &[u8; 32],
    leaf: Node,
) -> Result<Node, String> {
    if ap.tap_key != *tap_key {
        return Err(format!(
            "asset proof is for tap key {}, expected {}",
            hex::encode(ap.tap_key),
            hex::encode(tap_key)
        ));
    }
    let (inner, l, r) = root_of(&ap.proof, ac_key, leaf)?;
    let digest = sha256(&[tap_key, &l.hash, &r.hash, &inner.sum.to_be_bytes()]);
    let mut value = Vec::with_capacity(41);
    value.push(ap.version);
    value.extend_from_slice(&digest);
    value.extend_from_slice(&inner.sum.to_be_bytes());
    let (top, _, _) = root_of(&tp.proof, tap_key, Node::leaf(&value, inner.sum))?;
    Ok(top)
}

pub(crate) fn top_root_direct(
    tp: &TaprootAssetProof,
    tap_key: &[u8; 32],
    leaf: Node,
) -> Result<Node, String> {
    Ok(root_of(&tp.proof, tap_key, leaf)?.0)
}

/// The P2TR output key (x-only) of output `index`.
fn p2tr_key(p: &Proof, index: u32) -> Result<[u8; 32], String> {
    let out = p
        .anchor_tx
        .tx
        .output
        .get(index as usize)
        .ok_or_else(|| format!("anchor tx has only {} outputs", p.anchor_tx.tx.output.len()))?;
    let s = out.script_pubkey.as_bytes();
    if s.len() != 34 || s[0] != 0x51 || s[1] != 0x20 {
        return Err("output is not P2TR".into());
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&s[2..]);
    Ok(k)
}

fn is_p2tr(s: &[u8]) -> bool {
    s.len() == 34 && s[0] == 0x51 && s[1] == 0x20
}

/// The x-only output key of `internal` committing to the TAP commitment
/// `top` in `version`'s formatting, beside the tapscript `sibling` if any.
pub(crate) fn commitment_output_key(
    internal: &PubKey,
    top: &Node,
    version: u8,
    sibling: Option<&TapscriptPreimage>,
) -> Result<[u8; 32], String> {
    let ik = internal
        .to_secp()
        .ok_or("internal key is not a valid point")?;
    let mut root = tap_leaf(0xc0, &commitment_script(version, &top.hash, top.sum));
    if let Some(s) = sibling {
        root = tap_branch(&root, &preimage_hash(s).map_err(|e| e.to_string())?);
    }
    let q = taproot_output_key(&ik, Some(&root)).ok_or("taproot tweak failed")?;
    Ok(x_only(&q))
}

/// Tries the proof's commitment version and the V0 formatting (tapd accepts
/// either); returns the version that reproduces `want`.
fn match_commitment(
    internal: &PubKey,
    top: &Node,
    version: u8,
    sibling: Option<&TapscriptPreimage>,
    want: &[u8; 32],
) -> Result<u8, String> {
    let mut tried = Vec::new();
    for v in [version, 0] {
        if tried.contains(&v) {
            continue;
        }
        tried.push(v);
        if commitment_output_key(internal, top, v, sibling)? == *want {
            return Ok(v);
        }
    }
    Err(format!(
        "commitment (root {}, sum {}) does not reproduce the output key {}",
        hex::encode(top.hash),
        top.sum,
        hex::encode(want)
    ))
}

/// The leaf an asset occupies in its anchor commitment: a split output is
/// committed without its split commitment witness.
pub(crate) fn anchor_leaf(a: &Asset) -> Result<Node, String> {
    let mut a = a.clone();
    if a.has_split_commitment_witness() {
        if let Some(w) = a.prev_witnesses.first_mut() {
            w.split_commitment = None;
        }
    }
    Ok(Node::leaf(
        &a.leaf_bytes().map_err(|e| e.to_string())?,
        a.amount,
    ))
}

/// Inclusion of `asset` in the output `tp` points at; returns the matched
/// commitment version.
fn prove_inclusion(p: &Proof, tp: &TaprootProof, asset: &Asset) -> Result<u8, String> {
    let want = p2tr_key(p, tp.output_index)?;
    if tp.tapscript_proof.is_some() {
        return Err("inclusion proof carries a tapscript proof".into());
    }
    let cp = tp
        .commitment_proof
        .as_ref()
        .ok_or("inclusion proof has no commitment proof")?;
    let ap = cp
        .asset_proof
        .as_ref()
        .ok_or("inclusion proof has no asset proof")?;
    let top = top_root_via_asset(
        ap,
        &cp.taproot_asset_proof,
        &tap_commitment_key(asset),
        &asset_commitment_key(asset),
        anchor_leaf(asset)?,
    )?;
    match_commitment(
        &tp.internal_key,
        &top,
        cp.taproot_asset_proof.version,
        cp.tap_sibling_preimage.as_ref(),
        &want,
    )
}

pub(crate) fn check_inclusion(p: &Proof) -> Result<u8, VerifyError> {
    prove_inclusion(p, &p.inclusion_proof, &p.asset).map_err(|reason| VerifyError::AnchorOutput {
        index: p.inclusion_proof.output_index,
        reason,
    })
}

fn similar(a: u8, b: u8) -> bool {
    (a <= 1 && b <= 1) || a == b
}

fn tapscript_root(ts: &tapvault_codec::TapscriptProof) -> Result<Option<[u8; 32]>, String> {
    use TapscriptPreimage::{Branch, Leaf};
    let h = |p: &TapscriptPreimage| preimage_hash(p).map_err(|e| e.to_string());
    match (&ts.tap_preimage_1, &ts.tap_preimage_2) {
        (Some(a @ Leaf { .. }), Some(b @ Leaf { .. }))
        | (Some(a @ Branch(_)), Some(b @ Branch(_)))
        | (Some(a @ Leaf { .. }), Some(b @ Branch(_))) => Ok(Some(tap_branch(&h(a)?, &h(b)?))),
        (Some(a @ Leaf { .. }), None) => Ok(Some(h(a)?)),
        _ if ts.bip86 => Ok(None),
        _ => Err("tapscript proof has no usable preimage combination and is not BIP-86".into()),
    }
}

fn prove_exclusion(p: &Proof, ep: &TaprootProof, inc_version: Option<u8>) -> Result<(), String> {
    let want = p2tr_key(p, ep.output_index)?;
    if let Some(cp) = &ep.commitment_proof {
        let tap_key = tap_commitment_key(&p.asset);
        let top = match &cp.asset_proof {
            Some(ap) => top_root_via_asset(
                ap,
                &cp.taproot_asset_proof,
                &tap_key,
                &asset_commitment_key(&p.asset),
                empty_leaf(),
            )?,
            None => top_root_direct(&cp.taproot_asset_proof, &tap_key, empty_leaf())?,
        };
        let v = match_commitment(
            &ep.internal_key,
            &top,
            cp.taproot_asset_proof.version,
            cp.tap_sibling_preimage.as_ref(),
            &want,
        )?;
        if let Some(iv) = inc_version {
            if !similar(iv, v) {
                return Err(format!(
                    "commitment version {v} is incompatible with the inclusion's {iv}"
                ));
            }
        }
        return Ok(());
    }
    let ts = ep
        .tapscript_proof
        .as_ref()
        .ok_or("neither a commitment nor a tapscript proof")?;
    let root = tapscript_root(ts)?;
    let ik = ep
        .internal_key
        .to_secp()
        .ok_or("internal key is not a valid point")?;
    let q = taproot_output_key(&ik, root.as_ref()).ok_or("taproot tweak failed")?;
    if x_only(&q) != want {
        return Err(format!(
            "tapscript proof does not reproduce the output key {}",
            hex::encode(want)
        ));
    }
    Ok(())
}

pub(crate) fn check_exclusions(
    p: &Proof,
    inc_version: Option<u8>,
) -> Result<Option<String>, VerifyError> {
    let mut covered = Vec::new();
    for ep in &p.exclusion_proofs {
        prove_exclusion(p, ep, inc_version).map_err(|reason| VerifyError::Exclusion {
            index: ep.output_index,
            reason,
        })?;
        covered.push(ep.output_index);
    }
    for (i, out) in p.anchor_tx.tx.output.iter().enumerate() {
        let i = i as u32;
        if i != p.inclusion_proof.output_index
            && is_p2tr(out.script_pubkey.as_bytes())
            && !covered.contains(&i)
        {
            return Err(VerifyError::Exclusion {
                index: i,
                reason: "P2TR output has no exclusion proof".into(),
            });
        }
    }
    if p.exclusion_proofs.is_empty() {
        return Ok(Some("anchor tx has no other P2TR output".into()));
    }
    Ok(None)
}

/// The minimal "spent asset" alt leaf an STXO proof commits to.
fn spent_asset(key: &PubKey) -> Asset {
    Asset {
        genesis: Genesis::default(),
        script_key: *key,
        ..Default::default()
    }
}

fn is_transfer_root(a: &Asset) -> bool {
    !a.is_genesis() && !a.has_split_commitment_witness()
}

pub(crate) fn check_stxo(p: &Proof) -> Result<Option<String>, VerifyError> {
    let e = |m: String| VerifyError::Stxo(m);
    if !is_transfer_root(&p.asset) {
        return Ok(Some("not a transfer root".into()));
    }
    let inc_cp = p.inclusion_proof.commitment_proof.as_ref();
    let carried = inc_cp.map(|c| !c.stxo_proofs.is_empty()).unwrap_or(false);
    if p.version == 0 && !carried {
        return Ok(Some("V0 proof without STXO proofs".into()));
    }
    let keys = stxo_keys(&p.asset)?;
    let empty_id = Genesis::default().asset_id();
    let want = p2tr_key(p, p.inclusion_proof.output_index).map_err(e)?;
    let inc_cp = inc_cp.ok_or_else(|| e("inclusion proof has no commitment proof".into()))?;
    for k in &keys {
        let (_, sp) = inc_cp
            .stxo_proofs
            .iter()
            .find(|(kk, _)| kk == k)
            .ok_or_else(|| e(format!("no STXO inclusion proof for spent input key {k}")))?;
        let spent = spent_asset(k);
        let ap = sp
            .asset_proof
            .as_ref()
            .ok_or_else(|| e(format!("STXO inclusion proof for {k} has no asset proof")))?;
        let leaf = Node::leaf(&spent.encode(), 0);
        let top = top_root_via_asset(
            ap,
            &sp.taproot_asset_proof,
            &empty_id,
            &asset_commitment_key(&spent),
            leaf,
        )
        .map_err(|m| e(format!("inclusion of {k}: {m}")))?;
        match_commitment(
            &p.inclusion_proof.internal_key,
            &top,
            sp.taproot_asset_proof.version,
            inc_cp.tap_sibling_preimage.as_ref(),
            &want,
        )
        .map_err(|m| e(format!("inclusion of {k}: {m}")))?;
    }
    for ep in &p.exclusion_proofs {
        let Some(cp) = &ep.commitment_proof else {
            continue;
        };
        let want = p2tr_key(p, ep.output_index).map_err(e)?;
        for k in &keys {
            let Some((_, sp)) = cp.stxo_proofs.iter().find(|(kk, _)| kk == k) else {
                if p.version >= 1 {
                    return Err(e(format!(
                        "output {}: no STXO exclusion proof for {k}",
                        ep.output_index
                    )));
                }
                continue;
            };
            let spent = spent_asset(k);
            let top = match &sp.asset_proof {
                Some(ap) => top_root_via_asset(
                    ap,
                    &sp.taproot_asset_proof,
                    &empty_id,
                    &asset_commitment_key(&spent),
                    empty_leaf(),
                ),
                None => top_root_direct(&sp.taproot_asset_proof, &empty_id, empty_leaf()),
            }
            .map_err(|m| e(format!("output {} exclusion of {k}: {m}", ep.output_index)))?;
            match_commitment(
                &ep.internal_key,
                &top,
                sp.taproot_asset_proof.version,
                cp.tap_sibling_preimage.as_ref(),
                &want,
            )
            .map_err(|m| e(format!("output {} exclusion of {k}: {m}", ep.output_index)))?;
        }
    }
    Ok(None)
}

pub(crate) fn check_split(p: &Proof) -> Result<Option<String>, VerifyError> {
    let e = |m: String| VerifyError::Split(m);
    if !p.asset.has_split_commitment_witness() {
        return Ok(Some("not a split output".into()));
    }
    let sc = p.asset.prev_witnesses[0]
        .split_commitment
        .as_ref()
        .ok_or_else(|| e("split witness without a split commitment".into()))?;
    let root = &sc.root_asset;
    let srp = p
        .split_root_proof
        .as_ref()
        .ok_or_else(|| e("split output without a split root proof".into()))?;
    prove_inclusion(p, srp, root)
        .map_err(|m| e(format!("root asset in output {}: {m}", srp.output_index)))?;
    let split_root = root
        .split_commitment_root
        .ok_or_else(|| e("root asset has no split commitment root".into()))?;
    let mut leaf_asset = p.asset.clone();
    leaf_asset.prev_witnesses[0].split_commitment = None;
    leaf_asset.lock_time = root.lock_time;
    leaf_asset.relative_lock_time = root.relative_lock_time;
    let leaf = Node::leaf(
        &leaf_asset.leaf_bytes().map_err(|m| e(m.to_string()))?,
        leaf_asset.amount,
    );
    let key = sha256(&[
        &p.inclusion_proof.output_index.to_be_bytes(),
        &p.asset.id(),
        &p.asset.script_key.x_only(),
    ]);
    let (got, _, _) = root_of(&sc.proof, &key, leaf).map_err(e)?;
    if got.hash != split_root.hash || got.sum != split_root.sum {
        return Err(e(format!(
            "split commitment proof yields {} (sum {}), root asset commits to {} (sum {})",
            hex::encode(got.hash),
            got.sum,
            hex::encode(split_root.hash),
            split_root.sum
        )));
    }
    Ok(None)
}
