//! U+0000 in text (shared by both store backends). PostgreSQL cannot store it in `TEXT` or `JSONB`, so one such character from a
//! Telegram user would fail a whole ingestion batch, again on every retry. Both backends
//! therefore replace it with U+FFFD (the replacement character) before writing, and read back
//! the same text.

use crate::IncomingMessage;
use crate::content::{Entity, Media};
use std::borrow::Cow;

/// What U+0000 becomes.
const REPLACEMENT: &str = "\u{FFFD}";

/// `text` with every U+0000 replaced; borrowed when there is none.
pub fn clean(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', REPLACEMENT))
    } else {
        Cow::Borrowed(text)
    }
}

/// Like [`clean`] for an optional text.
pub fn clean_opt(text: Option<&str>) -> Option<Cow<'_, str>> {
    text.map(clean)
}

/// `value` with U+0000 replaced in every string and key; borrowed when there is none.
pub fn clean_json(value: &serde_json::Value) -> Cow<'_, serde_json::Value> {
    if json_has_nul(value) {
        Cow::Owned(json_without_nul(value.clone()))
    } else {
        Cow::Borrowed(value)
    }
}

/// `batch` with U+0000 replaced in every text and JSON field; borrowed when there is none
/// (the usual case, which costs one scan).
pub fn clean_batch(batch: &[IncomingMessage]) -> Cow<'_, [IncomingMessage]> {
    if !batch.iter().any(message_has_nul) {
        return Cow::Borrowed(batch);
    }
    Cow::Owned(
        batch
            .iter()
            .map(|m| IncomingMessage {
                chat_title: clean(&m.chat_title).into_owned(),
                chat_username: clean_opt(m.chat_username.as_deref()).map(Cow::into_owned),
                sender_name: clean_opt(m.sender_name.as_deref()).map(Cow::into_owned),
                text: clean(&m.text).into_owned(),
                entities: clean_entities(&m.entities),
                media: m.media.as_ref().map(clean_media),
                ..m.clone()
            })
            .collect(),
    )
}

fn message_has_nul(m: &IncomingMessage) -> bool {
    [
        Some(m.chat_title.as_str()),
        m.chat_username.as_deref(),
        m.sender_name.as_deref(),
        Some(m.text.as_str()),
    ]
    .into_iter()
    .flatten()
    .any(|s| s.contains('\0'))
        || m.entities.iter().any(|e| e.any_text_contains('\0'))
        || m.media.as_ref().is_some_and(|x| x.any_text_contains('\0'))
}

/// `entities` with U+0000 replaced in every text field.
pub fn clean_entities(entities: &[Entity]) -> Vec<Entity> {
    entities
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for text in e.texts_mut().into_iter().flatten() {
                *text = clean(text).into_owned();
            }
            e
        })
        .collect()
}

/// `media` with U+0000 replaced in every text field.
pub fn clean_media(media: &Media) -> Media {
    let mut media = media.clone();
    for text in media.texts_mut().into_iter().flatten() {
        *text = clean(text).into_owned();
    }
    media
}

fn json_has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_has_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v))
        }
        _ => false,
    }
}

fn json_without_nul(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => serde_json::Value::String(clean(&s).into_owned()),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(json_without_nul).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| (clean(&k).into_owned(), json_without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}
