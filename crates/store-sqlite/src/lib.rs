//! Switchboard's storage on an embedded SQLite database: opening the file (WAL), the embedded
//! migrations, and the [`Store`](switchboard_domain::Store),
//! [`AccountStore`](switchboard_domain::AccountStore) and
//! [`InboxStore`](switchboard_domain::InboxStore) implementations in [`store`], [`accounts`]
//! (with [`session_data`] and [`ingest`]) and [`inbox`]; [`rows`] maps chats and messages to
//! rows and back, [`sql`] holds the SQL building blocks they share.

mod accounts;
mod copy;
mod error;
mod inbox;
mod ingest;
mod leads;
mod rows;
mod schedule;
mod session_data;
mod signin;
mod sql;
mod store;
mod user_admin;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use error::Error;

/// The migrations of this backend, embedded at build time; forward-only.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How to open the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Connections in the pool (SQLite in WAL mode allows many readers and one writer).
    pub max_connections: u32,
    /// How long a connection waits for another's write lock before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite backend of [`Store`](switchboard_domain::Store). Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Reads (WAL readers never wait for the writer).
    pool: SqlitePool,
    /// Every write, through one connection: writers queue here in order and each starts the
    /// moment the previous one committed. Competing for SQLite's lock instead would leave
    /// them in its busy handler, which sleeps 1–100 ms between tries.
    writer: SqlitePool,
}

/// Opens (creating if missing, with its directory) the database at `url` — `sqlite:///abs/path.db`
/// or `sqlite://relative.db` — in WAL mode with `synchronous=NORMAL`, foreign keys on and a
/// busy timeout. Does not migrate; call [`SqliteStore::migrate`].
pub async fn connect(url: &str, opts: &SqliteOptions) -> Result<SqliteStore, Error> {
    if !url.starts_with("sqlite:") {
        return Err(Error::NotSqliteUrl);
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(Error::InvalidUrl)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(opts.busy_timeout);
    let path = options.get_filename().to_path_buf();
    if !is_in_memory(url) {
        create_parent_dir(&path)?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .connect_with(options.clone())
        .await
        .map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
    // An in-memory database exists once per connection: it must share the pool.
    let writer = if is_in_memory(url) {
        pool.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open { path, source })?
    };
    Ok(SqliteStore { pool, writer })
}

impl SqliteStore {
    /// Applies the migrations not yet applied; a no-op when the schema is current. A database
    /// that records a migration this binary does not know (a newer Switchboard migrated it) is
    /// refused with [`Error::NewerSchema`], and nothing is changed.
    pub async fn migrate(&self) -> Result<(), Error> {
        switchboard_domain::schema::check_applied(
            &self.applied_migrations().await?,
            &Self::migrations(),
            env!("CARGO_PKG_VERSION"),
        )?;
        MIGRATOR.run(&self.writer).await.map_err(Error::Migrate)
    }

    /// The migrations the database records as applied (none on a new database).
    pub async fn applied_migrations(&self) -> Result<Vec<(i64, String)>, Error> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(Error::ReadSchema)?;
        if !exists {
            return Ok(Vec::new());
        }
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(Error::ReadSchema)
    }

    /// The `(version, description)` of every embedded migration, in order.
    pub fn migrations() -> Vec<(i64, String)> {
        MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    /// Writes a consistent copy of the whole database to a new file at `path` (`VACUUM INTO`):
    /// one read transaction, so writers go on meanwhile and the copy is the database as of its
    /// start. Fails if `path` exists.
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<(), Error> {
        let target = path.to_str().ok_or_else(|| Error::Backup {
            path: path.to_path_buf(),
            source: sqlx::Error::Protocol("the path is not UTF-8".into()),
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|source| Error::Backup {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The connection pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn create_parent_dir(path: &std::path::Path) -> Result<(), Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: PathBuf::from(dir),
                source,
            })
        }
        _ => Ok(()),
    }
}
