//! `tapvault push …`: hand the server what tapd does not push, from files
//! (what `tapcli assets backup export`, `tapcli addrs query` and `tapcli
//! proofs export` write).

use crate::remote::{status_msg, RemoteArgs};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use tapvault_api::proto::tapvault_v1 as v1;

#[derive(Subcommand, Debug)]
pub enum PushCmd {
    /// A TAPBAK wallet backup (or, with --opaque, an encrypted assets.backup file).
    WalletBackup {
        file: PathBuf,
        #[arg(long)]
        opaque: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// TAP addresses: one per line, or JSON from `tapcli addrs query`.
    Addresses {
        file: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// A proof file (TAPF), as `tapcli proofs export` writes it.
    ProofFile {
        file: PathBuf,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

fn read(p: &PathBuf) -> Result<Vec<u8>> {
    let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    // tapcli writes some files as hex text.
    let t = String::from_utf8_lossy(&b);
    let t = t.trim();
    if !t.is_empty() && t.len().is_multiple_of(2) && t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Ok(hex::decode(t)?);
    }
    Ok(b)
}

/// Address strings from a text file or `tapcli addrs query` JSON.
pub fn parse_addresses(text: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(list) = v["addrs"].as_array() {
            return list
                .iter()
                .filter_map(|a| a["encoded"].as_str().map(String::from))
                .collect();
        }
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

pub async fn run(cmd: PushCmd) -> Result<()> {
    match cmd {
        PushCmd::WalletBackup {
            file,
            opaque,
            remote,
        } => {
            let (mut b, _) = remote.clients()?;
            let r = b
                .push_wallet_backup(v1::PushWalletBackupRequest {
                    backup: if opaque {
                        std::fs::read(&file)?
                    } else {
                        read(&file)?
                    },
                    opaque,
                    source: "tapvault push".into(),
                })
                .await
                .map_err(|e| status_msg("pushing the wallet backup", e))?
                .into_inner();
            println!(
                "backup {}{}: version {}, {} assets, {} new proofs, {} already held",
                r.backup_id,
                if r.duplicate { " (already held)" } else { "" },
                r.version,
                r.num_assets,
                r.num_proofs_new,
                r.num_proofs_known
            );
        }
        PushCmd::Addresses { file, remote } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (mut b, _) = remote.clients()?;
            let r = b
                .push_addresses(v1::PushAddressesRequest {
                    addresses: parse_addresses(&text),
                    network: String::new(),
                })
                .await
                .map_err(|e| status_msg("pushing addresses", e))?
                .into_inner();
            println!("{} new addresses, {} already held", r.num_new, r.num_known);
        }
        PushCmd::ProofFile { file, remote } => {
            let (mut b, _) = remote.clients()?;
            let r = b
                .push_proof_file(v1::PushProofFileRequest {
                    proof_file: read(&file)?,
                })
                .await
                .map_err(|e| status_msg("pushing the proof file", e))?
                .into_inner();
            println!(
                "{} proofs: {} new, {} already held; chain {}",
                r.num_proofs,
                r.num_new,
                r.num_known,
                if r.complete { "complete" } else { "incomplete" }
            );
        }
    }
    Ok(())
}
