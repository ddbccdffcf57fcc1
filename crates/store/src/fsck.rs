//! `tapvault fsck`: checks a database against itself. Every stored byte has
//! a checksum or a derivation, so anything changed, lost or half-written
//! behind the server's back shows up as a disagreement.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::universe::{tree_root, type_from_code};
use std::collections::BTreeMap;
use tapvault_codec::universe::{multiverse_leaf, universe_namespace};
use tapvault_mssmt::{LeafUpdate, MemTree, Node};

/// One disagreement found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub tenant: String,
    pub check: &'static str,
    pub detail: String,
}

/// What was looked at.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Checked {
    pub proofs: i64,
    pub leaves: i64,
    pub heads: i64,
    pub universes: i64,
    pub wallet_backups: i64,
    pub tenants: i64,
}

/// Runs every check; an empty list means the database is consistent.
pub async fn fsck(db: &Db) -> Result<(Checked, Vec<Finding>), StoreError> {
    let mut tx = crate::universe::snapshot(db).await?;
    let mut out = Vec::new();
    let names: BTreeMap<TenantId, String> = sqlx::query_as("SELECT id, name FROM tenants")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let name = |t: TenantId| {
        names
            .get(&t)
            .cloned()
            .unwrap_or_else(|| format!("#{}", t.0))
    };
    let mut checked = Checked {
        tenants: names.len() as i64,
        ..Default::default()
    };

    // Raw proofs are stored by their SHA-256.
    checked.proofs = sqlx::query_scalar("SELECT count(*) FROM proofs")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<(TenantId, Vec<u8>)> =
        sqlx::query_as("SELECT tenant_id, hash FROM proofs WHERE sha256(raw) <> hash")
            .fetch_all(&mut *tx)
            .await?;
    for (tenant, hash) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "proof hash",
            detail: format!(
                "proof {} does not hash to its key (its bytes changed)",
                hex::encode(hash)
            ),
        });
    }

    // Every leaf version's node hash is SHA256(proof || sum BE).
    checked.leaves = sqlx::query_scalar("SELECT count(*) FROM universe_leaves")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<(TenantId, Vec<u8>, i32, bool)> = sqlx::query_as(
        "SELECT l.tenant_id, l.leaf_key, l.version, p.hash IS NULL
         FROM universe_leaves l
         LEFT JOIN proofs p ON p.tenant_id = l.tenant_id AND p.hash = l.proof_hash
         WHERE p.hash IS NULL OR sha256(p.raw || int8send(l.leaf_sum)) <> l.leaf_node_hash",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, leaf_key, version, missing) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "leaf proof",
            detail: format!(
                "leaf {} version {version}: {}",
                hex::encode(leaf_key),
                if missing {
                    "its proof is missing"
                } else {
                    "its node hash does not match its proof"
                }
            ),
        });
    }

    // Versions run 1..n without gaps and the head points at the newest.
    checked.heads = sqlx::query_scalar("SELECT count(*) FROM universe_heads")
        .fetch_one(&mut *tx)
        .await?;
    /// Tenant, leaf key, newest version, version count, head's version.
    type HeadCheck = (TenantId, Vec<u8>, i32, i64, Option<i32>);
    let rows: Vec<HeadCheck> = sqlx::query_as(
        "WITH v AS (
            SELECT tenant_id, universe_id, proof_type, leaf_key,
                   max(version) AS newest, count(*) AS n
            FROM universe_leaves GROUP BY 1, 2, 3, 4)
         SELECT v.tenant_id, v.leaf_key, v.newest, v.n, hl.version
         FROM v
         LEFT JOIN universe_heads h ON h.tenant_id = v.tenant_id AND h.universe_id = v.universe_id
              AND h.proof_type = v.proof_type AND h.leaf_key = v.leaf_key
         LEFT JOIN universe_leaves hl ON hl.id = h.leaf_id
         WHERE h.id IS NULL OR hl.version IS DISTINCT FROM v.newest OR v.n <> v.newest
            OR hl.leaf_key <> v.leaf_key",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, leaf_key, newest, n, head) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "head",
            detail: format!(
                "leaf {}: {n} versions up to {newest}, head at {}",
                hex::encode(leaf_key),
                head.map(|v| format!("version {v}"))
                    .unwrap_or_else(|| "nothing".into())
            ),
        });
    }

    // A head names a stored version of its own leaf key.
    let rows: Vec<(TenantId, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT h.tenant_id, h.leaf_key, h.leaf_id FROM universe_heads h
         WHERE NOT EXISTS (SELECT 1 FROM universe_leaves l
             WHERE l.tenant_id = h.tenant_id AND l.id = h.leaf_id
               AND l.universe_id = h.universe_id AND l.proof_type = h.proof_type
               AND l.leaf_key = h.leaf_key)",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, leaf_key, leaf_id) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "head",
            detail: format!(
                "leaf {}: its head names leaf row {leaf_id}, which is not a version of it",
                hex::encode(leaf_key)
            ),
        });
    }

    // A head is complete exactly when it is an issuance leaf or its
    // previous leaf is a complete head of the same universe.
    let rows: Vec<(TenantId, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT h.tenant_id, h.leaf_key, h.complete FROM universe_heads h
         WHERE h.complete <> (h.proof_type = 1 OR EXISTS (
             SELECT 1 FROM universe_heads p WHERE p.tenant_id = h.tenant_id
                AND p.universe_id = h.universe_id AND p.leaf_key = h.prev_leaf_key AND p.complete))",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, leaf_key, complete) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "ancestry",
            detail: format!(
                "leaf {} is marked {} but its ancestry is {}",
                hex::encode(leaf_key),
                if complete { "complete" } else { "waiting" },
                if complete { "not stored" } else { "stored" }
            ),
        });
    }

    // Every universe root equals a recomputation from its complete heads,
    // and every multiverse root one from those universe roots.
    let universes: Vec<(TenantId, [u8; 32], i16)> =
        sqlx::query_as("SELECT tenant_id, universe_id, proof_type FROM universes")
            .fetch_all(&mut *tx)
            .await?;
    checked.universes = universes.len() as i64;
    let mut multiverse: BTreeMap<(TenantId, i16), Vec<LeafUpdate>> = BTreeMap::new();
    for (tenant, uid, code) in universes {
        let ty = type_from_code(code)?;
        let rows: Vec<([u8; 32], [u8; 32], i64)> = sqlx::query_as(
            "SELECT h.leaf_key, l.leaf_node_hash, l.leaf_sum
             FROM universe_heads h JOIN universe_leaves l ON l.id = h.leaf_id
             WHERE h.tenant_id = $1 AND h.universe_id = $2 AND h.proof_type = $3 AND h.complete",
        )
        .bind(tenant)
        .bind(&uid[..])
        .bind(code)
        .fetch_all(&mut *tx)
        .await?;
        let ups: Vec<LeafUpdate> = rows
            .into_iter()
            .map(|(key, hash, sum)| LeafUpdate {
                key,
                leaf: Node {
                    hash,
                    sum: sum as u64,
                },
            })
            .collect();
        let mut t = MemTree::new();
        let want = match t.apply(ups) {
            Ok(n) => n,
            Err(e) => {
                out.push(Finding {
                    tenant: name(tenant),
                    check: "root",
                    detail: format!("universe {}: {e}", universe_namespace(&uid, ty)),
                });
                continue;
            }
        };
        let ns = universe_namespace(&uid, ty);
        let have = tree_root(&mut tx, tenant, &ns).await?;
        if have != want {
            out.push(Finding {
                tenant: name(tenant),
                check: "root",
                detail: format!(
                    "universe {ns}: stored root {}/{} but its leaves give {}/{}",
                    hex::encode(have.hash),
                    have.sum,
                    hex::encode(want.hash),
                    want.sum
                ),
            });
        }
        let (value, sum) = multiverse_leaf(ty, &want);
        multiverse
            .entry((tenant, code))
            .or_default()
            .push(LeafUpdate::new(uid, &value, sum));
    }
    for ((tenant, code), ups) in multiverse {
        let ty = type_from_code(code)?;
        let want = MemTree::new().apply(ups).ok();
        let have = tree_root(&mut tx, tenant, ty.multiverse_namespace()).await?;
        if want != Some(have) {
            out.push(Finding {
                tenant: name(tenant),
                check: "root",
                detail: format!(
                    "{}: stored root {} does not match its universes' roots",
                    ty.multiverse_namespace(),
                    hex::encode(have.hash)
                ),
            });
        }
    }

    // Wallet backups are stored by their SHA-256 too.
    checked.wallet_backups = sqlx::query_scalar("SELECT count(*) FROM wallet_backups")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<(TenantId, i64)> =
        sqlx::query_as("SELECT tenant_id, id FROM wallet_backups WHERE sha256(raw) <> sha256")
            .fetch_all(&mut *tx)
            .await?;
    for (tenant, id) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "backup checksum",
            detail: format!("wallet backup {id} does not match its checksum"),
        });
    }

    // Every backup entry belongs to a stored backup.
    let rows: Vec<(TenantId, i64, i64)> = sqlx::query_as(
        "SELECT e.tenant_id, e.backup_id, count(*) FROM backup_entries e
         WHERE NOT EXISTS (SELECT 1 FROM wallet_backups b
             WHERE b.tenant_id = e.tenant_id AND b.id = e.backup_id)
         GROUP BY 1, 2",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, backup, n) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "backup entry",
            detail: format!("{n} entries of wallet backup {backup}, which is not stored"),
        });
    }

    // Usage counters equal a recount.
    let rows: Vec<(TenantId, i64, i64, i64, i64)> = sqlx::query_as(
        "WITH c AS (
            SELECT tenant_id, sum(b) AS b, sum(n) AS n FROM (
                SELECT tenant_id, sum(length(raw)) AS b, count(*) AS n FROM proofs GROUP BY 1
                UNION ALL SELECT tenant_id, sum(length(raw)), count(*) FROM wallet_backups GROUP BY 1
                UNION ALL SELECT tenant_id, sum(length(encoded)), count(*) FROM addresses GROUP BY 1
                UNION ALL SELECT tenant_id, sum(length(leaves)), count(*) FROM tapscripts GROUP BY 1
            ) x GROUP BY 1)
         SELECT t.id, COALESCE(c.b, 0)::BIGINT, COALESCE(c.n, 0)::BIGINT,
                COALESCE(u.bytes, 0), COALESCE(u.items, 0)
         FROM tenants t LEFT JOIN c ON c.tenant_id = t.id
         LEFT JOIN tenant_usage u ON u.tenant_id = t.id
         WHERE COALESCE(c.b, 0) <> COALESCE(u.bytes, 0) OR COALESCE(c.n, 0) <> COALESCE(u.items, 0)",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, bytes, items, used_bytes, used_items) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "usage",
            detail: format!(
                "stored {bytes} bytes / {items} items but usage says {used_bytes} / {used_items}"
            ),
        });
    }
    // The receipt log: every entry hashes to its leaf hash, indices run
    // 0..size without gaps, every item is logged and every entry's item
    // is stored.
    let rows: Vec<(TenantId, i64)> = sqlx::query_as(
        "SELECT tenant_id, seq FROM log_entries
         WHERE leaf_hash <> sha256('\\x00'::BYTEA || tapvault_log_entry(kind, content_hash, seq, arrived_at))",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, seq) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "log",
            detail: format!("log entry {seq} does not hash to its leaf hash (it was changed)"),
        });
    }
    let rows: Vec<(TenantId, i64, i64, i64)> = sqlx::query_as(
        "SELECT u.tenant_id, u.log_size, count(e.seq), COALESCE(max(e.seq) + 1, 0)
         FROM tenant_usage u LEFT JOIN log_entries e ON e.tenant_id = u.tenant_id
         GROUP BY u.tenant_id, u.log_size
         HAVING u.log_size <> count(e.seq) OR u.log_size <> COALESCE(max(e.seq) + 1, 0)",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (tenant, size, n, end) in rows {
        out.push(Finding {
            tenant: name(tenant),
            check: "log",
            detail: format!("the log says {size} entries but holds {n} ending at index {end}"),
        });
    }
    for (tenant, d) in crate::log::mismatches(&mut tx, None).await? {
        out.push(Finding {
            tenant: name(tenant),
            check: "log",
            detail: d,
        });
    }
    tx.commit().await?;
    Ok((checked, out))
}
