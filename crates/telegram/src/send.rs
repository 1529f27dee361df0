//! Sending replies and read receipts from a personal account. Messages are sent with raw
//! `messages.sendMessage` / `messages.sendMedia` calls so that the outbox's own `random_id` is
//! used: resending an item after a crash can never post it twice (Telegram refuses a repeated
//! `random_id` with `RANDOM_ID_DUPLICATE`; [`find_sent`] then finds the message it refers to). Bot-API style formatting entities are translated to MTProto entities.

use crate::error::Error;
use grammers_client::Client;
use grammers_session::types::{PeerAuth, PeerId, PeerRef};
use grammers_tl_types as tl;
use switchboard_domain::{CachedPeer, Entity, EntityKind, PeerKind};

/// What Telegram assigned to a sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// Telegram message id.
    pub id: i32,
    /// Unix seconds.
    pub date: i32,
}

/// A reference to a cached peer usable in requests; `None` for an id grammers cannot parse.
pub fn peer_ref(peer: &CachedPeer) -> Option<PeerRef> {
    Some(PeerRef {
        id: PeerId::from_bot_api_dialog_id(peer.peer_id)?,
        auth: PeerAuth::from_hash(peer.access_hash.unwrap_or(0)),
    })
}

/// A file uploaded to Telegram, to attach.
pub struct Attachment {
    /// The uploaded file.
    pub file: tl::enums::InputFile,
    /// Send as a photo (compressed) instead of a document.
    pub as_photo: bool,
    /// MIME type (documents).
    pub mime_type: String,
    /// File name (documents).
    pub file_name: String,
}

impl Attachment {
    /// The `inputMediaUploaded*` that sends it.
    pub fn into_input_media(self) -> tl::enums::InputMedia {
        if self.as_photo {
            tl::enums::InputMedia::UploadedPhoto(tl::types::InputMediaUploadedPhoto {
                spoiler: false,
                live_photo: false,
                file: self.file,
                stickers: None,
                ttl_seconds: None,
                video: None,
            })
        } else {
            tl::enums::InputMedia::UploadedDocument(tl::types::InputMediaUploadedDocument {
                nosound_video: false,
                force_file: true,
                spoiler: false,
                file: self.file,
                thumb: None,
                mime_type: self.mime_type,
                attributes: vec![tl::enums::DocumentAttribute::Filename(
                    tl::types::DocumentAttributeFilename {
                        file_name: self.file_name,
                    },
                )],
                stickers: None,
                ttl_seconds: None,
                video_cover: None,
                video_timestamp: None,
            })
        }
    }
}

/// Uploads bytes as a file for [`send`].
pub async fn upload(
    client: &Client,
    bytes: &[u8],
    name: &str,
) -> Result<tl::enums::InputFile, Error> {
    let mut cursor = std::io::Cursor::new(bytes.to_vec());
    let uploaded = client
        .upload_stream(&mut cursor, bytes.len(), name.to_string())
        .await
        .map_err(|e| Error::Unreachable(e.to_string()))?;
    Ok(uploaded.raw)
}

/// How a message is sent: without a notification, without a link preview.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// `silent`: the recipients get no notification.
    pub silent: bool,
    /// `no_webpage`: no link preview (text messages only).
    pub no_webpage: bool,
}

/// Sends `text` (with entities, replying to `reply_to`, with `attachment`) to `peer` using
/// `random_id`.
pub async fn send(
    client: &Client,
    peer: PeerRef,
    text: &str,
    entities: &[Entity],
    reply_to: Option<i32>,
    attachment: Option<Attachment>,
    random_id: i64,
) -> Result<SentMessage, Error> {
    send_with(
        client,
        peer,
        text,
        entities,
        reply_to,
        attachment,
        random_id,
        SendOptions::default(),
    )
    .await
}

/// [`send`] with [`SendOptions`].
#[expect(
    clippy::too_many_arguments,
    reason = "one raw send: the message's parts and how it is sent"
)]
pub async fn send_with(
    client: &Client,
    peer: PeerRef,
    text: &str,
    entities: &[Entity],
    reply_to: Option<i32>,
    attachment: Option<Attachment>,
    random_id: i64,
    options: SendOptions,
) -> Result<SentMessage, Error> {
    let entities = to_mtproto_entities(entities);
    let entities = (!entities.is_empty()).then_some(entities);
    let reply_to = reply_to.map(|id| {
        tl::enums::InputReplyTo::Message(tl::types::InputReplyToMessage {
            reply_to_msg_id: id,
            top_msg_id: None,
            reply_to_peer_id: None,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            monoforum_peer_id: None,
            todo_item_id: None,
            poll_option: None,
        })
    });
    let updates = match attachment {
        None => {
            client
                .invoke(&tl::functions::messages::SendMessage {
                    no_webpage: options.no_webpage,
                    silent: options.silent,
                    background: false,
                    clear_draft: false,
                    peer: peer.into(),
                    reply_to,
                    message: text.to_string(),
                    random_id,
                    reply_markup: None,
                    entities,
                    schedule_date: None,
                    schedule_repeat_period: None,
                    send_as: None,
                    noforwards: false,
                    update_stickersets_order: false,
                    invert_media: false,
                    quick_reply_shortcut: None,
                    effect: None,
                    allow_paid_floodskip: false,
                    allow_paid_stars: None,
                    suggested_post: None,
                    rich_message: None,
                })
                .await?
        }
        Some(a) => {
            let media = a.into_input_media();
            client
                .invoke(&tl::functions::messages::SendMedia {
                    silent: options.silent,
                    background: false,
                    clear_draft: false,
                    peer: peer.into(),
                    reply_to,
                    media,
                    message: text.to_string(),
                    random_id,
                    reply_markup: None,
                    entities,
                    schedule_date: None,
                    schedule_repeat_period: None,
                    send_as: None,
                    noforwards: false,
                    update_stickersets_order: false,
                    invert_media: false,
                    quick_reply_shortcut: None,
                    effect: None,
                    allow_paid_floodskip: false,
                    allow_paid_stars: None,
                    suggested_post: None,
                })
                .await?
        }
    };
    sent_from_updates(&updates, random_id).ok_or(Error::Unexpected(
        "the answer to a sent message does not name it",
    ))
}

/// How many of the chat's newest messages [`find_sent`] looks through.
const HISTORY_WINDOW: i32 = 100;

/// Finds the message Telegram refers to when it answers `RANDOM_ID_DUPLICATE` (it was sent
/// before, but its answer never arrived): among the chat's newest messages
/// (`messages.getHistory`), the oldest outgoing one with `text` dated `since` (Unix seconds)
/// or later whose id is not in `taken` (the ids other replies of the chat already hold).
pub async fn find_sent(
    client: &Client,
    peer: PeerRef,
    text: &str,
    since: i32,
    taken: &[i64],
) -> Result<Option<SentMessage>, Error> {
    find_in_history(client, peer, text, since, taken, true).await
}

/// Like [`find_sent`]; `outgoing_only: false` also accepts messages without the `out` flag
/// (a broadcast channel's posts carry no author).
pub async fn find_in_history(
    client: &Client,
    peer: PeerRef,
    text: &str,
    since: i32,
    taken: &[i64],
    outgoing_only: bool,
) -> Result<Option<SentMessage>, Error> {
    let history = client
        .invoke(&tl::functions::messages::GetHistory {
            peer: peer.into(),
            offset_id: 0,
            offset_date: 0,
            add_offset: 0,
            limit: HISTORY_WINDOW,
            max_id: 0,
            min_id: 0,
            hash: 0,
        })
        .await?;
    let list = match history {
        tl::enums::messages::Messages::Messages(m) => m.messages,
        tl::enums::messages::Messages::Slice(m) => m.messages,
        tl::enums::messages::Messages::ChannelMessages(m) => m.messages,
        tl::enums::messages::Messages::NotModified(_) => Vec::new(),
    };
    Ok(list
        .into_iter()
        .filter_map(|m| match m {
            tl::enums::Message::Message(m)
                if (m.out || !outgoing_only)
                    && m.message == text
                    && m.date >= since
                    && !taken.contains(&i64::from(m.id)) =>
            {
                Some(SentMessage {
                    id: m.id,
                    date: m.date,
                })
            }
            _ => None,
        })
        .min_by_key(|m| m.id))
}

/// Finds the id and date of the message sent with `random_id` in Telegram's answer.
pub fn sent_from_updates(updates: &tl::enums::Updates, random_id: i64) -> Option<SentMessage> {
    let (list, date) = match updates {
        tl::enums::Updates::UpdateShortSentMessage(s) => {
            return Some(SentMessage {
                id: s.id,
                date: s.date,
            });
        }
        tl::enums::Updates::Updates(u) => (&u.updates, u.date),
        tl::enums::Updates::Combined(u) => (&u.updates, u.date),
        _ => return None,
    };
    let id = list.iter().find_map(|u| match u {
        tl::enums::Update::MessageId(m) if m.random_id == random_id => Some(m.id),
        _ => None,
    })?;
    let msg_date = list.iter().find_map(|u| {
        let message = match u {
            tl::enums::Update::NewMessage(m) => &m.message,
            tl::enums::Update::NewChannelMessage(m) => &m.message,
            _ => return None,
        };
        match message {
            tl::enums::Message::Message(m) if m.id == id => Some(m.date),
            _ => None,
        }
    });
    Some(SentMessage {
        id,
        date: msg_date.unwrap_or(date),
    })
}

/// Marks the chat read up to `max_id` (`messages.readHistory`, or `channels.readHistory` for
/// supergroups and channels).
pub async fn read_history(
    client: &Client,
    peer: PeerRef,
    kind: PeerKind,
    max_id: i32,
) -> Result<(), Error> {
    match kind {
        PeerKind::Supergroup | PeerKind::Channel => {
            client
                .invoke(&tl::functions::channels::ReadHistory {
                    channel: peer.into(),
                    max_id,
                })
                .await?;
        }
        _ => {
            client
                .invoke(&tl::functions::messages::ReadHistory {
                    peer: peer.into(),
                    max_id,
                })
                .await?;
        }
    }
    Ok(())
}

/// Translates entities (Bot API names) to MTProto entities; the types a sender cannot set are
/// dropped.
pub fn to_mtproto_entities(entities: &[Entity]) -> Vec<tl::enums::MessageEntity> {
    use tl::enums::MessageEntity as E;
    use tl::types as t;
    entities
        .iter()
        .filter_map(|e| {
            let (offset, length) = (e.offset, e.length);
            Some(match e.kind {
                EntityKind::Bold => E::Bold(t::MessageEntityBold { offset, length }),
                EntityKind::Italic => E::Italic(t::MessageEntityItalic { offset, length }),
                EntityKind::Underline => E::Underline(t::MessageEntityUnderline { offset, length }),
                EntityKind::Strikethrough => E::Strike(t::MessageEntityStrike { offset, length }),
                EntityKind::Code => E::Code(t::MessageEntityCode { offset, length }),
                EntityKind::Pre => E::Pre(t::MessageEntityPre {
                    offset,
                    length,
                    language: e.language.clone().unwrap_or_default(),
                }),
                EntityKind::TextLink => E::TextUrl(t::MessageEntityTextUrl {
                    offset,
                    length,
                    url: e.url.clone()?,
                }),
                EntityKind::Spoiler => E::Spoiler(t::MessageEntitySpoiler { offset, length }),
                _ => return None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn entities_translate_and_unknown_ones_are_dropped() {
        let entities: Vec<Entity> = serde_json::from_value(json!([
            {"type": "bold", "offset": 0, "length": 4},
            {"type": "text_link", "offset": 5, "length": 3, "url": "https://example.org"},
            {"type": "mystery", "offset": 0, "length": 1},
            {"type": "text_link", "offset": 0, "length": 1}
        ]))
        .unwrap();
        let list = to_mtproto_entities(&entities);
        assert_eq!(list.len(), 2);
        assert!(matches!(list[0], tl::enums::MessageEntity::Bold(_)));
        assert!(matches!(list[1], tl::enums::MessageEntity::TextUrl(_)));
    }

    #[test]
    fn the_sent_message_is_found_by_random_id() {
        let updates = tl::enums::Updates::Updates(tl::types::Updates {
            updates: vec![
                tl::enums::Update::MessageId(tl::types::UpdateMessageId {
                    id: 7,
                    random_id: 1,
                }),
                tl::enums::Update::MessageId(tl::types::UpdateMessageId {
                    id: 9,
                    random_id: 2,
                }),
            ],
            users: vec![],
            chats: vec![],
            date: 1000,
            seq: 0,
        });
        assert_eq!(
            sent_from_updates(&updates, 2),
            Some(SentMessage { id: 9, date: 1000 })
        );
        assert_eq!(sent_from_updates(&updates, 3), None);
    }
}
