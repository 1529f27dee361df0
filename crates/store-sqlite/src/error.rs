//! Errors of this backend: failing to open or migrate the database, and the translation of sqlx
//! errors into [`StoreError`]s whose messages never contain bound values.

use sqlx::error::ErrorKind;
use std::path::PathBuf;
use switchboard_domain::{ErrorCode, StoreError, StoreResult};

/// Opening or migrating the SQLite database failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not start with `sqlite:`.
    #[error(
        "not a SQLite database URL (expected sqlite:///absolute/path.db or sqlite://relative.db)"
    )]
    NotSqliteUrl,
    /// The URL could not be parsed.
    #[error("invalid SQLite database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database's directory could not be created.
    #[error("cannot create the database directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or configured.
    #[error("cannot open the SQLite database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the SQLite database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The backup copy could not be written.
    #[error("cannot write the SQLite backup {}", path.display())]
    Backup {
        /// The copy's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A newer Switchboard migrated the database.
    #[error(transparent)]
    NewerSchema(#[from] switchboard_domain::schema::NewerSchema),
    /// The schema (its tables, the migrations it records) could not be read.
    #[error("cannot read the SQLite database's schema")]
    ReadSchema(#[source] sqlx::Error),
    /// A table could not be read for `copy-db`.
    #[error("cannot read table {table} of the SQLite database")]
    Copy {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A table or value cannot be copied as it is.
    #[error("{table} {problem}")]
    CopyValue {
        /// The table, or `table.column`.
        table: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Converts sqlx results into store results, naming the operation that failed.
pub(crate) trait ResultExt<T> {
    /// Missing rows become `NotFound`; anything else `Backend`.
    fn store_err(self, op: &'static str) -> StoreResult<T>;
    /// Like [`ResultExt::store_err`], and a unique violation becomes `Conflict(conflict)`.
    fn conflict_as(self, op: &'static str, conflict: ErrorCode) -> StoreResult<T>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn store_err(self, op: &'static str) -> StoreResult<T> {
        self.map_err(|e| to_store_error(op, e, None))
    }

    fn conflict_as(self, op: &'static str, conflict: ErrorCode) -> StoreResult<T> {
        self.map_err(|e| to_store_error(op, e, Some(conflict)))
    }
}

fn to_store_error(op: &'static str, err: sqlx::Error, conflict: Option<ErrorCode>) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match (db.kind(), conflict) {
            (ErrorKind::UniqueViolation, Some(name)) => StoreError::Conflict(name),
            // Inserting a row that refers to a missing one (a session of a non-member, a
            // membership of an unknown user).
            (ErrorKind::ForeignKeyViolation, _) => StoreError::NotFound,
            _ => backend(op, &err),
        },
        _ => backend(op, &err),
    }
}

/// A `Backend` error for an operation. SQLite's messages name tables, columns and constraints,
/// never the values bound to a statement.
fn backend(op: &'static str, err: &sqlx::Error) -> StoreError {
    let what = match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (code {code})", db.message()),
            None => db.message().to_string(),
        },
        sqlx::Error::Io(e) => format!("i/o error: {e}"),
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".to_string(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_string(),
        sqlx::Error::RowNotFound => "no row returned".to_string(),
        sqlx::Error::ColumnNotFound(column) => format!("no column {column}"),
        // The source of a decoding error may quote the stored value.
        sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
        sqlx::Error::Decode(_) => "cannot decode a value".to_string(),
        sqlx::Error::WorkerCrashed => "the SQLite worker thread crashed".to_string(),
        _ => "unexpected database driver error".to_string(),
    };
    StoreError::Backend(format!("{op}: {what}"))
}
