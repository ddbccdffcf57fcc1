//! Proofs as taprpc messages (informational; tapd clients read only the raw
//! proof bytes).

use crate::proto::taprpc as tp;
use tapvault_codec::{GroupKeyReveal, Proof};

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
