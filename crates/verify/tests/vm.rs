//! tapd's VM vectors (`vm/testdata/vm_validation_generated*.json`): every
//! valid state transition passes, every invalid one fails with tapd's error.
//! Lock times are checked the way tapd's test harness does: the case's
//! block height, and a chain where every input confirmed at height 234 and
//! every block's median time is 1717955203.

#[path = "../../codec/tests/common/mod.rs"]
mod common;

use common::{arr32, asset, bytes, load, outpoint};
use serde_json::Value;
use tapvault_codec::{PrevId, PubKey};
use tapvault_verify::vm::{execute, ChainLookup, SplitAsset, TimeLocks, VmError};

struct MockChain;

impl ChainLookup for MockChain {
    fn tx_block_height(&self, _: &bitcoin::Txid) -> Option<u32> {
        Some(234)
    }
    fn mean_block_timestamp(&self, _: u32) -> Option<i64> {
        Some(1_717_955_203)
    }
}

/// A case's `input_set`: each spent asset by its PrevID.
fn input_set(case: &Value) -> Vec<(PrevId, tapvault_codec::Asset)> {
    case["input_set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let p = &i["prev_id"];
            (
                PrevId {
                    out_point: outpoint(&p["out_point"]),
                    asset_id: arr32(&p["asset_id"]),
                    script_key: PubKey(bytes(&p["script_key"]).try_into().unwrap()),
                },
                asset(&i["asset"]),
            )
        })
        .collect()
}

fn run(case: &Value) -> Result<(), VmError> {
    let new = asset(&case["asset"]);
    let splits: Vec<SplitAsset> = case["split_set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| SplitAsset {
            asset: asset(&s["value"]["asset"]),
            output_index: s["value"]["output_index"].as_u64().unwrap() as u32,
        })
        .collect();
    let inputs = input_set(case);
    let locks = TimeLocks::new(case["block_height"].as_u64().unwrap() as u32, &MockChain);
    let r = execute(&new, &splits, &inputs, Some(&locks));
    assert!(
        locks.unchecked.borrow().is_empty(),
        "the mock chain answers everything"
    );
    r
}

#[test]
fn valid_transitions_pass() {
    let v = load("taproot-assets/vm/testdata/vm_validation_generated.json");
    let cases = v["valid_test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 26);
    for case in cases {
        if let Err(e) = run(case) {
            panic!("{}: {e}", case["comment"]);
        }
    }
}

#[test]
fn invalid_transitions_fail_with_tapds_error() {
    let v = load("taproot-assets/vm/testdata/vm_validation_generated_error_cases.json");
    let cases = v["error_test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for case in cases {
        let comment = case["comment"].as_str().unwrap();
        let want = case["error"].as_str().unwrap();
        let e = run(case).expect_err(comment).to_string();
        // Script failures: Core's consensus library reports that the script
        // failed, not which opcode, so only tapd's prefix can match.
        let want_prefix = want.split(": ").next().unwrap();
        assert!(
            e.starts_with(want_prefix),
            "{comment}: got {e:?}, tapd says {want:?}"
        );
        if !want.starts_with("invalid transfer asset witness") {
            assert!(
                e.starts_with(want),
                "{comment}: got {e:?}, tapd says {want:?}"
            );
        }
    }
}

/// A flipped signature byte in any signed valid case must fail the script
/// check (the script engine is not a pass-through).
#[test]
fn a_flipped_signature_byte_fails() {
    let v = load("taproot-assets/vm/testdata/vm_validation_generated.json");
    let mut tried = 0;
    for case in v["valid_test_cases"].as_array().unwrap() {
        let mut case = case.clone();
        let Some(item) = case["asset"]["prev_witnesses"][0]["tx_witness"][0].as_str() else {
            continue;
        };
        let mut sig = hex::decode(item).unwrap();
        if sig.len() != 64 && sig.len() != 65 {
            continue;
        }
        sig[10] ^= 1;
        case["asset"]["prev_witnesses"][0]["tx_witness"][0] = Value::String(hex::encode(sig));
        let e = run(&case).expect_err(case["comment"].as_str().unwrap());
        assert!(
            matches!(e, VmError::InvalidTransferWitness(_)),
            "{}: {e}",
            case["comment"]
        );
        tried += 1;
    }
    assert!(tried >= 5, "only {tried} signed cases");
}

fn regtest() -> Vec<(String, tapvault_codec::Proof)> {
    common::regtest_cases()
        .iter()
        .map(|c| {
            (
                c["comment"].as_str().unwrap().to_string(),
                tapvault_codec::Proof::decode(&bytes(&c["expected"])).unwrap(),
            )
        })
        .collect()
}

/// tapd's own regtest proofs carry real signatures: genesis proofs pass the
/// VM alone, transfers once their input proof is known (the file).
#[test]
fn regtest_proofs_pass_the_vm() {
    use tapvault_verify::{verify_file, verify_proof, Check, Options, Outcome};
    let opts = Options {
        header: false,
        vm: true,
    };
    let mut genesis = 0;
    for (comment, p) in regtest() {
        let r = verify_proof(&p, opts);
        assert!(r.is_ok(), "{comment}:\n{r}");
        let w = r
            .results
            .iter()
            .find(|(c, _)| *c == Check::Witness)
            .map(|(_, o)| o.clone())
            .unwrap();
        if p.asset.is_genesis() {
            assert_eq!(w, Outcome::Passed, "{comment}");
            genesis += 1;
        } else if p.challenge_witness.is_some() {
            // An ownership proof signs a spend of the asset to NUMS.
            assert_eq!(w, Outcome::Passed, "{comment}");
            let mut bad = p.clone();
            if let Some(cw) = &mut bad.challenge_witness {
                cw[0][7] ^= 1;
            }
            assert!(
                matches!(tapvault_verify::verify_witness(&bad, None), Ok(Some(ref m)) if m.contains("challenge")),
                "a broken challenge witness is not taken as valid"
            );
        } else {
            assert!(matches!(w, Outcome::Skipped(_)), "{comment}: {w:?}");
        }
    }
    assert!(genesis >= 2);
    let mut f = tapvault_codec::File::new();
    for (c, p) in regtest() {
        if c.contains("proof file index") {
            f.append_raw(p.encode());
        }
    }
    let v = verify_file(&f, opts).unwrap();
    assert!(
        v.iter()
            .all(|x| x.pending.iter().all(|(c, _)| *c != Check::Witness)),
        "every witness of the file was checked"
    );
}

#[test]
fn a_tampered_transfer_witness_fails_the_vm() {
    use tapvault_verify::{verify_witness, VerifyError};
    let all = regtest();
    let get = |n: &str| all.iter().find(|(c, _)| c.as_str() == n).unwrap().1.clone();
    let prev = get("valid regtest proof file index 1");
    let cur = get("valid regtest proof file index 2");
    assert_eq!(verify_witness(&cur, Some(&prev)), Ok(None));
    assert!(
        verify_witness(&cur, None).unwrap().is_some(),
        "needs its input"
    );
    let mut bad = cur.clone();
    let w = &mut bad.asset.prev_witnesses[0];
    let stack = match &mut w.split_commitment {
        Some(sc) => &mut sc.root_asset.prev_witnesses[0].tx_witness,
        None => &mut w.tx_witness,
    };
    stack[0][5] ^= 0x40;
    match verify_witness(&bad, Some(&prev)) {
        Err(VerifyError::Witness(m)) => {
            assert!(m.starts_with("invalid transfer asset witness"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Spending something else than the input's proof: no such input.
    let e = verify_witness(&cur, Some(&get("valid regtest proof file index 0"))).unwrap_err();
    assert!(e.to_string().contains("missing asset input"), "{e}");
}

/// Offline, a lock the chain cannot answer for is skipped and listed (the
/// proof's check stays pending); height locks need no chain and still bite.
#[test]
fn locks_the_chain_cannot_answer_are_listed_not_failed() {
    struct HeightsOnly;
    impl ChainLookup for HeightsOnly {
        fn tx_block_height(&self, _: &bitcoin::Txid) -> Option<u32> {
            Some(234)
        }
        fn mean_block_timestamp(&self, _: u32) -> Option<i64> {
            None
        }
    }
    let v = load("taproot-assets/vm/testdata/vm_validation_generated.json");
    let case = |name: &str| {
        v["valid_test_cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["comment"] == name)
            .unwrap()
            .clone()
    };
    let with = |c: &Value, height: u32| {
        let locks = TimeLocks::new(height, &HeightsOnly);
        let r = execute(&asset(&c["asset"]), &[], &input_set(c), Some(&locks));
        (r, locks.unchecked.into_inner())
    };
    let timed = case(
        "normal state transition with timestamp based csv locked asset, sufficient time passed",
    );
    let (r, unchecked) = with(&timed, 240);
    assert_eq!(r, Ok(()));
    assert!(!unchecked.is_empty());
    assert!(
        unchecked.iter().all(|u| u.contains("needs median times")),
        "one per input: {unchecked:?}"
    );
    let by_height = case("normal state transition with csv locked asset, sufficient block height");
    let (r, unchecked) = with(&by_height, 240);
    assert_eq!((r, unchecked.len()), (Ok(()), 0));
    let (r, _) = with(&by_height, 235);
    assert!(
        matches!(r, Err(VmError::UnfinalizedAsset(_))),
        "one block after confirmation is too early: {r:?}"
    );
}
