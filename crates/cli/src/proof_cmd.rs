//! `tapvault proof …`

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tapvault_codec::{universe_leaf_info, Proof, ProofBlob, RawProof};

pub fn proof_json(raw: &RawProof) -> Value {
    let p: &Proof = &raw.proof;
    let info = universe_leaf_info(p);
    let a = &p.asset;
    json!({
        "asset_id": hex::encode(a.id()),
        "name": a.genesis.tag_lossy(),
        "type": match a.asset_type { 0 => "normal".to_string(), 1 => "collectible".to_string(), t => format!("unknown({t})") },
        "amount": a.amount,
        "asset_version": a.version,
        "script_key": a.script_key.to_hex(),
        "group_key": a.group_key.map(|g| g.to_hex()),
        "anchor_outpoint": info.anchor.to_string(),
        "prev_out": p.prev_out.to_string(),
        "block_height": p.block_height,
        "block_hash": p.block_header.block_hash().to_string(),
        "proof_version": p.version,
        "is_genesis": a.is_genesis(),
        "universe": {
            "proof_type": info.proof_type.as_str(),
            "id": hex::encode(info.subject.id_bytes()),
            "leaf_key": hex::encode(info.leaf_key),
            "leaf_sum": info.sum,
        },
        "meta": p.meta_reveal.as_ref().map(|m| json!({
            "type": m.meta_type,
            "hash": hex::encode(m.meta_hash()),
            "size": m.data.len(),
            "decimal_display": m.decimal_display,
        })),
        "exclusion_proofs": p.exclusion_proofs.len(),
        "has_split_root_proof": p.split_root_proof.is_some(),
        "size": raw.raw.len(),
    })
}

pub fn decode(path: &str) -> Result<Value> {
    let blob = crate::input::read_blob(path)?;
    let decoded = ProofBlob::decode(&blob).context("not a valid proof or proof file")?;
    Ok(match decoded {
        ProofBlob::Single(raw) => {
            let mut v = proof_json(&raw);
            v["kind"] = json!("proof");
            v["proof_count"] = json!(1);
            v
        }
        ProofBlob::File(f) => {
            let proofs = f
                .decode_proofs()
                .context("proof file holds an invalid proof")?;
            let list: Vec<Value> = proofs.iter().map(proof_json).collect();
            let last = list.last().cloned().unwrap_or(Value::Null);
            json!({
                "kind": "file",
                "file_version": f.version,
                "proof_count": proofs.len(),
                "current": last,
                "proofs": list,
            })
        }
    })
}

/// Verifies a proof or proof file offline; returns the printed report and
/// whether everything passed.
pub fn verify(path: &str, header: bool, vm: bool) -> Result<(String, bool)> {
    use tapvault_verify::{verify_proof, verify_witness, Check, Options, Outcome};
    let opts = Options { header, vm };
    let blob = crate::input::read_blob(path)?;
    let decoded = ProofBlob::decode(&blob).context("not a valid proof or proof file")?;
    let mut out = String::new();
    let mut ok = true;
    match decoded {
        ProofBlob::Single(raw) => {
            let r = verify_proof(&raw.proof, opts);
            ok &= r.is_ok();
            out += &r.to_string();
        }
        ProofBlob::File(f) => {
            let proofs = f
                .decode_proofs()
                .context("proof file holds an invalid proof")?;
            for (i, rp) in proofs.iter().enumerate() {
                let mut r = verify_proof(&rp.proof, opts);
                // In a file a transfer's input is the proof before it.
                if let (true, Some(prev)) = (vm && i > 0, i.checked_sub(1).map(|j| &proofs[j])) {
                    if let Some(slot) = r.results.iter_mut().find(|(c, _)| *c == Check::Witness) {
                        slot.1 = match verify_witness(&rp.proof, Some(&prev.proof)) {
                            Ok(None) => Outcome::Passed,
                            Ok(Some(why)) => Outcome::Skipped(why),
                            Err(e) => Outcome::Failed(e),
                        };
                    }
                }
                ok &= r.is_ok();
                out += &format!("proof {i} ({}):\n{r}", rp.proof.outpoint());
            }
            match tapvault_verify::verify_chain(&proofs, opts) {
                Ok(_) => out += "✓ proof file chain\n",
                Err(e) => {
                    ok = false;
                    if e.check() == tapvault_verify::Check::Chain {
                        out += &format!("✗ proof file chain: {e}\n");
                    }
                }
            }
        }
    }
    out += if ok { "valid\n" } else { "INVALID\n" };
    Ok((out, ok))
}
