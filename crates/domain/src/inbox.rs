//! The operator inbox: bots (Bot API), who may see which chat, assignment, and the durable
//! outbox of replies. Chats and messages themselves are in [`crate::account`]; a chat belongs
//! to exactly one personal account or one bot.

use crate::account::{Chat, ChatStatus, IncomingMessage, IngestOutcome, Message, MessageEdit};
use crate::content::{Entity, Media};
use crate::error_code::ErrorCode;
use crate::ids::{BotId, ChatId, MessageId, OutboxId, UserId, WorkspaceId};
use crate::model::Role;
use crate::store::StoreError;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Declares a fieldless enum stored as text, with `as_str` and `FromStr` agreeing.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(()),
                }
            }
        }
    };
}

text_enum!(
    /// Delivery state of a message: ingested messages are `received`; replies move through the
    /// outbox states.
    DeliveryStatus {
        /// Came from Telegram.
        Received = "received",
        /// Written by an operator, waiting in the outbox.
        Queued = "queued",
        /// Being handed to Telegram.
        Sending = "sending",
        /// Telegram accepted it.
        Sent = "sent",
        /// Gave up (see the message's error); the operator may retry.
        Failed = "failed",
    }
);

/// The error of a reply whose request reached Telegram while its answer was lost, with nothing
/// to guard a repeat (the Bot API): it may or may not have been posted, so it ends `failed`
/// with this code and an operator decides (send again, or mark it sent).
pub const SEND_UNCERTAIN: &str = "send_uncertain";

text_enum!(
    /// How a bot receives updates.
    BotMode {
        /// Telegram posts updates to `/tg/hook/{hook id}` (a public URL is configured).
        Webhook = "webhook",
        /// Switchboard asks with `getUpdates`.
        Polling = "polling",
    }
);

text_enum!(
    /// Health of a bot.
    BotStatus {
        /// Starting (checking the token, setting the webhook).
        Connecting = "connecting",
        /// Receiving updates.
        Connected = "connected",
        /// The Bot API failed; retrying with backoff.
        Reconnecting = "reconnecting",
        /// Telegram rejected the token.
        Unauthorized = "unauthorized",
        /// Stopped by an administrator.
        Stopped = "stopped",
    }
);

/// What a chat belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ChatOwner {
    /// A personal account (MTProto).
    Account(crate::ids::AccountId),
    /// A bot (Bot API).
    Bot(BotId),
}

impl ChatOwner {
    /// The owner of `chat`; `None` only for a corrupt row.
    pub fn of(chat: &Chat) -> Option<ChatOwner> {
        match (chat.account_id, chat.bot_id) {
            (Some(a), None) => Some(ChatOwner::Account(a)),
            (None, Some(b)) => Some(ChatOwner::Bot(b)),
            _ => None,
        }
    }
}

/// A bot connected through the Bot API. The token is sealed by the vault before it reaches the
/// store and is never part of any response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bot {
    /// Identifier.
    pub id: BotId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Telegram's id of the bot (the digits before `:` in its token).
    pub telegram_bot_id: i64,
    /// `@username` without the `@`.
    pub username: String,
    /// Display name.
    pub first_name: String,
    /// How updates arrive.
    pub mode: BotMode,
    /// Health.
    pub status: BotStatus,
    /// Why, for `reconnecting` and `unauthorized`.
    pub status_detail: Option<String>,
    /// Supervised (false when stopped).
    pub active: bool,
    /// The random path segment of its webhook URL (never the token).
    #[serde(skip)]
    pub hook_id: String,
    /// The sealed token.
    #[serde(skip)]
    pub token_sealed: Vec<u8>,
    /// The sealed webhook secret (`X-Telegram-Bot-Api-Secret-Token`).
    #[serde(skip)]
    pub hook_secret_sealed: Vec<u8>,
    /// Highest `update_id` stored.
    pub last_update_id: Option<i64>,
    /// Created.
    pub created_at: Timestamp,
}

/// A bot to create.
#[derive(Clone, Debug)]
pub struct NewBot {
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Telegram's id of the bot.
    pub telegram_bot_id: i64,
    /// Username.
    pub username: String,
    /// Display name.
    pub first_name: String,
    /// How updates arrive.
    pub mode: BotMode,
    /// Random path segment for the webhook.
    pub hook_id: String,
    /// Sealed token.
    pub token_sealed: Vec<u8>,
    /// Sealed webhook secret.
    pub hook_secret_sealed: Vec<u8>,
}

/// Who is asking: every inbox read and write is scoped by it in the store's queries. Admins
/// and owners see the whole workspace; an operator sees the chats assigned to them and the
/// unassigned queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// The workspace acted in.
    pub workspace: WorkspaceId,
    /// The member.
    pub user: UserId,
    /// Their role there.
    pub role: Role,
}

impl Viewer {
    /// True if this viewer may see and act on a chat with this assignee.
    pub fn may_see(&self, assignee: Option<UserId>) -> bool {
        self.role.is_admin() || assignee.is_none_or(|a| a == self.user)
    }

    /// The assignment rule: may this viewer change a chat's assignee from `current` to `wanted`?
    /// Owners and admins may assign anyone; any other member may only take an unassigned chat
    /// for themselves, hand their own chat back, or leave the assignee as it is. Refused with
    /// `Conflict(ErrorCode::AssignForbidden)`. Membership of `wanted` is the store's to check.
    pub fn check_assignment(
        &self,
        current: Option<UserId>,
        wanted: Option<UserId>,
    ) -> Result<(), StoreError> {
        if self.role.is_admin() {
            return Ok(());
        }
        let me = Some(self.user);
        let take = current.is_none() && wanted == me;
        let hand_back = current == me && wanted.is_none();
        let unchanged = current == wanted;
        if take || hand_back || unchanged {
            Ok(())
        } else {
            Err(StoreError::Conflict(ErrorCode::AssignForbidden))
        }
    }

    /// The auto-take rule of a reply: true if this viewer's reply to a chat assigned to
    /// `current` assigns the chat to them — an operator's reply to an unassigned chat takes it;
    /// an owner's or admin's reply leaves the assignee alone.
    pub fn reply_takes_chat(&self, current: Option<UserId>) -> bool {
        current.is_none() && !self.role.is_admin()
    }
}

/// The retry rule of the outbox: a reply may be queued again only when its outbox row is
/// `failed`. `state` is the row's state and last error, `None` if the viewer sees no such
/// reply (`NotFound`); any other state is `Conflict(ErrorCode::NotFailed)`.
pub fn check_retry(state: Option<(&str, Option<&str>)>) -> Result<(), StoreError> {
    match state {
        None => Err(StoreError::NotFound),
        Some(("failed", _)) => Ok(()),
        Some(_) => Err(StoreError::Conflict(ErrorCode::NotFailed)),
    }
}

/// The mark-as-sent rule of the outbox: a reply may be marked sent by hand only when it failed
/// with [`SEND_UNCERTAIN`] (Telegram may have delivered it). `state` as for [`check_retry`];
/// any other state is `Conflict(ErrorCode::NotUncertain)`.
pub fn check_mark_sent(state: Option<(&str, Option<&str>)>) -> Result<(), StoreError> {
    match state {
        None => Err(StoreError::NotFound),
        Some(("failed", Some(SEND_UNCERTAIN))) => Ok(()),
        Some(_) => Err(StoreError::Conflict(ErrorCode::NotUncertain)),
    }
}

/// Which assignee a chat list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssigneeFilter {
    /// Everything the viewer may see.
    #[default]
    All,
    /// Assigned to the viewer.
    Mine,
    /// Not assigned to anyone.
    Unassigned,
}

/// Filters and paging of the chat list (newest activity first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatFilter {
    /// Assignee.
    pub assignee: AssigneeFilter,
    /// Only this status.
    pub status: Option<ChatStatus>,
    /// Only chats of this account.
    pub account: Option<crate::ids::AccountId>,
    /// Only chats of this bot.
    pub bot: Option<BotId>,
    /// Only chats whose last activity is older than this `(last_message_at, id)` cursor.
    pub before: Option<(Timestamp, ChatId)>,
    /// At most this many (the store caps it at 200).
    pub limit: u32,
}

/// A reply to write together with its outbox item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReply {
    /// Text or caption.
    pub text: String,
    /// Formatting entities.
    pub entities: Vec<Entity>,
    /// The attachment: its file store id, kind, name and MIME type.
    pub media: Option<Media>,
    /// Replied-to Telegram message id.
    pub reply_to_tg_id: Option<i64>,
    /// MTProto `random_id`: resending the same item can never post it twice.
    pub random_id: i64,
}

/// A file an operator uploaded as an attachment, owned by their workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUpload {
    /// The workspace it was uploaded in.
    pub workspace: WorkspaceId,
    /// The file store id (hex SHA-256 of the bytes).
    pub file_id: String,
    /// Size in bytes.
    pub size: i64,
    /// MIME type as accepted.
    pub mime_type: String,
    /// Who uploaded it.
    pub uploaded_by: UserId,
}

impl NewReply {
    /// The file store id of the attachment, if any.
    pub fn attachment_file(&self) -> Option<&str> {
        self.media.as_ref()?.file_id.as_deref()
    }
}

/// Raw bot updates as both stores keep them: each `update_id` once (the first wins), the
/// payload parsed and written again without U+0000 — PostgreSQL's `JSONB` cannot hold
/// `\u0000`, and one such update must not block a bot's webhook forever. Fails when a payload
/// is not JSON.
pub fn stored_updates(updates: &[(i64, String)]) -> Result<Vec<(i64, String)>, serde_json::Error> {
    let mut seen = std::collections::HashSet::with_capacity(updates.len());
    let mut out = Vec::with_capacity(updates.len());
    for (update_id, payload) in updates {
        if seen.insert(*update_id) {
            let value: serde_json::Value = serde_json::from_str(payload)?;
            out.push((
                *update_id,
                serde_json::to_string(&crate::nul::clean_json(&value))?,
            ));
        }
    }
    Ok(out)
}

/// A reply whose outbox item [`InboxStore::recover_outbox`] returned, in its new state
/// (`queued` again, or `failed` with [`SEND_UNCERTAIN`]), for announcing it to operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredReply {
    /// The workspace of its chat.
    pub workspace: WorkspaceId,
    /// The message, as it now is.
    pub message: Message,
}

/// One reply waiting to be sent, with what the sender needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Identifier.
    pub id: OutboxId,
    /// The message it sends.
    pub message: Message,
    /// The chat it goes to.
    pub chat: Chat,
    /// Attempts made so far (including the current one once claimed).
    pub attempts: i32,
    /// The `random_id` to send with.
    pub random_id: i64,
}

/// How loaded an operator is, for round-robin assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorLoad {
    /// The member.
    pub user: UserId,
    /// Their cap.
    pub max_chats: i32,
    /// Chats assigned to them that are not resolved.
    pub open_chats: i32,
}

/// Storage of bots, the operator inbox and the outbox. Every inbox method takes a [`Viewer`]
/// and checks visibility in its SQL; a chat another operator owns, or another workspace's, is
/// `NotFound` — indistinguishable from one that does not exist.
#[async_trait::async_trait]
pub trait InboxStore: Send + Sync + 'static {
    // --- bots ---

    /// Creates a bot; `Conflict(ErrorCode::BotExists)` when the workspace already has it.
    async fn create_bot(&self, bot: &NewBot, now: Timestamp) -> crate::StoreResult<Bot>;
    /// Reads a bot of a workspace.
    async fn get_bot(&self, workspace: WorkspaceId, id: BotId) -> crate::StoreResult<Bot>;
    /// Reads a bot by id alone (the supervisor; never exposed to requests).
    async fn load_bot(&self, id: BotId) -> crate::StoreResult<Bot>;
    /// Reads a bot by its webhook path segment.
    async fn find_bot_by_hook(&self, hook_id: &str) -> crate::StoreResult<Option<Bot>>;
    /// Bots of a workspace, by id.
    async fn list_bots(&self, workspace: WorkspaceId) -> crate::StoreResult<Vec<Bot>>;
    /// Every active bot, all workspaces.
    async fn list_active_bots(&self) -> crate::StoreResult<Vec<Bot>>;
    /// Sets health.
    async fn set_bot_status(
        &self,
        id: BotId,
        status: BotStatus,
        detail: Option<&str>,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Starts or stops supervision.
    async fn set_bot_active(
        &self,
        id: BotId,
        active: bool,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Deletes a bot with its chats and messages.
    async fn delete_bot(&self, workspace: WorkspaceId, id: BotId) -> crate::StoreResult<()>;
    /// Stores raw updates (JSON text) before they are processed; repeats of a stored
    /// `update_id` are dropped. Returns how many were new.
    async fn store_bot_updates(
        &self,
        bot: BotId,
        updates: &[(i64, String)],
        now: Timestamp,
    ) -> crate::StoreResult<usize>;
    /// Stored updates not processed yet, oldest first.
    async fn pending_bot_updates(
        &self,
        bot: BotId,
        limit: u32,
    ) -> crate::StoreResult<Vec<(i64, String)>>;
    /// Ingests messages of a bot's chats (as [`crate::AccountStore::ingest_messages`] does for
    /// accounts) and marks the given updates processed, in one transaction.
    async fn ingest_bot_messages(
        &self,
        bot: BotId,
        batch: &[IncomingMessage],
        processed: &[i64],
        now: Timestamp,
    ) -> crate::StoreResult<IngestOutcome>;
    /// Messages of `owner`'s chats whose media names a Telegram file (`id` for accounts,
    /// `tg_file_id` for bots) but has no stored file (`file_id`) and is not `too_large`, and
    /// that are not deleted: downloads that failed or were cut short by a stop or a crash.
    /// Only messages stored before `stored_before`; oldest first, after `after`, at most
    /// `limit`.
    async fn messages_missing_files(
        &self,
        owner: ChatOwner,
        stored_before: Timestamp,
        after: Option<MessageId>,
        limit: u32,
    ) -> crate::StoreResult<Vec<Message>>;
    /// Replaces the media JSON of a message of a bot's chat (once its file is downloaded).
    /// `None` if the message is unknown or belongs to another bot.
    async fn set_bot_message_media(
        &self,
        bot: BotId,
        message: MessageId,
        media: &Media,
    ) -> crate::StoreResult<Option<Message>>;
    /// Applies an edit to a message of a bot's chat (as
    /// [`crate::AccountStore::apply_message_edit`] does for accounts): keeps the previous text
    /// in the history; an older edit never undoes a newer one. `None` if the message is unknown.
    async fn apply_bot_message_edit(
        &self,
        bot: BotId,
        peer_id: i64,
        tg_message_id: i64,
        new_text: &str,
        entities: &[Entity],
        edited_at: Timestamp,
    ) -> crate::StoreResult<Option<Message>>;

    // --- the inbox, scoped by the viewer ---

    /// Chats the viewer may see, newest activity first.
    async fn list_inbox(
        &self,
        viewer: &Viewer,
        filter: &ChatFilter,
    ) -> crate::StoreResult<Vec<Chat>>;
    /// One chat the viewer may see.
    async fn get_chat(&self, viewer: &Viewer, chat: ChatId) -> crate::StoreResult<Chat>;
    /// Messages of a chat the viewer may see, newest first, older than `before` when given.
    async fn chat_messages(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        before: Option<MessageId>,
        limit: u32,
    ) -> crate::StoreResult<Vec<Message>>;
    /// One message of a chat the viewer may see.
    async fn get_message(&self, viewer: &Viewer, message: MessageId)
    -> crate::StoreResult<Message>;
    /// Earlier versions of a message the viewer may see, oldest first.
    async fn message_history(
        &self,
        viewer: &Viewer,
        message: MessageId,
    ) -> crate::StoreResult<Vec<MessageEdit>>;
    /// Zeroes the unread count; returns the chat and, when something was unread, the newest
    /// inbound Telegram message id (what `readHistory` needs); `None` when nothing was unread
    /// (then nothing changes), so that two concurrent calls tell Telegram once.
    async fn mark_chat_read(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        now: Timestamp,
    ) -> crate::StoreResult<(Chat, Option<i64>)>;
    /// Sets the status.
    async fn set_chat_status(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        status: ChatStatus,
        now: Timestamp,
    ) -> crate::StoreResult<Chat>;
    /// Assigns (or unassigns) a chat. Admins may assign anyone of the workspace; an operator
    /// may only take an unassigned chat for themselves or hand their own back.
    /// `Conflict(ErrorCode::NotAMember)` when the assignee is not in the workspace.
    async fn assign_chat(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        assignee: Option<UserId>,
        now: Timestamp,
    ) -> crate::StoreResult<Chat>;
    /// Assigns a chat to `user` only if it is still unassigned (automatic assignment); `None`
    /// when someone else got it first.
    async fn auto_assign_chat(
        &self,
        chat: ChatId,
        user: UserId,
        now: Timestamp,
    ) -> crate::StoreResult<Option<Chat>>;
    /// Operators (role `operator`) of a workspace with their caps and open assigned chats.
    async fn operator_loads(&self, workspace: WorkspaceId)
    -> crate::StoreResult<Vec<OperatorLoad>>;

    // --- the outbox ---

    /// Records that `upload.file_id` was uploaded in `upload.workspace` (again: no change).
    async fn record_upload(&self, upload: &NewUpload, now: Timestamp) -> crate::StoreResult<()>;

    /// Writes a reply and its outbox item in one transaction. An operator replying to an
    /// unassigned chat takes it. An attachment must be an upload of the viewer's workspace,
    /// else `Conflict(ErrorCode::FileNotFound)` — the same for another workspace's file as for none.
    async fn enqueue_reply(
        &self,
        viewer: &Viewer,
        chat: ChatId,
        reply: &NewReply,
        now: Timestamp,
    ) -> crate::StoreResult<(Message, Chat)>;
    /// Records that a reply whose send was uncertain ([`SEND_UNCERTAIN`]) did reach the chat,
    /// as the operator checked: it ends `sent` (without a Telegram id).
    /// `Conflict(ErrorCode::NotUncertain)` for any other message.
    async fn mark_reply_sent(
        &self,
        viewer: &Viewer,
        message: MessageId,
        now: Timestamp,
    ) -> crate::StoreResult<Message>;
    /// Puts a failed reply back in the queue.
    async fn retry_reply(
        &self,
        viewer: &Viewer,
        message: MessageId,
        now: Timestamp,
    ) -> crate::StoreResult<Message>;
    /// Claims up to `limit` items due at `now` (oldest first), marking them `sending` and
    /// counting the attempt.
    async fn claim_outbox(&self, now: Timestamp, limit: u32)
    -> crate::StoreResult<Vec<OutboxItem>>;
    /// Records a successful send. If ingestion already stored Telegram's echo of the message,
    /// the echo is removed; its id is returned.
    async fn complete_outbox(
        &self,
        item: OutboxId,
        tg_message_id: i64,
        sent_at: Timestamp,
        now: Timestamp,
    ) -> crate::StoreResult<(Message, Option<MessageId>)>;
    /// Records a failed attempt: retried at `retry_at`, or `failed` with `error` when `None`.
    async fn fail_outbox(
        &self,
        item: OutboxId,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> crate::StoreResult<Message>;
    /// Returns items left `sending` since `stuck_since` or earlier (all of them after a
    /// restart; those stuck past a deadline while running): they go back to `queued` when
    /// their chat belongs to a personal account (MTProto's `random_id` makes the resend safe)
    /// and end `failed` with [`SEND_UNCERTAIN`] for bots (the Bot API has no such guard).
    /// Returns the replies changed, in their new state (ordered by message id).
    async fn recover_outbox(
        &self,
        stuck_since: Timestamp,
        now: Timestamp,
    ) -> crate::StoreResult<Vec<RecoveredReply>>;
    /// The earliest time an item is due, if any is queued.
    async fn next_outbox_due(&self) -> crate::StoreResult<Option<Timestamp>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: UserId = UserId(1);
    const OTHER: UserId = UserId(2);

    fn viewer(role: Role) -> Viewer {
        Viewer {
            workspace: WorkspaceId(1),
            user: ME,
            role,
        }
    }

    fn forbidden(r: Result<(), StoreError>) -> bool {
        matches!(r, Err(StoreError::Conflict(ErrorCode::AssignForbidden)))
    }

    #[test]
    fn admins_and_owners_may_assign_anyone() {
        for role in [Role::Owner, Role::Admin] {
            let v = viewer(role);
            for current in [None, Some(ME), Some(OTHER)] {
                for wanted in [None, Some(ME), Some(OTHER)] {
                    assert!(v.check_assignment(current, wanted).is_ok(), "{role:?}");
                }
            }
        }
    }

    #[test]
    fn an_operator_may_take_hand_back_or_leave_unchanged() {
        let v = viewer(Role::Operator);
        assert!(v.check_assignment(None, Some(ME)).is_ok(), "take");
        assert!(v.check_assignment(Some(ME), None).is_ok(), "hand back");
        assert!(
            v.check_assignment(None, None).is_ok(),
            "unchanged, unassigned"
        );
        assert!(
            v.check_assignment(Some(ME), Some(ME)).is_ok(),
            "unchanged, mine"
        );
        assert!(
            v.check_assignment(Some(OTHER), Some(OTHER)).is_ok(),
            "unchanged, theirs"
        );
    }

    #[test]
    fn an_operator_may_not_assign_others_or_take_from_them() {
        let v = viewer(Role::Operator);
        assert!(
            forbidden(v.check_assignment(None, Some(OTHER))),
            "give away unassigned"
        );
        assert!(
            forbidden(v.check_assignment(Some(ME), Some(OTHER))),
            "give away mine"
        );
        assert!(
            forbidden(v.check_assignment(Some(OTHER), Some(ME))),
            "take theirs"
        );
        assert!(
            forbidden(v.check_assignment(Some(OTHER), None)),
            "unassign theirs"
        );
    }

    #[test]
    fn only_an_operators_reply_takes_an_unassigned_chat() {
        let op = viewer(Role::Operator);
        assert!(op.reply_takes_chat(None));
        assert!(!op.reply_takes_chat(Some(ME)));
        assert!(!op.reply_takes_chat(Some(OTHER)));
        for role in [Role::Owner, Role::Admin] {
            assert!(!viewer(role).reply_takes_chat(None), "{role:?}");
        }
    }

    #[test]
    fn directions_round_trip() {
        use crate::account::Direction;
        for d in [Direction::In, Direction::Out] {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(d));
        }
        assert_eq!("sideways".parse::<Direction>(), Err(()));
    }

    #[test]
    fn only_a_failed_reply_may_be_retried() {
        assert!(matches!(check_retry(None), Err(StoreError::NotFound)));
        assert!(check_retry(Some(("failed", None))).is_ok());
        assert!(check_retry(Some(("failed", Some(SEND_UNCERTAIN)))).is_ok());
        for state in ["queued", "sending", "sent"] {
            assert!(
                matches!(
                    check_retry(Some((state, None))),
                    Err(StoreError::Conflict(ErrorCode::NotFailed))
                ),
                "{state}"
            );
        }
    }

    #[test]
    fn only_an_uncertain_failure_may_be_marked_sent() {
        assert!(matches!(check_mark_sent(None), Err(StoreError::NotFound)));
        assert!(check_mark_sent(Some(("failed", Some(SEND_UNCERTAIN)))).is_ok());
        for state in [
            ("failed", None),
            ("failed", Some("flood_wait")),
            ("queued", None),
            ("sent", None),
        ] {
            assert!(
                matches!(
                    check_mark_sent(Some(state)),
                    Err(StoreError::Conflict(ErrorCode::NotUncertain))
                ),
                "{state:?}"
            );
        }
    }
}
