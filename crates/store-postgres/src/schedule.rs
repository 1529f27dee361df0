//! The SQL of the [`ScheduleStore`] port on PostgreSQL: scheduled posts (scoped by the viewer's
//! workspace; changed by owners and admins), their runs and follow-up actions, and the
//! publisher's claims. A claim locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so two
//! claimers (two instances) never take one run; writes about a post lock its row first.

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::Cols;
use crate::sql::begin;
use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;
use switchboard_domain::nul::clean;
use switchboard_domain::rows::{json_text, one_row};
use switchboard_domain::schedule::{read_action, read_post, read_run};
use switchboard_domain::{
    ActionKind, ActionStatus, ClaimedAction, ClaimedRun, ErrorCode, InstanceId, PostAction,
    PostActionId, PostEdit, PostFilter, PostId, PostRun, PostRunId, PostSpec, PostState, Published,
    Recurrence, ReleasedLeases, RunFailure, RunFilter, RunStatus, RunTrigger, ScheduleStore,
    ScheduledPost, StoreError, StoreResult, Timestamp, Viewer, WorkspaceId, check_post_spec,
    follow_ups_after, grace,
};

const POST_SELECT: &str = "SELECT p.id, p.workspace_id, p.sender, p.account_id, p.bot_id, \
     p.target_peer_id, p.target_access_hash, p.target_title, p.target_username, p.text, \
     p.entities, p.media, p.link_preview, p.silent, p.schedule, p.time_zone, p.grace_minutes, \
     p.pin_hours, p.delete_after_hours, p.state, p.version, p.random_seed, p.created_by, \
     p.created_at, p.updated_at, \
     (SELECT min(r.due_at) FROM post_runs AS r \
      WHERE r.post_id = p.id AND r.status = 'scheduled') AS next_run_at \
     FROM scheduled_posts AS p";
const RUN_COLUMNS: &str = "id, post_id, workspace_id, due_at, trigger_kind, status, attempts, \
     attempt_at, post_version, published_at, message_ids, link, error, created_at, updated_at";
const ACTION_COLUMNS: &str = "id, run_id, post_id, workspace_id, kind, due_at, status, \
     attempts, edit, error, done_at, created_at";
/// Most rows one page of the history returns.
const MAX_RUN_PAGE: u32 = 500;

type Tx = Transaction<'static, Postgres>;

async fn post_by<'e, E>(
    executor: E,
    op: &'static str,
    ws: Option<WorkspaceId>,
    post: PostId,
) -> StoreResult<ScheduledPost>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(&format!(
        "{POST_SELECT} WHERE p.id = $1 AND ($2 IS NULL OR p.workspace_id = $2)"
    ))
    .bind(post.0)
    .bind(ws.map(|w| w.0))
    .fetch_optional(executor)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_post(op, &Cols(&row))
}

/// Locks a post of the workspace for the rest of the transaction (concurrent changes of one
/// post queue here), or `NotFound`.
async fn lock_post(
    tx: &mut Tx,
    op: &'static str,
    ws: WorkspaceId,
    post: PostId,
) -> StoreResult<()> {
    sqlx::query("SELECT id FROM scheduled_posts WHERE id = $1 AND workspace_id = $2 FOR UPDATE")
        .bind(post.0)
        .bind(ws.0)
        .fetch_optional(&mut **tx)
        .await
        .store_err(op)?
        .ok_or(StoreError::NotFound)?;
    Ok(())
}

async fn run_by<'e, E>(
    executor: E,
    op: &'static str,
    ws: Option<WorkspaceId>,
    run: PostRunId,
) -> StoreResult<PostRun>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM post_runs WHERE id = $1 AND ($2 IS NULL OR workspace_id = $2)"
    ))
    .bind(run.0)
    .bind(ws.map(|w| w.0))
    .fetch_optional(executor)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_run(op, &Cols(&row))
}

async fn action_by(tx: &mut Tx, op: &'static str, action: PostActionId) -> StoreResult<PostAction> {
    let row = sqlx::query(&format!(
        "SELECT {ACTION_COLUMNS} FROM post_actions WHERE id = $1"
    ))
    .bind(action.0)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_action(op, &Cols(&row))
}

/// The sender and every media file must be the workspace's.
async fn check_references(
    tx: &mut Tx,
    op: &'static str,
    ws: WorkspaceId,
    spec: &PostSpec,
) -> StoreResult<()> {
    let (table, id) = match spec.sender.columns() {
        (_, Some(account), _) => ("accounts", account),
        (_, _, Some(bot)) => ("bots", bot),
        _ => return Err(StoreError::Conflict(ErrorCode::SenderNotFound)),
    };
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM {table} WHERE id = $1 AND workspace_id = $2"
    ))
    .bind(id)
    .bind(ws.0)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)?;
    if found.is_none() {
        return Err(StoreError::Conflict(ErrorCode::SenderNotFound));
    }
    for m in &spec.content.media {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM uploads WHERE workspace_id = $1 AND file_id = $2")
                .bind(ws.0)
                .bind(&m.file_id)
                .fetch_optional(&mut **tx)
                .await
                .store_err(op)?;
        if found.is_none() {
            return Err(StoreError::Conflict(ErrorCode::FileNotFound));
        }
    }
    Ok(())
}

async fn insert_run(
    tx: &mut Tx,
    op: &'static str,
    post: &ScheduledPost,
    due: Timestamp,
    trigger: RunTrigger,
    now: Timestamp,
) -> StoreResult<Option<PostRun>> {
    let row = sqlx::query(&format!(
        "INSERT INTO post_runs (post_id, workspace_id, due_at, trigger_kind, status, \
             attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'scheduled', $3, $5, $5) ON CONFLICT DO NOTHING \
         RETURNING {RUN_COLUMNS}"
    ))
    .bind(post.id.0)
    .bind(post.workspace_id.0)
    .bind(due.0)
    .bind(trigger.as_str())
    .bind(now.0)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)?;
    row.map(|r| read_run(op, &Cols(&r))).transpose()
}

/// Creates a recurring post's next waiting run after `after` (nothing for once posts, and for
/// posts that are not active).
async fn schedule_next(
    tx: &mut Tx,
    op: &'static str,
    post: &ScheduledPost,
    after: Timestamp,
    now: Timestamp,
) -> StoreResult<()> {
    if post.schedule.is_once() || post.state != PostState::Active {
        return Ok(());
    }
    let next = Recurrence::new(&post.schedule, &post.time_zone, now)
        .ok()
        .and_then(|r| r.next_after(after));
    if let Some(due) = next {
        insert_run(tx, op, post, due, RunTrigger::Schedule, now).await?;
    }
    Ok(())
}

/// A once post whose run ended is finished (a cancelled one stays cancelled).
async fn finish_once(
    tx: &mut Tx,
    op: &'static str,
    post: &ScheduledPost,
    now: Timestamp,
) -> StoreResult<()> {
    if post.schedule.is_once() && post.state != PostState::Cancelled {
        sqlx::query("UPDATE scheduled_posts SET state = 'finished', updated_at = $2 WHERE id = $1")
            .bind(post.id.0)
            .bind(now.0)
            .execute(&mut **tx)
            .await
            .store_err(op)?;
    }
    Ok(())
}

async fn publishing_run(tx: &mut Tx, op: &'static str, post: PostId) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM post_runs WHERE post_id = $1 AND status = 'publishing'",
    )
    .bind(post.0)
    .fetch_one(&mut **tx)
    .await
    .store_err(op)?;
    Ok(n > 0)
}

type Query<'q> = sqlx::query::Query<'q, Postgres, <Postgres as sqlx::Database>::Arguments<'q>>;

/// Binds a spec's columns as parameters 1–18 (sender … state).
fn bind_spec<'q>(q: Query<'q>, op: &'static str, spec: &'q PostSpec) -> StoreResult<Query<'q>> {
    let (sender, account, bot) = spec.sender.columns();
    let state = if spec.draft {
        PostState::Draft
    } else {
        PostState::Active
    };
    let c = &spec.content;
    Ok(q.bind(sender)
        .bind(account)
        .bind(bot)
        .bind(spec.target.peer_id)
        .bind(spec.target.access_hash)
        .bind(clean(&spec.target.title))
        .bind(spec.target.username.as_deref())
        .bind(clean(&c.text))
        .bind(json_text(op, &c.entities)?)
        .bind(json_text(op, &c.media)?)
        .bind(c.link_preview)
        .bind(c.silent)
        .bind(json_text(op, &spec.schedule)?)
        .bind(spec.time_zone.as_str())
        .bind(i32::try_from(spec.grace_minutes).unwrap_or(i32::MAX))
        .bind(
            spec.follow_ups
                .pin_hours
                .map(|h| i32::try_from(h).unwrap_or(i32::MAX)),
        )
        .bind(
            spec.follow_ups
                .delete_after_hours
                .map(|h| i32::try_from(h).unwrap_or(i32::MAX)),
        )
        .bind(state.as_str()))
}

/// Inserts a new post from a spec.
async fn insert_post(
    tx: &mut Tx,
    op: &'static str,
    viewer: &Viewer,
    spec: &PostSpec,
    random_seed: i64,
    now: Timestamp,
) -> StoreResult<PostId> {
    let q = sqlx::query(
        "INSERT INTO scheduled_posts (sender, account_id, bot_id, target_peer_id, \
             target_access_hash, target_title, target_username, text, entities, media, \
             link_preview, silent, schedule, time_zone, grace_minutes, pin_hours, \
             delete_after_hours, state, workspace_id, random_seed, created_by, created_at, \
             updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $22) RETURNING id",
    );
    let row = bind_spec(q, op, spec)?
        .bind(viewer.workspace.0)
        .bind(random_seed)
        .bind(viewer.user.0)
        .bind(now.0)
        .fetch_one(&mut **tx)
        .await
        .store_err(op)?;
    Ok(PostId(row.try_get("id").store_err(op)?))
}

/// Writes a spec over a post (its version counted).
async fn overwrite_post(
    tx: &mut Tx,
    op: &'static str,
    post: PostId,
    spec: &PostSpec,
    now: Timestamp,
) -> StoreResult<()> {
    let q = sqlx::query(
        "UPDATE scheduled_posts SET sender = $1, account_id = $2, bot_id = $3, \
             target_peer_id = $4, target_access_hash = $5, target_title = $6, \
             target_username = $7, text = $8, entities = $9, media = $10, \
             link_preview = $11, silent = $12, schedule = $13, time_zone = $14, \
             grace_minutes = $15, pin_hours = $16, delete_after_hours = $17, state = $18, \
             version = version + 1, updated_at = $19 \
         WHERE id = $20",
    );
    let done = bind_spec(q, op, spec)?
        .bind(now.0)
        .bind(post.0)
        .execute(&mut **tx)
        .await
        .store_err(op)?;
    one_row(done.rows_affected())
}

/// The post's first waiting run, unless it is a draft.
async fn schedule_first(
    tx: &mut Tx,
    op: &'static str,
    post: &ScheduledPost,
    recurrence: &Recurrence,
    now: Timestamp,
) -> StoreResult<()> {
    if post.state != PostState::Active {
        return Ok(());
    }
    if let Some(due) = recurrence.next_after(now) {
        insert_run(tx, op, post, due, RunTrigger::Schedule, now).await?;
    }
    Ok(())
}

/// Reads the run and its post, checking that `token` is the run's current claim.
async fn claimed(
    tx: &mut Tx,
    op: &'static str,
    run: PostRunId,
    token: i64,
) -> StoreResult<(PostRun, ScheduledPost)> {
    let row = sqlx::query("SELECT status, lease_token FROM post_runs WHERE id = $1 FOR UPDATE")
        .bind(run.0)
        .fetch_optional(&mut **tx)
        .await
        .store_err(op)?
        .ok_or(StoreError::NotFound)?;
    let status: String = row.try_get("status").store_err(op)?;
    let current: i64 = row.try_get("lease_token").store_err(op)?;
    if status != RunStatus::Publishing.as_str() || current != token {
        return Err(StoreError::Conflict(ErrorCode::RunLeaseLost));
    }
    let r = run_by(&mut **tx, op, None, run).await?;
    let p = post_by(&mut **tx, op, None, r.post_id).await?;
    Ok((r, p))
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn create_post(
        &self,
        viewer: &Viewer,
        spec: &PostSpec,
        random_seed: i64,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost> {
        const OP: &str = "create_post";
        viewer.check_manage_posts()?;
        let recurrence = check_post_spec(spec, now)?;
        let mut tx = begin(&self.pool, OP).await?;
        check_references(&mut tx, OP, viewer.workspace, spec).await?;
        let id = insert_post(&mut tx, OP, viewer, spec, random_seed, now).await?;
        let post = post_by(&mut *tx, OP, None, id).await?;
        schedule_first(&mut tx, OP, &post, &recurrence, now).await?;
        let post = post_by(&mut *tx, OP, None, id).await?;
        tx.commit().await.store_err(OP)?;
        Ok(post)
    }

    async fn update_post(
        &self,
        viewer: &Viewer,
        post: PostId,
        spec: &PostSpec,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost> {
        const OP: &str = "update_post";
        viewer.check_manage_posts()?;
        let recurrence = check_post_spec(spec, now)?;
        let mut tx = begin(&self.pool, OP).await?;
        lock_post(&mut tx, OP, viewer.workspace, post).await?;
        let current = post_by(&mut *tx, OP, Some(viewer.workspace), post).await?;
        if publishing_run(&mut tx, OP, post).await? {
            return Err(StoreError::Conflict(ErrorCode::PostPublishing));
        }
        if current.state == PostState::Finished {
            return Err(StoreError::Conflict(ErrorCode::PostFinished));
        }
        check_references(&mut tx, OP, viewer.workspace, spec).await?;
        overwrite_post(&mut tx, OP, post, spec, now).await?;
        // The waiting occurrence is replaced; a run waiting for a retry ends here.
        sqlx::query(
            "DELETE FROM post_runs WHERE post_id = $1 AND status = 'scheduled' \
                 AND trigger_kind = 'schedule' AND attempts = 0",
        )
        .bind(post.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        sqlx::query(
            "UPDATE post_runs SET status = 'cancelled', error = 'post_changed', updated_at = $2 \
             WHERE post_id = $1 AND status = 'scheduled' AND trigger_kind = 'schedule'",
        )
        .bind(post.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        let updated = post_by(&mut *tx, OP, None, post).await?;
        schedule_first(&mut tx, OP, &updated, &recurrence, now).await?;
        let updated = post_by(&mut *tx, OP, None, post).await?;
        tx.commit().await.store_err(OP)?;
        Ok(updated)
    }

    async fn cancel_post(
        &self,
        viewer: &Viewer,
        post: PostId,
        now: Timestamp,
    ) -> StoreResult<ScheduledPost> {
        const OP: &str = "cancel_post";
        viewer.check_manage_posts()?;
        let mut tx = begin(&self.pool, OP).await?;
        lock_post(&mut tx, OP, viewer.workspace, post).await?;
        post_by(&mut *tx, OP, Some(viewer.workspace), post).await?;
        sqlx::query(
            "UPDATE post_runs SET status = 'cancelled', updated_at = $2 \
             WHERE post_id = $1 AND status = 'scheduled'",
        )
        .bind(post.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        sqlx::query(
            "UPDATE scheduled_posts SET state = 'cancelled', updated_at = $2 WHERE id = $1",
        )
        .bind(post.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        let p = post_by(&mut *tx, OP, None, post).await?;
        tx.commit().await.store_err(OP)?;
        Ok(p)
    }

    async fn delete_post(&self, viewer: &Viewer, post: PostId) -> StoreResult<()> {
        const OP: &str = "delete_post";
        viewer.check_manage_posts()?;
        let mut tx = begin(&self.pool, OP).await?;
        lock_post(&mut tx, OP, viewer.workspace, post).await?;
        post_by(&mut *tx, OP, Some(viewer.workspace), post).await?;
        if publishing_run(&mut tx, OP, post).await? {
            return Err(StoreError::Conflict(ErrorCode::PostPublishing));
        }
        let done = sqlx::query("DELETE FROM scheduled_posts WHERE id = $1")
            .bind(post.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        one_row(done.rows_affected())?;
        tx.commit().await.store_err(OP)?;
        Ok(())
    }

    async fn publish_now(
        &self,
        viewer: &Viewer,
        post: PostId,
        now: Timestamp,
    ) -> StoreResult<PostRun> {
        const OP: &str = "publish_now";
        viewer.check_manage_posts()?;
        let mut tx = begin(&self.pool, OP).await?;
        lock_post(&mut tx, OP, viewer.workspace, post).await?;
        let p = post_by(&mut *tx, OP, Some(viewer.workspace), post).await?;
        if matches!(p.state, PostState::Finished | PostState::Cancelled) {
            return Err(StoreError::Conflict(ErrorCode::PostFinished));
        }
        let waiting_manual: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM post_runs WHERE post_id = $1 \
             AND (status = 'publishing' OR (status = 'scheduled' AND trigger_kind = 'manual'))",
        )
        .bind(post.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        if waiting_manual > 0 {
            return Err(StoreError::Conflict(ErrorCode::PostPublishing));
        }
        if p.schedule.is_once() {
            sqlx::query("DELETE FROM post_runs WHERE post_id = $1 AND status = 'scheduled'")
                .bind(post.0)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
        }
        let run = insert_run(&mut tx, OP, &p, now, RunTrigger::Manual, now)
            .await?
            .ok_or(StoreError::Conflict(ErrorCode::PostPublishing))?;
        tx.commit().await.store_err(OP)?;
        Ok(run)
    }

    async fn get_post(&self, viewer: &Viewer, post: PostId) -> StoreResult<ScheduledPost> {
        post_by(&self.pool, "get_post", Some(viewer.workspace), post).await
    }

    async fn list_posts(
        &self,
        viewer: &Viewer,
        filter: &PostFilter,
    ) -> StoreResult<Vec<ScheduledPost>> {
        const OP: &str = "list_posts";
        let rows = sqlx::query(&format!(
            "SELECT * FROM ({POST_SELECT} WHERE p.workspace_id = $1 \
                 AND ($2 IS NULL OR p.state = $2)) AS q \
             ORDER BY next_run_at IS NULL, next_run_at, id DESC"
        ))
        .bind(viewer.workspace.0)
        .bind(filter.state.map(PostState::as_str))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_post(OP, &Cols(r))).collect()
    }

    async fn list_runs(&self, viewer: &Viewer, filter: &RunFilter) -> StoreResult<Vec<PostRun>> {
        const OP: &str = "list_runs";
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM post_runs WHERE workspace_id = $1 \
                 AND ($2 IS NULL OR post_id = $2) AND ($3 IS NULL OR id < $3) \
                 AND (cardinality($4::TEXT[]) = 0 OR status = ANY($4)) \
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(viewer.workspace.0)
        .bind(filter.post.map(|p| p.0))
        .bind(filter.before.map(|r| r.0))
        .bind(&statuses)
        .bind(i64::from(filter.limit.clamp(1, MAX_RUN_PAGE)))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_run(OP, &Cols(r))).collect()
    }

    async fn get_run(&self, viewer: &Viewer, run: PostRunId) -> StoreResult<PostRun> {
        run_by(&self.pool, "get_run", Some(viewer.workspace), run).await
    }

    async fn add_action(
        &self,
        viewer: &Viewer,
        run: PostRunId,
        kind: ActionKind,
        edit: Option<&PostEdit>,
        due_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<PostAction> {
        const OP: &str = "add_action";
        viewer.check_manage_posts()?;
        if (kind == ActionKind::Edit) != edit.is_some() {
            return Err(StoreError::Conflict(ErrorCode::ValidationFailed));
        }
        let mut tx = begin(&self.pool, OP).await?;
        let r = run_by(&mut *tx, OP, Some(viewer.workspace), run).await?;
        let deleted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM post_actions WHERE run_id = $1 AND kind = 'delete' \
                 AND status = 'done'",
        )
        .bind(run.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        if r.status != RunStatus::Published || deleted > 0 {
            return Err(StoreError::Conflict(ErrorCode::RunNotPublished));
        }
        let edit = edit.map(|e| json_text(OP, e)).transpose()?;
        let row = sqlx::query(&format!(
            "INSERT INTO post_actions (run_id, post_id, workspace_id, kind, due_at, status, \
                 attempt_at, edit, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $5, $6, $7) RETURNING {ACTION_COLUMNS}"
        ))
        .bind(run.0)
        .bind(r.post_id.0)
        .bind(r.workspace_id.0)
        .bind(kind.as_str())
        .bind(due_at.0)
        .bind(edit)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let action = read_action(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(action)
    }

    async fn list_actions(&self, viewer: &Viewer, run: PostRunId) -> StoreResult<Vec<PostAction>> {
        const OP: &str = "list_actions";
        run_by(&self.pool, OP, Some(viewer.workspace), run).await?;
        let rows = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM post_actions WHERE run_id = $1 ORDER BY due_at, id"
        ))
        .bind(run.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_action(OP, &Cols(r))).collect()
    }

    async fn claim_due_runs(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        owner: &InstanceId,
    ) -> StoreResult<Vec<ClaimedRun>> {
        const OP: &str = "claim_due_runs";
        let mut tx = begin(&self.pool, OP).await?;
        let due = sqlx::query(
            "SELECT r.id, r.status, r.attempts, r.trigger_kind, r.due_at FROM post_runs AS r \
             JOIN scheduled_posts AS p ON p.id = r.post_id \
             WHERE r.attempt_at <= $1 AND (r.status = 'publishing' OR (r.status = 'scheduled' \
                 AND (r.attempts > 0 OR r.due_at >= $1 - p.grace_minutes * 60000))) \
             ORDER BY r.attempt_at, r.id LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let mut out = Vec::with_capacity(due.len());
        for row in &due {
            let id = PostRunId(row.try_get("id").store_err(OP)?);
            let status: String = row.try_get("status").store_err(OP)?;
            let attempts: i32 = row.try_get("attempts").store_err(OP)?;
            let trigger: String = row.try_get("trigger_kind").store_err(OP)?;
            let due_at = Timestamp(row.try_get("due_at").store_err(OP)?);
            let token = i64::from(attempts) + 1;
            let r = sqlx::query(&format!(
                "UPDATE post_runs SET status = 'publishing', attempts = attempts + 1, \
                     lease_token = $2, attempt_at = $3, updated_at = $4, \
                     lease_owner = $5, \
                     post_version = (SELECT version FROM scheduled_posts WHERE id = post_id) \
                 WHERE id = $1 RETURNING {RUN_COLUMNS}"
            ))
            .bind(id.0)
            .bind(token)
            .bind(now.plus(lease).0)
            .bind(now.0)
            .bind(owner.as_str())
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
            let run = read_run(OP, &Cols(&r))?;
            let post = post_by(&mut *tx, OP, None, run.post_id).await?;
            if attempts == 0 && trigger == RunTrigger::Schedule.as_str() {
                schedule_next(&mut tx, OP, &post, due_at, now).await?;
            }
            let post = post_by(&mut *tx, OP, None, run.post_id).await?;
            out.push(ClaimedRun {
                run,
                post,
                token,
                reclaimed: status == RunStatus::Publishing.as_str(),
            });
        }
        tx.commit().await.store_err(OP)?;
        Ok(out)
    }

    async fn complete_run(
        &self,
        run: PostRunId,
        token: i64,
        published: &Published,
        now: Timestamp,
    ) -> StoreResult<PostRun> {
        const OP: &str = "complete_run";
        let mut tx = begin(&self.pool, OP).await?;
        let (r, post) = claimed(&mut tx, OP, run, token).await?;
        let link = published
            .message_ids
            .first()
            .and_then(|id| post.target.message_link(*id));
        let row = sqlx::query(&format!(
            "UPDATE post_runs SET status = 'published', published_at = $2, message_ids = $3, \
                 link = $4, error = NULL, attempt_at = $5, updated_at = $5 \
             WHERE id = $1 RETURNING {RUN_COLUMNS}"
        ))
        .bind(run.0)
        .bind(published.at.0)
        .bind(json_text(OP, &published.message_ids)?)
        .bind(link)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let done = read_run(OP, &Cols(&row))?;
        for (kind, due) in follow_ups_after(post.follow_ups, published.at) {
            sqlx::query(
                "INSERT INTO post_actions (run_id, post_id, workspace_id, kind, due_at, status, \
                     attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $5, $6)",
            )
            .bind(r.id.0)
            .bind(post.id.0)
            .bind(post.workspace_id.0)
            .bind(kind.as_str())
            .bind(due.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        }
        finish_once(&mut tx, OP, &post, now).await?;
        tx.commit().await.store_err(OP)?;
        Ok(done)
    }

    async fn fail_run(
        &self,
        run: PostRunId,
        token: i64,
        error: &str,
        failure: RunFailure,
        now: Timestamp,
    ) -> StoreResult<PostRun> {
        const OP: &str = "fail_run";
        let mut tx = begin(&self.pool, OP).await?;
        let (_, post) = claimed(&mut tx, OP, run, token).await?;
        let (status, at) = match failure {
            RunFailure::RetryAt(at) => (RunStatus::Scheduled, at),
            RunFailure::Failed => (RunStatus::Failed, now),
            RunFailure::Uncertain => (RunStatus::SendUncertain, now),
        };
        let row = sqlx::query(&format!(
            "UPDATE post_runs SET status = $2, error = $3, attempt_at = $4, updated_at = $5 \
             WHERE id = $1 RETURNING {RUN_COLUMNS}"
        ))
        .bind(run.0)
        .bind(status.as_str())
        .bind(clean(error).as_ref())
        .bind(at.0)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let done = read_run(OP, &Cols(&row))?;
        if status != RunStatus::Scheduled {
            finish_once(&mut tx, OP, &post, now).await?;
        }
        tx.commit().await.store_err(OP)?;
        Ok(done)
    }

    async fn sweep_missed(&self, now: Timestamp) -> StoreResult<Vec<PostRun>> {
        const OP: &str = "sweep_missed";
        let mut tx = begin(&self.pool, OP).await?;
        let rows = sqlx::query(&format!(
            "UPDATE post_runs SET status = 'missed', error = 'missed', updated_at = $1 \
             WHERE status = 'scheduled' AND attempts = 0 AND due_at < $1 - (SELECT \
                 p.grace_minutes * 60000 FROM scheduled_posts AS p WHERE p.id = post_id) \
             RETURNING {RUN_COLUMNS}"
        ))
        .bind(now.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let missed: Vec<PostRun> = rows
            .iter()
            .map(|r| read_run(OP, &Cols(r)))
            .collect::<StoreResult<_>>()?;
        for run in &missed {
            let post = post_by(&mut *tx, OP, None, run.post_id).await?;
            if run.trigger == RunTrigger::Schedule {
                let after = run.due_at.max(now.minus(grace(post.grace_minutes)));
                schedule_next(&mut tx, OP, &post, after, now).await?;
            }
            finish_once(&mut tx, OP, &post, now).await?;
        }
        tx.commit().await.store_err(OP)?;
        Ok(missed)
    }

    async fn release_leases(
        &self,
        owner: &InstanceId,
        now: Timestamp,
    ) -> StoreResult<ReleasedLeases> {
        const OP: &str = "release_leases";
        let mut tx = begin(&self.pool, OP).await?;
        // Runs `publishing` and actions `running` under the owner's lease.
        let mut released = [0; 2];
        for (n, (table, status)) in [("post_runs", "publishing"), ("post_actions", "running")]
            .into_iter()
            .enumerate()
        {
            released[n] = sqlx::query(&format!(
                "UPDATE {table} SET attempt_at = LEAST(attempt_at, $1) \
                 WHERE status = '{status}' AND lease_owner = $2"
            ))
            .bind(now.0)
            .bind(owner.as_str())
            .execute(&mut *tx)
            .await
            .store_err(OP)?
            .rows_affected();
        }
        tx.commit().await.store_err(OP)?;
        Ok(ReleasedLeases {
            runs: released[0],
            actions: released[1],
        })
    }

    async fn next_schedule_wakeup(&self) -> StoreResult<Option<Timestamp>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT min(t) FROM ( \
                 SELECT min(attempt_at) AS t FROM post_runs \
                 WHERE status IN ('scheduled', 'publishing') \
                 UNION ALL SELECT min(attempt_at) FROM post_actions \
                 WHERE status IN ('pending', 'running')) AS w",
        )
        .fetch_one(&self.pool)
        .await
        .store_err("next_schedule_wakeup")?;
        Ok(at.map(Timestamp))
    }

    async fn claim_due_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
        owner: &InstanceId,
    ) -> StoreResult<Vec<ClaimedAction>> {
        const OP: &str = "claim_due_actions";
        let mut tx = begin(&self.pool, OP).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM post_actions WHERE status IN ('pending', 'running') \
                 AND attempt_at <= $1 ORDER BY attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(&format!(
                "UPDATE post_actions SET status = 'running', attempts = attempts + 1, \
                     lease_token = attempts + 1, attempt_at = $2, lease_owner = $3 \
                 WHERE id = $1 RETURNING {ACTION_COLUMNS}, lease_token"
            ))
            .bind(id)
            .bind(now.plus(lease).0)
            .bind(owner.as_str())
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
            let token: i64 = row.try_get("lease_token").store_err(OP)?;
            let action = read_action(OP, &Cols(&row))?;
            let run = run_by(&mut *tx, OP, None, action.run_id).await?;
            let post = post_by(&mut *tx, OP, None, action.post_id).await?;
            out.push(ClaimedAction {
                action,
                run,
                post,
                token,
            });
        }
        tx.commit().await.store_err(OP)?;
        Ok(out)
    }

    async fn complete_action(
        &self,
        action: PostActionId,
        token: i64,
        now: Timestamp,
    ) -> StoreResult<PostAction> {
        const OP: &str = "complete_action";
        let mut tx = begin(&self.pool, OP).await?;
        let done = sqlx::query(
            "UPDATE post_actions SET status = 'done', done_at = $3, error = NULL \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(action.0)
        .bind(token)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        if done.rows_affected() == 0 {
            action_by(&mut tx, OP, action).await?;
            return Err(StoreError::Conflict(ErrorCode::RunLeaseLost));
        }
        let a = action_by(&mut tx, OP, action).await?;
        if a.kind == ActionKind::Delete {
            sqlx::query(
                "UPDATE post_actions SET status = 'cancelled' \
                 WHERE run_id = $1 AND status = 'pending'",
            )
            .bind(a.run_id.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        }
        tx.commit().await.store_err(OP)?;
        Ok(a)
    }

    async fn fail_action(
        &self,
        action: PostActionId,
        token: i64,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<PostAction> {
        const OP: &str = "fail_action";
        let (status, at) = match retry_at {
            Some(at) => (ActionStatus::Pending, at),
            None => (ActionStatus::Failed, now),
        };
        let mut tx = begin(&self.pool, OP).await?;
        let done = sqlx::query(
            "UPDATE post_actions SET status = $3, error = $4, attempt_at = $5 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(action.0)
        .bind(token)
        .bind(status.as_str())
        .bind(clean(error).as_ref())
        .bind(at.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        if done.rows_affected() == 0 {
            action_by(&mut tx, OP, action).await?;
            return Err(StoreError::Conflict(ErrorCode::RunLeaseLost));
        }
        let a = action_by(&mut tx, OP, action).await?;
        tx.commit().await.store_err(OP)?;
        Ok(a)
    }
}
