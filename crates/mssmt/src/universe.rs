//! Leaf rules of universe trees and the multiverse (spec §7.3, §7.4).

use crate::node::{Hash, Node};

/// Which universe tree a proof belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProofType {
    Issuance,
    Transfer,
}

impl ProofType {
    /// tapd's tree namespace prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofType::Issuance => "issuance",
            ProofType::Transfer => "transfer",
        }
    }
    /// The multiverse tree namespace this type's roots go into.
    pub fn multiverse_namespace(self) -> &'static str {
        match self {
            ProofType::Issuance => "multiverse-issuance",
            ProofType::Transfer => "multiverse-transfer",
        }
    }
}

/// tapd's namespace of a universe tree: `"issuance-<hex id>"`.
pub fn universe_namespace(id: &Hash, ty: ProofType) -> String {
    format!("{}-{}", ty.as_str(), hex::encode(id))
}

/// Sum of a universe leaf: the asset amount in issuance trees, 1 per
/// transfer in transfer trees.
pub fn universe_leaf_sum(ty: ProofType, amount: u64) -> u64 {
    match ty {
        ProofType::Issuance => amount,
        ProofType::Transfer => 1,
    }
}

/// The multiverse leaf of a universe: value = root hash; sum = 1 per asset
/// (issuance) or the universe root's sum (transfer).
pub fn multiverse_leaf(ty: ProofType, universe_root: &Node) -> (Vec<u8>, u64) {
    let sum = match ty {
        ProofType::Issuance => 1,
        ProofType::Transfer => universe_root.sum,
    };
    (universe_root.hash.to_vec(), sum)
}
