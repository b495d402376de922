//! The `darkroom` binary: parse the command line, load the config, set up logging, and
//! either serve (`app::run`) or manage API keys.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use darkroom::actors::catalog::CatalogHandle;
use darkroom::catalog::pg::PgCatalog;
use darkroom::catalog::{Catalog, CatalogError};
use darkroom::config::Config;
use darkroom::model::{CropSize, FolderPath, Scope, rfc3339};

/// mimalloc, not glibc's malloc: glibc gives each allocating thread its own arena (up to 8
/// per core) and keeps what is freed there, so catalog scans on the blocking pool left the
/// RSS at 305 MB for 127 MB in use after deep pages at 1M items (measured with
/// MALLOC_ARENA_MAX=2 as the comparison). mimalloc returns freed pages to the OS.
/// Built with `--features system-allocator`, the system allocator instead: for heap
/// profilers such as heaptrack, which see only its calls.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "darkroom",
    version,
    about = "A media server for the CMS Media API"
)]
struct Cli {
    /// Config file layered over the embedded defaults (DARKROOM_* variables win).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr; the level comes from RUST_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage API keys. On a PostgreSQL catalog this works while servers run; on redb it
    /// needs the server stopped (the file is single-process: while it runs, an `admin`
    /// key manages keys through `/api/v1/keys`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work on the catalog itself (the server stopped).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print the OpenAPI document (what `GET /api/v1/openapi.json` serves).
    Openapi,
    /// Check a file as an upload would be (type, limits, safety, cleaning), and process
    /// it as its job would (decode, variants) when it is an image; print the verdict and
    /// what it cost (CPU seconds, peak memory) as JSON. Exit status 1 when refused.
    Check {
        /// The file to check (it is not changed: a copy is cleaned).
        file: PathBuf,
    },
    /// Print the signed URL path of an on-demand crop: `darkroom sign media_... 300x200`
    /// (the key from `delivery.signing_key`, or the data dir's).
    Sign {
        /// The media item's id.
        id: String,
        /// WIDTHxHEIGHT, each side 1 to `delivery.max_crop_side`.
        size: String,
    },
}

/// `--scope` of `keys create`: the API's `Scope`, spelled for the command line.
#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Read,
    Write,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(arg: ScopeArg) -> Self {
        match arg {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Copy the redb catalog in the data dir into an empty PostgreSQL database (the
    /// server stopped): items, ids, keys, jobs and URLs stay as they are. Every table is
    /// counted on both sides and a sample of records compared; a failed copy leaves the
    /// database as it was. Then set `[catalog] url` to it and start the nodes.
    Copy {
        /// `postgres://user@host:port/db` (default: `catalog.url` from the config; the
        /// password from the URL or DARKROOM_CATALOG__PASSWORD).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it alone on stdout.
    Create {
        #[arg(long, value_enum)]
        scope: ScopeArg,
        #[arg(long, default_value = "")]
        name: String,
        /// Limit the key to this folder's subtree (`/clients/acme`): it lists, reads,
        /// uploads into, changes and deletes nothing outside it (read and write keys).
        #[arg(long)]
        folder: Option<String>,
    },
    /// List keys (id, scope, created, name, folder), tab-separated; secrets are never stored.
    List,
    /// Revoke a key by id (the 8 characters after `drk_`).
    Revoke { id: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_writer = init_logging(cli.log_format);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("darkroom: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Keys(cmd) => manage_keys(&config, cmd),
        Command::Catalog(CatalogCommand::Copy { to }) => copy_catalog(&config, to),
        Command::Sign { id, size } => sign(&config, &id, &size),
        Command::Check { file } => return check(&config, &file),
        Command::Openapi => {
            let doc = darkroom::http::openapi::json_bytes();
            std::io::Write::write_all(&mut std::io::stdout(), doc).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("darkroom: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through a writer thread, so request threads never wait on the
/// terminal or a pipe (under overload it drops lines rather than stall requests). That
/// thread writes what has queued up in one buffered write and flushes whenever the queue
/// is empty (one `write` per line cost ~8% of the CPU of a read-heavy load). The returned
/// guard flushes what is queued when `main` returns.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

type BoxError = Box<dyn std::error::Error>;

/// `darkroom sign ID WxH`: prints the path of the signed crop URL.
fn sign(config: &Config, id: &str, size: &str) -> Result<(), BoxError> {
    let max = config.delivery.max_crop_side;
    let size = CropSize::parse(size)
        .filter(|s| s.width <= max && s.height <= max)
        .ok_or(format!(
            "size {size:?}: want WIDTHxHEIGHT, each side 1-{max}"
        ))?;
    if !darkroom::model::id::is_media_id(id) {
        return Err(format!("{id:?} is not a media id (media_ and 16 letters or digits)").into());
    }
    let key = config.delivery.signing_key.as_ref().map(|k| k.expose());
    let signer = darkroom::delivery::Signer::load(key, &config.data_dir)?;
    println!("{}", signer.url(id, size, None));
    Ok(())
}

/// `darkroom check FILE`: the upload's checks and the job's processing on one file, with
/// their cost measured here (this process does nothing else).
fn check(config: &Config, file: &std::path::Path) -> ExitCode {
    let verdict =
        darkroom::media::check_file(file, &config.media_limits(), &config.image_settings());
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let cpu_seconds = cpu.tv_sec as f64 + cpu.tv_nsec as f64 / 1e9;
    let peak_rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024);
    let accepted = verdict.is_ok();
    let mut report = match verdict {
        Ok(found) => serde_json::to_value(found).unwrap_or_default(),
        Err(e) => serde_json::json!({
            "verdict": "refused",
            "code": darkroom::error::media_code(&e),
            "message": e.to_string(),
        }),
    };
    report["cpuSeconds"] = serde_json::json!(cpu_seconds);
    report["peakRssBytes"] = serde_json::json!(peak_rss_bytes);
    println!("{report}");
    if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn serve(config: Config) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(config.server.blocking_threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        darkroom::app::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// `darkroom catalog copy`: the redb file of `data_dir` into PostgreSQL.
fn copy_catalog(config: &Config, to: Option<String>) -> Result<(), BoxError> {
    let mut options = config.catalog.clone();
    if let Some(url) = to {
        options.url = Some(darkroom::config::Secret::new(url));
    }
    let target = options
        .postgres()
        .ok_or("say where to copy: --to postgres://user@host:port/db (or catalog.url)")?;
    let redb = Catalog::open_with(&config.catalog_path(), options.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let lease = std::time::Duration::from_secs(options.job_lease_secs.max(3));
        let pg = PgCatalog::open(target, lease).await?;
        eprintln!(
            "copying {} into {}",
            config.catalog_path().display(),
            pg.at()
        );
        let report = darkroom::catalog::copy::copy(&redb, &pg).await?;
        println!("{report}");
        Ok(())
    })
}

/// `darkroom keys`: on PostgreSQL while servers run (a revoked key fails on every node
/// at its next request); on redb with the server stopped (while it runs, an `admin` key
/// manages keys through `/api/v1/keys`).
fn manage_keys(config: &Config, cmd: KeysCommand) -> Result<(), BoxError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let backend = darkroom::app::open_catalog(config, false).await?;
        let (catalog, actor) = CatalogHandle::spawn(backend).await?;
        let done = keys_command(&catalog, cmd).await;
        catalog.barrier().await?;
        actor.stop(None);
        done
    })
}

async fn keys_command(catalog: &CatalogHandle, cmd: KeysCommand) -> Result<(), BoxError> {
    match cmd {
        KeysCommand::Create {
            scope,
            name,
            folder,
        } => {
            let scope = Scope::from(scope);
            let folder = match folder {
                Some(f) => Some(FolderPath::parse(&f).ok_or(format!(
                    "--folder {f:?} is not a folder path (/ or /name(/name)*)"
                ))?),
                None => None,
            };
            if folder.is_some() && !scope.may_be_limited() {
                return Err("an admin key cannot be limited to a folder".into());
            }
            let (key, _) = catalog.create_key(scope, &name, folder).await?;
            let scope = scope.name();
            eprintln!("created a {scope} key; store it now, it cannot be shown again");
            println!("{key}");
        }
        KeysCommand::List => {
            for k in catalog.keys().await? {
                let scope = k.scope.name();
                let folder = k.folder.as_ref().map_or("/", |f| f.as_str());
                let created = rfc3339(k.created_us);
                println!("{}\t{scope}\t{created}\t{}\t{folder}", k.id, k.name);
            }
        }
        KeysCommand::Revoke { id } => match catalog.revoke_key(id.clone()).await {
            Ok(()) => eprintln!("revoked key {id}"),
            Err(CatalogError::NotFound(_)) => return Err(format!("no key with id {id}").into()),
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}
