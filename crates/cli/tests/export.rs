//! `tapvault export` → a fresh database → `tapvault import`: the second
//! server answers every query exactly as the first did.

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;

use std::path::{Path, PathBuf};
use std::process::Command;
use tapvault_codec::backup::{VERSION_OPTIMISTIC, VERSION_RAW};
use tapvault_codec::Proof;
use tapvault_server::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::proto::universerpc as upb;
use tapvault_server::{ServeConfig, VerifyLevel};
use tapvault_store::db::testdb::{self, TestDb};

fn vectors() -> PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

fn load(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(vectors().join(rel)).unwrap()).unwrap()
}

fn file_chain() -> Vec<Vec<u8>> {
    let v = load("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json");
    let cases = v["valid_test_cases"].as_array().unwrap();
    (0..3)
        .map(|i| {
            let want = format!("valid regtest proof file index {i}");
            let c = cases
                .iter()
                .find(|c| c["comment"].as_str() == Some(want.as_str()))
                .unwrap();
            hex::decode(c["expected"].as_str().unwrap()).unwrap()
        })
        .collect()
}

fn tapvault(args: &[&str], url: &str, dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("TAPVAULT_DATA_DIR", dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

async fn serve(tdb: &TestDb, dir: &Path) -> tapvault_server::Running {
    let mut cfg = ServeConfig::new(dir.to_path_buf());
    cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
    cfg.http_listen = "127.0.0.1:0".parse().unwrap();
    cfg.database_url = Some(tdb.url.clone());
    cfg.tls = false;
    cfg.auth = false;
    cfg.verify = VerifyLevel::Full;
    tapvault_server::start(cfg).await.unwrap()
}

async fn fresh_head(r: &tapvault_server::Running) -> v1::SignedTreeHead {
    let ch = client::channel(&r.grpc_addr.to_string(), &Trust::Plaintext).unwrap();
    client::log_client(ch, None)
        .unwrap()
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
        .unwrap()
        .into_inner()
}

fn clients(r: &tapvault_server::Running) -> (client::BackupClient, client::UniverseClient) {
    let ch = client::channel(&r.grpc_addr.to_string(), &Trust::Plaintext).unwrap();
    client::clients(ch, None).unwrap()
}

/// Every answer a client can get, with server-assigned ids blanked.
async fn answers(r: &tapvault_server::Running, chain: &[Vec<u8>]) -> Vec<String> {
    let (mut b, mut u) = clients(r);
    let mut out = Vec::new();
    let leaves = b
        .list_leaves(v1::ListLeavesRequest {
            selector: Some(v1::list_leaves_request::Selector::All(true)),
            include_proofs: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    out.push(format!("{leaves:?}"));
    for raw in chain {
        let p = Proof::decode(raw).unwrap();
        let f = b
            .get_proof_file(v1::GetProofFileRequest {
                outpoint: Some(v1::OutPoint {
                    txid: p.outpoint().txid.to_string(),
                    vout: p.outpoint().vout,
                }),
                script_key: p.asset.script_key.0.to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{f:?}"));
    }
    let mut backups = b
        .list_wallet_backups(v1::ListWalletBackupsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .backups;
    for x in &mut backups {
        let raw = b
            .get_wallet_backup(v1::GetWalletBackupRequest {
                id: x.id,
                opaque: false,
            })
            .await
            .unwrap()
            .into_inner()
            .backup;
        out.push(hex::encode(raw));
        x.id = 0;
    }
    out.push(format!("{backups:?}"));
    out.push(format!(
        "{:?}",
        b.list_addresses(v1::ListAddressesRequest::default())
            .await
            .unwrap()
            .into_inner()
    ));
    out.push(format!(
        "{:?}",
        b.list_tapscripts(v1::ListTapscriptsRequest::default())
            .await
            .unwrap()
            .into_inner()
    ));
    let mut st = b
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    st.newest_backup_age_seconds = 0;
    for i in [&mut st.newest_backup, &mut st.newest_opaque_backup]
        .into_iter()
        .flatten()
    {
        i.id = 0;
    }
    out.push(format!("{st:?}"));
    let mut roots: Vec<String> = u
        .asset_roots(upb::AssetRootRequest::default())
        .await
        .unwrap()
        .into_inner()
        .universe_roots
        .into_iter()
        .map(|(k, v)| format!("{k} {v:?}"))
        .collect();
    roots.sort();
    out.push(roots.join("\n"));
    for ty in [1, 2] {
        out.push(format!(
            "{:?}",
            u.multiverse_root(upb::MultiverseRootRequest {
                proof_type: ty,
                specific_ids: vec![],
            })
            .await
            .unwrap()
            .into_inner()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_answers_identically() {
    let chain = file_chain();
    let a_db = testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-export-{}", a_db.name));
    let a = serve(&a_db, &dir.join("a")).await;
    let (mut b, mut u) = clients(&a);
    // A RAW backup of outputs 0 and 1, a proofless newer one, the tip via
    // the courier path, an opaque blob, addresses and a tapscript tree.
    let mut raw = blobs::tapbak_from_chain(&chain, VERSION_RAW);
    raw.assets.truncate(2);
    for (backup, opaque) in [
        (raw.encode(), false),
        (
            blobs::tapbak_from_chain(&chain, VERSION_OPTIMISTIC).encode(),
            false,
        ),
        (b"\x01sealed".to_vec(), true),
    ] {
        b.push_wallet_backup(v1::PushWalletBackupRequest {
            backup,
            opaque,
            source: "node-1".into(),
        })
        .await
        .unwrap();
    }
    let p = Proof::decode(&chain[2]).unwrap();
    u.insert_proof(upb::AssetProof {
        key: Some(upb::UniverseKey {
            id: Some(upb::Id {
                id: Some(upb::id::Id::AssetId(p.asset.id().to_vec())),
                proof_type: 2,
            }),
            leaf_key: Some(upb::AssetKey {
                outpoint: Some(upb::asset_key::Outpoint::OpStr(p.outpoint().to_string())),
                script_key: Some(upb::asset_key::ScriptKey::ScriptKeyBytes(
                    p.asset.script_key.0.to_vec(),
                )),
            }),
        }),
        asset_leaf: Some(upb::AssetLeaf {
            asset: None,
            proof: chain[2].clone(),
        }),
    })
    .await
    .unwrap();
    let addrs: Vec<String> =
        load("taproot-assets/address/testdata/address_tlv_encoding_generated.json")
            ["valid_test_cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["expected"].as_str())
            .filter(|a| a.starts_with("taprt"))
            .map(String::from)
            .collect();
    b.push_addresses(v1::PushAddressesRequest {
        addresses: addrs,
        network: String::new(),
    })
    .await
    .unwrap();
    let script = vec![0x51u8];
    let root = tapvault_verify::taproot::assemble_tapscript_root(&[(0xc0, &script)]).unwrap();
    b.push_tapscript(v1::PushTapscriptRequest {
        key: vec![7; 32],
        leaves: vec![v1::TapLeaf {
            leaf_version: 0xc0,
            script,
        }],
        root_hash: root.to_vec(),
        raw_key: vec![],
        label: "vault".into(),
    })
    .await
    .unwrap();
    let before = answers(&a, &chain).await;
    let a_head = fresh_head(&a).await;
    assert!(a_head.tree_size > 0);

    let file = dir.join("default.tvexport");
    let o = tapvault(
        &[
            "export",
            "--tenant",
            "default",
            "--out",
            file.to_str().unwrap(),
        ],
        &a_db.url,
        &dir.join("a"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    a.shutdown().await;

    // A tampered copy is refused and writes nothing.
    let b_db = testdb::create().await;
    let mut bad = std::fs::read(&file).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let bad_file = dir.join("bad.tvexport");
    std::fs::write(&bad_file, bad).unwrap();
    let o = tapvault(
        &["import", bad_file.to_str().unwrap()],
        &b_db.url,
        &dir.join("b"),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("checksum"));

    let o = tapvault(
        &["import", file.to_str().unwrap()],
        &b_db.url,
        &dir.join("b"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("carried over verbatim"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let b_srv = serve(&b_db, &dir.join("b")).await;
    // The same log (same root at the same size), signed by the new
    // server's own key.
    let b_head = fresh_head(&b_srv).await;
    assert_eq!(
        (b_head.tree_size, &b_head.root_hash),
        (a_head.tree_size, &a_head.root_hash)
    );
    assert_ne!(b_head.public_key, a_head.public_key);
    tapvault_api::receipts::verify_head(&b_head, None).unwrap();
    let after = answers(&b_srv, &chain).await;
    assert_eq!(before.len(), after.len());
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(x, y);
    }
    // Importing again into the now non-empty tenant needs --merge, and
    // merging changes nothing.
    let o = tapvault(
        &["import", file.to_str().unwrap()],
        &b_db.url,
        &dir.join("b"),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--merge"));
    let o = tapvault(
        &["import", "--merge", file.to_str().unwrap()],
        &b_db.url,
        &dir.join("b"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(answers(&b_srv, &chain).await, after);
    b_srv.shutdown().await;
    a_db.drop_db().await;
    b_db.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Crafted manifests and files: `import` applies `tenant add`'s name rules,
/// refuses times outside what is stored, and a failed import leaves no
/// tenant behind.
#[tokio::test]
async fn import_validates_everything_first_and_creates_nothing_on_failure() {
    use tapvault_store::export::{Export, ExportedBackup};
    use tapvault_store::Timestamp;
    let tdb = testdb::create().await;
    let dir = std::env::temp_dir().join(format!("tapvault-import-bad-{}", tdb.name));
    std::fs::create_dir_all(&dir).unwrap();
    let tenants = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
            .fetch_one(&tdb.db.pool)
            .await
            .unwrap();
        n
    };
    let before = tenants().await;
    let write = |name: &str, ex: &Export| {
        let p = dir.join(name);
        std::fs::write(&p, ex.encode()).unwrap();
        p
    };
    let backup = |at: Timestamp| ExportedBackup {
        kind: "opaque".into(),
        source: String::new(),
        raw: b"opaque blob".to_vec(),
        received_at: at,
    };
    let long = "a".repeat(100_000);
    for name in ["../../etc/passwd", "", long.as_str(), "a b", "tab\tname"] {
        let ex = Export {
            manifest: serde_json::json!({ "tenant": name }),
            backups: vec![backup(Timestamp::now())],
            ..Default::default()
        };
        let f = write("bad-name.tvx", &ex);
        let o = tapvault(&["import", f.to_str().unwrap()], &tdb.url, &dir);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name:?} was imported");
        assert!(err.contains("bad tenant name"), "{name:?}: {err}");
        assert_eq!(tenants().await, before, "{name:?} left a tenant");
    }

    // A time past the year 9999: the file's fault, said plainly.
    let ex = Export {
        manifest: serde_json::json!({ "tenant": "late" }),
        backups: vec![backup(Timestamp::from_micros(i64::MAX))],
        ..Default::default()
    };
    let f = write("bad-time.tvx", &ex);
    let o = tapvault(&["import", f.to_str().unwrap()], &tdb.url, &dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("not between the years 1 and 9999"), "{err}");
    assert!(
        !err.contains("out of range") && !err.contains("SQL"),
        "{err}"
    );
    assert_eq!(tenants().await, before);

    // The database refuses the write midway: no empty tenant is left.
    sqlx::query("ALTER TABLE wallet_backups ADD CONSTRAINT import_refused CHECK (false) NOT VALID")
        .execute(&tdb.db.pool)
        .await
        .unwrap();
    let ex = Export {
        manifest: serde_json::json!({ "tenant": "fresh" }),
        backups: vec![backup(Timestamp::now())],
        ..Default::default()
    };
    let f = write("refused.tvx", &ex);
    let o = tapvault(&["import", f.to_str().unwrap()], &tdb.url, &dir);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing of it was written"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(tenants().await, before, "a failed import left a tenant");
    sqlx::query("ALTER TABLE wallet_backups DROP CONSTRAINT import_refused")
        .execute(&tdb.db.pool)
        .await
        .unwrap();
    let o = tapvault(&["import", f.to_str().unwrap()], &tdb.url, &dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tenants().await, before + 1);
    tdb.drop_db().await;
    let _ = std::fs::remove_dir_all(&dir);
}
