//! Reading user input: a path or `-`, raw bytes or hex.

use anyhow::{Context, Result};
use std::io::Read;

/// Reads `path` (or stdin for `-`). Text that is entirely hex (after
/// trimming whitespace) is decoded; anything else is taken as raw bytes.
pub fn read_blob(path: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    if path == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading stdin")?;
    } else {
        data = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    }
    Ok(maybe_hex(data))
}

fn maybe_hex(data: Vec<u8>) -> Vec<u8> {
    let trimmed: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !trimmed.is_empty()
        && trimmed.len().is_multiple_of(2)
        && trimmed.iter().all(|b| b.is_ascii_hexdigit())
    {
        if let Ok(b) = hex::decode(&trimmed) {
            return b;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_or_raw() {
        assert_eq!(super::maybe_hex(b"5441\n5050\n".to_vec()), b"TAPP".to_vec());
        assert_eq!(super::maybe_hex(b"TAPP".to_vec()), b"TAPP".to_vec());
    }
}
