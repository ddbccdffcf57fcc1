//! The `tapvault` binary.

mod admin_cmd;
mod agent_cmd;
mod audit_cmd;
mod export_cmd;
mod input;
mod mssmt_cmd;
mod outdir;
mod proof_cmd;
mod push_cmd;
mod recover_cmd;
mod remote;
mod serve_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tapvault",
    version,
    about = "A self-hosted personal backup universe for Taproot Assets"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the tapvault server (universe RPC over gRPC, health/metrics over HTTP).
    Serve(serve_cmd::ServeArgs),
    /// Run next to tapd: relay its universe calls with the node's token,
    /// push what tapd never pushes. `agent status` shows how it is doing.
    Agent(agent_cmd::AgentCmd),
    /// Issue and revoke access tokens.
    #[command(subcommand)]
    Token(admin_cmd::TokenCmd),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(admin_cmd::TenantCmd),
    /// Work with proofs and proof files.
    #[command(subcommand)]
    Proof(ProofCmd),
    /// Rebuild a TAPBAK that tapd imports, proof files, addresses and
    /// tapscript trees from the server; verify everything; report gaps.
    Recover(recover_cmd::RecoverArgs),
    /// Check the tenant's receipt log: signed head, every entry, every
    /// served item logged and every entry served, consistency with a saved
    /// head, receipts. Exit 0 only when all holds.
    Audit(audit_cmd::AuditArgs),
    /// Push a wallet backup, addresses or a proof file to a server.
    #[command(subcommand)]
    Push(push_cmd::PushCmd),
    /// Write everything a tenant holds to one verified, checksummed file.
    Export(export_cmd::ExportArgs),
    /// Load an export file into a tenant (verifies everything first).
    Import(export_cmd::ImportArgs),
    /// MS-SMT interop checks.
    #[command(subcommand)]
    Mssmt(MssmtCmd),
    /// Check a database against itself: proof and backup checksums, leaf
    /// hashes, heads and versions, ancestry flags, every root against a
    /// recomputation, usage counters. Exit 0 only when all holds.
    Fsck {
        #[command(flatten)]
        store: admin_cmd::StoreArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ProofCmd {
    /// Decode a proof (TAPP) or proof file (TAPF), raw or hex, and print JSON.
    Decode {
        /// Path, or `-` for stdin.
        input: String,
    },
    /// Verify a proof or proof file offline; print a per-check report.
    Verify {
        /// Path, or `-` for stdin.
        input: String,
        /// How much to verify, in `serve --verify`'s words: full, full-vm
        /// (every witness through the Taproot Assets VM; a transfer's input
        /// must be in the same file), no-header (placeholder headers).
        #[arg(long, default_value = "full", conflicts_with_all = ["no_header", "vm"])]
        level: tapvault_verify::VerifyLevel,
        /// Shorthand for `--level no-header`.
        #[arg(long)]
        no_header: bool,
        /// Shorthand for `--level full-vm`.
        #[arg(long)]
        vm: bool,
    },
}

#[derive(Subcommand)]
enum MssmtCmd {
    /// Read `KEY_HEX VALUE_HEX SUM` lines from stdin; print root hash and sum.
    Root,
    /// Same input; print the compressed inclusion/exclusion proof for KEY_HEX.
    Proof { key: String },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Token(c) => tokio::runtime::Runtime::new()?.block_on(admin_cmd::token(c))?,
        Cmd::Tenant(c) => tokio::runtime::Runtime::new()?.block_on(admin_cmd::tenant(c))?,
        Cmd::Serve(a) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(serve_cmd::run(a))?;
        }
        Cmd::Agent(c) => tokio::runtime::Runtime::new()?.block_on(agent_cmd::run(c))?,
        Cmd::Push(c) => tokio::runtime::Runtime::new()?.block_on(push_cmd::run(c))?,
        Cmd::Export(a) => tokio::runtime::Runtime::new()?.block_on(export_cmd::export(a))?,
        Cmd::Import(a) => tokio::runtime::Runtime::new()?.block_on(export_cmd::import(a))?,
        Cmd::Recover(a) => {
            let out = a.out.clone();
            let rep = tokio::runtime::Runtime::new()?.block_on(recover_cmd::run(a))?;
            recover_cmd::print_summary(&rep, &out);
            if !rep.ok {
                std::process::exit(3);
            }
        }
        Cmd::Proof(ProofCmd::Decode { input }) => {
            let v = proof_cmd::decode(&input)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Proof(ProofCmd::Verify {
            input,
            level,
            no_header,
            vm,
        }) => {
            use tapvault_verify::VerifyLevel;
            let level = match (no_header, vm) {
                (true, true) => anyhow::bail!("--no-header and --vm: use --level"),
                (true, false) => VerifyLevel::NoHeader,
                (false, true) => VerifyLevel::FullVm,
                (false, false) => level,
            };
            let Some(opts) = level.options() else {
                anyhow::bail!(
                    "proof verify needs a level that verifies (full, full-vm, no-header)"
                );
            };
            let (report, ok) = proof_cmd::verify(&input, opts.header, opts.vm)?;
            print!("{report}");
            if !ok {
                std::process::exit(2);
            }
        }
        Cmd::Audit(a) => {
            let rep = tokio::runtime::Runtime::new()?.block_on(audit_cmd::run(&a))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                audit_cmd::print(&rep);
            }
            if !rep.ok {
                std::process::exit(3);
            }
        }
        Cmd::Fsck { store, json } => {
            let (checked, findings) =
                tokio::runtime::Runtime::new()?
                    .block_on(admin_cmd::with_db(&store, async |db, _| {
                        Ok(tapvault_store::fsck::fsck(db).await?)
                    }))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "clean": findings.is_empty(),
                        "checked": checked,
                        "findings": findings,
                    }))?
                );
            } else {
                for f in &findings {
                    println!("{}\t{}\t{}", f.tenant, f.check, f.detail);
                }
                eprintln!(
                    "fsck: {} tenants, {} proofs, {} leaf versions, {} heads, {} universes, {} wallet backups: {}",
                    checked.tenants,
                    checked.proofs,
                    checked.leaves,
                    checked.heads,
                    checked.universes,
                    checked.wallet_backups,
                    if findings.is_empty() {
                        "clean".to_string()
                    } else {
                        format!("{} problems", findings.len())
                    }
                );
            }
            if !findings.is_empty() {
                std::process::exit(4);
            }
        }
        Cmd::Mssmt(MssmtCmd::Root) => {
            let leaves = mssmt_cmd::parse_leaves(std::io::stdin().lock())?;
            let mut t = mssmt_cmd::build(leaves)?;
            let root = t.root().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{} {}", hex::encode(root.hash), root.sum);
        }
        Cmd::Mssmt(MssmtCmd::Proof { key }) => {
            let key = mssmt_cmd::parse_key(&key)?;
            let leaves = mssmt_cmd::parse_leaves(std::io::stdin().lock())?;
            let mut t = mssmt_cmd::build(leaves)?;
            let p = t.proof(&key).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", hex::encode(p.compress().encode()));
        }
    }
    Ok(())
}
