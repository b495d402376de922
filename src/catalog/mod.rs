//! The catalog: media records, folders, API keys, processing jobs, presigned uploads and
//! the durable delete queue, in one redb file. Plain synchronous code that persists the
//! types of `model/`; the `CatalogActor` is the single writer over it and read paths call
//! it directly on the blocking pool (redb is MVCC).
//!
//! - `tables`: every table definition; `index`: the listing index's key layout;
//! - `search`: the search index (posting lists of grams), written with each record;
//! - `read`: point reads and small scans; `list`: listing pages with exact totals;
//! - `upgrade`: builds what a catalog of an older layout lacks, at open;
//! - `write`: the write path, a batch of `Write`s applied in one transaction;
//! - `cache`: recently read records; `keys`: API key generation and checks;
//! - `pg`: the catalog on PostgreSQL (N nodes); `copy`: a redb catalog moved into it.

mod cache;
pub mod copy;
pub mod index;
pub mod keys;
mod list;
pub mod pg;
mod presets;
mod read;
mod reserve;
pub mod search;
pub mod tables;
mod upgrade;
mod webhooks;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTableMetadata};

pub use write::{CacheCrop, Changed, CropCached, JobOutcome, Outcome, WebhookWrite, Write};

use cache::ReadCache;
use tables::{
    ATTEMPTS, COUNTS, CROP_CACHE, CROP_LRU, FILES, FOLDERS, INDEX, ITEM_FILES, JOBS, KEYS, MEDIA,
    META, OUTBOX, PENDING_DELETES, PRESIGNS, SEARCH_DOCS, SEARCH_GRAMS, SEARCH_IDS, WEBHOOKS,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the folder is not empty: move or delete its media and subfolders first")]
    FolderNotEmpty,
    #[error("the root folder / cannot be deleted")]
    RootFolder,
    #[error("the catalog database is already in use by another process (stop the server first)")]
    Locked,
    #[error("catalog storage error: {0}")]
    Db(Arc<redb::Error>),
    /// The PostgreSQL catalog answered with an error (one it cannot be reached by is
    /// `Unavailable`).
    #[error(transparent)]
    Pg(pg::PgError),
    #[error("catalog record is unreadable: {0}")]
    Corrupt(String),
    #[error("the catalog is restarting, try again")]
    Unavailable,
    #[error(
        "the catalog has schema {found}, written by a newer Darkroom (this one reads {reads}): \
         run the newer Darkroom, or restore a backup made before it ran"
    )]
    TooNew { found: u64, reads: u64 },
    #[error(transparent)]
    Query(#[from] crate::model::QueryBound),
    #[error("this presigned upload has expired; request a new one")]
    PresignExpired,
    #[error("this upload was already confirmed")]
    AlreadyConfirmed,
    #[error("another confirm of this upload is in progress; retry once it has ended")]
    ConfirmInProgress,
    /// A confirm's lease on its presign ran out, or has too little left for a write at
    /// the key (checked before each write, and by the commit).
    #[error("this confirm took so long that it lost its hold on the upload; retry it")]
    LeaseLost,
    /// A new API key's or webhook's id is already taken (one chance in 2^47 or more).
    #[error("a new id is already taken; make another")]
    IdTaken,
    /// A ping to a webhook that its receiver disabled (it answered 410).
    #[error("this webhook is disabled (its receiver answered 410 Gone); create it again")]
    WebhookDisabled,
    #[error("this is the last admin key: create another admin key before revoking it")]
    LastAdminKey,
    /// A visibility change found the item's files changed since it copied them (a replace,
    /// a new focal point), or a replace found its visibility changed: nothing was changed.
    #[error("the item changed meanwhile (its file, crops or visibility); retry")]
    ItemChanged,
    /// A visibility change of an image whose variants are still being made.
    #[error(
        "the item's variants are still being made; change its visibility once it is ready \
         (status \"ready\" or \"failed\")"
    )]
    StillProcessing,
}

impl CatalogError {
    /// The disk under the catalog is full.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Self::Db(e) if matches!(&**e, redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull))
    }
}

impl<E: Into<redb::Error>> From<E> for CatalogError {
    fn from(e: E) -> Self {
        match e.into() {
            redb::Error::DatabaseAlreadyOpen => CatalogError::Locked,
            // A commit failed earlier: the catalog is reopening (see `heal`).
            redb::Error::PreviousIo => CatalogError::Unavailable,
            other => CatalogError::Db(Arc::new(other)),
        }
    }
}

type Result<T> = std::result::Result<T, CatalogError>;

/// What a node hears of the cluster's jobs (PostgreSQL: every node hears every commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// A node that runs no jobs committed this item's job.
    Queued(String),
    /// A node ended this item's job (recorded, failed, or found its item gone).
    Done(String),
}

/// Which catalog a server runs on: the redb file in `data_dir` (one node), or a
/// PostgreSQL database that N nodes share (`[catalog] url`).
#[derive(Clone)]
pub enum Backend {
    Redb(Arc<Catalog>),
    Postgres(Arc<pg::PgCatalog>),
}

/// The catalog's settings (`[catalog]` in the config; see the README's memory budget
/// and "More than one node").
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// redb's page cache (reads and writes), in bytes.
    pub cache_bytes: usize,
    /// Records kept decoded in memory (about 1 KB each).
    pub record_cache: usize,
    /// Disk space held beside the catalog for commits on a full disk (see `reserve`).
    pub reserve_bytes: u64,
    /// A PostgreSQL catalog that N nodes share (`postgres://user@host:port/db`); none =
    /// redb in `data_dir`. May carry a password: never printed.
    #[serde(default)]
    pub url: Option<crate::config::Secret>,
    /// The password when the URL has none (`DARKROOM_CATALOG__PASSWORD`).
    #[serde(default)]
    pub password: Option<crate::config::Secret>,
    /// PostgreSQL connections this node keeps open at most.
    pub pool_size: usize,
    /// The longest a PostgreSQL query (or a connection) may take, in seconds.
    pub query_timeout_secs: u64,
    /// How long a node's claim on a processing job lasts without renewal (PostgreSQL):
    /// the jobs of a node that died are taken over once it runs out.
    pub job_lease_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            record_cache: cache::CAPACITY,
            reserve_bytes: 16 << 20,
            url: None,
            password: None,
            pool_size: 16,
            query_timeout_secs: 10,
            job_lease_secs: 60,
        }
    }
}

impl Options {
    /// How to reach the PostgreSQL catalog, when one is configured.
    pub fn postgres(&self) -> Option<pg::PgOptions> {
        let url = self.url.as_ref()?;
        Some(pg::PgOptions {
            url: url.expose().to_owned(),
            password: self.password.as_ref().map(|p| p.expose().to_owned()),
            pool_size: self.pool_size,
            query_timeout: std::time::Duration::from_secs(self.query_timeout_secs.max(1)),
        })
    }
}

pub struct Catalog {
    path: PathBuf,
    options: Options,
    /// `None` between a failed reopen and the next attempt (see `heal`). The lock is held
    /// only to clone or swap the `Arc`, never across I/O: point reads take it inline on
    /// the async workers.
    db: RwLock<Option<Arc<Database>>>,
    /// Serializes `heal` (the catalog actor and the health probe may both call it).
    healing: Mutex<()>,
    /// Test-only: `heal` waits here before reopening (to observe readers meanwhile).
    #[cfg(test)]
    heal_gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Rows in `JOBS`, kept in step with every commit (the processing backlog).
    jobs: AtomicU64,
    /// Recently read records and the folder list; invalidated by every commit.
    cache: ReadCache,
    /// Recent search answers, valid at the search generation they were made at (in
    /// `META`, bumped in the commits that change what search finds).
    memo: search::memo::Memo,
    /// The last commit failed (an I/O error, a full disk): not writable until the
    /// database is reopened and a commit succeeds.
    commit_failed: AtomicBool,
    /// Room released for commits when the disk is full.
    reserve: reserve::Reserve,
    /// Told after each commit that put events in an outbox (the sender waits on it).
    outbox: tokio::sync::Notify,
}

impl Catalog {
    /// Opens (or creates) the catalog file with the default memory budget.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Options::default())
    }

    /// Opens (or creates) the catalog file, makes sure every table exists and upgrades an
    /// older layout in place.
    pub fn open_with(path: &Path, options: Options) -> Result<Self> {
        let db = open_db(path, &options)?;
        upgrade::upgrade(&db)?;
        let jobs = db.begin_read()?.open_table(JOBS)?.len()?;
        Ok(Self {
            path: path.to_owned(),
            db: RwLock::new(Some(Arc::new(db))),
            healing: Mutex::new(()),
            #[cfg(test)]
            heal_gate: Mutex::new(None),
            jobs: AtomicU64::new(jobs),
            cache: ReadCache::new(options.record_cache),
            memo: Default::default(),
            commit_failed: AtomicBool::new(false),
            reserve: reserve::Reserve::beside(path, options.reserve_bytes),
            outbox: tokio::sync::Notify::new(),
            options,
        })
    }

    /// Makes the disk reserve again if it was released (the disk has room again);
    /// true when it is held.
    pub fn restore_reserve(&self) -> bool {
        self.reserve.restore()
    }

    /// Whether the disk reserve is in place (or none is configured).
    pub fn reserve_held(&self) -> bool {
        self.reserve.is_held()
    }

    /// Told after each commit that put events in an outbox.
    pub fn outbox_filled(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    /// Whether the last commit succeeded (readiness).
    pub fn writable(&self) -> bool {
        !self.commit_failed.load(Ordering::Relaxed)
    }

    /// After a failed commit redb refuses every later one ("previous I/O error"): close
    /// the database and open it again (redb repairs it from its last commit), so the
    /// catalog recovers once the cause (a full disk) is gone, without a restart. Read
    /// transactions still open keep the old file open; then this fails and is retried.
    /// Runs on a blocking thread; readers meanwhile get `Unavailable` at once (the lock
    /// only swaps the handle: the reopen, and its repair, happen outside it).
    pub fn heal(&self) -> Result<()> {
        if self.writable() {
            return Ok(());
        }
        let _one = self.healing.lock().unwrap_or_else(|e| e.into_inner());
        if self.writable() {
            return Ok(()); // healed while this one waited
        }
        let old = self.db.write().unwrap_or_else(|e| e.into_inner()).take();
        drop(old); // closes the file once no transaction holds it
        #[cfg(test)]
        {
            let gate = self
                .heal_gate
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
        }
        let reopened = open_db(&self.path, &self.options)?;
        let jobs = reopened.begin_read()?.open_table(JOBS)?.len()?;
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(reopened));
        self.jobs.store(jobs, Ordering::Relaxed);
        self.cache.invalidate_all();
        self.memo.clear();
        self.commit_failed.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Test-only: as after a failed commit whose reopen has not happened yet (every read
    /// and write gets `Unavailable` until `heal`).
    #[cfg(test)]
    pub(crate) fn take_offline(&self) {
        self.commit_failed.store(true, Ordering::Relaxed);
        *self.db.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Test-only: overwrites item `id`'s record with bytes that do not decode (its search
    /// document, files and index rows stay), as a torn or foreign write would leave it.
    #[cfg(test)]
    pub(crate) fn corrupt_record(&self, id: &str) {
        let txn = self.write_txn().expect("write");
        txn.open_table(MEDIA)
            .expect("media")
            .insert(id, b"{not json".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
        self.cache.invalidate([id]);
    }

    /// Test-only: holds redb's single writer until the returned sender drops, so writes
    /// sent meanwhile wait and then commit together (one group commit).
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> std::sync::mpsc::Sender<()> {
        let db = self.database().expect("database");
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held, holding) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let txn = db.begin_write().expect("write");
            let _ = held.send(());
            let _ = released.recv(); // until the sender drops
            drop(txn);
        });
        holding.recv().expect("holding");
        release
    }

    /// The open database, if any (a brief lock to clone the handle).
    fn database(&self) -> Result<Arc<Database>> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner());
        db.clone().ok_or(CatalogError::Unavailable)
    }

    fn read_txn(&self) -> Result<ReadTransaction> {
        Ok(self.database()?.begin_read()?)
    }

    fn write_txn(&self) -> Result<redb::WriteTransaction> {
        Ok(self.database()?.begin_write()?)
    }
}

/// Opens the file and makes sure every table exists.
fn open_db(path: &Path, options: &Options) -> Result<Database> {
    let db = Database::builder()
        .set_cache_size(options.cache_bytes)
        .create(path)?;
    upgrade::schema_of(&db)?; // a newer build's file is refused before anything is written
    let txn = db.begin_write()?;
    {
        txn.open_table(MEDIA)?;
        txn.open_table(INDEX)?;
        txn.open_table(COUNTS)?;
        txn.open_table(FOLDERS)?;
        txn.open_table(FILES)?;
        txn.open_table(ITEM_FILES)?;
        txn.open_table(PENDING_DELETES)?;
        txn.open_table(KEYS)?;
        txn.open_table(JOBS)?;
        txn.open_table(PRESIGNS)?;
        txn.open_table(META)?;
        txn.open_table(SEARCH_DOCS)?;
        txn.open_table(SEARCH_IDS)?;
        txn.open_table(SEARCH_GRAMS)?;
        txn.open_table(CROP_CACHE)?;
        txn.open_table(CROP_LRU)?;
        txn.open_table(WEBHOOKS)?;
        txn.open_table(OUTBOX)?;
        txn.open_table(ATTEMPTS)?;
    }
    txn.commit()?;
    Ok(db)
}

/// Records are stored as JSON.
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod crop_tests;
#[cfg(test)]
mod tests;
