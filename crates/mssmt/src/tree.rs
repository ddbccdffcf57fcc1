//! The compacted MS-SMT: a subtree holding a single leaf is stored as that
//! leaf, so a tree of n random leaves has about 2n stored nodes instead of
//! 256n, while roots and proofs are those of the full 256-level tree.

use crate::node::{
    bit, compacted_leaf_hash, empty_root, empty_tree, hash_up, Hash, Node, SumOverflow, MAX_DEPTH,
};
use crate::proof::Proof;
use crate::store::{MemStore, NodeStore, StoredNode};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, thiserror::Error)]
pub enum TreeError<E: std::error::Error + 'static> {
    #[error("node store: {0}")]
    Store(#[source] E),
    #[error(transparent)]
    Overflow(#[from] SumOverflow),
    #[error("tree is corrupt: node {0} is referenced but not stored")]
    MissingNode(String),
}

/// One leaf write; the empty leaf (empty value, sum 0) deletes the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafUpdate {
    pub key: Hash,
    /// `Node::leaf(value, sum)`.
    pub leaf: Node,
}

impl LeafUpdate {
    pub fn new(key: Hash, value: &[u8], sum: u64) -> Self {
        LeafUpdate {
            key,
            leaf: Node::leaf(value, sum),
        }
    }
    pub fn delete(key: Hash) -> Self {
        LeafUpdate {
            key,
            leaf: empty_tree()[MAX_DEPTH],
        }
    }
    fn is_delete(&self) -> bool {
        self.leaf == empty_tree()[MAX_DEPTH]
    }
}

/// A rebuilt subtree as its parent sees it.
enum Sub {
    /// Untouched by the update; kind unknown without a lookup.
    Existing(Node),
    Empty,
    Leaf {
        key: Hash,
        leaf: Node,
        node: Node,
    },
    Branch(Node),
}

impl Sub {
    fn node(&self, depth: usize) -> Node {
        match self {
            Sub::Existing(n) | Sub::Branch(n) => *n,
            Sub::Leaf { node, .. } => *node,
            Sub::Empty => empty_tree()[depth],
        }
    }
    fn is_empty(&self, depth: usize) -> bool {
        match self {
            Sub::Empty => true,
            Sub::Existing(n) => n.is_empty_at(depth),
            _ => false,
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Depth at which a leaf's compacted hash chain is remembered. Two keys
/// share their first 64 bits with odds of about n²/2⁶⁵, so compacted
/// leaves sit above it in any real tree.
const CHECKPOINT: usize = 64;

/// At most this many remembered chains (about 120 bytes each).
const MEMO_CAP: usize = 1 << 18;

/// An MS-SMT over a [`NodeStore`].
pub struct Tree<S: NodeStore> {
    store: S,
    /// key → (leaf, its one-leaf subtree at [`CHECKPOINT`]). Hashing a
    /// compacted leaf from the bottom costs ~240 branch hashes; a leaf
    /// pushed down by a new neighbour is re-hashed from here instead. A
    /// pure function of (key, leaf), so it is never stale.
    memo: std::collections::HashMap<Hash, (Node, Node)>,
}

impl<S: NodeStore> Tree<S> {
    pub fn new(store: S) -> Self {
        Tree {
            store,
            memo: Default::default(),
        }
    }

    /// [`compacted_leaf_hash`], through the memo.
    fn leaf_at(&mut self, key: &Hash, leaf: Node, depth: usize) -> Result<Node, SumOverflow> {
        if depth > CHECKPOINT {
            return compacted_leaf_hash(key, leaf, depth);
        }
        let cp = match self.memo.get(key) {
            Some((l, n)) if *l == leaf => *n,
            _ => {
                let n = compacted_leaf_hash(key, leaf, CHECKPOINT)?;
                if self.memo.len() >= MEMO_CAP {
                    self.memo.clear();
                }
                self.memo.insert(*key, (leaf, n));
                n
            }
        };
        hash_up(key, cp, CHECKPOINT, depth)
    }
    pub fn store(&self) -> &S {
        &self.store
    }
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
    pub fn into_store(self) -> S {
        self.store
    }

    pub async fn root(&mut self) -> Result<Node, TreeError<S::Error>> {
        Ok(self
            .store
            .load_root()
            .await
            .map_err(TreeError::Store)?
            .unwrap_or_else(empty_root))
    }

    pub async fn insert(
        &mut self,
        key: Hash,
        value: &[u8],
        sum: u64,
    ) -> Result<Node, TreeError<S::Error>> {
        self.apply(vec![LeafUpdate::new(key, value, sum)]).await
    }

    pub async fn delete(&mut self, key: Hash) -> Result<Node, TreeError<S::Error>> {
        self.apply(vec![LeafUpdate::delete(key)]).await
    }

    /// Applies many leaf writes with one root update; for a repeated key the
    /// last write wins. On error nothing is written to the store.
    pub async fn apply(
        &mut self,
        mut updates: Vec<LeafUpdate>,
    ) -> Result<Node, TreeError<S::Error>> {
        // Keep the last write per key: stable sort, then dedup keeping the last.
        updates.reverse();
        updates.sort_by_key(|u| u.key);
        updates.dedup_by(|later, earlier| later.key == earlier.key);
        let root = self.root().await?;
        let mut out = Vec::new();
        let sub = self.merge(0, root, updates, &mut out).await?;
        let new_root = sub.node(0);
        if !out.is_empty() {
            self.store
                .store_nodes(out)
                .await
                .map_err(TreeError::Store)?;
        }
        self.store
            .store_root(new_root)
            .await
            .map_err(TreeError::Store)?;
        Ok(new_root)
    }

    async fn load(&mut self, hash: &Hash) -> Result<StoredNode, TreeError<S::Error>> {
        self.store
            .load_node(hash)
            .await
            .map_err(TreeError::Store)?
            .ok_or_else(|| TreeError::MissingNode(hex::encode(hash)))
    }

    fn merge<'a>(
        &'a mut self,
        depth: usize,
        cur: Node,
        mut pending: Vec<LeafUpdate>,
        out: &'a mut Vec<(Hash, StoredNode)>,
    ) -> BoxFut<'a, Result<Sub, TreeError<S::Error>>> {
        Box::pin(async move {
            if pending.is_empty() {
                return Ok(Sub::Existing(cur));
            }
            let children = if cur.is_empty_at(depth) {
                None
            } else {
                self.store.superseded(&cur.hash);
                match self.load(&cur.hash).await? {
                    StoredNode::Branch { left, right } => Some((left, right)),
                    StoredNode::Leaf { key, leaf } => {
                        // The resident leaf joins the updates unless one of
                        // them overwrites it.
                        if !pending.iter().any(|u| u.key == key) {
                            pending.push(LeafUpdate { key, leaf });
                        }
                        None
                    }
                }
            };
            let (left, right) = match children {
                Some(c) => c,
                None => {
                    pending.retain(|u| !u.is_delete());
                    if pending.len() <= 1 {
                        return match pending.pop() {
                            None => Ok(Sub::Empty),
                            Some(u) => self.make_leaf(depth, u, out),
                        };
                    }
                    // Two distinct keys differ at some bit < 256, so depth < 256.
                    let e = empty_tree()[depth + 1];
                    (e, e)
                }
            };
            let (lu, ru): (Vec<_>, Vec<_>) = pending.into_iter().partition(|u| !bit(&u.key, depth));
            let l = self.merge(depth + 1, left, lu, out).await?;
            let r = self.merge(depth + 1, right, ru, out).await?;
            self.combine(depth, l, r, out).await
        })
    }

    fn make_leaf(
        &mut self,
        depth: usize,
        u: LeafUpdate,
        out: &mut Vec<(Hash, StoredNode)>,
    ) -> Result<Sub, TreeError<S::Error>> {
        let node = self.leaf_at(&u.key, u.leaf, depth)?;
        out.push((
            node.hash,
            StoredNode::Leaf {
                key: u.key,
                leaf: u.leaf,
            },
        ));
        Ok(Sub::Leaf {
            key: u.key,
            leaf: u.leaf,
            node,
        })
    }

    async fn combine(
        &mut self,
        depth: usize,
        l: Sub,
        r: Sub,
        out: &mut Vec<(Hash, StoredNode)>,
    ) -> Result<Sub, TreeError<S::Error>> {
        let child = depth + 1;
        let (le, re) = (l.is_empty(child), r.is_empty(child));
        if le && re {
            return Ok(Sub::Empty);
        }
        // A lone compacted leaf under an otherwise empty branch moves up.
        if le || re {
            let only = if le { r } else { l };
            let (only, stored) = match only {
                Sub::Existing(n) => match self.load(&n.hash).await? {
                    StoredNode::Leaf { key, leaf } => (Sub::Leaf { key, leaf, node: n }, true),
                    StoredNode::Branch { .. } => (Sub::Branch(n), true),
                },
                other => (other, false),
            };
            if let Sub::Leaf { key, leaf, node } = only {
                // The leaf moves up a level, so its node at `child` is
                // dead: a stored one is superseded, and one this update
                // made a level down (the last it pushed: the other side is
                // empty and pushed nothing) need never be written.
                if stored {
                    self.store.superseded(&node.hash);
                } else if out.last().is_some_and(|(h, _)| *h == node.hash) {
                    out.pop();
                }
                let e = empty_tree()[child];
                let up = if bit(&key, depth) {
                    Node::branch(&e, &node)?
                } else {
                    Node::branch(&node, &e)?
                };
                out.push((up.hash, StoredNode::Leaf { key, leaf }));
                return Ok(Sub::Leaf {
                    key,
                    leaf,
                    node: up,
                });
            }
            let (ln, rn) = if le {
                (empty_tree()[child], only.node(child))
            } else {
                (only.node(child), empty_tree()[child])
            };
            return self.push_branch(ln, rn, out);
        }
        self.push_branch(l.node(child), r.node(child), out)
    }

    fn push_branch(
        &mut self,
        left: Node,
        right: Node,
        out: &mut Vec<(Hash, StoredNode)>,
    ) -> Result<Sub, TreeError<S::Error>> {
        let n = Node::branch(&left, &right)?;
        out.push((n.hash, StoredNode::Branch { left, right }));
        Ok(Sub::Branch(n))
    }

    /// The leaf node at `key` (`SHA256(value || sum)`, sum), or `None`.
    pub async fn get(&mut self, key: &Hash) -> Result<Option<Node>, TreeError<S::Error>> {
        let mut cur = self.root().await?;
        for depth in 0..=MAX_DEPTH {
            if cur.is_empty_at(depth) {
                return Ok(None);
            }
            match self.load(&cur.hash).await? {
                StoredNode::Leaf { key: k, leaf } => {
                    return Ok((k == *key).then_some(leaf));
                }
                StoredNode::Branch { left, right } => {
                    cur = if bit(key, depth) { right } else { left };
                }
            }
        }
        Ok(None)
    }

    /// Inclusion proof (if `key` is present) or exclusion proof (if not).
    pub async fn proof(&mut self, key: &Hash) -> Result<Proof, TreeError<S::Error>> {
        let empty = empty_tree();
        // siblings[d] = sibling of the node at depth d+1 on key's path.
        let mut siblings: Vec<Node> = Vec::with_capacity(MAX_DEPTH);
        let mut cur = self.root().await?;
        let mut depth = 0;
        while depth < MAX_DEPTH {
            if cur.is_empty_at(depth) {
                break;
            }
            match self.load(&cur.hash).await? {
                StoredNode::Branch { left, right } => {
                    let (next, sib) = if bit(key, depth) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(sib);
                    cur = next;
                    depth += 1;
                }
                StoredNode::Leaf { key: k, leaf } => {
                    if k != *key {
                        // Paths agree until the first differing bit; there the
                        // sibling is the resident leaf compacted one level down.
                        let mut d = depth;
                        while d < MAX_DEPTH && bit(&k, d) == bit(key, d) {
                            siblings.push(empty[d + 1]);
                            d += 1;
                        }
                        if d < MAX_DEPTH {
                            siblings.push(self.leaf_at(&k, leaf, d + 1)?);
                        }
                    }
                    break;
                }
            }
        }
        while siblings.len() < MAX_DEPTH {
            siblings.push(empty[siblings.len() + 1]);
        }
        siblings.reverse();
        Ok(Proof { nodes: siblings })
    }
}

/// Runs a future that never waits (those of [`MemStore`]) to completion.
pub fn block_on_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A synchronous, in-memory tree.
pub struct MemTree {
    inner: Tree<MemStore>,
}

impl Default for MemTree {
    fn default() -> Self {
        Self::new()
    }
}

/// What an in-memory tree operation can fail with: a sum that overflows
/// u64, or (only if the tree's own bookkeeping were broken) a node it
/// references but does not hold. Neither is hidden as the other.
pub type MemError = TreeError<std::convert::Infallible>;
pub type MemResult<T> = Result<T, MemError>;

fn mem_err(e: MemError) -> MemError {
    e
}

impl MemTree {
    pub fn new() -> Self {
        MemTree {
            inner: Tree::new(MemStore::new()),
        }
    }
    pub fn root(&mut self) -> MemResult<Node> {
        block_on_ready(self.inner.root())
    }
    pub fn insert(&mut self, key: Hash, value: &[u8], sum: u64) -> MemResult<Node> {
        block_on_ready(self.inner.insert(key, value, sum)).map_err(mem_err)
    }
    pub fn delete(&mut self, key: Hash) -> MemResult<Node> {
        block_on_ready(self.inner.delete(key)).map_err(mem_err)
    }
    pub fn apply(&mut self, updates: Vec<LeafUpdate>) -> MemResult<Node> {
        block_on_ready(self.inner.apply(updates)).map_err(mem_err)
    }
    pub fn get(&mut self, key: &Hash) -> Option<Node> {
        block_on_ready(self.inner.get(key)).ok().flatten()
    }
    pub fn proof(&mut self, key: &Hash) -> MemResult<Proof> {
        block_on_ready(self.inner.proof(key)).map_err(mem_err)
    }
    pub fn store(&self) -> &MemStore {
        self.inner.store()
    }
}
