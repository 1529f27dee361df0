//! `tgsim`: a local Telegram world speaking the real protocols — an MTProto data center for
//! grammers 0.11 (layer 230) and the HTTP Bot API — plus a control API for tests and demos.
//!
//! Start it in-process with [`start`]; every control action is a method on [`Handle`] and is
//! also exposed over HTTP (see the crate README).
#![allow(
    clippy::disallowed_methods,
    reason = "tgsim is a separate simulator, not part of the server: it owns its tasks itself"
)]
#![forbid(unsafe_code)]

mod botapi;
mod channel_api;
pub mod channels;
mod control;
pub mod crypto;
mod demo;
mod formatting;
mod limits;
mod mtproto;
mod rpc;
mod state;
mod tl_build;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub use channel_api::{AlbumSent, ChannelAdmin, ChannelCount, ChannelOptions, ChannelView};
pub use channels::{AdminRights, CHANNELS_LIMIT, Invite, NewInvite, SendFlags};
pub use demo::ALEXEY_CHANNEL_TITLE as DEMO_OWNER_CHANNEL_TITLE;
pub use demo::channel_ads as demo_channel_ads;
pub use limits::RateLimit;
pub use state::{AccountCounters, Counters, FaultKind, FaultRule};
pub use world::{
    ChannelId, ChatId, CodeKind, Entity, MediaKind, Peer, PhoneNotice, RpcError, UserId,
};

use state::Shared;
use world::{BoxRef, Media, NewMessage};

/// Listen addresses and options.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// MTProto (TCP, `full` transport) listen address; port 0 picks a free port.
    pub mtproto_addr: SocketAddr,
    /// Bot API (HTTP) listen address.
    pub bot_api_addr: SocketAddr,
    /// Control API and "simulated phones" page (HTTP) listen address.
    pub control_addr: SocketAddr,
    /// Populate the demo world and post job ads to its channels periodically.
    pub demo_world: bool,
    /// Seconds between demo channel posts.
    pub demo_post_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Config {
            mtproto_addr: any,
            bot_api_addr: any,
            control_addr: any,
            demo_world: false,
            demo_post_interval_secs: 30,
        }
    }
}

/// Errors of the simulator API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The world refused the action, with Telegram's error name (e.g. `USERNAME_OCCUPIED`).
    #[error("{0}")]
    Rejected(#[from] RpcError),
    /// Something referenced does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad input (e.g. invalid hex or base64).
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// A new user account.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewUser {
    /// Phone number, e.g. `+15550001`.
    pub phone: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Public username without `@`.
    #[serde(default)]
    pub username: Option<String>,
    /// 2FA password.
    #[serde(default)]
    pub password: Option<String>,
    /// 2FA password hint.
    #[serde(default)]
    pub password_hint: Option<String>,
}

/// A new bot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewBot {
    /// Username (must end in `bot` on Telegram; not enforced).
    pub username: String,
    /// Display name.
    pub first_name: String,
    /// Fixed token `<id>:<secret>`; generated when absent.
    #[serde(default)]
    pub token: Option<String>,
}

/// A new basic group or supergroup.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewGroup {
    /// Title.
    pub title: String,
    /// Creator.
    pub creator: UserId,
    /// Other members (users or bots).
    #[serde(default)]
    pub members: Vec<UserId>,
    /// Make it a supergroup (a megagroup channel) instead of a basic group.
    #[serde(default)]
    pub supergroup: bool,
    /// Public username (supergroups only).
    #[serde(default)]
    pub username: Option<String>,
}

/// A new broadcast channel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NewChannel {
    /// Title.
    pub title: String,
    /// Public username without `@`.
    #[serde(default)]
    pub username: Option<String>,
    /// Owner (may post); None = only [`Handle::post_to_channel`] posts.
    #[serde(default)]
    pub creator: Option<UserId>,
    /// Initial subscribers.
    #[serde(default)]
    pub members: Vec<UserId>,
    /// Description.
    #[serde(default)]
    pub about: String,
    /// A supergroup (members write) instead of a broadcast channel.
    #[serde(default)]
    pub megagroup: bool,
    /// Which new posts are pushed to members' sessions: 1 (None) every post, N every post
    /// whose id is a multiple of N, 0 none — as Telegram does for large channels.
    #[serde(default)]
    pub push_every: Option<u32>,
}

/// Media to attach to an outgoing message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaUpload {
    /// Kind.
    pub kind: MediaKind,
    /// Content (base64 in JSON).
    #[serde(with = "b64")]
    pub data: Vec<u8>,
    /// File name.
    #[serde(default)]
    pub file_name: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime: Option<String>,
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// A message to send through the control API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// Text or caption.
    #[serde(default)]
    pub text: String,
    /// Formatting.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// Media.
    #[serde(default)]
    pub media: Option<MediaUpload>,
    /// Reply to this message id (in the sender's view of the chat).
    #[serde(default)]
    pub reply_to: Option<i32>,
}

impl OutgoingMessage {
    /// A plain text message.
    pub fn text(t: impl Into<String>) -> Self {
        OutgoingMessage {
            text: t.into(),
            ..Default::default()
        }
    }
}

/// A user or bot as reported by the control API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    /// Id.
    pub id: UserId,
    /// Phone (users).
    pub phone: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Whether it is a bot.
    pub bot: bool,
    /// Bot token (bots).
    pub token: Option<String>,
    /// Whether a 2FA password is set.
    pub has_password: bool,
}

/// A created chat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatInfo {
    /// The peer to use in [`Handle::send_message`].
    pub peer: Peer,
    /// Bot API chat id.
    pub bot_api_chat_id: i64,
    /// Title.
    pub title: String,
    /// Username, if public.
    pub username: Option<String>,
    /// Hash of the channel's permanent invite link (`https://t.me/+HASH`); None for basic
    /// groups.
    pub invite_hash: Option<String>,
}

/// Media as reported by the control API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MediaView {
    /// Kind.
    pub kind: MediaKind,
    /// Bot API file id (also accepted by `GET /api/files/{file_id}`).
    pub file_id: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: usize,
    /// File name.
    pub file_name: Option<String>,
}

/// A message as one account sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    /// Id in the account's box (or the channel).
    pub id: i32,
    /// Conversation.
    pub peer: Peer,
    /// Author (None for channel posts).
    pub from: Option<UserId>,
    /// Sent by this account.
    pub out: bool,
    /// Unix time.
    pub date: i32,
    /// Text or caption.
    pub text: String,
    /// Formatting.
    pub entities: Vec<Entity>,
    /// Media.
    pub media: Option<MediaView>,
    /// Replied-to id.
    pub reply_to: Option<i32>,
    /// Last edit.
    pub edit_date: Option<i32>,
    /// Original author of a forwarded message (a user or a channel).
    pub forward_from: Option<Peer>,
    /// Original post id when a channel post was forwarded (`fwd_from.channel_post`).
    pub forward_channel_post: Option<i32>,
    /// Album id shared by the messages of one album.
    pub grouped_id: Option<i64>,
    /// Sent without a notification (channel posts).
    #[serde(default)]
    pub silent: bool,
    /// Sent with the link preview turned off (channel posts).
    #[serde(default)]
    pub no_webpage: bool,
    /// Pinned (channel posts).
    #[serde(default)]
    pub pinned: bool,
}

/// Result of sending.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentMessage {
    /// Message id in the sender's box (or the channel).
    pub id: i32,
    /// Conversation from the sender's view.
    pub peer: Peer,
}

/// A pending QR login.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QrLogin {
    /// Token, base64url without padding (as in `tg://login?token=…`).
    pub token: String,
    /// Expiry (unix).
    pub expires: i32,
    /// Whether someone approved it.
    pub approved: bool,
}

/// A running simulator. Cloning shares it; [`Handle::shutdown`] stops it.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    mtproto: SocketAddr,
    bot_api: SocketAddr,
    control: SocketAddr,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("mtproto", &self.mtproto)
            .field("bot_api", &self.bot_api)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { what, addr, source })
}

/// Starts the three listeners (and the demo world if asked) on the current tokio runtime.
pub async fn start(config: Config) -> Result<Handle, Error> {
    let shared = Shared::new();
    let mt = bind("MTProto", config.mtproto_addr).await?;
    let bot = bind("Bot API", config.bot_api_addr).await?;
    let ctl = bind("control API", config.control_addr).await?;
    let local = |l: &TcpListener, a: SocketAddr| l.local_addr().unwrap_or(a);
    let handle = Handle {
        mtproto: local(&mt, config.mtproto_addr),
        bot_api: local(&bot, config.bot_api_addr),
        control: local(&ctl, config.control_addr),
        shared: shared.clone(),
    };
    shared.tasks.spawn(mtproto::serve(mt, shared.clone()));
    let bot_router = axum::Router::new()
        .fallback(botapi::handle)
        .layer(axum::extract::DefaultBodyLimit::max(
            botapi::MAX_REQUEST_BYTES,
        ))
        .with_state(shared.clone());
    let cancel = shared.cancel.clone();
    shared.tasks.spawn(async move {
        let _ = axum::serve(bot, bot_router)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    let ctl_router = control::router(handle.clone());
    let cancel = shared.cancel.clone();
    shared.tasks.spawn(async move {
        let _ = axum::serve(ctl, ctl_router)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    });
    if config.demo_world {
        demo::populate(&handle)?;
        let h = handle.clone();
        let interval = Duration::from_secs(config.demo_post_interval_secs.max(1));
        shared
            .tasks
            .spawn(async move { demo::post_job_ads(h, interval).await });
    }
    tracing::info!(
        mtproto = %handle.mtproto,
        bot_api = %handle.bot_api,
        control = %handle.control,
        "tgsim started"
    );
    Ok(handle)
}

fn media_view(w: &world::World, m: &Media) -> Option<MediaView> {
    let f = w.files.get(&m.file_id)?;
    Some(MediaView {
        kind: m.kind,
        file_id: botapi::file_id_string(f.id),
        mime: f.mime.clone(),
        size: f.bytes.len(),
        file_name: f.name.clone(),
    })
}

pub(crate) fn view(w: &world::World, m: &world::Message) -> MessageView {
    let channel = match m.peer {
        Peer::Channel(c) => w.channels.get(&c),
        _ => None,
    };
    let flags = channel
        .and_then(|ch| ch.posting.flags.get(&m.id).copied())
        .unwrap_or_default();
    let pinned = channel.is_some_and(|ch| ch.posting.pinned.contains(&m.id));
    MessageView {
        id: m.id,
        peer: m.peer,
        from: m.from,
        out: m.out,
        date: m.date,
        text: m.text.clone(),
        entities: m.entities.clone(),
        media: m.media.as_ref().and_then(|md| media_view(w, md)),
        reply_to: m.reply_to,
        edit_date: m.edit_date,
        forward_from: m.fwd.as_ref().and_then(|f| f.from),
        forward_channel_post: m.fwd.as_ref().and_then(|f| f.channel_post),
        grouped_id: m.grouped_id,
        silent: flags.silent,
        no_webpage: flags.no_webpage,
        pinned,
    }
}

fn user_info(u: &world::User) -> UserInfo {
    UserInfo {
        id: u.id,
        phone: u.phone.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        username: u.username.clone(),
        bot: u.bot.is_some(),
        token: u.bot.as_ref().map(|b| b.token.clone()),
        has_password: u.password.is_some(),
    }
}

impl Handle {
    /// Address of the MTProto data center (point every DC id of the client session here).
    pub fn mtproto_addr(&self) -> SocketAddr {
        self.mtproto
    }

    /// Base URL of the Bot API, e.g. `http://127.0.0.1:1234` (use with `Client::with_host`).
    pub fn bot_api_url(&self) -> String {
        format!("http://{}", self.bot_api)
    }

    /// Base URL of the control API and the "simulated phones" page.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control)
    }

    /// Stops all listeners, connections and background tasks, and waits for them.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tasks.wait()).await;
    }

    /// A fresh random auth key, known to the data center and bound to nobody until a sign-in.
    pub fn issue_auth_key(&self) -> [u8; 256] {
        let key = crypto::random_auth_key();
        self.shared.add_key(key, None);
        key
    }

    /// Registers a given key as already signed in as `user` (for imported sessions).
    pub fn register_auth_key(&self, user: UserId, key: [u8; 256]) -> Result<(), Error> {
        if !self.shared.world.lock().users.contains_key(&user) {
            return Err(Error::NotFound(format!("user {}", user.0)));
        }
        self.shared.add_key(key, Some(user));
        Ok(())
    }

    /// The account an auth key is bound to, if any.
    pub fn auth_key_user(&self, key: &[u8; 256]) -> Option<UserId> {
        let id = crypto::auth_key_id(key);
        self.shared.world.lock().keys.get(&id).and_then(|k| k.user)
    }

    /// Creates a user account.
    pub fn create_user(&self, spec: NewUser) -> Result<UserInfo, Error> {
        let mut w = self.shared.world.lock();
        let password = spec
            .password
            .as_deref()
            .map(|p| (p, spec.password_hint.as_deref()));
        let id = w.create_user(
            &spec.phone,
            &spec.first_name,
            spec.last_name.as_deref(),
            spec.username.as_deref(),
            password,
        )?;
        Ok(user_info(&w.users[&id]))
    }

    /// Creates a bot.
    pub fn create_bot(&self, spec: NewBot) -> Result<UserInfo, Error> {
        let mut w = self.shared.world.lock();
        let (id, _) = w.create_bot(&spec.username, &spec.first_name, spec.token.as_deref())?;
        Ok(user_info(&w.users[&id]))
    }

    /// Looks an account up by id.
    pub fn user(&self, id: UserId) -> Option<UserInfo> {
        self.shared.world.lock().users.get(&id).map(user_info)
    }

    /// Looks a user up by phone.
    pub fn user_by_phone(&self, phone: &str) -> Option<UserInfo> {
        let w = self.shared.world.lock();
        w.user_by_phone(phone).map(|id| user_info(&w.users[&id]))
    }

    /// All accounts (users and bots).
    pub fn users(&self) -> Vec<UserInfo> {
        self.shared
            .world
            .lock()
            .users
            .values()
            .map(user_info)
            .collect()
    }

    /// Creates a basic group or a supergroup.
    pub fn create_group(&self, spec: NewGroup) -> Result<ChatInfo, Error> {
        if spec.supergroup {
            return self.create_channel(NewChannel {
                title: spec.title,
                username: spec.username,
                creator: Some(spec.creator),
                members: spec.members,
                megagroup: true,
                ..Default::default()
            });
        }
        let peer = self.shared.apply(|w| {
            let (c, effects) = w.create_chat(spec.creator, &spec.title, &spec.members)?;
            Ok((Peer::Chat(c), effects))
        })?;
        Ok(ChatInfo {
            peer,
            bot_api_chat_id: peer.bot_api_id(),
            title: spec.title,
            username: None,
            invite_hash: None,
        })
    }

    /// Creates a broadcast channel, or a supergroup with `megagroup`.
    pub fn create_channel(&self, spec: NewChannel) -> Result<ChatInfo, Error> {
        let (peer, invite_hash) = self.shared.apply(|w| {
            let c = w.create_channel(
                spec.creator,
                &spec.title,
                spec.username.as_deref(),
                !spec.megagroup,
                &spec.about,
            )?;
            for m in &spec.members {
                w.join_channel(*m, c)?;
            }
            let ch = w
                .channels
                .get_mut(&c)
                .ok_or_else(|| world::bad("CHANNEL_INVALID"))?;
            ch.push_every = spec.push_every.unwrap_or(1);
            let hash = ch.invites.first().map(|i| i.hash.clone());
            Ok(((Peer::Channel(c), hash), vec![]))
        })?;
        Ok(ChatInfo {
            peer,
            bot_api_chat_id: peer.bot_api_id(),
            title: spec.title,
            username: spec.username,
            invite_hash,
        })
    }

    /// Makes a user join a channel or supergroup.
    pub fn join_channel(&self, user: UserId, channel: ChannelId) -> Result<(), Error> {
        self.shared
            .apply(|w| Ok((w.join_channel(user, channel)?, vec![])))?;
        Ok(())
    }

    pub(crate) fn to_new_message(&self, msg: OutgoingMessage) -> NewMessage {
        let media = msg.media.map(|m| {
            let mime = m.mime.clone().unwrap_or_else(|| {
                match m.kind {
                    MediaKind::Photo => "image/jpeg",
                    MediaKind::Video => "video/mp4",
                    MediaKind::Voice => "audio/ogg",
                    MediaKind::Audio => "audio/mpeg",
                    MediaKind::Document => "application/octet-stream",
                }
                .to_string()
            });
            let dims = matches!(m.kind, MediaKind::Photo | MediaKind::Video).then_some((800, 600));
            let dur = matches!(
                m.kind,
                MediaKind::Video | MediaKind::Voice | MediaKind::Audio
            )
            .then_some(1);
            let id = self.shared.world.lock().store_file(
                m.data,
                &mime,
                m.file_name.as_deref(),
                dims,
                dur,
            );
            Media {
                kind: m.kind,
                file_id: id,
            }
        });
        NewMessage {
            text: msg.text,
            entities: msg.entities,
            media,
            reply_to: msg.reply_to,
            ..Default::default()
        }
    }

    /// Makes `from` send a message to a user, bot, group or channel (as its owner).
    pub fn send_message(
        &self,
        from: UserId,
        to: Peer,
        msg: OutgoingMessage,
    ) -> Result<SentMessage, Error> {
        let nm = self.to_new_message(msg);
        let (bx, id) = self.shared.apply(|w| {
            let (bx, id, effects) = w.send_message(from, to, nm, None, None)?;
            Ok(((bx, id), effects))
        })?;
        let peer = match bx {
            BoxRef::Channel(c) => Peer::Channel(c),
            BoxRef::User(_) => to,
        };
        Ok(SentMessage { id, peer })
    }

    /// Posts to a channel as the channel; every member's sessions get the update.
    pub fn post_to_channel(
        &self,
        channel: ChannelId,
        msg: OutgoingMessage,
    ) -> Result<SentMessage, Error> {
        let nm = self.to_new_message(msg);
        let id = self.shared.apply(|w| w.post_to_channel(channel, nm))?;
        Ok(SentMessage {
            id,
            peer: Peer::Channel(channel),
        })
    }

    /// Every message in an account's chats (private, groups, joined channels), oldest first.
    pub fn messages(&self, user: UserId) -> Result<Vec<MessageView>, Error> {
        let w = self.shared.world.lock();
        let u = w
            .users
            .get(&user)
            .ok_or_else(|| Error::NotFound(format!("user {}", user.0)))?;
        let mut out: Vec<MessageView> = u.mbox.messages.values().map(|m| view(&w, m)).collect();
        for c in &u.channels {
            if let Some(ch) = w.channels.get(c) {
                out.extend(
                    ch.mbox
                        .messages
                        .values()
                        .filter(|m| m.action.is_none())
                        .map(|m| {
                            let mut v = view(&w, m);
                            v.out = m.from == Some(user);
                            v
                        }),
                );
            }
        }
        out.sort_by_key(|m| (m.date, m.id));
        Ok(out)
    }

    /// The messages an account received (not sent by it), oldest first.
    pub fn received_messages(&self, user: UserId) -> Result<Vec<MessageView>, Error> {
        Ok(self
            .messages(user)?
            .into_iter()
            .filter(|m| !m.out)
            .collect())
    }

    /// The last login code generated for a phone.
    pub fn last_login_code(&self, phone: &str) -> Option<String> {
        let p: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
        self.shared.world.lock().last_codes.get(&p).cloned()
    }

    /// SMS and calls a phone received (login codes), oldest first.
    pub fn phone_notices(&self, phone: &str) -> Vec<PhoneNotice> {
        let p: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
        self.shared
            .world
            .lock()
            .phone_notices
            .get(&p)
            .cloned()
            .unwrap_or_default()
    }

    /// QR login tokens that are still valid.
    pub fn qr_logins(&self) -> Vec<QrLogin> {
        let now = world::now();
        self.shared
            .world
            .lock()
            .qr_tokens
            .iter()
            .filter(|t| t.expires >= now)
            .map(|t| QrLogin {
                token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t.token),
                expires: t.expires,
                approved: t.approved_by.is_some(),
            })
            .collect()
    }

    /// Approves a QR token (raw bytes) as `user`'s phone: pushes `updateLoginToken`.
    pub fn approve_qr_login(&self, user: UserId, token: &[u8]) -> Result<(), Error> {
        if !self.shared.world.lock().users.contains_key(&user) {
            return Err(Error::NotFound(format!("user {}", user.0)));
        }
        rpc::approve_token(&self.shared, user, token)?;
        Ok(())
    }

    /// Approves the newest pending QR token as `user`.
    pub fn approve_latest_qr_login(&self, user: UserId) -> Result<(), Error> {
        let now = world::now();
        let token = self
            .shared
            .world
            .lock()
            .qr_tokens
            .iter()
            .rev()
            .find(|t| t.approved_by.is_none() && t.expires >= now)
            .map(|t| t.token.clone())
            .ok_or_else(|| Error::NotFound("pending QR login".into()))?;
        self.approve_qr_login(user, &token)
    }

    /// Closes every MTProto connection of an account; returns how many were closed.
    pub fn drop_connections(&self, user: UserId) -> usize {
        self.shared.drop_connections(user)
    }

    /// Adds a fault rule.
    pub fn inject_fault(&self, rule: FaultRule) {
        self.shared.faults.lock().push(rule);
    }

    /// Answers the next `count` calls of `method` (by `user`, or anyone) with `FLOOD_WAIT_<seconds>`.
    pub fn flood_wait(&self, user: Option<UserId>, method: &str, seconds: u32, count: u32) {
        self.inject_fault(FaultRule {
            user_id: user,
            method: Some(method.to_string()),
            kind: FaultKind::FloodWait { seconds },
            count,
        });
    }

    /// Answers the next `count` calls of `method` with an rpc error.
    pub fn rpc_error(
        &self,
        user: Option<UserId>,
        method: &str,
        code: i32,
        message: &str,
        count: u32,
    ) {
        self.inject_fault(FaultRule {
            user_id: user,
            method: Some(method.to_string()),
            kind: FaultKind::RpcError {
                code,
                message: message.to_string(),
            },
            count,
        });
    }

    /// Delays every MTProto call (of `user`, or of everyone) by `latency`; zero removes it.
    pub fn set_latency(&self, user: Option<UserId>, latency: Duration) {
        let mut l = self.shared.latency.lock();
        if latency.is_zero() {
            l.remove(&user);
        } else {
            l.insert(user, latency);
        }
    }

    /// How long QR login tokens exported from now on stay valid (30 s by default, as on
    /// Telegram); shorter lets a test see a client regenerate its token.
    pub fn set_qr_token_ttl(&self, ttl: Duration) {
        self.shared
            .qr_token_ttl
            .store(ttl.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes all fault rules and latency.
    pub fn clear_faults(&self) {
        self.shared.faults.lock().clear();
        self.shared.latency.lock().clear();
    }

    /// Current fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.faults.lock().clone()
    }

    /// Connection and call counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// How far `user` has read their conversation with `peer` (the `max_id` of their last
    /// `messages.readHistory`), if they ever read it.
    pub fn read_inbox_max_id(&self, user: UserId, peer: Peer) -> Option<i32> {
        let w = self.shared.world.lock();
        w.users.get(&user)?.read_inbox.get(&peer).copied()
    }

    /// Content of a stored file by its Bot API file id.
    pub fn file(&self, file_id: &str) -> Option<(String, Vec<u8>)> {
        let hex = file_id.strip_prefix("BQACAgIAAx")?;
        let id = u64::from_str_radix(hex, 16).ok()? as i64;
        self.shared
            .world
            .lock()
            .files
            .get(&id)
            .map(|f| (f.mime.clone(), f.bytes.as_ref().clone()))
    }

    /// Finds a channel or supergroup by username.
    pub fn resolve_username(&self, username: &str) -> Option<Peer> {
        self.shared.world.lock().resolve_username(username)
    }
}
