//! The `tapvault` binary, run as a user would.

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn vectors() -> PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tapvault");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn regtest() -> Vec<Value> {
    let p = vectors().join("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v["valid_test_cases"].as_array().unwrap().clone()
}

#[test]
fn proof_decode_hex_from_stdin() {
    let hexp = regtest()[0]["expected"].as_str().unwrap().to_string();
    let out = run(&["proof", "decode", "-"], hexp.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["asset_id"],
        "941c6b88de2e5c66797831545adabac0b55f8adb836e921c25d2963c65d15bd1"
    );
    assert_eq!(v["name"], "first-itestbuxx");
    assert_eq!(v["amount"], 1500);
    assert_eq!(
        v["universe"]["leaf_key"],
        "67c35fa3597f89c4cbaa0cace2c290fa3afcacbe42e4c538f4b68fd5e9081194"
    );
    assert_eq!(v["proof_count"], 1);
}

#[test]
fn proof_decode_raw_file() {
    // Build a 3-proof TAPF from the "proof file index" vectors, raw bytes on disk.
    let mut f = tapvault_codec::File::new();
    for c in regtest().iter().skip(4) {
        f.append_raw(hex::decode(c["expected"].as_str().unwrap()).unwrap());
    }
    let dir = std::env::temp_dir().join(format!("tapvault-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.assetproof");
    std::fs::write(&path, f.encode()).unwrap();
    let out = run(&["proof", "decode", path.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "file");
    assert_eq!(v["proof_count"], 3);
    assert_eq!(v["proofs"][0]["is_genesis"], true);
    assert_eq!(v["current"]["is_genesis"], false);
}

#[test]
fn proof_decode_bad_input_fails_clearly() {
    let out = run(&["proof", "decode", "-"], b"not a proof");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad magic"), "{err}");
    let hexp = regtest()[0]["expected"].as_str().unwrap().to_string();
    let out = run(
        &["proof", "decode", "-"],
        &hexp.as_bytes()[..hexp.len() - 10],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    let out = run(&["proof", "decode", "/nonexistent/file"], b"");
    assert!(!out.status.success());
}

#[test]
fn mssmt_root_and_proof_match_vectors() {
    let p = vectors().join("taproot-assets/mssmt/testdata/mssmt_tree_replacement.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let case = &v["valid_test_cases"][0];
    // Final state: every leaf replaced.
    let mut input = String::new();
    for r in case["replaced_leaves"].as_array().unwrap() {
        input += &format!(
            "{} {} {}\n",
            r["key"].as_str().unwrap(),
            r["node"]["value"].as_str().unwrap(),
            r["node"]["sum"].as_str().unwrap()
        );
    }
    let out = run(&["mssmt", "root"], input.as_bytes());
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        s.trim(),
        format!(
            "{} {}",
            case["root_hash"].as_str().unwrap(),
            case["root_sum"].as_str().unwrap()
        )
    );
    let key = case["replaced_leaves"][0]["key"].as_str().unwrap();
    let out = run(&["mssmt", "proof", key], input.as_bytes());
    assert!(out.status.success());
    let proof = hex::decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let c = tapvault_mssmt::CompressedProof::decode(&proof).unwrap();
    assert!(!c.nodes.is_empty());
}

#[test]
fn mssmt_bad_line_names_it() {
    let out = run(&["mssmt", "root"], b"# comment\n00 11 1\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    let good = format!("{} aa 5\n", "11".repeat(32));
    let out = run(
        &["mssmt", "root"],
        format!("{good}{} aa notanumber\n", "22".repeat(32)).as_bytes(),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: sum"));
}

#[test]
fn proof_verify_reports_each_check() {
    let cases = regtest();
    let good = cases[0]["expected"].as_str().unwrap().to_string();
    let out = run(&["proof", "verify", "-"], good.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("✓ asset committed in anchor output"),
        "{text}"
    );
    assert!(text.ends_with("valid\n"));
    // The placeholder-header split proof fails exactly the header check.
    let split = cases
        .iter()
        .find(|c| c["comment"] == "valid regtest split proof")
        .unwrap();
    let out = run(
        &["proof", "verify", "-"],
        split["expected"].as_str().unwrap().as_bytes(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert_eq!(text.matches('✗').count(), 1, "{text}");
    assert!(text.contains("✗ block header"), "{text}");
    let out = run(
        &["proof", "verify", "--no-header", "-"],
        split["expected"].as_str().unwrap().as_bytes(),
    );
    assert!(out.status.success());
    // serve --verify's vocabulary says the same.
    let by_level = run(
        &["proof", "verify", "--level", "no-header", "-"],
        split["expected"].as_str().unwrap().as_bytes(),
    );
    assert!(by_level.status.success());
    assert_eq!(by_level.stdout, out.stdout);
    let none = run(
        &["proof", "verify", "--level", "decode-only", "-"],
        split["expected"].as_str().unwrap().as_bytes(),
    );
    assert!(!none.status.success());
}

#[test]
fn proof_verify_file_chain() {
    let mut f = tapvault_codec::File::new();
    for c in regtest().iter().skip(4) {
        f.append_raw(hex::decode(c["expected"].as_str().unwrap()).unwrap());
    }
    let out = run(
        &["proof", "verify", "-"],
        hex::encode(f.encode()).as_bytes(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("✓ proof file chain"));
    assert!(!text.contains("Taproot Assets VM"), "the VM is opt-in");
    // With --vm every proof's witnesses run, transfers against the proof
    // before them.
    let out = run(
        &["proof", "verify", "--vm", "-"],
        hex::encode(f.encode()).as_bytes(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("✓ asset witnesses (Taproot Assets VM)")
            .count(),
        3,
        "{text}"
    );
    let mut bad = tapvault_codec::File::new();
    bad.append_raw(f.entries[0].raw.clone());
    bad.append_raw(f.entries[2].raw.clone());
    let out = run(
        &["proof", "verify", "-"],
        hex::encode(bad.encode()).as_bytes(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("✗ proof file chain"), "{text}");
}
