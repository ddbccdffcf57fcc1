//! Prometheus metrics: plain atomics rendered in the text format, so several
//! servers can live in one process (tests) without a global recorder.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tapvault_store::universe::InsertOutcome;

const BUCKETS_MS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 500.0, 2000.0];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; 10],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
    fn render(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {}",
                b / 1000.0,
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let c = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {c}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {c}");
    }
}

#[derive(Default)]
pub struct Metrics {
    inserts_new: AtomicU64,
    inserts_version: AtomicU64,
    inserts_duplicate: AtomicU64,
    rejected: AtomicU64,
    backups_new: AtomicU64,
    backups_duplicate: AtomicU64,
    insert_latency: Histogram,
    query_latency: Histogram,
    /// The gRPC accept loop's counters.
    pub conn: std::sync::Arc<crate::listener::ConnStats>,
    /// The HTTP port's.
    pub http_conn: std::sync::Arc<crate::listener::ConnStats>,
}

impl Metrics {
    pub fn observe_insert(&self, d: Duration, o: InsertOutcome) {
        match o {
            InsertOutcome::New => &self.inserts_new,
            InsertOutcome::NewVersion => &self.inserts_version,
            InsertOutcome::Duplicate => &self.inserts_duplicate,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.insert_latency.observe(d);
    }
    pub fn record_backup(&self, duplicate: bool) {
        if duplicate {
            &self.backups_duplicate
        } else {
            &self.backups_new
        }
        .fetch_add(1, Ordering::Relaxed);
    }
    pub fn inc_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
    pub fn observe_query(&self, d: Duration) {
        self.query_latency.observe(d);
    }
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# TYPE tapvault_proofs_inserted_total counter");
        for (k, v) in [
            ("new", &self.inserts_new),
            ("new_version", &self.inserts_version),
            ("duplicate", &self.inserts_duplicate),
        ] {
            let _ = writeln!(
                s,
                "tapvault_proofs_inserted_total{{outcome=\"{k}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(s, "# TYPE tapvault_proofs_rejected_total counter");
        let _ = writeln!(
            s,
            "tapvault_proofs_rejected_total {}",
            self.rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(s, "# TYPE tapvault_wallet_backups_pushed_total counter");
        for (k, v) in [
            ("new", &self.backups_new),
            ("duplicate", &self.backups_duplicate),
        ] {
            let _ = writeln!(
                s,
                "tapvault_wallet_backups_pushed_total{{outcome=\"{k}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        self.insert_latency
            .render("tapvault_insert_proof_seconds", &mut s);
        self.query_latency
            .render("tapvault_query_proof_seconds", &mut s);
        for (name, v) in [
            (
                "tapvault_grpc_accept_errors_total",
                &self.conn.accept_errors,
            ),
            (
                "tapvault_grpc_handshake_timeouts_total",
                &self.conn.handshake_timeouts,
            ),
            (
                "tapvault_grpc_connection_cap_reached_total",
                &self.conn.cap_reached,
            ),
            (
                "tapvault_http_handshake_timeouts_total",
                &self.http_conn.handshake_timeouts,
            ),
            (
                "tapvault_http_connection_cap_reached_total",
                &self.http_conn.cap_reached,
            ),
        ] {
            let _ = writeln!(s, "# TYPE {name} counter");
            let _ = writeln!(s, "{name} {}", v.load(Ordering::Relaxed));
        }
        s
    }
}
