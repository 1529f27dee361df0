//! The operator inbox in a real headless Chromium against the real server and tgsim, on both
//! backends: an operator signs in, customers write to a connected personal account, their
//! chats appear live in the list (with unread badges), the operator opens each, sees the
//! messages (formatting rendered, markup from Telegram shown as text), answers with Enter, sees
//! the delivery state turn `sent`, and the customers receive the answers in tgsim.
//! A third customer writes to a bot, and that chat is answered the same way, through the Bot
//! API. The English guide's pictures of the inbox, a conversation and an uncertain reply are
//! taken here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::app_tests;
use switchboard_tests::browser::Chrome;
use switchboard_tests::live::{chat_messages, connect_personal_account, connected_bot, eventually};
use tgsim::{Entity, NewUser, OutgoingMessage, Peer, UserId};

app_tests!(
    operator_answers_live_chats_in_the_browser,
    operator_decides_an_uncertain_reply_in_the_browser,
);

fn sim_user(app: &TestApp, phone: &str, name: &str) -> UserId {
    app.sim
        .create_user(NewUser {
            phone: phone.into(),
            first_name: name.into(),
            ..Default::default()
        })
        .unwrap()
        .id
}

/// Waits until `user` has received a message with exactly `text` in tgsim.
async fn received(app: &TestApp, user: UserId, text: &str) {
    eventually(30, &format!("{text:?} to reach the customer"), || async {
        let got = app.sim.received_messages(user).ok()?;
        got.iter().any(|m| m.text == text).then_some(())
    })
    .await;
}

/// Opens the chat titled `title` in the list, answers `answer` with the Enter key, and waits
/// for the UI to show it sent.
async fn answer(c: &Chrome, title: &str, answer: &str) {
    c.open_chat(title).await;
    // Typed, then sent with the Enter key (WebDriver's U+E007).
    c.fill("#composer-text", &format!("{answer}\u{e007}")).await;
    c.wait_text(".msg.out[data-status=sent]", answer).await;
    // Telegram's echo of the reply, when ingestion stored it first, is dropped with the send's
    // record, in the store and on the page: the reply shows once, as sent.
    let shown: Vec<String> = c
        .texts("#messages .msg.out .msg-text")
        .await
        .into_iter()
        .filter(|t| t == answer)
        .collect();
    assert_eq!(shown.len(), 1, "the reply shows once: {shown:?}");
    assert!(
        c.texts("#messages .msg-status")
            .await
            .iter()
            .all(|s| !s.starts_with("inbox_")),
        "every delivery state has a label"
    );
    assert_eq!(
        c.eval(
            "return document.getElementById('composer-text').value;",
            vec![]
        )
        .await,
        "",
        "the composer is cleared after sending"
    );
}

async fn operator_answers_live_chats_in_the_browser(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let owner = "+15553000";
    let admin = app.login("admin", PASSWORD).await;
    // Connected by importing a session (live::connect_personal_account). TODO(inbox): connect
    // by phone code instead once replies from code-connected accounts leave the outbox (they
    // stay `queued`, and the first customer's chat is titled with their id).
    let (owner_user, _) = connect_personal_account(app, &admin, owner, "Demo Support").await;
    let owner_id = owner_user.id;
    let anna = sim_user(app, "+15553001", "Анна");
    let boris = sim_user(app, "+15553002", "Boris");

    // The operator opens the inbox: nothing yet, and they are online.
    c.sign_in("operator", PASSWORD).await;
    c.open("/inbox").await;
    c.wait_text("#chat-list-empty", "No chats").await;

    // Customers write; both chats appear without a reload, with unread badges.
    app.sim
        .send_message(
            anna,
            Peer::User(owner_id),
            OutgoingMessage {
                text: "Hello, is the order <b>ready</b>?".into(),
                entities: vec![Entity {
                    kind: "bold".into(),
                    offset: 0,
                    length: 5,
                    url: None,
                    language: None,
                    user_id: None,
                }],
                ..Default::default()
            },
        )
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Анна").await;
    app.sim
        .send_message(
            boris,
            Peer::User(owner_id),
            OutgoingMessage::text("Need an invoice"),
        )
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Boris").await;
    c.wait("#chat-list li:nth-child(2) .unread").await;
    assert_eq!(c.texts("#chat-list .unread").await, ["1", "1"]);
    // Newest activity first.
    let titles = c.texts("#chat-list .chat-title").await;
    assert_eq!(titles, ["Boris", "Анна"]);
    c.guide_shot("en", "inbox").await;

    answer(&c, "Boris", "Sending it now").await;
    received(app, boris, "Sending it now").await;

    // Anna's chat: the bold entity is rendered, the markup she typed is plain text.
    answer(&c, "Анна", "Yes, it ships today").await;
    assert_eq!(c.text(".msg.in .msg-text strong").await, "Hello");
    c.wait_text(".msg.in .msg-text", "<b>ready</b>").await;
    let injected = c
        .eval(
            "return document.querySelectorAll('#messages .msg-text b').length;",
            vec![],
        )
        .await;
    assert_eq!(injected, 0, "text from Telegram never becomes markup");
    received(app, anna, "Yes, it ships today").await;

    // Opening a chat marked it read: no badge in the list, and none in the API.
    c.wait_gone("#chat-list .unread").await;
    let op = app.login("operator", PASSWORD).await;
    let chats: Value = op.get("/api/v1/chats").await.json().await.unwrap();
    let chats = chats["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 2, "{chats:?}");
    assert!(chats.iter().all(|ch| ch["unread_count"] == 0), "{chats:?}");

    // A new message in the open chat arrives live.
    app.sim
        .send_message(anna, Peer::User(owner_id), OutgoingMessage::text("Thanks!"))
        .unwrap();
    c.wait_text(".msg.in .msg-text", "Thanks!").await;
    // Telegram's echoes of the replies do not name the customers: the chats keep their names.
    let mut titles = c.texts("#chat-list .chat-title").await;
    titles.sort();
    assert_eq!(
        titles,
        ["Boris", "Анна"],
        "answered chats keep their titles"
    );
    c.guide_shot("en", "conversation").await;

    // A customer writes to a bot: the chat appears among the others and is answered the same
    // way; the answer goes out through the Bot API.
    let bot = connected_bot(app, &admin, "shop_help_bot", "Shop help").await;
    let carol = sim_user(app, "+15553003", "Carol");
    app.sim
        .send_message(
            carol,
            Peer::User(bot.id),
            OutgoingMessage::text("Where is my parcel?"),
        )
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Carol").await;
    answer(&c, "Carol", "It leaves the warehouse today").await;
    eventually(30, "the bot's answer to reach the customer", || async {
        let got = app.sim.received_messages(carol).ok()?;
        got.iter()
            .any(|m| m.text == "It leaves the warehouse today" && m.from == Some(bot.id))
            .then_some(())
    })
    .await;
    c.quit().await;
}

/// `sendMessage` calls tgsim's Bot API counted for `bot`.
fn send_message_calls(app: &TestApp, bot: &tgsim::UserInfo) -> u64 {
    app.sim
        .counters()
        .bot_api_calls
        .get(&bot.id.0.to_string())
        .and_then(|c| c.get("sendMessage").copied())
        .unwrap_or(0)
}

/// How many messages with exactly `text` `user` has received from `from` in tgsim.
fn received_count(app: &TestApp, user: UserId, from: UserId, text: &str) -> usize {
    app.sim
        .received_messages(user)
        .unwrap()
        .iter()
        .filter(|m| m.from == Some(from) && m.text == text)
        .count()
}

/// The reply with exactly `text` in `chat`, as the API shows it to `b`.
async fn api_reply(b: &Browser, chat: i64, text: &str) -> Value {
    chat_messages(b, chat)
        .await
        .into_iter()
        .find(|m| m["direction"] == "out" && m["text"] == text)
        .unwrap_or_else(|| panic!("no reply {text:?} in chat {chat}"))
}

/// Answers `text` in the open chat while tgsim loses the Bot API's answer, waits until the page
/// shows it "may have been sent" with both choices, and returns its id.
async fn uncertain_answer(app: &TestApp, c: &Chrome, bot: &tgsim::UserInfo, text: &str) -> i64 {
    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(bot.id),
        method: Some("bot.sendMessage".into()),
        kind: tgsim::FaultKind::LoseAnswer,
        count: 1,
    });
    c.fill("#composer-text", &format!("{text}\u{e007}")).await;
    c.wait_text(".msg.out[data-status=failed] .msg-text", text)
        .await;
    let id = c
        .eval(
            "return [...document.querySelectorAll('.msg.out')].find(e => \
             e.querySelector('.msg-text').innerText === arguments[0]).dataset.id;",
            vec![Value::from(text)],
        )
        .await;
    let id: i64 = id.as_str().unwrap().parse().unwrap();
    let msg = format!("#msg-{id}");
    c.wait_text(
        &format!("{msg} .msg-status[data-status=uncertain]"),
        "may have been sent",
    )
    .await;
    assert_eq!(c.text(&format!("{msg} button.retry")).await, "Send again");
    assert_eq!(
        c.text(&format!("{msg} button.mark-sent")).await,
        "Mark as sent"
    );
    id
}

/// A bot reply whose answer Telegram lost shows "may have been sent" with two choices. The
/// operator marks one sent (the page and the API say `sent`, nothing is resent) and sends
/// another again (it goes out exactly once more and ends `sent`).
async fn operator_decides_an_uncertain_reply_in_the_browser(app: &TestApp) {
    let Some(c) = Chrome::for_app(app).await else {
        return;
    };
    let admin = app.login("admin", PASSWORD).await;
    let bot = connected_bot(app, &admin, "uncertain_help_bot", "Shop help").await;
    c.sign_in("operator", PASSWORD).await;
    c.open("/inbox").await;
    c.wait_text("#chat-list-empty", "No chats").await;
    let dora = sim_user(app, "+15553004", "Dora");
    app.sim
        .send_message(dora, Peer::User(bot.id), OutgoingMessage::text("Any news?"))
        .unwrap();
    c.wait_text("#chat-list .chat-row", "Dora").await;
    c.open_chat("Dora").await;
    let op = app.login("operator", PASSWORD).await;
    let chats: Value = op.get("/api/v1/chats").await.json().await.unwrap();
    let chat = chats["chats"][0]["id"].as_i64().unwrap();

    // Marked sent: the page and the API agree, and nothing more goes to Telegram.
    let first = "It shipped this morning";
    let id = uncertain_answer(app, &c, &bot, first).await;
    c.guide_shot("en", "reply-uncertain").await;
    assert_eq!(api_reply(&op, chat, first).await["error"], "send_uncertain");
    assert_eq!(send_message_calls(app, &bot), 1);
    c.click(&format!("#msg-{id} button.mark-sent")).await;
    c.wait(&format!("#msg-{id}[data-status=sent]")).await;
    c.wait_text(&format!("#msg-{id} .msg-status"), "sent").await;
    c.wait_gone(&format!("#msg-{id} button")).await;
    let marked = api_reply(&op, chat, first).await;
    assert_eq!(marked["status"], "sent", "{marked}");
    assert!(marked["error"].is_null(), "{marked}");

    // Sent again: exactly one more sendMessage, and it ends sent.
    let second = "Tracking number follows";
    let id = uncertain_answer(app, &c, &bot, second).await;
    assert_eq!(send_message_calls(app, &bot), 2);
    c.click(&format!("#msg-{id} button.retry")).await;
    c.wait(&format!("#msg-{id}[data-status=sent]")).await;
    eventually(10, "the resent reply to be sent", || async {
        (api_reply(&op, chat, second).await["status"] == "sent").then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(send_message_calls(app, &bot), 3, "resent exactly once");
    assert_eq!(
        received_count(app, dora, bot.id, second),
        2,
        "the lost answer's message and the one sent again"
    );
    assert_eq!(received_count(app, dora, bot.id, first), 1);
    c.quit().await;
}
