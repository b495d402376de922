//! The schema, created and upgraded at start: the migrations are embedded in the binary
//! and applied in order, each once, in one transaction under an advisory lock, so two
//! nodes starting at once never race (the second waits, then finds nothing to do).

use super::{Pg, PgError};

/// The migrations, in order: schema version N is the first N applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/001_catalog.sql"),
    include_str!("schema/002_visibility.sql"),
    include_str!("schema/003_public_listing.sql"),
    include_str!("schema/004_webhooks.sql"),
];

/// The schema version this build writes.
pub const SCHEMA: i32 = MIGRATIONS.len() as i32;

/// The advisory lock every node takes to migrate ("darkroom" in ASCII).
const LOCK: i64 = 0x6461_726b_726f_6f6d;

/// Brings the schema to `SCHEMA`; the version found before. A newer schema is refused
/// before anything is written.
pub async fn migrate(pg: &Pg) -> Result<i32, PgError> {
    let mut client = pg.client().await?;
    let fail = |e: tokio_postgres::Error| pg.error(&e);
    let tx = client.transaction().await.map_err(fail)?;
    // A migration may build indexes over a large table, and another node may hold the
    // lock while it does: no statement deadline here, a bounded wait for the lock.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '10min'")
        .await
        .map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(fail)?;
    // Looked up first: a role that may only read and write rows starts on a database
    // whose schema is current (CREATE ... IF NOT EXISTS needs the right to create).
    let exists: bool = tx
        .query_one("SELECT to_regclass('darkroom_schema') IS NOT NULL", &[])
        .await
        .map_err(fail)?
        .get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE darkroom_schema (version integer NOT NULL)")
            .await
            .map_err(fail)?;
    }
    let found: i32 = tx
        .query_opt("SELECT version FROM darkroom_schema", &[])
        .await
        .map_err(fail)?
        .map_or(0, |row| row.get(0));
    if found > SCHEMA {
        return Err(PgError::TooNew {
            found,
            knows: SCHEMA,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tracing::info!(version = i + 1, "upgrading the catalog's schema");
        tx.batch_execute(sql).await.map_err(fail)?;
    }
    if found < SCHEMA {
        tx.execute("DELETE FROM darkroom_schema", &[])
            .await
            .map_err(fail)?;
        tx.execute(
            "INSERT INTO darkroom_schema (version) VALUES ($1)",
            &[&SCHEMA],
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    Ok(found)
}
