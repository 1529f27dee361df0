//! The simulated Telegram world shared by the MTProto data center, the Bot API and the control
//! API: accounts, chats, per-account message boxes with Telegram-exact pts, channels with their
//! own pts, files, login state. Pure data and rules; no I/O and no TL here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::crypto::SrpVerifier;

/// Id of a user or bot account.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// Id of a basic group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub i64);

/// Id of a channel or supergroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelId(pub i64);

/// A conversation as seen from one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Peer {
    /// A private chat with a user or bot.
    User(UserId),
    /// A basic group.
    Chat(ChatId),
    /// A channel or supergroup.
    Channel(ChannelId),
}

impl Peer {
    /// The Bot API chat id of this peer (`-100…` for channels).
    pub fn bot_api_id(self) -> i64 {
        match self {
            Peer::User(u) => u.0,
            Peer::Chat(c) => -c.0,
            Peer::Channel(c) => -(1_000_000_000_000 + c.0),
        }
    }

    /// Parses a Bot API chat id.
    pub fn from_bot_api_id(id: i64) -> Peer {
        if id > 0 {
            Peer::User(UserId(id))
        } else if id <= -1_000_000_000_000 {
            Peer::Channel(ChannelId(-id - 1_000_000_000_000))
        } else {
            Peer::Chat(ChatId(-id))
        }
    }
}

/// A formatting entity, protocol neutral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Bot API style name: `bold`, `italic`, `code`, `pre`, `text_link`, `url`, `mention`,
    /// `hashtag`, `bot_command`, `email`, `phone_number`, `underline`, `strikethrough`,
    /// `spoiler`, `blockquote`, `text_mention`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Offset in UTF-16 code units.
    pub offset: i32,
    /// Length in UTF-16 code units.
    pub length: i32,
    /// For `text_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For `pre`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// For `text_mention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

/// What kind of media a message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A compressed photo.
    Photo,
    /// A generic file.
    Document,
    /// A video.
    Video,
    /// A voice note.
    Voice,
    /// A music file.
    Audio,
}

/// Media attached to a message; the bytes live in [`World::files`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Kind of media.
    pub kind: MediaKind,
    /// File id in the world's file store.
    pub file_id: i64,
}

/// A stored file (photo or document).
#[derive(Clone, Debug)]
pub struct StoredFile {
    /// File id.
    pub id: i64,
    /// Access hash handed to MTProto clients.
    pub access_hash: i64,
    /// Bot API `file_unique_id`.
    pub unique_id: String,
    /// Content.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// MIME type.
    pub mime: String,
    /// File name, if any.
    pub name: Option<String>,
    /// Upload time.
    pub date: i32,
    /// Width/height for photos and videos.
    pub dims: Option<(i32, i32)>,
    /// Duration in seconds for audio/video/voice.
    pub duration: Option<i32>,
}

/// Forward origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// Original author (user or channel).
    pub from: Option<Peer>,
    /// Original date.
    pub date: i32,
    /// Original channel post id.
    pub channel_post: Option<i32>,
}

/// A service action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAction {
    /// A basic group was created.
    ChatCreate {
        /// Title.
        title: String,
        /// Initial members.
        users: Vec<i64>,
    },
    /// A channel was created.
    ChannelCreate {
        /// Title.
        title: String,
    },
}

/// A message as stored in one box (an account's box, or a channel).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    /// Id inside its box.
    pub id: i32,
    /// The conversation, from the box owner's point of view.
    pub peer: Peer,
    /// Author (None for channel posts).
    pub from: Option<UserId>,
    /// Whether the box owner sent it.
    pub out: bool,
    /// Unix time.
    pub date: i32,
    /// Text or caption.
    pub text: String,
    /// Formatting.
    pub entities: Vec<Entity>,
    /// Attached media.
    pub media: Option<Media>,
    /// Replied-to message id (in the same box).
    pub reply_to: Option<i32>,
    /// Forward origin.
    pub fwd: Option<Forward>,
    /// Last edit time.
    pub edit_date: Option<i32>,
    /// Album id.
    pub grouped_id: Option<i64>,
    /// Channel post (broadcast).
    pub post: bool,
    /// Service action instead of text.
    pub action: Option<ServiceAction>,
    /// Links the copies of one logical message across boxes.
    #[serde(skip)]
    pub link: u64,
    /// Whether the box owner has read it (incoming only).
    pub read: bool,
}

impl Message {
    /// The content of a forward of this message seen in `from`: it keeps the original origin
    /// (`fwd_from`: the channel and post id for channel posts, the author otherwise).
    pub fn forwarded_copy(&self, from: Peer) -> NewMessage {
        let fwd = self.fwd.clone().unwrap_or(Forward {
            from: if self.post {
                Some(from)
            } else {
                self.from.map(Peer::User)
            },
            date: self.date,
            channel_post: self.post.then_some(self.id),
        });
        NewMessage {
            text: self.text.clone(),
            entities: self.entities.clone(),
            media: self.media.clone(),
            reply_to: None,
            fwd: Some(fwd),
            grouped_id: self.grouped_id,
            flags: Default::default(),
        }
    }
}

/// A pts-bearing event in an account's or channel's log.
#[derive(Clone, Debug)]
pub enum Event {
    /// `updateNewMessage` / `updateNewChannelMessage`.
    NewMessage(i32),
    /// `updateEditMessage` / `updateEditChannelMessage`.
    EditMessage(i32),
    /// `updateDeleteMessages` / `updateDeleteChannelMessages`.
    DeleteMessages(Vec<i32>),
    /// `updateReadHistoryInbox`.
    ReadInbox {
        /// Conversation.
        peer: Peer,
        /// Max read id.
        max_id: i32,
    },
    /// `updateReadHistoryOutbox`.
    ReadOutbox {
        /// Conversation.
        peer: Peer,
        /// Max read id.
        max_id: i32,
    },
    /// `updatePinnedChannelMessages` (channels only).
    Pinned {
        /// The messages pinned or unpinned.
        ids: Vec<i32>,
        /// Pinned (true) or unpinned.
        pinned: bool,
    },
}

impl Event {
    /// The pts this event consumes.
    pub fn pts_count(&self) -> i32 {
        match self {
            Event::DeleteMessages(ids) => ids.len().max(1) as i32,
            _ => 1,
        }
    }
}

/// One entry of a pts log.
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    /// pts after this event.
    pub pts: i32,
    /// pts consumed.
    pub pts_count: i32,
    /// Unix time.
    pub date: i32,
    /// The event.
    pub event: Event,
}

/// A message box with a pts counter and an event log (one per account, one per channel).
#[derive(Clone, Debug, Default)]
pub struct MessageBox {
    /// Current pts.
    pub pts: i32,
    /// Last message id handed out.
    pub last_id: i32,
    /// Messages by id.
    pub messages: BTreeMap<i32, Message>,
    /// pts log.
    pub log: Vec<LoggedEvent>,
}

impl MessageBox {
    /// An account's box: Telegram accounts never have pts 0 (grammers treats 0 as "no state").
    pub fn for_account() -> Self {
        MessageBox {
            pts: 1,
            ..Default::default()
        }
    }

    pub(crate) fn record(&mut self, event: Event, date: i32) -> LoggedEvent {
        let pts_count = event.pts_count();
        self.pts += pts_count;
        let e = LoggedEvent {
            pts: self.pts,
            pts_count,
            date,
            event,
        };
        self.log.push(e.clone());
        e
    }

    /// Events after `pts`.
    pub fn events_after(&self, pts: i32) -> impl Iterator<Item = &LoggedEvent> {
        let start = self.log.partition_point(|e| e.pts <= pts);
        self.log[start..].iter()
    }
}

/// A 2FA password.
#[derive(Clone, Debug)]
pub struct Password {
    /// Plain text (simulator only; shown nowhere).
    pub plain: String,
    /// Hint.
    pub hint: Option<String>,
    /// SRP verifier.
    pub verifier: SrpVerifier,
}

/// Bot-specific state.
#[derive(Clone, Debug, Default)]
pub struct BotState {
    /// Token `<id>:<secret>`.
    pub token: String,
}

/// A user or bot account.
#[derive(Clone, Debug)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Access hash.
    pub access_hash: i64,
    /// Phone (users only), digits without `+`.
    pub phone: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Username without `@`.
    pub username: Option<String>,
    /// 2FA password.
    pub password: Option<Password>,
    /// Set for bots.
    pub bot: Option<BotState>,
    /// Personal message box (private chats and basic groups).
    pub mbox: MessageBox,
    /// random_id → where the message went (idempotent sends).
    pub random_ids: HashMap<i64, (BoxRef, i32)>,
    /// Channels and supergroups joined.
    pub channels: BTreeSet<ChannelId>,
    /// Basic groups joined.
    pub chats: BTreeSet<ChatId>,
    /// Max read incoming id per conversation.
    pub read_inbox: HashMap<Peer, i32>,
    /// Max read outgoing id per conversation (the other side read up to).
    pub read_outbox: HashMap<Peer, i32>,
}

impl User {
    /// Display name.
    pub fn display_name(&self) -> String {
        match &self.last_name {
            Some(l) if !l.is_empty() => format!("{} {}", self.first_name, l),
            _ => self.first_name.clone(),
        }
    }
}

/// A basic group.
#[derive(Clone, Debug)]
pub struct Chat {
    /// Id.
    pub id: ChatId,
    /// Title.
    pub title: String,
    /// Creator.
    pub creator: UserId,
    /// Members (including creator).
    pub members: BTreeSet<UserId>,
    /// Creation time.
    pub date: i32,
}

/// A channel (broadcast) or supergroup.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Access hash.
    pub access_hash: i64,
    /// Title.
    pub title: String,
    /// Public username.
    pub username: Option<String>,
    /// True for broadcast channels, false for supergroups.
    pub broadcast: bool,
    /// Creator, if any.
    pub creator: Option<UserId>,
    /// Members.
    pub members: BTreeSet<UserId>,
    /// About text.
    pub about: String,
    /// Creation time.
    pub date: i32,
    /// The channel's own box and pts.
    pub mbox: MessageBox,
    /// Per-member max read id.
    pub read_inbox: HashMap<UserId, i32>,
    /// Which new posts reach members' sessions as pushed updates: 1 = every post (the
    /// default), N = only posts whose id is a multiple of N, 0 = none. Telegram does not push
    /// every post of large channels; members catch the rest with `updates.getChannelDifference`
    /// (a later pushed event reveals the pts gap) or `messages.getHistory`.
    pub push_every: u32,
    /// How many pts back the channel's update log reaches: `updates.getChannelDifference` from
    /// an older pts answers `channelDifferenceTooLong` (Telegram: about 100,000).
    pub difference_window: i32,
    /// Invite links (`t.me/+HASH`), the first one permanent.
    pub invites: Vec<crate::channels::Invite>,
    /// Users who asked to join through a join-request invite, with the date they asked.
    pub join_requests: BTreeMap<UserId, i32>,
    /// Administrators, posters, pins, deletions and send flags.
    pub posting: crate::channels::Posting,
}

/// Type of the last login code sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// In-app message from Telegram.
    App,
    /// SMS.
    Sms,
    /// Phone call.
    Call,
}

/// A pending login code for a phone.
#[derive(Clone, Debug)]
pub struct PendingCode {
    /// `phone_code_hash`.
    pub hash: String,
    /// The code.
    pub code: String,
    /// How it was delivered.
    pub kind: CodeKind,
    /// Unix time sent.
    pub date: i32,
}

/// Something a simulated phone received outside the chat list (SMS, calls).
#[derive(Clone, Debug, Serialize)]
pub struct PhoneNotice {
    /// Unix time.
    pub date: i32,
    /// `sms`, `call` or `app`.
    pub via: CodeKind,
    /// Text shown.
    pub text: String,
}

/// A QR login token.
#[derive(Clone, Debug)]
pub struct QrToken {
    /// Token bytes.
    pub token: Vec<u8>,
    /// Auth key id that exported it.
    pub key_id: u64,
    /// Expiry (unix).
    pub expires: i32,
    /// Set once a phone approved it.
    pub approved_by: Option<UserId>,
}

/// An auth key known to the data center.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    /// Key bytes.
    pub key: [u8; 256],
    /// Bound account.
    pub user: Option<UserId>,
    /// Last bound account (for counters after log-out).
    pub last_user: Option<UserId>,
    /// Account that passed the code step but still owes its 2FA password.
    pub awaiting_password: Option<UserId>,
    /// Destroyed by `auth.logOut`: every call with it answers `AUTH_KEY_UNREGISTERED` and new
    /// connections with it are closed, as on Telegram (a client needs a new key).
    pub logged_out: bool,
}

/// Effects of a world change that must reach clients.
#[derive(Clone, Debug)]
pub enum Effect {
    /// A pts event for an account's MTProto sessions.
    User {
        /// Account.
        user: UserId,
        /// Event as logged.
        event: LoggedEvent,
        /// Auth key whose request caused it (it learns via the rpc result).
        except_key: Option<u64>,
    },
    /// A pts event in a channel, for every member's sessions.
    Channel {
        /// Channel.
        channel: ChannelId,
        /// Event as logged.
        event: LoggedEvent,
        /// Auth key whose request caused it.
        except_key: Option<u64>,
    },
    /// A Bot API update for a bot.
    Bot {
        /// The bot.
        bot: UserId,
        /// `message`, `edited_message`, `channel_post`, …
        kind: &'static str,
        /// Where the message is.
        peer_box: BoxRef,
        /// Message id in that box.
        msg_id: i32,
    },
    /// `updateLoginToken` to the sessions of an auth key.
    LoginToken {
        /// Auth key id.
        key_id: u64,
    },
}

/// A message a request created: its box, id and the client's random_id.
pub type SentCopy = (BoxRef, i32, i64);

/// Which box a message lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BoxRef {
    /// An account's box.
    User(UserId),
    /// A channel's box.
    Channel(ChannelId),
}

/// Content of a new message.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewMessage {
    /// Text or caption.
    #[serde(default)]
    pub text: String,
    /// Formatting.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Media.
    #[serde(default)]
    pub media: Option<Media>,
    /// Reply to a message id (in the sender's box).
    #[serde(default)]
    pub reply_to: Option<i32>,
    /// Forward origin.
    #[serde(default)]
    pub fwd: Option<Forward>,
    /// Album id.
    #[serde(default)]
    pub grouped_id: Option<i64>,
    /// Without a notification, without a link preview (recorded for channel posts).
    #[serde(default)]
    pub flags: crate::channels::SendFlags,
}

/// Errors of world operations, named like Telegram's rpc errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {name}")]
pub struct RpcError {
    /// HTTP-like code.
    pub code: i32,
    /// Telegram error name.
    pub name: String,
}

impl RpcError {
    /// Creates an error.
    pub fn new(code: i32, name: impl Into<String>) -> Self {
        Self {
            code,
            name: name.into(),
        }
    }
}

/// Shorthand for a 400 error.
pub fn bad(name: &str) -> RpcError {
    RpcError::new(400, name)
}

/// Current unix time.
pub fn now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0)
}

/// The user id of Telegram's service notifications account.
pub const SERVICE_USER: UserId = UserId(777000);

/// The whole simulated world.
#[derive(Debug, Default)]
pub struct World {
    /// Accounts.
    pub users: BTreeMap<UserId, User>,
    /// Basic groups.
    pub chats: BTreeMap<ChatId, Chat>,
    /// Channels and supergroups.
    pub channels: BTreeMap<ChannelId, Channel>,
    /// Files.
    pub files: HashMap<i64, StoredFile>,
    /// Upload parts: (key id, file id) → parts.
    pub uploads: HashMap<(u64, i64), BTreeMap<i32, Vec<u8>>>,
    /// Auth keys by id.
    pub keys: HashMap<u64, KeyEntry>,
    /// Pending login codes by phone.
    pub codes: HashMap<String, PendingCode>,
    /// Last code per phone (kept after use, for the control API).
    pub last_codes: HashMap<String, String>,
    /// SMS and calls a phone received.
    pub phone_notices: HashMap<String, Vec<PhoneNotice>>,
    /// QR tokens.
    pub qr_tokens: Vec<QrToken>,
    /// SRP challenges: srp_id → (account, challenge).
    pub srp: HashMap<i64, (UserId, crate::crypto::SrpChallenge)>,
    /// Channels an account counts beyond those simulated (see [`World::set_channel_count`]).
    pub extra_channels: HashMap<UserId, usize>,
    next_id: i64,
    next_link: u64,
}

fn normalize_phone(phone: &str) -> String {
    phone.chars().filter(|c| c.is_ascii_digit()).collect()
}

fn normalize_username(name: &str) -> String {
    name.trim_start_matches('@').to_ascii_lowercase()
}

impl World {
    /// An empty world with the Telegram service account.
    pub fn new() -> Self {
        let mut w = World {
            next_id: 1_000_000,
            next_link: 1,
            ..Default::default()
        };
        w.insert_user(User {
            id: SERVICE_USER,
            access_hash: rand::thread_rng().r#gen(),
            phone: Some("42777".into()),
            first_name: "Telegram".into(),
            last_name: None,
            username: None,
            password: None,
            bot: None,
            mbox: MessageBox::for_account(),
            random_ids: HashMap::new(),
            channels: BTreeSet::new(),
            chats: BTreeSet::new(),
            read_inbox: HashMap::new(),
            read_outbox: HashMap::new(),
        });
        w
    }

    fn alloc_id(&mut self) -> i64 {
        self.next_id += rand::thread_rng().gen_range(1..1000);
        self.next_id
    }

    fn insert_user(&mut self, u: User) {
        self.users.insert(u.id, u);
    }

    /// Whether a username is taken by a user, bot or channel.
    pub fn username_taken(&self, name: &str) -> bool {
        self.resolve_username(name).is_some()
    }

    /// Resolves a public username.
    pub fn resolve_username(&self, name: &str) -> Option<Peer> {
        let n = normalize_username(name);
        if let Some(u) = self
            .users
            .values()
            .find(|u| u.username.as_deref().map(normalize_username) == Some(n.clone()))
        {
            return Some(Peer::User(u.id));
        }
        self.channels
            .values()
            .find(|c| c.username.as_deref().map(normalize_username) == Some(n.clone()))
            .map(|c| Peer::Channel(c.id))
    }

    /// Finds a user by phone.
    pub fn user_by_phone(&self, phone: &str) -> Option<UserId> {
        let p = normalize_phone(phone);
        self.users
            .values()
            .find(|u| u.phone.as_deref() == Some(p.as_str()))
            .map(|u| u.id)
    }

    /// Finds a bot by token.
    pub fn bot_by_token(&self, token: &str) -> Option<UserId> {
        self.users
            .values()
            .find(|u| u.bot.as_ref().map(|b| b.token.as_str()) == Some(token))
            .map(|u| u.id)
    }

    /// Creates a user account.
    pub fn create_user(
        &mut self,
        phone: &str,
        first_name: &str,
        last_name: Option<&str>,
        username: Option<&str>,
        password: Option<(&str, Option<&str>)>,
    ) -> Result<UserId, RpcError> {
        let phone = normalize_phone(phone);
        if phone.len() < 5 {
            return Err(bad("PHONE_NUMBER_INVALID"));
        }
        if self.user_by_phone(&phone).is_some() {
            return Err(bad("PHONE_NUMBER_OCCUPIED"));
        }
        if let Some(n) = username
            && self.username_taken(n)
        {
            return Err(bad("USERNAME_OCCUPIED"));
        }
        let id = UserId(self.alloc_id());
        let password = password.map(|(p, hint)| Password {
            plain: p.to_string(),
            hint: hint.map(str::to_string),
            verifier: SrpVerifier::new(p),
        });
        self.insert_user(User {
            id,
            access_hash: rand::thread_rng().r#gen(),
            phone: Some(phone),
            first_name: first_name.to_string(),
            last_name: last_name.map(str::to_string),
            username: username.map(normalize_username),
            password,
            bot: None,
            mbox: MessageBox::for_account(),
            random_ids: HashMap::new(),
            channels: BTreeSet::new(),
            chats: BTreeSet::new(),
            read_inbox: HashMap::new(),
            read_outbox: HashMap::new(),
        });
        Ok(id)
    }

    /// Creates a bot; returns its id and token.
    pub fn create_bot(
        &mut self,
        username: &str,
        first_name: &str,
        token: Option<&str>,
    ) -> Result<(UserId, String), RpcError> {
        if self.username_taken(username) {
            return Err(bad("USERNAME_OCCUPIED"));
        }
        // Telegram tokens start with the bot's id; honour that for fixed tokens.
        let wanted = token
            .and_then(|t| t.split_once(':'))
            .and_then(|(id, _)| id.parse::<i64>().ok())
            .filter(|id| *id > 0 && !self.users.contains_key(&UserId(*id)));
        let id = match wanted {
            Some(id) => UserId(id),
            None => UserId(self.alloc_id()),
        };
        let token = match token {
            Some(t) => t.to_string(),
            None => {
                let secret: String = rand::thread_rng()
                    .sample_iter(&rand::distributions::Alphanumeric)
                    .take(35)
                    .map(char::from)
                    .collect();
                format!("{}:{}", id.0, secret)
            }
        };
        self.insert_user(User {
            id,
            access_hash: rand::thread_rng().r#gen(),
            phone: None,
            first_name: first_name.to_string(),
            last_name: None,
            username: Some(normalize_username(username)),
            password: None,
            bot: Some(BotState {
                token: token.clone(),
            }),
            mbox: MessageBox::for_account(),
            random_ids: HashMap::new(),
            channels: BTreeSet::new(),
            chats: BTreeSet::new(),
            read_inbox: HashMap::new(),
            read_outbox: HashMap::new(),
        });
        Ok((id, token))
    }

    /// A channel or supergroup, or `400 CHANNEL_INVALID`.
    pub fn channel(&self, id: ChannelId) -> Result<&Channel, RpcError> {
        self.channels.get(&id).ok_or_else(|| bad("CHANNEL_INVALID"))
    }

    /// A channel or supergroup to change, or `400 CHANNEL_INVALID`.
    pub fn channel_mut(&mut self, id: ChannelId) -> Result<&mut Channel, RpcError> {
        self.channels
            .get_mut(&id)
            .ok_or_else(|| bad("CHANNEL_INVALID"))
    }

    pub(crate) fn user(&self, id: UserId) -> Result<&User, RpcError> {
        self.users.get(&id).ok_or_else(|| bad("USER_ID_INVALID"))
    }

    pub(crate) fn user_mut(&mut self, id: UserId) -> Result<&mut User, RpcError> {
        self.users
            .get_mut(&id)
            .ok_or_else(|| bad("USER_ID_INVALID"))
    }

    /// Creates a basic group with a service message in every member's box.
    pub fn create_chat(
        &mut self,
        creator: UserId,
        title: &str,
        members: &[UserId],
    ) -> Result<(ChatId, Vec<Effect>), RpcError> {
        self.user(creator)?;
        for m in members {
            self.user(*m)?;
        }
        let id = ChatId(self.alloc_id());
        let mut set: BTreeSet<UserId> = members.iter().copied().collect();
        set.insert(creator);
        self.chats.insert(
            id,
            Chat {
                id,
                title: title.to_string(),
                creator,
                members: set.clone(),
                date: now(),
            },
        );
        for m in &set {
            self.user_mut(*m)?.chats.insert(id);
        }
        let action = ServiceAction::ChatCreate {
            title: title.to_string(),
            users: set.iter().map(|u| u.0).collect(),
        };
        let effects = self.deliver(
            creator,
            Peer::Chat(id),
            NewMessage::default(),
            Some(action),
            None,
        )?;
        Ok((id, effects.1))
    }

    /// Creates a channel (broadcast) or supergroup.
    pub fn create_channel(
        &mut self,
        creator: Option<UserId>,
        title: &str,
        username: Option<&str>,
        broadcast: bool,
        about: &str,
    ) -> Result<ChannelId, RpcError> {
        if let Some(n) = username
            && self.username_taken(n)
        {
            return Err(bad("USERNAME_OCCUPIED"));
        }
        let id = ChannelId(self.alloc_id());
        let mut members = BTreeSet::new();
        if let Some(c) = creator {
            self.user_mut(c)?.channels.insert(id);
            members.insert(c);
        }
        let mut ch = Channel {
            id,
            access_hash: rand::thread_rng().r#gen(),
            title: title.to_string(),
            username: username.map(normalize_username),
            broadcast,
            creator,
            members,
            about: about.to_string(),
            date: now(),
            mbox: MessageBox::default(),
            read_inbox: HashMap::new(),
            push_every: 1,
            difference_window: crate::channels::DIFFERENCE_WINDOW,
            invites: Vec::new(),
            join_requests: BTreeMap::new(),
            posting: Default::default(),
        };
        ch.invites.push(crate::channels::Invite::permanent());
        ch.mbox.last_id = 1;
        let date = now();
        ch.mbox.messages.insert(
            1,
            Message {
                id: 1,
                peer: Peer::Channel(id),
                from: if broadcast { None } else { creator },
                out: false,
                date,
                text: String::new(),
                entities: vec![],
                media: None,
                reply_to: None,
                fwd: None,
                edit_date: None,
                grouped_id: None,
                post: broadcast,
                action: Some(ServiceAction::ChannelCreate {
                    title: title.to_string(),
                }),
                link: 0,
                read: true,
            },
        );
        ch.mbox.record(Event::NewMessage(1), date);
        self.channels.insert(id, ch);
        Ok(id)
    }

    /// Adds a user to a channel or supergroup.
    pub fn join_channel(&mut self, user: UserId, channel: ChannelId) -> Result<bool, RpcError> {
        self.user(user)?;
        let ch = self
            .channels
            .get_mut(&channel)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?;
        let added = ch.members.insert(user);
        self.user_mut(user)?.channels.insert(channel);
        Ok(added)
    }

    /// Removes a user from a channel.
    pub fn leave_channel(&mut self, user: UserId, channel: ChannelId) -> Result<(), RpcError> {
        let ch = self
            .channels
            .get_mut(&channel)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?;
        if !ch.members.remove(&user) {
            return Err(bad("USER_NOT_PARTICIPANT"));
        }
        self.user_mut(user)?.channels.remove(&channel);
        Ok(())
    }

    /// Stores a file and returns its id.
    pub fn store_file(
        &mut self,
        bytes: Vec<u8>,
        mime: &str,
        name: Option<&str>,
        dims: Option<(i32, i32)>,
        duration: Option<i32>,
    ) -> i64 {
        let mut rng = rand::thread_rng();
        let id: i64 = rng.gen_range(1..i64::MAX);
        let unique: String = (&mut rng)
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(16)
            .map(char::from)
            .collect();
        self.files.insert(
            id,
            StoredFile {
                id,
                access_hash: rng.r#gen(),
                unique_id: unique,
                bytes: std::sync::Arc::new(bytes),
                mime: mime.to_string(),
                name: name.map(str::to_string),
                date: now(),
                dims,
                duration,
            },
        );
        id
    }

    fn can_write(&self, from: UserId, to: Peer) -> Result<(), RpcError> {
        match to {
            Peer::User(u) => {
                self.user(u).map_err(|_| bad("PEER_ID_INVALID"))?;
            }
            Peer::Chat(c) => {
                let chat = self.chats.get(&c).ok_or_else(|| bad("PEER_ID_INVALID"))?;
                if !chat.members.contains(&from) {
                    return Err(RpcError::new(403, "CHAT_WRITE_FORBIDDEN"));
                }
            }
            Peer::Channel(c) => {
                let ch = self
                    .channels
                    .get(&c)
                    .ok_or_else(|| bad("CHANNEL_INVALID"))?;
                ch.check_post(from)?;
            }
        }
        Ok(())
    }

    fn new_link(&mut self) -> u64 {
        self.next_link += 1;
        self.next_link
    }

    /// Sends a message from `from` to `to`, delivering copies to every box concerned.
    /// Returns the sender-side box and message id plus the effects (excluding the sender's key).
    /// A `random_id` the sender already used answers `400 RANDOM_ID_DUPLICATE`, as Telegram
    /// does: the message was sent before and is not sent again.
    pub fn send_message(
        &mut self,
        from: UserId,
        to: Peer,
        msg: NewMessage,
        random_id: Option<i64>,
        except_key: Option<u64>,
    ) -> Result<(BoxRef, i32, Vec<Effect>), RpcError> {
        if let Some(rid) = random_id {
            self.check_random_id(from, rid)?;
        }
        self.can_write(from, to)?;
        if msg.text.is_empty() && msg.media.is_none() {
            return Err(bad("MESSAGE_EMPTY"));
        }
        // Telegram measures the limit in UTF-16 code units (an emoji counts twice).
        if msg.text.encode_utf16().count() > 4096 {
            return Err(bad("MESSAGE_TOO_LONG"));
        }
        let ((bx, id), effects) = self.deliver(from, to, msg, None, except_key)?;
        if let Some(rid) = random_id {
            self.user_mut(from)?.random_ids.insert(rid, (bx, id));
        }
        Ok((bx, id, effects))
    }

    /// `400 RANDOM_ID_DUPLICATE` when `from` already sent a message with `random_id`.
    pub fn check_random_id(&self, from: UserId, random_id: i64) -> Result<(), RpcError> {
        if self.user(from)?.random_ids.contains_key(&random_id) {
            return Err(bad("RANDOM_ID_DUPLICATE"));
        }
        Ok(())
    }

    /// Forwards messages (keeping the original origin) from a conversation to another.
    pub fn forward_messages(
        &mut self,
        actor: UserId,
        from: Peer,
        ids: &[i32],
        to: Peer,
        random_ids: &[i64],
        except_key: Option<u64>,
    ) -> Result<(Vec<SentCopy>, Vec<Effect>), RpcError> {
        if ids.len() != random_ids.len() {
            return Err(bad("RANDOM_ID_INVALID"));
        }
        let mut sources = Vec::new();
        for id in ids {
            let m = match from {
                Peer::Channel(c) => self
                    .channels
                    .get(&c)
                    .ok_or_else(|| bad("CHANNEL_INVALID"))?
                    .mbox
                    .messages
                    .get(id),
                _ => self
                    .user(actor)?
                    .mbox
                    .messages
                    .get(id)
                    .filter(|m| m.peer == from),
            };
            let m = m.ok_or_else(|| bad("MESSAGE_ID_INVALID"))?;
            if m.action.is_some() {
                return Err(bad("MESSAGE_ID_INVALID"));
            }
            sources.push(m.forwarded_copy(from));
        }
        let mut out = Vec::new();
        let mut effects = Vec::new();
        for (msg, rid) in sources.into_iter().zip(random_ids) {
            let (bx, id, eff) = self.send_message(actor, to, msg, Some(*rid), except_key)?;
            out.push((bx, id, *rid));
            effects.extend(eff);
        }
        Ok((out, effects))
    }

    /// Posts to a channel as the channel itself.
    pub fn post_to_channel(
        &mut self,
        channel: ChannelId,
        msg: NewMessage,
    ) -> Result<(i32, Vec<Effect>), RpcError> {
        if !self.channels.contains_key(&channel) {
            return Err(bad("CHANNEL_INVALID"));
        }
        let link = self.new_link();
        let (id, effects) = self.channel_append(channel, None, msg, None, link, None)?;
        Ok((id, effects))
    }

    fn channel_append(
        &mut self,
        channel: ChannelId,
        from: Option<UserId>,
        msg: NewMessage,
        action: Option<ServiceAction>,
        link: u64,
        except_key: Option<u64>,
    ) -> Result<(i32, Vec<Effect>), RpcError> {
        let date = now();
        let ch = self
            .channels
            .get_mut(&channel)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?;
        ch.mbox.last_id += 1;
        let id = ch.mbox.last_id;
        let post = ch.broadcast;
        let reply_to = msg.reply_to.filter(|r| ch.mbox.messages.contains_key(r));
        if let Some(f) = from {
            ch.posting.posters.insert(id, f);
        }
        if msg.flags != crate::channels::SendFlags::default() {
            ch.posting.flags.insert(id, msg.flags);
        }
        ch.mbox.messages.insert(
            id,
            Message {
                id,
                peer: Peer::Channel(channel),
                from: if post { None } else { from },
                out: false,
                date,
                text: msg.text,
                entities: msg.entities,
                media: msg.media,
                reply_to,
                fwd: msg.fwd,
                edit_date: None,
                grouped_id: msg.grouped_id,
                post,
                action,
                link,
                read: false,
            },
        );
        let ev = ch.mbox.record(Event::NewMessage(id), date);
        let mut effects = vec![Effect::Channel {
            channel,
            event: ev,
            except_key,
        }];
        let members: Vec<UserId> = ch.members.iter().copied().collect();
        for m in members {
            if self.users.get(&m).is_some_and(|u| u.bot.is_some()) && Some(m) != from {
                effects.push(Effect::Bot {
                    bot: m,
                    kind: if post { "channel_post" } else { "message" },
                    peer_box: BoxRef::Channel(channel),
                    msg_id: id,
                });
            }
        }
        Ok((id, effects))
    }

    /// Puts a message into every box concerned.
    fn deliver(
        &mut self,
        from: UserId,
        to: Peer,
        msg: NewMessage,
        action: Option<ServiceAction>,
        except_key: Option<u64>,
    ) -> Result<((BoxRef, i32), Vec<Effect>), RpcError> {
        let link = self.new_link();
        match to {
            Peer::Channel(c) => {
                let (id, effects) =
                    self.channel_append(c, Some(from), msg, action, link, except_key)?;
                Ok(((BoxRef::Channel(c), id), effects))
            }
            Peer::User(_) | Peer::Chat(_) => {
                let recipients: Vec<UserId> = match to {
                    Peer::User(u) if u == from => vec![from],
                    Peer::User(u) => vec![from, u],
                    Peer::Chat(c) => {
                        let chat = self.chats.get(&c).ok_or_else(|| bad("PEER_ID_INVALID"))?;
                        let mut v = vec![from];
                        v.extend(chat.members.iter().copied().filter(|m| *m != from));
                        v
                    }
                    Peer::Channel(_) => vec![],
                };
                let date = now();
                let mut effects = Vec::new();
                let mut sender_id = 0;
                // Replies point at the copy of the same logical message in each box.
                let reply_link = msg.reply_to.and_then(|r| {
                    self.users
                        .get(&from)
                        .and_then(|u| u.mbox.messages.get(&r))
                        .map(|m| m.link)
                });
                for r in recipients {
                    let out = r == from;
                    let peer_for_r = match to {
                        Peer::User(u) => {
                            if out {
                                Peer::User(u)
                            } else {
                                Peer::User(from)
                            }
                        }
                        other => other,
                    };
                    let user = self.user_mut(r)?;
                    let reply_to = reply_link.and_then(|l| {
                        user.mbox
                            .messages
                            .values()
                            .rev()
                            .find(|m| m.link == l)
                            .map(|m| m.id)
                    });
                    user.mbox.last_id += 1;
                    let id = user.mbox.last_id;
                    user.mbox.messages.insert(
                        id,
                        Message {
                            id,
                            peer: peer_for_r,
                            from: Some(from),
                            out,
                            date,
                            text: msg.text.clone(),
                            entities: msg.entities.clone(),
                            media: msg.media.clone(),
                            reply_to,
                            fwd: msg.fwd.clone(),
                            edit_date: None,
                            grouped_id: msg.grouped_id,
                            post: false,
                            action: action.clone(),
                            link,
                            read: out,
                        },
                    );
                    let ev = user.mbox.record(Event::NewMessage(id), date);
                    let is_bot = user.bot.is_some();
                    effects.push(Effect::User {
                        user: r,
                        event: ev,
                        except_key: if out { except_key } else { None },
                    });
                    if out {
                        sender_id = id;
                    } else if is_bot && action.is_none() {
                        effects.push(Effect::Bot {
                            bot: r,
                            kind: "message",
                            peer_box: BoxRef::User(r),
                            msg_id: id,
                        });
                    }
                }
                Ok(((BoxRef::User(from), sender_id), effects))
            }
        }
    }

    /// Edits a message (by the author) in every box.
    pub fn edit_message(
        &mut self,
        editor: UserId,
        peer: Peer,
        id: i32,
        text: Option<String>,
        entities: Option<Vec<Entity>>,
        except_key: Option<u64>,
    ) -> Result<(BoxRef, i32, Vec<Effect>), RpcError> {
        let date = now();
        let mut effects = Vec::new();
        match peer {
            Peer::Channel(c) => {
                let effects =
                    self.edit_channel_message(c, Some(editor), id, text, entities, except_key)?;
                Ok((BoxRef::Channel(c), id, effects))
            }
            _ => {
                let user = self.user(editor)?;
                let m = user
                    .mbox
                    .messages
                    .get(&id)
                    .ok_or_else(|| bad("MESSAGE_ID_INVALID"))?;
                if !m.out {
                    return Err(RpcError::new(403, "MESSAGE_AUTHOR_REQUIRED"));
                }
                let link = m.link;
                let holders: Vec<UserId> = self.users.keys().copied().collect();
                for h in holders {
                    let u = self.user_mut(h)?;
                    let Some(mid) = u
                        .mbox
                        .messages
                        .values()
                        .find(|m| m.link == link)
                        .map(|m| m.id)
                    else {
                        continue;
                    };
                    if let Some(m) = u.mbox.messages.get_mut(&mid) {
                        apply_edit(m, text.clone(), entities.clone(), date)?;
                    }
                    let ev = u.mbox.record(Event::EditMessage(mid), date);
                    let is_bot = u.bot.is_some();
                    effects.push(Effect::User {
                        user: h,
                        event: ev,
                        except_key: if h == editor { except_key } else { None },
                    });
                    if is_bot && h != editor {
                        effects.push(Effect::Bot {
                            bot: h,
                            kind: "edited_message",
                            peer_box: BoxRef::User(h),
                            msg_id: mid,
                        });
                    }
                }
                Ok((BoxRef::User(editor), id, effects))
            }
        }
    }

    /// Edits a channel message as `editor` (its author or the channel's creator), or as the
    /// channel itself when `editor` is None.
    pub fn edit_channel_message(
        &mut self,
        c: ChannelId,
        editor: Option<UserId>,
        id: i32,
        text: Option<String>,
        entities: Option<Vec<Entity>>,
        except_key: Option<u64>,
    ) -> Result<Vec<Effect>, RpcError> {
        let date = now();
        let mut effects = Vec::new();
        let ch = self
            .channels
            .get_mut(&c)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?;
        if ch.mbox.messages.get(&id).is_none_or(|m| m.action.is_some()) {
            return Err(bad("MESSAGE_ID_INVALID"));
        }
        if let Some(e) = editor {
            ch.check_edit(e, id)?;
        }
        let m = ch
            .mbox
            .messages
            .get_mut(&id)
            .ok_or_else(|| bad("MESSAGE_ID_INVALID"))?;
        apply_edit(m, text, entities, date)?;
        let ev = ch.mbox.record(Event::EditMessage(id), date);
        effects.push(Effect::Channel {
            channel: c,
            event: ev,
            except_key,
        });
        let bots: Vec<UserId> = ch.members.iter().copied().collect();
        let post = ch.broadcast;
        for b in bots {
            if self.users.get(&b).is_some_and(|u| u.bot.is_some()) && Some(b) != editor {
                effects.push(Effect::Bot {
                    bot: b,
                    kind: if post {
                        "edited_channel_post"
                    } else {
                        "edited_message"
                    },
                    peer_box: BoxRef::Channel(c),
                    msg_id: id,
                });
            }
        }
        Ok(effects)
    }

    /// Deletes messages of an account's box (revoking them for everyone) or of a channel.
    pub fn delete_messages(
        &mut self,
        actor: UserId,
        channel: Option<ChannelId>,
        ids: &[i32],
        except_key: Option<u64>,
    ) -> Result<(Option<LoggedEvent>, Vec<Effect>), RpcError> {
        let date = now();
        let mut effects = Vec::new();
        if let Some(c) = channel {
            return self.delete_channel_messages(c, Some(actor), ids, except_key);
        }
        let links: Vec<u64> = {
            let u = self.user(actor)?;
            ids.iter()
                .filter_map(|i| u.mbox.messages.get(i).map(|m| m.link))
                .collect()
        };
        let mut own_event = None;
        let holders: Vec<UserId> = self.users.keys().copied().collect();
        for h in holders {
            let u = self.user_mut(h)?;
            let gone: Vec<i32> = u
                .mbox
                .messages
                .values()
                .filter(|m| links.contains(&m.link))
                .map(|m| m.id)
                .collect();
            if gone.is_empty() {
                continue;
            }
            for g in &gone {
                u.mbox.messages.remove(g);
            }
            let ev = u.mbox.record(Event::DeleteMessages(gone), date);
            if h == actor {
                own_event = Some(ev.clone());
            }
            effects.push(Effect::User {
                user: h,
                event: ev,
                except_key: if h == actor { except_key } else { None },
            });
        }
        Ok((own_event, effects))
    }

    /// Deletes channel messages as `actor` (their author or the channel's creator), or as the
    /// channel itself when `actor` is None. Ids that do not exist are skipped, as on Telegram.
    pub fn delete_channel_messages(
        &mut self,
        c: ChannelId,
        actor: Option<UserId>,
        ids: &[i32],
        except_key: Option<u64>,
    ) -> Result<(Option<LoggedEvent>, Vec<Effect>), RpcError> {
        let ch = self
            .channels
            .get_mut(&c)
            .ok_or_else(|| bad("CHANNEL_INVALID"))?;
        let gone: Vec<i32> = ids
            .iter()
            .copied()
            .filter(|id| ch.mbox.messages.contains_key(id))
            .collect();
        if let Some(a) = actor {
            for id in &gone {
                ch.check_delete(a, *id)?;
            }
        }
        if gone.is_empty() {
            return Ok((None, Vec::new()));
        }
        for id in &gone {
            ch.mbox.messages.remove(id);
            ch.posting.pinned.remove(id);
            ch.posting.deleted.insert(*id);
        }
        let ev = ch.mbox.record(Event::DeleteMessages(gone), now());
        let effects = vec![Effect::Channel {
            channel: c,
            event: ev.clone(),
            except_key,
        }];
        Ok((Some(ev), effects))
    }

    /// Marks a conversation read up to `max_id` for `reader`.
    pub fn read_history(
        &mut self,
        reader: UserId,
        peer: Peer,
        max_id: i32,
        except_key: Option<u64>,
    ) -> Result<(Option<LoggedEvent>, Vec<Effect>), RpcError> {
        let date = now();
        let mut effects = Vec::new();
        if let Peer::Channel(c) = peer {
            let ch = self
                .channels
                .get_mut(&c)
                .ok_or_else(|| bad("CHANNEL_INVALID"))?;
            let max = if max_id == 0 { ch.mbox.last_id } else { max_id };
            ch.read_inbox.insert(reader, max);
            return Ok((None, effects));
        }
        let u = self.user_mut(reader)?;
        let max = if max_id == 0 { u.mbox.last_id } else { max_id };
        let prev = u.read_inbox.get(&peer).copied().unwrap_or(0);
        if max <= prev {
            return Ok((None, effects));
        }
        u.read_inbox.insert(peer, max);
        let mut read_links = Vec::new();
        for m in u.mbox.messages.values_mut() {
            if m.peer == peer && !m.out && m.id <= max && !m.read {
                m.read = true;
                read_links.push((m.link, m.from));
            }
        }
        let ev = u.mbox.record(Event::ReadInbox { peer, max_id: max }, date);
        effects.push(Effect::User {
            user: reader,
            event: ev.clone(),
            except_key,
        });
        // Outbox read receipts for the senders.
        let senders: BTreeSet<UserId> = read_links.iter().filter_map(|(_, f)| *f).collect();
        for s in senders {
            let Ok(su) = self.user_mut(s) else { continue };
            let their_peer = match peer {
                Peer::User(_) => Peer::User(reader),
                other => other,
            };
            let max_out = su
                .mbox
                .messages
                .values()
                .filter(|m| m.out && read_links.iter().any(|(l, _)| *l == m.link))
                .map(|m| m.id)
                .max();
            if let Some(mo) = max_out {
                su.read_outbox.insert(their_peer, mo);
                let ev = su.mbox.record(
                    Event::ReadOutbox {
                        peer: their_peer,
                        max_id: mo,
                    },
                    date,
                );
                effects.push(Effect::User {
                    user: s,
                    event: ev,
                    except_key: None,
                });
            }
        }
        Ok((Some(ev), effects))
    }

    /// Generates and records a login code for a phone.
    pub fn send_code(&mut self, phone: &str, kind: CodeKind) -> Result<PendingCode, RpcError> {
        let phone = normalize_phone(phone);
        if phone.len() < 5 {
            return Err(bad("PHONE_NUMBER_INVALID"));
        }
        let code: String = format!("{:05}", rand::thread_rng().gen_range(0..100_000));
        let hash: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(18)
            .map(char::from)
            .collect();
        let pending = PendingCode {
            hash,
            code: code.clone(),
            kind,
            date: now(),
        };
        self.codes.insert(phone.clone(), pending.clone());
        self.last_codes.insert(phone.clone(), code.clone());
        let text = format!(
            "Login code: {code}. Do not give this code to anyone, even if they say they are from Telegram!"
        );
        self.phone_notices
            .entry(phone.clone())
            .or_default()
            .push(PhoneNotice {
                date: now(),
                via: kind,
                text: text.clone(),
            });
        Ok(pending)
    }

    /// Delivers the in-app login code message from the service account.
    pub fn service_message(&mut self, to: UserId, text: &str) -> Result<Vec<Effect>, RpcError> {
        let msg = NewMessage {
            text: text.to_string(),
            ..Default::default()
        };
        let (_, effects) = self.deliver(SERVICE_USER, Peer::User(to), msg, None, None)?;
        // The service account itself has no sessions; drop its effects.
        Ok(effects
            .into_iter()
            .filter(|e| !matches!(e, Effect::User { user, .. } if *user == SERVICE_USER))
            .collect())
    }

    /// Binds an auth key to a user.
    pub fn bind_key(&mut self, key_id: u64, user: UserId) {
        if let Some(k) = self.keys.get_mut(&key_id) {
            k.user = Some(user);
            k.last_user = Some(user);
            k.awaiting_password = None;
        }
    }
}

fn apply_edit(
    m: &mut Message,
    text: Option<String>,
    entities: Option<Vec<Entity>>,
    date: i32,
) -> Result<(), RpcError> {
    if let Some(t) = text {
        if t.is_empty() && m.media.is_none() {
            return Err(bad("MESSAGE_EMPTY"));
        }
        if t == m.text && entities.is_none() {
            return Err(bad("MESSAGE_NOT_MODIFIED"));
        }
        m.text = t;
    }
    if let Some(e) = entities {
        m.entities = e;
    }
    m.edit_date = Some(date);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn private_message_gets_consecutive_pts_in_both_boxes() {
        let mut w = World::new();
        let a = w.create_user("+10001", "A", None, None, None).unwrap();
        let b = w.create_user("+10002", "B", None, None, None).unwrap();
        let msg = NewMessage {
            text: "hi".into(),
            ..Default::default()
        };
        w.send_message(a, Peer::User(b), msg.clone(), Some(5), None)
            .unwrap();
        let dup = w
            .send_message(a, Peer::User(b), msg.clone(), Some(5), None)
            .unwrap_err();
        assert_eq!((dup.code, dup.name.as_str()), (400, "RANDOM_ID_DUPLICATE"));
        w.send_message(b, Peer::User(a), msg, None, None).unwrap();
        assert_eq!(w.users[&a].mbox.pts, 3);
        assert_eq!(w.users[&b].mbox.pts, 3);
        assert_eq!(w.users[&b].mbox.messages[&1].peer, Peer::User(a));
        assert_eq!(w.users[&a].mbox.events_after(2).count(), 1);
    }

    #[test]
    fn the_length_limit_counts_utf16_code_units() {
        let mut w = World::new();
        let a = w.create_user("+10001", "A", None, None, None).unwrap();
        let text = |t: String| NewMessage {
            text: t,
            ..Default::default()
        };
        // 2,048 emoji are 4,096 UTF-16 code units: the limit exactly; one more unit is over.
        w.send_message(a, Peer::User(a), text("😀".repeat(2048)), None, None)
            .unwrap();
        let long = w
            .send_message(
                a,
                Peer::User(a),
                text(format!("{}a", "😀".repeat(2048))),
                None,
                None,
            )
            .unwrap_err();
        assert_eq!((long.code, long.name.as_str()), (400, "MESSAGE_TOO_LONG"));
        w.send_message(a, Peer::User(a), text("я".repeat(4096)), None, None)
            .unwrap();
    }

    #[test]
    fn bot_api_ids_round_trip() {
        for p in [
            Peer::User(UserId(5)),
            Peer::Chat(ChatId(7)),
            Peer::Channel(ChannelId(1234567)),
        ] {
            assert_eq!(Peer::from_bot_api_id(p.bot_api_id()), p);
        }
    }
}
