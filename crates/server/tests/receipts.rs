//! The receipt log end to end on a real database: what pushes get back,
//! signed heads, inclusion and consistency proofs, and what a server that
//! loses, changes or rewrites its history can no longer hide.

mod common;
use common::*;
use tapvault_api::receipts as rc;
use tapvault_codec::log::Kind;
use tapvault_codec::primitives::sha256;
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::VerifyLevel;
use tonic::Code;

fn log_client(s: &TestServer, token: Option<&str>) -> tapvault_api::client::LogClient {
    let ch = tapvault_api::client::channel(
        &s.running().grpc_addr.to_string(),
        &tapvault_api::client::Trust::Plaintext,
    )
    .unwrap();
    tapvault_api::client::log_client(ch, token).unwrap()
}

fn address_vectors() -> Vec<String> {
    load("taproot-assets/address/testdata/address_tlv_encoding_generated.json")["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["expected"].as_str().unwrap().to_string())
        .filter(|a| a.starts_with("taprt"))
        .collect()
}

async fn head(log: &mut tapvault_api::client::LogClient, key: &[u8; 32]) -> rc::VerifiedHead {
    let h = log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
        .unwrap()
        .into_inner();
    rc::verify_head(&h, Some(key)).unwrap()
}

async fn all_entries(log: &mut tapvault_api::client::LogClient) -> Vec<tapvault_codec::log::Entry> {
    let r = log
        .list_log_entries(v1::ListLogEntriesRequest {
            from_index: 0,
            limit: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    r.entries.iter().map(|e| rc::entry_of(e).unwrap()).collect()
}

#[tokio::test]
async fn every_stored_item_gets_a_receipt_that_verifies_under_a_signed_head() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let key = s.running().log_key;
    let (mut b, mut u) = s.clients(None);
    let mut log = log_client(&s, None);

    // An empty log still has a signed head (size 0).
    let h0 = head(&mut log, &key).await;
    assert_eq!(h0.head.tree_size, 0);

    // Proofs through the universe wire (tapd's InsertProof reply cannot
    // carry a receipt: the client asks for it).
    let proofs = synthetic(5, "");
    for (_, req) in &proofs {
        u.insert_proof(req.clone()).await.unwrap();
    }
    // A backup, addresses, a tapscript tree through tapvault.v1: their
    // replies carry the entries.
    let blob = b"an encrypted assets.backup".to_vec();
    let r = b
        .push_wallet_backup(v1::PushWalletBackupRequest {
            backup: blob.clone(),
            opaque: true,
            source: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receipts.len(), 1);
    let be = rc::entry_of(&r.receipts[0]).unwrap();
    assert_eq!(
        (be.kind, be.content_hash, be.index),
        (Kind::WalletBackup, sha256(&[&blob]), 5)
    );
    let addrs = address_vectors();
    let r = b
        .push_addresses(v1::PushAddressesRequest {
            addresses: addrs.clone(),
            network: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receipts.len(), addrs.len());
    assert!(r
        .receipts
        .iter()
        .zip(6u64..)
        .all(|(e, i)| e.index == i && e.kind == 3));

    let h1 = head(&mut log, &key).await;
    let n = 6 + addrs.len() as u64;
    assert_eq!(h1.head.tree_size, n);
    assert_eq!(h1.head.tenant, "default");
    // Every entry hashes into the signed root.
    let entries = all_entries(&mut log).await;
    assert_eq!(entries.len() as u64, n);
    assert_eq!(rc::root_of_entries(&entries), h1.head.root_hash);

    // Each proof's receipt: its entry and an inclusion proof that checks.
    let items: Vec<v1::GetReceiptRequest> = proofs
        .iter()
        .map(|(raw, _)| v1::GetReceiptRequest {
            kind: 1,
            content_hash: sha256(&[raw]).to_vec(),
        })
        .collect();
    let got = log
        .get_receipts(v1::GetReceiptsRequest { items })
        .await
        .unwrap()
        .into_inner()
        .receipts;
    for (i, r) in got.iter().enumerate() {
        assert!(r.found, "{}", r.problem);
        let e = rc::entry_of(r.entry.as_ref().unwrap()).unwrap();
        assert_eq!(e.index, i as u64, "log order is arrival order");
        let h = rc::verify_head(r.head.as_ref().unwrap(), Some(&key)).unwrap();
        rc::verify_inclusion(&h, &e, &r.inclusion_proof).unwrap();
        // The same proof does not verify at another index.
        let mut moved = e;
        moved.index = (e.index + 1) % n;
        assert!(rc::verify_inclusion(&h, &moved, &r.inclusion_proof).is_err());
    }

    // The log only grows: the later head extends the earlier ones.
    for old in [&h0, &h1] {
        let p = log
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                from_size: old.head.tree_size,
                to_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        rc::verify_consistency(old, &h1, &p.hashes).unwrap();
    }
    let more = synthetic(8, "more");
    for (_, req) in &more {
        u.insert_proof(req.clone()).await.unwrap();
    }
    let h2 = head(&mut log, &key).await;
    assert_eq!(h2.head.tree_size, n + 8);
    for from in 1..=h1.head.tree_size {
        // Against every older size, including ones no head was signed at.
        let p = log
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                from_size: from,
                to_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let old_root = rc::root_of_entries(&entries[..from as usize]);
        let old = rc::VerifiedHead {
            head: tapvault_codec::log::TreeHead {
                tree_size: from,
                root_hash: old_root,
                ..h1.head.clone()
            },
            ..h1.clone()
        };
        rc::verify_consistency(&old, &h2, &p.hashes).unwrap_or_else(|e| panic!("{from}: {e}"));
    }
    // Pushing the same proof again logs nothing.
    u.insert_proof(more[0].1.clone()).await.unwrap();
    assert_eq!(head(&mut log, &key).await.head.tree_size, n + 8);

    // Bad requests are refused with what is wrong.
    let e = log
        .get_receipt(v1::GetReceiptRequest {
            kind: 9,
            content_hash: vec![0; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = log
        .get_receipt(v1::GetReceiptRequest {
            kind: 1,
            content_hash: vec![7; 32],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("not in the log"), "{e:?}");
    let e = log
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            from_size: 1,
            to_size: n + 100,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // A head signed by another key is refused.
    let other = [3u8; 32];
    let h = log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: false })
        .await
        .unwrap()
        .into_inner();
    assert!(rc::verify_head(&h, Some(&other))
        .unwrap_err()
        .0
        .contains("log key changed"));
    let mut forged = h.clone();
    forged.tree_size += 1;
    assert!(rc::verify_head(&forged, None)
        .unwrap_err()
        .0
        .contains("bad signature"));
    s.stop().await;
}

#[tokio::test]
async fn a_lost_item_and_a_rewritten_log_are_caught() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let key = s.running().log_key;
    let (_, mut u) = s.clients(None);
    let mut log = log_client(&s, None);
    let proofs = synthetic(6, "");
    for (_, req) in &proofs {
        u.insert_proof(req.clone()).await.unwrap();
    }
    let saved = head(&mut log, &key).await;
    let pool = &s.running().db.pool;

    // An item deleted behind the server's back: its receipt names it.
    let gone = sha256(&[&proofs[2].0]);
    for q in [
        "DELETE FROM universe_heads WHERE leaf_id IN (SELECT id FROM universe_leaves WHERE proof_hash = $1)",
        "DELETE FROM universe_leaves WHERE proof_hash = $1",
        "DELETE FROM proofs WHERE hash = $1",
    ] {
        sqlx::query(q).bind(&gone[..]).execute(pool).await.unwrap();
    }
    let r = log
        .get_receipt(v1::GetReceiptRequest {
            kind: 1,
            content_hash: gone.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.found);
    assert!(
        r.problem.contains(&hex::encode(gone)) && r.problem.contains("no longer stored"),
        "{}",
        r.problem
    );
    let (_, findings) = tapvault_store::fsck::fsck(&s.running().db).await.unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.check == "log" && f.detail.contains(&hex::encode(gone))),
        "{findings:?}"
    );

    // A server that forgets: the log truncated and rewritten, then grown
    // past the saved head. A restarted server (no cached tree) signs the
    // new history; the consistency check against the saved head fails.
    sqlx::query("DELETE FROM log_entries WHERE seq >= 3")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tenant_usage SET log_size = 3")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM log_heads")
        .execute(pool)
        .await
        .unwrap();
    let dir = s.dir.clone();
    let url = s.tdb.as_ref().unwrap().url.clone();
    let mut s = s;
    s.running.take().unwrap().shutdown().await;
    let mut cfg = tapvault_server::ServeConfig::new(dir);
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(url);
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::DecodeOnly;
    s.running = Some(tapvault_server::start(cfg).await.unwrap());
    assert_eq!(s.running().log_key, key, "the log key survives a restart");
    let (_, mut u) = s.clients(None);
    let mut log = log_client(&s, None);
    for (_, req) in synthetic(6, "rewritten") {
        u.insert_proof(req).await.unwrap();
    }
    let new = head(&mut log, &key).await;
    assert_eq!(new.head.tree_size, 9);
    let p = log
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            from_size: saved.head.tree_size,
            to_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let e = rc::verify_consistency(&saved, &new, &p.hashes).unwrap_err();
    assert!(e.0.contains("not consistent"), "{e}");
    s.stop().await;
}

#[tokio::test]
async fn concurrent_pushes_get_a_total_gap_free_order() {
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let key = s.running().log_key;
    let proofs = synthetic(120, "");
    let mut tasks = Vec::new();
    for c in 0..12 {
        let (mut b, mut u) = s.clients(None);
        let mine: Vec<_> = proofs.iter().skip(c).step_by(12).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for (i, (_, req)) in mine.into_iter().enumerate() {
                u.insert_proof(req).await.unwrap();
                if i % 5 == 0 {
                    b.push_wallet_backup(v1::PushWalletBackupRequest {
                        backup: format!("blob {c} {i}").into_bytes(),
                        opaque: true,
                        source: String::new(),
                    })
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut log = log_client(&s, None);
    let h = head(&mut log, &key).await;
    let entries = all_entries(&mut log).await;
    assert_eq!(h.head.tree_size, 120 + 24);
    assert_eq!(entries.len(), 144);
    assert!(
        entries.iter().enumerate().all(|(i, e)| e.index == i as u64),
        "gap-free"
    );
    let distinct: std::collections::HashSet<_> =
        entries.iter().map(|e| (e.kind, e.content_hash)).collect();
    assert_eq!(distinct.len(), 144, "one entry per acknowledged item");
    assert_eq!(rc::root_of_entries(&entries), h.head.root_hash);
    let (_, findings) = tapvault_store::fsck::fsck(&s.running().db).await.unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    s.stop().await;
}
