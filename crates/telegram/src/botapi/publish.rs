//! Publishing to channels and groups as a bot (autoposting): albums (`sendMediaGroup`), and
//! what is done to a published post afterwards — edit its text or caption, delete it, pin and
//! unpin it. The Bot API has no `random_id`: a call whose answer was lost ends
//! [`BotApiError::Uncertain`] and must not be repeated blindly.

use super::{BotApi, BotApiError, Multipart, PostOptions, REQUEST_TIMEOUT, SentMessage, Upload};
use super::{sendable, sent};
use serde_json::{Value, json};
use switchboard_domain::Entity;

/// One file of an album with its caption.
#[derive(Clone)]
pub struct AlbumFile {
    /// The file (its kind decides `photo`, `video`, `document` or `audio`).
    pub file: Upload,
    /// Caption.
    pub caption: String,
    /// Caption formatting.
    pub entities: Vec<Entity>,
}

impl BotApi {
    /// `sendMediaGroup` uploading `files` (2–10): one album. Returns the posted messages in
    /// order.
    pub async fn send_media_group(
        &self,
        chat_id: i64,
        files: &[AlbumFile],
        options: PostOptions,
    ) -> Result<Vec<SentMessage>, BotApiError> {
        let mut form = Multipart::new();
        form.text("chat_id", &chat_id.to_string());
        if options.silent {
            form.text("disable_notification", "true");
        }
        let mut media = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let (_, kind) = f.file.kind.method_and_field();
            let kind = if kind == "voice" { "audio" } else { kind };
            let part = format!("file{i}");
            let mut item = json!({"type": kind, "media": format!("attach://{part}")});
            if !f.caption.is_empty() {
                item["caption"] = json!(f.caption);
            }
            let entities = sendable(&f.entities);
            if !entities.is_empty() {
                item["caption_entities"] = json!(entities);
            }
            media.push(item);
            form.file(&part, &f.file.file_name, &f.file.mime, &f.file.bytes);
        }
        form.text("media", &Value::Array(media).to_string());
        let v = self.send_form("sendMediaGroup", form).await?;
        v.as_array()
            .ok_or_else(|| BotApiError::Unexpected("sendMediaGroup without an array".into()))?
            .iter()
            .map(sent)
            .collect()
    }

    /// `editMessageText` (a text post) or `editMessageCaption` (a post with media).
    pub async fn edit_post(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
        entities: &[Entity],
        caption: bool,
        options: PostOptions,
    ) -> Result<(), BotApiError> {
        let entities = sendable(entities);
        let (method, params) = if caption {
            (
                "editMessageCaption",
                json!({"chat_id": chat_id, "message_id": message_id, "caption": text,
                       "caption_entities": entities}),
            )
        } else {
            let mut p = json!({"chat_id": chat_id, "message_id": message_id, "text": text,
                               "entities": entities});
            options.apply(&mut p, true);
            ("editMessageText", p)
        };
        self.call(method, &params, REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// `deleteMessage`.
    pub async fn delete_message(&self, chat_id: i64, message_id: i64) -> Result<(), BotApiError> {
        self.call(
            "deleteMessage",
            &json!({"chat_id": chat_id, "message_id": message_id}),
            REQUEST_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// `pinChatMessage` (`silent`: `disable_notification`) or `unpinChatMessage`.
    pub async fn pin_message(
        &self,
        chat_id: i64,
        message_id: i64,
        pinned: bool,
        silent: bool,
    ) -> Result<(), BotApiError> {
        let (method, params) = if pinned {
            (
                "pinChatMessage",
                json!({"chat_id": chat_id, "message_id": message_id,
                       "disable_notification": silent}),
            )
        } else {
            (
                "unpinChatMessage",
                json!({"chat_id": chat_id, "message_id": message_id}),
            )
        };
        self.call(method, &params, REQUEST_TIMEOUT)
            .await
            .map(|_| ())
    }
}
