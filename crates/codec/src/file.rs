//! The proof file ("TAPF", spec §3): every proof from genesis to the current
//! state, hash-chained.

use crate::error::{ErrorKind, Result, Within};
use crate::primitives::sha256;
use crate::proof::{Proof, RawProof};
use crate::tlv::{write_bigsize, Reader};

pub const FILE_MAGIC: [u8; 4] = *b"TAPF";
pub const MAX_PROOFS_PER_FILE: u64 = 420_000;
pub const MAX_PROOF_IN_FILE: u64 = 128 * 1024 * 1024;
/// tapd's `CheckMaxFileSize` cap on a whole file over RPC.
pub const MAX_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// One proof of a file: the exact bytes and its chained hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub raw: Vec<u8>,
    pub hash: [u8; 32],
}

/// A proof file. Proof bytes are kept exactly as read; decoding individual
/// proofs is on demand.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct File {
    pub version: u32,
    pub entries: Vec<FileEntry>,
}

/// `SHA256(prev_hash || proof_bytes)`.
pub fn chain_hash(prev: &[u8; 32], proof: &[u8]) -> [u8; 32] {
    sha256(&[prev, proof])
}

impl File {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the framing and checks the hash chain. Proofs themselves are
    /// not decoded here (see [`File::decode_proofs`]).
    pub fn decode(b: &[u8]) -> Result<Self> {
        Self::decode_inner(b).within("file")
    }

    fn decode_inner(b: &[u8]) -> Result<Self> {
        if b.len() < 4 || b[..4] != FILE_MAGIC {
            return Err(ErrorKind::BadMagic {
                expected: "TAPF",
                got: hex::encode(&b[..b.len().min(4)]),
            }
            .into());
        }
        let mut r = Reader::new(&b[4..]);
        let version = r.u32_be().within("version")?;
        // Each entry is at least 1 (length) + 4 (magic) + 32 (hash) bytes.
        let n = r.count(MAX_PROOFS_PER_FILE, 37).within("proof count")?;
        let mut entries = Vec::with_capacity(n);
        let mut prev = [0u8; 32];
        for i in 0..n {
            let raw = r
                .var_bytes(MAX_PROOF_IN_FILE)
                .within(format!("proof {i}"))?;
            let hash: [u8; 32] = r.array().within(format!("proof {i} hash"))?;
            let want = chain_hash(&prev, raw);
            if want != hash {
                return Err(ErrorKind::HashChainMismatch { index: i }.into());
            }
            prev = hash;
            entries.push(FileEntry {
                raw: raw.to_vec(),
                hash,
            });
        }
        r.finish()?;
        Ok(File { version, entries })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = FILE_MAGIC.to_vec();
        out.extend_from_slice(&self.version.to_be_bytes());
        write_bigsize(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            write_bigsize(&mut out, e.raw.len() as u64);
            out.extend_from_slice(&e.raw);
            out.extend_from_slice(&e.hash);
        }
        out
    }

    /// Appends raw proof bytes, hashing only the new entry.
    pub fn append_raw(&mut self, raw: Vec<u8>) {
        let prev = self.entries.last().map(|e| e.hash).unwrap_or([0; 32]);
        let hash = chain_hash(&prev, &raw);
        self.entries.push(FileEntry { raw, hash });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decodes every proof, keeping its bytes.
    pub fn decode_proofs(&self) -> Result<Vec<RawProof>> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| RawProof::decode(&e.raw).within(format!("file.proof {i}")))
            .collect()
    }

    /// Decodes the last proof: the asset's current state.
    pub fn last_proof(&self) -> Result<Option<Proof>> {
        self.entries
            .last()
            .map(|e| Proof::decode(&e.raw))
            .transpose()
    }
}
