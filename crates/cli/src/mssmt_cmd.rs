//! `tapvault mssmt …`: interop checks against other MS-SMT implementations.

use anyhow::{anyhow, bail, Context, Result};
use std::io::BufRead;
use tapvault_mssmt::{Hash, LeafUpdate, MemTree};

/// Parses `KEY_HEX VALUE_HEX SUM` lines; blank lines and `#` comments skipped.
pub fn parse_leaves(input: impl BufRead) -> Result<Vec<LeafUpdate>> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("reading line {n}"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [k, v, s] = parts.as_slice() else {
            bail!(
                "line {n}: expected `KEY_HEX VALUE_HEX SUM`, got {} fields",
                parts.len()
            );
        };
        let key: Hash = hex::decode(k)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("line {n}: key must be 32 bytes of hex"))?;
        let value = hex::decode(v).map_err(|e| anyhow!("line {n}: value is not hex: {e}"))?;
        let sum: u64 = s
            .parse()
            .map_err(|e| anyhow!("line {n}: sum is not a u64: {e}"))?;
        out.push(LeafUpdate::new(key, &value, sum));
    }
    Ok(out)
}

pub fn build(leaves: Vec<LeafUpdate>) -> Result<MemTree> {
    let mut t = MemTree::new();
    t.apply(leaves).map_err(|e| anyhow!("{e}"))?;
    Ok(t)
}

pub fn parse_key(k: &str) -> Result<Hash> {
    hex::decode(k)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("key must be 32 bytes of hex"))
}
