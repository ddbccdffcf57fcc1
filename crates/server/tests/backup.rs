//! The `tapvault.v1.Backup` API on a real server and PostgreSQL: wallet
//! backups, addresses, tapscript trees, proof files and rebuilt chains.
#![allow(clippy::result_large_err)]

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;
mod common;
use common::*;
use tapvault_codec::backup::{WalletBackup, VERSION_COMPACT, VERSION_OPTIMISTIC, VERSION_RAW};
use tapvault_codec::{File, Proof};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::VerifyLevel;
use tonic::Code;

fn op_pb(raw: &[u8]) -> v1::OutPoint {
    let p = Proof::decode(raw).unwrap();
    let op = p.outpoint();
    v1::OutPoint {
        txid: op.txid.to_string(),
        vout: op.vout,
    }
}

fn script_key(raw: &[u8]) -> Vec<u8> {
    Proof::decode(raw).unwrap().asset.script_key.0.to_vec()
}

fn file_of(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut f = File::new();
    for p in chain {
        f.append_raw(p.clone());
    }
    f.encode()
}

#[tokio::test]
async fn wallet_backups_of_every_version_round_trip_and_file_their_proofs() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let (mut b, _) = s.clients(None);
    let chain = file_chain();
    let mut ids = Vec::new();
    for v in [VERSION_RAW, VERSION_COMPACT, VERSION_OPTIMISTIC] {
        let blob = blobs::tapbak_from_chain(&chain, v).encode();
        let r = b
            .push_wallet_backup(v1::PushWalletBackupRequest {
                backup: blob.clone(),
                opaque: false,
                source: "test".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("v{v}: {e}"))
            .into_inner();
        assert!(!r.duplicate);
        assert_eq!((r.version, r.num_assets), (v, 3));
        if v == VERSION_RAW {
            // Three entries carry files of 1, 2 and 3 proofs: 3 distinct proofs.
            assert_eq!((r.num_proofs_new, r.num_proofs_known), (3, 0));
        } else {
            assert_eq!(r.num_proofs_new, 0);
        }
        let got = b
            .get_wallet_backup(v1::GetWalletBackupRequest {
                id: r.backup_id,
                opaque: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.backup, blob, "v{v} stored byte for byte");
        assert_eq!(WalletBackup::decode(&got.backup).unwrap().encode(), blob);
        ids.push(r.backup_id);
    }
    // The same blob again writes nothing.
    let again = b
        .push_wallet_backup(v1::PushWalletBackupRequest {
            backup: blobs::tapbak_from_chain(&chain, VERSION_RAW).encode(),
            opaque: false,
            source: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.backup_id, ids[0]);
    assert_eq!(s.count("wallet_backups").await, 3);
    assert_eq!(s.count("backup_entries").await, 9);
    // Newest first; id 0 = newest TAPBAK.
    let list = b
        .list_wallet_backups(v1::ListWalletBackupsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.backups.iter().map(|x| x.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    let newest = b
        .get_wallet_backup(v1::GetWalletBackupRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(newest.info.unwrap().version, VERSION_OPTIMISTIC);
    // The RAW blob's proofs are universe leaves, found by script key.
    let leaves = b
        .list_leaves(v1::ListLeavesRequest {
            selector: Some(v1::list_leaves_request::Selector::ScriptKey(script_key(
                &chain[2],
            ))),
            include_proofs: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(leaves.leaves.len(), 1);
    assert_eq!(leaves.leaves[0].proof, chain[2]);
    assert!(leaves.leaves[0].in_universe);
    // Status: the newest backup's three outputs all have full chains.
    let st = b
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.num_wallet_backups, 3);
    assert_eq!((st.outputs_covered, st.outputs_not_covered), (3, 0));
    assert_eq!(st.num_proofs, 3);
    assert!(st.newest_backup_age_seconds >= 0 && st.newest_backup_age_seconds < 60);
    s.stop().await;
}

#[tokio::test]
async fn corrupt_or_unverifiable_backups_are_refused_and_nothing_is_stored() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let (mut b, _) = s.clients(None);
    let chain = file_chain();
    let good = blobs::tapbak_from_chain(&chain, VERSION_RAW).encode();
    let push = |backup: Vec<u8>, opaque: bool| v1::PushWalletBackupRequest {
        backup,
        opaque,
        source: String::new(),
    };

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let e = b
        .push_wallet_backup(push(flipped, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("checksum"), "{}", e.message());

    let e = b.push_wallet_backup(push(vec![], false)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = b
        .push_wallet_backup(push(b"not a backup".to_vec(), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("opaque"), "{}", e.message());

    // A well-formed blob whose proof file fails verification: the tip proof
    // is altered and the file and blob re-sealed around it.
    let mut wb = WalletBackup::decode(&good).unwrap();
    let mut f = File::decode(wb.assets[0].proof_file.as_ref().unwrap()).unwrap();
    let mut p = Proof::decode(&f.entries[0].raw).unwrap();
    p.asset.amount += 1;
    let mut f2 = File::new();
    f2.append_raw(p.encode());
    f = f2;
    wb.assets[0].proof_file = Some(f.encode());
    let e = b
        .push_wallet_backup(push(wb.encode(), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("backup asset 0"), "{}", e.message());

    // An entry whose file ends somewhere else.
    let mut wb = WalletBackup::decode(&good).unwrap();
    wb.assets[0].proof_file = wb.assets[1].proof_file.clone();
    let e = b
        .push_wallet_backup(push(wb.encode(), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("not at the entry's output"),
        "{}",
        e.message()
    );

    for t in [
        "wallet_backups",
        "backup_entries",
        "universe_leaves",
        "proofs",
    ] {
        assert_eq!(s.count(t).await, 0, "{t}");
    }

    // Opaque blobs are kept as-is, versioned by content hash.
    let r = b
        .push_wallet_backup(push(b"\x00encrypted assets.backup".to_vec(), true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.version, 0);
    let got = b
        .get_wallet_backup(v1::GetWalletBackupRequest {
            id: 0,
            opaque: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.backup, b"\x00encrypted assets.backup");
    let e = b
        .get_wallet_backup(v1::GetWalletBackupRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn proof_chains_are_rebuilt_from_courier_pushes_and_gaps_reported() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let (mut b, mut u) = s.clients(None);
    let chain = file_chain();
    // Genesis and tip arrive as a courier would send them; the middle is withheld.
    for raw in [&chain[0], &chain[2]] {
        u.insert_proof(courier_request(raw)).await.unwrap();
    }
    let req = v1::GetProofFileRequest {
        outpoint: Some(op_pb(&chain[2])),
        script_key: script_key(&chain[2]),
    };
    let r = b.get_proof_file(req.clone()).await.unwrap().into_inner();
    assert!(!r.complete);
    assert!(r.proof_file.is_empty(), "never a silently short file");
    assert_eq!(r.missing.len(), 1);
    let m = &r.missing[0];
    assert_eq!(m.outpoint.as_ref().unwrap(), &op_pb(&chain[1]));
    assert_eq!(m.script_key, script_key(&chain[1]));
    assert_eq!(
        m.needed_by,
        Proof::decode(&chain[2])
            .unwrap()
            .anchor_tx
            .txid()
            .to_string()
    );

    // The middle proof arrives: the file equals the one built directly.
    u.insert_proof(courier_request(&chain[1])).await.unwrap();
    let r = b.get_proof_file(req.clone()).await.unwrap().into_inner();
    assert!(r.complete && r.missing.is_empty());
    assert_eq!(r.num_proofs, 3);
    assert_eq!(r.proof_file, file_of(&chain));
    // x-only script keys work too.
    let mut x = req.clone();
    x.script_key = x.script_key[1..].to_vec();
    assert_eq!(
        b.get_proof_file(x).await.unwrap().into_inner().proof_file,
        file_of(&chain)
    );

    // Unknown output: NotFound; malformed selectors: InvalidArgument.
    let mut unknown = req.clone();
    unknown.outpoint.as_mut().unwrap().vout = 77;
    assert_eq!(
        b.get_proof_file(unknown).await.unwrap_err().code(),
        Code::NotFound
    );
    let mut bad = req.clone();
    bad.script_key = vec![2; 5];
    assert_eq!(
        b.get_proof_file(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let mut bad = req;
    bad.outpoint.as_mut().unwrap().txid = "zz".into();
    assert_eq!(
        b.get_proof_file(bad).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    s.stop().await;
}

#[tokio::test]
async fn proof_files_are_filed_whole_and_listed_by_every_index() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let (mut b, _) = s.clients(None);
    let chain = file_chain();
    let r = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: file_of(&chain),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.num_proofs, r.num_new, r.num_known, r.complete),
        (3, 3, 0, true)
    );
    let r = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: file_of(&chain[..2]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.num_new, r.num_known), (0, 2));

    use v1::list_leaves_request::Selector;
    let p2 = Proof::decode(&chain[2]).unwrap();
    let list = |sel: Selector| v1::ListLeavesRequest {
        selector: Some(sel),
        include_proofs: false,
        ..Default::default()
    };
    let n = |r: v1::ListLeavesResponse| r.leaves.len();
    let all = b
        .list_leaves(list(Selector::All(true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.leaves.len(), 3);
    // Newest first.
    assert_eq!(all.leaves[0].anchor.as_ref().unwrap(), &op_pb(&chain[2]));
    assert!(all.leaves[0].proof.is_empty());
    assert_eq!(
        n(
            b.list_leaves(list(Selector::AssetId(p2.asset.id().to_vec())))
                .await
                .unwrap()
                .into_inner()
        ),
        3
    );
    assert_eq!(
        n(
            b.list_leaves(list(Selector::Txid(p2.anchor_tx.txid().to_string())))
                .await
                .unwrap()
                .into_inner()
        ),
        1
    );
    assert_eq!(
        n(b.list_leaves(list(Selector::Outpoint(op_pb(&chain[0]))))
            .await
            .unwrap()
            .into_inner()),
        1
    );
    let mut paged = list(Selector::All(true));
    paged.limit = 2;
    let page = b.list_leaves(paged).await.unwrap().into_inner();
    assert_eq!(page.leaves.len(), 2);
    assert!(page.has_more);
    assert_eq!(
        b.list_leaves(v1::ListLeavesRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    // A broken file is refused whole.
    let mut bad = file_of(&chain);
    let n_bytes = bad.len();
    bad[n_bytes - 40] ^= 1;
    let e = b
        .push_proof_file(v1::PushProofFileRequest { proof_file: bad })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(s.count("universe_leaves").await, 3);
    s.stop().await;
}

/// `--verify full-vm`: a proof file's transfers are checked against the
/// proofs before them, and tapd's real signatures pass.
#[tokio::test]
async fn full_vm_level_files_signed_chains() {
    assert_eq!("full-vm".parse::<VerifyLevel>(), Ok(VerifyLevel::FullVm));
    let s = TestServer::start(VerifyLevel::FullVm, false).await;
    let (mut b, mut u) = s.clients(None);
    let chain = file_chain();
    let r = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: file_of(&chain),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.num_proofs, r.num_new, r.complete), (3, 3, true));
    // A lone genesis proof over the universe RPC runs the VM too.
    let genesis = regtest()
        .into_iter()
        .find(|(c, _)| c == "valid regtest genesis proof with meta reveal")
        .unwrap()
        .1;
    u.insert_proof(courier_request(&genesis)).await.unwrap();
    s.stop().await;
}

/// A long chain (the forge's: a genesis and 300 signed transfers, more than
/// one read-ahead of the chain walk) is filed whole at `full-vm` and handed
/// back byte for byte; the same chain with one
/// signature broken (and re-anchored, so only the VM can tell) is refused
/// and nothing of it is stored.
#[tokio::test]
async fn a_long_signed_chain_round_trips_and_a_bad_signature_sinks_it() {
    let s = TestServer::start(VerifyLevel::FullVm, false).await;
    let (mut b, _) = s.clients(None);
    let mut bad = forged_chain(10, "broken", 500).decode_proofs().unwrap();
    let mut p = bad[6].proof.clone();
    p.asset.prev_witnesses[0].tx_witness[0][3] ^= 1;
    tapvault_verify::forge::reanchor(&mut p).unwrap();
    bad[6].proof = p;
    let e = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: file_of(&bad.iter().map(|r| r.proof.encode()).collect::<Vec<_>>()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("Taproot Assets VM"), "{e:?}");
    assert_eq!(s.count("universe_leaves").await, 0, "nothing stored");

    let file = forged_chain(300, "long", 0).encode();
    let r = b
        .push_proof_file(v1::PushProofFileRequest {
            proof_file: file.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.num_proofs, r.num_new, r.complete), (301, 301, true));
    let last = File::decode(&file)
        .unwrap()
        .last_proof()
        .unwrap()
        .unwrap()
        .encode();
    let got = b
        .get_proof_file(v1::GetProofFileRequest {
            outpoint: Some(op_pb(&last)),
            script_key: script_key(&last),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.complete);
    assert_eq!(got.num_proofs, 301);
    assert_eq!(got.proof_file, file);
    // The walk reads the stored links ahead, many proofs per statement.
    let tip = Proof::decode(&last).unwrap();
    let op = tip.outpoint();
    let ahead = sqlx::query(tapvault_store::backup::CHAIN_AT)
        .bind(
            sqlx::query_scalar::<_, i64>("SELECT tenant_id FROM universe_leaves LIMIT 1")
                .fetch_one(&s.running().db.pool)
                .await
                .unwrap(),
        )
        .bind(&bitcoin::hashes::Hash::as_byte_array(&op.txid)[..])
        .bind(op.vout as i32)
        .bind(&tip.asset.script_key.x_only()[..])
        .bind(256)
        .fetch_all(&s.running().db.pool)
        .await
        .unwrap();
    assert_eq!(ahead.len(), 257, "the tip and 256 ancestors");
    s.stop().await;
}

/// `--verify full-vm` over the courier: a transfer is checked against the
/// input proof the tenant already holds. To prove the VM really reads the
/// stored input, the stored input is swapped (behind the server's back) for
/// another asset's proof: the transfer's witness no longer finds its input.
#[tokio::test]
async fn full_vm_checks_courier_transfers_against_the_stored_input() {
    let chain = file_chain();
    let other = regtest()
        .into_iter()
        .find(|(c, _)| c == "valid regtest proof for split root")
        .unwrap()
        .1;
    let s = TestServer::start(VerifyLevel::FullVm, false).await;
    let mut u = s.client().await;
    u.insert_proof(courier_request(&chain[0])).await.unwrap();
    u.insert_proof(courier_request(&chain[1])).await.unwrap();
    u.insert_proof(courier_request(&chain[2])).await.unwrap();
    assert_eq!(s.count("universe_leaves").await, 3);
    s.stop().await;

    let s = TestServer::start(VerifyLevel::FullVm, false).await;
    let mut u = s.client().await;
    u.insert_proof(courier_request(&chain[0])).await.unwrap();
    sqlx::query("UPDATE proofs SET raw = $1")
        .bind(&other)
        .execute(&s.running().db.pool)
        .await
        .unwrap();
    let e = u
        .insert_proof(courier_request(&chain[1]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("asset witnesses (Taproot Assets VM)")
            && e.message().contains("missing asset input"),
        "{e:?}"
    );
    assert_eq!(s.count("universe_leaves").await, 1, "nothing stored");
    s.stop().await;
}

fn address_vectors() -> Vec<(String, String)> {
    load("taproot-assets/address/testdata/address_tlv_encoding_generated.json")["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let a = c["expected"].as_str().unwrap().to_string();
            let net = match &a[..5] {
                "tapbc" => "mainnet",
                "taptb" => "testnet",
                "taprt" => "regtest",
                _ => "simnet",
            };
            (net.to_string(), a)
        })
        .collect()
}

#[tokio::test]
async fn addresses_round_trip_per_network_and_bad_ones_are_refused() {
    let nets = ["mainnet", "testnet", "regtest", "simnet"];
    let s = TestServer::start_auth(vec![], &nets).await;
    let vectors = address_vectors();
    for net in nets {
        let tok = s.token(net, "push read", 600).await;
        let (mut b, _) = s.clients(Some(&tok));
        let mine: Vec<String> = vectors
            .iter()
            .filter(|(n, _)| n == net)
            .map(|(_, a)| a.clone())
            .collect();
        let r = b
            .push_addresses(v1::PushAddressesRequest {
                addresses: mine.clone(),
                network: net.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{net}: {e}"))
            .into_inner();
        assert_eq!((r.num_new as usize, r.num_known), (mine.len(), 0));
        // Idempotent.
        let r = b
            .push_addresses(v1::PushAddressesRequest {
                addresses: mine.clone(),
                network: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.num_new, r.num_known as usize), (0, mine.len()));
        let got = b
            .list_addresses(v1::ListAddressesRequest::default())
            .await
            .unwrap()
            .into_inner();
        let got: Vec<String> = got.addresses.iter().map(|a| a.encoded.clone()).collect();
        assert_eq!(got, mine, "{net}: stored and returned byte for byte");
        // Every field is decoded and findable by its script key.
        let a = tapvault_codec::Address::decode(&mine[0]).unwrap();
        let by_key = b
            .list_addresses(v1::ListAddressesRequest {
                key: a.script_key.0.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(by_key.addresses.iter().any(|r| r.encoded == mine[0]
            && r.amount == a.amount
            && r.internal_key == a.internal_key.0.to_vec()
            && r.proof_courier_addr == a.proof_courier_addr));
    }

    let tok = s.token("regtest", "push read", 600).await;
    let (mut b, _) = s.clients(Some(&tok));
    let before = s.count("addresses").await;
    let regtest = vectors
        .iter()
        .find(|(n, _)| n == "regtest")
        .unwrap()
        .1
        .clone();
    let mainnet = vectors
        .iter()
        .find(|(n, _)| n == "mainnet")
        .unwrap()
        .1
        .clone();
    let mut bad_sum = regtest.clone();
    let last = bad_sum.pop().unwrap();
    bad_sum.push(if last == 'q' { 'p' } else { 'q' });
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (vec![regtest.clone(), bad_sum], "", "address 1"),
        (vec!["hello".into()], "", "address 0"),
        (
            vec!["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0".into()],
            "",
            "HRP",
        ),
        (vec![regtest.clone()], "mainnet", "not mainnet"),
        (vec![mainnet], "", "this tenant's addresses are regtest"),
        (vec![], "", "no addresses"),
        (vec![regtest], "moonnet", "unknown network"),
    ];
    for (addrs, net, want) in cases {
        let e = b
            .push_addresses(v1::PushAddressesRequest {
                addresses: addrs.clone(),
                network: net.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{addrs:?}");
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
    assert_eq!(s.count("addresses").await, before, "nothing stored");

    // Read-only tokens cannot push.
    let ro = s.token("regtest", "read", 600).await;
    let (mut b, _) = s.clients(Some(&ro));
    let e = b
        .push_addresses(v1::PushAddressesRequest {
            addresses: vec![vectors[0].1.clone()],
            network: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // Another tenant sees none of regtest's data.
    let (mut other, _) = s.clients(Some(&s.token("mainnet", "read", 600).await));
    let l = other
        .list_addresses(v1::ListAddressesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(l.addresses.iter().all(|a| a.network == "mainnet"));
    s.stop().await;
}

#[tokio::test]
async fn tapscript_trees_must_hash_to_their_root_and_key() {
    use tapvault_verify::taproot::{assemble_tapscript_root, taproot_output_key, x_only};
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let (mut b, _) = s.clients(None);
    let scripts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![0x51 + i, 0x87]).collect();
    let leaves: Vec<v1::TapLeaf> = scripts
        .iter()
        .map(|sc| v1::TapLeaf {
            leaf_version: 0xc0,
            script: sc.clone(),
        })
        .collect();
    let refs: Vec<(u8, &[u8])> = scripts.iter().map(|x| (0xc0, x.as_slice())).collect();
    let root = assemble_tapscript_root(&refs).unwrap();
    let raw = bitcoin::secp256k1::PublicKey::from_slice(&script_key(&file_chain()[0])).unwrap();
    let key = x_only(&taproot_output_key(&raw, Some(&root)).unwrap());
    let req = v1::PushTapscriptRequest {
        key: key.to_vec(),
        leaves: leaves.clone(),
        root_hash: root.to_vec(),
        raw_key: raw.serialize().to_vec(),
        label: "multisig".into(),
    };
    let r = b.push_tapscript(req.clone()).await.unwrap().into_inner();
    assert!(r.new);
    assert!(
        !b.push_tapscript(req.clone())
            .await
            .unwrap()
            .into_inner()
            .new
    );
    let got = b
        .list_tapscripts(v1::ListTapscriptsRequest {
            key: key.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.tapscripts.len(), 1);
    assert_eq!(got.tapscripts[0].leaves, leaves);
    assert_eq!(got.tapscripts[0].root_hash, root.to_vec());

    let mut wrong_root = req.clone();
    wrong_root.root_hash[0] ^= 1;
    let mut reordered = req.clone();
    reordered.leaves.swap(0, 2);
    let mut wrong_key = req.clone();
    wrong_key.key[5] ^= 1;
    let mut odd_version = req.clone();
    odd_version.leaves[1].leaf_version = 0xc1;
    let mut no_leaves = req.clone();
    no_leaves.leaves.clear();
    for (r, want) in [
        (wrong_root, "not the claimed root"),
        (reordered, "not the claimed root"),
        (wrong_key, "not key"),
        (odd_version, "leaf 1"),
        (no_leaves, "at least one leaf"),
    ] {
        let e = b.push_tapscript(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
    assert_eq!(s.count("tapscripts").await, 1);
    s.stop().await;
}
