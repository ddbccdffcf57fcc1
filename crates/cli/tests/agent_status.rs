//! `tapvault agent status` reads the agent's state file.

use std::process::Command;
use tapvault_agent::state::{now, Pushed, RunInfo, StateStore};

#[test]
fn status_reports_pushes_failures_and_lag() {
    let dir = std::env::temp_dir().join(format!("tapvault-agent-status-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let st = StateStore::open(&dir).unwrap();
    // Ages are whole seconds from the clock when `status` runs: one that
    // ticks between writing the state and reading it adds a second, so
    // each age is checked against the window the command ran in.
    let t0 = now();
    st.update(|s| {
        s.wallet_backup = Some(Pushed {
            sha256: "ab".repeat(32),
            pushed_at: t0 - 30,
        });
        s.addresses.insert("taprt1…".into(), t0 - 10);
        s.addresses.insert("taprt1x…".into(), t0 - 5);
        s.relay.calls_ok = 5;
        s.relay.pushes_ok = 2;
        s.last_run = Some(RunInfo {
            started_at: now() - 3,
            finished_at: now() - 2,
            ok: false,
            pending: 1,
            error: Some("server: Unavailable".into()),
        });
    })
    .unwrap();
    st.record_failure(
        "push proof x:0/02ab",
        "server: Unavailable: connection refused",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["agent", "status", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let t1 = now();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // `fmt` of each age the command could have seen, at t0 or up to t1.
    let any = |fmt: &dyn Fn(i64) -> String, age_at_t0: i64| -> Vec<String> {
        (0..=t1 - t0).map(|d| fmt(age_at_t0 + d)).collect()
    };
    let wants: Vec<Vec<String>> = vec![
        any(&|a| format!("wallet backup: pushed {a}s ago"), 30),
        any(&|a| format!("addresses: 2 pushed, newest {a}s ago"), 5),
        vec!["proof files: 0 outputs pushed".into()],
        vec!["relay: 5 calls ok (2 pushes), 0 failed".into()],
        vec!["FAILED), 1 items pending; lag behind tapd: last complete collection never".into()],
        any(
            &|a| {
                format!(
                    "failure {a}s ago: push proof x:0/02ab: server: Unavailable: connection refused"
                )
            },
            0, // recorded after t0
        ),
    ];
    for want in wants {
        assert!(
            want.iter().any(|w| text.contains(w.as_str())),
            "missing {want:?} in:\n{text}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["agent", "status", "--data-dir"])
        .arg(dir.join("nope"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no agent state"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_receipt_audit_is_loud_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("tapvault-agent-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let st = StateStore::open(&dir).unwrap();
    st.update(|s| {
        s.log.last_audit_at = now() - 4;
        s.log.receipts_kept = 12;
        s.log.problems =
            vec!["address 6e14ab… is in the log at index 4 but is no longer stored".into()];
        s.log.failed_audits = 1;
    })
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["agent", "status", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("receipt log: audited 4s ago: 12 receipts checked"),
        "{text}"
    );
    assert!(
        text.contains(
            "AUDIT PROBLEM: address 6e14ab… is in the log at index 4 but is no longer stored"
        ),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed the audit"));
    // A clean audit exits 0.
    st.update(|s| s.log.problems.clear()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapvault"))
        .args(["agent", "status", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
