//! The write path on PostgreSQL: a batch of `Write`s applied in order in one transaction,
//! one savepoint each, and committed once (group commit, as on redb). A write's own
//! failure (not found, a record it cannot read) rolls back to its savepoint and fails
//! only that write; a database failure fails the batch. The rules are redb's
//! (`catalog::write`), row for row: each function here names its twin there.
//!
//! Concurrency between nodes: a write locks the rows it reads to decide (`FOR UPDATE`),
//! so two nodes changing one item take turns; the counters are changed once per batch, at
//! its end, in sorted order, so two batches never wait on each other in a cycle over
//! them. A deadlock between item rows (two batches touching the same items in another
//! order) is retried.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::catalog::{Columns, PgCatalog, Result, decode, encode, unavailable};
use super::{kept, webhooks};
use crate::catalog::index::scopes;
use crate::catalog::read::confirm_rule;
use crate::catalog::write::{
    dropped_crops, moving, out_of_attempts, skipped_crop_keys, unrecordable, with_result,
};
use crate::catalog::{
    CacheCrop, CatalogError, CropCached, JobOutcome, Outcome, WebhookWrite, Write,
};
use crate::model::{
    ApiKeyRecord, ConfirmLease, Event, EventType, FolderPath, JobResult, Kind, MediaPatch,
    MediaRecord, PresignRecord, Scope, Status, Visibility, now_us,
};

/// `counts` scope of the bytes the cached crops take (as on redb).
const CACHE_BYTES: &str = "c:crop-cache-bytes";

/// A job given back after an outage is left alone this long by the other nodes' rescans
/// (the node that gave it back retries it with its own backoff).
const RELEASED_WAIT_US: u64 = 10_000_000;

/// Tries of a batch that met a deadlock or a serialization failure.
const TRIES: usize = 3;

/// What a batch changes besides its rows: counter deltas, the backlog, the keys a write
/// queued for deletion.
#[derive(Default)]
struct Effects {
    counts: BTreeMap<String, i64>,
    jobs_delta: i64,
    queued: Vec<String>,
    /// An item was added, changed or removed: remembered search answers are stale.
    searched: bool,
    /// The folder set or the keys changed: what every node keeps of them is stale
    /// (`kept`).
    kept: bool,
    /// The events of the writes, for the outboxes (`fan_out`).
    events: Vec<Event>,
}

impl Effects {
    fn absorb(&mut self, other: Effects) {
        for (scope, delta) in other.counts {
            *self.counts.entry(scope).or_insert(0) += delta;
        }
        self.jobs_delta += other.jobs_delta;
        self.searched |= other.searched;
        self.kept |= other.kept;
        self.events.extend(other.events);
    }
}

/// Why a batch did not commit.
enum Failure {
    /// Another batch held rows this one needed in a cycle: try again.
    Retry(CatalogError),
    Batch(CatalogError),
}

impl PgCatalog {
    /// Applies `writes` in order in one transaction and commits once; each gets its own
    /// answer (see the module).
    pub async fn apply(&self, writes: Vec<Write>) -> Result<Vec<Result<Outcome>>> {
        #[cfg(test)]
        let _gate = self.gate.read().await;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.apply_once(&writes).await {
                Ok(answers) => return Ok(answers),
                Err(Failure::Retry(e)) if tries < TRIES => {
                    tracing::debug!(error = %e, "catalog batch met a deadlock; trying again");
                }
                Err(Failure::Retry(_)) => return Err(CatalogError::Unavailable),
                Err(Failure::Batch(e)) => return Err(e),
            }
        }
    }

    async fn apply_once(
        &self,
        writes: &[Write],
    ) -> std::result::Result<Vec<Result<Outcome>>, Failure> {
        let fail = |e: tokio_postgres::Error| self.sorted(&e);
        let mut client = self
            .pg
            .client()
            .await
            .map_err(|e| Failure::Batch(unavailable(e)))?;
        let mut tx = client.transaction().await.map_err(fail)?;
        let mut batch = Effects::default();
        let mut answers = Vec::with_capacity(writes.len());
        for write in writes {
            let sp = tx.savepoint("w").await.map_err(fail)?;
            let mut w = W {
                tx: &sp,
                catalog: self,
                fx: Effects::default(),
            };
            match w.apply(write).await {
                Ok(outcome) => {
                    let W { mut fx, .. } = w;
                    let outcome = with_queued(outcome, std::mem::take(&mut fx.queued));
                    batch.absorb(fx);
                    sp.commit().await.map_err(fail)?;
                    answers.push(Ok(outcome));
                }
                Err(Step::Domain(e)) => {
                    sp.rollback().await.map_err(fail)?;
                    answers.push(Err(e));
                }
                // Data the database refuses (a value it cannot store, a constraint): that
                // write fails, its neighbours commit.
                Err(Step::Db(e)) if is_data_error(&e) => {
                    tracing::warn!(error = %self.pg.error(&e), "a catalog write was refused");
                    sp.rollback().await.map_err(fail)?;
                    answers.push(Err(CatalogError::Pg(self.pg.error(&e))));
                }
                Err(Step::Db(e)) => return Err(fail(e)),
            }
        }
        // In sorted order (a BTreeMap's), so two batches never wait on each other in a
        // cycle; a counter that reaches zero goes (the `f:` ones list the live folders).
        for (scope, delta) in batch.counts.iter().filter(|(_, d)| **d != 0) {
            let now = add_count(&tx, scope, *delta).await.map_err(fail)?;
            // A folder counter that starts or ends is a folder that appears or goes.
            batch.kept |= scope.starts_with("f:") && (now == 0 || now == *delta);
            if now == 0 {
                let statement = tx
                    .prepare_cached("DELETE FROM counts WHERE scope = $1 AND n = 0")
                    .await
                    .map_err(fail)?;
                tx.execute(&statement, &[scope]).await.map_err(fail)?;
            }
        }
        let pinged = writes
            .iter()
            .any(|w| matches!(w, Write::Webhooks(WebhookWrite::Ping { .. })));
        webhooks::fan_out(&tx, std::mem::take(&mut batch.events), pinged)
            .await
            .map_err(fail)?;
        if batch.searched {
            // In the same commit, after the counters (the same order in every batch).
            let statement = tx
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('search_generation', 1) \
                     ON CONFLICT (key) DO UPDATE SET value = meta.value + 1",
                )
                .await
                .map_err(fail)?;
            tx.execute(&statement, &[]).await.map_err(fail)?;
        }
        if batch.kept {
            // Delivered to every node when (and only if) this commits.
            let statement = tx
                .prepare_cached("SELECT pg_notify($1, '')")
                .await
                .map_err(fail)?;
            tx.execute(&statement, &[&kept::CHANGED])
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        if batch.kept {
            self.kept.changed(); // before any of the batch's writers is answered
        }
        if batch.jobs_delta >= 0 {
            self.jobs.fetch_add(
                batch.jobs_delta.unsigned_abs(),
                std::sync::atomic::Ordering::Relaxed,
            );
        } else {
            let down = batch.jobs_delta.unsigned_abs();
            let _ = self.jobs.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |n| Some(n.saturating_sub(down)),
            );
        }
        Ok(answers)
    }

    /// A driver error of a batch: a deadlock or serialization failure is tried again.
    fn sorted(&self, e: &tokio_postgres::Error) -> Failure {
        let code = e.code();
        if code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
            || code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        {
            Failure::Retry(self.fail(e))
        } else {
            Failure::Batch(self.fail(e))
        }
    }

    /// Test-only: a record that no longer decodes (its columns and files stay).
    #[cfg(test)]
    pub(crate) async fn corrupt_record(&self, id: &str) {
        self.rows(
            "UPDATE media SET record = '{\"not\": \"a record\"}' WHERE id = $1 RETURNING 1",
            &[&id],
        )
        .await
        .expect("corrupt");
    }

    /// Test-only: holds commits back until the returned guard drops.
    #[cfg(test)]
    pub(crate) async fn hold_writes(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.gate.clone().write_owned().await
    }
}

/// A data exception (class 22) or an integrity violation (class 23): the write's own.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// The outcome with the keys its write queued (`catalog::write::apply_batch` does the same).
fn with_queued(outcome: Outcome, queued: Vec<String>) -> Outcome {
    match outcome {
        Outcome::Media { record, .. } => Outcome::Media { record, queued },
        Outcome::Deleted { .. } => Outcome::Deleted { queued },
        other => other,
    }
}

/// How one write ended short of success.
pub(super) enum Step {
    /// The write's own answer (not found, not empty, unreadable): only it fails.
    Domain(CatalogError),
    /// The database failed: the batch fails.
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Step {
    fn from(e: tokio_postgres::Error) -> Self {
        Step::Db(e)
    }
}

impl From<CatalogError> for Step {
    fn from(e: CatalogError) -> Self {
        Step::Domain(e)
    }
}

pub(super) type Done<T> = std::result::Result<T, Step>;

/// One write inside its savepoint.
pub(super) struct W<'a> {
    pub(super) tx: &'a Transaction<'a>,
    catalog: &'a PgCatalog,
    fx: Effects,
}

fn media(record: MediaRecord) -> Outcome {
    Outcome::Media {
        record: Box::new(record),
        queued: Vec::new(),
    }
}

impl W<'_> {
    pub(super) async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Done<Vec<Row>> {
        let statement = self.tx.prepare_cached(sql).await?;
        Ok(self.tx.query(&statement, params).await?)
    }

    pub(super) async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Done<Option<Row>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    pub(super) async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Done<u64> {
        let statement = self.tx.prepare_cached(sql).await?;
        Ok(self.tx.execute(&statement, params).await?)
    }

    fn node(&self) -> &str {
        &self.catalog.node
    }

    async fn apply(&mut self, write: &Write) -> Done<Outcome> {
        let outcome = self.applied(write).await?;
        // What nodes keep of the folder set and the keys goes stale if this commits.
        self.fx.kept |= match write {
            Write::CreateFolder(_) => outcome == Outcome::FolderCreated,
            Write::DeleteFolder(_) | Write::PutKey(_) | Write::RevokeKey { .. } => true,
            _ => false,
        };
        Ok(outcome)
    }

    async fn applied(&mut self, write: &Write) -> Done<Outcome> {
        match write {
            Write::InsertMedia(records) => {
                for r in records {
                    self.insert_with_job(r).await?;
                    self.fx.events.extend(Event::arrived(r));
                }
                Ok(Outcome::Done)
            }
            Write::UpdateMedia { id, patch, recrop } => self.update_media(id, patch, *recrop).await,
            Write::DeleteMedia { id } => self.delete_media(id).await,
            Write::CreateFolder(path) => self.create_folder(path).await,
            Write::DeleteFolder(path) => self.delete_folder(path).await,
            Write::PutKey(record) => self.put_key(record).await,
            Write::RevokeKey { id } => self.revoke_key(id).await,
            Write::QueueDeletes(keys) => self.queue_deletes(keys).await.map(|()| Outcome::Done),
            Write::ForgetDeletes(keys) => {
                self.exec("DELETE FROM pending_deletes WHERE key = ANY($1)", &[keys])
                    .await?;
                Ok(Outcome::Done)
            }
            Write::FinishJob { id, result, source } => self.finish_job(id, result, source).await,
            Write::StartJob { id, max_attempts } => self.start_job(id, *max_attempts).await,
            Write::ReleaseJob { id } => {
                self.exec(
                    "UPDATE jobs SET attempts = greatest(attempts - 1, 0), lease_token = NULL, \
                     lease_until = NULL, run_after_us = \
                     (extract(epoch FROM clock_timestamp()) * 1e6)::bigint + $3 \
                     WHERE item_id = $1 AND lease_token = $2",
                    &[id, &self.node(), &(RELEASED_WAIT_US as i64)],
                )
                .await?;
                Ok(Outcome::Done)
            }
            Write::RecordPresign { key, presign } => {
                self.put_presign(key, presign).await?;
                Ok(Outcome::Done)
            }
            Write::BeginConfirm {
                key,
                token,
                now_us,
                until_us,
            } => self.begin_confirm(key, token, *now_us, *until_us).await,
            Write::EndConfirm { key, token } => self.end_confirm(key, token).await,
            Write::ConfirmPresign {
                record,
                token,
                now_us,
            } => self.confirm_presign(record, token, *now_us).await,
            Write::ForgetPresigns(keys) => {
                self.exec("DELETE FROM presigns WHERE key = ANY($1)", &[keys])
                    .await?;
                Ok(Outcome::Done)
            }
            Write::Recrop(ids) => self.recrop(ids).await,
            Write::ReplaceFile(record) => self.replace_file(record).await,
            Write::Within { folder, write } => {
                let id = write.item().ok_or(CatalogError::NotFound("media item"))?;
                match self.get(id).await? {
                    Some(r) if folder.holds(&r.folder) => Box::pin(self.applied(write)).await,
                    _ => Err(CatalogError::NotFound("media item").into()),
                }
            }
            Write::Move {
                id,
                visibility,
                moved,
            } => self.move_files(id, *visibility, moved).await,
            Write::CacheCrop(crop) => self.cache_crop(crop).await,
            Write::TouchCrop { id, key, now_us } => {
                self.exec(
                    "UPDATE crop_cache SET last_used_us = $3 WHERE item_id = $1 AND key = $2",
                    &[id, key, &(*now_us as i64)],
                )
                .await?;
                Ok(Outcome::Done)
            }
            Write::Webhooks(write) => self.webhook_write(write).await,
        }
    }

    // ---- media -------------------------------------------------------------------------

    /// The item's record, its row locked until the batch commits.
    async fn get(&self, id: &str) -> Done<Option<MediaRecord>> {
        let row = self
            .row("SELECT record FROM media WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        Ok(row.map(|r| decode(r.get(0))).transpose()?)
    }

    async fn insert_with_job(&mut self, r: &MediaRecord) -> Done<()> {
        self.insert_record(r).await?;
        if r.is_processing() {
            self.add_job(&r.id, 0).await?;
        }
        Ok(())
    }

    async fn insert_record(&mut self, r: &MediaRecord) -> Done<()> {
        self.put_row(
            "INSERT INTO media (id, record, folder, kind, created_us, size, name_key, alt_key, \
             search, private) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            r,
        )
        .await?;
        self.claim_files(&r.storage_keys(), &r.id).await?;
        self.bump(&scopes(&r.folder, r.kind(), r.visibility), 1);
        self.fx.searched = true;
        Ok(())
    }

    /// Rewrites item `old` as `new` (`remove_record` then `insert_record` on redb): its
    /// row, its counters if it moved, its files (the old ones it no longer names go).
    async fn rewrite(&mut self, old: &MediaRecord, new: &MediaRecord) -> Done<()> {
        self.put_row(
            "UPDATE media SET record = $2, folder = $3, kind = $4, created_us = $5, \
             size = $6, name_key = $7, alt_key = $8, search = $9, private = $10 WHERE id = $1",
            new,
        )
        .await?;
        self.bump(&scopes(&old.folder, old.kind(), old.visibility), -1);
        self.bump(&scopes(&new.folder, new.kind(), new.visibility), 1);
        self.fx.searched = true;
        let kept = new.storage_keys();
        let gone: Vec<String> = old
            .storage_keys()
            .into_iter()
            .filter(|k| !kept.contains(k))
            .collect();
        self.release_files(&gone).await?;
        self.claim_files(&kept, &new.id).await
    }

    /// Runs `sql` (an insert or an update of a media row) with the record's columns as
    /// $1-$10: id, record, folder, kind, created, size, name, alt, search text, private.
    async fn put_row(&self, sql: &str, r: &MediaRecord) -> Done<()> {
        let c = Columns::of(r);
        self.exec(
            sql,
            &[
                &r.id,
                &encode(r),
                &c.folder,
                &c.kind,
                &c.created_us,
                &c.size,
                &c.name_key,
                &c.alt_key,
                &c.search,
                &c.private,
            ],
        )
        .await
        .map(drop)
    }

    /// Only the record (processing state): sort columns and counters are unchanged.
    async fn put_media(&self, r: &MediaRecord) -> Done<()> {
        self.exec(
            "UPDATE media SET record = $2 WHERE id = $1",
            &[&r.id, &encode(r)],
        )
        .await
        .map(drop)
    }

    fn bump(&mut self, scopes: &[String], delta: i64) {
        for scope in scopes {
            *self.fx.counts.entry(scope.clone()).or_insert(0) += delta;
        }
    }

    async fn update_media(&mut self, id: &str, patch: &MediaPatch, recrop: bool) -> Done<Outcome> {
        let old = self
            .get(id)
            .await?
            .ok_or(CatalogError::NotFound("media item"))?;
        let mut new = old.clone();
        patch.apply(&mut new);
        if (new.focal_x, new.focal_y) != (old.focal_x, old.focal_y) {
            self.drop_item_crops(id).await?;
            new.crop_version = old.crop_version.max(1) + 1;
        }
        let stale = recrop.then(|| new.recrop_after(&old)).flatten();
        self.rewrite(&old, &new).await?;
        if let Some(keys) = stale {
            self.queue_deletes(&keys).await?;
            self.add_job(id, 0).await?;
        }
        self.fx.events.push(Event::updated(&new, patch));
        Ok(media(new))
    }

    async fn replace_file(&mut self, file: &MediaRecord) -> Done<Outcome> {
        let old = self
            .get(&file.id)
            .await?
            .ok_or(CatalogError::NotFound("media item"))?;
        if file.visibility != old.visibility {
            return Err(CatalogError::ItemChanged.into()); // staged for the old place
        }
        let new = old.with_file_of(file);
        self.drop_item_crops(&new.id).await?;
        self.remove_job(&new.id).await?;
        let mut gone = old.storage_keys();
        gone.extend(self.release_item_files(&new.id).await?);
        gone.sort();
        gone.dedup();
        self.rewrite(&old, &new).await?;
        if new.is_processing() {
            self.add_job(&new.id, 0).await?;
        }
        self.queue_deletes(&gone).await?;
        self.fx.events.extend(Event::replaced(&new));
        Ok(media(new))
    }

    /// A visibility change (see `Write::Move`).
    async fn move_files(
        &mut self,
        id: &str,
        visibility: Visibility,
        moved: &[(String, String)],
    ) -> Done<Outcome> {
        let old = self
            .get(id)
            .await?
            .ok_or(CatalogError::NotFound("media item"))?;
        let new = moving(&old, visibility, moved)?;
        self.drop_item_crops(id).await?;
        let mut gone = old.storage_keys();
        gone.extend(self.release_item_files(id).await?);
        gone.sort();
        gone.dedup();
        self.rewrite(&old, &new).await?;
        self.queue_deletes(&gone).await?;
        self.fx
            .events
            .push(Event::changed(&new, vec!["visibility"]));
        Ok(media(new))
    }

    /// Removes the item and queues every file the catalog knows for it; an item whose
    /// record cannot be read is deleted all the same, from its columns.
    async fn delete_media(&mut self, id: &str) -> Done<Outcome> {
        let mut files = match self.get(id).await {
            Ok(Some(old)) => {
                self.fx.events.push(Event::media(EventType::Deleted, &old));
                old.storage_keys()
            }
            Ok(None) => return Err(CatalogError::NotFound("media item").into()),
            Err(Step::Domain(CatalogError::Corrupt(_))) => Vec::new(),
            Err(e) => return Err(e),
        };
        let row = self
            .row(
                "DELETE FROM media WHERE id = $1 RETURNING folder, kind, private",
                &[&id],
            )
            .await?
            .ok_or(CatalogError::NotFound("media item"))?;
        let folder: String = row.get(0);
        let kind = Kind::from_tag(row.get::<_, i16>(1) as u8)
            .ok_or_else(|| CatalogError::Corrupt(format!("{id}: kind")))?;
        let visibility = if row.get::<_, bool>(2) {
            Visibility::Private
        } else {
            Visibility::Public
        };
        self.bump(&scopes(&folder, kind, visibility), -1);
        self.fx.searched = true;
        self.drop_item_crops(id).await?;
        if self.remove_job(id).await? {
            self.job_ended(id).await?; // its waiters answer now: the item is gone
        }
        files.extend(self.release_item_files(id).await?);
        files.sort();
        files.dedup();
        self.queue_deletes(&files).await?;
        Ok(Outcome::Deleted { queued: Vec::new() })
    }

    // ---- files and the delete queue ----------------------------------------------------

    /// Item `id` owns these files; a key claimed again leaves the delete queue.
    async fn claim_files(&self, keys: &[String], id: &str) -> Done<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.exec(
            "INSERT INTO files (key, item_id) SELECT DISTINCT k, $2::text FROM unnest($1::text[]) k \
             ON CONFLICT (key) DO UPDATE SET item_id = excluded.item_id",
            &[&keys, &id],
        )
        .await?;
        self.exec("DELETE FROM pending_deletes WHERE key = ANY($1)", &[&keys])
            .await
            .map(drop)
    }

    async fn release_files(&self, keys: &[String]) -> Done<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.exec("DELETE FROM files WHERE key = ANY($1)", &[&keys])
            .await
            .map(drop)
    }

    /// Forgets every file item `id` still owns; returns their keys.
    async fn release_item_files(&self, id: &str) -> Done<Vec<String>> {
        let rows = self
            .rows("DELETE FROM files WHERE item_id = $1 RETURNING key", &[&id])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn queue_deletes(&mut self, keys: &[String]) -> Done<()> {
        if !keys.is_empty() {
            self.exec(
                "INSERT INTO pending_deletes (key, queued_us) \
                 SELECT DISTINCT k, $2::bigint FROM unnest($1::text[]) k \
                 ON CONFLICT (key) DO UPDATE SET queued_us = excluded.queued_us",
                &[&keys, &(now_us() as i64)],
            )
            .await?;
        }
        self.fx.queued.extend_from_slice(keys);
        Ok(())
    }

    // ---- folders and keys --------------------------------------------------------------

    async fn create_folder(&mut self, path: &FolderPath) -> Done<Outcome> {
        let created = !path.is_root()
            && self
                .exec(
                    "INSERT INTO folders (path) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&path.as_str()],
                )
                .await?
                == 1;
        Ok(if created {
            self.fx
                .events
                .push(Event::folder(EventType::FolderCreated, path.as_str()));
            Outcome::FolderCreated
        } else {
            Outcome::FolderExisted
        })
    }

    async fn delete_folder(&mut self, path: &FolderPath) -> Done<Outcome> {
        if path.is_root() {
            return Err(CatalogError::RootFolder.into());
        }
        let p = path.as_str();
        // Subfolders: paths from "p/" up to (not including) "p0" ('0' follows '/').
        let (from, to) = (format!("{p}/"), format!("{p}0"));
        let row = self
            .row(
                "SELECT EXISTS (SELECT 1 FROM folders WHERE path = $1), \
                 EXISTS (SELECT 1 FROM media WHERE folder = $1), \
                 EXISTS (SELECT 1 FROM folders WHERE path >= $2 AND path < $3) \
                 OR EXISTS (SELECT 1 FROM media WHERE folder >= $2 AND folder < $3)",
                &[&p, &from, &to],
            )
            .await?
            .ok_or(CatalogError::NotFound("folder"))?;
        let (created, holds_media, has_children): (bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2));
        if !(created || holds_media || has_children) {
            return Err(CatalogError::NotFound("folder").into());
        }
        if holds_media || has_children {
            return Err(CatalogError::FolderNotEmpty.into());
        }
        self.exec("DELETE FROM folders WHERE path = $1", &[&p])
            .await?;
        self.fx
            .events
            .push(Event::folder(EventType::FolderDeleted, p));
        Ok(Outcome::Done)
    }

    async fn put_key(&self, record: &ApiKeyRecord) -> Done<Outcome> {
        let inserted = self
            .exec(
                "INSERT INTO api_keys (id, record) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&record.id, &encode(record)],
            )
            .await?;
        if inserted == 0 {
            return Err(CatalogError::IdTaken.into());
        }
        Ok(Outcome::Done)
    }

    /// Removes a key; the last `admin` key stays. Every key row is locked first, so two
    /// nodes revoking the last two admin keys at once take turns.
    async fn revoke_key(&self, id: &str) -> Done<Outcome> {
        let rows = self
            .rows("SELECT record FROM api_keys ORDER BY id FOR UPDATE", &[])
            .await?;
        let keys = rows
            .iter()
            .map(|r| decode::<ApiKeyRecord>(r.get(0)))
            .collect::<Result<Vec<_>>>()?;
        let record = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(CatalogError::NotFound("API key"))?;
        let admins = keys.iter().filter(|k| k.scope == Scope::Admin).count();
        if record.scope == Scope::Admin && admins == 1 {
            return Err(CatalogError::LastAdminKey.into());
        }
        self.exec("DELETE FROM api_keys WHERE id = $1", &[&id])
            .await?;
        Ok(Outcome::Done)
    }

    // ---- presigned uploads -------------------------------------------------------------

    async fn put_presign(&self, key: &str, presign: &PresignRecord) -> Done<()> {
        self.exec(
            "INSERT INTO presigns (key, record, expires_us) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET record = excluded.record, \
             expires_us = excluded.expires_us",
            &[
                &key,
                &encode(presign),
                &(presign.expires_us.min(i64::MAX as u64) as i64),
            ],
        )
        .await
        .map(drop)
    }

    /// The presign of `key`, if any, its row locked until the batch commits.
    async fn locked_presign(&self, key: &str) -> Done<Option<PresignRecord>> {
        let row = self
            .row(
                "SELECT record FROM presigns WHERE key = $1 FOR UPDATE",
                &[&key],
            )
            .await?;
        Ok(row.map(|r| decode(r.get(0))).transpose()?)
    }

    /// The presign of `key` (its row locked) if it may be confirmed at `now_us`.
    async fn confirmable(&self, key: &str, now_us: u64) -> Done<PresignRecord> {
        let presign = self.locked_presign(key).await?;
        let recorded = presign.is_none()
            && self
                .row("SELECT 1 FROM files WHERE key = $1", &[&key])
                .await?
                .is_some();
        Ok(confirm_rule(presign, recorded, now_us)?)
    }

    async fn begin_confirm(
        &self,
        key: &str,
        token: &str,
        now_us: u64,
        until_us: u64,
    ) -> Done<Outcome> {
        let mut presign = self.confirmable(key, now_us).await?;
        if presign.confirming_elsewhere(token, now_us) {
            return Err(CatalogError::ConfirmInProgress.into());
        }
        presign.confirming = Some(ConfirmLease {
            token: token.to_owned(),
            until_us,
        });
        self.put_presign(key, &presign).await?;
        Ok(Outcome::Done)
    }

    async fn end_confirm(&self, key: &str, token: &str) -> Done<Outcome> {
        let presign = self.locked_presign(key).await?;
        if let Some(mut presign) =
            presign.filter(|p| p.confirming.as_ref().is_some_and(|l| l.token == token))
        {
            presign.confirming = None;
            self.put_presign(key, &presign).await?;
        }
        Ok(Outcome::Done)
    }

    async fn confirm_presign(
        &mut self,
        record: &MediaRecord,
        token: &str,
        now_us: u64,
    ) -> Done<Outcome> {
        let key = record.storage_key.as_str();
        let mut presign = self.confirmable(key, now_us).await?;
        if presign.confirming_elsewhere(token, now_us) {
            return Err(CatalogError::ConfirmInProgress.into());
        }
        if presign.confirming.as_ref().is_none_or(|l| l.token != token) {
            return Err(CatalogError::LeaseLost.into());
        }
        presign.confirmed = true;
        presign.confirming = None;
        self.put_presign(key, &presign).await?;
        self.insert_with_job(record).await?;
        self.fx.events.extend(Event::arrived(record));
        Ok(Outcome::Done)
    }

    // ---- jobs (`catalog::write::jobs`) -------------------------------------------------

    /// Sets a job's count of starts (a new job, or one to run again); a lease on it
    /// stays (the node running it finds its run stale and runs it again).
    async fn add_job(&mut self, id: &str, attempts: i32) -> Done<()> {
        let row = self
            .row(
                "INSERT INTO jobs (item_id, attempts, queued_us) VALUES ($1, $2, $3) \
                 ON CONFLICT (item_id) DO UPDATE SET attempts = excluded.attempts \
                 RETURNING (xmax = 0)",
                &[&id, &attempts, &(now_us() as i64)],
            )
            .await?;
        if row.is_some_and(|r| r.get::<_, bool>(0)) {
            self.fx.jobs_delta += 1;
        }
        Ok(())
    }

    /// Every node's `?wait=true` requests for the item hear it once this commits.
    async fn job_ended(&self, id: &str) -> Done<()> {
        self.exec(
            "SELECT pg_notify($1, $2)",
            &[&super::catalog::JOBS_DONE, &id],
        )
        .await
        .map(drop)
    }

    /// Removes an item's job; true when there was one.
    async fn remove_job(&mut self, id: &str) -> Done<bool> {
        let had = self
            .exec("DELETE FROM jobs WHERE item_id = $1", &[&id])
            .await?
            > 0;
        if had {
            self.fx.jobs_delta -= 1;
        }
        Ok(had)
    }

    async fn recrop(&mut self, ids: &[String]) -> Done<Outcome> {
        for id in ids {
            let Some(mut r) = self.get(id).await? else {
                continue;
            };
            if let Some(p) = r.processing.as_mut().filter(|p| p.status == Status::Ready) {
                p.status = Status::Processing;
                self.put_media(&r).await?;
                self.add_job(id, 0).await?;
            }
        }
        Ok(Outcome::Done)
    }

    /// Claims the job for this node, unless another live node holds it (`JobElsewhere`).
    async fn start_job(&mut self, id: &str, max_attempts: u32) -> Done<Outcome> {
        let Some(row) = self
            .row(
                "SELECT attempts, lease_token, coalesce(lease_until > clock_timestamp(), false) \
                 FROM jobs WHERE item_id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
        else {
            return Ok(Outcome::JobSkipped);
        };
        let (attempts, holder, live): (i32, Option<String>, bool) =
            (row.get(0), row.get(1), row.get(2));
        if live && holder.as_deref().is_some_and(|h| h != self.node()) {
            return Ok(Outcome::JobElsewhere);
        }
        let attempts = attempts.max(0) as u32;
        if attempts >= max_attempts {
            let (failed, source) = out_of_attempts(attempts, self.get(id).await?);
            self.finish_job(id, &failed, &source).await?;
            return Ok(Outcome::JobSkipped);
        }
        let lease = self.catalog.lease.as_secs_f64();
        self.exec(
            "UPDATE jobs SET attempts = attempts + 1, lease_token = $2, \
             lease_until = clock_timestamp() + make_interval(secs => $3) WHERE item_id = $1",
            &[&id, &self.node(), &lease],
        )
        .await?;
        Ok(Outcome::JobStarted)
    }

    /// Records a job's result (redb's `finish_job`); only the lease holder (or anyone,
    /// once the lease ran out) removes the job.
    async fn finish_job(&mut self, id: &str, result: &JobResult, source: &str) -> Done<Outcome> {
        let current = self.get(id).await?;
        if let Some(outcome) = unrecordable(current.as_ref(), result, source) {
            return Ok(Outcome::Job(outcome));
        }
        let removed = self
            .exec(
                "DELETE FROM jobs WHERE item_id = $1 AND (lease_token IS NULL \
                 OR lease_token = $2 OR lease_until < clock_timestamp())",
                &[&id, &self.node()],
            )
            .await?;
        let had_job = removed > 0;
        if had_job {
            self.fx.jobs_delta -= 1;
        }
        if had_job || current.is_none() {
            self.job_ended(id).await?;
        }
        let Some(old) = current else {
            return Ok(Outcome::Job(JobOutcome::ItemGone));
        };
        if !had_job || !old.is_processing() {
            return Ok(Outcome::Job(JobOutcome::AlreadyDone));
        }
        let new = with_result(&old, result);
        self.put_media(&new).await?;
        self.claim_files(&new.storage_keys(), id).await?;
        let dropped = dropped_crops(&old, &new);
        self.release_files(&dropped).await?;
        self.queue_deletes(&dropped).await?;
        let mut skipped = skipped_crop_keys(&new);
        if !skipped.is_empty() {
            let recorded: Vec<String> = self
                .rows("SELECT key FROM files WHERE key = ANY($1)", &[&skipped])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            skipped.retain(|k| !recorded.contains(k) && !dropped.contains(k));
            self.queue_deletes(&skipped).await?;
        }
        self.fx.events.push(Event::finished(&new));
        Ok(Outcome::Job(JobOutcome::Recorded {
            queued: [dropped, skipped].concat(),
        }))
    }

    // ---- the on-demand crop cache (`catalog::write::crops`) ----------------------------

    async fn cache_crop(&mut self, c: &CacheCrop) -> Done<Outcome> {
        let current = self.get(&c.id).await?;
        let fresh = current
            .as_ref()
            .is_some_and(|r| r.storage_key == c.source && r.crop_version == c.version);
        if !fresh || c.size > c.budget {
            self.queue_deletes(std::slice::from_ref(&c.key)).await?;
            return Ok(Outcome::Crop(CropCached {
                kept: false,
                evicted: Vec::new(),
            }));
        }
        let replaced = self.remove_crop(&c.id, &c.key).await?;
        self.exec(
            "INSERT INTO crop_cache (item_id, key, size, last_used_us) VALUES ($1, $2, $3, $4)",
            &[&c.id, &c.key, &(c.size as i64), &(c.now_us as i64)],
        )
        .await?;
        self.claim_files(std::slice::from_ref(&c.key), &c.id)
            .await?;
        let mut total = self.add_cache_bytes(c.size as i64 - replaced).await?;
        let mut evicted = Vec::new();
        while total > c.budget.min(i64::MAX as u64) as i64 {
            let Some(row) = self
                .row(
                    "SELECT item_id, key FROM crop_cache WHERE NOT (item_id = $1 AND key = $2) \
                     ORDER BY last_used_us, item_id, key LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&c.id, &c.key],
                )
                .await?
            else {
                break;
            };
            let (item, key): (String, String) = (row.get(0), row.get(1));
            let freed = self.remove_crop(&item, &key).await?;
            total = self.add_cache_bytes(-freed).await?;
            evicted.push(key);
        }
        self.queue_deletes(&evicted).await?;
        Ok(Outcome::Crop(CropCached {
            kept: true,
            evicted,
        }))
    }

    /// Removes every cached crop of an item and queues their files.
    async fn drop_item_crops(&mut self, id: &str) -> Done<()> {
        let rows = self
            .rows(
                "DELETE FROM crop_cache WHERE item_id = $1 RETURNING key, size",
                &[&id],
            )
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let freed: i64 = rows.iter().map(|r| r.get::<_, i64>(1)).sum();
        self.release_files(&keys).await?;
        self.add_cache_bytes(-freed).await?;
        self.queue_deletes(&keys).await
    }

    /// Forgets one cached crop (its file row too); returns its size.
    async fn remove_crop(&self, id: &str, key: &str) -> Done<i64> {
        let row = self
            .row(
                "DELETE FROM crop_cache WHERE item_id = $1 AND key = $2 RETURNING size",
                &[&id, &key],
            )
            .await?;
        let Some(row) = row else { return Ok(0) };
        self.release_files(&[key.to_owned()]).await?;
        Ok(row.get(0))
    }

    /// Adds `delta` to the cache's byte count (at once: eviction reads it); the new count.
    async fn add_cache_bytes(&self, delta: i64) -> Done<i64> {
        Ok(add_count(self.tx, CACHE_BYTES, delta).await?)
    }
}

/// Adds `delta` to counter `scope` (never below zero, as on redb); its new value.
async fn add_count(
    tx: &Transaction<'_>,
    scope: &str,
    delta: i64,
) -> std::result::Result<i64, tokio_postgres::Error> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO counts (scope, n) VALUES ($1, greatest($2::bigint, 0)) \
             ON CONFLICT (scope) DO UPDATE SET n = greatest(counts.n + $2::bigint, 0) RETURNING n",
        )
        .await?;
    Ok(tx.query_one(&statement, &[&scope, &delta]).await?.get(0))
}
