//! The collector: what tapd never pushes, read from tapd's own API and
//! pushed to the server — the wallet backup (RAW TAPBAK), every TAP address,
//! and the proof file of every owned asset output (change included). Runs at
//! start, on every tapd send/receive event, and on a poll interval. Only
//! what changed is pushed: content hashes are kept in the state file.

use crate::proto::assetwalletrpc as awpb;
use crate::proto::taprpc as tpb;
use crate::state::{now, InventoryInfo, KeyState, Pushed, RunInfo, StateStore};
use crate::tapd::{Assets, Wallet};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tapvault_api::client::BackupClient;
use tapvault_api::proto::tapvault_v1 as v1;
use tokio::sync::Notify;

pub struct Collector {
    pub assets: Assets,
    pub wallet: Wallet,
    pub server: BackupClient,
    pub state: Arc<StateStore>,
    pub source: String,
    /// Audits the server's receipt log after every run.
    pub auditor: Option<crate::audit::Auditor>,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub backup_pushed: bool,
    pub addresses_pushed: usize,
    pub proofs_pushed: usize,
    /// Outputs in the inventory pushed this run.
    pub outputs_reported: usize,
    /// Key locators pushed this run.
    pub keys_pushed: usize,
    /// Items still not on the server (failed this run).
    pub pending: u64,
    /// What the receipt log audit found wrong.
    pub audit_problems: Vec<String>,
}

/// ListAssets page size (tapd's maximum is 16,384; pages this size keep
/// each answer well under the message limit).
const ASSET_PAGE: i32 = 1000;
/// Outputs collected at once (each is a few round trips to tapd and the
/// server).
const OUTPUT_CONCURRENCY: usize = 8;
/// Outputs (and keys) per PushInventory call.
const INVENTORY_CHUNK: usize = 4096;

/// tapd's ScriptKeyType names.
pub fn script_key_type_name(t: i32) -> &'static str {
    match t {
        1 => "bip86",
        2 => "script-path",
        3 => "burn",
        4 => "tombstone",
        5 => "channel",
        6 => "unique-pedersen",
        _ => "unknown",
    }
}

fn key_info(k: &KeyState) -> v1::KeyInfo {
    v1::KeyInfo {
        key: hex::decode(&k.key).unwrap_or_default(),
        kind: k.kind.clone(),
        locator: Some(v1::KeyLocator {
            raw_key: hex::decode(&k.raw_key).unwrap_or_default(),
            family: k.family,
            index: k.index,
        }),
        tweak: hex::decode(&k.tweak).unwrap_or_default(),
        script_key_type: k.script_key_type,
    }
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
                        Ok(r) => {
                            let receipts = r.into_inner().receipts;
                            self.state.update(|s| {
                                s.log.add_receipts(&receipts);
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
        let mut new_addr_keys: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
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
                    for a in page {
                        if !known.contains_key(&a.encoded) {
                            new_addr_keys.push((a.script_key.clone(), a.internal_key.clone()));
                            new_addrs.push(a.encoded);
                        }
                    }
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
                Ok(r) => {
                    let t = now();
                    let receipts = r.into_inner().receipts;
                    self.state.update(|s| {
                        s.log.add_receipts(&receipts);
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

        // 3. Every owned, unspent asset output of every script key type
        //    (tapd lists only BIP-86 ones unless asked), page by page: its
        //    proof file, its key locators, and the inventory. Outputs are
        //    handled a few at a time: each is a handful of round trips.
        let (assets, unconfirmed_transfers, assets_listed) = match self.list_all_assets().await {
            Ok((a, u)) => (a, u, true),
            Err(e) => {
                fail(&self.state, "list assets", e, &mut sum);
                (Vec::new(), 0, false)
            }
        };
        let mut info = InventoryInfo {
            at: now(),
            unconfirmed_transfers,
            ..Default::default()
        };
        let results: Vec<OutputResult> = {
            use futures_util::StreamExt;
            let (tapd, wallet, server, state) = (
                self.assets.clone(),
                self.wallet.clone(),
                self.server.clone(),
                self.state.clone(),
            );
            futures_util::stream::iter(assets.into_iter().map(|a| {
                collect_output(
                    tapd.clone(),
                    wallet.clone(),
                    server.clone(),
                    state.clone(),
                    a,
                )
            }))
            .buffer_unordered(OUTPUT_CONCURRENCY)
            .collect()
            .await
        };
        let mut inventory = Vec::with_capacity(results.len());
        for r in results {
            for (what, e) in r.failures {
                fail(&self.state, &what, e, &mut sum);
            }
            sum.proofs_pushed += r.pushed as usize;
            let Some(o) = r.output else { continue };
            info.outputs += 1;
            *info
                .by_type
                .entry(script_key_type_name(o.script_key_type).into())
                .or_default() += 1;
            info.leased += o.leased as u64;
            if o.script_key_internal.is_none() || o.anchor_internal_key.is_none() {
                info.without_locators += 1;
            }
            inventory.push(o);
        }
        self.state.flush()?;

        // 4. Address keys' locators, then the inventory (outputs and every
        //    key not pushed yet), in chunks of one run.
        let addr_keys: Vec<(Vec<u8>, Vec<u8>)> = new_addr_keys;
        for (sk, ik) in &addr_keys {
            self.locator("script", sk, &mut sum).await;
            self.locator("internal", ik, &mut sum).await;
        }
        if assets_listed {
            match self.push_inventory(inventory).await {
                Ok(()) => {
                    sum.outputs_reported = info.outputs as usize;
                    self.state.update(|s| s.inventory = Some(info))?;
                }
                Err(e) => fail(&self.state, "push inventory", e, &mut sum),
            }
        }

        if let Some(a) = self.auditor.as_mut() {
            sum.audit_problems = a.run().await?;
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

    /// Every owned, unspent output (leased ones too) of every script key
    /// type. tapd v0.8 pages ListAssets (0 = 512, at most 16,384, newest
    /// first by default): ask in ascending creation order so outputs added
    /// meanwhile land on later pages, never shifting earlier ones. tapd v0.7
    /// ignores the paging fields and answers everything at once, which a
    /// page longer than asked for gives away.
    async fn list_all_assets(&mut self) -> Result<(Vec<tpb::Asset>, u64), String> {
        let mut out: Vec<tpb::Asset> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut unconfirmed = 0u64;
        let mut offset = 0i32;
        loop {
            let r = self
                .assets
                .list_assets(tpb::ListAssetRequest {
                    with_witness: false,
                    include_spent: false,
                    include_leased: true,
                    include_unconfirmed_mints: false,
                    script_key_type: Some(tpb::ScriptKeyTypeQuery {
                        r#type: Some(tpb::script_key_type_query::Type::AllTypes(true)),
                    }),
                    offset,
                    limit: ASSET_PAGE,
                    direction: tpb::SortDirection::Asc as i32,
                })
                .await
                .map_err(|e| err("tapd", e))?
                .into_inner();
            unconfirmed = unconfirmed.max(r.unconfirmed_transfers);
            let n = r.assets.len();
            for a in r.assets {
                let k = (
                    a.chain_anchor
                        .as_ref()
                        .map(|c| c.anchor_outpoint.clone())
                        .unwrap_or_default(),
                    a.script_key.clone(),
                );
                if seen.insert(k) {
                    out.push(a);
                }
            }
            // Short: the last page. Long: a v0.7 tapd ignored the paging.
            if n != ASSET_PAGE as usize {
                break;
            }
            offset += ASSET_PAGE;
        }
        Ok((out, unconfirmed))
    }

    /// Pushes the inventory of this run, and every key not pushed yet, in
    /// chunks; the last chunk completes the run.
    async fn push_inventory(&mut self, outputs: Vec<v1::NodeOutput>) -> Result<(), String> {
        let run_id = hex::encode(rand::random::<[u8; 12]>());
        let keys: Vec<(String, KeyState)> = self
            .state
            .get()
            .keys
            .into_iter()
            .filter(|(_, k)| !k.pushed)
            .collect();
        let chunks = outputs
            .len()
            .max(keys.len())
            .div_ceil(INVENTORY_CHUNK)
            .max(1);
        let mut outs = outputs.into_iter();
        let mut ks = keys.into_iter();
        for i in 0..chunks {
            let o: Vec<v1::NodeOutput> = outs.by_ref().take(INVENTORY_CHUNK).collect();
            let k: Vec<(String, KeyState)> = ks.by_ref().take(INVENTORY_CHUNK).collect();
            self.server
                .push_inventory(v1::PushInventoryRequest {
                    outputs: o,
                    keys: k.iter().map(|(_, k)| key_info(k)).collect(),
                    run_id: run_id.clone(),
                    complete: i + 1 == chunks,
                    source: self.source.clone(),
                })
                .await
                .map_err(|e| err("server", e))?;
            self.state.update_volatile(|s| {
                for (id, _) in &k {
                    if let Some(x) = s.keys.get_mut(id) {
                        x.pushed = true;
                    }
                }
            });
        }
        Ok(())
    }

    /// A key's locator from tapd's wallet (cached in the state file): a
    /// script key through QueryScriptKey, an internal key through
    /// QueryInternalKey. Both exist on every tapd version, so locators are
    /// known even where tapd has no wallet backup (v0.7). `None` when tapd
    /// does not know the key (an output it does not own the keys of).
    async fn locator(
        &mut self,
        kind: &str,
        key: &[u8],
        sum: &mut RunSummary,
    ) -> Option<v1::KeyInfo> {
        match locator(&mut self.wallet, &self.state, kind, key).await {
            Ok(k) => k,
            Err((what, e)) => {
                self.state.record_failure(&what, &e);
                sum.pending += 1;
                None
            }
        }
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

/// [`Collector::locator`]: `Err((what, error))` when tapd failed otherwise
/// than "not found".
async fn locator(
    wallet: &mut Wallet,
    state: &StateStore,
    kind: &str,
    key: &[u8],
) -> Result<Option<v1::KeyInfo>, (String, String)> {
    {
        if key.is_empty() {
            return Ok(None);
        }
        let id = format!("{kind}/{}", hex::encode(key));
        if let Some(k) = state.get().keys.get(&id) {
            return Ok(Some(key_info(k)));
        }
        let got = if kind == "script" {
            wallet
                .query_script_key(awpb::QueryScriptKeyRequest {
                    tweaked_script_key: key.to_vec(),
                })
                .await
                .map(|r| {
                    r.into_inner().script_key.and_then(|sk| {
                        let d = sk.key_desc?;
                        let loc = d.key_loc.unwrap_or_default();
                        Some(KeyState {
                            kind: kind.into(),
                            key: hex::encode(key),
                            raw_key: hex::encode(d.raw_key_bytes),
                            family: loc.key_family,
                            index: loc.key_index,
                            tweak: hex::encode(sk.tap_tweak),
                            script_key_type: sk.r#type,
                            pushed: false,
                        })
                    })
                })
        } else {
            wallet
                .query_internal_key(awpb::QueryInternalKeyRequest {
                    internal_key: key.to_vec(),
                })
                .await
                .map(|r| {
                    r.into_inner().internal_key.map(|d| {
                        let loc = d.key_loc.unwrap_or_default();
                        KeyState {
                            kind: kind.into(),
                            key: hex::encode(key),
                            raw_key: hex::encode(d.raw_key_bytes),
                            family: loc.key_family,
                            index: loc.key_index,
                            tweak: String::new(),
                            script_key_type: 0,
                            pushed: false,
                        }
                    })
                })
        };
        match got {
            Ok(Some(k)) => {
                let info = key_info(&k);
                state.update_volatile(|s| {
                    s.keys.insert(id, k);
                });
                Ok(Some(info))
            }
            Ok(None) => Ok(None),
            // A key tapd does not hold (someone else's output, a burn):
            // nothing to record, and not a failure.
            Err(e)
                if matches!(e.code(), tonic::Code::NotFound)
                    || e.message().contains("not found") =>
            {
                Ok(None)
            }
            Err(e) => Err((
                format!("query {kind} key {}", hex::encode(key)),
                err("tapd", e),
            )),
        }
    }
}

/// What collecting one output gave.
#[derive(Default)]
struct OutputResult {
    output: Option<v1::NodeOutput>,
    pushed: bool,
    failures: Vec<(String, String)>,
}

/// One owned output: its key locators, and (once confirmed) its proof file
/// pushed if it changed.
async fn collect_output(
    mut tapd: Assets,
    mut wallet: Wallet,
    mut server: BackupClient,
    state: Arc<StateStore>,
    a: tpb::Asset,
) -> OutputResult {
    let mut r = OutputResult::default();
    let (Some(anchor), Some(genesis)) = (a.chain_anchor.as_ref(), a.asset_genesis.as_ref()) else {
        return r;
    };
    let key = format!("{}/{}", anchor.anchor_outpoint, hex::encode(&a.script_key));
    let Some(op) = outpoint_pb(&anchor.anchor_outpoint) else {
        r.failures.push((
            "list assets".into(),
            format!(
                "tapd sent a bad anchor outpoint {:?}",
                anchor.anchor_outpoint
            ),
        ));
        return r;
    };
    let mut lookup = async |kind: &str, k: &[u8]| match locator(&mut wallet, &state, kind, k).await
    {
        Ok(v) => v,
        Err(f) => {
            r.failures.push(f);
            None
        }
    };
    let sk = lookup("script", &a.script_key).await;
    let ik = lookup("internal", &anchor.internal_key).await;
    r.output = Some(v1::NodeOutput {
        anchor: Some(v1::OutPoint {
            txid: anchor
                .anchor_outpoint
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            vout: op.output_index,
        }),
        script_key: a.script_key.clone(),
        asset_id: genesis.asset_id.clone(),
        amount: a.amount,
        script_key_type: a.script_key_type,
        leased: !a.lease_owner.is_empty(),
        anchor_height: anchor.block_height,
        script_key_internal: sk.as_ref().and_then(|k| k.locator.clone()),
        script_key_tweak: sk.as_ref().map(|k| k.tweak.clone()).unwrap_or_default(),
        anchor_internal_key: ik.as_ref().and_then(|k| k.locator.clone()),
    });
    if anchor.block_height == 0 {
        // No proof until it confirms; the next run after that has it.
        return r;
    }
    let file = match tapd
        .export_proof(tpb::ExportProofRequest {
            asset_id: genesis.asset_id.clone(),
            script_key: a.script_key.clone(),
            outpoint: Some(op),
        })
        .await
    {
        Ok(x) => x.into_inner().raw_proof_file,
        Err(e) => {
            r.failures
                .push((format!("export proof {key}"), err("tapd", e)));
            return r;
        }
    };
    let h = hex_sha(&file);
    if state.get().proofs.get(&key).map(|p| &p.sha256) == Some(&h) {
        return r;
    }
    match server
        .push_proof_file(v1::PushProofFileRequest { proof_file: file })
        .await
    {
        Ok(reply) => {
            // Saved with the run's end: a crash before that costs a re-push,
            // which the server ignores.
            let receipts = reply.into_inner().receipts;
            state.update_volatile(|s| {
                s.log.add_receipts(&receipts);
                s.proofs.insert(
                    key,
                    Pushed {
                        sha256: h,
                        pushed_at: now(),
                    },
                );
            });
            r.pushed = true;
        }
        Err(e) => r
            .failures
            .push((format!("push proof {key}"), err("server", e))),
    }
    r
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
