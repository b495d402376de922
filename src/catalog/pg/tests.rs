//! Against a real PostgreSQL (`scripts/pg-local.sh`, started by `make test`): each test
//! makes a database of its own and drops it after.

use std::time::Duration;

use super::*;

fn server_url() -> String {
    std::env::var("PG_TEST_URL").unwrap_or_else(|_| {
        panic!(
            "the PostgreSQL tests need a local server: run `make test`, or \
             `scripts/pg-local.sh start` and PG_TEST_URL=$(scripts/pg-local.sh url) cargo test"
        )
    })
}

pub(crate) fn options(url: String) -> PgOptions {
    PgOptions {
        url,
        password: None,
        pool_size: 4,
        query_timeout: Duration::from_secs(10),
    }
}

/// A database of its own on the test server: its URL, and the connection that made it.
pub(crate) struct Scratch {
    name: String,
    pub(crate) url: String,
    server: Pg,
}

impl Scratch {
    pub(crate) async fn new() -> Self {
        let server = Pg::connect(options(server_url()))
            .await
            .expect("test server");
        let name = format!(
            "darkroom_t_{}",
            crate::model::random_token(10).to_lowercase()
        );
        let client = server.client().await.expect("client");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let base = server_url();
        let (prefix, query) = base.split_once('?').unwrap_or((&base, ""));
        let prefix = prefix.rsplit_once('/').map_or(prefix, |(p, _)| p);
        let url = match query {
            "" => format!("{prefix}/{name}"),
            q => format!("{prefix}/{name}?{q}"),
        };
        Self { name, url, server }
    }

    pub(crate) async fn drop(self) {
        let client = self.server.client().await.expect("client");
        let _ = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

#[tokio::test]
async fn the_schema_is_made_once_even_when_two_nodes_start_at_once() {
    let db = Scratch::new().await;
    let (a, b) = tokio::join!(
        async { migrate(&Pg::connect(options(db.url.clone())).await?).await },
        async { migrate(&Pg::connect(options(db.url.clone())).await?).await },
    );
    let mut found = [a.expect("node a"), b.expect("node b")];
    found.sort();
    assert_eq!(found, [0, SCHEMA], "one made it, the other found it made");
    let pg = Pg::connect(options(db.url.clone())).await.expect("connect");
    assert_eq!(migrate(&pg).await.expect("again"), SCHEMA);
    let client = pg.client().await.expect("client");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
             AND table_name IN ('media', 'counts', 'folders', 'files', 'pending_deletes', \
             'api_keys', 'jobs', 'presigns', 'crop_cache', 'darkroom_schema')",
            &[],
        )
        .await
        .expect("tables")
        .get(0);
    assert_eq!(tables, 10);
    let trgm: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'",
            &[],
        )
        .await
        .expect("extension")
        .get(0);
    assert_eq!(trgm, 1);
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_before_anything_is_written() {
    let db = Scratch::new().await;
    let pg = Pg::connect(options(db.url.clone())).await.expect("connect");
    migrate(&pg).await.expect("migrate");
    let client = pg.client().await.expect("client");
    client
        .batch_execute("UPDATE darkroom_schema SET version = 99")
        .await
        .expect("newer");
    let refused = migrate(&pg).await;
    assert!(
        matches!(
            refused,
            Err(PgError::TooNew {
                found: 99,
                knows: SCHEMA
            })
        ),
        "{refused:?}"
    );
    let message = refused.expect_err("refused").to_string();
    assert!(message.contains("newer Darkroom"), "{message}");
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn a_password_may_come_from_outside_the_url() {
    let url = server_url();
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (credentials, host) = rest.split_once('@').expect("credentials");
    let (user, password) = credentials
        .split_once(':')
        .expect("a password in the test URL");
    let mut outside = options(format!("{scheme}://{user}@{host}"));
    outside.password = Some(password.to_owned());
    let pg = Pg::connect(outside).await.expect("connects");
    assert!(!pg.at().contains(&format!(":{password}@")), "{}", pg.at());
    assert!(pg.at().starts_with(&format!("{user}@")), "{}", pg.at());
}

#[tokio::test]
async fn wrong_urls_logins_and_hosts_fail_in_one_clear_line() {
    let url = server_url();
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (credentials, host) = rest.split_once('@').expect("credentials");
    let user = credentials.split(':').next().expect("user");

    let wrong = format!("{scheme}://{user}:not-the-password@{host}");
    let err = Pg::connect(options(wrong)).await.err().expect("refused");
    assert!(matches!(err, PgError::Login { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.contains("password authentication failed"), "{line}");
    assert!(
        !line.contains("not-the-password") && !line.contains('\n'),
        "{line}"
    );

    let (hostport, _db) = host.split_once('/').expect("database");
    let unknown = format!("{scheme}://{credentials}@{hostport}/no_such_database");
    let err = Pg::connect(options(unknown)).await.err().expect("refused");
    assert!(matches!(err, PgError::Login { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let closed = format!("{scheme}://{credentials}@127.0.0.1:{port}/x?sslmode=disable");
    let err = Pg::connect(options(closed)).await.err().expect("refused");
    assert!(matches!(err, PgError::Connect { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.to_lowercase().contains("refused"), "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");

    // A host that takes the connection and never answers: the deadline, not a hang.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut quiet = options(format!(
        "{scheme}://{credentials}@127.0.0.1:{port}/x?sslmode=disable"
    ));
    quiet.query_timeout = Duration::from_millis(500);
    let err = Pg::connect(quiet).await.err().expect("gave up");
    assert!(
        matches!(err, PgError::Timeout(_) | PgError::Connect { .. }),
        "{err:?}"
    );
    held.abort();

    // TLS required of a server without it: said so, not retried in plain text.
    let sep = if url.contains('?') { '&' } else { '?' };
    let err = Pg::connect(options(format!("{url}{sep}sslmode=require")))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, PgError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");

    let err = Pg::connect(options("mysql://u@h/db".into()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, PgError::Url(_)), "{err:?}");
}

/// Two nodes' catalogs on one database, with job leases of `lease`.
async fn two_nodes(db: &Scratch, lease: Duration) -> (PgCatalog, PgCatalog) {
    let a = PgCatalog::open(options(db.url.clone()), lease)
        .await
        .expect("node a");
    let b = PgCatalog::open(options(db.url.clone()), lease)
        .await
        .expect("node b");
    (a, b)
}

async fn one(catalog: &PgCatalog, write: crate::catalog::Write) -> crate::catalog::Outcome {
    catalog
        .apply(vec![write])
        .await
        .expect("batch")
        .pop()
        .expect("answer")
        .expect("write")
}

fn waiting_image(n: usize) -> crate::model::MediaRecord {
    let token = format!("{n:0>16}");
    crate::model::MediaRecord {
        id: format!("media_{token}"),
        storage_key: format!("2026/01/{token}.png"),
        processing: crate::model::Processing::initial(crate::model::MediaType::Png),
        ..crate::model::MediaRecord::sample('x', "a.png", 1, 10)
    }
}

#[tokio::test]
async fn a_job_is_claimed_by_one_node_and_taken_over_once_its_lease_runs_out() {
    use crate::catalog::{JobOutcome, Outcome, Write};
    let db = Scratch::new().await;
    let (a, b) = two_nodes(&db, Duration::from_secs(1)).await;
    let r = waiting_image(1);
    one(&a, Write::InsertMedia(vec![r.clone()])).await;
    let start = |id: &str| Write::StartJob {
        id: id.to_owned(),
        max_attempts: 5,
    };
    assert_eq!(one(&a, start(&r.id)).await, Outcome::JobStarted);
    assert_eq!(
        one(&b, start(&r.id)).await,
        Outcome::JobElsewhere,
        "a holds it"
    );
    assert!(
        b.unfinished_jobs().await.expect("jobs").is_empty(),
        "nothing for b to run"
    );
    // A stops renewing (it died): once the lease runs out, b takes the job over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        b.unfinished_jobs().await.expect("jobs"),
        std::slice::from_ref(&r.id)
    );
    assert_eq!(one(&b, start(&r.id)).await, Outcome::JobStarted);
    // A node that lost its lease cannot record over the new holder's run.
    let failed = crate::model::JobResult::Failed {
        reason: "late".into(),
        crop_version: 0,
    };
    let late = Write::FinishJob {
        id: r.id.clone(),
        result: failed.clone(),
        source: r.storage_key.clone(),
    };
    assert_eq!(one(&a, late).await, Outcome::Job(JobOutcome::AlreadyDone));
    b.count_jobs().await.expect("count");
    assert_eq!(b.job_count(), 1, "the job stays with b");
    let own = Write::FinishJob {
        id: r.id.clone(),
        result: failed,
        source: r.storage_key.clone(),
    };
    assert_eq!(
        one(&b, own).await,
        Outcome::Job(JobOutcome::Recorded { queued: vec![] })
    );
    db.drop().await;
}

#[tokio::test]
async fn every_node_hears_a_job_end_and_a_job_announced() {
    use crate::catalog::{JobEvent, Write};
    let db = Scratch::new().await;
    let (a, b) = two_nodes(&db, Duration::from_secs(60)).await;
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let listening = b.on_jobs(move |event| {
        let _ = tx.send(event);
    });
    let r = waiting_image(2);
    one(&a, Write::InsertMedia(vec![r.clone()])).await;
    // The listener connects in the background: announce until it hears (bounded).
    let mut announced = false;
    for _ in 0..50 {
        a.announce(std::slice::from_ref(&r.id))
            .await
            .expect("announce");
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
        {
            assert_eq!(event, JobEvent::Queued(r.id.clone()));
            announced = true;
            break;
        }
    }
    assert!(announced, "b never heard the announcement");
    while heard.try_recv().is_ok() {} // repeats of the announcement
    one(
        &a,
        Write::StartJob {
            id: r.id.clone(),
            max_attempts: 5,
        },
    )
    .await;
    let done = Write::FinishJob {
        id: r.id.clone(),
        result: crate::model::JobResult::Failed {
            reason: "test".into(),
            crop_version: 0,
        },
        source: r.storage_key.clone(),
    };
    one(&a, done).await;
    let event = tokio::time::timeout(Duration::from_secs(10), heard.recv())
        .await
        .expect("b heard the job end")
        .expect("event");
    assert_eq!(event, JobEvent::Done(r.id.clone()));
    listening.abort();
    db.drop().await;
}

#[tokio::test]
async fn a_cluster_task_runs_on_one_node_at_a_time() {
    let db = Scratch::new().await;
    let (a, b) = two_nodes(&db, Duration::from_secs(60)).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let hold = Duration::from_secs(1);
    assert!(a.take_turn("drain", hold).await.expect("a"));
    assert!(!b.take_turn("drain", hold).await.expect("b"), "a holds it");
    assert!(a.take_turn("drain", hold).await.expect("a renews"));
    assert!(b.take_turn("sweep", hold).await.expect("another task"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        b.take_turn("drain", hold).await.expect("b"),
        "a stopped renewing"
    );
    assert!(
        !a.take_turn("drain", hold).await.expect("a"),
        "b holds it now"
    );
    // A node that lets go gives its turns back at once and takes none after.
    let long = Duration::from_secs(600);
    assert!(b.take_turn("sweep", long).await.expect("b"));
    b.let_go().await.expect("let go");
    assert!(
        a.take_turn("sweep", long).await.expect("a"),
        "b gave it back"
    );
    assert!(
        !b.take_turn("other", long).await.expect("b"),
        "b took one after"
    );
    db.drop().await;
}

#[tokio::test]
async fn a_job_given_back_after_an_outage_waits_before_other_nodes_rescan_it() {
    use crate::catalog::{Outcome, Write};
    let db = Scratch::new().await;
    let (a, b) = two_nodes(&db, Duration::from_secs(60)).await;
    let r = waiting_image(3);
    one(&a, Write::InsertMedia(vec![r.clone()])).await;
    assert_eq!(
        b.unfinished_jobs().await.expect("jobs"),
        std::slice::from_ref(&r.id)
    );
    let start = Write::StartJob {
        id: r.id.clone(),
        max_attempts: 5,
    };
    assert_eq!(one(&a, start).await, Outcome::JobStarted);
    one(&a, Write::ReleaseJob { id: r.id.clone() }).await;
    assert!(
        b.unfinished_jobs().await.expect("jobs").is_empty(),
        "the storage outage a met is likely b's too: not at once"
    );
    db.drop().await;
}

/// Polls `check` (every 50 ms) until it holds, for at most `limit`; whether it held.
async fn within<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// What b kept goes when a commits a change, well before it would age out (the folder
/// list after 10 s, a key after 2 s): the notification, not the age, ends it.
#[tokio::test]
async fn a_node_keeps_the_folders_and_keys_only_until_another_node_changes_them() {
    use crate::catalog::{Write, keys};
    use crate::model::{FolderPath, Scope};
    let db = Scratch::new().await;
    let (a, b) = two_nodes(&db, Duration::from_secs(60)).await;
    let (admin, admin_record) = keys::generate(Scope::Admin, "admin");
    let (plaintext, record) = keys::generate(Scope::Read, "kept");
    one(&a, Write::PutKey(admin_record)).await;
    one(&a, Write::PutKey(record.clone())).await;
    // Once b listens, it keeps what it read.
    let listening = within(Duration::from_secs(10), || async {
        b.folders().await.is_ok() && b.kept.folders().is_some()
    });
    assert!(listening.await, "b never kept its folder list");
    let b_lists = |want: &'static [&'static str]| {
        let b = &b;
        within(Duration::from_secs(3), move || async move {
            b.folders().await.expect("folders") == want
        })
    };
    assert!(b_lists(&["/"]).await);

    // A folder made on a, an item in a new folder, the item moved, the folder deleted:
    // b's list follows each.
    let made = FolderPath::parse("/made").expect("path");
    one(&a, Write::CreateFolder(made.clone())).await;
    assert!(b_lists(&["/", "/made"]).await, "a created folder");
    let mut item = waiting_image(1);
    item.folder = "/in/new".into();
    one(&a, Write::InsertMedia(vec![item.clone()])).await;
    assert!(
        b_lists(&["/", "/in", "/in/new", "/made"]).await,
        "a new item's folder"
    );
    assert_eq!(
        a.folders().await.expect("folders"),
        ["/", "/in", "/in/new", "/made"],
        "on the node that wrote, at once"
    );
    let moved = crate::model::MediaPatch {
        folder: Some(made.clone()),
        ..Default::default()
    };
    let patch = Write::UpdateMedia {
        id: item.id.clone(),
        patch: moved,
        recrop: false,
    };
    one(&a, patch).await;
    assert!(b_lists(&["/", "/made"]).await, "the folder the item left");
    one(&a, Write::DeleteMedia { id: item.id }).await;
    one(&a, Write::DeleteFolder(made)).await;
    assert!(b_lists(&["/"]).await, "a deleted folder");

    // A key revoked on a stops working on b at once.
    assert!(b.authenticate(&plaintext).await.expect("auth").is_some());
    assert!(b.kept.key(&record.id).is_some(), "b keeps the key it read");
    let revoke = Write::RevokeKey {
        id: record.id.clone(),
    };
    one(&a, revoke).await;
    let gone = within(Duration::from_secs(1), || async {
        b.kept.key(&record.id).is_none()
    });
    assert!(gone.await, "b heard the revocation");
    assert!(b.authenticate(&plaintext).await.expect("auth").is_none());
    assert!(a.authenticate(&plaintext).await.expect("auth").is_none());
    assert!(b.authenticate(&admin).await.expect("auth").is_some());
    db.drop().await;
}
