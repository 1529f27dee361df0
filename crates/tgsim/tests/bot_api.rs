//! Bot API conformance with the real `tgbot` 0.48 client.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests and benches drive the server from outside and spawn their helpers directly"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use tgbot::api::{Client, ExecuteError};
use tgbot::types::{
    GetBot, GetFile, GetUpdates, GetWebhookInfo, InputFile, InputFileReader, MessageData,
    ParseMode, SendDocument, SendMessage, SendPhoto, SetWebhook, UpdateType,
};
use tgsim::{NewBot, OutgoingMessage, Peer};

fn bot_client(sim: &tgsim::Handle, token: &str) -> Client {
    Client::new(token).unwrap().with_host(sim.bot_api_url())
}

fn make_bot(sim: &tgsim::Handle, username: &str) -> tgsim::UserInfo {
    sim.create_bot(NewBot {
        username: username.into(),
        first_name: "Test Bot".into(),
        token: None,
    })
    .unwrap()
}

type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

#[derive(Clone)]
struct Receiver {
    seen: Seen,
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let secret = headers
        .get("X-Telegram-Bot-Api-Secret-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    r.seen.lock().unwrap().push((secret, v));
    let mut f = r.fail_first.lock().unwrap();
    if *f > 0 {
        *f -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivers_with_secret_in_order_and_retries_failures() {
    let sim = common::sim().await;
    let bot = make_bot(&sim, "hook_test_bot");
    let alice = common::user(&sim, "+15550300", "Alice", None);
    let receiver = Receiver {
        seen: Arc::new(Mutex::new(vec![])),
        fail_first: Arc::new(Mutex::new(1)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = bot_client(&sim, bot.token.as_deref().unwrap());
    let me = client.execute(GetBot).await.unwrap();
    assert_eq!(me.username.as_str(), "hook_test_bot");
    assert!(
        client
            .execute(SetWebhook::new(url.clone()).with_secret_token("s3cr3t-Token_1"))
            .await
            .unwrap()
    );
    // getUpdates is refused while a webhook is set.
    assert!(client.execute(GetUpdates::new()).await.is_err());

    sim.send_message(alice.id, Peer::User(bot.id), OutgoingMessage::text("first"))
        .unwrap();
    sim.send_message(
        alice.id,
        Peer::User(bot.id),
        OutgoingMessage::text("second"),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ok = receiver.seen.lock().unwrap().len() >= 3;
        if ok || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = receiver.seen.lock().unwrap().clone();
    let texts: Vec<&str> = seen
        .iter()
        .map(|(_, v)| v["message"]["text"].as_str().unwrap_or(""))
        .collect();
    // The first delivery failed (500), was retried at once, and "second" waited behind it.
    assert_eq!(texts, vec!["first", "first", "second"]);
    assert!(
        seen.iter()
            .all(|(s, _)| s.as_deref() == Some("s3cr3t-Token_1"))
    );
    assert_eq!(seen[0].1["update_id"], seen[1].1["update_id"]);
    assert_eq!(
        seen[2].1["update_id"].as_i64().unwrap(),
        seen[0].1["update_id"].as_i64().unwrap() + 1
    );
    assert_eq!(seen[0].1["message"]["from"]["id"], alice.id.0);
    assert_eq!(seen[0].1["message"]["chat"]["type"], "private");
    let info = client.execute(GetWebhookInfo).await.unwrap();
    assert_eq!(info.url, url);
    assert_eq!(info.pending_update_count, 0);
    assert!(info.last_error_message.is_some());
    server.abort();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_receives_user_messages() {
    let sim = common::sim().await;
    let bot = make_bot(&sim, "poll_test_bot");
    let alice = common::user(&sim, "+15550310", "Alice", None);
    let client = bot_client(&sim, bot.token.as_deref().unwrap());
    let poll = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .execute(GetUpdates::new().with_timeout(Duration::from_secs(10)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.send_message(alice.id, Peer::User(bot.id), OutgoingMessage::text("ping"))
        .unwrap();
    let updates = poll.await.unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    let UpdateType::Message(m) = &updates[0].update_type else {
        panic!("unexpected {:?}", updates[0].update_type)
    };
    let MessageData::Text(t) = &m.data else {
        panic!("unexpected {:?}", m.data)
    };
    assert_eq!(t.data, "ping");
    // Confirming with offset empties the queue.
    let next = client
        .execute(GetUpdates::new().with_offset(updates[0].id + 1))
        .await
        .unwrap();
    assert!(next.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_sends_text_and_media_and_downloads_files() {
    let sim = common::sim().await;
    let bot = make_bot(&sim, "media_test_bot");
    let alice = common::user(&sim, "+15550320", "Alice", None);
    let client = bot_client(&sim, bot.token.as_deref().unwrap());
    let sent = client
        .execute(SendMessage::new(alice.id.0, "Hello from the bot"))
        .await
        .unwrap();
    assert!(sent.id > 0);
    let html = client
        .execute(SendMessage::new(
            alice.id.0,
            (
                "<b>Bold</b> &amp; <a href=\"https://example.com\">link</a>",
                ParseMode::Html,
            ),
        ))
        .await
        .unwrap();
    let MessageData::Text(t) = &html.data else {
        panic!("unexpected {:?}", html.data)
    };
    assert_eq!(t.data, "Bold & link");
    assert_eq!(t.entities.as_ref().map(|e| e.into_iter().count()), Some(2));
    let bad = client
        .execute(SendMessage::new(
            alice.id.0,
            ("<blink>x</blink>", ParseMode::Html),
        ))
        .await;
    assert!(bad.is_err());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let photo_bytes = vec![0xffu8, 0xd8, 0xff, 0xe0, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    let photo = client
        .execute(
            SendPhoto::new(
                alice.id.0,
                InputFileReader::new(std::io::Cursor::new(photo_bytes.clone()))
                    .with_file_name("pic.jpg"),
            )
            .with_caption("a photo"),
        )
        .await
        .unwrap();
    let MessageData::Photo(p) = &photo.data else {
        panic!("unexpected {:?}", photo.data)
    };
    let doc = client
        .execute(SendDocument::new(
            alice.id.0,
            InputFileReader::new(std::io::Cursor::new(b"%PDF-1.4 fake".to_vec()))
                .with_file_name("cv.pdf"),
        ))
        .await
        .unwrap();
    assert!(matches!(doc.data, MessageData::Document(_)));

    let received = sim.received_messages(alice.id).unwrap();
    assert!(
        received
            .iter()
            .any(|m| m.text == "Hello from the bot" && m.from == Some(bot.id))
    );
    let pic = received
        .iter()
        .find(|m| m.text == "a photo")
        .expect("photo arrived");
    assert_eq!(pic.media.as_ref().unwrap().kind, tgsim::MediaKind::Photo);
    assert!(received.iter().any(|m| {
        m.media
            .as_ref()
            .is_some_and(|md| md.file_name.as_deref() == Some("cv.pdf"))
    }));

    let file = client
        .execute(GetFile::new(p.data[0].file_id.clone()))
        .await
        .unwrap();
    let mut stream = client.download_file(file.file_path.unwrap()).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, photo_bytes);
    // The same file id can be re-sent (after the per-chat burst of 3 has refilled).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = client
        .execute(SendPhoto::new(
            alice.id.0,
            InputFile::file_id(p.data[0].file_id.clone()),
        ))
        .await;
    assert!(again.is_ok(), "{again:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_one_chat_gets_429_with_retry_after() {
    let sim = common::sim().await;
    let bot = make_bot(&sim, "flood_test_bot");
    let alice = common::user(&sim, "+15550330", "Alice", None);
    let client = bot_client(&sim, bot.token.as_deref().unwrap()).with_max_retries(0);
    let mut limited = None;
    for i in 0..10 {
        match client
            .execute(SendMessage::new(alice.id.0, format!("m{i}")))
            .await
        {
            Ok(_) => {}
            Err(ExecuteError::Response(e)) => {
                limited = Some((i, e.error_code(), e.retry_after()));
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let (i, code, retry_after) = limited.expect("rate limited");
    assert!(i >= 1, "a short burst is allowed");
    assert_eq!(code, Some(429));
    assert!(retry_after.is_some_and(|r| r >= 1));
    // tgbot's own retry honours retry_after and then succeeds.
    let patient = bot_client(&sim, bot.token.as_deref().unwrap());
    assert!(
        patient
            .execute(SendMessage::new(alice.id.0, "later"))
            .await
            .is_ok()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_over_http_round_trip() {
    let sim = common::sim().await;
    let http = reqwest::Client::new();
    let base = sim.control_url();
    let u: serde_json::Value = http
        .post(format!("{base}/api/users"))
        .json(&serde_json::json!({"phone": "+15550340", "first_name": "Dana"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dana = u["id"].as_i64().unwrap();
    let b: serde_json::Value = http
        .post(format!("{base}/api/bots"))
        .json(&serde_json::json!({"username": "ctl_test_bot", "first_name": "Ctl"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bot_id = b["id"].as_i64().unwrap();
    let r = http
        .post(format!("{base}/api/users/{bot_id}/send"))
        .json(&serde_json::json!({"to": {"type": "user", "id": dana}, "text": "hi Dana"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let got: serde_json::Value = http
        .get(format!("{base}/api/users/{dana}/received"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got[0]["text"], "hi Dana");
    let key: serde_json::Value = http
        .post(format!("{base}/api/auth_keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["auth_key"].as_str().unwrap().len(), 512);
    let dup = http
        .post(format!("{base}/api/bots"))
        .json(&serde_json::json!({"username": "ctl_test_bot", "first_name": "Ctl"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 400);
    let e: serde_json::Value = dup.json().await.unwrap();
    assert_eq!(e["error"]["code"], "username_occupied");
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("simulated phones"));
    let counters: serde_json::Value = http
        .get(format!("{base}/api/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["connections_total"], 0);
    sim.shutdown().await;
}
