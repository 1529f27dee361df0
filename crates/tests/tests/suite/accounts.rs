//! Personal accounts end to end, through the real server and tgsim over MTProto, on both
//! backends: sign-in by code with 2FA and by QR (with and without 2FA), exactly one live client
//! per account, ingestion, catching up after being stopped and after a whole-server restart,
//! import (valid, revoked, malformed), export, and isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use switchboard_domain::{Role, Timestamp};
use switchboard_tests::accounts::{
    account, import_session, messages_of, registered_user, telethon_string, wait_for, wait_status,
};
use switchboard_tests::app::{Browser, PASSWORD, TestApp, error_code};
use switchboard_tests::app_tests;

app_tests!(
    code_login_with_2fa_connects_one_client_and_ingests,
    qr_login_through_the_api_with_and_without_2fa,
    messages_sent_while_stopped_arrive_exactly_once,
    health_follows_the_connection_through_an_outage,
    group_chats_are_ingested_only_when_enabled,
    import_validates_before_going_live,
    an_import_whose_client_disconnects_completes_or_leaves_nothing,
    an_imported_session_misses_nothing_sent_while_it_goes_live,
    accounts_are_admin_only_and_isolated,
);

/// Signs `phone` in through the API (code, then 2FA if `password`), returns the account id.
async fn connect_by_code(app: &TestApp, b: &Browser, phone: &str, password: Option<&str>) -> i64 {
    let r = b
        .post("/api/v1/accounts/login/phone", &json!({"phone": phone}))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["status"], "code_sent");
    let flow = started["flow_id"].as_str().unwrap().to_string();
    let code = app
        .sim
        .last_login_code(phone)
        .expect("tgsim delivered a code");
    let r = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut step: Value = r.json().await.unwrap();
    if let Some(pw) = password {
        assert_eq!(step["status"], "password_needed");
        let r = b
            .post(
                &format!("/api/v1/accounts/login/{flow}/password"),
                &json!({"password": pw}),
            )
            .await;
        assert_eq!(r.status(), 200);
        step = r.json().await.unwrap();
    }
    assert_eq!(step["status"], "done", "{step}");
    step["account"]["id"].as_i64().unwrap()
}

/// A tgsim user without a password.
fn tg_user(app: &TestApp, phone: &str, first_name: &str) -> tgsim::UserInfo {
    app.sim
        .create_user(tgsim::NewUser {
            phone: phone.into(),
            first_name: first_name.into(),
            ..Default::default()
        })
        .unwrap()
}

/// Waits until the account has `1 + count` messages (one sent before, then `prefix 0..count`),
/// then checks that none is stored twice and none is missing.
async fn assert_each_arrived_once(b: &Browser, id: i64, prefix: &str, count: usize) {
    wait_for(&format!("the {count} messages {prefix:?}"), || async {
        (messages_of(b, id).await.len() > count).then_some(Value::Null)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts = texts_of(b, id).await;
    assert_eq!(texts.len(), count + 1, "nothing doubled");
    let mut unique = texts.clone();
    unique.dedup();
    assert_eq!(unique.len(), count + 1, "each message once");
    for i in 0..count {
        assert!(
            texts.contains(&format!("{prefix} {i}")),
            "{prefix} {i} is missing"
        );
    }
}

fn open_connections(app: &TestApp, user: tgsim::UserId) -> u64 {
    app.sim
        .counters()
        .accounts
        .get(&user.0.to_string())
        .map(|c| c.open_connections)
        .unwrap_or(0)
}

async fn code_login_with_2fa_connects_one_client_and_ingests(app: &TestApp) {
    let owner = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551000".into(),
            first_name: "Ольга".into(),
            password: Some("s3cret-2fa".into()),
            password_hint: Some("usual".into()),
            ..Default::default()
        })
        .unwrap();
    let customer = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551001".into(),
            first_name: "Customer".into(),
            ..Default::default()
        })
        .unwrap();
    let b = app.login("admin", PASSWORD).await;

    // Wrong code, then wrong password, then right: every failure has its code.
    let started: Value = b
        .post(
            "/api/v1/accounts/login/phone",
            &json!({"phone": "+1 555 1000"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let flow = started["flow_id"].as_str().unwrap().to_string();
    let wrong = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": "00000"}),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(error_code(wrong).await, "phone_code_invalid");
    let code = app.sim.last_login_code("+15551000").unwrap();
    let step: Value = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(step["status"], "password_needed");
    assert_eq!(step["hint"], "usual");
    let bad = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "nope"}),
        )
        .await;
    assert_eq!(error_code(bad).await, "password_invalid");
    let done: Value = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "s3cret-2fa"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "done", "{done}");
    let id = done["account"]["id"].as_i64().unwrap();
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["first_name"], "Ольга");
    assert_eq!(a["telegram_user_id"], owner.id.0);
    // The finished flow is gone.
    let again = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(error_code(again).await, "login_flow_not_found");

    // Exactly one live client, however often it is started.
    let start_path = format!("/api/v1/accounts/{id}/start");
    let starts = (0..5).map(|_| b.send(Method::POST, &start_path, None, true));
    for r in futures_util::future::join_all(starts).await {
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        open_connections(app, owner.id),
        1,
        "one connection for one account"
    );

    // A customer writes; the message is stored and visible.
    app.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("Здравствуйте! Есть вопрос"),
        )
        .unwrap();
    let msgs = wait_for("the inbound message", || async {
        let m = messages_of(&b, id).await;
        (!m.is_empty()).then_some(Value::Array(m))
    })
    .await;
    assert_eq!(msgs[0]["text"], "Здравствуйте! Есть вопрос");
    assert_eq!(msgs[0]["direction"], "in");
    let chats: Value = b
        .get(&format!("/api/v1/accounts/{id}/chats"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(chats["chats"][0]["title"], "Customer");
    assert_eq!(chats["chats"][0]["unread_count"], 1);

    // Still exactly one connection after ingesting (sealed-key storage is checked in crates/telegram/tests/store.rs).
    assert_eq!(open_connections(app, owner.id), 1);
    let status: Value = b.get("/api/v1/system/status").await.json().await.unwrap();
    let mine = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(mine["status"], "connected", "{status}");
    assert_eq!(mine["running"], true);
    assert!(mine["worker"]["ingested"].as_u64().unwrap() >= 1);

    // restart_clients: the client is replaced, never doubled.
    let r = b
        .post(
            "/api/v1/system/control",
            &json!({"action": "restart_clients"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    wait_status(&b, id, "connected").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        open_connections(app, owner.id),
        1,
        "still one connection after a restart"
    );
    let bad = b
        .post(
            "/api/v1/system/control",
            &json!({"action": "self_destruct"}),
        )
        .await;
    assert_eq!(bad.status(), 422);
}

/// Starts a QR sign-in through the API and checks the token is the one tgsim shows the phone.
async fn start_qr(app: &TestApp, b: &Browser) -> String {
    let r = b.post("/api/v1/accounts/login/qr", &json!({})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["status"], "qr_pending", "{started}");
    let url = started["qr"]["url"].as_str().unwrap();
    let pending = app.sim.qr_logins();
    let latest = pending.last().expect("tgsim has the pending login");
    assert_eq!(url, format!("tg://login?token={}", latest.token));
    assert_eq!(started["qr"]["expires_at"], i64::from(latest.expires));
    assert!(started["svg"].as_str().unwrap().contains("<svg"));
    started["flow_id"].as_str().unwrap().to_string()
}

/// Polls a QR flow until it leaves `qr_pending`.
async fn poll_qr_until_scanned(b: &Browser, flow: &str) -> Value {
    wait_for("the QR approval", || async {
        let r = b.get(&format!("/api/v1/accounts/login/{flow}")).await;
        assert_eq!(r.status(), 200);
        let step: Value = r.json().await.unwrap();
        (step["status"] != "qr_pending").then_some(step)
    })
    .await
}

async fn qr_login_through_the_api_with_and_without_2fa(app: &TestApp) {
    let plain = tg_user(app, "+15551500", "Quinn");
    let guarded = app
        .sim
        .create_user(tgsim::NewUser {
            phone: "+15551501".into(),
            first_name: "Rita".into(),
            password: Some("qr-2fa-secret".into()),
            password_hint: Some("the usual".into()),
            ..Default::default()
        })
        .unwrap();
    let b = app.login("admin", PASSWORD).await;
    let operator = app.login("operator", PASSWORD).await;
    let r = operator.post("/api/v1/accounts/login/qr", &json!({})).await;
    assert_eq!(r.status(), 403, "QR sign-in is for admins");

    // Without 2FA: pending until the phone approves, then done and connected.
    let flow = start_qr(app, &b).await;
    let still: Value = b
        .get(&format!("/api/v1/accounts/login/{flow}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "qr_pending");
    // Operators cannot reach sign-in flows.
    let r = operator
        .get(&format!("/api/v1/accounts/login/{flow}"))
        .await;
    assert_eq!(r.status(), 403);
    app.sim.approve_latest_qr_login(plain.id).unwrap();
    let done = poll_qr_until_scanned(&b, &flow).await;
    assert_eq!(done["status"], "done", "{done}");
    let id = done["account"]["id"].as_i64().unwrap();
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["telegram_user_id"], plain.id.0);
    assert_eq!(a["first_name"], "Quinn");
    let r = b.get(&format!("/api/v1/accounts/login/{flow}")).await;
    assert_eq!(error_code(r).await, "login_flow_not_found");

    // With 2FA: the approval switches the flow to the password form.
    let flow = start_qr(app, &b).await;
    app.sim.approve_latest_qr_login(guarded.id).unwrap();
    let step = poll_qr_until_scanned(&b, &flow).await;
    assert_eq!(step["status"], "password_needed", "{step}");
    assert_eq!(step["hint"], "the usual");
    // A code does not fit a QR flow.
    let r = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/code"),
            &json!({"code": "12345"}),
        )
        .await;
    assert_eq!(error_code(r).await, "login_wrong_step");
    let r = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "wrong"}),
        )
        .await;
    assert_eq!(error_code(r).await, "password_invalid");
    let r = b
        .post(
            &format!("/api/v1/accounts/login/{flow}/password"),
            &json!({"password": "qr-2fa-secret"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["status"], "done", "{done}");
    let id2 = done["account"]["id"].as_i64().unwrap();
    assert_ne!(id, id2);
    let a = wait_status(&b, id2, "connected").await;
    assert_eq!(a["telegram_user_id"], guarded.id.0);

    // Each account has exactly one live client; the flows' clients are closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(open_connections(app, plain.id), 1);
    assert_eq!(open_connections(app, guarded.id), 1);
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(list["accounts"].as_array().unwrap().len(), 2);
    let audit = app.store.list_audit(app.workspace, None, 50).await.unwrap();
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains("qr-2fa-secret"),
        "the password is never audited"
    );
}

async fn messages_sent_while_stopped_arrive_exactly_once(app: &TestApp) {
    let owner = tg_user(app, "+15552000", "Owner");
    let customer = tg_user(app, "+15552001", "Client");
    let b = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &b, "+15552000", None).await;
    wait_status(&b, id, "connected").await;
    app.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("before"),
        )
        .unwrap();
    wait_for("the first message", || async {
        (messages_of(&b, id).await.len() == 1).then_some(Value::Null)
    })
    .await;

    let mut events = app.running.events.subscribe();
    let r = b
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/stop"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(account(&b, id).await["status"], "stopped");
    // Open pages learn of the stop without a reload: the stop itself announces it.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let event = events.recv().await.expect("the event bus is open");
            let frame: Value = serde_json::from_str(event.frame()).expect("a JSON frame");
            if frame["type"] == "account_status"
                && frame["data"]["account_id"] == id
                && frame["data"]["status"] == "stopped"
            {
                return;
            }
        }
    })
    .await
    .expect("an account_status event saying `stopped` after the stop");
    assert_eq!(
        open_connections(app, owner.id),
        0,
        "stopping closes the connection"
    );
    for i in 0..100 {
        app.sim
            .send_message(
                customer.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text(format!("missed {i}")),
            )
            .unwrap();
    }
    let r = b
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/start"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_each_arrived_once(&b, id, "missed", 100).await;
}

/// tgsim closes the account's connection while every method answers `FLOOD_WAIT_5` for 12 s:
/// the API shows the outage within seconds — before the first wait could have ended
/// (`reconnecting`, then `flood_wait` with its end), the
/// account returns to `connected` once Telegram answers again — at the product's default
/// recovery bound — and a message a customer sent during the outage is in the inbox once.
async fn health_follows_the_connection_through_an_outage(app: &TestApp) {
    let owner = tg_user(app, "+15552700", "Owner");
    let customer = tg_user(app, "+15552701", "Client");
    let write = |text: &str| {
        app.sim
            .send_message(
                customer.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text(text),
            )
            .unwrap();
    };
    let b = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &b, "+15552700", None).await;
    wait_status(&b, id, "connected").await;
    write("before");
    wait_for_text(&b, id, "before").await;

    app.sim.inject_fault(tgsim::FaultRule {
        user_id: Some(owner.id),
        method: None,
        kind: tgsim::FaultKind::FloodWait { seconds: 5 },
        count: u32::MAX,
    });
    let outage = std::time::Instant::now();
    assert!(app.sim.drop_connections(owner.id) > 0);
    let down = wait_for("the outage to show", || async {
        let a = account(&b, id).await;
        (a["status"] == "reconnecting" || a["status"] == "flood_wait").then_some(a)
    })
    .await;
    assert!(
        outage.elapsed() < Duration::from_secs(3),
        "shown after {:?}: {down}",
        outage.elapsed()
    );
    write("during the outage");
    let waiting = wait_status(&b, id, "flood_wait").await;
    let until = waiting["flood_wait_until"].as_i64().unwrap();
    assert!(
        until > Timestamp::now().0 - 1_000 && until <= Timestamp::now().0 + 5_500,
        "{waiting}"
    );
    assert!(
        outage.elapsed() < Duration::from_secs(12),
        "the wait must show while it stands"
    );

    tokio::time::sleep(Duration::from_secs(12).saturating_sub(outage.elapsed())).await;
    app.sim.clear_faults();
    let cleared = std::time::Instant::now();
    wait_status(&b, id, "connected").await;
    assert!(
        cleared.elapsed() < Duration::from_secs(20),
        "connected again {:?} after the faults ended",
        cleared.elapsed()
    );
    wait_for_text(&b, id, "during the outage").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(texts_of(&b, id).await, ["before", "during the outage"]);
    assert_eq!(open_connections(app, owner.id), 1, "one live connection");
}

/// The server is stopped as a whole (HTTP, supervisor, workers) while a customer writes 100
/// messages; a new server on the same database and data directory catches up from the stored
/// update state and stores each of them exactly once.
async fn messages_sent_while_the_server_is_down_arrive_exactly_once(app: TestApp) -> TestApp {
    let owner = tg_user(&app, "+15552500", "Owner");
    let customer = tg_user(&app, "+15552501", "Client");
    let b = app.login("admin", PASSWORD).await;
    let id = connect_by_code(&app, &b, "+15552500", None).await;
    wait_status(&b, id, "connected").await;
    app.sim
        .send_message(
            customer.id,
            tgsim::Peer::User(owner.id),
            tgsim::OutgoingMessage::text("before"),
        )
        .unwrap();
    wait_for("the first message", || async {
        (messages_of(&b, id).await.len() == 1).then_some(Value::Null)
    })
    .await;

    let sim = app.sim.clone();
    // Stop the server; the account's client goes with it. A customer writes while it is down.
    let app = app
        .restart_with(|| async {
            // tgsim notices the closed connection a moment after the client closed it.
            let open = || {
                sim.counters()
                    .accounts
                    .get(&owner.id.0.to_string())
                    .map(|c| c.open_connections)
                    .unwrap_or(0)
            };
            let start = std::time::Instant::now();
            while open() > 0 && start.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(open(), 0, "the stopped server left no connection open");
            for i in 0..100 {
                sim.send_message(
                    customer.id,
                    tgsim::Peer::User(owner.id),
                    tgsim::OutgoingMessage::text(format!("while down {i}")),
                )
                .unwrap();
            }
        })
        .await;
    let b = app.login("admin", PASSWORD).await;
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["running"], true, "active accounts start at boot");
    assert_each_arrived_once(&b, id, "while down", 100).await;
    assert_eq!(
        open_connections(&app, owner.id),
        1,
        "one client after the restart"
    );
    app
}

switchboard_tests::restarting_app_tests!(
    messages_sent_while_the_server_is_down_arrive_exactly_once
);

async fn texts_of(b: &Browser, account_id: i64) -> Vec<String> {
    let mut t: Vec<String> = messages_of(b, account_id)
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    t.sort();
    t
}

async fn wait_for_text(b: &Browser, account_id: i64, text: &str) {
    wait_for(&format!("message {text:?}"), || async {
        texts_of(b, account_id)
            .await
            .iter()
            .any(|t| t == text)
            .then_some(Value::Null)
    })
    .await;
}

async fn set_ingest_groups(b: &Browser, id: i64, on: bool) -> Value {
    let r = b
        .send(
            Method::PATCH,
            &format!("/api/v1/accounts/{id}"),
            Some(&json!({"ingest_groups": on})),
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["account"]["ingest_groups"], on);
    body
}

/// Private chats are always stored; basic groups and supergroups only while the account's
/// `ingest_groups` is on, switched through `PATCH /api/v1/accounts/{id}` while it runs.
async fn group_chats_are_ingested_only_when_enabled(app: &TestApp) {
    let owner = tg_user(app, "+15552700", "Owner");
    let friend = tg_user(app, "+15552701", "Friend");
    let group = app
        .sim
        .create_group(tgsim::NewGroup {
            title: "Basic group".into(),
            creator: friend.id,
            members: vec![owner.id],
            supergroup: false,
            username: None,
        })
        .unwrap();
    let supergroup = app
        .sim
        .create_group(tgsim::NewGroup {
            title: "Supergroup".into(),
            creator: friend.id,
            members: vec![owner.id],
            supergroup: true,
            username: None,
        })
        .unwrap();
    let b = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &b, "+15552700", None).await;
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["ingest_groups"], false, "off by default");
    let say = |to: tgsim::Peer, text: &str| {
        app.sim
            .send_message(friend.id, to, tgsim::OutgoingMessage::text(text))
            .unwrap();
    };

    // Off: group messages are skipped, the private one (sent last) is stored.
    say(group.peer, "group while off");
    say(supergroup.peer, "supergroup while off");
    say(tgsim::Peer::User(owner.id), "private while off");
    wait_for_text(&b, id, "private while off").await;

    // The switch: admins only, with the CSRF token, a boolean, a known account.
    let path = format!("/api/v1/accounts/{id}");
    let operator = app.login("operator", PASSWORD).await;
    let r = operator
        .send(
            Method::PATCH,
            &path,
            Some(&json!({"ingest_groups": true})),
            true,
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = b
        .send(
            Method::PATCH,
            &path,
            Some(&json!({"ingest_groups": true})),
            false,
        )
        .await;
    assert_eq!(error_code(r).await, "csrf_failed");
    let r = b
        .send(
            Method::PATCH,
            &path,
            Some(&json!({"ingest_groups": "yes"})),
            true,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(error_code(r).await, "invalid_json");
    let r = b
        .send(
            Method::PATCH,
            "/api/v1/accounts/999999",
            Some(&json!({"ingest_groups": true})),
            true,
        )
        .await;
    assert_eq!(error_code(r).await, "not_found");
    assert_eq!(
        account(&b, id).await["ingest_groups"],
        false,
        "nothing changed"
    );

    // On: group and supergroup messages are stored, without restarting the client.
    set_ingest_groups(&b, id, true).await;
    assert_eq!(account(&b, id).await["ingest_groups"], true);
    say(group.peer, "group while on");
    say(supergroup.peer, "supergroup while on");
    wait_for_text(&b, id, "group while on").await;
    wait_for_text(&b, id, "supergroup while on").await;
    let chats: Value = b
        .get(&format!("/api/v1/accounts/{id}/chats"))
        .await
        .json()
        .await
        .unwrap();
    let mut titles: Vec<&str> = chats["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, vec!["Basic group", "Friend", "Supergroup"]);

    // Off again: group messages are skipped again; private ones still arrive.
    set_ingest_groups(&b, id, false).await;
    say(group.peer, "group while off again");
    say(tgsim::Peer::User(owner.id), "private while off again");
    wait_for_text(&b, id, "private while off again").await;
    assert_eq!(
        texts_of(&b, id).await,
        vec![
            "group while on",
            "private while off",
            "private while off again",
            "supergroup while on",
        ],
        "messages sent to groups while off are never stored"
    );
    assert_eq!(
        open_connections(app, owner.id),
        1,
        "the switch kept the one client"
    );

    let audit = app.store.list_audit(app.workspace, None, 50).await.unwrap();
    let changes: Vec<&Value> = audit
        .iter()
        .filter(|e| {
            e.action == "account.updated" && e.target.as_deref() == Some(&format!("account:{id}"))
        })
        .map(|e| &e.details)
        .collect();
    assert_eq!(changes.len(), 2, "each change is audited: {changes:?}");
}

async fn import_validates_before_going_live(app: &TestApp) {
    let (user, key) = registered_user(&app.sim, "+15553000", "Imported");
    let b = app.login("admin", PASSWORD).await;

    let r = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": "definitely not a session"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let code = error_code(r).await;
    assert!(code.starts_with("session_string_"), "{code}");
    let list: Value = b.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(
        list["accounts"].as_array().unwrap().len(),
        0,
        "nothing stored for bad input"
    );

    let id = import_session(&b, &telethon_string(&app.sim, key)).await;
    let a = wait_status(&b, id, "connected").await;
    assert_eq!(a["first_name"], "Imported");
    assert_eq!(
        open_connections(app, user.id),
        1,
        "validation closed its connection; one live client"
    );
    let dup = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, key)}),
        )
        .await;
    assert_eq!(dup.status(), 409);

    // Export is an audited admin action that yields a working string.
    let r = b
        .post(
            &format!("/api/v1/accounts/{id}/export"),
            &json!({"format": "telethon"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let exported: Value = r.json().await.unwrap();
    assert!(exported["session_string"].as_str().unwrap().len() > 300);
    let audit = app.store.list_audit(app.workspace, None, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "account.session_exported"));
    assert!(
        !serde_json::to_string(&audit)
            .unwrap()
            .contains(exported["session_string"].as_str().unwrap())
    );

    // A key Telegram does not know ends unauthorized, and is not started.
    let unknown = app.sim.issue_auth_key();
    let r = b
        .post(
            "/api/v1/accounts/import",
            &json!({"session_string": telethon_string(&app.sim, unknown)}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["account"]["status"], "unauthorized");
    assert_eq!(body["account"]["running"], false);
}

/// A customer writes continuously from the moment the import is answered, through the live
/// client's start: the session's update state is saved when the import is validated, so the
/// messages sent before the update stream began are caught up, each exactly once.
async fn an_imported_session_misses_nothing_sent_while_it_goes_live(app: &TestApp) {
    let (owner, key) = registered_user(&app.sim, "+15553100", "Fresh");
    let customer = tg_user(app, "+15553101", "Early");
    let b = app.login("admin", PASSWORD).await;
    let id = import_session(&b, &telethon_string(&app.sim, key)).await;
    const SENT: usize = 60;
    for i in 0..SENT {
        app.sim
            .send_message(
                customer.id,
                tgsim::Peer::User(owner.id),
                tgsim::OutgoingMessage::text(format!("early {i}")),
            )
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_status(&b, id, "connected").await;
    wait_for("every early message", || async {
        (messages_of(&b, id).await.len() >= SENT).then_some(Value::Null)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut texts = texts_of(&b, id).await;
    assert_eq!(texts.len(), SENT, "nothing doubled: {texts:?}");
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), SENT, "each message once");
}

async fn accounts_are_admin_only_and_isolated(app: &TestApp) {
    app.sim
        .create_user(tgsim::NewUser {
            phone: "+15554000".into(),
            first_name: "Mine".into(),
            ..Default::default()
        })
        .unwrap();
    let admin = app.login("admin", PASSWORD).await;
    let id = connect_by_code(app, &admin, "+15554000", None).await;
    let op = app.login("operator", PASSWORD).await;
    let r = op
        .post(
            "/api/v1/accounts/login/phone",
            &json!({"phone": "+15554000"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = op
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/stop"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 403);
    let other = app
        .store
        .create_workspace("Other", Timestamp::now())
        .await
        .unwrap()
        .id;
    app.add_user(other, "rival", Role::Owner).await;
    let rival = app.login("rival", PASSWORD).await;
    let list: Value = rival.get("/api/v1/accounts").await.json().await.unwrap();
    assert_eq!(
        list["accounts"].as_array().unwrap().len(),
        0,
        "another workspace sees none"
    );
    for (m, path) in [
        (Method::POST, format!("/api/v1/accounts/{id}/stop")),
        (Method::POST, format!("/api/v1/accounts/{id}/logout")),
        (Method::DELETE, format!("/api/v1/accounts/{id}")),
        (Method::GET, format!("/api/v1/accounts/{id}/chats")),
    ] {
        let r = rival.send(m, &path, None, true).await;
        assert!(
            r.status() == 404 || r.status() == 200,
            "{path}: {}",
            r.status()
        );
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["chats"].as_array().map(|c| c.len()), Some(0), "{path}");
        }
    }
    assert_eq!(
        account(&admin, id).await["active"],
        true,
        "the rival changed nothing"
    );
    // Logout wipes the session and says so.
    let r = admin
        .send(
            Method::POST,
            &format!("/api/v1/accounts/{id}/logout"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 200);
    let a = account(&admin, id).await;
    assert_eq!(
        (a["status"].as_str(), a["active"].as_bool()),
        (Some("unauthorized"), Some(false))
    );
    let r = admin
        .send(
            Method::DELETE,
            &format!("/api/v1/accounts/{id}"),
            None,
            true,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(account(&admin, id).await, Value::Null);
}

/// Sends `POST path` with `body` as the signed-in browser over a raw connection, waits until
/// `started` says the server is at work on it, then drops the connection without reading the
/// answer, as a browser tab closed mid-request does.
async fn post_and_hang_up<F, Fut>(app: &TestApp, b: &Browser, path: &str, body: &Value, started: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use tokio::io::AsyncWriteExt;
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}",
        host = app.running.addr,
        cookie = b.cookie,
        csrf = b.csrf,
        len = body.len(),
    );
    let mut conn = tokio::net::TcpStream::connect(app.running.addr)
        .await
        .unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !started().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never started on {path}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(conn);
}

async fn an_import_whose_client_disconnects_completes_or_leaves_nothing(app: &TestApp) {
    let (user, key) = registered_user(&app.sim, "+15553050", "Leaver");
    let customer = tg_user(app, "+15553051", "Stays");
    let b = app.login("admin", PASSWORD).await;
    let store = &app.running.account_store;
    // Telegram answers slowly, so that the client is gone while the session is validated.
    app.sim
        .set_latency(Some(user.id), Duration::from_millis(1500));
    post_and_hang_up(
        app,
        &b,
        "/api/v1/accounts/import",
        &json!({"session_string": telethon_string(&app.sim, key)}),
        || async { !store.list_accounts(app.workspace).await.unwrap().is_empty() },
    )
    .await;
    app.sim.set_latency(Some(user.id), Duration::ZERO);

    // Either the account was imported whole and works, or nothing of it is left; never an
    // account that stays `connecting` and inactive with a stored session.
    let settled = wait_for("the import to settle", || async {
        let accounts = store.list_accounts(app.workspace).await.unwrap();
        match accounts.as_slice() {
            [] => Some(Value::Null),
            [a] if a.active && a.status == switchboard_domain::AccountStatus::Connected => {
                Some(json!(a.id.0))
            }
            _ => None,
        }
    })
    .await;
    if let Some(id) = settled.as_i64() {
        assert_eq!(account(&b, id).await["first_name"], "Leaver");
        app.sim
            .send_message(
                customer.id,
                tgsim::Peer::User(user.id),
                tgsim::OutgoingMessage::text("after the hang-up"),
            )
            .unwrap();
        wait_for_text(&b, id, "after the hang-up").await;
    } else {
        assert_eq!(open_connections(app, user.id), 0);
    }
}
