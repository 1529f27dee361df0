//! Ingestion on PostgreSQL: a batch of incoming messages upserted into the chats of an account
//! or a bot in one transaction (duplicates dropped), and the edits, deletions and media updates
//! that follow. Bots reach [`ingest_in`] and [`apply_edit`] from `inbox`.
//! Batches travel as arrays and are expanded with `UNNEST`, so a batch of any size is one
//! statement per step; JSONB travels as text.

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::{CHAT_COLUMNS, Cols, M_MESSAGE_COLUMNS, MESSAGE_COLUMNS};
use crate::sql::{begin, begin_relaxed};
use sqlx::{Postgres, Row, Transaction};
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
    store: &PgStore,
    account: AccountId,
    batch: &[IncomingMessage],
    now: Timestamp,
) -> StoreResult<IngestOutcome> {
    const OP: &str = "ingest_messages";
    if batch.is_empty() {
        return Ok(IngestOutcome::default());
    }
    let mut tx = begin_relaxed(&store.pool, OP).await?;
    let outcome = ingest_in(&mut tx, ChatOwner::Account(account), batch, now).await?;
    tx.commit().await.store_err(OP)?;
    Ok(outcome)
}

/// [`AccountStore::apply_message_edit`](switchboard_domain::AccountStore::apply_message_edit).
pub(crate) async fn apply_message_edit(
    store: &PgStore,
    account: AccountId,
    peer_id: i64,
    tg_message_id: i64,
    new_text: &str,
    entities: &[Entity],
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    apply_edit(
        &store.pool,
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
    store: &PgStore,
    account: AccountId,
    peer_id: Option<i64>,
    tg_message_ids: &[i64],
) -> StoreResult<Vec<Message>> {
    const OP: &str = "mark_messages_deleted";
    if tg_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let chats = match peer_id {
        Some(_) => "SELECT id FROM chats WHERE account_id = $1 AND peer_id = $3".to_string(),
        None => format!(
            "SELECT id FROM chats WHERE account_id = $1 AND peer_kind IN {COMMON_BOX_KINDS}"
        ),
    };
    let sql = format!(
        "UPDATE messages SET deleted = TRUE \
         WHERE NOT deleted AND tg_message_id = ANY($2) AND chat_id IN ({chats}) \
         RETURNING {MESSAGE_COLUMNS}"
    );
    let mut query = sqlx::query(&sql).bind(account.0).bind(tg_message_ids);
    if let Some(peer_id) = peer_id {
        query = query.bind(peer_id);
    }
    let rows = query.fetch_all(&store.pool).await.store_err(OP)?;
    let mut marked = rows
        .iter()
        .map(|r| read_message(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    marked.sort_by_key(|m| m.id);
    Ok(marked)
}

/// [`AccountStore::set_message_media`](switchboard_domain::AccountStore::set_message_media).
pub(crate) async fn set_message_media(
    store: &PgStore,
    account: AccountId,
    message: MessageId,
    media: &Media,
) -> StoreResult<Option<Message>> {
    const OP: &str = "set_message_media";
    let media = json_text(OP, media)?;
    let row = sqlx::query(&format!(
        "UPDATE messages SET media = $1::jsonb WHERE id = $2 \
           AND chat_id IN (SELECT id FROM chats WHERE account_id = $3) \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(media)
    .bind(message.0)
    .bind(account.0)
    .fetch_optional(&store.pool)
    .await
    .store_err(OP)?;
    row.map(|r| read_message(OP, &Cols(&r))).transpose()
}

/// First keys of the advisory locks that serialize the ingestion of one account or bot.
const INGEST_LOCK_ACCOUNT: i32 = 0x5342_0001;

const INGEST_LOCK_BOT: i32 = 0x5342_0002;

/// Ingests a batch into the chats of `owner` inside `tx` (see
/// [`AccountStore::ingest_messages`](switchboard_domain::AccountStore::ingest_messages));
/// shared by personal accounts and bots.
pub(crate) async fn ingest_in(
    tx: &mut Transaction<'static, Postgres>,
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
    // One ingestion per owner at a time: two batches upserting the same new chats in
    // different orders would deadlock. (An account or bot has one writer anyway; this makes
    // an overlap, e.g. while a worker is replaced, wait instead of failing.)
    sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::integer)")
        .bind(match owner {
            ChatOwner::Account(_) => INGEST_LOCK_ACCOUNT,
            ChatOwner::Bot(_) => INGEST_LOCK_BOT,
        })
        .bind(owner_id)
        .execute(&mut **tx)
        .await
        .store_err(OP)?;
    let workspace: i64 =
        sqlx::query_scalar(&format!("SELECT workspace_id FROM {table} WHERE id = $1"))
            .bind(owner_id)
            .fetch_one(&mut **tx)
            .await
            .store_err(OP)?;

    // Chats: refresh names that changed, create the missing ones.
    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats WHERE {column} = $1 AND peer_id = ANY($2)"
    ))
    .bind(owner_id)
    .bind(plan.peers.iter().map(|p| p.peer_id).collect::<Vec<_>>())
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
                "UPDATE chats SET title = $1, username = $2, updated_at = $3 WHERE id = $4",
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
    // A concurrent batch may have created one meanwhile (`xmax <> 0`: updated, not
    // inserted); it is then renamed only, and counted like a known chat below.
    let mut fresh: HashSet<ChatId> = HashSet::with_capacity(missing.len());
    if !missing.is_empty() {
        let rows = sqlx::query(&format!(
            "INSERT INTO chats (workspace_id, {column}, peer_id, peer_kind, title, \
                 username, unread_count, last_message_at, created_at, updated_at) \
             SELECT $1, $2, p.peer_id, p.peer_kind, p.title, p.username, p.inbound, \
                 p.last_at, $3, $3 \
             FROM UNNEST($4::bigint[], $5::text[], $6::text[], $7::text[], $8::integer[], \
                         $9::bigint[]) \
                 AS p(peer_id, peer_kind, title, username, inbound, last_at) \
             ON CONFLICT ({column}, peer_id) DO UPDATE SET \
                 title = CASE WHEN excluded.title <> '' THEN excluded.title \
                              ELSE chats.title END, \
                 username = excluded.username, updated_at = excluded.updated_at \
             RETURNING id, peer_id, xmax = 0 AS created"
        ))
        .bind(workspace)
        .bind(owner_id)
        .bind(now.0)
        .bind(missing.iter().map(|p| p.peer_id).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>())
        .bind(
            missing
                .iter()
                .map(|p| p.title.unwrap_or(""))
                .collect::<Vec<_>>(),
        )
        .bind(missing.iter().map(|p| p.username).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.inbound).collect::<Vec<_>>())
        .bind(missing.iter().map(|p| p.last_at).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await
        .store_err(OP)?;
        for row in &rows {
            let id = ChatId(row.try_get("id").store_err(OP)?);
            chat_ids.insert(row.try_get("peer_id").store_err(OP)?, id);
            if row.try_get("created").store_err(OP)? {
                fresh.insert(id);
            }
            changed.insert(id);
        }
    }

    // Messages: only the ones not stored yet come back from RETURNING.
    let n = plan.messages.len();
    let mut columns = MessageColumns::with_capacity(n);
    for m in &plan.messages {
        let chat = chat_ids
            .get(&m.peer_id)
            .copied()
            .ok_or_else(|| StoreError::Backend(format!("{OP}: a chat went missing")))?;
        columns.push(OP, chat, m)?;
    }
    let rows = sqlx::query(&format!(
        "INSERT INTO messages (chat_id, tg_message_id, direction, sender_id, sender_name, \
             text, entities, media, reply_to_tg_id, sent_at, created_at) \
         SELECT m.chat_id, m.tg_message_id, m.direction, m.sender_id, m.sender_name, m.text, \
             m.entities::jsonb, m.media::jsonb, m.reply_to_tg_id, m.sent_at, $1 \
         FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[]) \
             AS m(chat_id, tg_message_id, direction, sender_id, sender_name, text, entities, \
                  media, reply_to_tg_id, sent_at) \
         ON CONFLICT (chat_id, tg_message_id) DO NOTHING \
         RETURNING {MESSAGE_COLUMNS}"
    ))
    .bind(now.0)
    .bind(columns.chat_id)
    .bind(columns.tg_message_id)
    .bind(columns.direction)
    .bind(columns.sender_id)
    .bind(columns.sender_name)
    .bind(columns.text)
    .bind(columns.entities)
    .bind(columns.media)
    .bind(columns.reply_to_tg_id)
    .bind(columns.sent_at)
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let mut inserted = rows
        .iter()
        .map(|r| read_message(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    inserted.sort_by_key(|m| m.id);

    // Known chats with new messages: unread counts, reopening, last activity.
    let bumps = ChatBump::of(&inserted, &fresh);
    if !bumps.is_empty() {
        sqlx::query(
            "UPDATE chats AS c SET unread_count = c.unread_count + d.inbound, \
                 status = CASE WHEN d.inbound > 0 AND c.status = 'resolved' THEN 'open' \
                               ELSE c.status END, \
                 last_message_at = GREATEST(c.last_message_at, d.last_at), \
                 updated_at = $1 \
             FROM UNNEST($2::bigint[], $3::integer[], $4::bigint[]) AS d(id, inbound, last_at) \
             WHERE c.id = d.id",
        )
        .bind(now.0)
        .bind(bumps.keys().map(|c| c.0).collect::<Vec<_>>())
        .bind(bumps.values().map(|b| b.inbound).collect::<Vec<_>>())
        .bind(bumps.values().map(|b| b.last_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .store_err(OP)?;
        changed.extend(bumps.keys().copied());
    }

    let rows = sqlx::query(&format!(
        "SELECT {CHAT_COLUMNS} FROM chats WHERE id = ANY($1) ORDER BY id"
    ))
    .bind(changed.iter().map(|c| c.0).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .store_err(OP)?;
    let chats = rows
        .iter()
        .map(|r| read_chat(OP, &Cols(r)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(IngestOutcome { inserted, chats })
}

/// A batch of messages as one array per column, for `UNNEST`.
struct MessageColumns<'a> {
    chat_id: Vec<i64>,
    tg_message_id: Vec<i64>,
    direction: Vec<&'static str>,
    sender_id: Vec<Option<i64>>,
    sender_name: Vec<Option<&'a str>>,
    text: Vec<&'a str>,
    entities: Vec<String>,
    media: Vec<Option<String>>,
    reply_to_tg_id: Vec<Option<i64>>,
    sent_at: Vec<i64>,
}

impl<'a> MessageColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            chat_id: Vec::with_capacity(n),
            tg_message_id: Vec::with_capacity(n),
            direction: Vec::with_capacity(n),
            sender_id: Vec::with_capacity(n),
            sender_name: Vec::with_capacity(n),
            text: Vec::with_capacity(n),
            entities: Vec::with_capacity(n),
            media: Vec::with_capacity(n),
            reply_to_tg_id: Vec::with_capacity(n),
            sent_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, op: &'static str, chat: ChatId, m: &'a IncomingMessage) -> StoreResult<()> {
        self.chat_id.push(chat.0);
        self.tg_message_id.push(m.tg_message_id);
        self.direction.push(m.direction.as_str());
        self.sender_id.push(m.sender_id);
        self.sender_name.push(m.sender_name.as_deref());
        self.text.push(&m.text);
        self.entities.push(json_text(op, &m.entities)?);
        self.media.push(json_nullable(op, m.media.as_ref())?);
        self.reply_to_tg_id.push(m.reply_to_tg_id);
        self.sent_at.push(m.sent_at.0);
        Ok(())
    }
}

/// Applies an edit to the message `(peer_id, tg_message_id)` of a chat of `owner`: keeps the
/// previous text in the history; an older edit never undoes a newer one.
pub(crate) async fn apply_edit(
    pool: &sqlx::PgPool,
    op: &'static str,
    owner: ChatOwner,
    (peer_id, tg_message_id): (i64, i64),
    new_text: &str,
    entities: &[Entity],
    edited_at: Timestamp,
) -> StoreResult<Option<Message>> {
    let new_text = clean(new_text);
    let entities = json_text(op, entities)?;
    let mut tx = begin(pool, op).await?;
    let (owner_col, owner_id) = match owner {
        ChatOwner::Account(a) => ("c.account_id", a.0),
        ChatOwner::Bot(b) => ("c.bot_id", b.0),
    };
    // Locked, so concurrent edits of one message each keep the text they replace.
    let row = sqlx::query(&format!(
        "SELECT {M_MESSAGE_COLUMNS} FROM messages AS m JOIN chats AS c ON c.id = m.chat_id \
         WHERE {owner_col} = $1 AND c.peer_id = $2 AND m.tg_message_id = $3 \
         FOR UPDATE OF m"
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
            "INSERT INTO message_edits (message_id, old_text, edited_at) VALUES ($1, $2, $3)",
        )
        .bind(current.id.0)
        .bind(&current.text)
        .bind(edited_at.0)
        .execute(&mut *tx)
        .await
        .store_err(op)?;
    }
    let row = sqlx::query(&format!(
        "UPDATE messages SET text = $1, entities = $2::jsonb, edited_at = $3 WHERE id = $4 \
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
