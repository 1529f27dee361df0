//! Errors of this backend: failing to connect or migrate, and the translation of sqlx errors
//! into [`StoreError`]s whose messages never contain bound values.

use sqlx::error::ErrorKind;
use switchboard_domain::{ErrorCode, StoreError, StoreResult};

/// Connecting to or migrating the PostgreSQL database failed. Never shows the password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not start with `postgres://` or `postgresql://`.
    #[error("not a PostgreSQL database URL (expected postgres://user:password@host:port/database)")]
    NotPostgresUrl,
    /// The URL could not be parsed.
    #[error("invalid PostgreSQL database URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {server}")]
    Connect {
        /// `host:port/database`.
        server: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the PostgreSQL database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A newer Switchboard migrated the database.
    #[error(transparent)]
    NewerSchema(#[from] switchboard_domain::schema::NewerSchema),
    /// The schema (its tables, the migrations it records) could not be read.
    #[error("cannot read the PostgreSQL database's schema")]
    ReadSchema(#[source] sqlx::Error),
    /// A table could not be written (or read back) by `copy-db`.
    #[error("cannot copy table {table} into PostgreSQL")]
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
        /// The table(s), or `table.column`.
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

/// A `Backend` error for an operation. PostgreSQL keeps row values in the error's `detail`,
/// which is never used, except in data exceptions (SQLSTATE class 22) whose message may quote
/// the offending input; for those only the code is kept.
fn backend(op: &'static str, err: &sqlx::Error) -> StoreError {
    let what = match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) if code.starts_with("22") => format!("data exception (SQLSTATE {code})"),
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_string(),
        },
        sqlx::Error::Io(e) => format!("i/o error: {e}"),
        sqlx::Error::Tls(_) => "TLS error".to_string(),
        sqlx::Error::Protocol(_) => "protocol error".to_string(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".to_string(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_string(),
        sqlx::Error::RowNotFound => "no row returned".to_string(),
        sqlx::Error::ColumnNotFound(column) => format!("no column {column}"),
        // The source of a decoding error may quote the stored value.
        sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
        sqlx::Error::Decode(_) => "cannot decode a value".to_string(),
        _ => "unexpected database driver error".to_string(),
    };
    StoreError::Backend(format!("{op}: {what}"))
}
