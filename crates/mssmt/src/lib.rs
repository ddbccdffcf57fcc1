//! A merkle-sum sparse merkle tree (MS-SMT) whose roots, sums and proofs are
//! byte-identical to tapd's (spec: TAP-ENCODINGS.md §5, §7).
//!
//! Pure: no I/O. Storage is behind [`NodeStore`]; [`MemStore`] keeps nodes in
//! memory, the PostgreSQL store lives in the store crate.

pub mod node;
pub mod proof;
pub mod store;
pub mod tree;

pub use node::{
    bit, compacted_leaf_hash, empty_root, empty_tree, Hash, Node, SumOverflow, MAX_DEPTH,
};
pub use proof::{CompressedProof, Proof, ProofError, VerifyError};
pub use store::{MemStore, NodeStore, StoredNode};
pub use tree::{block_on_ready, LeafUpdate, MemError, MemResult, MemTree, Tree, TreeError};
