//! tapvault-codec: the Taproot Assets wire formats, decoded and re-encoded
//! bit for bit (spec: TAP-ENCODINGS.md §1–4, §7.2, §9).
//!
//! Pure: no I/O, no async. Every decoder works on an in-memory slice, checks
//! every length against both the remaining input and tapd's caps, and reports
//! failures as a [`DecodeError`] naming the record path and the reason.
//! Decoded proofs keep their exact input bytes ([`RawProof`], [`FileEntry`]):
//! storage and hashing use those, never a re-encoding.

pub mod address;
pub mod asset;
pub mod backup;
pub mod derived;
pub mod error;
pub mod file;
pub mod log;
pub mod primitives;
pub mod proof;
pub mod tlv;
pub mod universe;

pub use address::{Address, AddressNetwork};
pub use asset::{Asset, AssetId, Genesis, PrevId, SplitCommitment, SplitRoot, Witness};
pub use backup::{
    AssetBackup, KeyDescriptorBackup, RehydrationHint, ScriptKeyBackup, WalletBackup,
};
pub use derived::burn_key;
pub use error::{DecodeError, ErrorKind};
pub use file::{File, FileEntry};
pub use primitives::PubKey;
pub use proof::{
    AnchorTx, AssetProof, BlockHeader, CommitmentProof, GroupKeyReveal, MetaReveal, Proof,
    RawProof, StxoProof, TaprootAssetProof, TaprootProof, TapscriptPreimage, TapscriptProof,
    TxMerkleProof,
};
pub use universe::{
    proof_type, universe_leaf_info, universe_leaf_key, ProofType, UniverseLeafInfo, UniverseSubject,
};

/// A blob that is either a single proof or a proof file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofBlob {
    Single(Box<RawProof>),
    File(File),
}

impl ProofBlob {
    /// Sniffs the magic and decodes accordingly.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.starts_with(&file::FILE_MAGIC) {
            Ok(ProofBlob::File(File::decode(b)?))
        } else {
            Ok(ProofBlob::Single(Box::new(RawProof::decode(b)?)))
        }
    }
}
