//! A real server on a fresh database, and the regtest proof vectors.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use tapvault_server::proto::universerpc as pb;
use tapvault_server::proto::universerpc::universe_client::UniverseClient;
use tapvault_server::{Running, ServeConfig, VerifyLevel};
use tapvault_store::db::testdb::{self, TestDb};
use tonic::transport::Channel;

pub struct TestServer {
    pub running: Option<Running>,
    pub tdb: Option<TestDb>,
    pub dir: PathBuf,
}

impl TestServer {
    pub async fn start(verify: VerifyLevel, tls: bool) -> TestServer {
        Self::start_with(&[], |c| {
            c.tls = tls;
            c.verify = verify;
            c.auth = false;
        })
        .await
    }

    /// A server that requires tokens (Ed25519 keys in its data dir).
    pub async fn start_auth(
        trusted: Vec<tapvault_server::auth::TrustedNetwork>,
        tenants: &[&str],
    ) -> TestServer {
        Self::start_auth_tls(trusted, tenants, false).await
    }

    pub async fn start_auth_tls(
        trusted: Vec<tapvault_server::auth::TrustedNetwork>,
        tenants: &[&str],
        tls: bool,
    ) -> TestServer {
        Self::start_auth_full(trusted, tenants, tls, None).await
    }

    /// With an operator tenant (whose admins manage every tenant).
    pub async fn start_auth_full(
        trusted: Vec<tapvault_server::auth::TrustedNetwork>,
        tenants: &[&str],
        tls: bool,
        operator: Option<&str>,
    ) -> TestServer {
        Self::start_with(tenants, |c| {
            c.tls = tls;
            c.trusted_networks = trusted;
            c.operator_tenant = operator.map(String::from);
        })
        .await
    }

    /// A plaintext server (auth on) on a fresh database with these tenants,
    /// its configuration adjusted by `f`.
    pub async fn start_with(tenants: &[&str], f: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let tdb = testdb::create().await;
        for t in tenants {
            tapvault_store::db::ensure_tenant(&tdb.db.pool, t)
                .await
                .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("tapvault-test-{}", tdb.name));
        let mut cfg = ServeConfig::new(dir.clone());
        cfg.grpc_listen = "127.0.0.1:0".parse().unwrap();
        cfg.http_listen = "127.0.0.1:0".parse().unwrap();
        cfg.database_url = Some(tdb.url.clone());
        cfg.tls = false;
        f(&mut cfg);
        let running = tapvault_server::start(cfg).await.expect("server starts");
        TestServer {
            running: Some(running),
            tdb: Some(tdb),
            dir,
        }
    }

    pub async fn token(&self, tenant: &str, scopes: &str, ttl: u64) -> String {
        let keys = tapvault_server::auth::Keys::ed25519_in(&self.dir).unwrap();
        let scopes = tapvault_server::auth::Scope::parse_list(scopes).unwrap();
        tapvault_server::auth::issue(&self.running().db, &keys, tenant, &scopes, ttl)
            .await
            .unwrap()
            .0
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    pub async fn client(&self) -> UniverseClient<Channel> {
        let ch = Channel::from_shared(format!("http://{}", self.running().grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        UniverseClient::new(ch)
            .max_decoding_message_size(200 << 20)
            .max_encoding_message_size(300 << 20)
    }

    /// Backup and universe clients, with a token when given.
    pub fn clients(
        &self,
        token: Option<&str>,
    ) -> (
        tapvault_server::client::BackupClient,
        tapvault_server::client::UniverseClient,
    ) {
        let ch = tapvault_server::client::channel(
            &self.running().grpc_addr.to_string(),
            &tapvault_server::client::Trust::Plaintext,
        )
        .unwrap();
        tapvault_server::client::clients(ch, token).unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.running().db.pool)
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some(t) = self.tdb.take() {
            t.drop_db().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn vectors() -> PathBuf {
    std::env::var_os("TAPVAULT_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        })
}

pub fn load(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors().join(rel)).unwrap()).unwrap()
}

/// (comment, raw proof bytes)
pub fn regtest() -> Vec<(String, Vec<u8>)> {
    load("taproot-assets/proof/testdata/proof_tlv_encoding_regtest.json")["valid_test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["comment"].as_str().unwrap().to_string(),
                hex::decode(c["expected"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The regtest "proof file index 0/1/2" proofs: one chain, genesis first.
pub fn file_chain() -> Vec<Vec<u8>> {
    (0..3)
        .map(|i| find(&format!("valid regtest proof file index {i}")))
        .collect()
}

pub fn find(name: &str) -> Vec<u8> {
    regtest().into_iter().find(|(c, _)| c == name).unwrap().1
}

/// The request a courier sends: proof type unspecified, 33-byte keys, `op`.
pub fn courier_request(raw: &[u8]) -> pb::AssetProof {
    let p = tapvault_codec::Proof::decode(raw).unwrap();
    let id = match p.asset.group_key {
        Some(g) => pb::id::Id::GroupKey(g.0.to_vec()),
        None => pb::id::Id::AssetId(p.asset.id().to_vec()),
    };
    let op = p.outpoint();
    pb::AssetProof {
        key: Some(pb::UniverseKey {
            id: Some(pb::Id {
                id: Some(id),
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

/// The request the federation push sends: ISSUANCE, x-only keys, `op_str`.
pub fn federation_request(raw: &[u8]) -> pb::AssetProof {
    let p = tapvault_codec::Proof::decode(raw).unwrap();
    let id = match p.asset.group_key {
        Some(g) => pb::id::Id::GroupKey(g.x_only().to_vec()),
        None => pb::id::Id::AssetId(p.asset.id().to_vec()),
    };
    pb::AssetProof {
        key: Some(pb::UniverseKey {
            id: Some(pb::Id {
                id: Some(id),
                proof_type: if p.asset.is_genesis() { 1 } else { 2 },
            }),
            leaf_key: Some(pb::AssetKey {
                outpoint: Some(pb::asset_key::Outpoint::OpStr(p.outpoint().to_string())),
                script_key: Some(pb::asset_key::ScriptKey::ScriptKeyBytes(
                    p.asset.script_key.x_only().to_vec(),
                )),
            }),
        }),
        asset_leaf: Some(pb::AssetLeaf {
            asset: None,
            proof: raw.to_vec(),
        }),
    }
}

pub fn query_key(req: &pb::AssetProof) -> pb::UniverseKey {
    req.key.clone().unwrap()
}

/// The secret of the `i`-th script key: `i + 1`.
fn nth_secret(i: usize) -> bitcoin::secp256k1::SecretKey {
    let mut sk = [0u8; 32];
    sk[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    bitcoin::secp256k1::SecretKey::from_slice(&sk).unwrap()
}

/// The `i`-th script key of the synthetic and forged proofs: the public
/// key of secret `i + 1`.
fn nth_key(i: usize) -> tapvault_codec::primitives::PubKey {
    let key = nth_secret(i).public_key(tapvault_verify::taproot::secp());
    tapvault_codec::primitives::PubKey(key.serialize())
}

/// `n` distinct proofs of one asset (the regtest genesis proof with new
/// script keys: decode-only servers accept them), and their requests.
pub fn synthetic(n: usize, tag: &str) -> Vec<(Vec<u8>, pb::AssetProof)> {
    let base = tapvault_codec::Proof::decode(&regtest()[0].1).unwrap();
    (0..n)
        .map(|i| {
            let mut p = base.clone();
            if !tag.is_empty() {
                p.asset.genesis.tag = tag.as_bytes().to_vec();
            }
            p.asset.script_key = nth_key(i);
            let raw = p.encode();
            let req = courier_request(&raw);
            (raw, req)
        })
        .collect()
}

/// `n` distinct proofs that pass `--verify full`: the regtest genesis proof
/// with new script keys (and tag, unless empty), re-anchored by the forge
/// (new output key, tx, merkle root and header proof of work).
pub fn forged(n: usize, tag: &str) -> Vec<(Vec<u8>, pb::AssetProof)> {
    use tapvault_verify::forge::{reanchor_genesis, Change};
    let base = tapvault_codec::Proof::decode(&find("valid regtest genesis proof with meta reveal"))
        .unwrap();
    (0..n)
        .map(|i| {
            let change = Change {
                script_key: Some(nth_key(i)),
                tag: (!tag.is_empty()).then(|| tag.as_bytes().to_vec()),
            };
            let raw = reanchor_genesis(&base, &change).unwrap().encode();
            let req = courier_request(&raw);
            (raw, req)
        })
        .collect()
}

/// A proof file: a forged genesis of asset `tag` owned by key `first`, then
/// `n` transfers of the whole asset, key `first + i` to `first + i + 1`,
/// each signed and anchored so that `--verify full-vm` accepts the file.
pub fn forged_chain(n: usize, tag: &str, first: usize) -> tapvault_codec::File {
    use tapvault_verify::forge::{reanchor_genesis, transfer, Change};
    let base = tapvault_codec::Proof::decode(&find("valid regtest genesis proof with meta reveal"))
        .unwrap();
    let change = Change {
        script_key: Some(nth_key(first)),
        tag: Some(tag.as_bytes().to_vec()),
    };
    let mut p = reanchor_genesis(&base, &change).unwrap();
    let mut f = tapvault_codec::File::new();
    f.append_raw(p.encode());
    for i in first..first + n {
        p = transfer(&p, &nth_secret(i), nth_key(i + 1)).unwrap();
        f.append_raw(p.encode());
    }
    f
}

/// The same leaf with different bytes: an unknown odd record appended.
pub fn variant(raw: &[u8], n: u8) -> Vec<u8> {
    let mut p = tapvault_codec::Proof::decode(raw).unwrap();
    p.unknown.insert(1001, vec![n]);
    p.encode()
}
