//! `tapvault export` / `tapvault import`: one self-describing, checksummed
//! file with everything a tenant holds. Import verifies every item before
//! it writes anything, then writes all of it in one transaction.

use crate::admin_cmd::{with_db, StoreArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tapvault_server::checks::{address_row, check_tapscript, prepare_tapbak};
use tapvault_server::checks::{prepare, VerifyLevel};
use tapvault_store::export::{self, Export, Prepared};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The tenant to export.
    #[arg(long)]
    pub tenant: String,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The export file.
    pub file: PathBuf,
    /// Import into this tenant (default: the one named in the file).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Import into a tenant that already holds data (items already there
    /// are skipped).
    #[arg(long)]
    pub merge: bool,
    /// How much to verify: full, no-header.
    #[arg(long, default_value = "full")]
    pub verify: VerifyLevel,
    #[command(flatten)]
    pub store: StoreArgs,
}

async fn tenant_id(
    db: &tapvault_store::Db,
    name: &str,
) -> Result<Option<tapvault_store::TenantId>> {
    Ok(tapvault_store::tenants::tenant_id(db, name).await?)
}

pub async fn export(a: ExportArgs) -> Result<()> {
    with_db(&a.store, async |db, _| {
        let id = tenant_id(db, &a.tenant)
            .await?
            .with_context(|| format!("no tenant {:?}", a.tenant))?;
        // One snapshot, so the file is consistent even while pushes land.
        let mut tx = tapvault_store::universe::snapshot(db).await?;
        let ex = export::read_tenant(&mut tx, id, &a.tenant).await?;
        tx.commit().await?;
        let bytes = ex.encode();
        let tmp = a.out.with_extension("partial");
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &a.out)?;
        eprintln!(
            "exported tenant {:?}: {} proofs, {} wallet backups, {} addresses, {} tapscript trees ({} bytes) to {}",
            a.tenant,
            ex.proofs.len(),
            ex.backups.len(),
            ex.addresses.len(),
            ex.tapscripts.len(),
            bytes.len(),
            a.out.display()
        );
        Ok(())
    })
    .await
}

/// Verifies everything in an export; what to write.
pub fn prepare_import(ex: &Export, level: VerifyLevel) -> Result<Prepared> {
    let mut leaves = Vec::with_capacity(ex.proofs.len());
    for (i, p) in ex.proofs.iter().enumerate() {
        let (_, mut leaf) =
            prepare(&p.raw, level).map_err(|e| anyhow::anyhow!("proof {i}: {e}"))?;
        leaf.received_at = Some(p.received_at);
        leaves.push(leaf);
    }
    let mut backups = Vec::with_capacity(ex.backups.len());
    for (i, b) in ex.backups.iter().enumerate() {
        let mut nb = if b.kind == "opaque" {
            tapvault_store::backup::NewBackup {
                kind: "opaque",
                version: None,
                sha256: tapvault_codec::primitives::sha256(&[&b.raw]),
                raw: b.raw.clone(),
                source: String::new(),
                received_at: None,
                entries: Vec::new(),
                leaves: Vec::new(),
            }
        } else {
            prepare_tapbak(&b.raw, level)
                .map_err(|e| anyhow::anyhow!("wallet backup {i}: {e}"))?
                .1
        };
        nb.source = b.source.clone();
        nb.received_at = Some(b.received_at);
        backups.push(nb);
    }
    let mut addresses = Vec::with_capacity(ex.addresses.len());
    for (i, (s, at)) in ex.addresses.iter().enumerate() {
        let (_, mut row) = address_row(s).map_err(|e| anyhow::anyhow!("address {i}: {e}"))?;
        row.received_at = Some(*at);
        addresses.push(row);
    }
    for (i, t) in ex.tapscripts.iter().enumerate() {
        check_tapscript(t).map_err(|e| anyhow::anyhow!("tapscript tree {i}: {e}"))?;
    }
    Ok(Prepared {
        leaves,
        backups,
        addresses,
        tapscripts: ex.tapscripts.clone(),
        log: ex.log.clone(),
    })
}

pub async fn import(a: ImportArgs) -> Result<()> {
    if a.verify == VerifyLevel::DecodeOnly {
        bail!("import always verifies: use --verify full or no-header");
    }
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let ex = Export::decode(&bytes).with_context(|| format!("reading {}", a.file.display()))?;
    let name = match &a.tenant {
        Some(t) => t.clone(),
        None => ex.manifest["tenant"]
            .as_str()
            .context("the file names no tenant: give --tenant")?
            .to_string(),
    };
    // The rules `tenant add` and Admin.AddTenant apply, before anything else.
    tapvault_server::auth::check_tenant_name(&name).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            if a.tenant.is_none() {
                " (named by the file's manifest; give --tenant to import under another name)"
            } else {
                ""
            }
        )
    })?;
    let level = a.verify;
    let prepared =
        tokio::task::spawn_blocking(move || prepare_import(&ex, level).map(|p| (p, ex))).await??;
    let (prepared, ex) = prepared;
    with_db(&a.store, async |db, _| {
        let mut prepared = prepared;
        let merged = a.merge && !prepared.log.is_empty();
        if a.merge {
            // A log cannot be spliced into another: merged items get new
            // entries in import order.
            prepared.log.clear();
        }
        // The tenant is created in the import's transaction: a refused or
        // failed import leaves none behind.
        export::import_tenant(db, &name, a.merge, &prepared)
            .await
            .map_err(|e| match e {
                export::ImportError::NotEmpty(_) => anyhow::anyhow!("{e}"),
                export::ImportError::Store(s) => anyhow::Error::new(s)
                    .context("the import was not stored (nothing of it was written)"),
            })?;
        eprintln!(
            "imported into tenant {name:?}: {} proofs, {} wallet backups, {} addresses, {} tapscript trees",
            ex.proofs.len(),
            ex.backups.len(),
            ex.addresses.len(),
            ex.tapscripts.len()
        );
        if merged {
            eprintln!("receipt log: merged items got new entries in this tenant's log (the file's log of {} entries was not carried over)", ex.log.len());
        } else if prepared.log.is_empty() {
            eprintln!("receipt log: the file carries none (an older export): the imported items were logged afresh, in import order");
        } else {
            let leaves: Vec<[u8; 32]> = prepared.log.iter().map(|e| e.leaf_hash()).collect();
            eprintln!(
                "receipt log: {} entries carried over verbatim (root {} at size {}, as exported); this server signs its heads with its own log key",
                prepared.log.len(),
                hex::encode(tapvault_codec::log::root_of(&leaves)),
                prepared.log.len()
            );
        }
        Ok(())
    })
    .await
}
