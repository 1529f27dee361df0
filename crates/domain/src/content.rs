//! What a message carries besides its text: formatting entities and media metadata, one type
//! each for every path (MTProto and Bot API ingestion, operators' replies, the API, events).
//!
//! Stored as JSON in `messages.entities` and `messages.media`. Rows written before these types
//! existed still read: inbound media named its MIME type `"mime"` (replies `"mime_type"`), read
//! here through a serde alias, and a kind or entity type this version does not know reads as
//! `other` / `unknown` instead of failing the row.

use serde::{Deserialize, Serialize};

/// The kind of a message's media.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A photo.
    Photo,
    /// A video.
    Video,
    /// A round video message.
    VideoNote,
    /// A GIF-like animation.
    Animation,
    /// A voice message.
    Voice,
    /// A music file.
    Audio,
    /// Any other file.
    Document,
    /// A sticker.
    Sticker,
    /// A location.
    Location,
    /// A live location.
    LiveLocation,
    /// A venue (a location with a title and address).
    Venue,
    /// A shared contact.
    Contact,
    /// A poll (not shown beyond its kind).
    Poll,
    /// A dice throw.
    Dice,
    /// Anything else (also a kind this version does not know, or none).
    #[default]
    #[serde(other)]
    Other,
}

impl MediaKind {
    /// The kinds an operator may attach to a reply.
    pub const ATTACHABLE: [MediaKind; 5] = [
        MediaKind::Photo,
        MediaKind::Video,
        MediaKind::Voice,
        MediaKind::Audio,
        MediaKind::Document,
    ];
}

/// Media metadata of a message. Which fields are set depends on `kind`: files have `mime_type`,
/// `size` and, once stored, `file_id`; locations have coordinates; contacts a phone number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Media {
    /// What it is.
    #[serde(default)]
    pub kind: MediaKind,
    /// The file store id (hex SHA-256) once the file is stored; the file is served at
    /// `GET /api/v1/messages/{id}/media`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// MIME type of the file (stored as `"mime"` by earlier versions).
    #[serde(default, alias = "mime", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// File name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Telegram's photo or document id (MTProto), which matches a download to its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The Bot API's `file_id`, for `getFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_file_id: Option<String>,
    /// The Bot API's `file_unique_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_file_unique_id: Option<String>,
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    /// Duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Title of a song or a venue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Performer of a song.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// The emoji of a sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// Latitude of a location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude of a location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// Address of a venue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Phone number of a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// First name of a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name of a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Telegram user id of a contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The emoji a dice was thrown with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoticon: Option<String>,
    /// The value a dice showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i32>,
    /// Telegram no longer has the file (a self-destructing photo or video).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expired: bool,
    /// Above the download limit: not fetched.
    #[serde(default, skip_serializing_if = "is_false")]
    pub too_large: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

// Numbers read from JSON are never NaN, so equality is total.
impl Eq for Media {}

impl Media {
    /// Media of a kind with no other fields set.
    pub fn of(kind: MediaKind) -> Self {
        Self {
            kind,
            file_id: None,
            mime_type: None,
            size: None,
            file_name: None,
            id: None,
            tg_file_id: None,
            tg_file_unique_id: None,
            width: None,
            height: None,
            duration: None,
            title: None,
            performer: None,
            emoji: None,
            latitude: None,
            longitude: None,
            address: None,
            phone_number: None,
            first_name: None,
            last_name: None,
            user_id: None,
            emoticon: None,
            value: None,
            expired: false,
            too_large: false,
        }
    }

    /// Every text field, for changing them in place (see [`crate::nul`]).
    pub fn texts_mut(&mut self) -> [&mut Option<String>; 14] {
        [
            &mut self.file_id,
            &mut self.mime_type,
            &mut self.file_name,
            &mut self.id,
            &mut self.tg_file_id,
            &mut self.tg_file_unique_id,
            &mut self.title,
            &mut self.performer,
            &mut self.emoji,
            &mut self.address,
            &mut self.phone_number,
            &mut self.first_name,
            &mut self.last_name,
            &mut self.emoticon,
        ]
    }

    /// True if a text field holds `c`.
    pub fn any_text_contains(&self, c: char) -> bool {
        [
            &self.file_id,
            &self.mime_type,
            &self.file_name,
            &self.id,
            &self.tg_file_id,
            &self.tg_file_unique_id,
            &self.title,
            &self.performer,
            &self.emoji,
            &self.address,
            &self.phone_number,
            &self.first_name,
            &self.last_name,
            &self.emoticon,
        ]
        .into_iter()
        .flatten()
        .any(|t| t.contains(c))
    }

    /// Reads stored media JSON; what this version cannot read at all becomes media of kind
    /// `other` (the message still shows, as "unsupported media"), never an error for the row.
    pub fn from_stored(json: &str) -> Option<Self> {
        match serde_json::from_str::<Option<Media>>(json) {
            Ok(media) => media,
            Err(_) => Some(Media::of(MediaKind::Other)),
        }
    }
}

/// The type of a formatting entity (Bot API names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// `@username`.
    Mention,
    /// `#hashtag`.
    Hashtag,
    /// `$USD`.
    Cashtag,
    /// `/start`.
    BotCommand,
    /// A URL in the text.
    Url,
    /// An e-mail address.
    Email,
    /// A phone number.
    PhoneNumber,
    /// Bold.
    Bold,
    /// Italic.
    Italic,
    /// Underlined.
    Underline,
    /// Struck through.
    Strikethrough,
    /// A spoiler.
    Spoiler,
    /// Monospace.
    Code,
    /// A code block (see `language`).
    Pre,
    /// A link with its own text (see `url`).
    TextLink,
    /// A mention of a user without a username (see `user_id`).
    TextMention,
    /// A custom emoji (see `custom_emoji_id`).
    CustomEmoji,
    /// A block quotation.
    Blockquote,
    /// A collapsed block quotation.
    ExpandableBlockquote,
    /// A bank card number.
    BankCard,
    /// Anything else (also a type this version does not know).
    #[serde(other)]
    Unknown,
}

/// One formatting entity: a range of the text (in UTF-16 code units, as Telegram counts) and
/// what it means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entity {
    /// What the range is.
    #[serde(rename = "type")]
    pub kind: EntityKind,
    /// Start, in UTF-16 code units.
    pub offset: i32,
    /// Length, in UTF-16 code units.
    pub length: i32,
    /// The link of a `text_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The language of a `pre` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The user of a `text_mention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The id of a `custom_emoji`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
}

impl Entity {
    /// An entity with no extra fields.
    pub fn new(kind: EntityKind, offset: i32, length: i32) -> Self {
        Self {
            kind,
            offset,
            length,
            url: None,
            language: None,
            user_id: None,
            custom_emoji_id: None,
        }
    }

    /// Every text field, for changing them in place (see [`crate::nul`]).
    pub fn texts_mut(&mut self) -> [&mut Option<String>; 3] {
        [&mut self.url, &mut self.language, &mut self.custom_emoji_id]
    }

    /// True if a text field holds `c`.
    pub fn any_text_contains(&self, c: char) -> bool {
        [&self.url, &self.language, &self.custom_emoji_id]
            .into_iter()
            .flatten()
            .any(|t| t.contains(c))
    }

    /// Reads stored entities JSON; entries this version cannot read are left out, never an
    /// error for the row.
    pub fn list_from_stored(json: &str) -> Vec<Entity> {
        match serde_json::from_str::<Vec<Entity>>(json) {
            Ok(list) => list,
            Err(_) => serde_json::from_str::<Vec<serde_json::Value>>(json)
                .map(|items| {
                    items
                        .into_iter()
                        .filter_map(|v| serde_json::from_value(v).ok())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// JSON text of a value for a JSON column, without U+0000 (PostgreSQL's `JSONB` cannot hold
/// `\u0000`; see [`crate::nul`]). Costs one scan of the text when there is none.
pub fn stored_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string(value)?;
    if !text.contains("\\u0000") {
        return Ok(text);
    }
    let tree: serde_json::Value = serde_json::from_str(&text)?;
    serde_json::to_string(&crate::nul::clean_json(&tree))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inbound_media_of_earlier_versions_reads_its_mime_type() {
        let m = Media::from_stored(
            r#"{"kind":"photo","id":"5","mime":"image/jpeg","size":10,"width":9}"#,
        )
        .unwrap();
        assert_eq!(m.kind, MediaKind::Photo);
        assert_eq!(m.mime_type.as_deref(), Some("image/jpeg"));
        let out = serde_json::to_value(&m).unwrap();
        assert_eq!(out["mime_type"], "image/jpeg");
        assert!(out.get("mime").is_none());
        let reply = Media::from_stored(
            r#"{"kind":"document","file_id":"ab","file_name":"a.pdf","mime_type":"application/pdf"}"#,
        )
        .unwrap();
        assert_eq!(reply.mime_type.as_deref(), Some("application/pdf"));
        assert_eq!(Media::from_stored("null"), None);
    }

    #[test]
    fn unknown_kinds_and_garbage_read_as_other() {
        assert_eq!(
            Media::from_stored(r#"{"kind":"hologram"}"#).unwrap().kind,
            MediaKind::Other
        );
        assert_eq!(
            Media::from_stored(r#"{"kind":"photo","size":"big"}"#)
                .unwrap()
                .kind,
            MediaKind::Other
        );
    }

    #[test]
    fn entities_read_leniently() {
        let list = Entity::list_from_stored(
            r#"[{"type":"bold","offset":0,"length":4},{"type":"mystery","offset":1,"length":1},{"oops":1}]"#,
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].kind, EntityKind::Bold);
        assert_eq!(list[1].kind, EntityKind::Unknown);
        assert!(Entity::list_from_stored("not json").is_empty());
    }

    #[test]
    fn stored_json_has_no_nul() {
        let mut m = Media::of(MediaKind::Document);
        m.file_name = Some("a\0b".into());
        let text = stored_json(&m).unwrap();
        assert!(!text.contains("\\u0000"));
        assert!(text.contains('\u{FFFD}'));
        let plain = stored_json(&Media::of(MediaKind::Poll)).unwrap();
        assert_eq!(plain, r#"{"kind":"poll"}"#);
    }
}
