//! Bots end to end through the real server and tgsim's Bot API, on both backends: adding a
//! bot by token, long polling and webhook delivery (secret, duplicates, malformed bodies),
//! replies through the outbox (429 waited out, a blocked user failing the reply, a lost answer
//! left to the operator), and the token never leaving the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use switchboard::Config;
use switchboard_domain::{BotId, i18n};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;
use switchboard_tests::live::{
    chat_messages, chat_titled, customer, eventually, noise_png, open_ws_ready, reply,
    reply_with_file, sim_bot, upload_file, wait_frame, writes,
};
use switchboard_tests::logs::captured_logs;

app_tests!(
    a_polling_bot_receives_and_answers,
    webhook_checks_the_secret_and_stores_each_update_once with webhook_mode,
    replies_wait_out_429_and_a_blocked_user_fails_them,
    a_reply_whose_answer_was_lost_is_uncertain_until_the_operator_decides,
    the_sweep_announces_a_reply_it_returns with quick_outbox_sweep,
);

/// The outbox sweep's deadline and period, lowered for the test of that very limit.
fn quick_outbox_sweep(c: &mut Config) {
    c.inbox.outbox_stuck_after_secs = 2;
    c.inbox.outbox_sweep_secs = 1;
}

/// Webhook mode: the server's own address is its public URL, so tgsim posts to it.
fn webhook_mode(c: &mut Config) {
    c.server.public_url = Some(format!("http://{}", c.server.listen));
}

async fn add_bot(admin: &Browser, token: &str) -> Value {
    let r = admin.post("/api/v1/bots", &json!({"token": token})).await;
    assert_eq!(r.status(), 201, "adding the bot failed");
    let text = r.text().await.unwrap();
    assert!(!text.contains(token), "the token was echoed: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["bot"].clone()
}

async fn wait_bot_status(admin: &Browser, id: i64, status: &str) {
    eventually(20, &format!("the bot to be {status}"), || async {
        let list: Value = admin.get("/api/v1/bots").await.json().await.ok()?;
        list["bots"]
            .as_array()?
            .iter()
            .any(|b| b["id"].as_i64() == Some(id) && b["status"] == status)
            .then_some(())
    })
    .await;
}

async fn messages(b: &Browser, chat: i64) -> Vec<Value> {
    chat_messages(b, chat).await
}

async fn wait_message_status(b: &Browser, chat: i64, id: i64, status: &str, secs: u64) -> Value {
    eventually(secs, &format!("message {id} to be {status}"), || async {
        messages(b, chat)
            .await
            .into_iter()
            .find(|m| m["id"].as_i64() == Some(id) && m["status"] == status)
    })
    .await
}

/// The highest `update_id` the server stored for the bot.
async fn last_update_id(app: &TestApp, id: i64) -> Option<i64> {
    app.running
        .inbox
        .store()
        .load_bot(BotId(id))
        .await
        .unwrap()
        .last_update_id
}

fn received_from(app: &TestApp, user: &tgsim::UserInfo, bot: &tgsim::UserInfo) -> Vec<String> {
    app.sim
        .received_messages(user.id)
        .unwrap()
        .into_iter()
        .filter(|m| m.from == Some(bot.id))
        .map(|m| m.text)
        .collect()
}

async fn a_polling_bot_receives_and_answers(app: &TestApp) {
    captured_logs();
    let admin = app.login("admin", PASSWORD).await;
    let bot = sim_bot(app, "shop_bot");
    let token = bot.token.clone().unwrap();

    // Malformed and unknown tokens are refused with stable codes; nothing is stored.
    let r = admin
        .post("/api/v1/bots", &json!({"token": "not a token"}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "bot_token_invalid");
    let r = admin
        .post(
            "/api/v1/bots",
            &json!({"token": "5999999999:AAE-nobody-has-this-token-at-all"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "bot_token_rejected");
    let list: Value = admin.get("/api/v1/bots").await.json().await.unwrap();
    assert_eq!(list["bots"].as_array().map(Vec::len), Some(0));
    // Operators may not manage bots.
    let op = app.login("operator", PASSWORD).await;
    let r = op.post("/api/v1/bots", &json!({"token": token})).await;
    assert_eq!(r.status(), 403);

    let mut ws = open_ws_ready(app, &admin).await;
    let added = add_bot(&admin, &token).await;
    assert_eq!(added["mode"], "polling");
    assert_eq!(added["username"], "shop_bot");
    let id = added["id"].as_i64().unwrap();
    wait_frame(&mut ws, "bot_status", 20, |f| {
        f["data"]["bot_id"].as_i64() == Some(id) && f["data"]["status"] == "connected"
    })
    .await;
    wait_bot_status(&admin, id, "connected").await;
    let r = admin.post("/api/v1/bots", &json!({"token": token})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "bot_exists");

    // A customer writes to the bot: the chat and the message arrive over the API and /ws.
    let alice = customer(app, "+15550201", "Alice").await;
    writes(app, &alice, &bot, "hello bot");
    let new = wait_frame(&mut ws, "new_message", 20, |f| {
        f["data"]["message"]["text"] == "hello bot"
    })
    .await;
    assert_eq!(new["data"]["message"]["direction"], "in");
    let chat = chat_titled(&admin, "Alice").await;
    assert_eq!(chat["bot_id"].as_i64(), Some(id));
    let chat_id = chat["id"].as_i64().unwrap();
    let msgs = messages(&admin, chat_id).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["sender_name"], "Alice");

    // The operator answers; the customer receives it from the bot.
    let m = reply(&admin, chat_id, "Hi Alice, how can I help?").await["id"]
        .as_i64()
        .unwrap();
    wait_message_status(&admin, chat_id, m, "sent", 20).await;
    eventually(10, "the customer to receive the answer", || async {
        received_from(app, &alice, &bot)
            .contains(&"Hi Alice, how can I help?".to_string())
            .then_some(())
    })
    .await;

    // A 5 MiB photo goes out through the Bot API's multipart upload and arrives whole.
    let picture = noise_png(5 * 1024 * 1024);
    let r = upload_file(&admin, "big.png", "image/png", picture.clone()).await;
    assert_eq!(r.status(), 201);
    let file: Value = r.json().await.unwrap();
    let m = reply_with_file(&admin, chat_id, &file, "the big picture").await;
    wait_message_status(&admin, chat_id, m, "sent", 30).await;
    let media = app
        .sim
        .received_messages(alice.id)
        .unwrap()
        .into_iter()
        .find(|m| m.from == Some(bot.id) && m.text == "the big picture")
        .and_then(|m| m.media)
        .expect("the customer received the photo");
    assert!(app.sim.file(&media.file_id).unwrap().1 == picture);

    // A photo is downloaded with getFile into the file store and served to operators.
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8];
    app.sim
        .send_message(
            alice.id,
            tgsim::Peer::User(bot.id),
            tgsim::OutgoingMessage {
                text: "a photo".into(),
                media: Some(tgsim::MediaUpload {
                    kind: tgsim::MediaKind::Photo,
                    data: photo.clone(),
                    file_name: Some("p.jpg".into()),
                    mime: Some("image/jpeg".into()),
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let with_file = eventually(20, "the photo to be downloaded", || async {
        messages(&admin, chat_id)
            .await
            .into_iter()
            .find(|m| m["text"] == "a photo" && m["media"]["file_id"].is_string())
    })
    .await;
    assert_eq!(with_file["media"]["kind"], "photo");
    let media_id = with_file["id"].as_i64().unwrap();
    let got = admin
        .get(&format!("/api/v1/messages/{media_id}/media"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), photo);

    // Stop and start: the status follows, and messages sent while stopped arrive after.
    let r = admin
        .post(&format!("/api/v1/bots/{id}/stop"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    wait_bot_status(&admin, id, "stopped").await;
    writes(app, &alice, &bot, "while you were away");
    let r = admin
        .post(&format!("/api/v1/bots/{id}/start"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    eventually(20, "the message sent while stopped", || async {
        messages(&admin, chat_id)
            .await
            .iter()
            .any(|m| m["text"] == "while you were away")
            .then_some(())
    })
    .await;

    // The token appears in no answer and no log line; the audit trail names the actions.
    for path in [
        "/api/v1/bots".to_string(),
        "/api/v1/chats".to_string(),
        format!("/api/v1/chats/{chat_id}/messages"),
        "/api/v1/audit".to_string(),
    ] {
        let text = admin.get(&path).await.text().await.unwrap();
        assert!(!text.contains(&token), "{path} shows the token");
    }
    let audit = admin.get("/api/v1/audit").await.text().await.unwrap();
    assert!(
        audit.contains("bot.add") && audit.contains("bot.stop"),
        "{audit}"
    );
    let secret_part = token.split(':').nth(1).unwrap().to_string();
    let logged = switchboard_tests::logs::logged_text();
    assert!(!logged.is_empty(), "no logs were captured");
    assert!(!logged.contains(&secret_part), "a log line shows the token");

    // Deleting removes the bot and its chats.
    let r = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/bots/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 204);
    let list: Value = admin.get("/api/v1/bots").await.json().await.unwrap();
    assert_eq!(list["bots"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        admin
            .get(&format!("/api/v1/chats/{chat_id}"))
            .await
            .status(),
        404
    );
}

/// The bot's hook id and webhook secret, read the way the server does (white box).
async fn hook_of(app: &TestApp, id: i64) -> (String, String) {
    let bot = app.running.inbox.store().load_bot(BotId(id)).await.unwrap();
    let keyring = switchboard::app::load_keyring(&app.config).unwrap();
    let sealed = switchboard_vault::Sealed::from_bytes(&bot.hook_secret_sealed).unwrap();
    let aad = format!(
        "bot:{}:{}:{}:secret",
        bot.workspace_id.0, bot.telegram_bot_id, bot.hook_id
    );
    let secret = keyring.open(&sealed, aad.as_bytes()).unwrap();
    (bot.hook_id, String::from_utf8(secret.to_vec()).unwrap())
}

async fn post_hook(app: &TestApp, hook: &str, secret: Option<&str>, body: &str) -> u16 {
    let mut req = app
        .http
        .post(app.at(&format!("/tg/hook/{hook}")))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = secret {
        req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    req.send().await.unwrap().status().as_u16()
}

fn update(update_id: i64, message_id: i64, from: &tgsim::UserInfo, text: &str) -> String {
    json!({"update_id": update_id, "message": {
        "message_id": message_id, "date": 1_700_000_000,
        "chat": {"id": from.id.0, "type": "private", "first_name": from.first_name},
        "from": {"id": from.id.0, "is_bot": false, "first_name": from.first_name},
        "text": text
    }})
    .to_string()
}

/// A message as long as Telegram allows (4096 characters), each word a link, replying to (and
/// so carrying) another such message: over 200 KiB of JSON.
fn long_update(update_id: i64, from: &tgsim::UserInfo) -> String {
    let text = format!("long {}", "word ".repeat(818));
    let entities: Vec<Value> = (0..818)
        .map(|i| json!({"type": "text_link", "offset": 5 + i * 5, "length": 4,
            "url": format!("https://shop.example.com/catalogue/item/{i}?utm_source=telegram&utm_medium=channel&utm_campaign=winter")}))
        .collect();
    let user = json!({"id": from.id.0, "is_bot": false, "first_name": from.first_name, "username": "a_customer_with_a_long_name"});
    let chat = json!({"id": from.id.0, "type": "private", "first_name": from.first_name});
    json!({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "chat": chat, "from": user,
        "text": text, "entities": entities,
        "reply_to_message": {"message_id": update_id - 1, "date": 1_699_999_000, "chat": chat,
            "from": user, "text": text.replacen("long", "quoted", 1), "entities": entities},
        "quote": {"text": "word word word", "position": 5, "is_manual": true,
            "entities": [{"type": "bold", "offset": 0, "length": 4}]}
    }})
    .to_string()
}

async fn webhook_checks_the_secret_and_stores_each_update_once(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let bot = sim_bot(app, "hook_bot");
    let added = add_bot(&admin, bot.token.as_deref().unwrap()).await;
    assert_eq!(added["mode"], "webhook");
    let id = added["id"].as_i64().unwrap();
    wait_bot_status(&admin, id, "connected").await;

    // tgsim delivers a real message through the webhook.
    let bob = customer(app, "+15550202", "Bob").await;
    writes(app, &bob, &bot, "via webhook");
    let chat = chat_titled(&admin, "Bob").await;
    let chat_id = chat["id"].as_i64().unwrap();
    let (hook, secret) = hook_of(app, id).await;
    let before = last_update_id(app, id).await;

    // A forged secret, a missing one and an unknown hook are refused; nothing is stored.
    let forged = update(900_001, 900_001, &bob, "forged");
    assert_eq!(
        post_hook(app, &hook, Some("wrong-secret"), &forged).await,
        401
    );
    assert_eq!(post_hook(app, &hook, None, &forged).await, 401);
    assert_eq!(
        post_hook(
            app,
            "00112233445566778899aabbccddeeff",
            Some(&secret),
            &forged
        )
        .await,
        401
    );
    // Malformed bodies with the right secret: 400, nothing stored.
    assert_eq!(post_hook(app, &hook, Some(&secret), "{not json").await, 400);
    assert_eq!(
        post_hook(app, &hook, Some(&secret), "{\"no\":\"update_id\"}").await,
        400
    );
    let after = last_update_id(app, id).await;
    assert_eq!(before, after, "a refused delivery was stored");

    // The same update twice is acknowledged twice and stored once.
    let dup = update(900_002, 900_002, &bob, "only once");
    assert_eq!(post_hook(app, &hook, Some(&secret), &dup).await, 200);
    assert_eq!(post_hook(app, &hook, Some(&secret), &dup).await, 200);
    eventually(20, "the duplicated update to be ingested", || async {
        messages(&admin, chat_id)
            .await
            .iter()
            .any(|m| m["text"] == "only once")
            .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let texts: Vec<String> = messages(&admin, chat_id)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts.iter().filter(|t| *t == "only once").count(), 1);
    assert!(!texts.contains(&"forged".to_string()));

    // A long message with entities quoting another long one: a 200 KiB update is stored.
    let big = long_update(900_004, &bob);
    assert!(big.len() >= 200 * 1024, "{}", big.len());
    assert_eq!(post_hook(app, &hook, Some(&secret), &big).await, 200);
    // Past 2 MiB the answer is a coded 413.
    let huge = format!(
        "{{\"update_id\": 900005, \"pad\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let r = app
        .http
        .post(app.at(&format!("/tg/hook/{hook}")))
        .header("content-type", "application/json")
        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "payload_too_large");
    eventually(20, "the long update to be ingested", || async {
        messages(&admin, chat_id)
            .await
            .iter()
            .any(|m| m["text"].as_str().is_some_and(|t| t.starts_with("long ")))
            .then_some(())
    })
    .await;

    // An edit delivered later changes the message and keeps its history.
    let edit = json!({"update_id": 900_003, "edited_message": {
        "message_id": 900_002, "date": 1_700_000_000, "edit_date": 1_700_000_100,
        "chat": {"id": bob.id.0, "type": "private", "first_name": "Bob"},
        "from": {"id": bob.id.0, "is_bot": false, "first_name": "Bob"},
        "text": "only once (edited)"
    }})
    .to_string();
    assert_eq!(post_hook(app, &hook, Some(&secret), &edit).await, 200);
    eventually(20, "the edit to be applied", || async {
        messages(&admin, chat_id)
            .await
            .iter()
            .any(|m| m["text"] == "only once (edited)" && !m["edited_at"].is_null())
            .then_some(())
    })
    .await;
}

async fn replies_wait_out_429_and_a_blocked_user_fails_them(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let bot = sim_bot(app, "busy_bot");
    let token = bot.token.clone().unwrap();
    let id = add_bot(&admin, &token).await["id"].as_i64().unwrap();
    wait_bot_status(&admin, id, "connected").await;
    let carol = customer(app, "+15550203", "Carol").await;
    writes(app, &carol, &bot, "hi");
    let chat_id = chat_titled(&admin, "Carol").await["id"].as_i64().unwrap();

    // Telegram answers 429 retry_after=2 once: the reply waits and arrives exactly once.
    app.sim.flood_wait(Some(bot.id), "bot.sendMessage", 2, 1);
    let m = reply(&admin, chat_id, "after the wait").await["id"]
        .as_i64()
        .unwrap();
    let sent = wait_message_status(&admin, chat_id, m, "sent", 20).await;
    assert!(sent["error"].is_null() || sent["error"] == "retry_after");
    eventually(10, "the customer to receive the reply", || async {
        (received_from(app, &carol, &bot)
            .iter()
            .filter(|t| *t == "after the wait")
            .count()
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(
        send_message_calls(app, &bot),
        2,
        "one refused and one accepted sendMessage"
    );

    // The user blocked the bot: the reply ends failed with the reason, and is not retried.
    app.sim.rpc_error(
        Some(bot.id),
        "bot.sendMessage",
        403,
        "Forbidden: bot was blocked by the user",
        1,
    );
    let m = reply(&admin, chat_id, "are you there?").await["id"]
        .as_i64()
        .unwrap();
    let failed = wait_message_status(&admin, chat_id, m, "failed", 20).await;
    assert_eq!(failed["error"], "bot_blocked");
    assert!(i18n::has("bot_blocked"));
    assert!(!received_from(app, &carol, &bot).contains(&"are you there?".to_string()));
}

fn send_message_calls(app: &TestApp, bot: &tgsim::UserInfo) -> i64 {
    let counters = serde_json::to_value(app.sim.counters()).unwrap();
    counters["bot_api_calls"][bot.id.0.to_string()]["sendMessage"]
        .as_i64()
        .unwrap_or(0)
}

/// The Bot API carries out `sendMessage` and the answer is lost on the way: the reply may have
/// been posted and the Bot API has no guard against a repeat, so it is not resent; it ends
/// `send_uncertain` for the operator, who checks and marks it sent (or sends it again).
async fn a_reply_whose_answer_was_lost_is_uncertain_until_the_operator_decides(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let bot = sim_bot(app, "lossy_bot");
    let id = add_bot(&admin, bot.token.as_deref().unwrap()).await["id"]
        .as_i64()
        .unwrap();
    wait_bot_status(&admin, id, "connected").await;
    let dan = customer(app, "+15550204", "Dan").await;
    writes(app, &dan, &bot, "hi");
    let chat_id = chat_titled(&admin, "Dan").await["id"].as_i64().unwrap();

    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(bot.id),
        method: Some("bot.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    let m = reply(&admin, chat_id, "your order shipped").await["id"]
        .as_i64()
        .unwrap();
    let uncertain = wait_message_status(&admin, chat_id, m, "failed", 30).await;
    assert_eq!(uncertain["error"], "send_uncertain");
    assert!(i18n::has("send_uncertain"));
    // Never resent by itself: the customer has it once, and no second sendMessage follows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(send_message_calls(app, &bot), 1);
    assert_eq!(
        received_from(app, &dan, &bot),
        vec!["your order shipped".to_string()]
    );

    // The operator sees it arrived and marks it sent; only an uncertain reply can be.
    let r = admin
        .post(&format!("/api/v1/messages/{m}/mark_sent"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let marked: Value = r.json().await.unwrap();
    assert_eq!(marked["message"]["status"], "sent");
    assert!(marked["message"]["error"].is_null());
    assert_eq!(
        wait_message_status(&admin, chat_id, m, "sent", 5).await["id"],
        m
    );
    let r = admin
        .post(&format!("/api/v1/messages/{m}/mark_sent"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "not_uncertain");
    assert_eq!(send_message_calls(app, &bot), 1);
}

/// A bot reply left `sending` (its process hung, or its outcome could not be written) is
/// returned by the sweep past `inbox.outbox_stuck_after_secs` as `send_uncertain`, and an
/// operator's open page hears of it at once (`message_status`), not at its next reload.
async fn the_sweep_announces_a_reply_it_returns(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let op = app.login("operator", PASSWORD).await;
    let mut ws = open_ws_ready(app, &op).await;
    let bot = sim_bot(app, "stuck_bot");
    let id = add_bot(&admin, bot.token.as_deref().unwrap()).await["id"]
        .as_i64()
        .unwrap();
    wait_bot_status(&admin, id, "connected").await;
    let erin = customer(app, "+15550205", "Erin").await;
    writes(app, &erin, &bot, "hi");
    // The operator is online: the chat is theirs, so their socket hears of its messages.
    let chat_id = chat_titled(&op, "Erin").await["id"].as_i64().unwrap();
    let m = reply(&op, chat_id, "on its way").await["id"]
        .as_i64()
        .unwrap();
    wait_message_status(&op, chat_id, m, "sent", 30).await;

    // The reply is left `sending`, as by a send whose outcome was never written.
    let db = app.stores().unwrap();
    assert_eq!(
        db.execute(&format!(
            "UPDATE outbox SET state = 'sending' WHERE message_id = {m}"
        ))
        .await,
        1
    );
    db.execute(&format!(
        "UPDATE messages SET status = 'sending' WHERE id = {m}"
    ))
    .await;

    let frame = wait_frame(&mut ws, "message_status", 15, |f| {
        f["data"]["message"]["id"].as_i64() == Some(m) && f["data"]["message"]["status"] == "failed"
    })
    .await;
    assert_eq!(frame["data"]["message"]["error"], "send_uncertain");
    let now = wait_message_status(&op, chat_id, m, "failed", 5).await;
    assert_eq!(now["error"], "send_uncertain");
    assert_eq!(send_message_calls(app, &bot), 1, "never resent by itself");
}

#[test]
fn every_bot_error_code_is_in_the_catalogue() {
    for code in [
        "bot_token_invalid",
        "bot_token_rejected",
        "bot_exists",
        "bot_api_failed",
        "bot_blocked",
        "bot_forbidden",
        "chat_not_found",
        "retry_after",
        "bot_unauthorized",
        "bot_deleted",
        "not_a_bot_chat",
        "bot_api_unavailable",
        "bot_api_rejected",
        "bot_api_unreachable",
        "bot_api_unexpected",
        "bot_api_conflict",
        "vault_error",
        "malformed_update",
    ] {
        assert!(i18n::has(code), "{code} has no message");
    }
}
