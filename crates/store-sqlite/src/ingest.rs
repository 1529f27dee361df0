//! Ingestion on SQLite: a batch of incoming messages upserted into the chats of an account
//! or a bot in one transaction (duplicates dropped), and the edits, deletions and media updates
//! that follow. Bots reach [`ingest_in`] and [`apply_edit`] from `inbox`.
//! Lists of ids travel as one JSON array (`json_each`).

use crate::SqliteStore;
use crate::error::ResultExt;
use crate::rows::{CHAT_COLUMNS, Cols, M_MESSAGE_COLUMNS, MESSAGE_COLUMNS};
use crate::sql::{ROWS_PER_INSERT, begin_immediate, json_ids, placeholders};
use sqlx::{Row, Sqlite, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};
use switchboard_domain::ingest::{ChatBump, IngestPlan, PeerInBatch};
use switchboard_domain::nul::{clean, clean_batch};
use switchboard_domain::rows::{json_nullable, json_text, read_chat, read_message};
use switchboard_domain::{
    AccountId, Chat, ChatId, ChatOwner, Entity, IncomingMessage, IngestOutcome, Media, Message,
    MessageId, StoreError, StoreResult, Timestamp,
};

/// Peer kinds whose deletions Telegram reports without naming the chat.
const COMMON_BOX_KINDS: &str = "('user', 'bot', 'group')";

/// [`AccountStore::ingest_messages`](switchboard_domain::AccountStore::ingest_messages).
pub(crate) async fn ingest_messages(
    store: &SqliteStore,
    account: AccountId,
    batch: &[IncomingMessage],
    now: Timestamp,
) -> StoreResult<IngestOutcome> {
    const OP: &str = "ingest_messages";
    if batch.is_empty() {
        return Ok(IngestOutcome::default());
    }
    let mut tx = begin_immediate(&store.writer, OP).await?;
    let outcome = ingest_in(&mut tx, ChatOwner::Account(account), batch, now).await?;
    tx.commit().await.store_err(OP)?;
    Ok(outcome)
}

/// [`AccountStore::apply_message_edit`](switchboard_domain::AccountStore::apply_message_edit).
pub(crate) async fn apply_message_edit(
    store: &SqliteStore,
    account: AccountId,
    peer_id: i64,
    tg_message_id: i64,
    new_text: &str,
    entities: &[Entity],
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    apply_edit(
        &store.writer,
        "apply_message_edit",
        ChatOwner::Account(account),
        (peer_id, tg_message_id),
        new_text,
        entities,
        edited_at,
    )
    .await
}

/// [`AccountStore::mark_messages_deleted`](switchboard_domain::AccountStore::mark_messages_deleted).
pub(crate) async fn mark_messages_deleted(
    store: &SqliteStore,
    account: AccountId,
    peer_id: Option<i64>,
    tg_message_ids: &[i64],
) -> StoreResult<Vec<Message>> {
    const OP: &str = "mark_messages_deleted";
    if tg_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let chats = match peer_id {
        Some(_) => "SELECT id FROM chats WHERE account_id = ?1 AND peer_id = ?3".to_string(),
        None => format!(
            "SELECT id FROM chats WHERE account_id = ?1 AND peer_kind IN {COMMON_BOX_KINDS}"
        ),
    };
    let sql = format!(
        "UPDATE messages SET deleted = 1 \
         WHERE deleted = 0 AND tg_message_id IN (SELECT value FROM json_each(?2)) \
           AND chat_id IN ({chats}) \
         RETURNING {MESSAGE_COLUMNS}"
    );
    let mut query = sqlx::query(&sql)
        .bind(account.0)
        .bind(json_ids(tg_message_ids.iter().copied()));
    if let Some(peer_id) = peer_id {
        query = query.bind(peer_id);
    }
    let rows = query.fetch_all(&store.writer).await.store_err(OP)?;
    let mut marked = rows
        .iter()
        .map(|r| read_message(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    marked.sort_by_key(|m| m.id);
    Ok(marked)
}

/// [`AccountStore::set_message_media`](switchboard_domain::AccountStore::set_message_media).
pub(crate) async fn set_message_media(
    store: &SqliteStore,
    account: AccountId,
    message: MessageId,
    media: &Media,
) -> StoreResult<Option<Message>> {
    const OP: &str = "set_message_media";
    let media = json_text(OP, media)?;
    let row = sqlx::query(&format!(
        "UPDATE messages SET media = ?1 WHERE id = ?2 \
           AND chat_id IN (SELECT id FROM chats WHERE account_id = ?3) \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(media)
    .bind(message.0)
    .bind(account.0)
    .fetch_optional(&store.writer)
    .await
    .store_err(OP)?;
    row.map(|r| read_message(OP, &Cols(&r))).transpose()
}

/// Ingests a batch into the chats of `owner` inside `tx` (see
/// [`AccountStore::ingest_messages`](switchboard_domain::AccountStore::ingest_messages));
/// shared by personal accounts and bots.
pub(crate) async fn ingest_in(
    tx: &mut Transaction<'static, Sqlite>,
    owner: ChatOwner,
    batch: &[IncomingMessage],
    now: Timestamp,
) -> StoreResult<IngestOutcome> {
    const OP: &str = "ingest_messages";
    if batch.is_empty() {
        return Ok(IngestOutcome::default());
    }
    let batch = clean_batch(batch);
    let plan = IngestPlan::new(&batch);
    let (table, column, owner_id) = match owner {
        ChatOwner::Account(id) => ("accounts", "account_id", id.0),
        ChatOwner::Bot(id) => ("bots", "bot_id", id.0),
    };
    let workspace: i64 =
        sqlx::query_scalar(&format!("SELECT workspace_id FROM {table} WHERE id = ?1"))
            .bind(owner_id)
            .fetch_one(&mut **tx)
            .await
            .store_err(OP)?;

    // Chats: create the missing ones, refresh names that changed.
    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats \
         WHERE {column} = ?1 AND peer_id IN (SELECT value FROM json_each(?2))"
    ))
    .bind(owner_id)
    .bind(json_ids(plan.peers.iter().map(|p| p.peer_id)))
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let mut existing: HashMap<i64, Chat> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let chat = read_chat(OP, &Cols(row))?;
        existing.insert(chat.peer_id, chat);
    }
    let mut chat_ids: HashMap<i64, ChatId> = HashMap::with_capacity(plan.peers.len());
    let mut changed: BTreeSet<ChatId> = BTreeSet::new();
    let mut missing: Vec<&PeerInBatch<'_>> = Vec::new();
    for peer in &plan.peers {
        let Some(chat) = existing.get(&peer.peer_id) else {
            missing.push(peer);
            continue;
        };
        chat_ids.insert(peer.peer_id, chat.id);
        // A batch that does not name the peer leaves its names as they are.
        let (title, username) = match peer.title {
            Some(title) => (title, peer.username),
            None => (chat.title.as_str(), chat.username.as_deref()),
        };
        if title != chat.title || username != chat.username.as_deref() {
            sqlx::query(
                "UPDATE chats SET title = ?1, username = ?2, updated_at = ?3 WHERE id = ?4",
            )
            .bind(title)
            .bind(username)
            .bind(now.0)
            .bind(chat.id.0)
            .execute(&mut **tx)
            .await
            .store_err(OP)?;
            changed.insert(chat.id);
        }
    }
    // New chats start with the batch's counts: none of their messages can be stored yet.
    let mut fresh: HashSet<ChatId> = HashSet::with_capacity(missing.len());
    for chunk in missing.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO chats (workspace_id, {column}, peer_id, peer_kind, title, username, \
                 unread_count, last_message_at, created_at, updated_at) \
             VALUES {} RETURNING id, peer_id",
            placeholders(chunk.len(), 10)
        );
        let mut query = sqlx::query(&sql);
        for peer in chunk {
            query = query
                .bind(workspace)
                .bind(owner_id)
                .bind(peer.peer_id)
                .bind(peer.kind.as_str())
                .bind(peer.title.unwrap_or(""))
                .bind(peer.username)
                .bind(peer.inbound)
                .bind(peer.last_at)
                .bind(now.0)
                .bind(now.0);
        }
        for row in query.fetch_all(&mut **tx).await.store_err(OP)? {
            let id = ChatId(row.try_get("id").store_err(OP)?);
            chat_ids.insert(row.try_get("peer_id").store_err(OP)?, id);
            fresh.insert(id);
            changed.insert(id);
        }
    }

    // Messages: only the ones not stored yet come back from RETURNING.
    let mut inserted: Vec<Message> = Vec::with_capacity(plan.messages.len());
    for chunk in plan.messages.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO messages (chat_id, tg_message_id, direction, sender_id, sender_name, \
                 text, entities, media, reply_to_tg_id, sent_at, created_at) \
             VALUES {} ON CONFLICT (chat_id, tg_message_id) DO NOTHING \
             RETURNING {MESSAGE_COLUMNS}",
            placeholders(chunk.len(), 11)
        );
        let mut query = sqlx::query(&sql);
        for m in chunk {
            let chat = chat_ids
                .get(&m.peer_id)
                .copied()
                .ok_or_else(|| StoreError::Backend(format!("{OP}: a chat went missing")))?;
            query = query
                .bind(chat.0)
                .bind(m.tg_message_id)
                .bind(m.direction.as_str())
                .bind(m.sender_id)
                .bind(m.sender_name.as_deref())
                .bind(&m.text)
                .bind(json_text(OP, &m.entities)?)
                .bind(json_nullable(OP, m.media.as_ref())?)
                .bind(m.reply_to_tg_id)
                .bind(m.sent_at.0)
                .bind(now.0);
        }
        let rows = query.fetch_all(&mut **tx).await.store_err(OP)?;
        for row in &rows {
            inserted.push(read_message(OP, &Cols(row))?);
        }
    }
    inserted.sort_by_key(|m| m.id);

    // Known chats with new messages: unread counts, reopening, last activity.
    let bumps: Vec<(ChatId, ChatBump)> = ChatBump::of(&inserted, &fresh).into_iter().collect();
    for chunk in bumps.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "WITH d (id, inbound, last_at) AS (VALUES {}) \
             UPDATE chats SET unread_count = unread_count + d.inbound, \
                 status = CASE WHEN d.inbound > 0 AND status = 'resolved' THEN 'open' \
                               ELSE status END, \
                 last_message_at = max(coalesce(last_message_at, d.last_at), d.last_at), \
                 updated_at = ? \
             FROM d WHERE chats.id = d.id",
            placeholders(chunk.len(), 3)
        );
        let mut query = sqlx::query(&sql);
        for (chat, bump) in chunk {
            query = query.bind(chat.0).bind(bump.inbound).bind(bump.last_at);
            changed.insert(*chat);
        }
        query.bind(now.0).execute(&mut **tx).await.store_err(OP)?;
    }

    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats WHERE id IN (SELECT value FROM json_each(?1)) \
         ORDER BY id"
    ))
    .bind(json_ids(changed.iter().map(|c| c.0)))
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let chats = rows
        .iter()
        .map(|r| read_chat(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(IngestOutcome { inserted, chats })
}

/// Applies an edit to the message `(peer_id, tg_message_id)` of a chat of `owner`: keeps the
/// previous text in the history; an older edit never undoes a newer one.
pub(crate) async fn apply_edit(
    pool: &sqlx::SqlitePool,
    op: &'static str,
    owner: ChatOwner,
    (peer_id, tg_message_id): (i64, i64),
    new_text: &str,
    entities: &[Entity],
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    let new_text = clean(new_text);
    let entities = json_text(op, entities)?;
    let mut tx = begin_immediate(pool, op).await?;
    let (owner_col, owner_id) = match owner {
        ChatOwner::Account(a) => ("c.account_id", a.0),
        ChatOwner::Bot(b) => ("c.bot_id", b.0),
    };
    let row = sqlx::query(&format!(
        "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
         WHERE {owner_col} = ?1 AND c.peer_id = ?2 AND m.tg_message_id = ?3"
    ))
    .bind(owner_id)
    .bind(peer_id)
    .bind(tg_message_id)
    .fetch_optional(&mut *tx)
    .await
    .store_err(op)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let current = read_message(op, &Cols(&row))?;
    if current.edited_at.is_some_and(|at| at > edited_at) {
        // A replayed, older edit must not undo a newer one.
        return Ok(Some(current));
    }
    if current.text != new_text {
        sqlx::query(
            "INSERT INTO message_edits (message_id, old_text, edited_at) VALUES (?1, ?2, ?3)",
        )
        .bind(current.id.0)
        .bind(&current.text)
        .bind(edited_at.0)
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    }
    let row = sqlx::query(&format!(
        "UPDATE messages SET text = ?1, entities = ?2, edited_at = ?3 WHERE id = ?4 \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(new_text.as_ref())
    .bind(entities)
    .bind(edited_at.0)
    .bind(current.id.0)
    .fetch_one(&mut *tx)
    .await
    .store_err(op)?;
    let message = read_message(op, &Cols(&row))?;
    tx.commit().await.store_err(op)?;
    Ok(Some(message))
}
