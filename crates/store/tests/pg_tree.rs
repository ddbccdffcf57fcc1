//! The PostgreSQL node store against the in-memory one, on a real database.

use rand::{RngExt, SeedableRng};
use tapvault_mssmt::{LeafUpdate, MemTree, Tree};
use tapvault_store::db::{ensure_tenant, testdb};
use tapvault_store::PgTree;

fn rand_ops(seed: u64, n: usize) -> Vec<Vec<LeafUpdate>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut keys: Vec<[u8; 32]> = Vec::new();
    (0..n)
        .map(|_| {
            let batch = rng.random_range(1..8);
            (0..batch)
                .map(|_| {
                    if !keys.is_empty() && rng.random_bool(0.25) {
                        let k = keys[rng.random_range(0..keys.len())];
                        if rng.random_bool(0.5) {
                            LeafUpdate::delete(k)
                        } else {
                            LeafUpdate::new(k, &rng.random::<[u8; 8]>(), rng.random_range(0..1000))
                        }
                    } else {
                        let k: [u8; 32] = rng.random();
                        keys.push(k);
                        LeafUpdate::new(k, &rng.random::<[u8; 16]>(), rng.random_range(0..1000))
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn pg_and_memory_give_identical_roots_and_proofs() {
    let t = testdb::create().await;
    let tenant = ensure_tenant(&t.db.pool, "alice").await.unwrap();
    for seed in 0..3u64 {
        let ns = format!("test-{seed}");
        let mut mem = MemTree::new();
        for ups in rand_ops(seed, 40) {
            let want = mem.apply(ups.clone()).unwrap();
            let mut tx = t.db.pool.begin().await.unwrap();
            let got = Tree::new(PgTree::writer(&mut tx, tenant, &ns, t.db.cache.clone()))
                .apply(ups.clone())
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(got, want);
            // Proofs from a reader with a cold cache equal the memory tree's.
            let mut conn = t.db.pool.acquire().await.unwrap();
            let cold = tapvault_store::NodeCache::new(10);
            let mut reader = Tree::new(PgTree::reader(&mut conn, tenant, &ns, cold));
            assert_eq!(reader.root().await.unwrap(), want);
            let k = ups[0].key;
            assert_eq!(reader.proof(&k).await.unwrap(), mem.proof(&k).unwrap());
            assert_eq!(reader.get(&k).await.unwrap(), mem.get(&k));
        }
    }
    t.drop_db().await;
}

#[tokio::test]
async fn rollback_leaves_tree_unchanged() {
    let t = testdb::create().await;
    let tenant = ensure_tenant(&t.db.pool, "bob").await.unwrap();
    let mut tx = t.db.pool.begin().await.unwrap();
    let r1 = Tree::new(PgTree::writer(&mut tx, tenant, "ns", t.db.cache.clone()))
        .insert([1; 32], b"a", 5)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = t.db.pool.begin().await.unwrap();
    let r2 = Tree::new(PgTree::writer(&mut tx, tenant, "ns", t.db.cache.clone()))
        .insert([2; 32], b"b", 7)
        .await
        .unwrap();
    assert_ne!(r1, r2);
    tx.rollback().await.unwrap();
    let mut conn = t.db.pool.acquire().await.unwrap();
    let mut reader = Tree::new(PgTree::reader(&mut conn, tenant, "ns", t.db.cache.clone()));
    assert_eq!(reader.root().await.unwrap(), r1);
    assert!(reader.get(&[2; 32]).await.unwrap().is_none());
    drop(conn);
    t.drop_db().await;
}

#[tokio::test]
async fn concurrent_writers_of_one_tree_serialize() {
    let t = testdb::create().await;
    let tenant = ensure_tenant(&t.db.pool, "carol").await.unwrap();
    let mut handles = Vec::new();
    for w in 0..4u8 {
        let db = t.db.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..25u8 {
                let mut tx = db.pool.begin().await.unwrap();
                let mut key = [0u8; 32];
                key[0] = w;
                key[1] = i;
                Tree::new(PgTree::writer(&mut tx, tenant, "shared", db.cache.clone()))
                    .insert(key, &[w, i], 1)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut mem = MemTree::new();
    for w in 0..4u8 {
        for i in 0..25u8 {
            let mut key = [0u8; 32];
            key[0] = w;
            key[1] = i;
            mem.insert(key, &[w, i], 1).unwrap();
        }
    }
    let mut conn = t.db.pool.acquire().await.unwrap();
    let mut reader = Tree::new(PgTree::reader(
        &mut conn,
        tenant,
        "shared",
        t.db.cache.clone(),
    ));
    let root = reader.root().await.unwrap();
    assert_eq!(root, mem.root().unwrap());
    assert_eq!(root.sum, 100);
    drop(conn);
    t.drop_db().await;
}
