//! SQL building blocks every module of this backend uses: write transactions, multi-row
//! placeholders, id lists. Write transactions start with `BEGIN IMMEDIATE`, so a transaction
//! that reads before it writes never fails to upgrade its lock (`SQLITE_BUSY`); it waits for the
//! busy timeout instead. Lists of ids travel as one JSON array (`json_each`).

use crate::error::ResultExt;
use sqlx::{Sqlite, Transaction};
use switchboard_domain::StoreResult;

/// Rows per multi-row `INSERT`, well below SQLite's limit of 32,766 bound values.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// A write transaction that holds the write lock from its first statement.
pub(crate) async fn begin_immediate(
    pool: &sqlx::SqlitePool,
    op: &'static str,
) -> StoreResult<Transaction<'static, Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await.store_err(op)
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
