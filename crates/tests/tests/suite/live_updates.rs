//! Live updates across what breaks a WebSocket: a server restart (a client that reconnects
//! with an event id of the old process is told to reload, then receives what happens next),
//! a replay after the chat was reassigned away (the viewer's visibility is that of now), and a
//! socket left open past the session's idle timeout (it does not keep the session alive).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_domain::UserId;
use switchboard_services::{Audience, ServerEvent};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::live::{
    Ws, chat_titled, connect_personal_account, customer, eventually, frames_within, next_frame,
    open_ws, wait_frame, writes,
};
use switchboard_tests::{app_tests, restarting_app_tests};
use tokio_tungstenite::tungstenite::Message;

restarting_app_tests!(a_client_connected_before_a_restart_receives_messages_after_it);

app_tests!(
    a_replay_leaves_out_chats_reassigned_away_since,
    an_open_socket_does_not_keep_the_session_alive with short_idle_sessions,
);

/// The idle timeout is the limit under test.
fn short_idle_sessions(c: &mut switchboard::Config) {
    c.auth.session_idle_secs = 4;
}

/// Assigns the chat to `user` as the admin `b`.
async fn assign(b: &Browser, chat: i64, user: i64) {
    let r = b
        .post(
            &format!("/api/v1/chats/{chat}/assign"),
            &json!({"user_id": user}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// Reconnects after `last` and collects what arrives within a second.
async fn replay(app: &TestApp, b: &Browser, last: u64) -> Vec<Value> {
    let mut ws = open_ws(app, b, Some(last)).await.unwrap();
    frames_within(&mut ws, 1_000).await
}

/// Waits until the chat has a message `text`.
async fn stored(b: &Browser, chat: i64, text: &str) {
    eventually(20, "the message to be stored", || async {
        let msgs: Value = b
            .get(&format!("/api/v1/chats/{chat}/messages"))
            .await
            .json()
            .await
            .ok()?;
        msgs["messages"]
            .as_array()?
            .iter()
            .any(|m| m["text"] == text)
            .then_some(())
    })
    .await;
}

/// Waits for the server to close the socket as it stops (code 1012, "service restart"), so
/// the page reconnects instead of waiting on a socket nobody serves.
async fn closed_for_restart(ws: &mut Ws) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(u16::from(frame.code), 1012);
                return;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the socket was not closed for the restart: {other:?}"),
        }
    }
}

/// The id of the newest event among `frames`, as the inbox page tracks it.
fn newest_id(frames: &[Value], before: u64) -> u64 {
    frames
        .iter()
        .filter_map(|f| f["id"].as_u64())
        .fold(before, u64::max)
}

/// Reads frames until a `new_message` with `text` arrives; returns the newest event id seen.
async fn until_message(ws: &mut Ws, text: &str, mut last: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new_message {text:?} within 30 s"
        );
        let Some(f) = next_frame(ws, 1_000).await else {
            continue;
        };
        if let Some(id) = f["id"].as_u64() {
            last = last.max(id);
        }
        if f["type"] == "new_message" && f["data"]["message"]["text"] == text {
            return last;
        }
    }
}

async fn a_client_connected_before_a_restart_receives_messages_after_it(app: TestApp) -> TestApp {
    let admin = app.login("admin", PASSWORD).await;
    let (owner, _) = connect_personal_account(&app, &admin, "+15557100", "Owner").await;
    let ivy = customer(&app, "+15557101", "Ivy").await;
    let mut ws = open_ws(&app, &admin, None).await.unwrap();
    let hello = wait_frame(&mut ws, "hello", 5, |_| true).await;
    let mut last = hello["last_event_id"].as_u64().unwrap();
    // A busy morning: the page has seen many events before the restart (more than the new
    // process will have published when the next message arrives).
    for i in 0..500 {
        app.running.events.publish(
            app.workspace,
            Audience::Workspace,
            ServerEvent::Presence {
                user_id: UserId(i),
                online: false,
            },
        );
    }
    writes(&app, &ivy, &owner, "before the restart");
    last = until_message(&mut ws, "before the restart", last).await;
    last = newest_id(&frames_within(&mut ws, 300).await, last);
    assert!(last >= 500, "the page has seen the burst");

    let app = app.restart().await;
    closed_for_restart(&mut ws).await;
    // The page reconnects with the last id it processed, on the same session.
    let mut ws = open_ws(&app, &admin, Some(last)).await.unwrap();
    wait_frame(&mut ws, "hello", 5, |_| true).await;
    let resync = wait_frame(&mut ws, "resync_required", 5, |_| true).await;
    let now = resync["last_event_id"].as_u64().unwrap();
    assert!(
        app.running.events.is_ours(now),
        "the page continues from the new process's ids"
    );
    assert!(
        !app.running.events.is_ours(last),
        "{last} is of the old process"
    );

    writes(&app, &ivy, &owner, "after the restart");
    let last = until_message(&mut ws, "after the restart", now).await;
    // And once more from the id the page now holds: a plain replay, no reload.
    drop(ws);
    let admin = app.login("admin", PASSWORD).await;
    writes(&app, &ivy, &owner, "while reconnecting");
    let chat = chat_titled(&admin, "Ivy").await["id"].as_i64().unwrap();
    stored(&admin, chat, "while reconnecting").await;
    let mut ws = open_ws(&app, &admin, Some(last)).await.unwrap();
    let frames = frames_within(&mut ws, 1_000).await;
    assert!(
        frames.iter().all(|f| f["type"] != "resync_required"),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "new_message"
                && f["data"]["message"]["text"] == "while reconnecting"),
        "the missed message is replayed: {frames:?}"
    );
    app
}

async fn a_replay_leaves_out_chats_reassigned_away_since(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let op = app.login("operator", PASSWORD).await;
    let op_id = op.me["id"].as_i64().unwrap();
    let admin_id = admin.me["id"].as_i64().unwrap();
    let (owner, _) = connect_personal_account(app, &admin, "+15557200", "Owner").await;
    let jay = customer(app, "+15557201", "Jay").await;
    writes(app, &jay, &owner, "hello");
    let chat = chat_titled(&admin, "Jay").await["id"].as_i64().unwrap();
    assign(&admin, chat, op_id).await;

    // The operator's page is connected, then loses its connection.
    let mut ws = open_ws(app, &op, None).await.unwrap();
    let last = wait_frame(&mut ws, "hello", 5, |_| true).await["last_event_id"]
        .as_u64()
        .unwrap();
    drop(ws);
    // Meanwhile Jay writes (an event for the operator's chat) and the chat is then given to
    // the admin.
    writes(app, &jay, &owner, "my order number is 1234");
    stored(&admin, chat, "my order number is 1234").await;
    assign(&admin, chat, admin_id).await;

    let frames = replay(app, &op, last).await;
    assert!(
        !frames.iter().any(|f| f["type"] == "new_message"),
        "a message of a chat that is no longer the operator's is not replayed: {frames:?}"
    );
    assert!(
        frames.iter().any(|f| f["type"] == "chat_updated"
            && f["data"]["removed"] == true
            && f["data"]["chat"]["id"] == chat),
        "the operator is told the chat was taken away: {frames:?}"
    );
    // The admin, who sees every chat, gets the replay in full.
    let frames = replay(app, &admin, last).await;
    assert!(
        frames.iter().any(|f| f["type"] == "new_message"
            && f["data"]["message"]["text"] == "my order number is 1234"),
        "{frames:?}"
    );
    // A replayed event of a chat the operator still has is kept.
    assign(&admin, chat, op_id).await;
    let frames = replay(app, &op, last).await;
    assert!(
        frames.iter().any(|f| f["type"] == "new_message"),
        "{frames:?}"
    );
}

async fn an_open_socket_does_not_keep_the_session_alive(app: &TestApp) {
    let op = app.login("operator", PASSWORD).await;
    let mut ws = open_ws(app, &op, None).await.unwrap();
    wait_frame(&mut ws, "hello", 5, |_| true).await;
    // Nothing but the open socket for longer than the idle timeout (4 s): the session ends
    // and the socket is told so.
    let ended = wait_frame(&mut ws, "session_ended", 10, |_| true).await;
    assert_eq!(ended["type"], "session_ended");
    assert_eq!(
        op.get("/api/v1/me").await.status(),
        401,
        "the session expired although a socket was open"
    );
}
