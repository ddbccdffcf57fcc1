//! The receipt log's Merkle math against the Certificate Transparency
//! reference data (RFC 6962 / RFC 9162 test vectors: eight leaves, every
//! root, inclusion and consistency proofs as published).

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::Sha256;
use tapvault_codec::log::{leaf_hash, root_of};

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
const INCLUSION: [(usize, u64, &[&str]); 2] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 3] = [
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn data() -> Vec<Vec<u8>> {
    LEAVES.iter().map(|h| hex::decode(h).unwrap()).collect()
}

fn joined(p: &[&str]) -> Vec<u8> {
    p.iter().flat_map(|h| hex::decode(h).unwrap()).collect()
}

fn root(hex_root: &str, size: u64) -> RootHash<Sha256> {
    let b: [u8; 32] = hex::decode(hex_root).unwrap().try_into().unwrap();
    RootHash::new(b.into(), size)
}

#[test]
fn leaf_and_node_hashing_give_every_reference_root() {
    let leaves: Vec<[u8; 32]> = data().iter().map(|d| leaf_hash(d)).collect();
    for n in 0..=8 {
        assert_eq!(hex::encode(root_of(&leaves[..n])), ROOTS[n], "size {n}");
    }
}

#[test]
fn the_servers_tree_builds_the_reference_proofs() {
    let mut t = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for d in data() {
        t.push(d);
    }
    assert_eq!(hex::encode(t.root().as_bytes()), ROOTS[8]);
    for (idx, _, proof) in INCLUSION {
        assert_eq!(
            t.prove_inclusion(idx).as_bytes(),
            &joined(proof)[..],
            "leaf {idx}"
        );
    }
    // Consistency to the full tree (the server proves against its newest
    // head); 2 → 5 from a rebuilt prefix, as the server does for older heads.
    for (m, n, proof) in CONSISTENCY {
        let mut p = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        for d in &data()[..n as usize] {
            p.push(d.clone());
        }
        let got = p.prove_consistency((n - m) as usize);
        assert_eq!(got.as_bytes(), &joined(proof)[..], "{m} → {n}");
    }
}

#[test]
fn reference_proofs_verify_and_tampered_ones_do_not() {
    let d = data();
    for (idx, size, proof) in INCLUSION {
        let r = root(ROOTS[size as usize], size);
        let p = InclusionProof::<Sha256>::try_from_bytes(joined(proof)).unwrap();
        r.verify_inclusion(&d[idx], idx as u64, &p).unwrap();
        assert!(r.verify_inclusion(&d[idx], idx as u64 + 1, &p).is_err());
        let mut bad = joined(proof);
        bad[7] ^= 1;
        let bad = InclusionProof::<Sha256>::try_from_bytes(bad).unwrap();
        assert!(r.verify_inclusion(&d[idx], idx as u64, &bad).is_err());
    }
    for (m, n, proof) in CONSISTENCY {
        let old = root(ROOTS[m as usize], m);
        let new = root(ROOTS[n as usize], n);
        let p = ConsistencyProof::<Sha256>::try_from_bytes(joined(proof)).unwrap();
        new.verify_consistency(&old, &p).unwrap();
        // A rewritten history: same size, another root.
        let forged = root(ROOTS[m as usize + 1], m);
        assert!(new.verify_consistency(&forged, &p).is_err(), "{m} → {n}");
    }
}
