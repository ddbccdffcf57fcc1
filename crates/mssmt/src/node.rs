//! Node hashing: the byte rules of tapd's MS-SMT (leaf, branch, empty tree).

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A 32-byte node hash (or tree key).
pub type Hash = [u8; 32];

/// Depth of the tree: keys are 256 bits.
pub const MAX_DEPTH: usize = 256;

/// A node as its parent sees it: hash and sum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Node {
    pub hash: Hash,
    pub sum: u64,
}

/// Sums are u64 and must never wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("integer overflow: merkle sum {left} + {right} does not fit in u64")]
pub struct SumOverflow {
    pub left: u64,
    pub right: u64,
}

impl Node {
    /// `SHA256(value || sum BE)`.
    pub fn leaf(value: &[u8], sum: u64) -> Node {
        let mut h = Sha256::new();
        h.update(value);
        h.update(sum.to_be_bytes());
        Node {
            hash: h.finalize().into(),
            sum,
        }
    }

    /// `SHA256(left || right || (left.sum + right.sum) BE)`.
    pub fn branch(left: &Node, right: &Node) -> Result<Node, SumOverflow> {
        let sum = left.sum.checked_add(right.sum).ok_or(SumOverflow {
            left: left.sum,
            right: right.sum,
        })?;
        Ok(Node {
            hash: branch_hash(&left.hash, &right.hash, sum),
            sum,
        })
    }

    /// Whether this is the empty subtree root at `depth` (0 = tree root).
    pub fn is_empty_at(&self, depth: usize) -> bool {
        *self == empty_tree()[depth]
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// SHA-256's initial state.
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// `SHA256(left || right || sum BE)`, the two blocks handed straight to the
/// compression function. A proof check or a tree update hashes 256 branches
/// per path; through `Digest` each one also paid for buffering and
/// finalising, a fifth of the hashing time.
fn branch_hash(left: &Hash, right: &Hash, sum: u64) -> Hash {
    let mut first = [0u8; 64];
    first[..32].copy_from_slice(left);
    first[32..].copy_from_slice(right);
    // The 72-byte message's tail: the sum, the 0x80 terminator, zeros and
    // the length in bits.
    let mut second = [0u8; 64];
    second[..8].copy_from_slice(&sum.to_be_bytes());
    second[8] = 0x80;
    second[56..].copy_from_slice(&(72u64 * 8).to_be_bytes());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &[first, second]);
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// `empty_tree()[d]` is the root of an empty subtree whose top is at depth `d`;
/// index 256 is the empty leaf, index 0 the empty tree root.
pub fn empty_tree() -> &'static [Node; MAX_DEPTH + 1] {
    static EMPTY: OnceLock<[Node; MAX_DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut nodes = [Node {
            hash: [0; 32],
            sum: 0,
        }; MAX_DEPTH + 1];
        nodes[MAX_DEPTH] = Node::leaf(&[], 0);
        for d in (0..MAX_DEPTH).rev() {
            // Sums are zero, so this cannot overflow.
            nodes[d] = Node::branch(&nodes[d + 1], &nodes[d + 1]).unwrap_or(nodes[d + 1]);
        }
        nodes
    })
}

/// The root of an empty tree.
pub fn empty_root() -> Node {
    empty_tree()[0]
}

/// The path bit for `depth` (0 = just below the root): byte 0 first,
/// least-significant bit first within a byte; 0 = left, 1 = right.
#[inline]
pub fn bit(key: &Hash, depth: usize) -> bool {
    (key[depth / 8] >> (depth % 8)) & 1 == 1
}

/// Hash of a subtree whose top is at `depth` and which holds exactly one
/// leaf: the leaf hashed up from the bottom with empty siblings.
pub fn compacted_leaf_hash(key: &Hash, leaf: Node, depth: usize) -> Result<Node, SumOverflow> {
    hash_up(key, leaf, MAX_DEPTH, depth)
}

/// Continues [`compacted_leaf_hash`]: `node` is the one-leaf subtree of
/// `key` whose top is at `from`; returns the one whose top is at `to`
/// (`to <= from`).
pub fn hash_up(key: &Hash, node: Node, from: usize, to: usize) -> Result<Node, SumOverflow> {
    let empty = empty_tree();
    let mut cur = node;
    for d in (to..from).rev() {
        cur = if bit(key, d) {
            Node::branch(&empty[d + 1], &cur)?
        } else {
            Node::branch(&cur, &empty[d + 1])?
        };
    }
    Ok(cur)
}
