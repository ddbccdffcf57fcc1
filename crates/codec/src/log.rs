//! The byte layouts of tapvault's per-tenant receipt log (docs/RECEIPTS.md):
//! log entries (the Merkle leaves), their hashes, and the message a signed
//! tree head signs. Hashing is RFC 9162's, so any transparency-log verifier
//! can check inclusion and consistency once it has these bytes.

use crate::primitives::sha256;

/// What a log entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A proof version; content hash = SHA-256 of the raw proof.
    Proof = 1,
    /// A wallet backup blob; SHA-256 of the blob.
    WalletBackup = 2,
    /// A TAP address; SHA-256 of its bech32m string.
    Address = 3,
    /// A tapscript tree; [`tapscript_content_hash`].
    Tapscript = 4,
}

impl Kind {
    pub fn from_code(c: u8) -> Option<Kind> {
        match c {
            1 => Some(Kind::Proof),
            2 => Some(Kind::WalletBackup),
            3 => Some(Kind::Address),
            4 => Some(Kind::Tapscript),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Proof => "proof",
            Kind::WalletBackup => "wallet backup",
            Kind::Address => "address",
            Kind::Tapscript => "tapscript tree",
        }
    }
}

/// Entry layout version (the first byte of every entry).
pub const ENTRY_VERSION: u8 = 1;
/// Length of an encoded entry.
pub const ENTRY_LEN: usize = 50;

/// One log entry: the leaf data of the log's Merkle tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub kind: Kind,
    pub content_hash: [u8; 32],
    /// Its index in the tenant's log (0-based).
    pub index: u64,
    /// Arrival time, unix microseconds.
    pub arrived_at: i64,
}

impl Entry {
    /// `0x01 ‖ kind ‖ content hash ‖ index u64 BE ‖ arrival i64 BE`.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0] = ENTRY_VERSION;
        out[1] = self.kind.code();
        out[2..34].copy_from_slice(&self.content_hash);
        out[34..42].copy_from_slice(&self.index.to_be_bytes());
        out[42..50].copy_from_slice(&self.arrived_at.to_be_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Entry, String> {
        if b.len() != ENTRY_LEN {
            return Err(format!("log entry of {} bytes, want {ENTRY_LEN}", b.len()));
        }
        if b[0] != ENTRY_VERSION {
            return Err(format!("log entry version {}", b[0]));
        }
        let kind = Kind::from_code(b[1]).ok_or_else(|| format!("log entry kind {}", b[1]))?;
        let mut content_hash = [0u8; 32];
        content_hash.copy_from_slice(&b[2..34]);
        let mut i = [0u8; 8];
        i.copy_from_slice(&b[34..42]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[42..50]);
        Ok(Entry {
            kind,
            content_hash,
            index: u64::from_be_bytes(i),
            arrived_at: i64::from_be_bytes(t),
        })
    }

    /// RFC 9162 leaf hash: SHA-256(0x00 ‖ entry).
    pub fn leaf_hash(&self) -> [u8; 32] {
        leaf_hash(&self.encode())
    }
}

/// RFC 9162 leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    sha256(&[&[0x00], data])
}

/// RFC 9162 interior node hash.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[0x01], left, right])
}

/// The content hash of an address: SHA-256 of its encoded string.
pub fn address_content_hash(encoded: &str) -> [u8; 32] {
    sha256(&[encoded.as_bytes()])
}

/// A tapscript tree's leaves as stored and hashed: `(leaf version u8 ‖
/// BigSize script length ‖ script)*`, in assembly order.
pub fn tapscript_leaves<'a>(leaves: impl IntoIterator<Item = (u8, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (version, script) in leaves {
        out.push(version);
        crate::tlv::write_var_bytes(&mut out, script);
    }
    out
}

/// The content hash a tapscript tree is stored by: SHA-256(root hash ‖ raw
/// key (33 bytes, or nothing) ‖ leaves as stored).
pub fn tapscript_content_hash(
    root_hash: &[u8; 32],
    raw_key: Option<&[u8; 33]>,
    leaves: &[u8],
) -> [u8; 32] {
    sha256(&[root_hash, raw_key.map(|k| &k[..]).unwrap_or(&[]), leaves])
}

/// Domain separator of a signed tree head.
pub const HEAD_DOMAIN: &[u8] = b"tapvault/tree-head/v1\0";

/// A tree head: what the log key signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// The tenant's name (stable across export and import, unlike its id).
    pub tenant: String,
    pub tree_size: u64,
    pub root_hash: [u8; 32],
    /// Unix microseconds.
    pub timestamp: i64,
}

impl TreeHead {
    /// `HEAD_DOMAIN ‖ u16 BE name length ‖ name ‖ size u64 BE ‖ root ‖
    /// timestamp i64 BE`.
    pub fn message(&self) -> Vec<u8> {
        let name = self.tenant.as_bytes();
        let name = &name[..name.len().min(u16::MAX as usize)];
        let mut m = Vec::with_capacity(HEAD_DOMAIN.len() + 2 + name.len() + 48);
        m.extend_from_slice(HEAD_DOMAIN);
        m.extend_from_slice(&(name.len() as u16).to_be_bytes());
        m.extend_from_slice(name);
        m.extend_from_slice(&self.tree_size.to_be_bytes());
        m.extend_from_slice(&self.root_hash);
        m.extend_from_slice(&self.timestamp.to_be_bytes());
        m
    }
}

/// RFC 9162 root of leaf hashes (MTH), for tests and small logs; the empty
/// tree's root is SHA-256 of nothing.
pub fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_refuse_other_layouts() {
        let e = Entry {
            kind: Kind::Tapscript,
            content_hash: [9; 32],
            index: 258,
            arrived_at: -5,
        };
        let b = e.encode();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 4);
        assert_eq!(&b[34..42], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(Entry::decode(&b).unwrap(), e);
        assert!(Entry::decode(&b[..49]).is_err());
        let mut bad = b;
        bad[1] = 9;
        assert!(Entry::decode(&bad).is_err());
        bad = b;
        bad[0] = 2;
        assert!(Entry::decode(&bad).is_err());
    }

    #[test]
    fn root_splits_at_the_largest_power_of_two_below_n() {
        let l: Vec<[u8; 32]> = (0..3u8).map(|i| leaf_hash(&[i])).collect();
        assert_eq!(root_of(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(root_of(&l[..1]), l[0]);
    }
}
