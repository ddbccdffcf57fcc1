//! tapd's MS-SMT tree vectors and our derived empty-tree hashes.

use serde_json::Value;
use std::path::PathBuf;
use tapvault_mssmt::*;

fn vectors() -> PathBuf {
    let dir = std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    assert!(
        dir.is_dir(),
        "test vectors not found at {} (set TAPVAULT_VECTORS)",
        dir.display()
    );
    dir
}

fn load(name: &str) -> Value {
    let p = vectors().join("taproot-assets/mssmt/testdata").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("read vector")).expect("json")
}

fn h32(s: &str) -> Hash {
    hex::decode(s).expect("hex").try_into().expect("32 bytes")
}

fn leaves(v: &Value) -> std::collections::HashMap<Hash, (Vec<u8>, u64)> {
    v["all_tree_leaves"]
        .as_array()
        .expect("leaves")
        .iter()
        .map(|l| {
            (
                h32(l["key"].as_str().unwrap()),
                (
                    hex::decode(l["node"]["value"].as_str().unwrap()).unwrap(),
                    l["node"]["sum"].as_str().unwrap().parse().unwrap(),
                ),
            )
        })
        .collect()
}

fn run_valid(name: &str) -> usize {
    let v = load(name);
    let all = leaves(&v);
    let mut n = 0;
    for case in v["valid_test_cases"].as_array().expect("cases") {
        let mut t = MemTree::new();
        for k in case["inserted_leaves"].as_array().unwrap() {
            let k = h32(k.as_str().unwrap());
            let (val, sum) = all[&k].clone();
            t.insert(k, &val, sum).expect("insert");
        }
        if let Some(del) = case["deleted_leaves"].as_array() {
            for k in del {
                t.delete(h32(k.as_str().unwrap())).expect("delete");
            }
        }
        if let Some(rep) = case["replaced_leaves"].as_array() {
            for r in rep {
                t.insert(
                    h32(r["key"].as_str().unwrap()),
                    &hex::decode(r["node"]["value"].as_str().unwrap()).unwrap(),
                    r["node"]["sum"].as_str().unwrap().parse().unwrap(),
                )
                .expect("replace");
            }
        }
        let root = t.root().unwrap();
        assert_eq!(
            hex::encode(root.hash),
            case["root_hash"].as_str().unwrap(),
            "{}",
            case["comment"]
        );
        assert_eq!(root.sum.to_string(), case["root_sum"].as_str().unwrap());

        // The same end state built in one batch gives the same root.
        let mut batch = MemTree::new();
        let mut ups: Vec<LeafUpdate> = case["inserted_leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let k = h32(k.as_str().unwrap());
                LeafUpdate::new(k, &all[&k].0, all[&k].1)
            })
            .collect();
        if let Some(del) = case["deleted_leaves"].as_array() {
            ups.extend(
                del.iter()
                    .map(|k| LeafUpdate::delete(h32(k.as_str().unwrap()))),
            );
        }
        if let Some(rep) = case["replaced_leaves"].as_array() {
            ups.extend(rep.iter().map(|r| {
                LeafUpdate::new(
                    h32(r["key"].as_str().unwrap()),
                    &hex::decode(r["node"]["value"].as_str().unwrap()).unwrap(),
                    r["node"]["sum"].as_str().unwrap().parse().unwrap(),
                )
            }));
        }
        assert_eq!(batch.apply(ups).expect("batch"), root);

        // Every original key proves (inclusion or exclusion) against the root.
        for k in all.keys() {
            let p = t.proof(k).expect("proof");
            let leaf = t.get(k).unwrap_or_else(|| Node::leaf(&[], 0));
            p.verify(k, leaf, &root).expect("proof verifies");
            let c = p.compress();
            assert_eq!(
                CompressedProof::decode(&c.encode())
                    .unwrap()
                    .decompress()
                    .unwrap(),
                p
            );
        }
        n += 1;
    }
    n
}

#[test]
fn deletion_vectors() {
    assert_eq!(run_valid("mssmt_tree_deletion.json"), 1);
}

#[test]
fn replacement_vectors() {
    assert_eq!(run_valid("mssmt_tree_replacement.json"), 1);
}

#[test]
fn error_case_vectors() {
    assert_eq!(run_valid("mssmt_tree_error_cases.json"), 1);
    let v = load("mssmt_tree_error_cases.json");
    let all = leaves(&v);
    for case in v["error_test_cases"].as_array().unwrap() {
        let mut t = MemTree::new();
        let mut err = None;
        for k in case["inserted_leaves"].as_array().unwrap() {
            let k = h32(k.as_str().unwrap());
            let (val, sum) = all[&k].clone();
            if let Err(e) = t.insert(k, &val, sum) {
                err = Some(e);
                break;
            }
        }
        let e = err.expect("overflow must be an error");
        assert!(
            e.to_string().contains(case["error"].as_str().unwrap()),
            "{e}"
        );
        // The failed insert left the tree as it was.
        assert_eq!(t.root().unwrap().sum, 1);
    }
}

#[test]
fn empty_hashes_match_derived() {
    let p = vectors().join("derived/tap_derived_values.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let by_depth = v["mssmt_empty_hashes"]["by_depth"]
        .as_object()
        .expect("by_depth");
    assert_eq!(by_depth.len(), 257);
    for (d, h) in by_depth {
        let d: usize = d.parse().unwrap();
        assert_eq!(
            hex::encode(empty_tree()[d].hash),
            h.as_str().unwrap(),
            "depth {d}"
        );
    }
    assert_eq!(
        hex::encode(empty_root().hash),
        "b1e8e8f2dc3b266452988cfe169aa73be25405eeead02ab5dd6b3c6fd0ca8d67"
    );
}
