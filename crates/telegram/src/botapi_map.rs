//! Bot API updates (raw JSON, as stored) to what ingestion stores. Works on `serde_json::Value`
//! so that update kinds and fields we do not know never make an update unreadable.

use serde::Deserialize;
use serde_json::Value;
use switchboard_domain::{
    Direction, Entity, IncomingMessage, Media, MediaKind, PeerKind, Timestamp,
};

/// What one update means for the inbox.
#[derive(Clone, Debug, PartialEq)]
pub enum BotUpdate {
    /// A new message (`message`, `channel_post`).
    New(IncomingMessage),
    /// An edit (`edited_message`, `edited_channel_post`) of a stored message.
    Edited {
        /// The message as it is now.
        message: IncomingMessage,
        /// When it was edited.
        edited_at: Timestamp,
    },
    /// Nothing to store (a kind we do not handle).
    Ignored,
}

/// A string field of a JSON object.
pub(crate) fn json_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The `update_id` of a raw update.
pub fn update_id(update: &Value) -> Option<i64> {
    update.get("update_id").and_then(Value::as_i64)
}

/// Maps one raw update of the bot whose Telegram id is `bot_id`.
pub fn map_update(update: &Value, bot_id: i64) -> BotUpdate {
    if let Some(m) = update.get("message").or_else(|| update.get("channel_post")) {
        return map_message(m, bot_id).map_or(BotUpdate::Ignored, BotUpdate::New);
    }
    if let Some(m) = update
        .get("edited_message")
        .or_else(|| update.get("edited_channel_post"))
    {
        let edited_at = m
            .get("edit_date")
            .and_then(Value::as_i64)
            .map_or_else(Timestamp::now, |d| Timestamp(d * 1000));
        return map_message(m, bot_id).map_or(BotUpdate::Ignored, |message| BotUpdate::Edited {
            message,
            edited_at,
        });
    }
    BotUpdate::Ignored
}

fn full_name(v: &Value) -> Option<String> {
    let first = json_str(v, "first_name").unwrap_or_default();
    let last = json_str(v, "last_name").unwrap_or_default();
    let name = format!("{first} {last}").trim().to_string();
    if name.is_empty() {
        json_str(v, "title").map(str::to_string)
    } else {
        Some(name)
    }
}

fn map_message(m: &Value, bot_id: i64) -> Option<IncomingMessage> {
    let chat = m.get("chat")?;
    let peer_id = chat.get("id").and_then(Value::as_i64)?;
    let tg_message_id = m.get("message_id").and_then(Value::as_i64)?;
    let peer_kind = match json_str(chat, "type")? {
        "private" => PeerKind::User,
        "group" => PeerKind::Group,
        "supergroup" => PeerKind::Supergroup,
        "channel" => PeerKind::Channel,
        _ => return None,
    };
    let (sender_id, sender_name) = match (m.get("from"), m.get("sender_chat")) {
        (Some(f), _) => (f.get("id").and_then(Value::as_i64), full_name(f)),
        (None, Some(c)) => (c.get("id").and_then(Value::as_i64), full_name(c)),
        (None, None) => (None, None),
    };
    let direction = if sender_id == Some(bot_id) {
        Direction::Out
    } else {
        Direction::In
    };
    let (text, entities) = match json_str(m, "text") {
        Some(t) => (t.to_string(), m.get("entities")),
        None => (
            json_str(m, "caption").unwrap_or_default().to_string(),
            m.get("caption_entities"),
        ),
    };
    Some(IncomingMessage {
        peer_id,
        peer_kind,
        chat_title: full_name(chat).unwrap_or_else(|| peer_id.to_string()),
        chat_username: json_str(chat, "username").map(str::to_string),
        tg_message_id,
        direction,
        sender_id,
        sender_name,
        text,
        entities: self::entities(entities),
        media: media(m),
        reply_to_tg_id: m
            .pointer("/reply_to_message/message_id")
            .and_then(Value::as_i64),
        sent_at: m
            .get("date")
            .and_then(Value::as_i64)
            .map_or_else(Timestamp::now, |d| Timestamp(d * 1000)),
    })
}

/// The entities of a Bot API message (`entities` or `caption_entities`); an entry that is not
/// an entity is left out. A `text_mention`'s `user` becomes its `user_id`.
pub fn entities(list: Option<&Value>) -> Vec<Entity> {
    let Some(items) = list.and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| {
            let mut e = Entity::deserialize(v).ok()?;
            if e.user_id.is_none() {
                e.user_id = v.pointer("/user/id").and_then(Value::as_i64);
            }
            Some(e)
        })
        .collect()
}

/// The media of a message: its kind, Telegram's `tg_file_id`/`tg_file_unique_id`, MIME type,
/// size, file name and kind-specific fields; `None` for text. `file_id` (the file store's id) is
/// added once the file is downloaded.
pub fn media(m: &Value) -> Option<Media> {
    const FILE_KINDS: &[(&str, MediaKind)] = &[
        ("video", MediaKind::Video),
        ("voice", MediaKind::Voice),
        ("audio", MediaKind::Audio),
        ("document", MediaKind::Document),
        ("sticker", MediaKind::Sticker),
        ("animation", MediaKind::Animation),
        ("video_note", MediaKind::VideoNote),
    ];
    if let Some(sizes) = m.get("photo").and_then(Value::as_array) {
        let Some(largest) = sizes.last() else {
            return Some(Media::of(MediaKind::Photo));
        };
        let mut v = file_fields(MediaKind::Photo, largest);
        v.mime_type = Some("image/jpeg".into());
        return Some(v);
    }
    for (field, kind) in FILE_KINDS {
        if let Some(f) = m.get(*field) {
            let mut v = file_fields(*kind, f);
            if *kind == MediaKind::Sticker {
                v.emoji = json_str(f, "emoji").map(str::to_string);
                if v.mime_type.is_none() {
                    let animated = f.get("is_video").and_then(Value::as_bool) == Some(true);
                    v.mime_type =
                        Some(if animated { "video/webm" } else { "image/webp" }.to_string());
                }
            }
            return Some(v);
        }
    }
    if let Some(l) = m.get("location") {
        return Some(Media {
            latitude: l.get("latitude").and_then(Value::as_f64),
            longitude: l.get("longitude").and_then(Value::as_f64),
            ..Media::of(MediaKind::Location)
        });
    }
    if let Some(c) = m.get("contact") {
        return Some(Media {
            phone_number: json_str(c, "phone_number").map(str::to_string),
            first_name: json_str(c, "first_name").map(str::to_string),
            last_name: json_str(c, "last_name").map(str::to_string),
            user_id: c.get("user_id").and_then(Value::as_i64),
            ..Media::of(MediaKind::Contact)
        });
    }
    None
}

fn file_fields(kind: MediaKind, f: &Value) -> Media {
    let text = |key| json_str(f, key).map(str::to_string);
    let int = |key| f.get(key).and_then(Value::as_i64);
    let small = |key| int(key).and_then(|n| i32::try_from(n).ok());
    Media {
        tg_file_id: text("file_id"),
        tg_file_unique_id: text("file_unique_id"),
        mime_type: text("mime_type"),
        size: int("file_size"),
        file_name: text("file_name"),
        width: small("width"),
        height: small("height"),
        duration: f.get("duration").and_then(Value::as_f64),
        title: text("title"),
        performer: text("performer"),
        ..Media::of(kind)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const BOT: i64 = 5_000_000_001;

    fn user() -> Value {
        json!({"id": 1000123, "is_bot": false, "first_name": "Alice", "last_name": "Smith", "username": "alice"})
    }

    #[test]
    fn private_text_with_entities_and_reply() {
        let u = json!({"update_id": 7, "message": {
            "message_id": 12, "date": 1_700_000_000,
            "chat": {"id": 1000123, "type": "private", "first_name": "Alice", "last_name": "Smith", "username": "alice"},
            "from": user(),
            "text": "hello *world*",
            "entities": [{"type": "bold", "offset": 6, "length": 7}],
            "reply_to_message": {"message_id": 11, "date": 1, "chat": {"id": 1000123, "type": "private"}}
        }});
        assert_eq!(update_id(&u), Some(7));
        let BotUpdate::New(m) = map_update(&u, BOT) else {
            panic!("not a new message");
        };
        assert_eq!(m.peer_id, 1000123);
        assert_eq!(m.peer_kind, PeerKind::User);
        assert_eq!(m.chat_title, "Alice Smith");
        assert_eq!(m.chat_username.as_deref(), Some("alice"));
        assert_eq!(m.tg_message_id, 12);
        assert_eq!(m.direction, Direction::In);
        assert_eq!(m.sender_id, Some(1000123));
        assert_eq!(m.sender_name.as_deref(), Some("Alice Smith"));
        assert_eq!(m.text, "hello *world*");
        assert_eq!(m.entities[0].kind, switchboard_domain::EntityKind::Bold);
        assert_eq!(m.reply_to_tg_id, Some(11));
        assert_eq!(m.sent_at, Timestamp(1_700_000_000_000));
        assert!(m.media.is_none());
    }

    #[test]
    fn group_photo_with_caption_takes_the_largest_size() {
        let u = json!({"update_id": 8, "message": {
            "message_id": 3, "date": 5,
            "chat": {"id": -1001234, "type": "supergroup", "title": "Team"},
            "from": user(),
            "caption": "look",
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "file_size": 10, "width": 90, "height": 60},
                {"file_id": "big", "file_unique_id": "b", "file_size": 1000, "width": 800, "height": 600}
            ]
        }});
        let BotUpdate::New(m) = map_update(&u, BOT) else {
            panic!("not a new message");
        };
        assert_eq!(m.peer_kind, PeerKind::Supergroup);
        assert_eq!(m.chat_title, "Team");
        assert_eq!(m.text, "look");
        let media = m.media.unwrap();
        assert_eq!(media.kind, MediaKind::Photo);
        assert_eq!(media.tg_file_id.as_deref(), Some("big"));
        assert_eq!(media.tg_file_unique_id.as_deref(), Some("b"));
        assert_eq!(media.size, Some(1000));
        assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
    }

    #[test]
    fn media_kinds() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "du", "file_name": "a.pdf", "mime_type": "application/pdf", "file_size": 3}});
        let media = |v: &Value| super::media(v).unwrap();
        assert_eq!(media(&doc).kind, MediaKind::Document);
        assert_eq!(media(&doc).file_name.as_deref(), Some("a.pdf"));
        assert_eq!(media(&doc).mime_type.as_deref(), Some("application/pdf"));
        let voice = json!({"voice": {"file_id": "v", "file_unique_id": "vu", "duration": 2, "mime_type": "audio/ogg"}});
        assert_eq!(media(&voice).kind, MediaKind::Voice);
        assert_eq!(media(&voice).duration, Some(2.0));
        let sticker = json!({"sticker": {"file_id": "s", "file_unique_id": "su", "emoji": "😀"}});
        assert_eq!(media(&sticker).kind, MediaKind::Sticker);
        assert_eq!(media(&sticker).mime_type.as_deref(), Some("image/webp"));
        let loc = json!({"location": {"latitude": 55.75, "longitude": 37.61}});
        assert_eq!(media(&loc).kind, MediaKind::Location);
        assert_eq!(media(&loc).latitude, Some(55.75));
        let contact =
            json!({"contact": {"phone_number": "+1555", "first_name": "Bob", "user_id": 5}});
        assert_eq!(media(&contact).kind, MediaKind::Contact);
        assert_eq!(media(&contact).phone_number.as_deref(), Some("+1555"));
        for (k, kind) in [("video", MediaKind::Video), ("audio", MediaKind::Audio)] {
            let v = json!({k: {"file_id": "x", "file_unique_id": "y"}});
            assert_eq!(media(&v).kind, kind);
        }
    }

    #[test]
    fn edits_and_channel_posts_and_unknown_kinds() {
        let e = json!({"update_id": 9, "edited_message": {
            "message_id": 12, "date": 1, "edit_date": 2,
            "chat": {"id": -4001, "type": "group", "title": "G"}, "from": user(), "text": "new"
        }});
        match map_update(&e, BOT) {
            BotUpdate::Edited { message, edited_at } => {
                assert_eq!(message.text, "new");
                assert_eq!(message.peer_kind, PeerKind::Group);
                assert_eq!(edited_at, Timestamp(2000));
            }
            other => panic!("{other:?}"),
        }
        let post = json!({"update_id": 10, "channel_post": {
            "message_id": 1, "date": 1, "chat": {"id": -100777, "type": "channel", "title": "News"},
            "sender_chat": {"id": -100777, "type": "channel", "title": "News"}, "text": "post"
        }});
        let BotUpdate::New(m) = map_update(&post, BOT) else {
            panic!("not new");
        };
        assert_eq!(m.peer_kind, PeerKind::Channel);
        assert_eq!(m.sender_name.as_deref(), Some("News"));
        assert_eq!(
            map_update(&json!({"update_id": 11, "poll": {}}), BOT),
            BotUpdate::Ignored
        );
        assert_eq!(
            map_update(&json!({"update_id": 12, "message": {"date": 1}}), BOT),
            BotUpdate::Ignored
        );
    }
}
