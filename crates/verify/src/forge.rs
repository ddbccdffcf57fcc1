//! Distinct, fully valid proofs made from one real genesis proof, for
//! benches and tests that need many proofs `--verify full` accepts (feature
//! `forge`): new genesis proofs, and chains of transfers from them.
//!
//! The asset gets a new script key and/or tag (or, for a transfer, a new
//! owner and a signed witness spending the previous output); then everything above it is
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
use tapvault_codec::{AnchorTx, Asset, PrevId, Proof, PubKey, TaprootProof, Witness};
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
    reanchor(&mut p)?;
    Ok(p)
}

/// The next proof of a chain: `prev`'s whole asset sent to `to` by its
/// owner (`owner`, the secret key of `prev`'s script key, used as the
/// BIP-341 output key itself), anchored in a tx that spends `prev`'s
/// anchor outpoint, in a block mined like the others.
///
/// The transfer is a version-0 proof without STXO proofs (which a V0 proof
/// need not carry); ungrouped assets only (a grouped transfer's group
/// membership needs its anchor, which the forge does not make).
pub fn transfer(
    prev: &Proof,
    owner: &bitcoin::secp256k1::SecretKey,
    to: PubKey,
) -> Result<Proof, String> {
    use bitcoin::secp256k1::{Keypair, Message};
    if prev.asset.group_key.is_some() {
        return Err("grouped assets are not forged as transfers".into());
    }
    let keys = Keypair::from_secret_key(crate::taproot::secp(), owner);
    if keys.x_only_public_key().0.serialize() != prev.asset.script_key.x_only() {
        return Err("owner is not the secret key of the spent script key".into());
    }
    let out = prev.outpoint();
    let prev_id = PrevId {
        out_point: out,
        asset_id: prev.asset.id(),
        script_key: prev.asset.script_key,
    };
    let mut p = prev.clone();
    p.version = 0;
    p.prev_out = out;
    p.genesis_reveal = None;
    p.meta_reveal = None;
    p.group_key_reveal = None;
    p.additional_inputs.clear();
    p.challenge_witness = None;
    p.split_root_proof = None;
    p.asset.script_key = to;
    p.asset.split_commitment_root = None;
    p.asset.prev_witnesses = vec![Witness {
        prev_id: Some(prev_id),
        tx_witness: Vec::new(),
        split_commitment: None,
    }];
    let msg = crate::vm::key_spend_sighash(&p.asset, &[(prev_id, prev.asset.clone())], 0)
        .map_err(|e| e.to_string())?;
    let sig = crate::taproot::secp().sign_schnorr_no_aux_rand(&Message::from_digest(msg), &keys);
    p.asset.prev_witnesses[0].tx_witness = vec![sig.as_ref().to_vec()];
    let input = p
        .anchor_tx
        .tx
        .input
        .first_mut()
        .ok_or("anchor tx has no input")?;
    input.previous_output = out;
    reanchor(&mut p)?;
    Ok(p)
}

/// Recomputes everything above `p`'s asset: commitments, the anchor output
/// keys, the anchor tx, the block's merkle root and proof of work (after any
/// edit of the asset: tests use it to make proofs that are well anchored
/// yet wrong in what only the VM checks).
pub fn reanchor(p: &mut Proof) -> Result<(), String> {
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
    mine(p)
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
