//! S3-compatible backend (AWS S3, Cloudflare R2, MinIO, SeaweedFS) through `object_store`.
//! Objects live at `<prefix>/YYYY/MM/<token>.<ext>`; uploads are still spooled to a local
//! temp file first (sniffed, probed and stripped there), then sent with one PUT, or as a
//! multipart upload when large. Files are read by clients from `public_base_url` (the CDN
//! or public bucket), so this server never serves them itself. The files of private items
//! (keys under `private/`) live in `private_bucket`, at the same prefix, and are read
//! through presigned GET URLs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::key::{
    PRIVATE_CACHE, is_private, is_valid_key, key_of, key_stem, object_key, staging_object_key,
};
use super::ranged::RangedObject;
use super::{InFlight, Result, SWEEP_BATCH, Sink, StorageError, Sweep, SweepReport, sweep_temp};
use crate::config::S3Config;
use crate::metrics as m;

/// Files up to this size go up in one PUT; larger ones as a multipart upload of parts
/// this big (S3 wants parts of at least 5 MB).
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts of one upload in flight at once (with the one being filled: 15 MB a commit).
const PART_CONCURRENCY: usize = 2;
/// Commits sending to the bucket at once, all uploads together: each holds up to 15 MB
/// of parts, so together at most 120 MB; the others wait their turn, their bytes in temp
/// files on disk.
const COMMITS_AT_ONCE: usize = 8;
/// Objects one orphan sweep lists at most, and how fast it deletes.
const SWEEP_LISTED: usize = 100_000;
const SWEEP_DELETES_PER_SEC: u32 = 50;

pub struct S3Storage {
    store: Arc<AmazonS3>,
    /// The bucket of private items' files, when one is configured.
    private: Option<Arc<AmazonS3>>,
    prefix: String,
    tmp: PathBuf,
    /// Where the next orphan sweep of each bucket (public, private) resumes its listing
    /// (`None`: from the start).
    sweep_resume: [Mutex<Option<ObjectPath>>; 2],
    pub(super) in_flight: InFlight,
    /// See `Sink`: bytes of an upload kept in memory, then its write buffer.
    pub(super) upload_buffer: usize,
    /// Turns to send to the bucket (`COMMITS_AT_ONCE`).
    commits: tokio::sync::Semaphore,
}

/// What a HEAD of an object says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
}

impl S3Storage {
    pub fn new(config: &S3Config, data_dir: &std::path::Path) -> Result<Self> {
        let store = client(config, &config.bucket)?;
        let private = match &config.private_bucket {
            Some(bucket) => Some(Arc::new(client(config, bucket)?)),
            None => None,
        };
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        Ok(Self {
            store: Arc::new(store),
            private,
            prefix: config.prefix.trim_matches('/').to_owned(),
            tmp,
            sweep_resume: Default::default(),
            in_flight: InFlight::default(),
            upload_buffer: super::sink::DEFAULT_BUFFER,
            commits: tokio::sync::Semaphore::new(COMMITS_AT_ONCE),
        })
    }

    /// The bucket of a key: the private one for a private item's file.
    fn bucket_of(&self, key: &str) -> Result<&Arc<AmazonS3>> {
        if !is_private(key) {
            return Ok(&self.store);
        }
        self.private.as_ref().ok_or(StorageError::NoPrivatePlace)
    }

    fn path(&self, key: &str) -> Result<ObjectPath> {
        check_key(key)?;
        Ok(ObjectPath::from(object_key(&self.prefix, key)))
    }

    /// Where a presigned upload for `key` lands (see `key::staging_object_key`), in the
    /// bucket of `key`.
    fn staging_path(&self, key: &str) -> Result<ObjectPath> {
        check_key(key)?;
        Ok(ObjectPath::from(staging_object_key(&self.prefix, key)))
    }

    pub(super) async fn begin(&self) -> Result<Sink> {
        Ok(Sink::new(&self.tmp, &self.in_flight, self.upload_buffer))
    }
}

/// A client of `bucket` with the store's endpoint, credentials and deadlines.
fn client(config: &S3Config, bucket: &str) -> Result<AmazonS3> {
    {
        let secs = Duration::from_secs;
        // Every call has deadlines (object_store's defaults wait up to three minutes).
        let mut client = ClientOptions::new()
            .with_connect_timeout(secs(config.connect_timeout_secs))
            .with_timeout(secs(config.request_timeout_secs))
            .with_read_timeout(secs(config.read_timeout_secs));
        let retry = RetryConfig {
            max_retries: config.max_retries,
            retry_timeout: secs(config.retry_timeout_secs),
            ..RetryConfig::default()
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
            client = client.with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        // Last: the client options replace any set before (allow_http included).
        builder.with_client_options(client).build().map_err(remote)
    }
}

impl S3Storage {
    /// Sends the spooled file to the bucket with its content type; returns its size. A
    /// multipart upload that fails is aborted (its parts would stay billed, unlisted).
    pub(super) async fn commit(&self, sink: Sink, key: &str, mime: &str) -> Result<u64> {
        self.send(sink, key, attributes(key, mime)).await
    }

    /// Sends the spooled file to the bucket of `key` with these attributes (see `commit`).
    async fn send(&self, mut sink: Sink, key: &str, attributes: Attributes) -> Result<u64> {
        sink.flush().await?;
        let _turn = self
            .commits
            .acquire()
            .await
            .map_err(std::io::Error::other)?;
        let (store, path) = (self.bucket_of(key)?, self.path(key)?);
        let mut file = tokio::fs::File::open(sink.path()).await?;
        let len = file.metadata().await?.len();
        if len <= PART_BYTES as u64 {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).await?;
            let options = PutOptions::from(attributes);
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
                .map_err(remote)?;
        } else {
            let options = PutMultipartOptions::from(attributes);
            let upload = store
                .put_multipart_opts(&path, options)
                .await
                .map_err(remote)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; 256 * 1024];
            let sent: Result<()> = async {
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    writer
                        .wait_for_capacity(PART_CONCURRENCY)
                        .await
                        .map_err(remote)?;
                    writer.write(&buf[..n]);
                }
            }
            .await;
            match sent {
                Ok(()) => {
                    writer.finish().await.map_err(remote)?;
                }
                Err(e) => {
                    if let Err(abort) = writer.abort().await {
                        tracing::warn!(%key, error = %abort, "multipart upload not aborted");
                    }
                    return Err(e);
                }
            }
        }
        Ok(len) // dropping the sink removes the temp file
    }

    /// Copies the object of `from` to `to`, with its content type and caching, through a
    /// temp file (the two may be in different buckets); `false` when `from` is gone.
    pub(super) async fn copy(&self, from: &str, to: &str) -> Result<bool> {
        let got = match self.bucket_of(from)?.get(&self.path(from)?).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(remote(e)),
        };
        // The type travels; the caching is the new place's (a private file's is private).
        let mime = got
            .attributes
            .get(&Attribute::ContentType)
            .map(|v| v.to_string());
        let attributes = attributes(to, mime.as_deref().unwrap_or("application/octet-stream"));
        let mut sink = Sink::new(&self.tmp, &self.in_flight, self.upload_buffer);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            sink.write(&chunk.map_err(remote)?).await?;
        }
        self.send(sink, to, attributes).await?;
        Ok(true)
    }

    /// Stores generated files (variants), cacheable for ever (their names never change).
    pub(super) async fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        for (key, bytes) in files {
            let (store, path) = (self.bucket_of(&key)?, self.path(&key)?);
            let options = PutOptions::from(attributes(&key, "image/webp"));
            store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
                .map_err(remote)?;
        }
        Ok(())
    }

    pub(super) async fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.bucket_of(key)?.get(&self.path(key)?).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(remote)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    /// The size of what a client uploaded for `key`, or `None` when it uploaded nothing.
    pub async fn head_upload(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.head_at(self.bucket_of(key)?, &self.staging_path(key)?)
            .await
    }

    /// The size of the object stored under `key`, or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.head_at(self.bucket_of(key)?, &self.path(key)?).await
    }

    async fn head_at(&self, store: &AmazonS3, path: &ObjectPath) -> Result<Option<ObjectInfo>> {
        match store.head(path).await {
            Ok(meta) => Ok(Some(ObjectInfo { size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote(e)),
        }
    }

    /// An object to read in ranges on a blocking thread (see `RangedObject`); `len` is its
    /// size from a HEAD.
    pub fn ranged(&self, key: &str, len: u64) -> Result<RangedObject> {
        let store: Arc<dyn ObjectStore> = self.bucket_of(key)?.clone();
        let runtime = tokio::runtime::Handle::current();
        Ok(RangedObject::new(store, self.path(key)?, len, runtime))
    }

    /// Copies what a client uploaded for `key` to `key` itself, inside the store (no
    /// byte passes through here); `false` when nothing was uploaded.
    pub async fn promote_upload(&self, key: &str) -> Result<bool> {
        let (from, to) = (self.staging_path(key)?, self.path(key)?);
        match self.bucket_of(key)?.copy(&from, &to).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(remote(e)),
        }
    }

    /// Removes what a client uploaded for `key` (gone already is fine).
    pub async fn delete_upload(&self, key: &str) -> Result<()> {
        match self.bucket_of(key)?.delete(&self.staging_path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    /// Downloads what a client uploaded for `key` into a new temp file (to sniff, probe
    /// and strip it like an upload): one version of the object, whatever is PUT
    /// meanwhile, and at most `limit` + 1 bytes of it (a larger object is not what was
    /// presigned: the caller sees the length and refuses it).
    pub async fn fetch_upload(&self, key: &str, limit: u64) -> Result<Option<Sink>> {
        let counted = m::STORAGE_FETCHED_BYTES;
        self.fetch_at(key, &self.staging_path(key)?, limit, counted)
            .await
    }

    /// A stored object copied into a temp file (what a tool reads: a video's poster).
    pub(super) async fn fetch(&self, key: &str) -> Result<Option<Sink>> {
        let counted = m::POSTER_FETCHED_BYTES;
        self.fetch_at(key, &self.path(key)?, u64::MAX, counted)
            .await
    }

    /// The object at `path` copied into a temp file (at most `limit` + 1 bytes), its bytes
    /// counted in the `counted` metric.
    async fn fetch_at(
        &self,
        key: &str,
        path: &ObjectPath,
        limit: u64,
        counted: &'static str,
    ) -> Result<Option<Sink>> {
        let got = match self.bucket_of(key)?.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote(e)),
        };
        let mut sink = Sink::new(&self.tmp, &self.in_flight, self.upload_buffer);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(remote)?;
            metrics::counter!(counted).increment(chunk.len() as u64);
            sink.write(&chunk).await?;
            if sink.len() > limit {
                break;
            }
        }
        sink.flush().await?;
        Ok(Some(sink))
    }

    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        match self.bucket_of(key)?.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote(e)),
        }
    }

    /// A URL that lets its holder GET the file of `key` until it expires (SigV4 binds the
    /// method: not HEAD): how the files of private items are read (their bucket allows no
    /// anonymous read). It names the configured endpoint, which clients must reach.
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String> {
        let url = self
            .bucket_of(key)?
            .signed_url(Method::GET, &self.path(key)?, expires_in)
            .await
            .map_err(remote)?;
        Ok(url.to_string())
    }

    /// A URL that lets its holder PUT the upload for `key` (its staging object, never the
    /// key itself), with this Content-Type, until it expires (the Content-Type is part of
    /// the signature).
    pub async fn presign_put(&self, key: &str, mime: &str, expires_in: Duration) -> Result<String> {
        let value = HeaderValue::from_str(mime)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut options =
            SignedUrlOptions::new().with_signed_header(hyper::header::CONTENT_TYPE, value);
        if is_private(key) {
            // Kept by the copy confirm makes: a private file is never cached publicly.
            let cache = HeaderValue::from_static(PRIVATE_CACHE);
            options = options.with_signed_header(hyper::header::CACHE_CONTROL, cache);
        }
        let url = self
            .bucket_of(key)?
            .signed_url_opts(Method::PUT, &self.staging_path(key)?, expires_in, &options)
            .await
            .map_err(remote)?;
        Ok(url.to_string())
    }

    /// Reachable and allowed: a HEAD of a key that does not exist must say "not found".
    pub(super) async fn check(&self) -> Result<()> {
        let probe = ObjectPath::from(object_key(&self.prefix, "darkroom-readiness-probe"));
        for store in std::iter::once(&self.store).chain(&self.private) {
            match store.head(&probe).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote(e)),
            }
        }
        Ok(())
    }

    /// Removes temp files and unclaimed objects under the prefix, older than the cutoff.
    /// Each run lists at most `SWEEP_LISTED` objects, resuming after the last one the
    /// previous run saw (so a large bucket is covered over several runs), and removes at
    /// most `SWEEP_DELETES_PER_SEC` objects a second. Objects that are not ours (not a
    /// server-made key) are never touched.
    pub(super) async fn sweep(&self, sweep: &Sweep) -> Result<SweepReport> {
        let (tmp, in_flight) = (self.tmp.clone(), self.in_flight.clone());
        let cutoff = sweep.cutoff;
        let temp = tokio::task::spawn_blocking(move || sweep_temp(&tmp, cutoff, &in_flight));
        let mut report = SweepReport {
            temp_files: temp.await.map_err(std::io::Error::other)??,
            orphans: 0,
        };
        if !sweep.stored {
            return Ok(report);
        }
        let buckets = std::iter::once(&self.store).chain(&self.private);
        for (store, resume) in buckets.zip(&self.sweep_resume) {
            report.orphans += self.sweep_bucket(store, resume, sweep).await?;
        }
        Ok(report)
    }

    /// The orphans of one bucket (see `sweep`): how many went.
    async fn sweep_bucket(
        &self,
        store: &AmazonS3,
        resume: &Mutex<Option<ObjectPath>>,
        sweep: &Sweep,
    ) -> Result<usize> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let after = resume.lock().expect("sweep cursor").take();
        let mut listing = match &after {
            Some(after) => store.list_with_offset(prefix.as_ref(), after),
            None => store.list(prefix.as_ref()),
        }
        .take(SWEEP_LISTED);
        let mut orphans = 0;
        let cutoff_secs = unix_secs(sweep.cutoff);
        let mut pace = tokio::time::interval(Duration::from_secs(1) / SWEEP_DELETES_PER_SEC);
        let (mut listed, mut last) = (0, None);
        let mut batch = Vec::with_capacity(SWEEP_BATCH);
        loop {
            let next = listing.next().await.transpose().map_err(remote)?;
            if let Some(meta) = &next {
                listed += 1;
                // A key in the other bucket's place is not this bucket's to judge.
                let key = key_of(&self.prefix, meta.location.as_ref())
                    .filter(|k| self.bucket_of(k).is_ok_and(|b| std::ptr::eq(&**b, store)));
                if let Some(key) = key.filter(|k| !self.in_flight.contains(k))
                    && meta.last_modified.timestamp() < cutoff_secs
                {
                    batch.push(key.to_owned());
                }
            }
            // The catalog judges a batch at a time, and its orphans go before the listing
            // goes on (nothing more than a batch is held, and judged moments before).
            if batch.len() == SWEEP_BATCH || (next.is_none() && !batch.is_empty()) {
                let claimed = (sweep.claims)(batch.clone()).await;
                for key in batch.drain(..).filter(|k| !claimed.contains(k)) {
                    if self.in_flight.contains(&key) {
                        continue; // taken by a request since it was listed
                    }
                    pace.tick().await;
                    self.delete(&key).await?;
                    orphans += 1;
                }
            }
            match next {
                Some(meta) => last = Some(meta.location),
                None => break,
            }
        }
        // A full batch may have more behind it: the next run starts after it.
        *resume.lock().expect("sweep cursor") = last.filter(|_| listed == SWEEP_LISTED);
        Ok(orphans)
    }
}

/// Only server-made keys are ever turned into object paths.
fn check_key(key: &str) -> Result<()> {
    if is_valid_key(key) {
        Ok(())
    } else {
        let invalid = std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid storage key");
        Err(invalid.into())
    }
}

fn unix_secs(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What an object at `key` is stored with (and what GETs of it answer): its type, and its
/// caching. A generated file (variant, crop) never changes under its name, so it is
/// cacheable for ever; a private item's file only privately, and never past its link (a
/// presigned GET answers with the stored `Cache-Control`, so a shared cache in front of
/// the private bucket must not keep it).
fn attributes(key: &str, mime: &str) -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, mime.to_owned().into());
    if mime == "image/svg+xml" {
        // Opened directly, an SVG downloads instead of running in the CDN's origin.
        a.insert(Attribute::ContentDisposition, "attachment".into());
    }
    let generated = key
        .rsplit_once('.')
        .is_some_and(|(stem, _)| key_stem(key) != stem);
    if is_private(key) {
        a.insert(Attribute::CacheControl, PRIVATE_CACHE.into());
    } else if generated {
        a.insert(
            Attribute::CacheControl,
            "public, max-age=31536000, immutable".into(),
        );
    }
    a
}

fn remote(e: object_store::Error) -> StorageError {
    StorageError::Remote(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{S3Config, Secret};

    fn storage(prefix: &str) -> S3Storage {
        let config = S3Config {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            private_bucket: Some("p".into()),
            region: "us-east-1".into(),
            path_style: true,
            access_key_id: Some("id".into()),
            secret_access_key: Some(Secret::new("secret")),
            prefix: prefix.into(),
            public_base_url: "https://cdn.example.com".into(),
            max_file_bytes: 1,
            presign_expiry_secs: 60,
            connect_timeout_secs: 1,
            request_timeout_secs: 1,
            read_timeout_secs: 1,
            retry_timeout_secs: 1,
            max_retries: 0,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        S3Storage::new(&config, dir.path()).expect("storage")
    }

    #[tokio::test]
    async fn presigned_urls_sign_the_content_type() {
        let s = storage("site_1");
        let url = s
            .presign_put("2026/03/abc.mp4", "video/mp4", Duration::from_secs(600))
            .await
            .expect("sign");
        assert!(
            url.starts_with("http://127.0.0.1:9/b/incoming/site_1/2026/03/abc.mp4?"),
            "the PUT lands outside the served prefix: {url}"
        );
        assert!(url.contains("X-Amz-Expires=600"), "{url}");
        assert!(url.contains("content-type"), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
    }

    #[tokio::test]
    async fn private_files_are_in_the_private_bucket_and_read_by_presigned_gets() {
        let s = storage("site_1");
        let url = s
            .presign_get("private/2026/03/abc.jpg", Duration::from_secs(300))
            .await
            .expect("sign");
        assert!(
            url.starts_with("http://127.0.0.1:9/p/site_1/private/2026/03/abc.jpg?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=300"), "{url}");
        let cache = |key: &str| {
            let a = attributes(key, "image/webp");
            a.get(&Attribute::CacheControl).map(|v| v.to_string())
        };
        assert_eq!(cache("2026/03/abc.jpg"), None, "an original");
        assert!(cache("2026/03/abc-400.webp").is_some_and(|c| c.contains("immutable")));
        for private in ["private/2026/03/abc.jpg", "private/2026/03/abc-400.webp"] {
            assert_eq!(
                cache(private).as_deref(),
                Some("private, no-cache"),
                "{private}"
            );
        }
        let put = s
            .presign_put(
                "private/2026/03/abc.jpg",
                "image/jpeg",
                Duration::from_secs(60),
            )
            .await
            .expect("sign");
        assert!(
            put.starts_with("http://127.0.0.1:9/p/incoming/site_1/private/"),
            "{put}"
        );
        let mut no_private = storage("site_1");
        no_private.private = None;
        assert!(matches!(
            no_private
                .presign_get("private/2026/03/abc.jpg", Duration::from_secs(1))
                .await,
            Err(StorageError::NoPrivatePlace)
        ));
    }
}
