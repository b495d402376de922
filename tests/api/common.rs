//! `TestServer`: the real app on 127.0.0.1:0 with a temp data dir, and a client with a
//! method per endpoint. Also `Binary`, the real `darkroom` executable, for restarts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use darkroom::actors::catalog::CatalogHandle;
use darkroom::config::{Config, S3Config, Secret, StorageConfig};
use darkroom::model::Scope;
use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs API test cases on every backend: for each `async fn case(s: TestServer)` named,
/// `case::local` (redb, local disk), `case::s3` (redb, the test bucket) and
/// `case::postgres` (a PostgreSQL catalog, the test bucket: what N nodes run on) are tests,
/// pinned to those backends (run in the first cell of the matrix only: see `pinned`).
macro_rules! on_every_backend {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                use $crate::common::{Catalog, Files, Library, TestServer, pinned};

                #[tokio::test]
                async fn local() {
                    if !pinned() { return; }
                    let library = Library::of(Catalog::Redb, Files::Disk).await;
                    super::$case(TestServer::spawn_in(library, |_| {}).await).await
                }

                #[tokio::test]
                async fn s3() {
                    if !pinned() { return; }
                    let library = Library::of(Catalog::Redb, Files::Bucket).await;
                    super::$case(TestServer::spawn_in(library, |_| {}).await).await
                }

                #[tokio::test]
                async fn postgres() {
                    if !pinned() { return; }
                    let library = Library::of(Catalog::Postgres, Files::Bucket).await;
                    super::$case(TestServer::spawn_in(library, |_| {}).await).await
                }
            }
        )+
    };
}

/// The catalog a test server keeps its records in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Catalog {
    /// A redb file in the data dir (one node, the default).
    Redb,
    /// A scratch database of its own on the PostgreSQL test server.
    Postgres,
}

/// Where a test server keeps its files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Files {
    /// Under `<data_dir>/uploads`.
    Disk,
    /// In the test bucket, under a prefix of its own.
    Bucket,
}

/// The cell of the test matrix this run of the suite is in: `TEST_CELL=postgres`
/// runs every API test on a PostgreSQL catalog with its files in the test bucket (a test
/// that needs its files on disk keeps them there); unset, or `redb`, on redb and local
/// disk. `make test` runs the suite in both.
pub fn cell() -> (Catalog, Files) {
    match std::env::var("TEST_CELL").as_deref() {
        Ok("postgres") => (Catalog::Postgres, Files::Bucket),
        Ok("redb") | Err(_) => (Catalog::Redb, Files::Disk),
        Ok(other) => panic!("TEST_CELL is `redb` or `postgres`, not `{other}`"),
    }
}

/// Whether a test pinned to its own catalog and files (not the cell's) runs in this run
/// of the suite: in the first cell, redb's, only; in the others it would run again, the
/// same, so it says so and returns false.
pub fn pinned() -> bool {
    let first = cell().0 == Catalog::Redb;
    if !first {
        eprintln!("pinned to its own backends: runs in the redb cell of the matrix");
    }
    first
}

/// Where a test server keeps everything: its data dir, its catalog (redb in the dir or a
/// scratch database) and its files (on disk or in the bucket). A server stopped over a
/// library and started again on it (`stop`, then `spawn_in`) finds everything again; so
/// does the `darkroom` binary started on `path()`, which reads the library's
/// `library.toml` there (`Binary::command`).
pub struct Library {
    dir: TempDir,
    catalog: Catalog,
    storage: StorageConfig,
    database: Option<Arc<ScratchDb>>,
}

impl Library {
    /// The cell's catalog and files.
    pub async fn new() -> Self {
        let (catalog, files) = cell();
        Self::of(catalog, files).await
    }

    /// The cell's catalog, with files on local disk (for tests that look at them there).
    pub async fn on_disk() -> Self {
        Self::of(cell().0, Files::Disk).await
    }

    /// The cell's catalog, with files in `dir` (on a file system a test chose).
    pub async fn on_disk_in(dir: TempDir) -> Self {
        Self::made(dir, cell().0, StorageConfig::Local).await
    }

    /// The cell's catalog, with files in the test bucket under a prefix of its own and the
    /// bucket's settings changed by `tweak` (an endpoint in front of it, short deadlines).
    pub async fn in_bucket(tweak: impl FnOnce(&mut S3Config)) -> Self {
        let mut s3 = s3_config(&unique_prefix());
        tweak(&mut s3);
        let dir = tempfile::tempdir().expect("tempdir");
        Self::made(dir, cell().0, StorageConfig::S3(s3)).await
    }

    /// This catalog and these files, whatever the cell.
    pub async fn of(catalog: Catalog, files: Files) -> Self {
        let storage = match files {
            Files::Disk => StorageConfig::Local,
            Files::Bucket => StorageConfig::S3(s3_config(&unique_prefix())),
        };
        Self::made(tempfile::tempdir().expect("tempdir"), catalog, storage).await
    }

    async fn made(dir: TempDir, catalog: Catalog, storage: StorageConfig) -> Self {
        let database = match catalog {
            Catalog::Redb => None,
            Catalog::Postgres => Some(Arc::new(ScratchDb::new().await)),
        };
        let library = Self {
            dir,
            catalog,
            storage,
            database,
        };
        if library.catalog == Catalog::Postgres || library.is_s3() {
            std::fs::write(library.config_file(), library.toml()).expect("toml");
        }
        library
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Settings for a `darkroom` binary on this library after a crash: on PostgreSQL the
    /// start-up sweep leaves stored files to the periodic one (another node may be
    /// storing them), so that sweep runs every second with a second's grace; on redb,
    /// nothing (the start-up sweep takes every unclaimed file).
    pub fn sweep_soon(&self) -> &'static [(&'static str, &'static str)] {
        match self.catalog {
            Catalog::Redb => &[],
            Catalog::Postgres => &[
                ("DARKROOM_MAINTENANCE__ORPHAN_SWEEP_SECS", "1"),
                ("DARKROOM_MAINTENANCE__ORPHAN_GRACE_SECS", "1"),
            ],
        }
    }

    /// Its stored files (see `stored_files`) once a server started with `sweep_soon`
    /// after a crash has swept: at once on redb; on PostgreSQL when `swept` says so, or
    /// after 10 s (the periodic sweep's turn).
    pub async fn after_sweep(&self, swept: impl Fn(&[String]) -> bool) -> Vec<String> {
        if self.catalog == Catalog::Postgres {
            let done = || async { swept(&self.stored_files().await) };
            holds_within(std::time::Duration::from_secs(10), done).await;
        }
        self.stored_files().await
    }

    /// True for a library whose files are in the test bucket.
    pub fn is_s3(&self) -> bool {
        matches!(self.storage, StorageConfig::S3(_))
    }

    /// Every stored file, as `[private/]YYYY/MM/<name>` keys: under `<data_dir>/uploads`
    /// and `<data_dir>/private`, or under this server's prefix in the two buckets.
    pub async fn stored_files(&self) -> Vec<String> {
        if !self.is_s3() {
            return stored_files(self.path());
        }
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let mut keys = Vec::new();
        for place in ["", "private/"] {
            let (store, prefix) = self.bucket(place).expect("a bucket");
            let objects: Vec<_> = store
                .list(Some(&object_store::path::Path::from(prefix.as_str())))
                .try_collect()
                .await
                .expect("list bucket");
            // Private keys are stored as they are named (`private/...`) in their bucket.
            keys.extend(
                objects
                    .iter()
                    .map(|o| o.location.as_ref()[prefix.len() + 1..].to_owned()),
            );
        }
        keys.sort();
        keys
    }

    /// Stores a file behind the server's back (as a crash or a lost request would leave
    /// it), under `key` on disk or in the bucket.
    pub async fn plant(&self, key: &str, bytes: &[u8]) {
        let Some((store, prefix)) = self.bucket(key) else {
            let path = self.local_path(key);
            std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
            return std::fs::write(path, bytes).expect("plant");
        };
        use object_store::ObjectStoreExt;
        let location = object_store::path::Path::from(format!("{prefix}/{key}"));
        store
            .put(&location, bytes.to_vec().into())
            .await
            .expect("plant in the bucket");
    }

    /// Removes a stored file behind the server's back (as an operator's mistake would).
    pub async fn remove(&self, key: &str) {
        let Some((store, prefix)) = self.bucket(key) else {
            let path = self.local_path(key);
            return std::fs::remove_file(path).expect("remove");
        };
        use object_store::ObjectStoreExt;
        let location = object_store::path::Path::from(format!("{prefix}/{key}"));
        store
            .delete(&location)
            .await
            .expect("remove from the bucket");
    }

    /// Where the file `key` is on disk (local storage).
    pub fn local_path(&self, key: &str) -> PathBuf {
        match key.starts_with("private/") {
            true => self.path().join(key),
            false => self.path().join("uploads").join(key),
        }
    }

    /// A client of the test bucket that holds `key` (the private one for `private/...`)
    /// and this server's prefix there (S3 servers only).
    fn bucket(&self, key: &str) -> Option<(object_store::aws::AmazonS3, String)> {
        let StorageConfig::S3(s3) = &self.storage else {
            return None;
        };
        let bucket = match key.starts_with("private/") {
            true => s3.private_bucket.as_deref().expect("a private bucket"),
            false => s3.bucket.as_str(),
        };
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(s3.endpoint.clone().expect("endpoint"))
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region(&s3.region)
            .with_access_key_id(s3.access_key_id.clone().expect("id"))
            .with_secret_access_key(s3.secret_access_key.as_ref().expect("secret").expose())
            .build()
            .expect("s3 client");
        Some((store, s3.prefix.clone()))
    }

    /// Its catalog, opened while no server runs on it.
    pub async fn open_catalog(&self) -> OpenCatalog {
        let mut config = Config::defaults();
        self.apply(&mut config);
        OpenCatalog::open(&config).await
    }

    /// Points `config` at this library.
    fn apply(&self, config: &mut Config) {
        config.data_dir = self.path().to_owned();
        config.storage = self.storage.clone();
        if let Some(db) = &self.database {
            config.catalog.url = Some(Secret::new(db.url.clone()));
            config.catalog.pool_size = POOL_SIZE;
            config.catalog.job_lease_secs = JOB_LEASE_SECS;
            config.delivery.signing_key = Some(Secret::new(SIGNING_KEY));
        }
    }

    /// Its config file (for the `darkroom` binary; written when the library is not the
    /// defaults): the nodes of a cluster share one.
    pub fn config_file(&self) -> PathBuf {
        self.path().join(LIBRARY_TOML)
    }

    /// The library as a config file.
    fn toml(&self) -> String {
        let mut toml = String::new();
        if let StorageConfig::S3(s3) = &self.storage {
            toml += &format!(
                "[storage]\ntype = \"s3\"\nendpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\n\
                 region = \"{region}\"\npath_style = true\naccess_key_id = \"{id}\"\n\
                 secret_access_key = \"{secret}\"\nprefix = \"{prefix}\"\n\
                 public_base_url = \"{public}\"\nprivate_bucket = \"{S3_PRIVATE_BUCKET}\"\n\n",
                endpoint = s3.endpoint.as_deref().expect("endpoint"),
                bucket = s3.bucket,
                region = s3.region,
                id = s3.access_key_id.as_deref().expect("id"),
                secret = s3.secret_access_key.as_ref().expect("secret").expose(),
                prefix = s3.prefix,
                public = s3.public_base_url,
            );
        }
        if let Some(db) = &self.database {
            toml += &format!(
                "[catalog]\nurl = \"{}\"\npool_size = {POOL_SIZE}\njob_lease_secs = {JOB_LEASE_SECS}\n\n\
                 [delivery]\nsigning_key = \"{SIGNING_KEY}\"\n",
                db.url
            );
        }
        toml
    }
}

/// The config file a library leaves in its data dir when it is not the defaults.
const LIBRARY_TOML: &str = "library.toml";

/// The signing key of every test server on PostgreSQL (which requires one).
const SIGNING_KEY: &str = "test-library-signing-key";
/// Connections per test server on PostgreSQL: one per test and CPU run at once, within
/// the test cluster's `max_connections`.
const POOL_SIZE: usize = 4;
/// Job leases of test servers on PostgreSQL: a killed server's jobs move on within a test.
const JOB_LEASE_SECS: u64 = 3;

fn pg_server_url() -> String {
    std::env::var("PG_TEST_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a local server: run `make test`, or \
             `scripts/pg-local.sh start` and PG_TEST_URL=$(scripts/pg-local.sh url) cargo test"
        )
    })
}

/// A database of its own on the PostgreSQL test server, dropped with it.
pub struct ScratchDb {
    name: String,
    pub url: String,
}

impl ScratchDb {
    pub async fn new() -> Self {
        let name = format!(
            "darkroom_t_{}",
            darkroom::model::random_token(10).to_lowercase()
        );
        run_on_server(format!("CREATE DATABASE {name}")).await;
        let base = pg_server_url();
        let (prefix, query) = base.split_once('?').unwrap_or((&base, ""));
        let prefix = prefix.rsplit_once('/').map_or(prefix, |(p, _)| p);
        let url = match query {
            "" => format!("{prefix}/{name}"),
            q => format!("{prefix}/{name}?{q}"),
        };
        Self { name, url }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Outside the test's runtime, which may be shutting down.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(run_on_server(sql));
        })
        .join();
    }
}

async fn run_on_server(sql: String) {
    let (client, connection) = tokio_postgres::connect(&pg_server_url(), tokio_postgres::NoTls)
        .await
        .expect("the PostgreSQL test server");
    let driver = tokio::spawn(connection);
    client.batch_execute(&sql).await.expect(&sql);
    drop(client);
    let _ = driver.await;
}

/// The bucket the S3 tests share; each server gets its own prefix in it.
pub const S3_BUCKET: &str = "darkroom-test";
/// Private items' files: a bucket no anonymous request may read (`scripts/s3-local.sh`).
pub const S3_PRIVATE_BUCKET: &str = "darkroom-test-private";

fn s3_endpoint() -> String {
    std::env::var("S3_TEST_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "the S3 tests need a local S3 server: run `make test`, or `make s3-up` and \
             S3_TEST_ENDPOINT=http://127.0.0.1:18333 cargo test"
        )
    })
}

/// `config/s3.example.toml` as shipped, pointed at the test server, under `prefix`.
pub fn s3_config(prefix: &str) -> S3Config {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/s3.example.toml");
    let config = Config::load(Some(&example)).expect("the S3 example config loads");
    let StorageConfig::S3(mut s3) = config.storage else {
        panic!("the S3 example config is not an S3 config");
    };
    let endpoint = s3_endpoint();
    s3.public_base_url = format!("{endpoint}/{S3_BUCKET}/{prefix}");
    s3.endpoint = Some(endpoint);
    s3.bucket = S3_BUCKET.into();
    s3.private_bucket = Some(S3_PRIVATE_BUCKET.into());
    s3.access_key_id = Some("darkroom-test".into());
    s3.secret_access_key = Some(Secret::new("darkroom-test-secret"));
    s3.prefix = prefix.into();
    s3
}

pub fn unique_prefix() -> String {
    format!("t{}", darkroom::model::random_token(10).to_lowercase())
}

pub struct TestServer {
    pub base: String,
    pub write_key: String,
    pub read_key: String,
    pub admin_key: String,
    pub client: Client,
    pub library: Library,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// A server on the cell's catalog and files.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// As `spawn`, with the default config changed by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_in(Library::new().await, tweak).await
    }

    /// A server on the cell's catalog with its files on local disk (a test of the file
    /// route, the data dir or the disk), with the default config changed by `tweak`.
    pub async fn spawn_on_disk(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_in(Library::on_disk().await, tweak).await
    }

    /// A server on the cell's catalog with its files in the test bucket, the bucket's
    /// settings changed by `s3` and the rest of the default config by `tweak`.
    pub async fn spawn_s3_with(
        s3: impl FnOnce(&mut S3Config),
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::spawn_in(Library::in_bucket(s3).await, tweak).await
    }

    /// Starts the app on `library` (a new one, or one a stopped server handed back), with
    /// the default config changed by `tweak`.
    pub async fn spawn_in(library: Library, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::defaults();
        library.apply(&mut config);
        config.server.drain_secs = 0; // tests stop servers often; drain has its own test
        tweak(&mut config);
        let (write_key, read_key, admin_key) = make_keys(&config).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            darkroom::app::run(listener, config, async {
                let _ = rx.await;
            })
            .await
            .expect("app runs");
        });
        Self {
            base,
            write_key,
            read_key,
            admin_key,
            client: Client::new(),
            library,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Every stored file, as `YYYY/MM/<name>` keys (see `Library::stored_files`).
    pub async fn stored_files(&self) -> Vec<String> {
        self.library.stored_files().await
    }

    /// Removes a stored file behind the server's back (see `Library::remove`).
    pub async fn remove(&self, key: &str) {
        self.library.remove(key).await
    }

    /// Stores a file behind the server's back (see `Library::plant`).
    pub async fn plant(&self, key: &str, bytes: &[u8]) {
        self.library.plant(key, bytes).await
    }

    /// Stops the app gracefully and hands back its library.
    pub async fn stop(mut self) -> Library {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("app stopped cleanly");
        }
        self.library
    }

    /// True for a server whose files are in the test bucket.
    pub fn is_s3(&self) -> bool {
        self.library.is_s3()
    }

    /// The bucket settings of a server whose files are in the test bucket.
    pub fn s3(&self) -> &S3Config {
        match &self.library.storage {
            StorageConfig::S3(s3) => s3,
            StorageConfig::Local => panic!("this server's files are on disk"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request to this server's `path`, or to an absolute URL (a bucket's public file).
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let rb = self.client.request(method, url);
        match key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.request(Method::GET, path, key)
            .send()
            .await
            .expect("GET")
    }

    /// Deletes an item with the write key.
    pub async fn delete_item(&self, id: &str) -> Response {
        self.request(
            Method::DELETE,
            &format!("/api/v1/media/{id}"),
            Some(&self.write_key),
        )
        .send()
        .await
        .expect("DELETE")
    }

    /// Waits (bounded: 5 s) until no stored file is left: the delete queue removes an
    /// item's files shortly after its delete.
    pub async fn until_no_files(&self) {
        for _ in 0..100 {
            if self.stored_files().await.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("files left: {:?}", self.stored_files().await);
    }

    /// Polls an anonymous GET of `url` until it answers 404 (bounded: 5 s); deletes of
    /// stored files finish shortly after the item's.
    pub async fn until_not_found(&self, url: &str) {
        for _ in 0..100 {
            if self.get(url, None).await.status() == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{url} is still served");
    }

    /// An anonymous GET with extra request headers (conditional and range requests).
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut rb = self.client.get(self.url(path));
        for (name, value) in headers {
            rb = rb.header(*name, *value);
        }
        rb.send().await.expect("GET")
    }

    /// GET with the write key, expecting 200, returning the JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path, Some(&self.write_key)).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.expect("json")
    }

    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> Response {
        self.request(method, path, Some(&self.write_key))
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    /// The bytes served at an item's `url` (this server's, or the bucket's public URL),
    /// fetched as an anonymous client.
    pub async fn served(&self, item: &Value) -> Vec<u8> {
        let url = item["url"].as_str().expect("item url");
        let resp = self.get(url, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
        resp.bytes().await.expect("body").to_vec()
    }

    /// Uploads in-memory files (filename, bytes) plus text fields with the write key.
    pub async fn upload_parts(
        &self,
        files: Vec<(String, Vec<u8>)>,
        fields: &[(&str, &str)],
    ) -> Response {
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (filename, bytes) in files {
            form = form.part("files", Part::bytes(bytes).file_name(filename));
        }
        self.request(Method::POST, "/api/v1/media", Some(&self.write_key))
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// Starts a multipart request whose body stops before the last part's second half
    /// until the returned sender fires: `parts` (field, filename, bytes; an empty filename
    /// makes a text field) reach the server at once, except the last one's tail. Answers
    /// with the response once released.
    pub fn held_multipart(
        &self,
        method: Method,
        path: &str,
        parts: Vec<(&str, &str, Vec<u8>)>,
    ) -> (JoinHandle<Response>, oneshot::Sender<()>) {
        let boundary = "darkroom-held-boundary-7c1f";
        let mut body = Vec::new();
        for (field, filename, bytes) in &parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let disposition = if filename.is_empty() {
                format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n")
            } else {
                format!(
                    "Content-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
            };
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let tail_len = parts.last().map_or(0, |(_, _, b)| b.len() / 2) + boundary.len() + 8;
        let tail = body.split_off(body.len() - tail_len);
        let (release, released) = oneshot::channel::<()>();
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) })
            .chain(futures_util::stream::once(async move {
                let _ = released.await;
                Ok(tail)
            }));
        let request = self
            .request(method, path, Some(&self.write_key))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(stream));
        let task = tokio::spawn(async move { request.send().await.expect("held request") });
        (task, release)
    }

    /// Uploads one in-memory file, expects 201 and returns its item.
    pub async fn upload_one_bytes(&self, filename: &str, bytes: Vec<u8>) -> Value {
        let resp = self
            .upload_parts(vec![(filename.to_owned(), bytes)], &[])
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{filename}");
        let body: Value = resp.json().await.expect("json");
        body["data"][0].clone()
    }

    /// Uploads fixtures under their own file names.
    pub async fn upload(&self, fixtures: &[&str], fields: &[(&str, &str)]) -> Response {
        let files = fixtures
            .iter()
            .map(|f| {
                (
                    Path::new(f)
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                    fixture(f),
                )
            })
            .collect();
        self.upload_parts(files, fields).await
    }

    /// Uploads fixtures with `?wait=true`, expects 201 and returns the items.
    pub async fn upload_waiting(&self, fixtures: &[&str]) -> Vec<Value> {
        let mut form = Form::new();
        for f in fixtures {
            let name = Path::new(f).file_name().expect("name").to_string_lossy();
            form = form.part(
                "files",
                Part::bytes(fixture(f)).file_name(name.into_owned()),
            );
        }
        let resp = self
            .request(
                Method::POST,
                "/api/v1/media?wait=true",
                Some(&self.write_key),
            )
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(resp.status(), StatusCode::CREATED, "upload {fixtures:?}");
        let body: Value = resp.json().await.expect("json");
        body["data"].as_array().expect("data").clone()
    }

    /// Uploads one fixture with `?wait=true` and returns its item.
    pub async fn upload_waiting_one(&self, fixture: &str) -> Value {
        self.upload_waiting(&[fixture]).await.remove(0)
    }

    /// Polls an item until its processing ends (bounded: 60 s), returning it.
    pub async fn until_processed(&self, id: &str) -> Value {
        for _ in 0..600 {
            let item = self.get_json(&format!("/api/v1/media/{id}")).await["data"].clone();
            if item["status"] != "processing" {
                return item;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{id} still processing after 60 s");
    }

    /// Uploads one fixture, expects 201 and returns the item.
    pub async fn upload_one(&self, fixture_path: &str, fields: &[(&str, &str)]) -> Value {
        let resp = self.upload(&[fixture_path], fields).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "upload {fixture_path}");
        let body: Value = resp.json().await.expect("json");
        body["data"][0].clone()
    }
}

/// An item without the fields its processing job changes (status, variants, placeholders).
pub fn without_processing(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(map) = item.as_object_mut() {
        for field in ["status", "variants", "thumbhash", "dominantColor"] {
            map.remove(field);
        }
    }
    item
}

/// A write, a read and an admin key in the catalog `config` names (made before the
/// server starts, as `darkroom keys create` would).
async fn make_keys(config: &Config) -> (String, String, String) {
    let catalog = OpenCatalog::open(config).await;
    let mut made = Vec::new();
    for scope in [Scope::Write, Scope::Read, Scope::Admin] {
        made.push(
            catalog
                .handle
                .create_key(scope, "tests", None)
                .await
                .expect("key")
                .0,
        );
    }
    catalog.close().await;
    let [write, read, admin] = made.try_into().expect("three keys");
    (write, read, admin)
}

/// A catalog opened the way a server opens it, for a test that reads or writes it
/// behind a stopped server's back (as a crash between two steps would leave it).
pub struct OpenCatalog {
    pub handle: CatalogHandle,
    actor: ractor::ActorRef<darkroom::actors::catalog::CatalogMsg>,
}

impl OpenCatalog {
    /// Opens the catalog `config` names; a redb file a stopped server's last task still
    /// holds is waited for (bounded: 10 s).
    pub async fn open(config: &Config) -> Self {
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let mut tries = 0;
        let backend = loop {
            match darkroom::app::open_catalog(config, false).await {
                Ok(backend) => break backend,
                Err(e) if tries == 100 => panic!("catalog: {e}"),
                Err(_) => tries += 1,
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let (handle, actor) = CatalogHandle::spawn(backend).await.expect("catalog actor");
        Self { handle, actor }
    }

    /// Closes it: a redb file is free again once the actor and the handle are gone.
    pub async fn close(self) {
        self.actor.stop(None);
        drop(self.handle);
        for _ in 0..100 {
            if self.actor.get_status() == ractor::ActorStatus::Stopped {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// The fixtures' manifest entries (copied from the corpus manifest).
pub fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.json")).expect("manifest");
    let v: Value = serde_json::from_str(&text).expect("manifest json");
    v["files"].as_array().expect("files").clone()
}

/// The error envelope's code, after checking the envelope's shape and status.
pub async fn error_code(resp: Response, status: StatusCode) -> String {
    assert_eq!(resp.status(), status);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = resp.json().await.expect("json error");
    assert_eq!(body["error"]["status"], status.as_u16(), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"].as_str().expect("code").to_owned()
}

/// A response header as a string.
pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

/// Polls `check` (every 100 ms) until it holds, for at most `limit`; whether it held.
/// A check that hangs counts against the limit too.
pub async fn holds_within<F, Fut>(limit: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = tokio::time::timeout(limit, async {
        while !check().await {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    polled.await.is_ok()
}

/// Polls `/readyz` (bounded: 10 s) until it answers `want`; every answer must come at
/// once, whatever the dependencies do (it reads the last health probe).
pub async fn until_readiness(s: &TestServer, want: StatusCode) {
    let turned = holds_within(std::time::Duration::from_secs(10), || async {
        let asked = std::time::Instant::now();
        let status = s.get("/readyz", None).await.status();
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(2),
            "/readyz waited on something"
        );
        status == want
    });
    assert!(turned.await, "/readyz never turned {want}");
}

/// The storage key (`YYYY/MM/<name>`) an item's or a variant's `url` points at, locally
/// (`/uploads/...`) or in the bucket.
pub fn storage_key(item: &Value) -> String {
    let url = item["url"].as_str().expect("url");
    let parts: Vec<&str> = url.rsplitn(4, '/').collect();
    format!("{}/{}/{}", parts[2], parts[1], parts[0])
}

/// Whether a storage key is an original (variants are `<token>-<width>.webp`).
pub fn is_original(key: &str) -> bool {
    !key.rsplit('/').next().unwrap_or_default().contains('-')
}

/// The value of one sample line `name{labels} value` in a Prometheus scrape.
pub fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (series == name_and_labels)
            .then(|| value.parse().ok())
            .flatten()
    })
}

/// Every file under `<data_dir>/uploads`, relative.
pub fn stored_files(data_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    // Public files by their path under uploads/, private ones by theirs under the root.
    for (root, top) in [
        (data_dir.join("uploads"), data_dir.join("uploads")),
        (data_dir.to_owned(), data_dir.join("private")),
    ] {
        out.extend(files_under(&root, &top));
    }
    out.sort();
    out
}

/// Every file under `top`, as paths relative to `root`.
fn files_under(root: &Path, top: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}

/// The real `darkroom` binary, for tests that kill and restart the process.
pub struct Binary {
    pub child: Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Binary {
    /// `darkroom` on `data_dir`, and on the library's catalog and files when the dir is a
    /// `Library`'s that is not the defaults.
    pub fn command(data_dir: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_darkroom"));
        let library = data_dir.join(LIBRARY_TOML);
        if library.exists() {
            cmd.arg("--config").arg(library);
        }
        cmd.env("DARKROOM_DATA_DIR", data_dir)
            .env("DARKROOM_LISTEN", "127.0.0.1:0")
            .env("DARKROOM_SERVER__DRAIN_SECS", "0")
            .env("RUST_LOG", "info")
            .env_remove("RUST_LOG_STYLE");
        cmd
    }

    /// Starts `darkroom serve` and waits for its "serving" log line to learn the port.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts `darkroom serve ARGS...`; everything it logs is kept in `log`.
    pub fn start_with(data_dir: &Path, args: &[&str]) -> Self {
        Self::start_env(data_dir, args, &[])
    }

    /// As `start_with`, with these environment variables set too.
    pub fn start_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Self::command(data_dir)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn darkroom");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before serving")
                .expect("read stderr");
            log.lock().expect("log").push_str(&format!("{line}\n"));
            let found = line
                .split("addr=")
                .nth(1)
                .or_else(|| line.split("\"addr\":\"").nth(1));
            if let Some(rest) = found {
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .expect("addr")
                    .to_owned();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// The URL of `path` on this server, or `path` itself when it is a URL already (a
    /// file in the bucket).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// What the server has logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Uploads fixtures (path, filename) with `key`, plus text fields.
    pub async fn upload(
        &self,
        key: &str,
        files: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) -> Response {
        let mut form = Form::new();
        for (path, name) in files {
            form = form.part(
                "files",
                Part::bytes(fixture(path)).file_name(name.to_string()),
            );
        }
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let url = format!("{}/api/v1/media", self.base);
        Client::new()
            .post(url)
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// GET `path` with `key`, as JSON.
    pub async fn get_json(&self, key: &str, path: &str) -> Value {
        Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// Runs `darkroom keys create` and returns what it printed on stdout.
    pub fn create_key(data_dir: &Path, scope: &str) -> String {
        Self::create_key_with(data_dir, &[], scope)
    }

    /// As `create_key`, with these global arguments first (`--config FILE`).
    pub fn create_key_with(data_dir: &Path, args: &[&str], scope: &str) -> String {
        let out = Self::command(data_dir)
            .args(args)
            .args(["keys", "create", "--scope", scope, "--name", "test"])
            .output()
            .expect("keys create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails with what to install when a command the test drives is missing (`make test`
/// installs it: see the Makefile's `tools`).
pub fn require_command(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "this test needs `{name}`: run `make test`, which installs it from Debian"
    );
}
