//! The collector: what tapd never pushes, read from tapd's own API and
//! pushed to the server — the wallet backup (RAW TAPBAK), every TAP address,
//! and the proof file of every owned asset output (change included). Runs at
//! start, on every tapd send/receive event, and on a poll interval. Only
//! what changed is pushed: content hashes are kept in the state file.

use crate::proto::assetwalletrpc as awpb;
use crate::proto::taprpc as tpb;
use crate::state::{now, Pushed, RunInfo, StateStore};
use crate::tapd::{Assets, Wallet};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tapvault_server::client::BackupClient;
use tapvault_server::proto::tapvault_v1 as v1;
use tokio::sync::Notify;

pub struct Collector {
    pub assets: Assets,
    pub wallet: Wallet,
    pub server: BackupClient,
    pub state: Arc<StateStore>,
    pub source: String,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub backup_pushed: bool,
    pub addresses_pushed: usize,
    pub proofs_pushed: usize,
    /// Items still not on the server (failed this run).
    pub pending: u64,
}

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn err(what: &str, s: tonic::Status) -> String {
    use std::error::Error;
    let mut m = format!("{what}: {:?}: {}", s.code(), s.message());
    let mut src = s.source();
    while let Some(e) = src {
        m.push_str(&format!(": {e}"));
        src = e.source();
    }
    m
}

/// tapd's "txid:vout" (display order) as its OutPoint message.
fn outpoint_pb(s: &str) -> Option<tpb::OutPoint> {
    let op: bitcoin::OutPoint = s.parse().ok()?;
    Some(tpb::OutPoint {
        txid: bitcoin::hashes::Hash::to_byte_array(op.txid).to_vec(),
        output_index: op.vout,
    })
}

impl Collector {
    /// One collection pass. Failures of single items are recorded and
    /// counted as pending; the next run retries them.
    pub async fn run_once(&mut self) -> anyhow::Result<RunSummary> {
        let started = now();
        let mut sum = RunSummary::default();
        let mut first_err: Option<String> = None;
        let mut fail = |state: &StateStore, what: &str, e: String, sum: &mut RunSummary| {
            state.record_failure(what, &e);
            sum.pending += 1;
            if first_err.is_none() {
                first_err = Some(e);
            }
        };

        // 1. The wallet backup (tapd ≥ 0.8).
        match self
            .wallet
            .export_asset_wallet_backup(awpb::ExportAssetWalletBackupRequest {
                mode: awpb::BackupMode::Raw as i32,
            })
            .await
        {
            Ok(r) => {
                let blob = r.into_inner().backup;
                let h = hex_sha(&blob);
                let known = self.state.get().wallet_backup.map(|p| p.sha256) == Some(h.clone());
                if !known {
                    match self
                        .server
                        .push_wallet_backup(v1::PushWalletBackupRequest {
                            backup: blob,
                            opaque: false,
                            source: self.source.clone(),
                        })
                        .await
                    {
                        Ok(_) => {
                            self.state.update(|s| {
                                s.wallet_backup = Some(Pushed {
                                    sha256: h,
                                    pushed_at: now(),
                                });
                                s.wallet_backup_unsupported = false;
                            })?;
                            sum.backup_pushed = true;
                        }
                        Err(e) => fail(
                            &self.state,
                            "push wallet backup",
                            err("server", e),
                            &mut sum,
                        ),
                    }
                }
            }
            Err(e) if e.code() == tonic::Code::Unimplemented => {
                if !self.state.get().wallet_backup_unsupported {
                    tracing::warn!("tapd has no ExportAssetWalletBackup (tapd < 0.8): proofs and addresses only");
                    self.state.update(|s| s.wallet_backup_unsupported = true)?;
                }
            }
            Err(e) => fail(
                &self.state,
                "export wallet backup",
                err("tapd", e),
                &mut sum,
            ),
        }

        // 2. Addresses: every page, push the ones not pushed yet.
        let mut new_addrs = Vec::new();
        let known = self.state.get().addresses;
        let mut offset = 0;
        let mut addr_err = None;
        loop {
            match self
                .assets
                .query_addrs(tpb::QueryAddrRequest {
                    created_after: 0,
                    created_before: 0,
                    limit: 500,
                    offset,
                })
                .await
            {
                Ok(r) => {
                    let page = r.into_inner().addrs;
                    let n = page.len();
                    new_addrs.extend(
                        page.into_iter()
                            .map(|a| a.encoded)
                            .filter(|e| !known.contains_key(e)),
                    );
                    if n < 500 {
                        break;
                    }
                    offset += 500;
                }
                Err(e) => {
                    addr_err = Some(err("tapd", e));
                    break;
                }
            }
        }
        if let Some(e) = addr_err {
            fail(&self.state, "query addresses", e, &mut sum);
        }
        new_addrs.dedup();
        for chunk in new_addrs.chunks(1000) {
            match self
                .server
                .push_addresses(v1::PushAddressesRequest {
                    addresses: chunk.to_vec(),
                    network: String::new(),
                })
                .await
            {
                Ok(_) => {
                    let t = now();
                    self.state.update(|s| {
                        for a in chunk {
                            s.addresses.insert(a.clone(), t);
                        }
                    })?;
                    sum.addresses_pushed += chunk.len();
                }
                Err(e) => {
                    sum.pending += chunk.len() as u64 - 1;
                    fail(&self.state, "push addresses", err("server", e), &mut sum);
                }
            }
        }

        // 3. The proof file of every owned, unspent asset output.
        match self
            .assets
            .list_assets(tpb::ListAssetRequest {
                with_witness: false,
                include_spent: false,
                include_leased: true,
                include_unconfirmed_mints: false,
            })
            .await
        {
            Ok(r) => {
                for a in r.into_inner().assets {
                    let Some(anchor) = a.chain_anchor.as_ref() else {
                        continue;
                    };
                    let Some(genesis) = a.asset_genesis.as_ref() else {
                        continue;
                    };
                    let key = format!("{}/{}", anchor.anchor_outpoint, hex::encode(&a.script_key));
                    let Some(op) = outpoint_pb(&anchor.anchor_outpoint) else {
                        fail(
                            &self.state,
                            "list assets",
                            format!(
                                "tapd sent a bad anchor outpoint {:?}",
                                anchor.anchor_outpoint
                            ),
                            &mut sum,
                        );
                        continue;
                    };
                    let file = match self
                        .assets
                        .export_proof(tpb::ExportProofRequest {
                            asset_id: genesis.asset_id.clone(),
                            script_key: a.script_key.clone(),
                            outpoint: Some(op),
                        })
                        .await
                    {
                        Ok(r) => r.into_inner().raw_proof_file,
                        Err(e) => {
                            fail(
                                &self.state,
                                &format!("export proof {key}"),
                                err("tapd", e),
                                &mut sum,
                            );
                            continue;
                        }
                    };
                    let h = hex_sha(&file);
                    if self.state.get().proofs.get(&key).map(|p| &p.sha256) == Some(&h) {
                        continue;
                    }
                    match self
                        .server
                        .push_proof_file(v1::PushProofFileRequest { proof_file: file })
                        .await
                    {
                        Ok(_) => {
                            self.state.update(|s| {
                                s.proofs.insert(
                                    key,
                                    Pushed {
                                        sha256: h,
                                        pushed_at: now(),
                                    },
                                );
                            })?;
                            sum.proofs_pushed += 1;
                        }
                        Err(e) => fail(
                            &self.state,
                            &format!("push proof {key}"),
                            err("server", e),
                            &mut sum,
                        ),
                    }
                }
            }
            Err(e) => fail(&self.state, "list assets", err("tapd", e), &mut sum),
        }

        let ok = sum.pending == 0;
        self.state.update(|s| {
            s.last_run = Some(RunInfo {
                started_at: started,
                finished_at: now(),
                ok,
                pending: sum.pending,
                error: first_err.clone(),
            });
            if ok {
                s.last_ok_run_at = now();
            }
        })?;
        Ok(sum)
    }

    /// Runs now, then whenever `wake` fires or `interval` passes.
    pub async fn run_forever(mut self, interval: Duration, wake: Arc<Notify>) {
        loop {
            match self.run_once().await {
                Ok(s) if s != RunSummary::default() => tracing::info!(
                    "collected: backup {}, {} addresses, {} proof files pushed; {} pending",
                    if s.backup_pushed {
                        "pushed"
                    } else {
                        "unchanged"
                    },
                    s.addresses_pushed,
                    s.proofs_pushed,
                    s.pending
                ),
                Ok(_) => {}
                Err(e) => tracing::error!("collection failed: {e:#}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = wake.notified() => {}
            }
        }
    }
}

/// Subscribes to tapd's send and receive events and wakes the collector on
/// each; resubscribes after `retry` when a stream ends or fails.
pub fn watch_events(
    mut assets: Assets,
    wake: Arc<Notify>,
    retry: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut a2 = assets.clone();
    let w2 = wake.clone();
    let t1 = tokio::spawn(async move {
        loop {
            if let Ok(r) = assets
                .subscribe_receive_events(tpb::SubscribeReceiveEventsRequest::default())
                .await
            {
                let mut s = r.into_inner();
                while let Ok(Some(_)) = s.message().await {
                    wake.notify_one();
                }
            }
            tokio::time::sleep(retry).await;
        }
    });
    let t2 = tokio::spawn(async move {
        loop {
            if let Ok(r) = a2
                .subscribe_send_events(tpb::SubscribeSendEventsRequest::default())
                .await
            {
                let mut s = r.into_inner();
                while let Ok(Some(_)) = s.message().await {
                    w2.notify_one();
                }
            }
            tokio::time::sleep(retry).await;
        }
    });
    vec![t1, t2]
}
