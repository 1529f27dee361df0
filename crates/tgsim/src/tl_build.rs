//! Every layer-230 TL object the simulator sends is built here, from the world model.
//! Big constructors are made from a minimal flags=0 byte template (which survives layer bumps
//! better than spelling out 50 fields) and then filled in.

use grammers_tl_types as tl;
use tl::{Deserializable, Serializable};

use crate::world::{
    self, BoxRef, ChannelId, Event, LoggedEvent, Media, MediaKind, Peer, ServiceAction, UserId,
    World,
};

/// The data center id the simulator claims to be (every DC id maps to it on the client).
pub const THIS_DC: i32 = 2;

const VECTOR: u32 = 0x1cb5c415;
const BOOL_FALSE: u32 = 0xbc799737;
const PEER_NOTIFY_SETTINGS: u32 = 0x99622c0c;
const PEER_SETTINGS: u32 = 0xf47741f7;
const PHOTO_EMPTY: u32 = 0x2331b22d;
const CHAT_PHOTO_EMPTY: u32 = 0x37c1011c;

/// Little TL byte writer for templates.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        crate::mtproto::tl_bytes(&mut self.0, s.as_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn empty_vec(self) -> Self {
        self.u32(VECTOR).u32(0)
    }
}

fn template<T: Deserializable>(w: W) -> T {
    match T::from_bytes(&w.0) {
        Ok(t) => t,
        Err(e) => panic!(
            "layer-230 template for {} is invalid: {e}",
            std::any::type_name::<T>()
        ),
    }
}

/// `peerUser` / `peerChat` / `peerChannel`.
pub fn peer(p: Peer) -> tl::enums::Peer {
    match p {
        Peer::User(u) => tl::types::PeerUser { user_id: u.0 }.into(),
        Peer::Chat(c) => tl::types::PeerChat { chat_id: c.0 }.into(),
        Peer::Channel(c) => tl::types::PeerChannel { channel_id: c.0 }.into(),
    }
}

fn notify_settings() -> tl::enums::PeerNotifySettings {
    template(W::default().u32(PEER_NOTIFY_SETTINGS).u32(0))
}

/// A `user` as seen by `viewer`.
pub fn user(u: &world::User, viewer: UserId) -> tl::enums::User {
    let mut t: tl::types::User = template(W::default().u32(0).u32(0).i64(u.id.0));
    t.is_self = u.id == viewer;
    t.bot = u.bot.is_some();
    t.bot_info_version = u.bot.as_ref().map(|_| 1);
    t.bot_nochats = false;
    t.access_hash = Some(u.access_hash);
    t.first_name = Some(u.first_name.clone());
    t.last_name = u.last_name.clone();
    t.username = u.username.clone();
    t.phone = if u.bot.is_none() {
        u.phone.clone()
    } else {
        None
    };
    t.verified = u.id == world::SERVICE_USER;
    t.support = u.id == world::SERVICE_USER;
    t.status = if u.bot.is_none() {
        Some(tl::enums::UserStatus::Recently(
            tl::types::UserStatusRecently { by_me: false },
        ))
    } else {
        None
    };
    t.into()
}

/// A `chat` (basic group).
pub fn chat(c: &world::Chat, viewer: UserId) -> tl::enums::Chat {
    tl::types::Chat {
        creator: c.creator == viewer,
        left: !c.members.contains(&viewer),
        deactivated: false,
        call_active: false,
        call_not_empty: false,
        noforwards: false,
        id: c.id.0,
        title: c.title.clone(),
        photo: template(W::default().u32(CHAT_PHOTO_EMPTY)),
        participants_count: c.members.len() as i32,
        date: c.date,
        version: 1,
        migrated_to: None,
        admin_rights: None,
        default_banned_rights: None,
    }
    .into()
}

/// An administrator's rights as `chatAdminRights`.
fn admin_rights(r: crate::channels::AdminRights) -> tl::enums::ChatAdminRights {
    tl::types::ChatAdminRights {
        change_info: false,
        post_messages: r.post_messages,
        edit_messages: r.edit_messages,
        delete_messages: r.delete_messages,
        ban_users: false,
        invite_users: false,
        pin_messages: r.pin_messages,
        add_admins: false,
        anonymous: false,
        manage_call: false,
        other: false,
        manage_topics: false,
        post_stories: false,
        edit_stories: false,
        delete_stories: false,
        manage_direct_messages: false,
        manage_ranks: false,
        manage_linked_peers: false,
        manage_welcome_messages: false,
    }
    .into()
}

/// A non-min `channel` with its access hash.
pub fn channel(c: &world::Channel, viewer: UserId) -> tl::enums::Chat {
    let mut t: tl::types::Channel = template(
        W::default()
            .u32(0)
            .u32(0)
            .i64(c.id.0)
            .str(&c.title)
            .u32(CHAT_PHOTO_EMPTY)
            .i32(c.date),
    );
    t.creator = c.creator == Some(viewer);
    t.left = !c.members.contains(&viewer);
    if let Some(r) = c.posting.admins.get(&viewer) {
        t.admin_rights = Some(admin_rights(*r));
    }
    t.broadcast = c.broadcast;
    t.megagroup = !c.broadcast;
    t.access_hash = Some(c.access_hash);
    t.username = c.username.clone();
    t.participants_count = Some(c.members.len() as i32);
    t.into()
}

/// Converts protocol-neutral entities to TL.
pub fn entities(list: &[world::Entity]) -> Option<Vec<tl::enums::MessageEntity>> {
    use tl::enums::MessageEntity as E;
    use tl::types as t;
    if list.is_empty() {
        return None;
    }
    let out = list
        .iter()
        .filter_map(|e| {
            let (offset, length) = (e.offset, e.length);
            Some(match e.kind.as_str() {
                "bold" => E::Bold(t::MessageEntityBold { offset, length }),
                "italic" => E::Italic(t::MessageEntityItalic { offset, length }),
                "underline" => E::Underline(t::MessageEntityUnderline { offset, length }),
                "strikethrough" => E::Strike(t::MessageEntityStrike { offset, length }),
                "spoiler" => E::Spoiler(t::MessageEntitySpoiler { offset, length }),
                "code" => E::Code(t::MessageEntityCode { offset, length }),
                "pre" => E::Pre(t::MessageEntityPre {
                    offset,
                    length,
                    language: e.language.clone().unwrap_or_default(),
                }),
                "text_link" => E::TextUrl(t::MessageEntityTextUrl {
                    offset,
                    length,
                    url: e.url.clone().unwrap_or_default(),
                }),
                "url" => E::Url(t::MessageEntityUrl { offset, length }),
                "mention" => E::Mention(t::MessageEntityMention { offset, length }),
                "hashtag" => E::Hashtag(t::MessageEntityHashtag { offset, length }),
                "bot_command" => E::BotCommand(t::MessageEntityBotCommand { offset, length }),
                "email" => E::Email(t::MessageEntityEmail { offset, length }),
                "phone_number" => E::Phone(t::MessageEntityPhone { offset, length }),
                "text_mention" => E::MentionName(t::MessageEntityMentionName {
                    offset,
                    length,
                    user_id: e.user_id.unwrap_or_default(),
                }),
                _ => return None,
            })
        })
        .collect();
    Some(out)
}

/// Converts TL entities (from a client request) to protocol-neutral ones.
pub fn entities_from_tl(list: Option<&Vec<tl::enums::MessageEntity>>) -> Vec<world::Entity> {
    use tl::enums::MessageEntity as E;
    let Some(list) = list else { return vec![] };
    list.iter()
        .filter_map(|e| {
            let mk = |kind: &str, offset: i32, length: i32| world::Entity {
                kind: kind.to_string(),
                offset,
                length,
                url: None,
                language: None,
                user_id: None,
            };
            Some(match e {
                E::Bold(x) => mk("bold", x.offset, x.length),
                E::Italic(x) => mk("italic", x.offset, x.length),
                E::Underline(x) => mk("underline", x.offset, x.length),
                E::Strike(x) => mk("strikethrough", x.offset, x.length),
                E::Spoiler(x) => mk("spoiler", x.offset, x.length),
                E::Code(x) => mk("code", x.offset, x.length),
                E::Pre(x) => world::Entity {
                    language: Some(x.language.clone()),
                    ..mk("pre", x.offset, x.length)
                },
                E::TextUrl(x) => world::Entity {
                    url: Some(x.url.clone()),
                    ..mk("text_link", x.offset, x.length)
                },
                E::Url(x) => mk("url", x.offset, x.length),
                E::Mention(x) => mk("mention", x.offset, x.length),
                E::Hashtag(x) => mk("hashtag", x.offset, x.length),
                E::BotCommand(x) => mk("bot_command", x.offset, x.length),
                E::Email(x) => mk("email", x.offset, x.length),
                E::Phone(x) => mk("phone_number", x.offset, x.length),
                E::MentionName(x) => world::Entity {
                    user_id: Some(x.user_id),
                    ..mk("text_mention", x.offset, x.length)
                },
                _ => return None,
            })
        })
        .collect()
}

const FILE_REFERENCE: &[u8] = b"tgsim";

/// A `photo` for a stored file.
pub fn photo(f: &world::StoredFile) -> tl::enums::Photo {
    let (w, h) = f.dims.unwrap_or((800, 600));
    tl::types::Photo {
        has_stickers: false,
        id: f.id,
        access_hash: f.access_hash,
        file_reference: FILE_REFERENCE.to_vec(),
        date: f.date,
        sizes: vec![
            tl::types::PhotoSize {
                r#type: "x".into(),
                w,
                h,
                size: f.bytes.len() as i32,
            }
            .into(),
        ],
        video_sizes: None,
        dc_id: THIS_DC,
    }
    .into()
}

/// A `document` for a stored file.
pub fn document(f: &world::StoredFile, kind: MediaKind) -> tl::enums::Document {
    let mut attributes: Vec<tl::enums::DocumentAttribute> = Vec::new();
    match kind {
        MediaKind::Video => {
            let (w, h) = f.dims.unwrap_or((640, 360));
            let mut v: tl::types::DocumentAttributeVideo = template(
                W::default()
                    .u32(0)
                    .raw(&f64::from(f.duration.unwrap_or(1)).to_le_bytes())
                    .i32(w)
                    .i32(h),
            );
            v.supports_streaming = true;
            attributes.push(v.into());
        }
        MediaKind::Voice | MediaKind::Audio => {
            attributes.push(
                tl::types::DocumentAttributeAudio {
                    voice: kind == MediaKind::Voice,
                    duration: f.duration.unwrap_or(1),
                    title: None,
                    performer: None,
                    waveform: None,
                }
                .into(),
            );
        }
        _ => {}
    }
    if let Some(n) = &f.name {
        attributes.push(
            tl::types::DocumentAttributeFilename {
                file_name: n.clone(),
            }
            .into(),
        );
    }
    tl::types::Document {
        id: f.id,
        access_hash: f.access_hash,
        file_reference: FILE_REFERENCE.to_vec(),
        date: f.date,
        mime_type: f.mime.clone(),
        size: f.bytes.len() as i64,
        thumbs: None,
        video_thumbs: None,
        dc_id: THIS_DC,
        attributes,
    }
    .into()
}

/// `messageMedia*` for a message's media.
pub fn media(w: &World, m: &Media) -> Option<tl::enums::MessageMedia> {
    let f = w.files.get(&m.file_id)?;
    Some(match m.kind {
        MediaKind::Photo => tl::types::MessageMediaPhoto {
            spoiler: false,
            live_photo: false,
            photo: Some(photo(f)),
            ttl_seconds: None,
            video: None,
        }
        .into(),
        kind => tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: kind == MediaKind::Video,
            round: false,
            voice: kind == MediaKind::Voice,
            document: Some(document(f, kind)),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }
        .into(),
    })
}

/// A stored message as TL.
pub fn message(w: &World, m: &world::Message) -> tl::enums::Message {
    if let Some(action) = &m.action {
        let action: tl::enums::MessageAction = match action {
            ServiceAction::ChatCreate { title, users } => tl::types::MessageActionChatCreate {
                title: title.clone(),
                users: users.clone(),
            }
            .into(),
            ServiceAction::ChannelCreate { title } => tl::types::MessageActionChannelCreate {
                title: title.clone(),
            }
            .into(),
        };
        let mut t: tl::types::MessageService = template(
            W::default()
                .u32(0)
                .i32(m.id)
                .raw(&peer(m.peer).to_bytes())
                .i32(m.date)
                .u32(0xb6aef7b0),
        );
        t.out = m.out;
        t.post = m.post;
        t.from_id = m.from.map(|u| peer(Peer::User(u)));
        t.action = action;
        return t.into();
    }
    let mut t: tl::types::Message = template(
        W::default()
            .u32(0)
            .u32(0)
            .i32(m.id)
            .raw(&peer(m.peer).to_bytes())
            .i32(m.date)
            .str(&m.text),
    );
    t.out = m.out;
    t.post = m.post;
    t.from_id = m.from.map(|u| peer(Peer::User(u)));
    if let Peer::Channel(c) = m.peer
        && let Some(ch) = w.channels.get(&c)
    {
        t.silent = ch.posting.flags.get(&m.id).is_some_and(|f| f.silent);
        t.pinned = ch.posting.pinned.contains(&m.id);
    }
    t.media = m.media.as_ref().and_then(|md| media(w, md));
    t.entities = entities(&m.entities);
    t.edit_date = m.edit_date;
    t.grouped_id = m.grouped_id;
    t.media_unread = false;
    if m.post {
        t.views = Some(1);
        t.forwards = Some(0);
    }
    if let Some(r) = m.reply_to {
        t.reply_to = Some(
            tl::types::MessageReplyHeader {
                reply_to_scheduled: false,
                forum_topic: false,
                quote: false,
                reply_to_ephemeral: false,
                reply_to_msg_id: Some(r),
                reply_to_peer_id: None,
                reply_from: None,
                reply_media: None,
                reply_to_top_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                todo_item_id: None,
                poll_option: None,
            }
            .into(),
        );
    }
    if let Some(f) = &m.fwd {
        t.fwd_from = Some(
            tl::types::MessageFwdHeader {
                imported: false,
                saved_out: false,
                from_id: f.from.map(peer),
                from_name: None,
                date: f.date,
                channel_post: f.channel_post,
                post_author: None,
                saved_from_peer: None,
                saved_from_msg_id: None,
                saved_from_id: None,
                saved_from_name: None,
                saved_date: None,
                psa_type: None,
            }
            .into(),
        );
    }
    t.into()
}

/// Users and chats referenced by a set of messages, plus the viewer itself.
#[derive(Default)]
pub struct Refs {
    users: std::collections::BTreeSet<UserId>,
    chats: std::collections::BTreeSet<world::ChatId>,
    channels: std::collections::BTreeSet<ChannelId>,
}

impl Refs {
    /// Adds a peer.
    pub fn peer(&mut self, p: Peer) {
        match p {
            Peer::User(u) => {
                self.users.insert(u);
            }
            Peer::Chat(c) => {
                self.chats.insert(c);
            }
            Peer::Channel(c) => {
                self.channels.insert(c);
            }
        }
    }

    /// Adds everything a message references.
    pub fn message(&mut self, m: &world::Message) {
        self.peer(m.peer);
        if let Some(f) = m.from {
            self.users.insert(f);
        }
        if let Some(f) = m.fwd.as_ref().and_then(|f| f.from) {
            self.peer(f);
        }
        if let Some(ServiceAction::ChatCreate { users, .. }) = &m.action {
            self.users.extend(users.iter().map(|u| UserId(*u)));
        }
    }

    /// Adds a user.
    pub fn user(&mut self, u: UserId) {
        self.users.insert(u);
    }

    /// TL users.
    pub fn users(&self, w: &World, viewer: UserId) -> Vec<tl::enums::User> {
        self.users
            .iter()
            .filter_map(|u| w.users.get(u))
            .map(|u| user(u, viewer))
            .collect()
    }

    /// TL chats (basic groups and channels).
    pub fn chats(&self, w: &World, viewer: UserId) -> Vec<tl::enums::Chat> {
        let mut out: Vec<tl::enums::Chat> = self
            .chats
            .iter()
            .filter_map(|c| w.chats.get(c))
            .map(|c| chat(c, viewer))
            .collect();
        out.extend(
            self.channels
                .iter()
                .filter_map(|c| w.channels.get(c))
                .map(|c| channel(c, viewer)),
        );
        out
    }
}

/// The TL update for one logged event of an account's box (None if the message is gone).
pub fn user_update(
    w: &World,
    owner: UserId,
    e: &LoggedEvent,
    refs: &mut Refs,
) -> Option<tl::enums::Update> {
    let u = w.users.get(&owner)?;
    Some(match &e.event {
        Event::NewMessage(id) => {
            let m = u.mbox.messages.get(id)?;
            refs.message(m);
            tl::types::UpdateNewMessage {
                message: message(w, m),
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::EditMessage(id) => {
            let m = u.mbox.messages.get(id)?;
            refs.message(m);
            tl::types::UpdateEditMessage {
                message: message(w, m),
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::DeleteMessages(ids) => tl::types::UpdateDeleteMessages {
            messages: ids.clone(),
            pts: e.pts,
            pts_count: e.pts_count,
        }
        .into(),
        Event::ReadInbox { peer: p, max_id } => {
            refs.peer(*p);
            let still = u
                .mbox
                .messages
                .values()
                .filter(|m| m.peer == *p && !m.out && m.id > *max_id)
                .count() as i32;
            tl::types::UpdateReadHistoryInbox {
                folder_id: None,
                peer: peer(*p),
                top_msg_id: None,
                max_id: *max_id,
                still_unread_count: still,
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::ReadOutbox { peer: p, max_id } => {
            refs.peer(*p);
            tl::types::UpdateReadHistoryOutbox {
                peer: peer(*p),
                max_id: *max_id,
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::Pinned { .. } => return None,
    })
}

/// The TL update for one logged event of a channel.
pub fn channel_update(
    w: &World,
    channel: ChannelId,
    e: &LoggedEvent,
    refs: &mut Refs,
) -> Option<tl::enums::Update> {
    let c = w.channels.get(&channel)?;
    refs.peer(Peer::Channel(channel));
    Some(match &e.event {
        Event::NewMessage(id) => {
            let m = c.mbox.messages.get(id)?;
            refs.message(m);
            tl::types::UpdateNewChannelMessage {
                message: message(w, m),
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::EditMessage(id) => {
            let m = c.mbox.messages.get(id)?;
            refs.message(m);
            tl::types::UpdateEditChannelMessage {
                message: message(w, m),
                pts: e.pts,
                pts_count: e.pts_count,
            }
            .into()
        }
        Event::DeleteMessages(ids) => tl::types::UpdateDeleteChannelMessages {
            channel_id: channel.0,
            messages: ids.clone(),
            pts: e.pts,
            pts_count: e.pts_count,
        }
        .into(),
        Event::Pinned { ids, pinned } => tl::types::UpdatePinnedChannelMessages {
            pinned: *pinned,
            channel_id: channel.0,
            messages: ids.clone(),
            pts: e.pts,
            pts_count: e.pts_count,
        }
        .into(),
        Event::ReadInbox { .. } | Event::ReadOutbox { .. } => return None,
    })
}

/// Wraps updates in `updates{…, seq: 0}`.
pub fn updates(
    w: &World,
    viewer: UserId,
    list: Vec<tl::enums::Update>,
    refs: &Refs,
) -> tl::enums::Updates {
    tl::types::Updates {
        updates: list,
        users: refs.users(w, viewer),
        chats: refs.chats(w, viewer),
        date: world::now(),
        seq: 0,
    }
    .into()
}

/// The push for an account-box event, as `updates` bytes (None if nothing to say).
pub fn user_push(w: &World, owner: UserId, e: &LoggedEvent) -> Option<Vec<u8>> {
    let mut refs = Refs::default();
    refs.user(owner);
    let up = user_update(w, owner, e, &mut refs)?;
    Some(updates(w, owner, vec![up], &refs).to_bytes())
}

/// The push for a channel event, for one member.
pub fn channel_push(w: &World, viewer: UserId, c: ChannelId, e: &LoggedEvent) -> Option<Vec<u8>> {
    let mut refs = Refs::default();
    refs.user(viewer);
    let up = channel_update(w, c, e, &mut refs)?;
    Some(updates(w, viewer, vec![up], &refs).to_bytes())
}

/// The `updates` answer to a send in a box: `updateMessageID` + the new-message update.
pub fn sent_updates(
    w: &World,
    viewer: UserId,
    bx: BoxRef,
    msg_id: i32,
    random_id: i64,
) -> Option<tl::enums::Updates> {
    sent_updates_many(w, viewer, &[(bx, msg_id, random_id)])
}

/// Like [`sent_updates`] for several messages (forwards, albums).
pub fn sent_updates_many(
    w: &World,
    viewer: UserId,
    sent: &[(BoxRef, i32, i64)],
) -> Option<tl::enums::Updates> {
    let mut refs = Refs::default();
    refs.user(viewer);
    let mut ids = Vec::new();
    let mut news = Vec::new();
    for (bx, msg_id, random_id) in sent {
        let msg_id = *msg_id;
        let up = match *bx {
            BoxRef::User(u) => {
                let ev = w
                    .users
                    .get(&u)?
                    .mbox
                    .log
                    .iter()
                    .rev()
                    .find(|e| matches!(e.event, Event::NewMessage(i) if i == msg_id))?
                    .clone();
                user_update(w, u, &ev, &mut refs)?
            }
            BoxRef::Channel(c) => {
                let ev = w
                    .channels
                    .get(&c)?
                    .mbox
                    .log
                    .iter()
                    .rev()
                    .find(|e| matches!(e.event, Event::NewMessage(i) if i == msg_id))?
                    .clone();
                channel_update(w, c, &ev, &mut refs)?
            }
        };
        ids.push(
            tl::types::UpdateMessageId {
                id: msg_id,
                random_id: *random_id,
            }
            .into(),
        );
        news.push(up);
    }
    ids.extend(news);
    Some(updates(w, viewer, ids, &refs))
}

/// `updates.state` for an account.
pub fn state(w: &World, user: UserId) -> tl::enums::updates::State {
    let pts = w.users.get(&user).map(|u| u.mbox.pts).unwrap_or(0);
    let unread = w
        .users
        .get(&user)
        .map(|u| {
            u.mbox
                .messages
                .values()
                .filter(|m| !m.out && !m.read)
                .count() as i32
        })
        .unwrap_or(0);
    tl::types::updates::State {
        pts,
        qts: 0,
        date: world::now(),
        seq: 0,
        unread_count: unread,
    }
    .into()
}

/// `help.getConfig` answer: no external DC options.
pub fn config() -> tl::enums::Config {
    let now = world::now();
    let mut w = W::default()
        .u32(0)
        .i32(now)
        .i32(now + 3600)
        .u32(BOOL_FALSE)
        .i32(THIS_DC)
        .empty_vec()
        .str("localhost");
    for _ in 0..17 {
        w = w.i32(0);
    }
    for _ in 0..4 {
        w = w.i32(0);
    }
    w = w.str("https://t.me/").i32(1024).i32(4096).i32(THIS_DC);
    let mut t: tl::types::Config = template(w);
    t.chat_size_max = 200;
    t.megagroup_size_max = 200_000;
    t.forwarded_count_max = 100;
    t.online_update_period_ms = 210_000;
    t.offline_blur_timeout_ms = 5000;
    t.offline_idle_timeout_ms = 30_000;
    t.online_cloud_timeout_ms = 300_000;
    t.notify_cloud_delay_ms = 30_000;
    t.notify_default_delay_ms = 1500;
    t.push_chat_period_ms = 60_000;
    t.push_chat_limit = 2;
    t.edit_time_limit = 172_800;
    t.revoke_time_limit = i32::MAX;
    t.revoke_pm_time_limit = i32::MAX;
    t.rating_e_decay = 2_419_200;
    t.stickers_recent_limit = 200;
    t.channels_read_media_period = 604_800;
    t.call_receive_timeout_ms = 20_000;
    t.call_ring_timeout_ms = 90_000;
    t.call_connect_timeout_ms = 30_000;
    t.call_packet_timeout_ms = 10_000;
    t.into()
}

/// A `dialog` entry.
pub fn dialog(
    p: Peer,
    top_message: i32,
    read_inbox: i32,
    read_outbox: i32,
    unread: i32,
    pts: Option<i32>,
) -> tl::enums::Dialog {
    let mut t: tl::types::Dialog = template(
        W::default()
            .u32(0)
            .raw(&peer(p).to_bytes())
            .i32(top_message)
            .i32(read_inbox)
            .i32(read_outbox)
            .i32(unread)
            .i32(0)
            .i32(0)
            .i32(0)
            .u32(PEER_NOTIFY_SETTINGS)
            .u32(0),
    );
    t.pts = pts;
    t.into()
}

/// `userFull` for an account.
pub fn user_full(u: &world::User) -> tl::enums::UserFull {
    let mut t: tl::types::UserFull = template(
        W::default()
            .u32(0)
            .u32(0)
            .i64(u.id.0)
            .u32(PEER_SETTINGS)
            .u32(0)
            .u32(PEER_NOTIFY_SETTINGS)
            .u32(0)
            .i32(0),
    );
    if u.bot.is_some() {
        t.about = Some(String::new());
    }
    t.into()
}

/// `channelFull` for a channel.
pub fn channel_full(c: &world::Channel, viewer: UserId) -> tl::enums::ChatFull {
    let read = c.read_inbox.get(&viewer).copied().unwrap_or(0);
    let unread = c
        .mbox
        .messages
        .keys()
        .filter(|id| **id > read)
        .count()
        .min(i32::MAX as usize) as i32;
    let mut t: tl::types::ChannelFull = template(
        W::default()
            .u32(0)
            .u32(0)
            .i64(c.id.0)
            .str(&c.about)
            .i32(read)
            .i32(c.mbox.last_id)
            .i32(unread)
            .u32(PHOTO_EMPTY)
            .i64(0)
            .u32(PEER_NOTIFY_SETTINGS)
            .u32(0)
            .empty_vec()
            .i32(c.mbox.pts),
    );
    t.participants_count = Some(c.members.len() as i32);
    t.can_view_participants = !c.broadcast;
    t.into()
}

/// `chatFull` for a basic group.
pub fn chat_full(c: &world::Chat) -> tl::enums::ChatFull {
    let participants = c
        .members
        .iter()
        .map(|m| -> tl::enums::ChatParticipant {
            if *m == c.creator {
                tl::types::ChatParticipantCreator {
                    user_id: m.0,
                    rank: None,
                }
                .into()
            } else {
                tl::types::ChatParticipant {
                    user_id: m.0,
                    inviter_id: c.creator.0,
                    date: c.date,
                    rank: None,
                }
                .into()
            }
        })
        .collect();
    tl::types::ChatFull {
        can_set_username: false,
        has_scheduled: false,
        translations_disabled: false,
        has_welcome_messages: false,
        id: c.id.0,
        about: String::new(),
        participants: tl::types::ChatParticipants {
            chat_id: c.id.0,
            participants,
            version: 1,
        }
        .into(),
        chat_photo: None,
        notify_settings: notify_settings(),
        exported_invite: None,
        bot_info: None,
        pinned_msg_id: None,
        folder_id: None,
        call: None,
        ttl_period: None,
        groupcall_default_join_as: None,
        theme_emoticon: None,
        requests_pending: None,
        recent_requesters: None,
        available_reactions: None,
        reactions_limit: None,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_for_layer_230() {
        let mut w = World::new();
        let Ok(a) = w.create_user("+15550001", "Ann", Some("Lee"), Some("ann"), None) else {
            panic!("user");
        };
        let u = &w.users[&a];
        let _ = user(u, a);
        let _ = user_full(u);
        let _ = config();
        let _ = dialog(Peer::User(a), 1, 0, 0, 0, None);
        let Ok(c) = w.create_channel(Some(a), "News", Some("news"), true, "about") else {
            panic!("channel");
        };
        let ch = &w.channels[&c];
        let _ = channel(ch, a);
        let _ = channel_full(ch, a);
        let m = &ch.mbox.messages[&1];
        let _ = message(&w, m);
    }
}
