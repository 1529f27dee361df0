//! Reading stored rows back into the models, once for both backends. A backend hands each row
//! to these readers through [`Columns`] (typed access to a column by name, implemented over its
//! own row type); what a column holds and how a stored name becomes an enum is decided here,
//! so the two backends differ only in their SQL.

use crate::account::{
    Account, AccountStatus, CachedPeer, Chat, ChatStatus, DcKey, Direction, Message, MessageEdit,
    PeerKind, UpdateState,
};
use crate::content::{Entity, Media};
use crate::ids::{
    AccountId, AuditEventId, BotId, ChatId, MessageId, UserId, WebSessionId, WorkspaceId,
};
use crate::inbox::{Bot, BotMode, BotStatus, DeliveryStatus};
use crate::model::{
    AuditEvent, Locale, Membership, Role, User, UserCredentials, Username, WebSession, Workspace,
};
use crate::store::{StoreError, StoreResult};
use crate::time::Timestamp;
use std::str::FromStr;

/// One row of a query's result as a backend exposes it: each method reads the named column as
/// one type, or fails with the backend's [`StoreError`] naming `op` (a missing column, another
/// type, a NULL where a value is required).
pub trait Columns {
    /// A `BIGINT` (or SQLite `INTEGER`).
    fn i64(&self, op: &'static str, column: &str) -> StoreResult<i64>;
    /// A nullable `BIGINT`.
    fn opt_i64(&self, op: &'static str, column: &str) -> StoreResult<Option<i64>>;
    /// An `INTEGER`.
    fn i32(&self, op: &'static str, column: &str) -> StoreResult<i32>;
    /// A nullable `INTEGER`.
    fn opt_i32(&self, op: &'static str, column: &str) -> StoreResult<Option<i32>>;
    /// A `TEXT`.
    fn text(&self, op: &'static str, column: &str) -> StoreResult<String>;
    /// A nullable `TEXT`.
    fn opt_text(&self, op: &'static str, column: &str) -> StoreResult<Option<String>>;
    /// A `BOOLEAN` (SQLite: `INTEGER` 0 or 1).
    fn bool(&self, op: &'static str, column: &str) -> StoreResult<bool>;
    /// A `BYTEA` / `BLOB`.
    fn bytes(&self, op: &'static str, column: &str) -> StoreResult<Vec<u8>>;
    /// A nullable `BYTEA` / `BLOB`.
    fn opt_bytes(&self, op: &'static str, column: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Reads a column as the type the caller wants (picked by inference).
    fn get<T: Column>(&self, op: &'static str, column: &str) -> StoreResult<T>
    where
        Self: Sized,
    {
        T::read(self, op, column)
    }
}

/// A type a column can be read as, for [`Columns::get`].
pub trait Column: Sized {
    /// Reads `column` of `row` as this type.
    fn read<C: Columns>(row: &C, op: &'static str, column: &str) -> StoreResult<Self>;
}

macro_rules! column {
    ($($ty:ty => $method:ident),+ $(,)?) => {
        $(impl Column for $ty {
            fn read<C: Columns>(row: &C, op: &'static str, column: &str) -> StoreResult<Self> {
                row.$method(op, column)
            }
        })+
    };
}

column!(
    i64 => i64,
    Option<i64> => opt_i64,
    i32 => i32,
    Option<i32> => opt_i32,
    String => text,
    Option<String> => opt_text,
    bool => bool,
    Vec<u8> => bytes,
    Option<Vec<u8>> => opt_bytes,
);

/// `NotFound` unless exactly the one addressed row was changed.
pub fn one_row(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// A value as the text a JSON column stores, U+0000 replaced
/// ([`crate::content::stored_json`]).
pub fn json_text<T: serde::Serialize + ?Sized>(op: &'static str, value: &T) -> StoreResult<String> {
    crate::content::stored_json(value)
        .map_err(|_| StoreError::Backend(format!("{op}: a JSON value is not serialisable")))
}

/// Like [`json_text`], with `None` stored as SQL `NULL`.
pub fn json_nullable<T: serde::Serialize>(
    op: &'static str,
    value: Option<&T>,
) -> StoreResult<Option<String>> {
    value.map(|v| json_text(op, v)).transpose()
}

/// A `Backend` error for a stored value this version cannot read.
pub fn corrupt(op: &'static str, column: &'static str) -> StoreError {
    StoreError::Backend(format!(
        "{op}: {column} holds a value this version cannot read"
    ))
}

/// Reads a stored name (`table.column` in `what`) as the enum it names.
fn named<T: FromStr>(
    row: &impl Columns,
    op: &'static str,
    column: &str,
    what: &'static str,
) -> StoreResult<T> {
    row.text(op, column)?
        .parse::<T>()
        .map_err(|_| corrupt(op, what))
}

/// Reads a JSON column (stored as text) as a value.
fn json(
    row: &impl Columns,
    op: &'static str,
    column: &str,
    what: &'static str,
) -> StoreResult<serde_json::Value> {
    serde_json::from_str(&row.text(op, column)?).map_err(|_| corrupt(op, what))
}

/// A workspace (`id, name, created_at`).
pub fn read_workspace(op: &'static str, row: &impl Columns) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(row.get(op, "id")?),
        name: row.get(op, "name")?,
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

/// A user; `created_at` names the column of its creation time (a join renames it).
pub fn read_user(op: &'static str, row: &impl Columns, created_at: &str) -> StoreResult<User> {
    let username: Option<String> = row.get(op, "username")?;
    let locale: Option<String> = row.get(op, "locale")?;
    Ok(User {
        id: UserId(row.get(op, "id")?),
        username: username
            .map(|u| Username::parse(&u).map_err(|_| corrupt(op, "users.username")))
            .transpose()?,
        display_name: row.get(op, "display_name")?,
        locale: locale
            .map(|l| {
                l.parse::<Locale>()
                    .map_err(|()| corrupt(op, "users.locale"))
            })
            .transpose()?,
        disabled: row.get(op, "disabled")?,
        created_at: Timestamp(row.get(op, created_at)?),
    })
}

/// A user with what the sign-in check needs (the user's columns, `password_hash`,
/// `failed_logins`, `locked_until`).
pub fn read_credentials(op: &'static str, row: &impl Columns) -> StoreResult<UserCredentials> {
    let locked_until: Option<i64> = row.get(op, "locked_until")?;
    Ok(UserCredentials {
        user: read_user(op, row, "created_at")?,
        password_hash: row.get(op, "password_hash")?,
        failed_logins: row.get(op, "failed_logins")?,
        locked_until: locked_until.map(Timestamp),
    })
}

/// A membership.
pub fn read_membership(op: &'static str, row: &impl Columns) -> StoreResult<Membership> {
    Ok(Membership {
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        user_id: UserId(row.get(op, "user_id")?),
        role: named::<Role>(row, op, "role", "memberships.role")?,
        max_chats: row.get(op, "max_chats")?,
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

/// A web session.
pub fn read_web_session(op: &'static str, row: &impl Columns) -> StoreResult<WebSession> {
    Ok(WebSession {
        id: WebSessionId(row.get(op, "id")?),
        token_hash: row.get(op, "token_hash")?,
        csrf_hash: row.get(op, "csrf_hash")?,
        user_id: UserId(row.get(op, "user_id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        created_at: Timestamp(row.get(op, "created_at")?),
        last_seen_at: Timestamp(row.get(op, "last_seen_at")?),
        expires_at: Timestamp(row.get(op, "expires_at")?),
        ip: row.get(op, "ip")?,
        user_agent: row.get(op, "user_agent")?,
    })
}

/// An audit event (`details` is JSON text).
pub fn read_audit(op: &'static str, row: &impl Columns) -> StoreResult<AuditEvent> {
    let workspace_id: Option<i64> = row.get(op, "workspace_id")?;
    let actor_user_id: Option<i64> = row.get(op, "actor_user_id")?;
    Ok(AuditEvent {
        id: AuditEventId(row.get(op, "id")?),
        workspace_id: workspace_id.map(WorkspaceId),
        actor_user_id: actor_user_id.map(UserId),
        action: row.get(op, "action")?,
        target: row.get(op, "target")?,
        ip: row.get(op, "ip")?,
        details: json(row, op, "details", "audit_events.details")?,
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

/// A personal account.
pub fn read_account(op: &'static str, row: &impl Columns) -> StoreResult<Account> {
    let flood_wait_until: Option<i64> = row.get(op, "flood_wait_until")?;
    Ok(Account {
        id: AccountId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        phone: row.get(op, "phone")?,
        telegram_user_id: row.get(op, "telegram_user_id")?,
        first_name: row.get(op, "first_name")?,
        last_name: row.get(op, "last_name")?,
        username: row.get(op, "username")?,
        status: named::<AccountStatus>(row, op, "status", "accounts.status")?,
        status_detail: row.get(op, "status_detail")?,
        flood_wait_until: flood_wait_until.map(Timestamp),
        active: row.get(op, "active")?,
        ingest_groups: row.get(op, "ingest_groups")?,
        api_id: row.get(op, "api_id")?,
        api_hash_sealed: row.get(op, "api_hash_sealed")?,
        created_at: Timestamp(row.get(op, "created_at")?),
        updated_at: Timestamp(row.get(op, "updated_at")?),
    })
}

/// A data center's address and sealed auth key (`dc_id, ipv4, ipv6, auth_key_sealed`).
pub fn read_dc_key(op: &'static str, row: &impl Columns) -> StoreResult<DcKey> {
    Ok(DcKey {
        dc_id: row.get(op, "dc_id")?,
        ipv4: row.get(op, "ipv4")?,
        ipv6: row.get(op, "ipv6")?,
        auth_key_sealed: row.get(op, "auth_key_sealed")?,
    })
}

/// A cached peer (`peer_id, access_hash, subtype`).
pub fn read_peer(op: &'static str, row: &impl Columns) -> StoreResult<CachedPeer> {
    Ok(CachedPeer {
        peer_id: row.get(op, "peer_id")?,
        access_hash: row.get(op, "access_hash")?,
        subtype: row.get(op, "subtype")?,
    })
}

/// The common update state (`pts, qts, date, seq`).
pub fn read_update_state(op: &'static str, row: &impl Columns) -> StoreResult<UpdateState> {
    Ok(UpdateState {
        pts: row.get(op, "pts")?,
        qts: row.get(op, "qts")?,
        date: row.get(op, "date")?,
        seq: row.get(op, "seq")?,
    })
}

/// A chat.
pub fn read_chat(op: &'static str, row: &impl Columns) -> StoreResult<Chat> {
    let account_id: Option<i64> = row.get(op, "account_id")?;
    let bot_id: Option<i64> = row.get(op, "bot_id")?;
    let assignee_id: Option<i64> = row.get(op, "assignee_id")?;
    let last_message_at: Option<i64> = row.get(op, "last_message_at")?;
    Ok(Chat {
        id: ChatId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        account_id: account_id.map(AccountId),
        bot_id: bot_id.map(BotId),
        assignee_id: assignee_id.map(UserId),
        peer_id: row.get(op, "peer_id")?,
        peer_kind: named::<PeerKind>(row, op, "peer_kind", "chats.peer_kind")?,
        title: row.get(op, "title")?,
        username: row.get(op, "username")?,
        status: named::<ChatStatus>(row, op, "status", "chats.status")?,
        unread_count: row.get(op, "unread_count")?,
        last_message_at: last_message_at.map(Timestamp),
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}

/// A message (`entities` and `media` are JSON text, read leniently: see [`crate::content`]; a
/// NULL `media` is none).
pub fn read_message(op: &'static str, row: &impl Columns) -> StoreResult<Message> {
    let media: Option<String> = row.get(op, "media")?;
    let edited_at: Option<i64> = row.get(op, "edited_at")?;
    let author_id: Option<i64> = row.get(op, "author_id")?;
    Ok(Message {
        id: MessageId(row.get(op, "id")?),
        chat_id: ChatId(row.get(op, "chat_id")?),
        tg_message_id: row.get(op, "tg_message_id")?,
        direction: named::<Direction>(row, op, "direction", "messages.direction")?,
        sender_id: row.get(op, "sender_id")?,
        sender_name: row.get(op, "sender_name")?,
        text: row.get(op, "text")?,
        entities: Entity::list_from_stored(&row.text(op, "entities")?),
        media: media.as_deref().and_then(Media::from_stored),
        reply_to_tg_id: row.get(op, "reply_to_tg_id")?,
        sent_at: Timestamp(row.get(op, "sent_at")?),
        edited_at: edited_at.map(Timestamp),
        deleted: row.get(op, "deleted")?,
        status: named::<DeliveryStatus>(row, op, "status", "messages.status")?,
        error: row.get(op, "error")?,
        author_id: author_id.map(UserId),
    })
}

/// An earlier version of a message (`message_id, old_text, edited_at`).
pub fn read_message_edit(op: &'static str, row: &impl Columns) -> StoreResult<MessageEdit> {
    Ok(MessageEdit {
        message_id: MessageId(row.get(op, "message_id")?),
        old_text: row.get(op, "old_text")?,
        edited_at: Timestamp(row.get(op, "edited_at")?),
    })
}

/// A bot.
pub fn read_bot(op: &'static str, row: &impl Columns) -> StoreResult<Bot> {
    Ok(Bot {
        id: BotId(row.get(op, "id")?),
        workspace_id: WorkspaceId(row.get(op, "workspace_id")?),
        telegram_bot_id: row.get(op, "telegram_bot_id")?,
        username: row.get(op, "username")?,
        first_name: row.get(op, "first_name")?,
        mode: named::<BotMode>(row, op, "mode", "bots.mode")?,
        status: named::<BotStatus>(row, op, "status", "bots.status")?,
        status_detail: row.get(op, "status_detail")?,
        active: row.get(op, "active")?,
        hook_id: row.get(op, "hook_id")?,
        token_sealed: row.get(op, "token_sealed")?,
        hook_secret_sealed: row.get(op, "hook_secret_sealed")?,
        last_update_id: row.get(op, "last_update_id")?,
        created_at: Timestamp(row.get(op, "created_at")?),
    })
}
