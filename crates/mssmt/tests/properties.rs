//! Algebraic properties of the tree, over random leaves.

use proptest::prelude::*;
use tapvault_mssmt::*;

fn leaf_strategy() -> impl Strategy<Value = Vec<(Hash, Vec<u8>, u64)>> {
    // Small key space in some bytes to force shared prefixes and deep splits.
    prop::collection::vec(
        (
            prop_oneof![
                any::<[u8; 32]>(),
                (any::<u8>(), any::<u8>()).prop_map(|(a, b)| {
                    let mut k = [0u8; 32];
                    k[0] = a & 0x3;
                    k[31] = b;
                    k
                }),
            ],
            prop::collection::vec(any::<u8>(), 1..40),
            0u64..1_000_000,
        ),
        1..40,
    )
    .prop_map(|mut v| {
        v.sort_by_key(|a| a.0);
        v.dedup_by(|a, b| a.0 == b.0);
        v
    })
}

fn build(leaves: &[(Hash, Vec<u8>, u64)]) -> MemTree {
    let mut t = MemTree::new();
    for (k, v, s) in leaves {
        t.insert(*k, v, *s).unwrap();
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn insertion_order_does_not_matter(leaves in leaf_strategy(), seed in any::<u64>()) {
        let a = build(&leaves).root().unwrap();
        let mut shuffled = leaves.clone();
        // Deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(build(&shuffled).root().unwrap(), a);
        let mut batch = MemTree::new();
        let ups = leaves.iter().map(|(k, v, s)| LeafUpdate::new(*k, v, *s)).collect();
        prop_assert_eq!(batch.apply(ups).unwrap(), a);
        prop_assert_eq!(a.sum, leaves.iter().map(|l| l.2).sum::<u64>());
    }

    #[test]
    fn delete_undoes_insert(leaves in leaf_strategy(), extra in any::<[u8; 32]>(), val in prop::collection::vec(any::<u8>(), 1..10)) {
        prop_assume!(!leaves.iter().any(|l| l.0 == extra));
        let mut t = build(&leaves);
        let before = t.root().unwrap();
        let nodes_before = t.store().node_count();
        t.insert(extra, &val, 7).unwrap();
        prop_assert_ne!(t.root().unwrap(), before);
        prop_assert_eq!(t.delete(extra).unwrap(), before);
        // Deleting everything gives the empty tree.
        for (k, _, _) in &leaves { t.delete(*k).unwrap(); }
        prop_assert_eq!(t.root().unwrap(), empty_root());
        prop_assert!(nodes_before > 0);
    }

    #[test]
    fn proofs_verify_only_against_their_root(leaves in leaf_strategy(), absent in any::<[u8; 32]>()) {
        let mut t = build(&leaves);
        let root = t.root().unwrap();
        let mut other = build(&leaves[1..]);
        let other_root = if leaves.len() > 1 { other.root().unwrap() } else { empty_root() };
        for (k, v, s) in &leaves {
            let p = t.proof(k).unwrap();
            p.verify(k, Node::leaf(v, *s), &root).unwrap();
            prop_assert!(p.verify(k, Node::leaf(v, *s), &other_root).is_err());
            prop_assert!(p.verify(k, Node::leaf(v, s + 1), &root).is_err());
            let c = p.compress();
            let bytes = c.encode();
            let back = CompressedProof::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &c);
            prop_assert_eq!(back.decompress().unwrap(), p);
        }
        if !leaves.iter().any(|l| l.0 == absent) {
            let p = t.proof(&absent).unwrap();
            p.verify(&absent, Node::leaf(&[], 0), &root).unwrap();
            prop_assert!(t.get(&absent).is_none());
        }
    }
}

#[test]
fn overflow_is_an_error_and_changes_nothing() {
    let mut t = MemTree::new();
    t.insert([1; 32], &[1], u64::MAX).unwrap();
    let before = t.root().unwrap();
    assert!(t.insert([2; 32], &[1], 1).is_err());
    assert_eq!(t.root().unwrap(), before);
    // Replacing the big leaf with a smaller one is fine.
    t.insert([1; 32], &[1], 5).unwrap();
    assert_eq!(t.insert([2; 32], &[1], 1).unwrap().sum, 6);
}

#[test]
fn compressed_proof_rejects_malformed() {
    let mut t = MemTree::new();
    t.insert([3; 32], &[9], 9).unwrap();
    t.insert([4; 32], &[9], 9).unwrap();
    let bytes = t.proof(&[3; 32]).unwrap().compress().encode();
    assert!(matches!(
        CompressedProof::decode(&bytes[..bytes.len() - 1]),
        Err(ProofError::Truncated { .. })
    ));
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(matches!(
        CompressedProof::decode(&extra),
        Err(ProofError::TrailingBytes(1))
    ));
    let mut bad_bits = bytes.clone();
    let n = bad_bits.len();
    bad_bits[n - 1] ^= 0x80;
    assert!(matches!(
        CompressedProof::decode(&bad_bits),
        Err(ProofError::CountMismatch { .. })
    ));
}

/// The tree's root by the definition: recursive, no compaction shortcuts
/// and no memo. Independent of `Tree`.
fn reference_root(leaves: &[(Hash, Node)], depth: usize) -> Node {
    match leaves {
        [] => tapvault_mssmt::empty_tree()[depth],
        [(k, l)] => tapvault_mssmt::compacted_leaf_hash(k, *l, depth).unwrap(),
        _ => {
            let (r, l): (Vec<_>, Vec<_>) = leaves
                .iter()
                .partition(|(k, _)| tapvault_mssmt::bit(k, depth));
            Node::branch(
                &reference_root(&l, depth + 1),
                &reference_root(&r, depth + 1),
            )
            .unwrap()
        }
    }
}

/// Keys sharing long prefixes push compacted leaves deep, on both sides of
/// the depth where leaf hash chains are memoised: roots, proofs and
/// deletes stay those of the definition.
#[test]
fn deep_neighbours_around_the_memo_checkpoint() {
    let base = [0x5au8; 32];
    let flip = |bit: usize| {
        let mut k = base;
        k[bit / 8] ^= 1 << (bit % 8);
        k
    };
    let keys: Vec<Hash> = [0, 39, 62, 63, 64, 65, 100, 200, 255]
        .iter()
        .map(|b| flip(*b))
        .chain([base])
        .collect();
    let leaf = |i: usize| Node::leaf(&[i as u8; 3], i as u64 + 1);
    let mut t = MemTree::new();
    let mut held: Vec<(Hash, Node)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        t.insert(*k, &[i as u8; 3], i as u64 + 1).unwrap();
        held.push((*k, leaf(i)));
        assert_eq!(
            t.root().unwrap(),
            reference_root(&held, 0),
            "after inserting {i}"
        );
    }
    for (k, l) in &held {
        let p = t.proof(k).unwrap();
        p.verify(k, *l, &t.root().unwrap()).unwrap();
    }
    // Replace, then delete in another order: every intermediate root agrees.
    t.insert(keys[4], b"new", 9).unwrap();
    held[4].1 = Node::leaf(b"new", 9);
    assert_eq!(t.root().unwrap(), reference_root(&held, 0));
    for i in [4, 0, 9, 5, 7] {
        t.delete(keys[i]).unwrap();
        held.retain(|(k, _)| *k != keys[i]);
        assert_eq!(
            t.root().unwrap(),
            reference_root(&held, 0),
            "after deleting {i}"
        );
    }
}

/// A MemStore that also keeps the set a cache would hold if it dropped
/// every node the tree reports as superseded.
#[derive(Default)]
struct Tracking {
    inner: MemStore,
    live: std::collections::HashSet<Hash>,
}

#[async_trait::async_trait]
impl NodeStore for Tracking {
    type Error = std::convert::Infallible;
    async fn load_root(&mut self) -> Result<Option<Node>, Self::Error> {
        self.inner.load_root().await
    }
    async fn load_node(&mut self, hash: &Hash) -> Result<Option<StoredNode>, Self::Error> {
        self.inner.load_node(hash).await
    }
    async fn store_nodes(&mut self, nodes: Vec<(Hash, StoredNode)>) -> Result<(), Self::Error> {
        self.live.extend(nodes.iter().map(|(h, _)| *h));
        self.inner.store_nodes(nodes).await
    }
    async fn store_root(&mut self, root: Node) -> Result<(), Self::Error> {
        self.inner.store_root(root).await
    }
    fn superseded(&mut self, hash: &Hash) {
        self.live.remove(hash);
    }
}

/// Every node reachable from `root` (empty subtrees are not stored).
fn reachable(
    s: &mut MemStore,
    root: Node,
    depth: usize,
    out: &mut std::collections::HashSet<Hash>,
) {
    if root.is_empty_at(depth) {
        return;
    }
    out.insert(root.hash);
    let n = block_on_ready(s.load_node(&root.hash)).unwrap();
    if let Some(StoredNode::Branch { left, right }) = n {
        reachable(s, left, depth + 1, out);
        reachable(s, right, depth + 1, out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// After any sequence of batched inserts, overwrites and deletes, the
    /// nodes never reported superseded are exactly the live tree: a cache
    /// that drops what is superseded drops nothing still in use and keeps
    /// no history.
    #[test]
    fn superseded_nodes_are_exactly_the_dead_ones(
        batches in prop::collection::vec(
            prop::collection::vec((0u8..40, 0u8..3, 1u64..50), 1..12), 1..10)
    ) {
        let mut t = Tree::new(Tracking::default());
        for batch in batches {
            let ups: Vec<LeafUpdate> = batch
                .iter()
                .map(|&(k, v, s)| {
                    let mut key = [0u8; 32];
                    key[0] = k.wrapping_mul(37);
                    key[31] = k;
                    if v == 0 {
                        LeafUpdate::delete(key)
                    } else {
                        LeafUpdate::new(key, &[v, k], s)
                    }
                })
                .collect();
            let root = block_on_ready(t.apply(ups)).unwrap();
            let mut want = std::collections::HashSet::new();
            reachable(&mut t.store().inner.clone(), root, 0, &mut want);
            prop_assert_eq!(&t.store().live, &want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// A branch hash is SHA-256 of the 72-byte message `left || right ||
    /// sum BE`, whatever the hashes and the sum (the branch is hashed by the
    /// compression function directly, with its padding written by hand).
    #[test]
    fn branch_hash_is_sha256_of_the_message(
        l in any::<[u8; 32]>(), r in any::<[u8; 32]>(), ls in any::<u64>(), rs in any::<u64>(),
    ) {
        let (ls, rs) = (ls / 2, rs / 2);
        let left = Node { hash: l, sum: ls };
        let right = Node { hash: r, sum: rs };
        let mut msg = Vec::with_capacity(72);
        msg.extend_from_slice(&l);
        msg.extend_from_slice(&r);
        msg.extend_from_slice(&(ls + rs).to_be_bytes());
        let want: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&msg).into();
        prop_assert_eq!(Node::branch(&left, &right).unwrap(), Node { hash: want, sum: ls + rs });
    }
}
