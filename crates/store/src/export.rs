//! One file with everything a tenant holds (`tapvault export` / `import`):
//! for moving servers or cold storage.
//!
//! Layout: `"TVEXPORT" ‖ u32 BE format version ‖ records ‖ SHA-256 of all
//! before`. A record is `BigSize kind ‖ BigSize length ‖ payload`; kind 0
//! (first, once) is a JSON manifest, so the file says what it is. Proofs
//! keep their insertion order, so importing reproduces leaf versions.

use crate::backup::{self as sb, TapscriptRow};
use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use crate::universe::{insert_leaves_tx, NewLeaf};
use sqlx::PgConnection;
use tapvault_codec::primitives::sha256;
use tapvault_codec::tlv::{write_bigsize, write_var_bytes, Reader};

pub const MAGIC: [u8; 8] = *b"TVEXPORT";
/// Version 2 adds the receipt log (one record per entry); version 1 files
/// (no log) are still read.
pub const FORMAT_VERSION: u32 = 2;

const KIND_MANIFEST: u64 = 0;
const KIND_PROOF: u64 = 1;
const KIND_BACKUP: u64 = 2;
const KIND_ADDRESS: u64 = 3;
const KIND_TAPSCRIPT: u64 = 4;
const KIND_LOG: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("not a tapvault export (bad magic)")]
    BadMagic,
    #[error("unsupported export format version {0} (this build reads {FORMAT_VERSION})")]
    Version(u32),
    #[error("checksum mismatch: the export file is corrupted or was altered")]
    Checksum,
    #[error("malformed export: {0}")]
    Malformed(String),
}

/// A stored backup blob as exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedBackup {
    /// "tapbak" or "opaque".
    pub kind: String,
    pub source: String,
    pub raw: Vec<u8>,
    pub received_at: Timestamp,
}

/// A proof version as exported: its bytes and when it was received (in the
/// file: unix microseconds, big-endian).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedProof {
    pub raw: Vec<u8>,
    pub received_at: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Export {
    pub manifest: serde_json::Value,
    pub proofs: Vec<ExportedProof>,
    pub backups: Vec<ExportedBackup>,
    /// Address string and when it was received.
    pub addresses: Vec<(String, Timestamp)>,
    pub tapscripts: Vec<TapscriptRow>,
    /// The tenant's receipt log, in index order (empty in version 1 files).
    pub log: Vec<tapvault_codec::log::Entry>,
}

fn record(out: &mut Vec<u8>, kind: u64, payload: &[u8]) {
    write_bigsize(out, kind);
    write_var_bytes(out, payload);
}

impl Export {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        record(
            &mut out,
            KIND_MANIFEST,
            self.manifest.to_string().as_bytes(),
        );
        for p in &self.proofs {
            let mut v = p.received_at.micros().to_be_bytes().to_vec();
            v.extend_from_slice(&p.raw);
            record(&mut out, KIND_PROOF, &v);
        }
        for b in &self.backups {
            let mut v = vec![u8::from(b.kind == "opaque")];
            v.extend_from_slice(&b.received_at.micros().to_be_bytes());
            write_var_bytes(&mut v, b.source.as_bytes());
            v.extend_from_slice(&b.raw);
            record(&mut out, KIND_BACKUP, &v);
        }
        for (a, at) in &self.addresses {
            let mut v = at.micros().to_be_bytes().to_vec();
            v.extend_from_slice(a.as_bytes());
            record(&mut out, KIND_ADDRESS, &v);
        }
        for t in &self.tapscripts {
            let mut v = t.key_x.to_vec();
            write_var_bytes(&mut v, t.raw_key.as_ref().map(|k| &k[..]).unwrap_or(&[]));
            v.extend_from_slice(&t.root_hash);
            write_var_bytes(&mut v, &t.leaves);
            v.extend_from_slice(&t.received_at.unwrap_or_default().micros().to_be_bytes());
            v.extend_from_slice(t.label.as_bytes());
            record(&mut out, KIND_TAPSCRIPT, &v);
        }
        for e in &self.log {
            record(&mut out, KIND_LOG, &e.encode());
        }
        let sum = sha256(&[&out]);
        out.extend_from_slice(&sum);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Export, ExportError> {
        if !b.starts_with(&MAGIC) {
            return Err(ExportError::BadMagic);
        }
        if b.len() < MAGIC.len() + 4 + 32 {
            return Err(ExportError::Malformed("file is truncated".into()));
        }
        let (body, sum) = b.split_at(b.len() - 32);
        if sha256(&[body]) != sum {
            return Err(ExportError::Checksum);
        }
        let m = |e: tapvault_codec::DecodeError| ExportError::Malformed(e.to_string());
        let mut r = Reader::new(&body[MAGIC.len()..]);
        let v = r.u32_be().map_err(m)?;
        if v != FORMAT_VERSION && v != 1 {
            return Err(ExportError::Version(v));
        }
        // A time outside what PostgreSQL (and any real clock) holds is a
        // crafted file: refused here, never handed to the database.
        let time = |pr: &mut Reader<'_>, what: &str| {
            let us = pr.u64_be().map_err(m)? as i64;
            let t = Timestamp::from_micros(us);
            if t.in_range() {
                Ok(t)
            } else {
                Err(ExportError::Malformed(format!(
                    "{what}: time {us} µs is not between the years 1 and 9999"
                )))
            }
        };
        let mut ex = Export::default();
        let mut first = true;
        while !r.is_empty() {
            let kind = r.bigsize().map_err(m)?;
            let payload = r.var_bytes(u64::MAX).map_err(m)?;
            if first != (kind == KIND_MANIFEST) {
                return Err(ExportError::Malformed(
                    "the manifest must be the first record, once".into(),
                ));
            }
            first = false;
            let utf8 = |p: &[u8], what: &str| {
                String::from_utf8(p.to_vec())
                    .map_err(|_| ExportError::Malformed(format!("{what} is not UTF-8")))
            };
            match kind {
                KIND_MANIFEST => {
                    ex.manifest = serde_json::from_slice(payload)
                        .map_err(|e| ExportError::Malformed(format!("manifest is not JSON: {e}")))?
                }
                KIND_PROOF => {
                    let mut pr = Reader::new(payload);
                    let received_at = time(&mut pr, "proof")?;
                    ex.proofs.push(ExportedProof {
                        received_at,
                        raw: pr.take(pr.remaining() as u64).map_err(m)?.to_vec(),
                    });
                }
                KIND_BACKUP => {
                    let mut pr = Reader::new(payload);
                    let opaque = pr.u8().map_err(m)?;
                    let received_at = time(&mut pr, "wallet backup")?;
                    let source = utf8(pr.var_bytes(4096).map_err(m)?, "backup source")?;
                    let raw = pr.take(pr.remaining() as u64).map_err(m)?.to_vec();
                    ex.backups.push(ExportedBackup {
                        kind: if opaque == 1 { "opaque" } else { "tapbak" }.into(),
                        source,
                        raw,
                        received_at,
                    });
                }
                KIND_ADDRESS => {
                    let mut pr = Reader::new(payload);
                    let at = time(&mut pr, "address")?;
                    let a = utf8(pr.take(pr.remaining() as u64).map_err(m)?, "address")?;
                    ex.addresses.push((a, at));
                }
                KIND_TAPSCRIPT => {
                    let mut pr = Reader::new(payload);
                    let key_x = pr.array::<32>().map_err(m)?;
                    let rk = pr.var_bytes(33).map_err(m)?;
                    let raw_key = match rk.len() {
                        0 => None,
                        33 => Some(rk.try_into().unwrap_or([0; 33])),
                        n => return Err(ExportError::Malformed(format!("raw key of {n} bytes"))),
                    };
                    let root_hash = pr.array::<32>().map_err(m)?;
                    let leaves = pr.var_bytes(u64::MAX).map_err(m)?.to_vec();
                    let received_at = Some(time(&mut pr, "tapscript tree")?);
                    let label = utf8(pr.take(pr.remaining() as u64).map_err(m)?, "label")?;
                    ex.tapscripts.push(TapscriptRow {
                        key_x,
                        raw_key,
                        root_hash,
                        leaves,
                        label,
                        received_at,
                    });
                }
                KIND_LOG => {
                    let e = tapvault_codec::log::Entry::decode(payload)
                        .map_err(|e| ExportError::Malformed(format!("receipt log: {e}")))?;
                    if !Timestamp::from_micros(e.arrived_at).in_range() {
                        return Err(ExportError::Malformed(format!(
                            "receipt log entry {}: time {} µs is not between the years 1 and 9999",
                            e.index, e.arrived_at
                        )));
                    }
                    ex.log.push(e)
                }
                k => return Err(ExportError::Malformed(format!("unknown record kind {k}"))),
            }
        }
        if first {
            return Err(ExportError::Malformed("no manifest".into()));
        }
        Ok(ex)
    }
}

/// Reads everything tenant `tenant` (named `name`) holds.
pub async fn read_tenant(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
) -> Result<Export, StoreError> {
    let proofs = sb::all_proofs(conn, tenant)
        .await?
        .into_iter()
        .map(|(raw, received_at)| ExportedProof { raw, received_at })
        .collect::<Vec<_>>();
    let backups = sb::all_backups(conn, tenant)
        .await?
        .into_iter()
        .map(|(kind, source, raw, received_at)| ExportedBackup {
            kind,
            source,
            raw,
            received_at,
        })
        .collect::<Vec<_>>();
    let addresses = sb::list_addresses(conn, tenant, None, 0, i64::MAX)
        .await?
        .into_iter()
        .map(|a| (a.encoded, a.received_at.unwrap_or_default()))
        .collect::<Vec<_>>();
    let tapscripts = sb::list_tapscripts(conn, tenant, None, 0, i64::MAX).await?;
    let log = crate::log::entries(conn, tenant, 0, u64::MAX >> 1).await?;
    let manifest = serde_json::json!({
        "format": "tapvault-export",
        "format_version": FORMAT_VERSION,
        "tenant": name,
        "tapvault_version": env!("CARGO_PKG_VERSION"),
        "proofs": proofs.len(),
        "wallet_backups": backups.len(),
        "addresses": addresses.len(),
        "tapscripts": tapscripts.len(),
        "log_entries": log.len(),
        "log_root": hex::encode(tapvault_codec::log::root_of(
            &log.iter().map(|e| e.leaf_hash()).collect::<Vec<_>>()
        )),
    });
    Ok(Export {
        manifest,
        proofs,
        backups,
        addresses,
        tapscripts,
        log,
    })
}

/// Everything of an export, already verified, ready to write.
pub struct Prepared {
    /// One per proof, in the export's order.
    pub leaves: Vec<NewLeaf>,
    pub backups: Vec<sb::NewBackup>,
    pub addresses: Vec<sb::AddressRow>,
    pub tapscripts: Vec<TapscriptRow>,
    /// The exported receipt log to carry over verbatim (empty: the import
    /// gets a fresh log in import order).
    pub log: Vec<tapvault_codec::log::Entry>,
}

/// Whether the tenant holds anything yet.
pub async fn tenant_is_empty(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<bool, StoreError> {
    let h = sb::holdings(conn, tenant).await?;
    Ok(h.proofs == 0
        && h.backups == 0
        && h.opaque_backups == 0
        && h.addresses == 0
        && h.tapscripts == 0)
}

/// Why an import into a named tenant was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("tenant {0:?} already holds data: import into an empty tenant, or pass --merge")]
    NotEmpty(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the tenant (if new) and writes a prepared import, in one
/// transaction: a refused or failed import leaves no tenant behind. The
/// caller has checked the name.
pub async fn import_tenant(
    db: &Db,
    name: &str,
    merge: bool,
    p: &Prepared,
) -> Result<TenantId, ImportError> {
    let mut tx = db.pool.begin().await.map_err(StoreError::from)?;
    let id: TenantId = sqlx::query_scalar(
        "INSERT INTO tenants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if !merge && !tenant_is_empty(&mut tx, id).await? {
        return Err(ImportError::NotEmpty(name.to_string()));
    }
    write_tenant_tx(&mut tx, db, id, p).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Writes a prepared import in the caller's transaction.
async fn write_tenant_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    db: &Db,
    tenant: TenantId,
    p: &Prepared,
) -> Result<(), StoreError> {
    if !p.log.is_empty() {
        crate::log::begin_replay(tx).await?;
    }
    // One leaf per call, as live ingestion files them: versions come out
    // the same.
    for l in &p.leaves {
        insert_leaves_tx(tx, db, tenant, std::slice::from_ref(l)).await?;
    }
    for b in &p.backups {
        sb::insert_backup_tx(tx, db, tenant, b).await?;
    }
    sb::insert_addresses_tx(tx, tenant, &p.addresses).await?;
    for t in &p.tapscripts {
        sb::insert_tapscript_conn(tx, tenant, t).await?;
    }
    if !p.log.is_empty() {
        crate::log::replay(tx, tenant, &p.log).await?;
    }
    Ok(())
}
