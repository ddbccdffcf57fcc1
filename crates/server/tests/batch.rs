//! Group commit writes many leaves with a few statements; the result must be
//! exactly what the same leaves give one by one: outcomes, versions,
//! ancestry, events, heads and every tree root. Mixed batches: orphans
//! before their parents, the same key twice (duplicate and new version),
//! whole chains.

mod common;
use common::*;
use tapvault_codec::RawProof;
use tapvault_server::checks::new_leaf;
use tapvault_store::db::testdb;
use tapvault_store::universe::{insert_leaves, NewLeaf};

fn leaves() -> Vec<NewLeaf> {
    file_chain()
        .iter()
        .map(|raw| new_leaf(&RawProof::decode(raw).unwrap()))
        .collect()
}

/// The same leaf key with other bytes: a new version to the store.
fn other_version(l: &NewLeaf) -> NewLeaf {
    let mut v = l.clone();
    v.raw.push(0);
    v
}

type Dump = (Vec<String>, Vec<String>, Vec<String>);
type HeadRow = (Vec<u8>, i16, Vec<u8>, bool, i32, Vec<u8>);

async fn dump(db: &tapvault_store::Db) -> Dump {
    let heads: Vec<HeadRow> = sqlx::query_as(
        "SELECT h.universe_id, h.proof_type, h.leaf_key, h.complete, l.version, l.proof_hash
         FROM universe_heads h JOIN universe_leaves l ON l.id = h.leaf_id
         ORDER BY h.universe_id, h.proof_type, h.leaf_key",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let roots: Vec<(String, Vec<u8>, i64)> =
        sqlx::query_as("SELECT namespace, root_hash, root_sum FROM mssmt_roots ORDER BY namespace")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let events: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT kind, leaf_key FROM ingest_events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    (
        heads.iter().map(|h| format!("{h:?}")).collect(),
        roots.iter().map(|r| format!("{r:?}")).collect(),
        events.iter().map(|e| format!("{e:?}")).collect(),
    )
}

#[tokio::test]
async fn a_batch_equals_the_same_leaves_one_by_one() {
    let l = leaves();
    let (g, t1, t2) = (&l[0], &l[1], &l[2]);
    let sequences: Vec<(&str, Vec<NewLeaf>)> = vec![
        (
            "orphans before parents",
            vec![t2.clone(), t1.clone(), g.clone()],
        ),
        ("chain in order", vec![g.clone(), t1.clone(), t2.clone()]),
        (
            "duplicates and new versions",
            vec![
                g.clone(),
                g.clone(),
                t1.clone(),
                other_version(t1),
                t2.clone(),
                other_version(g),
                g.clone(),
            ],
        ),
        (
            "orphan completed in the batch, then a new version of it",
            vec![t2.clone(), g.clone(), t1.clone(), other_version(t2)],
        ),
        (
            "orphan re-pushed as a new version before its parent",
            vec![t2.clone(), other_version(t2), g.clone(), t1.clone()],
        ),
    ];
    for (name, seq) in sequences {
        let batched = testdb::create().await;
        let single = testdb::create().await;
        let tb = tapvault_store::db::ensure_tenant(&batched.db.pool, "t")
            .await
            .unwrap();
        let ts = tapvault_store::db::ensure_tenant(&single.db.pool, "t")
            .await
            .unwrap();
        let got = insert_leaves(&batched.db, tb, &seq).await.unwrap();
        let mut want = Vec::new();
        for leaf in &seq {
            want.extend(
                insert_leaves(&single.db, ts, std::slice::from_ref(leaf))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{name}: results");
        assert_eq!(
            dump(&batched.db).await,
            dump(&single.db).await,
            "{name}: state"
        );
        batched.drop_db().await;
        single.drop_db().await;
    }
}
