//! `tapvault recover`: from the server, rebuild what a fresh tapd needs —
//! a TAPBAK v1 it imports, one proof file per asset output, the addresses
//! and tapscript trees — verify all of it offline, check the server's
//! universe roots against roots recomputed here, and report every gap.

use crate::remote::{status_msg, RemoteArgs};
use anyhow::{bail, Context, Result};
use bitcoin::OutPoint;
use clap::Args;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use tapvault_api::proto::tapvault_v1 as v1;
use tapvault_api::proto::universerpc as upb;
use tapvault_codec::backup::{AssetBackup, WalletBackup, VERSION_RAW};
use tapvault_codec::primitives::sha256;
use tapvault_codec::universe::{universe_leaf_sum, UniverseSubject};
use tapvault_codec::{File, ProofType};
use tapvault_mssmt::{LeafUpdate, MemTree};
use tapvault_verify::Options;

#[derive(Args, Debug)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Where to write wallet.tapbak, proofs/, addresses.json,
    /// tapscripts.json and report.json.
    #[arg(long, default_value = "tapvault-recovery")]
    pub out: PathBuf,
    /// Recover from this stored backup instead of the newest.
    #[arg(long)]
    pub backup_id: Option<i64>,
    /// Skip the block header proof-of-work / merkle check (regtest
    /// placeholder headers).
    #[arg(long)]
    pub no_header: bool,
    /// Skip witness validation through the Taproot Assets VM (on by
    /// default: a recovered chain must be spendable as stored).
    #[arg(long)]
    pub no_vm: bool,
    /// Overwrite files in an existing output directory.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The server's receipt-log key (hex Ed25519, as `serve` logs it at
    /// start): heads must be signed by it. Without it, the key the head
    /// names is reported (compare it with the one you noted).
    #[arg(long)]
    pub log_key: Option<String>,
}

#[derive(Serialize, Default)]
pub struct AssetReport {
    pub asset_id: String,
    pub asset_name: String,
    pub amount: u64,
    pub outpoint: String,
    pub script_key: String,
    /// "ok", "missing", "invalid" or "spent".
    pub status: String,
    /// Where the proof file came from: "server" or "backup".
    pub source: String,
    pub num_proofs: usize,
    pub proof_file: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Serialize, Default)]
pub struct Report {
    pub tenant: String,
    pub backup_id: i64,
    pub backup_version: u32,
    pub backup_received_at: i64,
    pub assets: Vec<AssetReport>,
    pub addresses: usize,
    pub tapscripts: usize,
    pub universes_checked: usize,
    pub gaps: Vec<String>,
    pub mismatches: Vec<String>,
    pub wallet_backup: Option<String>,
    /// The chosen backup blob as stored (tapd rebuilds stripped v2 and
    /// proofless v3 entries itself when it imports this one).
    pub original_backup: Option<String>,
    /// Unix seconds of the agent's newest complete inventory (0: none).
    pub inventory_reported_at: i64,
    /// Outputs recovered from the agent's inventory because the wallet
    /// backup does not list them (leased or unconfirmed when it was taken,
    /// newer than it, or no backup at all, as on tapd v0.7).
    pub collector_only: usize,
    /// The signed head every written item was checked against.
    pub log_head: Option<tapvault_api::receipts::SavedHead>,
    /// Written items whose inclusion under that head was verified.
    pub log_items_verified: usize,
    /// Written items the log holds but no signed head covers yet (the
    /// server stopped before signing one, or this is a standby the newest
    /// head has not reached): recovered all the same, not yet provable.
    pub log_unsigned: Vec<String>,
    pub log_problems: Vec<String>,
    pub ok: bool,
    /// (kind, content hash) of every item written, for the log check.
    #[serde(skip)]
    pub written: Vec<(tapvault_codec::log::Kind, [u8; 32])>,
    /// The universe leaf of every proof written, with the node hash of the
    /// bytes written: the root check binds them to the listed leaves.
    #[serde(skip)]
    pub written_leaves: Vec<(TreeLeaf, [u8; 32])>,
}

/// A leaf of a universe tree: (universe id, proof type code, leaf key).
pub type TreeLeaf = ([u8; 32], i32, [u8; 32]);

fn x_of(k: &[u8; 33]) -> [u8; 32] {
    let mut x = [0u8; 32];
    x.copy_from_slice(&k[1..]);
    x
}

fn op_pb(o: &OutPoint) -> v1::OutPoint {
    v1::OutPoint {
        txid: o.txid.to_string(),
        vout: o.vout,
    }
}

fn op_of(o: Option<&v1::OutPoint>) -> Result<OutPoint> {
    let o = o.context("server sent an output without outpoint")?;
    Ok(OutPoint {
        txid: o.txid.parse().context("server sent a bad txid")?,
        vout: o.vout,
    })
}

/// Runs the recovery; the report says whether everything was found.
pub async fn run(a: RecoverArgs) -> Result<Report> {
    let started = std::time::Instant::now();
    let (mut b, u) = a.remote.clients()?;

    let opts = Options {
        header: !a.no_header,
        vm: !a.no_vm,
    };
    let st = b
        .status(v1::StatusRequest {
            skip_coverage: true,
        })
        .await
        .map_err(|e| status_msg("server status", e))?
        .into_inner();
    let mut rep = Report {
        tenant: st.tenant.clone(),
        ..Default::default()
    };
    // Every file is staged and lands at the end, all clashes checked
    // first: a refusal writes nothing, and no link is written through.
    let stage = crate::outdir::Staging::new(&a.out, &["proofs"])?;

    // Every stored TAPBAK, newest first: the newest (or chosen) one lists
    // the outputs; all of them together know key locators.
    let mut infos = Vec::new();
    for offset in (0..).step_by(512) {
        let page = b
            .list_wallet_backups(v1::ListWalletBackupsRequest { offset, limit: 512 })
            .await
            .map_err(|e| status_msg("listing wallet backups", e))?
            .into_inner()
            .backups;
        let n = page.len();
        infos.extend(page.into_iter().filter(|i| i.kind == "tapbak"));
        if n < 512 {
            break;
        }
    }
    // The chosen backup (the newest that reads, unless one is named) is
    // read now; the others only when an output it does not list needs key
    // locators (a v1 backup carries every proof: reading them all first
    // was most of a large recovery).
    if let Some(id) = a.backup_id {
        let i = infos
            .iter()
            .position(|i| i.id == id)
            .with_context(|| format!("no TAPBAK wallet backup with id {id} on the server"))?;
        let info = infos.remove(i);
        infos.insert(0, info);
    }
    let mut locators = Locators::default();
    let mut chosen: Option<(v1::WalletBackupInfo, WalletBackup, Vec<u8>)> = None;
    let mut infos = infos.into_iter();
    for info in infos.by_ref() {
        let named = a.backup_id == Some(info.id);
        match read_backup(&mut b, &info, &mut rep).await? {
            Some((wb, raw)) => {
                locators.add(&wb);
                chosen = Some((info, wb, raw));
                break;
            }
            None if named => bail!("wallet backup {} cannot be used (see the report)", info.id),
            None => {}
        }
    }
    locators.unread = infos.collect();
    tracing::debug!(elapsed = ?started.elapsed(), "wallet backup read");
    let (inventory, reported_at) = inventory(&mut b).await?;
    rep.inventory_reported_at = reported_at;
    if chosen.is_none() && inventory.is_empty() {
        rep.gaps.push(
            "the server holds no wallet backup and no agent inventory: key locators for the outputs are unknown"
                .into(),
        );
    }

    // Outputs of the agent's inventory as backup entries (key locators from
    // the inventory, the asset from the server's chain), for forward
    // following and for the outputs the backup does not list.
    let mut from_inventory: Vec<(AssetBackup, String)> = Vec::new();
    for (o, reason) in &inventory {
        if let Some(e) = inventory_entry(&mut b, o).await? {
            locators.insert(&e);
            from_inventory.push((e, reason.clone()));
        } else {
            let op = o.anchor.as_ref().map(|x| format!("{}:{}", x.txid, x.vout));
            rep.gaps.push(format!(
                "output {} (agent inventory): the server holds no proof for it",
                op.unwrap_or_default()
            ));
        }
    }

    // The universes of the outputs to recover are recomputed from their
    // listed leaves while the outputs are recovered.
    let subjects = chosen
        .iter()
        .flat_map(|(_, wb, _)| wb.assets.iter())
        .chain(from_inventory.iter().map(|(e, _)| e))
        .map(|e| UniverseSubject::of(&e.asset))
        .collect();
    let roots = tokio::spawn(tree_roots(b.clone(), u.clone(), subjects));
    let mut entries_out = Vec::new();
    let mut done = std::collections::HashSet::new();
    let mut listed = std::collections::HashSet::new();
    if let Some((info, wb, raw)) = &chosen {
        rep.backup_id = info.id;
        rep.backup_version = info.version;
        rep.backup_received_at = info.received_at;
        let p = a.out.join("original.tapbak");
        stage.write(&p, raw)?;
        rep.written.push((
            tapvault_codec::log::Kind::WalletBackup,
            tapvault_codec::primitives::sha256(&[raw]),
        ));
        rep.original_backup = Some(p.display().to_string());
        let bar = if a.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(wb.assets.len() as u64)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} outputs {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut ahead = Prefetch::new(
            &b,
            wb.assets
                .iter()
                .map(|e| (e.anchor_outpoint, e.asset.script_key.0))
                .collect(),
            opts,
        );
        for e in &wb.assets {
            listed.insert((e.anchor_outpoint, e.asset.script_key.x_only()));
            let first = ahead.next().await;
            let (mut ar, entry) = recover_output(
                &mut b,
                e,
                first,
                &mut locators,
                &done,
                opts,
                &a,
                &stage,
                &mut rep,
            )
            .await?;
            if wb.version != VERSION_RAW && matches!(ar.status.as_str(), "missing" | "invalid") {
                ar.notes.push(format!(
                    "the TAPBAK v{} entry carries {}: importing original.tapbak lets tapd rebuild it from the chain and its universe",
                    wb.version,
                    if e.proof_file.is_some() { "a stripped proof file" } else { "no proofs" }
                ));
            }
            if let Some(en) = entry {
                done.insert((en.anchor_outpoint, en.asset.script_key.x_only()));
                entries_out.push(en);
            } else if ar.status == "recovered-elsewhere" {
                ar.status = "spent".into();
            }
            rep.assets.push(ar);
            bar.inc(1);
        }
        bar.finish_and_clear();
        tracing::debug!(elapsed = ?started.elapsed(), outputs = wb.assets.len(), "backup outputs recovered");
    }

    // What only the agent's collector knows about.
    for (e, reason) in &from_inventory {
        let k = (e.anchor_outpoint, e.asset.script_key.x_only());
        if listed.contains(&k) || done.contains(&k) {
            continue;
        }
        let (mut ar, entry) = recover_output(
            &mut b,
            e,
            None,
            &mut locators,
            &done,
            opts,
            &a,
            &stage,
            &mut rep,
        )
        .await?;
        ar.notes.push(format!(
            "not in the wallet backup ({reason}): recovered from the agent's inventory and the server's chain"
        ));
        if let Some(en) = entry {
            done.insert((en.anchor_outpoint, en.asset.script_key.x_only()));
            entries_out.push(en);
            rep.collector_only += 1;
        } else if ar.status == "recovered-elsewhere" {
            ar.status = "spent".into();
        }
        rep.assets.push(ar);
    }

    if !entries_out.is_empty() || chosen.is_some() {
        let wb = WalletBackup {
            version: VERSION_RAW,
            federation_urls: Vec::new(),
            assets: entries_out,
        };
        let bytes = wb.encode();
        // What we write must read back to itself, as tapd will read it.
        let back = WalletBackup::decode(&bytes).context("our own TAPBAK does not decode")?;
        if back.encode() != bytes {
            bail!("our own TAPBAK does not round-trip");
        }
        let p = a.out.join("wallet.tapbak");
        stage.write(&p, &bytes)?;
        rep.wallet_backup = Some(p.display().to_string());
    }

    // Addresses and tapscript trees, as JSON.
    let mut addrs = Vec::new();
    for offset in (0..).step_by(512) {
        let r = b
            .list_addresses(v1::ListAddressesRequest {
                key: vec![],
                offset,
                limit: 512,
            })
            .await
            .map_err(|e| status_msg("listing addresses", e))?
            .into_inner();
        for x in r.addresses {
            rep.written.push((
                tapvault_codec::log::Kind::Address,
                tapvault_codec::log::address_content_hash(&x.encoded),
            ));
            if tapvault_codec::Address::decode(&x.encoded).is_err() {
                rep.mismatches
                    .push(format!("stored address {} does not decode", x.encoded));
            }
            addrs.push(serde_json::json!({
                "address": x.encoded,
                "network": x.network,
                "version": x.version,
                "asset_version": x.asset_version,
                "asset_id": hex::encode(&x.asset_id),
                "group_key": hex::encode(&x.group_key),
                "script_key": hex::encode(&x.script_key),
                "internal_key": hex::encode(&x.internal_key),
                "tapscript_sibling": hex::encode(&x.tapscript_sibling),
                "amount": x.amount,
                "proof_courier_addr": x.proof_courier_addr,
            }));
        }
        if !r.has_more {
            break;
        }
    }
    rep.addresses = addrs.len();
    stage.write(
        &a.out.join("addresses.json"),
        serde_json::to_string_pretty(&addrs)?.as_bytes(),
    )?;
    let mut trees = Vec::new();
    for offset in (0..).step_by(512) {
        let r = b
            .list_tapscripts(v1::ListTapscriptsRequest {
                key: vec![],
                offset,
                limit: 512,
            })
            .await
            .map_err(|e| status_msg("listing tapscript trees", e))?
            .into_inner();
        for t in r.tapscripts {
            let leaves: Vec<(u8, &[u8])> = t
                .leaves
                .iter()
                .map(|l| (l.leaf_version as u8, l.script.as_slice()))
                .collect();
            let root = tapvault_verify::taproot::assemble_tapscript_root(&leaves);
            let enc = tapvault_codec::log::tapscript_leaves(leaves.iter().copied());
            let raw_key: Option<[u8; 33]> = t.raw_key.as_slice().try_into().ok();
            let root_hash: [u8; 32] = t.root_hash.as_slice().try_into().unwrap_or([0; 32]);
            rep.written.push((
                tapvault_codec::log::Kind::Tapscript,
                tapvault_codec::log::tapscript_content_hash(&root_hash, raw_key.as_ref(), &enc),
            ));
            if root.map(|r| r.to_vec()) != Some(t.root_hash.clone()) {
                rep.mismatches.push(format!(
                    "tapscript tree for key {} does not hash to its root",
                    hex::encode(&t.key_x)
                ));
            }
            trees.push(serde_json::json!({
                "key": hex::encode(&t.key_x),
                "raw_key": hex::encode(&t.raw_key),
                "root_hash": hex::encode(&t.root_hash),
                "label": t.label,
                "leaves": t.leaves.iter().map(|l| serde_json::json!({
                    "leaf_version": l.leaf_version,
                    "script": hex::encode(&l.script),
                })).collect::<Vec<_>>(),
            }));
        }
        if !r.has_more {
            break;
        }
    }
    rep.tapscripts = trees.len();
    stage.write(
        &a.out.join("tapscripts.json"),
        serde_json::to_string_pretty(&trees)?.as_bytes(),
    )?;

    tracing::debug!(elapsed = ?started.elapsed(), "outputs, addresses and tapscript trees written");
    let roots = roots
        .await
        .map_err(|e| anyhow::anyhow!("the universe root check stopped: {e}"))??;
    compare_roots(roots, &mut rep);
    tracing::debug!(elapsed = ?started.elapsed(), "universe roots checked");
    check_log(&a, &mut rep).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "receipt log checked");

    rep.ok = rep.gaps.is_empty()
        && rep.mismatches.is_empty()
        && rep.log_problems.is_empty()
        && rep
            .assets
            .iter()
            .all(|x| x.status == "ok" || x.status == "spent");
    stage.write(
        &a.out.join("report.json"),
        serde_json::to_string_pretty(&rep)?.as_bytes(),
    )?;
    stage.commit(a.force)?;
    Ok(rep)
}

/// The agent's newest complete inventory: each output with why a wallet
/// backup may miss it; and when it was reported.
async fn inventory(
    b: &mut tapvault_api::client::BackupClient,
) -> Result<(Vec<(v1::NodeOutput, String)>, i64)> {
    let mut out = Vec::new();
    let mut reported_at = 0;
    for offset in (0..).step_by(16384) {
        let r = b
            .list_inventory(v1::ListInventoryRequest {
                all: false,
                offset,
                limit: 16384,
                include_keys: false,
            })
            .await
            .map_err(|e| status_msg("listing the agent's inventory", e))?
            .into_inner();
        reported_at = r.reported_at;
        for o in r.outputs.into_iter().filter_map(|o| o.output) {
            let reason = if o.leased {
                "leased"
            } else if o.anchor_height == 0 {
                "unconfirmed"
            } else {
                "not listed"
            };
            out.push((o, reason.to_string()));
        }
        if !r.has_more {
            break;
        }
    }
    Ok((out, reported_at))
}

/// A backup entry for an inventory output: its key locators, and the asset
/// from the tip of the server's chain (`None` when the server has none).
async fn inventory_entry(
    b: &mut tapvault_api::client::BackupClient,
    o: &v1::NodeOutput,
) -> Result<Option<AssetBackup>> {
    use tapvault_codec::backup::{KeyDescriptorBackup, ScriptKeyBackup};
    use tapvault_codec::PubKey;
    let r = b
        .get_proof_file(v1::GetProofFileRequest {
            outpoint: o.anchor.clone(),
            script_key: o.script_key.clone(),
        })
        .await;
    let r = match r {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
        Err(s) => return Err(status_msg("fetching a proof file", s)),
    };
    if r.proof_file.is_empty() {
        return Ok(None);
    }
    let Ok(f) = File::decode(&r.proof_file) else {
        return Ok(None);
    };
    let key = |k: &[u8]| PubKey::from_slice(k).ok();
    let sk = o.script_key_internal.as_ref().and_then(|l| {
        Some(ScriptKeyBackup {
            pub_key: key(&o.script_key)?,
            family: l.family as u32,
            index: l.index as u32,
            raw_pub_key: key(&l.raw_key),
            tweak: (!o.script_key_tweak.is_empty()).then(|| o.script_key_tweak.clone()),
            unknown: Default::default(),
        })
    });
    let ik = o.anchor_internal_key.as_ref().and_then(|l| {
        Some(KeyDescriptorBackup {
            pub_key: key(&l.raw_key)?,
            family: l.family as u32,
            index: l.index as u32,
            unknown: Default::default(),
        })
    });
    let Ok(mut e) = AssetBackup::from_proof_file(&f, sk, ik) else {
        return Ok(None);
    };
    // recover_output takes the server's chain itself.
    e.proof_file = None;
    Ok(Some(e))
}

type Fetched = Result<v1::GetProofFileResponse, tonic::Status>;

/// Key locators by output, from the stored wallet backups: the chosen
/// backup's at once, every other's on the first output it does not list.
#[derive(Default)]
struct Locators {
    known: HashMap<(OutPoint, [u8; 32]), AssetBackup>,
    /// The other TAPBAKs, newest first, not read yet.
    unread: Vec<v1::WalletBackupInfo>,
}

impl Locators {
    /// The first entry seen for an output wins.
    fn insert(&mut self, e: &AssetBackup) {
        self.known
            .entry((e.anchor_outpoint, e.asset.script_key.x_only()))
            .or_insert_with(|| e.clone());
    }

    fn add(&mut self, wb: &WalletBackup) {
        wb.assets.iter().for_each(|e| self.insert(e));
    }

    async fn get(
        &mut self,
        b: &mut tapvault_api::client::BackupClient,
        key: (OutPoint, [u8; 32]),
        rep: &mut Report,
    ) -> Result<Option<AssetBackup>> {
        if !self.known.contains_key(&key) {
            for info in std::mem::take(&mut self.unread) {
                if let Some((wb, _)) = read_backup(b, &info, rep).await? {
                    self.add(&wb);
                }
            }
        }
        Ok(self.known.get(&key).cloned())
    }
}

/// A stored TAPBAK, checked against its content hash and decoded; `None`
/// (with the reason in the report) when it is neither.
async fn read_backup(
    b: &mut tapvault_api::client::BackupClient,
    info: &v1::WalletBackupInfo,
    rep: &mut Report,
) -> Result<Option<(WalletBackup, Vec<u8>)>> {
    let raw = b
        .get_wallet_backup(v1::GetWalletBackupRequest {
            id: info.id,
            opaque: false,
        })
        .await
        .map_err(|e| status_msg("downloading a wallet backup", e))?
        .into_inner()
        .backup;
    if sha256(&[&raw]).to_vec() != info.sha256 {
        rep.mismatches
            .push(format!("wallet backup {}: content hash mismatch", info.id));
        return Ok(None);
    }
    match WalletBackup::decode(&raw) {
        Ok(wb) => Ok(Some((wb, raw))),
        Err(e) => {
            rep.mismatches
                .push(format!("wallet backup {} does not decode: {e}", info.id));
            Ok(None)
        }
    }
}

/// A proof file decoded and verified, with what each proof proves.
type Checked = Result<(File, Vec<tapvault_verify::Verified>), String>;

fn check_file(bytes: &[u8], opts: Options) -> Checked {
    let f = File::decode(bytes).map_err(|e| e.to_string())?;
    let v = tapvault_verify::verify_file(&f, opts).map_err(|e| e.to_string())?;
    Ok((f, v))
}

/// The proof files of a list of outputs, fetched [`Prefetch::AHEAD`] at a
/// time ahead of the one being recovered: recovery is one call per output,
/// and waiting for each in turn made it a chain of round trips.
struct Prefetch {
    b: tapvault_api::client::BackupClient,
    keys: Vec<(OutPoint, [u8; 33])>,
    next: usize,
    opts: Options,
    pending: std::collections::VecDeque<tokio::task::JoinHandle<(Fetched, Option<Checked>)>>,
}

impl Prefetch {
    const AHEAD: usize = 64;

    fn new(
        b: &tapvault_api::client::BackupClient,
        keys: Vec<(OutPoint, [u8; 33])>,
        opts: Options,
    ) -> Self {
        Prefetch {
            b: b.clone(),
            keys,
            opts,
            next: 0,
            pending: Default::default(),
        }
    }

    /// The next output's answer, in list order, with its complete chain
    /// already verified (on the blocking pool, so every core verifies while
    /// the main task writes files).
    async fn next(&mut self) -> Option<(Fetched, Option<Checked>)> {
        while self.pending.len() < Self::AHEAD && self.next < self.keys.len() {
            let (op, sk) = self.keys[self.next];
            self.next += 1;
            let (mut b, opts) = (self.b.clone(), self.opts);
            self.pending.push_back(tokio::spawn(async move {
                let r = b
                    .get_proof_file(v1::GetProofFileRequest {
                        outpoint: Some(op_pb(&op)),
                        script_key: sk.to_vec(),
                    })
                    .await
                    .map(|r| r.into_inner());
                let checked = match &r {
                    Ok(x) if x.complete && x.spent_by.is_empty() => {
                        let bytes = x.proof_file.clone();
                        tokio::task::spawn_blocking(move || check_file(&bytes, opts))
                            .await
                            .ok()
                    }
                    _ => None,
                };
                (r, checked)
            }));
        }
        let h = self.pending.pop_front()?;
        Some(h.await.unwrap_or_else(|e| {
            (
                Err(tonic::Status::internal(format!("fetch task failed: {e}"))),
                None,
            )
        }))
    }
}

/// One output of the backup: follow it forward to the newest output the
/// wallet holds keys for, take the newest complete chain, verify it.
#[allow(clippy::too_many_arguments)]
async fn recover_output(
    b: &mut tapvault_api::client::BackupClient,
    e: &AssetBackup,
    first: Option<(Fetched, Option<Checked>)>,
    locators: &mut Locators,
    done: &std::collections::HashSet<(OutPoint, [u8; 32])>,
    opts: Options,
    a: &RecoverArgs,
    stage: &crate::outdir::Staging,
    rep: &mut Report,
) -> Result<(AssetReport, Option<AssetBackup>)> {
    let mut ar = AssetReport {
        asset_id: hex::encode(e.asset.id()),
        asset_name: e.asset.genesis.tag_lossy(),
        amount: e.asset.amount,
        ..Default::default()
    };
    let mut cur = e.clone();
    let mut resp = None;
    // Verified ahead, for the first answer's chain when it is the one used.
    let (mut first, mut pre) = match first {
        Some((r, c)) => (Some(r), c),
        None => (None, None),
    };
    for _ in 0..10_000 {
        let r = match first.take() {
            Some(r) => r,
            None => b
                .get_proof_file(v1::GetProofFileRequest {
                    outpoint: Some(op_pb(&cur.anchor_outpoint)),
                    script_key: cur.asset.script_key.0.to_vec(),
                })
                .await
                .map(|r| r.into_inner()),
        };
        let r = match r {
            Ok(r) => r,
            Err(s) if s.code() == tonic::Code::NotFound => break,
            Err(s) => return Err(status_msg("fetching a proof file", s)),
        };
        // Spent on the server's record: move to the spending output if the
        // wallet has keys for it (a later backup listed it).
        let mut next = None;
        for sp in &r.spent_by {
            let op = op_of(sp.outpoint.as_ref())?;
            let sk: [u8; 33] = sp.script_key.as_slice().try_into().unwrap_or([0; 33]);
            if let Some(n) = locators.get(b, (op, x_of(&sk)), rep).await? {
                next = Some(n);
            }
        }
        match next {
            Some(n) => {
                ar.notes.push(format!(
                    "the server holds a newer output: {} spent by {}",
                    cur.anchor_outpoint, n.anchor_outpoint
                ));
                cur = n;
                pre = None;
            }
            None => {
                if !r.spent_by.is_empty() {
                    ar.status = "spent".into();
                    ar.notes.push(format!(
                        "spent in {} to an output no backup holds keys for: left the wallet",
                        r.spent_by[0]
                            .outpoint
                            .as_ref()
                            .map(|o| o.txid.clone())
                            .unwrap_or_default()
                    ));
                }
                resp = Some(r);
                break;
            }
        }
    }
    ar.outpoint = cur.anchor_outpoint.to_string();
    ar.script_key = cur.asset.script_key.to_hex();
    ar.amount = cur.asset.amount;
    if ar.status == "spent" {
        return Ok((ar, None));
    }
    if done.contains(&(cur.anchor_outpoint, cur.asset.script_key.x_only())) {
        ar.status = "recovered-elsewhere".into();
        ar.notes.push(format!(
            "now at {}, recovered once there",
            cur.anchor_outpoint
        ));
        return Ok((ar, None));
    }

    // The server's complete chain, else the copy inside the backup.
    let (bytes, source) = match &resp {
        Some(r) if r.complete => (Some(r.proof_file.clone()), "server"),
        _ => match &cur.proof_file {
            Some(f) => {
                if let Some(m) = resp.as_ref().and_then(|r| r.missing.first()) {
                    ar.notes.push(format!(
                        "the server's chain misses {}:{}; used the backup's copy",
                        m.outpoint.as_ref().map(|o| o.txid.as_str()).unwrap_or(""),
                        m.outpoint.as_ref().map(|o| o.vout).unwrap_or(0)
                    ));
                } else {
                    ar.notes
                        .push("the server holds no proof for it; used the backup's copy".into());
                }
                (Some(f.clone()), "backup")
            }
            None => (None, ""),
        },
    };
    let Some(bytes) = bytes else {
        ar.status = "missing".into();
        let what = match resp.as_ref().and_then(|r| r.missing.first()) {
            Some(m) => format!(
                "ancestor {}:{} (needed by {})",
                m.outpoint.as_ref().map(|o| o.txid.as_str()).unwrap_or(""),
                m.outpoint.as_ref().map(|o| o.vout).unwrap_or(0),
                m.needed_by
            ),
            None => "every proof".into(),
        };
        rep.gaps
            .push(format!("output {}: {what} is not stored", ar.outpoint));
        return Ok((ar, None));
    };
    ar.source = source.into();
    let checked = match pre.take() {
        Some(c) if source == "server" => c,
        _ => check_file(&bytes, opts),
    }
    .and_then(|(f, v)| {
        let last = f.last_proof().map_err(|e| e.to_string())?;
        match last {
            Some(p)
                if p.outpoint() == cur.anchor_outpoint
                    && p.asset.script_key.x_only() == cur.asset.script_key.x_only() =>
            {
                Ok((f, v))
            }
            _ => Err("the file does not end at this output".into()),
        }
    });
    let (f, verified) = match checked {
        Ok(f) => f,
        Err(why) => {
            ar.status = "invalid".into();
            rep.mismatches
                .push(format!("output {}: proof file {why}", ar.outpoint));
            return Ok((ar, None));
        }
    };
    if source == "server" {
        if let Some(own) = cur.proof_file.as_ref().filter(|o| **o != bytes) {
            let n_own = File::decode(own).map(|f| f.len()).unwrap_or(0);
            ar.notes.push(format!(
                "the server's chain ({} proofs) differs from the backup's ({n_own}); using the server's",
                f.len()
            ));
        }
    }
    ar.num_proofs = f.len();
    let name = format!(
        "{}-{}-{}.assetproof",
        cur.anchor_outpoint.txid,
        cur.anchor_outpoint.vout,
        &cur.asset.script_key.to_hex()[2..18]
    );
    let path = a.out.join("proofs").join(&name);
    stage.write(&path, &bytes)?;
    for (en, v) in f.entries.iter().zip(&verified) {
        rep.written.push((
            tapvault_codec::log::Kind::Proof,
            tapvault_codec::primitives::sha256(&[&en.raw]),
        ));
        let u = &v.universe;
        let code = match u.proof_type {
            ProofType::Issuance => 1,
            ProofType::Transfer => 2,
        };
        rep.written_leaves.push((
            (u.subject.id_bytes(), code, u.leaf_key),
            tapvault_mssmt::Node::leaf(&en.raw, u.sum).hash,
        ));
    }
    ar.proof_file = Some(path.display().to_string());
    let entry =
        AssetBackup::from_proof_file(&f, cur.script_key.clone(), cur.anchor_internal_key.clone())
            .map_err(|e| anyhow::anyhow!("building the backup entry of {}: {e}", ar.outpoint))?;
    if cur.script_key.is_none() || cur.anchor_internal_key.is_none() {
        ar.notes
            .push("the backup has no key locators for this output: tapd cannot spend it".into());
        rep.gaps
            .push(format!("output {}: key locators unknown", ar.outpoint));
    }
    ar.status = "ok".into();
    Ok((ar, Some(entry)))
}

/// Every written item must be in the receipt log, included under a head
/// signed by the log key: what recovery hands back is what the server
/// acknowledged, not something it made up since.
async fn check_log(a: &RecoverArgs, rep: &mut Report) -> Result<()> {
    use tapvault_api::receipts as rc;
    let pinned: Option<[u8; 32]> = match &a.log_key {
        Some(k) => Some(
            hex::decode(k.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("--log-key is not 32 bytes of hex")?,
        ),
        None => None,
    };
    let (_, mut log) = a.remote.log_clients()?;
    let h = match log
        .get_tree_head(v1::GetTreeHeadRequest { fresh: true })
        .await
    {
        Ok(h) => Some(h.into_inner()),
        Err(s) if s.code() == tonic::Code::Unimplemented => {
            rep.log_problems.push("the server has no receipt log (an older tapvault): nothing written could be checked against signed heads".into());
            return Ok(());
        }
        // No head yet (a standby the primary's first head never reached):
        // every item is checked against the log without one, and listed.
        Err(s) if s.code() == tonic::Code::NotFound => None,
        Err(s) => return Err(status_msg("GetTreeHead", s)),
    };
    let head = match h.map(|h| rc::verify_head(&h, pinned.as_ref())) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            rep.log_problems.push(e.to_string());
            return Ok(());
        }
        None => None,
    };
    rep.log_head = head.as_ref().map(rc::SavedHead::of);
    let mut items = std::mem::take(&mut rep.written);
    items.sort();
    items.dedup();
    let mut heads: HashMap<u64, Option<rc::VerifiedHead>> = HashMap::new();
    if let Some(h) = &head {
        heads.insert(h.head.tree_size, Some(h.clone()));
    }
    for chunk in items.chunks(10_000) {
        let req = v1::GetReceiptsRequest {
            items: chunk
                .iter()
                .map(|(k, h)| v1::GetReceiptRequest {
                    kind: k.code() as u32,
                    content_hash: h.to_vec(),
                })
                .collect(),
        };
        let got = log
            .get_receipts(req)
            .await
            .map_err(|s| status_msg("GetReceipts", s))?
            .into_inner()
            .receipts;
        for ((k, h), r) in chunk.iter().zip(got) {
            let what = format!("{} {}", k.name(), hex::encode(h));
            if !r.found {
                rep.log_problems.push(format!("{what}: {}", r.problem));
                continue;
            }
            let entry = match r.entry.as_ref().map(rc::entry_of) {
                Some(Ok(e)) if e.kind == *k && e.content_hash == *h => e,
                Some(Err(e)) => {
                    rep.log_problems.push(format!("{what}: {e}"));
                    continue;
                }
                _ => {
                    rep.log_problems
                        .push(format!("{what}: the receipt is for another item"));
                    continue;
                }
            };
            let (Some(hp), Some(newest)) = (r.head.as_ref(), head.as_ref()) else {
                // Newer than the newest signed head: handed back, and said.
                rep.log_unsigned
                    .push(format!("{what} (log entry {})", entry.index));
                continue;
            };
            let v = heads
                .entry(hp.tree_size)
                .or_insert_with(|| rc::verify_head(hp, Some(&newest.public_key)).ok());
            match v {
                Some(vh) => match rc::verify_inclusion(vh, &entry, &r.inclusion_proof) {
                    Ok(()) => rep.log_items_verified += 1,
                    Err(e) => rep.log_problems.push(e.to_string()),
                },
                None => rep
                    .log_problems
                    .push(format!("{what}: its head is not signed by the log key")),
            }
        }
    }
    Ok(())
}

/// A universe tree: (universe id, proof type code).
type TreeId = ([u8; 32], i32);

/// Recomputes every universe tree from the stored leaves and compares its
/// root with the one the server's universe RPC reports. The leaves are
/// listed by node hash, not with their proofs (a tenant's every proof
/// would be most of the bytes recovery moves); every proof recovery wrote
/// is hashed here and must be the leaf its universe root commits to.
/// Only the universes of the outputs recovered are checked (`fsck` and
/// `audit` check a whole server); they are listed one by one when they are
/// few, else the tenant's every leaf is listed and the rest skipped.
///
/// [`tree_roots`] does the listing and the recomputing (it needs nothing
/// recovery writes, so it runs beside the outputs' recovery);
/// [`compare_roots`] checks them once the proofs are written.
async fn tree_roots(
    mut b: tapvault_api::client::BackupClient,
    mut u: tapvault_api::client::UniverseClient,
    subjects: std::collections::HashSet<UniverseSubject>,
) -> Result<TreeRoots> {
    const FEW: usize = 64;
    let wanted: std::collections::HashSet<[u8; 32]> =
        subjects.iter().map(UniverseSubject::id_bytes).collect();
    let selectors: Vec<v1::list_leaves_request::Selector> = if subjects.len() <= FEW {
        subjects
            .iter()
            .map(|s| match s {
                UniverseSubject::GroupKey(g) => {
                    v1::list_leaves_request::Selector::GroupKey(g.x_only().to_vec())
                }
                UniverseSubject::AssetId(id) => {
                    v1::list_leaves_request::Selector::AssetId(id.to_vec())
                }
            })
            .collect()
    } else {
        vec![v1::list_leaves_request::Selector::All(true)]
    };
    // Every tree's leaves first, then one batch update per tree: inserting
    // one by one re-hashed each leaf's path as later leaves pushed it down.
    // Pages at the server's maximum: offset paging rereads what it skips.
    const PAGE: i32 = 16_384;
    let mut leaves: BTreeMap<([u8; 32], i32), Vec<LeafUpdate>> = BTreeMap::new();
    let mut listed: HashMap<TreeLeaf, [u8; 32]> = HashMap::new();
    for selector in &selectors {
        let mut offset = 0;
        loop {
            let r = b
                .list_leaves(v1::ListLeavesRequest {
                    selector: Some(selector.clone()),
                    include_proofs: false,
                    offset,
                    limit: PAGE,
                })
                .await
                .map_err(|e| status_msg("listing leaves", e))?
                .into_inner();
            for l in &r.leaves {
                if !(l.is_newest_version && l.in_universe) {
                    continue;
                }
                let (ty, code) = match l.proof_type.as_str() {
                    "issuance" => (ProofType::Issuance, 1),
                    _ => (ProofType::Transfer, 2),
                };
                let uid: [u8; 32] = l.universe_id.as_slice().try_into().unwrap_or([0; 32]);
                if !wanted.contains(&uid) {
                    continue;
                }
                let key: [u8; 32] = l.leaf_key.as_slice().try_into().unwrap_or([0; 32]);
                let Ok(hash) = <[u8; 32]>::try_from(l.leaf_node_hash.as_slice()) else {
                    bail!("the server lists leaves without their node hash (older server?)");
                };
                listed.insert((uid, code, key), hash);
                leaves.entry((uid, code)).or_default().push(LeafUpdate {
                    key,
                    leaf: tapvault_mssmt::Node {
                        hash,
                        sum: universe_leaf_sum(ty, l.amount),
                    },
                });
            }
            if !r.has_more {
                break;
            }
            offset += PAGE;
        }
    }
    tracing::debug!(leaves = listed.len(), "universe leaves listed");
    // The trees are independent: built on every core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut jobs: Vec<Vec<(TreeId, Vec<LeafUpdate>)>> = vec![Vec::new(); threads];
    for (i, job) in leaves.into_iter().enumerate() {
        jobs[i % threads].push(job);
    }
    let built: Vec<Result<Vec<(TreeId, MemTree)>>> = tokio::task::spawn_blocking(move || {
        std::thread::scope(|sc| {
            let hs: Vec<_> = jobs
                .into_iter()
                .map(|js| {
                    sc.spawn(move || {
                        js.into_iter()
                            .map(|(k, ups)| {
                                let mut t = MemTree::new();
                                t.apply(ups)
                                    .map_err(|e| anyhow::anyhow!("local tree: {e}"))?;
                                Ok((k, t))
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a tree builder panicked")))
                })
                .collect()
        })
    })
    .await
    .map_err(|e| anyhow::anyhow!("the tree builders stopped: {e}"))?;
    let mut local: BTreeMap<([u8; 32], i32), MemTree> = BTreeMap::new();
    for r in built {
        local.extend(r?);
    }
    let mut server: BTreeMap<([u8; 32], i32), (Vec<u8>, i64)> = BTreeMap::new();
    for offset in (0..).step_by(512) {
        let r = u
            .asset_roots(upb::AssetRootRequest {
                with_amounts_by_id: false,
                offset,
                limit: 512,
                direction: 0,
            })
            .await
            .map_err(|e| status_msg("listing universe roots", e))?
            .into_inner();
        for root in r.universe_roots.values() {
            let Some(id) = &root.id else { continue };
            let uid = match &id.id {
                Some(upb::id::Id::AssetId(a)) => a.as_slice().try_into().unwrap_or([0; 32]),
                Some(upb::id::Id::GroupKey(g)) => {
                    let x = if g.len() == 33 { &g[1..] } else { &g[..] };
                    sha256(&[x])
                }
                _ => continue,
            };
            let n = root.mssmt_root.clone().unwrap_or_default();
            server.insert((uid, id.proof_type), (n.root_hash, n.root_sum));
        }
        if !r.has_more || r.universe_roots.is_empty() {
            break;
        }
    }
    let mut recomputed = BTreeMap::new();
    for (k, tree) in local.iter_mut() {
        let want = tree
            .root()
            .map_err(|e| anyhow::anyhow!("recomputing a universe root: {e}"))?;
        recomputed.insert(*k, want);
    }
    Ok(TreeRoots {
        listed,
        recomputed,
        server,
    })
}

/// Every universe tree recomputed from the listed leaves, beside the
/// server's roots.
struct TreeRoots {
    /// Node hash of every leaf in a universe tree.
    listed: HashMap<TreeLeaf, [u8; 32]>,
    recomputed: BTreeMap<TreeId, tapvault_mssmt::Node>,
    server: BTreeMap<TreeId, (Vec<u8>, i64)>,
}

fn compare_roots(t: TreeRoots, rep: &mut Report) {
    for ((uid, code, key), h) in &rep.written_leaves {
        if t.listed.get(&(*uid, *code, *key)).is_some_and(|l| l != h) {
            rep.mismatches.push(format!(
                "leaf {} of universe {}: the proof written is not the leaf its universe root commits to",
                hex::encode(key),
                hex::encode(uid)
            ));
        }
    }
    for ((uid, ty), want) in &t.recomputed {
        match t.server.get(&(*uid, *ty)) {
            Some((h, s)) if *h == want.hash.to_vec() && *s as u64 == want.sum => {}
            Some((h, s)) => rep.mismatches.push(format!(
                "universe {} ({}): server root {}/{s}, recomputed {}/{}",
                hex::encode(uid),
                if *ty == 1 { "issuance" } else { "transfer" },
                hex::encode(h),
                hex::encode(want.hash),
                want.sum
            )),
            None => rep.mismatches.push(format!(
                "universe {} has leaves but the server reports no root",
                hex::encode(uid)
            )),
        }
    }
    rep.universes_checked = t.recomputed.len();
}

/// Prints the human summary of a report.
pub fn print_summary(r: &Report, out: &Path) {
    println!(
        "tenant {:?}: backup {} (v{}), {} outputs",
        r.tenant,
        r.backup_id,
        r.backup_version,
        r.assets.len()
    );
    for x in &r.assets {
        println!(
            "  {:8} {} {} x{} at {} ({} proofs from {})",
            x.status,
            x.asset_name,
            &x.asset_id[..16.min(x.asset_id.len())],
            x.amount,
            x.outpoint,
            x.num_proofs,
            if x.source.is_empty() { "-" } else { &x.source }
        );
        for n in &x.notes {
            println!("           {n}");
        }
    }
    println!(
        "{} addresses, {} tapscript trees, {} universe roots recomputed and compared",
        r.addresses, r.tapscripts, r.universes_checked
    );
    for g in &r.gaps {
        println!("GAP: {g}");
    }
    for m in &r.mismatches {
        println!("MISMATCH: {m}");
    }
    if !r.log_unsigned.is_empty() {
        println!(
            "{} written items are newer than the newest signed tree head{}: they are in the \
             server's log, but no head signs them yet (listed in the report as log_unsigned)",
            r.log_unsigned.len(),
            match &r.log_head {
                Some(h) => format!(" (size {})", h.tree_size),
                None => " (the server has signed none)".into(),
            }
        );
    }
    if let Some(w) = &r.wallet_backup {
        println!("wrote {w}; import with: tapcli assets backup import --backup_file {w}");
    }
    if let (Some(o), false) = (&r.original_backup, r.ok) {
        println!(
            "the backup as stored (v{}) is {o}: for outputs listed above as missing, tapd can rebuild what it can from the chain and its universe with: tapcli assets backup import --backup_file {o}",
            r.backup_version
        );
    }
    println!(
        "{} (report: {})",
        if r.ok {
            "recovery complete"
        } else {
            "recovery INCOMPLETE"
        },
        out.join("report.json").display()
    );
}
