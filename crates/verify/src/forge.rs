//! Distinct, fully valid genesis proofs made from one real one, for benches
//! and tests that need many proofs `--verify full` accepts (feature `forge`).
//!
//! The asset gets a new script key and/or tag; then everything above it is
//! recomputed the way a minter would have: the asset commitment, the TAP
//! commitment, the anchor output's key (and any other output whose
//! exclusion proof commits under the asset's keys), the anchor tx, the block
//! merkle root, and the header's nonce until it meets its own nBits (on
//! regtest, a couple of hashes). The result passes every offline check; it
//! is not on any real chain.

use crate::commit::{
    anchor_leaf, asset_commitment_key, commitment_output_key, empty_leaf, tap_commitment_key,
    top_root_direct, top_root_via_asset,
};
use bitcoin::hashes::Hash as _;
use tapvault_codec::{AnchorTx, Asset, Proof, PubKey, TaprootProof};
use tapvault_mssmt::Node;

/// What to change in the base proof.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub script_key: Option<PubKey>,
    /// A new tag makes a new asset ID (ungrouped assets only: a group
    /// witness signs the old ID).
    pub tag: Option<Vec<u8>>,
}

/// `base` (a genesis proof) with `change` applied and re-anchored.
pub fn reanchor_genesis(base: &Proof, change: &Change) -> Result<Proof, String> {
    let mut p = base.clone();
    if !p.asset.is_genesis() {
        return Err("base is not a genesis proof".into());
    }
    if let Some(tag) = &change.tag {
        if p.asset.group_key.is_some() {
            return Err(
                "a grouped asset's tag cannot change (its group witness signs the ID)".into(),
            );
        }
        p.asset.genesis.tag = tag.clone();
        if let Some(r) = p.genesis_reveal.as_mut() {
            r.tag = tag.clone();
        }
    }
    if let Some(k) = change.script_key {
        p.asset.script_key = k;
    }
    let asset = p.asset.clone();
    let mut tx = p.anchor_tx.tx.clone();

    let key = output_key(&mut p.inclusion_proof, &asset, anchor_leaf(&asset)?)?;
    set_p2tr(&mut tx, p.inclusion_proof.output_index, key)?;
    for ep in p.exclusion_proofs.iter_mut() {
        if ep.commitment_proof.is_some() {
            let key = output_key(ep, &asset, empty_leaf())?;
            set_p2tr(&mut tx, ep.output_index, key)?;
        }
    }
    let raw = bitcoin::consensus::serialize(&tx);
    p.anchor_tx = AnchorTx { raw, tx };
    let root = p.tx_merkle_proof.root(p.anchor_tx.txid().to_byte_array());
    p.block_header.0[36..68].copy_from_slice(&root);
    mine(&mut p)?;
    Ok(p)
}

/// The x-only output key that commits `leaf` at the asset's slots, with the
/// proof's own siblings, version and tapscript sibling.
fn output_key(tp: &mut TaprootProof, asset: &Asset, leaf: Node) -> Result<[u8; 32], String> {
    let cp = tp
        .commitment_proof
        .as_mut()
        .ok_or("taproot proof has no commitment proof")?;
    let tap_key = tap_commitment_key(asset);
    let top = match cp.asset_proof.as_mut() {
        Some(ap) => {
            ap.tap_key = tap_key;
            top_root_via_asset(
                ap,
                &cp.taproot_asset_proof,
                &tap_key,
                &asset_commitment_key(asset),
                leaf,
            )?
        }
        None => top_root_direct(&cp.taproot_asset_proof, &tap_key, leaf)?,
    };
    commitment_output_key(
        &tp.internal_key,
        &top,
        cp.taproot_asset_proof.version,
        cp.tap_sibling_preimage.as_ref(),
    )
}

fn set_p2tr(tx: &mut bitcoin::Transaction, index: u32, key: [u8; 32]) -> Result<(), String> {
    let out = tx
        .output
        .get_mut(index as usize)
        .ok_or_else(|| format!("anchor tx has no output {index}"))?;
    let mut s = vec![0x51, 0x20];
    s.extend_from_slice(&key);
    out.script_pubkey = bitcoin::ScriptBuf::from_bytes(s);
    Ok(())
}

/// Grinds the header nonce until the hash meets the header's own target.
fn mine(p: &mut Proof) -> Result<(), String> {
    for nonce in 0..(1u32 << 20) {
        p.block_header.0[76..80].copy_from_slice(&nonce.to_le_bytes());
        let h = p.block_header.parse().map_err(|e| e.to_string())?;
        if h.validate_pow(h.target()).is_ok() {
            return Ok(());
        }
    }
    Err("header target too hard to grind (not a regtest header?)".into())
}
