//! The SQL of the [`InboxStore`] port on PostgreSQL: bots and their raw updates, the inbox scoped
//! by the viewer, assignment, and the outbox. Visibility is part of every query: parameters `$1`
//! (workspace), `$2` (true for admins) and `$3` (the viewer's user id) feed [`SCOPE`]. Writes
//! lock the chat row they check (`FOR UPDATE`), so a concurrent reassignment is seen before the
//! write, and senders claim outbox items with `FOR UPDATE SKIP LOCKED`.

use crate::PgStore;
use crate::error::ResultExt;
use crate::ingest::ingest_in;
use crate::rows::{C_CHAT_COLUMNS, CHAT_COLUMNS, Cols, M_MESSAGE_COLUMNS, MESSAGE_COLUMNS};
use crate::sql::begin;
use async_trait::async_trait;
use sqlx::error::ErrorKind;
use sqlx::{Acquire, Postgres, Row, Transaction};
use switchboard_domain::ErrorCode;
use switchboard_domain::nul::clean;
use switchboard_domain::rows::{
    json_nullable, json_text, one_row, read_bot, read_chat, read_message,
};
use switchboard_domain::{
    AssigneeFilter, Bot, BotId, BotStatus, Chat, ChatFilter, ChatId, ChatOwner, ChatStatus, Entity,
    InboxStore, IncomingMessage, IngestOutcome, Media, Message, MessageEdit, MessageId, NewBot,
    NewReply, NewUpload, OperatorLoad, OutboxId, OutboxItem, RecoveredReply, SEND_UNCERTAIN,
    StoreError, StoreResult, Timestamp, UserId, Viewer, WorkspaceId, check_mark_sent, check_retry,
    stored_updates,
};

const BOT_COLUMNS: &str = "id, workspace_id, telegram_bot_id, username, first_name, mode, status, \
     status_detail, active, hook_id, token_sealed, hook_secret_sealed, last_update_id, created_at";

/// The viewer's visibility rule on the chats aliased `c`.
const SCOPE: &str = "c.workspace_id = $1 AND ($2 OR c.assignee_id IS NULL OR c.assignee_id = $3)";

/// Largest page of chats or messages.
const MAX_PAGE: u32 = 200;

/// How often `complete_outbox` retries when a concurrent ingestion stores the echo of the sent
/// message between its delete and its update.
const ECHO_RACE_TRIES: usize = 3;

fn scope_args(viewer: &Viewer) -> (i64, bool, i64) {
    (viewer.workspace.0, viewer.role.is_admin(), viewer.user.0)
}

/// Reads and locks the chat `chat` if the viewer may see it, inside `tx`.
async fn lock_visible_chat(
    tx: &mut Transaction<'static, Postgres>,
    op: &'static str,
    viewer: &Viewer,
    chat: ChatId,
) -> StoreResult<Chat> {
    let (ws, admin, user) = scope_args(viewer);
    let row = sqlx::query(&format!(
        "SELECT {C_CHAT_COLUMNS} FROM chats AS c WHERE {SCOPE} AND c.id = $4 FOR UPDATE"
    ))
    .bind(ws)
    .bind(admin)
    .bind(user)
    .bind(chat.0)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_chat(op, &Cols(&row))
}

/// Reads a chat the viewer may see, without locking it.
async fn visible_chat<'e, E>(
    executor: E,
    op: &'static str,
    viewer: &Viewer,
    chat: ChatId,
) -> StoreResult<Chat>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let (ws, admin, user) = scope_args(viewer);
    let row = sqlx::query(&format!(
        "SELECT {C_CHAT_COLUMNS} FROM chats AS c WHERE {SCOPE} AND c.id = $4"
    ))
    .bind(ws)
    .bind(admin)
    .bind(user)
    .bind(chat.0)
    .fetch_optional(executor)
    .await
    .store_err(op)?
    .ok_or(StoreError::NotFound)?;
    read_chat(op, &Cols(&row))
}

/// Updates one chat with `set` (its parameters start at `$2`; `$1` is the chat) and returns it.
fn update_chat(set: &str) -> String {
    format!("UPDATE chats SET {set} WHERE id = $1 RETURNING {CHAT_COLUMNS}")
}

#[async_trait]
impl InboxStore for PgStore {
    // --- bots ---

    async fn create_bot(&self, bot: &NewBot, now: Timestamp) -> StoreResult<Bot> {
        const OP: &str = "create_bot";
        let row = sqlx::query(&format!(
            "INSERT INTO bots (workspace_id, telegram_bot_id, username, first_name, mode, status, \
                 hook_id, token_sealed, hook_secret_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'connecting', $6, $7, $8, $9, $9) \
             RETURNING {BOT_COLUMNS}"
        ))
        .bind(bot.workspace_id.0)
        .bind(bot.telegram_bot_id)
        .bind(clean(&bot.username).as_ref())
        .bind(clean(&bot.first_name).as_ref())
        .bind(bot.mode.as_str())
        .bind(&bot.hook_id)
        .bind(&bot.token_sealed)
        .bind(&bot.hook_secret_sealed)
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .conflict_as(OP, ErrorCode::BotExists)?;
        read_bot(OP, &Cols(&row))
    }

    async fn get_bot(&self, workspace: WorkspaceId, id: BotId) -> StoreResult<Bot> {
        const OP: &str = "get_bot";
        let row = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM bots WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id.0)
        .bind(workspace.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_bot(OP, &Cols(&row))
    }

    async fn load_bot(&self, id: BotId) -> StoreResult<Bot> {
        const OP: &str = "load_bot";
        let row = sqlx::query(&format!("SELECT {BOT_COLUMNS} FROM bots WHERE id = $1"))
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .store_err(OP)?;
        read_bot(OP, &Cols(&row))
    }

    async fn find_bot_by_hook(&self, hook_id: &str) -> StoreResult<Option<Bot>> {
        const OP: &str = "find_bot_by_hook";
        let row = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM bots WHERE hook_id = $1"
        ))
        .bind(hook_id)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_bot(OP, &Cols(&r))).transpose()
    }

    async fn list_bots(&self, workspace: WorkspaceId) -> StoreResult<Vec<Bot>> {
        const OP: &str = "list_bots";
        let rows = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM bots WHERE workspace_id = $1 ORDER BY id"
        ))
        .bind(workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_bot(OP, &Cols(r))).collect()
    }

    async fn list_active_bots(&self) -> StoreResult<Vec<Bot>> {
        const OP: &str = "list_active_bots";
        let rows = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM bots WHERE active ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_bot(OP, &Cols(r))).collect()
    }

    async fn set_bot_status(
        &self,
        id: BotId,
        status: BotStatus,
        detail: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE bots SET status = $1, status_detail = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(detail.map(clean).as_deref())
        .bind(now.0)
        .bind(id.0)
        .execute(&self.pool)
        .await
        .store_err("set_bot_status")?;
        one_row(done.rows_affected())
    }

    async fn set_bot_active(&self, id: BotId, active: bool, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query("UPDATE bots SET active = $1, updated_at = $2 WHERE id = $3")
            .bind(active)
            .bind(now.0)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .store_err("set_bot_active")?;
        one_row(done.rows_affected())
    }

    async fn delete_bot(&self, workspace: WorkspaceId, id: BotId) -> StoreResult<()> {
        // Updates, chats, messages and outbox items go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM bots WHERE id = $1 AND workspace_id = $2")
            .bind(id.0)
            .bind(workspace.0)
            .execute(&self.pool)
            .await
            .store_err("delete_bot")?;
        one_row(done.rows_affected())
    }

    async fn store_bot_updates(
        &self,
        bot: BotId,
        updates: &[(i64, String)],
        now: Timestamp,
    ) -> StoreResult<usize> {
        const OP: &str = "store_bot_updates";
        if updates.is_empty() {
            return Ok(0);
        }
        let updates = stored_updates(updates)
            .map_err(|_| StoreError::Backend(format!("{OP}: an update is not JSON")))?;
        let mut tx = begin(&self.pool, OP).await?;
        // The bot row first: concurrent batches of one bot queue here, and a missing bot is
        // `NotFound` before anything is written.
        let done = sqlx::query(
            "UPDATE bots SET last_update_id = GREATEST(last_update_id, $1) WHERE id = $2",
        )
        .bind(updates.iter().map(|(id, _)| *id).max())
        .bind(bot.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        one_row(done.rows_affected())?;
        let done = sqlx::query(
            "INSERT INTO bot_updates (bot_id, update_id, payload, received_at) \
             SELECT $1, u.update_id, u.payload::jsonb, $2 \
             FROM UNNEST($3::bigint[], $4::text[]) AS u(update_id, payload) \
             ON CONFLICT (bot_id, update_id) DO NOTHING",
        )
        .bind(bot.0)
        .bind(now.0)
        .bind(updates.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        tx.commit().await.store_err(OP)?;
        usize::try_from(done.rows_affected())
            .map_err(|_| StoreError::Backend(format!("{OP}: too many rows")))
    }

    async fn pending_bot_updates(&self, bot: BotId, limit: u32) -> StoreResult<Vec<(i64, String)>> {
        const OP: &str = "pending_bot_updates";
        sqlx::query_as(
            "SELECT update_id, payload::text FROM bot_updates \
             WHERE bot_id = $1 AND processed_at IS NULL ORDER BY update_id LIMIT $2",
        )
        .bind(bot.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)
    }

    async fn messages_missing_files(
        &self,
        owner: ChatOwner,
        stored_before: Timestamp,
        after: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        const OP: &str = "messages_missing_files";
        let (owner_col, owner_id) = match owner {
            ChatOwner::Account(a) => ("c.account_id", a.0),
            ChatOwner::Bot(b) => ("c.bot_id", b.0),
        };
        let rows = sqlx::query(&format!(
            "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
             WHERE {owner_col} = $1 AND m.id > $2 AND m.created_at < $4 \
               AND m.tg_message_id IS NOT NULL \
               AND NOT m.deleted \
               AND (m.media ? 'id' OR m.media ? 'tg_file_id') \
               AND NOT (m.media ? 'file_id') AND NOT (m.media ? 'too_large') \
             ORDER BY m.id LIMIT $3"
        ))
        .bind(owner_id)
        .bind(after.map_or(0, |m| m.0))
        .bind(i64::from(limit))
        .bind(stored_before.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_message(OP, &Cols(r))).collect()
    }

    async fn set_bot_message_media(
        &self,
        bot: BotId,
        message: MessageId,
        media: &Media,
    ) -> StoreResult<Option<Message>> {
        const OP: &str = "set_bot_message_media";
        let row = sqlx::query(&format!(
            "UPDATE messages SET media = $1::jsonb WHERE id = $2 \
             AND chat_id IN (SELECT id FROM chats WHERE bot_id = $3) RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(json_text(OP, media)?)
        .bind(message.0)
        .bind(bot.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_message(OP, &Cols(&r))).transpose()
    }

    async fn apply_bot_message_edit(
        &self,
        bot: BotId,
        peer_id: i64,
        tg_message_id: i64,
        new_text: &str,
        entities: &[Entity],
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        crate::ingest::apply_edit(
            &self.pool,
            "apply_bot_message_edit",
            ChatOwner::Bot(bot),
            (peer_id, tg_message_id),
            new_text,
            entities,
            edited_at,
        )
        .await
    }

    async fn ingest_bot_messages(
        &self,
        bot: BotId,
        batch: &[IncomingMessage],
        processed: &[i64],
        now: Timestamp,
    ) -> StoreResult<IngestOutcome> {
        const OP: &str = "ingest_bot_messages";
        // The raw updates were stored durably first; if this commit is lost they are still
        // pending and are processed again.
        let mut tx = crate::sql::begin_relaxed(&self.pool, OP).await?;
        let outcome = ingest_in(&mut tx, ChatOwner::Bot(bot), batch, now).await?;
        if !processed.is_empty() {
            sqlx::query(
                "UPDATE bot_updates SET processed_at = $1 \
                 WHERE bot_id = $2 AND update_id = ANY($3) AND processed_at IS NULL",
            )
            .bind(now.0)
            .bind(bot.0)
            .bind(processed)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        }
        tx.commit().await.store_err(OP)?;
        Ok(outcome)
    }

    // --- the inbox ---

    async fn list_inbox(&self, viewer: &Viewer, filter: &ChatFilter) -> StoreResult<Vec<Chat>> {
        const OP: &str = "list_inbox";
        let (ws, admin, user) = scope_args(viewer);
        let assignee = match filter.assignee {
            AssigneeFilter::All => "",
            AssigneeFilter::Mine => " AND c.assignee_id = $3",
            AssigneeFilter::Unassigned => " AND c.assignee_id IS NULL",
        };
        let (before_at, before_id) = filter
            .before
            .map_or((i64::MAX, i64::MAX), |(at, id)| (at.0, id.0));
        let rows = sqlx::query(&format!(
            "SELECT {C_CHAT_COLUMNS} FROM chats AS c \
             WHERE {SCOPE}{assignee} \
               AND ($4::text IS NULL OR c.status = $4) \
               AND ($5::bigint IS NULL OR c.account_id = $5) \
               AND ($6::bigint IS NULL OR c.bot_id = $6) \
               AND (coalesce(c.last_message_at, 0), c.id) < ($7, $8) \
             ORDER BY coalesce(c.last_message_at, 0) DESC, c.id DESC LIMIT $9"
        ))
        .bind(ws)
        .bind(admin)
        .bind(user)
        .bind(filter.status.map(ChatStatus::as_str))
        .bind(filter.account.map(|a| a.0))
        .bind(filter.bot.map(|b| b.0))
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(filter.limit.clamp(1, MAX_PAGE)))
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter().map(|r| read_chat(OP, &Cols(r))).collect()
    }

    async fn get_chat(&self, viewer: &Viewer, chat: ChatId) -> StoreResult<Chat> {
        visible_chat(&self.pool, "get_chat", viewer, chat).await
    }

    async fn chat_messages(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        const OP: &str = "chat_messages";
        // One snapshot: the chat is visible and its messages are read together.
        let mut tx = begin(&self.pool, OP).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
        let chat = visible_chat(&mut *tx, OP, viewer, chat).await?;
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(chat.id.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        tx.commit().await.store_err(OP)?;
        rows.iter().map(|r| read_message(OP, &Cols(r))).collect()
    }

    async fn get_message(&self, viewer: &Viewer, message: MessageId) -> StoreResult<Message> {
        const OP: &str = "get_message";
        let (ws, admin, user) = scope_args(viewer);
        let row = sqlx::query(&format!(
            "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
             WHERE {SCOPE} AND m.id = $4"
        ))
        .bind(ws)
        .bind(admin)
        .bind(user)
        .bind(message.0)
        .fetch_one(&self.pool)
        .await
        .store_err(OP)?;
        read_message(OP, &Cols(&row))
    }

    async fn message_history(
        &self,
        viewer: &Viewer,
        message: MessageId,
    ) -> StoreResult<Vec<MessageEdit>> {
        const OP: &str = "message_history";
        let (ws, admin, user) = scope_args(viewer);
        // The message itself (LEFT JOIN), so a visible message without edits is an empty
        // history and an invisible one is `NotFound`.
        let rows = sqlx::query(&format!(
            "SELECT m.id AS message_id, e.old_text, e.edited_at \
             FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
             LEFT JOIN message_edits AS e ON e.message_id = m.id \
             WHERE {SCOPE} AND m.id = $4 ORDER BY e.id"
        ))
        .bind(ws)
        .bind(admin)
        .bind(user)
        .bind(message.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut edits = Vec::with_capacity(rows.len());
        for r in &rows {
            let old_text: Option<String> = r.try_get("old_text").store_err(OP)?;
            let edited_at: Option<i64> = r.try_get("edited_at").store_err(OP)?;
            if let (Some(old_text), Some(edited_at)) = (old_text, edited_at) {
                edits.push(MessageEdit {
                    message_id: MessageId(r.try_get("message_id").store_err(OP)?),
                    old_text,
                    edited_at: Timestamp(edited_at),
                });
            }
        }
        Ok(edits)
    }

    async fn mark_chat_read(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        now: Timestamp,
    ) -> StoreResult<(Chat, Option<i64>)> {
        const OP: &str = "mark_chat_read";
        let mut tx = begin(&self.pool, OP).await?;
        let chat = lock_visible_chat(&mut tx, OP, viewer, chat).await?;
        if chat.unread_count == 0 {
            return Ok((chat, None));
        }
        let newest: Option<i64> = sqlx::query_scalar(
            "SELECT max(tg_message_id) FROM messages WHERE chat_id = $1 AND direction = 'in'",
        )
        .bind(chat.id.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let row = sqlx::query(&update_chat("unread_count = 0, updated_at = $2"))
            .bind(chat.id.0)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
        let chat = read_chat(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok((chat, newest))
    }

    async fn set_chat_status(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        status: ChatStatus,
        now: Timestamp,
    ) -> StoreResult<Chat> {
        const OP: &str = "set_chat_status";
        let mut tx = begin(&self.pool, OP).await?;
        let chat = lock_visible_chat(&mut tx, OP, viewer, chat).await?;
        let row = sqlx::query(&update_chat("status = $2, updated_at = $3"))
            .bind(chat.id.0)
            .bind(status.as_str())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
        let chat = read_chat(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(chat)
    }

    async fn assign_chat(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        assignee: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<Chat> {
        const OP: &str = "assign_chat";
        let mut tx = begin(&self.pool, OP).await?;
        let current = lock_visible_chat(&mut tx, OP, viewer, chat).await?;
        viewer.check_assignment(current.assignee_id, assignee)?;
        if let Some(user) = assignee {
            let member: Option<i64> = sqlx::query_scalar(
                "SELECT user_id FROM memberships WHERE workspace_id = $1 AND user_id = $2",
            )
            .bind(viewer.workspace.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?;
            if member.is_none() {
                return Err(StoreError::Conflict(ErrorCode::NotAMember));
            }
        }
        let row = sqlx::query(&update_chat("assignee_id = $2, updated_at = $3"))
            .bind(current.id.0)
            .bind(assignee.map(|u| u.0))
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .store_err(OP)?;
        let chat = read_chat(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(chat)
    }

    async fn auto_assign_chat(
        &self,
        chat: ChatId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<Chat>> {
        const OP: &str = "auto_assign_chat";
        let row = sqlx::query(&format!(
            "UPDATE chats SET assignee_id = $1, updated_at = $2 \
             WHERE id = $3 AND assignee_id IS NULL \
               AND EXISTS (SELECT 1 FROM memberships AS m \
                           WHERE m.workspace_id = chats.workspace_id AND m.user_id = $1) \
             RETURNING {CHAT_COLUMNS}"
        ))
        .bind(user.0)
        .bind(now.0)
        .bind(chat.0)
        .fetch_optional(&self.pool)
        .await
        .store_err(OP)?;
        row.map(|r| read_chat(OP, &Cols(&r))).transpose()
    }

    async fn operator_loads(&self, workspace: WorkspaceId) -> StoreResult<Vec<OperatorLoad>> {
        const OP: &str = "operator_loads";
        let rows = sqlx::query(
            "SELECT m.user_id, m.max_chats, \
                 (SELECT count(*) FROM chats AS c WHERE c.workspace_id = m.workspace_id \
                    AND c.assignee_id = m.user_id AND c.status <> 'resolved') AS open_chats \
             FROM memberships AS m JOIN users AS u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 AND m.role = 'operator' AND NOT u.disabled \
             ORDER BY m.user_id",
        )
        .bind(workspace.0)
        .fetch_all(&self.pool)
        .await
        .store_err(OP)?;
        rows.iter()
            .map(|r| {
                let open: i64 = r.try_get("open_chats")?;
                Ok(OperatorLoad {
                    user: UserId(r.try_get("user_id")?),
                    max_chats: r.try_get("max_chats")?,
                    open_chats: i32::try_from(open).unwrap_or(i32::MAX),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .store_err(OP)
    }

    // --- the outbox ---

    async fn record_upload(&self, upload: &NewUpload, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (workspace_id, file_id, size, mime_type, uploaded_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, file_id) DO NOTHING",
        )
        .bind(upload.workspace.0)
        .bind(&upload.file_id)
        .bind(upload.size)
        .bind(&upload.mime_type)
        .bind(upload.uploaded_by.0)
        .bind(now.0)
        .execute(&self.pool)
        .await
        .store_err("record_upload")?;
        Ok(())
    }

    async fn enqueue_reply(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        reply: &NewReply,
        now: Timestamp,
    ) -> StoreResult<(Message, Chat)> {
        const OP: &str = "enqueue_reply";
        let mut tx = begin(&self.pool, OP).await?;
        let current = lock_visible_chat(&mut tx, OP, viewer, chat).await?;
        if let Some(file) = reply.attachment_file() {
            let owned: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM uploads WHERE workspace_id = $1 AND file_id = $2",
            )
            .bind(viewer.workspace.0)
            .bind(file)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?;
            if owned.is_none() {
                return Err(StoreError::Conflict(ErrorCode::FileNotFound));
            }
        }
        let take = viewer.reply_takes_chat(current.assignee_id);
        let row = sqlx::query(&format!(
            "INSERT INTO messages (chat_id, direction, text, entities, media, reply_to_tg_id, \
                 sent_at, created_at, status, author_id) \
             VALUES ($1, 'out', $2, $3::jsonb, $4::jsonb, $5, $6, $6, 'queued', $7) \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(current.id.0)
        .bind(clean(&reply.text).as_ref())
        .bind(json_text(OP, &reply.entities)?)
        .bind(json_nullable(OP, reply.media.as_ref())?)
        .bind(reply.reply_to_tg_id)
        .bind(now.0)
        .bind(viewer.user.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let message = read_message(OP, &Cols(&row))?;
        sqlx::query(
            "INSERT INTO outbox (message_id, chat_id, state, next_attempt_at, random_id, \
                 created_at, updated_at) \
             VALUES ($1, $2, 'queued', $3, $4, $3, $3)",
        )
        .bind(message.id.0)
        .bind(current.id.0)
        .bind(now.0)
        .bind(reply.random_id)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        let row = sqlx::query(&update_chat(
            "last_message_at = GREATEST(last_message_at, $2), \
             assignee_id = CASE WHEN $3 THEN $4 ELSE assignee_id END, updated_at = $2",
        ))
        .bind(current.id.0)
        .bind(now.0)
        .bind(take)
        .bind(viewer.user.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let chat = read_chat(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok((message, chat))
    }

    async fn retry_reply(
        &self,
        viewer: &Viewer,
        message: MessageId,
        now: Timestamp,
    ) -> StoreResult<Message> {
        const OP: &str = "retry_reply";
        let mut tx = begin(&self.pool, OP).await?;
        let state = outbox_state(&mut tx, OP, viewer, message).await?;
        let refused = check_retry(state.as_ref().map(|(s, e)| (s.as_str(), e.as_deref()))).err();
        let mut tx = refuse(tx, OP, refused).await?;
        sqlx::query(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $1, \
                 last_error = NULL, updated_at = $1 WHERE message_id = $2",
        )
        .bind(now.0)
        .bind(message.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        let row = sqlx::query(&format!(
            "UPDATE messages SET status = 'queued', error = NULL WHERE id = $1 \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(message.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let message = read_message(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(message)
    }

    async fn mark_reply_sent(
        &self,
        viewer: &Viewer,
        message: MessageId,
        now: Timestamp,
    ) -> StoreResult<Message> {
        const OP: &str = "mark_reply_sent";
        let mut tx = begin(&self.pool, OP).await?;
        let state = outbox_state(&mut tx, OP, viewer, message).await?;
        let refused =
            check_mark_sent(state.as_ref().map(|(s, e)| (s.as_str(), e.as_deref()))).err();
        let mut tx = refuse(tx, OP, refused).await?;
        sqlx::query(
            "UPDATE outbox SET state = 'sent', last_error = NULL, updated_at = $1 \
             WHERE message_id = $2",
        )
        .bind(now.0)
        .bind(message.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
        let row = sqlx::query(&format!(
            "UPDATE messages SET status = 'sent', error = NULL WHERE id = $1 \
             RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(message.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let message = read_message(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(message)
    }

    async fn claim_outbox(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<OutboxItem>> {
        const OP: &str = "claim_outbox";
        let mut tx = begin(&self.pool, OP).await?;
        // Only the oldest unsent item of each chat is due: replies leave in the order written.
        // An item another sender holds is skipped, never waited for or claimed twice: the lock
        // re-checks `state` on the newest row version once the holder commits.
        let rows = sqlx::query(
            "WITH due AS ( \
                 SELECT o.id FROM outbox AS o \
                 WHERE o.state = 'queued' AND o.next_attempt_at <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.chat_id = o.chat_id \
                                   AND e.state IN ('queued', 'sending') AND e.id < o.id) \
                 ORDER BY o.next_attempt_at, o.id LIMIT $2 \
                 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE outbox AS o SET state = 'sending', attempts = o.attempts + 1, updated_at = $1 \
             FROM due WHERE o.id = due.id \
             RETURNING o.id, o.message_id, o.chat_id, o.attempts, o.random_id",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let message_ids = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("message_id"))
            .collect::<Result<Vec<_>, _>>()
            .store_err(OP)?;
        let chat_ids = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("chat_id"))
            .collect::<Result<Vec<_>, _>>()
            .store_err(OP)?;
        let messages = sqlx::query(&format!(
            "UPDATE messages SET status = 'sending' WHERE id = ANY($1) RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(&message_ids)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?
        .iter()
        .map(|r| read_message(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
        let chats = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats WHERE id = ANY($1)"
        ))
        .bind(&chat_ids)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?
        .iter()
        .map(|r| read_chat(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let message_id = MessageId(row.try_get("message_id").store_err(OP)?);
            let chat_id = ChatId(row.try_get("chat_id").store_err(OP)?);
            let missing = || StoreError::Backend(format!("{OP}: a claimed row went missing"));
            items.push(OutboxItem {
                id: OutboxId(row.try_get("id").store_err(OP)?),
                message: messages
                    .iter()
                    .find(|m| m.id == message_id)
                    .cloned()
                    .ok_or_else(missing)?,
                chat: chats
                    .iter()
                    .find(|c| c.id == chat_id)
                    .cloned()
                    .ok_or_else(missing)?,
                attempts: row.try_get("attempts").store_err(OP)?,
                random_id: row.try_get("random_id").store_err(OP)?,
            });
        }
        tx.commit().await.store_err(OP)?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn complete_outbox(
        &self,
        item: OutboxId,
        tg_message_id: i64,
        sent_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<(Message, Option<MessageId>)> {
        const OP: &str = "complete_outbox";
        let mut tx = begin(&self.pool, OP).await?;
        let row = sqlx::query(
            "UPDATE outbox SET state = 'sent', last_error = NULL, updated_at = $1 WHERE id = $2 \
             RETURNING message_id, chat_id",
        )
        .bind(now.0)
        .bind(item.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let message_id: i64 = row.try_get("message_id").store_err(OP)?;
        let chat_id: i64 = row.try_get("chat_id").store_err(OP)?;
        // Telegram may already have delivered the sent message back as an update. If a
        // concurrent ingestion stores that echo after the delete, the update waits for it and
        // then violates the unique rule: roll back to the savepoint and delete again.
        for _ in 0..ECHO_RACE_TRIES {
            let mut attempt = tx.begin().await.store_err(OP)?;
            let echo: Option<i64> = sqlx::query_scalar(
                "DELETE FROM messages WHERE chat_id = $1 AND tg_message_id = $2 AND id <> $3 \
                 RETURNING id",
            )
            .bind(chat_id)
            .bind(tg_message_id)
            .bind(message_id)
            .fetch_optional(&mut *attempt)
            .await
            .store_err(OP)?;
            let updated = sqlx::query(&format!(
                "UPDATE messages SET tg_message_id = $1, status = 'sent', error = NULL, \
                     sent_at = $2 \
                 WHERE id = $3 RETURNING {MESSAGE_COLUMNS}"
            ))
            .bind(tg_message_id)
            .bind(sent_at.0)
            .bind(message_id)
            .fetch_one(&mut *attempt)
            .await;
            let row = match updated {
                Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {
                    attempt.rollback().await.store_err(OP)?;
                    continue;
                }
                other => other.store_err(OP)?,
            };
            let message = read_message(OP, &Cols(&row))?;
            attempt.commit().await.store_err(OP)?;
            tx.commit().await.store_err(OP)?;
            return Ok((message, echo.map(MessageId)));
        }
        Err(StoreError::Backend(format!(
            "{OP}: the echo of the sent message kept reappearing"
        )))
    }

    async fn fail_outbox(
        &self,
        item: OutboxId,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Message> {
        const OP: &str = "fail_outbox";
        let state = if retry_at.is_some() {
            "queued"
        } else {
            "failed"
        };
        let error = clean(error);
        let mut tx = begin(&self.pool, OP).await?;
        let message_id: i64 = sqlx::query_scalar(
            "UPDATE outbox SET state = $1, last_error = $2, \
                 next_attempt_at = coalesce($3, next_attempt_at), updated_at = $4 \
             WHERE id = $5 RETURNING message_id",
        )
        .bind(state)
        .bind(error.as_ref())
        .bind(retry_at.map(|t| t.0))
        .bind(now.0)
        .bind(item.0)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let row = sqlx::query(&format!(
            "UPDATE messages SET status = $1, error = $2 WHERE id = $3 RETURNING {MESSAGE_COLUMNS}"
        ))
        .bind(state)
        .bind(error.as_ref())
        .bind(message_id)
        .fetch_one(&mut *tx)
        .await
        .store_err(OP)?;
        let message = read_message(OP, &Cols(&row))?;
        tx.commit().await.store_err(OP)?;
        Ok(message)
    }

    async fn recover_outbox(
        &self,
        stuck_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<RecoveredReply>> {
        const OP: &str = "recover_outbox";
        let mut tx = begin(&self.pool, OP).await?;
        // Account items are resent (MTProto's random_id makes a repeat harmless); bot items
        // might have reached Telegram, so the operator decides.
        let requeued: Vec<i64> = sqlx::query_scalar(
            "UPDATE outbox AS o SET state = 'queued', next_attempt_at = $1, updated_at = $1 \
             FROM chats AS c \
             WHERE c.id = o.chat_id AND c.account_id IS NOT NULL AND o.state = 'sending' \
               AND o.updated_at <= $2 \
             RETURNING o.message_id",
        )
        .bind(now.0)
        .bind(stuck_since.0)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let failed: Vec<i64> = sqlx::query_scalar(
            "UPDATE outbox SET state = 'failed', last_error = $3, updated_at = $1 \
             WHERE state = 'sending' AND updated_at <= $2 RETURNING message_id",
        )
        .bind(now.0)
        .bind(stuck_since.0)
        .bind(SEND_UNCERTAIN)
        .fetch_all(&mut *tx)
        .await
        .store_err(OP)?;
        let mut changed = Vec::with_capacity(requeued.len() + failed.len());
        for (ids, status, error) in [
            (&requeued, "queued", None),
            (&failed, "failed", Some(SEND_UNCERTAIN)),
        ] {
            let rows = sqlx::query(&format!(
                "UPDATE messages AS m SET status = $1, error = $2 FROM chats AS c \
                 WHERE m.id = ANY($3) AND c.id = m.chat_id \
                 RETURNING {M_MESSAGE_COLUMNS}, c.workspace_id"
            ))
            .bind(status)
            .bind(error)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .store_err(OP)?;
            for row in &rows {
                changed.push(RecoveredReply {
                    workspace: WorkspaceId(row.try_get("workspace_id").store_err(OP)?),
                    message: read_message(OP, &Cols(row))?,
                });
            }
        }
        tx.commit().await.store_err(OP)?;
        changed.sort_by_key(|r| r.message.id);
        Ok(changed)
    }

    async fn next_outbox_due(&self) -> StoreResult<Option<Timestamp>> {
        let due: Option<i64> =
            sqlx::query_scalar("SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await
                .store_err("next_outbox_due")?;
        Ok(due.map(Timestamp))
    }
}

/// The outbox state and last error of a reply the viewer may see, its row locked; `None` when
/// there is none.
async fn outbox_state(
    tx: &mut Transaction<'_, Postgres>,
    op: &'static str,
    viewer: &Viewer,
    message: MessageId,
) -> StoreResult<Option<(String, Option<String>)>> {
    let (ws, admin, user) = scope_args(viewer);
    sqlx::query_as(&format!(
        "SELECT o.state, o.last_error FROM outbox AS o JOIN chats AS c ON c.id = o.chat_id \
         WHERE {SCOPE} AND o.message_id = $4 FOR UPDATE OF o"
    ))
    .bind(ws)
    .bind(admin)
    .bind(user)
    .bind(message.0)
    .fetch_optional(&mut **tx)
    .await
    .store_err(op)
}

/// Rolls back and returns `refused` when there is one, else hands the transaction back.
/// Releasing the row lock at once matters: a dropped transaction is only rolled back when its
/// connection is next used, and until then `claim_outbox` (SKIP LOCKED) would pass over the
/// item.
async fn refuse<'a>(
    tx: Transaction<'a, Postgres>,
    op: &'static str,
    refused: Option<StoreError>,
) -> StoreResult<Transaction<'a, Postgres>> {
    match refused {
        Some(e) => {
            tx.rollback().await.store_err(op)?;
            Err(e)
        }
        None => Ok(tx),
    }
}
