//! Typed configuration, layered once at start-up and passed down:
//! `config/default.toml` (embedded) → `--config FILE` → `DARKROOM_*` environment.
//!
//! Environment variables: `DARKROOM_LISTEN`, `DARKROOM_DATA_DIR`, and in general
//! `DARKROOM_<SECTION>__<KEY>` (e.g. `DARKROOM_LIMITS__MAX_FILE_BYTES=1000`). Values are
//! read as TOML scalars (numbers, booleans) and fall back to strings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Table, Value};

/// The embedded defaults; every key has a value here.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "DARKROOM_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub server: Server,
    pub admin: Admin,
    pub processing: Processing,
    pub previews: Previews,
    pub maintenance: Maintenance,
    pub catalog: crate::catalog::Options,
    pub delivery: crate::delivery::DeliveryConfig,
    pub media: Media,
    pub webhooks: crate::events::WebhookConfig,
    pub storage: StorageConfig,
}

/// `[media]`: who may read new items, and how long the links to private ones last.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// The visibility of an upload that names none.
    pub default_visibility: crate::model::Visibility,
    /// How long a signed link to a private item's file lasts, in seconds.
    pub link_ttl_secs: u64,
    /// The longest `?urlTtl=` a request may ask for (S3 signs for 7 days at most).
    pub max_link_ttl_secs: u64,
}

/// `[previews]`: the tools that make posters of videos and PDFs, and their bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Previews {
    /// A name looked up on `PATH`, or a path; empty turns that preview off.
    pub ffmpeg: String,
    pub pdftoppm: String,
    /// One run of a tool: wall-clock and CPU seconds, address space, bytes of output.
    pub timeout_secs: u64,
    pub cpu_secs: u64,
    pub memory_bytes: u64,
    pub max_output_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Seconds between orphan sweeps (temp files and unclaimed stored files).
    pub orphan_sweep_secs: u64,
    /// Age (seconds since last modified) before an unclaimed file may be swept.
    pub orphan_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processing {
    /// rayon threads; 0 = one per core.
    pub threads: usize,
    /// Whether this node runs image jobs. With a PostgreSQL catalog a node may leave
    /// them to the others (it still takes uploads, serves, and makes on-demand crops).
    pub run_jobs: bool,
    /// Unfinished jobs (running, queued, and waiting in the catalog) past which image
    /// uploads get 503 with Retry-After.
    pub max_backlog: u64,
    /// WebP quality (0-100) and method (0-6).
    pub webp_quality: f32,
    pub webp_method: i32,
    /// Longest `?wait=true` hold, in seconds.
    pub wait_timeout_secs: u64,
    /// Starts of a job, each interrupted by a crash or stop, before it is marked failed.
    pub max_attempts: u32,
    /// Retry-After of a 503 for a full backlog, in seconds.
    pub retry_after_secs: u64,
    /// Decode memory the pool may hold at once (jobs and on-demand crops wait for room);
    /// an image that could never fit is refused at upload.
    pub memory_budget_bytes: u64,
}

impl Processing {
    /// Pool threads, resolving 0 to the number of cores.
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_files_per_request: usize,
    pub max_json_bytes: usize,
    /// Bytes of one upload kept in memory before it spills to a temp file, and the write
    /// buffer of the temp file after.
    pub upload_buffer_bytes: usize,
    pub max_image_pixels: u64,
    /// One metadata block (an inflated ICC profile, an EXIF block); larger are dropped.
    pub max_metadata_bytes: u64,
    /// JPEG segments, PNG/WebP chunks or MP4 boxes in one file.
    pub max_records: u64,
    /// Scans of a progressive JPEG.
    pub max_jpeg_scans: u32,
    /// An animated GIF or WebP: frames, canvas pixels times frames, and seconds of play.
    pub max_animation_frames: u64,
    pub max_animation_pixels: u64,
    pub max_animation_secs: u64,
    /// SVG: bytes, nesting depth, elements, and attributes on one element.
    pub max_svg_bytes: u64,
    pub max_svg_depth: usize,
    pub max_svg_elements: u64,
    pub max_svg_attributes: usize,
    /// Uploads are refused (507) while the data dir has fewer free bytes than this.
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// After SIGTERM, `/readyz` answers 503 this long while requests are still served,
    /// then the listener closes (0: close at once).
    pub drain_secs: u64,
    pub shutdown_grace_secs: u64,
    pub header_read_timeout_secs: u64,
    pub body_idle_timeout_secs: u64,
    /// A body must bring at least this many bytes a second, averaged over each window of
    /// `min_body_rate_window_secs` (0: no minimum rate).
    pub min_body_rate_bytes: u64,
    pub min_body_rate_window_secs: u64,
    /// A response body taken slower than this many bytes a second is no progress: its
    /// connection goes once idle that long (0: any progress counts).
    pub min_send_rate_bytes: u64,
    /// A connection with no request in flight for this long is closed (HTTP/2 too).
    pub idle_timeout_secs: u64,
    /// HTTP/2 keep-alive ping interval, and how long an answer may take (0: no pings).
    pub http2_keep_alive_secs: u64,
    /// Requests one HTTP/2 connection may have in flight at once.
    pub http2_max_streams: u32,
    /// Threads of the runtime's blocking pool (file I/O, catalog scans, upload checks).
    pub blocking_threads: usize,
    pub max_connections: usize,
    /// Open connections one client address may have; 0 = no such cap (behind a proxy).
    pub max_connections_per_client: usize,
    pub max_header_bytes: usize,
    /// Each readiness check (storage, catalog) must answer within this; `/readyz`
    /// answers at once from the last checks.
    pub readiness_timeout_secs: u64,
    /// When set, `/metrics` is served only here, not on `listen`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub fault_injection: bool,
}

/// Where files live. A closed set, chosen by `type`.
// Read once at start-up and never moved around in bulk: boxing the S3 settings buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StorageConfig {
    /// Files under `<data_dir>/uploads`.
    Local,
    /// An S3-compatible bucket (see `config/s3.example.toml`).
    S3(S3Config),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://...` of an S3-compatible service; unset = AWS S3 in `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`), as MinIO and SeaweedFS want; false =
    /// virtual-hosted (`bucket.endpoint/key`), as AWS prefers.
    #[serde(default)]
    pub path_style: bool,
    /// From the config or `DARKROOM_STORAGE__ACCESS_KEY_ID` / `..._SECRET_ACCESS_KEY`;
    /// never logged.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// The files of private items: a bucket of its own that denies anonymous reads (read
    /// through presigned GET URLs only), at the same prefix. Unset, items cannot be made
    /// private on this store.
    #[serde(default)]
    pub private_bucket: Option<String>,
    /// Key prefix inside the bucket (the site id): objects are `<prefix>/YYYY/MM/...`.
    #[serde(default)]
    pub prefix: String,
    /// Where clients read files: the CDN or public bucket URL that maps to the prefix.
    pub public_base_url: String,
    /// Largest file, uploaded or presigned (500 MB).
    #[serde(default = "default_s3_max_file_bytes")]
    pub max_file_bytes: u64,
    /// How long a presigned upload URL stays valid.
    #[serde(default = "default_presign_expiry")]
    pub presign_expiry_secs: u64,
    /// Deadlines of every call to the store: connecting, one request, and one operation
    /// with its retries (at most `max_retries` of them).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// A store that moves no byte of a response for this long is given up on (a frozen
    /// store is told from a slow transfer by the lack of progress, not by its length).
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    #[serde(default = "default_retry_timeout")]
    pub retry_timeout_secs: u64,
    #[serde(default = "default_max_retries")]
    pub max_retries: usize,
}

/// The shortest `delivery.signing_key` accepted.
const MIN_SIGNING_KEY: usize = 16;

/// 7 days: the longest an S3 presigned URL may last (SigV4).
pub const MAX_LINK_TTL_SECS: u64 = 7 * 24 * 3600;

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_s3_max_file_bytes() -> u64 {
    500 * 1024 * 1024
}

fn default_presign_expiry() -> u64 {
    3600
}

fn default_connect_timeout() -> u64 {
    3
}

fn default_request_timeout() -> u64 {
    30
}

fn default_read_timeout() -> u64 {
    10
}

fn default_retry_timeout() -> u64 {
    45
}

fn default_max_retries() -> usize {
    3
}

/// A credential: usable by the code that needs it, `[redacted]` in any log or debug print.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid TOML in {origin}: {source}")]
    Parse {
        origin: String,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::layered(file, std::env::vars())
    }

    /// The embedded defaults alone (what tests start from).
    pub fn defaults() -> Self {
        Self::layered(None, std::iter::empty()).expect("embedded default config is valid")
    }

    fn layered(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = parse(DEFAULT_TOML, "config/default.toml")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            merge(&mut table, parse(&text, &path.display().to_string())?);
        }
        let mut from_env = Vec::new();
        for (name, value) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                apply_env(&mut table, key, &value);
                from_env.push(name);
            }
        }
        let config: Config = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                ConfigError::Invalid(with_env_origin(e.message(), &from_env))
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.limits.max_file_bytes == 0
            || self.limits.max_files_per_request == 0
            || self.limits.upload_buffer_bytes < 4096
            || self.server.http2_max_streams == 0
            || self.server.blocking_threads == 0
            || self.server.max_connections == 0
            || self.server.header_read_timeout_secs == 0
            || self.server.body_idle_timeout_secs == 0
            || self.server.idle_timeout_secs == 0
            || self.server.readiness_timeout_secs == 0
            || self.maintenance.orphan_sweep_secs == 0
        {
            return Err(ConfigError::Invalid(
                "limits and timeouts must be greater than zero (limits.upload_buffer_bytes at \
                 least 4096)"
                    .into(),
            ));
        }
        let p = &self.processing;
        if !(0.0..=100.0).contains(&p.webp_quality) || !(0..=6).contains(&p.webp_method) {
            return Err(ConfigError::Invalid(
                "processing.webp_quality must be 0-100 and webp_method 0-6".into(),
            ));
        }
        let v = &self.previews;
        if v.timeout_secs == 0
            || v.cpu_secs == 0
            || v.memory_bytes < 64 << 20
            || v.max_output_bytes < 1 << 20
            || self.limits.max_animation_frames < 2
        {
            return Err(ConfigError::Invalid(
                "previews.timeout_secs and cpu_secs must be > 0, memory_bytes at least 64 MB, \
                 max_output_bytes at least 1 MB; limits.max_animation_frames at least 2"
                    .into(),
            ));
        }
        if p.max_backlog == 0 || p.max_attempts == 0 || p.wait_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "processing.max_backlog, max_attempts and wait_timeout_secs must be > 0".into(),
            ));
        }
        if self.catalog.url.is_some() && self.delivery.signing_key.is_none() {
            return Err(ConfigError::Invalid(
                "with a PostgreSQL catalog (catalog.url), set delivery.signing_key, the same on \
                 every node: a crop URL signed by one node must verify on the others"
                    .into(),
            ));
        }
        if !p.run_jobs && self.catalog.url.is_none() {
            return Err(ConfigError::Invalid(
                "processing.run_jobs = false needs a PostgreSQL catalog (catalog.url): on redb \
                 no other node would run the image jobs"
                    .into(),
            ));
        }
        self.webhooks.validate().map_err(ConfigError::Invalid)?;
        let m = &self.media;
        if m.link_ttl_secs == 0 || m.link_ttl_secs > m.max_link_ttl_secs {
            return Err(ConfigError::Invalid(
                "media.link_ttl_secs must be from 1 to media.max_link_ttl_secs".into(),
            ));
        }
        if m.max_link_ttl_secs > MAX_LINK_TTL_SECS {
            return Err(ConfigError::Invalid(format!(
                "media.max_link_ttl_secs is at most {MAX_LINK_TTL_SECS} (7 days: the longest \
                 an S3 presigned URL lasts)"
            )));
        }
        if let StorageConfig::S3(s3) = &self.storage
            && let Some(private) = &s3.private_bucket
            && (private.trim().is_empty() || private.trim().eq_ignore_ascii_case(s3.bucket.trim()))
        {
            return Err(ConfigError::Invalid(
                "storage.private_bucket must be a bucket of its own, not storage.bucket: the \
                 public bucket is anonymously readable"
                    .into(),
            ));
        }
        if self
            .delivery
            .signing_key
            .as_ref()
            .is_some_and(|k| k.expose().len() < MIN_SIGNING_KEY)
        {
            return Err(ConfigError::Invalid(format!(
                "delivery.signing_key must be at least {MIN_SIGNING_KEY} bytes (it signs crop \
                 URLs and the links to private files)"
            )));
        }
        if let StorageConfig::S3(s3) = &self.storage
            && s3.private_bucket.is_none()
            && m.default_visibility.is_private()
        {
            return Err(ConfigError::Invalid(
                "media.default_visibility = \"private\" on S3 needs storage.private_bucket: a \
                 bucket no anonymous request may read (see the README's \"Private media\")"
                    .into(),
            ));
        }
        if self.server.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "server.max_header_bytes must be at least 8192".into(),
            ));
        }
        Ok(())
    }

    /// Whether items can be private here (on S3, with `storage.private_bucket`).
    pub fn keeps_private(&self) -> bool {
        match &self.storage {
            StorageConfig::Local => true,
            StorageConfig::S3(s3) => s3.private_bucket.is_some(),
        }
    }

    /// Largest single uploaded file: `limits.max_file_bytes` on local disk, the S3
    /// backend's own limit (500 MB) in a bucket.
    pub fn max_file_bytes(&self) -> u64 {
        match &self.storage {
            StorageConfig::Local => self.limits.max_file_bytes,
            StorageConfig::S3(s3) => s3.max_file_bytes,
        }
    }

    /// The bounds of every parse of an upload (see `media::Limits`).
    pub fn media_limits(&self) -> crate::media::Limits {
        let l = &self.limits;
        crate::media::Limits {
            max_pixels: l.max_image_pixels,
            max_metadata_bytes: l.max_metadata_bytes,
            max_records: l.max_records,
            max_scans: l.max_jpeg_scans,
            max_decode_bytes: self.processing.memory_budget_bytes,
            svg: crate::media::svg::Limits {
                max_bytes: l.max_svg_bytes,
                max_depth: l.max_svg_depth,
                max_elements: l.max_svg_elements,
                max_attributes: l.max_svg_attributes,
            },
            animation: crate::media::anim::AnimationLimits {
                max_frames: l.max_animation_frames,
                max_pixels: l.max_animation_pixels,
                max_secs: l.max_animation_secs,
            },
        }
    }

    /// The poster tools found on this machine, with their bounds (see `media::poster`).
    pub fn previews(&self) -> crate::media::poster::Previews {
        let p = &self.previews;
        let limits = crate::media::poster::ToolLimits {
            wall: std::time::Duration::from_secs(p.timeout_secs),
            cpu_secs: p.cpu_secs,
            memory_bytes: p.memory_bytes,
            max_output_bytes: p.max_output_bytes,
        };
        let max_side = crate::media::image::VARIANT_WIDTHS[0];
        crate::media::poster::Previews::find(&p.ffmpeg, &p.pdftoppm, limits, max_side)
    }

    /// The image pipeline's settings (encoder, pixel and scan limits).
    pub fn image_settings(&self) -> crate::media::image::Settings {
        crate::media::image::Settings {
            quality: self.processing.webp_quality,
            method: self.processing.webp_method,
            max_pixels: self.limits.max_image_pixels,
            max_scans: self.limits.max_jpeg_scans,
            max_frames: self.limits.max_animation_frames,
        }
    }

    /// Path of the redb catalog file.
    pub fn catalog_path(&self) -> PathBuf {
        self.data_dir.join("darkroom.redb")
    }
}

fn parse(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|source| ConfigError::Parse {
        origin: origin.to_owned(),
        source,
    })
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Names the environment variable behind an unknown setting: `DARKROOM_*` is the
/// server's namespace, and a tool's variable there (an API key for a client, say) would
/// otherwise stop the server with a message about a field nobody wrote in a file.
fn with_env_origin(message: &str, from_env: &[String]) -> String {
    let field = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    let culprit = field.and_then(|field| {
        from_env.iter().find(|name| {
            let last = name.rsplit("__").next().unwrap_or(name);
            last.strip_prefix(ENV_PREFIX)
                .unwrap_or(last)
                .eq_ignore_ascii_case(field)
        })
    });
    match culprit {
        Some(name) => format!(
            "{message} (set by the environment variable {name}: DARKROOM_* variables are \
             Darkroom settings; unset it, or give the tool that wants it another name)"
        ),
        None => message.to_owned(),
    }
}

/// `LIMITS__MAX_FILE_BYTES=5` sets `limits.max_file_bytes = 5`.
fn apply_env(table: &mut Table, key: &str, raw: &str) {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cursor = table;
    for part in parents {
        let entry = cursor
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        let Value::Table(next) = entry else { return };
        cursor = next;
    }
    let value = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()));
    cursor.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.limits.max_file_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn the_s3_example_loads_and_env_credentials_win_and_stay_secret() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/s3.example.toml");
        let c = Config::layered(
            Some(&path),
            env(&[("DARKROOM_STORAGE__SECRET_ACCESS_KEY", "from-env-secret")]),
        )
        .expect("valid");
        let StorageConfig::S3(s3) = &c.storage else {
            panic!("expected S3 storage");
        };
        assert_eq!(s3.bucket, "darkroom");
        assert!(s3.path_style);
        assert_eq!(s3.prefix, "site_1");
        assert_eq!(c.max_file_bytes(), 500 * 1024 * 1024);
        let secret = s3.secret_access_key.as_ref().expect("secret");
        assert_eq!(secret.expose(), "from-env-secret");
        assert!(
            !format!("{c:?}").contains("from-env-secret"),
            "secrets never print"
        );
        // The local default keeps the local limit.
        assert_eq!(Config::defaults().max_file_bytes(), 50 * 1024 * 1024);
    }

    #[test]
    fn env_overrides_defaults() {
        let c = Config::layered(
            None,
            env(&[
                ("DARKROOM_LISTEN", "0.0.0.0:9000"),
                ("DARKROOM_DATA_DIR", "/srv/media"),
                ("DARKROOM_LIMITS__MAX_FILE_BYTES", "1000"),
                ("OTHER", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.data_dir, PathBuf::from("/srv/media"));
        assert_eq!(c.limits.max_file_bytes, 1000);
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\n[limits]\nmax_file_bytes = 7\n",
        )
        .expect("write");
        let c = Config::layered(Some(&path), env(&[("DARKROOM_LISTEN", "127.0.0.1:2")]))
            .expect("valid");
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.limits.max_file_bytes, 7);
        assert_eq!(
            c.limits.max_files_per_request, 50,
            "untouched keys keep defaults"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let bad_key = Config::layered(None, env(&[("DARKROOM_LISTNE", "x")]));
        assert!(bad_key.is_err());
        // A client's key in the server's namespace: the message names the variable.
        let Err(ConfigError::Invalid(message)) =
            Config::layered(None, env(&[("DARKROOM_API_KEY", "drk_x")]))
        else {
            panic!("DARKROOM_API_KEY is not a setting");
        };
        assert!(message.contains("DARKROOM_API_KEY"), "{message}");
        let bad_addr = Config::layered(None, env(&[("DARKROOM_LISTEN", "nowhere")]));
        assert!(bad_addr.is_err());
    }
}
