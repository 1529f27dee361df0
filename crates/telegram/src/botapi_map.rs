//! Bot API updates (raw JSON, as stored) to what ingestion stores. Works on `serde_json::Value`
//! so that update kinds and fields we do not know never make an update unreadable.

use serde_json::{Value, json};
use switchboard_domain::{Direction, IncomingMessage, PeerKind, Timestamp};

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
        entities: entities.cloned().unwrap_or_else(|| json!([])),
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

/// The media JSON of a message: `kind`, Telegram's `tg_file_id`/`tg_file_unique_id`, `mime`,
/// `size`, `file_name` and kind-specific fields; `null` for text. `file_id` (the file store's
/// id) is added once the file is downloaded.
pub fn media(m: &Value) -> Value {
    const FILE_KINDS: &[&str] = &[
        "video",
        "voice",
        "audio",
        "document",
        "sticker",
        "animation",
        "video_note",
    ];
    if let Some(sizes) = m.get("photo").and_then(Value::as_array) {
        let Some(largest) = sizes.last() else {
            return json!({"kind": "photo"});
        };
        let mut v = file_fields("photo", largest);
        v["mime"] = json!("image/jpeg");
        return v;
    }
    for kind in FILE_KINDS {
        if let Some(f) = m.get(*kind) {
            let mut v = file_fields(kind, f);
            if *kind == "sticker" {
                if let Some(e) = json_str(f, "emoji") {
                    v["emoji"] = json!(e);
                }
                if v.get("mime").is_none() {
                    let animated = f.get("is_video").and_then(Value::as_bool) == Some(true);
                    v["mime"] = json!(if animated { "video/webm" } else { "image/webp" });
                }
            }
            return v;
        }
    }
    if let Some(l) = m.get("location") {
        return json!({"kind": "location", "latitude": l.get("latitude"), "longitude": l.get("longitude")});
    }
    if let Some(c) = m.get("contact") {
        return json!({
            "kind": "contact",
            "phone_number": c.get("phone_number"),
            "first_name": c.get("first_name"),
            "last_name": c.get("last_name"),
            "user_id": c.get("user_id"),
        });
    }
    Value::Null
}

fn file_fields(kind: &str, f: &Value) -> Value {
    let mut v = json!({"kind": kind});
    for (from, to) in [
        ("file_id", "tg_file_id"),
        ("file_unique_id", "tg_file_unique_id"),
        ("mime_type", "mime"),
        ("file_size", "size"),
        ("file_name", "file_name"),
        ("width", "width"),
        ("height", "height"),
        ("duration", "duration"),
        ("title", "title"),
        ("performer", "performer"),
    ] {
        if let Some(x) = f.get(from).filter(|x| !x.is_null()) {
            v[to] = x.clone();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(m.entities[0]["type"], "bold");
        assert_eq!(m.reply_to_tg_id, Some(11));
        assert_eq!(m.sent_at, Timestamp(1_700_000_000_000));
        assert!(m.media.is_null());
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
        assert_eq!(m.media["kind"], "photo");
        assert_eq!(m.media["tg_file_id"], "big");
        assert_eq!(m.media["tg_file_unique_id"], "b");
        assert_eq!(m.media["size"], 1000);
        assert_eq!(m.media["mime"], "image/jpeg");
    }

    #[test]
    fn media_kinds() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "du", "file_name": "a.pdf", "mime_type": "application/pdf", "file_size": 3}});
        assert_eq!(media(&doc)["kind"], "document");
        assert_eq!(media(&doc)["file_name"], "a.pdf");
        assert_eq!(media(&doc)["mime"], "application/pdf");
        let voice = json!({"voice": {"file_id": "v", "file_unique_id": "vu", "duration": 2, "mime_type": "audio/ogg"}});
        assert_eq!(media(&voice)["kind"], "voice");
        assert_eq!(media(&voice)["duration"], 2);
        let sticker = json!({"sticker": {"file_id": "s", "file_unique_id": "su", "emoji": "😀"}});
        assert_eq!(media(&sticker)["kind"], "sticker");
        assert_eq!(media(&sticker)["mime"], "image/webp");
        let loc = json!({"location": {"latitude": 55.75, "longitude": 37.61}});
        assert_eq!(media(&loc)["kind"], "location");
        let contact =
            json!({"contact": {"phone_number": "+1555", "first_name": "Bob", "user_id": 5}});
        assert_eq!(media(&contact)["kind"], "contact");
        assert_eq!(media(&contact)["phone_number"], "+1555");
        for k in ["video", "audio"] {
            let v = json!({k: {"file_id": "x", "file_unique_id": "y"}});
            assert_eq!(media(&v)["kind"], k);
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
