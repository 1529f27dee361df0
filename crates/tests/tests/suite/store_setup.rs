//! Opening the databases: URL forms, SQLite's connection settings, pool options, and errors
//! that never reveal passwords or bound values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::{Store, StoreError, Timestamp};
use switchboard_store_postgres::PgOptions;
use switchboard_store_sqlite::SqliteOptions;
use switchboard_tests::db::{
    Backend, DEFAULT_POSTGRES_URL, POSTGRES_URL_VAR, TestDb, ci_is_set, each_backend,
    fresh_postgres, fresh_sqlite,
};

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    let (_dir, store) = fresh_sqlite().await;
    let mut conn = store.pool().acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(synchronous, 1, "synchronous=NORMAL");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(busy_timeout, 5_000);
}

#[tokio::test]
async fn sqlite_creates_the_file_and_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/nested/switchboard.db");
    let url = format!("sqlite://{}", file.display());
    assert!(url.starts_with("sqlite:///"));
    let store = switchboard_store_sqlite::connect(&url, &SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    assert!(file.is_file());
}

#[tokio::test]
async fn sqlite_accepts_a_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let relative = relative_to_cwd(&dir.path().join("relative.db"));
    assert!(relative.is_relative());
    let url = format!("sqlite://{}", relative.display());
    let store = switchboard_store_sqlite::connect(&url, &SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ws = store.create_workspace("Acme", Timestamp(1)).await.unwrap();
    assert_eq!(store.get_workspace(ws.id).await.unwrap(), ws);
    assert!(dir.path().join("relative.db").is_file());
}

#[tokio::test]
async fn sqlite_rejects_other_urls() {
    let err =
        switchboard_store_sqlite::connect("postgres://x@127.0.0.1/db", &SqliteOptions::default())
            .await
            .unwrap_err();
    assert!(
        matches!(err, switchboard_store_sqlite::Error::NotSqliteUrl),
        "{err:?}"
    );
}

#[tokio::test]
async fn sqlite_reports_a_closed_pool_as_a_backend_error() {
    let (_dir, store) = fresh_sqlite().await;
    store.close().await;
    match store
        .get_workspace(switchboard_domain::WorkspaceId(1))
        .await
    {
        Err(StoreError::Backend(message)) => {
            assert!(message.starts_with("get_workspace: "), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn postgres_rejects_other_urls() {
    let err = switchboard_store_postgres::connect("sqlite://x.db", &PgOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, switchboard_store_postgres::Error::NotPostgresUrl),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_connection_errors_do_not_show_the_password() {
    let opts = PgOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(1),
    };
    // Port 1 on the loopback interface: nothing listens there.
    let err = switchboard_store_postgres::connect("postgres://sb:hunter2@127.0.0.1:1/sb", &opts)
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(text.contains("127.0.0.1:1/sb"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn postgres_pool_size_is_configurable() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    let opts = PgOptions {
        max_connections: 3,
        ..PgOptions::default()
    };
    let store = switchboard_store_postgres::connect(db.url(), &opts)
        .await
        .unwrap();
    assert_eq!(store.pool().options().get_max_connections(), 3);
    store.ping().await.unwrap();
    store.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn postgres_backend_errors_do_not_show_bound_values() {
    let Some(db) = fresh_postgres().await else {
        return;
    };
    // PostgreSQL refuses NUL in text; its message would quote the input.
    match db
        .store()
        .create_workspace("secret\u{0}value", Timestamp(1))
        .await
    {
        Err(StoreError::Backend(message)) => {
            assert!(message.starts_with("create_workspace: "), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    db.store().close().await;
    match db.store().ping().await {
        Err(StoreError::Backend(message)) => assert!(message.starts_with("ping: "), "{message}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    db.drop_db().await;
}

#[tokio::test]
async fn each_backend_runs_the_body_on_every_available_backend() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    each_backend(|store| {
        let seen = Arc::clone(&seen);
        async move {
            store.ping().await.unwrap();
            seen.lock().unwrap().push(store.backend());
        }
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&"sqlite"));
    if ci_is_set() {
        assert_eq!(seen, ["sqlite", "postgres"]);
    } else {
        assert!(
            seen == ["sqlite"] || seen == ["sqlite", "postgres"],
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn test_databases_are_dropped_even_without_drop_db() {
    let Some(db) = TestDb::fresh(Backend::Postgres).await else {
        return;
    };
    assert_eq!(db.backend(), Backend::Postgres);
    assert!(db.url().contains("/sb_test_"));
    let TestDb::Postgres(pg) = &db else {
        panic!("expected a PostgreSQL database, got {db:?}");
    };
    let name = pg.name().to_string();
    db.store()
        .create_workspace("Acme", Timestamp(1))
        .await
        .unwrap();
    assert!(database_exists(&name).await);
    // What a panicking test does: `Drop` runs inside the async context.
    drop(db);
    assert!(!database_exists(&name).await);

    let sqlite = TestDb::fresh(Backend::Sqlite).await.unwrap();
    let path = sqlite.url().trim_start_matches("sqlite://").to_string();
    assert!(Path::new(&path).is_file());
    sqlite.drop_db().await;
    assert!(!Path::new(&path).exists());
}

async fn database_exists(name: &str) -> bool {
    use sqlx::Connection as _;
    let url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    found.is_some()
}

/// `path` (absolute) relative to the current directory, through `..` steps.
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let mut relative = PathBuf::new();
    for component in cwd.components() {
        if matches!(component, Component::Normal(_)) {
            relative.push("..");
        }
    }
    relative.join(path.strip_prefix("/").unwrap())
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
