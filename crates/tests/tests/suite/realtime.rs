//! `/ws` through the real server: authentication, origin check, ping, permission-filtered fan-out
//! and replay after reconnect, on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_domain::{AccountId, AccountStatus, BotId, ChatId, Role, Timestamp, UserId};
use switchboard_services::{Audience, ChatUpdate, ServerEvent};
use switchboard_tests::app::{Browser, PASSWORD, TestApp};
use switchboard_tests::app_tests;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

app_tests!(
    handshake_needs_a_session_and_our_origin,
    events_reach_only_permitted_members,
    reconnect_with_last_event_id_replays_missed_events,
);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    app: &TestApp,
    b: Option<&Browser>,
    query: &str,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let url = format!("{}/ws{}", app.url.replace("http://", "ws://"), query);
    let mut req = url.into_client_request().unwrap();
    if let Some(b) = b {
        req.headers_mut()
            .insert("cookie", b.cookie.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no frame within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            // The first page of chats and presence changes are covered by the inbox suite.
            if v["type"] == "initial_chats" || v["type"] == "presence" {
                continue;
            }
            return v;
        }
    }
}

async fn nothing_within(ws: &mut Ws, ms: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    while let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if !t.contains("\"presence\"") {
            panic!("unexpected frame {t}");
        }
    }
}

async fn handshake_needs_a_session_and_our_origin(app: &TestApp) {
    match connect(app, None, "", None).await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let b = app.login("operator", PASSWORD).await;
    match connect(app, Some(&b), "", Some("https://evil.example")).await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let origin = app.url.clone();
    let mut ws = connect(app, Some(&b), "", Some(&origin)).await.unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["role"], "operator");
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "invalid_json");
    ws.send(Message::Text(
        json!({"type": "launch_missiles"}).to_string().into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "unknown_command");
    // After sign-out the old cookie cannot open a socket.
    assert_eq!(
        b.post("/api/v1/auth/logout", &json!({})).await.status(),
        204
    );
    assert!(connect(app, Some(&b), "", None).await.is_err());
}

async fn events_reach_only_permitted_members(app: &TestApp) {
    let other = app
        .store
        .create_workspace("Other", Timestamp::now())
        .await
        .unwrap()
        .id;
    app.add_user(other, "outsider", Role::Owner).await;
    let admin = app.login("admin", PASSWORD).await;
    let op = app.login("operator", PASSWORD).await;
    let outsider = app.login("outsider", PASSWORD).await;
    let mut ws_admin = connect(app, Some(&admin), "", None).await.unwrap();
    let mut ws_op = connect(app, Some(&op), "", None).await.unwrap();
    let mut ws_out = connect(app, Some(&outsider), "", None).await.unwrap();
    for ws in [&mut ws_admin, &mut ws_op, &mut ws_out] {
        assert_eq!(next_json(ws).await["type"], "hello");
    }
    let op_id = UserId(op.me["id"].as_i64().unwrap());
    let events = &app.running.events;
    events.publish(
        app.workspace,
        Audience::Admins,
        ServerEvent::AccountStatus {
            account_id: AccountId(1),
            status: AccountStatus::Connected,
            detail: None,
            flood_wait_until: None,
        },
    );
    events.publish(
        app.workspace,
        Audience::Chat {
            chat_id: ChatId(9),
            assignee: Some(UserId(999)),
        },
        chat_event(9, Some(UserId(999))),
    );
    events.publish(
        app.workspace,
        Audience::Chat {
            chat_id: ChatId(10),
            assignee: Some(op_id),
        },
        chat_event(10, Some(op_id)),
    );
    events.publish(other, Audience::Workspace, chat_event(77, None));

    let a1 = next_json(&mut ws_admin).await;
    assert_eq!(
        (a1["type"].as_str(), a1["data"]["status"].as_str()),
        (Some("account_status"), Some("connected"))
    );
    assert_eq!(
        next_json(&mut ws_admin).await["data"]["chat_id"],
        9,
        "admins see every chat"
    );
    assert_eq!(next_json(&mut ws_admin).await["data"]["chat_id"], 10);
    nothing_within(&mut ws_admin, 300).await;

    let o1 = next_json(&mut ws_op).await;
    assert_eq!(
        o1["data"]["chat_id"], 10,
        "the operator sees only their chat, not admin events"
    );
    nothing_within(&mut ws_op, 300).await;

    let x1 = next_json(&mut ws_out).await;
    assert_eq!(
        x1["data"]["chat_id"], 77,
        "the other workspace sees only its own"
    );
    nothing_within(&mut ws_out, 300).await;
}

async fn reconnect_with_last_event_id_replays_missed_events(app: &TestApp) {
    let admin = app.login("admin", PASSWORD).await;
    let mut ws = connect(app, Some(&admin), "", None).await.unwrap();
    next_json(&mut ws).await;
    let events = &app.running.events;
    events.publish(app.workspace, Audience::Workspace, numbered(1));
    let first = next_json(&mut ws).await;
    let last_seen = first["id"].as_u64().unwrap();
    drop(ws);
    events.publish(app.workspace, Audience::Workspace, numbered(2));
    events.publish(app.workspace, Audience::Workspace, numbered(3));
    let mut ws = connect(
        app,
        Some(&admin),
        &format!("?last_event_id={last_seen}"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    assert_eq!(next_json(&mut ws).await["data"]["bot_id"], 2);
    assert_eq!(next_json(&mut ws).await["data"]["bot_id"], 3);
    events.publish(app.workspace, Audience::Workspace, numbered(4));
    assert_eq!(
        next_json(&mut ws).await["data"]["bot_id"],
        4,
        "live events continue after the replay, once each"
    );
    nothing_within(&mut ws, 300).await;
}

/// `chat_updated` with only a chat id and assignee.
fn chat_event(chat: i64, assignee: Option<UserId>) -> ServerEvent<'static> {
    ServerEvent::ChatUpdated(ChatUpdate {
        chat_id: ChatId(chat),
        assignee_id: assignee,
        chat: None,
        removed: false,
    })
}

/// `bot_status` of a made-up bot, numbered.
fn numbered(n: i64) -> ServerEvent<'static> {
    ServerEvent::BotStatus {
        bot_id: BotId(n),
        status: "connected",
        detail: None,
    }
}
