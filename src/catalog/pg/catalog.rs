//! `PgCatalog`: the catalog's reads on PostgreSQL, answering exactly what redb's answer
//! (`catalog::read`, `catalog::list`), and the cluster upkeep of one node (its job leases
//! renewed, the cluster's backlog counted). Records are read afresh every time (any node
//! may have written since); the folder list and the keys are kept until a commit says
//! they changed (`kept`), and search answers until one bumps the search generation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::kept::{CHANGED, Kept};
use super::webhooks::OUTBOX;
use super::{Pg, PgError, PgOptions, migrate};
use crate::catalog::index::{self, count_key, id_of, private_count_key, push_tail};
use crate::catalog::read::confirm_rule;
use crate::catalog::search::{self, memo};
use crate::catalog::{CatalogError, JobEvent, keys, presets};
use crate::model::{
    ApiKeyRecord, FolderPath, ID_LEN, ListQuery, MediaRecord, Page, Presets, PresignRecord,
    SortField, Visibility, fold,
};
use crate::storage::key::{is_ondemand_crop, key_stem};

pub(super) type Result<T> = std::result::Result<T, CatalogError>;

/// The channel a commit that ends a job notifies, with the item's id.
pub(super) const JOBS_DONE: &str = "darkroom_jobs_done";
/// The channel a node that runs no jobs announces its new jobs on, with their ids.
const JOBS_QUEUED: &str = "darkroom_jobs_queued";

/// A claim held by this node across the cluster (see `PgCatalog::exclusive`): given
/// back when dropped (else it runs out by itself).
pub struct Exclusive {
    catalog: Option<Arc<PgCatalog>>,
    task: String,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        let (Some(catalog), task) = (self.catalog.take(), std::mem::take(&mut self.task)) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = catalog.release(&task).await {
                    tracing::debug!(error = %e, %task, "claim not given back; it runs out");
                }
            });
        }
    }
}

/// The catalog on PostgreSQL (see the module and `docs/postgres-catalog.md`).
pub struct PgCatalog {
    pub(super) pg: Pg,
    /// This process's lease token: the jobs it runs carry it.
    pub(super) node: String,
    pub(super) lease: Duration,
    /// Rows in `jobs` across the cluster, as last counted (and moved by this node's own
    /// commits meanwhile).
    pub(super) jobs: AtomicU64,
    /// Recent search answers, valid at the search generation they were made at.
    memo: memo::Memo<tokio::sync::Mutex<Option<memo::Answer>>>,
    /// The folder list and the keys, while no commit changed them.
    pub(super) kept: Arc<Kept>,
    /// Listens for those commits (ended with the catalog).
    hearing: tokio::task::JoinHandle<()>,
    /// Told when a commit (of any node) put events in an outbox (`OUTBOX`).
    pub(super) outbox: Arc<tokio::sync::Notify>,
    /// True once this node gives its turns back (`let_go`); held while one is taken.
    turns: Arc<tokio::sync::RwLock<bool>>,
    /// Test-only: commits wait while this is held for writing (see `hold_writes`).
    #[cfg(test)]
    pub(super) gate: Arc<tokio::sync::RwLock<()>>,
}

impl Drop for PgCatalog {
    fn drop(&mut self) {
        self.hearing.abort();
    }
}

impl PgCatalog {
    /// Connects, brings the schema up to date and counts the backlog.
    pub async fn open(options: PgOptions, lease: Duration) -> std::result::Result<Self, PgError> {
        let pg = Pg::connect(options).await?;
        migrate(&pg).await?;
        let node = format!("{}-{}", std::process::id(), crate::model::random_token(12));
        let kept = Arc::new(Kept::default());
        let outbox = Arc::new(tokio::sync::Notify::new());
        let hearing = pg.listen(
            &[CHANGED, OUTBOX],
            {
                let (kept, outbox) = (kept.clone(), outbox.clone());
                move |channel, _| match channel {
                    OUTBOX => outbox.notify_one(),
                    _ => kept.changed(),
                }
            },
            {
                let kept = kept.clone();
                move |up| kept.listening(up)
            },
        );
        let catalog = Self {
            pg,
            node,
            lease,
            jobs: AtomicU64::new(0),
            memo: Default::default(),
            kept,
            hearing,
            outbox,
            turns: Arc::default(),
            #[cfg(test)]
            gate: Arc::default(),
        };
        catalog.count_jobs().await.map_err(|e| match e {
            CatalogError::Pg(e) => e,
            other => PgError::Query(other.to_string()),
        })?;
        Ok(catalog)
    }

    /// Told when a commit of any node put events in an outbox.
    pub fn outbox_filled(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    /// Where the catalog is (`user@host:port/database`), for messages.
    pub fn at(&self) -> &str {
        self.pg.at()
    }

    /// Runs a statement (prepared once per connection) and returns its rows.
    pub(super) async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.pg.client().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.fail(&e))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.fail(&e))
    }

    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// A connection of the pool (`catalog copy` holds one for its transaction).
    pub(in crate::catalog) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pg.client().await.map_err(unavailable)
    }

    /// Items as they are, with their columns, in one statement (`catalog copy`: their
    /// files, counters and jobs are copied as tables of their own).
    pub(in crate::catalog) async fn insert_rows(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        records: &[MediaRecord],
    ) -> Result<()> {
        let mut cols = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for r in records {
            let c = Columns::of(r);
            cols.0.push(r.id.clone());
            cols.1.push(encode(r));
            cols.2.push(c.folder);
            cols.3.push(c.kind);
            cols.4.push(c.created_us);
            cols.5.push(c.size);
            cols.6.push(c.name_key);
            cols.7.push(c.alt_key);
            cols.8.push(c.search);
            cols.9.push(c.private);
        }
        tx.execute(
            "INSERT INTO media (id, record, folder, kind, created_us, size, name_key, alt_key, \
             search, private) SELECT id, r, f, k, c, s, n, a, t, p FROM unnest($1::text[], \
             $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::bigint[], $7::text[], \
             $8::text[], $9::text[], $10::boolean[]) AS u(id, r, f, k, c, s, n, a, t, p)",
            &[
                &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &cols.7, &cols.8,
                &cols.9,
            ],
        )
        .await
        .map_err(|e| self.fail(&e))
        .map(drop)
    }

    /// A driver error as the catalog's (a connection gone or a deadline: `Unavailable`).
    pub(in crate::catalog) fn fail(&self, e: &tokio_postgres::Error) -> CatalogError {
        unavailable(self.pg.error(e))
    }

    // ---- point reads -------------------------------------------------------------------

    pub async fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        let row = self
            .row("SELECT record FROM media WHERE id = $1", &[&id])
            .await?;
        row.map(|r| decode(r.get(0))).transpose()
    }

    /// Ready when the database answers.
    pub async fn check(&self) -> Result<()> {
        self.rows("SELECT 1", &[]).await.map(drop)
    }

    pub async fn authenticate(&self, presented: &str) -> Result<Option<ApiKeyRecord>> {
        let Some(id) = keys::parse_id(presented) else {
            return Ok(None);
        };
        let record = match self.kept.key(id) {
            Some(record) => record,
            None => {
                let stamp = self.kept.stamp();
                let row = self
                    .row("SELECT record FROM api_keys WHERE id = $1", &[&id])
                    .await?;
                let Some(record) = row.map(|r| decode::<ApiKeyRecord>(r.get(0))).transpose()?
                else {
                    return Ok(None);
                };
                self.kept.keep_key(stamp, &record);
                record
            }
        };
        Ok(keys::verify(&record, presented).then_some(record))
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let rows = self.rows("SELECT record FROM api_keys", &[]).await?;
        let mut keys = rows
            .iter()
            .map(|r| decode(r.get(0)))
            .collect::<Result<Vec<ApiKeyRecord>>>()?;
        keys.sort_by_key(|k| k.created_us);
        Ok(keys)
    }

    pub async fn owner_of_file(&self, key: &str) -> Result<Option<String>> {
        let row = self
            .row("SELECT item_id FROM files WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn cached_crop(&self, id: &str, prefix: &str) -> Result<Option<(String, u64)>> {
        let pattern = format!("{}%", like_escape(prefix));
        let row = self
            .row(
                "SELECT key, last_used_us FROM crop_cache WHERE item_id = $1 \
                 AND key LIKE $2 ORDER BY key LIMIT 1",
                &[&id, &pattern],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get::<_, i64>(1) as u64)))
    }

    pub async fn presign_to_confirm(&self, key: &str, now_us: u64) -> Result<PresignRecord> {
        let presign = self
            .row("SELECT record FROM presigns WHERE key = $1", &[&key])
            .await?
            .map(|r| decode(r.get(0)))
            .transpose()?;
        let recorded = presign.is_none() && self.owner_of_file(key).await?.is_some();
        confirm_rule(presign, recorded, now_us)
    }

    // ---- scans -------------------------------------------------------------------------

    /// Every folder that holds media or was created, their parents, and `/`, sorted.
    pub async fn folders(&self) -> Result<Vec<String>> {
        if let Some(folders) = self.kept.folders() {
            return Ok(folders);
        }
        let stamp = self.kept.stamp();
        // `f:` counters as a range of the key, so the generic plan can use the index.
        let rows = self
            .rows(
                "SELECT path FROM folders UNION ALL \
                 SELECT substr(scope, 3) FROM counts WHERE scope >= 'f:' AND scope < 'f;'",
                &[],
            )
            .await?;
        let mut set = std::collections::BTreeSet::from(["/".to_owned()]);
        for row in rows {
            let path: String = row.get(0);
            set.extend(FolderPath::ancestors(&path).map(str::to_owned));
            set.insert(path);
        }
        let folders: Vec<String> = set.into_iter().collect();
        self.kept.keep_folders(stamp, &folders);
        Ok(folders)
    }

    pub async fn pending_deletes(&self) -> Result<Vec<String>> {
        let rows = self
            .rows("SELECT key FROM pending_deletes ORDER BY key", &[])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub async fn expired_presigns(&self, now_us: u64) -> Result<Vec<(String, PresignRecord)>> {
        let rows = self
            .rows(
                "SELECT key, record FROM presigns WHERE expires_us < $1 ORDER BY key",
                &[&(now_us as i64)],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let presign: PresignRecord = decode(row.get(1))?;
            if presign.is_expired(now_us) {
                out.push((row.get(0), presign));
            }
        }
        Ok(out)
    }

    /// Jobs this node may run: free ones (not given back by a node moments ago), ones
    /// whose node let the lease run out, and its own, oldest first.
    pub async fn unfinished_jobs(&self) -> Result<Vec<String>> {
        // Three parts, each served by an index (jobs_free, jobs_leased), not one scan.
        let rows = self
            .rows(
                "(SELECT item_id, queued_us FROM jobs WHERE lease_token IS NOT NULL \
                 AND lease_token = $1) \
                 UNION ALL (SELECT item_id, queued_us FROM jobs WHERE lease_token IS NOT NULL \
                 AND lease_until < clock_timestamp() AND lease_token <> $1 LIMIT 1000) \
                 UNION ALL (SELECT item_id, queued_us FROM jobs WHERE lease_token IS NULL \
                 AND run_after_us <= (extract(epoch FROM clock_timestamp()) * 1e6)::bigint \
                 ORDER BY queued_us LIMIT 1000) \
                 ORDER BY queued_us LIMIT 1000",
                &[&self.node],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Unfinished jobs in the cluster (as last counted).
    pub fn job_count(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Counts the cluster's jobs again.
    pub async fn count_jobs(&self) -> Result<()> {
        let row = self.row("SELECT count(*) FROM jobs", &[]).await?;
        let n: i64 = row.map_or(0, |r| r.get(0));
        self.jobs.store(n.max(0) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Renews the leases of the jobs this node runs.
    pub async fn renew_leases(&self) -> Result<()> {
        let secs = self.lease.as_secs_f64();
        self.rows(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => $2) \
             WHERE lease_token = $1 RETURNING 1",
            &[&self.node, &secs],
        )
        .await
        .map(drop)
    }

    /// Of a batch of stored files, those the catalog still wants (`Catalog::claims_file`'s
    /// rule): recorded, queued for deletion, a presign's object, or sharing its stem with a
    /// recorded file (not an on-demand crop).
    pub async fn claimed(&self, keys: Vec<String>) -> Result<std::collections::HashSet<String>> {
        let rows = self
            .rows(
                "SELECT key FROM files WHERE key = ANY($1) \
                 UNION SELECT key FROM pending_deletes WHERE key = ANY($1) \
                 UNION SELECT key FROM presigns WHERE key = ANY($1)",
                &[&keys],
            )
            .await?;
        let mut claimed: std::collections::HashSet<String> =
            rows.iter().map(|r| r.get(0)).collect();
        for key in keys {
            if claimed.contains(&key) || is_ondemand_crop(&key) {
                continue;
            }
            let stem = key_stem(&key);
            let rows = self
                .rows(
                    "SELECT key FROM files WHERE key >= $1 AND key < $2 ORDER BY key LIMIT 64",
                    &[&stem, &prefix_end(stem)],
                )
                .await?;
            if rows.iter().any(|r| key_stem(r.get::<_, &str>(0)) == stem) {
                claimed.insert(key);
            }
        }
        Ok(claimed)
    }

    /// Queues the job of every image whose crops are not `presets`, once per change of
    /// `presets` (as `Catalog::backfill_presets`); returns how many.
    pub async fn backfill_presets(&self, presets: &Presets) -> Result<usize> {
        let fingerprint = presets::fingerprint(presets) as i64;
        let seen = self
            .row("SELECT value FROM meta WHERE key = 'presets'", &[])
            .await?
            .map(|r| r.get::<_, i64>(0));
        if seen == Some(fingerprint) {
            return Ok(0);
        }
        let (mut after, mut queued) = (String::new(), 0);
        loop {
            let rows = self
                .rows(
                    "SELECT id, record FROM media WHERE id > $1 ORDER BY id LIMIT 1000",
                    &[&after],
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            let mut ids = Vec::new();
            for row in &rows {
                let record: MediaRecord = decode(row.get(1))?;
                if presets::needs_crops(&record, presets) {
                    ids.push(record.id);
                }
            }
            queued += ids.len();
            // Small writes: each locks its rows against the other nodes' batches.
            for chunk in ids.chunks(50) {
                self.apply(vec![crate::catalog::Write::Recrop(chunk.to_vec())])
                    .await?
                    .pop()
                    .unwrap_or(Err(CatalogError::Unavailable))?;
            }
        }
        self.rows(
            "INSERT INTO meta (key, value) VALUES ('presets', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value RETURNING 1",
            &[&fingerprint],
        )
        .await?;
        if queued > 0 {
            tracing::info!(
                images = queued,
                "crop presets changed: images queued for their crops"
            );
        }
        Ok(queued)
    }

    // ---- the cluster -------------------------------------------------------------------

    /// Takes (or keeps) `task` for this node for `hold`, unless another node holds it: a
    /// task for the whole cluster (the delete drain, presign expiry, the orphan sweep)
    /// runs on one node at a time, and moves to another once its holder stops renewing.
    pub async fn take_turn(self: &Arc<Self>, task: &str, hold: Duration) -> Result<bool> {
        // The statement runs to its end on a task of its own, holding `turns`: a caller
        // dropped half-way (a periodic task ended at shutdown) cannot have its turn land
        // after `let_go` gave the node's turns back, where it would keep the other nodes
        // from the task for the whole hold.
        let letting_go = self.turns.clone().read_owned().await;
        if *letting_go {
            return Ok(false);
        }
        let (this, task) = (self.clone(), task.to_owned());
        let taken = tokio::spawn(async move {
            let _held = letting_go;
            let rows = this
                .rows(
                    "INSERT INTO cluster_tasks (task, holder, until) \
                     VALUES ($1, $2, now() + make_interval(secs => $3)) \
                     ON CONFLICT (task) DO UPDATE SET holder = excluded.holder, \
                     until = excluded.until \
                     WHERE cluster_tasks.until < now() OR cluster_tasks.holder = excluded.holder \
                     RETURNING 1",
                    &[&task, &this.node, &hold.as_secs_f64()],
                )
                .await?;
            Ok(!rows.is_empty())
        });
        taken.await.unwrap_or(Err(CatalogError::Unavailable))
    }

    /// Waits until no other node holds `name` (a crop being made), and holds it until the
    /// guard drops, for `hold` at most: a claim row in `cluster_tasks` (no connection is
    /// held meanwhile). `None` when it could not be had within `hold` or the database
    /// cannot say (the caller goes on without it: the work may then be done twice, never
    /// lost).
    pub async fn exclusive(self: &Arc<Self>, name: &str, hold: Duration) -> Option<Exclusive> {
        let task = format!("claim:{name}");
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            match self.take_turn(&task, hold).await {
                Ok(true) => {
                    return Some(Exclusive {
                        catalog: Some(self.clone()),
                        task,
                    });
                }
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(false) | Err(_) => return None,
            }
        }
    }

    /// Gives a claim back (see `exclusive`).
    async fn release(&self, task: &str) -> Result<()> {
        self.rows(
            "DELETE FROM cluster_tasks WHERE task = $1 AND holder = $2 RETURNING 1",
            &[&task, &self.node],
        )
        .await
        .map(drop)
    }

    /// Hands back what this node holds in the cluster (at a graceful stop): its jobs'
    /// leases, so other nodes take them at once, and its task turns and claims.
    pub async fn let_go(&self) -> Result<()> {
        // Turns being taken land first; none is taken after.
        *self.turns.write().await = true;
        self.rows(
            "UPDATE jobs SET lease_token = NULL, lease_until = NULL WHERE lease_token = $1 \
             RETURNING 1",
            &[&self.node],
        )
        .await?;
        self.rows(
            "DELETE FROM cluster_tasks WHERE holder = $1 RETURNING 1",
            &[&self.node],
        )
        .await
        .map(drop)
    }

    /// Calls `heard` with every job any node finishes or announces (`?wait=true`
    /// requests wait on this node for jobs another node runs; nodes that run jobs take
    /// those of nodes that do not).
    pub fn on_jobs(
        &self,
        heard: impl Fn(JobEvent) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.pg.listen(
            &[JOBS_DONE, JOBS_QUEUED],
            move |channel, id| {
                let id = id.to_owned();
                heard(if channel == JOBS_DONE {
                    JobEvent::Done(id)
                } else {
                    JobEvent::Queued(id)
                })
            },
            |_| {},
        )
    }

    /// Tells the nodes that run jobs about committed jobs this node will not run.
    pub async fn announce(&self, ids: &[String]) -> Result<()> {
        self.rows(
            "SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id",
            &[&JOBS_QUEUED, &ids],
        )
        .await
        .map(drop)
    }

    // ---- listings ----------------------------------------------------------------------

    /// One page in the requested order with the exact total: a keyset query on the
    /// listing indexes, or with a search, a `LIKE` on the folded texts (served by the
    /// trigram index) and its count. A search's first `TOP` positions and total are
    /// remembered until a commit changes what search finds (the `search_generation` in
    /// `meta`, bumped in the same commit), as redb does: identical searches wait for the
    /// first one and later pages within those positions are slices of it.
    pub async fn list(&self, q: &ListQuery) -> Result<Page> {
        match &q.search {
            Some(needle) if q.cursor.is_some() || q.offset.saturating_add(q.limit) <= memo::TOP => {
                self.search(q, needle).await
            }
            _ => self.walk(q, true).await.map(|(page, _)| page),
        }
    }

    async fn search(&self, q: &ListQuery, needle: &str) -> Result<Page> {
        let row = self
            .row(
                "SELECT value FROM meta WHERE key = 'search_generation'",
                &[],
            )
            .await?;
        let generation = row.map_or(0, |r| r.get::<_, i64>(0)) as u64;
        let slot = self.memo.slot(memo::Key::of(q, needle));
        // Held while the answer is computed (identical searches wait for it, as on redb),
        // never while a page is read from it.
        let mut held = slot.lock().await;
        let hit = match held.as_ref().filter(|a| a.generation == generation) {
            Some(answer) => answer.page(q),
            None => {
                let first = ListQuery {
                    offset: 0,
                    limit: memo::TOP,
                    cursor: None,
                    ..q.clone()
                };
                let (top, positions) = self.walk(&first, false).await?;
                let answer = memo::Answer {
                    generation,
                    total: top.total,
                    complete: top.next.is_none(),
                    positions,
                };
                let hit = answer.page(q);
                *held = Some(answer);
                hit
            }
        };
        drop(held);
        if let Some(hit) = hit
            && let Some(page) = self.page_of(&hit, generation).await?
        {
            return Ok(page);
        }
        // Past what the answer holds, or the items changed meanwhile: the page afresh.
        self.walk(q, true).await.map(|(page, _)| page)
    }

    /// The records at a search answer's positions, in its order, read in one statement
    /// with the search generation: `None` when a commit changed what search finds since
    /// the answer was made (its positions may no longer match).
    async fn page_of(&self, hit: &search::Hit, generation: u64) -> Result<Option<Page>> {
        let ids: Vec<&str> = hit.keys.iter().filter_map(|k| id_of(k)).collect();
        let rows = self
            .rows(
                "SELECT g.value, m.id, m.record \
                 FROM (SELECT coalesce((SELECT value FROM meta WHERE key = 'search_generation'), 0)) \
                 AS g (value) LEFT JOIN media m ON m.id = ANY($1)",
                &[&ids],
            )
            .await?;
        let now = rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64;
        if now != generation {
            return Ok(None);
        }
        let mut by_id: std::collections::HashMap<&str, &str> = rows
            .iter()
            .filter_map(|r| Some((r.get::<_, Option<&str>>(1)?, r.get::<_, Option<&str>>(2)?)))
            .collect();
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            // The generation is unchanged, so every position is still an item.
            let record = by_id
                .remove(id)
                .ok_or_else(|| CatalogError::Corrupt(format!("{id} in a search answer only")))?;
            items.push(decode(record)?);
        }
        Ok(Some(Page {
            items,
            total: hit.total,
            next: if hit.more {
                hit.keys.last().cloned()
            } else {
                None
            },
        }))
    }

    /// One page and its total, in one statement (one snapshot); with `records` false the
    /// records are not read, only the positions (a search answer's first `TOP`).
    async fn walk(&self, q: &ListQuery, records: bool) -> Result<(Page, Vec<Vec<u8>>)> {
        let column = match q.sort {
            SortField::CreatedAt => "created_us",
            SortField::Filename => "name_key",
            SortField::Size => "size",
        };
        let (order, past) = if q.descending {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };
        let folder = q.folder.as_ref().map(|f| f.as_str().to_owned());
        let kind = q.kind.map(|k| k.tag() as i16);
        let pattern = q.search.as_ref().map(|s| format!("%{}%", like_escape(s)));
        let mut filters: Vec<String> = Vec::new();
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let bind = |value: Box<dyn ToSql + Sync + Send>, params: &mut Vec<_>| {
            params.push(value);
            format!("${}", params.len())
        };
        // A key limited to a folder without a folder asked for: that folder's subtree.
        let subtree = q.within.as_ref().filter(|_| folder.is_none());
        let folder = folder.or_else(|| subtree.map(|f| f.as_str().to_owned()));
        if let Some(f) = &folder {
            let p = bind(Box::new(f.clone()), &mut params);
            if subtree.is_some() {
                let (below, past) = index::below(f);
                let below = bind(Box::new(below), &mut params);
                let past = bind(Box::new(past), &mut params);
                filters.push(format!(
                    "(folder = {p} OR (folder >= {below} AND folder < {past}))"
                ));
            } else {
                filters.push(format!("folder = {p}"));
            }
        }
        if let Some(k) = kind {
            let p = bind(Box::new(k), &mut params);
            filters.push(format!("kind = {p}"));
        }
        if let Some(v) = q.visibility {
            filters.push(format!(
                "{}private",
                if v.is_private() { "" } else { "NOT " }
            ));
        }
        if let Some(pattern) = &pattern {
            let p = bind(Box::new(pattern.clone()), &mut params);
            filters.push(format!(
                "search LIKE {p} AND (name_key LIKE {p} OR alt_key LIKE {p})"
            ));
        }
        let total = if q.search.is_some() {
            format!("SELECT count(*) FROM media {}", where_clause(&filters))
        } else {
            // As on redb: every item's counter, the private items' one, or the difference.
            let (every, private) = (
                count_key(folder.as_deref(), q.kind),
                private_count_key(folder.as_deref(), q.kind),
            );
            // A subtree's counters: its root's, and those of every folder below it.
            let n = |scope: String, params: &mut Vec<_>| {
                if subtree.is_none() {
                    let scope = bind(Box::new(scope), params);
                    return format!("coalesce((SELECT n FROM counts WHERE scope = {scope}), 0)");
                }
                let (below, past) = index::below(&scope);
                let scope = bind(Box::new(scope), params);
                let below = bind(Box::new(below), params);
                let past = bind(Box::new(past), params);
                format!(
                    "coalesce((SELECT sum(n)::bigint FROM counts WHERE scope = {scope} \
                     OR (scope >= {below} AND scope < {past})), 0)"
                )
            };
            match q.visibility {
                None => format!("SELECT {}", n(every, &mut params)),
                Some(Visibility::Private) => format!("SELECT {}", n(private, &mut params)),
                Some(Visibility::Public) => format!(
                    "SELECT greatest({} - {}, 0)",
                    n(every, &mut params),
                    n(private, &mut params)
                ),
            }
        };
        if let Some(tail) = &q.cursor {
            let (value, id) = position(q.sort, tail)?;
            let v = bind(value, &mut params);
            let i = bind(Box::new(id), &mut params);
            filters.push(format!("({column}, id) {past} ({v}, {i})"));
        }
        let limit = bind(Box::new(q.limit as i64 + 1), &mut params);
        let offset = bind(Box::new(q.offset as i64), &mut params);
        // One statement, so the page and its total are one snapshot.
        let record = if records {
            "record"
        } else {
            "NULL::text AS record"
        };
        let sql = format!(
            "WITH page AS (SELECT {record}, id, created_us, size, name_key \
             FROM media {} ORDER BY {column} {order}, id {order} LIMIT {limit} OFFSET {offset}) \
             SELECT t.total, p.record, p.id, p.created_us, p.size, p.name_key \
             FROM ({total}) AS t (total) LEFT JOIN page p ON true \
             ORDER BY p.{column} {order}, p.id {order}",
            where_clause(&filters)
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.rows(&sql, &refs).await?;
        let total = rows.first().map_or(0, |r| r.get::<_, i64>(0)).max(0) as u64;
        let listed: Vec<&Row> = rows
            .iter()
            .filter(|r| r.get::<_, Option<&str>>(2).is_some())
            .collect();
        let more = listed.len() > q.limit;
        let mut items = Vec::with_capacity(listed.len().min(q.limit));
        let mut positions = Vec::new();
        for row in listed.into_iter().take(q.limit) {
            if records {
                items.push(decode(row.get(1))?);
            }
            let mut tail = Vec::new();
            push_tail(
                &mut tail,
                q.sort,
                row.get::<_, i64>(3) as u64,
                row.get::<_, i64>(4) as u64,
                row.get::<_, &str>(5),
                row.get::<_, &str>(2),
            );
            positions.push(tail);
        }
        let next = positions.last().cloned().filter(|_| more);
        Ok((Page { items, total, next }, positions))
    }
}

fn where_clause(filters: &[String]) -> String {
    if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    }
}

/// A cursor's position (`index::push_tail`'s bytes) as the sort column's value and the id.
fn position(sort: SortField, tail: &[u8]) -> Result<(Box<dyn ToSql + Sync + Send>, String)> {
    // A position this server would not make (a forged cursor): the client's error.
    let bad = || CatalogError::Query(crate::model::QueryBound::Cursor);
    let split = tail.len().checked_sub(ID_LEN).ok_or_else(bad)?;
    let (value, id) = tail.split_at(split);
    let id = std::str::from_utf8(id).map_err(|_| bad())?.to_owned();
    let value: Box<dyn ToSql + Sync + Send> = match sort {
        SortField::CreatedAt | SortField::Size => {
            let bytes: [u8; 8] = value.try_into().map_err(|_| bad())?;
            Box::new(u64::from_be_bytes(bytes).min(i64::MAX as u64) as i64)
        }
        SortField::Filename => {
            let name = value.strip_suffix(&[0]).ok_or_else(bad)?;
            Box::new(std::str::from_utf8(name).map_err(|_| bad())?.to_owned())
        }
    };
    Ok((value, id))
}

/// The first string after every string that starts with `prefix` (byte order: the
/// columns are `COLLATE "C"`), for a range that a generic plan can take from an index.
pub(super) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_owned();
    while let Some(last) = end.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            end.push(next);
            return end;
        }
    }
    "\u{10FFFF}".to_owned() // unreachable for the prefixes used here
}

/// `s` matched literally by `LIKE` (its default escape character is `\`).
pub(super) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The columns a record is listed, sorted and searched by.
pub(super) struct Columns {
    pub folder: String,
    pub kind: i16,
    pub created_us: i64,
    pub size: i64,
    pub name_key: String,
    pub alt_key: String,
    pub search: String,
    pub private: bool,
}

impl Columns {
    pub fn of(r: &MediaRecord) -> Self {
        let (name_key, alt_key) = (fold(&r.filename), fold(r.alt.as_deref().unwrap_or("")));
        Self {
            folder: r.folder.clone(),
            kind: r.kind().tag() as i16,
            created_us: r.created_us.min(i64::MAX as u64) as i64,
            size: r.size.min(i64::MAX as u64) as i64,
            // The unit separator keeps a match from spanning both texts in the index
            // (the query checks each text on its own anyway).
            search: format!("{name_key}\u{1f}{alt_key}"),
            name_key,
            alt_key,
            private: r.visibility.is_private(),
        }
    }
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A database that cannot be reached (or did not answer in time) makes the catalog
/// unavailable (503, retried); anything else is the database's answer.
pub(super) fn unavailable(e: PgError) -> CatalogError {
    match e {
        PgError::Connect { .. } | PgError::Timeout(_) | PgError::Busy(_) => {
            tracing::warn!(error = %e, "catalog unavailable");
            CatalogError::Unavailable
        }
        other => CatalogError::Pg(other),
    }
}

/// Keeps a node's share of the cluster going while the catalog lives: its job leases
/// renewed (every third of a lease) and the cluster's backlog counted (every second).
pub fn upkeep(catalog: Arc<PgCatalog>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut count = tokio::time::interval(Duration::from_secs(1));
        let mut renew = tokio::time::interval(catalog.lease / 3);
        count.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = count.tick() => {
                    let _ = catalog.count_jobs().await;
                }
                _ = renew.tick() => {
                    if let Err(e) = catalog.renew_leases().await {
                        tracing::warn!(error = %e, "cannot renew this node's job leases");
                    }
                }
            }
        }
    })
}
