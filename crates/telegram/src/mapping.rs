//! Turning grammers updates into what ingestion stores: new and edited messages as domain
//! [`IncomingMessage`]s (Bot-API peer ids, direction, sender, text, typed entities and media
//! metadata) and deletions. The core works on raw TL objects and is pure; [`map_update`] adapts a
//! grammers `Update`.

use std::collections::HashMap;

use grammers_client::tl;
use grammers_client::update::Update;
use grammers_session::types::PeerId;
use switchboard_domain::{
    Direction, Entity, EntityKind, IncomingMessage, Media, MediaKind, PeerKind, Timestamp,
};

/// What one update means for ingestion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappedUpdate {
    /// A new message (in or out).
    New(IncomingMessage),
    /// An edited message: its new content and when it was edited.
    Edited {
        /// The message as it is now.
        message: IncomingMessage,
        /// When the edit happened.
        edited_at: Timestamp,
    },
    /// Messages deleted; `peer_id` is `None` for private chats and basic groups, where Telegram
    /// does not say which chat.
    Deleted {
        /// The channel's Bot-API id, for channel and supergroup deletions.
        peer_id: Option<i64>,
        /// Telegram message ids.
        tg_message_ids: Vec<i64>,
    },
}

/// What is known about one peer, for titles and kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDetails {
    /// Kind of peer.
    pub kind: PeerKind,
    /// Name to show (full name, or title).
    pub title: String,
    /// Username without `@`.
    pub username: Option<String>,
}

/// Peers that came with an update, by Bot-API id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerDirectory {
    peers: HashMap<i64, PeerDetails>,
}

fn user_details(u: &tl::types::User) -> PeerDetails {
    let first = u.first_name.as_deref().unwrap_or("").trim();
    let last = u.last_name.as_deref().unwrap_or("").trim();
    let mut title = format!("{first} {last}").trim().to_string();
    if title.is_empty() {
        title = u
            .username
            .clone()
            .or_else(|| u.phone.clone())
            .unwrap_or_else(|| u.id.to_string());
    }
    PeerDetails {
        kind: if u.bot { PeerKind::Bot } else { PeerKind::User },
        title,
        username: u.username.clone(),
    }
}

impl PeerDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one peer.
    pub fn insert(&mut self, bot_api_id: i64, details: PeerDetails) {
        self.peers.insert(bot_api_id, details);
    }

    /// Looks a peer up by Bot-API id.
    pub fn get(&self, bot_api_id: i64) -> Option<&PeerDetails> {
        self.peers.get(&bot_api_id)
    }

    /// The users and chats of a TL answer.
    pub fn from_tl(users: &[tl::enums::User], chats: &[tl::enums::Chat]) -> Self {
        let mut dir = Self::new();
        for user in users {
            dir.add_user(user);
        }
        for chat in chats {
            dir.add_chat(chat);
        }
        dir
    }

    /// Adds a TL user.
    pub fn add_user(&mut self, user: &tl::enums::User) {
        if let tl::enums::User::User(u) = user {
            self.peers.insert(u.id, user_details(u));
        }
    }

    /// Adds a TL chat (basic group, channel or supergroup).
    pub fn add_chat(&mut self, chat: &tl::enums::Chat) {
        use tl::enums::Chat as C;
        let (id, details) = match chat {
            C::Chat(c) => (
                PeerId::chat(c.id),
                PeerDetails {
                    kind: PeerKind::Group,
                    title: c.title.clone(),
                    username: None,
                },
            ),
            C::Forbidden(c) => (
                PeerId::chat(c.id),
                PeerDetails {
                    kind: PeerKind::Group,
                    title: c.title.clone(),
                    username: None,
                },
            ),
            C::Channel(c) => (
                PeerId::channel(c.id),
                PeerDetails {
                    kind: if c.broadcast {
                        PeerKind::Channel
                    } else {
                        PeerKind::Supergroup
                    },
                    title: c.title.clone(),
                    username: c.username.clone(),
                },
            ),
            C::ChannelForbidden(c) => (
                PeerId::channel(c.id),
                PeerDetails {
                    kind: if c.broadcast {
                        PeerKind::Channel
                    } else {
                        PeerKind::Supergroup
                    },
                    title: c.title.clone(),
                    username: None,
                },
            ),
            _ => return,
        };
        if let Some(id) = id.and_then(PeerId::bot_api_dialog_id) {
            self.peers.insert(id, details);
        }
    }
}

/// The Bot-API id of a TL peer.
pub fn bot_api_id(peer: &tl::enums::Peer) -> i64 {
    PeerId::from(peer).bot_api_dialog_id_unchecked()
}

fn kind_from_id(id: i64) -> PeerKind {
    match PeerId::from_bot_api_dialog_id(id).map(PeerId::kind) {
        Some(grammers_session::types::PeerKind::Chat) => PeerKind::Group,
        Some(grammers_session::types::PeerKind::Channel) => PeerKind::Channel,
        _ => PeerKind::User,
    }
}

/// One entity, with Bot API names.
pub fn entity(e: &tl::enums::MessageEntity) -> Entity {
    use tl::enums::MessageEntity as E;
    let simple = |kind: EntityKind, offset: i32, length: i32| Entity::new(kind, offset, length);
    match e {
        E::Mention(x) => simple(EntityKind::Mention, x.offset, x.length),
        E::Hashtag(x) => simple(EntityKind::Hashtag, x.offset, x.length),
        E::Cashtag(x) => simple(EntityKind::Cashtag, x.offset, x.length),
        E::BotCommand(x) => simple(EntityKind::BotCommand, x.offset, x.length),
        E::Url(x) => simple(EntityKind::Url, x.offset, x.length),
        E::Email(x) => simple(EntityKind::Email, x.offset, x.length),
        E::Phone(x) => simple(EntityKind::PhoneNumber, x.offset, x.length),
        E::Bold(x) => simple(EntityKind::Bold, x.offset, x.length),
        E::Italic(x) => simple(EntityKind::Italic, x.offset, x.length),
        E::Underline(x) => simple(EntityKind::Underline, x.offset, x.length),
        E::Strike(x) => simple(EntityKind::Strikethrough, x.offset, x.length),
        E::Spoiler(x) => simple(EntityKind::Spoiler, x.offset, x.length),
        E::Code(x) => simple(EntityKind::Code, x.offset, x.length),
        E::BankCard(x) => simple(EntityKind::BankCard, x.offset, x.length),
        E::Blockquote(x) => simple(
            if x.collapsed {
                EntityKind::ExpandableBlockquote
            } else {
                EntityKind::Blockquote
            },
            x.offset,
            x.length,
        ),
        E::Pre(x) => Entity {
            language: Some(x.language.clone()),
            ..simple(EntityKind::Pre, x.offset, x.length)
        },
        E::TextUrl(x) => Entity {
            url: Some(x.url.clone()),
            ..simple(EntityKind::TextLink, x.offset, x.length)
        },
        E::MentionName(x) => Entity {
            user_id: Some(x.user_id),
            ..simple(EntityKind::TextMention, x.offset, x.length)
        },
        E::InputMessageEntityMentionName(x) => simple(EntityKind::TextMention, x.offset, x.length),
        E::CustomEmoji(x) => Entity {
            custom_emoji_id: Some(x.document_id.to_string()),
            ..simple(EntityKind::CustomEmoji, x.offset, x.length)
        },
        E::Unknown(x) => simple(EntityKind::Unknown, x.offset, x.length),
        _ => simple(EntityKind::Unknown, 0, 0),
    }
}

fn largest_photo_size(sizes: &[tl::enums::PhotoSize]) -> Option<(i32, i32, i64)> {
    sizes
        .iter()
        .filter_map(|s| match s {
            tl::enums::PhotoSize::Size(s) => Some((s.w, s.h, i64::from(s.size))),
            tl::enums::PhotoSize::Progressive(s) => Some((
                s.w,
                s.h,
                i64::from(s.sizes.iter().copied().max().unwrap_or(0)),
            )),
            tl::enums::PhotoSize::PhotoCachedSize(s) => {
                Some((s.w, s.h, i64::try_from(s.bytes.len()).unwrap_or(0)))
            }
            _ => None,
        })
        .max_by_key(|(w, h, _)| i64::from(*w) * i64::from(*h))
}

fn photo_media(photo: &tl::enums::Photo) -> Media {
    match photo {
        tl::enums::Photo::Photo(p) => {
            let mut m = Media::of(MediaKind::Photo);
            m.id = Some(p.id.to_string());
            m.mime_type = Some("image/jpeg".into());
            if let Some((w, h, size)) = largest_photo_size(&p.sizes) {
                m.width = Some(w);
                m.height = Some(h);
                m.size = Some(size);
            }
            m
        }
        tl::enums::Photo::Empty(_) => Media::of(MediaKind::Photo),
    }
}

fn document_media(doc: &tl::enums::Document, voice_flag: bool, round_flag: bool) -> Media {
    use tl::enums::DocumentAttribute as A;
    let tl::enums::Document::Document(d) = doc else {
        return Media::of(MediaKind::Document);
    };
    let mut m = Media::of(MediaKind::Document);
    m.id = Some(d.id.to_string());
    m.mime_type = Some(d.mime_type.clone());
    m.size = Some(d.size);
    for attr in &d.attributes {
        match attr {
            A::Filename(f) => m.file_name = Some(f.file_name.clone()),
            A::ImageSize(s) => {
                m.width = Some(s.w);
                m.height = Some(s.h);
            }
            A::Video(x) => {
                m.kind = if x.round_message || round_flag {
                    MediaKind::VideoNote
                } else if m.kind == MediaKind::Animation {
                    MediaKind::Animation
                } else {
                    MediaKind::Video
                };
                m.width = Some(x.w);
                m.height = Some(x.h);
                m.duration = Some(x.duration);
            }
            A::Audio(x) => {
                m.kind = if x.voice || voice_flag {
                    MediaKind::Voice
                } else {
                    MediaKind::Audio
                };
                m.duration = Some(f64::from(x.duration));
                m.title.clone_from(&x.title);
                m.performer.clone_from(&x.performer);
            }
            A::Animated => m.kind = MediaKind::Animation,
            A::Sticker(x) => {
                m.kind = MediaKind::Sticker;
                m.emoji = Some(x.alt.clone());
            }
            _ => {}
        }
    }
    if voice_flag {
        m.kind = MediaKind::Voice;
    }
    m
}

/// The media of a message (`None` for none and for link previews).
pub fn media(media: Option<&tl::enums::MessageMedia>) -> Option<Media> {
    use tl::enums::MessageMedia as M;
    let expired = |kind| Media {
        expired: true,
        ..Media::of(kind)
    };
    Some(match media? {
        M::Empty | M::WebPage(_) => return None,
        M::Photo(p) => match &p.photo {
            Some(photo) => photo_media(photo),
            None => expired(MediaKind::Photo),
        },
        M::Document(d) => match &d.document {
            Some(doc) => document_media(doc, d.voice, d.round),
            None => expired(MediaKind::Document),
        },
        M::Geo(g) => geo_media(MediaKind::Location, &g.geo),
        M::GeoLive(g) => geo_media(MediaKind::LiveLocation, &g.geo),
        M::Venue(v) => Media {
            title: Some(v.title.clone()),
            address: Some(v.address.clone()),
            ..geo_media(MediaKind::Venue, &v.geo)
        },
        M::Contact(c) => Media {
            phone_number: Some(c.phone_number.clone()),
            first_name: Some(c.first_name.clone()),
            last_name: Some(c.last_name.clone()),
            user_id: Some(c.user_id),
            ..Media::of(MediaKind::Contact)
        },
        M::Poll(_) => Media::of(MediaKind::Poll),
        M::Dice(d) => Media {
            emoticon: Some(d.emoticon.clone()),
            value: Some(d.value),
            ..Media::of(MediaKind::Dice)
        },
        _ => Media::of(MediaKind::Other),
    })
}

fn geo_media(kind: MediaKind, geo: &tl::enums::GeoPoint) -> Media {
    match geo {
        tl::enums::GeoPoint::Point(p) => Media {
            latitude: Some(p.lat),
            longitude: Some(p.long),
            ..Media::of(kind)
        },
        tl::enums::GeoPoint::Empty => Media::of(kind),
    }
}

fn timestamp(unix: i32) -> Timestamp {
    Timestamp(i64::from(unix) * 1000)
}

/// Maps a raw message to what ingestion stores; `None` for empty and service messages.
/// `self_id` is the account's own Telegram id (the sender of outgoing private messages).
pub fn map_message(
    raw: &tl::enums::Message,
    peers: &PeerDirectory,
    self_id: Option<i64>,
) -> Option<IncomingMessage> {
    let tl::enums::Message::Message(m) = raw else {
        return None;
    };
    let peer_id = bot_api_id(&m.peer_id);
    let chat = peers.get(peer_id);
    let peer_kind = chat.map_or_else(|| kind_from_id(peer_id), |c| c.kind);
    let direction = if m.out { Direction::Out } else { Direction::In };
    let sender_id = match &m.from_id {
        Some(from) => Some(bot_api_id(from)),
        None if peer_id > 0 => match direction {
            Direction::Out => self_id,
            Direction::In => Some(peer_id),
        },
        None => None,
    };
    let sender_name = sender_id
        .and_then(|id| peers.get(id))
        .map(|p| p.title.clone())
        .or_else(|| m.post_author.clone());
    let reply_to_tg_id = match &m.reply_to {
        Some(tl::enums::MessageReplyHeader::Header(h)) if h.reply_to_peer_id.is_none() => {
            h.reply_to_msg_id.map(i64::from)
        }
        _ => None,
    };
    Some(IncomingMessage {
        peer_id,
        peer_kind,
        // Empty when the update does not describe the peer (the echo of a sent message): the
        // store then keeps the chat's names instead of renaming it to a number.
        chat_title: chat.map_or_else(String::new, |c| c.title.clone()),
        chat_username: chat.and_then(|c| c.username.clone()),
        tg_message_id: i64::from(m.id),
        direction,
        sender_id,
        sender_name,
        text: m.message.clone(),
        entities: m
            .entities
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(entity)
            .collect(),
        media: media(m.media.as_ref()),
        reply_to_tg_id,
        sent_at: timestamp(m.date),
    })
}

/// Maps a raw update (new, edited or deleted messages) with the peers that came with it.
pub fn map_raw_update(
    update: &tl::enums::Update,
    peers: &PeerDirectory,
    self_id: Option<i64>,
) -> Option<MappedUpdate> {
    use tl::enums::Update as U;
    let edited = |message: &tl::enums::Message| {
        let mapped = map_message(message, peers, self_id)?;
        let edited_at = match message {
            tl::enums::Message::Message(m) => m.edit_date.unwrap_or(m.date),
            _ => 0,
        };
        Some(MappedUpdate::Edited {
            message: mapped,
            edited_at: timestamp(edited_at),
        })
    };
    match update {
        U::NewMessage(u) => map_message(&u.message, peers, self_id).map(MappedUpdate::New),
        U::NewChannelMessage(u) => map_message(&u.message, peers, self_id).map(MappedUpdate::New),
        U::EditMessage(u) => edited(&u.message),
        U::EditChannelMessage(u) => edited(&u.message),
        U::DeleteMessages(u) => Some(MappedUpdate::Deleted {
            peer_id: None,
            tg_message_ids: u.messages.iter().copied().map(i64::from).collect(),
        }),
        U::DeleteChannelMessages(u) => Some(MappedUpdate::Deleted {
            peer_id: PeerId::channel(u.channel_id).and_then(PeerId::bot_api_dialog_id),
            tg_message_ids: u.messages.iter().copied().map(i64::from).collect(),
        }),
        _ => None,
    }
}

fn add_peer(dir: &mut PeerDirectory, peer: &grammers_client::peer::Peer) {
    use grammers_client::peer::Peer as P;
    match peer {
        P::User(u) => dir.add_user(&u.raw),
        P::Group(g) => dir.add_chat(&g.raw),
        P::Channel(c) => dir.add_chat(&tl::enums::Chat::Channel(c.raw.clone())),
        P::Community(_) => {}
    }
}

/// Telegram's user ids are 1…2^40−1; grammers asserts it (in debug builds) when it reads one.
pub(crate) fn user_ids_in_range(raw: &tl::enums::Message) -> bool {
    let in_range = |p: Option<&tl::enums::Peer>| match p {
        Some(tl::enums::Peer::User(u)) => (1..=0xff_ffff_ffff).contains(&u.user_id),
        _ => true,
    };
    match raw {
        tl::enums::Message::Message(m) => {
            in_range(Some(&m.peer_id)) && in_range(m.from_id.as_ref())
        }
        tl::enums::Message::Service(m) => {
            in_range(Some(&m.peer_id)) && in_range(m.from_id.as_ref())
        }
        tl::enums::Message::Empty(m) => in_range(m.peer_id.as_ref()),
    }
}

/// Maps a grammers update; `None` for everything ingestion ignores.
pub fn map_update(update: &Update, self_id: Option<i64>) -> Option<MappedUpdate> {
    match update {
        Update::NewMessage(m) | Update::MessageEdited(m) => {
            let msg: &grammers_client::message::Message = m;
            if !user_ids_in_range(&msg.raw) {
                // grammers stands for the account itself with a user id above Telegram's range
                // (its `InputPeerSelf` placeholder) in a message it built from the answer to a
                // send to Saved Messages; asking it for that message's peer trips its debug
                // assertion. Such a message is the account's own note to itself.
                tracing::debug!("skipped a message whose user id is outside Telegram's range");
                return None;
            }
            let mut dir = PeerDirectory::new();
            if let Some(p) = msg.peer() {
                add_peer(&mut dir, p);
            }
            if let Some(p) = msg.sender() {
                add_peer(&mut dir, p);
            }
            map_raw_update(&m.raw, &dir, self_id)
        }
        Update::MessageDeleted(d) => map_raw_update(&d.raw, &PeerDirectory::new(), self_id),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testutil::{message, user};

    fn alice() -> tl::enums::User {
        let mut u = user(1001);
        u.first_name = Some("Alice".into());
        u.last_name = Some("Liddell".into());
        u.username = Some("alice".into());
        u.into()
    }

    #[test]
    fn a_user_id_outside_telegrams_range_is_recognised() {
        let user = |id| tl::enums::Peer::User(tl::types::PeerUser { user_id: id });
        let ok: tl::enums::Message = message(1, user(1001), "hi").into();
        assert!(user_ids_in_range(&ok));
        // grammers' placeholder for the account itself (`InputPeerSelf`).
        let placeholder: tl::enums::Message = message(1, user(1 << 40), "note").into();
        assert!(!user_ids_in_range(&placeholder));
        let mut from_placeholder = message(1, user(1001), "hi");
        from_placeholder.from_id = Some(user(0));
        assert!(!user_ids_in_range(&from_placeholder.into()));
    }

    #[test]
    fn incoming_private_message_maps_peer_sender_text_and_entities() {
        let mut m = message(
            7,
            tl::types::PeerUser { user_id: 1001 }.into(),
            "hello *world*",
        );
        m.entities = Some(vec![
            tl::types::MessageEntityBold {
                offset: 6,
                length: 7,
            }
            .into(),
            tl::types::MessageEntityTextUrl {
                offset: 0,
                length: 5,
                url: "https://example.org".into(),
            }
            .into(),
        ]);
        let dir = PeerDirectory::from_tl(&[alice()], &[]);
        let got = map_message(&m.into(), &dir, Some(42));
        let got = got.expect("mapped");
        assert_eq!(got.peer_id, 1001);
        assert_eq!(got.peer_kind, PeerKind::User);
        assert_eq!(got.chat_title, "Alice Liddell");
        assert_eq!(got.chat_username.as_deref(), Some("alice"));
        assert_eq!(got.direction, Direction::In);
        assert_eq!(got.sender_id, Some(1001));
        assert_eq!(got.sender_name.as_deref(), Some("Alice Liddell"));
        assert_eq!(got.tg_message_id, 7);
        assert_eq!(got.sent_at, Timestamp(1_700_000_000_000));
        assert_eq!(
            serde_json::to_value(&got.entities).unwrap(),
            serde_json::json!([
                {"type": "bold", "offset": 6, "length": 7},
                {"type": "text_link", "offset": 0, "length": 5, "url": "https://example.org"},
            ])
        );
        assert_eq!(got.media, None);
    }

    #[test]
    fn message_the_owner_sent_from_the_phone_is_outgoing_from_self() {
        let mut m = message(8, tl::types::PeerUser { user_id: 1001 }.into(), "on my way");
        m.out = true;
        let dir = PeerDirectory::from_tl(&[alice()], &[]);
        let got = map_message(&m.into(), &dir, Some(42)).expect("mapped");
        assert_eq!(got.direction, Direction::Out);
        assert_eq!(got.sender_id, Some(42));
        assert_eq!(got.peer_id, 1001);
    }

    #[test]
    fn group_and_channel_ids_are_bot_api_style_and_kinds_follow_the_chat() {
        let mut m = message(3, tl::types::PeerChat { chat_id: 555 }.into(), "hi all");
        m.from_id = Some(tl::types::PeerUser { user_id: 1001 }.into());
        let got =
            map_message(&m.into(), &PeerDirectory::from_tl(&[alice()], &[]), None).expect("mapped");
        assert_eq!(got.peer_id, -555);
        assert_eq!(got.peer_kind, PeerKind::Group);
        assert_eq!(got.sender_id, Some(1001));
        assert_eq!(got.sender_name.as_deref(), Some("Alice Liddell"));

        let m = message(4, tl::types::PeerChannel { channel_id: 777 }.into(), "post");
        let got = map_message(&m.into(), &PeerDirectory::new(), None).expect("mapped");
        assert_eq!(got.peer_id, -1_000_000_000_777);
        assert_eq!(got.peer_kind, PeerKind::Channel);
        assert_eq!(got.sender_id, None);
    }

    #[test]
    fn document_media_reports_kind_mime_size_name_and_duration() {
        let doc = crate::testutil::document(
            "audio/ogg",
            1234,
            vec![
                tl::types::DocumentAttributeAudio {
                    voice: true,
                    duration: 3,
                    title: None,
                    performer: None,
                    waveform: None,
                }
                .into(),
                tl::types::DocumentAttributeFilename {
                    file_name: "voice.ogg".into(),
                }
                .into(),
            ],
        );
        let media = crate::testutil::media_document(doc);
        let v = super::media(Some(&media)).unwrap();
        assert_eq!(v.kind, MediaKind::Voice);
        assert_eq!(v.mime_type.as_deref(), Some("audio/ogg"));
        assert_eq!(v.size, Some(1234));
        assert_eq!(v.file_name.as_deref(), Some("voice.ogg"));
        assert_eq!(v.duration, Some(3.0));
    }

    #[test]
    fn photo_media_reports_the_largest_size() {
        let media = crate::testutil::media_photo(crate::testutil::small_and_large_sizes());
        let v = super::media(Some(&media)).unwrap();
        assert_eq!(v.kind, MediaKind::Photo);
        assert_eq!((v.width, v.height), (Some(800), Some(600)));
        assert_eq!(v.size, Some(50_000));
        assert_eq!(v.mime_type.as_deref(), Some("image/jpeg"));
    }

    #[test]
    fn edits_and_deletions_map_to_their_own_variants() {
        let mut m = message(9, tl::types::PeerUser { user_id: 1001 }.into(), "fixed");
        m.edit_date = Some(1_700_000_100);
        let update: tl::enums::Update = tl::types::UpdateEditMessage {
            message: m.into(),
            pts: 5,
            pts_count: 1,
        }
        .into();
        match map_raw_update(&update, &PeerDirectory::new(), None) {
            Some(MappedUpdate::Edited { message, edited_at }) => {
                assert_eq!(message.text, "fixed");
                assert_eq!(edited_at, Timestamp(1_700_000_100_000));
            }
            other => panic!("unexpected {other:?}"),
        }
        let del: tl::enums::Update = tl::types::UpdateDeleteMessages {
            messages: vec![1, 2],
            pts: 6,
            pts_count: 2,
        }
        .into();
        assert_eq!(
            map_raw_update(&del, &PeerDirectory::new(), None),
            Some(MappedUpdate::Deleted {
                peer_id: None,
                tg_message_ids: vec![1, 2]
            })
        );
        let del: tl::enums::Update = tl::types::UpdateDeleteChannelMessages {
            channel_id: 777,
            messages: vec![3],
            pts: 6,
            pts_count: 1,
        }
        .into();
        assert_eq!(
            map_raw_update(&del, &PeerDirectory::new(), None),
            Some(MappedUpdate::Deleted {
                peer_id: Some(-1_000_000_000_777),
                tg_message_ids: vec![3]
            })
        );
    }

    #[test]
    fn service_and_empty_messages_are_skipped() {
        let empty: tl::enums::Message = tl::types::MessageEmpty {
            id: 1,
            peer_id: None,
        }
        .into();
        assert_eq!(map_message(&empty, &PeerDirectory::new(), None), None);
    }
}
