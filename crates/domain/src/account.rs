//! Personal Telegram accounts (MTProto) and the session data grammers keeps for each: auth keys
//! per data center (sealed by the vault before they reach the store), the peer cache and the
//! update state. Also the chats and messages that ingestion writes.

use crate::content::{Entity, Media};
use crate::ids::{AccountId, BotId, ChatId, MessageId, UserId, WorkspaceId};
use crate::inbox::DeliveryStatus;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Health of an account's connection, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Starting its client.
    Connecting,
    /// Connected and receiving updates.
    Connected,
    /// Lost its connection; retrying with backoff.
    Reconnecting,
    /// Telegram asked it to wait (see `flood_wait_until`).
    FloodWait,
    /// The session was revoked; needs a new sign-in.
    Unauthorized,
    /// Telegram banned or deactivated the account.
    Banned,
    /// Stopped by an administrator.
    Stopped,
}

impl AccountStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [AccountStatus; 7] = [
        AccountStatus::Connecting,
        AccountStatus::Connected,
        AccountStatus::Reconnecting,
        AccountStatus::FloodWait,
        AccountStatus::Unauthorized,
        AccountStatus::Banned,
        AccountStatus::Stopped,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Connecting => "connecting",
            AccountStatus::Connected => "connected",
            AccountStatus::Reconnecting => "reconnecting",
            AccountStatus::FloodWait => "flood_wait",
            AccountStatus::Unauthorized => "unauthorized",
            AccountStatus::Banned => "banned",
            AccountStatus::Stopped => "stopped",
        }
    }
}

impl FromStr for AccountStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "connecting" => AccountStatus::Connecting,
            "connected" => AccountStatus::Connected,
            "reconnecting" => AccountStatus::Reconnecting,
            "flood_wait" => AccountStatus::FloodWait,
            "unauthorized" => AccountStatus::Unauthorized,
            "banned" => AccountStatus::Banned,
            "stopped" => AccountStatus::Stopped,
            _ => return Err(()),
        })
    }
}

/// A personal Telegram account connected to a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Identifier.
    pub id: AccountId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Phone number, digits only.
    pub phone: Option<String>,
    /// Telegram user id, once signed in.
    pub telegram_user_id: Option<i64>,
    /// First name on Telegram.
    pub first_name: String,
    /// Last name on Telegram.
    pub last_name: Option<String>,
    /// Public username.
    pub username: Option<String>,
    /// Connection health.
    pub status: AccountStatus,
    /// Why it is in that state (human-readable, never secret).
    pub status_detail: Option<String>,
    /// End of a FloodWait.
    pub flood_wait_until: Option<Timestamp>,
    /// Should the supervisor run it (false after stop or logout).
    pub active: bool,
    /// Ingest group chats too (private chats always).
    pub ingest_groups: bool,
    /// Per-account `api_id` override.
    pub api_id: Option<i32>,
    /// Sealed per-account `api_hash` override (vault bytes).
    #[serde(skip)]
    pub api_hash_sealed: Option<Vec<u8>>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// An account to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Phone, digits only.
    pub phone: Option<String>,
    /// Telegram user id if known.
    pub telegram_user_id: Option<i64>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Initial status.
    pub status: AccountStatus,
    /// Run it now.
    pub active: bool,
    /// Ingest groups.
    pub ingest_groups: bool,
    /// `api_id` override.
    pub api_id: Option<i32>,
    /// Sealed `api_hash` override.
    pub api_hash_sealed: Option<Vec<u8>>,
}

/// Profile facts learnt from Telegram after sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProfile {
    /// Telegram user id.
    pub telegram_user_id: i64,
    /// Phone, digits only.
    pub phone: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Username.
    pub username: Option<String>,
}

/// One data center's address and (sealed) auth key in an account's session.
#[derive(Clone, PartialEq, Eq)]
pub struct DcKey {
    /// Data center id.
    pub dc_id: i32,
    /// `ip:port`.
    pub ipv4: String,
    /// `[ip]:port`.
    pub ipv6: String,
    /// The 256-byte auth key sealed by the vault, if the DC has one.
    pub auth_key_sealed: Option<Vec<u8>>,
}

impl std::fmt::Debug for DcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DcKey")
            .field("dc_id", &self.dc_id)
            .field("ipv4", &self.ipv4)
            .field("ipv6", &self.ipv6)
            .field(
                "auth_key_sealed",
                &self.auth_key_sealed.as_ref().map(|k| k.len()),
            )
            .finish()
    }
}

/// A cached peer of an account (what grammers needs to address it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPeer {
    /// Bot-API style dialog id (users positive, chats negative, channels -100…).
    pub peer_id: i64,
    /// Access hash, when known.
    pub access_hash: Option<i64>,
    /// grammers' subtype bits (1 self, 2 bot, 4 megagroup, 8 broadcast, 16 gigagroup).
    pub subtype: i32,
}

/// The common update state of an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    /// Common pts.
    pub pts: i32,
    /// qts (secret chats, bots).
    pub qts: i32,
    /// Date of the last update.
    pub date: i32,
    /// seq.
    pub seq: i32,
}

/// Kind of peer a chat is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// A person.
    User,
    /// A bot.
    Bot,
    /// A basic group.
    Group,
    /// A supergroup.
    Supergroup,
    /// A broadcast channel.
    Channel,
}

impl PeerKind {
    /// A one-to-one chat (a person or a bot), always ingested; the others are group chats,
    /// ingested only when the account's `ingest_groups` is on.
    pub fn is_private(self) -> bool {
        matches!(self, PeerKind::User | PeerKind::Bot)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::User => "user",
            PeerKind::Bot => "bot",
            PeerKind::Group => "group",
            PeerKind::Supergroup => "supergroup",
            PeerKind::Channel => "channel",
        }
    }
}

impl FromStr for PeerKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "user" => PeerKind::User,
            "bot" => PeerKind::Bot,
            "group" => PeerKind::Group,
            "supergroup" => PeerKind::Supergroup,
            "channel" => PeerKind::Channel,
            _ => return Err(()),
        })
    }
}

/// Conversation status in the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChatStatus {
    /// Needs attention.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Done (a new inbound message reopens it).
    Resolved,
}

impl ChatStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Open => "open",
            ChatStatus::Pending => "pending",
            ChatStatus::Resolved => "resolved",
        }
    }
}

impl FromStr for ChatStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => ChatStatus::Open,
            "pending" => ChatStatus::Pending,
            "resolved" => ChatStatus::Resolved,
            _ => return Err(()),
        })
    }
}

/// One conversation of an account with a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chat {
    /// Identifier.
    pub id: ChatId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The personal account it belongs to (exactly one of `account_id` and `bot_id` is set).
    pub account_id: Option<AccountId>,
    /// The bot it belongs to.
    pub bot_id: Option<BotId>,
    /// The operator it is assigned to.
    pub assignee_id: Option<UserId>,
    /// The peer's Bot-API style id.
    pub peer_id: i64,
    /// Kind of peer.
    pub peer_kind: PeerKind,
    /// Name shown.
    pub title: String,
    /// Peer's username.
    pub username: Option<String>,
    /// Inbox status.
    pub status: ChatStatus,
    /// Unread inbound messages.
    pub unread_count: i32,
    /// Time of the newest message.
    pub last_message_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
}

/// Direction of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the peer.
    In,
    /// From the account (sent by the hub or by the owner from their phone).
    Out,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl FromStr for Direction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "in" => Direction::In,
            "out" => Direction::Out,
            _ => return Err(()),
        })
    }
}

/// A message as Telegram delivered it, ready to store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// The peer's Bot-API style id (the chat key together with the account).
    pub peer_id: i64,
    /// Kind of peer.
    pub peer_kind: PeerKind,
    /// Chat title to show (peer's name).
    pub chat_title: String,
    /// Peer's username.
    pub chat_username: Option<String>,
    /// Telegram message id (unique per chat).
    pub tg_message_id: i64,
    /// In or out.
    pub direction: Direction,
    /// Sender's Telegram id (groups have many).
    pub sender_id: Option<i64>,
    /// Sender's name.
    pub sender_name: Option<String>,
    /// Text or caption.
    pub text: String,
    /// Formatting entities.
    pub entities: Vec<Entity>,
    /// Media metadata, if any.
    pub media: Option<Media>,
    /// Replied-to Telegram message id.
    pub reply_to_tg_id: Option<i64>,
    /// Telegram's date of the message.
    pub sent_at: Timestamp,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Identifier.
    pub id: MessageId,
    /// Chat.
    pub chat_id: ChatId,
    /// Telegram message id (`None` until an outbound message is sent).
    pub tg_message_id: Option<i64>,
    /// In or out.
    pub direction: Direction,
    /// Sender's Telegram id.
    pub sender_id: Option<i64>,
    /// Sender's name.
    pub sender_name: Option<String>,
    /// Current text.
    pub text: String,
    /// Formatting entities.
    pub entities: Vec<Entity>,
    /// Media metadata, if any.
    pub media: Option<Media>,
    /// Replied-to Telegram message id.
    pub reply_to_tg_id: Option<i64>,
    /// When Telegram says it was sent.
    pub sent_at: Timestamp,
    /// When it was last edited.
    pub edited_at: Option<Timestamp>,
    /// Deleted on Telegram.
    pub deleted: bool,
    /// Delivery: `received` for ingested messages, the outbox state for replies.
    pub status: DeliveryStatus,
    /// Why sending failed (a stable code), for `failed` replies.
    pub error: Option<String>,
    /// The operator who wrote a reply.
    pub author_id: Option<UserId>,
}

/// An earlier version of an edited message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageEdit {
    /// The message.
    pub message_id: MessageId,
    /// The text before the edit.
    pub old_text: String,
    /// When the edit happened.
    pub edited_at: Timestamp,
}

/// What happened when a batch of messages was ingested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Messages newly stored (duplicates are not counted).
    pub inserted: Vec<Message>,
    /// Chats created or changed by the batch.
    pub chats: Vec<Chat>,
}

/// A person to open a chat with ([`AccountStore::open_private_chat`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivatePeer {
    /// Their Telegram user id (positive).
    pub peer_id: i64,
    /// `User` or `Bot`.
    pub kind: PeerKind,
    /// Name shown.
    pub title: String,
    /// Username without `@`.
    pub username: Option<String>,
}

/// Storage of accounts, their Telegram session data, and ingested chats and messages.
/// Workspace-facing reads take the workspace, so one tenant cannot reach another's accounts.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync + 'static {
    // --- accounts ---

    /// Creates an account; `Conflict(ErrorCode::AccountExists)` when the workspace already has an
    /// account with this Telegram user id.
    async fn create_account(
        &self,
        account: &NewAccount,
        now: Timestamp,
    ) -> crate::StoreResult<Account>;
    /// Reads an account of a workspace.
    async fn get_account(
        &self,
        workspace: WorkspaceId,
        id: AccountId,
    ) -> crate::StoreResult<Account>;
    /// Reads an account by id alone (the supervisor; never exposed to requests).
    async fn load_account(&self, id: AccountId) -> crate::StoreResult<Account>;
    /// Accounts of a workspace, by id.
    async fn list_accounts(&self, workspace: WorkspaceId) -> crate::StoreResult<Vec<Account>>;
    /// Every account the supervisor should run (`active`), all workspaces, by id.
    async fn list_active_accounts(&self) -> crate::StoreResult<Vec<Account>>;
    /// Finds a workspace's account by phone (digits only).
    async fn find_account_by_phone(
        &self,
        workspace: WorkspaceId,
        phone: &str,
    ) -> crate::StoreResult<Option<Account>>;
    /// Sets health: status, detail and FloodWait end.
    async fn set_account_status(
        &self,
        id: AccountId,
        status: AccountStatus,
        detail: Option<&str>,
        flood_wait_until: Option<Timestamp>,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Records the profile learnt at sign-in.
    async fn set_account_profile(
        &self,
        id: AccountId,
        profile: &AccountProfile,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Starts or stops supervision.
    async fn set_account_active(
        &self,
        id: AccountId,
        active: bool,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Turns the ingestion of group chats on or off; `NotFound` for an unknown account.
    async fn set_account_ingest_groups(
        &self,
        id: AccountId,
        ingest_groups: bool,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Replaces (or clears) the sealed `api_hash` override; `NotFound` for an unknown account.
    async fn set_account_api_hash_sealed(
        &self,
        id: AccountId,
        sealed: Option<&[u8]>,
        now: Timestamp,
    ) -> crate::StoreResult<()>;
    /// Deletes an account with its session data, chats and messages.
    async fn delete_account(&self, workspace: WorkspaceId, id: AccountId)
    -> crate::StoreResult<()>;

    // --- Telegram session data (what grammers' Session trait needs) ---

    /// Home data center, if set.
    async fn account_home_dc(&self, id: AccountId) -> crate::StoreResult<Option<i32>>;
    /// Sets the home data center.
    async fn set_account_home_dc(&self, id: AccountId, dc_id: i32) -> crate::StoreResult<()>;
    /// All data centers of the session, by id.
    async fn list_dc_keys(&self, id: AccountId) -> crate::StoreResult<Vec<DcKey>>;
    /// Inserts or replaces one data center.
    async fn upsert_dc_key(&self, id: AccountId, key: &DcKey) -> crate::StoreResult<()>;
    /// Reads one cached peer.
    async fn get_cached_peer(
        &self,
        id: AccountId,
        peer_id: i64,
    ) -> crate::StoreResult<Option<CachedPeer>>;
    /// Finds the cached self user (subtype bit 1).
    async fn get_self_peer(&self, id: AccountId) -> crate::StoreResult<Option<CachedPeer>>;
    /// Inserts or replaces cached peers (one transaction).
    async fn upsert_cached_peers(
        &self,
        id: AccountId,
        peers: &[CachedPeer],
    ) -> crate::StoreResult<()>;
    /// The common update state and per-channel pts; `None` when never saved.
    async fn get_update_state(
        &self,
        id: AccountId,
    ) -> crate::StoreResult<Option<(UpdateState, Vec<(i64, i32)>)>>;
    /// Replaces the whole update state (common and every channel) in one transaction.
    async fn set_update_state(
        &self,
        id: AccountId,
        state: &UpdateState,
        channels: &[(i64, i32)],
    ) -> crate::StoreResult<()>;
    /// Updates pts, date and seq.
    async fn set_update_primary(
        &self,
        id: AccountId,
        pts: i32,
        date: i32,
        seq: i32,
    ) -> crate::StoreResult<()>;
    /// Updates qts.
    async fn set_update_qts(&self, id: AccountId, qts: i32) -> crate::StoreResult<()>;
    /// Updates one channel's pts.
    async fn set_channel_pts(
        &self,
        id: AccountId,
        channel_id: i64,
        pts: i32,
    ) -> crate::StoreResult<()>;
    /// Forgets the whole session (keys, peers, update state), e.g. after logout.
    async fn wipe_account_session(&self, id: AccountId) -> crate::StoreResult<()>;

    // --- ingestion ---

    /// Stores a batch of messages of one account in one transaction: creates chats as needed,
    /// skips messages already stored (unique per chat and Telegram id), bumps unread counts
    /// and reopens resolved chats on new inbound messages.
    async fn ingest_messages(
        &self,
        account: AccountId,
        batch: &[IncomingMessage],
        now: Timestamp,
    ) -> crate::StoreResult<IngestOutcome>;
    /// Applies an edit: keeps the previous text in the history. `None` if the message is unknown.
    async fn apply_message_edit(
        &self,
        account: AccountId,
        peer_id: i64,
        tg_message_id: i64,
        new_text: &str,
        entities: &[Entity],
        edited_at: Timestamp,
    ) -> crate::StoreResult<Option<Message>>;
    /// Marks messages deleted; `peer_id` is `None` for private/basic-group deletions, where
    /// Telegram does not say which chat. Returns the messages marked.
    async fn mark_messages_deleted(
        &self,
        account: AccountId,
        peer_id: Option<i64>,
        tg_message_ids: &[i64],
    ) -> crate::StoreResult<Vec<Message>>;
    /// Replaces a message's media (e.g. once its file is downloaded). `None` if the message is
    /// unknown or belongs to another account.
    async fn set_message_media(
        &self,
        account: AccountId,
        message: MessageId,
        media: &Media,
    ) -> crate::StoreResult<Option<Message>>;
    /// The chat of an account of `workspace` with a person (`peer_id` > 0), created empty when
    /// there is none yet (for writing to someone first, such as a lead's author). `NotFound`
    /// when the account is not the workspace's. Returns the chat and whether it was created.
    async fn open_private_chat(
        &self,
        workspace: WorkspaceId,
        account: AccountId,
        peer: &PrivatePeer,
        now: Timestamp,
    ) -> crate::StoreResult<(Chat, bool)>;
    /// Chats of an account, newest activity first.
    async fn list_account_chats(
        &self,
        workspace: WorkspaceId,
        account: AccountId,
    ) -> crate::StoreResult<Vec<Chat>>;
    /// Messages of a chat, newest first, older than `before` (a Telegram id) when given.
    async fn list_chat_messages(
        &self,
        workspace: WorkspaceId,
        chat: ChatId,
        before: Option<i64>,
        limit: u32,
    ) -> crate::StoreResult<Vec<Message>>;
    /// Earlier versions of a message, oldest first.
    async fn list_message_edits(
        &self,
        workspace: WorkspaceId,
        message: MessageId,
    ) -> crate::StoreResult<Vec<MessageEdit>>;
}
