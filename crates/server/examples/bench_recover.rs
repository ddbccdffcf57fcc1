//! `tapvault recover` end to end, at growing sizes, to show how its cost
//! grows with the outputs of the backup and the leaves of the tenant:
//! `cargo build --release -p tapvault && cargo run --release -p tapvault-server --example bench_recover`
//!
//! Each point is a fresh tenant holding `leaves` proofs in all, pushed as v1
//! wallet backups (one genesis proof per output); the newest backup has
//! `outputs` outputs and is the one recovered. The proofs are the forged
//! ones of the other benches (the regtest genesis proof re-anchored with a
//! new script key and tag), so every recovered file passes `recover`'s full
//! verification (header and VM on) and the run must exit 0: the wall time
//! includes verification. `TAPVAULT_BENCH_BIG=1` adds the point:
//! 100,000 leaves and a 10,000-output backup.
//! Memory: the client's peak RSS (the `tapvault recover` process) and this
//! process's (the server, in process, and the bench).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};
use tapvault_api::client::{self, Trust};
use tapvault_server::proto::tapvault_v1 as v1;

fn backup_of(n: usize, tag: &str) -> Vec<u8> {
    use tapvault_codec::backup::{KeyDescriptorBackup, ScriptKeyBackup};
    let assets = common::forged(n, tag)
        .into_iter()
        .enumerate()
        .map(|(i, (raw, _))| {
            let p = tapvault_codec::Proof::decode(&raw).unwrap();
            let mut f = tapvault_codec::File::new();
            f.append_raw(raw);
            // Key locators as tapd writes them, so nothing is reported
            // missing and `recover` exits 0 only when every file verifies.
            let script_key = ScriptKeyBackup {
                pub_key: p.asset.script_key,
                family: 212,
                index: i as u32,
                raw_pub_key: Some(p.asset.script_key),
                tweak: None,
                unknown: Default::default(),
            };
            let internal = KeyDescriptorBackup {
                pub_key: p.inclusion_proof.internal_key,
                family: 212,
                index: n as u32 + i as u32,
                unknown: Default::default(),
            };
            tapvault_codec::AssetBackup::from_proof_file(&f, Some(script_key), Some(internal))
                .unwrap()
        })
        .collect();
    tapvault_codec::WalletBackup {
        version: 1,
        federation_urls: vec![],
        assets,
    }
    .encode()
}

/// Peak resident memory of this process, in MiB.
fn own_peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs `cmd`: its wall time, exit status, and the peak RSS in MiB of the
/// largest child waited for so far (getrusage(RUSAGE_CHILDREN)).
fn timed(cmd: &mut std::process::Command) -> (Duration, f64, std::process::ExitStatus) {
    let t0 = Instant::now();
    // TAPVAULT_BENCH_VERBOSE=1: recover's own log (RUST_LOG=tapvault=debug
    // shows its phases).
    let verbose = std::env::var_os("TAPVAULT_BENCH_VERBOSE").is_some();
    let out = || match verbose {
        true => std::process::Stdio::inherit(),
        false => std::process::Stdio::null(),
    };
    let status = cmd.stdout(out()).stderr(out()).status().unwrap();
    let took = t0.elapsed();
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the out-pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    (took, ru.ru_maxrss as f64 / 1024.0, status)
}

#[tokio::main]
async fn main() {
    let big = std::env::var("TAPVAULT_BENCH_BIG").is_ok();
    let bin = common::tapvault_bin()
        .expect("build `tapvault` in the same profile first (cargo build --release -p tapvault)");
    let srv = common::server("recover", &[], |c| {
        c.verify = tapvault_server::VerifyLevel::Full
    })
    .await;
    let running = &srv.running;
    let addr = srv.addr();

    let mut points: Vec<(usize, usize)> = vec![(1_000, 1_000), (4_000, 4_000), (8_000, 8_000)];
    if std::env::var("TAPVAULT_BENCH_BIG").as_deref() == Ok("only") {
        points.clear();
    }
    if big {
        points.push((100_000, 10_000));
    }
    println!("| tenant leaves | backup outputs | recover wall time (verification included) | per output | client peak RSS | server+bench peak RSS |");
    println!("|---|---|---|---|---|---|");
    for (i, (leaves, outputs)) in points.into_iter().enumerate() {
        let tenant = format!("r{i}");
        tapvault_store::db::ensure_tenant(&running.db.pool, &tenant)
            .await
            .unwrap();
        let token = srv.token(&tenant).await;
        let ch = client::channel(&addr, &Trust::Plaintext).unwrap();
        let (mut b, _) = client::clients(ch, Some(&token)).unwrap();
        // Older backups first (10,000 outputs each), the recovered one last.
        let mut rest = leaves - outputs;
        let mut k = 0;
        while rest > 0 {
            let n = rest.min(10_000);
            b.push_wallet_backup(v1::PushWalletBackupRequest {
                backup: backup_of(n, &format!("{tenant}-old-{k}")),
                opaque: false,
                source: "bench".into(),
            })
            .await
            .unwrap();
            rest -= n;
            k += 1;
        }
        b.push_wallet_backup(v1::PushWalletBackupRequest {
            backup: backup_of(outputs, &format!("{tenant}-new")),
            opaque: false,
            source: "bench".into(),
        })
        .await
        .unwrap();
        let out = srv.dir.join(format!("out-{i}"));
        let (took, client_mib, status) = timed(
            std::process::Command::new(&bin)
                .args(["recover", "--plaintext", "--quiet", "--server"])
                .arg(&addr)
                .arg("--out")
                .arg(&out)
                .env("TAPVAULT_TOKEN", &token),
        );
        // Exit 0: every file recovered and verified, nothing missing.
        assert!(
            status.success() && out.join("report.json").exists(),
            "recover did not recover everything: {status}"
        );
        let per = took / outputs as u32;
        println!(
            "| {leaves} | {outputs} | {took:.2?} | {per:.2?} | {client_mib:.0} MiB | {:.0} MiB |",
            own_peak_mib()
        );
    }
    srv.stop().await;
}
