//! SQL building blocks every module of this backend uses: write transactions, multi-row
//! placeholders, id lists. Write transactions start with `BEGIN IMMEDIATE`, so a transaction
//! that reads before it writes never fails to upgrade its lock (`SQLITE_BUSY`); it waits for the
//! busy timeout instead. Lists of ids travel as one JSON array (`json_each`).

use crate::error::ResultExt;
use sqlx::{Sqlite, Transaction};
use switchboard_domain::{StoreError, StoreResult};

/// Rows per multi-row `INSERT`, well below SQLite's limit of 32,766 bound values.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// A write transaction that holds the write lock from its first statement. The `BEGIN` runs
/// in a task of its own that finishes even when the caller is cancelled (an HTTP client that
/// goes away, a worker being stopped): sqlx 0.8 checks a custom `BEGIN` with a second await,
/// and a caller dropped there leaves the connection inside the transaction with nothing to end
/// it — on the one writer connection, every later write would wait in it uncommitted. Finished
/// in its own task, the `Transaction` exists, and dropping it (the caller gone) rolls back.
pub(crate) async fn begin_immediate(
    pool: &sqlx::SqlitePool,
    op: &'static str,
) -> StoreResult<Transaction<'static, Sqlite>> {
    let pool = pool.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "not a background task: the caller awaits it, and it only outlives a \
                  cancelled caller by the BEGIN"
    )]
    let begun = tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await });
    begun
        .await
        .map_err(|e| StoreError::Backend(format!("{op}: {e}")))?
        .store_err(op)
}

/// `(?, ?, …), (?, ?, …), …`: `rows` groups of `columns` anonymous parameters.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    vec![group; rows].join(", ")
}

/// A JSON array of ids, for `json_each`.
pub(crate) fn json_ids(ids: impl Iterator<Item = i64>) -> String {
    let list: Vec<String> = ids.map(|id| id.to_string()).collect();
    format!("[{}]", list.join(","))
}
