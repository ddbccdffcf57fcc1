//! Inclusion/exclusion proofs and their compressed byte format.

use crate::node::{bit, empty_tree, Hash, Node, SumOverflow, MAX_DEPTH};

/// A full proof: 256 siblings, `nodes[0]` at the leaf level (depth 256),
/// `nodes[255]` the root's other child.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    pub nodes: Vec<Node>,
}

/// Why a compressed proof could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("compressed proof truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("compressed proof has {explicit} explicit nodes but its bitmap marks {non_empty} non-empty positions")]
    CountMismatch { explicit: usize, non_empty: usize },
    #[error("compressed proof has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("proof has {0} nodes, expected 256")]
    WrongLength(usize),
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("proof yields root {got_hash} (sum {got_sum}), expected {want_hash} (sum {want_sum})")]
    RootMismatch {
        got_hash: String,
        got_sum: u64,
        want_hash: String,
        want_sum: u64,
    },
    #[error(transparent)]
    Overflow(#[from] SumOverflow),
    #[error(transparent)]
    Malformed(#[from] ProofError),
}

impl Proof {
    /// Root implied by this proof for `leaf` at `key`.
    pub fn root(&self, key: &Hash, leaf: Node) -> Result<Node, VerifyError> {
        if self.nodes.len() != MAX_DEPTH {
            return Err(ProofError::WrongLength(self.nodes.len()).into());
        }
        let mut cur = leaf;
        for (j, sib) in self.nodes.iter().enumerate() {
            let depth = MAX_DEPTH - 1 - j;
            cur = if bit(key, depth) {
                Node::branch(sib, &cur)?
            } else {
                Node::branch(&cur, sib)?
            };
        }
        Ok(cur)
    }

    /// Root implied for `leaf` at `key`, with the root's two children
    /// (left, right): commitments hash those, not the root itself.
    pub fn root_with_children(
        &self,
        key: &Hash,
        leaf: Node,
    ) -> Result<(Node, Node, Node), VerifyError> {
        if self.nodes.len() != MAX_DEPTH {
            return Err(ProofError::WrongLength(self.nodes.len()).into());
        }
        let mut cur = leaf;
        let mut children = (leaf, leaf);
        for (j, sib) in self.nodes.iter().enumerate() {
            let depth = MAX_DEPTH - 1 - j;
            children = if bit(key, depth) {
                (*sib, cur)
            } else {
                (cur, *sib)
            };
            cur = Node::branch(&children.0, &children.1)?;
        }
        Ok((cur, children.0, children.1))
    }

    /// Checks that `leaf` (use [`Node::leaf`] of empty value, sum 0 for an
    /// exclusion proof) sits at `key` under `root`.
    pub fn verify(&self, key: &Hash, leaf: Node, root: &Node) -> Result<(), VerifyError> {
        let got = self.root(key, leaf)?;
        if got != *root {
            return Err(VerifyError::RootMismatch {
                got_hash: hex::encode(got.hash),
                got_sum: got.sum,
                want_hash: hex::encode(root.hash),
                want_sum: root.sum,
            });
        }
        Ok(())
    }

    pub fn compress(&self) -> CompressedProof {
        let empty = empty_tree();
        let mut bits = [0u8; 32];
        let mut nodes = Vec::new();
        for (k, n) in self.nodes.iter().enumerate() {
            if *n == empty[MAX_DEPTH - k] {
                bits[k / 8] |= 1 << (k % 8);
            } else {
                nodes.push(*n);
            }
        }
        CompressedProof { nodes, bits }
    }
}

/// tapd's compressed proof: `u16 BE count || count × (hash32 || sum u64 BE) ||
/// 32 bytes of bits` (bit k set = `nodes[k]` is the empty subtree).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CompressedProof {
    pub nodes: Vec<Node>,
    pub bits: [u8; 32],
}

impl CompressedProof {
    pub const NODE_LEN: usize = 40;

    /// Strict decode: the whole input must be one proof.
    pub fn decode(b: &[u8]) -> Result<Self, ProofError> {
        let (p, used) = Self::decode_prefix(b)?;
        if used != b.len() {
            return Err(ProofError::TrailingBytes(b.len() - used));
        }
        Ok(p)
    }

    /// Decodes one proof from the start of `b`, returning bytes consumed.
    pub fn decode_prefix(b: &[u8]) -> Result<(Self, usize), ProofError> {
        let need = |n: usize| -> Result<(), ProofError> {
            if b.len() < n {
                Err(ProofError::Truncated {
                    needed: n,
                    available: b.len(),
                })
            } else {
                Ok(())
            }
        };
        need(2)?;
        let count = u16::from_be_bytes([b[0], b[1]]) as usize;
        let total = 2 + count * Self::NODE_LEN + 32;
        need(total)?;
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let o = 2 + i * Self::NODE_LEN;
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&b[o..o + 32]);
            let mut sum = [0u8; 8];
            sum.copy_from_slice(&b[o + 32..o + 40]);
            nodes.push(Node {
                hash,
                sum: u64::from_be_bytes(sum),
            });
        }
        let mut bits = [0u8; 32];
        bits.copy_from_slice(&b[total - 32..total]);
        let non_empty = bits.iter().map(|x| x.count_zeros() as usize).sum::<usize>();
        if non_empty != count {
            return Err(ProofError::CountMismatch {
                explicit: count,
                non_empty,
            });
        }
        Ok((CompressedProof { nodes, bits }, total))
    }

    pub fn encoded_len(&self) -> usize {
        2 + self.nodes.len() * Self::NODE_LEN + 32
    }

    pub fn encode_to(&self, out: &mut Vec<u8>) {
        // decode() guarantees at most 256 nodes; a hand-built proof with more
        // is a programming error, so clamp rather than panic.
        out.extend_from_slice(&(self.nodes.len().min(u16::MAX as usize) as u16).to_be_bytes());
        for n in &self.nodes {
            out.extend_from_slice(&n.hash);
            out.extend_from_slice(&n.sum.to_be_bytes());
        }
        out.extend_from_slice(&self.bits);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_to(&mut v);
        v
    }

    pub fn decompress(&self) -> Result<Proof, ProofError> {
        let empty = empty_tree();
        let mut explicit = self.nodes.iter();
        let mut nodes = Vec::with_capacity(MAX_DEPTH);
        for k in 0..MAX_DEPTH {
            if (self.bits[k / 8] >> (k % 8)) & 1 == 1 {
                nodes.push(empty[MAX_DEPTH - k]);
            } else {
                match explicit.next() {
                    Some(n) => nodes.push(*n),
                    None => {
                        return Err(ProofError::CountMismatch {
                            explicit: self.nodes.len(),
                            non_empty: k + 1,
                        })
                    }
                }
            }
        }
        Ok(Proof { nodes })
    }
}
