#![allow(clippy::result_large_err)]
//! The universe RPC against a real server and PostgreSQL.

mod common;
use common::*;
use tapvault_codec::universe::universe_leaf_sum;
use tapvault_codec::Proof;
use tapvault_mssmt::{MemTree, Node};
use tapvault_server::proto::universerpc as pb;
use tapvault_server::VerifyLevel;
use tonic::Code;

const GENESIS: &str = "valid regtest genesis proof with meta reveal";
const FILE: [&str; 3] = [
    "valid regtest proof file index 0",
    "valid regtest proof file index 1",
    "valid regtest proof file index 2",
];

#[tokio::test]
async fn every_regtest_vector_round_trips_and_roots_match_memory() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let mut c = s.client().await;
    let mut mem: std::collections::HashMap<([u8; 32], &str), MemTree> = Default::default();
    // Issuance first so every transfer's ancestor is present.
    let mut all = regtest();
    all.sort_by_key(|(_, b)| !Proof::decode(b).unwrap().asset.is_genesis());
    let derived = load("derived/tap_derived_values.json");
    for (comment, raw) in &all {
        let req = courier_request(raw);
        let resp = c
            .insert_proof(req.clone())
            .await
            .unwrap_or_else(|e| panic!("{comment}: {e}"))
            .into_inner();
        assert_eq!(resp.asset_leaf.as_ref().unwrap().proof, *raw);
        let p = Proof::decode(raw).unwrap();
        let info = tapvault_codec::universe_leaf_info(&p);
        let tree = mem
            .entry((info.subject.id_bytes(), info.proof_type.as_str()))
            .or_default();
        tree.insert(
            info.leaf_key,
            raw,
            universe_leaf_sum(info.proof_type, p.asset.amount),
        )
        .unwrap();
        let want = tree.root().unwrap();
        let got = resp.universe_root.unwrap().mssmt_root.unwrap();
        assert_eq!(got.root_hash, want.hash.to_vec(), "{comment}");
        assert_eq!(got.root_sum as u64, want.sum);
        // The inclusion proof verifies against that root.
        let cp = tapvault_mssmt::CompressedProof::decode(&resp.universe_inclusion_proof).unwrap();
        cp.decompress()
            .unwrap()
            .verify(&info.leaf_key, Node::leaf(raw, info.sum), &want)
            .unwrap();
        // Leaf key and ids as derived.
        let d = derived["regtest_proof_derivations"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["comment"] == comment.as_str())
            .unwrap();
        let lk = d
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("universe_leaf_key"))
            .unwrap()
            .1;
        assert_eq!(hex::encode(info.leaf_key), lk.as_str().unwrap());
    }
    // QueryProof returns the identical bytes for every vector; where two
    // vectors share a leaf key (same output, different header), the newest.
    let mut newest: std::collections::HashMap<[u8; 32], &Vec<u8>> = Default::default();
    for (_, raw) in &all {
        let p = Proof::decode(raw).unwrap();
        newest.insert(tapvault_codec::universe_leaf_info(&p).leaf_key, raw);
    }
    for (comment, raw) in &all {
        let p = Proof::decode(raw).unwrap();
        let want = newest[&tapvault_codec::universe_leaf_info(&p).leaf_key];
        let got = c
            .query_proof(query_key(&courier_request(raw)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.asset_leaf.unwrap().proof, *want, "{comment}");
        assert!(!got.universe_inclusion_proof.is_empty());
        assert!(got.multiverse_root.is_some());
    }
    // The multiverse root equals one built in memory from the universe roots.
    for (ty, code) in [("issuance", 1), ("transfer", 2)] {
        let mut mv = MemTree::new();
        for ((uid, t), tree) in mem.iter_mut() {
            if *t == ty {
                let r = tree.root().unwrap();
                let pt = if ty == "issuance" {
                    tapvault_codec::ProofType::Issuance
                } else {
                    tapvault_codec::ProofType::Transfer
                };
                let (v, sum) = tapvault_codec::universe::multiverse_leaf(pt, &r);
                mv.insert(*uid, &v, sum).unwrap();
            }
        }
        let got = c
            .multiverse_root(pb::MultiverseRootRequest {
                proof_type: code,
                specific_ids: vec![],
            })
            .await
            .unwrap()
            .into_inner()
            .multiverse_root
            .unwrap();
        assert_eq!(got.root_hash, mv.root().unwrap().hash.to_vec(), "{ty}");
    }
    s.stop().await;
}

#[tokio::test]
async fn federation_and_courier_shapes_and_idempotency() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let mut c = s.client().await;
    let g = find(GENESIS);
    let r1 = c
        .insert_proof(federation_request(&g))
        .await
        .unwrap()
        .into_inner();
    let root = r1.universe_root.as_ref().unwrap();
    assert_eq!(root.id.as_ref().unwrap().proof_type, 1);
    assert!(root.mssmt_root.is_some());
    assert!(r1.issuance_data.is_some());
    let before = s.count("universe_leaves").await;
    // The same proof again, in the courier's shape: idempotent.
    let r2 = c
        .insert_proof(courier_request(&g))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r2.universe_root.unwrap().mssmt_root, root.mssmt_root);
    assert_eq!(s.count("universe_leaves").await, before);
    // A different proof for the same leaf (an unknown odd record added) is a
    // new version; the old one stays.
    let mut p = Proof::decode(&g).unwrap();
    p.unknown.insert(1001, vec![1, 2, 3]);
    let g2 = p.encode();
    let r3 = c
        .insert_proof(courier_request(&g2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r3.asset_leaf.unwrap().proof, g2);
    assert_eq!(s.count("universe_leaves").await, before + 1);
    let q = c
        .query_proof(query_key(&courier_request(&g)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        q.asset_leaf.unwrap().proof,
        g2,
        "the leaf points at the newest version"
    );
    let versions: Vec<i32> =
        sqlx::query_scalar("SELECT version FROM universe_leaves ORDER BY version")
            .fetch_all(&s.running().db.pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2]);
    s.stop().await;
}

async fn snapshot(s: &TestServer) -> Vec<i64> {
    let mut v = Vec::new();
    for t in [
        "proofs",
        "universe_leaves",
        "universe_heads",
        "mssmt_nodes",
        "universes",
        "ingest_events",
    ] {
        v.push(s.count(t).await);
    }
    v
}

#[tokio::test]
async fn bad_inputs_are_refused_and_nothing_changes() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let mut c = s.client().await;
    let g = find(GENESIS);
    c.insert_proof(courier_request(&g)).await.unwrap();
    let before = snapshot(&s).await;
    let t1 = find(FILE[1]);

    let expect = |r: Result<tonic::Response<pb::AssetProofResponse>, tonic::Status>,
                  code: Code,
                  text: &str| {
        let e = r.expect_err("must fail");
        assert_eq!(e.code(), code, "{}", e.message());
        assert!(
            e.message().contains(text),
            "{:?} lacks {text:?}",
            e.message()
        );
    };

    let mut garbage = courier_request(&g);
    garbage.asset_leaf.as_mut().unwrap().proof = b"TAPPgarbage".to_vec();
    expect(
        c.insert_proof(garbage).await,
        Code::InvalidArgument,
        "invalid proof",
    );

    let mut not_tapp = courier_request(&g);
    not_tapp.asset_leaf.as_mut().unwrap().proof = b"hello".to_vec();
    expect(
        c.insert_proof(not_tapp).await,
        Code::InvalidArgument,
        "TAPP magic",
    );

    let mut truncated = courier_request(&t1);
    truncated
        .asset_leaf
        .as_mut()
        .unwrap()
        .proof
        .truncate(t1.len() - 3);
    expect(
        c.insert_proof(truncated).await,
        Code::InvalidArgument,
        "truncated",
    );

    // Leaf key naming another outpoint.
    let mut wrong_key = courier_request(&t1);
    if let Some(pb::asset_key::Outpoint::Op(op)) = &mut wrong_key
        .key
        .as_mut()
        .unwrap()
        .leaf_key
        .as_mut()
        .unwrap()
        .outpoint
    {
        op.index += 1;
    }
    expect(
        c.insert_proof(wrong_key).await,
        Code::InvalidArgument,
        "outpoint mismatch",
    );

    // Wrong script key.
    let mut wrong_sk = courier_request(&t1);
    wrong_sk
        .key
        .as_mut()
        .unwrap()
        .leaf_key
        .as_mut()
        .unwrap()
        .script_key = Some(pb::asset_key::ScriptKey::ScriptKeyBytes(vec![2; 33]));
    expect(
        c.insert_proof(wrong_sk).await,
        Code::InvalidArgument,
        "script key mismatch",
    );

    // Wrong proof type.
    let mut wrong_type = courier_request(&t1);
    wrong_type
        .key
        .as_mut()
        .unwrap()
        .id
        .as_mut()
        .unwrap()
        .proof_type = 1;
    expect(
        c.insert_proof(wrong_type).await,
        Code::InvalidArgument,
        "proof type mismatch",
    );

    // A proof that fails verification (amount changed).
    let mut p = Proof::decode(&t1).unwrap();
    p.asset.amount += 1;
    let forged = p.encode();
    expect(
        c.insert_proof(courier_request(&forged)).await,
        Code::InvalidArgument,
        "failed verification",
    );

    // A placeholder header fails the header check under full verification.
    let split = find("valid regtest split proof");
    expect(
        c.insert_proof(courier_request(&split)).await,
        Code::InvalidArgument,
        "proof-of-work",
    );

    // Missing fields.
    expect(
        c.insert_proof(pb::AssetProof::default()).await,
        Code::InvalidArgument,
        "key must be set",
    );

    // Oversized message (over the 200 MiB limit).
    let mut huge = courier_request(&g);
    huge.asset_leaf.as_mut().unwrap().proof = vec![0u8; 201 << 20];
    let e = c.insert_proof(huge).await.expect_err("oversized");
    assert!(
        matches!(e.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{e}"
    );

    assert_eq!(
        snapshot(&s).await,
        before,
        "nothing stored by refused inserts"
    );
    s.stop().await;
}

#[tokio::test]
async fn orphans_are_kept_but_not_listed_until_complete() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let mut c = s.client().await;
    let (p0, p1, p2) = (find(FILE[0]), find(FILE[1]), find(FILE[2]));
    // Tip and middle first: stored, but not in the universe tree.
    c.insert_proof(courier_request(&p2)).await.unwrap();
    c.insert_proof(courier_request(&p1)).await.unwrap();
    assert_eq!(s.count("universe_leaves").await, 2);
    let e = c
        .query_proof(query_key(&courier_request(&p2)))
        .await
        .unwrap_err();
    assert!(e.message().contains("no universe proof found"), "{e}");
    let asset = Proof::decode(&p0).unwrap().asset.id();
    let id = |t| pb::Id {
        id: Some(pb::id::Id::AssetId(asset.to_vec())),
        proof_type: t,
    };
    let e = c
        .query_asset_roots(pb::AssetRootQuery { id: Some(id(2)) })
        .await
        .unwrap_err();
    assert!(e.message().contains("no universe root found"), "{e}");
    // The genesis arrives: the whole chain becomes visible.
    c.insert_proof(courier_request(&p0)).await.unwrap();
    let keys = c
        .asset_leaf_keys(pb::AssetLeafKeysRequest {
            id: Some(id(2)),
            offset: 0,
            limit: 0,
            direction: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.asset_keys.len(), 2);
    assert_eq!(keys.entries.len(), 2);
    let q = c
        .query_proof(query_key(&courier_request(&p2)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.asset_leaf.unwrap().proof, p2);
    // The empty page ends a sync walk.
    let empty = c
        .asset_leaf_keys(pb::AssetLeafKeysRequest {
            id: Some(id(2)),
            offset: 512,
            limit: 512,
            direction: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.asset_keys.is_empty() && !empty.has_more);
    s.stop().await;
}

#[tokio::test]
async fn roots_listing_paging_and_not_found() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let mut c = s.client().await;
    for n in FILE {
        c.insert_proof(courier_request(&find(n))).await.unwrap();
    }
    let roots = c
        .asset_roots(pb::AssetRootRequest {
            with_amounts_by_id: false,
            offset: 0,
            limit: 512,
            direction: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        roots.universe_roots.len(),
        2,
        "issuance and transfer universe"
    );
    for (k, r) in &roots.universe_roots {
        assert!(k.starts_with("issuance-") || k.starts_with("transfer-"));
        let id = r.id.as_ref().unwrap();
        assert!(id.proof_type == 1 || id.proof_type == 2);
        assert!(r.mssmt_root.is_some());
    }
    let page2 = c
        .asset_roots(pb::AssetRootRequest {
            with_amounts_by_id: false,
            offset: 1,
            limit: 1,
            direction: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.universe_roots.len(), 1);
    assert!(!page2.has_more);
    let asset = Proof::decode(&find(FILE[0])).unwrap().asset.id();
    let q = c
        .query_asset_roots(pb::AssetRootQuery {
            id: Some(pb::Id {
                id: Some(pb::id::Id::AssetId(asset.to_vec())),
                proof_type: 1,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(q.issuance_root.unwrap().mssmt_root.is_some());
    let e = c
        .query_asset_roots(pb::AssetRootQuery {
            id: Some(pb::Id {
                id: Some(pb::id::Id::AssetId(vec![7; 32])),
                proof_type: 1,
            }),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no universe root found"));
    let e = c
        .asset_leaf_keys(pb::AssetLeafKeysRequest {
            id: Some(pb::Id {
                id: Some(pb::id::Id::AssetId(asset.to_vec())),
                proof_type: 0,
            }),
            offset: 0,
            limit: 0,
            direction: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .asset_leaf_keys(pb::AssetLeafKeysRequest {
            id: Some(pb::Id {
                id: Some(pb::id::Id::AssetId(asset.to_vec())),
                proof_type: 1,
            }),
            offset: 0,
            limit: 20000,
            direction: 0,
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("maximum page size"));
    let info = c.info(pb::InfoRequest {}).await.unwrap().into_inner();
    assert_ne!(info.runtime_id, 0);
    let stats = c
        .universe_stats(pb::StatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.num_total_proofs, 3);
    assert_eq!(stats.num_total_assets, 1);
    let ev = c
        .query_events(pb::QueryEventsRequest {
            start_timestamp: 0,
            end_timestamp: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ev.events.iter().map(|e| e.new_proof_events).sum::<u64>(), 3);
    // Refused and unimplemented methods say why.
    let e = c
        .delete_asset_root(pb::DeleteRootQuery { id: None })
        .await
        .unwrap_err();
    assert!(e.message().contains("append-only"));
    let e = c
        .push_proof(pb::PushProofRequest::default())
        .await
        .unwrap_err();
    assert!(e.message().contains("passive"));
    let e = c
        .add_federation_server(pb::AddFederationServerRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    s.stop().await;
}

#[tokio::test]
async fn lookups_are_index_scans() {
    let s = TestServer::start(VerifyLevel::Full, false).await;
    let pool = &s.running().db.pool;
    sqlx::query("SET enable_seqscan = off")
        .execute(pool)
        .await
        .unwrap();
    for (what, q) in [
        ("script key", "SELECT id FROM universe_leaves WHERE tenant_id = 1 AND script_key_x = '\\x00'"),
        ("outpoint", "SELECT id FROM universe_leaves WHERE tenant_id = 1 AND anchor_txid = '\\x00' AND anchor_vout = 0"),
        ("txid", "SELECT id FROM universe_leaves WHERE tenant_id = 1 AND anchor_txid = '\\x00'"),
        ("asset id", "SELECT id FROM universe_leaves WHERE tenant_id = 1 AND asset_id = '\\x00'"),
        ("group key", "SELECT id FROM universe_leaves WHERE tenant_id = 1 AND group_key = '\\x00'"),
    ] {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {q}"))).fetch_all(&mut *conn).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("Index"), "{what}: {plan}");
    }
    s.stop().await;
}

/// tapd v0.8's AssetLeaves (AssetLeavesRequest: paged, with a direction)
/// and v0.7's (a bare ID) on one server; direction 0 is ascending for both
/// (what every tapd syncer means by it), 1 descending.
#[tokio::test]
async fn asset_leaves_speaks_v07_and_v08() {
    use tapvault_server::compat::AssetLeavesRequest;
    let s = TestServer::start(VerifyLevel::DecodeOnly, false).await;
    let mut c = s.client().await;
    let items = synthetic(5, "");
    for (_, req) in &items {
        c.insert_proof(req.clone()).await.unwrap();
    }
    let asset_id = tapvault_codec::Proof::decode(&items[0].0)
        .unwrap()
        .asset
        .id()
        .to_vec();
    let id = pb::Id {
        id: Some(pb::id::Id::AssetId(asset_id)),
        proof_type: 1,
    };
    let all = |r: pb::AssetLeafResponse| -> Vec<Vec<u8>> {
        r.leaves.into_iter().map(|l| l.proof).collect()
    };
    // v0.7: everything at once, in insertion order.
    let v07 = all(c
        .asset_leaves(AssetLeavesRequest::v07(id.clone()))
        .await
        .unwrap()
        .into_inner());
    let inserted: Vec<Vec<u8>> = items.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(v07, inserted);
    // v0.8: pages of two, ascending (0), then descending (1).
    let mut paged = Vec::new();
    for offset in (0..).step_by(2) {
        let r = c
            .asset_leaves(AssetLeavesRequest::new(id.clone(), offset, 2, 0))
            .await
            .unwrap()
            .into_inner();
        let more = r.has_more;
        paged.extend(all(r));
        if !more {
            break;
        }
    }
    assert_eq!(paged, inserted);
    let desc = all(c
        .asset_leaves(AssetLeavesRequest::new(id.clone(), 0, 0, 1))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(desc, inserted.iter().rev().cloned().collect::<Vec<_>>());
    // tapd's limits: a page over 16384 or a negative offset is refused.
    let e = c
        .asset_leaves(AssetLeavesRequest::new(id.clone(), 0, 16385, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let e = c
        .asset_leaves(AssetLeavesRequest::new(id, -1, 0, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    s.stop().await;
}

/// QueryAssetStats (tapcli universe stats assets): genesis point, type,
/// height, timestamp, anchor point, supply and proof counts filled from the
/// stored issuance proof; filtered and paged in the database.
#[tokio::test]
async fn asset_stats_are_filled_and_paged() {
    let s = TestServer::start(VerifyLevel::NoHeader, false).await;
    let mut c = s.client().await;
    let chain = file_chain();
    for raw in &chain {
        c.insert_proof(courier_request(raw)).await.unwrap();
    }
    let g = tapvault_codec::Proof::decode(&chain[0]).unwrap();
    let r = c
        .query_asset_stats(pb::AssetStatsQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.asset_stats.len(), 1);
    assert!(!r.has_more);
    let st = &r.asset_stats[0];
    let a = st.asset.as_ref().unwrap();
    assert_eq!(a.asset_id, g.asset.id().to_vec());
    assert_eq!(a.genesis_point, g.asset.genesis.first_prev_out.to_string());
    assert_eq!(a.anchor_point, g.outpoint().to_string());
    assert_eq!(a.genesis_height as u32, g.block_height);
    assert!(a.genesis_timestamp > 0);
    assert_eq!(a.total_supply as u64, g.asset.amount);
    assert_eq!(a.asset_type, g.asset.genesis.asset_type as i32);
    assert_eq!(st.total_proofs, 3, "one issuance and two transfer leaves");
    // Filters: by a name that does not match, by a wrong asset id.
    for q in [
        pb::AssetStatsQuery {
            asset_name_filter: "no such name".into(),
            ..Default::default()
        },
        pb::AssetStatsQuery {
            asset_id_filter: vec![9; 32],
            ..Default::default()
        },
    ] {
        let r = c.query_asset_stats(q).await.unwrap().into_inner();
        assert!(r.asset_stats.is_empty());
    }
    s.stop().await;
}
