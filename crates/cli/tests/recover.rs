//! `tapvault recover` end to end: a real server (TLS, tokens, PostgreSQL)
//! holding what a node pushed, the binary run against it with the pinned
//! certificate, and its outputs checked with the codec.

#[path = "../../codec/tests/common/blobs.rs"]
mod blobs;

use std::path::{Path, PathBuf};
use std::process::Command;
use tapvault_codec::backup::{WalletBackup, VERSION_OPTIMISTIC, VERSION_RAW};
use tapvault_codec::{File, Proof};
use tapvault_server::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;
use tapvault_server::{ServeConfig, VerifyLevel};

fn vectors() -> PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

fn file_chain() -> Vec<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            vectors().join("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json"),
        )
        .unwrap(),
    )
    .unwrap();
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

fn file_of(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut f = File::new();
    for p in chain {
        f.append_raw(p.clone());
    }
    f.encode()
}

fn recover(
    addr: &str,
    cert: &Path,
    token: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["recover", "--server", addr, "--quiet", "--out"])
        .arg(out)
        .arg("--server-cert")
        .arg(cert)
        .args(extra)
        .env("TAPVAULT_TOKEN", token)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

struct Fixture {
    running: tapvault_server::Running,
    tdb: tapvault_store::db::testdb::TestDb,
    dir: PathBuf,
}

impl Fixture {
    async fn start(tenants: &[&str]) -> Fixture {
        let tdb = tapvault_store::db::testdb::create().await;
        for t in tenants {
            tapvault_store::db::ensure_tenant(&tdb.db.pool, t)
                .await
                .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("tapvault-recover-{}", tdb.name));
        let mut cfg = ServeConfig::new(dir.clone());
        cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
        cfg.http_listen = "127.0.0.1:0".parse().unwrap();
        cfg.database_url = Some(tdb.url.clone());
        cfg.verify = VerifyLevel::Full;
        let running = tapvault_server::start(cfg).await.unwrap();
        Fixture { running, tdb, dir }
    }
    async fn token(&self, tenant: &str, scopes: &str) -> String {
        let keys = tapvault_server::auth::Keys::ed25519_in(&self.dir).unwrap();
        let scopes = tapvault_server::auth::Scope::parse_list(scopes).unwrap();
        tapvault_server::auth::issue(&self.running.db, &keys, tenant, &scopes, 3600)
            .await
            .unwrap()
            .0
    }
    fn addr(&self) -> String {
        format!("localhost:{}", self.running.grpc_addr.port())
    }
    fn cert(&self) -> PathBuf {
        self.dir.join("tls.cert")
    }
    fn clients(&self, token: &str) -> (client::BackupClient, client::UniverseClient) {
        let ch =
            client::channel(&self.addr(), &Trust::from_cert_file(&self.cert()).unwrap()).unwrap();
        client::clients(ch, Some(token)).unwrap()
    }
    async fn stop(self) {
        self.running.shutdown().await;
        self.tdb.drop_db().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn courier(raw: &[u8]) -> tapvault_server::proto::universerpc::AssetProof {
    use tapvault_server::proto::universerpc as pb;
    let p = Proof::decode(raw).unwrap();
    let op = p.outpoint();
    pb::AssetProof {
        key: Some(pb::UniverseKey {
            id: Some(pb::Id {
                id: Some(pb::id::Id::AssetId(p.asset.id().to_vec())),
                proof_type: 0,
            }),
            leaf_key: Some(pb::AssetKey {
                outpoint: Some(pb::asset_key::Outpoint::Op(pb::Outpoint {
                    hash_str: op.txid.to_string(),
                    index: op.vout as i32,
                })),
                script_key: Some(pb::asset_key::ScriptKey::ScriptKeyBytes(
                    p.asset.script_key.0.to_vec(),
                )),
            }),
        }),
        asset_leaf: Some(pb::AssetLeaf {
            asset: None,
            proof: raw.to_vec(),
        }),
    }
}

/// An old RAW backup (the wallet held output 1 of the chain), then a newer
/// OPTIMISTIC one (output 2, no proofs) whose last proof only the courier
/// delivered: recovery must carry the server's full chain for output 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_rebuilds_an_importable_backup_with_the_newest_chains() {
    let f = Fixture::start(&["alice", "bob"]).await;
    let tok = f.token("alice", "push read").await;
    let (mut b, mut u) = f.clients(&tok);
    let chain = file_chain();
    let mut old = blobs::tapbak_from_chain(&chain, VERSION_RAW);
    old.assets = vec![old.assets[1].clone()];
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: old.encode(),
        opaque: false,
        source: "node".into(),
    })
    .await
    .unwrap();
    u.insert_proof(courier(&chain[2])).await.unwrap();
    let mut new = blobs::tapbak_from_chain(&chain, VERSION_OPTIMISTIC);
    new.assets = vec![new.assets[2].clone()];
    b.push_wallet_backup(v1::PushWalletBackupRequest {
        backup: new.encode(),
        opaque: false,
        source: "node".into(),
    })
    .await
    .unwrap();
    let addrs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            vectors().join("taproot-assets/address/testdata/address_tlv_encoding_generated.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let regtest: Vec<String> = addrs["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["expected"].as_str())
        .filter(|a| a.starts_with("taprt"))
        .map(String::from)
        .collect();
    b.push_addresses(v1::PushAddressesRequest {
        addresses: regtest.clone(),
        network: String::new(),
    })
    .await
    .unwrap();

    let out = f.dir.join("recovery");
    let o = recover(&f.addr(), &f.cert(), &tok, &out, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("recovery complete"), "{stdout}");

    let wb = WalletBackup::decode(&std::fs::read(out.join("wallet.tapbak")).unwrap()).unwrap();
    assert_eq!(wb.version, VERSION_RAW);
    assert_eq!(wb.assets.len(), 1);
    // Output 2: the newest chain, from the server, with the new blob's keys.
    let e = wb
        .assets
        .iter()
        .find(|e| e.anchor_outpoint == Proof::decode(&chain[2]).unwrap().outpoint())
        .unwrap();
    assert_eq!(e.proof_file.as_deref(), Some(file_of(&chain).as_slice()));
    assert_eq!(e.script_key, new.assets[0].script_key);
    assert_eq!(e.anchor_internal_key, new.assets[0].anchor_internal_key);
    let tip = Proof::decode(&chain[2]).unwrap();
    assert_eq!(
        e.anchor_pk_script.as_deref(),
        Some(
            tip.anchor_tx.tx.output[tip.inclusion_proof.output_index as usize]
                .script_pubkey
                .as_bytes()
        )
    );
    let addrs_out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("addresses.json")).unwrap()).unwrap();
    assert_eq!(addrs_out.as_array().unwrap().len(), regtest.len());
    assert_eq!(addrs_out[0]["address"], regtest[0].as_str());
    // One .assetproof per output: the whole chain.
    let files: Vec<Vec<u8>> = std::fs::read_dir(out.join("proofs"))
        .unwrap()
        .map(|d| std::fs::read(d.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files, vec![file_of(&chain)]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["assets"].as_array().unwrap().len(), 1);
    assert_eq!(report["assets"][0]["source"], "server");
    assert_eq!(report["assets"][0]["num_proofs"], 3);
    assert!(report["universes_checked"].as_u64().unwrap() >= 1);
    assert!(report["mismatches"].as_array().unwrap().is_empty());
    // Everything written is in the receipt log under a signed head: the
    // 3 proofs, the chosen backup blob, the addresses.
    assert!(
        report["log_problems"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(report["log_head"]["tree_size"].as_u64().unwrap() >= 4);
    assert_eq!(
        report["log_items_verified"].as_u64().unwrap(),
        3 + 1 + regtest.len() as u64,
        "{report}"
    );

    // From the old backup: output 1 was spent to output 2, which a later
    // backup holds keys for, so recovery follows it there.
    let out_old = f.dir.join("recovery-old");
    let ids = b
        .list_wallet_backups(v1::ListWalletBackupsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .backups;
    let old_id = ids.last().unwrap().id.to_string();
    let o = recover(
        &f.addr(),
        &f.cert(),
        &tok,
        &out_old,
        &["--backup-id", &old_id],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    assert!(stdout.contains("newer output"), "{stdout}");
    let wb = WalletBackup::decode(&std::fs::read(out_old.join("wallet.tapbak")).unwrap()).unwrap();
    assert_eq!(
        wb.assets[0].proof_file.as_deref(),
        Some(file_of(&chain).as_slice())
    );

    // Writing over an earlier recovery needs --force, and a refusal
    // writes nothing: a file removed since stays removed.
    std::fs::remove_file(out.join("addresses.json")).unwrap();
    let o = recover(&f.addr(), &f.cert(), &tok, &out, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--force") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(
        !out.join("addresses.json").exists(),
        "written before the refusal"
    );
    // With --force, an output file linked elsewhere is replaced, never
    // written through.
    let victim = out
        .join("..")
        .join(format!("victim-{}", std::process::id()));
    std::fs::write(&victim, b"not yours").unwrap();
    std::fs::remove_file(out.join("wallet.tapbak")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("wallet.tapbak")).unwrap();
    let o = recover(&f.addr(), &f.cert(), &tok, &out, &["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"not yours");
    assert!(!std::fs::symlink_metadata(out.join("wallet.tapbak"))
        .unwrap()
        .file_type()
        .is_symlink());
    WalletBackup::decode(&std::fs::read(out.join("wallet.tapbak")).unwrap()).unwrap();
    let _ = std::fs::remove_file(&victim);

    // The root check lists leaves by node hash, not with their proofs: a
    // listed hash that is not the hash of the proof served is caught (the
    // written proof is not what the root commits to, and the recomputed
    // root is not the server's).
    let tip_key = tapvault_codec::universe::universe_leaf_info(&tip).leaf_key;
    sqlx::query(
        "UPDATE universe_leaves SET leaf_node_hash = sha256(leaf_node_hash) WHERE leaf_key = $1",
    )
    .bind(&tip_key[..])
    .execute(&f.running.db.pool)
    .await
    .unwrap();
    let o = recover(&f.addr(), &f.cert(), &tok, &f.dir.join("tampered"), &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir.join("tampered").join("report.json")).unwrap())
            .unwrap();
    let mismatches = report["mismatches"].to_string();
    assert!(
        mismatches.contains("is not the leaf its universe root commits to"),
        "{mismatches}"
    );
    assert!(mismatches.contains("server root"), "{mismatches}");
    sqlx::query("UPDATE universe_leaves SET leaf_node_hash = sha256(p.raw || int8send(leaf_sum)) FROM proofs p WHERE p.hash = proof_hash AND leaf_key = $1")
        .bind(&tip_key[..])
        .execute(&f.running.db.pool)
        .await
        .unwrap();

    // Bob's tenant holds only a proofless backup and the tip proof: the gap
    // is reported and the exit status says so.
    let bob = f.token("bob", "push read").await;
    let (_, mut bu) = f.clients(&bob);
    let mut only_tip = blobs::tapbak_from_chain(&chain, VERSION_OPTIMISTIC);
    only_tip.assets = vec![only_tip.assets[2].clone()];
    // Pushed with the CLI, as an operator would push `tapcli assets backup
    // export` output.
    let blob_file = f.dir.join("bob.tapbak");
    std::fs::write(&blob_file, only_tip.encode()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["push", "wallet-backup"])
        .arg(&blob_file)
        .args(["--server", &f.addr(), "--server-cert"])
        .arg(f.cert())
        .env("TAPVAULT_TOKEN", &bob)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 assets"));
    bu.insert_proof(courier(&chain[2])).await.unwrap();
    let o = recover(&f.addr(), &f.cert(), &bob, &f.dir.join("bob"), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("GAP: output"), "{stdout}");
    assert!(stdout.contains("recovery INCOMPLETE"), "{stdout}");
    // The blob as pushed is handed back too, for tapd to rebuild from.
    assert_eq!(
        std::fs::read(f.dir.join("bob").join("original.tapbak")).unwrap(),
        only_tip.encode()
    );
    assert!(
        stdout.contains("importing original.tapbak lets tapd rebuild it"),
        "{stdout}"
    );

    // A certificate that is not the server's is refused.
    let other = f.dir.join("other.cert");
    let (pem, _) = tapvault_server::tls::TlsFiles::in_dir(&f.dir.join("other"))
        .load_or_create(&[])
        .unwrap();
    std::fs::write(&other, pem).unwrap();
    let o = recover(&f.addr(), &other, &tok, &f.dir.join("x"), &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fingerprint"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    f.stop().await;
}

/// A tapd v0.7 node has no wallet backup: the agent's inventory (outputs
/// with key locators from QueryScriptKey / QueryInternalKey) and the proof
/// chains are enough for a TAPBAK tapd imports, and the report says where
/// each output came from. Also: an output a v0.8 backup left out (leased).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_without_a_wallet_backup_uses_the_agents_inventory() {
    let fx = Fixture::start(&["alice"]).await;
    let tok = fx.token("alice", "push,read").await;
    let (mut b, _) = fx.clients(&tok);
    let chain = file_chain();
    b.push_proof_file(v1::PushProofFileRequest {
        proof_file: file_of(&chain),
    })
    .await
    .unwrap();
    let tip = Proof::decode(&chain[2]).unwrap();
    let op = tip.outpoint();
    let raw_sk = bitcoin::secp256k1::PublicKey::from_slice(&tip.asset.script_key.0)
        .unwrap()
        .serialize();
    b.push_inventory(v1::PushInventoryRequest {
        outputs: vec![v1::NodeOutput {
            anchor: Some(v1::OutPoint {
                txid: op.txid.to_string(),
                vout: op.vout,
            }),
            script_key: tip.asset.script_key.0.to_vec(),
            asset_id: tip.asset.id().to_vec(),
            amount: tip.asset.amount,
            script_key_type: 1,
            leased: true,
            anchor_height: tip.block_height,
            script_key_internal: Some(v1::KeyLocator {
                raw_key: raw_sk.to_vec(),
                family: 212,
                index: 7,
            }),
            script_key_tweak: vec![],
            anchor_internal_key: Some(v1::KeyLocator {
                raw_key: tip.inclusion_proof.internal_key.0.to_vec(),
                family: 212,
                index: 8,
            }),
        }],
        keys: vec![],
        run_id: "run-1".into(),
        complete: true,
        source: "test".into(),
    })
    .await
    .unwrap();
    let out = fx.dir.join("out");
    let o = recover(&fx.addr(), &fx.cert(), &tok, &out, &["--no-header"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["collector_only"], 1, "{rep}");
    assert!(rep["inventory_reported_at"].as_i64().unwrap() > 0);
    let wb = WalletBackup::decode(&std::fs::read(out.join("wallet.tapbak")).unwrap()).unwrap();
    assert_eq!(wb.assets.len(), 1);
    let e = &wb.assets[0];
    assert_eq!(e.anchor_outpoint, op);
    let sk = e.script_key.as_ref().expect("script key locator");
    assert_eq!((sk.family, sk.index), (212, 7));
    let ik = e
        .anchor_internal_key
        .as_ref()
        .expect("internal key locator");
    assert_eq!((ik.family, ik.index), (212, 8));
    assert_eq!(
        File::decode(e.proof_file.as_ref().unwrap()).unwrap().len(),
        3,
        "the whole chain"
    );
    fx.stop().await;
}
