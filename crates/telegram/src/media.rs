//! Where a message's file lives on Telegram, so ingestion can download it: photos (largest
//! size) and documents (which covers video, voice, audio, stickers and animations). Pure: built
//! from raw TL media; the download itself is grammers' `Client::iter_download`.

use crate::error::Error;
use grammers_client::Client;
use grammers_client::media::Downloadable;
use grammers_client::tl;
use grammers_client::update::Update;
use grammers_session::types::PeerRef;
use switchboard_domain::PeerKind;

/// A downloadable file of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaFile {
    location: tl::enums::InputFileLocation,
    dc_id: i32,
    size: Option<u64>,
    /// The Telegram photo or document id, as the media JSON's `"id"` holds it.
    pub media_id: String,
}

impl MediaFile {
    /// The size Telegram announced, if any (photos announce their largest size's).
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

impl Downloadable for MediaFile {
    fn to_raw_input_location(&self) -> Option<tl::enums::InputFileLocation> {
        Some(self.location.clone())
    }

    fn size(&self) -> Option<usize> {
        self.size.and_then(|s| usize::try_from(s).ok())
    }

    fn dc_id(&self) -> Option<i32> {
        Some(self.dc_id)
    }
}

/// The file of a message's media; `None` for media without one (locations, polls, …) and for
/// expired or empty photos and documents.
pub fn media_file(media: &tl::enums::MessageMedia) -> Option<MediaFile> {
    use tl::enums::MessageMedia as M;
    match media {
        M::Photo(p) => match p.photo.as_ref()? {
            tl::enums::Photo::Photo(photo) => {
                let (kind, size) = largest_size(&photo.sizes)?;
                Some(MediaFile {
                    location: tl::types::InputPhotoFileLocation {
                        id: photo.id,
                        access_hash: photo.access_hash,
                        file_reference: photo.file_reference.clone(),
                        thumb_size: kind,
                    }
                    .into(),
                    dc_id: photo.dc_id,
                    size,
                    media_id: photo.id.to_string(),
                })
            }
            tl::enums::Photo::Empty(_) => None,
        },
        M::Document(d) => match d.document.as_ref()? {
            tl::enums::Document::Document(doc) => Some(MediaFile {
                location: tl::types::InputDocumentFileLocation {
                    id: doc.id,
                    access_hash: doc.access_hash,
                    file_reference: doc.file_reference.clone(),
                    thumb_size: String::new(),
                }
                .into(),
                dc_id: doc.dc_id,
                size: u64::try_from(doc.size).ok(),
                media_id: doc.id.to_string(),
            }),
            tl::enums::Document::Empty(_) => None,
        },
        _ => None,
    }
}

/// The type letter and byte size of a photo's largest downloadable size.
fn largest_size(sizes: &[tl::enums::PhotoSize]) -> Option<(String, Option<u64>)> {
    sizes
        .iter()
        .filter_map(|s| match s {
            tl::enums::PhotoSize::Size(s) => {
                Some((s.w, s.h, s.r#type.clone(), u64::try_from(s.size).ok()))
            }
            tl::enums::PhotoSize::Progressive(s) => Some((
                s.w,
                s.h,
                s.r#type.clone(),
                s.sizes
                    .iter()
                    .copied()
                    .max()
                    .and_then(|m| u64::try_from(m).ok()),
            )),
            _ => None,
        })
        .max_by_key(|(w, h, _, _)| i64::from(*w) * i64::from(*h))
        .map(|(_, _, kind, size)| (kind, size))
}

/// The file of a new message's media, with the message's Telegram id.
pub fn update_media_file(update: &Update) -> Option<(i64, MediaFile)> {
    let Update::NewMessage(m) = update else {
        return None;
    };
    let message = match &m.raw {
        tl::enums::Update::NewMessage(u) => &u.message,
        tl::enums::Update::NewChannelMessage(u) => &u.message,
        _ => return None,
    };
    let tl::enums::Message::Message(raw) = message else {
        return None;
    };
    Some((i64::from(raw.id), media_file(raw.media.as_ref()?)?))
}

/// The files of messages of one chat, fetched again from Telegram (`messages.getMessages`, or
/// `channels.getMessages` for supergroups and channels): a download left over from an earlier
/// run needs a fresh location, since file references expire. By Telegram message id; messages
/// that are gone or have no file are left out.
pub async fn refetch_files(
    client: &Client,
    peer: PeerRef,
    kind: PeerKind,
    ids: &[i64],
) -> Result<Vec<(i64, MediaFile)>, Error> {
    let id: Vec<tl::enums::InputMessage> = ids
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .map(|id| tl::types::InputMessageId { id }.into())
        .collect();
    let found = match kind {
        PeerKind::Supergroup | PeerKind::Channel => {
            client
                .invoke(&tl::functions::channels::GetMessages {
                    channel: peer.into(),
                    id,
                })
                .await?
        }
        _ => {
            client
                .invoke(&tl::functions::messages::GetMessages { id })
                .await?
        }
    };
    let messages = match found {
        tl::enums::messages::Messages::Messages(m) => m.messages,
        tl::enums::messages::Messages::Slice(m) => m.messages,
        tl::enums::messages::Messages::ChannelMessages(m) => m.messages,
        tl::enums::messages::Messages::NotModified(_) => Vec::new(),
    };
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            tl::enums::Message::Message(raw) => {
                Some((i64::from(raw.id), media_file(raw.media.as_ref()?)?))
            }
            _ => None,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testutil::{document, media_document, media_photo, small_and_large_sizes};

    #[test]
    fn a_photo_downloads_its_largest_size() {
        let media = media_photo(small_and_large_sizes());
        let f = media_file(&media).unwrap();
        assert_eq!(f.media_id, "21");
        assert_eq!(f.size(), Some(50_000));
        assert_eq!(Downloadable::dc_id(&f), Some(2));
        match f.to_raw_input_location().unwrap() {
            tl::enums::InputFileLocation::InputPhotoFileLocation(l) => {
                assert_eq!((l.id, l.access_hash), (21, 22));
                assert_eq!(l.thumb_size, "y");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_document_downloads_whole() {
        let f = media_file(&media_document(document("application/pdf", 1234, vec![]))).unwrap();
        assert_eq!(f.media_id, "11");
        assert_eq!(f.size(), Some(1234));
        match f.to_raw_input_location().unwrap() {
            tl::enums::InputFileLocation::InputDocumentFileLocation(l) => {
                assert_eq!((l.id, l.access_hash), (11, 12));
                assert_eq!(l.file_reference, vec![1, 2, 3]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn media_without_a_file_has_no_download() {
        assert_eq!(media_file(&tl::enums::MessageMedia::Empty), None);
        let geo = tl::types::MessageMediaGeo {
            geo: tl::enums::GeoPoint::Empty,
        };
        assert_eq!(media_file(&geo.into()), None);
    }
}
