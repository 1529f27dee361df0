//! Chats and messages as rows on PostgreSQL: the column lists every query selects, and [`Cols`],
//! this backend's row as the domain's row readers (`switchboard_domain::rows`) read it.

use crate::error::ResultExt;
use sqlx::Row;
use sqlx::postgres::PgRow;
use switchboard_domain::StoreResult;
use switchboard_domain::rows::Columns;

pub(crate) const CHAT_COLUMNS: &str = "id, workspace_id, account_id, bot_id, assignee_id, \
     peer_id, peer_kind, title, username, status, unread_count, last_message_at, created_at";

/// `CHAT_COLUMNS` qualified with the alias `c`.
pub(crate) const C_CHAT_COLUMNS: &str = "c.id, c.workspace_id, c.account_id, c.bot_id, \
     c.assignee_id, c.peer_id, c.peer_kind, c.title, c.username, c.status, c.unread_count, \
     c.last_message_at, c.created_at";

pub(crate) const MESSAGE_COLUMNS: &str = "id, chat_id, tg_message_id, direction, sender_id, \
     sender_name, text, entities::text AS entities, media::text AS media, reply_to_tg_id, \
     sent_at, edited_at, deleted, status, error, author_id";

/// `MESSAGE_COLUMNS` qualified with the alias `m`.
pub(crate) const M_MESSAGE_COLUMNS: &str = "m.id, m.chat_id, m.tg_message_id, m.direction, \
     m.sender_id, m.sender_name, m.text, m.entities::text AS entities, m.media::text AS media, \
     m.reply_to_tg_id, m.sent_at, m.edited_at, m.deleted, m.status, m.error, m.author_id";

/// A row of this backend, for the domain's readers (`read_chat(OP, &Cols(&row))`).
pub(crate) struct Cols<'r>(pub(crate) &'r PgRow);

impl Columns for Cols<'_> {
    fn i64(&self, op: &'static str, column: &str) -> StoreResult<i64> {
        self.0.try_get(column).store_err(op)
    }

    fn opt_i64(&self, op: &'static str, column: &str) -> StoreResult<Option<i64>> {
        self.0.try_get(column).store_err(op)
    }

    fn i32(&self, op: &'static str, column: &str) -> StoreResult<i32> {
        self.0.try_get(column).store_err(op)
    }

    fn opt_i32(&self, op: &'static str, column: &str) -> StoreResult<Option<i32>> {
        self.0.try_get(column).store_err(op)
    }

    fn text(&self, op: &'static str, column: &str) -> StoreResult<String> {
        self.0.try_get(column).store_err(op)
    }

    fn opt_text(&self, op: &'static str, column: &str) -> StoreResult<Option<String>> {
        self.0.try_get(column).store_err(op)
    }

    fn bool(&self, op: &'static str, column: &str) -> StoreResult<bool> {
        self.0.try_get(column).store_err(op)
    }

    fn bytes(&self, op: &'static str, column: &str) -> StoreResult<Vec<u8>> {
        self.0.try_get(column).store_err(op)
    }

    fn opt_bytes(&self, op: &'static str, column: &str) -> StoreResult<Option<Vec<u8>>> {
        self.0.try_get(column).store_err(op)
    }
}
