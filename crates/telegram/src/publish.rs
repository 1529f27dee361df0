//! Publishing to channels and groups from a personal account (autoposting): a post — text, one
//! media file, or an album of up to 10 — sent with the run's own `random_id`, so that a repeat
//! after a crash is refused by Telegram (`RANDOM_ID_DUPLICATE`) instead of posted twice; and
//! what is done to a published post afterwards: edit its text or caption, delete it, pin and
//! unpin it. Every call goes through the account's one live client, which the caller passes.

use crate::error::Error;
use crate::send::{self, Attachment, SendOptions, SentMessage};
use grammers_client::Client;
use grammers_session::types::{PeerKind, PeerRef};
use grammers_tl_types as tl;
use switchboard_domain::Entity;

/// Telegram's largest album.
pub const MAX_ALBUM: usize = 10;

/// The `random_id` of item `index` of an album posted with `random_id`: consecutive values,
/// so every item has its own and a repeat of the album repeats all of them.
pub fn item_random_id(random_id: i64, index: usize) -> i64 {
    random_id.wrapping_add(i64::try_from(index).unwrap_or(0))
}

/// One item of an album: an uploaded file and its caption.
pub struct AlbumItem {
    /// The file (uploaded with [`send::upload`]).
    pub attachment: Attachment,
    /// Caption.
    pub caption: String,
    /// Caption formatting.
    pub entities: Vec<Entity>,
}

/// Posts text, or one file with `text` as its caption, to `peer` with `random_id`.
pub async fn post(
    client: &Client,
    peer: PeerRef,
    text: &str,
    entities: &[Entity],
    attachment: Option<Attachment>,
    options: SendOptions,
    random_id: i64,
) -> Result<SentMessage, Error> {
    send::send_with(
        client, peer, text, entities, None, attachment, random_id, options,
    )
    .await
}

/// Posts an album (2–10 files, one `grouped_id`) with one `messages.sendMultiMedia`: each file
/// is first turned into a Telegram photo or document with `messages.uploadMedia`, as Telegram
/// requires for albums. Item `i` carries [`item_random_id`]`(random_id, i)`. Returns the posted
/// messages in order.
pub async fn post_album(
    client: &Client,
    peer: PeerRef,
    items: Vec<AlbumItem>,
    options: SendOptions,
    random_id: i64,
) -> Result<Vec<SentMessage>, Error> {
    if items.is_empty() || items.len() > MAX_ALBUM {
        return Err(Error::Rpc {
            code: 400,
            name: "MULTI_MEDIA_TOO_LONG".into(),
        });
    }
    let mut multi = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let uploaded = client
            .invoke(&tl::functions::messages::UploadMedia {
                business_connection_id: None,
                peer: peer.into(),
                media: item.attachment.into_input_media(),
            })
            .await?;
        let media = input_media_of(uploaded).ok_or(Error::Unexpected(
            "messages.uploadMedia answered media an album cannot carry",
        ))?;
        let entities = send::to_mtproto_entities(&item.entities);
        multi.push(tl::enums::InputSingleMedia::Media(
            tl::types::InputSingleMedia {
                media,
                random_id: item_random_id(random_id, i),
                message: item.caption,
                entities: (!entities.is_empty()).then_some(entities),
            },
        ));
    }
    let ids: Vec<i64> = multi
        .iter()
        .map(|tl::enums::InputSingleMedia::Media(m)| m.random_id)
        .collect();
    let updates = client
        .invoke(&tl::functions::messages::SendMultiMedia {
            silent: options.silent,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: peer.into(),
            reply_to: None,
            multi_media: multi,
            schedule_date: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
        })
        .await?;
    ids.iter()
        .map(|rid| {
            send::sent_from_updates(&updates, *rid).ok_or(Error::Unexpected(
                "the answer to a posted album does not name every item",
            ))
        })
        .collect()
}

/// The `inputMediaPhoto` / `inputMediaDocument` of media Telegram stored.
fn input_media_of(media: tl::enums::MessageMedia) -> Option<tl::enums::InputMedia> {
    match media {
        tl::enums::MessageMedia::Photo(p) => match p.photo? {
            tl::enums::Photo::Photo(p) => {
                Some(tl::enums::InputMedia::Photo(tl::types::InputMediaPhoto {
                    spoiler: false,
                    live_photo: false,
                    id: tl::enums::InputPhoto::Photo(tl::types::InputPhoto {
                        id: p.id,
                        access_hash: p.access_hash,
                        file_reference: p.file_reference,
                    }),
                    ttl_seconds: None,
                    video: None,
                }))
            }
            tl::enums::Photo::Empty(_) => None,
        },
        tl::enums::MessageMedia::Document(d) => match d.document? {
            tl::enums::Document::Document(d) => Some(tl::enums::InputMedia::Document(
                tl::types::InputMediaDocument {
                    spoiler: false,
                    id: tl::enums::InputDocument::Document(tl::types::InputDocument {
                        id: d.id,
                        access_hash: d.access_hash,
                        file_reference: d.file_reference,
                    }),
                    video_cover: None,
                    video_timestamp: None,
                    ttl_seconds: None,
                    query: None,
                },
            )),
            tl::enums::Document::Empty(_) => None,
        },
        _ => None,
    }
}

/// Replaces the text (or caption) of post `id`.
pub async fn edit(
    client: &Client,
    peer: PeerRef,
    id: i32,
    text: &str,
    entities: &[Entity],
    options: SendOptions,
) -> Result<(), Error> {
    let entities = send::to_mtproto_entities(entities);
    client
        .invoke(&tl::functions::messages::EditMessage {
            no_webpage: options.no_webpage,
            invert_media: false,
            peer: peer.into(),
            id,
            message: Some(text.to_string()),
            media: None,
            reply_markup: None,
            entities: Some(entities),
            schedule_date: None,
            schedule_repeat_period: None,
            quick_reply_shortcut_id: None,
            rich_message: None,
        })
        .await?;
    Ok(())
}

/// Deletes posts `ids` for everyone (`channels.deleteMessages` in channels and supergroups,
/// `messages.deleteMessages` with `revoke` elsewhere). Ids already gone are no error.
pub async fn delete(client: &Client, peer: PeerRef, ids: &[i32]) -> Result<(), Error> {
    if peer.id.kind() == PeerKind::Channel {
        client
            .invoke(&tl::functions::channels::DeleteMessages {
                channel: peer.into(),
                id: ids.to_vec(),
            })
            .await?;
    } else {
        client
            .invoke(&tl::functions::messages::DeleteMessages {
                revoke: true,
                id: ids.to_vec(),
            })
            .await?;
    }
    Ok(())
}

/// Pins (`pinned`) or unpins post `id`; `silent` pins without notifying members.
pub async fn pin(
    client: &Client,
    peer: PeerRef,
    id: i32,
    pinned: bool,
    silent: bool,
) -> Result<(), Error> {
    client
        .invoke(&tl::functions::messages::UpdatePinnedMessage {
            silent,
            unpin: !pinned,
            pm_oneside: false,
            peer: peer.into(),
            id,
        })
        .await?;
    Ok(())
}

/// Finds the post an earlier attempt published when Telegram answers `RANDOM_ID_DUPLICATE`
/// (its answer was lost, or the hub stopped before recording it): among the chat's newest
/// messages, the oldest with `text` dated `since` (Unix seconds) or later whose id is not in
/// `taken`. In a broadcast channel posts carry no author, so the text and date decide.
pub async fn find_post(
    client: &Client,
    peer: PeerRef,
    text: &str,
    since: i32,
    taken: &[i64],
) -> Result<Option<SentMessage>, Error> {
    send::find_in_history(client, peer, text, since, taken, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn album_items_get_consecutive_random_ids() {
        assert_eq!(item_random_id(10, 0), 10);
        assert_eq!(item_random_id(10, 3), 13);
        assert_eq!(item_random_id(i64::MAX, 1), i64::MIN);
    }
}
