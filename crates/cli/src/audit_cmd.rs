//! `tapvault audit`: checks a tenant's receipt log from the outside, with a
//! read token. Downloads the newest signed head and every entry, rebuilds
//! the tree (every leaf must hash into the signed root), checks that every
//! item the server serves is in the log and every entry is served, that the
//! log only grew since a head saved by an earlier run, and that every
//! receipt in a receipts file is in the log. Exit 0 only when all holds.

use crate::remote::{status_msg, RemoteArgs};
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use tapvault_api::proto::tapvault_v1 as pb;
use tapvault_api::receipts::{self as rc, SavedHead, SavedReceipt};
use tapvault_codec::log::{address_content_hash, tapscript_content_hash, Entry, Kind};
use tapvault_codec::primitives::sha256;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// A head saved by an earlier run: the new head must extend it (and
    /// must be signed by the same key). Written back when the audit passes.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Receipts to find in the log (JSON list, as the agent keeps them).
    #[arg(long)]
    pub receipts: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Default, Debug)]
pub struct AuditReport {
    pub ok: bool,
    pub head: Option<SavedHead>,
    pub entries: u64,
    pub items_served: u64,
    pub receipts_checked: u64,
    /// The saved head the new one was checked against.
    pub previous_head_size: Option<u64>,
    pub problems: Vec<String>,
}

#[derive(Serialize, serde::Deserialize)]
struct State {
    head: SavedHead,
}

pub async fn run(a: &AuditArgs) -> Result<AuditReport> {
    let (mut backup, mut log) = a.remote.log_clients()?;
    let mut rep = AuditReport::default();
    let saved: Option<rc::VerifiedHead> = match &a.state {
        Some(p) if p.exists() => {
            let s: State = serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("{} is not an audit state file", p.display()))?;
            Some(
                s.head
                    .verify()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            )
        }
        _ => None,
    };

    // The head, under the pinned key when there is one.
    let h = log
        .get_tree_head(pb::GetTreeHeadRequest { fresh: true })
        .await
        .map_err(|s| status_msg("GetTreeHead", s))?
        .into_inner();
    let head = match rc::verify_head(&h, saved.as_ref().map(|s| &s.public_key)) {
        Ok(v) => v,
        Err(e) => {
            rep.problems.push(e.to_string());
            return Ok(rep);
        }
    };
    rep.head = Some(SavedHead::of(&head));

    // Every entry, rebuilt into the signed root. An entry whose fields do
    // not hash to its leaf was changed after it was logged: it is named,
    // and its leaf hash (what the signed root covers) is kept for the root.
    let mut entries: Vec<Entry> = Vec::with_capacity(head.head.tree_size as usize);
    let mut leaves: Vec<[u8; 32]> = Vec::with_capacity(head.head.tree_size as usize);
    let mut altered: std::collections::HashSet<u64> = std::collections::HashSet::new();
    while (entries.len() as u64) < head.head.tree_size {
        let page = log
            .list_log_entries(pb::ListLogEntriesRequest {
                from_index: entries.len() as u64,
                limit: 10_000,
            })
            .await
            .map_err(|s| status_msg("ListLogEntries", s))?
            .into_inner();
        if page.entries.is_empty() {
            rep.problems.push(format!(
                "the server lists {} log entries but its head signs {}",
                entries.len(),
                head.head.tree_size
            ));
            break;
        }
        for e in &page.entries {
            if e.index != entries.len() as u64 {
                rep.problems.push(format!(
                    "log entry {} listed where {} was expected",
                    e.index,
                    entries.len()
                ));
                return finish(rep);
            }
            match rc::entry_of(e) {
                Ok(x) => {
                    leaves.push(x.leaf_hash());
                    entries.push(x);
                }
                Err(err) => {
                    rep.problems.push(format!(
                        "{err}: the entry was changed after it was logged (kind {}, content hash {}, \
                         arrived at {} µs, leaf hash {})",
                        e.kind,
                        hex::encode(&e.content_hash),
                        e.arrived_at,
                        hex::encode(&e.leaf_hash)
                    ));
                    let Ok(leaf) = <[u8; 32]>::try_from(&e.leaf_hash[..]) else {
                        return finish(rep);
                    };
                    leaves.push(leaf);
                    // Still in the listing, so the rest of the log is checked;
                    // what it claims to log is not trusted.
                    entries.push(Entry {
                        kind: Kind::Proof,
                        content_hash: [0; 32],
                        index: e.index,
                        arrived_at: e.arrived_at,
                    });
                    altered.insert(e.index);
                }
            }
            if entries.len() as u64 == head.head.tree_size {
                break;
            }
        }
    }
    rep.entries = entries.len() as u64;
    if leaves.len() as u64 == head.head.tree_size
        && tapvault_codec::log::root_of(&leaves) != head.head.root_hash
    {
        rep.problems.push(format!(
            "the {} listed entries do not hash to the signed root of size {} (the listing and the head disagree)",
            entries.len(),
            head.head.tree_size
        ));
    }

    // The log only grew since the saved head.
    if let Some(old) = &saved {
        rep.previous_head_size = Some(old.head.tree_size);
        let res = if old.head.tree_size > head.head.tree_size {
            Err(rc::LogError(format!(
                "the log shrank: the saved head has {} entries, the server's newest {}",
                old.head.tree_size, head.head.tree_size
            )))
        } else {
            let p = log
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    from_size: old.head.tree_size,
                    to_size: head.head.tree_size,
                })
                .await
                .map_err(|s| status_msg("GetConsistencyProof", s))?
                .into_inner();
            rc::verify_consistency(old, &head, &p.hashes)
        };
        if let Err(e) = res {
            rep.problems.push(e.to_string());
        }
    }

    // What is served, against what is logged.
    let served = served_items(&mut backup).await?;
    rep.items_served = served.len() as u64;
    let mut logged: HashMap<(Kind, [u8; 32]), u64> = HashMap::new();
    for e in entries.iter().filter(|e| !altered.contains(&e.index)) {
        logged.entry((e.kind, e.content_hash)).or_insert(e.index);
    }
    for (k, what) in &served {
        if !logged.contains_key(k) {
            rep.problems
                .push(format!("{what} is served but not in the log"));
        }
    }
    for e in entries.iter().filter(|e| !altered.contains(&e.index)) {
        if !served.contains_key(&(e.kind, e.content_hash)) {
            rep.problems.push(format!(
                "{} {} is in the log at index {} but not served",
                e.kind.name(),
                hex::encode(e.content_hash),
                e.index
            ));
        }
    }

    // Receipts handed out earlier.
    if let Some(p) = &a.receipts {
        let list: Vec<SavedReceipt> = serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{} is not a receipts file (a JSON list)", p.display()))?;
        for r in &list {
            rep.receipts_checked += 1;
            match leaves.get(r.index as usize) {
                Some(l) if hex::encode(l) == r.leaf_hash => {}
                Some(_) => rep.problems.push(format!(
                    "receipt for {}: the log holds a different entry at that index",
                    r.describe()
                )),
                None => rep.problems.push(format!(
                    "receipt for {}: the log has only {} entries",
                    r.describe(),
                    entries.len()
                )),
            }
        }
    }

    let rep = finish(rep)?;
    if rep.ok {
        if let (Some(p), Some(h)) = (&a.state, &rep.head) {
            std::fs::write(p, serde_json::to_vec_pretty(&State { head: h.clone() })?)
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(rep)
}

fn finish(mut rep: AuditReport) -> Result<AuditReport> {
    rep.ok = rep.problems.is_empty() && rep.head.is_some();
    Ok(rep)
}

/// Every item the tenant's read API serves, by (kind, content hash), each
/// hashed here from the bytes served; the value names it for a report.
async fn served_items(
    b: &mut tapvault_api::client::BackupClient,
) -> Result<BTreeMap<(Kind, [u8; 32]), String>> {
    let mut out = BTreeMap::new();
    // The largest page the server gives: offset paging rescans what it
    // skips, so fewer pages is what keeps a 100k-item audit in seconds.
    let page = 16_384;
    let mut offset = 0;
    loop {
        let r = b
            .list_leaves(pb::ListLeavesRequest {
                selector: Some(pb::list_leaves_request::Selector::All(true)),
                include_proofs: true,
                offset,
                limit: page,
            })
            .await
            .map_err(|s| status_msg("ListLeaves", s))?
            .into_inner();
        for l in &r.leaves {
            let h = sha256(&[&l.proof]);
            out.insert(
                (Kind::Proof, h),
                format!(
                    "proof {} (leaf {} version {})",
                    hex::encode(h),
                    hex::encode(&l.leaf_key),
                    l.version
                ),
            );
        }
        if (r.leaves.len() as i32) < page {
            break;
        }
        offset += page;
    }
    let mut offset = 0;
    loop {
        let r = b
            .list_wallet_backups(pb::ListWalletBackupsRequest { offset, limit: 512 })
            .await
            .map_err(|s| status_msg("ListWalletBackups", s))?
            .into_inner();
        for w in &r.backups {
            let blob = b
                .get_wallet_backup(pb::GetWalletBackupRequest {
                    id: w.id,
                    opaque: w.kind == "opaque",
                })
                .await
                .map_err(|s| status_msg("GetWalletBackup", s))?
                .into_inner()
                .backup;
            let h = sha256(&[&blob]);
            out.insert(
                (Kind::WalletBackup, h),
                format!("wallet backup {} ({})", w.id, hex::encode(h)),
            );
        }
        if r.backups.len() < 512 {
            break;
        }
        offset += 512;
    }
    let mut offset = 0;
    loop {
        let r = b
            .list_addresses(pb::ListAddressesRequest {
                key: vec![],
                offset,
                limit: page,
            })
            .await
            .map_err(|s| status_msg("ListAddresses", s))?
            .into_inner();
        for a in &r.addresses {
            out.insert(
                (Kind::Address, address_content_hash(&a.encoded)),
                format!("address {}", a.encoded),
            );
        }
        if !r.has_more {
            break;
        }
        offset += r.addresses.len() as i32;
    }
    let mut offset = 0;
    loop {
        let r = b
            .list_tapscripts(pb::ListTapscriptsRequest {
                key: vec![],
                offset,
                limit: page,
            })
            .await
            .map_err(|s| status_msg("ListTapscripts", s))?
            .into_inner();
        for t in &r.tapscripts {
            let leaves = tapvault_codec::log::tapscript_leaves(
                t.leaves
                    .iter()
                    .map(|l| (l.leaf_version as u8, l.script.as_slice())),
            );
            let root: [u8; 32] = t.root_hash.as_slice().try_into().unwrap_or([0; 32]);
            let raw: Option<[u8; 33]> = t.raw_key.as_slice().try_into().ok();
            let h = tapscript_content_hash(&root, raw.as_ref(), &leaves);
            out.insert(
                (Kind::Tapscript, h),
                format!(
                    "tapscript tree {} for key {}",
                    hex::encode(h),
                    hex::encode(&t.key_x)
                ),
            );
        }
        if !r.has_more {
            break;
        }
        offset += r.tapscripts.len() as i32;
    }
    Ok(out)
}

pub fn print(rep: &AuditReport) {
    match &rep.head {
        Some(h) => println!(
            "log head: {} entries, root {}, signed by {}",
            h.tree_size, h.root_hash, h.public_key
        ),
        None => println!("log head: none verified"),
    }
    println!(
        "checked {} entries, {} served items, {} receipts",
        rep.entries, rep.items_served, rep.receipts_checked
    );
    for p in &rep.problems {
        println!("PROBLEM: {p}");
    }
    println!("{}", if rep.ok { "audit: OK" } else { "audit: FAILED" });
}
