//! Where tree nodes live. The tree code is the same over memory and
//! PostgreSQL; a store only loads and saves content-addressed nodes and the
//! tree's root.

use crate::node::{Hash, Node};
use std::collections::HashMap;
use std::convert::Infallible;

/// A stored, non-empty node. Empty subtrees are never stored: their hashes
/// are the well-known `empty_tree()` values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StoredNode {
    /// An inner node; children as (hash, sum).
    Branch { left: Node, right: Node },
    /// A subtree holding exactly one leaf (a "compacted" leaf); its hash
    /// depends on the depth it sits at, which the parent implies. Only the
    /// leaf's own node (`SHA256(value || sum)`, sum) is kept: values live
    /// with their owner (e.g. the proofs table), not in the tree.
    Leaf { key: Hash, leaf: Node },
}

/// Storage backend of one tree (one namespace). Nodes are immutable and
/// addressed by hash, so a store may cache them freely.
#[async_trait::async_trait]
pub trait NodeStore: Send {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The current root, or `None` for a tree never written.
    async fn load_root(&mut self) -> Result<Option<Node>, Self::Error>;
    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, Self::Error>;
    /// Saves new nodes (already-present hashes may be given again).
    async fn store_nodes(&mut self, nodes: Vec<(Hash, StoredNode)>) -> Result<(), Self::Error>;
    async fn store_root(&mut self, root: Node) -> Result<(), Self::Error>;
    /// An update is rewriting the position `hash` holds: once the update is
    /// stored, this tree no longer points at it. A cache may drop it (a node
    /// is content-addressed, so dropping one still in use somewhere only
    /// costs a reload). The default keeps everything.
    fn superseded(&mut self, _hash: &Hash) {}
}

/// An in-memory store (tests, recovery client, interop CLI).
#[derive(Default, Clone, Debug)]
pub struct MemStore {
    root: Option<Node>,
    nodes: HashMap<Hash, StoredNode>,
    written: u64,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of distinct nodes held.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// Node writes requested so far (including re-writes of known hashes).
    pub fn nodes_written(&self) -> u64 {
        self.written
    }
}

#[async_trait::async_trait]
impl NodeStore for MemStore {
    type Error = Infallible;

    async fn load_root(&mut self) -> Result<Option<Node>, Infallible> {
        Ok(self.root)
    }
    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, Infallible> {
        Ok(self.nodes.get(hash).cloned())
    }
    async fn store_nodes(&mut self, nodes: Vec<(Hash, StoredNode)>) -> Result<(), Infallible> {
        self.written += nodes.len() as u64;
        for (h, n) in nodes {
            self.nodes.insert(h, n);
        }
        Ok(())
    }
    async fn store_root(&mut self, root: Node) -> Result<(), Infallible> {
        self.root = Some(root);
        Ok(())
    }
}
