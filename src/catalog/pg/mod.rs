//! The catalog on PostgreSQL, for N Darkroom nodes sharing one library (issue 25). This
//! part connects and keeps the schema: a pool of connections from a `postgres://` URL
//! (TLS by `sslmode`, the password from the URL or the environment), every query under
//! a deadline, and the schema created and upgraded at start from the migrations embedded
//! here, one node at a time (an advisory lock). Failures come back as one clear line.
//!
//! - `tls`: `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) to a
//!   rustls connector;
//! - `migrate`: the embedded, versioned schema (`schema/NNN_*.sql`);
//! - `catalog`: `PgCatalog`, its reads and listings, and a node's upkeep (job leases
//!   renewed, the cluster's backlog counted);
//! - `write`: the write path, a batch of `catalog::Write`s in one transaction;
//! - `webhooks`: webhooks and their outboxes.

mod catalog;
mod kept;
mod migrate;
mod tls;
mod webhooks;
mod write;

pub use catalog::{Exclusive, PgCatalog, upkeep};
pub(in crate::catalog) use kept::CHANGED;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use migrate::{SCHEMA, migrate};

/// How to reach the catalog's database.
#[derive(Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=...&sslrootcert=...]`.
    pub url: String,
    /// The password when the URL has none (from `DARKROOM_CATALOG__PASSWORD`, say).
    pub password: Option<String>,
    /// Connections kept open at most.
    pub pool_size: usize,
    /// The longest any one query may take (also the server's `statement_timeout`), and
    /// the longest a connection may take to open.
    pub query_timeout: Duration,
}

/// Never the password, whether in the URL or beside it.
impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match tls::parse(&self.url) {
            Ok((config, _)) => describe(&config),
            Err(_) => "(not a PostgreSQL URL)".into(),
        };
        f.debug_struct("PgOptions")
            .field("url", &url)
            .field("password", &self.password.as_ref().map(|_| "..."))
            .field("pool_size", &self.pool_size)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

/// Why the catalog's database cannot be used: each says what to fix in one line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    #[error("catalog.url is not a PostgreSQL URL ({0})")]
    Url(String),
    #[error("cannot connect to the catalog at {at}: {why}")]
    Connect { at: String, why: String },
    #[error("the catalog at {at} refused the login: {why}")]
    Login { at: String, why: String },
    #[error("the catalog's database does not allow what Darkroom needs: {0}")]
    Permission(String),
    #[error(
        "the catalog's schema is version {found}, written by a newer Darkroom (this one \
         knows {knows}): run the newer Darkroom"
    )]
    TooNew { found: i32, knows: i32 },
    #[error("the catalog did not answer within {0:?}")]
    Timeout(Duration),
    /// The database is there but cannot take this now (a deadlock, a statement past its
    /// deadline, a shutdown or failover in progress): worth a retry.
    #[error("the catalog cannot answer now: {0}")]
    Busy(String),
    #[error("catalog query failed: {0}")]
    Query(String),
    #[error("TLS setup for the catalog failed: {0}")]
    Tls(String),
}

/// A pool of connections to the catalog's database (checked: one connection opened).
pub struct Pg {
    pool: Pool,
    /// What a connection outside the pool is opened with (`listen`).
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: PgOptions,
    /// `user@host:port/database`, for messages (never the password).
    at: String,
}

impl Pg {
    /// Opens the pool and one connection through it: a wrong URL, an unreachable host,
    /// a refused login or a missing TLS root fails here, in one line.
    pub async fn connect(options: PgOptions) -> Result<Self, PgError> {
        let (mut config, mode) = tls::parse(&options.url)?;
        if config.get_password().is_none()
            && let Some(password) = &options.password
        {
            config.password(password.as_str());
        }
        // The server ends a query past the deadline; the kernel ends a connection whose
        // peer stopped answering (a dead node behind a load balancer) after as long.
        // A node that stops in the middle of a transaction (frozen, cut off) must not hold
        // its row locks for long: the server ends such a session after three deadlines.
        let timeout_ms = options.query_timeout.as_millis();
        // Generic plans: every statement is prepared once per connection, and planning a
        // 24-item page afresh each time cost more than running it (0.2 ms against 0.06 ms
        // at 1M items); the statements are written so that their generic plans use the
        // indexes (ranges, not `LIKE 'prefix%'`, for prefixes).
        let ours = format!(
            "-c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={} \
             -c plan_cache_mode=force_generic_plan",
            3 * timeout_ms
        );
        let server_options = match config.get_options() {
            Some(theirs) => format!("{theirs} {ours}"),
            None => ours,
        };
        config
            .connect_timeout(options.query_timeout)
            .tcp_user_timeout(options.query_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .options(server_options)
            .application_name("darkroom");
        if matches!(mode, tls::Mode::Encrypt { .. }) && !is_loopback(&config) {
            tracing::warn!(
                at = %describe(&config),
                "the catalog's TLS certificate is not checked (sslmode prefer/require): \
                 use sslmode=verify-full"
            );
        }
        let at = describe(&config);
        let tls = tls::connector(&mode)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .build()
            .map_err(|e| PgError::Url(e.to_string()))?;
        let pg = Self {
            pool,
            config,
            tls,
            options,
            at,
        };
        drop(pg.client().await?); // the first connection says whether any will work
        Ok(pg)
    }

    /// A connection from the pool, within the query deadline.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, PgError> {
        let deadline = self.options.query_timeout;
        match tokio::time::timeout(deadline, self.pool.get()).await {
            Err(_) => Err(PgError::Timeout(deadline)),
            Ok(Ok(client)) => Ok(client),
            // Opening a connection: anything but the server's own answer is a way there
            // that does not work (refused, unreachable, TLS).
            Ok(Err(deadpool_postgres::PoolError::Backend(e))) if e.as_db_error().is_none() => {
                Err(PgError::Connect {
                    at: self.at.clone(),
                    why: innermost(&e),
                })
            }
            Ok(Err(deadpool_postgres::PoolError::Backend(e))) => Err(self.error(&e)),
            Ok(Err(deadpool_postgres::PoolError::Timeout(_))) => Err(PgError::Timeout(deadline)),
            Ok(Err(e)) => Err(PgError::Connect {
                at: self.at.clone(),
                why: e.to_string(),
            }),
        }
    }

    /// Calls `heard` with the channel and payload of every notification on `channels`,
    /// on a connection of its own, until the returned task is aborted, and `up` with
    /// whether that connection is listening. A lost connection is opened again (after a
    /// second); notifications sent meanwhile are missed.
    pub fn listen(
        &self,
        channels: &'static [&'static str],
        heard: impl Fn(&str, &str) + Send + Sync + 'static,
        up: impl Fn(bool) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let (config, tls, at) = (self.config.clone(), self.tls.clone(), self.at.clone());
        tokio::spawn(async move {
            loop {
                let ended = listen_once(&config, tls.clone(), channels, &heard, &up).await;
                up(false);
                match ended {
                    Ok(()) => tracing::warn!(%at, "catalog notifications ended; listening again"),
                    Err(e) => tracing::warn!(
                        %at,
                        error = %classify(&at, &e),
                        "cannot listen for catalog notifications; retrying"
                    ),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }

    /// `user@host:port/database`, for messages.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The one line that says what went wrong with `e`.
    pub fn error(&self, e: &tokio_postgres::Error) -> PgError {
        classify(&self.at, e)
    }
}

/// One listening connection, until it is lost.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    channels: &[&str],
    heard: &(impl Fn(&str, &str) + Send + Sync),
    up: &(impl Fn(bool) + Send + Sync),
) -> Result<(), tokio_postgres::Error> {
    use futures_util::StreamExt;
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    let _ = tx.send(Ok((n.channel().to_owned(), n.payload().to_owned())));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
    });
    for channel in channels {
        client.batch_execute(&format!("LISTEN {channel}")).await?;
    }
    up(true);
    let ended = loop {
        match rx.recv().await {
            Some(Ok((channel, payload))) => heard(&channel, &payload),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    driver.abort();
    ended
}

/// Sorts a driver error into what the operator must fix.
fn classify(at: &str, e: &tokio_postgres::Error) -> PgError {
    use tokio_postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let why = db.message().to_owned();
        return if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
        {
            PgError::Login {
                at: at.to_owned(),
                why,
            }
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            PgError::Permission(why)
        } else if *code == SqlState::QUERY_CANCELED {
            PgError::Busy(format!("{why} (statement_timeout)"))
        } else if [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
        {
            PgError::Busy(why)
        } else {
            PgError::Query(why)
        };
    }
    let why = innermost(e);
    if e.is_closed() {
        PgError::Connect {
            at: at.to_owned(),
            why,
        }
    } else {
        PgError::Query(why)
    }
}

/// The error with its innermost cause (connection refused, a TLS failure), on one line.
fn innermost(e: &tokio_postgres::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let (outer, inner) = (e.to_string(), cause.to_string());
    let line = if outer.contains(&inner) {
        outer
    } else {
        format!("{outer}: {inner}")
    };
    line.replace('\n', " ")
}

fn is_loopback(config: &tokio_postgres::Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

/// `user@host:port/database` of a config (never its password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

#[cfg(test)]
pub(crate) mod tests;
