//! `tapvault agent` (run next to tapd) and `tapvault agent status`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use tapvault_agent::state::{now, StateStore};
use tapvault_agent::tapd::TapdConfig;
use tapvault_agent::AgentConfig;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AgentCmd {
    #[command(subcommand)]
    pub sub: Option<AgentSub>,
    #[command(flatten)]
    pub run: AgentArgs,
}

#[derive(Subcommand, Debug)]
pub enum AgentSub {
    /// What was pushed when, what failed, how far behind tapd it is.
    Status {
        /// The agent's data dir.
        #[arg(long, env = "TAPVAULT_AGENT_DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub remote: crate::remote::RemoteArgs,
    /// Where tapd reaches the relay (loopback; TLS with the agent's own
    /// self-signed certificate).
    #[arg(long, env = "TAPVAULT_AGENT_LISTEN", default_value = "127.0.0.1:10030")]
    pub listen: SocketAddr,
    /// The agent's data dir (relay certificate, state).
    #[arg(long, env = "TAPVAULT_AGENT_DIR")]
    pub data_dir: Option<PathBuf>,
    /// tapd's network (for its default macaroon path).
    #[arg(long, default_value = "mainnet")]
    pub network: String,
    /// tapd's directory (default ~/.tapd).
    #[arg(long)]
    pub tapd_dir: Option<PathBuf>,
    /// tapd's gRPC address.
    #[arg(long, default_value = "127.0.0.1:10029")]
    pub tapd_rpc: String,
    /// tapd's TLS certificate (default <tapd-dir>/tls.cert), pinned.
    #[arg(long)]
    pub tapd_cert: Option<PathBuf>,
    /// A tapd macaroon (default <tapd-dir>/data/<network>/admin.macaroon).
    #[arg(long)]
    pub tapd_macaroon: Option<PathBuf>,
    /// Relay only: do not collect from tapd.
    #[arg(long)]
    pub no_collect: bool,
    /// Seconds between collections when tapd sends no events.
    #[arg(long, default_value = "300")]
    pub poll_interval: u64,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn data_dir(d: &Option<PathBuf>) -> PathBuf {
    d.clone().unwrap_or_else(|| home().join(".tapvault-agent"))
}

pub async fn run(cmd: AgentCmd) -> Result<()> {
    match cmd.sub {
        Some(AgentSub::Status { data_dir: d }) => status(&data_dir(&d)),
        None => run_agent(cmd.run).await,
    }
}

async fn run_agent(a: AgentArgs) -> Result<()> {
    let token = a
        .remote
        .token()?
        .context("the agent needs the node's token (--token, --token-file or TAPVAULT_TOKEN)")?;
    let tapd_dir = a.tapd_dir.clone().unwrap_or_else(|| home().join(".tapd"));
    let tapd = (!a.no_collect).then(|| {
        let mut t = TapdConfig::defaults(&tapd_dir, &a.network);
        t.addr = a.tapd_rpc.clone();
        if let Some(c) = &a.tapd_cert {
            t.tls_cert = c.clone();
        }
        if let Some(m) = &a.tapd_macaroon {
            t.macaroon = m.clone();
        }
        t
    });
    let agent = tapvault_agent::start(AgentConfig {
        listen: a.listen,
        data_dir: data_dir(&a.data_dir),
        server: a.remote.server()?.to_string(),
        server_trust: a.remote.trust()?,
        token,
        tapd,
        poll_interval: std::time::Duration::from_secs(a.poll_interval.max(1)),
        tls_names: Vec::new(),
    })
    .await?;
    eprintln!(
        "relay on {} (certificate {}); point tapd's federation server / courier at it",
        agent.relay_addr,
        data_dir(&a.data_dir).join("tls.cert").display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => agent.wake.notify_one(),
        }
    }
    agent.shutdown().await;
    Ok(())
}

fn ago(t: i64) -> String {
    if t == 0 {
        return "never".into();
    }
    let d = (now() - t).max(0);
    match d {
        0..=119 => format!("{d}s ago"),
        120..=7199 => format!("{}m ago", d / 60),
        _ => format!("{}h ago", d / 3600),
    }
}

fn status(dir: &std::path::Path) -> Result<()> {
    let path = dir.join("agent-state.json");
    if !path.exists() {
        bail!("no agent state in {} (has the agent run?)", dir.display());
    }
    let s = StateStore::read(&path)?;
    match &s.wallet_backup {
        Some(p) => println!(
            "wallet backup: pushed {} (sha256 {})",
            ago(p.pushed_at),
            &p.sha256[..16]
        ),
        None if s.wallet_backup_unsupported => {
            println!("wallet backup: tapd has no backup RPC (< v0.8)")
        }
        None => println!("wallet backup: never pushed"),
    }
    println!(
        "addresses: {} pushed, newest {}",
        s.addresses.len(),
        ago(s.addresses.values().copied().max().unwrap_or(0))
    );
    println!(
        "proof files: {} outputs pushed, newest {}",
        s.proofs.len(),
        ago(s.proofs.values().map(|p| p.pushed_at).max().unwrap_or(0))
    );
    match &s.inventory {
        Some(i) => {
            let types: Vec<String> = i.by_type.iter().map(|(t, n)| format!("{n} {t}")).collect();
            println!(
                "inventory: {} outputs ({}), {} leased, pushed {}; {} unconfirmed transfers (collected once confirmed); {} without key locators",
                i.outputs,
                if types.is_empty() { "none".into() } else { types.join(", ") },
                i.leased,
                ago(i.at),
                i.unconfirmed_transfers,
                i.without_locators
            );
        }
        None => println!("inventory: never pushed"),
    }
    println!(
        "key locators: {} known ({} not pushed yet)",
        s.keys.len(),
        s.keys.values().filter(|k| !k.pushed).count()
    );
    println!(
        "relay: {} calls ok ({} pushes), {} failed, last ok {}",
        s.relay.calls_ok,
        s.relay.pushes_ok,
        s.relay.calls_failed,
        ago(s.relay.last_ok_at)
    );
    if let Some(e) = &s.relay.last_error {
        println!("  last relay error {}: {}", ago(e.at), e.error);
    }
    match &s.last_run {
        Some(r) => println!(
            "last collection: {} ({}), {} items pending; lag behind tapd: {}",
            ago(r.finished_at),
            if r.ok { "ok" } else { "FAILED" },
            r.pending,
            if r.ok {
                "none".to_string()
            } else {
                format!("last complete collection {}", ago(s.last_ok_run_at))
            }
        ),
        None => println!("last collection: never"),
    }
    for f in s.failures.iter().rev().take(5) {
        println!("  failure {}: {}: {}", ago(f.at), f.what, f.error);
    }
    let l = &s.log;
    if l.unsupported {
        println!("receipt log: the server has none (older tapvault); not audited");
    } else if l.last_audit_at == 0 {
        println!("receipt log: not audited yet");
    } else {
        println!(
            "receipt log: audited {}: {} receipts checked, head of {} entries, {} awaiting a receipt, {} failed audits so far",
            ago(l.last_audit_at),
            l.receipts_kept,
            l.head.as_ref().map(|h| h.tree_size).unwrap_or(0),
            l.awaiting.len(),
            l.failed_audits
        );
        for p in &l.problems {
            println!("  AUDIT PROBLEM: {p}");
        }
    }
    if !l.problems.is_empty() {
        // A server that lost or rewrote what it acknowledged: loud, and a
        // non-zero exit for whatever watches this command.
        eprintln!(
            "the server's receipt log failed the audit ({} problems)",
            l.problems.len()
        );
        std::process::exit(4);
    }
    Ok(())
}
