//! Messages stored by earlier versions, before media and entities were typed: their JSON is
//! written straight into the database, then read through the API like any message, on both
//! backends. Inbound media named its MIME type `"mime"` (replies `"mime_type"`); entity types and
//! media kinds this version does not know must not make a row unreadable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use switchboard_domain::{IncomingMessage, PeerKind, Timestamp};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::db::stopped_account;

app_tests!(messages_in_earlier_shapes_read_and_are_served);

async fn messages_in_earlier_shapes_read_and_are_served(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let db = app.stores().unwrap();
    let account = db
        .accounts
        .create_account(
            &stopped_account(app.workspace, "15550100", 4242, "Owner"),
            Timestamp(1),
        )
        .await
        .unwrap();
    let first = IncomingMessage {
        peer_id: 777,
        peer_kind: PeerKind::User,
        chat_title: "Customer".into(),
        chat_username: None,
        tg_message_id: 1,
        direction: switchboard_domain::Direction::In,
        sender_id: Some(777),
        sender_name: Some("Customer".into()),
        text: "hello".into(),
        entities: Vec::new(),
        media: None,
        reply_to_tg_id: None,
        sent_at: Timestamp(1_000),
    };
    let chat = db
        .accounts
        .ingest_messages(account.id, &[first], Timestamp(1_000))
        .await
        .unwrap()
        .chats[0]
        .id;

    // The file of the old inbound photo is in the file store.
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 9, 8, 7, 6];
    let files = switchboard_files::FileStore::new(app.config.data_dir.join("files"), 1 << 20);
    let stored = files.put_bytes(&photo).await.unwrap();
    let hex = stored.sha256.to_hex();
    let inbound = format!(
        r#"{{"kind":"photo","id":"5","mime":"image/jpeg","size":8,"width":9,"height":6,"file_id":"{hex}"}}"#
    );
    let reply = format!(
        r#"{{"kind":"document","file_id":"{hex}","file_name":"plan.pdf","mime_type":"application/pdf"}}"#
    );
    let entities = r#"[{"type":"bold","offset":0,"length":3},{"type":"mystery","offset":1,"length":1,"extra":true}]"#;
    for (tg, direction, media, text) in [
        (2, "in", Some(inbound.as_str()), "old photo"),
        (3, "out", Some(reply.as_str()), "old reply"),
        (
            4,
            "in",
            Some(r#"{"kind":"hologram","shape":[1,2]}"#),
            "old oddity",
        ),
        (5, "in", None, "old text"),
    ] {
        let media = media.map_or("NULL".to_string(), |m| format!("'{m}'"));
        db.execute(&format!(
            "INSERT INTO messages (chat_id, tg_message_id, direction, text, entities, media, \
             sent_at, created_at) VALUES ({}, {tg}, '{direction}', '{text}', '{entities}', \
             {media}, {}, {})",
            chat.0,
            1_000 + tg,
            1_000 + tg
        ))
        .await;
    }

    let page: Value = admin
        .get(&format!("/api/v1/chats/{}/messages", chat.0))
        .await
        .json()
        .await
        .unwrap();
    let messages = page["messages"].as_array().unwrap();
    let by_text = |t: &str| messages.iter().find(|m| m["text"] == t).unwrap().clone();

    let photo_message = by_text("old photo");
    let media = &photo_message["media"];
    assert_eq!(media["kind"], "photo");
    assert_eq!(media["mime_type"], "image/jpeg", "read from the old `mime`");
    assert!(media.get("mime").is_none(), "served under one name");
    assert_eq!(
        (media["width"].as_i64(), media["size"].as_i64()),
        (Some(9), Some(8))
    );
    assert_eq!(
        photo_message["entities"],
        serde_json::json!([
            {"type": "bold", "offset": 0, "length": 3},
            {"type": "unknown", "offset": 1, "length": 1}
        ])
    );
    let file = admin
        .get(&format!("/api/v1/messages/{}/media", photo_message["id"]))
        .await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(file.bytes().await.unwrap().to_vec(), photo);

    let reply_message = by_text("old reply");
    assert_eq!(reply_message["media"]["mime_type"], "application/pdf");
    assert_eq!(reply_message["media"]["file_name"], "plan.pdf");
    let file = admin
        .get(&format!("/api/v1/messages/{}/media", reply_message["id"]))
        .await;
    assert_eq!(file.headers()["content-type"], "application/pdf");

    assert_eq!(by_text("old oddity")["media"]["kind"], "other");
    assert!(by_text("old text")["media"].is_null());
}
