//! Keeps the path to a sharded PostgreSQL (Citus, docs/SCALING.md) open:
//! every table a tenant owns carries `tenant_id`, and its primary key and
//! every unique constraint begin with it, so each tenant's rows and
//! statements stay on one shard. The global tables are listed here, and a
//! new one has to be added on purpose.

use tapvault_store::db::testdb;

/// Tables that belong to no tenant: replicated to every node (reference
/// tables) or bookkeeping.
const GLOBAL: [&str; 3] = ["tenants", "tokens", "_sqlx_migrations"];

#[tokio::test]
async fn every_tenant_table_is_keyed_by_tenant_first() {
    let t = testdb::create().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::TEXT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(&t.db.pool)
    .await
    .unwrap();
    assert!(tables.len() > 15, "{tables:?}");
    let mut wrong = Vec::new();
    for table in tables.iter().filter(|x| !GLOBAL.contains(&x.as_str())) {
        let has_tenant: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'tenant_id')",
        )
        .bind(table)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
        if !has_tenant {
            wrong.push(format!("{table} has no tenant_id"));
            continue;
        }
        // Primary key and unique constraints, and unique indexes that back
        // no constraint.
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::TEXT, a.attname::TEXT
             FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = $1::regclass AND (i.indisunique OR i.indisprimary)",
        )
        .bind(table)
        .fetch_all(&t.db.pool)
        .await
        .unwrap();
        if !keys.iter().any(|(n, _)| n.ends_with("_pkey")) {
            wrong.push(format!("{table} has no primary key"));
        }
        for (name, first) in keys {
            if first != "tenant_id" {
                wrong.push(format!(
                    "{table}: unique index {name} begins with {first}, not tenant_id"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The global tables exist (a rename would silently widen the rule).
    for g in GLOBAL {
        assert!(tables.iter().any(|x| x == g), "{g}");
    }
    t.drop_db().await;
}

/// Data rows carry no foreign key to `tenants` (one lookup and share lock
/// per row was most of an ingest's trigger work), so the database itself
/// refuses to delete a tenant, and says why.
#[tokio::test]
async fn tenants_are_never_deleted() {
    let t = testdb::create().await;
    let id = tapvault_store::db::ensure_tenant(&t.db.pool, "kept")
        .await
        .unwrap();
    for sql in ["DELETE FROM tenants", "TRUNCATE tenants CASCADE"] {
        let e = sqlx::query(sql).execute(&t.db.pool).await.unwrap_err();
        let db = e.as_database_error().expect("a database error");
        assert_eq!(db.code().as_deref(), Some("TVT01"), "{sql}: {e}");
        assert!(db.message().contains("never deleted"), "{sql}: {e}");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 1);
    t.drop_db().await;
}

/// Data rows carry no foreign keys at all: each cost a lookup and a row
/// lock per inserted row, and the lookup's plan (made once per connection,
/// often while the tables were still empty) was seen reading a tenant's
/// whole anchor index per new head. fsck checks those references instead
/// (crates/server/tests/faults.rs). Only bookkeeping rows name their tenant.
#[tokio::test]
async fn data_rows_carry_no_foreign_keys() {
    let t = testdb::create().await;
    let fks: Vec<(String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::TEXT, confrelid::regclass::TEXT FROM pg_constraint
         WHERE contype = 'f' ORDER BY 1",
    )
    .fetch_all(&t.db.pool)
    .await
    .unwrap();
    let bookkeeping = [
        "inventory_runs",
        "key_locators",
        "log_heads",
        "node_outputs",
        "tenant_usage",
        "tokens",
    ];
    for (from, to) in &fks {
        assert!(
            to == "tenants" && bookkeeping.contains(&from.as_str()),
            "{from} references {to}: {fks:?}"
        );
    }
    t.drop_db().await;
}
