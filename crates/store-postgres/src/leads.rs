//! The SQL of the [`LeadStore`] port on PostgreSQL: tasks and their sources (scoped by the
//! viewer's workspace; managed by owners and admins), the monitor's source bookkeeping, the
//! batched and deduplicated insert of leads, the lead list with its `tsvector` search (the
//! `simple` configuration, through an expression index), and the lead delivery queue. The lead
//! inserts of one task are serialized by a transaction-scoped advisory lock, so the SimHash
//! check of [`LeadStore::insert_leads`] (which reads the task's recent hashes, then inserts)
//! never interleaves with another batch; senders claim deliveries with `FOR UPDATE SKIP LOCKED`.

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::Cols;
use crate::sql::begin;
use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use switchboard_domain::ErrorCode;
use switchboard_domain::leads::{read_lead, read_source, read_task};
use switchboard_domain::nul::{clean, clean_opt};
use switchboard_domain::rows::{corrupt, json_text, one_row};
use switchboard_domain::{
    AccountId, DeliveryTarget, Duplicate, INSTANT_CAP_WINDOW, Lead, LeadDeliveryId,
    LeadDeliveryItem, LeadDeliveryKind, LeadFilter, LeadId, LeadOutcome, LeadStore, MAX_LEAD_PAGE,
    MAX_TASK_SOURCES, NEAR_DUPLICATE_WINDOW, NewLead, OVERFLOW_DIGEST_EVERY, RecoveredDelivery,
    ResolvedSource, SEND_UNCERTAIN, Source, SourceId, SourceRef, SourceState, SourceStatus,
    StoreError, StoreResult, Task, TaskId, TaskSpec, Timestamp, Viewer, WatchedSource, WorkspaceId,
    check_task_spec, near_duplicate, new_terms, parse_column, search_terms,
};

const TASK_COLUMNS: &str = "id, workspace_id, name, query, account_id, target, target_chat_id, \
     target_bot_id, target_peer_id, mode, digest_minutes, instant_cap_per_minute, \
     ignore_forwards, join_allowed, leave_unused, active, created_by, created_at, updated_at";
const SOURCE_COLUMNS: &str = "id, account_id, kind, ref_key, input, channel_id, access_hash, \
     title, state, wait_until, failure, read_via, joined_by_us, leave_allowed, last_message_id, \
     pts, checked_at, created_at, updated_at";
const LEAD_COLUMNS: &str = "id, workspace_id, task_id, source_id, tg_message_id, revision, \
     channel_id, link, author_id, author_name, author_username, text, snippet, terms::text AS terms, posted_at, \
     fwd_channel_id, fwd_post_id, grouped_id, simhash, read, delivery_id, created_at";

/// A task's target can be delivered to (its chat or bot was not deleted).
const USABLE_TARGET: &str = "(t.target = 'saved_messages' OR t.target_chat_id IS NOT NULL \
     OR t.target_bot_id IS NOT NULL)";

/// An active task links the source aliased `s`.
const ACTIVE_LINK: &str = "EXISTS (SELECT 1 FROM lead_task_sources AS l \
     JOIN lead_tasks AS t ON t.id = l.task_id WHERE l.source_id = s.id AND t.active)";

/// First key of the advisory locks that serialize the lead inserts of one task.
const LEADS_LOCK_TASK: i32 = 0x5342_0010;

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

async fn task_in<'e, E>(
    executor: E,
    op: &'static str,
    ws: WorkspaceId,
    task: TaskId,
) -> StoreResult<Task>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM lead_tasks WHERE id = $1 AND workspace_id = $2"
    ))
    .bind(task.0)
    .bind(ws.0)
    .fetch_optional(executor)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_task(op, &Cols(&row))
}

/// The account and the delivery target must belong to the workspace.
async fn check_references(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    ws: WorkspaceId,
    spec: &TaskSpec,
) -> StoreResult<()> {
    let account: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1 AND workspace_id = $2")
            .bind(spec.account.0)
            .bind(ws.0)
            .fetch_optional(&mut **tx)
            .await
            .store_err(op)?;
    if account.is_none() {
        return Err(StoreError::Conflict(ErrorCode::AccountNotFound));
    }
    let table = match spec.target {
        DeliveryTarget::Chat { chat } => Some(("chats", chat.0)),
        DeliveryTarget::Bot { bot, .. } => Some(("bots", bot.0)),
        DeliveryTarget::SavedMessages | DeliveryTarget::Removed => None,
    };
    if let Some((table, id)) = table {
        let found: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM {table} WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id)
        .bind(ws.0)
        .fetch_optional(&mut **tx)
        .await
        .store_err(op)?;
        if found.is_none() {
            return Err(StoreError::Conflict(ErrorCode::DeliveryTargetNotFound));
        }
    }
    Ok(())
}

/// Makes each reference a source of `account` (new ones `resolving`, left ones resolving
/// again) and links them to `task`, unlinking the task's other sources.
async fn link_sources(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    task: TaskId,
    account: AccountId,
    refs: &[SourceRef],
    now: Timestamp,
) -> StoreResult<()> {
    let mut ids = Vec::with_capacity(refs.len());
    for r in refs {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lead_sources (account_id, kind, ref_key, input, state, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, 'resolving', $5, $5) \
             ON CONFLICT (account_id, kind, ref_key) DO UPDATE SET \
                 input = excluded.input, updated_at = excluded.updated_at, \
                 state = CASE WHEN lead_sources.state = 'left' THEN 'resolving' \
                     ELSE lead_sources.state END \
             RETURNING id",
        )
        .bind(account.0)
        .bind(r.kind.as_str())
        .bind(clean(&r.key).as_ref())
        .bind(clean(&r.input).as_ref())
        .bind(now.0)
        .fetch_one(&mut **tx)
        .await
        .store_err(op)?;
        ids.push(id);
    }
    let unlinked: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM lead_task_sources WHERE task_id = $1 \
             AND source_id <> ALL($2) RETURNING source_id",
    )
    .bind(task.0)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await
    .store_err(op)?;
    sqlx::query(
        "INSERT INTO lead_task_sources (task_id, source_id, account_id) \
         SELECT $1, unnest($3::bigint[]), $2 ON CONFLICT DO NOTHING",
    )
    .bind(task.0)
    .bind(account.0)
    .bind(&ids)
    .execute(&mut **tx)
    .await
    .store_err(op)?;
    ids.extend(unlinked);
    refresh_leave_allowed(tx, op, &ids).await
}

/// A linked source may be left once unused when every task linking it allows it; a source no
/// task links keeps what its last tasks allowed.
async fn refresh_leave_allowed(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    sources: &[i64],
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE lead_sources SET leave_allowed = NOT EXISTS ( \
             SELECT 1 FROM lead_task_sources AS l JOIN lead_tasks AS t ON t.id = l.task_id \
             WHERE l.source_id = lead_sources.id AND NOT t.leave_unused) \
         WHERE id = ANY($1) \
           AND EXISTS (SELECT 1 FROM lead_task_sources WHERE source_id = lead_sources.id)",
    )
    .bind(sources)
    .execute(&mut **tx)
    .await
    .store_err(op)?;
    Ok(())
}

async fn sources_of_task<'e, E>(
    executor: E,
    op: &'static str,
    task: TaskId,
) -> StoreResult<Vec<Source>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let rows = sqlx::query(&format!(
        "SELECT {SOURCE_COLUMNS} FROM lead_sources \
         WHERE id IN (SELECT source_id FROM lead_task_sources WHERE task_id = $1) ORDER BY id"
    ))
    .bind(task.0)
    .fetch_all(executor)
    .await
    .store_err(op)?;
    rows.iter().map(|r| read_source(op, &Cols(r))).collect()
}

async fn source_by_id(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    source: i64,
) -> StoreResult<Source> {
    let row = sqlx::query(&format!(
        "SELECT {SOURCE_COLUMNS} FROM lead_sources WHERE id = $1"
    ))
    .bind(source)
    .fetch_one(&mut **tx)
    .await
    .store_err(op)?;
    read_source(op, &Cols(&row))
}

/// What the insert of a batch needs to know about one (task, source) pair.
struct Pair {
    workspace: i64,
    instant: bool,
    usable_target: bool,
    cap: i64,
    channel_id: Option<i64>,
}

/// A recent lead of a task, for the near-duplicate check.
struct Recent {
    id: i64,
    simhash: i64,
    posted_at: i64,
    source: i64,
    message: i64,
}

#[async_trait]
impl LeadStore for PgStore {
    // --- tasks ---

    async fn create_task(
        &self,
        viewer: &Viewer,
        spec: &TaskSpec,
        now: Timestamp,
    ) -> StoreResult<Task> {
        const OP: &str = "create_task";
        viewer.check_manage_tasks()?;
        check_task_spec(spec)?;
        let mut tx = begin(&self.pool, OP).await?;
        check_references(&mut tx, OP, viewer.workspace, spec).await?;
        let (target, chat, bot, peer) = spec.target.columns();
        let (mode, minutes) = spec.mode.columns();
        let row = sqlx::query(&format!(
            "INSERT INTO lead_tasks (workspace_id, name, query, account_id, target, \
                 target_chat_id, target_bot_id, target_peer_id, mode, digest_minutes, \
                 instant_cap_per_minute, ignore_forwards, join_allowed, leave_unused, active, \
                 created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, TRUE, $15, $16, $16) \
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(viewer.workspace.0)
        .bind(clean(&spec.name).as_ref())
        .bind(clean(&spec.query).as_ref())
        .bind(spec.account.0)
        .bind(target)
        .bind(chat)
        .bind(bot)
        .bind(peer)
        .bind(mode)
        .bind(minutes)
        .bind(i32::try_from(spec.instant_cap_per_minute).unwrap_or(i32::MAX))
        .bind(spec.ignore_forwards)
        .bind(spec.join_allowed)
        .bind(spec.leave_unused)
        .bind(viewer.user.0)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .conflict_as(OP, ErrorCode::TaskNameTaken)?;
        let task = read_task(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(task)
    }

    async fn update_task(
        &self,
        viewer: &Viewer,
        task: TaskId,
        spec: &TaskSpec,
        now: Timestamp,
    ) -> StoreResult<Task> {
        const OP: &str = "update_task";
        viewer.check_manage_tasks()?;
        check_task_spec(spec)?;
        let mut tx = begin(&self.pool, OP).await?;
        let current = task_in(&mut *tx, OP, viewer.workspace, task).await?;
        check_references(&mut tx, OP, viewer.workspace, spec).await?;
        let moved = current.account_id != spec.account;
        let refs: Vec<SourceRef> = if moved {
            let sources = sources_of_task(&mut *tx, OP, task).await?;
            sqlx::query("DELETE FROM lead_task_sources WHERE task_id = $1")
                .bind(task.0)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
            sources
                .into_iter()
                .map(|s| SourceRef {
                    kind: s.kind,
                    key: s.key,
                    input: s.input,
                })
                .collect()
        } else {
            Vec::new()
        };
        let (target, chat, bot, peer) = spec.target.columns();
        let (mode, minutes) = spec.mode.columns();
        let row = sqlx::query(&format!(
            "UPDATE lead_tasks SET name = $2, query = $3, account_id = $4, target = $5, \
                 target_chat_id = $6, target_bot_id = $7, target_peer_id = $8, mode = $9, \
                 digest_minutes = $10, instant_cap_per_minute = $11, ignore_forwards = $12, \
                 join_allowed = $13, leave_unused = $14, updated_at = $15 \
             WHERE id = $1 RETURNING {TASK_COLUMNS}"
        ))
        .bind(task.0)
        .bind(clean(&spec.name).as_ref())
        .bind(clean(&spec.query).as_ref())
        .bind(spec.account.0)
        .bind(target)
        .bind(chat)
        .bind(bot)
        .bind(peer)
        .bind(mode)
        .bind(minutes)
        .bind(i32::try_from(spec.instant_cap_per_minute).unwrap_or(i32::MAX))
        .bind(spec.ignore_forwards)
        .bind(spec.join_allowed)
        .bind(spec.leave_unused)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .conflict_as(OP, ErrorCode::TaskNameTaken)?;
        let updated = read_task(OP, &Cols(&row))?;
        if moved {
            link_sources(&mut tx, OP, task, spec.account, &refs, now).await?;
        } else {
            let ids: Vec<i64> = sources_of_task(&mut *tx, OP, task)
                .await?
                .iter()
                .map(|s| s.id.0)
                .collect();
            refresh_leave_allowed(&mut tx, OP, &ids).await?;
        }
        tx.commit().await.store_err(OP)?;
        Ok(updated)
    }

    async fn set_task_active(
        &self,
        viewer: &Viewer,
        task: TaskId,
        active: bool,
        now: Timestamp,
    ) -> StoreResult<Task> {
        const OP: &str = "set_task_active";
        viewer.check_manage_tasks()?;
        let row = sqlx::query(&format!(
            "UPDATE lead_tasks SET active = $1, updated_at = $2 \
             WHERE id = $3 AND workspace_id = $4 RETURNING {TASK_COLUMNS}"
        ))
        .bind(active)
        .bind(now.0)
        .bind(task.0)
        .bind(viewer.workspace.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?
        .ok_or(StoreError::NotFound)?;
        read_task(OP, &Cols(&row))
    }

    async fn delete_task(&self, viewer: &Viewer, task: TaskId) -> StoreResult<()> {
        const OP: &str = "delete_task";
        viewer.check_manage_tasks()?;
        let done = sqlx::query("DELETE FROM lead_tasks WHERE id = $1 AND workspace_id = $2")
            .bind(task.0)
            .bind(viewer.workspace.0)
            .execute(&self.pool)
            .await
            .store_err(OP)?;
        one_row(done.rows_affected())
    }

    async fn get_task(&self, viewer: &Viewer, task: TaskId) -> StoreResult<Task> {
        task_in(&self.pool, "get_task", viewer.workspace, task).await
    }

    async fn list_tasks(&self, viewer: &Viewer) -> StoreResult<Vec<Task>> {
        const OP: &str = "list_tasks";
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM lead_tasks WHERE workspace_id = $1 ORDER BY name, id"
        ))
        .bind(viewer.workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_task(OP, &Cols(r))).collect()
    }

    async fn set_task_sources(
        &self,
        viewer: &Viewer,
        task: TaskId,
        sources: &[SourceRef],
        now: Timestamp,
    ) -> StoreResult<Vec<Source>> {
        const OP: &str = "set_task_sources";
        viewer.check_manage_tasks()?;
        if sources.len() > MAX_TASK_SOURCES {
            return Err(StoreError::Conflict(ErrorCode::TooManySources));
        }
        let mut tx = begin(&self.pool, OP).await?;
        let current = task_in(&mut *tx, OP, viewer.workspace, task).await?;
        link_sources(&mut tx, OP, task, current.account_id, sources, now).await?;
        let linked = sources_of_task(&mut *tx, OP, task).await?;
        tx.commit().await.store_err(OP)?;
        Ok(linked)
    }

    async fn task_sources(&self, viewer: &Viewer, task: TaskId) -> StoreResult<Vec<Source>> {
        const OP: &str = "task_sources";
        let mut tx = begin(&self.pool, OP).await?;
        task_in(&mut *tx, OP, viewer.workspace, task).await?;
        sources_of_task(&mut *tx, OP, task).await
    }

    // --- the monitor ---

    async fn active_tasks(&self) -> StoreResult<Vec<Task>> {
        const OP: &str = "active_tasks";
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM lead_tasks WHERE active ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_task(OP, &Cols(r))).collect()
    }

    async fn watched_sources(&self, account: AccountId) -> StoreResult<Vec<WatchedSource>> {
        const OP: &str = "watched_sources";
        let mut tx = begin(&self.pool, OP).await?;
        let rows = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM lead_sources AS s \
             WHERE s.account_id = $1 AND {ACTIVE_LINK} ORDER BY s.id"
        ))
        .bind(account.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let links: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT l.source_id, l.task_id FROM lead_task_sources AS l \
             JOIN lead_tasks AS t ON t.id = l.task_id \
             WHERE l.account_id = $1 AND t.active ORDER BY l.task_id",
        )
        .bind(account.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let mut tasks: HashMap<i64, Vec<TaskId>> = HashMap::new();
        for (source, task) in links {
            tasks.entry(source).or_default().push(TaskId(task));
        }
        rows.iter()
            .map(|r| {
                let source = read_source(OP, &Cols(r))?;
                let tasks = tasks.remove(&source.id.0).unwrap_or_default();
                Ok(WatchedSource { source, tasks })
            })
            .collect()
    }

    async fn sources_needing_work(
        &self,
        account: AccountId,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Source>> {
        const OP: &str = "sources_needing_work";
        let rows = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM lead_sources AS s \
             WHERE s.account_id = $1 \
               AND (s.state = 'resolving' OR (s.state = 'flood_wait' AND s.wait_until <= $2)) \
               AND {ACTIVE_LINK} \
             ORDER BY s.updated_at, s.id LIMIT $3"
        ))
        .bind(account.0)
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_source(OP, &Cols(r))).collect()
    }

    async fn unused_sources(&self, account: AccountId) -> StoreResult<Vec<Source>> {
        const OP: &str = "unused_sources";
        let rows = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM lead_sources AS s \
             WHERE s.account_id = $1 AND s.state = 'joined' AND s.joined_by_us \
               AND s.leave_allowed AND NOT {ACTIVE_LINK} ORDER BY s.id"
        ))
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_source(OP, &Cols(r))).collect()
    }

    async fn joined_source_count(&self, account: AccountId) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM lead_sources WHERE account_id = $1 AND state = 'joined'",
        )
        .bind(account.0)
        .fetch_one(&self.pool)
        .await
        .store_err("joined_source_count")
    }

    async fn set_source_resolved(
        &self,
        source: SourceId,
        resolved: &ResolvedSource,
        now: Timestamp,
    ) -> StoreResult<Source> {
        const OP: &str = "set_source_resolved";
        if !matches!(resolved.state, SourceState::Joined | SourceState::Polled) {
            return Err(StoreError::Conflict(ErrorCode::SourceStateInvalid));
        }
        let mut tx = begin(&self.pool, OP).await?;
        let this = source_by_id(&mut tx, OP, source.0).await?;
        let twin: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM lead_sources WHERE account_id = $1 AND channel_id = $2 AND id <> $3",
        )
        .bind(this.account_id.0)
        .bind(resolved.channel_id)
        .bind(source.0)
        .fetch_optional(&mut *tx)
        .await
        .store_err(OP)?;
        let target = match twin {
            Some(survivor) => {
                sqlx::query(
                    "INSERT INTO lead_task_sources (task_id, source_id, account_id) \
                     SELECT task_id, $1, account_id FROM lead_task_sources WHERE source_id = $2 \
                     ON CONFLICT DO NOTHING",
                )
                .bind(survivor)
                .bind(source.0)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
                sqlx::query("UPDATE leads SET source_id = $1 WHERE source_id = $2")
                    .bind(survivor)
                    .bind(source.0)
                    .execute(&mut *tx)
                    .await
                    .store_err(OP)?;
                sqlx::query("DELETE FROM lead_sources WHERE id = $1")
                    .bind(source.0)
                    .execute(&mut *tx)
                    .await
                    .store_err(OP)?;
                survivor
            }
            None => source.0,
        };
        sqlx::query(
            "UPDATE lead_sources SET channel_id = $1, access_hash = $2, title = $3, \
                 state = CASE WHEN state = 'joined' AND $4 = 'polled' THEN state ELSE $4 END, \
                 read_via = CASE WHEN state = 'joined' AND $4 = 'polled' THEN read_via \
                     ELSE $5 END, \
                 joined_by_us = (joined_by_us OR $6), wait_until = NULL, \
                 failure = NULL, updated_at = $7 WHERE id = $8",
        )
        .bind(resolved.channel_id)
        .bind(resolved.access_hash)
        .bind(clean(&resolved.title).as_ref())
        .bind(resolved.state.as_str())
        .bind(resolved.read_via.as_str())
        .bind(resolved.joined_by_us)
        .bind(now.0)
        .bind(target)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        refresh_leave_allowed(&mut tx, OP, &[target]).await?;
        let out = source_by_id(&mut tx, OP, target).await?;
        tx.commit().await.store_err(OP)?;
        Ok(out)
    }

    async fn set_source_status(
        &self,
        source: SourceId,
        status: &SourceStatus,
        now: Timestamp,
    ) -> StoreResult<Source> {
        const OP: &str = "set_source_status";
        let (state, wait_until, failure) = match status {
            SourceStatus::Resolving => (SourceState::Resolving, None, None),
            SourceStatus::FloodWait(until) => (SourceState::FloodWait, Some(until.0), None),
            SourceStatus::Failed(reason) => (SourceState::Failed, None, Some(clean(reason))),
            SourceStatus::Left => (SourceState::Left, None, None),
        };
        let row = sqlx::query(&format!(
            "UPDATE lead_sources SET state = $1, wait_until = $2, failure = $3, updated_at = $4 \
             WHERE id = $5 RETURNING {SOURCE_COLUMNS}"
        ))
        .bind(state.as_str())
        .bind(wait_until)
        .bind(failure.as_deref())
        .bind(now.0)
        .bind(source.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_source(OP, &Cols(&row))
    }

    async fn advance_source(
        &self,
        source: SourceId,
        last_message_id: i64,
        pts: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<Source> {
        const OP: &str = "advance_source";
        let row = sqlx::query(&format!(
            "UPDATE lead_sources SET last_message_id = greatest(last_message_id, $1), \
                 pts = coalesce(greatest(pts, $2), $2, pts), \
                 checked_at = $3, updated_at = $3 \
             WHERE id = $4 RETURNING {SOURCE_COLUMNS}"
        ))
        .bind(last_message_id)
        .bind(pts)
        .bind(now.0)
        .bind(source.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_source(OP, &Cols(&row))
    }

    // --- leads ---

    async fn insert_leads(
        &self,
        batch: &[NewLead],
        now: Timestamp,
    ) -> StoreResult<Vec<LeadOutcome>> {
        const OP: &str = "insert_leads";
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = begin(&self.pool, OP).await?;
        // One batch per task at a time: the near-duplicate check reads the task's recent
        // hashes before inserting. In task order, so two batches never wait for each other.
        let mut tasks: Vec<i64> = batch.iter().map(|l| l.task.0).collect();
        tasks.sort_unstable();
        tasks.dedup();
        for task in tasks {
            sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::integer)")
                .bind(LEADS_LOCK_TASK)
                .bind(task)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
        }
        let mut pairs: HashMap<(i64, i64), Pair> = HashMap::new();
        for lead in batch {
            let key = (lead.task.0, lead.source.0);
            if pairs.contains_key(&key) {
                continue;
            }
            let row = sqlx::query(&format!(
                "SELECT t.workspace_id, t.mode, t.instant_cap_per_minute, \
                     {USABLE_TARGET} AS usable, s.channel_id \
                 FROM lead_tasks AS t JOIN lead_sources AS s ON s.account_id = t.account_id \
                 WHERE t.id = $1 AND s.id = $2"
            ))
            .bind(key.0)
            .bind(key.1)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?
            .ok_or(StoreError::NotFound)?;
            let mode: String = row.try_get("mode").store_err(OP)?;
            pairs.insert(
                key,
                Pair {
                    workspace: row.try_get("workspace_id").store_err(OP)?,
                    instant: mode == "instant",
                    usable_target: row.try_get("usable").store_err(OP)?,
                    cap: i64::from(
                        row.try_get::<i32, _>("instant_cap_per_minute")
                            .store_err(OP)?,
                    ),
                    channel_id: row.try_get("channel_id").store_err(OP)?,
                },
            );
        }
        let window = millis(NEAR_DUPLICATE_WINDOW);
        let mut recent: HashMap<i64, Vec<Recent>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for lead in batch {
            let pair = &pairs[&(lead.task.0, lead.source.0)];
            // Remember what this message matched; an edit counts only for what it adds.
            let seen: Option<String> = sqlx::query_scalar(
                "SELECT terms::text FROM lead_matched_terms \
                 WHERE task_id = $1 AND source_id = $2 AND tg_message_id = $3",
            )
            .bind(lead.task.0)
            .bind(lead.source.0)
            .bind(lead.tg_message_id)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?;
            let seen: Vec<String> = match seen {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|_| corrupt(OP, "lead_matched_terms.terms"))?,
                None => Vec::new(),
            };
            let added = new_terms(&seen, &lead.terms);
            if !added.is_empty() {
                let all: Vec<&String> = seen.iter().chain(added.iter()).collect();
                sqlx::query(
                    "INSERT INTO lead_matched_terms (task_id, source_id, tg_message_id, terms, \
                         updated_at) VALUES ($1, $2, $3, $4::jsonb, $5) \
                     ON CONFLICT (task_id, source_id, tg_message_id) DO UPDATE SET \
                         terms = excluded.terms, updated_at = excluded.updated_at",
                )
                .bind(lead.task.0)
                .bind(lead.source.0)
                .bind(lead.tg_message_id)
                .bind(json_text(OP, &serde_json::json!(all))?)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .store_err(OP)?;
            }
            let terms = if lead.revision == 0 {
                lead.terms.clone()
            } else if added.is_empty() {
                outcomes.push(LeadOutcome::Duplicate(Duplicate::NoNewTerms));
                continue;
            } else {
                added
            };
            if lead.revision == 0
                && let Some(hash) = lead.simhash
            {
                if let Entry::Vacant(slot) = recent.entry(lead.task.0) {
                    let (low, high) = batch
                        .iter()
                        .filter(|l| l.task == lead.task)
                        .fold((i64::MAX, i64::MIN), |(lo, hi), l| {
                            (lo.min(l.posted_at.0), hi.max(l.posted_at.0))
                        });
                    let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
                        "SELECT id, simhash, posted_at, source_id, tg_message_id FROM leads \
                         WHERE task_id = $1 AND simhash IS NOT NULL \
                           AND posted_at BETWEEN $2 AND $3 ORDER BY id",
                    )
                    .bind(lead.task.0)
                    .bind(low.saturating_sub(window))
                    .bind(high.saturating_add(window))
                    .fetch_all(&mut *tx)
                    .await
                    .store_err(OP)?;
                    let list = rows
                        .into_iter()
                        .map(|(id, simhash, posted_at, source, message)| Recent {
                            id,
                            simhash,
                            posted_at,
                            source,
                            message,
                        })
                        .collect();
                    slot.insert(list);
                }
                let twin = recent.get(&lead.task.0).and_then(|list| {
                    list.iter().find(|r| {
                        (r.posted_at - lead.posted_at.0).abs() <= window
                            && !(r.source == lead.source.0 && r.message == lead.tg_message_id)
                            && near_duplicate(r.simhash, hash)
                    })
                });
                if let Some(twin) = twin {
                    outcomes.push(LeadOutcome::Duplicate(Duplicate::NearDuplicate(LeadId(
                        twin.id,
                    ))));
                    continue;
                }
            }
            let row = sqlx::query(&format!(
                "INSERT INTO leads (workspace_id, task_id, source_id, tg_message_id, revision, \
                     channel_id, link, author_id, author_name, author_username, text, snippet, \
                     terms, posted_at, fwd_channel_id, fwd_post_id, grouped_id, simhash, \
                     created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, \
                     $16, $17, $18, $19) \
                 ON CONFLICT DO NOTHING RETURNING {LEAD_COLUMNS}"
            ))
            .bind(pair.workspace)
            .bind(lead.task.0)
            .bind(lead.source.0)
            .bind(lead.tg_message_id)
            .bind(lead.revision)
            .bind(pair.channel_id)
            .bind(clean_opt(lead.link.as_deref()).as_deref())
            .bind(lead.author.id)
            .bind(clean_opt(lead.author.name.as_deref()).as_deref())
            .bind(clean_opt(lead.author.username.as_deref()).as_deref())
            .bind(clean(&lead.text).as_ref())
            .bind(clean(&lead.snippet).as_ref())
            .bind(json_text(OP, &serde_json::json!(terms))?)
            .bind(lead.posted_at.0)
            .bind(lead.forward_origin.map(|(c, _)| c))
            .bind(lead.forward_origin.map(|(_, p)| p))
            .bind(lead.grouped_id)
            .bind(lead.simhash)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?;
            let Some(row) = row else {
                outcomes.push(LeadOutcome::Duplicate(
                    duplicate_reason(&mut tx, OP, lead).await?,
                ));
                continue;
            };
            let mut stored = read_lead(OP, &Cols(&row))?;
            if let Some(hash) = lead.simhash {
                recent.entry(lead.task.0).or_default().push(Recent {
                    id: stored.id.0,
                    simhash: hash,
                    posted_at: lead.posted_at.0,
                    source: lead.source.0,
                    message: lead.tg_message_id,
                });
            }
            if pair.instant && pair.usable_target {
                let sent_lately: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM lead_deliveries \
                     WHERE task_id = $1 AND kind = 'instant' AND created_at > $2",
                )
                .bind(lead.task.0)
                .bind(now.0 - millis(INSTANT_CAP_WINDOW))
                .fetch_one(&mut *tx)
                .await
                .store_err(OP)?;
                if sent_lately < pair.cap {
                    let delivery: i64 = sqlx::query_scalar(
                        "INSERT INTO lead_deliveries (task_id, kind, state, next_attempt_at, \
                             random_id, created_at, updated_at) \
                         VALUES ($1, 'instant', 'queued', $2, $3, $2, $2) RETURNING id",
                    )
                    .bind(lead.task.0)
                    .bind(now.0)
                    .bind(lead.random_id)
                    .fetch_one(&mut *tx)
                    .await
                    .store_err(OP)?;
                    sqlx::query("UPDATE leads SET delivery_id = $1 WHERE id = $2")
                        .bind(delivery)
                        .bind(stored.id.0)
                        .execute(&mut *tx)
                        .await
                        .store_err(OP)?;
                    stored.delivery_id = Some(LeadDeliveryId(delivery));
                }
            }
            outcomes.push(LeadOutcome::New(Box::new(stored)));
        }
        tx.commit().await.store_err(OP)?;
        Ok(outcomes)
    }

    async fn list_leads(&self, viewer: &Viewer, filter: &LeadFilter) -> StoreResult<Vec<Lead>> {
        const OP: &str = "list_leads";
        let terms = filter
            .search
            .as_deref()
            .map(search_terms)
            .unwrap_or_default();
        let search = if terms.is_empty() {
            ""
        } else {
            " AND to_tsvector('simple', replace(lower(text), 'ё', 'е')) \
               @@ to_tsquery('simple', $9)"
        };
        let matcher = terms
            .iter()
            .map(|t| format!("{t}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads \
             WHERE workspace_id = $1 AND ($2 IS NULL OR task_id = $2) \
               AND ($3 IS NULL OR source_id = $3) AND ($4 IS NULL OR posted_at >= $4) \
               AND ($5 IS NULL OR posted_at < $5) AND ($6 IS NULL OR read = $6) \
               AND id < $7{search} \
             ORDER BY id DESC LIMIT $8"
        );
        let mut query = sqlx::query(&sql)
            .bind(viewer.workspace.0)
            .bind(filter.task.map(|t| t.0))
            .bind(filter.source.map(|s| s.0))
            .bind(filter.posted_from.map(|t| t.0))
            .bind(filter.posted_to.map(|t| t.0))
            .bind(filter.read)
            .bind(filter.before.map_or(i64::MAX, |l| l.0))
            .bind(i64::from(filter.limit.clamp(1, MAX_LEAD_PAGE)));
        if !terms.is_empty() {
            query = query.bind(matcher);
        }
        let rows = query.fetch_all(&self.pool).await.store_err(OP)?;
        rows.iter().map(|r| read_lead(OP, &Cols(r))).collect()
    }

    async fn get_lead(&self, viewer: &Viewer, lead: LeadId) -> StoreResult<Lead> {
        const OP: &str = "get_lead";
        let row = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(lead.0)
        .bind(viewer.workspace.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?
        .ok_or(StoreError::NotFound)?;
        read_lead(OP, &Cols(&row))
    }

    async fn set_lead_read(&self, viewer: &Viewer, lead: LeadId, read: bool) -> StoreResult<Lead> {
        const OP: &str = "set_lead_read";
        let row = sqlx::query(&format!(
            "UPDATE leads SET read = $1 WHERE id = $2 AND workspace_id = $3 \
             RETURNING {LEAD_COLUMNS}"
        ))
        .bind(read)
        .bind(lead.0)
        .bind(viewer.workspace.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?
        .ok_or(StoreError::NotFound)?;
        read_lead(OP, &Cols(&row))
    }

    async fn mark_all_leads_read(&self, viewer: &Viewer, task: Option<TaskId>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE leads SET read = TRUE \
             WHERE workspace_id = $1 AND NOT read AND ($2 IS NULL OR task_id = $2)",
        )
        .bind(viewer.workspace.0)
        .bind(task.map(|t| t.0))
        .execute(&self.pool)
        .await
        .store_err("mark_all_leads_read")?;
        Ok(done.rows_affected())
    }

    // --- delivery ---

    async fn pending_leads(&self, task: TaskId, limit: u32) -> StoreResult<Vec<Lead>> {
        const OP: &str = "pending_leads";
        let rows = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE task_id = $1 AND delivery_id IS NULL \
             ORDER BY id LIMIT $2"
        ))
        .bind(task.0)
        .bind(i64::from(limit.clamp(1, MAX_LEAD_PAGE)))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_lead(OP, &Cols(r))).collect()
    }

    async fn due_digests(&self, now: Timestamp) -> StoreResult<Vec<TaskId>> {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT t.id FROM lead_tasks AS t \
             WHERE {USABLE_TARGET} \
               AND EXISTS (SELECT 1 FROM leads AS l \
                           WHERE l.task_id = t.id AND l.delivery_id IS NULL) \
               AND coalesce(t.last_digest_at, t.created_at) \
                   + CASE WHEN t.mode = 'digest' THEN t.digest_minutes * 60000 ELSE $2 END <= $1 \
             ORDER BY t.id"
        ))
        .bind(now.0)
        .bind(millis(OVERFLOW_DIGEST_EVERY))
        .fetch_all(&self.pool)
        .await
        .store_err("due_digests")?;
        Ok(ids.into_iter().map(TaskId).collect())
    }

    async fn create_digest(
        &self,
        task: TaskId,
        leads: &[LeadId],
        random_id: i64,
        now: Timestamp,
    ) -> StoreResult<Option<LeadDeliveryId>> {
        const OP: &str = "create_digest";
        let mut tx = begin(&self.pool, OP).await?;
        let delivery: i64 = sqlx::query_scalar(
            "INSERT INTO lead_deliveries (task_id, kind, state, next_attempt_at, random_id, \
                 created_at, updated_at) VALUES ($1, 'digest', 'queued', $2, $3, $2, $2) \
             RETURNING id",
        )
        .bind(task.0)
        .bind(now.0)
        .bind(random_id)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let taken = sqlx::query(
            "UPDATE leads SET delivery_id = $1 WHERE task_id = $2 AND delivery_id IS NULL \
                 AND id = ANY($3)",
        )
        .bind(delivery)
        .bind(task.0)
        .bind(leads.iter().map(|l| l.0).collect::<Vec<i64>>())
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        if taken.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("UPDATE lead_tasks SET last_digest_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(task.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        tx.commit().await.store_err(OP)?;
        Ok(Some(LeadDeliveryId(delivery)))
    }

    async fn claim_lead_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<LeadDeliveryItem>> {
        const OP: &str = "claim_lead_deliveries";
        let mut tx = begin(&self.pool, OP).await?;
        let rows = sqlx::query(
            "UPDATE lead_deliveries SET state = 'sending', attempts = attempts + 1, \
                 updated_at = $1 \
             WHERE id IN ( \
                 SELECT d.id FROM lead_deliveries AS d \
                 WHERE d.state = 'queued' AND d.next_attempt_at <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM lead_deliveries AS e \
                                   WHERE e.task_id = d.task_id \
                                     AND e.state IN ('queued', 'sending') AND e.id < d.id) \
                 ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, task_id, kind, attempts, random_id",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id").store_err(OP)?;
            let task_id: i64 = row.try_get("task_id").store_err(OP)?;
            let kind: String = row.try_get("kind").store_err(OP)?;
            let task = sqlx::query(&format!(
                "SELECT {TASK_COLUMNS} FROM lead_tasks WHERE id = $1"
            ))
            .bind(task_id)
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
            let leads = sqlx::query(&format!(
                "SELECT {LEAD_COLUMNS} FROM leads WHERE delivery_id = $1 ORDER BY id"
            ))
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .store_err(OP)?;
            items.push(LeadDeliveryItem {
                id: LeadDeliveryId(id),
                kind: parse_column::<LeadDeliveryKind>(&kind, "lead_deliveries.kind")
                    .map_err(|c| corrupt(OP, c))?,
                task: read_task(OP, &Cols(&task))?,
                leads: leads
                    .iter()
                    .map(|r| read_lead(OP, &Cols(r)))
                    .collect::<StoreResult<_>>()?,
                attempts: row.try_get("attempts").store_err(OP)?,
                random_id: row.try_get("random_id").store_err(OP)?,
            });
        }
        tx.commit().await.store_err(OP)?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn complete_lead_delivery(
        &self,
        delivery: LeadDeliveryId,
        tg_message_id: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE lead_deliveries SET state = 'sent', tg_message_id = $1, last_error = NULL, \
                 updated_at = $2 WHERE id = $3",
        )
        .bind(tg_message_id)
        .bind(now.0)
        .bind(delivery.0)
        .execute(&self.pool)
        .await
        .store_err("complete_lead_delivery")?;
        one_row(done.rows_affected())
    }

    async fn fail_lead_delivery(
        &self,
        delivery: LeadDeliveryId,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let state = if retry_at.is_some() {
            "queued"
        } else {
            "failed"
        };
        let done = sqlx::query(
            "UPDATE lead_deliveries SET state = $1, last_error = $2, \
                 next_attempt_at = coalesce($3, next_attempt_at), updated_at = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(clean(error).as_ref())
        .bind(retry_at.map(|t| t.0))
        .bind(now.0)
        .bind(delivery.0)
        .execute(&self.pool)
        .await
        .store_err("fail_lead_delivery")?;
        one_row(done.rows_affected())
    }

    async fn recover_lead_deliveries(
        &self,
        stuck_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<RecoveredDelivery>> {
        const OP: &str = "recover_lead_deliveries";
        let mut tx = begin(&self.pool, OP).await?;
        let requeued: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE lead_deliveries SET state = 'queued', next_attempt_at = $1, updated_at = $1 \
             WHERE state = 'sending' AND updated_at <= $2 \
               AND task_id IN (SELECT id FROM lead_tasks WHERE target = 'saved_messages' \
                   OR target_chat_id IN (SELECT id FROM chats WHERE account_id IS NOT NULL)) \
             RETURNING id, task_id",
        )
        .bind(now.0)
        .bind(stuck_since.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let failed: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE lead_deliveries SET state = 'failed', last_error = $3, updated_at = $1 \
             WHERE state = 'sending' AND updated_at <= $2 RETURNING id, task_id",
        )
        .bind(now.0)
        .bind(stuck_since.0)
        .bind(SEND_UNCERTAIN)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        tx.commit().await.store_err(OP)?;
        let mut out: Vec<RecoveredDelivery> = requeued
            .into_iter()
            .map(|r| (r, "queued"))
            .chain(failed.into_iter().map(|r| (r, "failed")))
            .map(|((id, task), state)| RecoveredDelivery {
                id: LeadDeliveryId(id),
                task: TaskId(task),
                state: state.to_string(),
            })
            .collect();
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    async fn next_lead_delivery_due(&self) -> StoreResult<Option<Timestamp>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(next_attempt_at) FROM lead_deliveries WHERE state = 'queued'",
        )
        .fetch_one(&self.pool)
        .await
        .store_err("next_lead_delivery_due")?;
        Ok(due.map(Timestamp))
    }

    async fn prune_matched_terms(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM lead_matched_terms WHERE updated_at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await
            .store_err("prune_matched_terms")?;
        Ok(done.rows_affected())
    }
}

/// Which rule dropped a lead the insert ignored: the same message, the same album, else the
/// same original post.
async fn duplicate_reason(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    lead: &NewLead,
) -> StoreResult<Duplicate> {
    let same_message: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM leads WHERE task_id = $1 AND source_id = $2 AND tg_message_id = $3 \
             AND revision = $4",
    )
    .bind(lead.task.0)
    .bind(lead.source.0)
    .bind(lead.tg_message_id)
    .bind(lead.revision)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)?;
    if same_message.is_some() {
        return Ok(Duplicate::Message);
    }
    if let Some(group) = lead.grouped_id {
        let same_album: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM leads WHERE task_id = $1 AND source_id = $2 AND grouped_id = $3 \
                 AND revision = $4",
        )
        .bind(lead.task.0)
        .bind(lead.source.0)
        .bind(group)
        .bind(lead.revision)
        .fetch_optional(&mut **tx)
        .await
        .store_err(op)?;
        if same_album.is_some() {
            return Ok(Duplicate::Album);
        }
    }
    Ok(Duplicate::Origin)
}
