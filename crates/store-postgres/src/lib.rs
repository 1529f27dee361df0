//! Switchboard's storage on PostgreSQL: the connection pool, the embedded migrations, and the
//! [`Store`](switchboard_domain::Store), [`AccountStore`](switchboard_domain::AccountStore) and
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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

pub use copy::PgCopy;
pub use error::Error;

/// The migrations of this backend, embedded at build time; forward-only.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a free connection (and for the first one at start) before failing.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL backend of [`Store`](switchboard_domain::Store). Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

/// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
/// checks that it answers. Does not migrate; call [`PgStore::migrate`].
pub async fn connect(url: &str, opts: &PgOptions) -> Result<PgStore, Error> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::NotPostgresUrl);
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(Error::InvalidUrl)?
        .application_name("switchboard");
    let server = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|source| Error::Connect { server, source })?;
    Ok(PgStore { pool })
}

impl PgStore {
    /// Applies the migrations not yet applied; a no-op when the schema is current. Concurrent
    /// instances are serialised by sqlx's advisory lock. A database that records a migration
    /// this binary does not know (a newer Switchboard migrated it) is refused with
    /// [`Error::NewerSchema`], and nothing is changed.
    pub async fn migrate(&self) -> Result<(), Error> {
        switchboard_domain::schema::check_applied(
            &self.applied_migrations().await?,
            &Self::migrations(),
            env!("CARGO_PKG_VERSION"),
        )?;
        MIGRATOR.run(&self.pool).await.map_err(Error::Migrate)
    }

    /// The migrations the database records as applied (none on a new database).
    pub async fn applied_migrations(&self) -> Result<Vec<(i64, String)>, Error> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
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

    /// How many tables the database's current schema holds (0: a new, empty database).
    pub async fn table_count(&self) -> Result<i64, Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(Error::ReadSchema)
    }

    /// The connection pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
