//! Chats and messages as rows on SQLite: the column lists every query selects, the readers
//! that turn a row back into a [`Chat`] or a [`Message`], and the JSON columns' text.

use crate::error::{ResultExt, corrupt};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use switchboard_domain::{
    AccountId, BotId, Chat, ChatId, ChatStatus, DeliveryStatus, Direction, Message, MessageId,
    PeerKind, StoreError, StoreResult, Timestamp, UserId, WorkspaceId,
};

pub(crate) const CHAT_COLUMNS: &str = "id, workspace_id, account_id, bot_id, assignee_id, \
     peer_id, peer_kind, title, username, status, unread_count, last_message_at, created_at";

/// `CHAT_COLUMNS` qualified with the alias `c`.
pub(crate) const C_CHAT_COLUMNS: &str = "c.id, c.workspace_id, c.account_id, c.bot_id, \
     c.assignee_id, c.peer_id, c.peer_kind, c.title, c.username, c.status, c.unread_count, \
     c.last_message_at, c.created_at";

pub(crate) const MESSAGE_COLUMNS: &str = "id, chat_id, tg_message_id, direction, sender_id, \
     sender_name, text, entities, media, reply_to_tg_id, sent_at, edited_at, deleted, status, \
     error, author_id";

/// `MESSAGE_COLUMNS` qualified with the alias `m`.
pub(crate) const M_MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.tg_message_id, m.direction, \
     m.sender_id, m.sender_name, m.text, m.entities, m.media, m.reply_to_tg_id, m.sent_at, \
     m.edited_at, m.deleted, m.status, m.error, m.author_id";

pub(crate) fn read_chat(op: &'static str, row: &SqliteRow) -> StoreResult<Chat> {
    let account_id: Option<i64> = row.try_get("account_id").store_err(op)?;
    let bot_id: Option<i64> = row.try_get("bot_id").store_err(op)?;
    let assignee_id: Option<i64> = row.try_get("assignee_id").store_err(op)?;
    let peer_kind: String = row.try_get("peer_kind").store_err(op)?;
    let status: String = row.try_get("status").store_err(op)?;
    let last_message_at: Option<i64> = row.try_get("last_message_at").store_err(op)?;
    Ok(Chat {
        id: ChatId(row.try_get("id").store_err(op)?),
        workspace_id: WorkspaceId(row.try_get("workspace_id").store_err(op)?),
        account_id: account_id.map(AccountId),
        bot_id: bot_id.map(BotId),
        assignee_id: assignee_id.map(UserId),
        peer_id: row.try_get("peer_id").store_err(op)?,
        peer_kind: peer_kind
            .parse::<PeerKind>()
            .map_err(|()| corrupt(op, "chats.peer_kind"))?,
        title: row.try_get("title").store_err(op)?,
        username: row.try_get("username").store_err(op)?,
        status: status
            .parse::<ChatStatus>()
            .map_err(|()| corrupt(op, "chats.status"))?,
        unread_count: row.try_get("unread_count").store_err(op)?,
        last_message_at: last_message_at.map(Timestamp),
        created_at: Timestamp(row.try_get("created_at").store_err(op)?),
    })
}

pub(crate) fn read_message(op: &'static str, row: &SqliteRow) -> StoreResult<Message> {
    let tg_message_id: Option<i64> = row.try_get("tg_message_id").store_err(op)?;
    let direction: String = row.try_get("direction").store_err(op)?;
    let entities: String = row.try_get("entities").store_err(op)?;
    let media: Option<String> = row.try_get("media").store_err(op)?;
    let edited_at: Option<i64> = row.try_get("edited_at").store_err(op)?;
    let status: String = row.try_get("status").store_err(op)?;
    let author_id: Option<i64> = row.try_get("author_id").store_err(op)?;
    Ok(Message {
        id: MessageId(row.try_get("id").store_err(op)?),
        chat_id: ChatId(row.try_get("chat_id").store_err(op)?),
        tg_message_id,
        direction: direction
            .parse::<Direction>()
            .map_err(|()| corrupt(op, "messages.direction"))?,
        sender_id: row.try_get("sender_id").store_err(op)?,
        sender_name: row.try_get("sender_name").store_err(op)?,
        text: row.try_get("text").store_err(op)?,
        entities: serde_json::from_str(&entities).map_err(|_| corrupt(op, "messages.entities"))?,
        media: match media {
            Some(m) => serde_json::from_str(&m).map_err(|_| corrupt(op, "messages.media"))?,
            None => serde_json::Value::Null,
        },
        reply_to_tg_id: row.try_get("reply_to_tg_id").store_err(op)?,
        sent_at: Timestamp(row.try_get("sent_at").store_err(op)?),
        edited_at: edited_at.map(Timestamp),
        deleted: row.try_get("deleted").store_err(op)?,
        status: status
            .parse::<DeliveryStatus>()
            .map_err(|()| corrupt(op, "messages.status"))?,
        error: row.try_get("error").store_err(op)?,
        author_id: author_id.map(UserId),
    })
}

pub(crate) fn json_text(op: &'static str, value: &serde_json::Value) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|_| StoreError::Backend(format!("{op}: a JSON value is not serialisable")))
}

/// JSON `null` is stored as SQL `NULL`.
pub(crate) fn json_nullable(
    op: &'static str,
    value: &serde_json::Value,
) -> StoreResult<Option<String>> {
    if value.is_null() {
        Ok(None)
    } else {
        json_text(op, value).map(Some)
    }
}
