//! Builders of layer-230 TL objects for unit tests (minimal flag-less encodings, then fields set
//! by the test), so that tests survive new optional fields.
#![allow(clippy::expect_used)]

use grammers_client::tl;

/// Runs tasks straight on the test's runtime.
pub struct Detached;

impl crate::spawn::Spawn for Detached {
    #[allow(clippy::disallowed_methods, reason = "unit tests have no supervisor")]
    fn spawn(&self, _name: &'static str, task: crate::spawn::Task) -> tokio::task::JoinHandle<()> {
        tokio::spawn(task)
    }
}
use grammers_client::tl::{Deserializable, Identifiable, Serializable};

fn with_ctor<T: Identifiable>(body: &[u8]) -> Vec<u8> {
    let mut out = T::CONSTRUCTOR_ID.to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A user with only its id set.
pub fn user(id: i64) -> tl::types::User {
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&id.to_le_bytes());
    match tl::enums::User::from_bytes(&with_ctor::<tl::types::User>(&body)).expect("user") {
        tl::enums::User::User(u) => u,
        tl::enums::User::Empty(_) => panic!("empty user"),
    }
}

/// A message at unix time 1_700_000_000 with only id, peer and text set.
pub fn message(id: i32, peer: tl::enums::Peer, text: &str) -> tl::types::Message {
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&id.to_le_bytes());
    body.extend_from_slice(&peer.to_bytes());
    body.extend_from_slice(&1_700_000_000i32.to_le_bytes());
    body.extend_from_slice(&text.to_string().to_bytes());
    match tl::enums::Message::from_bytes(&with_ctor::<tl::types::Message>(&body)).expect("message")
    {
        tl::enums::Message::Message(m) => m,
        _ => panic!("not a message"),
    }
}

/// A document.
pub fn document(
    mime: &str,
    size: i64,
    attributes: Vec<tl::enums::DocumentAttribute>,
) -> tl::enums::Document {
    tl::types::Document {
        id: 11,
        access_hash: 12,
        file_reference: vec![1, 2, 3],
        date: 1_700_000_000,
        mime_type: mime.into(),
        size,
        thumbs: None,
        video_thumbs: None,
        dc_id: 2,
        attributes,
    }
    .into()
}

/// `messageMediaDocument` with a document.
pub fn media_document(doc: tl::enums::Document) -> tl::enums::MessageMedia {
    tl::types::MessageMediaDocument {
        nopremium: false,
        spoiler: false,
        video: false,
        round: false,
        voice: false,
        document: Some(doc),
        alt_documents: None,
        video_cover: None,
        video_timestamp: None,
        ttl_seconds: None,
    }
    .into()
}

/// `messageMediaPhoto` with a photo of these sizes.
pub fn media_photo(sizes: Vec<tl::enums::PhotoSize>) -> tl::enums::MessageMedia {
    tl::types::MessageMediaPhoto {
        spoiler: false,
        live_photo: false,
        photo: Some(
            tl::types::Photo {
                has_stickers: false,
                id: 21,
                access_hash: 22,
                file_reference: vec![1],
                date: 1_700_000_000,
                sizes,
                video_sizes: None,
                dc_id: 2,
            }
            .into(),
        ),
        ttl_seconds: None,
        video: None,
    }
    .into()
}

/// A small and a large photo size (`s` 90×67, 1,000 bytes; `y` 800×600, 50,000 bytes).
pub fn small_and_large_sizes() -> Vec<tl::enums::PhotoSize> {
    vec![
        tl::types::PhotoSize {
            r#type: "s".into(),
            w: 90,
            h: 67,
            size: 1000,
        }
        .into(),
        tl::types::PhotoSize {
            r#type: "y".into(),
            w: 800,
            h: 600,
            size: 50_000,
        }
        .into(),
    ]
}
