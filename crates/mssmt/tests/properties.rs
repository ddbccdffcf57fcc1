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
