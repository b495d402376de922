//! `darkroom catalog copy --to postgres://...`: a redb catalog moved into PostgreSQL, so
//! a site that outgrows one node keeps its items, ids, keys, jobs, URLs, webhooks and the
//! events waiting for them. The server
//! is stopped (the redb file is single-process). Everything goes in one transaction, in
//! batches of `BATCH` rows: a copy that fails leaves the database as it was. The target
//! must hold no items and no keys. Afterwards every table's rows are counted on both
//! sides and a sample of records is read back and compared.

use std::collections::BTreeMap;

use redb::ReadableTableMetadata;
use tokio_postgres::types::ToSql;

use super::pg::PgCatalog;
use super::tables::{
    CROP_CACHE, FILES, FOLDERS, JOBS, KEYS, MEDIA, META, OUTBOX, PENDING_DELETES, PRESIGNS,
    WEBHOOKS, entry_file, parse_crop_value,
};
use super::{Catalog, CatalogError, Result, decode};
use crate::model::{MediaRecord, PresignRecord};

/// Rows per statement (and per read of the redb file).
const BATCH: usize = 1_000;
/// Records read back from PostgreSQL and compared with redb's after the copy.
const SAMPLES: usize = 100;

/// What a copy moved, table by table (the same counts on both sides), and how many
/// records it read back and found equal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: BTreeMap<&'static str, u64>,
    pub sampled: usize,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables: Vec<String> = self
            .tables
            .iter()
            .map(|(table, n)| format!("{table} {n}"))
            .collect();
        write!(
            f,
            "copied {}; counts equal on both sides; {} records read back and equal",
            tables.join(", "),
            self.sampled
        )
    }
}

/// One batch of rows read from redb: keys after the last batch's last key.
type Rows<V> = Vec<(String, V)>;

/// A table read in batches of `BATCH`, each after the last one's last key.
#[derive(Default)]
struct Batches {
    after: String,
}

impl Batches {
    /// The next batch of `table`, converted by `value`; `None` once it is all read.
    fn next<V: redb::Value + 'static, T>(
        &mut self,
        from: &Catalog,
        table: redb::TableDefinition<'static, &'static str, V>,
        value: impl Fn(V::SelfType<'_>) -> Result<T>,
    ) -> Result<Option<Rows<T>>> {
        let rows = from.export(table, &self.after, value)?;
        let Some((last, _)) = rows.last() else {
            return Ok(None);
        };
        self.after = last.clone();
        Ok(Some(rows))
    }
}

impl Catalog {
    /// Up to `BATCH` entries of a string-keyed table after `after`, converted by `value`.
    fn export<V: redb::Value + 'static, T>(
        &self,
        table: redb::TableDefinition<'static, &'static str, V>,
        after: &str,
        value: impl Fn(V::SelfType<'_>) -> Result<T>,
    ) -> Result<Rows<T>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(table)?;
        let mut rows = Vec::new();
        let range =
            table.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?;
        for entry in range.take(BATCH) {
            let (k, v) = entry?;
            rows.push((k.value().to_owned(), value(v.value())?));
        }
        Ok(rows)
    }

    fn rows_in<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: redb::TableDefinition<'static, K, V>,
    ) -> Result<u64> {
        Ok(self.read_txn()?.open_table(table)?.len()?)
    }
}

/// Copies `from` into `to` (see the module).
pub async fn copy(from: &Catalog, to: &PgCatalog) -> Result<CopyReport> {
    let fail = |e: tokio_postgres::Error| to.fail(&e);
    let mut client = to.client().await?;
    let tx = client.transaction().await.map_err(fail)?;
    tx.batch_execute(
        "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0",
    )
    .await
    .map_err(fail)?;
    let used: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM media) OR EXISTS (SELECT 1 FROM api_keys) \
             OR EXISTS (SELECT 1 FROM files) OR EXISTS (SELECT 1 FROM jobs) \
             OR EXISTS (SELECT 1 FROM pending_deletes) OR EXISTS (SELECT 1 FROM presigns) \
             OR EXISTS (SELECT 1 FROM folders) OR EXISTS (SELECT 1 FROM crop_cache) \
             OR EXISTS (SELECT 1 FROM counts)",
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    if used {
        return Err(CatalogError::Corrupt(
            "the target catalog already holds items, keys or files: copy into an empty database"
                .into(),
        ));
    }
    let mut report = CopyReport::default();
    let mut samples = Vec::new();

    // Items, with the columns they are listed and searched by.
    let mut batches = Batches::default();
    let mut copied = 0usize;
    let step = (from.rows_in(MEDIA)? as usize / SAMPLES).max(1);
    while let Some(rows) = batches
        .next(from, MEDIA, decode::<MediaRecord>)
        .map_err(|e| {
            CatalogError::Corrupt(format!(
                "a record after {:?} cannot be read ({e}); nothing was copied: delete it \
                 (DELETE /api/v1/media/ID on the running node) and copy again",
                batches.after
            ))
        })?
    {
        for (i, (id, _)) in rows.iter().enumerate() {
            if (copied + i).is_multiple_of(step) {
                samples.push(id.clone());
            }
        }
        copied += rows.len();
        let records: Vec<MediaRecord> = rows.into_iter().map(|(_, r)| r).collect();
        to.insert_rows(&tx, &records).await?;
    }
    // Every other table as it is (jobs free of leases: no node runs them yet).
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, FILES, |v| Ok(v.to_owned()))? {
        let (keys, owners): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        execute(
            to,
            &tx,
            "INSERT INTO files (key, item_id) SELECT * FROM unnest($1::text[], $2::text[])",
            &[&keys, &owners],
        )
        .await?;
    }
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, PENDING_DELETES, |v| Ok(v as i64))? {
        let (keys, queued): (Vec<String>, Vec<i64>) = rows.into_iter().unzip();
        execute(
            to,
            &tx,
            "INSERT INTO pending_deletes (key, queued_us) \
             SELECT * FROM unnest($1::text[], $2::bigint[])",
            &[&keys, &queued],
        )
        .await?;
    }
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, KEYS, |v| {
        decode::<serde_json::Value>(v).map(|j| j.to_string())
    })? {
        let (ids, records): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        execute(
            to,
            &tx,
            "INSERT INTO api_keys (id, record) \
             SELECT id, r FROM unnest($1::text[], $2::text[]) AS u(id, r)",
            &[&ids, &records],
        )
        .await?;
    }
    // Webhooks, and the events waiting for them in order (their past attempts stay).
    for hook in from.webhooks()? {
        execute(
            to,
            &tx,
            "INSERT INTO webhooks (id, record, events, enabled) VALUES ($1, $2, $3, $4)",
            &[
                &hook.id,
                &serde_json::to_string(&hook).unwrap_or_default(),
                &hook.events,
                &hook.disabled.is_none(),
            ],
        )
        .await?;
        for queued in from.queued(&hook.id, 0, usize::MAX)?.chunks(BATCH) {
            let rows: Vec<String> = queued
                .iter()
                .map(|q| serde_json::to_string(q).unwrap_or_default())
                .collect();
            execute(
                to,
                &tx,
                "INSERT INTO webhook_outbox (webhook, queued) \
                 SELECT $1, q FROM unnest($2::text[]) WITH ORDINALITY AS u(q, n) ORDER BY n",
                &[&hook.id, &rows],
            )
            .await?;
        }
    }
    let mut batches = Batches::default();
    let now = crate::model::now_us() as i64;
    while let Some(rows) = batches.next(from, JOBS, |v| Ok(v as i32))? {
        let (ids, attempts): (Vec<String>, Vec<i32>) = rows.into_iter().unzip();
        execute(
            to,
            &tx,
            "INSERT INTO jobs (item_id, attempts, queued_us) \
             SELECT id, n, $3 FROM unnest($1::text[], $2::int[]) AS u(id, n)",
            &[&ids, &attempts, &now],
        )
        .await?;
    }
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, PRESIGNS, decode::<PresignRecord>)? {
        let expires: Vec<i64> = rows
            .iter()
            .map(|(_, p)| p.expires_us.min(i64::MAX as u64) as i64)
            .collect();
        let (keys, records): (Vec<String>, Vec<String>) = rows
            .into_iter()
            .map(|(k, p)| (k, serde_json::to_string(&p).unwrap_or_default()))
            .unzip();
        execute(
            to,
            &tx,
            "INSERT INTO presigns (key, record, expires_us) \
             SELECT k, r, e FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(k, r, e)",
            &[&keys, &records, &expires],
        )
        .await?;
    }
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, FOLDERS, |()| Ok(()))? {
        let paths: Vec<String> = rows.into_iter().map(|(p, ())| p).collect();
        execute(
            to,
            &tx,
            "INSERT INTO folders (path) SELECT unnest($1::text[])",
            &[&paths],
        )
        .await?;
    }
    let mut batches = Batches::default();
    while let Some(rows) = batches.next(from, CROP_CACHE, |v| Ok(parse_crop_value(v)))? {
        let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (entry, (last_used, size)) in rows {
            let id = entry.split_once('|').map_or("", |(id, _)| id).to_owned();
            columns.0.push(id);
            columns.1.push(entry_file(&entry).to_owned());
            columns.2.push(size as i64);
            columns.3.push(last_used as i64);
        }
        execute(
            to,
            &tx,
            "INSERT INTO crop_cache (item_id, key, size, last_used_us) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])",
            &[&columns.0, &columns.1, &columns.2, &columns.3],
        )
        .await?;
    }
    // Counters from the rows themselves (as redb's would be), and the presets seen.
    execute(
        to,
        &tx,
        "INSERT INTO counts (scope, n) \
         SELECT 'a', count(*) FROM media HAVING count(*) > 0 \
         UNION ALL SELECT 'f:' || folder, count(*) FROM media GROUP BY folder \
         UNION ALL SELECT 'k:' || chr(kind), count(*) FROM media GROUP BY kind \
         UNION ALL SELECT 'x:' || chr(kind) || ':' || folder, count(*) FROM media \
         GROUP BY kind, folder \
         UNION ALL SELECT 'pa', count(*) FROM media WHERE private HAVING count(*) > 0 \
         UNION ALL SELECT 'pf:' || folder, count(*) FROM media WHERE private GROUP BY folder \
         UNION ALL SELECT 'pk:' || chr(kind), count(*) FROM media WHERE private GROUP BY kind \
         UNION ALL SELECT 'px:' || chr(kind) || ':' || folder, count(*) FROM media \
         WHERE private GROUP BY kind, folder \
         UNION ALL SELECT 'c:crop-cache-bytes', sum(size) FROM crop_cache HAVING count(*) > 0",
        &[],
    )
    .await?;
    let presets = {
        let txn = from.read_txn()?;
        let meta = txn.open_table(META)?;
        meta.get("presets")?.map(|v| v.value() as i64)
    };
    // Nodes that read the database before (it was empty) must not keep their answers,
    // their folder list or their keys.
    execute(
        to,
        &tx,
        "INSERT INTO meta (key, value) VALUES ('search_generation', 1) \
         ON CONFLICT (key) DO UPDATE SET value = meta.value + 1",
        &[],
    )
    .await?;
    execute(to, &tx, "SELECT pg_notify($1, '')", &[&super::pg::CHANGED]).await?;
    if let Some(fingerprint) = presets {
        execute(
            to,
            &tx,
            "INSERT INTO meta (key, value) VALUES ('presets', $1)",
            &[&fingerprint],
        )
        .await?;
    }

    // The same rows on both sides, before anything is committed.
    let tables: [(&'static str, u64); 10] = [
        ("media", from.rows_in(MEDIA)?),
        ("files", from.rows_in(FILES)?),
        ("pending_deletes", from.rows_in(PENDING_DELETES)?),
        ("api_keys", from.rows_in(KEYS)?),
        ("jobs", from.rows_in(JOBS)?),
        ("presigns", from.rows_in(PRESIGNS)?),
        ("folders", from.rows_in(FOLDERS)?),
        ("crop_cache", from.rows_in(CROP_CACHE)?),
        ("webhooks", from.rows_in(WEBHOOKS)?),
        ("webhook_outbox", from.rows_in(OUTBOX)?),
    ];
    for (table, expected) in tables {
        let row = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(fail)?;
        let found = row.get::<_, i64>(0) as u64;
        if found != expected {
            return Err(CatalogError::Corrupt(format!(
                "{table}: {expected} rows in redb, {found} copied; nothing was committed"
            )));
        }
        report.tables.insert(table, found);
    }
    // A sample of records read back inside the transaction, before anything is kept.
    for id in &samples {
        let ours = from.get(id)?.map(|r| serde_json::to_value(&r).ok());
        let row = tx
            .query_opt("SELECT record FROM media WHERE id = $1", &[id])
            .await
            .map_err(fail)?;
        let theirs = row
            .map(|r| decode::<MediaRecord>(r.get::<_, &str>(0).as_bytes()))
            .transpose()?
            .map(|r| serde_json::to_value(&r).ok());
        if ours != theirs {
            return Err(CatalogError::Corrupt(format!(
                "{id} reads differently in PostgreSQL than in redb; nothing was committed"
            )));
        }
    }
    tx.commit().await.map_err(fail)?;
    report.sampled = samples.len();
    Ok(report)
}

async fn execute(
    to: &PgCatalog,
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    tx.execute(sql, params).await.map_err(|e| to.fail(&e))
}
