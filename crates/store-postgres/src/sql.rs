//! Transactions of this backend beyond the pool's defaults.

use crate::error::ResultExt;
use sqlx::{PgPool, Postgres, Transaction};
use switchboard_domain::StoreResult;

/// Begins a transaction whose commit does not wait for its WAL record to reach the disk
/// (`synchronous_commit = off`; a crash of the application loses nothing, a crash of the
/// PostgreSQL server may lose the last ≈ 0.6 s of such commits). Only for what Telegram gives
/// again: ingested updates and the update state reached. The WAL is written in order, so a
/// state that survives implies the messages committed before it survived; when both are lost,
/// the older state fetches those messages again (and the store drops duplicates).
pub(crate) async fn begin_relaxed(
    pool: &PgPool,
    op: &'static str,
) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.store_err(op)?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    Ok(tx)
}
