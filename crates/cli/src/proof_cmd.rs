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
    use tapvault_verify::{verify_proof, verify_steps, Check, Options, VerifyError};
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
            // The chain's verdict is its first failure, as verify_chain
            // reports it; only a broken link is printed as such (a failed
            // proof already shows in its own report).
            let mut first: Option<VerifyError> = proofs.is_empty().then(|| VerifyError::Chain {
                index: 0,
                reason: "empty proof file".into(),
            });
            for (i, (rp, step)) in proofs.iter().zip(verify_steps(&proofs, opts)).enumerate() {
                let r = step.report;
                ok &= r.is_ok();
                out += &format!("proof {i} ({}):\n{r}", rp.proof.outpoint());
                if first.is_none() {
                    first = r
                        .failures()
                        .next()
                        .cloned()
                        .or(step.link.err())
                        .or(step.inputs.err());
                }
            }
            match first {
                None => out += "✓ proof file chain\n",
                Some(e) => {
                    ok = false;
                    if e.check() == Check::Chain {
                        out += &format!("✗ proof file chain: {e}\n");
                    }
                }
            }
        }
    }
    out += if ok { "valid\n" } else { "INVALID\n" };
    Ok((out, ok))
}
