//! Fresh databases for tests, one per test, on both backends: a SQLite file in a temporary
//! directory, or a new PostgreSQL database created on the server at
//! `SWITCHBOARD_TEST_POSTGRES_URL` and dropped afterwards. Also [`run_on`], [`each_backend`] and
//! the [`backend_tests!`](crate::backend_tests) macro, which run one test body on each backend.
//!
//! PostgreSQL tests are mandatory when `CI` is set: an unreachable server then fails the test.
//! Otherwise they are skipped with a notice on stderr.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Connection as _, Executor as _, PgConnection};
use switchboard_domain::{
    AccountStore, InboxStore, LeadStore, ScheduleStore, SealedColumn, SigninStore, Store,
    UserAdminStore,
};
use switchboard_store_postgres::{PgOptions, PgStore};
use switchboard_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// The environment variable naming the PostgreSQL server (a maintenance database URL) that test
/// databases are created on.
pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// The server used when [`POSTGRES_URL_VAR`] is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The file name of the database inside a test's temporary directory.
pub const SQLITE_FILE: &str = "switchboard.db";

/// How long to wait for the PostgreSQL server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Set once the server was found unreachable, so later tests skip without waiting again.
static POSTGRES_UNREACHABLE: AtomicBool = AtomicBool::new(false);

/// A database backend under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The embedded SQLite database.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Every backend, in the order tests run them.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// The name [`Store::backend`] reports for it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The URL of the SQLite database [`fresh_sqlite`] creates in `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join(SQLITE_FILE).display())
}

/// A migrated SQLite database in a new temporary directory, deleted when the `TempDir` drops.
/// Panics if it cannot be created.
pub async fn fresh_sqlite() -> (TempDir, SqliteStore) {
    let dir = tempfile::Builder::new()
        .prefix("sb_test_")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let url = sqlite_url(dir.path());
    let store = switchboard_store_sqlite::connect(&url, &SqliteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {}", chain(&e)));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("cannot migrate {url}: {}", chain(&e)));
    (dir, store)
}

/// A new, migrated PostgreSQL database, or `None` (after a notice on stderr) when the server is
/// unreachable and `CI` is not set. Panics when the server is unreachable and `CI` is set, or
/// when the database cannot be created.
pub async fn fresh_postgres() -> Option<PgTestDb> {
    let db = empty_postgres().await?;
    if let Err(e) = db.store.migrate().await {
        panic!("cannot migrate {}: {}", db.name, chain(&e));
    }
    Some(db)
}

/// Like [`fresh_postgres`], but not migrated: for tests of what runs the migrations.
pub async fn empty_postgres() -> Option<PgTestDb> {
    let admin_url = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string());
    if POSTGRES_UNREACHABLE.load(Ordering::Relaxed) && !ci_is_set() {
        return None;
    }
    let mut admin = match admin_connection(&admin_url).await {
        Ok(conn) => conn,
        Err(why) => {
            postgres_unreachable(&admin_url, &why);
            return None;
        }
    };
    let name = format!("sb_test_{:016x}", fastrand::u64(..));
    if let Err(e) = admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
    {
        panic!("cannot create the test database {name}: {e}");
    }
    // Closing is best-effort: the database exists either way.
    let _ = admin.close().await;
    let url = database_url(&admin_url, &name);
    let opts = PgOptions {
        max_connections: 5,
        ..PgOptions::default()
    };
    let store = match switchboard_store_postgres::connect(&url, &opts).await {
        Ok(store) => store,
        Err(e) => {
            let message = format!("cannot connect to the test database {name}: {}", chain(&e));
            drop_database_blocking(&admin_url, &name);
            panic!("{message}");
        }
    };
    Some(PgTestDb {
        name,
        url,
        admin_url,
        store,
        dropped: false,
    })
}

/// A PostgreSQL database that exists for one test. [`PgTestDb::drop_db`] drops it; if the test
/// panics first, `Drop` drops it from a separate thread (best effort).
#[derive(Debug)]
pub struct PgTestDb {
    name: String,
    url: String,
    admin_url: String,
    store: PgStore,
    dropped: bool,
}

impl PgTestDb {
    /// The database's URL, for code that connects by itself (e.g. the server under test).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name, `sb_test_<random hex>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A store connected to the database.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    /// Closes the store and drops the database, disconnecting any other client.
    pub async fn drop_db(mut self) {
        self.store.close().await;
        match drop_database(&self.admin_url, &self.name).await {
            Ok(()) => self.dropped = true,
            Err(e) => note(&format!("cannot drop the test database {}: {e}", self.name)),
        }
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if !self.dropped {
            drop_database_blocking(&self.admin_url, &self.name);
        }
    }
}

/// The runtime benchmarks run on: two worker threads, like the 2-core machine of the targets.
pub fn bench_runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

/// A fresh, migrated database of either backend, with the URL a server would be given.
#[derive(Debug)]
pub enum TestDb {
    /// A SQLite file in a temporary directory.
    Sqlite {
        /// The directory; deleted when dropped.
        dir: TempDir,
        /// `sqlite:///…/switchboard.db`.
        url: String,
        /// A store on it.
        store: SqliteStore,
    },
    /// A PostgreSQL database of its own.
    Postgres(PgTestDb),
}

impl TestDb {
    /// A fresh database of `backend`; `None` only when PostgreSQL is skipped (see
    /// [`fresh_postgres`]).
    pub async fn fresh(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let (dir, store) = fresh_sqlite().await;
                let url = sqlite_url(dir.path());
                Some(TestDb::Sqlite { dir, url, store })
            }
            Backend::Postgres => fresh_postgres().await.map(TestDb::Postgres),
        }
    }

    /// Which backend it is.
    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite { .. } => Backend::Sqlite,
            TestDb::Postgres(_) => Backend::Postgres,
        }
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } => url,
            TestDb::Postgres(db) => db.url(),
        }
    }

    /// A store on the database, behind the port.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            TestDb::Sqlite { store, .. } => Arc::new(store.clone()),
            TestDb::Postgres(db) => Arc::new(db.store().clone()),
        }
    }

    /// The database behind every port, with raw SQL.
    pub fn stores(&self) -> Stores {
        match self {
            TestDb::Sqlite { store, .. } => Stores {
                store: Arc::new(store.clone()),
                accounts: Arc::new(store.clone()),
                inbox: Arc::new(store.clone()),
                leads: Arc::new(store.clone()),
                signin: Arc::new(store.clone()),
                schedule: Arc::new(store.clone()),
                users: Arc::new(store.clone()),
                raw: RawPool::Sqlite(store.pool().clone()),
            },
            TestDb::Postgres(db) => Stores {
                store: Arc::new(db.store().clone()),
                accounts: Arc::new(db.store().clone()),
                inbox: Arc::new(db.store().clone()),
                leads: Arc::new(db.store().clone()),
                signin: Arc::new(db.store().clone()),
                schedule: Arc::new(db.store().clone()),
                users: Arc::new(db.store().clone()),
                raw: RawPool::Postgres(db.store().pool().clone()),
            },
        }
    }

    /// A store on the database, behind the account port.
    pub fn accounts(&self) -> Arc<dyn AccountStore> {
        self.stores().accounts
    }

    /// A store on the database, behind the inbox port.
    pub fn inbox(&self) -> Arc<dyn InboxStore> {
        self.stores().inbox
    }

    /// Closes the store and deletes the database.
    pub async fn drop_db(self) {
        match self {
            TestDb::Sqlite { dir, store, .. } => {
                store.close().await;
                drop(dir);
            }
            TestDb::Postgres(db) => db.drop_db().await,
        }
    }
}

/// Runs `test` on a fresh database of `backend`, then deletes it (also when `test` panics).
/// Returns without running it when PostgreSQL is skipped.
pub async fn run_on<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    test(db.store()).await;
    db.drop_db().await;
}

/// What a test of the account or inbox port gets: one database behind every port, and raw SQL
/// for the states no port method reaches (e.g. a disabled user) and for counting rows.
#[derive(Clone)]
pub struct Stores {
    /// The database behind the [`Store`] port.
    pub store: Arc<dyn Store>,
    /// The same database behind the [`AccountStore`] port.
    pub accounts: Arc<dyn AccountStore>,
    /// The same database behind the [`InboxStore`] port.
    pub inbox: Arc<dyn InboxStore>,
    /// The same database behind the [`LeadStore`] port.
    pub leads: Arc<dyn LeadStore>,
    /// The same database behind the [`SigninStore`] port.
    pub signin: Arc<dyn SigninStore>,
    /// The same database behind the [`ScheduleStore`] port.
    pub schedule: Arc<dyn ScheduleStore>,
    /// The same database behind the [`UserAdminStore`] port.
    pub users: Arc<dyn UserAdminStore>,
    raw: RawPool,
}

#[derive(Clone)]
enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Stores {
    /// Runs one SQL statement (written to work on both backends); returns the rows changed.
    /// Panics on failure.
    pub async fn execute(&self, sql: &str) -> u64 {
        let done = match &self.raw {
            RawPool::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|d| d.rows_affected()),
            RawPool::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|d| d.rows_affected()),
        };
        done.unwrap_or_else(|e| panic!("cannot run {sql}: {e}"))
    }

    /// Every binary column of the application schema (`BLOB` on SQLite, `bytea` on
    /// PostgreSQL; not sqlx's migration table) as `(table, column)`, sorted: where secrets
    /// sealed by the vault are kept.
    pub async fn binary_columns(&self) -> Vec<(String, String)> {
        let found =
            match &self.raw {
                RawPool::Sqlite(pool) => {
                    sqlx::query_as::<_, (String, String)>(
                        "SELECT m.name, p.name FROM pragma_table_list AS m \
                     JOIN pragma_table_info(m.name) AS p \
                     WHERE m.schema = 'main' AND m.type = 'table' \
                       AND upper(p.type) = 'BLOB' \
                       AND m.name <> '_sqlx_migrations'",
                    )
                    .fetch_all(pool)
                    .await
                }
                RawPool::Postgres(pool) => sqlx::query_as::<_, (String, String)>(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND data_type = 'bytea' \
                       AND table_name <> '_sqlx_migrations'",
                )
                .fetch_all(pool)
                .await,
            };
        let mut columns = found.unwrap_or_else(|e| panic!("cannot list binary columns: {e}"));
        columns.sort();
        columns
    }

    /// Every non-NULL value of every binary column: `(table, column, bytes)`.
    pub async fn binary_values(&self) -> Vec<(String, String, Vec<u8>)> {
        let mut out = Vec::new();
        for (table, column) in self.binary_columns().await {
            let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
            let values = match &self.raw {
                RawPool::Sqlite(pool) => {
                    sqlx::query_scalar::<_, Vec<u8>>(&sql).fetch_all(pool).await
                }
                RawPool::Postgres(pool) => {
                    sqlx::query_scalar::<_, Vec<u8>>(&sql).fetch_all(pool).await
                }
            };
            for bytes in values.unwrap_or_else(|e| panic!("cannot run {sql}: {e}")) {
                out.push((table.clone(), column.clone(), bytes));
            }
        }
        out
    }

    /// The single `BIGINT` a query returns, e.g. `SELECT count(*) FROM …`. Panics on failure.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let value = match &self.raw {
            RawPool::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
            RawPool::Postgres(pool) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await,
        };
        value.unwrap_or_else(|e| panic!("cannot run {sql}: {e}"))
    }
}

/// The listed sealed column `table.column` (see [`switchboard_domain::SEALED_COLUMNS`]).
pub fn sealed_column(table: &str, column: &str) -> &'static SealedColumn {
    switchboard_domain::SEALED_COLUMNS
        .iter()
        .find(|c| c.table == table && c.column == column)
        .unwrap_or_else(|| panic!("{table}.{column} is not a listed sealed column"))
}

/// Like [`run_on`], for tests of the account and inbox ports: `test` gets the database behind
/// every port.
pub async fn run_accounts_on<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Stores) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::fresh(backend).await else {
        return;
    };
    test(db.stores()).await;
    db.drop_db().await;
}

/// Runs `test` on a fresh database of each backend in turn.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in Backend::ALL {
        run_on(backend, &test).await;
    }
}

/// Asserts that a store result is the given error (a pattern of `StoreError`).
#[macro_export]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

/// Turns each named `async fn(Arc<dyn Store>)` into two tests, `<name>::sqlite` and
/// `<name>::postgres`, each on a fresh database. A function left out of the list is dead code,
/// which clippy rejects.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    $crate::db::run_on($crate::db::Backend::Sqlite, super::$name).await;
                }

                #[tokio::test]
                async fn postgres() {
                    $crate::db::run_on($crate::db::Backend::Postgres, super::$name).await;
                }
            }
        )+
    };
}

/// Like [`backend_tests!`](crate::backend_tests) for `async fn(Stores)` (the account and inbox
/// suites): two tests per function, `<name>::sqlite` and `<name>::postgres`, each on a fresh
/// database.
#[macro_export]
macro_rules! account_backend_tests {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    $crate::db::run_accounts_on($crate::db::Backend::Sqlite, super::$name).await;
                }

                #[tokio::test]
                async fn postgres() {
                    $crate::db::run_accounts_on($crate::db::Backend::Postgres, super::$name)
                        .await;
                }
            }
        )+
    };
}

/// Whether PostgreSQL tests are mandatory: `CI` is set to anything but empty, `0` or `false`.
pub fn ci_is_set() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

async fn admin_connection(admin_url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(admin_url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Fails the test under CI; elsewhere prints the skip notice once per process.
fn postgres_unreachable(admin_url: &str, why: &str) {
    let shown = redact(admin_url);
    if ci_is_set() {
        panic!(
            "PostgreSQL not reachable at {shown} ({why}); CI is set, so PostgreSQL tests are \
             mandatory (set {POSTGRES_URL_VAR} to the server's URL)"
        );
    }
    if !POSTGRES_UNREACHABLE.swap(true, Ordering::Relaxed) {
        note(&format!(
            "PostgreSQL not reachable at {shown} ({why}); skipping PostgreSQL tests (set CI=true \
             to make them mandatory)"
        ));
    }
}

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and
/// a skip must be visible.
pub(crate) fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    match url::Url::parse(admin_url) {
        Ok(mut url) => {
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        Err(e) => panic!("{POSTGRES_URL_VAR} is not a valid URL: {e}"),
    }
}

/// The URL without its password, for messages.
fn redact(admin_url: &str) -> String {
    match url::Url::parse(admin_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    let mut admin = admin_connection(admin_url).await?;
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = admin.close().await;
    dropped
}

/// Drops a database from a thread with its own runtime, so it works from `Drop` inside or
/// outside an async context. Failures are reported on stderr, never panic.
fn drop_database_blocking(admin_url: &str, name: &str) {
    let (admin_url, name) = (admin_url.to_string(), name.to_string());
    let worker = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let result = match runtime {
            Ok(rt) => rt.block_on(drop_database(&admin_url, &name)),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            note(&format!("cannot drop the test database {name}: {e}"));
        }
    });
    let _ = worker.join();
}

/// An error with its sources, for panic messages.
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

/// A personal account row as stored without ever connecting: stopped, inactive, with a phone,
/// a Telegram user id and a first name (for tests that only need the account to exist).
pub fn stopped_account(
    workspace_id: switchboard_domain::WorkspaceId,
    phone: &str,
    telegram_user_id: i64,
    first_name: &str,
) -> switchboard_domain::NewAccount {
    switchboard_domain::NewAccount {
        workspace_id,
        phone: Some(phone.into()),
        telegram_user_id: Some(telegram_user_id),
        first_name: first_name.into(),
        last_name: None,
        username: None,
        status: switchboard_domain::AccountStatus::Stopped,
        active: false,
        ingest_groups: false,
        api_id: None,
        api_hash_sealed: None,
    }
}
