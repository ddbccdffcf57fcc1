//! The node's inventory (`migrations/0006`): owned outputs and key
//! locators as the agent reports them.

use crate::db::{Db, StoreError};
use crate::tenants::TenantId;
use crate::time::Timestamp;
use bitcoin::hashes::Hash as _;
use bitcoin::OutPoint;
use sqlx::FromRow;

/// A key locator: the raw (internal) key and where the wallet derives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locator {
    pub raw_key: [u8; 33],
    pub family: i32,
    pub index: i32,
}

/// One owned output as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOutput {
    pub anchor: OutPoint,
    pub script_key: [u8; 33],
    pub asset_id: [u8; 32],
    pub amount: u64,
    pub script_key_type: i16,
    pub leased: bool,
    pub anchor_height: u32,
    pub script_key_internal: Option<Locator>,
    pub script_key_tweak: Option<Vec<u8>>,
    pub anchor_internal_key: Option<Locator>,
}

/// A stored output with its report times.
#[derive(Clone, Debug)]
pub struct StoredOutput {
    pub output: NodeOutput,
    pub first_seen_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub current: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Script,
    Internal,
}

impl KeyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyKind::Script => "script",
            KeyKind::Internal => "internal",
        }
    }
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "script" => Some(KeyKind::Script),
            "internal" => Some(KeyKind::Internal),
            _ => None,
        }
    }
}

/// A key of the wallet and its locator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    pub kind: KeyKind,
    /// 33-byte compressed, or 32-byte x-only as tapd gave it.
    pub key: Vec<u8>,
    pub locator: Locator,
    pub tweak: Option<Vec<u8>>,
    pub script_key_type: i16,
}

fn x_of(k: &[u8]) -> Vec<u8> {
    if k.len() == 33 {
        k[1..].to_vec()
    } else {
        k.to_vec()
    }
}

/// Stores one chunk of an inventory run (new outputs and keys added, known
/// ones refreshed) and, when `complete`, records the run as the node's
/// current set. Returns (outputs new, keys new).
pub async fn push(
    db: &Db,
    tenant: TenantId,
    run_id: &str,
    source: &str,
    outputs: &[NodeOutput],
    keys: &[KeyRow],
    complete: bool,
) -> Result<(u32, u32), StoreError> {
    let mut tx = db.pool.begin().await?;
    let mut outputs_new = 0;
    for o in outputs {
        let loc = |l: &Option<Locator>| {
            (
                l.as_ref().map(|l| l.raw_key.to_vec()),
                l.as_ref().map(|l| l.family),
                l.as_ref().map(|l| l.index),
            )
        };
        let (skr, skf, ski) = loc(&o.script_key_internal);
        let (ikr, ikf, iki) = loc(&o.anchor_internal_key);
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO node_outputs (tenant_id, anchor_txid, anchor_vout, script_key,
                script_key_x, asset_id, amount, script_key_type, leased, anchor_height,
                sk_raw_key, sk_family, sk_index, sk_tweak, ik_raw_key, ik_family, ik_index,
                last_run_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18)
             ON CONFLICT (tenant_id, anchor_txid, anchor_vout, script_key_x) DO UPDATE SET
                leased = EXCLUDED.leased,
                anchor_height = GREATEST(node_outputs.anchor_height, EXCLUDED.anchor_height),
                script_key_type = EXCLUDED.script_key_type,
                sk_raw_key = COALESCE(EXCLUDED.sk_raw_key, node_outputs.sk_raw_key),
                sk_family = COALESCE(EXCLUDED.sk_family, node_outputs.sk_family),
                sk_index = COALESCE(EXCLUDED.sk_index, node_outputs.sk_index),
                sk_tweak = COALESCE(EXCLUDED.sk_tweak, node_outputs.sk_tweak),
                ik_raw_key = COALESCE(EXCLUDED.ik_raw_key, node_outputs.ik_raw_key),
                ik_family = COALESCE(EXCLUDED.ik_family, node_outputs.ik_family),
                ik_index = COALESCE(EXCLUDED.ik_index, node_outputs.ik_index),
                last_run_id = EXCLUDED.last_run_id,
                last_seen_at = now()
             RETURNING xmax = 0",
        )
        .bind(tenant)
        .bind(&o.anchor.txid.to_byte_array()[..])
        .bind(o.anchor.vout as i32)
        .bind(&o.script_key[..])
        .bind(&o.script_key[1..])
        .bind(&o.asset_id[..])
        .bind(o.amount as i64)
        .bind(o.script_key_type)
        .bind(o.leased)
        .bind(o.anchor_height as i32)
        .bind(skr)
        .bind(skf)
        .bind(ski)
        .bind(o.script_key_tweak.as_deref())
        .bind(ikr)
        .bind(ikf)
        .bind(iki)
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
        outputs_new += inserted as u32;
    }
    let mut keys_new = 0;
    for k in keys {
        let inserted: Option<bool> = sqlx::query_scalar(
            "INSERT INTO key_locators (tenant_id, kind, key_x, key, raw_key, family, idx, tweak,
                script_key_type)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, kind, key_x) DO NOTHING
             RETURNING true",
        )
        .bind(tenant)
        .bind(k.kind.as_str())
        .bind(x_of(&k.key))
        .bind(&k.key)
        .bind(&k.locator.raw_key[..])
        .bind(k.locator.family)
        .bind(k.locator.index)
        .bind(k.tweak.as_deref())
        .bind(k.script_key_type)
        .fetch_optional(&mut *tx)
        .await?;
        keys_new += inserted.is_some() as u32;
    }
    if complete {
        sqlx::query(
            "INSERT INTO inventory_runs (tenant_id, run_id, source, outputs)
             SELECT $1, $2, $3, count(*) FROM node_outputs WHERE tenant_id = $1 AND last_run_id = $2
             ON CONFLICT (tenant_id, run_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(run_id)
        .bind(source)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok((outputs_new, keys_new))
}

/// The newest complete run: (run id, when it completed).
pub async fn newest_run(
    db: &Db,
    tenant: TenantId,
) -> Result<Option<(String, Timestamp)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT run_id, tapvault_micros(completed_at) FROM inventory_runs
         WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(&db.pool)
    .await?)
}

fn locator(raw: Option<[u8; 33]>, f: Option<i32>, i: Option<i32>) -> Option<Locator> {
    Some(Locator {
        raw_key: raw?,
        family: f?,
        index: i?,
    })
}

#[derive(FromRow)]
struct OutputRow {
    anchor_txid: [u8; 32],
    anchor_vout: i32,
    script_key: [u8; 33],
    asset_id: [u8; 32],
    amount: i64,
    script_key_type: i16,
    leased: bool,
    anchor_height: i32,
    sk_raw_key: Option<[u8; 33]>,
    sk_family: Option<i32>,
    sk_index: Option<i32>,
    sk_tweak: Option<Vec<u8>>,
    ik_raw_key: Option<[u8; 33]>,
    ik_family: Option<i32>,
    ik_index: Option<i32>,
    first_seen_at: Timestamp,
    last_seen_at: Timestamp,
    current: bool,
}

impl From<OutputRow> for StoredOutput {
    fn from(r: OutputRow) -> Self {
        StoredOutput {
            output: NodeOutput {
                anchor: OutPoint {
                    txid: bitcoin::Txid::from_byte_array(r.anchor_txid),
                    vout: r.anchor_vout as u32,
                },
                script_key: r.script_key,
                asset_id: r.asset_id,
                amount: r.amount as u64,
                script_key_type: r.script_key_type,
                leased: r.leased,
                anchor_height: r.anchor_height as u32,
                script_key_internal: locator(r.sk_raw_key, r.sk_family, r.sk_index),
                script_key_tweak: r.sk_tweak,
                anchor_internal_key: locator(r.ik_raw_key, r.ik_family, r.ik_index),
            },
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
            current: r.current,
        }
    }
}

/// A page of outputs in report order: the newest complete run's (or all).
pub async fn outputs(
    db: &Db,
    tenant: TenantId,
    all: bool,
    offset: i64,
    limit: i64,
) -> Result<Vec<StoredOutput>, StoreError> {
    let run = newest_run(db, tenant).await?.map(|(r, _)| r);
    if run.is_none() && !all {
        return Ok(Vec::new());
    }
    let rows: Vec<OutputRow> = sqlx::query_as(
        "SELECT anchor_txid, anchor_vout, script_key, asset_id, amount, script_key_type, leased,
                anchor_height, sk_raw_key, sk_family, sk_index, sk_tweak, ik_raw_key, ik_family,
                ik_index, tapvault_micros(first_seen_at) AS first_seen_at,
                tapvault_micros(last_seen_at) AS last_seen_at, last_run_id = $2 AS current
         FROM node_outputs WHERE tenant_id = $1 AND ($3 OR last_run_id = $2)
         ORDER BY id OFFSET $4 LIMIT $5",
    )
    .bind(tenant)
    .bind(run.unwrap_or_default())
    .bind(all)
    .bind(offset)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(StoredOutput::from).collect())
}

/// A page of key locators, in arrival order.
pub async fn keys(
    db: &Db,
    tenant: TenantId,
    offset: i64,
    limit: i64,
) -> Result<Vec<KeyRow>, StoreError> {
    #[derive(FromRow)]
    struct Row {
        kind: String,
        key: Vec<u8>,
        raw_key: [u8; 33],
        family: i32,
        idx: i32,
        tweak: Option<Vec<u8>>,
        script_key_type: i16,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT kind, key, raw_key, family, idx, tweak, script_key_type FROM key_locators
         WHERE tenant_id = $1 ORDER BY id OFFSET $2 LIMIT $3",
    )
    .bind(tenant)
    .bind(offset)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(KeyRow {
                kind: KeyKind::parse(&r.kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("key kind {}", r.kind)))?,
                key: r.key,
                locator: Locator {
                    raw_key: r.raw_key,
                    family: r.family,
                    index: r.idx,
                },
                tweak: r.tweak,
                script_key_type: r.script_key_type,
            })
        })
        .collect()
}
