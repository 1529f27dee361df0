//! Media of personal accounts, end to end on both backends: a tgsim user sends a photo and
//! documents to a connected account; the files land in the content-addressed store with the
//! bytes tgsim holds, the message's media JSON gets the file id, a `message_updated` event goes
//! out, a download that fails is tried again, and a file above the configured limit is marked
//! `too_large` and not fetched. Downloads that failed or were still queued when the server
//! stopped are fetched after it starts again, for accounts and bots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use switchboard::Config;
use switchboard_files::FileId;
use switchboard_tests::accounts::{
    import_session, messages_of, registered_user, telethon_string, wait_for, wait_status,
};
use switchboard_tests::app::{PASSWORD, TestApp};
use switchboard_tests::app_tests;

app_tests!(received_media_is_downloaded_into_the_file_store with small_media_limit);
switchboard_tests::restarting_app_tests!(unfinished_downloads_are_fetched_after_a_restart);

const LIMIT: u64 = 1024 * 1024;

fn small_media_limit(c: &mut Config) {
    c.media.max_file_bytes = LIMIT;
}

fn media(
    kind: tgsim::MediaKind,
    data: Vec<u8>,
    name: Option<&str>,
    mime: Option<&str>,
) -> tgsim::OutgoingMessage {
    tgsim::OutgoingMessage {
        text: format!("{kind:?}"),
        media: Some(tgsim::MediaUpload {
            kind,
            data,
            file_name: name.map(str::to_string),
            mime: mime.map(str::to_string),
        }),
        ..Default::default()
    }
}

/// Bytes that are not all the same, so a wrong offset would change the hash.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(u64::from(seed)) as u8
        })
        .collect()
}

async fn received_media_is_downloaded_into_the_file_store(app: &TestApp) {
    let (owner, key) = registered_user(&app.sim, "+15554000", "Owner");
    let (sender, _) = registered_user(&app.sim, "+15554001", "Client");
    let b = app.login("admin", PASSWORD).await;
    let account = import_session(&b, &telethon_string(&app.sim, key)).await;
    wait_status(&b, account, "connected").await;

    // A photo over one 512 KiB download chunk, a PDF, and a document above the limit.
    let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0];
    photo.extend(pattern(700 * 1024, 1));
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend(pattern(5000, 2));
    let huge = pattern(LIMIT as usize + 1, 3);
    let to = tgsim::Peer::User(owner.id);
    // The first download request fails: the file is fetched again on a later attempt.
    app.sim.rpc_error(
        Some(owner.id),
        "upload.getFile",
        400,
        "SIMULATED_FAILURE",
        1,
    );
    let sends = [
        media(tgsim::MediaKind::Photo, photo.clone(), None, None),
        media(
            tgsim::MediaKind::Document,
            pdf.clone(),
            Some("offer.pdf"),
            Some("application/pdf"),
        ),
        media(tgsim::MediaKind::Document, huge, Some("huge.bin"), None),
    ];
    for m in sends {
        app.sim.send_message(sender.id, to, m).unwrap();
    }

    // What tgsim holds, per kind of message.
    let received = app.sim.received_messages(owner.id).unwrap();
    let held: Vec<Vec<u8>> = received
        .iter()
        .filter_map(|m| m.media.as_ref())
        .map(|v| app.sim.file(&v.file_id).unwrap().1)
        .collect();
    assert_eq!(held.len(), 3);
    assert!(held.contains(&photo) && held.contains(&pdf));

    let msgs = wait_for("two downloads and one too_large", || async {
        let msgs = messages_of(&b, account).await;
        let with_media: Vec<&Value> = msgs.iter().filter(|m| !m["media"].is_null()).collect();
        let done = with_media
            .iter()
            .filter(|m| m["media"]["file_id"].is_string() || m["media"]["too_large"] == true)
            .count();
        (with_media.len() == 3 && done == 3).then(|| Value::Array(msgs.clone()))
    })
    .await;
    assert!(
        app.sim.faults().is_empty(),
        "the injected failure was hit, and the file still arrived"
    );
    let by_text = |t: &str, name: Option<&str>| -> Value {
        msgs.as_array()
            .unwrap()
            .iter()
            .find(|m| m["text"] == t && name.is_none_or(|n| m["media"]["file_name"] == n))
            .unwrap_or_else(|| panic!("no {t} message"))["media"]
            .clone()
    };

    let files = switchboard_files::FileStore::new(app.config.data_dir.join("files"), LIMIT);
    for (m, bytes, mime) in [
        (by_text("Photo", None), &photo, "image/jpeg"),
        (
            by_text("Document", Some("offer.pdf")),
            &pdf,
            "application/pdf",
        ),
    ] {
        let id: FileId = m["file_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(id, FileId::of(bytes), "the sha256 of what tgsim holds");
        assert_eq!(m["size"], bytes.len());
        assert_eq!(m["mime_type"], mime);
        let path = files.path(&id);
        let hex = id.to_hex();
        assert!(path.ends_with(format!("files/{}/{}/{hex}", &hex[0..2], &hex[2..4])));
        assert_eq!(&std::fs::read(&path).unwrap(), bytes);
    }
    let huge = by_text("Document", Some("huge.bin"));
    assert_eq!(huge["too_large"], true);
    assert!(huge.get("file_id").is_none());

    // Exactly the two files are stored, nothing half-written is left.
    let mut stored = Vec::new();
    let mut dirs = vec![app.config.data_dir.join("files")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                stored.push(e.path());
            }
        }
    }
    assert_eq!(stored.len(), 2, "{stored:?}");

    // Each download was announced.
    let events = app
        .running
        .events
        .since(app.running.events.first_id() - 1)
        .unwrap();
    let updates: Vec<Value> = events
        .iter()
        .filter(|e| e.name == "message_updated")
        .map(|e| e.data())
        .filter(|d| d["message"]["media"]["file_id"].is_string())
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(updates.iter().all(|d| d["account_id"] == account));
}

/// Every message with media of every chat the admin sees (accounts' and bots').
async fn media_messages(b: &switchboard_tests::app::Browser) -> Vec<Value> {
    let chats: Value = b.get("/api/v1/chats").await.json().await.unwrap();
    let mut out = Vec::new();
    for chat in chats["chats"].as_array().unwrap() {
        let id = chat["id"].as_i64().unwrap();
        let msgs: Value = b
            .get(&format!("/api/v1/chats/{id}/messages"))
            .await
            .json()
            .await
            .unwrap();
        out.extend(
            msgs["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| !m["media"].is_null())
                .cloned(),
        );
    }
    out
}

async fn unfinished_downloads_are_fetched_after_a_restart(app: TestApp) -> TestApp {
    let (owner, key) = registered_user(&app.sim, "+15554100", "Owner");
    let (sender, _) = registered_user(&app.sim, "+15554101", "Client");
    let b = app.login("admin", PASSWORD).await;
    let account = import_session(&b, &telethon_string(&app.sim, key)).await;
    wait_status(&b, account, "connected").await;
    let bot = app
        .sim
        .create_bot(tgsim::NewBot {
            username: "files_bot".into(),
            first_name: "Files".into(),
            token: None,
        })
        .unwrap();
    let r = b
        .post(
            "/api/v1/bots",
            &serde_json::json!({"token": bot.token.clone().unwrap()}),
        )
        .await;
    assert_eq!(r.status(), 201);

    // While this server runs, Telegram fails every download: the account's first file fails
    // its attempts, the second waits in the queue behind it; the bot's fails too.
    app.sim.rpc_error(
        Some(owner.id),
        "upload.getFile",
        400,
        "SIMULATED_FAILURE",
        1000,
    );
    app.sim.rpc_error(
        Some(bot.id),
        "bot.getFile",
        500,
        "Internal Server Error",
        1000,
    );
    let pdf = |seed: u8| {
        let mut d = b"%PDF-1.7\n".to_vec();
        d.extend(pattern(3000, seed));
        d
    };
    let sent = [
        (tgsim::Peer::User(owner.id), pdf(11)),
        (tgsim::Peer::User(owner.id), pdf(12)),
        (tgsim::Peer::User(bot.id), pdf(13)),
    ];
    for (to, data) in &sent {
        let m = media(
            tgsim::MediaKind::Document,
            data.clone(),
            Some("a.pdf"),
            Some("application/pdf"),
        );
        app.sim.send_message(sender.id, *to, m).unwrap();
    }
    wait_for("three stored messages whose downloads failed", || async {
        let counters = app.sim.counters();
        let account_tried = counters
            .accounts
            .get(&owner.id.0.to_string())
            .and_then(|c| c.calls.get("upload.getFile").copied())
            .unwrap_or(0);
        let bot_tried = counters
            .bot_api_calls
            .get(&bot.id.0.to_string())
            .and_then(|c| c.get("getFile").copied())
            .unwrap_or(0);
        let msgs = media_messages(&b).await;
        (msgs.len() == 3 && account_tried > 0 && bot_tried > 0).then_some(Value::Null)
    })
    .await;
    assert!(
        media_messages(&b)
            .await
            .iter()
            .all(|m| m["media"]["file_id"].is_null()),
        "nothing could be downloaded yet"
    );

    // Telegram recovers while the server is down; after the start every file is fetched.
    let sim = app.sim.clone();
    let app = app.restart_with(|| async move { sim.clear_faults() }).await;
    let b = app.login("admin", PASSWORD).await;
    let msgs = wait_for("every file after the restart", || async {
        let msgs = media_messages(&b).await;
        msgs.iter()
            .all(|m| m["media"]["file_id"].is_string())
            .then(|| Value::Array(msgs.clone()))
    })
    .await;
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let files = switchboard_files::FileStore::new(app.config.data_dir.join("files"), LIMIT);
    let mut stored: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| {
            let id: FileId = m["media"]["file_id"].as_str().unwrap().parse().unwrap();
            std::fs::read(files.path(&id)).unwrap()
        })
        .collect();
    stored.sort();
    let mut expected: Vec<Vec<u8>> = sent.iter().map(|(_, d)| d.clone()).collect();
    expected.sort();
    assert_eq!(stored, expected, "the bytes Telegram holds");
    app
}
