//! Transactions of this backend beyond the pool's defaults.

use crate::error::ResultExt;
use sqlx::{PgPool, Postgres, Transaction};
use switchboard_domain::{StoreError, StoreResult};

/// Begins a transaction. The `BEGIN` runs in a task of its own that finishes even when the
/// caller is cancelled (an HTTP client that goes away, a worker being stopped): sqlx 0.8's
/// `Pool::begin` on PostgreSQL is not cancel-safe — dropped while `BEGIN`'s answer is on its
/// way, it queues no `ROLLBACK` and the pool hands the connection, still inside that
/// transaction, to the next caller, whose writes are then never committed and whose first
/// error fails every later query on it (sqlx issue 4393, fixed in sqlx 0.9.1). Finished in its
/// own task, the `Transaction` exists, and dropping it (the caller gone) rolls back.
pub(crate) async fn begin(
    pool: &PgPool,
    op: &'static str,
) -> StoreResult<Transaction<'static, Postgres>> {
    begin_as(pool, None, op).await
}

/// [`begin`] with a `BEGIN` statement of its own (an isolation level).
pub(crate) async fn begin_with(
    pool: &PgPool,
    statement: &'static str,
    op: &'static str,
) -> StoreResult<Transaction<'static, Postgres>> {
    begin_as(pool, Some(statement), op).await
}

async fn begin_as(
    pool: &PgPool,
    statement: Option<&'static str>,
    op: &'static str,
) -> StoreResult<Transaction<'static, Postgres>> {
    let pool = pool.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "not a background task: the caller awaits it, and it only outlives a \
                  cancelled caller by the BEGIN's round trip"
    )]
    let begun = tokio::spawn(async move {
        match statement {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    });
    begun
        .await
        .map_err(|e| StoreError::Backend(format!("{op}: {e}")))?
        .store_err(op)
}

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
    let mut tx = begin(pool, op).await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    Ok(tx)
}
